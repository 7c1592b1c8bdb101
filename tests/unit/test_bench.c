/*
 * test_bench.c — engine/gendata.c and engine/bench.c: the generator's output pinned byte for byte (the
 * SHA-256 sums are of what bench/gendump.c printed before the generator moved into the engine), a fill being
 * the start of the stream, and small runs of both benchmarks with their cleanup.
 */
#include "engine/engine.h"
#include "engine/bench.h"
#include "engine/gendata.h"
#include "tests/unit/unit.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>

static int to_sha(void *arg, const void *data, size_t len)
{
	return EVP_DigestUpdate(arg, data, len) == 1 ? 0 : err_set(DRE_EIO, "sha256 update failed");
}

/* SHA-256 of the whole stream for (mb MiB, seed, next_day), in hex. */
static void stream_sha(uint64_t mb, uint64_t seed, bool next_day, char hex[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t md[32];
	unsigned n = 0;
	CHECK(c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1);
	CHECK_RC(gendata_dump(mb << 20, seed, next_day, to_sha, c));
	CHECK(EVP_DigestFinal_ex(c, md, &n) == 1 && n == 32);
	EVP_MD_CTX_free(c);
	hex_encode(md, 32, hex);
}

static void test_pinned_output(void)
{
	char hex[65];
	stream_sha(8, 1, false, hex);
	CHECK(strcmp(hex, "8fee6eecb203c10516dfac0040f90d9d37b237884b1023800f4b09636ed4d942") == 0);
	stream_sha(8, 2, false, hex);
	CHECK(strcmp(hex, "3f44e9a3e10cf89f00d6a1b94a07a4a9aaf012c72fb4056826b06ae5504a34bd") == 0);
	stream_sha(8, 2, true, hex);
	CHECK(strcmp(hex, "c9992d3d3494058c407ce1b2b9f3ec346871ad022b5fab3fc2292e4dada313a2") == 0);
	stream_sha(1, 7, false, hex);
	CHECK(strcmp(hex, "bb517ddafb89e0b2b21c22eb1110f61458a6ff5b5e6d11f4d6b7279792db36c9") == 0);
	stream_sha(0, 1, false, hex); /* the header alone */
	CHECK(strcmp(hex, "50c2ec7f88fe21f8cfc4d88f197c4d72b408ce5b98b9b76042431877b14cdb72") == 0);
}

typedef struct collect {
	uint8_t *p;
	size_t len, cap;
} collect;

static int to_mem(void *arg, const void *data, size_t len)
{
	collect *c = arg;
	if (c->len + len > c->cap)
		return err_set(DRE_ENOMEM, "test buffer full");
	memcpy(c->p + c->len, data, len);
	c->len += len;
	return 0;
}

static void test_fill_is_the_start(void)
{
	size_t len = 3u << 20;
	collect c = {malloc(len + (1u << 20)), 0, len + (1u << 20)};
	uint8_t *fill = malloc(len), *next = malloc(len);
	CHECK(c.p != NULL && fill != NULL && next != NULL);
	if (c.p == NULL || fill == NULL || next == NULL)
		goto out;
	CHECK_RC(gendata_dump(len, 1, false, to_mem, &c));
	CHECK(c.len > len); /* a little longer than asked (gendata.h) */
	CHECK_RC(gendata_dump_fill(fill, len, 1, false));
	CHECK(memcmp(fill, c.p, len) == 0);
	CHECK_RC(gendata_dump_fill(next, len, 1, true));
	CHECK(memcmp(fill, next, 4096) == 0); /* the first tables are the same on the next day */
	CHECK(memcmp(fill, next, len) != 0);
out:
	free(c.p);
	free(fill);
	free(next);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (d == NULL)
		return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_pipeline_small(void)
{
	const char *tmp = getenv("TMPDIR");
	bench_opts o = {.size = 2u << 20, .threads = 2};
	bench_report rep;
	int before = count_entries(tmp);
	CHECK_RC(bench_pipeline(&o, &rep));
	CHECK(rep.size == 2u << 20 && rep.generated && rep.chunks > 0);
	for (int i = 0; i < BENCH_NSTAGES; i++)
		CHECK(bench_mb_per_s(&rep.stages[i].cost) > 0);
	CHECK(rep.stages[BENCH_ZSTD].ratio > 1.5); /* dump text */
	for (int i = 0; i < BENCH_NRUNS; i++)
		CHECK(rep.runs[i].cost.bytes == 2u << 20 && rep.runs[i].peak_rss > 0 && rep.runs[i].cost.seconds > 0);
	CHECK(rep.runs[BENCH_PUSH_FRESH].stored_new > 0);
	CHECK(rep.runs[BENCH_PUSH_AGAIN].stored_new == 0);
	CHECK(rep.runs[BENCH_PUSH_NEXT].stored_new < rep.runs[BENCH_PUSH_FRESH].stored_new);
	CHECK(count_entries(tmp) == before); /* the temporary repository is gone */

	o.size = 0;
	CHECK(bench_pipeline(&o, &rep) == DRE_EINVAL);
	o = (bench_opts){.size = 1u << 20, .input = "/nonexistent/dre-bench-input"};
	CHECK(bench_pipeline(&o, &rep) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "/nonexistent/dre-bench-input") != NULL);
	o = (bench_opts){.size = 1u << 20, .zstd_level = 25};
	CHECK(bench_pipeline(&o, &rep) == DRE_EINVAL);
	CHECK(count_entries(tmp) == before);
}

static void test_store_small(void)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/store", getenv("TMPDIR"));
	CHECK(mkdir(dir, 0700) == 0);
	bench_store_opts o = {.url = dir, .object_size = 64u << 10, .step_bytes = 1u << 20, .max_parallel = 3};
	bench_store_report rep;
	CHECK_RC(bench_store(&o, &rep));
	CHECK(rep.nsteps == 3); /* 1, 2, 3 */
	CHECK(rep.steps[0].parallel == 1 && rep.steps[1].parallel == 2 && rep.steps[2].parallel == 3);
	for (size_t i = 0; i < rep.nsteps; i++)
		CHECK(rep.steps[i].objects == 16 && bench_mb_per_s(&rep.steps[i].put) > 0 &&
		      bench_mb_per_s(&rep.steps[i].get) > 0);
	CHECK(strncmp(rep.prefix, "dre-bench-", 10) == 0 && strcmp(rep.driver, "local") == 0);
	CHECK(count_entries(dir) == 0);

	snprintf(dir, sizeof dir, "%s/missing/store", getenv("TMPDIR"));
	o.url = dir;
	CHECK(bench_store(&o, &rep) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), dir) != NULL);
	o.max_parallel = 0;
	CHECK(bench_store(&o, &rep) == DRE_EINVAL);
}

int main(void)
{
	RUN(test_pinned_output);
	RUN(test_fill_is_the_start);
	RUN(test_pipeline_small);
	RUN(test_store_small);
	return unit_exit();
}
