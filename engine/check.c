/*
 * check.c — repository verification.
 *
 * Structure (always): every index object decrypts and decodes; every pack the index names exists with a
 * plausible size; every snapshot decrypts, its node list and chunk list read back whole (every list blob
 * found, authenticated and consistent with the counts above it), and every chunk it lists is in the index. A
 * subtree of the chunk list that several snapshots share is read once.
 * --read-data: additionally every pack is read whole, its header authenticated and compared with the index,
 * and every blob decrypted, decompressed and its keyed hash recomputed: that proves the data would restore.
 *
 * Problems go to the warn hook one line each, naming the object; check itself fails only when it cannot run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/engine.h"
#include "engine/index.h"
#include "engine/list.h"
#include "engine/pack.h"
#include "engine/wal.h"

struct check {
	repo *r;
	const check_opts *o;
	check_report *rep;
	chunk_index *idx;
	chunk_index *present; /* packs found in the store, keyed by pack ID; entry.pack = their slot in present_size */
	uint64_t *present_size;
	size_t present_n, present_cap;
	chunk_index *seen; /* chunk list blobs already verified, with everything below them */
};

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct check *c, const char *fmt, ...)
{
	char msg[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->rep->errors++;
	if (c->o->hooks.warn)
		c->o->hooks.warn(c->o->hooks.arg, msg);
}

static void index_warn(void *arg, const char *msg)
{
	problem(arg, "%s", msg);
}

static int list_pack(void *arg, const char *key, uint64_t size)
{
	struct check *c = arg;
	const char *hex = strrchr(key, '/');
	index_entry e;
	memset(&e, 0, sizeof e);
	if (hex == NULL || !hex_decode(hex + 1, e.loc.id, CRYPTO_ID_LEN)) {
		problem(c, "object %s in packs/ is not named like a pack", key);
		return 0;
	}
	if (!array_room(&c->present_size, &c->present_cap, c->present_n, sizeof *c->present_size, 256))
		return err_set(DRE_ENOMEM, "cannot list packs");
	e.pack = (uint32_t)c->present_n; /* position in present_size */
	c->present_size[c->present_n++] = size;
	TRY(index_insert(c->present, &e));
	c->rep->packs++;
	return 0;
}

struct pack_use {
	uint64_t *need; /* per pack number: the end of its last blob */
};

static int note_need(void *arg, const index_entry *e)
{
	struct pack_use *u = arg;
	if (e->pack != INDEX_PACK_PENDING) {
		uint64_t end = (uint64_t)e->loc.offset + e->loc.stored_len + CRYPTO_TAG_LEN;
		if (end > u->need[e->pack])
			u->need[e->pack] = end;
	}
	return 0;
}

static int check_packs_present(struct check *c)
{
	size_t np = index_pack_count(c->idx);
	struct pack_use u = {calloc(np ? np : 1, sizeof *u.need)};
	if (u.need == NULL)
		return err_set(DRE_ENOMEM, "cannot check packs");
	index_each(c->idx, note_need, &u);
	for (uint32_t i = 0; i < np; i++) {
		char hex[65];
		index_entry p;
		bool present = index_find(c->present, index_pack_id(c->idx, i), &p);
		hex_encode(index_pack_id(c->idx, i), CRYPTO_ID_LEN, hex);
		if (!present)
			problem(c, "missing pack %s: the index lists chunks in it but the store does not have it", hex);
		else if (c->present_size[p.pack] < u.need[i] + PACK_TRAILER_LEN)
			problem(c, "corrupt pack %s: %llu bytes, too short for the chunks the index places in it", hex,
				(unsigned long long)c->present_size[p.pack]);
	}
	free(u.need);
	return 0;
}

/* list_visit_fn: a chunk list subtree verified for an earlier snapshot is not read again. */
static int visit_once(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	struct check *c = arg;
	index_entry e = {.pack = 0};
	(void)level, (void)count;
	memcpy(e.loc.id, id, CRYPTO_ID_LEN);
	int added = index_insert(c->seen, &e);
	TRY(added);
	return added == 0; /* present: skip */
}

struct missing {
	size_t n;
	char first[65];
};

static void note_chunk(struct check *c, const uint8_t id[CRYPTO_ID_LEN], struct missing *m)
{
	index_entry e;
	if (index_find(c->idx, id, &e) && !(e.loc.flags & BLOB_LIST))
		return;
	if (m->n++ == 0)
		hex_encode(id, CRYPTO_ID_LEN, m->first);
}

/* Reads a snapshot's lists back: the nodes whole, the chunk IDs once per shared subtree. */
static int check_lists(struct check *c, const snapshot *s, struct missing *m)
{
	snap_walk *w;
	snap_node n;
	int rc;
	TRY(snap_walk_open(c->r, c->idx, s, s->table != NULL, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		uint8_t id[CRYPTO_ID_LEN];
		for (uint64_t k = 0; s->table != NULL && rc == 0 && k < n.nchunks; k++) {
			rc = snap_walk_chunk(w, id);
			if (rc == 0)
				note_chunk(c, id, m);
		}
		if (rc < 0)
			break;
	}
	snap_walk_free(w);
	if (rc < 0 || s->table != NULL)
		return rc;

	list_reader lr;
	char what[80], hex[65];
	const uint8_t *e;
	size_t len;
	hex_encode(s->id, CRYPTO_ID_LEN, hex);
	snprintf(what, sizeof what, "the chunk list of snapshot %.8s", hex);
	TRY(list_reader_open(&lr, c->r, c->idx, LIST_CHUNKS, &s->chunks, what));
	lr.visit = visit_once;
	lr.visit_arg = c;
	while ((rc = list_reader_next(&lr, &e, &len)) == 1)
		note_chunk(c, e, m);
	list_reader_free(&lr);
	return rc;
}

static void check_snapshots(struct check *c)
{
	snap_list l;
	if (snap_list_load(c->r, &l, index_warn, c) < 0) {
		problem(c, "%s", err_msg());
		return;
	}
	c->rep->snapshots = l.n;
	for (size_t i = 0; i < l.n; i++) {
		const snapshot *s = &l.items[i];
		struct missing m = {0, ""};
		char shex[65];
		hex_encode(s->id, CRYPTO_ID_LEN, shex);
		int rc = check_lists(c, s, &m);
		if (rc == DRE_ENOMEM) {
			problem(c, "%s", err_msg());
			break;
		}
		if (rc < 0) {
			problem(c, "snapshot %.8s (%s): %s", shex, s->name, err_msg());
			/* the blobs this walk marked as seen may include the damaged one: snapshots that share it must
			 * be read again to be reported too */
			index_free(c->seen);
			c->seen = NULL;
			if (index_new(&c->seen) < 0) {
				problem(c, "%s", err_msg());
				break;
			}
		}
		if (m.n)
			problem(c, "snapshot %.8s (%s): %zu chunk(s) not in the index, first %.16s", shex, s->name, m.n,
				m.first);
	}
	snap_list_free(&l);
}

/* Compares one pack's header with the index and verifies every blob. */
static int read_pack(struct check *c, uint32_t pack_no, crypto_ctx *cc, ZSTD_DCtx *zd, uint8_t *out)
{
	const uint8_t *pid = index_pack_id(c->idx, pack_no);
	index_entry present;
	char key[80], hex[65];
	uint8_t *data = NULL;
	size_t len = 0;
	uint8_t subkey[CRYPTO_KEY_LEN];
	pack_entry *es = NULL;
	size_t n = 0;

	if (!index_find(c->present, pid, &present))
		return 0; /* reported as missing already */
	hex_encode(pid, CRYPTO_ID_LEN, hex);
	repo_pack_key(pid, key);
	int rc = store_load(c->r->st, key, (size_t)2 << 30, &data, &len);
	if (rc < 0) {
		problem(c, "cannot read pack %s: %s", hex, err_msg());
		return rc == DRE_ENOMEM ? rc : 0;
	}
	c->rep->bytes_read += len;
	rc = repo_pack_subkey(c->r, pid, subkey);
	if (rc == 0)
		rc = pack_read_header(c->r, cc, hex, data, len, subkey, &es, &n);
	if (rc < 0) {
		problem(c, "%s", err_msg());
		free(data);
		return rc == DRE_ENOMEM ? rc : 0;
	}
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t id[CRYPTO_ID_LEN];
		index_entry ie;
		/* a chunk stored twice by concurrent pushes may be indexed in the other pack: only absence is bad */
		if (!index_find(c->idx, es[i].id, &ie))
			bad++;
		/* list blobs are keyed with the list key, chunks with the chunk-ID key (format-spec.md §4) */
		const uint8_t *idkey = (es[i].flags & BLOB_LIST) ? c->r->list_key : c->r->id_key;
		if (es[i].raw_len > pack_blob_max(c->r, es[i].flags) ||
		    pack_blob_open(cc, zd, subkey, &es[i], data + es[i].offset, out) < 0 ||
		    crypto_hmac(cc, idkey, out, es[i].raw_len, id) < 0 || memcmp(id, es[i].id, CRYPTO_ID_LEN) != 0) {
			char chex[65];
			hex_encode(es[i].id, CRYPTO_ID_LEN, chex);
			problem(c, "corrupt pack %s: chunk %.16s at offset %u does not decrypt to its ID", hex, chex,
				es[i].offset);
		}
		c->rep->chunks++;
	}
	if (bad)
		problem(c, "pack %s: %zu chunk(s) in its header are not in the index", hex, bad);
	crypto_wipe(subkey, sizeof subkey);
	free(es);
	free(data);
	return 0;
}

static int count_unreferenced(struct check *c)
{
	/* packs in the store that no index lists: left by an interrupted push, harmless, removed by prune */
	size_t np = index_pack_count(c->idx);
	size_t referenced = 0;
	index_entry e;
	for (uint32_t i = 0; i < np; i++)
		referenced += index_find(c->present, index_pack_id(c->idx, i), &e);
	c->rep->unreferenced_packs = c->present_n - referenced;
	return 0;
}

static int count_upload(void *arg, const char *key, const char *initiated)
{
	(void)key, (void)initiated;
	((check_report *)arg)->incomplete_uploads++;
	return 0;
}

int engine_check(repo *r, const check_opts *o, check_report *rep)
{
	struct check c = {r, o, rep, NULL, NULL, NULL, 0, 0, NULL};
	int rc;
	memset(rep, 0, sizeof *rep);
	rc = index_new(&c.idx);
	if (rc == 0)
		rc = index_new(&c.present);
	if (rc == 0)
		rc = index_new(&c.seen);
	if (rc == 0)
		rc = index_load(r, c.idx, NULL, index_warn, &c, &rep->index_objects);
	if (rc == 0)
		rc = store_list(r->st, "packs/", list_pack, &c);
	if (rc == 0)
		rc = check_packs_present(&c);
	if (rc == 0) {
		check_snapshots(&c);
		count_unreferenced(&c);
		rc = err_ctx(store_uploads(r->st, count_upload, rep), "listing unfinished multipart uploads");
	}
	if (rc == 0) {
		wal_check_report wr;
		rc = wal_check_archive(r, o->read_data, o->hooks.warn, o->hooks.arg, &wr);
		rep->wal_files = wr.files;
		rep->errors += wr.errors;
		if (o->read_data)
			rep->bytes_read += wr.stored;
	}
	if (rc == 0 && !o->read_data)
		rep->chunks = index_count(c.idx);
	if (rc == 0 && o->read_data) {
		crypto_ctx *cc = NULL;
		ZSTD_DCtx *zd = ZSTD_createDCtx();
		uint8_t *out = malloc(pack_blob_max_any(r));
		rc = crypto_ctx_new(&cc);
		if (rc == 0 && (zd == NULL || out == NULL))
			rc = err_set(DRE_ENOMEM, "cannot allocate check buffers");
		for (uint32_t i = 0; rc == 0 && i < index_pack_count(c.idx); i++) {
			rc = read_pack(&c, i, cc, zd, out);
			if (o->hooks.progress)
				o->hooks.progress(o->hooks.arg, rep->bytes_read, 0, 0, false);
		}
		crypto_ctx_free(cc);
		ZSTD_freeDCtx(zd);
		free(out);
	}
	index_free(c.idx);
	index_free(c.present);
	index_free(c.seen);
	free(c.present_size);
	return rc;
}
