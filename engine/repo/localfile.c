#include "engine/repo/localfile.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/err.h"

int localfile_mkdirs(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof path)
		return err_set(DRE_EINVAL, "directory name '%s' is empty or too long", dir);
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return err_sys("cannot create directory %s", path);
		path[i] = i < len ? '/' : '\0';
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open directory %s", dir);
	int rc = fsync(fd) < 0 ? err_sys("cannot fsync directory %s", dir) : 0;
	close(fd);
	return rc;
}

int localfile_write(const char *path, const struct iovec *iov, int n, mode_t mode, bool durable)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int dlen = slash != NULL ? (int)(slash - path) + 1 : 0;
	if (snprintf(tmp, sizeof tmp, "%.*s.%s.dre-%ld", dlen, path, path + dlen, (long)getpid()) >= (int)sizeof tmp)
		return err_set(DRE_EINVAL, "file name %s is too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return err_sys("cannot create %s", tmp);
	int rc = fchmod(fd, mode) < 0 ? err_sys("cannot set the mode of %s", tmp) : 0; /* whatever the umask */
	for (int i = 0; rc == 0 && i < n; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (rc == 0 && left > 0) {
			ssize_t w = write(fd, p, left);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				rc = err_sys("cannot write %s", tmp);
			else {
				p += w;
				left -= (size_t)w;
			}
		}
	}
	if (rc == 0 && durable && fsync(fd) < 0)
		rc = err_sys("cannot fsync %s", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("cannot write %s", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = err_sys("cannot rename %s to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	if (rc == 0 && durable)
		rc = fsync_dir_of(path);
	return rc;
}

int localfile_read_exact(int fd, void *p, size_t len, const char *path)
{
	char *c = p;
	while (len > 0) {
		ssize_t r = read(fd, c, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys("cannot read %s", path);
		if (r == 0)
			return err_set(DRE_ECORRUPT, "%s ends early", path);
		c += r;
		len -= (size_t)r;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

int localfile_remove_tree(const char *dir)
{
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return err_sys("cannot remove the temporary directory %s", dir);
	return 0;
}
