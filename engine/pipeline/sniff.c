/*
 * sniff.c — compressed input recognised by its magic bytes (sniff.h).
 */
#include "engine/pipeline/sniff.h"

#include <stdbool.h>
#include <string.h>

#define HINT_PG "HINT: 'dre pg-dump NAME' runs pg_dump for you in the form that deduplicates, or add -Z0 to pg_dump -Fc " \
		"(dre compresses after deduplicating)"
#define PG_COMPRESSED(how) "the stream is a pg_dump custom-format archive compressed with " how ", which does not " \
			   "deduplicate: every push stores it whole. " HINT_PG
#define HINT_RAW "HINT: push the uncompressed stream (dre compresses after deduplicating)"

static bool has(const uint8_t *p, size_t n, const char *magic, size_t len)
{
	return n >= len && memcmp(p, magic, len) == 0;
}

/*
 * pg_dump's archive header: "PGDMP", version major, minor, revision, int size, offset size, format (1 =
 * custom). From archive version 1.15 (PostgreSQL 16) a byte names the compression algorithm (0 none); before
 * it, the zlib level as pg_dump writes an int: a sign byte, then int-size bytes, least significant first (the
 * default, -1, is compressed).
 */
static const char *sniff_pg_custom(const uint8_t *p, size_t n)
{
	static const char *const by_algorithm[] = {NULL, PG_COMPRESSED("gzip"), PG_COMPRESSED("lz4"),
						   PG_COMPRESSED("zstd")};
	if (n < 12 || p[10] != 1)
		return NULL;
	unsigned version = (unsigned)p[5] << 8 | p[6];
	if (version >= (1u << 8 | 15u))
		return p[11] < sizeof by_algorithm / sizeof *by_algorithm ? by_algorithm[p[11]]
									 : PG_COMPRESSED("an unknown method");
	size_t int_size = p[8];
	if (int_size == 0 || int_size > 8 || n < 12 + int_size)
		return NULL;
	bool nonzero = false;
	for (size_t i = 0; i < int_size; i++)
		nonzero |= p[12 + i] != 0;
	if (!nonzero)
		return NULL;
	return PG_COMPRESSED("zlib (pg_dump -Fc compresses by default)");
}

const char *sniff_compressed(const uint8_t *p, size_t n)
{
	if (has(p, n, "PGDMP", 5))
		return sniff_pg_custom(p, n);
	if (has(p, n, "\x1f\x8b", 2))
		return "the stream is gzip-compressed, which does not deduplicate: every push stores it whole. " HINT_RAW;
	if (has(p, n, "\x28\xb5\x2f\xfd", 4))
		return "the stream is zstd-compressed, which does not deduplicate: every push stores it whole. " HINT_RAW;
	if (has(p, n, "\xfd" "7zXZ\x00", 6))
		return "the stream is xz-compressed, which does not deduplicate: every push stores it whole. " HINT_RAW;
	if (has(p, n, "BZh", 3) && n >= 4 && p[3] >= '1' && p[3] <= '9')
		return "the stream is bzip2-compressed, which does not deduplicate: every push stores it whole. " HINT_RAW;
	if (has(p, n, "\x04\x22\x4d\x18", 4))
		return "the stream is lz4-compressed, which does not deduplicate: every push stores it whole. " HINT_RAW;
	return NULL;
}
