/*
 * indexbench — the index at scale: what a push or a restore of a repository of N chunks (default ten million)
 * pays for the chunk index before it reads any data. `make bench-index` runs it at the default size.
 *
 *   dre-indexbench [--entries N] [--lookups N] [--seed N] [--cold] [--json]
 *
 * In a temporary local repository (a directory from mkdtemp under $TMPDIR, else /tmp; fast scrypt, the default
 * chunk and pack sizes) it writes the index that pushes of N chunks would have left: random 32-byte chunk IDs in
 * packs of pack_size / cdc_avg entries (128) with plausible offsets and lengths, reserved and committed into a
 * chunk_index and written as real, encrypted index objects through index_builder, an object at least every
 * 65,536 entries as push.c does; then the local index cache (index_cache_save). No pack object is written: the
 * index only names them. It then measures, each time in a fresh chunk_index:
 *   - index_load from the cache (what a push on the same machine pays),
 *   - index_load from the store alone (every index object fetched, decrypted and decoded: a new machine, or a
 *     cache that is gone),
 *   - memory: index_memory() per chunk, and the growth of the process's VmRSS per chunk across the load (each
 *     side after malloc_trim, so pages freed earlier and kept by the allocator count neither way); the peak
 *     growth is VmHWM after a reset through /proc/self/clear_refs, less VmRSS before,
 *   - index_find: --lookups calls (default a million) with IDs present (a sample of the written ones, checked
 *     against where they were written) and with IDs absent, in ns per call.
 * The files are read from the page cache, warm from being written; --cold evicts this run's own files from it
 * (posix_fadvise) before each load, so the loads read the disk (as far as this VM is concerned: a host may still
 * cache them).
 *
 * The temporary directory is removed at the end, also after a failure or SIGINT, SIGTERM or SIGHUP (which stop
 * the run at its next step).
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/bench.h"
#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/repo/localfile.h"
#include "engine/repo/pack.h"
#include "store/err.h"

#define ENTRIES_DEFAULT 10000000ull
#define ENTRIES_MAX UINT32_MAX  /* the most a chunk_index holds */
#define LOOKUPS_DEFAULT 1000000ull
#define LOOKUPS_MAX 1000000000ull
#define SAMPLE_MAX (1u << 20)   /* IDs kept for lookups; more lookups go through them again */
#define FLUSH_ENTRIES 65536     /* push.c's INDEX_FLUSH_ENTRIES: an index object at least this often */
#define BYTES_PER_ENTRY_PEAK 128 /* the process's peak per entry, with room: 75 measured at 10 million */
#define PASSWORD "dre-indexbench"
#define SCRYPT_LOG2N 10 /* the unit tests' setting: opening costs nothing worth measuring here */

typedef struct rng {
	uint64_t s;
} rng;

/* splitmix64: fast, and the same IDs for the same seed */
static uint64_t rng_next(rng *g)
{
	uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void rng_id(rng *g, uint8_t id[CRYPTO_ID_LEN])
{
	for (size_t i = 0; i < CRYPTO_ID_LEN; i += 8) {
		uint64_t v = rng_next(g);
		memcpy(id + i, &v, sizeof v);
	}
}

/* A written entry kept for lookups, with the number of its pack in the order they were written. */
typedef struct sample {
	pack_entry loc;
	uint32_t pack_seq;
} sample;

/* What one step cost, and the index it left. */
typedef struct cost {
	double seconds, cpu_seconds;
	int64_t rss_growth;  /* bytes of VmRSS (after malloc_trim), negative when the step freed more than it kept */
	int64_t peak_growth; /* VmHWM over the step less VmRSS before it; -1 when the kernel cannot reset VmHWM */
	bool has_index, has_lookups;
	size_t count, memory; /* index_count, index_memory afterwards */
	double hit_ns, miss_ns;
} cost;

typedef struct bench {
	uint64_t entries, lookups, seed;
	bool cold, json, show;

	char dir[4096];
	char repo_url[4200], cache_dir[4200], cache_path[4400];
	repo *r;
	uint32_t per_pack;

	uint8_t (*pack_ids)[CRYPTO_ID_LEN];
	size_t npacks, packs_cap;
	sample *hits;
	size_t nhits;
	uint8_t (*misses)[CRYPTO_ID_LEN];
	size_t nmisses;

	size_t objects;
	uint64_t object_bytes, cache_bytes;
	cost build, save, from_cache, from_store;

	size_t warnings;
	char warning[1024];
} bench;


/* ---- clocks and memory ---- */

static double clock_s(clockid_t clock)
{
	struct timespec t;
	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A field of /proc/self/status given in kB ("VmRSS", "VmHWM"), in bytes. */
static int proc_status(const char *field, int64_t *bytes)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f == NULL)
		return err_sys("cannot open /proc/self/status");
	char line[256];
	size_t n = strlen(field);
	bool found = false;
	while (!found && fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			*bytes = strtoll(line + n + 1, NULL, 10) * 1024;
			found = true;
		}
	}
	fclose(f);
	if (!found)
		return err_set(DRE_ENOTFOUND, "/proc/self/status has no %s line", field);
	return 0;
}

/* Resets VmHWM to the current RSS (Linux 4.0 on); false when the kernel refuses. */
static bool peak_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

typedef struct mark {
	double t, cpu;
	int64_t rss;
	bool peak;
} mark;

static int mark_start(mark *m)
{
	/* hands back the pages earlier steps freed but the allocator kept, so that the step's growth is not
	 * hidden by reusing them */
	malloc_trim(0);
	TRY(proc_status("VmRSS", &m->rss));
	m->peak = peak_reset();
	m->cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	m->t = clock_s(CLOCK_MONOTONIC);
	return 0;
}

/* Ends a step; idx (NULL: none) is the index it left, whose count and memory are recorded. */
static int mark_end(const mark *m, const chunk_index *idx, cost *c)
{
	int64_t rss, hwm;
	c->seconds = clock_s(CLOCK_MONOTONIC) - m->t;
	c->cpu_seconds = clock_s(CLOCK_PROCESS_CPUTIME_ID) - m->cpu;
	malloc_trim(0); /* what the step left resident, not what the allocator kept of what it freed */
	TRY(proc_status("VmRSS", &rss));
	c->rss_growth = rss - m->rss;
	c->peak_growth = m->peak && proc_status("VmHWM", &hwm) == 0 ? hwm - m->rss : -1;
	c->has_index = idx != NULL;
	if (idx != NULL) {
		c->count = index_count(idx);
		c->memory = index_memory(idx);
	}
	return 0;
}

/* ---- files ---- */

/* Drops one of this run's files from the page cache (they are all fsynced, so their pages are clean). */
static int evict_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return rc == 0 ? 0 : -1;
}

static int evict_tree(const char *dir)
{
	if (nftw(dir, evict_entry, 16, FTW_PHYS) != 0)
		return err_sys("cannot evict the files of %s from the page cache", dir);
	return 0;
}

static void phase(const bench *b, const char *what)
{
	if (b->show)
		fprintf(stderr, "\rdre-indexbench: %s...\033[K", what);
}

/* ---- the index written ---- */

/* The next entry of a pack: raw length uniform over [min, 2·avg − min] (its mean is the chunker's average),
 * half of the chunks compressed to 20–90 %, the other half stored as they are, blobs back to back. */
static void entry_make(rng *g, const repo_params *p, uint32_t *offset, pack_entry *e)
{
	rng_id(g, e->id);
	uint32_t span = 2 * (p->cdc_avg - p->cdc_min);
	e->raw_len = p->cdc_min + (uint32_t)(rng_next(g) % (span + 1));
	if (e->raw_len > p->cdc_max)
		e->raw_len = p->cdc_max;
	uint64_t v = rng_next(g);
	if (v & 1) {
		e->flags = BLOB_ZSTD;
		e->stored_len = (uint32_t)((uint64_t)e->raw_len * (20 + (v >> 1) % 70) / 100);
	} else {
		e->flags = 0;
		e->stored_len = e->raw_len;
	}
	e->offset = *offset;
	*offset += e->stored_len + CRYPTO_TAG_LEN;
}

/* One pack's entries as a push records them: reserved while hashing, then committed with the pack number
 * once the pack is stored, and added to the index object being built. */
static int pack_add(bench *b, chunk_index *idx, index_builder *ib, const pack_entry *pe, size_t n)
{
	uint32_t pack_no;
	for (size_t i = 0; i < n; i++) {
		int fresh = index_reserve(idx, pe[i].id);
		TRY(fresh);
		if (fresh == 0)
			return err_set(DRE_EINVAL, "two generated chunk IDs share their first %d bytes; try another --seed",
				       INDEX_KEY_LEN);
	}
	TRY(index_pack_intern(idx, b->pack_ids[b->npacks - 1], &pack_no));
	for (size_t i = 0; i < n; i++)
		TRY(index_commit(idx, pack_no, &pe[i]));
	TRY(index_builder_add_pack(ib, b->pack_ids[b->npacks - 1], pe, n));
	if (ib->nentries >= FLUSH_ENTRIES)
		TRY(index_builder_flush(ib, b->r, idx));
	return 0;
}

static int build_packs(bench *b, chunk_index *idx, index_builder *ib, pack_entry *pe)
{
	rng g = {b->seed};
	uint64_t stride = b->entries / b->nhits, k = 0;
	size_t kept = 0;
	while (k < b->entries) {
		size_t n = b->entries - k < b->per_pack ? (size_t)(b->entries - k) : b->per_pack;
		uint32_t offset = 0;
		if (!array_room(&b->pack_ids, &b->packs_cap, b->npacks, CRYPTO_ID_LEN, 4096))
			return err_set(DRE_ENOMEM, "cannot grow the list of pack IDs");
		TRY(crypto_random(b->pack_ids[b->npacks++], CRYPTO_ID_LEN)); /* as pack_writer_reset names a pack */
		for (size_t i = 0; i < n; i++, k++) {
			entry_make(&g, &b->r->params, &offset, &pe[i]);
			if (k % stride == 0 && kept < b->nhits)
				b->hits[kept++] = (sample){pe[i], (uint32_t)(b->npacks - 1)};
		}
		TRY(pack_add(b, idx, ib, pe, n));
		TRY(bench_interrupted());
	}
	return index_builder_flush(ib, b->r, idx); /* the last object, as push_finish writes it */
}

static int build(bench *b, chunk_index *idx)
{
	index_builder ib = {0};
	pack_entry *pe = malloc(b->per_pack * sizeof *pe);
	if (pe == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a pack of %u entries", b->per_pack);
	int rc = build_packs(b, idx, &ib, pe);
	index_builder_free(&ib);
	free(pe);
	return rc;
}

/* ---- measurements ---- */

/* ns per index_find over b->lookups calls, going through ids (stride bytes apart) as often as it takes. */
static double find_ns(const bench *b, const chunk_index *idx, const uint8_t *ids, size_t n, size_t stride,
		      uint64_t *found)
{
	index_entry e;
	uint64_t done = 0, hits = 0;
	double t0 = clock_s(CLOCK_MONOTONIC);
	while (done < b->lookups) {
		for (size_t i = 0; i < n && done < b->lookups; i++, done++)
			hits += index_find(idx, ids + i * stride, &e);
	}
	double ns = (clock_s(CLOCK_MONOTONIC) - t0) * 1e9 / (double)b->lookups;
	*found = hits;
	return ns;
}

/* Times lookups of present and absent IDs, then checks (untimed) that every sampled entry is where it was
 * written. */
static int lookups(const bench *b, const chunk_index *idx, const char *what, cost *c)
{
	uint64_t found;
	c->hit_ns = find_ns(b, idx, b->hits[0].loc.id, b->nhits, sizeof *b->hits, &found);
	if (found != b->lookups)
		return err_set(DRE_ECORRUPT, "%s: %" PRIu64 " of %" PRIu64 " lookups of written chunks found nothing",
			       what, b->lookups - found, b->lookups);
	c->miss_ns = find_ns(b, idx, b->misses[0], b->nmisses, CRYPTO_ID_LEN, &found);
	if (found != 0)
		return err_set(DRE_ECORRUPT, "%s: %" PRIu64 " lookups of absent chunk IDs found an entry", what, found);
	c->has_lookups = true;
	for (size_t i = 0; i < b->nhits; i++) {
		const pack_entry *w = &b->hits[i].loc;
		index_entry e;
		const uint8_t *pack_id = index_find(idx, w->id, &e) ? index_pack_id(idx, e.pack) : NULL;
		if (pack_id == NULL || memcmp(pack_id, b->pack_ids[b->hits[i].pack_seq], CRYPTO_ID_LEN) != 0 ||
		    e.loc.offset != w->offset || e.loc.stored_len != w->stored_len || e.loc.raw_len != w->raw_len ||
		    e.loc.flags != w->flags)
			return err_set(DRE_ECORRUPT, "%s: sampled chunk %zu is not where it was written", what, i);
	}
	return 0;
}

static void on_warning(void *arg, const char *msg)
{
	bench *b = arg;
	if (b->warnings++ == 0)
		snprintf(b->warning, sizeof b->warning, "%s", msg);
}

/* index_load into a fresh chunk_index (from the cache when cache_path is set), measured, checked, and its
 * lookups timed. */
static int load(bench *b, const char *cache_path, const char *what, cost *c)
{
	chunk_index *idx;
	mark m;
	size_t objects = 0;
	if (b->cold)
		TRY(evict_tree(b->dir));
	TRY(index_new(&idx));
	b->warnings = 0;
	int rc = mark_start(&m);
	if (rc == 0)
		rc = index_load(b->r, idx, cache_path, on_warning, b, &objects);
	if (rc == 0)
		rc = mark_end(&m, idx, c);
	if (rc == 0 && b->warnings > 0) /* the cache refused, or an object skipped: not what is to be measured */
		rc = err_set(DRE_ECORRUPT, "%s: %zu warning(s), the first: %s", what, b->warnings, b->warning);
	if (rc == 0 && (c->count != b->entries || index_pack_count(idx) != b->npacks || objects != b->objects))
		rc = err_set(DRE_ECORRUPT, "%s: %zu entries in %zu packs from %zu index objects, where %" PRIu64
			     " in %zu from %zu were written", what, c->count, index_pack_count(idx), objects,
			     b->entries, b->npacks, b->objects);
	if (rc == 0)
		rc = lookups(b, idx, what, c);
	index_free(idx);
	return rc;
}

static int count_object(void *arg, const char *key, uint64_t size)
{
	bench *b = arg;
	(void)key;
	b->objects++;
	b->object_bytes += size;
	return 0;
}

static int steps(bench *b)
{
	chunk_index *idx;
	mark m;
	char what[160];

	snprintf(what, sizeof what, "writing the index of %" PRIu64 " chunks", b->entries);
	phase(b, what);
	TRY(index_new(&idx));
	int rc = mark_start(&m);
	if (rc == 0)
		rc = build(b, idx);
	if (rc == 0)
		rc = mark_end(&m, idx, &b->build);
	if (rc == 0)
		rc = lookups(b, idx, "the index as written", &b->build);
	if (rc == 0) {
		phase(b, "saving the index cache");
		rc = mark_start(&m);
	}
	if (rc == 0)
		rc = index_cache_save(b->r, idx, b->cache_path);
	if (rc == 0)
		rc = mark_end(&m, NULL, &b->save);
	index_free(idx);
	TRY(rc);
	TRY(bench_interrupted());

	struct stat sb;
	TRY(store_list(b->r->st, "index/", count_object, b));
	if (stat(b->cache_path, &sb) < 0)
		return err_sys("cannot read the index cache %s", b->cache_path);
	b->cache_bytes = (uint64_t)sb.st_size;

	phase(b, "loading the index from the cache");
	TRY(load(b, b->cache_path, "the load from the cache", &b->from_cache));
	TRY(bench_interrupted());
	phase(b, "loading the index from the store");
	TRY(load(b, NULL, "the load from the store", &b->from_store));
	return bench_interrupted();
}

/* The repository, the samples, then every step; the repository is closed before the caller removes it. */
static int run(bench *b)
{
	repo_params p;
	repo_params_default(&p);
	p.scrypt_log2n = SCRYPT_LOG2N;
	snprintf(b->repo_url, sizeof b->repo_url, "%s/repo", b->dir);
	snprintf(b->cache_dir, sizeof b->cache_dir, "%s/cache", b->dir);
	TRY(engine_init(b->repo_url, NULL, PASSWORD, &p, &b->r));
	engine_set_cache_dir(b->r, b->cache_dir);
	int rc = index_cache_path(b->r, b->cache_path, sizeof b->cache_path) != NULL
			 ? 0
			 : err_set(DRE_EINVAL, "the index cache path under %s is too long", b->cache_dir);
	b->per_pack = b->r->params.pack_size / b->r->params.cdc_avg;
	b->nhits = (size_t)(b->lookups < b->entries ? b->lookups : b->entries);
	b->nhits = b->nhits < SAMPLE_MAX ? b->nhits : SAMPLE_MAX;
	b->nmisses = (size_t)(b->lookups < SAMPLE_MAX ? b->lookups : SAMPLE_MAX);
	b->hits = malloc(b->nhits * sizeof *b->hits);
	b->misses = malloc(b->nmisses * sizeof *b->misses);
	if (rc == 0 && (b->hits == NULL || b->misses == NULL))
		rc = err_set(DRE_ENOMEM, "cannot allocate %zu chunk IDs to look up", b->nhits + b->nmisses);
	if (rc == 0) {
		memset(b->hits, 0, b->nhits * sizeof *b->hits); /* resident now, so the build's RSS growth is the index's */
		rng g = {b->seed ^ 0x5DEECE66Dull}; /* another stream than the written IDs' */
		for (size_t i = 0; i < b->nmisses; i++)
			rng_id(&g, b->misses[i]);
		rc = steps(b);
	}
	engine_close(b->r);
	b->r = NULL;
	return rc;
}

/* ---- output ---- */

static double per_chunk(double bytes, size_t count)
{
	return count > 0 ? bytes / (double)count : 0.0;
}

static json_t *cost_json(const cost *c)
{
	json_t *o = json_pack("{s:f, s:f, s:I}", "seconds", c->seconds, "cpu_seconds", c->cpu_seconds,
			      "rss_growth_bytes", (json_int_t)c->rss_growth);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "peak_growth_bytes",
			    c->peak_growth >= 0 ? json_integer((json_int_t)c->peak_growth) : json_null());
	if (c->has_index) {
		json_object_set_new(o, "entries", json_integer((json_int_t)c->count));
		json_object_set_new(o, "index_memory_bytes", json_integer((json_int_t)c->memory));
		json_object_set_new(o, "bytes_per_chunk_index_memory", json_real(per_chunk((double)c->memory, c->count)));
		json_object_set_new(o, "bytes_per_chunk_rss", json_real(per_chunk((double)c->rss_growth, c->count)));
	}
	if (c->has_lookups) {
		json_object_set_new(o, "find_present_ns", json_real(c->hit_ns));
		json_object_set_new(o, "find_absent_ns", json_real(c->miss_ns));
	}
	return o;
}

static int print_json(const bench *b)
{
	json_t *root = json_pack("{s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:s, s:{s:o, s:o, s:o, s:o}}",
				 "entries", (json_int_t)b->entries, "packs", (json_int_t)b->npacks,
				 "entries_per_pack", (int)b->per_pack, "index_objects", (json_int_t)b->objects,
				 "index_object_bytes", (json_int_t)b->object_bytes, "cache_bytes",
				 (json_int_t)b->cache_bytes, "lookups", (json_int_t)b->lookups, "seed",
				 (json_int_t)b->seed, "page_cache", b->cold ? "cold" : "warm", "steps", "build",
				 cost_json(&b->build), "cache_save", cost_json(&b->save), "load_cache",
				 cost_json(&b->from_cache), "load_store", cost_json(&b->from_store));
	if (root == NULL)
		return err_set(DRE_ENOMEM, "cannot build the JSON report");
	int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(root);
	if (rc < 0 || fputc('\n', stdout) == EOF)
		return err_set(DRE_EIO, "cannot write the JSON report");
	return 0;
}

static void mib(int64_t bytes, char out[32])
{
	double v = (double)bytes / (1 << 20);
	snprintf(out, 32, "%.0f", v > -0.5 && v < 0.5 ? 0.0 : v);
}

static void print_row(const char *label, const cost *c)
{
	char rss[32], peak[32], mem[32], per_rss[32], hit[32], miss[32];
	mib(c->rss_growth, rss);
	if (c->peak_growth >= 0)
		mib(c->peak_growth, peak);
	else
		snprintf(peak, sizeof peak, "-");
	snprintf(mem, sizeof mem, "-");
	snprintf(per_rss, sizeof per_rss, "-");
	snprintf(hit, sizeof hit, "-");
	snprintf(miss, sizeof miss, "-");
	if (c->has_index) {
		snprintf(mem, sizeof mem, "%.1f", per_chunk((double)c->memory, c->count));
		snprintf(per_rss, sizeof per_rss, "%.1f", per_chunk((double)c->rss_growth, c->count));
	}
	if (c->has_lookups) {
		snprintf(hit, sizeof hit, "%.0f", c->hit_ns);
		snprintf(miss, sizeof miss, "%.0f", c->miss_ns);
	}
	printf("  %-28s %7.2f %7.2f %8s %8s %8s %8s %8s %8s\n", label, c->seconds, c->cpu_seconds, rss, peak, mem,
	       per_rss, hit, miss);
}

static void print_table(const bench *b)
{
	char label[64];
	printf("index at scale: %" PRIu64 " chunks in %zu packs of %u, %zu index objects (%.1f MiB), cache %.1f MiB, "
	       "page cache %s\n",
	       b->entries, b->npacks, b->per_pack, b->objects, (double)b->object_bytes / (1 << 20),
	       (double)b->cache_bytes / (1 << 20), b->cold ? "cold (evicted before each load)" : "warm");
	printf("  %-28s %7s %7s %8s %8s %8s %8s %8s %8s\n", "", "wall s", "CPU s", "RSS +MiB", "peak +", "B/chunk",
	       "B/chunk", "find ns", "find ns");
	printf("  %-28s %7s %7s %8s %8s %8s %8s %8s %8s\n", "", "", "", "", "MiB", "index_m.", "RSS", "present",
	       "absent");
	snprintf(label, sizeof label, "write %zu index objects", b->objects);
	print_row(label, &b->build);
	print_row("save the cache", &b->save);
	print_row("load from the cache", &b->from_cache);
	print_row("load from the store", &b->from_store);
	printf("B/chunk: index_memory() / entries, and VmRSS growth / entries; find: %" PRIu64
	       " index_find calls each\n",
	       b->lookups);
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr, "usage: dre-indexbench [--entries N] [--lookups N] [--seed N] [--cold] [--json]\n");
	return 2;
}

static bool parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	bench b = {.entries = ENTRIES_DEFAULT, .lookups = LOOKUPS_DEFAULT, .seed = 1};
	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		/* every option takes its value the same way */
		if (strcmp(argv[i], "--entries") == 0 && parse_count(next, 1, ENTRIES_MAX, &b.entries))
			i++; /* NOLINT(bugprone-branch-clone) */
		else if (strcmp(argv[i], "--lookups") == 0 && parse_count(next, 1, LOOKUPS_MAX, &b.lookups))
			i++;
		else if (strcmp(argv[i], "--seed") == 0 && parse_count(next, 0, UINT64_MAX, &b.seed))
			i++;
		else if (strcmp(argv[i], "--cold") == 0)
			b.cold = true;
		else if (strcmp(argv[i], "--json") == 0)
			b.json = true;
		else
			return usage();
	}
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && page > 0 && b.entries > (uint64_t)pages * (uint64_t)page / BYTES_PER_ENTRY_PEAK) {
		fprintf(stderr, "dre-indexbench: %" PRIu64 " entries need about %" PRIu64 " MiB of memory; this machine "
			"has %" PRIu64 " MiB\n", b.entries, b.entries * BYTES_PER_ENTRY_PEAK >> 20,
			(uint64_t)pages * (uint64_t)page >> 20);
		return 2;
	}
	b.show = isatty(STDERR_FILENO);

	const char *tmp = getenv("TMPDIR");
	snprintf(b.dir, sizeof b.dir, "%s/dre-indexbench-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(b.dir) == NULL) {
		fprintf(stderr, "dre-indexbench: cannot create a temporary directory %s: %m\n", b.dir);
		return 1;
	}
	bench_guard_start();
	int rc = run(&b);
	char first[1024];
	snprintf(first, sizeof first, "%s", rc < 0 ? err_msg() : "");
	int rm = localfile_remove_tree(b.dir);
	bench_guard_end();
	if (b.show)
		fputs("\r\033[K", stderr);
	free(b.pack_ids);
	free(b.hits);
	free(b.misses);
	if (rc < 0 || rm < 0) {
		if (rc < 0)
			fprintf(stderr, "dre-indexbench: %s\n", first);
		if (rm < 0)
			fprintf(stderr, "dre-indexbench: %s\n", err_msg());
		return 1;
	}
	if (b.json)
		rc = print_json(&b);
	else
		print_table(&b);
	if (rc < 0) {
		fprintf(stderr, "dre-indexbench: %s\n", err_msg());
		return 1;
	}
	return 0;
}
