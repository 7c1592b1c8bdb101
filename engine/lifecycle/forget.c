#include "engine/lifecycle/forget.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/repo/bytes.h"
#include "engine/repo/lock.h"
#include "engine/pipeline/meter.h"
#include "engine/pg/walexpire.h"
#include "engine/testhook.h"
#include "store/err.h"

static void warnf(const forget_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(const forget_opts *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(o->warn, o->warn_arg, fmt, ap);
	va_end(ap);
}

/* ---- planning with a policy ---- */

/* A selected snapshot and what it is grouped by ("" for what it is not grouped by). */
typedef struct sel {
	const char *gname, *ghost;
	size_t idx; /* in the list, which is oldest first */
} sel;

static bool same_group(const sel *x, const sel *y)
{
	return strcmp(x->gname, y->gname) == 0 && strcmp(x->ghost, y->ghost) == 0;
}

static int sel_cmp(const void *a, const void *b)
{
	const sel *x = a, *y = b;
	int c = strcmp(x->gname, y->gname);
	if (c == 0)
		c = strcmp(x->ghost, y->ghost);
	if (c == 0)
		c = x->idx < y->idx ? -1 : x->idx > y->idx;
	return c;
}

static bool selected(const forget_opts *o, const snapshot *s)
{
	if (!snap_filter_match(&o->filter, s))
		return false;
	if (o->kind != 0 && s->kind != o->kind)
		return false;
	for (size_t k = 0; k < o->nnames; k++)
		if (strcmp(s->name, o->names[k]) == 0)
			return true;
	return o->nnames == 0;
}

/* A typo in a name would otherwise forget nothing without a word. */
static void warn_unmatched_names(const forget_opts *o, const snap_list *l)
{
	for (size_t k = 0; k < o->nnames; k++) {
		bool any = false;
		for (size_t i = 0; !any && i < l->n; i++)
			any = strcmp(l->items[i].name, o->names[k]) == 0 && selected(o, &l->items[i]);
		if (!any)
			warnf(o, "no snapshot named %s%s", o->names[k],
			      !snap_filter_empty(&o->filter) || o->kind != 0
				      ? " matches the --tag, --host, --path and --kind given"
				      : "");
	}
}

static int alloc_plan(forget_result *res, size_t nitems, size_t ngroups)
{
	res->items = calloc(nitems ? nitems : 1, sizeof *res->items);
	res->groups = calloc(ngroups ? ngroups : 1, sizeof *res->groups);
	if (res->items == NULL || res->groups == NULL)
		return err_set(DRE_ENOMEM, "out of memory planning the forget");
	return 0;
}

static void count_plan(forget_result *res)
{
	for (size_t i = 0; i < res->nitems; i++) {
		forget_group *g = &res->groups[res->items[i].group];
		if (res->items[i].keep)
			g->kept++, res->kept++;
		else
			g->removed++, res->removed++;
	}
}

static int plan_policy(const forget_opts *o, forget_result *res)
{
	unsigned by = o->group_by ? o->group_by : FORGET_BY_NAME | FORGET_BY_HOST;
	const snap_list *l = &res->list;
	sel *sels = calloc(l->n ? l->n : 1, sizeof *sels);
	retention_item *ri = NULL;
	size_t n = 0, ngroups = 0;
	int rc = 0;
	if (sels == NULL)
		return err_set(DRE_ENOMEM, "out of memory planning the forget");
	warn_unmatched_names(o, l);
	for (size_t i = 0; i < l->n; i++)
		if (selected(o, &l->items[i]))
			sels[n++] = (sel){(by & FORGET_BY_NAME) ? l->items[i].name : "",
					  (by & FORGET_BY_HOST) ? l->items[i].host : "", i};
	qsort(sels, n, sizeof *sels, sel_cmp);
	for (size_t i = 0; i < n; i++)
		ngroups += i == 0 || !same_group(&sels[i], &sels[i - 1]);
	rc = alloc_plan(res, n, ngroups);
	if (rc == 0 && (ri = calloc(n ? n : 1, sizeof *ri)) == NULL)
		rc = err_set(DRE_ENOMEM, "out of memory planning the forget");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const snapshot *s = &l->items[sels[i].idx];
		if (i == 0 || !same_group(&sels[i], &sels[i - 1])) {
			forget_group *g = &res->groups[res->ngroups++];
			g->name = (by & FORGET_BY_NAME) ? s->name : NULL;
			g->host = (by & FORGET_BY_HOST) ? s->host : NULL;
			g->first = i;
		}
		res->groups[res->ngroups - 1].n++;
		res->items[i].s = s;
		memcpy(res->items[i].id, s->id, CRYPTO_ID_LEN);
		res->items[i].group = res->ngroups - 1;
		ri[i] = (retention_item){.time_ns = s->time_ns, .group = res->ngroups - 1};
	}
	res->nitems = rc == 0 ? n : 0;
	if (rc == 0)
		rc = retention_apply(&o->policy, ri, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		res->items[i].keep = ri[i].keep;
		res->items[i].reasons = ri[i].reasons;
	}
	if (rc == 0)
		count_plan(res);
	free(ri);
	free(sels);
	return rc;
}

/* ---- planning with IDs ---- */

/* Every snapshot object's ID, damaged ones included: an ID is resolved against the store's names. */
typedef struct id_set {
	uint8_t (*ids)[CRYPTO_ID_LEN];
	size_t n, cap;
} id_set;

static int collect_id(void *arg, const char *key, uint64_t size)
{
	id_set *set = arg;
	const char *hex = key + strlen("snapshots/");
	uint8_t id[CRYPTO_ID_LEN];
	(void)size;
	if (strlen(hex) != 2 * CRYPTO_ID_LEN || !hex_decode(hex, id, CRYPTO_ID_LEN))
		return 0; /* not a snapshot object dre wrote; snap_list_load reports what it cannot read */
	if (!array_room(&set->ids, &set->cap, set->n, sizeof *set->ids, 64))
		return err_set(DRE_ENOMEM, "out of memory listing snapshots");
	memcpy(set->ids[set->n++], id, CRYPTO_ID_LEN);
	return 0;
}

static bool hex_has_prefix(const uint8_t id[CRYPTO_ID_LEN], const char *prefix)
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(id, CRYPTO_ID_LEN, hex);
	return strncmp(hex, prefix, strlen(prefix)) == 0;
}

/* Resolves o->ids into chosen[] (indexes into set), each once. */
static int resolve_ids(const forget_opts *o, const id_set *set, bool *chosen)
{
	for (size_t k = 0; k < o->nids; k++) {
		const char *text = o->ids[k];
		size_t matches = 0, pick = 0;
		if (!snap_id_prefix_text(text))
			return err_set(DRE_EINVAL, "'%s' is not a snapshot ID (4 to 64 lowercase hex digits)", text);
		for (size_t i = 0; i < set->n; i++)
			if (hex_has_prefix(set->ids[i], text))
				matches++, pick = i;
		if (matches == 0)
			return err_set(DRE_ENOTFOUND, "no snapshot with ID %s. HINT: 'dre snapshots' lists them", text);
		if (matches > 1)
			return err_set(DRE_EINVAL, "snapshot ID prefix %s is ambiguous (%zu snapshots match)", text,
				       matches);
		chosen[pick] = true;
	}
	return 0;
}

static int plan_ids(repo *r, const forget_opts *o, forget_result *res)
{
	id_set set = {0};
	bool *chosen = NULL, *placed = NULL;
	int rc = store_list(r->st, "snapshots/", collect_id, &set);
	if (rc < 0)
		rc = err_ctx(rc, "listing snapshots");
	if (rc == 0 && ((chosen = calloc(set.n + 1, sizeof *chosen)) == NULL ||
			(placed = calloc(set.n + 1, sizeof *placed)) == NULL))
		rc = err_set(DRE_ENOMEM, "out of memory planning the forget");
	if (rc == 0)
		rc = resolve_ids(o, &set, chosen);
	size_t n = 0;
	for (size_t i = 0; rc == 0 && i < set.n; i++)
		n += chosen[i];
	if (rc == 0)
		rc = alloc_plan(res, n, 1);
	if (rc == 0)
		res->ngroups = 1;
	/* in time order, as the list has them; then the objects that could not be read */
	for (size_t j = 0; rc == 0 && j < res->list.n; j++)
		for (size_t i = 0; i < set.n; i++)
			if (chosen[i] && !placed[i] && memcmp(set.ids[i], res->list.items[j].id, CRYPTO_ID_LEN) == 0) {
				res->items[res->nitems].s = &res->list.items[j];
				memcpy(res->items[res->nitems++].id, set.ids[i], CRYPTO_ID_LEN);
				placed[i] = true;
			}
	for (size_t i = 0; rc == 0 && i < set.n; i++)
		if (chosen[i] && !placed[i])
			memcpy(res->items[res->nitems++].id, set.ids[i], CRYPTO_ID_LEN);
	if (rc == 0) {
		res->groups[0].n = res->nitems;
		count_plan(res);
	}
	free(placed);
	free(chosen);
	free(set.ids);
	return rc;
}

/* ---- carrying it out ---- */

static int remove_snapshots(repo *r, forget_result *res, repo_lock *l)
{
	size_t done = 0;
	if (res->removed == 0)
		return 0;
	/* planning may have taken long (one GET per snapshot): make sure no other deleter started meanwhile */
	TRY(lock_check(l));
	for (size_t i = 0; i < res->nitems; i++) {
		char key[80], hex[2 * CRYPTO_ID_LEN + 1];
		if (res->items[i].keep)
			continue;
		repo_object_key("snapshots/", res->items[i].id, key);
		test_pause("forget-removing");
		int rc = store_del(r->st, key);
		if (rc < 0) {
			hex_encode(res->items[i].id, CRYPTO_ID_LEN, hex);
			return err_ctx(rc, "removing snapshot %.8s (%zu of the %zu snapshots to remove were removed)", hex,
				       done, res->removed);
		}
		res->items[i].removed = true;
		done++;
	}
	return 0;
}

/* Base backups that remain: every pg-base snapshot of the repository that this forget does not remove. */
static int kept_bases(const forget_result *res, snapshot **out, size_t *n)
{
	const snap_list *l = &res->list;
	bool *gone = calloc(l->n + 1, sizeof *gone);
	*out = calloc(l->n + 1, sizeof **out);
	*n = 0;
	if (gone == NULL || *out == NULL) {
		free(gone);
		free(*out);
		*out = NULL;
		return err_set(DRE_ENOMEM, "out of memory expiring WAL");
	}
	for (size_t i = 0; i < res->nitems; i++)
		if (!res->items[i].keep && res->items[i].s != NULL)
			gone[res->items[i].s - l->items] = true;
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].kind == SNAP_PG_BASE && !gone[i])
			(*out)[(*n)++] = l->items[i]; /* shallow: the list keeps owning the strings */
	free(gone);
	return 0;
}

static int expire_wal(repo *r, const forget_opts *o, forget_result *res, repo_lock *l)
{
	bool base_removed = false;
	size_t unreadable = res->damaged; /* objects that could not be read and remain */
	for (size_t i = 0; i < res->nitems; i++) {
		if (res->items[i].keep)
			continue;
		if (res->items[i].s == NULL && unreadable > 0) /* > 0 unless it appeared after the listing */
			unreadable--;
		else if (res->items[i].s != NULL && res->items[i].s->kind == SNAP_PG_BASE)
			base_removed = true;
	}
	if (!base_removed && !o->pitr_window_given)
		return 0;
	if (unreadable > 0) {
		warnf(o, "WAL expiry skipped: %zu snapshot object%s could not be read and may be base backups that "
			 "need WAL. HINT: 'dre check' names them; 'dre forget ID' removes a damaged one",
		      unreadable, unreadable == 1 ? "" : "s");
		return 0;
	}
	int64_t now = meter_now_ns(), window = -1;
	if (o->pitr_window_given) {
		int64_t start = retention_before(&o->pitr_window, now);
		window = start < now - INT64_MAX ? INT64_MAX : now - start;
	}
	snapshot *kept;
	size_t nkept;
	wal_expire_result wr = {0};
	TRY(kept_bases(res, &kept, &nkept));
	int rc = o->dry_run ? 0 : lock_check(l);
	if (rc == 0)
		rc = wal_expire(r, kept, nkept, window, now, o->dry_run, o->warn, o->warn_arg, &wr);
	free(kept);
	if (rc < 0 && o->dry_run)
		return err_ctx(rc, "expiring WAL (dry run)");
	if (rc < 0)
		return err_ctx(rc, "%zu snapshots were removed, then expiring WAL failed", res->removed);
	res->wal_ran = true;
	res->wal_removed = wr.removed;
	res->wal_kept = wr.kept;
	res->wal_bytes_removed = wr.bytes_removed;
	return 0;
}

static int forget_locked(repo *r, const forget_opts *o, forget_result *res, repo_lock *l)
{
	TRY(snap_list_load(r, &res->list, o->warn, o->warn_arg));
	res->damaged = res->list.damaged;
	TRY(o->nids > 0 ? plan_ids(r, o, res) : plan_policy(o, res));
	if (!o->dry_run)
		TRY(remove_snapshots(r, res, l));
	return expire_wal(r, o, res, l);
}

int engine_forget(repo *r, const forget_opts *o, forget_result *res)
{
	repo_lock *l = NULL;
	memset(res, 0, sizeof *res);
	if (r->format < REPO_FORMAT_PRUNE)
		return err_set(DRE_EUNSUPP, "the repository has format version %u, which has no locks, so forget cannot "
					    "delete from it safely. HINT: 'dre migrate' upgrades it to version %d (older dre "
					    "versions then cannot read it)",
			       r->format, REPO_FORMAT_VERSION);
	if (o->nids == 0 && retention_policy_empty(&o->policy))
		return err_set(DRE_EINVAL, "no snapshot IDs and no keep rule given: forget would keep only the newest "
					   "snapshot of each group. HINT: give --keep-last N or another --keep-* option");
	TRY(snap_filter_check(&o->filter));
	if (!o->dry_run)
		TRY(lock_acquire(r, REPO_LOCK_DELETE, "forget", &l));
	int rc = forget_locked(r, o, res, l);
	lock_release(l, o->warn, o->warn_arg);
	return rc;
}

void forget_result_free(forget_result *res)
{
	free(res->items);
	free(res->groups);
	snap_list_free(&res->list);
	memset(res, 0, sizeof *res);
}
