/*
 * push.c — the backup pipeline.
 *
 *   main thread:  reader → chunker → job (a buffer of input and its cut list) ──► job queue
 *   workers (N):  keyed hash → dedup (index reservation) → zstd → AES-GCM → own pack_writer → store
 *                 (on a store whose puts wait on the network, a full pack goes to an upload thread, upload.h,
 *                 and the worker compresses on into a spare buffer)
 *   main thread:  collects finished jobs in order → the chunk list (list.h), a node record as each input ends
 *                 → the node list; both lists put their blobs in packs of their own
 *   at the end:   flush packs → index object → snapshot (packs → index → snapshot: a snapshot never names
 *                 a chunk or list blob whose pack and index entry are not durable)
 *
 * Memory is bounded by configuration: a fixed ring of job buffers (PUSH_SEGMENT each), one pack buffer per
 * worker and one per upload spare, one smaller pack buffer for list blobs and one blob per list level,
 * whatever the input size. Only the chunk index grows, with the repository (index.h: about 34 bytes a chunk).
 *
 * Jobs may hold chunks of several files: small files share a buffer instead of costing one job each.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <xxhash.h>

#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/lock.h"
#include "engine/pipeline/meter.h"
#include "engine/pipeline/pattern.h"
#include "engine/repo/pack.h"
#include "engine/repo/plan.h"
#include "engine/pipeline/producer.h"
#include "engine/pipeline/push.h"
#include "engine/pipeline/reader.h"
#include "engine/pipeline/sniff.h"
#include "engine/testhook.h"
#include "engine/pipeline/upload.h"
#include "engine/pipeline/workq.h"

#define PUSH_SEGMENT (8u << 20) /* input bytes per job */
#define INDEX_FLUSH_ENTRIES 65536 /* write an index object at least this often, bounding the builder */
#define LIST_PACK_SIZE (4u << 20) /* list blobs are 0.03 % of a push at 128 KiB chunks: small packs do */

/* A chunk of the job's data, or with len 0 a chunk a parent snapshot names (its ID already in ids[]): a file
 * taken without reading it. */
struct cut {
	uint32_t off, len;
};

/* An input buffer and its cuts; the worker fills ids[]. */
struct job {
	uint8_t *data;
	size_t len, cap;
	struct cut *cuts;
	size_t ncuts, cuts_cap;
	uint8_t (*ids)[CRYPTO_ID_LEN];
	bool in_use;  /* being filled, or outstanding in the pool */
	uint64_t seq; /* which filling this is: a job is used again and again */
};

/* The snapshot a files push or base backup compares with, walked beside the input in the same order. */
struct parent {
	snapshot snap;
	snap_walk *w;     /* NULL: no parent (none, --force-read, or its walk failed) */
	snap_node n;      /* the parent's next node, when have */
	bool have;
	int64_t read_after_ns; /* a file with an mtime from this on is read whatever it matches */
};

struct worker {
	struct push *p;
	pack_writer pw;
	crypto_ctx *cc;
};

struct push {
	repo *r;
	const push_opts *o;
	reader *rd;
	workq *q;
	struct job *jobs;
	size_t njobs;
	struct worker *workers;
	int nworkers;
	uploader *up; /* NULL when the workers put their packs themselves */

	pthread_mutex_t mu; /* guards idx, ib and the counters below: shared by the workers */
	chunk_index *idx;
	index_builder ib;
	uint64_t stored_new, chunks_new;

	/* owned by the main thread */
	snapshot snap;          /* the header; its lists are written as the push goes */
	snap_node cur;          /* the node being read */
	char cur_path[SNAP_PATH_MAX + 1], cur_link[SNAP_PATH_MAX + 1];
	list_writer nodes, ids; /* the node records and every chunk ID, in order */
	pack_writer lpw;        /* packs of list blobs */
	uint64_t lists_new;     /* list blobs this push stored */
	size_t files;
	XXH3_state_t *xxh;
	bool sniff;             /* the current node is a stream whose first bytes are still to be looked at */
	uint64_t bytes_in;
	meter clock;
	const push_tree *tree; /* a session's filter, NULL for engine_push_paths */

	/* rewinding a file that cannot be read to its end: the chunk IDs collect() drops, by their position among
	 * all cuts (p->cuts_total counts cuts handed to jobs, p->ids_seen the IDs collected) */
	uint64_t cuts_total, ids_seen, drop_from, drop_to, job_seq;
	uint64_t node_first_cut, node_job_seq; /* where the current node's cuts begin */
	size_t node_job_off;

	struct parent par;
	size_t files_skipped;
	uint64_t bytes_skipped;

	/* files pushes */
	bool tolerant;        /* an entry that cannot be read is reported and left out, the push goes on */
	size_t left_out;
	char abs_prefix[4096]; /* what an entry's relative path is appended to for its absolute path (patterns) */
	dev_t root_dev;        /* --one-file-system: the device of the path given */
	uint8_t xattrs[LIST_ENTRY_MAX];
	char xnames[65536];
	uint8_t xvalue[65536];
	repo_lock *lock;  /* a write lock (format-spec.md §16.1) */
	plan_guard guard; /* the prune plans read before the index (§16.3 W1) */
};

/* §16.3 W3: before each index object and the snapshot, the lock still holds and no prune that began during this
 * push plans to delete a pack it relied on. Called with p->mu held or after the workers are joined. */
static int push_guard(struct push *p)
{
	TRY(lock_check(p->lock));
	return plan_guard_check(p->r, p->idx, &p->guard);
}

/* Records the entries of a pack that is durable in the store; the index object that lists them follows later.
 * Runs on a worker, or on an upload thread (uploader_done_fn). */
static int pack_stored(void *arg, const uint8_t id[CRYPTO_ID_LEN], const pack_entry *entries, size_t n,
		       uint64_t size)
{
	struct push *p = arg;
	uint32_t pack_no;
	pthread_mutex_lock(&p->mu);
	int rc = index_pack_intern(p->idx, id, &pack_no);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = index_commit(p->idx, pack_no, &entries[i]);
	if (rc == 0)
		rc = index_builder_add_pack(&p->ib, id, entries, n);
	if (rc == 0 && p->ib.nentries >= INDEX_FLUSH_ENTRIES)
		rc = push_guard(p);
	if (rc == 0 && p->ib.nentries >= INDEX_FLUSH_ENTRIES)
		rc = index_builder_flush(&p->ib, p->r, p->idx);
	p->stored_new += size;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Seals the worker's pack and puts it, or hands it to an upload thread when one has a spare buffer. */
static int worker_flush_pack(void *ctx)
{
	struct worker *w = ctx;
	struct push *p = w->p;
	size_t total;

	if (pack_writer_empty(&w->pw))
		return 0;
	TRY(pack_writer_seal(&w->pw, &total));
	int handed = p->up ? uploader_offer(p->up, &w->pw, total) : 0;
	TRY(handed);
	if (!handed) {
		TRY(pack_writer_put(&w->pw, total));
		TRY(pack_stored(p, w->pw.id, w->pw.entries, w->pw.n, total));
	}
	return pack_writer_reset(&w->pw);
}

/* Keyed hash of every chunk; the ones the repository lacks go into this worker's pack. */
static int worker_run(void *ctx, void *job)
{
	struct worker *w = ctx;
	struct job *j = job;
	struct push *p = w->p;
	for (size_t k = 0; k < j->ncuts; k++) {
		const uint8_t *chunk = j->data + j->cuts[k].off;
		size_t len = j->cuts[k].len;
		if (len == 0)
			continue; /* a parent's chunk: its ID is known, and index_use checked it is stored */
		TRY(crypto_hmac(w->cc, p->r->id_key, chunk, len, j->ids[k]));
		pthread_mutex_lock(&p->mu);
		int fresh = index_reserve(p->idx, j->ids[k]);
		if (fresh == 1)
			p->chunks_new++;
		pthread_mutex_unlock(&p->mu);
		TRY(fresh);
		if (fresh == 0)
			continue;
		if (pack_writer_full(&w->pw))
			TRY(worker_flush_pack(w));
		TRY(pack_writer_add(&w->pw, j->ids[k], chunk, len));
	}
	return 0;
}

/* Puts a finished list blob in the list pack (list_sink_fn), unless the repository has it. Main thread. */
static int list_blob_store(void *arg, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *blob, size_t len)
{
	struct push *p = arg;
	pthread_mutex_lock(&p->mu);
	int fresh = index_reserve(p->idx, id);
	pthread_mutex_unlock(&p->mu);
	TRY(fresh);
	if (fresh == 0)
		return 0;
	p->lists_new++;
	if (pack_writer_full(&p->lpw)) {
		uint64_t size;
		TRY(pack_writer_finish(&p->lpw, &size));
		TRY(pack_stored(p, p->lpw.id, p->lpw.entries, p->lpw.n, size));
		TRY(pack_writer_reset(&p->lpw));
	}
	return pack_writer_add_list(&p->lpw, id, blob, len);
}

/* Takes finished jobs back in order and appends their chunk IDs to the chunk list; wait blocks for one. */
static int collect(struct push *p, bool wait)
{
	void *done;
	int rc;
	while ((rc = workq_next(p->q, wait, &done)) == 1) {
		struct job *j = done;
		for (size_t k = 0; k < j->ncuts; k++, p->ids_seen++)
			if (p->ids_seen < p->drop_from || p->ids_seen >= p->drop_to)
				TRY(list_writer_add(&p->ids, j->ids[k], CRYPTO_ID_LEN));
		j->in_use = false;
		wait = false;
	}
	return rc;
}

static int job_get_free(struct push *p, struct job **out)
{
	for (;;) {
		for (size_t i = 0; i < p->njobs; i++) {
			if (!p->jobs[i].in_use) {
				struct job *j = &p->jobs[i];
				j->in_use = true;
				j->len = j->ncuts = 0;
				j->seq = ++p->job_seq;
				*out = j;
				return 0;
			}
		}
		TRY(collect(p, true));
	}
}

static int job_add_cut(struct job *j, size_t off, size_t len)
{
	if (j->ncuts == j->cuts_cap) {
		size_t cap = j->cuts_cap * 2;
		void *c = realloc(j->cuts, cap * sizeof *j->cuts);
		if (c)
			j->cuts = c;
		void *d = c ? realloc(j->ids, cap * CRYPTO_ID_LEN) : NULL;
		if (d)
			j->ids = d;
		if (c == NULL || d == NULL)
			return err_set(DRE_ENOMEM, "cannot grow a job's cut list");
		j->cuts_cap = cap;
	}
	j->cuts[j->ncuts].off = (uint32_t)off;
	j->cuts[j->ncuts].len = (uint32_t)len;
	j->ncuts++;
	return 0;
}

static void progress(struct push *p, bool final)
{
	if (!meter_due(&p->clock, final))
		return;
	pthread_mutex_lock(&p->mu);
	uint64_t stored = p->stored_new;
	pthread_mutex_unlock(&p->mu);
	p->o->hooks.progress(p->o->hooks.arg, p->bytes_in, stored, meter_seconds(&p->clock), final);
}

/* The job being filled and how far it is chunked. */
struct feed {
	struct job *j;
	size_t chunked; /* bytes of j->data already assigned to cuts */
};

/*
 * Streams one input (fd) as the current node through the pipeline: fills job buffers, chunks them, submits
 * full ones. The unchunked tail of a full buffer (less than one max-size chunk) moves to the start of the next.
 */
/* got new bytes are at the end of the current job: hashes and chunks them, and hands the job to the workers when
 * it is full (its unchunked tail starts the next one). */
static int feed_bytes(struct push *p, struct feed *f, size_t got, bool eof)
{
	const cdc *c = &p->r->chunker;
	struct job *j = f->j;
	if (p->sniff && got > 0) {
		const char *why = sniff_compressed(j->data + j->len, got);
		p->sniff = false;
		if (why != NULL && p->o->hooks.warn != NULL)
			p->o->hooks.warn(p->o->hooks.arg, why);
	}
	XXH3_128bits_update(p->xxh, j->data + j->len, got);
	j->len += got;
	p->cur.size += got;
	p->bytes_in += got;
	for (;;) {
		size_t cut = cdc_next_boundary(c, j->data + f->chunked, j->len - f->chunked, eof);
		if (cut == 0)
			break;
		TRY(job_add_cut(j, f->chunked, cut));
		p->cur.nchunks++;
		p->cuts_total++;
		f->chunked += cut;
	}
	if (j->len == j->cap) {
		struct job *next;
		size_t tail = j->len - f->chunked;
		TRY(workq_submit(p->q, j));
		TRY(job_get_free(p, &next));
		memcpy(next->data, j->data + f->chunked, tail);
		next->len = tail;
		f->j = next;
		f->chunked = 0;
	}
	progress(p, false);
	return collect(p, false);
}

/* Where the current node's cuts begin, so that node_abandon can take them back. */
static void node_mark(struct push *p, const struct feed *f)
{
	p->node_first_cut = p->cuts_total;
	p->node_job_seq = f->j->seq;
	p->node_job_off = f->j->len;
}

/* The current node could not be read to its end: its cuts leave the job being filled, the chunk IDs of its cuts
 * that went out in earlier jobs are dropped as those come back (the pipeline is drained for it: a rare event),
 * and its bytes leave the totals. The chunks already stored stay in their packs, unreferenced until a prune. */
static int node_abandon(struct push *p, struct feed *f)
{
	struct job *j = f->j;
	uint64_t here = j->seq == p->node_job_seq ? p->cuts_total - p->node_first_cut : j->ncuts;
	j->len = j->seq == p->node_job_seq ? p->node_job_off : 0;
	j->ncuts -= here;
	f->chunked = j->len;
	p->cuts_total -= here;
	p->bytes_in -= p->cur.size;
	p->cur.size = p->cur.nchunks = 0;
	if (p->cuts_total > p->node_first_cut) {
		p->drop_from = p->node_first_cut;
		p->drop_to = p->cuts_total;
		while (workq_outstanding(p->q) > 0)
			TRY(collect(p, true));
		p->drop_from = p->drop_to = 0;
	}
	return 0;
}

/* Streams fd as the current node's content. With read_failed set, a failure of the input itself (not of the
 * pipeline) sets it, and the caller may abandon the node. */
static int feed_input(struct push *p, struct feed *f, int fd, bool regular, const char *name, bool *read_failed)
{
	uint64_t pos = 0;
	bool eof = false;

	XXH3_128bits_reset(p->xxh);
	node_mark(p, f);
	while (!eof) {
		struct job *j = f->j;
		size_t got = 0;
		int rc = reader_fill(p->rd, fd, regular, &pos, j->data + j->len, j->cap - j->len, &got, &eof, name);
		if (rc == 0 && test_fail("push-read"))
			rc = err_set(DRE_EIO, "cannot read %s: Input/output error (DRE_TEST_FAIL_AT)", name);
		if (rc < 0 && read_failed != NULL)
			*read_failed = true;
		TRY(rc);
		test_pause("push-reading");
		TRY(feed_bytes(p, f, got, eof));
	}
	XXH128_hash_t h = XXH3_128bits_digest(p->xxh);
	XXH128_canonicalFromHash((XXH128_canonical_t *)p->cur.xxh128, h);
	return 0;
}

/* A meta key/value pair for the snapshot's header (format-spec.md §10). */
static int meta_add(snapshot *sn, const char *key, const char *value)
{
	void *m = realloc(sn->meta, (sn->nmeta + 1) * sizeof *sn->meta);
	if (m == NULL)
		return err_set(DRE_ENOMEM, "cannot add %s to the snapshot", key);
	sn->meta = m;
	sn->meta[sn->nmeta].key = strdup(key);
	sn->meta[sn->nmeta].value = strdup(value);
	sn->nmeta++;
	if (sn->meta[sn->nmeta - 1].key == NULL || sn->meta[sn->nmeta - 1].value == NULL)
		return err_set(DRE_ENOMEM, "cannot add %s to the snapshot", key);
	return 0;
}

/* A meta value that is a list of strings: a JSON array (format-spec.md §10: paths, tags). */
static int meta_add_strings(snapshot *sn, const char *key, const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	char *text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	int rc = text ? meta_add(sn, key, text) : err_set(DRE_ENOMEM, "cannot record the %s", key);
	free(text);
	return rc;
}

/* The meta "tags": the tags given, checked. */
static int tags_meta(snapshot *sn, const push_opts *o)
{
	for (size_t i = 0; i < o->ntags; i++)
		TRY(engine_check_tag(o->tags[i]));
	return o->ntags ? meta_add_strings(sn, SNAP_META_TAGS, o->tags, o->ntags) : 0;
}

static int push_start(struct push *p, repo *r, const push_opts *o, uint8_t kind)
{
	memset(p, 0, sizeof *p);
	p->r = r;
	p->o = o;
	meter_start(&p->clock, &o->hooks);
	pthread_mutex_init(&p->mu, NULL);
	TRY(engine_check_name(o->name));
	if (r->format < REPO_FORMAT_NODES)
		return err_set(DRE_EUNSUPP, "the repository has format version %u, which this dre reads but does not "
					    "write. HINT: 'dre migrate' upgrades it to version %d (older dre versions then "
					    "cannot read it)",
			       r->format, REPO_FORMAT_VERSION);

	p->snap.format = SNAP_FORMAT_NODES;
	p->snap.kind = kind;
	p->snap.time_ns = meter_now_ns();
	p->snap.name = strdup(o->name);
	char host[256] = "";
	if (o->host != NULL && (strlen(o->host) == 0 || strlen(o->host) > 255))
		return err_set(DRE_EINVAL, "a host name must be 1 to 255 bytes long");
	if (o->host == NULL)
		gethostname(host, sizeof host - 1);
	p->snap.host = strdup(o->host ? o->host : host);
	p->xxh = XXH3_createState();
	if (p->snap.name == NULL || p->snap.host == NULL || p->xxh == NULL)
		return err_set(DRE_ENOMEM, "cannot start the push");
	TRY(tags_meta(&p->snap, o));

	TRY(index_new(&p->idx));
	TRY(reader_new(&p->rd));
	TRY(list_writer_init(&p->nodes, r, LIST_NODES, list_blob_store, p));
	TRY(list_writer_init(&p->ids, r, LIST_CHUNKS, list_blob_store, p));
	size_t lsize = r->params.pack_size < LIST_PACK_SIZE ? r->params.pack_size : LIST_PACK_SIZE;
	TRY(pack_writer_init_sized(&p->lpw, r, lsize));
	TRY(lock_acquire(r, REPO_LOCK_WRITE, o->lock_command ? o->lock_command : "push", &p->lock));
	TRY(plan_guard_start(r, p->idx, &p->guard));
	char cache[4200];
	TRY(index_load(r, p->idx, index_cache_path(r, cache, sizeof cache), o->hooks.warn, o->hooks.arg, NULL));
	test_pause("push-loaded");

	p->nworkers = workq_workers(o->threads);
	/* one buffer per worker, one queued and one being filled keep every worker busy (measured: a second
	 * buffer per worker was no faster and cost 16 MiB) */
	p->njobs = (size_t)p->nworkers + 2;
	p->jobs = calloc(p->njobs, sizeof *p->jobs);
	p->workers = calloc((size_t)p->nworkers, sizeof *p->workers);
	if (p->jobs == NULL || p->workers == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the pipeline");
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < p->njobs; i++) {
		struct job *j = &p->jobs[i];
		j->cap = PUSH_SEGMENT;
		j->data = malloc(j->cap);
		j->cuts_cap = PUSH_SEGMENT / r->params.cdc_min + 2;
		j->cuts = malloc(j->cuts_cap * sizeof *j->cuts);
		j->ids = malloc(j->cuts_cap * CRYPTO_ID_LEN);
		if (j->data == NULL || j->cuts == NULL || j->ids == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate the pipeline buffers");
	}
	for (int i = 0; rc == 0 && i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		w->p = p;
		rc = pack_writer_init(&w->pw, r);
		if (rc == 0)
			rc = crypto_ctx_new(&w->cc);
	}
	/* a store that wants more requests in flight than there are workers gets upload threads for the rest */
	int spares = store_in_flight(r->st) - p->nworkers;
	if (rc == 0 && spares > 0)
		rc = uploader_start(&p->up, r, (size_t)spares, p->workers[0].pw.cap, pack_stored, p);
	if (rc == 0)
		rc = workq_start(&p->q, p->nworkers, p->workers, sizeof *p->workers, worker_run, worker_flush_pack,
				 p->njobs);
	return rc;
}

static void push_free(struct push *p)
{
	workq_close(&p->q, DRE_EIO); /* only after a failure is it still running here */
	uploader_finish(&p->up, DRE_EIO);
	for (int i = 0; p->workers && i < p->nworkers; i++) {
		pack_writer_free(&p->workers[i].pw);
		crypto_ctx_free(p->workers[i].cc);
	}
	free(p->workers);
	for (size_t i = 0; p->jobs && i < p->njobs; i++) {
		free(p->jobs[i].data);
		free(p->jobs[i].cuts);
		free(p->jobs[i].ids);
	}
	free(p->jobs);
	reader_free(p->rd);
	index_builder_free(&p->ib);
	index_free(p->idx);
	XXH3_freeState(p->xxh);
	list_writer_free(&p->nodes);
	list_writer_free(&p->ids);
	pack_writer_free(&p->lpw);
	snap_free(&p->snap);
	snap_walk_free(p->par.w);
	snap_free(&p->par.snap);
	plan_guard_free(&p->guard);
	lock_release(p->lock, p->o->hooks.warn, p->o->hooks.arg);
	pthread_mutex_destroy(&p->mu);
}

/* Starts the node that the next input (or nothing, for a directory or symlink) describes. */
static int node_begin(struct push *p, uint8_t type, const char *path)
{
	size_t len = strlen(path);
	if (len == 0 || len > SNAP_PATH_MAX)
		return err_set(DRE_EINVAL, "path %s is longer than %d bytes: not backed up", path, SNAP_PATH_MAX);
	memset(&p->cur, 0, sizeof p->cur);
	memcpy(p->cur_path, path, len + 1);
	p->cur.type = type;
	p->cur.path = p->cur_path;
	return 0;
}

/* The current node is complete (its input ended, its chunks are cut): its record joins the node list. Its
 * chunk IDs join the chunk list as their jobs come back, in the same order. */
static int node_end(struct push *p)
{
	uint8_t rec[LIST_ENTRY_MAX];
	size_t len;
	TRY(snap_node_encode(p->snap.format, &p->cur, rec, sizeof rec, &len));
	TRY(list_writer_add(&p->nodes, rec, len));
	p->snap.chunks_total += p->cur.nchunks;
	p->files += p->cur.type == NODE_FILE || p->cur.type == NODE_STREAM;
	return 0;
}

/* The next push starts from what this one knows, without reading its index objects back. */
static void push_cache_save(struct push *p)
{
	char cache[4200], msg[1200];
	const char *path = index_cache_path(p->r, cache, sizeof cache);
	if (path == NULL || p->chunks_new == 0 || index_cache_save(p->r, p->idx, path) == 0)
		return;
	snprintf(msg, sizeof msg, "index cache not written: %s", err_msg());
	if (p->o->hooks.warn)
		p->o->hooks.warn(p->o->hooks.arg, msg);
}

/*
 * Ends a push: submits the last partial job, takes every job back, joins the workers (every pack is durable
 * after that), and — only when record is set and nothing failed — writes the index object, then the snapshot.
 */
static int push_finish(struct push *p, struct feed *f, int rc, bool record, push_result *res)
{
	if (rc == 0 && f->j != NULL && (f->j->len > 0 || f->j->ncuts > 0))
		rc = workq_submit(p->q, f->j);
	f->j = NULL;
	while (rc == 0 && p->q != NULL && workq_outstanding(p->q) > 0)
		rc = collect(p, true);
	rc = workq_close(&p->q, rc); /* joins the workers */
	rc = uploader_finish(&p->up, rc); /* waits for the last uploads: every pack is durable after this */
	snapshot *s = &p->snap;
	if (rc == 0 && record)
		rc = list_writer_finish(&p->ids, &s->chunks);
	if (rc == 0 && record)
		rc = list_writer_finish(&p->nodes, &s->nodes);
	if (rc == 0 && record && !pack_writer_empty(&p->lpw)) {
		uint64_t size;
		rc = pack_writer_finish(&p->lpw, &size);
		if (rc == 0)
			rc = pack_stored(p, p->lpw.id, p->lpw.entries, p->lpw.n, size);
	}
	if (rc == 0 && record)
		test_pause("push-before-index");
	if (rc == 0 && record && p->ib.nentries > 0)
		rc = push_guard(p);
	if (rc == 0 && record)
		rc = index_builder_flush(&p->ib, p->r, p->idx);
	if (rc < 0 || !record)
		return rc;
	push_cache_save(p);

	if (s->end_time_ns == 0) /* else a copy's, from push_session_set_origin */
		s->end_time_ns = meter_now_ns();
	if (p->left_out > 0) {
		char count[24];
		snprintf(count, sizeof count, "%zu", p->left_out);
		TRY(meta_add(s, SNAP_META_INCOMPLETE, count));
	}
	s->size = p->bytes_in;
	s->stored_new = p->stored_new;
	s->chunks_new = p->chunks_new;
	s->nnodes = s->nodes.count;
	/* the chunks cut (node records' nchunks) and the chunk IDs that came back must agree */
	if (s->chunks.count != s->chunks_total)
		return err_set(DRE_EINVAL, "internal: the chunk list holds %" PRIu64 " chunks, the nodes %" PRIu64,
			       s->chunks.count, s->chunks_total);
	test_pause("push-before-snapshot");
	TRY(push_guard(p));
	TRY(snap_save(p->r, s));
	test_pause("push-after-snapshot");
	/* §16.3 W4: the snapshot is committed only when no plan written meanwhile names a pack it relies on, and
	 * every such pack is still there (a prune may have come and gone, plan and all, during this push) */
	int rc4 = plan_guard_check(p->r, p->idx, &p->guard);
	if (rc4 == 0)
		rc4 = plan_guard_check_packs(p->r, p->idx);
	if (rc4 < 0) {
		char key[80], saved[1024];
		snprintf(saved, sizeof saved, "%s", err_msg());
		repo_object_key("snapshots/", s->id, key);
		if (store_del(p->r->st, key) < 0) {
			char why[1024];
			snprintf(why, sizeof why, "%s", err_msg()); /* err_set must not format from its own buffer */
			return err_set(rc4, "%s; and snapshot %s could not be removed: %s", saved, key, why);
		}
		return err_set(rc4, "%s", saved);
	}
	progress(p, true);

	memcpy(res->id, s->id, CRYPTO_ID_LEN);
	res->size = s->size;
	res->stored_new = s->stored_new;
	res->chunks = s->chunks_total;
	res->chunks_new = s->chunks_new;
	res->lists_new = p->lists_new;
	res->files = p->files;
	res->files_skipped = p->files_skipped;
	res->bytes_skipped = p->bytes_skipped;
	res->left_out = p->left_out;
	res->parent[0] = '\0';
	if (p->par.snap.name != NULL) {
		char hex[65];
		hex_encode(p->par.snap.id, CRYPTO_ID_LEN, hex);
		snprintf(res->parent, sizeof res->parent, "%.16s", hex);
	}
	res->seconds = meter_seconds(&p->clock);
	res->workers = p->nworkers;
	return 0;
}

/* Pushes fd as the stream node path of p (its input ends the node); the first bytes are looked at once for a
 * compressed format that defeats deduplication. */
static int feed_stream(struct push *p, struct feed *f, const char *path, int fd, const char *what)
{
	struct stat st;
	TRY(node_begin(p, NODE_STREAM, path));
	/* no time of its own (a restore gives it the snapshot's), so the same data pushed again under the same name
	 * makes the same node list and stores nothing */
	p->cur.mode = 0600;
	p->cur.mtime_ns = 0;
	p->sniff = true;
	TRY(feed_input(p, f, fd, fstat(fd, &st) == 0 && S_ISREG(st.st_mode), what, NULL));
	return node_end(p);
}

/* fd, or the producer pr's output when pr is not NULL, as one stream snapshot. */
static int push_stream(repo *r, const push_opts *o, int fd, push_result *res, producer *pr)
{
	struct push p;
	struct feed f = {0};
	int rc = push_start(&p, r, o, SNAP_STREAM);
	res->reader = p.rd ? reader_backend(p.rd) : "read(2)";
	if (rc == 0)
		rc = job_get_free(&p, &f.j);
	if (rc == 0)
		rc = feed_stream(&p, &f, o->name, pr ? pr->fd : fd, pr ? pr->name : "standard input");
	if (pr != NULL) {
		int prc = producer_wait(pr, rc < 0, NULL);
		if (rc == 0)
			rc = prc;
	}
	/* an empty stream is nearly always a producer that failed quietly; restore would return it as the latest */
	if (rc == 0 && p.bytes_in == 0 && !o->allow_empty)
		rc = err_set(DRE_EINVAL, "%s gave no data (0 bytes): no snapshot recorded. HINT: --allow-empty records "
					 "an empty stream", pr ? pr->name : "standard input");
	rc = push_finish(&p, &f, rc, rc == 0, res);
	push_free(&p);
	return rc;
}

int engine_push_fd(repo *r, const push_opts *o, int fd, push_result *res)
{
	return push_stream(r, o, fd, res, NULL);
}

int engine_push_command(repo *r, const push_opts *o, char *const argv[], push_result *res)
{
	producer pr;
	TRY(engine_check_name(o->name));
	TRY(producer_start(argv, NULL, &pr));
	return push_stream(r, o, -1, res, &pr);
}

/* ---- the parent: files taken without reading them ---- */

/* Walk order (format-spec.md §10.3): a directory before what is in it, names in byte order; as one comparison,
 * component by component, the end of a path before "/" before any other byte. */
static int walk_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = *a == '\0' ? 0 : *a == '/' ? 1 : (unsigned char)*a + 2;
		int cb = *b == '\0' ? 0 : *b == '/' ? 1 : (unsigned char)*b + 2;
		if (ca != cb || ca == 0)
			return ca - cb;
	}
}

static void parent_close(struct push *p)
{
	snap_walk_free(p->par.w);
	p->par.w = NULL;
	p->par.have = false;
}

/* A parent that cannot be read costs speed, not the push: every file is read. */
static void parent_lost(struct push *p, const char *why)
{
	char hex[65], msg[1400];
	hex_encode(p->par.snap.id, CRYPTO_ID_LEN, hex);
	snprintf(msg, sizeof msg, "parent snapshot %.16s cannot be read (%s): the remaining files are read", hex, why);
	if (p->o->hooks.warn)
		p->o->hooks.warn(p->o->hooks.arg, msg);
	parent_close(p);
}

/* Chooses the parent (push_opts.parent, else the newest snapshot of the same name, kind and host) and starts
 * walking it. Called once the index is loaded: its list blobs are found through it. */
static int parent_open(struct push *p)
{
	const push_opts *o = p->o;
	struct parent *par = &p->par;
	if (o->force_read)
		return 0;
	if (o->parent != NULL) {
		int rc = snap_find(p->r, o->parent, -1, &par->snap);
		if (rc < 0) {
			char why[1024];
			snprintf(why, sizeof why, "%s", err_msg()); /* err_set must not format from its own buffer */
			return err_set(rc, "--parent: %s", why);
		}
		if (par->snap.kind != p->snap.kind)
			return err_set(DRE_EINVAL, "--parent %s is a %s snapshot, this push makes a %s one", o->parent,
				       snap_kind_name(par->snap.kind), snap_kind_name(p->snap.kind));
	} else {
		snap_list l;
		size_t pick = SIZE_MAX;
		TRY(snap_list_load(p->r, &l, NULL, NULL));
		for (size_t i = 0; i < l.n; i++) { /* oldest first: the last that fits is the newest */
			const snapshot *c = &l.items[i];
			const char *v = o->parent_key ? snap_meta_get(c, o->parent_key) : NULL;
			if (c->kind == p->snap.kind && strcmp(c->name, p->snap.name) == 0 &&
			    strcmp(c->host, p->snap.host) == 0 && (o->parent_key == NULL || (v && strcmp(v, o->parent_value) == 0)))
				pick = i;
		}
		if (pick != SIZE_MAX) {
			par->snap = l.items[pick];
			memset(&l.items[pick], 0, sizeof l.items[pick]);
		}
		snap_list_free(&l);
		if (pick == SIZE_MAX)
			return 0;
	}
	par->read_after_ns = par->snap.time_ns - SKIP_MARGIN_NS;
	pthread_mutex_lock(&p->mu); /* the walk finds list blobs in the index the workers add to */
	int rc = snap_walk_open(p->r, p->idx, &par->snap, true, &par->w);
	pthread_mutex_unlock(&p->mu);
	if (rc < 0)
		parent_lost(p, err_msg());
	return 0;
}

/* Whether the parent has a node at rel: the walk moves past the parent's nodes that come before rel in walk order
 * and stops at rel (p->par.n) or past it. A parent whose order differs from this push's (paths given in another
 * order) only finds fewer matches. */
static bool parent_seek(struct push *p, const char *rel)
{
	struct parent *par = &p->par;
	while (par->w != NULL) {
		if (!par->have) {
			pthread_mutex_lock(&p->mu);
			int rc = snap_walk_next(par->w, &par->n);
			pthread_mutex_unlock(&p->mu);
			if (rc < 0)
				parent_lost(p, err_msg());
			if (rc <= 0) {
				parent_close(p);
				return false;
			}
			par->have = true;
		}
		int c = walk_cmp(par->n.path, rel);
		if (c >= 0)
			return c == 0;
		par->have = false;
	}
	return false;
}

/* The skip rule: what the parent recorded for the path matches what lstat says now, and the file was last
 * written well before the parent started reading (a write in the same clock tick as its read is not seen by
 * mtime). --ignore-ctime and --ignore-inode leave those out, for file systems that do not keep them. */
static bool parent_unchanged(const struct push *p, const snap_node *old, const struct stat *st)
{
	int64_t mtime = meter_timespec_ns(&st->st_mtim);
	if (old->type != NODE_FILE || old->size != (uint64_t)st->st_size || old->mtime_ns != mtime ||
	    mtime >= p->par.read_after_ns)
		return false;
	if (!p->o->ignore_ctime && old->ctime_ns != meter_timespec_ns(&st->st_ctim))
		return false;
	return p->o->ignore_inode || (old->ino == (uint64_t)st->st_ino && old->dev == (uint64_t)st->st_dev);
}

/* A chunk the parent names, into the job being filled; a job whose cut list is full goes out as it is (its data
 * is all cut: this happens between files). */
static int job_add_reused(struct push *p, struct feed *f, const uint8_t id[CRYPTO_ID_LEN])
{
	struct job *j = f->j;
	if (j->ncuts == j->cuts_cap) {
		TRY(workq_submit(p->q, j));
		TRY(job_get_free(p, &f->j));
		f->chunked = 0;
		j = f->j;
	}
	j->cuts[j->ncuts].off = j->cuts[j->ncuts].len = 0;
	memcpy(j->ids[j->ncuts], id, CRYPTO_ID_LEN);
	j->ncuts++;
	p->cuts_total++;
	p->cur.nchunks++;
	return 0;
}

/* The current node takes the content of the parent's node p->par.n: 1 when taken; 0 when one of its chunks is not
 * in the index any more (a damaged repository, or a prune deleting its pack), and then nothing was taken. */
static int node_reuse(struct push *p, struct feed *f)
{
	const snap_node *old = &p->par.n;
	node_mark(p, f);
	for (uint64_t k = 0; k < old->nchunks; k++) {
		uint8_t id[CRYPTO_ID_LEN];
		pthread_mutex_lock(&p->mu);
		int rc = snap_walk_chunk(p->par.w, id);
		int found = rc == 0 ? index_use(p->idx, id) : rc;
		pthread_mutex_unlock(&p->mu);
		if (found < 0 && rc < 0)
			parent_lost(p, err_msg());
		TRY(found < 0 && rc == 0 ? found : 0);
		if (found <= 0) {
			p->par.have = false;
			TRY(node_abandon(p, f));
			return 0;
		}
		TRY(job_add_reused(p, f, id));
	}
	p->par.have = false;
	p->cur.size = old->size;
	memcpy(p->cur.xxh128, old->xxh128, sizeof old->xxh128);
	p->bytes_in += old->size;
	p->files_skipped++;
	p->bytes_skipped += old->size;
	return 1;
}

/* ---- files and directories ---- */

static int feed_path(struct push *p, struct feed *f, const char *fs_path, const char *rel);

static int path_join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s%s%s", a, (*a && a[strlen(a) - 1] != '/') ? "/" : "", b);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "path %s/%s is too long", a, b);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void warn(struct push *p, const char *fmt, const char *arg)
{
	char msg[1200];
	snprintf(msg, sizeof msg, fmt, arg);
	if (p->o->hooks.warn)
		p->o->hooks.warn(p->o->hooks.arg, msg);
}

/* An entry a files push cannot read (or that changed while it was read, then kept as read): reported, and the
 * snapshot says it is incomplete. A base backup (not tolerant) fails instead: it is no backup without every file.
 * rc is the failure, its message set. */
static int problem(struct push *p, const char *outcome, int rc)
{
	if (!p->tolerant || rc == DRE_ENOMEM)
		return rc;
	char msg[1400];
	snprintf(msg, sizeof msg, "%s: %s", err_msg(), outcome);
	if (p->o->hooks.warn)
		p->o->hooks.warn(p->o->hooks.arg, msg);
	p->left_out++;
	return 0;
}

static int feed_dir(struct push *p, struct feed *f, const char *fs_path, const char *rel)
{
	DIR *d = opendir(fs_path);
	if (d == NULL && p->tree && p->tree->vanish_ok && errno == ENOENT)
		return 0; /* removed during the walk: recorded as empty */
	if (d == NULL)
		return problem(p, "its contents left out", err_sys("cannot open directory %s", fs_path));
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!array_room(&names, &cap, n, sizeof *names, 32) || (names[n] = strdup(de->d_name)) == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot list directory %s", fs_path);
			break;
		}
		n++;
	}
	if (rc == 0 && errno != 0) /* the entries read so far are backed up */
		rc = problem(p, "the rest left out", err_sys("cannot list directory %s to its end", fs_path));
	closedir(d);
	if (n > 1) /* deterministic order: same tree, same snapshot */
		qsort(names, n, sizeof *names, name_cmp);
	char child_fs[4096], child_rel[4096];
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = path_join(child_fs, sizeof child_fs, fs_path, names[i]);
		if (rc == 0)
			rc = path_join(child_rel, sizeof child_rel, rel, names[i]);
		if (rc == 0)
			rc = feed_path(p, f, child_fs, child_rel);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static void node_attrs(snap_node *n, const struct stat *st)
{
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime_ns = meter_timespec_ns(&st->st_mtim);
	n->ctime_ns = meter_timespec_ns(&st->st_ctim);
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->nlink = (uint32_t)st->st_nlink;
	n->rdev = S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? st->st_rdev : 0;
}

/* The entry's extended attributes (POSIX ACLs among them) into the current node, names sorted, as many as fit
 * its record; a file system without them has none. */
static int node_xattrs(struct push *p, const char *fs_path)
{
	snap_node *n = &p->cur;
	ssize_t len = llistxattr(fs_path, p->xnames, sizeof p->xnames);
	if (len < 0 && (errno == ENOTSUP || errno == ENOENT))
		return 0;
	if (len < 0)
		return problem(p, "attributes left out", err_sys("cannot list the extended attributes of %s", fs_path));
	const char *names[1024];
	size_t count = 0;
	for (ssize_t i = 0; i < len && count < 1024; i += (ssize_t)strlen(p->xnames + i) + 1)
		names[count++] = p->xnames + i;
	if (count > 1)
		qsort(names, count, sizeof *names, name_cmp);
	size_t fixed = 95 + strlen(n->path) + (n->link ? strlen(n->link) : 0); /* snapshot.c's NODE_FIXED_V3 */
	size_t used = 0, cap = sizeof p->xattrs - fixed;
	for (size_t i = 0; i < count; i++) {
		ssize_t vlen = lgetxattr(fs_path, names[i], p->xvalue, sizeof p->xvalue);
		if (vlen < 0 && errno == ENODATA)
			continue; /* removed since it was listed */
		int rc = vlen < 0 ? err_sys("cannot read extended attribute %s of %s", names[i], fs_path)
				  : snap_xattr_append(p->xattrs, cap, &used, names[i], p->xvalue, (size_t)vlen);
		if (rc < 0) {
			if (vlen >= 0) {
				char why[1024];
				snprintf(why, sizeof why, "%s", err_msg());
				rc = err_set(rc, "%s: %s", fs_path, why);
			}
			TRY(problem(p, "attribute left out", rc));
			continue;
		}
		n->nxattr++;
	}
	n->xattrs = p->xattrs;
	n->xattr_len = used;
	return 0;
}

static int node_type_of(mode_t mode)
{
	return S_ISREG(mode) ? NODE_FILE : S_ISDIR(mode) ? NODE_DIR : S_ISLNK(mode) ? NODE_SYMLINK
	     : S_ISCHR(mode) ? NODE_CHARDEV : S_ISBLK(mode) ? NODE_BLOCKDEV : 0;
}

/* The content of the regular file at fs_path (the current node): the parent's when it is unchanged, else read.
 * A file that cannot be read, or that changes while it is read, is reported (left_out). */
static int feed_file(struct push *p, struct feed *f, const char *fs_path, const char *rel, const struct stat *st)
{
	const push_tree *t = p->tree;
	if (parent_seek(p, rel) && parent_unchanged(p, &p->par.n, st)) {
		int taken = node_reuse(p, f);
		TRY(taken);
		if (taken)
			return node_end(p);
	}
	int fd = open(fs_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && t && t->vanish_ok && errno == ENOENT)
		return 0; /* removed since lstat(): as if the walk had not seen it */
	if (fd < 0)
		return problem(p, "left out", err_sys("cannot open %s", fs_path));
	bool read_failed = false;
	int rc = feed_input(p, f, fd, true, fs_path, &read_failed);
	struct stat after;
	if (rc == 0 && p->tolerant && fstat(fd, &after) == 0 &&
	    (after.st_size != st->st_size ||
	     meter_timespec_ns(&after.st_mtim) != meter_timespec_ns(&st->st_mtim) ||
	     meter_timespec_ns(&after.st_ctim) != meter_timespec_ns(&st->st_ctim))) {
		/* kept as read, with the attributes from before the read, so the next push reads it again */
		rc = problem(p, "kept as read, which may be inconsistent",
			     err_set(DRE_EIO, "%s changed while it was read", fs_path));
	}
	close(fd);
	if (rc < 0 && read_failed && p->tolerant) {
		rc = problem(p, "left out", rc);
		if (rc == 0)
			return node_abandon(p, f);
	}
	return rc < 0 ? rc : node_end(p);
}

static int feed_path(struct push *p, struct feed *f, const char *fs_path, const char *rel)
{
	struct stat st;
	const push_tree *t = p->tree;
	if (lstat(fs_path, &st) < 0) {
		if (t && t->vanish_ok && errno == ENOENT)
			return 0;
		int rc = errno == ENOENT ? err_set(DRE_ENOTFOUND, "%s vanished before it was read", fs_path)
					 : err_sys("cannot read %s", fs_path);
		return *rel && strcmp(rel, ".") != 0 ? problem(p, "left out", rc) : rc; /* a path given is not left out */
	}
	push_verdict v = t ? t->filter(t->arg, rel, &st) : PUSH_TAKE;
	if (v == PUSH_SKIP)
		return 0;
	if (t == NULL && p->o->exclude != NULL) {
		char abs[8300];
		snprintf(abs, sizeof abs, "%s/%s", p->abs_prefix, rel);
		if (pattern_set_match(p->o->exclude, abs, S_ISDIR(st.st_mode))) {
			/* an excluded directory with re-included entries below it is recorded, to hold them */
			if (!S_ISDIR(st.st_mode) || !pattern_set_may_unmatch_below(p->o->exclude, abs))
				return 0;
		}
	}
	if (v == PUSH_FOLLOW && stat(fs_path, &st) < 0)
		return err_sys("cannot read %s (where the symlink %s points)", fs_path, rel);
	if (v == PUSH_DIR_ONLY) {
		if (!S_ISDIR(st.st_mode))
			st.st_mode = S_IFDIR | 0700;
		TRY(node_begin(p, NODE_DIR, rel));
		node_attrs(&p->cur, &st);
		return node_end(p);
	}
	int type = node_type_of(st.st_mode);
	if (type == 0) {
		warn(p, "%s is a FIFO or socket: not backed up", fs_path);
		return 0;
	}
	TRY(node_begin(p, (uint8_t)type, *rel ? rel : "."));
	snap_node *n = &p->cur;
	node_attrs(n, &st);
	if (type == NODE_SYMLINK) {
		ssize_t len = readlink(fs_path, p->cur_link, sizeof p->cur_link);
		if (len < 0)
			return problem(p, "left out", err_sys("cannot read symlink %s", fs_path));
		if ((size_t)len >= sizeof p->cur_link)
			return problem(p, "left out", err_set(DRE_EINVAL, "the target of symlink %s is longer than %d bytes",
						   fs_path, SNAP_PATH_MAX));
		p->cur_link[len] = '\0';
		n->link = p->cur_link;
	}
	TRY(node_xattrs(p, fs_path));
	if (type == NODE_FILE)
		return feed_file(p, f, fs_path, rel, &st);
	if (type != NODE_DIR)
		return node_end(p);
	TRY(node_end(p)); /* parents before their children */
	if (t == NULL && p->o->one_file_system && st.st_dev != p->root_dev)
		return 0; /* a mount point: recorded, its contents are another file system's */
	return feed_dir(p, f, fs_path, rel);
}

/* Where a path given starts for patterns: its absolute form without "." and "//" (the walk appends names). */
static int root_prefix(struct push *p, const char *path)
{
	char cwd[4096] = "";
	if (path[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
		return err_sys("cannot tell the current directory (for the exclude patterns)");
	size_t n = strlen(cwd);
	while (n > 0 && cwd[n - 1] == '/')
		cwd[--n] = '\0';
	if (snprintf(p->abs_prefix, sizeof p->abs_prefix, "%s", cwd) >= (int)sizeof p->abs_prefix)
		return err_set(DRE_EINVAL, "the current directory's path is too long");
	return 0;
}

int engine_push_paths(repo *r, const push_opts *o, char *const paths[], size_t npaths, push_result *res)
{
	struct push p;
	struct feed f = {0};
	char rel[4096];
	if (npaths == 0)
		return err_set(DRE_EINVAL, "no paths given");
	int rc = push_start(&p, r, o, SNAP_FILES);
	res->reader = p.rd ? reader_backend(p.rd) : "read(2)";
	p.tolerant = true;
	if (rc == 0)
		rc = job_get_free(&p, &f.j);
	if (rc == 0) /* the paths given, as given */
		rc = meta_add_strings(&p.snap, SNAP_META_PATHS, (const char *const *)paths, npaths);
	if (rc == 0)
		rc = parent_open(&p);
	for (size_t i = 0; rc == 0 && i < npaths; i++) {
		struct stat st;
		rc = snap_path_of(paths[i], rel, sizeof rel);
		if (rc == 0)
			rc = root_prefix(&p, paths[i]);
		if (rc == 0 && lstat(paths[i], &st) < 0)
			rc = err_sys("cannot read %s", paths[i]);
		if (rc == 0) {
			p.root_dev = st.st_dev;
			rc = feed_path(&p, &f, paths[i], rel);
		}
	}
	rc = push_finish(&p, &f, rc, rc == 0, res);
	push_free(&p);
	return rc;
}

/* ---- sessions (push.h) ---- */

struct push_session {
	struct push p;
	struct feed f;
};

int push_session_start(repo *r, const push_opts *o, uint8_t kind, push_session **out)
{
	push_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return err_set(DRE_ENOMEM, "cannot start the push");
	int rc = push_start(&s->p, r, o, kind);
	if (rc == 0)
		rc = job_get_free(&s->p, &s->f.j);
	if (rc == 0 && kind == SNAP_PG_BASE)
		rc = parent_open(&s->p);
	if (rc < 0) {
		push_free(&s->p);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int push_session_add_tree(push_session *s, const char *fs_path, const push_tree *t)
{
	s->p.tree = t;
	int rc = feed_dir(&s->p, &s->f, fs_path, "");
	s->p.tree = NULL;
	return rc;
}

int push_session_add_data(push_session *s, const char *rel, const void *data, size_t len, const struct stat *like)
{
	int fd = memfd_create("dre-push-data", MFD_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot hold %s in memory", rel);
	size_t done = 0;
	int rc = 0;
	while (rc == 0 && done < len) {
		ssize_t n = write(fd, (const uint8_t *)data + done, len - done);
		if (n < 0 && errno != EINTR)
			rc = err_sys("cannot hold %s in memory", rel);
		else if (n > 0)
			done += (size_t)n;
	}
	if (rc == 0)
		rc = node_begin(&s->p, NODE_FILE, rel);
	if (rc == 0) {
		snap_node *n = &s->p.cur;
		node_attrs(n, like);
		n->mtime_ns = meter_now_ns();
		rc = feed_input(&s->p, &s->f, fd, true, rel, NULL);
	}
	if (rc == 0)
		rc = node_end(&s->p);
	close(fd);
	return rc;
}

int push_session_add_stream(push_session *s, const char *path, int fd, const char *what)
{
	return feed_stream(&s->p, &s->f, path, fd, what);
}

int push_session_add_meta(push_session *s, const char *key, const char *value)
{
	return meta_add(&s->p.snap, key, value);
}

int push_session_end(push_session *s, int rc, bool record, push_result *res)
{
	res->reader = s->p.rd ? reader_backend(s->p.rd) : "read(2)";
	rc = push_finish(&s->p, &s->f, rc, rc == 0 && record, res);
	push_free(&s->p);
	free(s);
	return rc;
}

/* ---- nodes given whole, with their attributes (copy.c) ---- */

int push_session_set_origin(push_session *s, const snapshot *src)
{
	snapshot *sn = &s->p.snap;
	char *host = strdup(src->host ? src->host : "");
	if (host == NULL)
		return err_set(DRE_ENOMEM, "cannot start the push");
	free(sn->host);
	sn->host = host;
	sn->time_ns = src->time_ns;
	sn->end_time_ns = src->end_time_ns;
	return 0;
}

/* feed_input with a callback for the bytes instead of a file descriptor (copy). */
static int feed_read(struct push *p, struct feed *f, push_read_fn read, void *arg)
{
	bool eof = false;

	XXH3_128bits_reset(p->xxh);
	while (!eof) {
		struct job *j = f->j;
		size_t got = 0;
		/* whole buffers, as reader_fill gives them: the chunker cuts a buffer's tail only at the end */
		while (j->len + got < j->cap) {
			size_t n = 0;
			TRY(read(arg, j->data + j->len + got, j->cap - j->len - got, &n));
			if (n == 0) {
				eof = true;
				break;
			}
			if (n > j->cap - j->len - got)
				return err_set(DRE_EINVAL, "internal: a read callback gave more than asked");
			got += n;
		}
		TRY(feed_bytes(p, f, got, eof));
	}
	XXH128_hash_t h = XXH3_128bits_digest(p->xxh);
	XXH128_canonicalFromHash((XXH128_canonical_t *)p->cur.xxh128, h);
	return 0;
}

int push_session_add_node(push_session *s, const snap_node *n, push_read_fn read, void *arg)
{
	struct push *p = &s->p;
	if (n->type < NODE_STREAM || n->type > NODE_BLOCKDEV)
		return err_set(DRE_EINVAL, "%s: node type %u is not one dre writes", n->path, n->type);
	if (n->xattr_len > sizeof p->xattrs)
		return err_set(DRE_EINVAL, "%s: extended attributes of %zu bytes", n->path, n->xattr_len);
	size_t llen = n->type == NODE_SYMLINK && n->link ? strlen(n->link) : 0;
	if (n->type == NODE_SYMLINK && (llen == 0 || llen > SNAP_PATH_MAX))
		return err_set(DRE_EINVAL, "symlink %s has no target or one longer than %d bytes", n->path,
			       SNAP_PATH_MAX);
	if ((n->type == NODE_STREAM || n->type == NODE_FILE) && read == NULL)
		return err_set(DRE_EINVAL, "internal: no content for %s", n->path);
	TRY(node_begin(p, n->type, n->path));
	p->cur.mode = n->mode;
	p->cur.uid = n->uid;
	p->cur.gid = n->gid;
	p->cur.mtime_ns = n->mtime_ns;
	p->cur.ctime_ns = n->ctime_ns;
	p->cur.dev = n->dev;
	p->cur.ino = n->ino;
	p->cur.nlink = n->nlink;
	p->cur.rdev = n->rdev;
	p->cur.nxattr = n->nxattr;
	if (n->xattr_len)
		memcpy(p->xattrs, n->xattrs, n->xattr_len);
	p->cur.xattrs = p->xattrs;
	p->cur.xattr_len = n->xattr_len;
	if (n->type == NODE_SYMLINK) {
		memcpy(p->cur_link, n->link, llen + 1);
		p->cur.link = p->cur_link;
		return node_end(p);
	}
	if (n->type != NODE_FILE && n->type != NODE_STREAM)
		return node_end(p);
	TRY(feed_read(p, &s->f, read, arg));
	if (p->cur.size != n->size || memcmp(p->cur.xxh128, n->xxh128, sizeof n->xxh128) != 0) {
		char got[33], want[33];
		hex_encode(p->cur.xxh128, sizeof p->cur.xxh128, got);
		hex_encode(n->xxh128, sizeof n->xxh128, want);
		return err_set(DRE_ECORRUPT,
			       "%s: the content read has %" PRIu64 " bytes with XXH3-128 %s, its record says %" PRIu64
			       " bytes with %s: not recorded",
			       n->path, p->cur.size, got, n->size, want);
	}
	return node_end(p);
}
