/*
 * test_index — the chunk index: the sorted array with its delta and merges, the memory it takes per chunk,
 * and the local cache (index_load with a cache path): reuse, and every reason to refuse it.
 */
#include "engine/engine.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/repo/index.h"
#include "tests/unit/unit.h"

static char tmpdir[256];

/* The ID and location of entry i of a test set: uniform IDs, as HMAC outputs are. */
static void entry_of(uint32_t i, uint32_t set, index_entry *e)
{
	memset(e, 0, sizeof *e);
	uint64_t x = ((uint64_t)set << 32 | i) * 0x9E3779B97F4A7C15ull + 1;
	for (int k = 0; k < 4; k++) {
		x ^= x >> 31;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 29;
		memcpy(e->loc.id + 8 * k, &x, 8);
	}
	e->pack = i % 7;
	e->loc.offset = i * 3;
	e->loc.stored_len = i + 1;
	e->loc.raw_len = (i % 65536) + 1;
	e->loc.flags = i & 1;
}

static bool same_location(const index_entry *a, const index_entry *b)
{
	return memcmp(a->loc.id, b->loc.id, CRYPTO_ID_LEN) == 0 && a->pack == b->pack &&
	       a->loc.offset == b->loc.offset && a->loc.stored_len == b->loc.stored_len &&
	       a->loc.raw_len == b->loc.raw_len && a->loc.flags == b->loc.flags;
}

static void test_index_finds_across_merges(void)
{
	chunk_index *idx;
	index_entry e, got;
	const uint32_t n = 300000; /* several merges of the delta into the sorted array */
	CHECK_RC(index_new(&idx));
	for (uint32_t i = 0; i < n; i++) {
		entry_of(i, 1, &e);
		CHECK(index_insert(idx, &e) == 1);
	}
	CHECK(index_count(idx) == n);
	size_t bad = 0;
	for (uint32_t i = 0; i < n; i++) {
		entry_of(i, 1, &e);
		bad += !index_find(idx, e.loc.id, &got) || !same_location(&e, &got);
		entry_of(i, 2, &e);
		bad += index_find(idx, e.loc.id, &got);
	}
	CHECK(bad == 0);
	/* a second insert keeps the first location */
	entry_of(17, 1, &e);
	e.loc.offset = 999;
	CHECK(index_insert(idx, &e) == 0);
	CHECK(index_find(idx, e.loc.id, &got) && got.loc.offset == 17 * 3);
	/* the budget: at most 40 bytes of memory per chunk */
	double per_chunk = (double)index_memory(idx) / (double)index_count(idx);
	fprintf(stderr, "index memory: %.1f bytes per chunk for %u chunks\n", per_chunk, n);
	CHECK(per_chunk <= 40.0);
	/* flags beyond what a slot holds are refused, not truncated */
	entry_of(5, 3, &e);
	e.loc.flags = 0x80;
	CHECK(index_insert(idx, &e) == DRE_ECORRUPT);
	index_free(idx);
}

static void test_index_reserve_commit_across_merges(void)
{
	chunk_index *idx;
	index_entry e, got;
	const uint32_t n = 100000;
	CHECK_RC(index_new(&idx));
	for (uint32_t i = 0; i < n; i++) {
		entry_of(i, 4, &e);
		CHECK(index_reserve(idx, e.loc.id) == 1);
	}
	entry_of(3, 4, &e);
	CHECK(index_reserve(idx, e.loc.id) == 0);
	CHECK(index_find(idx, e.loc.id, &got) && got.pack == INDEX_PACK_PENDING);
	for (uint32_t i = 0; i < n; i++) {
		entry_of(i, 4, &e);
		CHECK_RC(index_commit(idx, e.pack, &e.loc));
	}
	size_t bad = 0;
	for (uint32_t i = 0; i < n; i++) {
		entry_of(i, 4, &e);
		bad += !index_find(idx, e.loc.id, &got) || !same_location(&e, &got);
	}
	CHECK(bad == 0);
	entry_of(0, 5, &e);
	CHECK(index_commit(idx, 0, &e.loc) == DRE_EINVAL);
	index_free(idx);
}

/* Writes `count` entries of set `set` as one index object in pack `pack_byte`'s name. */
static void write_index_object(repo *r, chunk_index *idx, uint32_t set, uint32_t count)
{
	index_builder b = {0};
	pack_entry *pe = calloc(count, sizeof *pe);
	uint8_t pack_id[CRYPTO_ID_LEN];
	memset(pack_id, (int)set, sizeof pack_id);
	for (uint32_t i = 0; i < count; i++) {
		index_entry e;
		entry_of(i, set, &e);
		pe[i] = e.loc;
	}
	CHECK_RC(index_builder_add_pack(&b, pack_id, pe, count));
	CHECK_RC(index_builder_flush(&b, r, idx));
	index_builder_free(&b);
	free(pe);
}

static int warnings;
static char last_warning[1024];

static void count_warning(void *arg, const char *msg)
{
	(void)arg;
	warnings++;
	snprintf(last_warning, sizeof last_warning, "%s", msg);
}

/* Loads r's index through the cache into a fresh table; checks it holds exactly sets 1..nsets. */
static void load_and_check(repo *r, const char *cache, uint32_t nsets, uint32_t per_set)
{
	chunk_index *idx;
	index_entry e, got;
	size_t objects = 0;
	CHECK_RC(index_new(&idx));
	CHECK_RC(index_load(r, idx, cache, count_warning, NULL, &objects));
	CHECK(objects == nsets);
	CHECK(index_count(idx) == (size_t)nsets * per_set);
	size_t bad = 0;
	for (uint32_t s = 1; s <= nsets; s++)
		for (uint32_t i = 0; i < per_set; i++) {
			entry_of(i, s, &e);
			bad += !index_find(idx, e.loc.id, &got) || got.loc.offset != e.loc.offset ||
			       got.loc.raw_len != e.loc.raw_len;
		}
	CHECK(bad == 0);
	index_free(idx);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t c = 0;
	CHECK(fd >= 0 && pread(fd, &c, 1, at) == 1);
	c ^= 0x40;
	CHECK(pwrite(fd, &c, 1, at) == 1);
	close(fd);
}

static void test_index_cache(void)
{
	repo *r = unit_make_repo(tmpdir), *other = unit_make_repo(tmpdir);
	char cache[600], other_cache[600];
	struct stat st;
	if (r == NULL || other == NULL)
		return;
	snprintf(cache, sizeof cache, "%s/cache/a/index", tmpdir);
	snprintf(other_cache, sizeof other_cache, "%s/cache/b/index", tmpdir);
	chunk_index *scratch;
	CHECK_RC(index_new(&scratch));
	write_index_object(r, scratch, 1, 5000);
	write_index_object(r, scratch, 2, 5000);

	/* first load: no cache yet, it is written */
	warnings = 0;
	load_and_check(r, cache, 2, 5000);
	CHECK(warnings == 0);
	CHECK(stat(cache, &st) == 0 && st.st_size > 10000 * 32);

	/* the cache alone answers: an index object it covers that cannot be decrypted is not read again */
	write_index_object(r, scratch, 3, 5000);
	load_and_check(r, cache, 3, 5000); /* reads object 3 only, rewrites the cache */
	CHECK(warnings == 0);

	/* a flipped bit anywhere: refused by the MAC, rebuilt from the store, with a warning naming the file */
	flip_byte(cache, st.st_size / 2);
	warnings = 0;
	load_and_check(r, cache, 3, 5000);
	CHECK(warnings == 1 && strstr(last_warning, "MAC mismatch") != NULL && strstr(last_warning, cache) != NULL);
	warnings = 0;
	load_and_check(r, cache, 3, 5000); /* and the rebuilt one is good again */
	CHECK(warnings == 0);

	/* a truncated cache */
	CHECK(stat(cache, &st) == 0 && truncate(cache, st.st_size - 40) == 0);
	warnings = 0;
	load_and_check(r, cache, 3, 5000);
	CHECK(warnings == 1 && strstr(last_warning, "index cache not used") != NULL);

	/* another repository's cache is not used for this one */
	chunk_index *o;
	CHECK_RC(index_new(&o));
	CHECK_RC(index_load(other, o, other_cache, count_warning, NULL, NULL));
	write_index_object(other, o, 9, 10);
	CHECK_RC(index_cache_save(other, o, other_cache));
	index_free(o);
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", other_cache, cache);
	CHECK(system(cmd) == 0);
	warnings = 0;
	load_and_check(r, cache, 3, 5000);
	CHECK(warnings == 1 && strstr(last_warning, "another repository") != NULL);

	/* an index object the cache covers has left the store: the cache is dropped, not trusted */
	load_and_check(r, cache, 3, 5000);
	snprintf(cmd, sizeof cmd, "rm \"$(ls -d %s/repo*/index/* | head -n 1)\"", tmpdir);
	CHECK(system(cmd) == 0);
	warnings = 0;
	chunk_index *idx;
	size_t objects = 0;
	CHECK_RC(index_new(&idx));
	CHECK_RC(index_load(r, idx, cache, count_warning, NULL, &objects));
	CHECK(objects == 2 && index_count(idx) == 10000);
	CHECK(warnings == 1 && strstr(last_warning, "no longer in the store") != NULL);
	index_free(idx);

	index_free(scratch);
	engine_close(r);
	engine_close(other);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/dre-unit-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
	RUN(test_index_finds_across_merges);
	RUN(test_index_reserve_commit_across_merges);
	RUN(test_index_cache);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 2;
	return unit_exit();
}
