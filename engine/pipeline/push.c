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
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/lock.h"
#include "engine/pipeline/meter.h"
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
	bool in_use; /* being filled, or outstanding in the pool */
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
		for (size_t k = 0; k < j->ncuts; k++)
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

static int feed_input(struct push *p, struct feed *f, int fd, bool regular, const char *name)
{
	uint64_t pos = 0;
	bool eof = false;

	XXH3_128bits_reset(p->xxh);
	while (!eof) {
		struct job *j = f->j;
		size_t got = 0;
		TRY(reader_fill(p->rd, fd, regular, &pos, j->data + j->len, j->cap - j->len, &got, &eof, name));
		test_pause("push-reading");
		TRY(feed_bytes(p, f, got, eof));
	}
	XXH128_hash_t h = XXH3_128bits_digest(p->xxh);
	XXH128_canonicalFromHash((XXH128_canonical_t *)p->cur.xxh128, h);
	return 0;
}

static int push_start(struct push *p, repo *r, const push_opts *o, uint8_t kind)
{
	memset(p, 0, sizeof *p);
	p->r = r;
	p->o = o;
	meter_start(&p->clock, &o->hooks);
	pthread_mutex_init(&p->mu, NULL);
	TRY(engine_check_name(o->name));
	if (r->format < REPO_FORMAT_PRUNE)
		return err_set(DRE_EUNSUPP, "the repository has format version %u, which this dre reads but does not "
					    "write. HINT: 'dre migrate' upgrades it to version %d (older dre versions then "
					    "cannot read it)",
			       r->format, REPO_FORMAT_VERSION);

	p->snap.kind = kind;
	p->snap.time_ns = meter_now_ns();
	p->snap.name = strdup(o->name);
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	p->snap.host = strdup(host);
	p->xxh = XXH3_createState();
	if (p->snap.name == NULL || p->snap.host == NULL || p->xxh == NULL)
		return err_set(DRE_ENOMEM, "cannot start the push");

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
	TRY(snap_node_encode(&p->cur, rec, sizeof rec, &len));
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
	if (rc == 0 && f->j != NULL && f->j->len > 0)
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
		if (store_del(p->r->st, key) < 0)
			return err_set(rc4, "%s; and snapshot %s could not be removed: %s", saved, key, err_msg());
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
	TRY(feed_input(p, f, fd, fstat(fd, &st) == 0 && S_ISREG(st.st_mode), what));
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

static int feed_dir(struct push *p, struct feed *f, const char *fs_path, const char *rel)
{
	DIR *d = opendir(fs_path);
	if (d == NULL && p->tree && p->tree->vanish_ok && errno == ENOENT)
		return 0; /* removed during the walk: recorded as empty */
	if (d == NULL)
		return err_sys("cannot open directory %s", fs_path);
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

static void warn(struct push *p, const char *fmt, const char *arg)
{
	char msg[1200];
	snprintf(msg, sizeof msg, fmt, arg);
	if (p->o->hooks.warn)
		p->o->hooks.warn(p->o->hooks.arg, msg);
}

static void node_attrs(snap_node *n, const struct stat *st)
{
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int feed_path(struct push *p, struct feed *f, const char *fs_path, const char *rel)
{
	struct stat st;
	const push_tree *t = p->tree;
	if (lstat(fs_path, &st) < 0)
		return t && t->vanish_ok && errno == ENOENT ? 0 : err_sys("cannot read %s", fs_path);
	push_verdict v = t ? t->filter(t->arg, rel, &st) : PUSH_TAKE;
	if (v == PUSH_SKIP)
		return 0;
	if (v == PUSH_FOLLOW && stat(fs_path, &st) < 0)
		return err_sys("cannot read %s (where the symlink %s points)", fs_path, rel);
	if (v == PUSH_DIR_ONLY) {
		if (!S_ISDIR(st.st_mode))
			st.st_mode = S_IFDIR | 0700;
		TRY(node_begin(p, NODE_DIR, rel));
		node_attrs(&p->cur, &st);
		return node_end(p);
	}
	uint8_t type = S_ISREG(st.st_mode) ? NODE_FILE : S_ISDIR(st.st_mode) ? NODE_DIR : S_ISLNK(st.st_mode) ? NODE_SYMLINK : 0;
	if (type == 0) {
		warn(p, "%s is not a regular file, directory or symlink: not backed up", fs_path);
		return 0;
	}
	TRY(node_begin(p, type, *rel ? rel : "."));
	snap_node *n = &p->cur;
	node_attrs(n, &st);
	if (type == NODE_SYMLINK) {
		ssize_t len = readlink(fs_path, p->cur_link, sizeof p->cur_link);
		if (len < 0)
			return err_sys("cannot read symlink %s", fs_path);
		if ((size_t)len >= sizeof p->cur_link)
			return err_set(DRE_EINVAL, "the target of symlink %s is longer than %d bytes", fs_path,
				       SNAP_PATH_MAX);
		p->cur_link[len] = '\0';
		n->link = p->cur_link;
		return node_end(p);
	}
	if (type == NODE_DIR) {
		TRY(node_end(p)); /* parents before their children */
		return feed_dir(p, f, fs_path, rel);
	}
	int fd = open(fs_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && t && t->vanish_ok && errno == ENOENT)
		return 0; /* removed since lstat(): as if the walk had not seen it */
	if (fd < 0)
		return err_sys("cannot open %s", fs_path);
	int rc = feed_input(p, f, fd, true, fs_path);
	close(fd);
	return rc < 0 ? rc : node_end(p);
}

/* "/srv/models/" → "srv/models", "./a//b" → "a/b", "/" → "" ; ".." components are refused. */
static int relative_name(const char *path, char *out, size_t cap)
{
	size_t o = 0;
	const char *s = path;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = strchrnul(s, '/');
		size_t len = (size_t)(e - s);
		if (len == 0)
			break;
		if (len == 2 && s[0] == '.' && s[1] == '.')
			return err_set(DRE_EINVAL, "path %s contains '..': give the directory itself instead", path);
		if (!(len == 1 && s[0] == '.')) {
			if (o + len + 2 > cap)
				return err_set(DRE_EINVAL, "path %s is too long", path);
			if (o)
				out[o++] = '/';
			memcpy(out + o, s, len);
			o += len;
		}
		s = e;
	}
	out[o] = '\0';
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
	if (rc == 0)
		rc = job_get_free(&p, &f.j);
	for (size_t i = 0; rc == 0 && i < npaths; i++) {
		rc = relative_name(paths[i], rel, sizeof rel);
		if (rc == 0)
			rc = feed_path(&p, &f, paths[i], rel);
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
		rc = feed_input(&s->p, &s->f, fd, true, rel);
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
	snapshot *sn = &s->p.snap;
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
	if (n->type < NODE_STREAM || n->type > NODE_SYMLINK)
		return err_set(DRE_EINVAL, "%s: node type %u is not one dre writes", n->path, n->type);
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
	if (n->type == NODE_SYMLINK) {
		memcpy(p->cur_link, n->link, llen + 1);
		p->cur.link = p->cur_link;
		return node_end(p);
	}
	if (n->type == NODE_DIR)
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
