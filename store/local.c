/*
 * local.c — the store driver for a local directory: key "a/b" is the file ROOT/a/b.
 *
 * put writes a hidden temporary file (".tmp.<pid>.<random>.<last part of the key>") in the object's directory,
 * fsyncs it, moves it into place (rename, or link for create-once so an existing object is never replaced) and
 * fsyncs the directory, so an object is either absent or complete and durable. Names starting with "." are never
 * keys and list skips them, so a crash leaves at most an ignored temporary behind. uploads reports those
 * temporaries (their name says which key they were for) and abort_upload removes one, so that prune can reclaim
 * what killed processes left, the way it aborts S3's unfinished multipart uploads.
 *
 * A large object whose buffer is STORE_DIRECT_ALIGN-aligned (pack buffers are) is written with O_DIRECT up to
 * its last whole aligned block, the rest through the page cache: it is fsynced anyway, so the page cache
 * would only cost a copy and evict what the machine is caching for the database it backs up. A file system
 * that refuses O_DIRECT (tmpfs; EINVAL) gets the plain write instead.
 *
 * Modes: a new repository is private, directories 0700 and objects 0600 (restic's choice): its key objects are
 * all an offline password guess needs. A repository that already has a config object keeps that object's
 * group and other permission bits for everything written into it (directories also get x where they get r),
 * so a repository made by an older dre (config 0644) goes on getting 0644 and 0755, and one shared on purpose
 * (chmod -R g+rX; config 0640) goes on being readable by its group. The umask still applies on top.
 *
 * Thread safety: get, stat and list touch no shared mutable state; put shares only the cache of directories
 * known to exist, under a mutex. Several threads may call any operation at once.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/err.h"
#include "store/fault.h"

#define DIR_CACHE_SLOTS 1024 /* direct-mapped: comfortably holds packs/00 … packs/ff and the rest */
#define LIST_MAX_DEPTH 64    /* keys are shallow; deeper means a symlink loop */
#define IO_CHUNK ((size_t)1 << 30)
#define DIRECT_MIN ((size_t)1 << 20) /* below this the copy is too small to matter */
#define TMP_PREFIX ".tmp."
#define TMP_HEX 16 /* hex digits of a temporary's random part */
#define TMP_NAME_MAX 255 /* NAME_MAX of Linux file systems: longer last parts of keys are left out of the name */

struct local {
	store base; /* first, so a store * is a struct local * */
	char *root; /* without a trailing "/"; "" for the file system root */
	mode_t file_mode, dir_mode; /* of what put creates (see the top of this file) */
	pthread_mutex_t lock;
	char *dirs[DIR_CACHE_SLOTS]; /* directories known to exist (absolute or root-relative paths) */
};

static struct local *local_of(store *st)
{
	return (struct local *)st;
}

/* DRE_TEST_STORE_FAULTS (store/fault.h): true, with errno set, when the system call about to be made at site is
 * to fail as a disk would make it fail. */
static bool fault_fails(enum store_fault_site site)
{
	int e = store_fault_hit(site);
	if (e <= 0)
		return false;
	errno = e;
	return true;
}

/* ---- keys and paths ---- */

/* root + "/" + rel (the first len bytes of rel); malloc'd. */
static char *path_join(const struct local *l, const char *rel, size_t len)
{
	size_t rn = strlen(l->root);
	char *p = malloc(rn + 1 + len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, l->root, rn);
	p[rn] = '/';
	memcpy(p + rn + 1, rel, len);
	p[rn + 1 + len] = '\0';
	return p;
}

static int path_for(const struct local *l, const char *key, char **out)
{
	TRY(store_key_check(key, false));
	*out = path_join(l, key, strlen(key));
	if (*out == NULL)
		return err_set(DRE_ENOMEM, "object %s: out of memory", key);
	return 0;
}

/* Length of the directory part of path ("a/b/c" → 3; no "/" → 0). */
static size_t dir_len(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? (size_t)(s - path) : 0;
}

/* ---- directories ---- */

static int fsync_dir(const char *dir)
{
	int fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fault_fails(STORE_FAULT_SYNC_DIR) ? -1 : fsync(fd);
	int saved = errno;
	close(fd);
	if (rc < 0 && saved != EINVAL && saved != EROFS) { /* some file systems cannot sync directories */
		errno = saved;
		return -1;
	}
	return 0;
}

/*
 * mkdir -p of the first len bytes of path (mode less umask), fsyncing the parent of each directory it
 * creates (and of the existing directory it stops at) so the entries are durable. Returns 0, or -1 with errno
 * set and *failed (malloc'd, may be NULL) naming the directory that could not be created or synced.
 */
static int mkdir_p(const char *path, size_t len, mode_t mode, char **failed)
{
	if (len == 0)
		return 0; /* "" is the file system root */
	char *d = strndup(path, len);
	if (d == NULL) {
		errno = ENOMEM;
		return -1;
	}
	int rc = mkdir(d, mode);
	if (rc < 0 && errno == ENOENT) {
		if (mkdir_p(d, dir_len(d), mode, failed) < 0) {
			free(d);
			return -1;
		}
		rc = mkdir(d, mode);
	}
	if (rc < 0 && errno == EEXIST)
		rc = 1;
	if (rc >= 0) {
		/* Sync the parent even when the directory already existed: another thread may have just created
		 * it and not yet synced its entry, and our object must not depend on that. This runs only on a
		 * miss of the directory cache, so about once per directory. */
		const char *slash = strrchr(d, '/');
		char *parent = slash == NULL ? strdup(".") : strndup(d, (size_t)(slash - d));
		if (parent == NULL || fsync_dir(parent) < 0) {
			int saved = parent ? errno : ENOMEM;
			free(d);
			*failed = parent;
			errno = saved;
			return -1;
		}
		free(parent);
		rc = 0;
	} else {
		*failed = d;
		return -1;
	}
	free(d);
	return rc;
}

static uint64_t hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static bool dir_cached(struct local *l, const char *dir, size_t n)
{
	size_t slot = hash_str(dir, n) % DIR_CACHE_SLOTS;
	pthread_mutex_lock(&l->lock);
	const char *c = l->dirs[slot];
	bool hit = c != NULL && strlen(c) == n && memcmp(c, dir, n) == 0;
	pthread_mutex_unlock(&l->lock);
	return hit;
}

static void dir_cache_set(struct local *l, const char *dir, size_t n, bool known)
{
	size_t slot = hash_str(dir, n) % DIR_CACHE_SLOTS;
	char *c = known ? strndup(dir, n) : NULL;
	if (known && c == NULL)
		return; /* the cache is only an optimization */
	pthread_mutex_lock(&l->lock);
	char *old = l->dirs[slot];
	if (known || (old != NULL && strlen(old) == n && memcmp(old, dir, n) == 0)) {
		l->dirs[slot] = c;
	} else {
		old = NULL; /* the slot holds another directory: keep it */
	}
	pthread_mutex_unlock(&l->lock);
	free(old);
}

/* Makes sure the directory holding path exists. */
static int ensure_dir(struct local *l, const char *key, const char *path)
{
	size_t n = dir_len(path);
	if (dir_cached(l, path, n))
		return 0;
	char *failed = NULL;
	if (mkdir_p(path, n, l->dir_mode, &failed) < 0) {
		int rc = failed ? err_sys("cannot write object %s (%s): cannot create or sync directory %s", key, path,
					  *failed ? failed : "/")
				: err_sys("cannot write object %s (%s)", key, path);
		free(failed);
		return rc;
	}
	dir_cache_set(l, path, n, true);
	return 0;
}

/* ---- put ---- */

static atomic_uint_fast64_t tmp_counter;

static void tmp_suffix(char hex[17])
{
	uint64_t r;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ts.tv_sec << 32) ^
		    atomic_fetch_add(&tmp_counter, 1);
	}
	snprintf(hex, 17, "%016llx", (unsigned long long)r);
}

/* Creates "<dir of path>/.tmp.<pid>.<hex>.<base>" exclusively with mode (less umask), base being path's last
 * part (left out, with its ".", when the name would be too long); *tmp gets its malloc'd name. */
static int tmp_create(const char *path, mode_t mode, char **tmp)
{
	size_t n = dir_len(path);
	const char *base = path + n + (path[n] == '/');
	if (strlen(base) + 64 > TMP_NAME_MAX)
		base = "";
	size_t cap = 64 + strlen(base);
	char *t = malloc(n + cap);
	if (t == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (int tries = 0;; tries++) {
		char hex[TMP_HEX + 1];
		tmp_suffix(hex);
		memcpy(t, path, n);
		snprintf(t + n, cap, "/" TMP_PREFIX "%ld.%s%s%s", (long)getpid(), hex, *base ? "." : "", base);
		int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0) {
			*tmp = t;
			return fd;
		}
		if (errno != EEXIST || tries >= 100) {
			int saved = errno;
			free(t);
			errno = saved;
			return -1;
		}
	}
}

static int write_all_at(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		size_t n = len < IO_CHUNK ? len : IO_CHUNK;
		int fault = store_fault_hit(STORE_FAULT_WRITE);
		if (fault > 0) {
			errno = fault;
			return -1;
		}
		ssize_t w = pwrite(fd, p, fault == STORE_FAULT_SHORT ? store_fault_short(n) : n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/* The direct part of an object (see the top of this file): returns how many bytes of p went out with
 * O_DIRECT, 0 when none did and the caller should write all of it, or -1 with errno on a real error. */
static ssize_t write_direct(int fd, const uint8_t *p, size_t len)
{
	size_t n = len & ~(size_t)(STORE_DIRECT_ALIGN - 1);
	if (((uintptr_t)p & (STORE_DIRECT_ALIGN - 1)) != 0 || n < DIRECT_MIN)
		return 0;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		return 0;
	int rc = write_all_at(fd, p, n, 0), saved = errno;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -1;
	errno = saved;
	if (rc == 0)
		return (ssize_t)n;
	/* EINVAL: this file system takes O_DIRECT at open but not for this write (alignment it wants larger) */
	return errno == EINVAL ? 0 : -1;
}

static int write_object(int fd, const uint8_t *p, size_t len)
{
	ssize_t done = write_direct(fd, p, len);
	if (done < 0)
		return -1;
	return write_all_at(fd, p + done, len - (size_t)done, (off_t)done);
}

/* Moves tmp to path without replacing an existing file: link, or rename(RENAME_NOREPLACE) on file systems
 * without hard links. Returns 0, or -1 with errno (EEXIST when path exists). */
static int place_once(const char *tmp, const char *path)
{
	if (link(tmp, path) == 0) {
		unlink(tmp); /* the object is in place; a leftover temporary is ignored anyway */
		return 0;
	}
	int saved = errno;
	/* NOLINTNEXTLINE(misc-redundant-expression): one value on Linux, two on other systems */
	if (saved == EPERM || saved == ENOTSUP || saved == EOPNOTSUPP || saved == EMLINK) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
	}
	errno = saved;
	return -1;
}

static int local_put(store *st, const char *key, const void *buf, size_t len, unsigned flags)
{
	struct local *l = local_of(st);
	char *path, *tmp = NULL;
	int rc = 0, fd = -1;

	TRY(path_for(l, key, &path));
	rc = ensure_dir(l, key, path);
	if (rc < 0)
		goto out;
	fd = fault_fails(STORE_FAULT_CREATE) ? -1 : tmp_create(path, l->file_mode, &tmp);
	if (fd < 0 && errno == ENOENT) {
		/* a directory in the cache was removed behind our back: forget it and try once more */
		dir_cache_set(l, path, dir_len(path), false);
		rc = ensure_dir(l, key, path);
		if (rc < 0)
			goto out;
		fd = tmp_create(path, l->file_mode, &tmp);
	}
	if (fd < 0) {
		rc = err_sys("cannot write object %s (%s): cannot create a temporary file", key, path);
		goto out;
	}
	if (write_object(fd, buf, len) < 0) {
		rc = err_sys("cannot write object %s (%s)", key, path);
		goto out;
	}
	if (fault_fails(STORE_FAULT_SYNC) || fsync(fd) < 0) {
		rc = err_sys("cannot write object %s (%s): fsync", key, path);
		goto out;
	}
	if (store_test_point != NULL)
		store_test_point("store-put-synced"); /* a kill here leaves the temporary behind, as a crash would */
	int crc = close(fd);
	fd = -1;
	if (crc < 0) {
		rc = err_sys("cannot write object %s (%s): close", key, path);
		goto out;
	}
	if (flags & STORE_PUT_CREATE_ONCE) {
		if (place_once(tmp, path) < 0) {
			if (errno == EEXIST)
				rc = err_set(DRE_EEXIST, "object %s already exists (%s)", key, path);
			else
				rc = err_sys("cannot write object %s (%s)", key, path);
			goto out;
		}
	} else if (rename(tmp, path) < 0) {
		rc = err_sys("cannot write object %s (%s)", key, path);
		goto out;
	}
	free(tmp);
	tmp = NULL; /* in place (or already removed by place_once) */
	size_t n = dir_len(path);
	path[n] = '\0';
	if (fsync_dir(path) < 0) {
		int saved = errno;
		path[n] = '/';
		errno = saved;
		rc = err_sys("cannot write object %s (%s): cannot sync its directory", key, path);
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		int saved = errno;
		unlink(tmp);
		free(tmp);
		errno = saved;
	}
	free(path);
	return rc;
}

/* ---- get, stat ---- */

static int not_found(const struct local *l, const char *key)
{
	return err_set(DRE_ENOTFOUND, "object %s not found in %s", key, *l->root ? l->root : "/");
}

static bool errno_missing(void)
{
	return errno == ENOENT || errno == ENOTDIR;
}

static int local_get(store *st, const char *key, uint64_t off, size_t len, void *buf)
{
	struct local *l = local_of(st);
	char *path;
	int rc = 0;

	TRY(path_for(l, key, &path));
	int fd = fault_fails(STORE_FAULT_OPEN) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno_missing() ? not_found(l, key) : err_sys("cannot read object %s (%s)", key, path);
		free(path);
		return rc;
	}
	uint64_t end = off + len;
	bool short_read = end < off || end > (uint64_t)INT64_MAX;
	uint8_t *p = buf;
	size_t done = 0;
	while (!short_read && done < len) {
		size_t want = len - done < IO_CHUNK ? len - done : IO_CHUNK;
		int fault = store_fault_hit(STORE_FAULT_READ);
		if (fault == STORE_FAULT_SHORT)
			want = store_fault_short(want);
		else if (fault > 0)
			errno = fault;
		ssize_t r = fault > 0 ? -1 : pread(fd, p + done, want, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EISDIR ? not_found(l, key) : err_sys("cannot read object %s (%s)", key, path);
			goto out;
		}
		if (r == 0)
			short_read = true;
		done += (size_t)r;
	}
	if (len == 0 || short_read) {
		struct stat sb;
		if (fstat(fd, &sb) < 0) {
			rc = err_sys("cannot read object %s (%s)", key, path);
		} else if (S_ISDIR(sb.st_mode)) {
			rc = not_found(l, key);
		} else if (short_read || (uint64_t)sb.st_size < off) {
			rc = err_set(DRE_ECORRUPT, "object %s is truncated: wanted bytes %llu..%llu, it has %llu", key,
				     (unsigned long long)off, (unsigned long long)off + len,
				     (unsigned long long)sb.st_size);
		}
	}
out:
	close(fd);
	free(path);
	return rc;
}

static int local_stat(store *st, const char *key, uint64_t *size)
{
	struct local *l = local_of(st);
	char *path;
	struct stat sb;
	int rc = 0;

	TRY(path_for(l, key, &path));
	if (fault_fails(STORE_FAULT_STAT) || stat(path, &sb) < 0)
		rc = errno_missing() ? not_found(l, key) : err_sys("cannot stat object %s (%s)", key, path);
	else if (S_ISDIR(sb.st_mode))
		rc = not_found(l, key);
	else
		*size = (uint64_t)sb.st_size;
	free(path);
	return rc;
}

/* ---- list ---- */

struct walk {
	struct local *l;
	const char *prefix;
	size_t plen;
	store_list_fn fn;
	store_upload_fn upload_fn; /* set instead of fn to visit temporaries (uploads) rather than objects */
	void *arg;
	char *key; /* the current key, grown as needed */
	size_t cap;
};

static int walk_key_set(struct walk *w, size_t at, const char *name, size_t *klen)
{
	size_t nl = strlen(name);
	if (at + nl + 2 > w->cap) {
		size_t cap = (at + nl + 2) * 2;
		char *k = realloc(w->key, cap);
		if (k == NULL)
			return err_set(DRE_ENOMEM, "listing %s: out of memory", w->prefix);
		w->key = k;
		w->cap = cap;
	}
	memcpy(w->key + at, name, nl + 1);
	*klen = at + nl;
	return 0;
}

/* ---- temporaries left by killed puts (uploads, abort_upload) ---- */

/* Whether name is a temporary as tmp_create makes them; *base gets the last part of its key ("" when the name
 * does not carry it: a long one, or a temporary of a dre before the key was in the name). */
static bool tmp_name_parse(const char *name, const char **base)
{
	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
		return false;
	const char *p = name + strlen(TMP_PREFIX);
	const char *digits = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == digits || *p++ != '.')
		return false;
	for (int i = 0; i < TMP_HEX; i++, p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	if (*p == '\0') {
		*base = p;
		return true;
	}
	if (*p++ != '.' || *p == '.' || *p == '\0')
		return false;
	*base = p;
	for (; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* Reports temporary name (found in directory d, whose key prefix is w->key[0..klen)) to w->upload_fn: the key it
 * was for (its directory's prefix when the name does not say), its path as the ID, its mtime as initiated. */
static int walk_tmp(struct walk *w, DIR *d, const char *name, size_t klen)
{
	const char *base;
	struct stat sb;
	if (!tmp_name_parse(name, &base))
		return 0; /* some other hidden file: not ours to remove */
	if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno_missing())
			return 0; /* its put finished or gave up meanwhile */
		w->key[klen] = '\0';
		return err_sys("cannot list temporary files: cannot stat %s/%s%s", w->l->root, w->key, name);
	}
	if (!S_ISREG(sb.st_mode))
		return 0;
	char initiated[32];
	struct tm tm;
	time_t mtime = sb.st_mtime;
	if (gmtime_r(&mtime, &tm) == NULL || strftime(initiated, sizeof initiated, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return 0; /* a time prune could not read anyway */
	size_t klen_id = 0;
	TRY(walk_key_set(w, klen, name, &klen_id));
	char *id = strdup(w->key);
	if (id == NULL)
		return err_set(DRE_ENOMEM, "listing temporary files: out of memory");
	size_t klen_key = klen;
	int rc = walk_key_set(w, klen, base, &klen_key);
	if (rc == 0)
		rc = w->upload_fn(w->arg, w->key, id, initiated);
	free(id);
	return rc < 0 ? rc : 0;
}

/* Lists directory fd (consumed), whose key prefix is w->key[0..klen) ("" or ending with "/"). */
static int walk_dir(struct walk *w, int fd, size_t klen, int depth)
{
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		int saved = errno;
		close(fd);
		errno = saved;
		w->key[klen] = '\0';
		return err_sys("cannot list %s (%s/%s)", w->prefix, w->l->root, w->key);
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (e == NULL) {
			if (errno != 0) {
				w->key[klen] = '\0';
				rc = err_sys("cannot list %s (%s/%s)", w->prefix, w->l->root, w->key);
			}
			break;
		}
		if (e->d_name[0] == '.') {
			if (w->upload_fn != NULL && (rc = walk_tmp(w, d, e->d_name, klen)) < 0)
				break;
			continue; /* ".", ".." and temporaries */
		}
		size_t nlen = 0;
		rc = walk_key_set(w, klen, e->d_name, &nlen);
		if (rc < 0)
			break;
		size_t cmp = nlen < w->plen ? nlen : w->plen;
		if (memcmp(w->key, w->prefix, cmp) != 0)
			continue; /* neither a match nor a directory that can hold one */
		bool is_dir = e->d_type == DT_DIR;
		bool is_reg = e->d_type == DT_REG;
		struct stat sb;
		if (is_reg || !is_dir) {
			if (fstatat(dirfd(d), e->d_name, &sb, 0) < 0) {
				if (errno_missing())
					continue; /* deleted meanwhile, or a dangling symlink */
				rc = err_sys("cannot list %s: cannot stat %s/%s", w->prefix, w->l->root, w->key);
				break;
			}
			is_dir = S_ISDIR(sb.st_mode);
			is_reg = S_ISREG(sb.st_mode);
		}
		if (is_reg) {
			if (nlen < w->plen || w->fn == NULL)
				continue; /* shorter than the prefix, or looking for temporaries only */
			rc = w->fn(w->arg, w->key, (uint64_t)sb.st_size);
			if (rc < 0)
				break;
			rc = 0;
		} else if (is_dir) {
			if (depth >= LIST_MAX_DEPTH) {
				rc = err_set(DRE_EIO, "cannot list %s: directories under %s nest too deep (a symlink loop?)",
					     w->prefix, *w->l->root ? w->l->root : "/");
				break;
			}
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0) {
				if (errno_missing())
					continue;
				rc = err_sys("cannot list %s (%s/%s)", w->prefix, w->l->root, w->key);
				break;
			}
			w->key[nlen] = '/';
			w->key[nlen + 1] = '\0';
			rc = walk_dir(w, sub, nlen + 1, depth + 1);
			if (rc < 0)
				break;
		}
	}
	closedir(d);
	return rc;
}

static int local_list(store *st, const char *prefix, store_list_fn fn, void *arg)
{
	struct local *l = local_of(st);
	TRY(store_key_check(prefix, true));

	struct walk w = {.l = l, .prefix = prefix, .plen = strlen(prefix), .fn = fn, .arg = arg};
	size_t start = dir_len(prefix); /* the directory named by the prefix up to its last "/" */
	char *dir = start ? path_join(l, prefix, start) : strdup(*l->root ? l->root : "/");
	w.cap = start + 256;
	w.key = malloc(w.cap);
	if (dir == NULL || w.key == NULL) {
		free(dir);
		free(w.key);
		return err_set(DRE_ENOMEM, "listing %s: out of memory", prefix);
	}
	int rc = 0;
	int fd = fault_fails(STORE_FAULT_LIST) ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (!errno_missing())
			rc = err_sys("cannot list %s (%s)", prefix, dir);
	} else {
		memcpy(w.key, prefix, start);
		if (start)
			w.key[start++] = '/';
		w.key[start] = '\0';
		rc = walk_dir(&w, fd, start, 0);
	}
	free(dir);
	free(w.key);
	return rc;
}

/* Every temporary under the root, as unfinished uploads (store.h). */
static int local_uploads(store *st, store_upload_fn fn, void *arg)
{
	struct local *l = local_of(st);
	const char *root = *l->root ? l->root : "/";
	struct walk w = {.l = l, .prefix = "", .upload_fn = fn, .arg = arg, .cap = 256};
	w.key = malloc(w.cap);
	if (w.key == NULL)
		return err_set(DRE_ENOMEM, "listing temporary files in %s: out of memory", root);
	w.key[0] = '\0';
	int rc = 0;
	int fd = fault_fails(STORE_FAULT_LIST) ? -1 : open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (!errno_missing())
			rc = err_sys("cannot list temporary files in %s", root);
	} else {
		rc = walk_dir(&w, fd, 0, 0);
	}
	free(w.key);
	return rc;
}

/* Removes the temporary upload_id ("packs/3f/.tmp.…", as uploads gave it) of key; one already gone is not an
 * error. Anything but a temporary's name under the root is refused, so this never removes an object. */
static int local_abort_upload(store *st, const char *key, const char *upload_id)
{
	struct local *l = local_of(st);
	const char *slash = upload_id ? strrchr(upload_id, '/') : NULL;
	const char *name = slash ? slash + 1 : upload_id, *base;
	size_t dlen = slash ? (size_t)(slash - upload_id) : 0;
	bool ok = upload_id != NULL && tmp_name_parse(name, &base);
	if (ok && slash != NULL) {
		char *dir = strndup(upload_id, dlen);
		if (dir == NULL)
			return err_set(DRE_ENOMEM, "removing %s: out of memory", upload_id);
		ok = store_key_check(dir, false) == 0; /* no "..", no leading "/": under the root */
		free(dir);
	}
	/* the key uploads reported with it: the directory's prefix, then the last part the name carries */
	size_t klen = slash ? dlen + 1 : 0;
	if (ok && key != NULL)
		ok = strncmp(key, upload_id, klen) == 0 && strcmp(key + klen, base) == 0;
	if (!ok)
		return err_set(DRE_EINVAL, "cannot remove %s%s%s: not a temporary file of a put in %s",
			       upload_id ? upload_id : "(none)", key ? " for object " : "", key ? key : "",
			       *l->root ? l->root : "/");
	char *path = path_join(l, upload_id, strlen(upload_id));
	if (path == NULL)
		return err_set(DRE_ENOMEM, "removing %s: out of memory", upload_id);
	int rc = 0;
	if ((fault_fails(STORE_FAULT_DELETE) || unlink(path) < 0) && !errno_missing()) {
		rc = err_sys("cannot remove temporary file %s", path);
	} else {
		path[dir_len(path)] = '\0';
		if (fsync_dir(path) < 0 && !errno_missing())
			rc = err_sys("cannot remove temporary file %s: cannot sync directory %s", upload_id, path);
	}
	free(path);
	return rc;
}

/* ---- del, close, open ---- */

static int local_del(store *st, const char *key)
{
	struct local *l = local_of(st);
	char *path;
	int rc = 0;

	TRY(path_for(l, key, &path));
	if ((fault_fails(STORE_FAULT_DELETE) || unlink(path) < 0) && !errno_missing()) {
		rc = err_sys("cannot delete object %s (%s)", key, path);
	} else {
		/* sync even when it was already gone: an earlier delete may have stopped before its sync */
		path[dir_len(path)] = '\0';
		if (fsync_dir(path) < 0 && !errno_missing())
			rc = err_sys("cannot delete object %s: cannot sync directory %s", key, path);
	}
	free(path);
	return rc;
}

static void local_close(store *st)
{
	struct local *l = local_of(st);
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
		free(l->dirs[i]);
	pthread_mutex_destroy(&l->lock);
	free(l->root);
	free(l->base.url);
	free(l);
}

static const struct store_driver local_driver = {
	.name = "local",
	.put = local_put,
	.get = local_get,
	.stat = local_stat,
	.list = local_list,
	.del = local_del,
	.uploads = local_uploads,
	.abort_upload = local_abort_upload,
	.close = local_close,
};

/* The modes of new files and directories: private, or the config object's when there is one (top of this
 * file). A config that cannot be stat'ed leaves them private; reading it will report the problem. */
static void modes_from_config(struct local *l)
{
	l->file_mode = 0600;
	l->dir_mode = 0700;
	char *cfg = path_join(l, "config", strlen("config"));
	struct stat sb;
	if (cfg != NULL && stat(cfg, &sb) == 0 && S_ISREG(sb.st_mode)) {
		mode_t shared = sb.st_mode & 0066; /* group and others: read and write */
		l->file_mode |= shared;
		l->dir_mode |= shared | (shared & 0044) >> 2; /* x wherever r */
	}
	free(cfg);
}

int store_local_open(const char *path, store **out)
{
	if (path == NULL || *path == '\0')
		return err_set(DRE_EINVAL, "empty repository path");
	struct local *l = calloc(1, sizeof *l);
	if (l == NULL)
		return err_set(DRE_ENOMEM, "repository %s: out of memory", path);
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	l->root = strndup(path, n);
	l->base.url = strdup(path);
	if (l->root == NULL || l->base.url == NULL) {
		free(l->root);
		free(l->base.url);
		free(l);
		return err_set(DRE_ENOMEM, "repository %s: out of memory", path);
	}
	if (pthread_mutex_init(&l->lock, NULL) != 0) {
		free(l->root);
		free(l->base.url);
		free(l);
		return err_set(DRE_ENOMEM, "repository %s: cannot create a mutex", path);
	}
	modes_from_config(l);
	l->base.drv = &local_driver;
	*out = &l->base;
	return 0;
}
