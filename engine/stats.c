#include "engine/stats.h"

#include <stdlib.h>
#include <string.h>

#include "engine/pg/pg.h"
#include "engine/repo/snapshot.h"
#include "store/err.h"

struct size_sum {
	uint64_t objects, bytes;
};

static int add_size(void *arg, const char *key, uint64_t size)
{
	(void)key;
	struct size_sum *s = arg;
	s->objects++;
	s->bytes += size;
	return 0;
}

int repo_stats_size(repo *r, uint64_t *objects, uint64_t *bytes)
{
	struct size_sum s = {0};
	TRY_CTX(store_list(r->st, "", add_size, &s), "measuring the repository");
	*objects = s.objects;
	*bytes = s.bytes;
	return 0;
}

/* A format 1 snapshot may lack its end time: its start stands in. */
static int64_t snap_end(const snapshot *s)
{
	return s->end_time_ns > 0 ? s->end_time_ns : s->time_ns;
}

/* By name, then by end time: the last of each run of a name is its newest. */
static int snap_cmp(const void *a, const void *b)
{
	const snapshot *x = *(const snapshot *const *)a, *y = *(const snapshot *const *)b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return snap_end(x) < snap_end(y) ? -1 : snap_end(x) > snap_end(y);
}

/* One entry per name, from its newest snapshot. */
static int by_name(const snap_list *l, repo_stats *out)
{
	out->nnames = 0;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, each sizeof *order */
	const snapshot **order = calloc(l->n ? l->n : 1, sizeof *order);
	out->names = calloc(l->n ? l->n : 1, sizeof *out->names);
	if (order == NULL || out->names == NULL) {
		free(order);
		return err_set(DRE_ENOMEM, "cannot gather the snapshots' statistics");
	}
	for (size_t i = 0; i < l->n; i++)
		order[i] = &l->items[i];
	qsort(order, l->n, sizeof *order, snap_cmp); /* NOLINT(bugprone-sizeof-expression): as above */
	int rc = 0;
	for (size_t i = 0; i < l->n; i++) {
		const snapshot *s = order[i];
		stats_name *e = out->nnames ? &out->names[out->nnames - 1] : NULL;
		if (e == NULL || strcmp(e->name, s->name) != 0) {
			e = &out->names[out->nnames];
			if ((e->name = strdup(s->name)) == NULL) {
				rc = err_set(DRE_ENOMEM, "cannot gather the snapshots' statistics");
				break;
			}
			out->nnames++;
		}
		e->snapshots++;
		e->kind = s->kind;
		e->start_ns = s->time_ns;
		e->end_ns = snap_end(s);
		e->size = s->size;
		e->stored = s->stored_new;
	}
	free(order);
	return rc;
}

/* The newest segment of every cluster (the one archived last wins), and the gaps, from one listing of the
 * archive and the snapshots already listed. */
static int wal_stats(repo *r, const snap_list *l, repo_stats *out)
{
	pg_status st;
	TRY(pg_status_build(r, l, &st));
	const wal_archive *a = &st.archive;
	int rc = 0;
	out->wal_systems = a->n;
	for (size_t i = 0; rc == 0 && i < a->n; i++) {
		wal_last last;
		rc = wal_system_last(r, &a->sys[i], &last);
		if (rc == 0 && last.found && (!out->wal.found || last.archived_ns > out->wal.archived_ns)) {
			out->wal = last;
			out->wal_system = a->sys[i].system_id;
		}
	}
	if (rc == 0)
		rc = pg_status_missing(&st, &out->wal_missing, &out->backups_missing_wal);
	pg_status_free(&st);
	return rc;
}

int repo_stats_load(repo *r, repo_stats *out, void (*warn)(void *arg, const char *msg), void *warn_arg)
{
	snap_list l;
	memset(out, 0, sizeof *out);
	TRY(snap_list_load(r, &l, warn, warn_arg));
	out->snapshots = l.n;
	out->damaged = l.damaged;
	int rc = by_name(&l, out);
	if (rc == 0)
		rc = wal_stats(r, &l, out);
	snap_list_free(&l);
	if (rc == 0)
		rc = repo_stats_size(r, &out->objects, &out->bytes);
	if (rc < 0)
		repo_stats_free(out);
	return rc;
}

void repo_stats_free(repo_stats *s)
{
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i].name);
	free(s->names);
	memset(s, 0, sizeof *s);
}
