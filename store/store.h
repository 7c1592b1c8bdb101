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
 *   prepare (optional) makes the location ready for a new repository: the S3 driver creates the bucket.
 *
 * The driver table is pgBackRest's StorageInterface shape: store_open() picks a driver from the URL and the
 * commands never know which one they talk to. A driver sets err.h messages that name the key and the cause.
 * Every operation may be called from several threads at once.
 *
 * Faults, for tests: with DRE_TEST_STORE_FAULTS set, e.g. "seed=7,rate=0.05,kinds=eio,enospc,short-write,
 * short-read,fsync,latency-ms=20,stats=FILE", store_open wraps the driver in one (store/fault.c) that gives
 * that share of store operations a fault of one of the kinds (default all; rate is required, seed defaults to
 * random; ops=put,get,stat,list,del and match=PREFIX narrow it to those operations and to keys, or list
 * prefixes, starting with PREFIX). The local driver then fails the system call where that fault happens on a
 * real disk (creating the temporary file, a pwrite, the fsync of the file or of its directory, open, pread,
 * stat, opening a directory to list it, unlink) with EIO or ENOSPC, so the error is the one a real failure
 * gives, message included; short-write and short-read make a pwrite or pread move fewer bytes, which the
 * driver must finish. latency-ms delays that share of operations on any driver; S3's faults come from
 * tests/s3/faultproxy.py instead. stats appends a JSON line of operations and faults to FILE as each store
 * closes. A bad spec fails store_open (DRE_EINVAL); unset, nothing is wrapped and the local driver's check is
 * one load and a branch.
 */
#ifndef DRE_STORE_H
#define DRE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* put flags */
#define STORE_PUT_CREATE_ONCE 1u /* fail with DRE_EEXIST when the key exists (snapshots, keys, config) */

/* A put from a buffer aligned to this many bytes (store_buffer_alloc) may skip the page cache: the local driver
 * writes large objects with O_DIRECT. Any buffer is correct; an aligned one is cheaper. */
#define STORE_DIRECT_ALIGN 4096u

/* malloc for large put buffers: aligned to STORE_DIRECT_ALIGN, released with free(); NULL when out of memory. */
void *store_buffer_alloc(size_t len);

/* Called once per key by list; a negative return stops the listing and is returned by store_list. */
typedef int (*store_list_fn)(void *arg, const char *key, uint64_t size);

/* Called once per multipart upload that was begun and never completed or aborted (a process killed in the
 * middle of a large put): the key it was for, the server's ID of the upload, and when it began, as the server
 * says ("2026-12-02T03:15:00Z"). The local driver reports the temporary files of puts in the same way: the key
 * its name carries (when it carries none, the prefix of its directory, "" at the top), its path under the root
 * as the ID ("packs/3f/.tmp.<pid>.<random>.3f9a…") and its modification time (UTC) as when it began. Either may
 * still belong to a running put: remove only ones older than any put can last (prune: the lock stale age). */
typedef int (*store_upload_fn)(void *arg, const char *key, const char *upload_id, const char *initiated);

struct store_driver {
	const char *name;
	int (*put)(store *st, const char *key, const void *buf, size_t len, unsigned flags);
	int (*get)(store *st, const char *key, uint64_t off, size_t len, void *buf);
	int (*stat)(store *st, const char *key, uint64_t *size);
	int (*list)(store *st, const char *prefix, store_list_fn fn, void *arg);
	int (*del)(store *st, const char *key);
	int (*prepare)(store *st); /* NULL when there is nothing to prepare */
	int (*uploads)(store *st, store_upload_fn fn, void *arg); /* NULL when puts are never in parts */
	int (*abort_upload)(store *st, const char *key, const char *upload_id); /* with uploads */
	void (*close)(store *st);
};

struct store {
	const struct store_driver *drv;
	char *url; /* as given, for messages */
	/* Requests worth having in flight at once: 0 when the CPUs are the limit (a local disk), more when each
	 * request waits on the network (S3), so that pushes and restores keep that many going even on 2 cores. */
	int in_flight;
};

/*
 * How to reach an S3-compatible store. Every field may be left 0/NULL: the S3 driver then takes it from the
 * environment as AWS's own tools do (store/s3.c lists the variables), then from *fallback (a config file),
 * else a default. Local stores ignore it.
 */
typedef struct store_opts store_opts;
struct store_opts {
	const char *s3_endpoint;       /* "https://host[:port]"; default AWS's endpoint for the region */
	const char *s3_region;         /* default us-east-1 */
	const char *s3_ca_file;        /* PEM bundle to verify the server with; default the system's */
	const char *s3_storage_class;  /* x-amz-storage-class of new objects (STANDARD_IA, ...) */
	const char *s3_sse;            /* server-side encryption: "AES256" (SSE-S3) or "aws:kms" (SSE-KMS) */
	const char *s3_sse_kms_key_id; /* with aws:kms: the key ID; default the bucket's */
	enum { STORE_S3_AUTO = 0, STORE_S3_PATH_STYLE, STORE_S3_VIRTUAL_HOSTED } s3_addressing;
	/* AUTO: virtual-hosted on AWS's endpoint, path-style on any other (Ceph, MinIO) */
	const char *s3_access_key_id, *s3_secret_access_key, *s3_session_token; /* with the environment's */
	const char *s3_profile, *s3_credentials_file; /* AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE */
	const store_opts *fallback; /* settings below the environment's; its own fallback is not followed */
};

/*
 * Opens a store from a URL: a plain path or file://PATH is a local directory, s3://BUCKET[/PREFIX] an
 * S3-compatible bucket. opts may be NULL. The location need not exist yet (init prepares it); other commands
 * find "config" missing and say the repository is not initialized.
 */
int store_open(const char *url, const store_opts *opts, store **out);
void store_close(store *st);

/* st->in_flight. */
int store_in_flight(const store *st);

/* Makes the location ready for a new repository (a no-op for drivers without prepare). */
int store_prepare(store *st);

/* Lists unfinished multipart uploads, or a local store's temporary files (none for drivers with neither). */
int store_uploads(store *st, store_upload_fn fn, void *arg);
/* Aborts one of them (prune: the parts take space until then); one already gone is not an error. An ID that
 * is not one of this store's (a local one outside a temporary's name, "..") is refused with DRE_EINVAL. */
int store_abort_upload(store *st, const char *key, const char *upload_id);

/* Checks a key (or with allow_prefix, a list prefix) against the rules above; DRE_EINVAL names the problem. */
int store_key_check(const char *key, bool allow_prefix);

int store_put(store *st, const char *key, const void *buf, size_t len, unsigned flags);
int store_get(store *st, const char *key, uint64_t off, size_t len, void *buf);
int store_stat(store *st, const char *key, uint64_t *size);
int store_list(store *st, const char *prefix, store_list_fn fn, void *arg);
int store_del(store *st, const char *key);

/* Reads a whole object into a malloc'd buffer; refuses objects larger than max (DRE_ECORRUPT) so a damaged
 * or hostile store cannot make dre allocate without bound. */
int store_load(store *st, const char *key, size_t max, uint8_t **buf, size_t *len);
/* The same for an object whose size a listing gave: one request (a GET) instead of two. */
int store_load_sized(store *st, const char *key, uint64_t size, size_t max, uint8_t **buf, size_t *len);

/* For tests (engine/testhook.h): when set, the local driver calls it with "store-put-synced" once an object's
 * temporary file is written and synced, before it is moved into place, so a test can kill a put there. */
extern void (*store_test_point)(const char *name);

/* Local directory driver (store/local.c). */
int store_local_open(const char *path, store **out);

/* S3 driver (store/s3.c): url is "s3://BUCKET[/PREFIX]". */
int store_s3_open(const char *url, const store_opts *opts, store **out);

#endif
