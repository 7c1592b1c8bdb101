/*
 * restore_fs.h — what a restore does to the file system of its target, apart from the pipeline that brings the
 * data (restore.c): a node's attributes set in an order that keeps them all, whether what the target already
 * holds is the node (--overwrite if-changed), removing what --delete removes, and the map that turns a
 * snapshot's hard-linked files back into links.
 */
#ifndef DRE_RESTORE_FS_H
#define DRE_RESTORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/engine.h"

/* Where problems that only cost an attribute or a device node go: each is counted, and the first
 * RFS_WARN_MAX are reported through the hook (rfs_warn_end says how many more there were). */
#define RFS_WARN_MAX 20
typedef struct rfs_warn {
	const engine_hooks *hooks;
	size_t skipped; /* attributes and device nodes not restored */
} rfs_warn;

void rfs_skip(rfs_warn *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rfs_warn_end(rfs_warn *w);

/*
 * Owner (as root), extended attributes, mode, then times: chown clears the set-user-ID bits and file capabilities
 * (security.capability), a read-only mode could refuse the attributes after it, and each step leaves the mtime
 * alone. With fd >= 0 through it, else through path without following a symlink (a symlink keeps its mode).
 * An attribute the file system refuses (no support, a trusted.* one as non-root, too large) is a skip, not an
 * error. path names the file in messages.
 */
int rfs_set_attrs(int fd, const char *path, const snap_node *n, rfs_warn *w);

/* Whether the existing entry at path (st from lstat) is node n already: a regular file of the same size and
 * mtime whose content has n's XXH3-128 (read with scratch, cap bytes), a symlink to the same target, a device node
 * of the same number. */
int rfs_is_node(const char *path, const struct stat *st, const snap_node *n, uint8_t *scratch, size_t cap,
		bool *same);

/* Removes name inside directory dfd — a directory with everything in it — never following a symlink. shown
 * holds its path (len bytes of cap) for messages and is extended below it; *count gets every entry removed. */
int rfs_remove(int dfd, const char *name, char *shown, size_t len, size_t cap, size_t *count);
/* Removes what directory path holds but the nkeep names of keep (sorted by strcmp): --delete in one directory.
 * shown is a buffer of cap bytes for messages. */
int rfs_remove_extra(const char *path, char *const *keep, size_t nkeep, char *shown, size_t cap, size_t *count);

/*
 * The hard links of a restore: (device, inode) of a snapshot's regular files with more than one link → the
 * path its first file was restored to. Bounded: at most RFS_LINKS_MAX files and RFS_LINK_BYTES of paths; past
 * that, rfs_links_add says no and later links of further files are restored as copies.
 */
#define RFS_LINKS_MAX 65536
#define RFS_LINK_BYTES (16u << 20)

typedef struct rfs_link {
	uint64_t dev, ino;
	char *path;      /* NULL: a free slot */
	uint64_t size;   /* what the first file held: a later link whose node says otherwise (the file */
	uint8_t xxh[16]; /* changed between reading its names) gets its own content */
	bool done;       /* the first file is written and closed */
} rfs_link;

typedef struct rfs_links {
	rfs_link *slots;
	size_t cap, n, bytes;
} rfs_links;

rfs_link *rfs_links_find(rfs_links *m, uint64_t dev, uint64_t ino);
/* Records n (a regular file with nlink > 1) restored at path; 0 and *added false when the map is full. */
int rfs_links_add(rfs_links *m, const snap_node *n, const char *path, bool done, bool *added);
void rfs_links_free(rfs_links *m);

#endif
