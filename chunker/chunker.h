/*
 * chunker.h — FastCDC content-defined chunking with normalized chunking (Xia et al., 2016/2020). Pure
 * computation: no allocation, no I/O, no errors at run time. format-spec.md §Chunker is the normative text;
 * this header is its C interface.
 *
 * The gear table (256 × 64-bit) is an input: dre derives it from the repository's secret (engine/), so cut
 * points depend on a key and chunk sizes say nothing useful about content to someone without it.
 *
 * Cut rule, for a chunk starting at p (all positions relative to p):
 *   - if fewer than min_size bytes remain (final data) the rest is one chunk;
 *   - h = 0; for i = min_size .. : h = (h << 1) + gear[p[i]] (mod 2^64); the chunk ends after byte i when
 *     (h & mask) == 0, with mask = mask_s while i < avg_size, mask_l afterwards; at max_size it ends regardless.
 *   - mask_s has log2(avg)+2 one bits, mask_l has log2(avg)-2, both ending at bit 62 (bit 63 is never in a
 *     mask, which lets an implementation roll two bytes per step with a pre-shifted table and get the same cuts).
 */
#ifndef DRE_CHUNKER_H
#define DRE_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CDC_MIN_LIMIT (1u << 10)  /* smallest allowed min_size: 1 KiB */
#define CDC_MAX_LIMIT (64u << 20) /* largest allowed max_size: 64 MiB */

typedef struct cdc {
	uint64_t gear[256];
	uint64_t gear_ls[256]; /* gear << 1, for the two-bytes-per-step loop */
	uint64_t mask_s, mask_l;
	uint32_t min_size, avg_size, max_size;
} cdc;

/*
 * Checks the parameters (avg a power of two, CDC_MIN_LIMIT ≤ min < avg < max ≤ CDC_MAX_LIMIT) and fills c.
 * Returns false when they are not valid; the caller reports it.
 */
bool cdc_init(cdc *c, const uint64_t gear[256], uint32_t min_size, uint32_t avg_size, uint32_t max_size);

/*
 * Length of the next chunk that starts at buf, given len bytes available there.
 * final = true: buf..buf+len is the end of the stream, so the result is always in 1..len (0 when len == 0).
 * final = false: returns 0 when len < max_size and no cut point lies within the bytes given: the caller must
 * supply more data (the same call with more bytes returns the same answer as one with all of them).
 */
size_t cdc_next_boundary(const cdc *c, const uint8_t *buf, size_t len, bool final);

/* The scalar one-byte-per-step reference, kept for tests that prove the fast path cuts in the same places. */
size_t cdc_next_boundary_ref(const cdc *c, const uint8_t *buf, size_t len, bool final);

#endif
