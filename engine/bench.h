/*
 * bench.h — `dre bench`: what this machine pays for each stage of the pipeline, for whole pushes and
 * restores, and what a store sustains. Measurements, not tests: the figures vary with the machine and its
 * load, so nothing here passes or fails on a number. Results come back as structs; cli/ prints them.
 *
 * bench_pipeline():
 *   1. The data: the first size bytes of gendata.h's dump (seed 1), or of the operator's file.
 *   2. Stages, one after the other on the calling thread, over that buffer cut the way a push cuts it
 *      (FastCDC with the repository's chunk sizes and its key-derived gear table), calling each stage once
 *      per chunk as the workers do: FastCDC, HMAC-SHA-256 chunk IDs, zstd at the level asked, AES-256-GCM seal
 *      of each compressed blob (nonce = its offset, AAD as in a pack, a subkey per pack-size span), open,
 *      zstd decompress, XXH3-128 of the stream. zstd runs on every chunk (the pack writer's shortcut for runs
 *      of incompressible chunks is left out: it would hide zstd's cost on such data).
 *   3. End to end, in a temporary local repository (a directory from mkdtemp under $TMPDIR, else /tmp,
 *      removed at the end whatever happened) opened with a generated key (no scrypt on each open), with its
 *      index cache inside that directory: a child process per run — push fresh, push the same data again,
 *      push a next-day variant, restore to /dev/null (verified by the engine's XXH3-128 check), restore to a
 *      file in that directory (through the page cache: the restore does not fsync). The pushes write packs
 *      past the page cache where the file system allows it (store/local.c), so the restores read them from
 *      the disk, as a restore on another day would. The parent takes each run's wall time (fork to exit, so
 *      it includes opening the repository, as `time dre push` would), its CPU time (user + system) and peak
 *      RSS from wait4(); the child reports the engine's result through a pipe. The parent frees its buffers
 *      first, so a child's peak RSS is its own, not an inherited copy.
 *
 *   The next-day variant: for generated data, gendata.h's next-day dump (one table in ten edited); for a
 *   file, the same bytes with 1 % of them changed in 100 runs spread evenly through it (each byte XOR 0x5a),
 *   which stands for edits in place; neither inserts nor deletes shift the rest of a file.
 *
 * bench_store(): PUT, GET and DELETE throughput against a store, with 1, 2, 4, ... up to max_parallel
 * requests in flight (threads, each doing whole-object store_put / store_get / store_del of distinct keys),
 * from a buffer aligned as a pack buffer is, so a local directory is measured on the path a push takes.
 * Keys are "dre-bench-<12 random hex digits>-p<parallel>-<n>", beside whatever else the location holds (no
 * "/" in them, so a local directory is left without even an empty subdirectory); every one is deleted after
 * its step, and after a failure each key of the step is deleted again and a listing of the prefix removes
 * whatever remains. A signal (SIGINT, SIGTERM, SIGHUP) stops either measurement and still cleans up.
 * The location must exist: on a local directory the driver would create a missing path, which is right for
 * `dre init` but not for a mistyped benchmark target; on S3 a listing of the prefix comes first, so a
 * missing bucket or an unreachable endpoint is one clear error before any PUT.
 */
#ifndef DRE_BENCH_H
#define DRE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* What one stage or run cost: bytes processed, wall seconds, CPU seconds (user + system). */
typedef struct bench_cost {
	uint64_t bytes;
	double seconds, cpu_seconds;
} bench_cost;

/* MB/s (10^6 bytes) and CPU seconds per GB (10^9 bytes) of a cost; 0 when nothing was measured. */
double bench_mb_per_s(const bench_cost *c);
double bench_cpu_per_gb(const bench_cost *c);

enum bench_stage_id {
	BENCH_CHUNKER, BENCH_HMAC, BENCH_ZSTD, BENCH_SEAL, BENCH_OPEN, BENCH_UNZSTD, BENCH_XXH3, BENCH_NSTAGES
};

typedef struct bench_stage {
	const char *name; /* "chunker", "hmac", "zstd", "seal", "open", "unzstd", "xxh3" */
	char label[64];   /* "FastCDC chunker (32/128/512 KiB)", for a table */
	bench_cost cost;  /* bytes: the plaintext, except seal and open: the compressed blobs they process */
	double ratio;     /* zstd: plaintext bytes / stored bytes (a chunk zstd cannot shrink is stored as is) */
} bench_stage;

enum bench_run_id {
	BENCH_PUSH_FRESH, BENCH_PUSH_AGAIN, BENCH_PUSH_NEXT, BENCH_RESTORE_NULL, BENCH_RESTORE_FILE, BENCH_NRUNS
};

typedef struct bench_run {
	const char *name;  /* "push_fresh", "push_again", "push_next_day", "restore_null", "restore_file" */
	const char *label; /* "push (fresh)", ... */
	bench_cost cost;   /* bytes: plaintext read or restored; seconds: fork to exit, measured by the parent */
	double engine_seconds; /* what the engine itself measured (push_result / restore_result) */
	int workers;           /* worker threads the engine ran */
	uint64_t peak_rss;     /* bytes */
	uint64_t stored_new;   /* pushes: bytes of new pack objects */
	uint64_t chunks, chunks_new; /* pushes */
} bench_run;

/* Called on the calling thread as each part begins ("generating 512 MiB of dump-like text", "push (fresh)"),
 * for a progress display; may be NULL. */
typedef void (*bench_phase_fn)(void *arg, const char *what);

typedef struct bench_opts {
	uint64_t size;     /* bytes to measure on (with input: at most this many, the start of the file) */
	const char *input; /* the operator's file; NULL: generated dump text */
	int zstd_level;    /* 0: the repository default */
	int threads;       /* push and restore workers; 0: the engine's default (one per online CPU) */
	bench_phase_fn phase;
	void *phase_arg;
} bench_opts;

typedef struct bench_report {
	uint64_t size;    /* bytes measured (less than asked when the input file is shorter) */
	bool generated;   /* generated dump text, else the input file */
	repo_params params; /* of the temporary repository: chunk sizes, pack size, zstd level */
	uint64_t chunks;  /* chunks the chunker cut */
	int threads;      /* workers the runs asked for: opts.threads, or the online CPUs when that was 0 */
	const char *next_day; /* how the next-day variant was made, in words */
	char dir[256];    /* the temporary directory (already removed when bench_pipeline returns) */
	bench_stage stages[BENCH_NSTAGES];
	bench_run runs[BENCH_NRUNS];
} bench_report;

/* Runs everything above. DRE_EINVAL for options out of range (size 0, more than half the memory, a level
 * zstd refuses); the input file's own error naming it (DRE_ENOTFOUND when missing). */
int bench_pipeline(const bench_opts *o, bench_report *rep);

#define BENCH_MAX_PARALLEL 128
#define BENCH_MAX_STEPS 12

typedef struct bench_store_opts {
	const char *url;      /* a local directory (which must exist) or s3://BUCKET[/PREFIX] */
	const store_opts *so; /* how to reach S3; may be NULL */
	size_t object_size;   /* bytes per object; 0: the repository default pack size */
	uint64_t step_bytes;  /* bytes put (and got) per step; at least one object per thread is used */
	int max_parallel;     /* 1..BENCH_MAX_PARALLEL */
	bench_phase_fn phase;
	void *phase_arg;
} bench_store_opts;

typedef struct bench_store_step {
	int parallel;
	size_t objects;
	bench_cost put, get; /* bytes: objects × object size; cpu: this whole process (the driver's threads) */
	bench_cost del;      /* bytes: 0; seconds for all the objects' deletes */
} bench_store_step;

typedef struct bench_store_report {
	char prefix[32]; /* "dre-bench-<hex>" */
	const char *driver; /* "local", "s3" */
	size_t object_size;
	bench_store_step steps[BENCH_MAX_STEPS];
	size_t nsteps;
} bench_store_report;

/* Runs the store measurement. On failure what it could put is deleted again before it returns (a failed
 * delete is added to the message, with the keys' prefix). */
int bench_store(const bench_store_opts *o, bench_store_report *rep);

/*
 * A benchmark leaves a temporary repository or objects in a store behind if it dies half-way; between
 * bench_guard_start and bench_guard_end, SIGINT, SIGTERM and SIGHUP (where not ignored) only set a flag, which
 * bench_interrupted turns into DRE_EIO naming the signal, so the benchmark stops at its next step and cleans up.
 * bench_pipeline and bench_store guard themselves; other benchmark programs (bench/) use the same guard.
 */
void bench_guard_start(void);
void bench_guard_end(void);
int bench_interrupted(void);

#endif
