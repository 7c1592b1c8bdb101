/*
 * test_sniff.c — compressed streams recognised by their first bytes (engine/pipeline/sniff.h): pg_dump custom
 * archives of both header layouts, compressed and not, and the common compressors; nothing else warns.
 */
#include "engine/pipeline/sniff.h"
#include "store/err.h"
#include "tests/unit/unit.h"

/* A custom-format header as pg_dump 15 writes it (archive 1.14): int size 4, offset size 8, format 1, then the
 * zlib level as sign byte + 4 bytes. */
static void header_114(uint8_t h[16], int level)
{
	static const uint8_t base[11] = {'P', 'G', 'D', 'M', 'P', 1, 14, 0, 4, 8, 1};
	memcpy(h, base, sizeof base);
	h[11] = level < 0;
	unsigned v = (unsigned)(level < 0 ? -level : level);
	for (int i = 0; i < 4; i++)
		h[12 + i] = (uint8_t)(v >> (8 * i));
}

static void test_pg_custom_114(void)
{
	uint8_t h[16];
	header_114(h, -1); /* pg_dump -Fc: the default level */
	CHECK(sniff_compressed(h, sizeof h) != NULL && strstr(sniff_compressed(h, sizeof h), "zlib") != NULL);
	header_114(h, 6);
	CHECK(sniff_compressed(h, sizeof h) != NULL);
	header_114(h, 0); /* -Fc -Z0 */
	CHECK(sniff_compressed(h, sizeof h) == NULL);
	header_114(h, -1);
	h[10] = 3; /* the tar format is never compressed */
	CHECK(sniff_compressed(h, sizeof h) == NULL);
	CHECK(sniff_compressed(h, 11) == NULL); /* too short to tell */
}

static void test_pg_custom_115(void)
{
	uint8_t h[16] = {'P', 'G', 'D', 'M', 'P', 1, 15, 0, 4, 8, 1, 0};
	CHECK(sniff_compressed(h, sizeof h) == NULL);
	h[11] = 1;
	CHECK(sniff_compressed(h, sizeof h) != NULL && strstr(sniff_compressed(h, sizeof h), "gzip") != NULL);
	h[11] = 3;
	CHECK(sniff_compressed(h, sizeof h) != NULL && strstr(sniff_compressed(h, sizeof h), "zstd") != NULL);
	h[11] = 9;
	CHECK(sniff_compressed(h, sizeof h) != NULL);
}

static void test_compressors(void)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *name;
	} cases[] = {
		{"\x1f\x8b\x08\x00", 4, "gzip"}, {"\x28\xb5\x2f\xfd\x00", 5, "zstd"}, {"\xfd" "7zXZ\x00\x00", 7, "xz"},
		{"BZh9", 4, "bzip2"},            {"\x04\x22\x4d\x18\x64", 5, "lz4"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *w = sniff_compressed((const uint8_t *)cases[i].bytes, cases[i].len);
		CHECK(w != NULL && strstr(w, cases[i].name) != NULL);
	}
}

static void test_plain(void)
{
	const char *sql = "--\n-- PostgreSQL database dump\n--\n";
	CHECK(sniff_compressed((const uint8_t *)sql, strlen(sql)) == NULL);
	CHECK(sniff_compressed((const uint8_t *)"BZh", 3) == NULL);
	CHECK(sniff_compressed((const uint8_t *)"BZhx", 4) == NULL);
	CHECK(sniff_compressed((const uint8_t *)"\x1f", 1) == NULL);
	CHECK(sniff_compressed((const uint8_t *)"", 0) == NULL);
}

int main(void)
{
	RUN(test_pg_custom_114);
	RUN(test_pg_custom_115);
	RUN(test_compressors);
	RUN(test_plain);
	return unit_exit();
}
