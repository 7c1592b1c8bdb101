/*
 * localfile.h — files on this machine that are not repository objects: caches and small state files. The
 * store/ drivers own repository objects; this is for what engine/ keeps beside them.
 */
#ifndef DRE_LOCALFILE_H
#define DRE_LOCALFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Creates dir and its missing parents with mode (existing ones are left as they are). */
int localfile_mkdirs(const char *dir, mode_t mode);

/*
 * Replaces path with the concatenation of iov[0..n) through a temporary name in the same directory and a
 * rename, so a reader sees the old file or the new one, never a part. The temporary is hidden
 * (".<name>.dre-<pid>"), so a directory another program scans, such as pg_wal, shows it no half-written name;
 * it is unique per process and path, so threads writing different paths do not collide. The file gets exactly
 * mode, whatever the umask. With durable the file and then its directory are fsynced before the call returns.
 */
int localfile_write(const char *path, const struct iovec *iov, int n, mode_t mode, bool durable);

/* Removes dir and everything below it, following no symlink (temporary directories of dre bench). */
int localfile_remove_tree(const char *dir);

/* Reads exactly len bytes at the file position, DRE_ECORRUPT naming path when the file ends early. */
int localfile_read_exact(int fd, void *p, size_t len, const char *path);

#endif
