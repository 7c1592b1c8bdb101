/*
 * store.h — moves whole objects to and from a repository's storage. Knows nothing of chunks, packs or crypto.
 *
 * An object is an immutable byte string under a key such as "packs/3f/3f9a…" or "snapshots/…". Keys use only
 * [0-9a-z/._-], never start with "/" or ".", and "/" is just a character to the driver: there is no directory
 * semantics, no rename, no append, so every driver (local directory now, S3 later) offers the same contract:
 *
 *   put     whole object from memory, atomic: a reader sees all of it or nothing; durable when it returns.
 *   get     a byte range of an object (exactly that many bytes, or an error saying the object is shorter).
 *   stat    the size of an object.
 *   list    every key under a prefix, with sizes, in no particular order.
 *   del     remove an object (missing is not an error).
 *
 * The driver table is pgBackRest's StorageInterface shape: store_open() picks a driver from the URL and the
 * commands never know which one they talk to. A driver sets err.h messages that name the key and the cause.
 */
#ifndef DRE_STORE_H
#define DRE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* put flags */
#define STORE_PUT_CREATE_ONCE 1u /* fail with DRE_EEXIST when the key exists (snapshots, keys, config) */

/* Called once per key by list; a negative return stops the listing and is returned by store_list. */
typedef int (*store_list_fn)(void *arg, const char *key, uint64_t size);

struct store_driver {
	const char *name;
	int (*put)(store *st, const char *key, const void *buf, size_t len, unsigned flags);
	int (*get)(store *st, const char *key, uint64_t off, size_t len, void *buf);
	int (*stat)(store *st, const char *key, uint64_t *size);
	int (*list)(store *st, const char *prefix, store_list_fn fn, void *arg);
	int (*del)(store *st, const char *key);
	void (*close)(store *st);
};

struct store {
	const struct store_driver *drv;
	char *url; /* as given, for messages */
};

/*
 * Opens a store from a URL: a plain path or file://PATH is a local directory. The directory need not exist
 * yet (init creates it); other commands find "config" missing and say the repository is not initialized.
 */
int store_open(const char *url, store **out);
void store_close(store *st);

int store_put(store *st, const char *key, const void *buf, size_t len, unsigned flags);
int store_get(store *st, const char *key, uint64_t off, size_t len, void *buf);
int store_stat(store *st, const char *key, uint64_t *size);
int store_list(store *st, const char *prefix, store_list_fn fn, void *arg);
int store_del(store *st, const char *key);

/* Reads a whole object into a malloc'd buffer; refuses objects larger than max (DRE_ECORRUPT) so a damaged
 * or hostile store cannot make dre allocate without bound. */
int store_load(store *st, const char *key, size_t max, uint8_t **buf, size_t *len);

/* Local directory driver (store/local.c). */
int store_local_open(const char *path, store **out);

#endif
