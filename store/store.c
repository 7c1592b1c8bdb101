#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "store/err.h"

int store_open(const char *url, store **out)
{
	if (url == NULL || *url == '\0')
		return err_set(DRE_EINVAL, "empty repository location");
	if (strncmp(url, "file://", 7) == 0)
		return store_local_open(url + 7, out);
	if (strstr(url, "://") != NULL)
		return err_set(DRE_EUNSUPP, "repository %s: unsupported URL scheme (this build knows local paths and file://)",
			       url);
	return store_local_open(url, out);
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

int store_load(store *st, const char *key, size_t max, uint8_t **buf, size_t *len)
{
	uint64_t size;
	TRY(store_stat(st, key, &size));
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
