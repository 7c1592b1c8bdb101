/*
 * list.h — content lists: the long, ordered lists a snapshot refers to (its chunk IDs, its node records) stored
 * as trees of list blobs inside packs (format-spec.md §10.2).
 *
 * A list is a sequence of entries. The writer packs entries into level-0 blobs and cuts a blob after an entry
 * whose cut hash has LIST_CUT_BITS low zero bits (once the blob holds LIST_MIN_BYTES), or when it reaches
 * LIST_MAX_BYTES. Each finished blob gets a keyed ID (HMAC with the list key) and its reference (ID and the
 * number of entries below it) becomes an entry of the level above, which is cut by the same rule, and so on
 * up to one root. Because cut points depend on the entries near them, not on their position, a list that
 * differs from yesterday's in a few places shares all other blobs with it, and identical blobs are stored once.
 *
 * Memory: the writer holds one blob per level and the reader one decoded blob per level (at most
 * LIST_BLOB_MAX bytes each, and at most LIST_MAX_LEVELS levels), whatever the list's length.
 *
 * Where blobs go and come from is the caller's: the writer hands each finished blob to a sink (push puts it in
 * a pack and the index), the reader finds blobs through a chunk index and reads them from the store.
 */
#ifndef DRE_LIST_H
#define DRE_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "engine/repo/crypto.h"
#include "engine/repo/index.h"
#include "engine/repo/repo.h"

enum list_kind { LIST_CHUNKS = 1, LIST_NODES = 2 };

#define LIST_HDR_LEN 8          /* u8 kind, u8 level, u16 zero, u32 entries */
#define LIST_REF_LEN 40         /* an entry above level 0: blob ID, u64 entries below it */
#define LIST_MIN_BYTES 2048     /* no cut before a blob holds this much */
#define LIST_MAX_BYTES 65536    /* a cut at the first entry that reaches this */
#define LIST_CUT_BITS 7         /* past the minimum, one entry in 2^7 ends a blob */
#define LIST_ENTRY_MAX 16384    /* the largest entry (a node record) */
#define LIST_BLOB_MAX (LIST_MAX_BYTES + LIST_ENTRY_MAX) /* what a reader accepts */
#define LIST_MAX_LEVELS 8       /* 2048/40 = 51 refs at least per blob: 8 levels is beyond 2^40 entries */

/* What a snapshot stores for each list: the root blob, its level, and the number of level-0 entries. An empty
 * list has count 0, level 0 and an all-zero ID. */
typedef struct list_ref {
	uint8_t level;
	uint64_t count;
	uint8_t id[CRYPTO_ID_LEN];
} list_ref;

/* Stores one finished blob (its plaintext) under id; may find it already stored (dedup). */
typedef int (*list_sink_fn)(void *arg, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *blob, size_t len);

typedef struct list_level {
	uint8_t *data; /* LIST_BLOB_MAX bytes, allocated on first use */
	size_t len;
	uint32_t n;      /* entries in this blob */
	uint64_t below;  /* level-0 entries under this blob's entries */
	bool emitted;    /* a blob of this level was already finished: it is not the root */
} list_level;

typedef struct list_writer {
	const repo *r;
	crypto_ctx *cc;
	uint8_t kind;
	list_level lv[LIST_MAX_LEVELS];
	uint64_t count;
	list_sink_fn sink;
	void *arg;
} list_writer;

int list_writer_init(list_writer *w, const repo *r, uint8_t kind, list_sink_fn sink, void *arg);
/* Appends one level-0 entry: a chunk ID (LIST_CHUNKS) or an encoded node record (LIST_NODES, at most
 * LIST_ENTRY_MAX bytes; stored behind a u16 length, so the list needs to know nothing of its fields). */
int list_writer_add(list_writer *w, const uint8_t *entry, size_t len);
/* Cuts every level and returns the root. The writer is spent afterwards (free it). */
int list_writer_finish(list_writer *w, list_ref *root);
void list_writer_free(list_writer *w);

/* A list blob's ID: HMAC(list key, plaintext) (format-spec.md §3). */
int list_blob_id(const repo *r, crypto_ctx *cc, const uint8_t *blob, size_t len, uint8_t id[CRYPTO_ID_LEN]);

/* One thread's means of reading list blobs: a read buffer and decryption contexts. */
typedef struct list_io list_io;
int list_io_new(list_io **out);
void list_io_free(list_io *io);
/* Finds blob id through idx, reads it from its pack and authenticates it into plain (LIST_BLOB_MAX bytes).
 * DRE_ECORRUPT names the blob when it is missing from the index or the store, damaged, or not a list blob. */
int list_blob_read(repo *r, const chunk_index *idx, list_io *io, const uint8_t id[CRYPTO_ID_LEN], uint8_t *plain,
		   size_t *len);

/* Optional: called for each blob (the root first) before it is read; returning 1 skips it and everything
 * below it (check visits a subtree shared by many snapshots once), <0 stops the reader with that error. */
typedef int (*list_visit_fn)(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count);

typedef struct list_reader {
	repo *r;
	const chunk_index *idx;
	list_io *io;
	uint8_t kind;
	int top; /* level of the root; -1 for an empty list */
	struct {
		uint8_t *data;
		size_t len, off;
		uint32_t n, i;
		uint64_t count; /* what the parent's reference promised */
	} lv[LIST_MAX_LEVELS];
	uint64_t left; /* level-0 entries still to come */
	int depth;     /* the lowest level whose blob is current */
	bool pending_root;
	uint8_t root_id[CRYPTO_ID_LEN];
	list_visit_fn visit;
	void *visit_arg;
	const char *what;
} list_reader;

/* what (e.g. "snapshot 3fa1c2d4 chunk list") must outlive the reader. */
int list_reader_open(list_reader *lr, repo *r, const chunk_index *idx, uint8_t kind, const list_ref *root,
		     const char *what);
/* The next level-0 entry: 1 with *entry and *len pointing into the reader (valid until the next call), 0 at the
 * end (having checked that every count matched), <0 on a damaged or missing blob. */
int list_reader_next(list_reader *lr, const uint8_t **entry, size_t *len);
void list_reader_free(list_reader *lr);

#endif
