/*
 * pg.c — base backups through libpq, and restoring one for point-in-time recovery (pg.h).
 *
 * The backup is PostgreSQL's non-exclusive low-level API: one session holds the backup open from
 * pg_backup_start to pg_backup_stop (pg_start_backup / pg_stop_backup before 15), the files are read meanwhile
 * (torn pages are fine: recovery replays full-page images from the start LSN), and backup_label comes from
 * pg_backup_stop, not from the data directory. What the documentation lists as safe to omit is left out.
 */
#include "engine/pg/pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/repo/bytes.h"
#include "engine/pipeline/meter.h"
#include "engine/pipeline/push.h"
#include "engine/pg/pq.h"

/* ---- the snapshot meta ---- */

static int meta_u64(const snapshot *s, const char *key, uint64_t *out)
{
	const char *v = snap_meta_get(s, key);
	char *end;
	if (v == NULL || *v == '\0')
		return err_set(DRE_ECORRUPT, "base backup %s: no %s in its manifest", s->name, key);
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (*end || errno)
		return err_set(DRE_ECORRUPT, "base backup %s: %s is '%s'", s->name, key, v);
	return 0;
}

static int meta_lsn(const snapshot *s, const char *key, uint64_t *out)
{
	const char *v = snap_meta_get(s, key);
	if (v == NULL || wal_lsn_parse(v, out) < 0)
		return err_set(DRE_ECORRUPT, "base backup %s: %s is missing or not an LSN", s->name, key);
	return 0;
}

int pg_base_info_get(const snapshot *s, pg_base_info *out)
{
	uint64_t tli, version, seg, start, stop;
	memset(out, 0, sizeof *out);
	if (s->kind != SNAP_PG_BASE)
		return err_set(DRE_EINVAL, "snapshot %s is a %s snapshot, not a PostgreSQL base backup", s->name,
			       snap_kind_name(s->kind));
	TRY(meta_u64(s, "pg.system-id", &out->system_id));
	TRY(meta_u64(s, "pg.timeline", &tli));
	TRY(meta_u64(s, "pg.version", &version));
	TRY(meta_u64(s, "pg.wal-segment-size", &seg));
	TRY(meta_lsn(s, "pg.start-lsn", &out->start_lsn));
	TRY(meta_lsn(s, "pg.stop-lsn", &out->stop_lsn));
	TRY(meta_u64(s, "pg.start-time", &start));
	TRY(meta_u64(s, "pg.stop-time", &stop));
	if (tli == 0 || tli > UINT32_MAX || !wal_seg_size_valid(seg) || out->stop_lsn < out->start_lsn)
		return err_set(DRE_ECORRUPT, "base backup %s: its timeline, segment size or LSNs make no sense", s->name);
	out->timeline = (uint32_t)tli;
	out->version = (uint32_t)version;
	out->seg_size = (uint32_t)seg;
	out->start_ns = (int64_t)start;
	out->stop_ns = (int64_t)stop;
	wal_segment_name(out->timeline, wal_lsn_segno(out->start_lsn, out->seg_size), out->seg_size, out->start_wal);
	wal_segment_name(out->timeline, wal_lsn_segno(out->stop_lsn - 1, out->seg_size), out->seg_size, out->stop_wal);
	return 0;
}

struct server {
	int version;
	uint64_t system_id;
	uint32_t seg_size;
	char data_directory[4096];
	char archive_mode[16];
};

static int server_facts(PGconn *c, struct server *s)
{
	PGresult *res;
	s->version = PQserverVersion(c);
	if (s->version < 130000)
		return err_set(DRE_EUNSUPP, "PostgreSQL %d.%d is not supported: pg-backup needs 13 or later",
			       s->version / 10000, s->version % 10000);
	TRY(pq_row(c, "reading the server's settings",
		   "SELECT (SELECT system_identifier FROM pg_control_system())::text, "
		   "current_setting('data_directory'), current_setting('archive_mode'), "
		   "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), pg_is_in_recovery()::text",
		   0, NULL, &res));
	s->system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(s->data_directory, sizeof s->data_directory, "%s", PQgetvalue(res, 0, 1));
	snprintf(s->archive_mode, sizeof s->archive_mode, "%s", PQgetvalue(res, 0, 2));
	s->seg_size = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
	bool standby = strcmp(PQgetvalue(res, 0, 4), "true") == 0;
	PQclear(res);
	if (standby)
		return err_set(DRE_EUNSUPP, "the server is a standby: pg-backup backs up a primary. HINT: connect to "
					    "the primary with --dbname");
	if (strcmp(s->archive_mode, "off") == 0)
		return err_set(DRE_EINVAL, "archive_mode is off on the server: a base backup is useless without its "
					   "WAL. HINT: set archive_mode = on and archive_command = 'dre --config FILE "
					   "wal-push %%p', then restart PostgreSQL");
	if (!wal_seg_size_valid(s->seg_size))
		return err_set(DRE_EIO, "PostgreSQL reports wal_segment_size %u", s->seg_size);
	return 0;
}

/* ---- what to leave out of a data directory (PostgreSQL docs, "Backing Up the Data Directory") ---- */

static const char *const skip_top_files[] = {
	"postmaster.pid", "postmaster.opts", "backup_label", "backup_label.old", "tablespace_map",
	"tablespace_map.old", "recovery.signal", "standby.signal", "postgresql.auto.conf.tmp",
	"current_logfiles.tmp", "backup_manifest", "backup_manifest.tmp", NULL,
};
/* kept as empty directories: PostgreSQL expects them, their contents are rebuilt or useless */
static const char *const empty_top_dirs[] = {
	"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp",
	"pg_subtrans", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static push_verdict pgdata_filter(void *arg, const char *rel, const struct stat *st)
{
	(void)arg;
	const char *slash = strrchr(rel, '/');
	const char *base = slash ? slash + 1 : rel;
	if (strncmp(base, "pgsql_tmp", 9) == 0 || strcmp(base, "pg_internal.init") == 0)
		return PUSH_SKIP;
	if (slash == NULL) {
		if (in_list(skip_top_files, rel))
			return PUSH_SKIP;
		if (in_list(empty_top_dirs, rel))
			return PUSH_DIR_ONLY;
		return PUSH_TAKE;
	}
	/* tablespaces: pg_tblspc/OID is a symlink to the tablespace's directory */
	if (strncmp(rel, "pg_tblspc/", 10) == 0 && strchr(rel + 10, '/') == NULL && S_ISLNK(st->st_mode))
		return PUSH_FOLLOW;
	/* temporary relations: base/DB/tNNN_NNN[...] */
	if (strncmp(rel, "base/", 5) == 0 && base[0] == 't' && base[1] >= '0' && base[1] <= '9' &&
	    strchr(base, '_') != NULL)
		return PUSH_SKIP;
	return PUSH_TAKE;
}

/* ---- waiting for the archive ---- */

static int wal_wait(repo *r, uint64_t sysid, uint32_t tli, uint64_t first, uint64_t last, uint32_t seg_size,
		    int timeout_s, double *waited)
{
	int64_t start = meter_now_ns(), deadline = start + (int64_t)timeout_s * 1000000000;
	long sleep_ms = 20;
	uint64_t next = first;
	for (;;) {
		while (next <= last) {
			char name[WAL_NAME_MAX], key[WAL_KEY_MAX];
			uint64_t size;
			wal_segment_name(tli, next, seg_size, name);
			TRY(wal_object_key(sysid, name, key));
			int rc = store_stat(r->st, key, &size);
			if (rc == DRE_ENOTFOUND)
				break;
			TRY(rc);
			next++;
		}
		if (next > last) {
			*waited = (double)(meter_now_ns() - start) / 1e9;
			return 0;
		}
		if (meter_now_ns() > deadline) {
			char name[WAL_NAME_MAX];
			wal_segment_name(tli, next, seg_size, name);
			return err_set(DRE_ENOTFOUND,
				       "WAL segment %s, which the backup needs, did not reach the archive within %d s: "
				       "no backup recorded. HINT: is archive_command 'dre --config FILE wal-push %%p' "
				       "for this repository, and does it succeed (see the server log and "
				       "pg_stat_archiver)?",
				       name, timeout_s);
		}
		struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
		if (sleep_ms < 500)
			sleep_ms *= 2;
	}
}

static uint32_t name_tli(const char *walfile)
{
	wal_name wn;
	return wal_name_parse(walfile, &wn) == 0 ? wn.tli : 0;
}

/* The manifest's record of the backup (format-spec.md §10.1), read back by pg_base_info_get(). */
static int backup_meta(push_session *ps, const pg_base_info *in, const char *pgdata)
{
	char num[6][24], start[24], stop[24];
	snprintf(num[0], sizeof num[0], "%" PRIu64, in->system_id);
	snprintf(num[1], sizeof num[1], "%u", in->version);
	snprintf(num[2], sizeof num[2], "%u", in->timeline);
	snprintf(num[3], sizeof num[3], "%u", in->seg_size);
	snprintf(num[4], sizeof num[4], "%" PRId64, in->start_ns);
	snprintf(num[5], sizeof num[5], "%" PRId64, in->stop_ns);
	wal_lsn_format(in->start_lsn, start);
	wal_lsn_format(in->stop_lsn, stop);
	const char *const meta[][2] = {
		{"pg.system-id", num[0]},   {"pg.version", num[1]},	   {"pg.timeline", num[2]},
		{"pg.wal-segment-size", num[3]}, {"pg.start-lsn", start},   {"pg.stop-lsn", stop},
		{"pg.start-wal", in->start_wal}, {"pg.stop-wal", in->stop_wal}, {"pg.start-time", num[4]},
		{"pg.stop-time", num[5]},   {"pg.data-directory", pgdata},
	};
	for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
		TRY(push_session_add_meta(ps, meta[i][0], meta[i][1]));
	return 0;
}

/* Everything between pg_backup_start and pg_backup_stop on one connection, then the archive wait. */
static int backup_run(repo *r, const pg_backup_opts *o, PGconn *c, const struct server *sv, const char *pgdata,
		      pg_backup_result *res)
{
	char system[24];
	snprintf(system, sizeof system, "%" PRIu64, sv->system_id);
	push_opts po = {.name = o->name ? o->name : "pg", .threads = o->threads, .hooks = o->hooks,
			.lock_command = "pg-backup", .force_read = o->force_read, .parent_key = "pg.system-id",
			.parent_value = system};
	push_session *ps = NULL;
	PGresult *q;
	struct stat pst;
	char label[128], start_wal[WAL_NAME_MAX];
	uint64_t start_lsn, stop_lsn;
	pg_base_info *in = &res->info;

	if (stat(pgdata, &pst) < 0 || !S_ISDIR(pst.st_mode))
		return err_sys("cannot read the data directory %s", pgdata);
	char ctl[4200];
	snprintf(ctl, sizeof ctl, "%s/global/pg_control", pgdata);
	if (access(ctl, R_OK) < 0)
		return err_sys("%s is not a readable data directory (%s)", pgdata, ctl);
	uint64_t local_id;
	TRY(wal_pgdata_system_id(pgdata, &local_id));
	if (local_id != sv->system_id)
		return err_set(DRE_EINVAL, "%s belongs to system %" PRIu64 ", the server is system %" PRIu64
					   ": give the server's own data directory with --pgdata",
			       pgdata, local_id, sv->system_id);
	TRY(engine_check_name(po.name));
	TRY(push_session_start(r, &po, SNAP_PG_BASE, &ps));

	in->start_ns = meter_now_ns();
	snprintf(label, sizeof label, "dre base backup %" PRId64, in->start_ns / 1000000000);
	const char *params[2] = {label, o->fast ? "true" : "false"};
	int rc = pq_row(c, "pg_backup_start",
			sv->version >= 150000
				? "SELECT x::text, pg_walfile_name(x) FROM pg_backup_start($1, $2::boolean) AS x"
				: "SELECT x::text, pg_walfile_name(x) FROM pg_start_backup($1, $2::boolean, false) AS x",
			2, params, &q);
	if (rc < 0)
		return push_session_end(ps, rc, false, &res->push);
	rc = wal_lsn_parse(PQgetvalue(q, 0, 0), &start_lsn);
	snprintf(start_wal, sizeof start_wal, "%s", PQgetvalue(q, 0, 1));
	PQclear(q);

	push_tree tree = {.filter = pgdata_filter, .vanish_ok = true};
	if (rc == 0)
		rc = push_session_add_tree(ps, pgdata, &tree);

	/* stop even when reading failed: the session must not stay in backup mode */
	int stop_rc = pq_row(c, "pg_backup_stop",
			     sv->version >= 150000
				     ? "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
				     : "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)",
			     0, NULL, &q);
	if (rc == 0)
		rc = stop_rc;
	if (stop_rc == 0) {
		in->stop_ns = meter_now_ns();
		if (rc == 0)
			rc = wal_lsn_parse(PQgetvalue(q, 0, 0), &stop_lsn);
		struct stat lst = pst; /* backup_label: the data directory's owner, mode 0600 */
		lst.st_mode = S_IFREG | 0600;
		if (rc == 0)
			rc = push_session_add_data(ps, "backup_label", PQgetvalue(q, 0, 1),
						   (size_t)PQgetlength(q, 0, 1), &lst);
		if (rc == 0 && PQgetlength(q, 0, 2) > 0)
			rc = push_session_add_meta(ps, "pg.tablespace-map", PQgetvalue(q, 0, 2));
		PQclear(q);
	}
	if (rc == 0) {
		in->system_id = sv->system_id;
		in->timeline = name_tli(start_wal);
		in->version = (uint32_t)sv->version;
		in->seg_size = sv->seg_size;
		in->start_lsn = start_lsn;
		in->stop_lsn = stop_lsn;
		wal_segment_name(in->timeline, wal_lsn_segno(start_lsn, sv->seg_size), sv->seg_size, in->start_wal);
		wal_segment_name(in->timeline, wal_lsn_segno(stop_lsn - 1, sv->seg_size), sv->seg_size, in->stop_wal);
		if (in->timeline == 0)
			rc = err_set(DRE_EIO, "PostgreSQL: pg_walfile_name gave '%s'", start_wal);
	}
	/* the backup is useless without the WAL from its start to its stop */
	if (rc == 0)
		rc = wal_wait(r, in->system_id, in->timeline, wal_lsn_segno(in->start_lsn, in->seg_size),
			      wal_lsn_segno(in->stop_lsn - 1, in->seg_size), in->seg_size,
			      o->archive_timeout > 0 ? o->archive_timeout : 60, &res->wal_wait_seconds);
	if (rc == 0)
		rc = backup_meta(ps, in, pgdata);
	return push_session_end(ps, rc, true, &res->push);
}

int engine_pg_backup(repo *r, const pg_backup_opts *o, pg_backup_result *res)
{
	struct server sv;
	memset(res, 0, sizeof *res);
	if (r->format < 2)
		return err_set(DRE_EUNSUPP, "repository format %u has no WAL archive: create a new repository with "
					    "'dre init' for PostgreSQL backups", r->format);
	PGconn *c;
	TRY(pq_connect(o->conninfo, &c));
	int rc = server_facts(c, &sv);
	if (rc == 0)
		rc = backup_run(r, o, c, &sv, o->pgdata ? o->pgdata : sv.data_directory, res);
	PQfinish(c);
	return rc;
}

/* ---- restore_command ---- */

void pg_command_quote(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);
	if (n + 1 < cap)
		out[n++] = '\'';
	for (; *s && n + 6 < cap; s++) {
		if (*s == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else if (*s == '%') {
			out[n++] = '%';
			out[n++] = '%';
		} else {
			out[n++] = *s;
		}
	}
	if (n + 1 < cap)
		out[n++] = '\'';
	out[n] = '\0';
}

/* ---- choosing a backup and checking the archive ---- */

struct tl_path {
	size_t n;
	uint32_t tli[65];
	uint64_t end_lsn[65]; /* where tli[i] ended; UINT64_MAX for the target itself */
};

static int tl_path_load(repo *r, uint64_t sysid, uint32_t target, struct tl_path *p)
{
	wal_history h;
	TRY(wal_history_load(r, sysid, target, &h));
	p->n = 0;
	for (size_t i = 0; i < h.n; i++) {
		p->tli[p->n] = h.tlis[i];
		p->end_lsn[p->n++] = h.ends[i];
	}
	p->tli[p->n] = target;
	p->end_lsn[p->n++] = UINT64_MAX;
	return 0;
}

/* Whether a backup on timeline tli that stopped at stop_lsn lies on the path (before its branch point). */
static bool on_path(const struct tl_path *p, uint32_t tli, uint64_t stop_lsn)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->tli[i] == tli)
			return stop_lsn <= p->end_lsn[i];
	return false;
}

/* The timeline whose file recovery reads for segment segno: the newest whose begin segment is ≤ segno. */
static uint32_t path_tli_for(const struct tl_path *p, uint64_t segno, uint32_t seg_size)
{
	for (size_t i = p->n; i-- > 1;)
		if (segno >= wal_lsn_segno(p->end_lsn[i - 1], seg_size))
			return p->tli[i];
	return p->tli[0];
}

static uint32_t latest_timeline(const wal_system *s)
{
	uint32_t best = 1;
	for (size_t i = 0; s && i < s->ntl; i++)
		if (s->tls[i].tli > best && (s->tls[i].history || s->tls[i].nseg))
			best = s->tls[i].tli;
	return best;
}

static uint64_t path_last_segno(const wal_system *s, const struct tl_path *p, uint64_t from, uint32_t seg_size)
{
	uint64_t last = from;
	for (size_t i = 0; i < p->n; i++) {
		const wal_timeline *t = wal_system_timeline(s, p->tli[i]);
		for (size_t j = t ? t->nseg : 0; j-- > 0;) {
			uint64_t sn = t->segnos[j];
			if (path_tli_for(p, sn, seg_size) == p->tli[i]) {
				if (sn > last)
					last = sn;
				break;
			}
		}
	}
	return last;
}

static int wal_check(repo *r, const pg_restore_opts *o, const wal_system *s, const struct tl_path *p,
		     const pg_base_info *in, pg_restore_result *res)
{
	uint32_t seg = in->seg_size;
	uint64_t first = wal_lsn_segno(in->start_lsn, seg), stop = wal_lsn_segno(in->stop_lsn - 1, seg);
	uint64_t end = path_last_segno(s, p, stop, seg);
	if (o->target == PG_TARGET_LSN) {
		if (o->lsn < in->stop_lsn) {
			char want[24], have[24];
			wal_lsn_format(o->lsn, want);
			wal_lsn_format(in->stop_lsn, have);
			return err_set(DRE_EINVAL, "--lsn %s is before the backup's consistent point %s", want, have);
		}
		end = wal_lsn_segno(o->lsn, seg);
	}
	res->wal_segments = 0;
	for (uint64_t sn = first; sn <= end; sn++) {
		uint32_t tli = path_tli_for(p, sn, seg);
		char name[WAL_NAME_MAX];
		wal_segment_name(tli, sn, seg, name);
		if (wal_timeline_has(wal_system_timeline(s, tli), sn)) {
			res->wal_segments++;
			snprintf(res->wal_last, sizeof res->wal_last, "%s", name);
			continue;
		}
		if (sn <= stop)
			return err_set(DRE_ENOTFOUND, "WAL segment %s is missing from the archive: base backup %s (%s to "
						      "%s) cannot be made consistent without it",
				       name, in->start_wal, in->start_wal, in->stop_wal);
		if (o->target == PG_TARGET_TIME && sn > first) {
			/* recovery stops at the first commit or abort after the target: when one lies before the
			 * gap, nothing after it is read. The nearest segment before it that ended a transaction
			 * says (wal-push recorded the time of its last one). */
			for (uint64_t back = sn - 1, tries = 0; back >= first && tries < 64; back--, tries++) {
				int64_t pushed, last_xact;
				uint64_t size;
				char prev[WAL_NAME_MAX];
				wal_segment_name(path_tli_for(p, back, seg), back, seg, prev);
				TRY(wal_object_info(r, s->system_id, prev, &pushed, &last_xact, &size));
				if (last_xact != 0) {
					if (o->time_ns < last_xact)
						return 0;
					break;
				}
				if (back == 0)
					break;
			}
		}
		return err_set(DRE_ENOTFOUND,
			       "WAL segment %s is missing from the archive (a gap after %s): recovery to the target "
			       "would stop there. HINT: 'dre wal-show' lists the gaps; choose a target before it",
			       name, res->wal_last[0] ? res->wal_last : in->start_wal);
	}
	return 0;
}

struct candidates {
	snap_list l;
	pg_base_info *info; /* per item; system_id 0 when not a usable base backup */
};

static int choose_backup(repo *r, const pg_restore_opts *o, struct candidates *c, uint64_t *sysid)
{
	TRY(snap_list_load(r, &c->l, o->hooks.warn, o->hooks.arg));
	c->info = calloc(c->l.n ? c->l.n : 1, sizeof *c->info);
	if (c->info == NULL)
		return err_set(DRE_ENOMEM, "cannot list base backups");
	size_t n = 0;
	for (size_t i = 0; i < c->l.n; i++) {
		snapshot *s = &c->l.items[i];
		if (s->kind != SNAP_PG_BASE || (o->name && strcmp(s->name, o->name) != 0))
			continue;
		if (o->backup) {
			char hex[2 * CRYPTO_ID_LEN + 1];
			hex_encode(s->id, CRYPTO_ID_LEN, hex);
			if (strncmp(hex, o->backup, strlen(o->backup)) != 0)
				continue;
		}
		if (pg_base_info_get(s, &c->info[i]) < 0) {
			if (o->hooks.warn)
				o->hooks.warn(o->hooks.arg, err_msg());
			c->info[i].system_id = 0;
			continue;
		}
		if (*sysid == 0)
			*sysid = c->info[i].system_id;
		else if (*sysid != c->info[i].system_id && !o->backup)
			return err_set(DRE_EINVAL, "the repository holds base backups of more than one cluster "
						   "(systems %" PRIu64 " and %" PRIu64 "): choose one with --name or --backup",
				       *sysid, c->info[i].system_id);
		n++;
	}
	if (o->backup && n > 1)
		return err_set(DRE_EINVAL, "--backup %s matches %zu base backups: give more digits", o->backup, n);
	if (n == 0)
		return err_set(DRE_ENOTFOUND, "no PostgreSQL base backup%s%s%s in the repository",
			       o->backup ? " with ID " : "", o->backup ? o->backup : "",
			       o->name ? " of that name" : "");
	return 0;
}

static int pick(const pg_restore_opts *o, struct candidates *c, const struct tl_path *p, size_t *chosen)
{
	size_t skipped_branch = 0;
	for (size_t i = c->l.n; i-- > 0;) { /* newest first */
		const pg_base_info *in = &c->info[i];
		if (in->system_id == 0)
			continue;
		if (o->target == PG_TARGET_TIME && !(in->stop_ns < o->time_ns))
			continue;
		if (o->target == PG_TARGET_LSN && !(in->stop_lsn <= o->lsn))
			continue;
		if (!on_path(p, in->timeline, in->stop_lsn)) {
			skipped_branch++;
			continue;
		}
		*chosen = i;
		return 0;
	}
	if (o->backup)
		return err_set(DRE_EINVAL, "base backup %s cannot reach the target: it ends after the target%s",
			       o->backup, skipped_branch ? " or lies on another timeline branch" : "");
	return err_set(DRE_ENOTFOUND, "no base backup finished before the target%s. HINT: 'dre wal-show' lists "
				      "the backups and when each can restore to",
		       skipped_branch ? " on the target timeline's history" : "");
}

/* Absent or empty (a restore may go there); a file or an unreadable directory is not. */
static bool dir_empty(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return true;
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

static void quote_conf(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	out[o++] = '\'';
	for (; *in && o + 3 < cap; in++) {
		if (*in == '\'')
			out[o++] = '\'';
		out[o++] = *in;
	}
	out[o++] = '\'';
	out[o] = '\0';
}

static const char *const recovery_keys[] = {
	"restore_command", "recovery_target", "recovery_target_time", "recovery_target_lsn",
	"recovery_target_xid", "recovery_target_name", "recovery_target_inclusive", "recovery_target_timeline",
	"recovery_target_action", NULL,
};

/* Whether a configuration file line sets key (PostgreSQL's names are case-insensitive); *value then points
 * after the key and its "=" or blanks. */
static bool line_sets(const char *line, const char *key, const char **value)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(key);
	if (strncasecmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '=' && line[n] != '\t'))
		return false;
	line += n;
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '=')
		line++;
	while (*line == ' ' || *line == '\t')
		line++;
	if (value != NULL)
		*value = line;
	return true;
}

static bool is_recovery_line(const char *line)
{
	for (const char *const *k = recovery_keys; *k; k++)
		if (line_sets(line, *k, NULL))
			return true;
	return false;
}

/* The value a configuration file line gives (quoted with '' escapes, or a bare word up to a blank or '#'). */
static void conf_value(const char *v, char *out, size_t cap)
{
	size_t o = 0;
	if (*v == '\'') {
		for (v++; *v && !(*v == '\'' && v[1] != '\''); v++) {
			if (*v == '\'')
				v++;
			if (o + 1 < cap)
				out[o++] = *v;
		}
	} else {
		for (; *v && !strchr(" \t\r\n#", *v); v++)
			if (o + 1 < cap)
				out[o++] = *v;
	}
	out[o] = '\0';
}

/* The last setting of key in pgdata's postgresql.conf, then postgresql.auto.conf; out stays as it is where
 * neither sets it. */
static void conf_lookup(const char *pgdata, const char *key, char *out, size_t cap)
{
	static const char *const files[] = {"postgresql.conf", "postgresql.auto.conf"};
	for (size_t i = 0; i < 2; i++) {
		char path[4200], line[8192];
		const char *v;
		snprintf(path, sizeof path, "%s/%s", pgdata, files[i]);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof line, f))
			if (line_sets(line, key, &v))
				conf_value(v, out, cap);
		fclose(f);
	}
}

static int write_small_file(const char *path, const char *text, uid_t uid, gid_t gid)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.dre-tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys("cannot create %s", tmp);
	size_t len = strlen(text);
	int rc = 0;
	if (write(fd, text, len) != (ssize_t)len)
		rc = err_sys("cannot write %s", tmp);
	if (rc == 0 && fsync(fd) < 0)
		rc = err_sys("cannot write %s", tmp);
	if (geteuid() == 0 && fchown(fd, uid, gid) < 0 && rc == 0)
		rc = err_sys("cannot give %s to its owner", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = err_sys("cannot rename %s to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* recovery.signal, and the recovery settings at the end of postgresql.auto.conf (earlier ones removed). */
static int write_recovery(const pg_restore_opts *o, const pg_restore_result *res, uid_t uid, gid_t gid)
{
	char path[4200], q[8192];
	buf out = {0};
	snprintf(path, sizeof path, "%s/postgresql.auto.conf", o->pgdata);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		char line[8192];
		while (fgets(line, sizeof line, f))
			if (!is_recovery_line(line) &&
			    !(o->archive_mode == PG_ARCHIVE_OFF && line_sets(line, "archive_mode", NULL)))
				buf_put(&out, line, strlen(line));
		fclose(f);
	}
	char hex[2 * CRYPTO_ID_LEN + 1], add[16384];
	hex_encode(res->id, CRYPTO_ID_LEN, hex);
	size_t n = (size_t)snprintf(add, sizeof add, "# recovery settings written by dre pg-restore from base backup %.16s\n",
				    hex);
	quote_conf(o->restore_command, q, sizeof q);
	n += (size_t)snprintf(add + n, sizeof add - n, "restore_command = %s\n", q);
	if (o->target == PG_TARGET_TIME) {
		time_t t = (time_t)(o->time_ns / 1000000000);
		struct tm tm;
		char ts[64];
		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(add + n, sizeof add - n, "recovery_target_time = '%s.%06ld+00'\n", ts,
				      (long)(o->time_ns % 1000000000 / 1000));
	} else if (o->target == PG_TARGET_LSN) {
		char lsn[24];
		wal_lsn_format(o->lsn, lsn);
		n += (size_t)snprintf(add + n, sizeof add - n, "recovery_target_lsn = '%s'\n", lsn);
	}
	if (o->timeline)
		n += (size_t)snprintf(add + n, sizeof add - n, "recovery_target_timeline = '%u'\n", o->timeline);
	else
		n += (size_t)snprintf(add + n, sizeof add - n, "recovery_target_timeline = 'latest'\n");
	if (o->target != PG_TARGET_LATEST)
		n += (size_t)snprintf(add + n, sizeof add - n, "recovery_target_action = 'promote'\n");
	if (o->archive_mode == PG_ARCHIVE_OFF)
		n += (size_t)snprintf(add + n, sizeof add - n,
				      "# dre pg-restore --archive-mode off: this cluster must not archive into the "
				      "backed-up cluster's archive\narchive_mode = 'off'\n");
	buf_put(&out, add, n);
	buf_u8(&out, 0);
	int rc = buf_check(&out, "postgresql.auto.conf");
	if (rc == 0)
		rc = write_small_file(path, (const char *)out.data, uid, gid);
	buf_free(&out);
	snprintf(path, sizeof path, "%s/recovery.signal", o->pgdata);
	if (rc == 0)
		rc = write_small_file(path, "", uid, gid);
	return rc;
}

/* Tablespaces go back to where they were (as pgBackRest does), or where --tablespace-map says. */
struct tablespaces {
	size_t n;
	restore_relocation rl[64];
	char oid[64][16], prefix[64][32], dir[64][4096];
};

static int tablespaces_plan(const pg_restore_opts *o, const snapshot *s, struct tablespaces *ts)
{
	const char *map = snap_meta_get(s, "pg.tablespace-map");
	ts->n = 0;
	for (const char *line = map; line && *line;) {
		const char *eol = strchrnul(line, '\n'), *sp = memchr(line, ' ', (size_t)(eol - line));
		if (sp == NULL || sp == line || sp - line >= 16 || ts->n >= 64)
			return err_set(DRE_ECORRUPT, "base backup %s: cannot read its tablespace map", s->name);
		size_t i = ts->n++;
		snprintf(ts->oid[i], sizeof ts->oid[i], "%.*s", (int)(sp - line), line);
		snprintf(ts->dir[i], sizeof ts->dir[i], "%.*s", (int)(eol - sp - 1), sp + 1);
		if (o->tablespace_root != NULL) {
			char oid[16];
			memcpy(oid, ts->oid[i], sizeof oid);
			snprintf(ts->dir[i], sizeof ts->dir[i], "%.4000s/%s", o->tablespace_root, oid);
		}
		line = *eol ? eol + 1 : eol;
	}
	for (const char *m = o->tablespace_map; m && *m;) {
		const char *end = strchrnul(m, ','), *eq = memchr(m, '=', (size_t)(end - m));
		size_t i;
		if (eq == NULL)
			return err_set(DRE_EINVAL, "--tablespace-map: '%.*s' is not OID=DIR", (int)(end - m), m);
		for (i = 0; i < ts->n; i++)
			if (strlen(ts->oid[i]) == (size_t)(eq - m) && strncmp(ts->oid[i], m, (size_t)(eq - m)) == 0)
				break;
		if (i == ts->n)
			return err_set(DRE_EINVAL, "--tablespace-map: the backup has no tablespace %.*s", (int)(eq - m), m);
		snprintf(ts->dir[i], sizeof ts->dir[i], "%.*s", (int)(end - eq - 1), eq + 1);
		m = *end ? end + 1 : end;
	}
	for (size_t i = 0; i < ts->n; i++) {
		if (ts->dir[i][0] != '/')
			return err_set(DRE_EINVAL, "tablespace %s: '%s' is not an absolute path", ts->oid[i], ts->dir[i]);
		if (!dir_empty(ts->dir[i]) && !o->force)
			return err_set(DRE_EEXIST, "tablespace %s goes to %s, which is not empty: refusing to restore over "
						   "it. HINT: --tablespace-map %s=NEWDIR, or --force",
				       ts->oid[i], ts->dir[i], ts->oid[i]);
		snprintf(ts->prefix[i], sizeof ts->prefix[i], "pg_tblspc/%s", ts->oid[i]);
		ts->rl[i] = (restore_relocation){ts->prefix[i], ts->dir[i]};
	}
	return 0;
}

static int tablespaces_link(const pg_restore_opts *o, const struct tablespaces *ts, uid_t uid, gid_t gid)
{
	for (size_t i = 0; i < ts->n; i++) {
		char link[4200];
		snprintf(link, sizeof link, "%s/%s", o->pgdata, ts->prefix[i]);
		unlink(link);
		if (symlink(ts->dir[i], link) < 0)
			return err_sys("cannot link %s to tablespace directory %s", link, ts->dir[i]);
		if (geteuid() == 0 && (lchown(link, uid, gid) < 0 || chown(ts->dir[i], uid, gid) < 0))
			return err_sys("cannot give tablespace %s to its owner", ts->dir[i]);
	}
	return 0;
}

int engine_pg_restore(repo *r, const pg_restore_opts *o, pg_restore_result *res)
{
	struct tablespaces *ts = NULL; /* 64 paths: on the heap */
	struct candidates c = {0};
	wal_archive a = {0};
	struct tl_path path;
	uint64_t sysid = 0;
	size_t chosen = 0;
	memset(res, 0, sizeof *res);

	if (!dir_empty(o->pgdata) && !o->force)
		return err_set(DRE_EEXIST, "%s is not empty: refusing to restore over it. HINT: restore into a new "
					   "directory, or give --force to write over what is there",
			       o->pgdata);
	char pid[4200];
	snprintf(pid, sizeof pid, "%s/postmaster.pid", o->pgdata);
	if (access(pid, F_OK) == 0)
		return err_set(DRE_EEXIST, "%s holds postmaster.pid: stop the PostgreSQL server that uses it (or "
					   "remove the stale file) before restoring",
			       o->pgdata);
	int rc = choose_backup(r, o, &c, &sysid);
	if (rc == 0)
		rc = wal_archive_load(r, sysid, &a);
	const wal_system *s = rc == 0 ? wal_archive_system(&a, sysid) : NULL;
	if (rc == 0 && s == NULL)
		rc = err_set(DRE_ENOTFOUND, "the archive holds no WAL of system %" PRIu64 ": nothing to recover with",
			     sysid);
	if (rc == 0) {
		res->target_timeline = o->timeline ? o->timeline : latest_timeline(s);
		rc = tl_path_load(r, sysid, res->target_timeline, &path);
	}
	if (rc == 0)
		rc = pick(o, &c, &path, &chosen);
	const snapshot *snap = rc == 0 ? &c.l.items[chosen] : NULL;
	if (rc == 0) {
		res->info = c.info[chosen];
		memcpy(res->id, snap->id, CRYPTO_ID_LEN);
		rc = wal_check(r, o, s, &path, &res->info, res);
	}
	if (rc == 0 && (ts = calloc(1, sizeof *ts)) == NULL)
		rc = err_set(DRE_ENOMEM, "cannot plan the tablespaces");
	if (rc == 0)
		rc = tablespaces_plan(o, snap, ts);
	if (rc == 0) {
		restore_opts ro = {.target = o->pgdata, .relocate = ts->rl, .nrelocate = ts->n, .out_fd = -1,
				   .threads = o->threads, .hooks = o->hooks,
				   .overwrite = o->force ? RESTORE_ALWAYS : RESTORE_REFUSE};
		rc = engine_restore(r, snap, &ro, &res->restore);
	}
	/* the cluster's owner: the restored global/ directory has it (restore sets owners when run as root) */
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char global[4200];
	struct stat gst;
	snprintf(global, sizeof global, "%s/global", o->pgdata);
	if (rc == 0 && stat(global, &gst) == 0) {
		uid = gst.st_uid;
		gid = gst.st_gid;
	}
	/* PostgreSQL refuses a data directory that others can read */
	if (rc == 0 && chmod(o->pgdata, 0700) < 0)
		rc = err_sys("cannot set the mode of %s", o->pgdata);
	if (rc == 0 && geteuid() == 0 && chown(o->pgdata, uid, gid) < 0)
		rc = err_sys("cannot give %s to its owner", o->pgdata);
	if (rc == 0)
		rc = tablespaces_link(o, ts, uid, gid);
	if (rc == 0) {
		conf_lookup(o->pgdata, "archive_mode", res->archive_mode_found, sizeof res->archive_mode_found);
		conf_lookup(o->pgdata, "archive_command", res->archive_command_found,
			    sizeof res->archive_command_found);
		rc = write_recovery(o, res, uid, gid);
	}
	free(ts);
	wal_archive_free(&a);
	snap_list_free(&c.l);
	free(c.info);
	return rc;
}

/* ---- wal-show ---- */

int pg_status_build(repo *r, const snap_list *l, pg_status *out)
{
	memset(out, 0, sizeof *out);
	TRY(wal_archive_load(r, 0, &out->archive));
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		const snapshot *s = &l->items[i];
		pg_base_info in;
		if (s->kind != SNAP_PG_BASE || pg_base_info_get(s, &in) < 0)
			continue;
		void *p = realloc(out->backups, (out->nbackups + 1) * sizeof *out->backups);
		if (p == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot list base backups");
			break;
		}
		out->backups = p;
		pg_backup_entry *e = &out->backups[out->nbackups++];
		memset(e, 0, sizeof *e);
		memcpy(e->id, s->id, CRYPTO_ID_LEN);
		snprintf(e->name, sizeof e->name, "%s", s->name);
		e->info = in;
		e->wal_complete = true;
		const wal_timeline *t = wal_system_timeline(wal_archive_system(&out->archive, in.system_id), in.timeline);
		uint64_t last = wal_lsn_segno(in.stop_lsn - 1, in.seg_size);
		for (uint64_t sn = wal_lsn_segno(in.start_lsn, in.seg_size); sn <= last; sn++)
			if (!wal_timeline_has(t, sn)) {
				e->wal_complete = false;
				wal_segment_name(in.timeline, sn, in.seg_size, e->wal_missing);
				break;
			}
	}
	if (rc < 0)
		pg_status_free(out);
	return rc;
}

int engine_pg_status(repo *r, pg_status *out)
{
	snap_list l;
	memset(out, 0, sizeof *out);
	TRY(snap_list_load(r, &l, NULL, NULL));
	int rc = pg_status_build(r, &l, out);
	snap_list_free(&l);
	return rc;
}

void pg_status_free(pg_status *s)
{
	wal_archive_free(&s->archive);
	free(s->backups);
	memset(s, 0, sizeof *s);
}

/* ---- the archive as wal-show and monitoring see it ---- */

static bool archived_anywhere(const wal_system *s, uint64_t segno)
{
	for (size_t k = 0; k < s->ntl; k++)
		if (wal_timeline_has(&s->tls[k], segno))
			return true;
	return false;
}

int pg_sys_view_make(const pg_status *st, const wal_system *s, pg_sys_view *v)
{
	memset(v, 0, sizeof *v);
	v->b = calloc(st->nbackups ? st->nbackups : 1, sizeof *v->b);
	v->idx = calloc(st->nbackups ? st->nbackups : 1, sizeof *v->idx);
	if (v->b == NULL || v->idx == NULL) {
		free(v->b);
		free(v->idx);
		return err_set(DRE_ENOMEM, "cannot show the WAL archive");
	}
	for (size_t i = 0; i < st->nbackups; i++) {
		const pg_base_info *in = &st->backups[i].info;
		if (in->system_id != s->system_id)
			continue;
		v->idx[v->n] = i;
		v->b[v->n++] = (wal_expire_backup){.start_segno = wal_lsn_segno(in->start_lsn, in->seg_size),
						   .stop_segno = wal_lsn_segno(in->stop_lsn - 1, in->seg_size),
						   .time_ns = in->start_ns, .stop_ns = in->stop_ns, .on_path = true};
	}
	v->first_free = UINT64_MAX;
	for (size_t k = 0; k < s->ntl; k++) {
		const wal_timeline *t = &s->tls[k];
		uint64_t ff = wal_expire_first_free(t->segnos, t->nseg, v->b, v->n);
		if (ff < v->first_free)
			v->first_free = ff;
		if (t->nseg && (!v->any || t->segnos[t->nseg - 1] >= v->last)) {
			v->any = true;
			v->last = t->segnos[t->nseg - 1];
			v->last_tli = t->tli;
		}
	}
	v->run_from = v->last;
	while (v->any && v->run_from > 0 && archived_anywhere(s, v->run_from - 1))
		v->run_from--;
	return 0;
}

void pg_sys_view_free(pg_sys_view *v)
{
	free(v->b);
	free(v->idx);
}

uint64_t pg_sys_view_missing(const pg_sys_view *v, const wal_timeline *t, size_t *gaps)
{
	uint64_t missing = 0;
	for (size_t i = 1; i < t->nseg; i++) {
		uint64_t from = t->segnos[i - 1] + 1, to = t->segnos[i] - 1;
		if (t->segnos[i] == from || wal_expire_gap_expired(from, to, v->first_free, v->b, v->n))
			continue;
		missing += to - from + 1;
		if (gaps != NULL)
			(*gaps)++;
	}
	return missing;
}

int pg_status_missing(const pg_status *st, uint64_t *segments, size_t *backups_missing_wal)
{
	*segments = 0;
	*backups_missing_wal = 0;
	for (size_t i = 0; i < st->archive.n; i++) {
		const wal_system *s = &st->archive.sys[i];
		pg_sys_view v;
		TRY(pg_sys_view_make(st, s, &v));
		for (size_t k = 0; k < s->ntl; k++)
			*segments += pg_sys_view_missing(&v, &s->tls[k], NULL);
		pg_sys_view_free(&v);
	}
	for (size_t i = 0; i < st->nbackups; i++)
		*backups_missing_wal += !st->backups[i].wal_complete;
	return 0;
}
