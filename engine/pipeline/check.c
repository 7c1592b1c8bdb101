/*
 * check.c — repository verification.
 *
 * Structure (always): every index object decrypts and decodes; every pack the index names exists with a
 * plausible size; every snapshot decrypts, its node list and chunk list read back whole (every list blob
 * found, authenticated and consistent with the counts above it), and every chunk it lists is in the index. A
 * subtree of the chunk list that several snapshots share is read once.
 * --read-data: additionally every pack is read whole, its header authenticated and compared with the index,
 * and every blob decrypted, decompressed and its keyed hash recomputed: that proves the data would restore.
 * --read-data-subset reads a share of the packs chosen at random, or one of n slices by pack ID, so that a
 * large repository can be read in turns.
 *
 * Problems go to the warn hook one line each, naming the object; check itself fails only when it cannot run.
 * A pack found missing or damaged is then named with the snapshots that need it: the damaged packs' numbers
 * are kept (a short list), and one more walk of the snapshots' lists maps their chunks to packs through the
 * index, so memory stays bounded by the list readers whatever the repository's size.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/engine.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/pack.h"
#include "engine/repo/plan.h"
#include "engine/pg/wal.h"

struct check {
	repo *r;
	const check_opts *o;
	check_report *rep;
	chunk_index *idx;
	chunk_index *present; /* packs found in the store, keyed by pack ID; entry.pack = their slot in present_size */
	uint64_t *present_size;
	size_t present_n, present_cap;
	chunk_index *seen; /* chunk list blobs already verified, with everything below them */
	snap_list snaps;
	bool snaps_loaded;
	uint32_t *indexed; /* per pack number: how many index entries place a blob in it */
	uint32_t *bad; /* numbers (in idx) of the packs found missing or damaged, ascending after sort_bad */
	size_t nbad, bad_cap;
	plan_set plans; /* of a prune that is running or was interrupted */
};

/* A pack that a prune plan names may be gone already: its index entries are dropped by that prune's last step
 * (format-spec.md §16.3 R5). A snapshot that needed it is reported by its own walk. */
static bool planned(const struct check *c, const uint8_t id[CRYPTO_ID_LEN])
{
	for (size_t i = 0; i < c->plans.n; i++)
		for (size_t k = 0; k < c->plans.items[i].n; k++)
			if (memcmp(c->plans.items[i].packs[k].id, id, CRYPTO_ID_LEN) == 0)
				return true;
	return false;
}

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct check *c, const char *fmt, ...)
{
	va_list ap;
	c->rep->errors++;
	va_start(ap, fmt);
	engine_vwarnf(c->o->hooks.warn, c->o->hooks.arg, fmt, ap);
	va_end(ap);
}

/* A line that explains an error already counted. */
static void note(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct check *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(c->o->hooks.warn, c->o->hooks.arg, fmt, ap);
	va_end(ap);
}

/* Remembers a damaged pack for naming its snapshots at the end (a pack reported twice is made one there). */
static int mark_bad(struct check *c, uint32_t pack_no)
{
	if (c->nbad > 0 && c->bad[c->nbad - 1] == pack_no)
		return 0;
	if (!array_room(&c->bad, &c->bad_cap, c->nbad, sizeof *c->bad, 16))
		return err_set(DRE_ENOMEM, "cannot note damaged packs");
	c->bad[c->nbad++] = pack_no;
	return 0;
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
	uint32_t *indexed;
	size_t lists;
};

static int note_need(void *arg, const index_entry *e)
{
	struct pack_use *u = arg;
	if (e->loc.flags & BLOB_LIST)
		u->lists++;
	if (e->pack != INDEX_PACK_PENDING) {
		uint64_t end = (uint64_t)e->loc.offset + e->loc.stored_len + CRYPTO_TAG_LEN;
		if (end > u->need[e->pack])
			u->need[e->pack] = end;
		u->indexed[e->pack]++;
	}
	return 0;
}

static int check_packs_present(struct check *c)
{
	size_t np = index_pack_count(c->idx);
	struct pack_use u = {calloc(np ? np : 1, sizeof *u.need), calloc(np ? np : 1, sizeof *u.indexed), 0};
	int rc = 0;
	if (u.need == NULL || u.indexed == NULL) {
		free(u.need);
		free(u.indexed);
		return err_set(DRE_ENOMEM, "cannot check packs");
	}
	c->indexed = u.indexed; /* for read_pack */
	index_each(c->idx, note_need, &u);
	c->rep->lists = u.lists;
	c->rep->chunks = index_count(c->idx) - u.lists;
	for (uint32_t i = 0; rc == 0 && i < np; i++) {
		char hex[65];
		index_entry p;
		bool present = index_find(c->present, index_pack_id(c->idx, i), &p);
		hex_encode(index_pack_id(c->idx, i), CRYPTO_ID_LEN, hex);
		if (!present && planned(c, index_pack_id(c->idx, i))) {
			c->rep->pending_deletion++;
		} else if (!present) {
			problem(c, "missing pack %s: the index lists chunks in it but the store does not have it", hex);
			rc = mark_bad(c, i);
		} else if (c->present_size[p.pack] < u.need[i] + PACK_TRAILER_LEN) {
			problem(c, "corrupt pack %s: %llu bytes, too short for the chunks the index places in it", hex,
				(unsigned long long)c->present_size[p.pack]);
			rc = mark_bad(c, i);
		}
	}
	free(u.need);
	return rc;
}

/* list_visit_fn: a chunk list subtree verified for an earlier snapshot is not read again. It is that subtree only
 * when met at the same level with the same count: a blob met again lower down is its own descendant (a loop,
 * which the levels rule out in a real list) and is read, so that the reader refuses it. The level and the count
 * ride in the entry's flags and its offset and length words, which nothing else reads in this table. */
static int visit_once(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	struct check *c = arg;
	index_entry e = {.pack = 0};
	if (index_find(c->seen, id, &e))
		return e.loc.flags == level && e.loc.offset == (uint32_t)count &&
		       e.loc.stored_len == (uint32_t)(count >> 32);
	memcpy(e.loc.id, id, CRYPTO_ID_LEN);
	e.loc.flags = level;
	e.loc.offset = (uint32_t)count;
	e.loc.stored_len = (uint32_t)(count >> 32);
	TRY(index_insert(c->seen, &e));
	return 0;
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
	c->snaps = l; /* kept for naming the snapshots that need a damaged pack */
	c->snaps_loaded = true;
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
		return rc == DRE_ENOMEM ? rc : mark_bad(c, pack_no);
	}
	c->rep->bytes_read += len;
	c->rep->packs_read++;
	rc = repo_pack_subkey(c->r, pid, subkey);
	if (rc == 0)
		rc = pack_read_header(c->r, cc, hex, data, len, subkey, &es, &n);
	if (rc < 0) {
		problem(c, "%s", err_msg());
		crypto_wipe(subkey, sizeof subkey);
		free(data);
		return rc == DRE_ENOMEM ? rc : mark_bad(c, pack_no);
	}
	size_t bad = 0, damaged = 0, matched = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t id[CRYPTO_ID_LEN];
		index_entry ie;
		/* a chunk stored twice by concurrent pushes may be indexed in the other pack: only absence is bad */
		if (!index_find(c->idx, es[i].id, &ie))
			bad++;
		else if (ie.pack == pack_no && ie.loc.offset == es[i].offset && ie.loc.stored_len == es[i].stored_len &&
			 ie.loc.raw_len == es[i].raw_len && ie.loc.flags == es[i].flags)
			matched++;
		/* list blobs are keyed with the list key, chunks with the chunk-ID key (format-spec.md §4) */
		const uint8_t *idkey = (es[i].flags & BLOB_LIST) ? c->r->list_key : c->r->id_key;
		if (es[i].raw_len > pack_blob_max(c->r, es[i].flags) ||
		    pack_blob_open(cc, zd, subkey, &es[i], data + es[i].offset, out) < 0 ||
		    crypto_hmac(cc, idkey, out, es[i].raw_len, id) < 0 || memcmp(id, es[i].id, CRYPTO_ID_LEN) != 0) {
			char chex[65];
			hex_encode(es[i].id, CRYPTO_ID_LEN, chex);
			problem(c, "corrupt pack %s: %s %.16s at offset %u does not decrypt to its ID", hex,
				(es[i].flags & BLOB_LIST) ? "list blob" : "chunk", chex, es[i].offset);
			damaged++;
		}
	}
	if (bad)
		problem(c, "pack %s: %zu chunk(s) in its header are not in the index", hex, bad);
	/* every index entry that places a blob here must be a blob of the header, exactly: an entry with another
	 * offset or length reads bytes that do not authenticate, which only a restore would otherwise find */
	if (c->indexed != NULL && matched < c->indexed[pack_no]) {
		size_t stray = c->indexed[pack_no] - matched;
		problem(c, "corrupt index: %zu entr%s place blobs in pack %s where its header has none", stray,
			stray == 1 ? "y" : "ies", hex);
		damaged++;
	}
	crypto_wipe(subkey, sizeof subkey);
	free(es);
	free(data);
	return damaged ? mark_bad(c, pack_no) : 0;
}

/* Which packs a partial read takes. A share: selection sampling (Knuth's algorithm S), exactly `want` packs
 * uniformly at random in one pass and no memory. A slice: by the first 4 bytes of the pack ID, random and
 * fixed for the pack's life, so slices of equal ID ranges are of about equal size and cover every pack once. */
struct picker {
	const check_opts *o;
	uint64_t want, left; /* packs still to pick, packs not yet considered */
	uint64_t rng;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int picker_init(struct picker *p, const check_opts *o, size_t npacks)
{
	memset(p, 0, sizeof *p);
	p->o = o;
	p->left = npacks;
	if (o->read_percent > 0) {
		/* the small epsilon keeps 100% (and exact shares) from rounding down */
		p->want = (uint64_t)((double)npacks * o->read_percent / 100.0 + 1e-9);
		if (p->want == 0 && npacks > 0)
			p->want = 1;
		if (p->want > npacks)
			p->want = npacks;
		TRY(crypto_random((uint8_t *)&p->rng, sizeof p->rng));
	}
	return 0;
}

static bool picker_take(struct picker *p, const uint8_t pack_id[CRYPTO_ID_LEN])
{
	if (p->o->read_data)
		return true;
	if (p->o->slices > 0) {
		uint64_t v = (uint64_t)pack_id[0] << 24 | (uint64_t)pack_id[1] << 16 | (uint64_t)pack_id[2] << 8 |
			     pack_id[3];
		return (v * p->o->slices) >> 32 == p->o->slice - 1;
	}
	bool take = p->left > 0 && splitmix64(&p->rng) % p->left < p->want;
	p->left--;
	if (take)
		p->want--;
	return take;
}

static int check_subset_opts(const check_opts *o)
{
	int modes = (o->read_data ? 1 : 0) + (o->read_percent != 0 ? 1 : 0) + (o->slices != 0 ? 1 : 0);
	if (modes > 1)
		return err_set(DRE_EINVAL, "--read-data and --read-data-subset exclude each other");
	if (o->read_percent != 0 && !(o->read_percent > 0 && o->read_percent <= 100))
		return err_set(DRE_EINVAL, "--read-data-subset: %g%% is not a share of the packs (more than 0, at most 100)",
			       o->read_percent);
	if (o->slices != 0 && (o->slice < 1 || o->slice > o->slices))
		return err_set(DRE_EINVAL, "--read-data-subset: slice %u/%u does not exist (1/%u to %u/%u)", o->slice,
			       o->slices, o->slices, o->slices, o->slices);
	return 0;
}

/* ---- naming the snapshots that need a damaged pack ---- */

#define USERS_SHOWN 10 /* snapshots named per damaged pack; the rest are counted */

struct bad_users {
	size_t n;
	size_t shown[USERS_SHOWN]; /* positions in c->snaps */
};

struct user_walk {
	struct check *c;
	bool *hit; /* per damaged pack: needed by the snapshot being walked */
	size_t nhit;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Notes the damaged pack (if any) blob id lives in; 1 when it is one. */
static int note_blob(struct user_walk *u, const uint8_t id[CRYPTO_ID_LEN])
{
	index_entry e;
	if (!index_find(u->c->idx, id, &e) || e.pack == INDEX_PACK_PENDING)
		return 0;
	uint32_t *b = bsearch(&e.pack, u->c->bad, u->c->nbad, sizeof *u->c->bad, cmp_u32);
	if (b == NULL)
		return 0;
	if (!u->hit[b - u->c->bad]) {
		u->hit[b - u->c->bad] = true;
		u->nhit++;
	}
	return 1;
}

/* list_visit_fn: a list blob in a damaged pack is noted and not read (it may not decrypt); below level 0 the
 * blobs of a node list matter only for where they lie, so their records are not read. */
static int visit_nodes(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	(void)count;
	return note_blob(arg, id) || level == 0;
}

static int visit_chunks(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	(void)level, (void)count;
	return note_blob(arg, id);
}

/* Walks what s references until every damaged pack is found or the lists end. A list that cannot be read was
 * reported by the structure check: the walk stops there. */
static int snapshot_users(struct user_walk *u, const snapshot *s)
{
	int rc;
	if (s->table != NULL) {
		snap_walk *w;
		snap_node n;
		if (snap_walk_open(u->c->r, u->c->idx, s, true, &w) < 0)
			return 0;
		bool broken = false;
		while (!broken && u->nhit < u->c->nbad && snap_walk_next(w, &n) == 1) {
			uint8_t id[CRYPTO_ID_LEN];
			for (uint64_t k = 0; !broken && k < n.nchunks; k++) {
				broken = snap_walk_chunk(w, id) < 0;
				if (!broken)
					note_blob(u, id);
			}
		}
		snap_walk_free(w);
		return 0;
	}
	list_reader lr;
	const uint8_t *e;
	size_t len;
	rc = list_reader_open(&lr, u->c->r, u->c->idx, LIST_NODES, &s->nodes, "a node list");
	if (rc == DRE_ENOMEM)
		return rc;
	if (rc == 0) {
		lr.visit = visit_nodes;
		lr.visit_arg = u;
		while (u->nhit < u->c->nbad && list_reader_next(&lr, &e, &len) == 1)
			;
		list_reader_free(&lr);
	}
	rc = list_reader_open(&lr, u->c->r, u->c->idx, LIST_CHUNKS, &s->chunks, "a chunk list");
	if (rc == DRE_ENOMEM)
		return rc;
	if (rc == 0) {
		lr.visit = visit_chunks;
		lr.visit_arg = u;
		while (u->nhit < u->c->nbad && list_reader_next(&lr, &e, &len) == 1)
			note_blob(u, e);
		list_reader_free(&lr);
	}
	return 0;
}

static int name_bad_pack_users(struct check *c)
{
	qsort(c->bad, c->nbad, sizeof *c->bad, cmp_u32);
	size_t n = 0;
	for (size_t i = 0; i < c->nbad; i++)
		if (n == 0 || c->bad[i] != c->bad[n - 1])
			c->bad[n++] = c->bad[i];
	c->nbad = n;

	struct user_walk u = {c, calloc(c->nbad, sizeof *u.hit), 0};
	struct bad_users *users = calloc(c->nbad, sizeof *users);
	int rc = 0;
	if (u.hit == NULL || users == NULL)
		rc = err_set(DRE_ENOMEM, "cannot name the snapshots of damaged packs");
	for (size_t i = 0; rc == 0 && i < c->snaps.n; i++) {
		memset(u.hit, 0, c->nbad * sizeof *u.hit);
		u.nhit = 0;
		rc = snapshot_users(&u, &c->snaps.items[i]);
		for (size_t b = 0; rc == 0 && b < c->nbad; b++)
			if (u.hit[b] && users[b].n++ < USERS_SHOWN)
				users[b].shown[users[b].n - 1] = i;
	}
	for (size_t b = 0; rc == 0 && b < c->nbad; b++) {
		char hex[65], names[USERS_SHOWN * 80] = "";
		size_t len = 0;
		for (size_t k = 0; k < users[b].n && k < USERS_SHOWN; k++) {
			const snapshot *s = &c->snaps.items[users[b].shown[k]];
			hex_encode(s->id, CRYPTO_ID_LEN, hex);
			len += (size_t)snprintf(names + len, sizeof names - len, "%s%.8s (%.60s)", k ? ", " : "", hex,
						s->name);
		}
		hex_encode(index_pack_id(c->idx, c->bad[b]), CRYPTO_ID_LEN, hex);
		if (users[b].n == 0)
			note(c, "pack %s holds data of no snapshot%s", hex,
			     c->snaps.damaged ? " that could be read" : "");
		else if (users[b].n <= USERS_SHOWN)
			note(c, "pack %s holds data of %zu snapshot%s: %s", hex, users[b].n, users[b].n == 1 ? "" : "s",
			     names);
		else
			note(c, "pack %s holds data of %zu snapshots: %s and %zu more", hex, users[b].n, names,
			     users[b].n - USERS_SHOWN);
	}
	free(u.hit);
	free(users);
	return rc;
}

/* Returns the number of packs both indexed and present: those a read takes from. */
static size_t count_unreferenced(struct check *c)
{
	/* packs in the store that no index lists: left by an interrupted push, harmless, removed by prune */
	size_t np = index_pack_count(c->idx);
	size_t referenced = 0;
	index_entry e;
	for (uint32_t i = 0; i < np; i++)
		referenced += index_find(c->present, index_pack_id(c->idx, i), &e);
	c->rep->unreferenced_packs = c->present_n - referenced;
	return referenced;
}

static int count_upload(void *arg, const char *key, const char *upload_id, const char *initiated)
{
	(void)key, (void)upload_id, (void)initiated;
	((check_report *)arg)->incomplete_uploads++;
	return 0;
}

int engine_check(repo *r, const check_opts *o, check_report *rep)
{
	struct check c;
	int rc;
	memset(&c, 0, sizeof c);
	c.r = r;
	c.o = o;
	c.rep = rep;
	memset(rep, 0, sizeof *rep);
	TRY(check_subset_opts(o));
	bool reading = o->read_data || o->read_percent > 0 || o->slices > 0;
	rc = index_new(&c.idx);
	if (rc == 0)
		rc = index_new(&c.present);
	if (rc == 0)
		rc = index_new(&c.seen);
	if (rc == 0)
		rc = plan_load_all(r, &c.plans);
	if (rc == 0)
		rc = index_load(r, c.idx, NULL, index_warn, &c, &rep->index_objects);
	if (rc == 0)
		rc = store_list(r->st, "packs/", list_pack, &c);
	if (rc == 0)
		rc = check_packs_present(&c);
	size_t readable = 0;
	if (rc == 0) {
		check_snapshots(&c);
		readable = count_unreferenced(&c);
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
	if (rc == 0 && reading) {
		crypto_ctx *cc = NULL;
		ZSTD_DCtx *zd = ZSTD_createDCtx();
		uint8_t *out = malloc(pack_blob_max_any(r));
		struct picker pk;
		rc = crypto_ctx_new(&cc);
		if (rc == 0 && (zd == NULL || out == NULL))
			rc = err_set(DRE_ENOMEM, "cannot allocate check buffers");
		if (rc == 0)
			rc = picker_init(&pk, o, readable);
		for (uint32_t i = 0; rc == 0 && i < index_pack_count(c.idx); i++) {
			index_entry present; /* a missing pack was reported already, and is no pick */
			if (!index_find(c.present, index_pack_id(c.idx, i), &present) ||
			    !picker_take(&pk, index_pack_id(c.idx, i)))
				continue;
			rc = read_pack(&c, i, cc, zd, out);
			if (o->hooks.progress)
				o->hooks.progress(o->hooks.arg, rep->bytes_read, 0, 0, false);
		}
		crypto_ctx_free(cc);
		ZSTD_freeDCtx(zd);
		free(out);
	}
	if (rc == 0 && c.nbad > 0 && c.snaps_loaded)
		rc = name_bad_pack_users(&c);
	snap_list_free(&c.snaps);
	free(c.bad);
	free(c.indexed);
	index_free(c.idx);
	index_free(c.present);
	index_free(c.seen);
	free(c.present_size);
	plan_set_free(&c.plans);
	return rc;
}
