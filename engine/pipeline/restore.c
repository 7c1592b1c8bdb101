/*
 * restore.c — the reverse pipeline.
 *
 *   main thread:  the snapshot's node and chunk lists, walked (snapshot.h) → jobs (a run of chunks of one node,
 *                 up to RESTORE_SEGMENT plaintext bytes, each chunk resolved through the index)
 *   workers (N):  ranged reads of packs (adjacent blobs coalesced into one request) → AES-GCM open → zstd
 *   main thread:  writes finished jobs in order (holes for all-zero chunks of files), XXH3-128 of every node
 *                 checked at its end: a mismatch is a loud error naming the file.
 *   at the end:   a second walk of the nodes sets directory attributes, children before parents, and with
 *                 --delete removes what the restored directories hold beyond the snapshot.
 *
 * Before any of it, when the target already holds something or only part of the snapshot is wanted (--from,
 * --include), a first walk of the node list alone (no chunk data) finds what would be written over, and what
 * --from names, so a refusal comes before anything is written.
 *
 * Which nodes: those inside --from (a directory there becomes the target itself), matching --include or below a
 * directory that matches; the directories on the way to a match are created, and given their attributes by the
 * second walk. Nodes are decided one at a time, in walk order: no table of the snapshot is built.
 *
 * Memory does not grow with the snapshot: the walk holds one list blob per level, and each job carries a copy
 * of its node. Beyond that: the hard-link map (restore_fs.h: bounded, links past it become copies), and with
 * --delete the names of the children of the directories the second walk is inside of — as push holds each
 * directory's names to sort them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/pipeline/meter.h"
#include "engine/pipeline/pattern.h"
#include "engine/pipeline/restore_fs.h"
#include "engine/repo/pack.h"
#include "engine/pipeline/workq.h"

#define RESTORE_SEGMENT (8u << 20) /* plaintext bytes per job */
#define RESTORE_READ_MAX (8u << 20) /* largest coalesced read */
#define RESTORE_CMP_BUF (1u << 20) /* reading an existing file to compare it (--overwrite if-changed) */

/* A copy of a node that outlives the walk's buffers: its path, and its extended attributes (files have no link). */
struct node_copy {
	snap_node node;
	char path[SNAP_PATH_MAX + 1];
	uint8_t *xattrs;
	size_t xattr_cap;
};

struct rjob {
	struct node_copy node;
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

	/* what is restored */
	char from[SNAP_PATH_MAX + 1]; /* --from as a node path; "" for the whole snapshot */
	size_t from_len;
	bool whole;                       /* no --from: the whole snapshot */
	char match[SNAP_PATH_MAX + 2];    /* a node's path as patterns see it */
	char skip[SNAP_PATH_MAX + 1];     /* a node kept in place of a directory: nothing below it is restored */
	size_t skip_len;

	/* the node being written (main thread) */
	int out_fd;
	bool out_is_file;
	struct node_copy out; /* the job that opened it is recycled before the node ends */
	char out_target[4096];
	uint64_t out_written;
	XXH3_state_t *xxh;

	uint8_t *cmp_buf; /* RESTORE_CMP_BUF bytes, for --overwrite if-changed */
	rfs_links links;
	bool links_full; /* said once that further links are restored as copies */
	rfs_warn skipped;

	uint64_t bytes;
	size_t files, kept, linked, deleted;
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

/* ---- which nodes, and where they go ---- */

static bool in_from(const struct restore *rs, const char *path)
{
	return rs->whole || (strncmp(path, rs->from, rs->from_len) == 0 &&
			     (path[rs->from_len] == '\0' || path[rs->from_len] == '/'));
}

/* Whether n is one to restore: --globals/the archive (only), inside --from, matching --include. */
static bool node_selected(struct restore *rs, const snap_node *n)
{
	if (rs->o->only != NULL && strcmp(n->path, rs->o->only) != 0)
		return false;
	if (!in_from(rs, n->path))
		return false;
	if (rs->o->include == NULL)
		return true;
	snprintf(rs->match, sizeof rs->match, "/%s", strcmp(n->path, ".") == 0 ? "" : n->path);
	return pattern_set_match(rs->o->include, rs->match, n->type == NODE_DIR);
}

/* The error for a restore that selects nothing. */
static int nothing_selected(const struct restore *rs)
{
	char id[2 * CRYPTO_ID_LEN + 1];
	hex_encode(rs->s->id, CRYPTO_ID_LEN, id);
	if (rs->o->include != NULL)
		return err_set(DRE_ENOTFOUND, "nothing in snapshot %.8s (%s)%s%s matches --include", id, rs->s->name,
			       rs->whole ? "" : " below ", rs->whole ? "" : rs->o->from);
	if (!rs->whole)
		return err_set(DRE_ENOTFOUND,
			       "snapshot %.8s (%s) has no path %s. HINT: 'dre ls %.8s' shows its paths; --from takes "
			       "one of them, a leading \"/\" allowed",
			       id, rs->s->name, rs->o->from, id);
	return err_set(DRE_ENOTFOUND, "snapshot %s has no %s", rs->s->name, rs->o->only ? rs->o->only : "nodes");
}

/*
 * Where a node of the restore goes. A node path from a snapshot is joined to the target only when it cannot
 * escape it. Below --from a path loses that prefix: the directory at --from is the target itself, and a file
 * there goes into the target under its own name.
 */
static int target_path(const struct restore *rs, const char *rel, uint8_t type, char *out, size_t cap)
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
	const char *sub = rel;
	if (!rs->whole) {
		if (!in_from(rs, rel))
			return err_set(DRE_EINVAL, "internal: %s is not below %s", rel, rs->from);
		if (rel[rs->from_len] == '/')
			sub = rel + rs->from_len + 1;
		else if (type == NODE_DIR)
			sub = "";
		else
			sub = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	}
	int n = *sub ? snprintf(out, cap, "%s/%s", base, sub) : snprintf(out, cap, "%s", base);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "path %s/%s is too long", base, sub);
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

/* Whether directory dir holds anything (false when it does not exist). */
static bool dir_holds_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	struct dirent *de;
	bool any = false;
	while (!any && (de = readdir(d)) != NULL)
		any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return any;
}

/* ---- writing a file's data ---- */

static int node_copy_set(struct node_copy *dst, const snap_node *src)
{
	dst->node = *src;
	snprintf(dst->path, sizeof dst->path, "%s", src->path);
	dst->node.path = dst->path;
	dst->node.link = NULL;
	if (src->xattr_len > dst->xattr_cap) {
		uint8_t *p = realloc(dst->xattrs, src->xattr_len);
		if (p == NULL)
			return err_set(DRE_ENOMEM, "cannot hold the extended attributes of %s", src->path);
		dst->xattrs = p;
		dst->xattr_cap = src->xattr_len;
	}
	if (src->xattr_len > 0)
		memcpy(dst->xattrs, src->xattrs, src->xattr_len);
	dst->node.xattrs = src->xattr_len > 0 ? dst->xattrs : NULL;
	return 0;
}

/* Opens the node a job begins (its parents and its place in the target were made ready by the walk). */
static int node_open(struct restore *rs, const snap_node *n)
{
	TRY(node_copy_set(&rs->out, n));
	rs->out_written = 0;
	XXH3_128bits_reset(rs->xxh);
	if (rs->o->target == NULL) {
		rs->out_fd = rs->o->out_fd;
		rs->out_is_file = false;
		return 0;
	}
	TRY(target_path(rs, n->path, n->type, rs->out_target, sizeof rs->out_target));
	unlink(rs->out_target); /* replace, never write through, whatever is there */
	rs->out_fd = open(rs->out_target, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (rs->out_fd < 0)
		return err_sys("cannot create %s", rs->out_target);
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
	const snap_node *n = &rs->out.node;
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

static int node_close(struct restore *rs)
{
	const snap_node *n = &rs->out.node;
	uint8_t got[16];
	int rc = 0;
	XXH128_canonicalFromHash((XXH128_canonical_t *)got, XXH3_128bits_digest(rs->xxh));
	if (rs->out_is_file) {
		if (ftruncate(rs->out_fd, (off_t)rs->out_written) < 0)
			rc = err_sys("cannot set the size of %s", n->path);
		if (rc == 0)
			rc = rfs_set_attrs(rs->out_fd, rs->out_target, n, &rs->skipped);
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
	if (rs->out_is_file && n->type == NODE_FILE && n->nlink > 1) {
		rfs_link *l = rfs_links_find(&rs->links, n->dev, n->ino);
		if (l != NULL)
			l->done = true;
	}
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
			TRY(node_open(rs, &j->node.node));
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
		int rc = node_copy_set(&j->node, n);
		if (rc < 0) {
			j->in_use = false;
			return rc;
		}
		j->first = k == 0;
		size_t raw = 0;
		while (k < n->nchunks) {
			index_entry e;
			rc = snap_walk_chunk(rs->walk, id);
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
	if (rc == 0 && rs->o->overwrite == RESTORE_IF_CHANGED && (rs->cmp_buf = malloc(RESTORE_CMP_BUF)) == NULL)
		rc = err_set(DRE_ENOMEM, "cannot allocate the restore buffers");
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
		free(rs->jobs[i].node.xattrs);
	}
	free(rs->jobs);
	free(rs->out.xattrs);
	free(rs->cmp_buf);
	rfs_links_free(&rs->links);
	XXH3_freeState(rs->xxh);
	snap_walk_free(rs->walk);
	index_free(rs->idx);
	if (rs->out_fd >= 0 && rs->out_is_file)
		close(rs->out_fd);
	return rc;
}

/* ---- what the target already holds, hard links, and each kind of node ---- */

/*
 * Makes the place of non-directory node n at path free, as the overwrite policy says: *keep when what is there
 * stays (never; if-changed and it is the node already, its attributes then set as the snapshot has them).
 * Without a policy (RESTORE_REFUSE) the first walk made sure nothing of the user's is there: what is, this
 * restore wrote (a path the snapshot holds twice).
 */
static int make_room(struct restore *rs, const snap_node *n, const char *path, bool *keep)
{
	struct stat st;
	*keep = false;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_sys("cannot examine %s", path);
	if (rs->o->overwrite == RESTORE_NEVER) {
		*keep = true;
		rs->kept++;
		engine_warnf(rs->o->hooks.warn, rs->o->hooks.arg, "kept the existing %s (--overwrite never)", path);
		return 0;
	}
	if (rs->o->overwrite == RESTORE_IF_CHANGED) {
		TRY(rfs_is_node(path, &st, n, rs->cmp_buf, RESTORE_CMP_BUF, keep));
		if (*keep) {
			rs->kept++;
			return rfs_set_attrs(-1, path, n, &rs->skipped);
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return err_sys("cannot replace %s", path);
		return 0;
	}
	if (rmdir(path) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			return err_set(DRE_EEXIST, "cannot replace directory %s with the %s the snapshot has there: the "
						   "directory is not empty",
				       path, snap_node_type_name(n->type));
		return err_sys("cannot replace directory %s", path);
	}
	return 0;
}

/* Records a hard-linked file restored (or kept) at path, for its later links. */
static int link_note(struct restore *rs, const snap_node *n, const char *path, bool done)
{
	bool added;
	TRY(rfs_links_add(&rs->links, n, path, done, &added));
	if (!added && !rs->links_full) {
		rs->links_full = true;
		engine_warnf(rs->o->hooks.warn, rs->o->hooks.arg,
			     "more than %d hard-linked files (or %u MiB of their paths): further hard links are "
			     "restored as separate files",
			     RFS_LINKS_MAX, RFS_LINK_BYTES >> 20);
	}
	return 0;
}

/* A regular file with more than one link: *linked when it became a link to the first of its inode restored. A
 * link that cannot be made (another file system, too many links) is restored as a file of its own. */
static int link_restore(struct restore *rs, const snap_node *n, const char *path, bool *linked)
{
	*linked = false;
	rfs_link *l = rfs_links_find(&rs->links, n->dev, n->ino);
	if (l == NULL)
		return link_note(rs, n, path, false);
	if (l->size != n->size || memcmp(l->xxh, n->xxh128, 16) != 0)
		return 0; /* the file changed between the push reading its names: each keeps the content it read */
	if (!l->done)
		TRY(rcollect_all(rs)); /* its first name is still being written */
	if (l->done && link(l->path, path) == 0) {
		rs->linked++;
		*linked = true;
	}
	return 0;
}

static int restore_file(struct restore *rs, const snap_node *n)
{
	if (rs->o->target != NULL) {
		char path[4096];
		bool keep, linked;
		bool hardlink = n->type == NODE_FILE && n->nlink > 1;
		TRY(target_path(rs, n->path, n->type, path, sizeof path));
		TRY(parent_dirs(rs, path));
		TRY(make_room(rs, n, path, &keep));
		if (keep) { /* only an unchanged file may stand for its later links */
			bool first = hardlink && rfs_links_find(&rs->links, n->dev, n->ino) == NULL;
			return first && rs->o->overwrite == RESTORE_IF_CHANGED ? link_note(rs, n, path, true) : 0;
		}
		if (hardlink) {
			TRY(link_restore(rs, n, path, &linked));
			if (linked)
				return 0;
		}
	}
	if (n->nchunks > 0)
		return feed_node(rs, n);
	/* no chunks: wait for earlier jobs so output stays in order */
	TRY(rcollect_all(rs));
	TRY(node_open(rs, n));
	return node_close(rs);
}

static int restore_dir(struct restore *rs, const snap_node *n)
{
	char path[4096];
	struct stat st;
	TRY(target_path(rs, n->path, NODE_DIR, path, sizeof path));
	TRY(parent_dirs(rs, path));
	if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		if (rs->o->overwrite == RESTORE_NEVER) {
			rs->kept++;
			snprintf(rs->skip, sizeof rs->skip, "%s", n->path);
			rs->skip_len = strlen(rs->skip);
			engine_warnf(rs->o->hooks.warn, rs->o->hooks.arg,
				     "kept the existing %s, which is not a directory: what the snapshot has below it is "
				     "not restored (--overwrite never)",
				     path);
			return 0;
		}
		if (unlink(path) < 0)
			return err_sys("cannot replace %s with the directory the snapshot has there", path);
	}
	return mkdir_p(path, trusted_len(rs, path), 0700);
}

static int restore_symlink(struct restore *rs, const snap_node *n)
{
	char path[4096];
	bool keep;
	TRY(target_path(rs, n->path, n->type, path, sizeof path));
	TRY(parent_dirs(rs, path));
	TRY(make_room(rs, n, path, &keep));
	if (keep)
		return 0;
	if (symlink(n->link ? n->link : "", path) < 0)
		return err_sys("cannot create symlink %s", path);
	return rfs_set_attrs(-1, path, n, &rs->skipped);
}

static int restore_device(struct restore *rs, const snap_node *n)
{
	char path[4096];
	bool keep;
	TRY(target_path(rs, n->path, n->type, path, sizeof path));
	unsigned maj = major((dev_t)n->rdev), min = minor((dev_t)n->rdev);
	if (geteuid() != 0) {
		rfs_skip(&rs->skipped, "device node %s (%u:%u) not restored: only root can create device nodes", path,
			 maj, min);
		return 0;
	}
	TRY(parent_dirs(rs, path));
	TRY(make_room(rs, n, path, &keep));
	if (keep)
		return 0;
	mode_t type = n->type == NODE_CHARDEV ? S_IFCHR : S_IFBLK;
	if (mknod(path, type | (n->mode & 07777), (dev_t)n->rdev) < 0) {
		if (errno != EPERM)
			return err_sys("cannot create device node %s", path);
		/* root without CAP_MKNOD: a container */
		rfs_skip(&rs->skipped, "device node %s (%u:%u) not restored: %s", path, maj, min, strerror(errno));
		return 0;
	}
	return rfs_set_attrs(-1, path, n, &rs->skipped);
}

static int restore_node(struct restore *rs, const snap_node *n)
{
	if (rs->skip_len > 0 && strncmp(n->path, rs->skip, rs->skip_len) == 0 && n->path[rs->skip_len] == '/')
		return 0;
	if (rs->o->target == NULL)
		return n->type == NODE_FILE || n->type == NODE_STREAM ? restore_file(rs, n) : 0;
	switch (n->type) {
	case NODE_DIR: return restore_dir(rs, n);
	case NODE_SYMLINK: return restore_symlink(rs, n);
	case NODE_CHARDEV:
	case NODE_BLOCKDEV: return restore_device(rs, n);
	case NODE_FILE:
	case NODE_STREAM: return restore_file(rs, n);
	default:
		return err_set(DRE_EUNSUPP, "snapshot %s: %s is a node of type %u, which this dre does not know",
			       rs->s->name, n->path, n->type);
	}
}

/*
 * The first walk, of the node list alone: that something is selected (--from names a path the snapshot has,
 * --include matches), and with conflicts, that no selected node would replace what the target holds — the
 * first one that would is the error, before anything is written.
 */
static int restore_plan(struct restore *rs, bool conflicts)
{
	char path[4096], id[2 * CRYPTO_ID_LEN + 1];
	snap_walk *w;
	snap_node n;
	size_t selected = 0;
	int rc;
	struct stat st;
	TRY(snap_walk_open(rs->r, rs->idx, rs->s, false, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		rc = 0;
		if (!node_selected(rs, &n))
			continue;
		selected++;
		if (!conflicts)
			break;
		if ((rc = target_path(rs, n.path, n.type, path, sizeof path)) < 0)
			break;
		if (lstat(path, &st) == 0 && !(n.type == NODE_DIR && S_ISDIR(st.st_mode))) {
			hex_encode(rs->s->id, CRYPTO_ID_LEN, id);
			rc = err_set(DRE_EEXIST,
				     "%s exists: refusing to restore snapshot %.8s (%s) over what %s holds. HINT: restore "
				     "into an empty or new directory, or give --overwrite always (replace what is there), "
				     "if-changed (replace only what differs from the snapshot) or never (keep what is "
				     "there)",
				     path, id, rs->s->name, rs->o->target);
			break;
		}
	}
	snap_walk_free(w);
	TRY(rc);
	return selected > 0 ? 0 : nothing_selected(rs);
}

/* ---- the second walk: directory attributes and --delete ---- */

/* The directories of the walk still open: each an ancestor of the next, so one path buffer holds them all. */
struct dir_stack {
	char path[SNAP_PATH_MAX + 1];
	size_t n;
	struct open_dir {
		size_t len; /* of its path in path[]; 0 for "." */
		snap_node node; /* path NULL, extended attributes in xattrs */
		uint8_t *xattrs;
		bool in_from;  /* inside --from */
		bool selected; /* restored itself */
		bool holds;    /* holds a node restored: made on the way to it */
		bool mirror;   /* --delete: what the target holds in it beyond the snapshot goes */
		char *names;   /* mirror: the names of its children in the snapshot, each NUL-terminated */
		size_t names_len, names_cap, nnames;
	} *dirs;
	size_t cap;
};

static bool is_under(const char *path, const char *dir, size_t dlen)
{
	if (dlen == 0)
		return strcmp(path, ".") != 0; /* "." (the pushed directory itself) holds every other node */
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --delete in one directory: what it holds that the snapshot does not have there goes. */
static int delete_extra(struct restore *rs, struct open_dir *d, const char *path)
{
	char **names = d->nnames ? malloc(d->nnames * sizeof *names) : NULL;
	char shown[4096];
	if (d->nnames && names == NULL)
		return err_set(DRE_ENOMEM, "cannot list what %s should hold", path);
	for (size_t i = 0, off = 0; i < d->nnames; i++) {
		names[i] = d->names + off;
		off += strlen(names[i]) + 1;
	}
	if (d->nnames > 1)
		qsort(names, d->nnames, sizeof *names, name_cmp);
	int rc = rfs_remove_extra(path, names, d->nnames, shown, sizeof shown, &rs->deleted);
	free(names);
	return rc;
}

static int dir_done(struct restore *rs, struct dir_stack *st, struct open_dir *d)
{
	char path[4096];
	struct stat sb;
	if (!d->selected && !d->holds)
		return 0;
	st->path[d->len] = '\0';
	TRY(target_path(rs, d->len ? st->path : ".", NODE_DIR, path, sizeof path));
	if (lstat(path, &sb) < 0) {
		/* made only on the way to what was not restored after all, or kept in place of one (never) */
		if ((errno == ENOENT || errno == ENOTDIR) && (!d->selected || rs->o->overwrite == RESTORE_NEVER))
			return 0;
		return err_sys("cannot examine directory %s", path);
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (rs->o->overwrite == RESTORE_NEVER)
			return 0; /* a file kept in its place */
		return err_set(DRE_EIO, "%s is no longer a directory: something else changed the target during the "
					"restore",
			       path);
	}
	if (d->mirror)
		TRY(delete_extra(rs, d, path));
	d->node.xattrs = d->xattrs;
	return rfs_set_attrs(-1, path, &d->node, &rs->skipped);
}

/* Finishes the open directories that path is not inside of, innermost first (all of them with path NULL). */
static int dir_stack_pop(struct restore *rs, struct dir_stack *st, const char *path)
{
	while (st->n > 0) {
		struct open_dir *d = &st->dirs[st->n - 1];
		if (path != NULL && is_under(path, st->path, d->len))
			break;
		int rc = dir_done(rs, st, d);
		free(d->xattrs);
		free(d->names);
		st->n--;
		TRY(rc);
	}
	return 0;
}

/* Notes node path (selected or not) as a child of the innermost open directory, which --delete mirrors. */
static int dir_note_child(struct dir_stack *st, const char *path)
{
	struct open_dir *d = &st->dirs[st->n - 1];
	const char *name = d->len ? path + d->len + 1 : path;
	size_t len = strcspn(name, "/"); /* a child whose own directory has no node: that directory's name */
	if (d->names_len + len + 1 > d->names_cap) {
		size_t cap = d->names_cap ? d->names_cap : 256;
		while (cap < d->names_len + len + 1)
			cap *= 2;
		char *p = realloc(d->names, cap);
		if (p == NULL)
			return err_set(DRE_ENOMEM, "cannot hold the names of a directory being restored");
		d->names = p;
		d->names_cap = cap;
	}
	memcpy(d->names + d->names_len, name, len);
	d->names[d->names_len + len] = '\0';
	d->names_len += len + 1;
	d->nnames++;
	return 0;
}

static int dir_push(struct restore *rs, struct dir_stack *st, const snap_node *n, bool selected)
{
	if (!array_room(&st->dirs, &st->cap, st->n, sizeof *st->dirs, 16))
		return err_set(DRE_ENOMEM, "cannot hold the directories being restored");
	struct open_dir *d = &st->dirs[st->n];
	memset(d, 0, sizeof *d);
	d->len = strcmp(n->path, ".") == 0 ? 0 : strlen(n->path);
	d->node = *n;
	d->node.path = NULL;
	d->node.link = NULL;
	d->node.xattrs = NULL;
	if (n->xattr_len > 0) {
		if ((d->xattrs = malloc(n->xattr_len)) == NULL)
			return err_set(DRE_ENOMEM, "cannot hold the extended attributes of %s", n->path);
		memcpy(d->xattrs, n->xattrs, n->xattr_len);
	}
	d->in_from = in_from(rs, n->path);
	d->selected = selected;
	d->mirror = selected && rs->o->delete_extra;
	memcpy(st->path, n->path, d->len);
	st->path[d->len] = '\0';
	st->n++;
	return 0;
}

/*
 * Directory attributes last: writing into a directory changes its mtime, and a read-only mode would stop the
 * restore of its contents. A second walk of the nodes sets them after their contents, children before
 * parents, holding only the directories it is inside of; --delete empties a directory of what the snapshot
 * does not have there just before.
 */
static int restore_dir_attrs(struct restore *rs)
{
	struct dir_stack st = {.n = 0};
	snap_walk *w;
	snap_node n;
	int rc;
	TRY(snap_walk_open(rs->r, rs->idx, rs->s, false, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		if ((rc = dir_stack_pop(rs, &st, n.path)) < 0)
			break;
		bool selected = node_selected(rs, &n);
		if (selected) /* its directories were made on the way: they get their attributes */
			for (size_t i = st.n; i > 0 && st.dirs[i - 1].in_from && !st.dirs[i - 1].holds; i--)
				st.dirs[i - 1].holds = true;
		if (st.n > 0 && st.dirs[st.n - 1].mirror && (rc = dir_note_child(&st, n.path)) < 0)
			break;
		if (n.type == NODE_DIR && (rc = dir_push(rs, &st, &n, selected)) < 0)
			break;
	}
	if (rc == 0)
		rc = dir_stack_pop(rs, &st, NULL);
	while (st.n > 0) { /* after a failure */
		free(st.dirs[st.n - 1].xattrs);
		free(st.dirs[st.n - 1].names);
		st.n--;
	}
	snap_walk_free(w);
	free(st.dirs);
	return rc;
}

int engine_restore(repo *r, const snapshot *s, const restore_opts *o, restore_result *res)
{
	struct restore rs;
	memset(&rs, 0, sizeof rs);
	memset(res, 0, sizeof *res);
	rs.r = r;
	rs.s = s;
	rs.o = o;
	rs.out_fd = -1;
	rs.skipped.hooks = &o->hooks;
	meter_start(&rs.clock, &o->hooks);

	if (s->kind == SNAP_FILES && o->target == NULL)
		return err_set(DRE_EINVAL, "snapshot %s holds files: give --target DIR", s->name);
	if (o->target == NULL && (o->from != NULL || o->include != NULL || o->delete_extra))
		return err_set(DRE_EINVAL, "--from, --include and --delete restore into a directory: give --target DIR");
	if (o->delete_extra && o->overwrite != RESTORE_ALWAYS && o->overwrite != RESTORE_IF_CHANGED)
		return err_set(DRE_EINVAL, "--delete removes what the target holds beyond the snapshot: give it with "
					   "--overwrite always or --overwrite if-changed");
	if (o->from != NULL && snap_path_of(o->from, rs.from, sizeof rs.from) < 0) /* "/" → "": the whole snapshot */
		return err_set(DRE_EINVAL, "--from %s: a path inside the snapshot, without '..', of at most %zu bytes",
			       o->from, sizeof rs.from - 1);
	rs.from_len = strlen(rs.from);
	rs.whole = rs.from_len == 0;

	/* the first walk only when it can find something: an empty or new target conflicts with nothing */
	bool conflicts = false;
	for (size_t i = 0; o->target != NULL && o->overwrite == RESTORE_REFUSE && i <= o->nrelocate; i++)
		conflicts = conflicts || dir_holds_entries(i < o->nrelocate ? o->relocate[i].dir : o->target);
	bool plan = o->target != NULL && (conflicts || !rs.whole || o->include != NULL);

	char cache[4200];
	int rc = index_new(&rs.idx);
	if (rc == 0)
		rc = index_load(r, rs.idx, index_cache_path(r, cache, sizeof cache), o->hooks.warn, o->hooks.arg,
				NULL);
	if (rc == 0 && plan)
		rc = restore_plan(&rs, conflicts);
	if (rc == 0 && o->target != NULL) {
		char target[4096];
		snprintf(target, sizeof target, "%s", o->target);
		rc = mkdir_p(target, strlen(target), 0700);
	}
	if (rc == 0)
		rc = restore_setup(&rs);
	if (rc == 0)
		rc = snap_walk_open(r, rs.idx, s, true, &rs.walk);
	snap_node n;
	size_t selected = 0;
	while (rc == 0 && (rc = snap_walk_next(rs.walk, &n)) == 1) {
		rc = 0; /* the loop goes on while rc is 0 */
		if (!node_selected(&rs, &n))
			continue;
		selected++;
		rc = restore_node(&rs, &n);
	}
	if (rc == 0 && selected == 0 && (o->only != NULL || plan))
		rc = nothing_selected(&rs);
	if (rc == 0)
		rc = rcollect_all(&rs);
	if (rc == 0 && o->target != NULL)
		rc = restore_dir_attrs(&rs);
	if (rc == 0) {
		rfs_warn_end(&rs.skipped);
		progress(&rs, true);
	}
	res->bytes = rs.bytes;
	res->files = rs.files;
	res->linked = rs.linked;
	res->kept = rs.kept;
	res->deleted = rs.deleted;
	res->skipped = rs.skipped.skipped;
	res->seconds = meter_seconds(&rs.clock);
	res->workers = rs.nworkers;
	return restore_teardown(&rs, rc);
}
