/*
 * index.h — where each chunk lives: chunk ID → pack, offset, lengths, flags.
 *
 * In memory an entry takes 32 bytes: the first INDEX_KEY_LEN bytes of the chunk ID, the pack number, the
 * offset, the stored length, and the raw length with the flags in its top bits. Entries sit in one array
 * sorted by ID with a directory of bucket starts (1–2 bytes per entry), plus a small hash table of entries
 * added since the last merge, merged into the array when it reaches 1/16 of it: about 36 bytes per chunk in
 * all, where a hash table of whole entries would take 80 to 150. A pack table holds the pack IDs that entries
 * refer to by number.
 *
 * Keying by 128 bits of the 256-bit ID: two different chunks of one repository share a key with probability
 * about n²/2¹²⁹ (10⁻²¹ for a billion chunks). If it ever happened, a push would take the new chunk for the
 * old one, and the restore would fail loudly rather than return wrong data: each blob's AES-GCM tag
 * authenticates its full chunk ID, which index_find passes through from the caller.
 *
 * Not thread-safe: the push pipeline serialises calls with its own mutex; restore only reads after loading.
 *
 * In the store: index objects ("index/<hex>", envelope type 'I') written by each push after its packs and
 * before its snapshot (format-spec.md §Index). Loading tolerates a damaged index object: it is reported through
 * the warning callback and skipped, so snapshots that do not need it still restore.
 *
 * On this machine: a cache of the loaded index (index_load with a cache path), so a push does not fetch and
 * decrypt every index object of the repository again. It records which index objects it covers and is
 * authenticated with a key derived from the repository's keys; it is used only when it belongs to this
 * repository, its MAC and structure check out and every index object it covers is still listed in the store.
 * Otherwise it is rebuilt from the index objects.
 */
#ifndef DRE_INDEX_H
#define DRE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/bytes.h"
#include "engine/repo/pack.h"
#include "engine/repo/repo.h"

#define INDEX_PACK_PENDING UINT32_MAX /* entry reserved by a push whose pack is not written yet */
#define INDEX_KEY_LEN 16 /* bytes of the chunk ID that key the in-memory index */

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

/* Whether the index holds the chunk; when it does, *out is its entry, with out->loc.id = id. */
bool index_find(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN], index_entry *out);

/* Adds an entry; a chunk already present keeps its first location (1 returned when added, 0 when present). */
int index_insert(chunk_index *idx, const index_entry *e);

/* Push: 1 when the chunk is unknown (it is now reserved as pending and the caller must store it),
 * 0 when it is known or already reserved by another worker. */
int index_reserve(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN]);

/* Push, for a chunk a parent snapshot names (a file reused without reading it): 1 when the index holds it outside
 * the packs a prune is deleting, or this push reserved it, and its pack then counts as relied on like
 * index_reserve's; 0 when not (nothing is reserved: the caller reads the file instead). */
int index_use(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN]);

/* Push: a reserved chunk's pack has been written; its entry gets the location. */
int index_commit(chunk_index *idx, uint32_t pack_no, const pack_entry *e);

/*
 * The deletion protocol's writer side (format-spec.md §16.3). A push excludes the packs that prune plans name
 * before it loads: their entries are then not found (index_find, index_reserve), so what lives only there is
 * stored again, and a location elsewhere (a repacked copy) replaces theirs. With tracking on, the index
 * remembers each pack the push relied on: those index_reserve found a chunk in, and those index_commit put
 * chunks in.
 */
int index_exclude_packs(chunk_index *idx, const uint8_t (*ids)[CRYPTO_ID_LEN], size_t n);
/* Prune: the same preference for locations outside these packs, but entries only there are still found. */
int index_avoid_packs(chunk_index *idx, const uint8_t (*ids)[CRYPTO_ID_LEN], size_t n);
void index_track_use(chunk_index *idx);
bool index_pack_used(const chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN]);

/*
 * Prune. With mapping on (before index_load, without a cache), the load records each index object it reads and
 * the packs it names (with how many entries), and a damaged index object fails the load instead of being
 * skipped: a prune must not take a pack whose index object it could not read for one that no index names.
 * Sealing merges every entry into the sorted array; its positions then stay put (entries added later stay in the
 * small table beside it, where index_find sees them and index_locate does not), and index_locate gives a
 * chunk's position and entry in the array whatever plans exclude.
 */
typedef struct index_object_pack {
	uint32_t object; /* number in load order */
	uint32_t pack;   /* number in the pack table */
	uint32_t entries;
} index_object_pack;
void index_map_objects(chunk_index *idx);
size_t index_mapped_objects(const chunk_index *idx, const uint8_t (**ids)[CRYPTO_ID_LEN],
			    const index_object_pack **pairs, size_t *npairs);
int index_seal(chunk_index *idx);
/* The number of a pack ID already in the pack table (false when it is not). */
bool index_pack_lookup(const chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN], uint32_t *pack_no);
/* Reads one index object into idx (an error when it is damaged or gone). */
int index_object_read(repo *r, chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN]);
bool index_locate(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN], size_t *pos, index_entry *e);
/* The entry at a position of a sealed index (its ID holds the INDEX_KEY_LEN key bytes, then zeros). */
void index_entry_at(const chunk_index *idx, size_t pos, index_entry *e);

/* Calls fn for every entry (check); e->loc.id holds the INDEX_KEY_LEN bytes of the key, then zeros. */
int index_each(const chunk_index *idx, int (*fn)(void *arg, const index_entry *e), void *arg);

/* Index objects. An index_builder collects the packs a push wrote and encodes them. */
typedef struct index_builder {
	buf data;     /* encoded pack groups, without the leading count */
	uint32_t npacks;
	size_t nentries;
} index_builder;

int index_builder_add_pack(index_builder *b, const uint8_t pack_id[CRYPTO_ID_LEN], const pack_entry *e, size_t n);
/* Writes the collected packs as one index object (nothing when empty) and clears the builder; the object is
 * noted in idx as covered (its entries were committed there), for the cache. */
int index_builder_flush(index_builder *b, repo *r, chunk_index *idx);
void index_builder_free(index_builder *b);

typedef void (*index_warn_fn)(void *arg, const char *msg);

/* Reads every index object in the store into idx; damaged ones are reported via warn and skipped. Packs that
 * prune plans name are avoided (index_avoid_packs) unless the caller excluded packs itself, and then the cache
 * is not used (format-spec.md §16.3).
 * *objects (when not NULL) counts the index objects found, damaged ones included.
 * With cache_path (NULL: none) it starts from the cache there when that is valid, reads only the index objects
 * the cache does not cover, and rewrites the cache when it read any. A cache that cannot be read or written
 * is reported via warn, never an error: the store is the authority. */
int index_load(repo *r, chunk_index *idx, const char *cache_path, index_warn_fn warn, void *warn_arg,
	       size_t *objects);

/* The cache file of r's index, <cache_dir>/<repository ID>/index, in out; NULL when r has no cache dir. */
const char *index_cache_path(const repo *r, char *out, size_t len);

/* Writes the cache of idx (every committed entry, and the index objects it covers) to cache_path. */
int index_cache_save(repo *r, chunk_index *idx, const char *cache_path);

/* Bytes of memory idx holds (bench, tests: the per-chunk cost). */
size_t index_memory(const chunk_index *idx);

#endif
