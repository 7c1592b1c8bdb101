/*
 * prune.c — R1 mark, repack, R2 plan, R3 wait, R4 rescan, R5 delete and rewrite the index (format-spec.md §16.3).
 *
 * Every pack, indexed or only listed, has a number in the chunk index's pack table, and a struct pack_state by
 * that number. Every chunk and list blob has one chosen location (index.h: one outside any plan when there is
 * one) and a position in the sealed index; a bit per position says whether a snapshot references it.
 */
#include "engine/lifecycle/prune.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/lock.h"
#include "engine/pipeline/meter.h"
#include "engine/repo/pack.h"
#include "engine/repo/plan.h"
#include "engine/repo/snapshot.h"
#include "engine/testhook.h"
#include "store/err.h"

#define PRUNE_LIST_PACK_SIZE (4u << 20) /* list blobs repacked go to small packs, as a push puts them */

enum {
	PS_INDEXED = 1,  /* some index object names it */
	PS_LISTED = 2,   /* the store has it */
	PS_ADOPTED = 4,  /* named by a plan of an earlier, killed prune */
	PS_DOOMED = 8,   /* to be deleted by this prune */
	PS_KEPT = 16,    /* taken out of the plan in R4 */
	PS_DELETED = 32, /* gone (deleted now, or missing from the store) */
};

struct pack_state {
	uint64_t size;       /* object bytes, from the listing */
	uint64_t indexed;    /* stored bytes of the blobs whose chosen location is here */
	uint64_t referenced; /* the share of those that snapshots reference */
	uint8_t flags;
	uint8_t reason; /* plan_reason when doomed */
};

struct prune {
	repo *r;
	const prune_opts *o;
	prune_result *res;
	chunk_index *idx;
	struct pack_state *ps;
	size_t nps;
	uint8_t *marks; /* a bit per index position */
	/* snapshots walked in R1 (sorted IDs), so that R4 walks only the new ones */
	uint8_t (*seen)[CRYPTO_ID_LEN];
	size_t nseen, seen_cap;
	plan_set adopted;
	repo_lock *lock;
	bool r4;                /* marking newly referenced chunks in R4 */
	chunk_index *fresh;     /* R4: index objects written since R1 */
	uint8_t *fresh_listed;  /* R4: by pack number in fresh, 1 when the R4 listing of packs/ has it */
	size_t nfresh_listed;
	prune_plan plan;        /* this run's plan (empty key when none was written) */
};

static void warn(struct prune *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct prune *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(p->o->hooks.warn, p->o->hooks.arg, fmt, ap);
	va_end(ap);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CRYPTO_ID_LEN);
}

static void short_hex(const uint8_t id[CRYPTO_ID_LEN], char out[17])
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(id, CRYPTO_ID_LEN, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* The state of pack number n, growing the table to the index's pack table. */
static int pack_state_grow(struct prune *p)
{
	size_t n = index_pack_count(p->idx);
	if (n <= p->nps)
		return 0;
	struct pack_state *ps = realloc(p->ps, n * sizeof *ps);
	if (ps == NULL)
		return err_set(DRE_ENOMEM, "cannot hold the state of %zu packs", n);
	memset(ps + p->nps, 0, (n - p->nps) * sizeof *ps);
	p->ps = ps;
	p->nps = n;
	return 0;
}

static int pack_from_key(const char *key, uint8_t id[CRYPTO_ID_LEN])
{
	const char *hex = strrchr(key, '/');
	if (hex == NULL || strlen(hex + 1) != 2 * CRYPTO_ID_LEN || !hex_decode(hex + 1, id, CRYPTO_ID_LEN))
		return -1;
	return 0;
}

static int list_pack(void *arg, const char *key, uint64_t size)
{
	struct prune *p = arg;
	uint8_t id[CRYPTO_ID_LEN];
	uint32_t no;
	if (pack_from_key(key, id) < 0) {
		warn(p, "ignoring %s: not named like a pack", key);
		return 0;
	}
	TRY(index_pack_intern(p->idx, id, &no));
	TRY(pack_state_grow(p));
	p->ps[no].flags |= PS_LISTED;
	p->ps[no].size = size;
	return 0;
}

/* ---- marking ---- */

/* Whether a location that an index object new since R1 gives is one to count on: a pack the R4 listing has and
 * that this prune is not deleting. An index object can name a pack that is gone (a writer whose lock went stale
 * while its orphan was deleted, format-spec.md §16.4). */
static bool fresh_location_sound(const struct prune *p, uint32_t fresh_pack)
{
	if (fresh_pack >= p->nfresh_listed || !p->fresh_listed[fresh_pack])
		return false;
	uint32_t no;
	const uint8_t *id = index_pack_id(p->fresh, fresh_pack);
	if (id == NULL || !index_pack_lookup(p->idx, id, &no) || no >= p->nps)
		return true; /* a pack R1 did not know: new, so not planned */
	return !(p->ps[no].flags & PS_DOOMED) || (p->ps[no].flags & PS_KEPT);
}

/* Marks the blob at its chosen location: 1 when it was marked already, 0 when newly, <0 when no index object
 * locates it (the repository lacks what a snapshot needs: prune must not go on and make it worse). */
static int mark(struct prune *p, const uint8_t id[CRYPTO_ID_LEN], const char *what)
{
	size_t pos;
	index_entry e;
	if (!index_locate(p->idx, id, &pos, &e)) {
		if (p->r4) {
			/* a snapshot committed since R1 by a push that stored this chunk anew: its index object is new */
			index_entry fe;
			if (p->fresh != NULL && index_find(p->fresh, id, &fe))
				return 0;
			char hex[17];
			short_hex(id, hex);
			warn(p, "%s references %s…, which no index object locates (a push that has not finished, or "
				"damage: 'dre check' tells)", what, hex);
			return 0;
		}
		char hex[17];
		short_hex(id, hex);
		return err_set(DRE_ECORRUPT,
			       "%s references %s…, which no index object locates: prune stops so as not to delete more. "
			       "HINT: 'dre check' names what is damaged",
			       what, hex);
	}
	uint8_t bit = (uint8_t)(1u << (pos & 7));
	if (p->marks[pos >> 3] & bit)
		return 1;
	p->marks[pos >> 3] |= bit;
	if (e.pack >= p->nps)
		return err_set(DRE_EINVAL, "internal: pack number %" PRIu32 " out of range", e.pack);
	struct pack_state *ps = &p->ps[e.pack];
	ps->referenced += (uint64_t)e.loc.stored_len + CRYPTO_TAG_LEN; /* u64: a hostile length must not wrap to 0 */
	if (!p->r4) {
		p->res->chunks_referenced++;
		p->res->bytes_referenced += (uint64_t)e.loc.stored_len + CRYPTO_TAG_LEN;
		return 0;
	}
	/* R4: a snapshot committed since R1 needs this blob. Its location is safe unless this prune is about to
	 * delete it, and then only another location written since R1 saves the pack. */
	if ((ps->flags & PS_DOOMED) && !(ps->flags & PS_KEPT)) {
		index_entry fe;
		bool elsewhere = p->fresh != NULL && index_find(p->fresh, id, &fe) && fresh_location_sound(p, fe.pack);
		if (!elsewhere) {
			ps->flags |= PS_KEPT;
			p->res->packs_kept++;
		}
	}
	return 0;
}

static int visit_blob(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	(void)level;
	(void)count;
	struct prune *p = arg;
	/* a list blob marked already was walked whole before (a walk that fails stops the prune): skip it */
	return mark(p, id, "a snapshot's list");
}

static int walk_list(struct prune *p, uint8_t kind, const list_ref *root, const char *what)
{
	list_reader lr;
	const uint8_t *e;
	size_t len;
	int rc;
	TRY(list_reader_open(&lr, p->r, p->idx, kind, root, what));
	lr.visit = visit_blob;
	lr.visit_arg = p;
	while ((rc = list_reader_next(&lr, &e, &len)) == 1) {
		if (kind != LIST_CHUNKS)
			continue;
		if (len != CRYPTO_ID_LEN) {
			rc = err_set(DRE_ECORRUPT, "%s: an entry of %zu bytes", what, len);
			break;
		}
		int m = mark(p, e, what);
		if (m < 0) {
			rc = m;
			break;
		}
	}
	list_reader_free(&lr);
	return rc;
}

static int walk_snapshot(struct prune *p, const snapshot *s)
{
	char idhex[17], what[400];
	short_hex(s->id, idhex);
	if (s->format != SNAP_FORMAT_TABLE) {
		snprintf(what, sizeof what, "snapshot %.8s (%s) chunk list", idhex, s->name);
		TRY(walk_list(p, LIST_CHUNKS, &s->chunks, what));
		snprintf(what, sizeof what, "snapshot %.8s (%s) node list", idhex, s->name);
		return walk_list(p, LIST_NODES, &s->nodes, what);
	}
	/* format 1: the chunk IDs are in the snapshot object */
	snprintf(what, sizeof what, "snapshot %.8s (%s)", idhex, s->name);
	snap_walk *w;
	snap_node n;
	uint8_t id[CRYPTO_ID_LEN];
	TRY(snap_walk_open(p->r, p->idx, s, true, &w));
	int rc;
	while ((rc = snap_walk_next(w, &n)) == 1) {
		for (uint64_t i = 0; rc >= 0 && i < n.nchunks; i++) {
			rc = snap_walk_chunk(w, id);
			if (rc == 0)
				rc = mark(p, id, what);
		}
		if (rc < 0)
			break;
	}
	snap_walk_free(w);
	return rc;
}

static bool seen_has(const struct prune *p, const uint8_t id[CRYPTO_ID_LEN])
{
	return p->nseen > 0 && bsearch(id, p->seen, p->nseen, CRYPTO_ID_LEN, id_cmp) != NULL;
}

/* Walks every snapshot (R1), or those not walked before (R4). */
static int walk_snapshots(struct prune *p)
{
	snap_list l;
	TRY(snap_list_load(p->r, &l, NULL, NULL));
	int rc = 0;
	if (l.damaged > 0)
		rc = err_set(DRE_ECORRUPT, "%zu snapshot object(s) cannot be read: prune stops, since it cannot know what "
					   "they reference. HINT: 'dre check' names them; 'dre forget ID' removes one",
			     l.damaged);
	size_t before = p->nseen;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (p->r4 && seen_has(p, l.items[i].id))
			continue;
		rc = walk_snapshot(p, &l.items[i]);
		if (rc == 0 && !p->r4) {
			if (array_room(&p->seen, &p->seen_cap, p->nseen, CRYPTO_ID_LEN, 64))
				memcpy(p->seen[p->nseen++], l.items[i].id, CRYPTO_ID_LEN);
			else
				rc = err_set(DRE_ENOMEM, "cannot note the snapshots walked");
		}
	}
	if (!p->r4) {
		p->res->snapshots = l.n;
		if (p->nseen > before)
			qsort(p->seen, p->nseen, CRYPTO_ID_LEN, id_cmp);
	}
	snap_list_free(&l);
	return rc;
}

/* ---- R1 ---- */

/* avoid: packs whose locations count only when a chunk has no other (the adopted plans' packs are avoided too) */
static int load_index(struct prune *p, const uint8_t (*avoid)[CRYPTO_ID_LEN], size_t navoid)
{
	TRY(index_new(&p->idx));
	index_map_objects(p->idx);
	for (size_t i = 0; i < p->adopted.n; i++)
		for (size_t k = 0; k < p->adopted.items[i].n; k++)
			TRY(index_avoid_packs(p->idx, &p->adopted.items[i].packs[k].id, 1));
	if (navoid > 0)
		TRY(index_avoid_packs(p->idx, avoid, navoid));
	size_t objects;
	TRY(index_load(p->r, p->idx, NULL, NULL, NULL, &objects));
	TRY(index_seal(p->idx));
	p->res->index_objects = objects;
	p->res->chunks = index_count(p->idx);
	TRY(pack_state_grow(p));
	const uint8_t(*ids)[CRYPTO_ID_LEN];
	const index_object_pack *pairs;
	size_t npairs;
	index_mapped_objects(p->idx, &ids, &pairs, &npairs);
	for (size_t i = 0; i < npairs; i++)
		p->ps[pairs[i].pack].flags |= PS_INDEXED;
	for (size_t i = 0; i < p->adopted.n; i++) {
		for (size_t k = 0; k < p->adopted.items[i].n; k++) {
			uint32_t no;
			TRY(index_pack_intern(p->idx, p->adopted.items[i].packs[k].id, &no));
			TRY(pack_state_grow(p));
			p->ps[no].flags |= PS_ADOPTED;
		}
	}
	index_entry e;
	for (size_t pos = 0; pos < index_count(p->idx); pos++) {
		index_entry_at(p->idx, pos, &e);
		if (e.pack < p->nps)
			p->ps[e.pack].indexed += (uint64_t)e.loc.stored_len + CRYPTO_TAG_LEN;
	}
	size_t nbytes = (index_count(p->idx) + 7) / 8;
	p->marks = calloc(nbytes ? nbytes : 1, 1);
	if (p->marks == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the marks of %zu chunks", index_count(p->idx));
	return 0;
}

/* An index object that names a pack the store lacks (an older index object put back after a prune replaced it,
 * or one a writer wrote after its packs were deleted, format-spec.md §16.4) may place a chunk there that another
 * index object places in a pack that exists. The index keeps one location per chunk, so R1 would find the data
 * "lost" and stop; instead the index is read again (then the packs listed again, keeping R1's order) preferring
 * every other location, and only a chunk found nowhere else is lost. */
static int avoid_missing(struct prune *p)
{
	uint8_t (*missing)[CRYPTO_ID_LEN] = NULL;
	size_t n = 0, cap = 0;
	for (size_t k = 0; k < p->nps; k++) {
		/* a killed prune's deletions are in the plan adopted: their packs are avoided already */
		if ((p->ps[k].flags & (PS_LISTED | PS_INDEXED | PS_ADOPTED)) != PS_INDEXED)
			continue;
		if (!array_room(&missing, &cap, n, CRYPTO_ID_LEN, 16)) {
			free(missing);
			return err_set(DRE_ENOMEM, "cannot note the missing packs");
		}
		memcpy(missing[n++], index_pack_id(p->idx, (uint32_t)k), CRYPTO_ID_LEN);
	}
	if (n == 0)
		return 0;
	warn(p, "the index names %zu pack%s the store does not have: reading it again to find other locations", n,
	     n == 1 ? "" : "s");
	index_free(p->idx);
	free(p->ps);
	free(p->marks);
	p->idx = NULL;
	p->ps = NULL;
	p->marks = NULL;
	p->nps = 0;
	int rc = load_index(p, (const uint8_t(*)[CRYPTO_ID_LEN])missing, n);
	free(missing);
	TRY(rc);
	return err_ctx(store_list(p->r->st, "packs/", list_pack, p), "listing the packs");
}

/* Referenced data in a pack the store lacks is lost already: prune stops rather than rewrite the index over it. */
static int missing_check(struct prune *p)
{
	for (size_t n = 0; n < p->nps; n++) {
		const struct pack_state *ps = &p->ps[n];
		if ((ps->flags & (PS_LISTED | PS_INDEXED)) == PS_INDEXED && ps->referenced > 0) {
			char key[80];
			repo_pack_key(index_pack_id(p->idx, (uint32_t)n), key);
			return err_set(DRE_ECORRUPT, "pack %s is missing from the store, and snapshots reference chunks in it: "
						     "prune stops. HINT: 'dre check' names the snapshots; 'dre forget' them "
						     "before pruning",
				       key);
		}
	}
	return 0;
}

/* Dead, repacked or orphan, by what R1 marked (format-spec.md §16.3 R1). */
static void classify(struct prune *p, bool writers_live)
{
	for (size_t n = 0; n < p->nps; n++) {
		struct pack_state *ps = &p->ps[n];
		if (!(ps->flags & PS_LISTED)) {
			if (ps->flags & PS_INDEXED) {
				ps->flags |= PS_DELETED; /* an index object names a pack the store lacks */
				p->res->packs_missing++;
			}
			continue;
		}
		p->res->packs++;
		p->res->bytes_total += ps->size;
		uint8_t reason = 0;
		if (!(ps->flags & PS_INDEXED)) {
			if (writers_live) { /* perhaps a running push's: a later prune decides (format-spec.md §16.4) */
				p->res->orphans_deferred = true;
				continue;
			}
			reason = PLAN_ORPHAN;
		} else if (ps->referenced == 0)
			reason = PLAN_DEAD;
		else if (ps->indexed > ps->referenced &&
			 (double)(ps->indexed - ps->referenced) > p->o->max_unused * (double)ps->size)
			reason = PLAN_REPACKED; /* padding and the header are not "unused": a repack would have them too */
		if (reason == 0)
			continue;
		ps->flags |= PS_DOOMED;
		ps->reason = reason;
		p->res->packs_dead += reason == PLAN_DEAD;
		p->res->packs_repacked += reason == PLAN_REPACKED;
		p->res->packs_orphan += reason == PLAN_ORPHAN;
	}
}

/* ---- repack ---- */

struct repack {
	pack_writer pw, lpw;
	index_builder ib;
	crypto_ctx *cc;
	ZSTD_DCtx *zd;
	uint8_t *raw;
	uint8_t *data;
	size_t data_cap;
	chunk_index *scratch; /* index_builder_flush notes what it wrote in an index; not p->idx */
};

static int repack_flush(struct prune *p, struct repack *k, pack_writer *pw)
{
	uint64_t size;
	if (pack_writer_empty(pw))
		return 0;
	TRY(pack_writer_finish(pw, &size));
	TRY(index_builder_add_pack(&k->ib, pw->id, pw->entries, pw->n));
	p->res->packs_written++;
	p->res->bytes_written += size;
	if (k->ib.nentries >= 65536) /* as a push does: the builder stays small */
		TRY(index_builder_flush(&k->ib, p->r, k->scratch));
	return pack_writer_reset(pw);
}

static int repack_one(struct prune *p, struct repack *k, uint32_t no)
{
	const uint8_t *pid = index_pack_id(p->idx, no);
	struct pack_state *ps = &p->ps[no];
	char key[80], hex[17];
	uint8_t subkey[CRYPTO_KEY_LEN];
	repo_pack_key(pid, key);
	short_hex(pid, hex);
	if (ps->size > SIZE_MAX || ps->size > (uint64_t)p->r->params.pack_size * 2 + (64u << 20))
		return err_set(DRE_ECORRUPT, "pack %s is %" PRIu64 " bytes, more than a pack of this repository can be",
			       key, ps->size);
	if (ps->size > k->data_cap) {
		uint8_t *d = realloc(k->data, (size_t)ps->size);
		if (d == NULL)
			return err_set(DRE_ENOMEM, "cannot read pack %s", key);
		k->data = d;
		k->data_cap = (size_t)ps->size;
	}
	TRY(store_get(p->r->st, key, 0, (size_t)ps->size, k->data));
	TRY(repo_pack_subkey(p->r, pid, subkey));
	pack_entry *es = NULL;
	size_t n = 0;
	int rc = pack_read_header(p->r, k->cc, key, k->data, (size_t)ps->size, subkey, &es, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t pos;
		index_entry e;
		if (!index_locate(p->idx, es[i].id, &pos, &e) || e.pack != no)
			continue; /* not the chosen location: a copy elsewhere is the one that counts */
		if (e.loc.offset != es[i].offset) { /* no copy elsewhere: dropping the blob would lose it */
			rc = err_set(DRE_ECORRUPT, "corrupt index: it places a blob of pack %s at offset %u, the pack's header "
						   "at %u: prune stops. HINT: 'dre check --read-data' tells more",
				     key, e.loc.offset, es[i].offset);
			break;
		}
		if (!(p->marks[pos >> 3] & (1u << (pos & 7))))
			continue; /* unreferenced: dropped */
		/* k->raw holds the largest blob the repository allows: a header that claims more is damaged */
		if (es[i].raw_len > pack_blob_max(p->r, es[i].flags))
			rc = err_set(DRE_ECORRUPT, "corrupt pack %s: a blob of %u bytes, more than this repository allows",
				     key, es[i].raw_len);
		else
			rc = pack_blob_open(k->cc, k->zd, subkey, &es[i], k->data + es[i].offset, k->raw);
		if (rc < 0) {
			rc = err_ctx(rc, "repacking pack %s", key);
			break;
		}
		bool list = (es[i].flags & BLOB_LIST) != 0;
		pack_writer *pw = list ? &k->lpw : &k->pw;
		if (pack_writer_full(pw))
			rc = repack_flush(p, k, pw);
		if (rc == 0)
			rc = list ? pack_writer_add_list(pw, es[i].id, k->raw, es[i].raw_len)
				  : pack_writer_add(pw, es[i].id, k->raw, es[i].raw_len);
	}
	free(es);
	crypto_wipe(subkey, sizeof subkey);
	return rc;
}

static int repack(struct prune *p)
{
	struct repack k;
	memset(&k, 0, sizeof k);
	int rc = pack_writer_init(&k.pw, p->r);
	if (rc == 0)
		rc = pack_writer_init_sized(&k.lpw, p->r, PRUNE_LIST_PACK_SIZE);
	if (rc == 0)
		rc = crypto_ctx_new(&k.cc);
	if (rc == 0)
		rc = index_new(&k.scratch);
	k.zd = ZSTD_createDCtx();
	k.raw = malloc(pack_blob_max_any(p->r));
	if (rc == 0 && (k.zd == NULL || k.raw == NULL))
		rc = err_set(DRE_ENOMEM, "cannot allocate the repacking buffers");
	for (size_t no = 0; rc == 0 && no < p->nps; no++)
		if ((p->ps[no].flags & PS_DOOMED) && p->ps[no].reason == PLAN_REPACKED)
			rc = repack_one(p, &k, (uint32_t)no);
	if (rc == 0)
		rc = repack_flush(p, &k, &k.pw);
	if (rc == 0)
		rc = repack_flush(p, &k, &k.lpw);
	/* one index object for all of them, durable before the plan that makes writers avoid the old packs */
	if (rc == 0)
		rc = index_builder_flush(&k.ib, p->r, k.scratch);
	index_free(k.scratch);
	pack_writer_free(&k.pw);
	pack_writer_free(&k.lpw);
	index_builder_free(&k.ib);
	crypto_ctx_free(k.cc);
	ZSTD_freeDCtx(k.zd);
	free(k.raw);
	free(k.data);
	return rc;
}

/* ---- R2, R3 ---- */

static int write_plan(struct prune *p)
{
	size_t n = 0;
	for (size_t no = 0; no < p->nps; no++)
		n += (p->ps[no].flags & (PS_DOOMED | PS_ADOPTED)) == PS_DOOMED;
	if (n == 0)
		return 0; /* nothing new: the adopted plans already name every doomed pack */
	p->plan.packs = malloc(n * sizeof *p->plan.packs);
	if (p->plan.packs == NULL)
		return err_set(DRE_ENOMEM, "cannot build the prune plan of %zu packs", n);
	for (size_t no = 0; no < p->nps; no++) {
		if ((p->ps[no].flags & (PS_DOOMED | PS_ADOPTED)) != PS_DOOMED)
			continue;
		plan_pack *pp = &p->plan.packs[p->plan.n++];
		memcpy(pp->id, index_pack_id(p->idx, (uint32_t)no), CRYPTO_ID_LEN);
		pp->reason = p->ps[no].reason;
	}
	p->plan.created_ns = meter_now_ns();
	return plan_write(p->r, &p->plan);
}

static void wait_grace(int64_t ns)
{
	struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
	while (ns > 0 && nanosleep(&t, &t) != 0)
		;
}

/* ---- R4 ---- */

struct fresh_ctx {
	struct prune *p;
};

static int fresh_one(void *arg, const char *key, uint64_t size)
{
	struct fresh_ctx *c = arg;
	struct prune *p = c->p;
	(void)size;
	uint8_t id[CRYPTO_ID_LEN];
	if (pack_from_key(key, id) < 0)
		return 0;
	const uint8_t(*ids)[CRYPTO_ID_LEN];
	const index_object_pack *pairs;
	size_t npairs, nobj = index_mapped_objects(p->idx, &ids, &pairs, &npairs);
	for (size_t i = 0; i < nobj; i++)
		if (memcmp(ids[i], id, CRYPTO_ID_LEN) == 0)
			return 0; /* read in R1 */
	/* twice: on its own, to tell locations new since R1, and into the sealed index (beside its positions), so
	 * that the new snapshots' lists can be read */
	int rc = index_object_read(p->r, p->fresh, id);
	if (rc == 0)
		rc = index_object_read(p->r, p->idx, id);
	if (rc == DRE_ENOTFOUND)
		return 0;
	return rc < 0 ? err_ctx(rc, "rescanning the index") : 0;
}

static int fresh_pack_listed(void *arg, const char *key, uint64_t size)
{
	struct prune *p = arg;
	uint8_t id[CRYPTO_ID_LEN];
	uint32_t no;
	(void)size;
	if (pack_from_key(key, id) == 0 && index_pack_lookup(p->fresh, id, &no) && no < p->nfresh_listed)
		p->fresh_listed[no] = 1;
	return 0;
}

static int rescan(struct prune *p)
{
	bool writers = false;
	p->r4 = true;
	TRY(index_new(&p->fresh));
	struct fresh_ctx c = {p};
	TRY(store_list(p->r->st, "index/", fresh_one, &c));
	TRY(pack_state_grow(p));
	/* packs/ listed after index/: a location counts only in a pack that exists (fresh_location_sound) */
	p->nfresh_listed = index_pack_count(p->fresh);
	p->fresh_listed = calloc(p->nfresh_listed ? p->nfresh_listed : 1, 1);
	if (p->fresh_listed == NULL)
		return err_set(DRE_ENOMEM, "cannot rescan the packs");
	TRY_CTX(store_list(p->r->st, "packs/", fresh_pack_listed, p), "listing the packs");
	/* an orphan that an index object now names belongs to a push that finished: it stays */
	for (uint32_t no = 0; no < index_pack_count(p->fresh); no++) {
		uint32_t mine;
		if (!index_pack_lookup(p->idx, index_pack_id(p->fresh, no), &mine) || mine >= p->nps)
			continue;
		struct pack_state *ps = &p->ps[mine];
		if ((ps->flags & PS_DOOMED) && !(ps->flags & PS_KEPT)) {
			ps->flags |= PS_KEPT;
			p->res->packs_kept++;
		}
	}
	TRY(lock_any_live(p->r, REPO_LOCK_WRITE, NULL, &writers));
	for (size_t no = 0; writers && no < p->nps; no++) {
		struct pack_state *ps = &p->ps[no];
		if ((ps->flags & PS_DOOMED) && ps->reason == PLAN_ORPHAN && !(ps->flags & PS_KEPT)) {
			ps->flags |= PS_KEPT; /* a push started since R1 may be writing it: a later prune decides */
			p->res->orphans_deferred = true;
			p->res->packs_orphan--;
		}
	}
	return walk_snapshots(p);
}

/* ---- R5 ---- */

static int delete_packs(struct prune *p)
{
	char key[80];
	for (size_t no = 0; no < p->nps; no++) {
		struct pack_state *ps = &p->ps[no];
		if (!(ps->flags & PS_DOOMED) || (ps->flags & PS_KEPT))
			continue;
		repo_pack_key(index_pack_id(p->idx, (uint32_t)no), key);
		int rc = store_del(p->r->st, key);
		if (rc < 0 && rc != DRE_ENOTFOUND)
			return err_ctx(rc, "deleting pack %s", key);
		ps->flags |= PS_DELETED;
		p->res->packs_deleted++;
		p->res->bytes_deleted += ps->size;
		test_pause("prune-deleting"); /* after each pack: a kill leaves some deleted, some not */
	}
	return 0;
}

/* An index object without the groups of deleted packs: the replacement is durable before the old one goes. */
static int rewrite_object(struct prune *p, const uint8_t id[CRYPTO_ID_LEN], bool *first)
{
	char key[80];
	uint8_t *plain = NULL;
	size_t len = 0;
	repo_object_key("index/", id, key);
	int rc = repo_get_object(p->r, 'I', key, &plain, &len);
	if (rc == DRE_ENOTFOUND)
		return 0; /* a killed prune's rewrite got this far */
	TRY(rc);
	index_builder b = {0};
	rd in = rd_make(plain, len);
	uint32_t npacks = rd_u32(&in);
	for (uint32_t k = 0; rc == 0 && k < npacks && !in.failed; k++) {
		const uint8_t *pid = rd_take(&in, CRYPTO_ID_LEN);
		uint32_t n = rd_u32(&in), no;
		if (in.failed || (uint64_t)n * PACK_ENTRY_LEN > in.len - in.off) {
			in.failed = true;
			break;
		}
		bool gone = index_pack_lookup(p->idx, pid, &no) && no < p->nps && (p->ps[no].flags & PS_DELETED);
		if (gone) {
			rd_take(&in, (size_t)n * PACK_ENTRY_LEN);
			continue;
		}
		pack_entry *es = malloc((n ? n : 1) * sizeof *es);
		if (es == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot rewrite index object %s", key);
			break;
		}
		uint8_t pack_id[CRYPTO_ID_LEN];
		memcpy(pack_id, pid, CRYPTO_ID_LEN);
		for (uint32_t i = 0; i < n; i++)
			pack_entry_get(&in, &es[i]);
		rc = index_builder_add_pack(&b, pack_id, es, n);
		free(es);
	}
	free(plain);
	if (rc == 0 && (in.failed || in.off != in.len))
		rc = err_set(DRE_ECORRUPT, "corrupt index %s: malformed contents", key);
	chunk_index *scratch = NULL;
	if (rc == 0 && b.npacks > 0) {
		rc = index_new(&scratch);
		if (rc == 0)
			rc = index_builder_flush(&b, p->r, scratch);
		index_free(scratch);
		if (rc == 0 && *first)
			test_pause("prune-reindexing");
		*first = false;
	}
	index_builder_free(&b);
	if (rc == 0)
		rc = store_del(p->r->st, key);
	if (rc == 0) {
		p->res->index_rewritten += b.npacks > 0;
		p->res->index_deleted++;
	}
	return rc < 0 ? err_ctx(rc, "rewriting index object %s", key) : 0;
}

static int rewrite_index(struct prune *p)
{
	const uint8_t(*ids)[CRYPTO_ID_LEN];
	const index_object_pack *pairs;
	size_t npairs, nobj = index_mapped_objects(p->idx, &ids, &pairs, &npairs);
	bool first = true;
	/* pairs come in object order: one pass finds each object that names a gone pack */
	for (size_t i = 0; i < npairs;) {
		uint32_t obj = pairs[i].object;
		bool touched = false;
		for (; i < npairs && pairs[i].object == obj; i++)
			touched |= pairs[i].pack < p->nps && (p->ps[pairs[i].pack].flags & PS_DELETED);
		if (touched && obj < nobj)
			TRY(rewrite_object(p, ids[obj], &first));
	}
	return 0;
}

/* The last step (format-spec.md §16.3 R5): the plans swept go, this prune's and those it adopted. */
static int delete_plans(struct prune *p)
{
	if (p->plan.key[0] != '\0')
		TRY_CTX(store_del(p->r->st, p->plan.key), "removing prune plan %s", p->plan.key);
	for (size_t i = 0; i < p->adopted.n; i++)
		TRY_CTX(store_del(p->r->st, p->adopted.items[i].key), "removing prune plan %s", p->adopted.items[i].key);
	return 0;
}

/* ---- multipart uploads ---- */

struct uploads_ctx {
	struct prune *p;
	int64_t now_s;
	int64_t min_age_s; /* LOCK_STALE_S; DRE_TEST_UPLOAD_AGE_S in tests, which cannot make an old upload */
};

/* "2026-12-02T03:15:00.000Z" → seconds; -1 when it does not parse */
static int64_t initiated_s(const char *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	/* NOLINTNEXTLINE(cert-err34-c): the widths bound every field to 4 digits, so none can overflow */
	if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static int abort_one(void *arg, const char *key, const char *upload_id, const char *initiated)
{
	struct uploads_ctx *c = arg;
	int64_t t = initiated_s(initiated);
	if (t < 0 || c->now_s - t < c->min_age_s)
		return 0; /* recent, or a time we cannot read: a later prune */
	int rc = store_abort_upload(c->p->r->st, key, upload_id);
	if (rc < 0) {
		warn(c->p, "%s", err_msg());
		return 0;
	}
	c->p->res->uploads_aborted++;
	return 0;
}

/* Parts of multipart uploads that killed pushes began take space until aborted, as do a local store's temporary
 * files. Only while no write lock is live (a running push's upload is not touched), and only those begun more
 * than the stale age ago by the server's account, so that a clock that is off cannot make it reach a young one. */
static int abort_uploads(struct prune *p)
{
	bool writers = false;
	TRY(lock_any_live(p->r, REPO_LOCK_WRITE, NULL, &writers));
	if (writers)
		return 0;
	const char *age = getenv("DRE_TEST_UPLOAD_AGE_S");
	struct uploads_ctx c = {p, meter_now_ns() / 1000000000, age ? strtoll(age, NULL, 10) : LOCK_STALE_S};
	return err_ctx(store_uploads(p->r->st, abort_one, &c), "listing unfinished multipart uploads");
}

/* ---- the command ---- */

static int prune_run(struct prune *p)
{
	const prune_opts *o = p->o;
	prune_result *res = p->res;
	if (p->r->format < REPO_FORMAT_PRUNE)
		return err_set(DRE_EUNSUPP,
			       "the repository has format version %u: prune needs version %d, whose writers follow "
			       "prune plans. HINT: 'dre migrate' upgrades it",
			       p->r->format, REPO_FORMAT_PRUNE);
	if (!o->dry_run)
		TRY(lock_acquire(p->r, REPO_LOCK_DELETE, "prune", &p->lock));

	/* R1 */
	TRY(plan_load_all(p->r, &p->adopted));
	res->plans_adopted = p->adopted.n;
	TRY(load_index(p, NULL, 0));
	TRY_CTX(store_list(p->r->st, "packs/", list_pack, p), "listing the packs");
	TRY(avoid_missing(p));
	res->index_memory = index_memory(p->idx);
	TRY(walk_snapshots(p));
	bool writers = false;
	TRY(lock_any_live(p->r, REPO_LOCK_WRITE, NULL, &writers));
	TRY(missing_check(p));
	classify(p, writers);
	test_pause("prune-marked");
	if (o->dry_run)
		return 0;

	TRY(repack(p));
	test_pause("prune-repacked");
	bool anything = res->packs_dead + res->packs_repacked + res->packs_orphan + res->packs_missing > 0 ||
			p->adopted.n > 0;
	if (!anything)
		return abort_uploads(p);
	/* R2, R3 */
	TRY(write_plan(p));
	test_pause("prune-planned");
	if (p->plan.key[0] != '\0')
		wait_grace(o->grace_ns);
	/* R4 */
	TRY(rescan(p));
	test_pause("prune-rescanned");
	/* R5: only while still the one deleter */
	TRY(lock_check(p->lock));
	TRY(delete_packs(p));
	test_pause("prune-deleted");
	TRY(lock_check(p->lock));
	TRY(rewrite_index(p));
	test_pause("prune-reindexed");
	TRY(delete_plans(p));
	/* this machine's index cache covers objects that are gone now: the next command rebuilds it, quietly */
	char cache[4200];
	const char *cache_path = index_cache_path(p->r, cache, sizeof cache);
	if (cache_path != NULL && unlink(cache_path) != 0 && errno != ENOENT)
		warn(p, "index cache %s not removed: %s", cache_path, strerror(errno));
	return abort_uploads(p);
}

int engine_prune(repo *r, const prune_opts *o, prune_result *res)
{
	struct prune p;
	meter clock;
	memset(&p, 0, sizeof p);
	memset(res, 0, sizeof *res);
	p.r = r;
	p.o = o;
	p.res = res;
	meter_start(&clock, NULL);
	int rc = prune_run(&p);
	res->seconds = meter_seconds(&clock);
	index_free(p.idx);
	index_free(p.fresh);
	free(p.fresh_listed);
	free(p.ps);
	free(p.marks);
	free(p.seen);
	plan_free(&p.plan);
	plan_set_free(&p.adopted);
	lock_release(p.lock, o->hooks.warn, o->hooks.arg);
	return rc;
}
