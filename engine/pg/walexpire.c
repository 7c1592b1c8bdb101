/*
 * walexpire.c — removing archived WAL that no kept base backup needs (walexpire.h, format-spec.md §16.5).
 *
 * One listing of wal/ gives every file with its size; the kept backups' manifests give their ranges; the rule
 * decides per file from its segment number alone. Nothing is read from the WAL objects themselves, so an
 * expiry over S3 costs one listing, one small GET per system (segment size, history) and one DELETE per file.
 */
#include "engine/pg/walexpire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/repo/bytes.h"
#include "engine/repo/lock.h"
#include "engine/pg/pg.h"
#include "engine/pg/wal.h"
#include "store/err.h"

/* ---- the rule ---- */

uint64_t wal_expire_anchor(const wal_expire_backup *b, size_t n, int64_t window_ns, int64_t now_ns)
{
	/* pg-restore picks, for a target T, the newest backup (by snapshot time) that ended before T: for every T
	 * from now − window on, that is A or a backup after A, so their starts bound what a restore reads */
	const wal_expire_backup *a = NULL;
	int64_t cutoff;
	bool windowed = window_ns >= 0 && !__builtin_sub_overflow(now_ns, window_ns, &cutoff);
	if (windowed)
		for (size_t i = 0; i < n; i++)
			if (b[i].on_path && b[i].stop_ns < cutoff && (a == NULL || b[i].time_ns >= a->time_ns))
				a = &b[i];
	if (a == NULL)
		for (size_t i = 0; i < n; i++)
			if (b[i].on_path && (a == NULL || b[i].time_ns < a->time_ns))
				a = &b[i];
	if (a == NULL)
		return WAL_EXPIRE_KEEP_ALL;
	/* every backup after A counts, on the path or not: one restored along another timeline (--target-timeline)
	 * is picked the same way among that timeline's backups */
	uint64_t anchor = a->start_segno;
	for (size_t i = 0; i < n; i++)
		if (b[i].time_ns >= a->time_ns && b[i].start_segno < anchor)
			anchor = b[i].start_segno;
	return anchor;
}

bool wal_expire_needed(uint64_t segno, uint64_t anchor, const wal_expire_backup *b, size_t n)
{
	if (segno >= anchor)
		return true;
	for (size_t i = 0; i < n; i++)
		if (segno >= b[i].start_segno && segno <= b[i].stop_segno)
			return true;
	return false;
}

void wal_expire_select(const wal_expire_backup *b, size_t n, int64_t window_ns, int64_t now_ns,
		       const uint64_t *segnos, size_t nseg, bool *remove)
{
	uint64_t anchor = wal_expire_anchor(b, n, window_ns, now_ns);
	for (size_t i = 0; i < nseg; i++)
		remove[i] = !wal_expire_needed(segnos[i], anchor, b, n);
}

static bool in_a_range(uint64_t segno, const wal_expire_backup *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (segno >= b[i].start_segno && segno <= b[i].stop_segno)
			return true;
	return false;
}

uint64_t wal_expire_first_free(const uint64_t *segnos, size_t nseg, const wal_expire_backup *b, size_t n)
{
	for (size_t i = 0; i < nseg; i++) /* sorted: the first one found is the lowest */
		if (!in_a_range(segnos[i], b, n))
			return segnos[i];
	return UINT64_MAX;
}

bool wal_expire_gap_expired(uint64_t from, uint64_t to, uint64_t first_free, const wal_expire_backup *b, size_t n)
{
	if (from > to || to >= first_free)
		return false;
	for (size_t i = 0; i < n; i++)
		if (b[i].start_segno <= to && b[i].stop_segno >= from)
			return false; /* a kept backup needs part of it: missing, whatever removed it */
	return true;
}

/* ---- the repository ---- */

struct sys_plan {
	uint64_t id;
	uint32_t seg_size;
	uint32_t latest;   /* the newest timeline of the system, archived or backed up */
	bool skip;         /* something is not as the rule needs it: nothing of this system is removed */
	uint64_t anchor;
	wal_expire_backup *b;
	pg_base_info *info;
	size_t n, cap_b, cap_i;
};

struct wal_file {
	char key[WAL_KEY_MAX];
	uint64_t size;
	uint64_t sysid;
	wal_name wn;
	uint64_t segno;
};

struct expiry {
	struct sys_plan *sys;
	size_t nsys;
	struct wal_file *files;
	size_t nfiles, cap;
	void (*warn)(void *arg, const char *msg);
	void *warn_arg;
};

static void say(struct expiry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct expiry *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(e->warn, e->warn_arg, fmt, ap);
	va_end(ap);
}

static struct sys_plan *plan_for(struct expiry *e, uint64_t id)
{
	for (size_t i = 0; i < e->nsys; i++)
		if (e->sys[i].id == id)
			return &e->sys[i];
	return NULL;
}

static int add_backup(struct expiry *e, const pg_base_info *in, const snapshot *s)
{
	struct sys_plan *p = plan_for(e, in->system_id);
	if (p == NULL) {
		void *q = realloc(e->sys, (e->nsys + 1) * sizeof *e->sys);
		if (q == NULL)
			return err_set(DRE_ENOMEM, "cannot plan the WAL expiry");
		e->sys = q;
		p = &e->sys[e->nsys++];
		memset(p, 0, sizeof *p);
		p->id = in->system_id;
		p->seg_size = in->seg_size;
	}
	if (!array_room(&p->b, &p->cap_b, p->n, sizeof *p->b, 8) ||
	    !array_room(&p->info, &p->cap_i, p->n, sizeof *p->info, 8))
		return err_set(DRE_ENOMEM, "cannot plan the WAL expiry");
	p->info[p->n] = *in;
	p->b[p->n] = (wal_expire_backup){
		.start_segno = wal_lsn_segno(in->start_lsn, in->seg_size),
		.stop_segno = wal_lsn_segno(in->stop_lsn > 0 ? in->stop_lsn - 1 : 0, in->seg_size),
		.time_ns = s->time_ns,
		.stop_ns = in->stop_ns,
	};
	p->n++;
	if (in->seg_size != p->seg_size && !p->skip) {
		p->skip = true;
		say(e, "WAL of system %" PRIu64 " not expired: its base backups disagree on the WAL segment size (%u and %u "
		       "bytes)", p->id, p->seg_size, in->seg_size);
	}
	if (in->timeline > p->latest)
		p->latest = in->timeline;
	return 0;
}

static int list_file(void *arg, const char *key, uint64_t size)
{
	struct expiry *e = arg;
	struct wal_file f = {.size = size};
	char name[WAL_NAME_MAX];
	if (wal_key_parse(key, &f.sysid, name, &f.wn) < 0)
		return 0; /* the system record; anything else under wal/ is no WAL file of ours either */
	if (!array_room(&e->files, &e->cap, e->nfiles, sizeof *e->files, 256))
		return err_set(DRE_ENOMEM, "cannot list the WAL archive");
	snprintf(f.key, sizeof f.key, "%s", key);
	e->files[e->nfiles++] = f;
	struct sys_plan *p = plan_for(e, f.sysid);
	if (p != NULL && f.wn.tli > p->latest)
		p->latest = f.wn.tli;
	return 0;
}

/* Which backups lie on the newest timeline's history (and may anchor): the path pg-restore follows by default. */
static int mark_path(repo *r, struct expiry *e, struct sys_plan *p)
{
	wal_history h;
	int rc = wal_history_load(r, p->id, p->latest, &h);
	if (rc == DRE_ENOTFOUND || rc == DRE_ECORRUPT) {
		p->skip = true;
		say(e, "WAL of system %" PRIu64 " not expired: %s", p->id, err_msg());
		return 0;
	}
	TRY(rc);
	for (size_t i = 0; i < p->n; i++) {
		const pg_base_info *in = &p->info[i];
		bool on = in->timeline == p->latest;
		for (size_t k = 0; !on && k < h.n; k++)
			on = h.tlis[k] == in->timeline && in->stop_lsn <= h.ends[k];
		p->b[i].on_path = on;
	}
	return 0;
}

static int plan_system(repo *r, struct expiry *e, struct sys_plan *p, int64_t window_ns, int64_t now_ns)
{
	uint32_t archived;
	if (p->skip)
		return 0;
	int rc = wal_system_seg_size(r, p->id, &archived);
	if (rc == DRE_ENOTFOUND) { /* no segment archived: nothing to remove */
		p->skip = true;
		return 0;
	}
	if (rc == DRE_ECORRUPT) { /* a damaged record is check's to report; expiry only stays away */
		p->skip = true;
		say(e, "WAL of system %" PRIu64 " not expired: %s", p->id, err_msg());
		return 0;
	}
	TRY(rc);
	if (archived != p->seg_size) {
		p->skip = true;
		say(e, "WAL of system %" PRIu64 " not expired: the archive holds %u-byte segments, its base backups say %u",
		    p->id, archived, p->seg_size);
		return 0;
	}
	TRY(mark_path(r, e, p));
	if (p->skip)
		return 0;
	p->anchor = wal_expire_anchor(p->b, p->n, window_ns, now_ns);
	if (p->anchor == WAL_EXPIRE_KEEP_ALL) {
		p->skip = true;
		say(e, "WAL of system %" PRIu64 " not expired: no kept base backup lies on the history of timeline %u, "
		       "the newest", p->id, p->latest);
	}
	return 0;
}

/* A base backup that is running may have started below the anchor: its snapshot is not among the kept ones yet.
 * One whose lock appears after this listing started after it, hence above every kept backup's start. */
struct running {
	bool found;
	lock_info li;
};

static int note_backup_lock(void *arg, const lock_info *li)
{
	struct running *run = arg;
	if (!li->stale && li->kind == REPO_LOCK_WRITE && strcmp(li->command, "pg-backup") == 0 && !run->found) {
		run->found = true;
		run->li = *li;
	}
	return 0;
}

static int file_cmp(const void *x, const void *y)
{
	const struct wal_file *a = x, *b = y;
	if (a->segno != b->segno)
		return a->segno < b->segno ? -1 : 1;
	return strcmp(a->key, b->key);
}

int wal_expire(repo *r, const snapshot *kept, size_t nkept, int64_t pitr_window_ns, int64_t now_ns, bool dry_run,
	       void (*warn)(void *arg, const char *msg), void *warn_arg, wal_expire_result *res)
{
	struct expiry e = {.warn = warn, .warn_arg = warn_arg};
	struct running run = {0};
	bool remove_none = false;
	int rc = 0;
	memset(res, 0, sizeof *res);

	for (size_t i = 0; rc == 0 && i < nkept; i++) {
		pg_base_info in;
		if (kept[i].kind != SNAP_PG_BASE)
			continue;
		if (pg_base_info_get(&kept[i], &in) < 0) {
			/* its system and range are unknown: any file might be its */
			char hex[2 * CRYPTO_ID_LEN + 1];
			hex_encode(kept[i].id, CRYPTO_ID_LEN, hex);
			say(&e, "no WAL expired: base backup %.8s: %s", hex, err_msg());
			remove_none = true;
			continue;
		}
		rc = add_backup(&e, &in, &kept[i]);
	}
	if (rc == 0)
		rc = lock_list(r, note_backup_lock, &run, NULL, NULL);
	if (rc == 0 && run.found && dry_run)
		say(&e, "a base backup is running (pg-backup, pid %u on %s): a real run now would expire no WAL, since the "
			"WAL that backup started on may lie below what the kept backups need",
		    run.li.pid, run.li.host);
	else if (rc == 0 && run.found) {
		say(&e, "no WAL expired: a base backup is running (pg-backup, pid %u on %s), and the WAL it started on may "
			"lie below what the kept backups need; a later forget removes what is not needed",
		    run.li.pid, run.li.host);
		remove_none = true;
	}
	if (rc == 0)
		rc = store_list(r->st, "wal/", list_file, &e);
	for (size_t i = 0; rc == 0 && i < e.nsys; i++)
		rc = plan_system(r, &e, &e.sys[i], pitr_window_ns, now_ns);

	/* what goes, in increasing segment order (an interrupted expiry leaves a prefix removed) */
	size_t ngo = 0;
	for (size_t i = 0; rc == 0 && i < e.nfiles; i++) {
		struct wal_file *f = &e.files[i];
		const struct sys_plan *p = plan_for(&e, f->sysid);
		bool go = false;
		if (p != NULL && !p->skip && !remove_none && f->wn.type != WAL_HISTORY) {
			f->segno = wal_name_segno(&f->wn, p->seg_size);
			go = !wal_expire_needed(f->segno, p->anchor, p->b, p->n);
		}
		if (go) {
			struct wal_file t = e.files[ngo];
			e.files[ngo++] = *f;
			*f = t;
		}
	}
	if (rc == 0 && ngo > 0) /* qsort wants an array, and there is none when nothing is to go */
		qsort(e.files, ngo, sizeof *e.files, file_cmp);
	for (size_t i = 0; rc == 0 && i < ngo; i++) {
		if (!dry_run && (rc = store_del(r->st, e.files[i].key)) < 0) {
			rc = err_ctx(rc, "WAL expiry (%zu files removed before this one)", res->removed);
			break;
		}
		res->removed++;
		res->bytes_removed += e.files[i].size;
	}
	res->kept = e.nfiles - res->removed;
	for (size_t i = 0; i < e.nsys; i++) {
		free(e.sys[i].b);
		free(e.sys[i].info);
	}
	free(e.sys);
	free(e.files);
	return rc;
}
