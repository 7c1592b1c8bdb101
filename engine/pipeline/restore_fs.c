/*
 * restore_fs.c — attributes, the if-changed comparison, removal and the hard-link map of a restore
 * (restore_fs.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/pipeline/meter.h"
#include "engine/pipeline/restore_fs.h"

void rfs_skip(rfs_warn *w, const char *fmt, ...)
{
	w->skipped++;
	if (w->skipped > RFS_WARN_MAX || w->hooks == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(w->hooks->warn, w->hooks->arg, fmt, ap);
	va_end(ap);
}

void rfs_warn_end(rfs_warn *w)
{
	if (w->skipped > RFS_WARN_MAX && w->hooks != NULL)
		engine_warnf(w->hooks->warn, w->hooks->arg,
			     "%zu more extended attributes or device nodes were not restored (the first %d are named "
			     "above)",
			     w->skipped - RFS_WARN_MAX, RFS_WARN_MAX);
}

/* Refusals that say the target cannot hold this attribute, not that the restore went wrong: no support on the file
 * system (or for this namespace), a trusted.* or security.* attribute as non-root, one larger than it allows. */
static bool xattr_refused(int e)
{
	return e == ENOTSUP || e == EPERM || e == EACCES || e == EINVAL || e == E2BIG || e == ERANGE || e == ENOSPC;
}

/* Whether path has attribute name with this value already. */
static bool has_xattr(const char *path, const char *name, const uint8_t *value, size_t len)
{
	uint8_t small[256];
	uint8_t *scratch = len <= sizeof small ? small : malloc(len);
	if (scratch == NULL)
		return false;
	ssize_t got = lgetxattr(path, name, scratch, len);
	bool same = got >= 0 && (size_t)got == len && memcmp(scratch, value, len) == 0;
	if (scratch != small)
		free(scratch);
	return same;
}

static int set_xattrs(int fd, const char *path, const snap_node *n, rfs_warn *w)
{
	char name[SNAP_XATTR_NAME_MAX + 1];
	const uint8_t *value;
	size_t pos = 0, len;
	while (snap_xattr_next(n, &pos, name, &value, &len) == 1) {
		if (fd < 0 && has_xattr(path, name, value, len))
			continue; /* an entry that was there already: a read-only one may refuse even the same value */
		int rc = fd >= 0 ? fsetxattr(fd, name, value, len, 0) : lsetxattr(path, name, value, len, 0);
		if (rc == 0)
			continue;
		if (!xattr_refused(errno))
			return err_sys("cannot set extended attribute %s of %s", name, path);
		rfs_skip(w, "extended attribute %s of %s not restored: %s", name, path, strerror(errno));
	}
	return 0;
}

int rfs_set_attrs(int fd, const char *path, const snap_node *n, rfs_warn *w)
{
	bool symlink = n->type == NODE_SYMLINK;
	if (geteuid() == 0) {
		int rc = fd >= 0 ? fchown(fd, n->uid, n->gid) : lchown(path, n->uid, n->gid);
		if (rc < 0)
			return err_sys("cannot set the owner of %s", path);
	}
	TRY(set_xattrs(fd, path, n, w));
	if (!symlink) {
		int rc = fd >= 0 ? fchmod(fd, n->mode & 07777) : fchmodat(AT_FDCWD, path, n->mode & 07777, 0);
		if (rc < 0)
			return err_sys("cannot set the mode of %s", path);
	}
	/* access times are not kept: both become the mtime */
	struct timespec ts[2];
	ts[0].tv_sec = n->mtime_ns / 1000000000;
	ts[0].tv_nsec = n->mtime_ns % 1000000000;
	ts[1] = ts[0];
	int rc = fd >= 0 ? futimens(fd, ts) : utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
	if (rc < 0 && !symlink) /* some file systems keep no times for symlinks */
		return err_sys("cannot set the times of %s", path);
	return 0;
}

static int same_content(const char *path, const snap_node *n, uint8_t *scratch, size_t cap, bool *same)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot read %s to compare it with the snapshot", path);
	XXH3_state_t *x = XXH3_createState();
	if (x == NULL) {
		close(fd);
		return err_set(DRE_ENOMEM, "cannot compare %s", path);
	}
	XXH3_128bits_reset(x);
	uint64_t total = 0;
	int rc = 0;
	for (;;) {
		ssize_t got = read(fd, scratch, cap);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = err_sys("cannot read %s to compare it with the snapshot", path);
			break;
		}
		if (got == 0)
			break;
		XXH3_128bits_update(x, scratch, (size_t)got);
		total += (uint64_t)got;
	}
	close(fd);
	uint8_t sum[16];
	XXH128_canonicalFromHash((XXH128_canonical_t *)sum, XXH3_128bits_digest(x));
	XXH3_freeState(x);
	*same = rc == 0 && total == n->size && memcmp(sum, n->xxh128, 16) == 0;
	return rc;
}

int rfs_is_node(const char *path, const struct stat *st, const snap_node *n, uint8_t *scratch, size_t cap,
		bool *same)
{
	*same = false;
	switch (n->type) {
	case NODE_FILE:
	case NODE_STREAM: {
		int64_t mtime = meter_timespec_ns(&st->st_mtim);
		if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size != n->size || mtime != n->mtime_ns)
			return 0;
		/* size and mtime are easily kept by a change (and forged): the content decides */
		return same_content(path, n, scratch, cap, same);
	}
	case NODE_SYMLINK: {
		char target[SNAP_PATH_MAX + 2];
		if (!S_ISLNK(st->st_mode))
			return 0;
		ssize_t len = readlink(path, target, sizeof target);
		if (len < 0)
			return err_sys("cannot read symlink %s", path);
		*same = (size_t)len < sizeof target && n->link != NULL && strlen(n->link) == (size_t)len &&
			memcmp(target, n->link, (size_t)len) == 0;
		return 0;
	}
	case NODE_CHARDEV:
	case NODE_BLOCKDEV:
		*same = (n->type == NODE_CHARDEV ? S_ISCHR(st->st_mode) : S_ISBLK(st->st_mode)) &&
			(uint64_t)st->st_rdev == n->rdev;
		return 0;
	default:
		return 0;
	}
}

static bool kept_name(const char *name, char *const *keep, size_t nkeep)
{
	size_t lo = 0, hi = nkeep;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, keep[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* Removes what directory fd (shown, len bytes) holds but the nkeep sorted names; closes fd. */
static int remove_dir_contents(int fd, char *const *keep, size_t nkeep, char *shown, size_t len, size_t cap,
			       size_t *count)
{
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return err_sys("cannot list directory %s", shown);
	}
	int rc = 0;
	bool removed;
	/* entries removed while reading a directory may shift what the rest of the reading sees: read again until
	 * a reading removes nothing */
	do {
		removed = false;
		rewinddir(d);
		struct dirent *de;
		errno = 0;
		while (rc == 0 && (de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    kept_name(de->d_name, keep, nkeep)) {
				errno = 0;
				continue;
			}
			rc = rfs_remove(dirfd(d), de->d_name, shown, len, cap, count);
			shown[len] = '\0';
			removed = true;
			errno = 0;
		}
		if (rc == 0 && errno != 0)
			rc = err_sys("cannot list directory %s", shown);
	} while (rc == 0 && removed);
	closedir(d);
	return rc;
}

int rfs_remove_extra(const char *path, char *const *keep, size_t nkeep, char *shown, size_t cap, size_t *count)
{
	int n = snprintf(shown, cap, "%s", path);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "path %s is too long", path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open directory %s", path);
	return remove_dir_contents(fd, keep, nkeep, shown, (size_t)n, cap, count);
}

int rfs_remove(int dfd, const char *name, char *shown, size_t len, size_t cap, size_t *count)
{
	struct stat st;
	int n = snprintf(shown + len, cap - len, "/%s", name);
	if (n < 0 || (size_t)n >= cap - len)
		return err_set(DRE_EINVAL, "path %s/%s is too long", shown, name);
	len += (size_t)n;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys("cannot examine %s", shown);
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return err_sys("cannot open directory %s", shown);
		TRY(remove_dir_contents(fd, NULL, 0, shown, len, cap, count));
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
			return err_sys("cannot remove directory %s", shown);
	} else if (unlinkat(dfd, name, 0) < 0) {
		return err_sys("cannot remove %s", shown);
	}
	(*count)++;
	return 0;
}

/* ---- the hard-link map: open addressing, linear probing, never shrinking ---- */

static size_t link_hash(uint64_t dev, uint64_t ino, size_t cap)
{
	uint64_t h = (ino ^ (dev * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
	return (size_t)(h ^ (h >> 31)) & (cap - 1);
}

rfs_link *rfs_links_find(rfs_links *m, uint64_t dev, uint64_t ino)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = link_hash(dev, ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
		rfs_link *l = &m->slots[i];
		if (l->path == NULL)
			return NULL;
		if (l->dev == dev && l->ino == ino)
			return l;
	}
}

static int links_grow(rfs_links *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	rfs_link *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return err_set(DRE_ENOMEM, "cannot grow the map of hard links");
	for (size_t i = 0; i < m->cap; i++) {
		rfs_link *l = &m->slots[i];
		if (l->path == NULL)
			continue;
		size_t k = link_hash(l->dev, l->ino, cap);
		while (slots[k].path != NULL)
			k = (k + 1) & (cap - 1);
		slots[k] = *l;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int rfs_links_add(rfs_links *m, const snap_node *n, const char *path, bool done, bool *added)
{
	size_t plen = strlen(path);
	*added = false;
	if (m->n >= RFS_LINKS_MAX || m->bytes + plen + 1 > RFS_LINK_BYTES)
		return 0;
	if (2 * (m->n + 1) > m->cap)
		TRY(links_grow(m));
	size_t k = link_hash(n->dev, n->ino, m->cap);
	while (m->slots[k].path != NULL)
		k = (k + 1) & (m->cap - 1);
	rfs_link *l = &m->slots[k];
	l->path = strdup(path);
	if (l->path == NULL)
		return err_set(DRE_ENOMEM, "cannot record the hard link %s", path);
	l->dev = n->dev;
	l->ino = n->ino;
	l->size = n->size;
	memcpy(l->xxh, n->xxh128, 16);
	l->done = done;
	m->n++;
	m->bytes += plen + 1;
	*added = true;
	return 0;
}

void rfs_links_free(rfs_links *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].path);
	free(m->slots);
	memset(m, 0, sizeof *m);
}
