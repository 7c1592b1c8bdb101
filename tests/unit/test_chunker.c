/*
 * test_chunker.c — chunker/: golden cut points (they pin the format), fast path == reference, streaming in
 * pieces, locality of edits, edge cases and parameter validation.
 */
#include "chunker/chunker.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#define GEAR_SEED 0x6472652d67656172ULL /* "dre-gear" */

static uint64_t sm_state;

static uint64_t splitmix64(void)
{
	uint64_t z = (sm_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n) /* 0..n-1 */
{
	return (uint32_t)(splitmix64() % n);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix64();
		for (size_t k = 0; k < 8 && i + k < n; k++)
			p[i + k] = (uint8_t)(v >> (8 * k));
	}
}

/* The golden setup: gear table from GEAR_SEED, then n bytes from the same generator, little-endian. */
static uint8_t *golden_setup(uint64_t gear[256], size_t n)
{
	sm_state = GEAR_SEED;
	for (int i = 0; i < 256; i++)
		gear[i] = splitmix64();
	uint8_t *buf = malloc(n);
	if (buf)
		fill_random(buf, n);
	return buf;
}

/* Chunks buf[0..n) with final calls; stores up to cap lengths; returns the number of chunks. */
static size_t chunk_all(const cdc *c, const uint8_t *buf, size_t n, size_t *lens, size_t cap, bool ref)
{
	size_t off = 0, k = 0;
	while (off < n) {
		size_t l = ref ? cdc_next_boundary_ref(c, buf + off, n - off, true)
			       : cdc_next_boundary(c, buf + off, n - off, true);
		if (l == 0 || l > n - off)
			return (size_t)-1;
		if (k < cap)
			lens[k] = l;
		k++;
		off += l;
	}
	return k;
}

static void check_golden(size_t n, uint32_t mn, uint32_t av, uint32_t mx, const size_t *want, size_t nwant)
{
	uint64_t gear[256];
	uint8_t *buf = golden_setup(gear, n);
	CHECK(buf != NULL);
	if (!buf)
		return;
	cdc c;
	CHECK(cdc_init(&c, gear, mn, av, mx));
	size_t lens[1024];
	for (int ref = 0; ref < 2; ref++) {
		size_t k = chunk_all(&c, buf, n, lens, 1024, ref);
		CHECK(k == nwant);
		for (size_t i = 0; i < k && i < nwant; i++)
			if (lens[i] != want[i]) {
				fprintf(stderr, "%s chunk %zu: got %zu want %zu\n", ref ? "ref" : "fast", i, lens[i],
					want[i]);
				CHECK(lens[i] == want[i]);
				break;
			}
	}
	free(buf);
}

static void test_golden_8k(void)
{
	static const size_t want[] = {
		8795, 3558, 9284, 2271, 8485, 8594, 8753, 9431, 6328, 10619, 8599, 13291, 9250, 8289,
		2833, 3670, 8572, 8745, 8520, 8177, 8823, 12603, 9411, 10543, 8700, 11801, 13255, 10504,
		10240, 12510, 9661, 10324, 9133, 8815, 8825, 10571, 14198, 7564, 13081, 11651, 6925, 8549,
		6591, 2940, 8421, 6647, 9304, 11287, 9052, 8860, 8902, 8757, 12892, 14860, 9544, 12868,
		9110, 8713, 15944, 9130, 9861, 10224, 10756, 10369, 8934, 10392, 12372, 10190, 9996, 11302,
		10774, 11652, 8432, 11327, 5068, 7055, 9171, 8951, 9545, 9332, 8395, 13757, 7404, 13136,
		11530, 9700, 4538, 17160, 8150, 10051, 8907, 9118, 9171, 10769, 5483, 9619, 9977, 4310,
		9593, 12696, 10841, 7259, 7682, 9984, 8839, 10536, 9476, 7355, 9926, 9515, 4048, 6375,
	};
	check_golden(1u << 20, 2048, 8192, 65536, want, sizeof want / sizeof want[0]);
}

static void test_golden_64k(void)
{
	static const size_t want[] = {
		107258, 98886, 137401, 49737, 73344, 126724, 79393, 71201, 77068, 26034, 74230, 97436,
		74883, 20551, 81850, 65824, 83782, 109256, 17348, 60759, 93993, 71525, 74942, 99071,
		76272, 86764, 134459, 43655, 80570, 63234, 29666, 77553, 90796, 72847, 70554, 132141,
		90112, 72929, 47318, 111999, 88229, 85162, 56252, 71972, 49104, 94500, 107985, 162201,
		67313, 85211, 86585, 86425,
	};
	check_golden(4u << 20, 16384, 65536, 262144, want, sizeof want / sizeof want[0]);
}

static void test_masks(void)
{
	uint64_t gear[256] = {0};
	cdc c;
	CHECK(cdc_init(&c, gear, 2048, 8192, 65536)); /* log2(avg) = 13: 15 and 11 bits ending at bit 62 */
	CHECK(c.mask_s == 0x7FFF000000000000ULL);
	CHECK(c.mask_l == 0x7FF0000000000000ULL);
	CHECK(cdc_init(&c, gear, 1024, 2048, 4096)); /* 13 and 9 bits */
	CHECK(c.mask_s == 0x7FFC000000000000ULL);
	CHECK(c.mask_l == 0x7FC0000000000000ULL);
	CHECK(cdc_init(&c, gear, 8u << 20, 32u << 20, 64u << 20)); /* 27 and 23 bits */
	CHECK(c.mask_s == 0x7FFFFFF000000000ULL);
	CHECK(c.mask_l == 0x7FFFFF0000000000ULL);
	CHECK(c.min_size == 8u << 20 && c.avg_size == 32u << 20 && c.max_size == 64u << 20);
}

/* Random parameters: avg 2 KiB..64 KiB, any min in [CDC_MIN_LIMIT, avg), max in (avg, 4 avg]. */
static void random_params(uint32_t *mn, uint32_t *av, uint32_t *mx)
{
	*av = 1u << (11 + rnd(6));
	*mn = CDC_MIN_LIMIT + rnd(*av - CDC_MIN_LIMIT);
	*mx = *av + 1 + rnd(3 * *av);
}

/* Dense (ordinary), sparse or very sparse gear: sparse ones make cuts frequent, at every kind of position. */
static void random_gear(uint64_t gear[256], int kind)
{
	for (int i = 0; i < 256; i++) {
		uint64_t g = splitmix64();
		for (int k = 0; k < kind * 2; k++)
			g &= splitmix64();
		gear[i] = g;
	}
}

/* Random bytes, or a small alphabet, or long runs, or zeros. */
static void random_data(uint8_t *p, size_t n, int kind)
{
	fill_random(p, n);
	if (kind == 1) {
		for (size_t i = 0; i < n; i++)
			p[i] &= 3;
	} else if (kind == 2) {
		for (size_t i = 0; i < n;) {
			size_t run = 1 + rnd(5000);
			uint8_t v = (uint8_t)rnd(256);
			for (; run && i < n; run--, i++)
				p[i] = v;
		}
	} else if (kind == 3) {
		memset(p, 0, n / 2);
	}
}

static void test_fast_equals_ref(void)
{
	sm_state = 1;
	size_t cap = 4u * 65536 * 3;
	uint8_t *buf = malloc(cap);
	CHECK(buf != NULL);
	if (!buf)
		return;
	long calls = 0, mismatches = 0;
	for (int trial = 0; trial < 300; trial++) {
		uint32_t mn, av, mx;
		random_params(&mn, &av, &mx);
		uint64_t gear[256];
		random_gear(gear, trial % 3);
		cdc c;
		CHECK(cdc_init(&c, gear, mn, av, mx));
		size_t n = 1 + rnd((uint32_t)(mx * 3 < cap ? mx * 3 : cap));
		random_data(buf, n, (trial / 3) % 4);
		size_t off = 0;
		while (off < n) {
			size_t rem = n - off;
			size_t f = cdc_next_boundary(&c, buf + off, rem, true);
			size_t r = cdc_next_boundary_ref(&c, buf + off, rem, true);
			size_t fn = cdc_next_boundary(&c, buf + off, rem, false);
			size_t rn = cdc_next_boundary_ref(&c, buf + off, rem, false);
			size_t pre = 1 + rnd((uint32_t)rem); /* a random prefix, non-final */
			size_t fp = cdc_next_boundary(&c, buf + off, pre, false);
			size_t rp = cdc_next_boundary_ref(&c, buf + off, pre, false);
			calls += 3;
			if (f != r || fn != rn || fp != rp) {
				if (mismatches++ < 5)
					fprintf(stderr, "trial %d %u/%u/%u off %zu rem %zu: %zu/%zu %zu/%zu %zu/%zu\n", trial,
						mn, av, mx, off, rem, f, r, fn, rn, fp, rp);
			}
			/* the rule's bounds: 1..rem, never above max, above min unless it is the tail */
			CHECK(f >= 1 && f <= rem && f <= mx);
			CHECK(f > mn || f == rem);
			CHECK(fn == 0 || fn == f);
			CHECK(fp == 0 || fp == f);
			if (rem >= mx)
				CHECK(fn == f);
			off += f;
		}
	}
	/* every start offset of one buffer, with cuts frequent enough to land on all phase boundaries */
	for (int trial = 0; trial < 6; trial++) {
		uint64_t gear[256];
		random_gear(gear, 1 + trial % 2);
		uint32_t mn = CDC_MIN_LIMIT + (uint32_t)trial, av = 2048, mx = 2048 + 3 + (uint32_t)trial * 7;
		cdc c;
		CHECK(cdc_init(&c, gear, mn, av, mx));
		size_t n = 3 * mx;
		random_data(buf, n, 0);
		for (size_t off = 0; off < n; off++) {
			bool fin = off & 1;
			size_t f = cdc_next_boundary(&c, buf + off, n - off, fin);
			size_t r = cdc_next_boundary_ref(&c, buf + off, n - off, fin);
			calls++;
			if (f != r && mismatches++ < 5)
				fprintf(stderr, "offset %zu: fast %zu ref %zu\n", off, f, r);
		}
	}
	CHECK(mismatches == 0);
	CHECK(calls > 1000);
	free(buf);
}

/*
 * The fast path hashes 8 KiB rounds in four 2 KiB lanes (fastcdc.c), the last three warmed over the 64 bytes
 * before their slice. Chunk sizes large enough for whole rounds, with gears sparse enough that cuts fall
 * everywhere, must cut as the reference does; and the cuts seen must include ones in every lane and in the
 * first 64 bytes of a lane's slice, or the comparison did not reach the code it is for.
 */
static void test_fast_equals_ref_lanes(void)
{
	enum { ROUND = 8192, SPAN = 2048 };
	sm_state = 3;
	size_t n = 2u << 20;
	uint8_t *buf = malloc(n);
	CHECK(buf != NULL);
	if (!buf)
		return;
	long mismatches = 0, calls = 0, in_lane[4] = {0}, in_warm = 0;
	for (int trial = 0; trial < 48; trial++) {
		uint32_t av = 1u << (14 + rnd(4)); /* 16..128 KiB */
		uint32_t mn = CDC_MIN_LIMIT + rnd(av / 2 - CDC_MIN_LIMIT);
		uint32_t mx = av + 1 + rnd(3 * av);
		uint64_t gear[256];
		random_gear(gear, trial % 4);
		random_data(buf, n, trial % 3);
		cdc c;
		CHECK(cdc_init(&c, gear, mn, av, mx));
		for (size_t off = 0; off < n;) {
			size_t rem = n - off, pre = 1 + rnd((uint32_t)(rem < 4 * (size_t)mx ? rem : 4 * (size_t)mx));
			size_t f = cdc_next_boundary(&c, buf + off, rem, true);
			size_t r = cdc_next_boundary_ref(&c, buf + off, rem, true);
			size_t fp = cdc_next_boundary(&c, buf + off, pre, false);
			size_t rp = cdc_next_boundary_ref(&c, buf + off, pre, false);
			calls += 2;
			if ((f != r || fp != rp) && mismatches++ < 5)
				fprintf(stderr, "lanes trial %d %u/%u/%u off %zu: %zu/%zu %zu/%zu\n", trial, mn, av, mx, off,
					f, r, fp, rp);
			/* where the cutting byte was, in the rounds of the first scan, [min, avg) */
			size_t at = r - 1;
			if (r > mn && at < av && av - mn >= ROUND && (at - mn) < (av - mn) / ROUND * ROUND) {
				in_lane[(at - mn) % ROUND / SPAN]++;
				in_warm += (at - mn) % SPAN < 64 && (at - mn) % ROUND >= SPAN;
			}
			off += r;
		}
	}
	CHECK(mismatches == 0);
	CHECK(calls > 1000);
	for (int l = 0; l < 4; l++) {
		if (in_lane[l] < 10)
			fprintf(stderr, "lane %d: %ld cuts\n", l, in_lane[l]);
		CHECK(in_lane[l] >= 10);
	}
	CHECK(in_warm >= 3);
	free(buf);
}

/*
 * A consumer that receives the stream in random pieces, asks with final = false until it gets a cut, and
 * with final = true once the stream has ended, must produce the same chunks as one pass over all the data.
 */
static void test_streaming_pieces(void)
{
	sm_state = 2;
	size_t n = 3u << 20;
	uint8_t *buf = malloc(n);
	size_t *want = malloc(4096 * sizeof *want);
	CHECK(buf && want);
	if (!buf || !want) {
		free(buf);
		free(want);
		return;
	}
	for (int trial = 0; trial < 12; trial++) {
		uint32_t mn, av, mx;
		random_params(&mn, &av, &mx);
		uint64_t gear[256];
		random_gear(gear, trial % 2);
		random_data(buf, n, trial % 4);
		cdc c;
		CHECK(cdc_init(&c, gear, mn, av, mx));
		size_t nwant = chunk_all(&c, buf, n, want, 4096, false);
		CHECK(nwant <= 4096);

		size_t start = 0, avail = 0, k = 0;
		bool ref_calls_ok = true;
		while (start < n) {
			bool final = avail == n;
			size_t l = cdc_next_boundary(&c, buf + start, avail - start, final);
			size_t lr = cdc_next_boundary_ref(&c, buf + start, avail - start, final);
			if (l != lr)
				ref_calls_ok = false;
			if (l == 0) {
				CHECK(!final);
				CHECK(avail - start < mx);
				size_t piece = 1 + rnd(trial & 1 ? 700 : 200000);
				avail = avail + piece < n ? avail + piece : n;
				continue;
			}
			CHECK(k < nwant && want[k] == l);
			k++;
			start += l;
		}
		CHECK(ref_calls_ok);
		CHECK(k == nwant);
	}
	free(buf);
	free(want);
}

/* Number of chunks of a and of b outside their longest common prefix and suffix of identical chunks. */
static void chunk_diff(const uint8_t *a, const size_t *la, size_t na, const uint8_t *b, const size_t *lb,
		       size_t nb, size_t *da, size_t *db)
{
	size_t pre = 0, offa = 0, offb = 0;
	while (pre < na && pre < nb && la[pre] == lb[pre] && memcmp(a + offa, b + offb, la[pre]) == 0) {
		offa += la[pre];
		offb += lb[pre];
		pre++;
	}
	size_t enda = 0, endb = 0, suf = 0;
	for (size_t i = 0; i < na; i++)
		enda += la[i];
	for (size_t i = 0; i < nb; i++)
		endb += lb[i];
	while (suf < na - pre && suf < nb - pre) {
		size_t l1 = la[na - 1 - suf], l2 = lb[nb - 1 - suf];
		if (l1 != l2 || memcmp(a + enda - l1, b + endb - l2, l1) != 0)
			break;
		enda -= l1;
		endb -= l2;
		suf++;
	}
	*da = na - pre - suf;
	*db = nb - pre - suf;
}

/* Inserting or deleting 100 bytes at offset 5000 of a 4 MiB stream changes at most 3 chunks around it. */
static void test_edit_locality(void)
{
	const size_t n = 4u << 20, at = 5000, ins = 100, cap = 4096;
	uint8_t *a = malloc(n), *b = malloc(n + ins);
	size_t *la = malloc(cap * sizeof *la), *lb = malloc(cap * sizeof *lb);
	CHECK(a && b && la && lb);
	static const uint32_t params[][3] = {{2048, 8192, 65536}, {4096, 16384, 65536}, {16384, 65536, 262144}};
	for (int seed = 0; seed < 8 && a && b && la && lb; seed++) {
		for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
			sm_state = 100 + (uint64_t)seed;
			uint64_t gear[256];
			random_gear(gear, 0);
			fill_random(a, n);
			memcpy(b, a, at);
			fill_random(b + at, ins);
			memcpy(b + at + ins, a + at, n - at);
			cdc c;
			CHECK(cdc_init(&c, gear, params[p][0], params[p][1], params[p][2]));
			size_t na = chunk_all(&c, a, n, la, cap, false), nb = chunk_all(&c, b, n + ins, lb, cap, false);
			CHECK(na <= cap && nb <= cap);
			if (na > cap || nb > cap)
				continue;
			size_t da, db;
			chunk_diff(a, la, na, b, lb, nb, &da, &db); /* insertion */
			if (da > 3 || db > 3)
				fprintf(stderr, "insert seed %d params %zu: %zu/%zu chunks differ\n", seed, p, da, db);
			CHECK(da >= 1 && da <= 3 && db >= 1 && db <= 3);
			chunk_diff(b, lb, nb, a, la, na, &db, &da); /* the same pair read as a deletion */
			CHECK(da <= 3 && db <= 3);
			CHECK(na > 40); /* most of the stream is outside the edit */
		}
	}
	free(a);
	free(b);
	free(la);
	free(lb);
}

static void test_empty_and_short(void)
{
	uint64_t gear[256];
	sm_state = 3;
	random_gear(gear, 0);
	cdc c;
	CHECK(cdc_init(&c, gear, 4096, 16384, 65536));
	uint8_t buf[4097];
	fill_random(buf, sizeof buf);
	CHECK(cdc_next_boundary(&c, buf, 0, true) == 0);
	CHECK(cdc_next_boundary(&c, buf, 0, false) == 0);
	CHECK(cdc_next_boundary_ref(&c, buf, 0, true) == 0);
	CHECK(cdc_next_boundary_ref(&c, buf, 0, false) == 0);
	static const size_t lens[] = {1, 2, 3, 100, 4095, 4096};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t l = lens[i];
		CHECK(cdc_next_boundary(&c, buf, l, true) == l); /* final, at most min bytes: one chunk */
		CHECK(cdc_next_boundary_ref(&c, buf, l, true) == l);
		CHECK(cdc_next_boundary(&c, buf, l, false) == 0); /* not final: needs more data */
		CHECK(cdc_next_boundary_ref(&c, buf, l, false) == 0);
	}
	CHECK(cdc_next_boundary(&c, buf, 4097, true) == 4097); /* min+1 bytes: cut after byte min or the rest */
}

/* Zeros: h converges to a constant, so the cuts are periodic; with gear[0] = 0 every chunk is min+1 bytes. */
static void test_all_zero(void)
{
	const size_t n = 1u << 20;
	uint8_t *buf = calloc(n, 1);
	CHECK(buf != NULL);
	if (!buf)
		return;
	uint64_t gear[256];
	sm_state = GEAR_SEED;
	for (int i = 0; i < 256; i++)
		gear[i] = splitmix64();
	cdc c;
	CHECK(cdc_init(&c, gear, 2048, 8192, 65536));
	size_t first = cdc_next_boundary(&c, buf, n, true);
	CHECK(first > 2048 && first <= 65536);
	CHECK(first == cdc_next_boundary_ref(&c, buf, n, true));
	size_t off = 0;
	while (off < n) {
		size_t l = cdc_next_boundary(&c, buf + off, n - off, true);
		CHECK(l == first || (l < first && off + l == n));
		off += l;
	}
	gear[0] = 0;
	CHECK(cdc_init(&c, gear, 2048, 8192, 65536));
	CHECK(cdc_next_boundary(&c, buf, n, true) == 2049);
	CHECK(cdc_next_boundary(&c, buf, n, false) == 2049);
	CHECK(cdc_next_boundary_ref(&c, buf, n, true) == 2049);
	free(buf);
}

/* A gear table that never cuts (bit 62 stays set in h): every chunk is exactly max, and never more. */
static void test_max_respected(void)
{
	const size_t n = (1u << 20) + 12345;
	uint8_t *buf = malloc(n);
	CHECK(buf != NULL);
	if (!buf)
		return;
	sm_state = 4;
	fill_random(buf, n);
	uint64_t gear[256];
	for (int i = 0; i < 256; i++)
		gear[i] = 1ULL << 62;
	static const uint32_t params[][3] = {{1024, 2048, 2049}, {2048, 8192, 65536}, {3000, 4096, 100003}};
	for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
		cdc c;
		CHECK(cdc_init(&c, gear, params[p][0], params[p][1], params[p][2]));
		size_t mx = params[p][2], off = 0;
		while (off < n) {
			size_t rem = n - off, want = rem < mx ? rem : mx;
			size_t l = cdc_next_boundary(&c, buf + off, rem, true);
			CHECK(l == want);
			CHECK(cdc_next_boundary_ref(&c, buf + off, rem, true) == want);
			CHECK(cdc_next_boundary(&c, buf + off, rem, false) == (rem >= mx ? mx : 0));
			CHECK(cdc_next_boundary_ref(&c, buf + off, rem, false) == (rem >= mx ? mx : 0));
			if (l == 0)
				break;
			off += l;
		}
	}
	free(buf);
}

static void test_invalid_params(void)
{
	uint64_t gear[256] = {0};
	cdc c;
	CHECK(cdc_init(&c, gear, 1024, 2048, 2049));
	CHECK(cdc_init(&c, gear, 1024, 1u << 25, 64u << 20));
	CHECK(!cdc_init(&c, gear, 1023, 2048, 4096));                /* min below the limit */
	CHECK(!cdc_init(&c, gear, 2048, 2048, 4096));                /* min == avg */
	CHECK(!cdc_init(&c, gear, 4096, 2048, 8192));                /* min > avg */
	CHECK(!cdc_init(&c, gear, 2048, 8192, 8192));                /* avg == max */
	CHECK(!cdc_init(&c, gear, 2048, 8192, 4096));                /* avg > max */
	CHECK(!cdc_init(&c, gear, 2048, 12288, 65536));              /* avg not a power of two */
	CHECK(!cdc_init(&c, gear, 2048, 0, 65536));                  /* avg 0 */
	CHECK(!cdc_init(&c, gear, 1u << 20, 1u << 25, (64u << 20) + 1)); /* max above the limit */
	CHECK(!cdc_init(&c, gear, 1u << 20, 1u << 26, 1u << 27));    /* avg and max above the limit */
	CHECK(!cdc_init(&c, gear, 1024, 1u << 31, 0xFFFFFFFFu));
	CHECK(!cdc_init(&c, gear, 0, 0, 0));
	CHECK(!cdc_init(NULL, gear, 2048, 8192, 65536));
	CHECK(!cdc_init(&c, NULL, 2048, 8192, 65536));
}

int main(void)
{
	RUN(test_golden_8k);
	RUN(test_golden_64k);
	RUN(test_masks);
	RUN(test_fast_equals_ref);
	RUN(test_fast_equals_ref_lanes);
	RUN(test_streaming_pieces);
	RUN(test_edit_locality);
	RUN(test_empty_and_short);
	RUN(test_all_zero);
	RUN(test_max_respected);
	RUN(test_invalid_params);
	return unit_exit();
}
