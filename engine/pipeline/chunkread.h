/*
 * chunkread.h — reads data chunks of a repository one after another on the calling thread: index lookup →
 * ranged GET of the pack → AES-GCM open → zstd, into buffers the reader owns and reuses (no allocation per
 * chunk). For callers that consume chunks in order and want no pipeline of their own (copy).
 *
 * The caller queues the chunk IDs it will want next (up to CHUNKREAD_QUEUE of them) and takes the plaintexts in
 * the same order. Queued chunks that lie back to back in one pack, as the chunks of one push mostly do, are
 * fetched with one request of up to CHUNKREAD_READ_MAX bytes: on S3 a chunk per request would make the latency,
 * not the bandwidth, the limit.
 *
 * Memory: one read buffer (CHUNKREAD_READ_MAX plus one blob), one blob and one chunk, whatever the input.
 */
#ifndef DRE_CHUNKREAD_H
#define DRE_CHUNKREAD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/repo/index.h"
#include "engine/repo/repo.h"

#define CHUNKREAD_QUEUE 128
#define CHUNKREAD_READ_MAX (8u << 20)

typedef struct chunk_reader chunk_reader;

/* idx must hold r's index and outlive the reader. */
int chunkread_new(repo *r, const chunk_index *idx, chunk_reader **out);
void chunkread_free(chunk_reader *cr);

/* Free places in the queue. */
size_t chunkread_room(const chunk_reader *cr);

/* Queues a data chunk; DRE_ECORRUPT when the index does not locate it (what names it in the message, e.g.
 * "file a/b of snapshot 1234abcd"). */
int chunkread_queue(chunk_reader *cr, const uint8_t id[CRYPTO_ID_LEN], const char *what);

/* The plaintext of the oldest queued chunk, authenticated against its ID; *data stays valid until the next call.
 * DRE_ECORRUPT names the pack when it is missing or damaged. */
int chunkread_next(chunk_reader *cr, const uint8_t **data, size_t *len);

/* Bytes fetched from the store so far (pack ranges, tags included). */
uint64_t chunkread_fetched(const chunk_reader *cr);

#endif
