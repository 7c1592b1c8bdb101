/*
 * bench.c — the measurements of `dre bench` (bench.h). The stages run on the calling thread against the
 * temporary repository's own keys and chunker, so they see the gear table and the subkeys a push would; the
 * end-to-end runs are child processes so that each one's CPU time and peak RSS come from the kernel
 * (wait4) instead of from guesses about what the parent's threads did.
 *
 * The parent stays single-threaded until the store measurement, which forks nothing: fork() is only safe
 * here because no other thread exists at that moment.
 */
#include "engine/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "engine/repo/bytes.h"
#include "engine/repo/crypto.h"
#include "engine/gendata.h"
#include "engine/repo/localfile.h"
#include "engine/repo/pack.h"

#define GEN_SEED 1
#define STORE_STEP_DEFAULT (256ull << 20)
#define SNAP_FRESH "bench"
#define SNAP_NEXT "bench-next-day"

/* ---- clocks ---- */

static double mono_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double ru_cpu(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 + (double)ru->ru_stime.tv_sec +
	       (double)ru->ru_stime.tv_usec / 1e6;
}

/* CPU time of the calling thread or the whole process, to the nanosecond (getrusage counts in scheduler
 * ticks, too coarse for a stage that takes milliseconds). */
static double cpu_now(clockid_t clock)
{
	struct timespec t;
	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

double bench_mb_per_s(const bench_cost *c)
{
	return c->seconds > 0 ? (double)c->bytes / 1e6 / c->seconds : 0.0;
}

double bench_cpu_per_gb(const bench_cost *c)
{
	return c->bytes > 0 ? c->cpu_seconds / ((double)c->bytes / 1e9) : 0.0;
}

typedef struct span {
	double t0, cpu0;
	clockid_t clock;
} span;

static span span_start(clockid_t clock)
{
	return (span){mono_now(), cpu_now(clock), clock};
}

static bench_cost span_end(const span *s, uint64_t bytes)
{
	return (bench_cost){bytes, mono_now() - s->t0, cpu_now(s->clock) - s->cpu0};
}

static void phase(bench_phase_fn fn, void *arg, const char *what)
{
	if (fn != NULL)
		fn(arg, what);
}

/* ---- interruption ---- */

/* bench.h: while a benchmark runs, SIGINT, SIGTERM and SIGHUP only set this flag. The pipeline stops before its
 * next stage or run (a run's child gets the signal from the terminal too, or SIGTERM from the parent), the store
 * measurement before its next request, and the cleanup runs before the error returns. */
static volatile sig_atomic_t interrupted;

static const int guarded[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction guard_saved[3]; /* the dispositions before bench_guard_start, for its end and children */

static void on_signal(int sig)
{
	interrupted = sig;
}

void bench_guard_start(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wait4 and reads return EINTR */
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	for (int i = 0; i < 3; i++) {
		sigaction(guarded[i], NULL, &guard_saved[i]);
		if (guard_saved[i].sa_handler != SIG_IGN) /* `dre bench &` from a script: stay deaf to SIGINT */
			sigaction(guarded[i], &sa, NULL);
	}
}

void bench_guard_end(void)
{
	for (int i = 0; i < 3; i++)
		sigaction(guarded[i], &guard_saved[i], NULL);
}

int bench_interrupted(void)
{
	if (interrupted)
		return err_set(DRE_EIO, "interrupted by signal %d", (int)interrupted);
	return 0;
}

/* ---- files ---- */

/* The runs' input files, in the temporary directory: not durable, they are removed at the end. */
static int write_file(const char *path, const uint8_t *p, size_t len)
{
	struct iovec v = {(void *)p, len};
	return localfile_write(path, &v, 1, 0600, false);
}

/* Reads up to want bytes of path into a malloc'd *out. */
static int read_input(const char *path, uint64_t want, uint8_t **out, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open input file %s", path);
	if (fstat(fd, &sb) < 0) {
		int rc = err_sys("cannot read input file %s", path);
		close(fd);
		return rc;
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return err_set(DRE_EINVAL, "input %s is a directory; --input wants a file", path);
	}
	if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size < want)
		want = (uint64_t)sb.st_size;
	uint8_t *p = want > 0 ? malloc(want) : NULL;
	if (want > 0 && p == NULL) {
		close(fd);
		return err_set(DRE_ENOMEM, "input file %s: cannot allocate %llu bytes", path, (unsigned long long)want);
	}
	size_t got = 0;
	while (got < want) {
		ssize_t n = read(fd, p + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = err_sys("cannot read input file %s", path);
			close(fd);
			free(p);
			return rc;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == 0) {
		free(p);
		return err_set(DRE_EINVAL, "input file %s is empty", path);
	}
	*out = p;
	*len = got;
	return 0;
}


/* The file's next day (bench.h): 100 runs of len/10000 bytes, evenly spread, each byte XOR 0x5a. */
static void edit_next_day(uint8_t *p, size_t len)
{
	size_t run = len / 10000 > 0 ? len / 10000 : 1;
	for (uint64_t i = 0; i < 100; i++) {
		size_t at = (size_t)((uint64_t)len * (2 * i + 1) / 200);
		for (size_t k = 0; k < run && at + k < len; k++)
			p[at + k] ^= 0x5a;
	}
}

static uint64_t phys_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
}

/* ---- stages ---- */

typedef struct piece {
	size_t off, len;
} piece;

typedef struct stages {
	repo *r;
	const uint8_t *data;
	size_t len;
	piece *cuts;
	size_t ncuts, cuts_cap;
	uint8_t (*ids)[CRYPTO_ID_LEN];
	uint8_t *blobs; /* blob k at blob_off[k]: its stored bytes, then the tag, back to back as in a pack */
	size_t blobs_cap, blobs_len;
	size_t *blob_off;
	uint32_t *stored;
	uint8_t *flags;
	uint32_t *pack_of; /* which pack-size span (and so which subkey) blob k is in */
	size_t *pack_start;
	uint8_t (*subkeys)[CRYPTO_KEY_LEN];
	size_t npacks_cap;
	uint8_t *scratch; /* one chunk's plaintext out of decompression */
	crypto_ctx *cc;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	XXH3_state_t *xxh;
	XXH128_hash_t digest;
} stages;

static void stages_free(stages *s)
{
	free(s->cuts);
	free(s->ids);
	free(s->blobs);
	free(s->blob_off);
	free(s->stored);
	free(s->flags);
	free(s->pack_of);
	free(s->pack_start);
	if (s->subkeys != NULL)
		crypto_wipe(s->subkeys, s->npacks_cap * sizeof *s->subkeys);
	free(s->subkeys);
	free(s->scratch);
	crypto_ctx_free(s->cc);
	ZSTD_freeCCtx(s->zc);
	ZSTD_freeDCtx(s->zd);
	if (s->xxh != NULL)
		XXH3_freeState(s->xxh);
}

/* Everything but the blob buffer, whose size depends on the cuts. */
static int stages_init(stages *s, repo *r, const uint8_t *data, size_t len)
{
	*s = (stages){.r = r, .data = data, .len = len};
	s->cuts_cap = len / r->params.cdc_min + 2;
	s->cuts = malloc(s->cuts_cap * sizeof *s->cuts);
	s->ids = malloc(s->cuts_cap * sizeof *s->ids);
	s->blob_off = malloc(s->cuts_cap * sizeof *s->blob_off);
	s->stored = malloc(s->cuts_cap * sizeof *s->stored);
	s->flags = malloc(s->cuts_cap * sizeof *s->flags);
	s->pack_of = malloc(s->cuts_cap * sizeof *s->pack_of);
	s->scratch = malloc(r->params.cdc_max);
	s->zc = ZSTD_createCCtx();
	s->zd = ZSTD_createDCtx();
	s->xxh = XXH3_createState();
	if (s->cuts == NULL || s->ids == NULL || s->blob_off == NULL || s->stored == NULL || s->flags == NULL ||
	    s->pack_of == NULL || s->scratch == NULL || s->zc == NULL || s->zd == NULL || s->xxh == NULL)
		return err_set(DRE_ENOMEM, "bench: out of memory for %zu chunks", s->cuts_cap);
	TRY(crypto_ctx_new(&s->cc));
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, r->params.zstd_level)))
		return err_set(DRE_EINVAL, "zstd rejects compression level %d", r->params.zstd_level);
	return 0;
}

static int stage_chunker(stages *s)
{
	for (size_t off = 0; off < s->len;) {
		size_t n = cdc_next_boundary(&s->r->chunker, s->data + off, s->len - off, true);
		if (s->ncuts == s->cuts_cap) /* cannot happen: every chunk but the last is at least cdc_min */
			return err_set(DRE_EINVAL, "bench: the chunker cut more chunks than its minimum size allows");
		s->cuts[s->ncuts++] = (piece){off, n};
		off += n;
	}
	return 0;
}

static int stage_hmac(stages *s)
{
	for (size_t k = 0; k < s->ncuts; k++)
		TRY(crypto_hmac(s->cc, s->r->id_key, s->data + s->cuts[k].off, s->cuts[k].len, s->ids[k]));
	return 0;
}

/* The room every blob could need, allocated and touched before the zstd stage is timed: a pack writer's
 * buffer is reused and warm, so page faults on a fresh one are not what a push pays. */
static int stages_alloc_blobs(stages *s)
{
	size_t cap = 0;
	for (size_t k = 0; k < s->ncuts; k++)
		cap += ZSTD_compressBound(s->cuts[k].len) + CRYPTO_TAG_LEN;
	s->blobs = malloc(cap ? cap : 1); /* malloc(0) may return NULL, which is no failure */
	s->npacks_cap = cap / s->r->params.pack_size + 2;
	s->pack_start = malloc(s->npacks_cap * sizeof *s->pack_start);
	s->subkeys = malloc(s->npacks_cap * sizeof *s->subkeys);
	if (s->blobs == NULL || s->pack_start == NULL || s->subkeys == NULL)
		return err_set(DRE_ENOMEM, "bench: cannot allocate %zu bytes for compressed chunks", cap);
	memset(s->blobs, 0, cap);
	s->blobs_cap = cap;
	return 0;
}

/* As pack_writer_add: compressed in place in the pack buffer, or kept as it is when zstd does not shrink it. */
static int stage_zstd(stages *s, uint64_t *stored_total)
{
	size_t pos = 0;
	uint64_t total = 0;
	for (size_t k = 0; k < s->ncuts; k++) {
		const uint8_t *src = s->data + s->cuts[k].off;
		size_t len = s->cuts[k].len;
		uint8_t *dst = s->blobs + pos;
		size_t n = ZSTD_compress2(s->zc, dst, s->blobs_cap - pos - CRYPTO_TAG_LEN, src, len);
		s->flags[k] = BLOB_ZSTD;
		if (ZSTD_isError(n) || n >= len) {
			memcpy(dst, src, len);
			n = len;
			s->flags[k] = 0;
		}
		s->blob_off[k] = pos;
		s->stored[k] = (uint32_t)n;
		pos += n + CRYPTO_TAG_LEN;
		total += n;
	}
	s->blobs_len = pos;
	*stored_total = total;
	return 0;
}

static void blob_aad(const stages *s, size_t k, uint8_t aad[37])
{
	memcpy(aad, s->ids[k], CRYPTO_ID_LEN);
	aad[32] = s->flags[k];
	put_le32(aad + 33, (uint32_t)s->cuts[k].len);
}

/* A new pack-size span, with its own random ID and subkey, as pack_writer_reset starts one. */
static int new_pack(stages *s, size_t p, size_t start)
{
	uint8_t id[CRYPTO_ID_LEN];
	if (p >= s->npacks_cap)
		return err_set(DRE_EINVAL, "bench: more packs than the compressed size allows");
	s->pack_start[p] = start;
	TRY(crypto_random(id, sizeof id));
	return repo_pack_subkey(s->r, id, s->subkeys[p]);
}

static int stage_seal(stages *s)
{
	uint8_t nonce[CRYPTO_NONCE_LEN], aad[37];
	size_t p = 0;
	TRY(new_pack(s, 0, 0));
	for (size_t k = 0; k < s->ncuts; k++) {
		if (s->blob_off[k] - s->pack_start[p] >= s->r->params.pack_size)
			TRY(new_pack(s, ++p, s->blob_off[k]));
		s->pack_of[k] = (uint32_t)p;
		uint8_t *blob = s->blobs + s->blob_off[k];
		pack_blob_nonce((uint32_t)(s->blob_off[k] - s->pack_start[p]), nonce);
		blob_aad(s, k, aad);
		TRY(crypto_seal(s->cc, s->subkeys[p], nonce, aad, sizeof aad, blob, s->stored[k], blob + s->stored[k]));
	}
	return 0;
}

static int stage_open(stages *s)
{
	uint8_t nonce[CRYPTO_NONCE_LEN], aad[37];
	for (size_t k = 0; k < s->ncuts; k++) {
		uint32_t p = s->pack_of[k];
		uint8_t *blob = s->blobs + s->blob_off[k];
		pack_blob_nonce((uint32_t)(s->blob_off[k] - s->pack_start[p]), nonce);
		blob_aad(s, k, aad);
		TRY_CTX(crypto_open(s->cc, s->subkeys[p], nonce, aad, sizeof aad, blob, s->stored[k], blob + s->stored[k]),
			"bench: chunk %zu", k);
	}
	return 0;
}

/* As pack_blob_open after its decryption: into one chunk-sized buffer, as a restore job's. */
static int stage_unzstd(stages *s)
{
	for (size_t k = 0; k < s->ncuts; k++) {
		const uint8_t *blob = s->blobs + s->blob_off[k];
		size_t len = s->cuts[k].len;
		if (!(s->flags[k] & BLOB_ZSTD)) {
			memcpy(s->scratch, blob, len);
			continue;
		}
		size_t n = ZSTD_decompressDCtx(s->zd, s->scratch, s->r->params.cdc_max, blob, s->stored[k]);
		if (ZSTD_isError(n) || n != len)
			return err_set(DRE_ECORRUPT, "bench: chunk %zu does not decompress to its %zu bytes", k, len);
	}
	return 0;
}

/* Over the stream a chunk at a time, as restore's main thread hashes what it writes. */
static int stage_xxh3(stages *s)
{
	XXH3_128bits_reset(s->xxh);
	for (size_t k = 0; k < s->ncuts; k++)
		XXH3_128bits_update(s->xxh, s->data + s->cuts[k].off, s->cuts[k].len);
	s->digest = XXH3_128bits_digest(s->xxh);
	return 0;
}

/* Not timed: the chunked hash must be the hash of the whole buffer, or the stage measured something else. */
static int check_xxh3(const stages *s)
{
	if (!XXH128_isEqual(s->digest, XXH3_128bits(s->data, s->len)))
		return err_set(DRE_ECORRUPT, "bench: XXH3-128 in pieces differs from XXH3-128 of the whole buffer");
	return 0;
}

static void stage_named(bench_report *rep, int id, const char *name, const char *label)
{
	rep->stages[id].name = name;
	snprintf(rep->stages[id].label, sizeof rep->stages[id].label, "%s", label);
}

static int run_stages(repo *r, const uint8_t *data, size_t len, bench_report *rep, const bench_opts *o)
{
	stages s;
	span t;
	uint64_t stored = 0;
	const repo_params *p = &r->params;
	char label[64];
	int rc = stages_init(&s, r, data, len);

	snprintf(label, sizeof label, "FastCDC chunker (%u/%u/%u KiB)", p->cdc_min >> 10, p->cdc_avg >> 10,
		 p->cdc_max >> 10);
	stage_named(rep, BENCH_CHUNKER, "chunker", label);
	stage_named(rep, BENCH_HMAC, "hmac", "keyed hash (HMAC-SHA-256)");
	snprintf(label, sizeof label, "zstd level %d compress", p->zstd_level);
	stage_named(rep, BENCH_ZSTD, "zstd", label);
	stage_named(rep, BENCH_SEAL, "seal", "AES-256-GCM seal (compressed)");
	stage_named(rep, BENCH_OPEN, "open", "AES-256-GCM open (compressed)");
	stage_named(rep, BENCH_UNZSTD, "unzstd", "zstd decompress");
	stage_named(rep, BENCH_XXH3, "xxh3", "XXH3-128 (end-to-end check)");
	phase(o->phase, o->phase_arg, "stages");

#define STAGE(id, call, bytes)                                                                                 \
	do {                                                                                                   \
		if (rc == 0)                                                                                   \
			rc = bench_interrupted();                                                              \
		if (rc == 0) {                                                                                 \
			t = span_start(CLOCK_THREAD_CPUTIME_ID);                                                         \
			rc = (call);                                                                           \
			rep->stages[id].cost = span_end(&t, (bytes));                                          \
		}                                                                                              \
	} while (0)

	STAGE(BENCH_CHUNKER, stage_chunker(&s), len);
	STAGE(BENCH_HMAC, stage_hmac(&s), len);
	if (rc == 0)
		rc = stages_alloc_blobs(&s);
	STAGE(BENCH_ZSTD, stage_zstd(&s, &stored), len);
	STAGE(BENCH_SEAL, stage_seal(&s), stored);
	STAGE(BENCH_OPEN, stage_open(&s), stored);
	STAGE(BENCH_UNZSTD, stage_unzstd(&s), len);
	STAGE(BENCH_XXH3, stage_xxh3(&s), len);
#undef STAGE
	if (rc == 0)
		rc = check_xxh3(&s);
	rep->chunks = s.ncuts;
	rep->stages[BENCH_ZSTD].ratio = stored > 0 ? (double)len / (double)stored : 0.0;
	stages_free(&s);
	return rc;
}

/* ---- end to end ---- */

typedef struct e2e {
	char dir[256], repo[300], cache[300], fresh[300], next[300], restored[300];
	char pass[REPO_GENERATED_KEY_LEN + 1];
	int threads;
} e2e;

/* What a child sends back through its pipe. */
typedef struct child_msg {
	int rc;
	uint64_t bytes, stored_new, chunks, chunks_new;
	double engine_seconds;
	int workers;
	char msg[1024];
} child_msg;

static int child_push(repo *r, const e2e *e, const char *path, const char *name, child_msg *m)
{
	push_opts po = {.name = name, .threads = e->threads};
	push_result res = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	int rc = engine_push_fd(r, &po, fd, &res);
	close(fd);
	TRY(rc);
	*m = (child_msg){.bytes = res.size, .stored_new = res.stored_new, .chunks = res.chunks,
			 .chunks_new = res.chunks_new, .engine_seconds = res.seconds, .workers = res.workers};
	return 0;
}

static int child_restore(repo *r, const e2e *e, const char *path, child_msg *m)
{
	snapshot s;
	restore_result res = {0};
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
		      : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path ? path : "/dev/null");
	int rc = snap_find(r, SNAP_FRESH, -1, &s);
	if (rc == 0) {
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): child_work read e before; lost across fork() */
		restore_opts ro = {.out_fd = fd, .threads = e->threads};
		rc = engine_restore(r, &s, &ro, &res);
		snap_free(&s);
	}
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("cannot write %s", path ? path : "/dev/null");
	TRY(rc);
	*m = (child_msg){.bytes = res.bytes, .engine_seconds = res.seconds, .workers = res.workers};
	return 0;
}

static int child_work(const e2e *e, int run, child_msg *m)
{
	repo *r;
	int rc;
	TRY(engine_open(e->repo, NULL, e->pass, &r));
	engine_set_cache_dir(r, e->cache);
	switch (run) {
	case BENCH_PUSH_FRESH:
	case BENCH_PUSH_AGAIN: rc = child_push(r, e, e->fresh, SNAP_FRESH, m); break;
	case BENCH_PUSH_NEXT: rc = child_push(r, e, e->next, SNAP_NEXT, m); break;
	case BENCH_RESTORE_NULL: rc = child_restore(r, e, NULL, m); break;
	default: rc = child_restore(r, e, e->restored, m); break;
	}
	engine_close(r);
	return rc;
}

/* The child never returns: it reports and leaves with _exit, which neither runs the parent's atexit handlers
 * nor flushes the stdio buffers it inherited (they would come out twice). */
static void child_main(const e2e *e, int run, int wfd) __attribute__((noreturn));
static void child_main(const e2e *e, int run, int wfd)
{
	child_msg m = {0};
	bench_guard_end(); /* a signal should stop a child as it would stop `dre push` */
	int rc = child_work(e, run, &m);
	m.rc = rc;
	if (rc < 0)
		snprintf(m.msg, sizeof m.msg, "%s", err_msg());
	const uint8_t *p = (const uint8_t *)&m;
	size_t left = sizeof m;
	while (left > 0) {
		ssize_t n = write(wfd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	_exit(rc < 0 ? 1 : 0);
}

static int run_child(const e2e *e, int run, bench_run *out)
{
	int fds[2];
	child_msg m;
	struct rusage ru;
	int status;
	size_t got = 0;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_sys("%s: cannot create a pipe", out->label);
	double t0 = mono_now();
	pid_t pid = fork();
	if (pid < 0) {
		int rc = err_sys("%s: cannot fork", out->label);
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(e, run, fds[1]);
	}
	close(fds[1]);
	while (got < sizeof m) {
		ssize_t n = read(fds[0], (uint8_t *)&m + got, sizeof m - got);
		if (n < 0 && errno == EINTR) {
			if (interrupted)
				kill(pid, SIGTERM);
			continue;
		}
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR)
			return err_sys("%s: cannot wait for the child process", out->label);
		if (interrupted)
			kill(pid, SIGTERM);
	}
	double t1 = mono_now();
	TRY(bench_interrupted());
	if (got < sizeof m) {
		if (WIFSIGNALED(status))
			return err_set(DRE_EIO, "%s: the child process was killed by signal %d", out->label,
				       WTERMSIG(status));
		return err_set(DRE_EIO, "%s: the child process exited with status %d without a result", out->label,
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	if (m.rc < 0)
		return err_set(m.rc, "%s: %s", out->label, m.msg);
	out->cost = (bench_cost){m.bytes, t1 - t0, ru_cpu(&ru)};
	out->engine_seconds = m.engine_seconds;
	out->workers = m.workers;
	out->peak_rss = (uint64_t)ru.ru_maxrss * 1024; /* KiB on Linux */
	out->stored_new = m.stored_new;
	out->chunks = m.chunks;
	out->chunks_new = m.chunks_new;
	return 0;
}

static int run_end_to_end(const e2e *e, uint64_t size, bench_report *rep, const bench_opts *o)
{
	static const char *const names[BENCH_NRUNS] = {"push_fresh", "push_again", "push_next_day", "restore_null",
						       "restore_file"};
	static const char *const labels[BENCH_NRUNS] = {"push (fresh)", "push (same data again)",
							"push (next day)", "restore (to /dev/null, verified)",
							"restore (to a file, verified)"};
	for (int i = 0; i < BENCH_NRUNS; i++) {
		rep->runs[i].name = names[i];
		rep->runs[i].label = labels[i];
	}
	for (int i = 0; i < BENCH_NRUNS; i++) {
		phase(o->phase, o->phase_arg, labels[i]);
		TRY(bench_interrupted());
		TRY(run_child(e, i, &rep->runs[i]));
		if (i >= BENCH_RESTORE_NULL && rep->runs[i].cost.bytes != size)
			return err_set(DRE_ECORRUPT, "%s: restored %llu bytes of %llu", labels[i],
				       (unsigned long long)rep->runs[i].cost.bytes, (unsigned long long)size);
	}
	struct stat sb;
	if (stat(e->restored, &sb) < 0)
		return err_sys("restore (to a file): cannot stat %s", e->restored);
	if ((uint64_t)sb.st_size != size)
		return err_set(DRE_ECORRUPT, "restore (to a file): %s has %lld bytes, not %llu", e->restored,
			       (long long)sb.st_size, (unsigned long long)size);
	return 0;
}

static int e2e_paths(e2e *e, const char *dir)
{
	snprintf(e->dir, sizeof e->dir, "%s", dir);
	snprintf(e->repo, sizeof e->repo, "%s/repo", dir);
	snprintf(e->cache, sizeof e->cache, "%s/cache", dir);
	snprintf(e->fresh, sizeof e->fresh, "%s/data", dir);
	snprintf(e->next, sizeof e->next, "%s/data-next-day", dir);
	snprintf(e->restored, sizeof e->restored, "%s/restored", dir);
	return repo_generate_key(e->pass);
}

/* Everything after the data is in memory and the temporary directory exists; the caller removes it. */
static int pipeline_in(e2e *e, uint8_t **data, size_t len, const repo_params *params, bench_report *rep,
		       const bench_opts *o)
{
	repo *r;
	TRY(e2e_paths(e, rep->dir));
	e->threads = o->threads;
	TRY_CTX(engine_init(e->repo, NULL, e->pass, params, &r), "bench: temporary repository");
	rep->params = r->params;
	int rc = run_stages(r, *data, len, rep, o);
	engine_close(r);
	TRY(rc);

	TRY(bench_interrupted());
	TRY(write_file(e->fresh, *data, len));
	if (rep->generated) {
		phase(o->phase, o->phase_arg, "generating the next day's dump");
		TRY(gendata_dump_fill(*data, len, GEN_SEED, true));
	} else {
		edit_next_day(*data, len);
	}
	TRY(write_file(e->next, *data, len));
	/* a child inherits the parent's resident pages: without this its peak RSS would include the buffer */
	free(*data);
	*data = NULL;
	return run_end_to_end(e, len, rep, o);
}

int bench_pipeline(const bench_opts *o, bench_report *rep)
{
	repo_params params;
	uint8_t *data = NULL;
	size_t len = 0;
	e2e e = {0};

	memset(rep, 0, sizeof *rep);
	repo_params_default(&params);
	if (o->zstd_level != 0)
		params.zstd_level = o->zstd_level;
	TRY(repo_params_check(&params));
	if (o->size == 0)
		return err_set(DRE_EINVAL, "the size to measure must be at least 1 byte");
	uint64_t mem = phys_memory();
	if (o->size > mem / 2)
		return err_set(DRE_EINVAL,
			       "measuring %llu MiB needs about twice that in memory; this machine has %llu MiB",
			       (unsigned long long)(o->size >> 20), (unsigned long long)(mem >> 20));
	rep->threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	rep->generated = o->input == NULL;
	if (o->input != NULL) {
		TRY(read_input(o->input, o->size, &data, &len));
		rep->next_day = "1% of the input changed in 100 places";
	} else {
		char what[80];
		snprintf(what, sizeof what, "generating %llu MiB of dump-like text", (unsigned long long)(o->size >> 20));
		phase(o->phase, o->phase_arg, what);
		len = (size_t)o->size;
		data = malloc(len);
		if (data == NULL)
			return err_set(DRE_ENOMEM, "cannot allocate %zu bytes of data to measure", len);
		int rc = gendata_dump_fill(data, len, GEN_SEED, false);
		if (rc < 0) {
			free(data);
			return rc;
		}
		rep->next_day = "the generator's next-day dump (one table in ten edited)";
	}
	rep->size = len;

	const char *tmp = getenv("TMPDIR");
	snprintf(rep->dir, sizeof rep->dir, "%s/dre-bench-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(rep->dir) == NULL) {
		int rc = err_sys("cannot create a temporary directory %s", rep->dir);
		free(data);
		return rc;
	}
	bench_guard_start();
	int rc = pipeline_in(&e, &data, len, &params, rep, o);
	free(data);
	crypto_wipe(e.pass, sizeof e.pass);
	char first[1024];
	snprintf(first, sizeof first, "%s", rc < 0 ? err_msg() : "");
	int rm = localfile_remove_tree(rep->dir);
	bench_guard_end();
	if (rc < 0 && rm < 0) {
		char second[1024];
		snprintf(second, sizeof second, "%s", err_msg()); /* err_set must not format from its own buffer */
		return err_set(rc, "%s; and %s", first, second);
	}
	if (rc < 0)
		return err_set(rc, "%s", first);
	return rm;
}

/* ---- store ---- */

enum store_op { OP_PUT, OP_GET, OP_DEL };

typedef struct store_job {
	store *st;
	const char *prefix;
	int parallel;
	size_t objects, object_size;
	const uint8_t *payload;
	enum store_op op;
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t mu;
	int rc;
	char msg[1024];
} store_job;

typedef struct store_worker {
	store_job *j;
	uint8_t *buf; /* GET: this thread's buffer, holding the last object it read */
	size_t done;
} store_worker;

static void bench_key(const char *prefix, int parallel, size_t i, char out[80])
{
	snprintf(out, 80, "%s-p%d-%zu", prefix, parallel, i);
}

static void *store_worker_main(void *arg)
{
	store_worker *w = arg;
	store_job *j = w->j;
	char key[80];
	while (!atomic_load(&j->failed) && !interrupted) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->objects)
			break;
		bench_key(j->prefix, j->parallel, i, key);
		int rc = j->op == OP_PUT   ? store_put(j->st, key, j->payload, j->object_size, 0)
			 : j->op == OP_GET ? store_get(j->st, key, 0, j->object_size, w->buf)
					   : store_del(j->st, key);
		if (rc < 0) {
			pthread_mutex_lock(&j->mu);
			if (j->rc == 0) {
				j->rc = rc;
				snprintf(j->msg, sizeof j->msg, "%s", err_msg());
			}
			pthread_mutex_unlock(&j->mu);
			atomic_store(&j->failed, true);
			break;
		}
		w->done++;
	}
	return NULL;
}

/* One timed phase: `parallel` threads taking keys 0..objects-1 in turn. */
static int store_phase(store_job *j, enum store_op op, store_worker *w, bench_cost *cost)
{
	pthread_t th[BENCH_MAX_PARALLEL];
	int started = 0, rc = 0;
	j->op = op;
	atomic_store(&j->next, 0);
	atomic_store(&j->failed, false);
	j->rc = 0;
	span t = span_start(CLOCK_PROCESS_CPUTIME_ID);
	for (; started < j->parallel; started++) {
		w[started].j = j;
		w[started].done = 0;
		int e = pthread_create(&th[started], NULL, store_worker_main, &w[started]);
		if (e != 0) {
			errno = e;
			rc = err_sys("cannot start request thread %d", started + 1);
			atomic_store(&j->failed, true);
			break;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	*cost = span_end(&t, op == OP_DEL ? 0 : (uint64_t)j->objects * j->object_size);
	TRY(rc);
	if (j->rc < 0)
		return err_set(j->rc, "%s", j->msg);
	return bench_interrupted();
}

typedef struct leftovers {
	store *st;
	size_t deleted;
} leftovers;

static int delete_listed(void *arg, const char *key, uint64_t size)
{
	leftovers *l = arg;
	(void)size;
	TRY(store_del(l->st, key));
	l->deleted++;
	return 0;
}

/* After a failure: every key of the step, then whatever a listing of the prefix still shows. Returns the
 * first failure of the cleanup itself, its message in msg. */
static int store_cleanup(store_job *j, char msg[1024])
{
	char key[80];
	int first = 0;
	for (size_t i = 0; i < j->objects; i++) {
		bench_key(j->prefix, j->parallel, i, key);
		int r = store_del(j->st, key);
		if (r < 0 && r != DRE_ENOTFOUND && first == 0) { /* no bucket: nothing can be left in it */
			first = r;
			snprintf(msg, 1024, "%s", err_msg());
		}
	}
	leftovers l = {j->st, 0};
	int r = store_list(j->st, j->prefix, delete_listed, &l);
	if (r < 0 && r != DRE_ENOTFOUND && first == 0) {
		first = r;
		snprintf(msg, 1024, "%s", err_msg());
	}
	return first;
}

static int store_location_exists(store *st, const char *url)
{
	struct stat sb;
	if (strcmp(st->drv->name, "local") != 0)
		return 0;
	const char *path = strncmp(url, "file://", 7) == 0 ? url + 7 : url;
	if (stat(path, &sb) < 0)
		return err_sys("store directory %s", path);
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return err_sys("store directory %s", path);
	}
	return 0;
}

static int store_step(store_job *j, store_worker *w, bench_store_step *s)
{
	TRY(store_phase(j, OP_PUT, w, &s->put));
	TRY(store_phase(j, OP_GET, w, &s->get));
	for (int i = 0; i < j->parallel; i++)
		if (w[i].done > 0 && memcmp(w[i].buf, j->payload, j->object_size) != 0)
			return err_set(DRE_ECORRUPT, "a GET under %s returned other bytes than were put", j->prefix);
	return store_phase(j, OP_DEL, w, &s->del);
}

static int store_steps(store_job *j, const bench_store_opts *o, size_t object_size, bench_store_report *rep)
{
	uint64_t step_bytes = o->step_bytes > 0 ? o->step_bytes : STORE_STEP_DEFAULT;
	size_t per_step = (size_t)((step_bytes + object_size - 1) / object_size);
	store_worker w[BENCH_MAX_PARALLEL] = {0};
	leftovers none = {j->st, 0};
	/* a listing first: a missing bucket or an unreachable endpoint is one clear error before any PUT */
	int rc = store_list(j->st, j->prefix, delete_listed, &none);

	for (int par = 1; rc == 0 && rep->nsteps < BENCH_MAX_STEPS;) {
		bench_store_step *s = &rep->steps[rep->nsteps];
		char what[64];
		j->parallel = par;
		j->objects = per_step > (size_t)par ? per_step : (size_t)par;
		*s = (bench_store_step){.parallel = par, .objects = j->objects};
		snprintf(what, sizeof what, "%d parallel request%s", par, par == 1 ? "" : "s");
		phase(o->phase, o->phase_arg, what);
		for (int i = 0; i < par && rc == 0; i++)
			if (w[i].buf == NULL && (w[i].buf = malloc(object_size)) == NULL)
				rc = err_set(DRE_ENOMEM, "cannot allocate %d buffers of %zu bytes", par, object_size);
		if (rc == 0)
			rc = store_step(j, w, s);
		if (rc < 0) {
			char msg[1024], cleanup[1024];
			snprintf(msg, sizeof msg, "%s", err_msg());
			if (store_cleanup(j, cleanup) < 0)
				rc = err_set(rc, "%s; and the cleanup failed, objects under %s may be left: %s", msg,
					     j->prefix, cleanup);
			else
				rc = err_set(rc, "%s", msg);
			break;
		}
		rep->nsteps++;
		if (par == o->max_parallel)
			break;
		par = par * 2 < o->max_parallel ? par * 2 : o->max_parallel;
	}
	for (int i = 0; i < BENCH_MAX_PARALLEL; i++)
		free(w[i].buf);
	return rc;
}

int bench_store(const bench_store_opts *o, bench_store_report *rep)
{
	repo_params d;
	uint8_t rnd[6];
	store *st;

	memset(rep, 0, sizeof *rep);
	repo_params_default(&d);
	size_t object_size = o->object_size > 0 ? o->object_size : d.pack_size;
	if (o->max_parallel < 1 || o->max_parallel > BENCH_MAX_PARALLEL)
		return err_set(DRE_EINVAL, "parallel requests must be between 1 and %d", BENCH_MAX_PARALLEL);
	uint64_t mem = phys_memory();
	if ((uint64_t)(o->max_parallel + 1) * object_size > mem / 2)
		return err_set(DRE_EINVAL, "%d requests of %zu bytes need more memory than half of this machine's",
			       o->max_parallel, object_size);
	rep->object_size = object_size;
	TRY(crypto_random(rnd, sizeof rnd));
	memcpy(rep->prefix, "dre-bench-", 10);
	hex_encode(rnd, sizeof rnd, rep->prefix + 10);

	TRY(store_open(o->url, o->so, &st));
	rep->driver = st->drv->name;
	int rc = store_location_exists(st, o->url);
	uint8_t *payload = rc == 0 ? store_buffer_alloc(object_size) /* aligned as a pack buffer is */ : NULL;
	if (rc == 0 && payload == NULL)
		rc = err_set(DRE_ENOMEM, "cannot allocate an object of %zu bytes", object_size);
	/* random bytes, as incompressible as the encrypted packs a repository holds */
	if (rc == 0)
		rc = crypto_random(payload, object_size);
	if (rc == 0) {
		store_job j = {.st = st, .prefix = rep->prefix, .object_size = object_size, .payload = payload};
		pthread_mutex_init(&j.mu, NULL);
		bench_guard_start();
		rc = store_steps(&j, o, object_size, rep);
		bench_guard_end();
		pthread_mutex_destroy(&j.mu);
		if (rc < 0)
			err_ctx(rc, "store %s", o->url);
	}
	free(payload);
	store_close(st);
	return rc;
}
