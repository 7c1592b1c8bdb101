/*
 * drillbase.c — the drill of a base backup and its WAL (drill.h).
 *
 *   fetch    pg-restore into SCRATCH/data (the backup pg-restore chooses for the target, tablespaces under
 *            SCRATCH/tblspc, --archive-mode off), then every WAL segment recovery will read, from the backup's
 *            start along the target timeline's history, into SCRATCH/wal: the history files of the timelines
 *            on the way, and the segments up to the end of the archive, or for a time target up to the first one
 *            whose last transaction is after it (recovery stops in it)
 *   replay   a private postgres on it, restore_command = cp from SCRATCH/wal; it replays to the target and
 *            promotes (or, with latest, to the end of the WAL); PQping tells when it accepts connections
 *   verify   pg_amcheck --all --install-missing where installed, else COPY of every table to /dev/null in every
 *            database (every tuple read and detoasted)
 *   checks   --sql in checks_db, --exec
 *
 * Prefetching keeps the repository's password out of the scratch postgres (its restore_command needs none) and
 * makes replay pure replay, which is what the phase measures.
 */
#include "engine/drill/drillint.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/pg/pq.h"

struct base_out {
	pg_restore_result res;
	uint64_t wal_segments, wal_bytes;
	char name[256];
	int64_t time_ns;
};

/* The timeline whose file recovery reads for segment segno (as pg-restore's own check reads the path). */
static uint32_t path_tli(const wal_history *h, uint32_t target, uint64_t segno, uint32_t seg_size)
{
	for (size_t i = h->n; i-- > 0;)
		if (segno >= wal_lsn_segno(h->ends[i], seg_size))
			return i + 1 < h->n ? h->tlis[i + 1] : target;
	return h->n > 0 ? h->tlis[0] : target;
}

static int fetch_one(struct drill *d, uint64_t sysid, const char *wal, const char *name, struct base_out *out)
{
	char dest[4300];
	struct stat st;
	snprintf(dest, sizeof dest, "%s/%s", wal, name);
	TRY(engine_wal_fetch(d->r, name, dest, NULL, sysid));
	if (stat(dest, &st) == 0)
		out->wal_bytes += (uint64_t)st.st_size;
	return 0;
}

static int fetch_wal(struct drill *d, const char *wal, struct base_out *out)
{
	const pg_restore_result *res = &out->res;
	const pg_base_info *in = &res->info;
	wal_history h;
	wal_name last;
	TRY(wal_history_load(d->r, in->system_id, res->target_timeline, &h));
	if (mkdir(wal, 0700) < 0)
		return err_sys("cannot create %s", wal);
	for (size_t i = 0; i <= h.n; i++) {
		uint32_t tli = i < h.n ? h.tlis[i] : res->target_timeline;
		char name[WAL_NAME_MAX];
		if (tli == 1)
			continue;
		snprintf(name, sizeof name, "%08X.history", tli);
		int rc = fetch_one(d, in->system_id, wal, name, out);
		if (rc == DRE_ENOTFOUND && tli != res->target_timeline)
			continue; /* the target's own history file lists the whole ancestry */
		TRY(rc);
	}
	if (res->wal_last[0] == '\0' || wal_name_parse(res->wal_last, &last) < 0)
		return err_set(DRE_ENOTFOUND, "no WAL archived from base backup %s on", in->start_wal);
	uint64_t first = wal_lsn_segno(in->start_lsn, in->seg_size), stop = wal_lsn_segno(in->stop_lsn - 1, in->seg_size);
	uint64_t end = wal_name_segno(&last, in->seg_size);
	for (uint64_t sn = first; sn <= end; sn++) {
		char name[WAL_NAME_MAX];
		wal_segment_name(path_tli(&h, res->target_timeline, sn, in->seg_size), sn, in->seg_size, name);
		TRY(fetch_one(d, in->system_id, wal, name, out));
		out->wal_segments++;
		if (d->o->target == PG_TARGET_TIME && sn > stop) {
			int64_t pushed, last_xact;
			uint64_t size;
			TRY(wal_object_info(d->r, in->system_id, name, &pushed, &last_xact, &size));
			if (last_xact > d->o->time_ns)
				break; /* recovery stops at this segment's first commit after the target */
		}
	}
	return 0;
}

struct base_paths {
	char data[4200], wal[4200], tblspc[4200], command[9000];
};

static int fetch_base(struct drill *d, void *arg, void *outp)
{
	const struct base_paths *p = arg;
	struct base_out *out = outp;
	pg_restore_opts po = {.pgdata = p->data,
			      .name = d->o->base_name,
			      .target = d->o->target,
			      .time_ns = d->o->time_ns,
			      .restore_command = p->command,
			      .tablespace_root = p->tblspc,
			      .archive_mode = PG_ARCHIVE_OFF,
			      .threads = d->o->threads,
			      .hooks = d->o->hooks};
	TRY(engine_pg_restore(d->r, &po, &out->res));
	char hex[2 * CRYPTO_ID_LEN + 1];
	snapshot s;
	hex_encode(out->res.id, CRYPTO_ID_LEN, hex);
	if (snap_find(d->r, hex, -1, &s) == 0) {
		snprintf(out->name, sizeof out->name, "%s", s.name);
		out->time_ns = s.time_ns;
		snap_free(&s);
	}
	return fetch_wal(d, p->wal, out);
}

/* Nothing of the backed-up cluster's replication slots comes back (pg-backup leaves them out; this makes sure). */
static int empty_replslot(const char *data)
{
	char dir[4300];
	snprintf(dir, sizeof dir, "%s/pg_replslot", data);
	DIR *dh = opendir(dir);
	if (dh == NULL)
		return 0;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(dh)) != NULL) {
		char path[4600];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		rc = drill_rmtree(path);
	}
	closedir(dh);
	return rc;
}

static int recovered(struct drill *d)
{
	drill_report *rep = d->rep;
	PGconn *c;
	PGresult *res = NULL;
	TRY(drill_pg_connect(d, "postgres", &c));
	int rc = 0;
	for (;;) { /* hot_standby is off: it accepts connections only once promoted; this is the proof */
		rc = drill_pg_exec(d, c, "reading where recovery ended",
				   "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
				   "(extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000000)::bigint, "
				   "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
				   &res);
		if (rc == 0 && (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1))
			rc = pq_fail(c, "reading where recovery ended");
		if (rc < 0 || strcmp(PQgetvalue(res, 0, 0), "f") == 0)
			break;
		PQclear(res);
		res = NULL;
		if ((rc = drill_sleep(d, 100)) < 0)
			break;
	}
	if (rc == 0) {
		uint64_t lsn = 0;
		snprintf(rep->recovered_lsn, sizeof rep->recovered_lsn, "%s", PQgetvalue(res, 0, 1));
		if (!PQgetisnull(res, 0, 1) && wal_lsn_parse(rep->recovered_lsn, &lsn) == 0 &&
		    lsn > rep->base.info.start_lsn)
			rep->wal_replayed = lsn - rep->base.info.start_lsn;
		if (!PQgetisnull(res, 0, 2))
			rep->recovered_to_ns = strtoll(PQgetvalue(res, 0, 2), NULL, 10) * 1000;
		rep->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}

/* ---- verify ---- */

static int amcheck(struct drill *d)
{
	char exe[4200], port[16], jobs[16], log[4200], why[2048];
	int status;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(exe, sizeof exe, "%s/pg_amcheck", d->bindir);
	snprintf(port, sizeof port, "%d", DRILL_PG_PORT);
	snprintf(jobs, sizeof jobs, "%d", d->o->jobs > 0 ? d->o->jobs : ncpu > 0 ? (int)ncpu : 1);
	snprintf(log, sizeof log, "%s/pg_amcheck.log", d->scratch);
	char *argv[] = {exe, "--host", d->scratch, "--port", port, "--username", "postgres", "--all",
			"--install-missing", "--jobs", jobs, NULL};
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = log, .as_user = true, .private_env = true,
		       .own_group = true};
	snprintf(d->rep->verify_method, sizeof d->rep->verify_method, "pg_amcheck");
	TRY(drill_run(d, &c, &status));
	if (status != 0) /* 2: a check found corruption; 1: it could not check */
		drill_log_tail(log, NULL, why, sizeof why);
	if (status == 2)
		return err_set(DRE_ECORRUPT, "pg_amcheck found corruption in the restored cluster: %s",
			       why[0] ? why : "no message");
	if (status != 0)
		return err_set(DRE_EIO, "pg_amcheck could not check the restored cluster (exit %d): %s", status,
			       why[0] ? why : "no message");
	return 0;
}

static int read_database(struct drill *d, const char *db)
{
	PGconn *c;
	PGresult *res = NULL;
	TRY(drill_pg_connect(d, db, &c));
	int rc = drill_pg_exec(d, c, "listing the tables",
			       "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
			       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' ORDER BY 1",
			       &res);
	if (rc == 0 && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pq_fail(c, "listing the tables");
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		char *sql = NULL, what[600];
		snprintf(what, sizeof what, "reading table %s of database %s", PQgetvalue(res, i, 0), db);
		if (asprintf(&sql, "COPY %s TO '/dev/null'", PQgetvalue(res, i, 0)) < 0)
			rc = err_set(DRE_ENOMEM, "%s", what);
		PGresult *r = NULL;
		if (rc == 0)
			rc = drill_pg_exec(d, c, what, sql, &r);
		if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = err_set(DRE_ECORRUPT, "%s: %.*s", what, (int)strcspn(PQresultErrorMessage(r), "\n"),
				     PQresultErrorMessage(r));
		PQclear(r);
		free(sql);
		if (rc == 0)
			d->rep->tables_read++;
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}

static int verify(struct drill *d)
{
	PGconn *c;
	PGresult *res = NULL;
	char exe[4200];
	TRY(drill_pg_connect(d, "postgres", &c));
	int rc = drill_pg_exec(d, c, "listing the databases",
			       "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1", &res);
	if (rc == 0 && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pq_fail(c, "listing the databases");
	PQfinish(c);
	if (rc == 0)
		d->rep->databases_verified = (size_t)PQntuples(res);
	snprintf(exe, sizeof exe, "%s/pg_amcheck", d->bindir);
	if (rc == 0 && access(exe, X_OK) == 0) {
		rc = amcheck(d);
	} else if (rc == 0) {
		snprintf(d->rep->verify_method, sizeof d->rep->verify_method, "full read");
		for (int i = 0; rc == 0 && i < PQntuples(res); i++)
			rc = read_database(d, PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return rc;
}

/* ---- the drill ---- */

int drill_base(struct drill *d)
{
	drill_report *rep = d->rep;
	struct base_paths p = {0};
	struct base_out out = {0};
	char conf[4096], ci[8192];
	snprintf(p.data, sizeof p.data, "%s/data", d->scratch);
	snprintf(p.wal, sizeof p.wal, "%s/wal", d->scratch);
	snprintf(p.tblspc, sizeof p.tblspc, "%s/tblspc", d->scratch);
	snprintf(p.command, sizeof p.command, "cp ");
	pg_command_quote(p.command, sizeof p.command, p.wal); /* a '%' of the path doubled; %f and %p are PostgreSQL's */
	snprintf(p.command + strlen(p.command), sizeof p.command - strlen(p.command), "/%%f %%p");

	drill_phase_begin(d, DRILL_FETCH);
	int rc = drill_in_child(d, fetch_base, &p, &out, sizeof out);
	drill_phase_end(d, DRILL_FETCH);
	rep->base = out.res;
	memcpy(rep->id, out.res.id, CRYPTO_ID_LEN);
	snprintf(rep->name, sizeof rep->name, "%s", out.name);
	rep->snap_time_ns = out.time_ns;
	rep->wal_segments_fetched = out.wal_segments;
	rep->wal_bytes_fetched = out.wal_bytes;
	rep->bytes_restored = out.res.restore.bytes + out.wal_bytes;
	rep->files_restored = out.res.restore.files;
	TRY(rc);

	/* the server's own programs, of the backup's major version (13 and later: version / 10000) */
	TRY(drill_pg_bindir(d, "postgres", (int)(out.res.info.version / 10000), false));
	size_t n = strlen(rep->server);
	snprintf(rep->server + n, sizeof rep->server - n, ", private instance");
	TRY(empty_replslot(p.data));
	TRY(drill_pg_safe_conf(d, conf, sizeof conf));
	char auto_conf[4300];
	snprintf(auto_conf, sizeof auto_conf, "%s/postgresql.auto.conf", p.data);
	/* after pg-restore's lines, so they win for anyone who starts this directory by hand (--keep) */
	TRY(drill_write_file(d, auto_conf, conf, true));
	TRY(drill_chown_tree(d, d->scratch));

	drill_phase_begin(d, DRILL_REPLAY);
	rc = drill_pg_start(d, p.data, true);
	if (rc == 0)
		rc = recovered(d);
	drill_phase_end(d, DRILL_REPLAY);
	TRY(rc);

	drill_phase_begin(d, DRILL_VERIFY);
	rc = verify(d);
	drill_phase_end(d, DRILL_VERIFY);
	TRY(rc);

	if (d->o->checks == NULL && d->o->exec == NULL)
		return 0;
	const char *db = d->o->checks_db ? d->o->checks_db : "postgres";
	drill_phase_begin(d, DRILL_CHECKS);
	rc = drill_sql_run(d, db);
	if (rc == 0 && d->o->exec != NULL && (rc = drill_pg_conninfo(d, db, ci, sizeof ci)) == 0)
		rc = drill_exec(d, d->scratch, ci);
	drill_phase_end(d, DRILL_CHECKS);
	return rc;
}
