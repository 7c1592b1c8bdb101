/*
 * cmd_bench.c — `dre bench`: checks the options, runs engine/bench.h's measurement (the pipeline's stages and
 * end-to-end runs, or with --store a store's throughput) and prints the figures as a table or one JSON object.
 * Needs no repository and no password: the engine makes a temporary repository of its own.
 */
#include "cli/cli.h"

#include <unistd.h>

#include "engine/bench.h"

enum { K_SIZE, K_INPUT, K_LEVEL, K_STORE, K_PARALLEL, K_OBJECT_SIZE };
static const cli_opt bench_opts_table[] = {
	{"size", 0, true},  {"input", 0, true},    {"level", 0, true},
	{"store", 0, true}, {"parallel", 0, true}, {"object-size", 0, true}, {0},
};

#define SIZE_DEFAULT_MB 512
#define STORE_SIZE_DEFAULT_MB 256
#define SIZE_MAX_MB (1u << 20) /* 1 TiB: past any buffer a benchmark should hold */
#define PARALLEL_DEFAULT 8
#define OBJECT_SIZE_MIN 1024u
#define OBJECT_SIZE_MAX (1u << 30)

typedef struct bench_args {
	uint64_t size; /* bytes */
	const char *input, *store;
	int level, parallel;
	size_t object_size;
} bench_args;

static int bench_parse(const cli_args *a, bench_args *b)
{
	uint64_t n;
	TRY(cli_want_args(a, 0, 0, ""));
	*b = (bench_args){.input = a->opt[K_INPUT], .store = a->opt[K_STORE], .parallel = PARALLEL_DEFAULT};
	if (b->store != NULL && *b->store == '\0')
		return cli_usage("--store: the store URL is empty");
	if (b->input != NULL && *b->input == '\0')
		return cli_usage("--input: the file name is empty");
	if (b->store != NULL && (b->input != NULL || a->opt[K_LEVEL] != NULL))
		return cli_usage("--store measures the store alone: --input and --level do not go with it");
	if (b->store == NULL && (a->opt[K_PARALLEL] != NULL || a->opt[K_OBJECT_SIZE] != NULL))
		return cli_usage("--parallel and --object-size go with --store URL");

	n = b->store != NULL ? STORE_SIZE_DEFAULT_MB : SIZE_DEFAULT_MB;
	if (a->opt[K_SIZE] != NULL)
		TRY(cli_parse_uint("size", a->opt[K_SIZE], SIZE_MAX_MB, &n));
	if (n == 0)
		return cli_usage("--size: at least 1 (MiB)");
	b->size = n << 20;
	if (a->opt[K_LEVEL] != NULL) {
		TRY(cli_parse_uint("level", a->opt[K_LEVEL], 19, &n));
		if (n == 0)
			return cli_usage("--level: zstd levels are 1 to 19");
		b->level = (int)n;
	}
	if (a->opt[K_PARALLEL] != NULL) {
		TRY(cli_parse_uint("parallel", a->opt[K_PARALLEL], BENCH_MAX_PARALLEL, &n));
		if (n == 0)
			return cli_usage("--parallel: at least 1 request");
		b->parallel = (int)n;
	}
	if (a->opt[K_OBJECT_SIZE] != NULL) {
		TRY(cli_parse_size("object-size", a->opt[K_OBJECT_SIZE], OBJECT_SIZE_MAX, &n));
		if (n < OBJECT_SIZE_MIN)
			return cli_usage("--object-size: at least %u bytes", OBJECT_SIZE_MIN);
		b->object_size = (size_t)n;
	}
	return 0;
}

/* A one-line "what is running" display on a terminal, erased at the end. */
static void bench_phase(void *arg, const char *what)
{
	(void)arg;
	fprintf(stderr, "\rdre bench: %s...\033[K", what);
}

static void phase_end(bool shown)
{
	if (shown)
		fputs("\r\033[K", stderr);
}

static json_t *cost_json(const bench_cost *c)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "bytes", (json_int_t)c->bytes, "seconds", c->seconds,
			 "cpu_seconds", c->cpu_seconds, "mb_per_s", bench_mb_per_s(c), "cpu_s_per_gb",
			 bench_cpu_per_gb(c));
}

static json_t *pipeline_json(const bench_args *b, const bench_report *rep)
{
	json_t *stages = json_object(), *runs = json_object();
	for (int i = 0; i < BENCH_NSTAGES; i++) {
		const bench_stage *s = &rep->stages[i];
		json_t *o = cost_json(&s->cost);
		json_object_set_new(o, "label", json_string(s->label));
		if (i == BENCH_ZSTD)
			json_object_set_new(o, "ratio", json_real(s->ratio));
		json_object_set_new(stages, s->name, o);
	}
	for (int i = 0; i < BENCH_NRUNS; i++) {
		const bench_run *r = &rep->runs[i];
		json_t *o = cost_json(&r->cost);
		json_object_set_new(o, "label", json_string(r->label));
		json_object_set_new(o, "engine_seconds", json_real(r->engine_seconds));
		json_object_set_new(o, "workers", json_integer(r->workers));
		json_object_set_new(o, "peak_rss_bytes", json_integer((json_int_t)r->peak_rss));
		json_object_set_new(o, "peak_rss_mib", json_real((double)r->peak_rss / (1 << 20)));
		if (i <= BENCH_PUSH_NEXT) {
			json_object_set_new(o, "stored_bytes", json_integer((json_int_t)r->stored_new));
			json_object_set_new(o, "chunks", json_integer((json_int_t)r->chunks));
			json_object_set_new(o, "chunks_new", json_integer((json_int_t)r->chunks_new));
		}
		json_object_set_new(runs, r->name, o);
	}
	const repo_params *p = &rep->params;
	return json_pack("{s:{s:s, s:s?, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:i}, s:o, s:{s:i, s:s, s:o}}", "data",
			 "source", rep->generated ? "generated" : "file", "file", b->input, "bytes",
			 (json_int_t)rep->size, "chunks", (json_int_t)rep->chunks, "params", "chunk_min",
			 (json_int_t)p->cdc_min, "chunk_avg", (json_int_t)p->cdc_avg, "chunk_max",
			 (json_int_t)p->cdc_max, "pack_size", (json_int_t)p->pack_size, "zstd_level", p->zstd_level,
			 "stages", stages, "end_to_end", "threads", rep->threads, "next_day", rep->next_day, "runs",
			 runs);
}

static void pipeline_print(const bench_args *b, const bench_report *rep)
{
	char size[32], rss[32], stored[32];
	fmt_size(rep->size, size);
	if (rep->generated)
		printf("data: %s of generated dump-like text, %llu chunks\n", size, (unsigned long long)rep->chunks);
	else
		printf("data: %s of %s, %llu chunks\n", size, b->input, (unsigned long long)rep->chunks);
	printf("stages, one core, per chunk:%19s%11s\n", "MB/s", "CPU-s/GB");
	for (int i = 0; i < BENCH_NSTAGES; i++) {
		const bench_stage *s = &rep->stages[i];
		char label[96];
		if (i == BENCH_ZSTD)
			snprintf(label, sizeof label, "%s (ratio %.2f)", s->label, s->ratio);
		else
			snprintf(label, sizeof label, "%s", s->label);
		printf("  %-38s %7.0f %10.2f\n", label, bench_mb_per_s(&s->cost), bench_cpu_per_gb(&s->cost));
	}
	printf("end to end, a temporary local repository (%d worker thread%s), one process per run:\n", rep->threads,
	       rep->threads == 1 ? "" : "s");
	printf("  %-38s %7s %10s %10s %11s\n", "", "MB/s", "CPU-s/GB", "peak RSS", "stored");
	for (int i = 0; i < BENCH_NRUNS; i++) {
		const bench_run *r = &rep->runs[i];
		snprintf(rss, sizeof rss, "%.0f MiB", (double)r->peak_rss / (1 << 20));
		if (i <= BENCH_PUSH_NEXT)
			fmt_size(r->stored_new, stored);
		else
			snprintf(stored, sizeof stored, "-");
		printf("  %-38s %7.0f %10.2f %10s %11s\n", r->label, bench_mb_per_s(&r->cost),
		       bench_cpu_per_gb(&r->cost), rss, stored);
	}
	printf("next day: %s\n", rep->next_day);
}

static json_t *store_json(const bench_args *b, const bench_store_report *rep)
{
	json_t *steps = json_array();
	for (size_t i = 0; i < rep->nsteps; i++) {
		const bench_store_step *s = &rep->steps[i];
		json_array_append_new(steps, json_pack("{s:i, s:I, s:o, s:o, s:{s:f, s:f}}", "parallel", s->parallel,
						       "objects", (json_int_t)s->objects, "put", cost_json(&s->put),
						       "get", cost_json(&s->get), "delete", "seconds", s->del.seconds,
						       "per_s",
						       s->del.seconds > 0 ? (double)s->objects / s->del.seconds : 0.0));
	}
	return json_pack("{s:s, s:s, s:s, s:I, s:o}", "store", b->store, "driver", rep->driver, "prefix", rep->prefix,
			 "object_size", (json_int_t)rep->object_size, "steps", steps);
}

static void store_print(const bench_args *b, const bench_store_report *rep)
{
	char osize[32];
	fmt_size(rep->object_size, osize);
	printf("store %s (%s), objects of %s under %s-*, each deleted after its step:\n", b->store, rep->driver, osize,
	       rep->prefix);
	printf("  %8s %8s %10s %13s %10s %13s %10s\n", "parallel", "objects", "PUT MB/s", "PUT CPU-s/GB", "GET MB/s",
	       "GET CPU-s/GB", "DELETE/s");
	for (size_t i = 0; i < rep->nsteps; i++) {
		const bench_store_step *s = &rep->steps[i];
		printf("  %8d %8zu %10.0f %13.2f %10.0f %13.2f %10.0f\n", s->parallel, s->objects,
		       bench_mb_per_s(&s->put), bench_cpu_per_gb(&s->put), bench_mb_per_s(&s->get),
		       bench_cpu_per_gb(&s->get), s->del.seconds > 0 ? (double)s->objects / s->del.seconds : 0.0);
	}
}

static int bench_run_cmd(cli_ctx *ctx, const cli_args *a)
{
	bench_args b;
	TRY(bench_parse(a, &b));
	bool show = !ctx->quiet && isatty(STDERR_FILENO);
	int rc;

	if (b.store != NULL) {
		bench_store_opts o = {.url = b.store, .so = &ctx->store, .object_size = b.object_size,
				      .step_bytes = b.size, .max_parallel = b.parallel,
				      .phase = show ? bench_phase : NULL};
		bench_store_report rep;
		rc = cli_as_usage(bench_store(&o, &rep));
		phase_end(show);
		TRY(rc);
		if (ctx->json)
			return cli_print_json(stdout, store_json(&b, &rep));
		store_print(&b, &rep);
		return 0;
	}
	bench_opts o = {.size = b.size, .input = b.input, .zstd_level = b.level, .threads = ctx->threads,
			.phase = show ? bench_phase : NULL};
	bench_report rep;
	rc = bench_pipeline(&o, &rep);
	phase_end(show);
	/* only what the options chose is a usage error; a bad input file is the file's own error */
	if (rc == DRE_EINVAL && b.input == NULL)
		rc = cli_as_usage(rc);
	TRY(rc);
	if (ctx->json)
		return cli_print_json(stdout, pipeline_json(&b, &rep));
	pipeline_print(&b, &rep);
	return 0;
}

const cli_command cmd_bench = {
	.name = "bench",
	.summary = "measure this machine: pipeline stages, push and restore, or a store",
	.opts = bench_opts_table,
	.run = bench_run_cmd,
	.usage = "usage: dre bench [--size MB] [--input FILE] [--level N] [--threads N] [--json]\n"
		 "       dre bench --store URL [--parallel N] [--object-size SIZE] [--size MB] [--json]\n"
		 "\n"
		 "Measures; needs no repository and no password. Figures vary with the machine and its load.\n"
		 "\n"
		 "Without --store: the first MB MiB of generated pg_dump-like text (the data of dre-gendump), or of\n"
		 "FILE, held in memory (about twice MB is needed), then:\n"
		 "  stages   on one core, called per chunk as a push does: FastCDC with the default chunk sizes,\n"
		 "           HMAC-SHA-256 chunk IDs, zstd at the default level (or N), AES-256-GCM seal and open of\n"
		 "           the compressed chunks, zstd decompress, XXH3-128; MB/s and CPU seconds per GB of what\n"
		 "           each stage processes (the compressed bytes for AES-GCM), and zstd's ratio\n"
		 "  end to end  in a temporary local repository under $TMPDIR (else /tmp), removed at the end:\n"
		 "           push fresh, push the same data again, push the next day's variant, restore to\n"
		 "           /dev/null and to a file (not synced), each in a process of its own: MB/s from its\n"
		 "           wall time (opening the repository included), CPU seconds (user + system) per GB,\n"
		 "           peak RSS, bytes stored. The next day is the generator's next-day dump (one table in\n"
		 "           ten edited); with --input, 1% of the file changed in 100 places.\n"
		 "\n"
		 "With --store: PUT, GET and DELETE of whole objects of random bytes against URL (a local directory,\n"
		 "which must exist, or s3://BUCKET[/PREFIX] with the S3 settings of 'dre help'), with 1, 2, 4, ... up\n"
		 "to N requests in flight, MB MiB per step (at least one object per request). Keys are\n"
		 "dre-bench-<random>-*; each step deletes its objects, and a failure deletes what it had put.\n"
		 "\n"
		 "Options:\n"
		 "  --size MB           MiB to measure (default 512; with --store, per step, default 256)\n"
		 "  --input FILE        measure the start of FILE instead of generated text\n"
		 "  --level N           zstd level 1..19 (default: a new repository's)\n"
		 "  --threads N         (global) push and restore worker threads (default: one per CPU)\n"
		 "  --store URL         measure this store instead\n"
		 "  --parallel N        with --store: the most requests in flight, 1..128 (default 8)\n"
		 "  --object-size SIZE  with --store: bytes per object, 1K..1G (default: a new repository's pack\n"
		 "                      size); suffixes K, M, G\n"
		 "  --json              (global) the same figures as one JSON object\n",
};
