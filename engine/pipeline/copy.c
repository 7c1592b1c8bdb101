/*
 * copy.c — snapshots and WAL from one repository into another (copy.h).
 *
 *   select   the source's snapshots by name or ID (all by default), oldest first; list the target's and skip
 *            every one it already holds (the same original by "copy-of", or the same ID)
 *   --wal    every wal/ object the target lacks: get, open with the source's keys, seal with the target's, put
 *            create-once. Before the snapshots, so that a base backup arrives after the WAL it needs (§10.1).
 *   copy     per snapshot: a push session on the target with the source's header fields; its nodes in order,
 *            the content of streams and files read chunk by chunk from the source and fed to the push, which
 *            checks each node's XXH3-128 against the source's record
 *
 * Memory: the source's index (to find chunks and list blobs), the target push's (to dedup), the push pipeline's
 * fixed buffers, the chunk reader's and one WAL object at a time; none grows with a snapshot's size.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline/chunkread.h"
#include "engine/pipeline/copy.h"
#include "engine/repo/index.h"
#include "engine/pipeline/meter.h"
#include "engine/pipeline/push.h"
#include "engine/pg/wal.h"
#include "engine/testhook.h"

/* The largest wal/ object copied: a 1 GiB segment stored raw, with its headers (wal.c's own bound). */
#define COPY_WAL_OBJECT_MAX ((1u << 30) + (4u << 20))

static void warn(const copy_opts *o, const char *msg)
{
	if (o->hooks.warn)
		o->hooks.warn(o->hooks.arg, msg);
}

/* ---- selection ---- */

/* Marks in pick what each of o->what names, the way snap_find reads it: text that is a prefix of exactly one
 * snapshot ID is that snapshot, else every snapshot of that name. */
static int select_snapshots(const snap_list *l, const copy_opts *o, bool *pick)
{
	if (o->nwhat == 0) {
		for (size_t i = 0; i < l->n; i++)
			pick[i] = true;
		return 0;
	}
	for (size_t w = 0; w < o->nwhat; w++) {
		const char *what = o->what[w];
		size_t by_id = SIZE_MAX, matches = 0;
		if (snap_id_prefix_text(what)) {
			char hex[2 * CRYPTO_ID_LEN + 1];
			for (size_t i = 0; i < l->n; i++) {
				hex_encode(l->items[i].id, CRYPTO_ID_LEN, hex);
				if (strncmp(hex, what, strlen(what)) == 0)
					by_id = i, matches++;
			}
		}
		if (matches > 1)
			return err_set(DRE_EINVAL, "snapshot ID prefix %s is ambiguous (%zu snapshots match)", what,
				       matches);
		if (matches == 1) {
			pick[by_id] = true;
			continue;
		}
		bool any = false;
		for (size_t i = 0; i < l->n; i++)
			if (strcmp(l->items[i].name, what) == 0)
				pick[i] = any = true;
		if (!any)
			return err_set(DRE_ENOTFOUND,
				       "no snapshot named or with ID %s in the source repository%s. HINT: 'dre snapshots' "
				       "lists them",
				       what, l->damaged ? " (some snapshot objects are damaged: run 'dre check')" : "");
	}
	return 0;
}

/* What a copy of s records as copy-of: the original snapshot, which is s itself unless s is a copy. Naming the
 * original rather than the immediate source lets every copy of one snapshot recognise the others, whatever the
 * path (local → S3 → offsite, then local → offsite directly). */
static void origin_of(const snapshot *s, char out[2 * CRYPTO_ID_LEN + 1])
{
	const char *of = snap_meta_get(s, COPY_META_KEY);
	uint8_t id[CRYPTO_ID_LEN];
	if (of != NULL && strlen(of) == 2 * CRYPTO_ID_LEN && hex_decode(of, id, sizeof id))
		hex_encode(id, sizeof id, out); /* lowercase, as every ID dre writes */
	else
		hex_encode(s->id, CRYPTO_ID_LEN, out);
}

/* The target's snapshot that already holds src: the same original (a copy of it, of the same snapshot src is a
 * copy of, or the original itself), or the very object (a repository copied object by object keeps its IDs).
 * NULL when none. */
static const snapshot *already_there(const snap_list *target, const snapshot *src)
{
	char hex[2 * CRYPTO_ID_LEN + 1], origin[2 * CRYPTO_ID_LEN + 1], thex[2 * CRYPTO_ID_LEN + 1],
		torigin[2 * CRYPTO_ID_LEN + 1];
	hex_encode(src->id, CRYPTO_ID_LEN, hex);
	origin_of(src, origin);
	for (size_t i = 0; i < target->n; i++) {
		const snapshot *t = &target->items[i];
		hex_encode(t->id, CRYPTO_ID_LEN, thex);
		origin_of(&target->items[i], torigin);
		if (strcmp(thex, hex) == 0 || strcmp(torigin, origin) == 0)
			return t;
	}
	return NULL;
}

/* ---- one snapshot ---- */

/* The content of the node being copied, served to the target push (push_read_fn). */
struct node_src {
	snap_walk *walk;
	chunk_reader *cr;
	uint64_t to_queue, to_take; /* chunks of this node not yet queued, not yet taken */
	const uint8_t *data;        /* the chunk being served */
	size_t len, off;
	char what[SNAP_PATH_MAX + 64];
};

static int node_read(void *arg, uint8_t *out, size_t cap, size_t *got)
{
	struct node_src *ns = arg;
	size_t n = 0;
	while (n < cap) {
		if (ns->off == ns->len) {
			if (ns->to_take == 0)
				break;
			/* keep the reader's queue full with this node's next chunks, so it can read runs at once */
			while (ns->to_queue > 0 && chunkread_room(ns->cr) > 0) {
				uint8_t id[CRYPTO_ID_LEN];
				TRY(snap_walk_chunk(ns->walk, id));
				TRY(chunkread_queue(ns->cr, id, ns->what));
				ns->to_queue--;
			}
			TRY(chunkread_next(ns->cr, &ns->data, &ns->len));
			ns->off = 0;
			ns->to_take--;
		}
		size_t k = ns->len - ns->off < cap - n ? ns->len - ns->off : cap - n;
		memcpy(out + n, ns->data + ns->off, k);
		ns->off += k;
		n += k;
	}
	*got = n;
	return 0;
}

static int copy_nodes(repo *src, const chunk_index *idx, chunk_reader *cr, const snapshot *s, push_session *ps)
{
	struct node_src ns = {.cr = cr};
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(s->id, CRYPTO_ID_LEN, hex);
	TRY(snap_walk_open(src, idx, s, true, &ns.walk));
	snap_node n;
	int rc;
	while ((rc = snap_walk_next(ns.walk, &n)) == 1) {
		if (n.type == NODE_STREAM) {
			/* a stream has no attributes of its own (format-spec.md §10.3); the walk gave it the start time */
			n.mode = 0600;
			n.uid = n.gid = 0;
			n.mtime_ns = 0;
		}
		snprintf(ns.what, sizeof ns.what, "%s of snapshot %.8s", n.path, hex);
		ns.to_queue = ns.to_take = n.nchunks;
		ns.data = NULL;
		ns.len = ns.off = 0;
		bool content = n.type == NODE_STREAM || n.type == NODE_FILE;
		rc = push_session_add_node(ps, &n, content ? node_read : NULL, &ns);
		if (rc == 0 && content && ns.to_take > 0)
			rc = err_set(DRE_ECORRUPT, "snapshot %.8s: %s ended before its %" PRIu64 " chunks did", hex, n.path,
				     n.nchunks);
		if (rc < 0)
			break;
	}
	snap_walk_free(ns.walk);
	return rc;
}

static int copy_one(repo *src, repo *dst, const chunk_index *idx, chunk_reader *cr, const copy_opts *o,
		    const snapshot *s, push_result *res)
{
	/* the session takes its write lock on dst (format-spec.md §16.3) and follows the writer's rules */
	push_opts po = {.name = s->name, .threads = o->threads, .hooks = o->hooks, .lock_command = "copy"};
	push_session *ps;
	char hex[2 * CRYPTO_ID_LEN + 1], origin[2 * CRYPTO_ID_LEN + 1];
	hex_encode(s->id, CRYPTO_ID_LEN, hex);
	origin_of(s, origin);
	TRY(push_session_start(dst, &po, s->kind, &ps));
	int rc = push_session_set_origin(ps, s);
	for (size_t i = 0; rc == 0 && i < s->nmeta; i++)
		if (strcmp(s->meta[i].key, COPY_META_KEY) != 0)
			rc = push_session_add_meta(ps, s->meta[i].key, s->meta[i].value);
	if (rc == 0)
		rc = push_session_add_meta(ps, COPY_META_KEY, origin);
	if (rc == 0)
		rc = copy_nodes(src, idx, cr, s, ps);
	if (rc < 0)
		rc = err_ctx(rc, "copy of snapshot %.8s (%s)", hex, s->name);
	return push_session_end(ps, rc, true, res);
}

/* ---- WAL ---- */

struct keylist {
	char **keys;
	uint64_t *sizes;
	size_t n, cap, sizes_cap;
};

static void keylist_free(struct keylist *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->keys[i]);
	free(k->keys);
	free(k->sizes);
}

/* A key of the WAL archive (format-spec.md §15): wal/<system>/system or wal/<system>/<TTTTTTTT>/<name>. Other
 * objects under wal/ are not the archive's and are left where they are. */
static bool wal_key(const char *key)
{
	const char *p = key + 4, *slash;
	if (strncmp(key, "wal/", 4) != 0 || *p < '1' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != '/')
		return false;
	if (strcmp(p, "system") == 0)
		return true;
	slash = strchr(p, '/');
	if (slash == NULL || slash - p != 8 || strlen(slash + 1) >= WAL_NAME_MAX)
		return false;
	char name[WAL_NAME_MAX];
	snprintf(name, sizeof name, "%s", slash + 1);
	char *dot = strrchr(name, '.');
	for (char *c = name; *c && (dot == NULL || c < dot); c++) /* back to PostgreSQL's uppercase */
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	wal_name wn;
	return wal_name_parse(name, &wn) == 0 && strncmp(p, slash + 1, 8) == 0;
}

static int keylist_add(void *arg, const char *key, uint64_t size)
{
	struct keylist *k = arg;
	if (!wal_key(key))
		return 0;
	if (!array_room(&k->keys, &k->cap, k->n, sizeof *k->keys, 256) ||
	    !array_room(&k->sizes, &k->sizes_cap, k->n, sizeof *k->sizes, 256) || (k->keys[k->n] = strdup(key)) == NULL)
		return err_set(DRE_ENOMEM, "cannot list the WAL archive");
	k->sizes[k->n++] = size;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_system_key(const char *key)
{
	const char *s = strrchr(key, '/');
	return s && strcmp(s, "/system") == 0;
}

/* Re-encrypts one wal/ object for the target, in *obj (size bytes, as listed). */
static int wal_copy_one(repo *src, repo *dst, const char *key, uint64_t size, uint8_t **obj, size_t *cap,
			copy_result *res)
{
	if (size > COPY_WAL_OBJECT_MAX)
		return err_set(DRE_ECORRUPT, "corrupt object %s: %" PRIu64 " bytes, more than any WAL file", key, size);
	if (size > *cap) { /* one buffer, grown to the largest object: a WAL segment and its headers */
		uint8_t *b = realloc(*obj, (size_t)size);
		if (b == NULL)
			return err_set(DRE_ENOMEM, "cannot allocate %" PRIu64 " bytes for %s", size, key);
		*obj = b;
		*cap = (size_t)size;
	}
	uint8_t *plain;
	size_t plen;
	int rc = store_get(src->st, key, 0, (size_t)size, *obj);
	if (rc < 0)
		return err_ctx(rc, "source repository");
	TRY_CTX(repo_open_object(src, 'W', key, *obj, (size_t)size, &plain, &plen), "source repository");
	/* the plaintext sits where the envelope header left room: sealing in place makes the target's object */
	TRY(repo_seal_object(dst, 'W', key, *obj, plen));
	rc = store_put(dst->st, key, *obj, (size_t)size, STORE_PUT_CREATE_ONCE);
	if (rc == DRE_EEXIST) { /* a wal-push into the target got there first: a name is written once */
		res->wal_present++;
		return 0;
	}
	TRY_CTX(rc, "target repository");
	test_pause("copy-wal-copied");
	res->wal_copied++;
	res->wal_bytes += size;
	return 0;
}

static int wal_copy(repo *src, repo *dst, copy_result *res)
{
	struct keylist s = {0}, t = {0};
	uint8_t *obj = NULL;
	size_t cap = 0;
	int rc = store_list(src->st, "wal/", keylist_add, &s);
	if (rc == 0)
		rc = store_list(dst->st, "wal/", keylist_add, &t);
	if (rc == 0 && t.n > 1)
		qsort(t.keys, t.n, sizeof *t.keys, str_cmp);
	/* each system's record first: a reader of the archive takes the segment size from it */
	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		for (size_t i = 0; rc == 0 && i < s.n; i++) {
			if (is_system_key(s.keys[i]) != (pass == 0))
				continue;
			if (t.n > 0 && bsearch(&s.keys[i], t.keys, t.n, sizeof *t.keys, str_cmp) != NULL) {
				res->wal_present++;
				continue;
			}
			rc = wal_copy_one(src, dst, s.keys[i], s.sizes[i], &obj, &cap, res);
		}
	}
	free(obj);
	keylist_free(&s);
	keylist_free(&t);
	return rc;
}

/* ---- the command ---- */

struct copy_run {
	repo *src, *dst;
	const copy_opts *o;
	copy_result *res;
	snap_list sl, tl;
	bool *pick;
	chunk_index *idx;
	chunk_reader *cr;
};

static void report(const copy_opts *o, const copy_event *e)
{
	if (o->event)
		o->event(o->event_arg, e);
}

static int copy_snapshots(struct copy_run *c)
{
	const copy_opts *o = c->o;
	bool base_warned = false;
	for (size_t i = 0; i < c->sl.n; i++) {
		if (!c->pick[i])
			continue;
		const snapshot *s = &c->sl.items[i];
		const snapshot *there = already_there(&c->tl, s);
		if (there != NULL) {
			c->res->skipped++;
			report(o, &(copy_event){.src = s, .target_id = there->id});
			continue;
		}
		if (c->idx == NULL) { /* the source's index, loaded once for every snapshot it copies */
			char cache[4200];
			TRY(index_new(&c->idx));
			TRY(index_load(c->src, c->idx, index_cache_path(c->src, cache, sizeof cache), o->hooks.warn,
				       o->hooks.arg, NULL));
			TRY(chunkread_new(c->src, c->idx, &c->cr));
		}
		if (s->kind == SNAP_PG_BASE && !o->wal && !base_warned) {
			warn(o, "copying base backups without --wal: the target cannot restore them unless its WAL "
				"archive holds their WAL too");
			base_warned = true;
		}
		push_result pr = {0};
		uint64_t fetched = chunkread_fetched(c->cr);
		TRY(copy_one(c->src, c->dst, c->idx, c->cr, o, s, &pr));
		test_pause("copy-snapshot-copied");
		fetched = chunkread_fetched(c->cr) - fetched;
		c->res->copied++;
		c->res->bytes_read += pr.size;
		c->res->bytes_fetched += fetched;
		c->res->stored_new += pr.stored_new;
		report(o, &(copy_event){.src = s, .target_id = pr.id, .copied = true, .push = &pr, .fetched = fetched});
	}
	return 0;
}

int engine_copy(repo *src, repo *dst, const copy_opts *o, copy_result *res)
{
	struct copy_run c = {.src = src, .dst = dst, .o = o, .res = res};
	meter clock;
	memset(res, 0, sizeof *res);
	meter_start(&clock, NULL);
	if (memcmp(src->repo_id, dst->repo_id, REPO_ID_LEN) == 0)
		return err_set(DRE_EINVAL, "the source and the target are the same repository");
	if (dst->format < REPO_FORMAT_NODES)
		return err_set(DRE_EUNSUPP, "the target repository has format version %u, which this dre reads but does "
					    "not write. HINT: 'dre migrate' upgrades it to version %d",
			       dst->format, REPO_FORMAT_VERSION);

	/* everything that can refuse the request comes before the first write */
	int rc = snap_list_load(src, &c.sl, o->hooks.warn, o->hooks.arg);
	if (rc == 0 && (c.pick = calloc(c.sl.n + 1, sizeof *c.pick)) == NULL)
		rc = err_set(DRE_ENOMEM, "cannot select snapshots");
	if (rc == 0)
		rc = select_snapshots(&c.sl, o, c.pick);
	if (rc == 0 && (rc = snap_list_load(dst, &c.tl, o->hooks.warn, o->hooks.arg)) < 0)
		rc = err_ctx(rc, "target repository");
	if (rc == 0 && o->wal)
		rc = wal_copy(src, dst, res);
	if (rc == 0)
		rc = copy_snapshots(&c);
	chunkread_free(c.cr);
	index_free(c.idx);
	free(c.pick);
	snap_list_free(&c.sl);
	snap_list_free(&c.tl);
	res->seconds = meter_seconds(&clock);
	return rc;
}
