/*
 * fastcdc.c — FastCDC with normalized chunking; see chunker.h for the cut rule.
 *
 * Two implementations of the same rule:
 *   cdc_next_boundary_ref  one byte per step, written as the rule reads;
 *   cdc_next_boundary      two bytes per step (FastCDC 2020 "rolling two bytes"):
 *
 *     with h the reference hash before byte i, H = (h << 2) + gear_ls[b_i] = h_i << 1 (mod 2^64), and since
 *     bit 63 is never in a mask, (h_i & mask) == 0 <=> (H & (mask << 1)) == 0; then h_{i+1} = H + gear[b_{i+1}].
 *
 * Both scan [min, avg) with mask_s, then [avg, max) with mask_l, and give the same cuts.
 *
 * The two-byte loop is bound by the latency of its one dependency chain (shift, add, add per pair), not by
 * the core's width, so cdc_next_boundary runs four chains at once (scan_lanes): the hash after byte i
 * depends only on bytes i-63..i, because each step shifts every older contribution one bit further up and
 * after 64 steps it is gone mod 2^64. A chain started from h = 0 at byte s-64 therefore holds the reference
 * hash from byte s-1 on, wherever s is (as long as s-64 >= min, where the rule itself starts from 0).
 */
#include "chunker/chunker.h"

#include <string.h>

bool cdc_init(cdc *c, const uint64_t gear[256], uint32_t min_size, uint32_t avg_size, uint32_t max_size)
{
	if (c == NULL || gear == NULL)
		return false;
	if (avg_size == 0 || (avg_size & (avg_size - 1)) != 0)
		return false;
	if (min_size < CDC_MIN_LIMIT || min_size >= avg_size || avg_size >= max_size || max_size > CDC_MAX_LIMIT)
		return false;

	unsigned bits = 0;
	while ((1u << bits) < avg_size)
		bits++;
	/* avg >= 2048 (power of two above min >= 1024) and avg <= 32 MiB, so both counts are in 9..27 */
	unsigned ns = bits + 2, nl = bits - 2;

	memcpy(c->gear, gear, sizeof c->gear);
	for (int i = 0; i < 256; i++)
		c->gear_ls[i] = gear[i] << 1;
	c->mask_s = ((1ULL << ns) - 1) << (63 - ns);
	c->mask_l = ((1ULL << nl) - 1) << (63 - nl);
	c->min_size = min_size;
	c->avg_size = avg_size;
	c->max_size = max_size;
	return true;
}

/* What to return when no content-defined cut lies in buf[0..n) with n = min(len, max_size). */
static inline size_t no_cut(const cdc *c, size_t len, bool final)
{
	if (len >= c->max_size)
		return c->max_size;
	return final ? len : 0;
}

size_t cdc_next_boundary_ref(const cdc *c, const uint8_t *buf, size_t len, bool final)
{
	if (len <= c->min_size)
		return final ? len : 0;
	size_t n = len < c->max_size ? len : c->max_size;
	uint64_t h = 0;
	for (size_t i = c->min_size; i < n; i++) {
		h = (h << 1) + c->gear[buf[i]];
		uint64_t mask = i < c->avg_size ? c->mask_s : c->mask_l;
		if ((h & mask) == 0)
			return i + 1;
	}
	return no_cut(c, len, final);
}

/*
 * Scans buf[i..end) with mask m, two bytes per step; *hp is the reference hash before byte i and is updated.
 * Returns the cut length (position after the cutting byte), or 0 when there is none in the range.
 */
static inline size_t scan(const uint64_t *restrict gear, const uint64_t *restrict gear_ls,
			  const uint8_t *restrict buf, size_t i, size_t end, uint64_t m, uint64_t *hp)
{
	uint64_t h = *hp;
	const uint64_t m2 = m << 1;

	if ((end - i) & 1) {
		/* odd length: one plain step first, so the pair loop ends exactly at end */
		h = (h << 1) + gear[buf[i]];
		if ((h & m) == 0)
			return i + 1;
		i++;
	}
	for (; i < end; i += 2) {
		uint64_t hs = (h << 2) + gear_ls[buf[i]]; /* = h_i << 1 */
		if ((hs & m2) == 0)
			return i + 1;
		h = hs + gear[buf[i + 1]]; /* = h_{i+1} */
		if ((h & m) == 0)
			return i + 2;
	}
	*hp = h;
	return 0;
}

#define LANES 4
#define LANE_SPAN 2048 /* per lane per round: the warm-up is 1/32 of it; 1024 and 4096 measured slower */
#define LANE_WARM 64
#define ROUND (LANES * LANE_SPAN)

/*
 * As scan, with the range cut into rounds of four consecutive LANE_SPAN slices that four chains hash side by
 * side: lane 0 continues the carried hash, lanes 1..3 are warmed over the 64 bytes before their slice. A
 * candidate in any lane only says that the round holds a cut; scan() over the round from the hash the round
 * started with then finds the first one in stream order. Rounds are rare to hit (one per chunk), so that
 * rescan costs about one round per chunk. What is left after the last whole round goes to scan().
 */
static size_t scan_lanes(const uint64_t *restrict gear, const uint64_t *restrict gear_ls,
			 const uint8_t *restrict buf, size_t i, size_t end, uint64_t m, uint64_t *hp)
{
	const uint64_t m2 = m << 1;
	uint64_t h = *hp;

	for (; end - i >= ROUND; i += ROUND) {
		const uint8_t *q = buf + i;
		uint64_t h0 = h, h1 = 0, h2 = 0, h3 = 0;
		for (size_t k = LANE_SPAN - LANE_WARM; k < LANE_SPAN; k++) {
			h1 = (h1 << 1) + gear[q[k]];
			h2 = (h2 << 1) + gear[q[k + LANE_SPAN]];
			h3 = (h3 << 1) + gear[q[k + 2 * LANE_SPAN]];
		}
#define LANE_PAIR(hj, off)                                                                                     \
	do {                                                                                                   \
		uint64_t hs_ = ((hj) << 2) + gear_ls[q[k + (off)]];                                            \
		if (__builtin_expect((hs_ & m2) == 0, 0))                                                      \
			goto hit;                                                                              \
		(hj) = hs_ + gear[q[k + (off) + 1]];                                                           \
		if (__builtin_expect(((hj) & m) == 0, 0))                                                      \
			goto hit;                                                                              \
	} while (0)
		for (size_t k = 0; k < LANE_SPAN; k += 2) {
			LANE_PAIR(h0, 0);
			LANE_PAIR(h1, LANE_SPAN);
			LANE_PAIR(h2, 2 * LANE_SPAN);
			LANE_PAIR(h3, 3 * LANE_SPAN);
		}
#undef LANE_PAIR
		h = h3;
		continue;
	hit:;
		size_t r = scan(gear, gear_ls, buf, i, i + ROUND, m, &h);
		if (r)
			return r;
	}
	*hp = h;
	return scan(gear, gear_ls, buf, i, end, m, hp);
}

size_t cdc_next_boundary(const cdc *c, const uint8_t *buf, size_t len, bool final)
{
	if (len <= c->min_size)
		return final ? len : 0;
	size_t n = len < c->max_size ? len : c->max_size;
	size_t mid = n < c->avg_size ? n : c->avg_size;
	uint64_t h = 0;
	size_t r = scan_lanes(c->gear, c->gear_ls, buf, c->min_size, mid, c->mask_s, &h);
	if (r)
		return r;
	/* cppcheck-suppress knownConditionTrueFalse ; true when len > avg_size: cppcheck loses the min() above */
	if (mid < n) {
		r = scan_lanes(c->gear, c->gear_ls, buf, mid, n, c->mask_l, &h);
		if (r)
			return r;
	}
	return no_cut(c, len, final);
}
