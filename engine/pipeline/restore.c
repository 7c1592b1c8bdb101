/*
 * restore.c — the reverse pipeline.
 *
 *   main thread:  the snapshot's node and chunk lists, walked (snapshot.h) → jobs (a run of chunks of one node,
 *                 up to RESTORE_SEGMENT plaintext bytes, each chunk resolved through the index)
 *   workers (N):  ranged reads of packs (adjacent blobs coalesced into one request) → AES-GCM open → zstd
 *   main thread:  writes finished jobs in order (holes for all-zero chunks of files), XXH3-128 of every node
 *                 checked at its end: a mismatch is a loud error naming the file.
 *   at the end:   a second walk of the nodes sets directory modes and times, children before parents.
 *
 * Memory does not grow with the snapshot: the walk holds one list blob per level, and each job carries a copy
 * of its node.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/pipeline/meter.h"
#include "engine/repo/pack.h"
#include "engine/pipeline/workq.h"

#define RESTORE_SEGMENT (8u << 20) /* plaintext bytes per job */
#define RESTORE_READ_MAX (8u << 20) /* largest coalesced read */

struct rjob {
	snap_node node;       /* path points to path[] */
	char path[SNAP_PATH_MAX + 1];
	bool first, last;     /* the node's first and final job */
	bool in_use;          /* being filled, or outstanding in the pool */
	index_entry *ent;
	size_t n, ent_cap;
	uint8_t *out;
	size_t out_len, out_cap;
};

struct rworker {
	struct restore *rs;
	crypto_ctx *cc;
	ZSTD_DCtx *zd;
	uint8_t *rbuf;
	size_t rbuf_cap;
	uint32_t key_pack; /* pack whose subkey is cached */
	uint8_t subkey[CRYPTO_KEY_LEN];
};

struct restore {
	repo *r;
	const snapshot *s;
	const restore_opts *o;
	chunk_index *idx;
	snap_walk *walk;
	workq *q;
	struct rjob *jobs;
	size_t njobs;
	struct rworker *workers;
	int nworkers;

	/* the node being written (main thread) */
	int out_fd;
	bool out_is_file;
	snap_node out_node; /* a copy: the job that opened it is recycled before the node ends */
	char out_path[SNAP_PATH_MAX + 1];
	uint64_t out_written;
	XXH3_state_t *xxh;
	uint64_t bytes;
	size_t files;
	meter clock;
};

static void pack_name(const struct restore *rs, uint32_t pack_no, char hex[65])
{
	hex_encode(index_pack_id(rs->idx, pack_no), CRYPTO_ID_LEN, hex);
}

/* Reads blobs [i, k) of the job, which lie back to back in one pack, with one request. */
static int worker_read_run(struct rworker *w, struct rjob *j, size_t i, size_t k, size_t out_off)
{
	struct restore *rs = w->rs;
	const index_entry *a = &j->ent[i], *z = &j->ent[k - 1];
	uint64_t start = a->loc.offset, end = (uint64_t)z->loc.offset + z->loc.stored_len + CRYPTO_TAG_LEN;
	char key[80], hex[65];

	repo_pack_key(index_pack_id(rs->idx, a->pack), key);
	if (end - start > w->rbuf_cap)
		return err_set(DRE_ECORRUPT, "internal: read run of %llu bytes", (unsigned long long)(end - start));
	int rc = store_get(rs->r->st, key, start, end - start, w->rbuf);
	if (rc < 0) {
		pack_name(rs, a->pack, hex);
		return err_ctx(rc == DRE_ENOTFOUND ? DRE_ECORRUPT : rc, "%s pack %s",
			       rc == DRE_ENOTFOUND ? "missing" : "cannot read", hex);
	}
	if (w->key_pack != a->pack) {
		TRY(repo_pack_subkey(rs->r, index_pack_id(rs->idx, a->pack), w->subkey));
		w->key_pack = a->pack;
	}
	for (size_t m = i; m < k; m++) {
		const index_entry *e = &j->ent[m];
		uint8_t *blob = w->rbuf + (e->loc.offset - start);
		rc = pack_blob_open(w->cc, w->zd, w->subkey, &e->loc, blob, j->out + out_off);
		if (rc < 0) {
			char chex[65];
			pack_name(rs, a->pack, hex);
			hex_encode(e->loc.id, CRYPTO_ID_LEN, chex);
			return err_ctx(DRE_ECORRUPT, "corrupt pack %s: chunk %.16s at offset %u", hex, chex, e->loc.offset);
		}
		out_off += e->loc.raw_len;
	}
	return 0;
}

static int worker_run(void *ctx, void *job)
{
	struct rworker *w = ctx;
	struct rjob *j = job;
	size_t out_off = 0;
	for (size_t i = 0; i < j->n;) {
		const index_entry *a = &j->ent[i];
		/* the same chunk again (runs of zeros, repeated blocks): copy what was just decoded */
		if (i > 0 && memcmp(a->loc.id, j->ent[i - 1].loc.id, CRYPTO_ID_LEN) == 0) {
			memcpy(j->out + out_off, j->out + out_off - a->loc.raw_len, a->loc.raw_len);
			out_off += a->loc.raw_len;
			i++;
			continue;
		}
		size_t k = i + 1;
		uint64_t run_end = (uint64_t)a->loc.offset + a->loc.stored_len + CRYPTO_TAG_LEN;
		size_t run_raw = a->loc.raw_len;
		while (k < j->n && j->ent[k].pack == a->pack && j->ent[k].loc.offset == run_end &&
		       run_end + j->ent[k].loc.stored_len + CRYPTO_TAG_LEN - a->loc.offset <= w->rbuf_cap &&
		       memcmp(j->ent[k].loc.id, j->ent[k - 1].loc.id, CRYPTO_ID_LEN) != 0) {
			run_end += j->ent[k].loc.stored_len + CRYPTO_TAG_LEN;
			run_raw += j->ent[k].loc.raw_len;
			k++;
		}
		TRY(worker_read_run(w, j, i, k, out_off));
		out_off += run_raw;
		i = k;
	}
	j->out_len = out_off;
	return 0;
}

/* A node path from a snapshot is joined to the target only when it cannot escape it. */
static int target_path(const struct restore *rs, const char *rel, char *out, size_t cap)
{
	const char *s = rel;
	if (*s == '/' )
		return err_set(DRE_ECORRUPT, "snapshot holds an absolute path %s: refusing to restore it", rel);
	while (*s) {
		const char *e = strchrnul(s, '/');
		if (e - s == 2 && s[0] == '.' && s[1] == '.')
			return err_set(DRE_ECORRUPT, "snapshot holds a path with '..' (%s): refusing to restore it", rel);
		s = *e ? e + 1 : e;
	}
	const char *base = rs->o->target;
	for (size_t i = 0; i < rs->o->nrelocate; i++) {
		const restore_relocation *rl = &rs->o->relocate[i];
		size_t plen = strlen(rl->prefix);
		if (strncmp(rel, rl->prefix, plen) == 0 && (rel[plen] == '\0' || rel[plen] == '/')) {
			int n = snprintf(out, cap, "%s%s", rl->dir, rel + plen);
			if (n < 0 || (size_t)n >= cap)
				return err_set(DRE_EINVAL, "path %s%s is too long", rl->dir, rel + plen);
			return 0;
		}
	}
	int n = snprintf(out, cap, "%s/%s", base, rel);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "path %s/%s is too long", base, rel);
	return 0;
}

/* How much of a path target_path() made is the user's own (trusted even if a symlink): the target, or the
 * directory a relocation named. */
static size_t trusted_len(const struct restore *rs, const char *path)
{
	for (size_t i = 0; i < rs->o->nrelocate; i++) {
		size_t dlen = strlen(rs->o->relocate[i].dir);
		if (strncmp(path, rs->o->relocate[i].dir, dlen) == 0 && (path[dlen] == '\0' || path[dlen] == '/'))
			return dlen;
	}
	return strlen(rs->o->target);
}

/*
 * Creates path and its missing parents. Below the first `trusted` bytes (the target the user named, which may
 * itself be a symlink) every existing component must be a real directory: a snapshot that restores a symlink
 * and then a file "under" it must not write outside the target.
 */
static int mkdir_p(char *path, size_t trusted, mode_t mode)
{
	struct stat st;
	size_t len = strlen(path);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char saved = path[i];
		path[i] = '\0';
		int rc = mkdir(path, mode);
		if (rc < 0 && errno == EEXIST && i > trusted && (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))) {
			rc = err_set(DRE_ECORRUPT, "refusing to restore through %s: it is not a directory (a symlink?)",
				     path);
			path[i] = saved;
			return rc;
		}
		if (rc < 0 && errno != EEXIST) {
			rc = err_sys("cannot create directory %s", path);
			path[i] = saved;
			return rc;
		}
		path[i] = saved;
	}
	return 0;
}

static int parent_dirs(const struct restore *rs, char *path)
{
	char *slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return 0;
	*slash = '\0';
	int rc = mkdir_p(path, trusted_len(rs, path), 0700);
	*slash = '/';
	return rc;
}

/* A node that outlives the walk's buffers: its path in path (SNAP_PATH_MAX + 1 bytes); files have no link. */
static void node_keep(snap_node *dst, char *path, const snap_node *src)
{
	*dst = *src;
	snprintf(path, SNAP_PATH_MAX + 1, "%s", src->path);
	dst->path = path;
	dst->link = NULL;
}

static int node_open(struct restore *rs, const snap_node *n)
{
	char path[4096];
	node_keep(&rs->out_node, rs->out_path, n);
	rs->out_written = 0;
	XXH3_128bits_reset(rs->xxh);
	if (rs->o->target == NULL) {
		rs->out_fd = rs->o->out_fd;
		rs->out_is_file = false;
		return 0;
	}
	TRY(target_path(rs, n->path, path, sizeof path));
	TRY(parent_dirs(rs, path));
	unlink(path); /* replace, never write through, whatever is there */
	rs->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (rs->out_fd < 0)
		return err_sys("cannot create %s", path);
	rs->out_is_file = true;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len, const char *what)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_sys("cannot write %s", what);
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

static int node_write(struct restore *rs, const struct rjob *j)
{
	const snap_node *n = &rs->out_node;
	const char *what = n->path;
	XXH3_128bits_update(rs->xxh, j->out, j->out_len);
	if (!rs->out_is_file) {
		TRY(write_all(rs->out_fd, j->out, j->out_len, rs->o->target ? what : "the output"));
	} else {
		size_t off = 0;
		for (size_t i = 0; i < j->n; i++) {
			const uint8_t *p = j->out + off;
			size_t len = j->ent[i].loc.raw_len;
			if (all_zero(p, len)) {
				/* leave a hole: sparse files come back sparse */
				if (lseek(rs->out_fd, (off_t)len, SEEK_CUR) < 0)
					return err_sys("cannot seek in %s", what);
			} else {
				TRY(write_all(rs->out_fd, p, len, what));
			}
			off += len;
		}
	}
	rs->out_written += j->out_len;
	rs->bytes += j->out_len;
	return 0;
}

/* Access and modification time both set to the node's mtime (access times are not kept). */
static void node_times(const snap_node *n, struct timespec ts[2])
{
	ts[0].tv_sec = n->mtime_ns / 1000000000;
	ts[0].tv_nsec = n->mtime_ns % 1000000000;
	ts[1] = ts[0];
}

static int node_close(struct restore *rs)
{
	const snap_node *n = &rs->out_node;
	uint8_t got[16];
	int rc = 0;
	XXH128_canonicalFromHash((XXH128_canonical_t *)got, XXH3_128bits_digest(rs->xxh));
	if (rs->out_is_file) {
		if (ftruncate(rs->out_fd, (off_t)rs->out_written) < 0)
			rc = err_sys("cannot set the size of %s", n->path);
		if (rc == 0 && geteuid() == 0 && fchown(rs->out_fd, n->uid, n->gid) < 0)
			rc = err_sys("cannot set the owner of %s", n->path);
		if (rc == 0 && fchmod(rs->out_fd, n->mode & 07777) < 0)
			rc = err_sys("cannot set the mode of %s", n->path);
		struct timespec ts[2];
		node_times(n, ts);
		if (rc == 0 && futimens(rs->out_fd, ts) < 0)
			rc = err_sys("cannot set the times of %s", n->path);
		if (close(rs->out_fd) < 0 && rc == 0)
			rc = err_sys("cannot write %s", n->path);
	}
	rs->out_fd = -1;
	rs->files++;
	TRY(rc);
	if (rs->out_written != n->size)
		return err_set(DRE_ECORRUPT, "restored %s has %llu bytes, the snapshot says %llu", n->path,
			       (unsigned long long)rs->out_written, (unsigned long long)n->size);
	if (memcmp(got, n->xxh128, 16) != 0)
		return err_set(DRE_ECORRUPT, "restored %s does not match its XXH3-128 checksum: the data is damaged",
			       n->path);
	return 0;
}

static void progress(struct restore *rs, bool final)
{
	if (meter_due(&rs->clock, final))
		rs->o->hooks.progress(rs->o->hooks.arg, rs->bytes, 0, meter_seconds(&rs->clock), final);
}

/* Writes finished jobs in order; with wait, blocks for the next one. */
static int rcollect(struct restore *rs, bool wait)
{
	void *done;
	int rc;
	while ((rc = workq_next(rs->q, wait, &done)) == 1) {
		struct rjob *j = done;
		if (j->first)
			TRY(node_open(rs, &j->node));
		TRY(node_write(rs, j));
		if (j->last)
			TRY(node_close(rs));
		progress(rs, false);
		j->in_use = false;
		wait = false;
	}
	return rc;
}

/* Waits until every job submitted so far is written. */
static int rcollect_all(struct restore *rs)
{
	while (workq_outstanding(rs->q) > 0)
		TRY(rcollect(rs, true));
	return 0;
}

static int rjob_get(struct restore *rs, struct rjob **out)
{
	for (;;) {
		for (size_t i = 0; i < rs->njobs; i++)
			if (!rs->jobs[i].in_use) {
				rs->jobs[i].in_use = true;
				rs->jobs[i].n = 0;
				*out = &rs->jobs[i];
				return 0;
			}
		TRY(rcollect(rs, true));
	}
}

/* Splits a node's chunk list into jobs. */
static int feed_node(struct restore *rs, const snap_node *n)
{
	uint64_t k = 0;
	char chex[65], shex[65];
	do {
		struct rjob *j;
		uint8_t id[CRYPTO_ID_LEN];
		TRY(rjob_get(rs, &j));
		node_keep(&j->node, j->path, n);
		j->first = k == 0;
		size_t raw = 0;
		while (k < n->nchunks) {
			index_entry e;
			int rc = snap_walk_chunk(rs->walk, id);
			if (rc < 0) {
				j->in_use = false;
				return rc;
			}
			if (!index_find(rs->idx, id, &e) || e.pack == INDEX_PACK_PENDING || (e.loc.flags & BLOB_LIST)) {
				hex_encode(id, CRYPTO_ID_LEN, chex);
				hex_encode(rs->s->id, CRYPTO_ID_LEN, shex);
				j->in_use = false;
				return err_set(DRE_ECORRUPT,
					       "snapshot %.8s: chunk %.16s of %s is not in the index (its index object "
					       "is missing or damaged). HINT: 'dre check' lists what is damaged",
					       shex, chex, n->path);
			}
			/* the index is read from the store: its lengths size what a worker decodes into j->out */
			if (e.loc.raw_len > rs->r->params.cdc_max ||
			    e.loc.stored_len > ZSTD_compressBound(rs->r->params.cdc_max)) {
				hex_encode(index_pack_id(rs->idx, e.pack), CRYPTO_ID_LEN, shex);
				hex_encode(id, CRYPTO_ID_LEN, chex);
				j->in_use = false;
				return err_set(DRE_ECORRUPT,
					       "corrupt index entry for chunk %.16s in pack %s: a blob of %u bytes (%u "
					       "stored), more than a chunk of this repository can be",
					       chex, shex, e.loc.raw_len, e.loc.stored_len);
			}
			if (!array_room(&j->ent, &j->ent_cap, j->n, sizeof *j->ent, 256)) {
				j->in_use = false;
				return err_set(DRE_ENOMEM, "cannot grow a restore job");
			}
			j->ent[j->n++] = e;
			raw += e.loc.raw_len;
			k++;
			if (raw + rs->r->params.cdc_max > j->out_cap)
				break; /* the next chunk may not fit */
		}
		j->last = k == n->nchunks;
		TRY(workq_submit(rs->q, j));
		TRY(rcollect(rs, false));
	} while (k < n->nchunks);
	return 0;
}

static int restore_setup(struct restore *rs)
{
	/* a store whose reads wait on the network gets more of them in flight than there are cores */
	int reads = store_in_flight(rs->r->st);
	rs->nworkers = workq_workers(rs->o->threads);
	if (rs->o->threads == 0 && rs->nworkers < reads)
		rs->nworkers = workq_workers(reads);
	rs->njobs = (size_t)rs->nworkers * 2 + 2;
	rs->jobs = calloc(rs->njobs, sizeof *rs->jobs);
	rs->workers = calloc((size_t)rs->nworkers, sizeof *rs->workers);
	rs->xxh = XXH3_createState();
	int rc = 0;
	if (rs->jobs == NULL || rs->workers == NULL || rs->xxh == NULL)
		rc = err_set(DRE_ENOMEM, "cannot allocate the restore pipeline");
	for (size_t i = 0; rc == 0 && i < rs->njobs; i++) {
		struct rjob *j = &rs->jobs[i];
		j->out_cap = RESTORE_SEGMENT + rs->r->params.cdc_max;
		j->out = malloc(j->out_cap);
		j->ent_cap = 256;
		j->ent = malloc(j->ent_cap * sizeof *j->ent);
		if (j->out == NULL || j->ent == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate the restore buffers");
	}
	for (int i = 0; rc == 0 && i < rs->nworkers; i++) {
		struct rworker *w = &rs->workers[i];
		w->rs = rs;
		w->key_pack = INDEX_PACK_PENDING;
		w->rbuf_cap = RESTORE_READ_MAX + ZSTD_compressBound(rs->r->params.cdc_max) + CRYPTO_TAG_LEN;
		w->rbuf = malloc(w->rbuf_cap);
		w->zd = ZSTD_createDCtx();
		if (w->rbuf == NULL || w->zd == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate the restore buffers");
		if (rc == 0)
			rc = crypto_ctx_new(&w->cc);
	}
	if (rc == 0)
		rc = workq_start(&rs->q, rs->nworkers, rs->workers, sizeof *rs->workers, worker_run, NULL, rs->njobs);
	return rc;
}

/* Stops the workers (after a failure too) and frees everything; returns rc or the pool's first failure. */
static int restore_teardown(struct restore *rs, int rc)
{
	rc = workq_close(&rs->q, rc);
	for (int i = 0; rs->workers && i < rs->nworkers; i++) {
		struct rworker *w = &rs->workers[i];
		free(w->rbuf);
		ZSTD_freeDCtx(w->zd);
		crypto_ctx_free(w->cc);
		crypto_wipe(w->subkey, sizeof w->subkey);
	}
	free(rs->workers);
	for (size_t i = 0; rs->jobs && i < rs->njobs; i++) {
		free(rs->jobs[i].out);
		free(rs->jobs[i].ent);
	}
	free(rs->jobs);
	XXH3_freeState(rs->xxh);
	snap_walk_free(rs->walk);
	index_free(rs->idx);
	if (rs->out_fd >= 0 && rs->out_is_file)
		close(rs->out_fd);
	return rc;
}

/* Directories, symlinks and empty files need no chunk data: made by the main thread, in snapshot order. */
static int restore_plain_node(struct restore *rs, const snap_node *n)
{
	char path[4096];
	if (n->type == NODE_DIR) {
		TRY(target_path(rs, n->path, path, sizeof path));
		return mkdir_p(path, trusted_len(rs, path), 0700);
	}
	if (n->type == NODE_SYMLINK) {
		TRY(target_path(rs, n->path, path, sizeof path));
		TRY(parent_dirs(rs, path));
		unlink(path);
		if (symlink(n->link ? n->link : "", path) < 0)
			return err_sys("cannot create symlink %s", path);
		if (geteuid() == 0 && lchown(path, n->uid, n->gid) < 0)
			return err_sys("cannot set the owner of %s", path);
		struct timespec ts[2];
		node_times(n, ts);
		utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	/* a file or stream with no chunks: wait for earlier jobs so output stays in order */
	TRY(rcollect_all(rs));
	TRY(node_open(rs, n));
	return node_close(rs);
}

static int dir_attrs(struct restore *rs, const char *rel, const snap_node *n)
{
	char path[4096];
	TRY(target_path(rs, rel, path, sizeof path));
	if (geteuid() == 0 && chown(path, n->uid, n->gid) < 0)
		return err_sys("cannot set the owner of %s", path);
	if (chmod(path, n->mode & 07777) < 0)
		return err_sys("cannot set the mode of %s", path);
	struct timespec ts[2];
	node_times(n, ts);
	if (utimensat(AT_FDCWD, path, ts, 0) < 0)
		return err_sys("cannot set the times of %s", path);
	return 0;
}

/* The directories of the walk still open: each an ancestor of the next, so one path buffer holds them all. */
struct dir_stack {
	char path[SNAP_PATH_MAX + 1];
	size_t n;
	struct open_dir {
		size_t len; /* of its path in path[]; 0 for "." */
		snap_node node;
	} *dirs;
	size_t cap;
};

static bool is_under(const char *path, const char *dir, size_t dlen)
{
	if (dlen == 0)
		return strcmp(path, ".") != 0; /* "." (the pushed directory itself) holds every other node */
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

/* Applies the attributes of the open directories that path is not inside of, innermost first. */
static int dir_stack_pop(struct restore *rs, struct dir_stack *st, const char *path)
{
	while (st->n > 0) {
		struct open_dir *d = &st->dirs[st->n - 1];
		if (path != NULL && is_under(path, st->path, d->len))
			break;
		st->path[d->len] = '\0';
		TRY(dir_attrs(rs, d->len ? st->path : ".", &d->node));
		st->n--;
	}
	return 0;
}

/*
 * Directory modes and times last: writing into a directory changes its mtime, and a read-only mode would stop
 * the restore of its contents. A second walk of the nodes sets them after their contents, children before
 * parents, holding only the directories it is inside of.
 */
static int restore_dir_attrs(struct restore *rs)
{
	struct dir_stack st = {.n = 0};
	snap_walk *w;
	snap_node n;
	int rc;
	TRY(snap_walk_open(rs->r, rs->idx, rs->s, false, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		rc = dir_stack_pop(rs, &st, n.path);
		if (rc < 0 || n.type != NODE_DIR)
			continue;
		if (!array_room(&st.dirs, &st.cap, st.n, sizeof *st.dirs, 16)) {
			rc = err_set(DRE_ENOMEM, "cannot hold the directories being restored");
			break;
		}
		size_t len = strcmp(n.path, ".") == 0 ? 0 : strlen(n.path);
		memcpy(st.path, n.path, len);
		st.path[len] = '\0';
		st.dirs[st.n].len = len;
		st.dirs[st.n].node = n;
		st.dirs[st.n].node.path = NULL;
		st.n++;
	}
	if (rc == 0)
		rc = dir_stack_pop(rs, &st, NULL);
	snap_walk_free(w);
	free(st.dirs);
	return rc;
}

int engine_restore(repo *r, const snapshot *s, const restore_opts *o, restore_result *res)
{
	struct restore rs;
	memset(&rs, 0, sizeof rs);
	rs.r = r;
	rs.s = s;
	rs.o = o;
	rs.out_fd = -1;
	meter_start(&rs.clock, &o->hooks);

	if (s->kind == SNAP_FILES && o->target == NULL)
		return err_set(DRE_EINVAL, "snapshot %s holds files: give --target DIR", s->name);
	if (o->target != NULL) {
		char target[4096];
		snprintf(target, sizeof target, "%s", o->target);
		TRY(mkdir_p(target, strlen(target), 0700));
	}
	char cache[4200];
	int rc = index_new(&rs.idx);
	if (rc == 0)
		rc = index_load(r, rs.idx, index_cache_path(r, cache, sizeof cache), o->hooks.warn, o->hooks.arg,
				NULL);
	if (rc == 0)
		rc = restore_setup(&rs);
	if (rc == 0)
		rc = snap_walk_open(r, rs.idx, s, true, &rs.walk);
	snap_node n;
	bool only_seen = false;
	while (rc == 0 && (rc = snap_walk_next(rs.walk, &n)) == 1) {
		if (o->only != NULL && strcmp(n.path, o->only) != 0) {
			rc = 0; /* the loop goes on while rc is 0 */
			continue;
		}
		only_seen = true;
		if ((n.type == NODE_FILE || n.type == NODE_STREAM) && n.nchunks > 0)
			rc = feed_node(&rs, &n);
		else
			rc = restore_plain_node(&rs, &n);
	}
	if (rc == 0 && o->only != NULL && !only_seen)
		rc = err_set(DRE_ENOTFOUND, "snapshot %s has no %s", s->name, o->only);
	if (rc == 0)
		rc = rcollect_all(&rs);
	if (rc == 0 && o->target != NULL)
		rc = restore_dir_attrs(&rs);
	if (rc == 0)
		progress(&rs, true);
	res->bytes = rs.bytes;
	res->files = rs.files;
	res->seconds = meter_seconds(&rs.clock);
	res->workers = rs.nworkers;
	return restore_teardown(&rs, rc);
}
