#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"
#include "store/fault.h"

void (*store_test_point)(const char *name);

static bool key_char_ok(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '/' || c == '.' || c == '_' || c == '-';
}

/*
 * A key is non-empty, uses only [0-9a-z/._-], and each "/"-separated part is non-empty and does not start
 * with "." (which excludes "..", leading "/", "//", a trailing "/" and names that list would take for
 * temporaries). With allow_prefix, the string may be empty or end with "/" (a list prefix).
 */
int store_key_check(const char *key, bool allow_prefix)
{
	const char *what = allow_prefix ? "prefix" : "key";
	if (key == NULL)
		return err_set(DRE_EINVAL, "invalid object %s: none given", what);
	if (*key == '\0') {
		if (allow_prefix)
			return 0;
		return err_set(DRE_EINVAL, "invalid object key \"\": empty");
	}
	bool part_start = true;
	for (const char *p = key; *p; p++) {
		if (!key_char_ok(*p))
			return err_set(DRE_EINVAL, "invalid object %s \"%s\": only 0-9 a-z / . _ - are allowed", what,
				       key);
		if (part_start && *p == '/')
			return err_set(DRE_EINVAL, "invalid object %s \"%s\": empty path component", what, key);
		if (part_start && *p == '.')
			return err_set(DRE_EINVAL, "invalid object %s \"%s\": a path component starts with \".\"",
				       what, key);
		part_start = *p == '/';
	}
	if (part_start && !allow_prefix)
		return err_set(DRE_EINVAL, "invalid object key \"%s\": ends with \"/\"", key);
	return 0;
}

static int open_driver(const char *url, const store_opts *opts, store **out)
{
	static const store_opts none;
	if (url == NULL || *url == '\0')
		return err_set(DRE_EINVAL, "empty repository location");
	if (strncmp(url, "file://", 7) == 0)
		return store_local_open(url + 7, out);
	if (strncmp(url, "s3://", 5) == 0)
		return store_s3_open(url, opts ? opts : &none, out);
	if (strstr(url, "://") != NULL)
		return err_set(DRE_EUNSUPP,
			       "repository %s: unsupported URL scheme (this build knows local paths, file:// and s3://)", url);
	return store_local_open(url, out);
}

int store_open(const char *url, const store_opts *opts, store **out)
{
	TRY(store_faults_load());
	if (store_faults_active == NULL)
		return open_driver(url, opts, out);
	store *inner;
	TRY(open_driver(url, opts, &inner));
	return store_fault_wrap(inner, out);
}

int store_in_flight(const store *st)
{
	return st->in_flight;
}

int store_prepare(store *st)
{
	return st->drv->prepare ? st->drv->prepare(st) : 0;
}

int store_uploads(store *st, store_upload_fn fn, void *arg)
{
	return st->drv->uploads ? st->drv->uploads(st, fn, arg) : 0;
}

int store_abort_upload(store *st, const char *key, const char *upload_id)
{
	if (st->drv->abort_upload == NULL)
		return err_set(DRE_EINVAL, "%s: this store has no multipart uploads to abort", st->url);
	return st->drv->abort_upload(st, key, upload_id);
}

void store_close(store *st)
{
	if (st != NULL)
		st->drv->close(st);
}

int store_put(store *st, const char *key, const void *buf, size_t len, unsigned flags)
{
	return st->drv->put(st, key, buf, len, flags);
}

int store_get(store *st, const char *key, uint64_t off, size_t len, void *buf)
{
	return st->drv->get(st, key, off, len, buf);
}

int store_stat(store *st, const char *key, uint64_t *size)
{
	return st->drv->stat(st, key, size);
}

int store_list(store *st, const char *prefix, store_list_fn fn, void *arg)
{
	return st->drv->list(st, prefix, fn, arg);
}

int store_del(store *st, const char *key)
{
	return st->drv->del(st, key);
}

void *store_buffer_alloc(size_t len)
{
	size_t rounded = (len + STORE_DIRECT_ALIGN - 1) & ~(size_t)(STORE_DIRECT_ALIGN - 1);
	return aligned_alloc(STORE_DIRECT_ALIGN, rounded ? rounded : STORE_DIRECT_ALIGN);
}

int store_load(store *st, const char *key, size_t max, uint8_t **buf, size_t *len)
{
	uint64_t size;
	TRY(store_stat(st, key, &size));
	return store_load_sized(st, key, size, max, buf, len);
}

int store_load_sized(store *st, const char *key, uint64_t size, size_t max, uint8_t **buf, size_t *len)
{
	if (size > max)
		return err_set(DRE_ECORRUPT, "object %s is %llu bytes, more than the %zu this kind of object may have", key,
			       (unsigned long long)size, max);
	uint8_t *p = malloc(size ? size : 1);
	if (p == NULL)
		return err_set(DRE_ENOMEM, "object %s: cannot allocate %llu bytes", key, (unsigned long long)size);
	int rc = store_get(st, key, 0, size, p);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*buf = p;
	*len = size;
	return 0;
}
