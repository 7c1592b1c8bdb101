/*
 * pack.h — pack objects: many compressed, encrypted chunks ("blobs") in one object, with an encrypted header
 * listing them (format-spec.md §Packs).
 *
 *   blob 0 … blob n-1 | encrypted header (entries + padding) | u32 header length | "DRP1"
 *
 * Each blob is AES-256-GCM under the pack's subkey with nonce = its offset, AAD = chunk ID, flags, raw length.
 * The header is the only place that says where a blob starts, and it is encrypted; the whole object is padded
 * (Padmé) so its size says little about the chunk sizes inside.
 *
 * A pack_writer belongs to one thread and owns that thread's ZSTD_CCtx and crypto context: add() compresses
 * straight into the pack buffer and encrypts in place (no per-chunk allocation or extra copy).
 */
#ifndef DRE_PACK_H
#define DRE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "engine/repo/bytes.h"
#include "engine/repo/crypto.h"
#include "engine/repo/repo.h"

#define BLOB_ZSTD 0x01u /* stored bytes are a zstd frame; otherwise the chunk as is */
#define BLOB_LIST 0x02u /* a list blob (list.h), not a chunk of data: format 3 */
#define BLOB_FLAGS (BLOB_ZSTD | BLOB_LIST)
#define BLOB_LIST_MAX_LEN (65536u + 16384u) /* the largest list blob: list.h LIST_BLOB_MAX */
#define PACK_ENTRY_LEN 45 /* id 32, offset 4, stored length 4, raw length 4, flags 1 */
#define PACK_TRAILER_LEN 8
#define PACK_MAGIC "DRP1"

typedef struct pack_entry {
	uint8_t id[CRYPTO_ID_LEN];
	uint32_t offset;     /* of the blob in the pack */
	uint32_t stored_len; /* ciphertext bytes, without the 16-byte tag */
	uint32_t raw_len;    /* plaintext chunk bytes */
	uint8_t flags;
} pack_entry;

/*
 * The early 'incompressible' decision: a chunk that zstd shrinks by less than 1/PACK_GAIN_MIN makes the next
 * PACK_SKIP_RUN chunks go in as they are, without trying. Already-compressed input (pg_dump -Fc, archives,
 * encrypted files) then costs no compression time, and data that turns compressible again loses at most
 * PACK_SKIP_RUN chunks of savings. Cut points and chunk IDs do not depend on it, so dedup is unaffected.
 */
#define PACK_GAIN_MIN 32
#define PACK_SKIP_RUN 8

typedef struct pack_writer {
	const repo *r;
	ZSTD_CCtx *zc;
	crypto_ctx *cc;
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t subkey[CRYPTO_KEY_LEN];
	uint8_t *data;
	size_t len, cap;
	pack_entry *entries;
	size_t n, entries_cap;
	uint64_t raw_bytes; /* plaintext bytes in this pack */
	size_t target;      /* the pack is full at this many bytes */
	size_t blob_max;    /* the largest raw blob it takes */
	unsigned skip_zstd; /* chunks still to store without trying zstd */
	buf header;
} pack_writer;

int pack_writer_init(pack_writer *pw, const repo *r);
/* A writer of list blobs, whose packs are cut at target bytes instead of the repository's pack size: list
 * blobs are few, and their writer should not cost a whole pack buffer. */
int pack_writer_init_sized(pack_writer *pw, const repo *r, size_t target);
void pack_writer_free(pack_writer *pw);

/* Compresses (or stores raw when zstd does not shrink it, or after an incompressible chunk, see above),
 * encrypts and appends one chunk. The pack must not
 * be full (pack_writer_full) before the call; len ≤ the repository's max chunk size. */
int pack_writer_add(pack_writer *pw, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *data, size_t len);
/* The same for a list blob (flag BLOB_LIST, len ≤ BLOB_LIST_MAX_LEN); the writer must have been made with
 * pack_writer_init_sized for them. */
int pack_writer_add_list(pack_writer *pw, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *data, size_t len);

/* The largest raw length a blob with these flags may have in r (readers refuse larger ones). */
static inline uint32_t pack_blob_max(const repo *r, uint8_t flags)
{
	return (flags & BLOB_LIST) ? BLOB_LIST_MAX_LEN : r->params.cdc_max;
}

/* The largest raw length of any blob in r: a buffer this large takes a chunk or a list blob. */
static inline uint32_t pack_blob_max_any(const repo *r)
{
	return r->params.cdc_max > BLOB_LIST_MAX_LEN ? r->params.cdc_max : BLOB_LIST_MAX_LEN;
}

static inline bool pack_writer_full(const pack_writer *pw)
{
	return pw->len >= pw->target;
}

static inline bool pack_writer_empty(const pack_writer *pw)
{
	return pw->n == 0;
}

/* Writes the header, pads, and puts the pack in the store. After success pw->id, pw->entries, pw->n describe
 * what was written (for the index) until pack_writer_reset(). Returns the object size in *size. */
int pack_writer_finish(pack_writer *pw, uint64_t *size);

/* pack_writer_finish in two steps, for a caller that hands the put to another thread (upload.h): seal writes
 * the header, padding and trailer after the blobs (the object is pw->data[0, *total)); put stores it. */
int pack_writer_seal(pack_writer *pw, size_t *total);
int pack_writer_put(pack_writer *pw, size_t total);

/* Starts a new pack (fresh random ID). */
int pack_writer_reset(pack_writer *pw);

/* The 45-byte location entry, the same in pack headers and index objects (format-spec.md §8, §9). A decode
 * past the end latches in->failed, like every rd_ read. */
void pack_entries_put(buf *b, const pack_entry *e, size_t n);
void pack_entry_get(rd *in, pack_entry *e);

/* Padmé: the padded length for an object of len bytes (format-spec.md §Padding). */
uint64_t pack_padme(uint64_t len);

/* Nonce of the blob at offset (and of the header: all ones). */
void pack_blob_nonce(uint32_t offset, uint8_t nonce[CRYPTO_NONCE_LEN]);

/*
 * Decrypts one blob in place (blob = stored_len + 16 bytes as read from the pack) and writes the chunk's
 * raw_len plaintext bytes to out. zd and cc are the calling thread's contexts. DRE_ECORRUPT on any mismatch;
 * the caller names the pack.
 */
int pack_blob_open(crypto_ctx *cc, ZSTD_DCtx *zd, const uint8_t subkey[CRYPTO_KEY_LEN], const pack_entry *e,
		   uint8_t *blob, uint8_t *out);

/* Reads and decrypts a whole pack's header (check --read-data). *entries is malloc'd. */
int pack_read_header(const repo *r, crypto_ctx *cc, const char *key, const uint8_t *pack, size_t len,
		     const uint8_t subkey[CRYPTO_KEY_LEN], pack_entry **entries, size_t *n);

#endif
