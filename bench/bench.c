/*
 * dre-bench — `make bench`: the speed of each pipeline stage on this machine, then whole push and restore of
 * generated data through the real engine into a temporary local repository. Benchmarks, not tests: the
 * figures vary with the machine and its load, so nothing here passes or fails.
 *
 *   dre-bench [--size MB] [--threads N]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "chunker/chunker.h"
#include "engine/crypto.h"
#include "engine/engine.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static void row(const char *what, size_t bytes, double secs)
{
	printf("  %-34s %9.0f MB/s\n", what, (double)bytes / secs / 1e6);
}

/* Dump-like text from dre-gendump, so every stage sees realistic data. */
static uint8_t *gen_dump(const char *gendump, size_t mb, size_t *len)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s %zu", gendump, mb);
	FILE *f = popen(cmd, "r");
	uint8_t *p = malloc(mb << 20);
	*len = f && p ? fread(p, 1, mb << 20, f) : 0;
	if (f)
		pclose(f);
	return p;
}

static void bench_stages(const uint8_t *data, size_t len, int level)
{
	uint64_t gear[256];
	cdc c;
	uint8_t key[32] = {7}, nonce[12] = {0}, tag[16], id[32];
	crypto_ctx *cc;
	double t;

	for (int i = 0; i < 256; i++)
		gear[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ 0x6472650000000000ull;
	cdc_init(&c, gear, 32 << 10, 128 << 10, 512 << 10);
	if (crypto_ctx_new(&cc) < 0)
		return;
	printf("stages (one core, %zu MB of dump-like text):\n", len >> 20);

	t = now();
	size_t n = 0;
	for (size_t off = 0; off < len; n++)
		off += cdc_next_boundary(&c, data + off, len - off, true);
	row("chunker (FastCDC, 128 KiB avg)", len, now() - t);

	t = now();
	for (size_t off = 0; off < len; off += 128 << 10)
		crypto_hmac(cc, key, data + off, len - off < (128 << 10) ? len - off : 128 << 10, id);
	row("keyed hash (HMAC-SHA-256)", len, now() - t);

	t = now();
	XXH128_hash_t h = XXH3_128bits(data, len);
	(void)h;
	row("XXH3-128 (end-to-end check)", len, now() - t);

	size_t cap = ZSTD_compressBound(128 << 10);
	uint8_t *z = malloc(cap * (len / (128 << 10) + 1));
	size_t *zl = malloc(sizeof *zl * (len / (128 << 10) + 1));
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level);
	size_t k = 0, zt = 0;
	t = now();
	for (size_t off = 0; off < len; off += 128 << 10, k++) {
		zl[k] = ZSTD_compress2(zc, z + k * cap, cap, data + off, len - off < (128 << 10) ? len - off : 128 << 10);
		zt += zl[k];
	}
	char label[64];
	snprintf(label, sizeof label, "zstd level %d (ratio %.2f)", level, (double)len / (double)zt);
	row(label, len, now() - t);

	t = now();
	for (size_t i = 0; i < k; i++)
		crypto_seal(cc, key, nonce, id, 32, z + i * cap, zl[i], tag);
	row("AES-256-GCM seal (compressed)", zt, now() - t);

	t = now();
	for (size_t i = 0; i < k; i++)
		crypto_open(cc, key, nonce, id, 32, z + i * cap, zl[i], tag);
	row("AES-256-GCM open", zt, now() - t);

	ZSTD_DCtx *zd = ZSTD_createDCtx();
	uint8_t *out = malloc(128 << 10);
	/* re-encrypting was in place: decompress a fresh compression */
	for (size_t i = 0; i < k; i++) {
		size_t off = i * (128 << 10);
		zl[i] = ZSTD_compress2(zc, z + i * cap, cap, data + off, len - off < (128 << 10) ? len - off : 128 << 10);
	}
	t = now();
	for (size_t i = 0; i < k; i++)
		ZSTD_decompressDCtx(zd, out, 128 << 10, z + i * cap, zl[i]);
	row("zstd decompress", len, now() - t);
	ZSTD_freeDCtx(zd);
	ZSTD_freeCCtx(zc);
	free(out);
	free(z);
	free(zl);
	crypto_ctx_free(cc);
}

static void bench_end_to_end(const char *input, size_t len, int threads)
{
	char dir[] = "/tmp/dre-bench-XXXXXX";
	char path[600];
	repo *r;
	repo_params p;
	push_result res;
	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof path, "%s/repo", dir);
	repo_params_default(&p);
	if (engine_init(path, NULL, "bench", &p, &r) < 0) {
		fprintf(stderr, "dre-bench: %s\n", err_msg());
		return;
	}
	printf("end to end (%zu MB dump-like file, local repository in %s, %d worker threads):\n", len >> 20, dir,
	       threads);
	push_opts po = {.name = "bench", .threads = threads};
	for (int round = 0; round < 2; round++) {
		int fd = open(input, O_RDONLY);
		double t = now(), c = cpu_now();
		if (engine_push_fd(r, &po, fd, &res) < 0) {
			fprintf(stderr, "dre-bench: %s\n", err_msg());
			close(fd);
			break;
		}
		close(fd);
		double secs = now() - t, cpu = cpu_now() - c;
		printf("  push %-29s %9.0f MB/s   %5.2f CPU-s/GB   stored %.1f MB\n",
		       round == 0 ? "(fresh)" : "(same data again)", (double)len / secs / 1e6, cpu / ((double)len / 1e9),
		       (double)res.stored_new / 1e6);
	}
	snapshot s;
	if (snap_find(r, "bench", -1, &s) == 0) {
		int fd = open("/dev/null", O_WRONLY);
		restore_opts ro = {.out_fd = fd, .threads = threads};
		restore_result rr;
		double t = now(), c = cpu_now();
		if (engine_restore(r, &s, &ro, &rr) < 0)
			fprintf(stderr, "dre-bench: %s\n", err_msg());
		else
			printf("  restore (to /dev/null, verified)   %9.0f MB/s   %5.2f CPU-s/GB\n",
			       (double)rr.bytes / (now() - t) / 1e6, (cpu_now() - c) / ((double)len / 1e9));
		close(fd);
		snap_free(&s);
	}
	engine_close(r);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("  peak RSS of this process           %9.0f MiB\n", (double)ru.ru_maxrss / 1024);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "dre-bench: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	size_t mb = 256;
	int threads = 0;
	char gendump[512];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			mb = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: dre-bench [--size MB] [--threads N]\n");
			return 2;
		}
	}
	snprintf(gendump, sizeof gendump, "%.*s/dre-gendump", (int)(strrchr(argv[0], '/') ? strrchr(argv[0], '/') - argv[0] : 1),
		 strrchr(argv[0], '/') ? argv[0] : ".");
	size_t len;
	uint8_t *data = gen_dump(gendump, mb < 256 ? mb : 256, &len);
	if (len == 0) {
		fprintf(stderr, "dre-bench: cannot run %s\n", gendump);
		return 1;
	}
	repo_params defaults;
	repo_params_default(&defaults);
	bench_stages(data, len, defaults.zstd_level); /* the level a new repository gets */
	free(data);

	char input[] = "/tmp/dre-bench-input-XXXXXX";
	int fd = mkstemp(input);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "%s %zu > %s", gendump, mb, input);
	if (fd < 0 || system(cmd) != 0) {
		fprintf(stderr, "dre-bench: cannot generate the input\n");
		return 1;
	}
	close(fd);
	bench_end_to_end(input, mb << 20, threads);
	unlink(input);
	return 0;
}
