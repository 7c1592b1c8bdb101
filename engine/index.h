/*
 * index.h — where each chunk lives: chunk ID → pack, offset, lengths, flags.
 *
 * In memory: an open-addressing hash table keyed by the chunk ID (an HMAC output, so its first bytes are
 * already uniformly distributed) plus a table of pack IDs that entries refer to by number. Not thread-safe:
 * the push pipeline serialises calls with its own mutex; restore only reads after loading.
 *
 * In the store: index objects ("index/<hex>", envelope type 'I') written by each push after its packs and
 * before its snapshot (format-spec.md §Index). Loading tolerates a damaged index object: it is reported through
 * the warning callback and skipped, so snapshots that do not need it still restore.
 */
#ifndef DRE_INDEX_H
#define DRE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/bytes.h"
#include "engine/pack.h"
#include "engine/repo.h"

#define INDEX_PACK_PENDING UINT32_MAX /* entry reserved by a push whose pack is not written yet */

typedef struct index_entry {
	pack_entry loc; /* chunk ID and where the blob lies in its pack */
	uint32_t pack;  /* number in the pack table, or INDEX_PACK_PENDING */
} index_entry;

typedef struct chunk_index chunk_index;

int index_new(chunk_index **out);
void index_free(chunk_index *idx);

size_t index_count(const chunk_index *idx);
size_t index_pack_count(const chunk_index *idx);
const uint8_t *index_pack_id(const chunk_index *idx, uint32_t pack_no);

/* Number of a pack ID in the pack table, adding it when new. */
int index_pack_intern(chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN], uint32_t *pack_no);

/* The entry of a chunk, or NULL. The pointer is valid until the next insert. */
const index_entry *index_find(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN]);

/* Adds an entry; a chunk already present keeps its first location (1 returned when added, 0 when present). */
int index_insert(chunk_index *idx, const index_entry *e);

/* Push: 1 when the chunk is unknown (it is now reserved as pending and the caller must store it),
 * 0 when it is known or already reserved by another worker. */
int index_reserve(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN]);

/* Push: a reserved chunk's pack has been written; its entry gets the location. */
int index_commit(chunk_index *idx, uint32_t pack_no, const pack_entry *e);

/* Calls fn for every entry (check). */
int index_each(const chunk_index *idx, int (*fn)(void *arg, const index_entry *e), void *arg);

/* Index objects. An index_builder collects the packs a push wrote and encodes them. */
typedef struct index_builder {
	buf data;     /* encoded pack groups, without the leading count */
	uint32_t npacks;
	size_t nentries;
} index_builder;

int index_builder_add_pack(index_builder *b, const uint8_t pack_id[CRYPTO_ID_LEN], const pack_entry *e, size_t n);
/* Writes the collected packs as one index object (nothing when empty) and clears the builder. */
int index_builder_flush(index_builder *b, repo *r);
void index_builder_free(index_builder *b);

typedef void (*index_warn_fn)(void *arg, const char *msg);

/* Reads every index object in the store into idx; damaged ones are reported via warn and skipped.
 * *objects (when not NULL) counts the index objects found, damaged ones included. */
int index_load(repo *r, chunk_index *idx, index_warn_fn warn, void *warn_arg, size_t *objects);

#endif
