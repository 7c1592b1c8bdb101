/*
 * plan.c — prune plans and the writer's checks against them (format-spec.md §16.2, §16.3).
 */
#include "engine/repo/plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/repo/bytes.h"
#include "store/err.h"

#define PLAN_FORMAT 1
#define PLAN_PREFIX "prune/"
#define PLAN_MAX_PACKS (REPO_MAX_META_OBJECT / (CRYPTO_ID_LEN + 1))

int plan_write(repo *r, prune_plan *p)
{
	uint8_t id[CRYPTO_ID_LEN];
	buf b = {0};
	TRY(crypto_random(id, sizeof id));
	repo_object_key(PLAN_PREFIX, id, p->key);
	buf_u8(&b, PLAN_FORMAT);
	buf_u8(&b, 0);
	buf_u16(&b, 0);
	buf_u32(&b, (uint32_t)p->n);
	buf_u64(&b, (uint64_t)p->created_ns);
	for (size_t i = 0; i < p->n; i++) {
		buf_put(&b, p->packs[i].id, CRYPTO_ID_LEN);
		buf_u8(&b, p->packs[i].reason);
	}
	int rc = buf_check(&b, "prune plan");
	if (rc == 0)
		rc = repo_put_object(r, 'P', p->key, b.data, b.len, STORE_PUT_CREATE_ONCE);
	buf_free(&b);
	return rc < 0 ? err_ctx(rc, "cannot write prune plan %s", p->key) : 0;
}

int plan_read(repo *r, const char *key, uint64_t size, prune_plan *out)
{
	uint8_t *plain = NULL;
	size_t len = 0;
	memset(out, 0, sizeof *out);
	snprintf(out->key, sizeof out->key, "%s", key);
	TRY(repo_get_object_sized(r, 'P', key, size, &plain, &len));
	rd in = rd_make(plain, len);
	uint8_t format = rd_u8(&in);
	uint8_t flags = rd_u8(&in);
	uint16_t zero = rd_u16(&in);
	uint32_t n = rd_u32(&in);
	out->created_ns = (int64_t)rd_u64(&in);
	int rc = 0;
	if (in.failed || format != PLAN_FORMAT || flags != 0 || zero != 0 || n > PLAN_MAX_PACKS ||
	    in.len - in.off != (size_t)n * (CRYPTO_ID_LEN + 1))
		rc = err_set(format != PLAN_FORMAT && !in.failed ? DRE_EUNSUPP : DRE_ECORRUPT,
			     "prune plan %s is malformed (format %u, flags %u, %" PRIu32 " packs in %zu bytes)", key, format,
			     flags, n, len);
	if (rc == 0 && n > 0 && (out->packs = malloc((size_t)n * sizeof *out->packs)) == NULL)
		rc = err_set(DRE_ENOMEM, "cannot read prune plan %s", key);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		memcpy(out->packs[i].id, rd_take(&in, CRYPTO_ID_LEN), CRYPTO_ID_LEN);
		out->packs[i].reason = rd_u8(&in);
		if (out->packs[i].reason < PLAN_DEAD || out->packs[i].reason > PLAN_ORPHAN)
			rc = err_set(DRE_ECORRUPT, "prune plan %s: pack %" PRIu32 " has an unknown reason %u", key, i,
				     out->packs[i].reason);
	}
	out->n = n;
	free(plain);
	if (rc < 0)
		plan_free(out);
	return rc;
}

void plan_free(prune_plan *p)
{
	free(p->packs);
	p->packs = NULL;
	p->n = 0;
}

struct load_ctx {
	repo *r;
	plan_set *s;
	size_t cap;
};

static int load_one(void *arg, const char *key, uint64_t size)
{
	struct load_ctx *c = arg;
	if (!array_room(&c->s->items, &c->cap, c->s->n, sizeof *c->s->items, 4))
		return err_set(DRE_ENOMEM, "cannot read the prune plans");
	int rc = plan_read(c->r, key, size, &c->s->items[c->s->n]);
	if (rc == DRE_ENOTFOUND) /* swept and removed since the listing: its packs are gone or kept */
		return 0;
	TRY(rc);
	c->s->n++;
	return 0;
}

int plan_load_all(repo *r, plan_set *out)
{
	memset(out, 0, sizeof *out);
	struct load_ctx c = {r, out, 0};
	int rc = store_list(r->st, PLAN_PREFIX, load_one, &c);
	if (rc < 0) {
		plan_set_free(out);
		return err_ctx(rc, "reading the prune plans");
	}
	return 0;
}

void plan_set_free(plan_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		plan_free(&s->items[i]);
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

bool plan_set_has(const plan_set *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i].key, key) == 0)
			return true;
	return false;
}

int plan_guard_start(repo *r, chunk_index *idx, plan_guard *g)
{
	TRY(plan_load_all(r, &g->seen));
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < g->seen.n; i++) {
		const prune_plan *p = &g->seen.items[i];
		for (size_t k = 0; rc == 0 && k < p->n; k++)
			rc = index_exclude_packs(idx, &p->packs[k].id, 1);
	}
	index_track_use(idx);
	return rc;
}

struct check_ctx {
	repo *r;
	const chunk_index *idx;
	const plan_guard *g;
};

static int check_one(void *arg, const char *key, uint64_t size)
{
	struct check_ctx *c = arg;
	if (plan_set_has(&c->g->seen, key))
		return 0;
	prune_plan p;
	int rc = plan_read(c->r, key, size, &p);
	if (rc == DRE_ENOTFOUND)
		return 0; /* already swept: R4 ran after this writer's snapshot, if any, was visible */
	TRY(rc);
	for (size_t k = 0; rc == 0 && k < p.n; k++) {
		if (!index_pack_used(c->idx, p.packs[k].id))
			continue;
		char hex[2 * CRYPTO_ID_LEN + 1];
		hex_encode(p.packs[k].id, CRYPTO_ID_LEN, hex);
		rc = err_set(DRE_EBUSY,
			     "a prune that started during this run plans to delete pack %.16s…, which this run relied on "
			     "(%s): nothing was recorded. HINT: run it again; it will store what it needs anew",
			     hex, key);
	}
	plan_free(&p);
	return rc;
}

int plan_guard_check(repo *r, const chunk_index *idx, const plan_guard *g)
{
	struct check_ctx c = {r, idx, g};
	return store_list(r->st, PLAN_PREFIX, check_one, &c);
}

struct packs_ctx {
	const chunk_index *idx;
	uint8_t *present; /* by pack number in idx */
};

static int present_one(void *arg, const char *key, uint64_t size)
{
	struct packs_ctx *c = arg;
	(void)size;
	const char *hex = strrchr(key, '/');
	uint8_t id[CRYPTO_ID_LEN];
	uint32_t no;
	if (hex != NULL && strlen(hex + 1) == 2 * CRYPTO_ID_LEN && hex_decode(hex + 1, id, CRYPTO_ID_LEN) &&
	    index_pack_lookup(c->idx, id, &no))
		c->present[no] = 1;
	return 0;
}

int plan_guard_check_packs(repo *r, const chunk_index *idx)
{
	size_t np = index_pack_count(idx);
	struct packs_ctx c = {idx, calloc(np ? np : 1, 1)};
	if (c.present == NULL)
		return err_set(DRE_ENOMEM, "cannot check the packs this run relied on");
	int rc = store_list(r->st, "packs/", present_one, &c);
	for (uint32_t no = 0; rc == 0 && no < np; no++) {
		const uint8_t *pid = index_pack_id(idx, no);
		if (c.present[no] || !index_pack_used(idx, pid))
			continue;
		char key[80];
		repo_pack_key(pid, key);
		rc = err_set(DRE_EBUSY,
			     "pack %s, which this run relied on, is gone (a prune ran meanwhile): nothing was recorded. "
			     "HINT: run it again; it will store what it needs anew",
			     key);
	}
	free(c.present);
	return rc;
}

void plan_guard_free(plan_guard *g)
{
	plan_set_free(&g->seen);
}
