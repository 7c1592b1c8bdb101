/*
 * cmd_drill.c — `dre drill`: restore drills (engine/drill/drill.h). Parses the options and the --sql file
 * before asking for the password, turns SIGINT, SIGTERM and SIGHUP into the engine's cancel flag for the
 * drill's duration (so it stops and cleans up), and prints the report — also when the drill failed, since the
 * report says what failed.
 */
#include "cli/cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/drill/drill.h"

/* The exit status of a drill that passed every check but took longer than --rto. */
#define CLI_EXIT_RTO 8

enum { D_PG, D_TIME, D_LATEST, D_DBNAME, D_SQL, D_SQL_DB, D_EXEC, D_SCRATCH, D_BINDIR, D_RUN_AS, D_JOBS, D_RTO,
       D_TIMEOUT, D_KEEP };
static const cli_opt drill_table[] = {
	{"pg", 0, false},      {"time", 0, true},      {"latest", 0, false},  {"dbname", 'd', true},
	{"sql", 0, true},      {"sql-db", 0, true},    {"exec", 0, true},     {"scratch", 0, true},
	{"pg-bindir", 0, true}, {"run-as", 0, true},   {"jobs", 'j', true},   {"rto", 0, true},
	{"timeout", 0, true},  {"keep", 0, false},     {0},
};

#define TIMEOUT_DEFAULT (24 * 3600.0)

struct drill_job {
	drill_opts o;
	drill_checks checks;
	const char *what;     /* the snapshot (not --pg) */
	int64_t before_ns;
};

/* ---- durations ---- */

/* "15m", "900s", "1h30m", "2d", "90" (seconds): a sum of numbers with units s, m, h, d. */
static int parse_duration(const char *opt, const char *text, double *out)
{
	double total = 0;
	const char *p = text;
	if (*p == '\0')
		return cli_usage("--%s: empty duration", opt);
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		if (end == p || v < 0 || !isfinite(v))
			return cli_usage("--%s: '%s' is not a duration such as 900s, 15m, 1h30m or 2d", opt, text);
		double unit = 1;
		switch (*end) {
		case 's': unit = 1; end++; break;
		case 'm': unit = 60; end++; break;
		case 'h': unit = 3600; end++; break;
		case 'd': unit = 86400; end++; break;
		case '\0': break;
		default: return cli_usage("--%s: '%s' is not a duration such as 900s, 15m, 1h30m or 2d", opt, text);
		}
		total += v * unit;
		p = end;
	}
	if (total <= 0)
		return cli_usage("--%s: the duration must be more than 0", opt);
	*out = total;
	return 0;
}

static void fmt_duration(double s, char out[32])
{
	long whole = (long)s;
	if (s >= 3600)
		snprintf(out, 32, "%ldh%02ldm%02lds", whole / 3600, whole / 60 % 60, whole % 60);
	else if (s >= 60)
		snprintf(out, 32, "%ldm%02lds", whole / 60, whole % 60);
	else
		snprintf(out, 32, "%.2f s", s);
}

/* ---- signals: stop and clean up ---- */

static volatile sig_atomic_t drill_signal;
static const int guarded[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction saved_actions[3];

static void on_signal(int sig)
{
	drill_signal = sig;
}

static void guard_start(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: sleeps and waits return at once */
	sigemptyset(&sa.sa_mask);
	drill_signal = 0;
	for (int i = 0; i < 3; i++) {
		sigaction(guarded[i], NULL, &saved_actions[i]);
		if (saved_actions[i].sa_handler != SIG_IGN)
			sigaction(guarded[i], &sa, NULL);
	}
}

static void guard_end(void)
{
	for (int i = 0; i < 3; i++)
		sigaction(guarded[i], &saved_actions[i], NULL);
}

/* ---- the report ---- */

static const char *kind_text(enum drill_kind k)
{
	return k == DRILL_DUMP ? "pg-dump" : k == DRILL_BASE ? "base backup" : "snapshot";
}

static json_t *report_json(const drill_opts *o, const drill_report *rep)
{
	char id[2 * CRYPTO_ID_LEN + 1], when[40];
	hex_encode(rep->id, CRYPTO_ID_LEN, id);
	json_t *phases = json_array();
	for (int p = 0; p < DRILL_NPHASES; p++)
		if (rep->phase[p].ran)
			json_array_append_new(phases, json_pack("{s:s, s:f, s:b}", "name", drill_phase_name(p), "seconds",
								rep->phase[p].seconds, "failed", p == rep->failed_phase));
	json_t *j = json_pack("{s:b, s:s, s:s, s:s, s:o, s:f, s:o, s:b, s:I, s:I, s:s?, s:b, s:s?}", "passed",
			      rep->passed, "kind",
			      rep->kind == DRILL_DUMP ? "pg-dump" : rep->kind == DRILL_BASE ? "pg-base" : "files",
			      "id", id, "name", rep->name, "phases", phases, "rto_seconds", rep->rto,
			      "rto_limit_seconds", rep->rto_limit > 0 ? json_real(rep->rto_limit) : json_null(),
			      "rto_exceeded", rep->rto_exceeded, "bytes_restored", (json_int_t)rep->bytes_restored,
			      "files_restored", (json_int_t)rep->files_restored, "scratch",
			      rep->scratch[0] ? rep->scratch : NULL, "scratch_kept", rep->kept, "error", rep->failure);
	if (rep->snap_time_ns) {
		fmt_time_utc(rep->snap_time_ns, when);
		json_object_set_new(j, "snapshot_time", json_string(when));
	}
	if (rep->server[0])
		json_object_set_new(j, "server", json_string(rep->server));
	if (rep->kind == DRILL_DUMP) {
		json_t *mm = json_array();
		for (size_t i = 0; i < rep->nmismatches; i++) {
			const drill_mismatch *m = &rep->mismatches[i];
			json_array_append_new(mm, json_pack("{s:s, s:s, s:I, s:o}", "schema", m->schema, "table", m->table,
							    "recorded", (json_int_t)m->recorded, "found",
							    m->found < 0 ? json_null() : json_integer(m->found)));
		}
		json_object_set_new(j, "database", json_string(rep->database));
		json_object_set_new(j, "globals_restored", json_boolean(rep->globals_restored));
		json_object_set_new(
			j, "tables",
			json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "count", pg_count_name(rep->dump.count), "recorded",
				  (json_int_t)rep->dump.ntables, "compared", (json_int_t)rep->tables_compared, "not_counted",
				  (json_int_t)rep->tables_not_counted, "not_in_dump", (json_int_t)rep->tables_not_in_dump,
				  "mismatched", (json_int_t)rep->nmismatches, "mismatches", mm));
	}
	if (rep->kind == DRILL_BASE) {
		char stop[40], rec[40], target[40] = "";
		fmt_time_utc(rep->base.info.stop_ns, stop);
		if (o->target == PG_TARGET_TIME)
			fmt_time_utc(o->time_ns, target);
		if (rep->recovered_to_ns)
			fmt_time_utc(rep->recovered_to_ns, rec);
		json_object_set_new(
			j, "recovery",
			json_pack("{s:s, s:s?, s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:i}", "target",
				  o->target == PG_TARGET_TIME ? "time" : "latest", "target_time",
				  target[0] ? target : NULL, "backup_start_wal", rep->base.info.start_wal, "backup_end",
				  stop, "recovered_to", rep->recovered_to_ns ? rec : NULL, "recovered_lsn",
				  rep->recovered_lsn[0] ? rep->recovered_lsn : NULL, "wal_replayed_bytes",
				  (json_int_t)rep->wal_replayed, "wal_segments_fetched",
				  (json_int_t)rep->wal_segments_fetched, "wal_bytes_fetched",
				  (json_int_t)rep->wal_bytes_fetched, "timeline", (int)rep->timeline));
		json_object_set_new(j, "verify",
				    json_pack("{s:s?, s:I, s:I}", "method",
					      rep->verify_method[0] ? rep->verify_method : NULL, "databases",
					      (json_int_t)rep->databases_verified, "tables_read", (json_int_t)rep->tables_read));
	}
	json_t *checks = json_array();
	for (size_t i = 0; i < rep->nchecks; i++) {
		const drill_check_result *c = &rep->checks[i];
		char expect[300] = "";
		if (c->check->op[0])
			snprintf(expect, sizeof expect, "%s %s%s%s", c->check->op, c->check->text ? "'" : "",
				 c->check->value, c->check->text ? "'" : "");
		json_array_append_new(checks, json_pack("{s:i, s:s, s:s?, s:b, s:b, s:s?, s:s?, s:f}", "line",
							(int)c->check->line, "sql", c->check->sql, "expect",
							expect[0] ? expect : NULL, "ran", c->ran, "passed", c->passed,
							"got", c->got, "error", c->error, "seconds", c->seconds));
	}
	json_object_set_new(j, "checks", checks);
	if (o->exec != NULL)
		json_object_set_new(j, "exec", json_pack("{s:s, s:o}", "command", o->exec, "status",
							 rep->exec_status >= 0 ? json_integer(rep->exec_status) : json_null()));
	return j;
}

static void phase_line(const drill_opts *o, const drill_report *rep, int p)
{
	char size[32], detail[600] = "";
	switch (p) {
	case DRILL_FETCH:
		fmt_size(rep->bytes_restored, size);
		if (rep->kind == DRILL_BASE)
			snprintf(detail, sizeof detail, "%s: base backup (%zu files) and %llu WAL segments, hashes verified",
				 size, rep->files_restored, (unsigned long long)rep->wal_segments_fetched);
		else
			snprintf(detail, sizeof detail, "%s in %zu file%s, every hash verified", size, rep->files_restored,
				 rep->files_restored == 1 ? "" : "s");
		break;
	case DRILL_SETUP: snprintf(detail, sizeof detail, "%s", rep->server); break;
	case DRILL_RESTORE:
		snprintf(detail, sizeof detail, "pg_restore into database %s%s", rep->database,
			 rep->globals_restored ? ", roles from the globals" : ", without owners and privileges");
		break;
	case DRILL_REPLAY: {
		char rec[40] = "", replayed[32];
		fmt_size(rep->wal_replayed, replayed);
		if (rep->recovered_to_ns)
			fmt_time_utc(rep->recovered_to_ns, rec);
		snprintf(detail, sizeof detail, "%s of WAL replayed to %s%s%s, promoted to timeline %u", replayed,
			 rep->recovered_lsn[0] ? rep->recovered_lsn : "?", rec[0] ? ", last transaction " : "", rec,
			 rep->timeline);
		break;
	}
	case DRILL_VERIFY:
		if (rep->kind == DRILL_DUMP && rep->dump.count == PG_COUNT_NONE)
			snprintf(detail, sizeof detail, "rows not counted (the dump recorded no counts)");
		else if (rep->kind == DRILL_DUMP)
			snprintf(detail, sizeof detail, "%zu table%s compared with the %s counts at dump time%s, %zu differ%s",
				 rep->tables_compared, rep->tables_compared == 1 ? "" : "s",
				 rep->dump.count == PG_COUNT_EXACT ? "exact" : "estimated",
				 rep->tables_not_counted ? " (some never analysed: not counted)"
				 : rep->tables_not_in_dump ? " (others left out by pg_dump's options)" : "", rep->nmismatches,
				 rep->nmismatches == 1 ? "s" : "");
		else if (strcmp(rep->verify_method, "full read") == 0)
			snprintf(detail, sizeof detail, "full read of %zu tables in %zu databases (no pg_amcheck)",
				 rep->tables_read, rep->databases_verified);
		else
			snprintf(detail, sizeof detail, "%s of %zu databases", rep->verify_method, rep->databases_verified);
		break;
	case DRILL_CHECKS: {
		size_t n = 0, passed = 0, ran = 0;
		for (size_t i = 0; i < rep->nchecks; i++) {
			passed += rep->checks[i].passed;
			ran += rep->checks[i].ran;
		}
		if (rep->nchecks)
			n += (size_t)snprintf(detail, sizeof detail, "%zu of %zu SQL checks passed%s", passed, rep->nchecks,
					      ran < rep->nchecks ? " (the others did not finish)" : "");
		if (o->exec != NULL && n < sizeof detail)
			snprintf(detail + n, sizeof detail - n, "%s--exec %s", n ? "; " : "",
				 rep->exec_status < 0	 ? "did not finish"
				 : rep->exec_status == 0 ? "succeeded"
							 : "failed");
		break;
	}
	}
	if (p == rep->failed_phase)
		snprintf(detail, sizeof detail, "FAILED");
	printf("  %-8s %9.2f s  %s\n", drill_phase_name(p), rep->phase[p].seconds, detail);
}

static void report_text(const drill_opts *o, const drill_report *rep)
{
	char id[2 * CRYPTO_ID_LEN + 1], when[40] = "", rto[32], limit[32];
	hex_encode(rep->id, CRYPTO_ID_LEN, id);
	if (rep->snap_time_ns)
		fmt_time_utc(rep->snap_time_ns, when);
	printf("drill %s: %s %.8s", rep->passed ? "PASSED" : "FAILED", kind_text(rep->kind), rep->kind == DRILL_BASE &&
	       !rep->id[0] && !rep->id[1] ? "?" : id);
	if (rep->name[0])
		printf(" (%s%s%s)", rep->name, when[0] ? ", " : "", when);
	if (rep->kind == DRILL_BASE) {
		char target[40];
		if (o->target == PG_TARGET_TIME)
			fmt_time_utc(o->time_ns, target);
		printf(" to %s", o->target == PG_TARGET_TIME ? target : "the end of the archive");
	}
	printf("\n");
	for (int p = 0; p < DRILL_NPHASES; p++)
		if (rep->phase[p].ran)
			phase_line(o, rep, p);
	for (size_t i = 0; i < rep->nmismatches; i++) {
		const drill_mismatch *m = &rep->mismatches[i];
		if (m->found < 0)
			printf("  MISMATCH %s.%s: recorded %lld rows, missing after the restore\n", m->schema, m->table,
			       (long long)m->recorded);
		else
			printf("  MISMATCH %s.%s: recorded %lld rows, found %lld\n", m->schema, m->table,
			       (long long)m->recorded, (long long)m->found);
	}
	for (size_t i = 0; i < rep->nchecks; i++) {
		const drill_check_result *c = &rep->checks[i];
		if (c->ran && !c->passed)
			printf("  CHECK FAILED %s line %u: %s\n", o->checks->path, c->check->line, c->error);
	}
	fmt_duration(rep->rto, rto);
	if (rep->rto_limit > 0) {
		fmt_duration(rep->rto_limit, limit);
		printf("  RTO %s (limit %s%s)\n", rto, limit, rep->rto_exceeded ? ": EXCEEDED" : "");
	} else {
		printf("  RTO %s\n", rto);
	}
	if (rep->kept)
		printf("  scratch directory kept: %s\n", rep->scratch);
}

static void on_phase(void *arg, enum drill_phase p, bool done, double seconds)
{
	(void)arg;
	(void)seconds;
	if (!done)
		fprintf(stderr, "dre drill: %s...\n", drill_phase_name(p));
}

/* ---- the run ---- */

static int drill_go(cli_ctx *ctx, repo *r, struct drill_job *j)
{
	static char name[256];
	drill_report rep;
	cli_progress prog = {.verb = "restored"};
	j->o.hooks = cli_hooks(ctx, &prog);
	j->o.threads = ctx->threads;
	j->o.cancel = &drill_signal;
	if (!ctx->quiet && !ctx->json && isatty(STDERR_FILENO))
		j->o.phase = on_phase;
	guard_start();
	int rc = engine_drill(r, &j->o, &rep);
	guard_end();
	cli_progress_end(&prog);

	snprintf(name, sizeof name, "%s", rep.name[0] ? rep.name : j->what ? j->what : "pg");
	ctx->run.name = name;
	ctx->run.rto = rep.rto;
	ctx->run.mismatches = rep.tables_compared > 0 ? (int64_t)rep.nmismatches : -1;
	ctx->run.sized = rep.bytes_restored > 0;
	ctx->run.size = rep.bytes_restored;

	if (ctx->json)
		cli_print_json(stdout, report_json(&j->o, &rep));
	else if (!ctx->quiet || rc < 0)
		report_text(&j->o, &rep);
	drill_report_free(&rep);
	return rc;
}

static int drill_snapshot(cli_ctx *ctx, repo *r, const snapshot *s, void *arg)
{
	struct drill_job *j = arg;
	bool pg = s->kind == SNAP_PG_DUMP;
	if (!pg && (s->kind == SNAP_FILES || s->kind == SNAP_STREAM)) {
		if (j->o.checks != NULL)
			return cli_usage("--sql: snapshot %s holds %s; SQL checks are for PostgreSQL drills (use --exec)",
					 s->name, snap_kind_name(s->kind));
		if (j->o.conninfo != NULL)
			return cli_usage("--dbname: snapshot %s holds %s, not a pg-dump", s->name, snap_kind_name(s->kind));
	}
	j->o.snap = s;
	return drill_go(ctx, r, j);
}

static int drill_base_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	return drill_go(ctx, r, arg);
}

static int drill_exit(int rc)
{
	return rc == DRILL_ERTO ? CLI_EXIT_RTO : cli_exit_status(rc);
}

static int drill_run(cli_ctx *ctx, const cli_args *a)
{
	struct drill_job j = {.before_ns = -1};
	bool pg = a->opt[D_PG] != NULL;
	drill_opts *o = &j.o;
	if (pg) {
		TRY(cli_want_args(a, 0, 1, ""));
		o->base_name = a->npos ? a->pos[0] : NULL;
		if (a->opt[D_TIME] && a->opt[D_LATEST])
			return cli_usage("give one of --time and --latest");
		if (a->opt[D_DBNAME])
			return cli_usage("--dbname is for pg-dump drills: a --pg drill restores into a private instance");
		if (a->opt[D_TIME]) {
			o->target = PG_TARGET_TIME;
			TRY(cli_as_usage(engine_parse_time(a->opt[D_TIME], &o->time_ns)));
		}
	} else {
		TRY(cli_want_args(a, 1, 1, "the snapshot to drill: a name or an ID prefix (or --pg for base backups)"));
		j.what = a->pos[0];
		if (a->opt[D_LATEST])
			return cli_usage("--latest is for --pg drills (the newest snapshot of NAME is the default)");
		if (a->opt[D_SQL_DB])
			return cli_usage("--sql-db is for --pg drills: a pg-dump's checks run in the restored database");
		if (a->opt[D_TIME])
			TRY(cli_as_usage(engine_parse_time_until(a->opt[D_TIME], &j.before_ns)));
	}
	o->conninfo = a->opt[D_DBNAME];
	o->checks_db = a->opt[D_SQL_DB];
	o->exec = a->opt[D_EXEC];
	o->scratch = a->opt[D_SCRATCH];
	o->bindir = a->opt[D_BINDIR];
	o->run_as = a->opt[D_RUN_AS];
	o->keep = a->opt[D_KEEP] != NULL;
	o->timeout = TIMEOUT_DEFAULT;
	if (o->exec != NULL && *o->exec == '\0')
		return cli_usage("--exec: the command is empty");
	if (o->scratch != NULL && *o->scratch != '/')
		return cli_usage("--scratch: '%s' is not an absolute path", o->scratch);
	if (a->opt[D_JOBS]) {
		uint64_t v;
		TRY(cli_parse_uint("jobs", a->opt[D_JOBS], 64, &v)); /* the scratch instance allows 100 connections */
		if (v == 0)
			return cli_usage("--jobs: at least 1");
		o->jobs = (int)v;
	}
	if (a->opt[D_RTO])
		TRY(parse_duration("rto", a->opt[D_RTO], &o->rto_limit));
	if (a->opt[D_TIMEOUT])
		TRY(parse_duration("timeout", a->opt[D_TIMEOUT], &o->timeout));
	/* a broken check file is found before the password is asked and anything restored */
	if (a->opt[D_SQL]) {
		int rc = drill_sql_load(a->opt[D_SQL], &j.checks);
		if (rc == DRE_EINVAL)
			return cli_as_usage(rc);
		TRY(rc);
		o->checks = &j.checks;
	}
	int rc = pg ? cli_with_repo(ctx, drill_base_in_repo, &j)
		    : cli_with_snapshot(ctx, j.what, j.before_ns, drill_snapshot, &j);
	if (o->checks != NULL) {
		char saved[4096];
		snprintf(saved, sizeof saved, "%s", err_msg());
		drill_checks_free(&j.checks);
		if (rc < 0)
			err_set(rc, "%s", saved);
	}
	return rc;
}

const cli_command cmd_drill = {
	.name = "drill",
	.summary = "restore drill: prove that a backup restores, and how long it takes",
	.opts = drill_table,
	.run = drill_run,
	.exit_status = drill_exit,
	.metric = CLI_METRIC_DRILL,
	.usage =
		"usage: dre drill NAME [--time T] [--dbname CONNINFO] [--sql FILE] [--exec CMD] [options]\n"
		"       dre drill --pg [NAME] [--time T | --latest] [--sql FILE] [--sql-db DB] [--exec CMD] [options]\n"
		"\n"
		"Restores a backup into scratch space, checks what came back, measures the time it took (the RTO),\n"
		"and removes the scratch space again, after a failure and on SIGINT/SIGTERM too.\n"
		"\n"
		"  pg-dump snapshot NAME (the newest, or the newest at or before --time): restores the dump with\n"
		"      pg_restore -j into a new database on a private PostgreSQL instance that dre creates with initdb\n"
		"      in the scratch directory (socket only), or with --dbname into a new database dre_drill_<random>\n"
		"      on that server, dropped afterwards; compares every table's row count with the counts recorded\n"
		"      at dump time (exact; estimates within 10 %, at least 10 rows); then the checks.\n"
		"  --pg: runs pg-restore of the base backup for the target (--time T, or --latest: the end of the\n"
		"      archive, the default) into the scratch directory with the WAL it needs, starts a private\n"
		"      postgres on it, waits until recovery reached the target and promoted, verifies it (pg_amcheck\n"
		"      where installed, else a full read of every table), then the checks. NAME: only base backups\n"
		"      of that name.\n"
		"  files or stream snapshot NAME: restores it into the scratch directory (every file's hash\n"
		"      verified), then runs --exec in the restored tree.\n"
		"\n"
		"Never into production: the scratch instance listens on a Unix socket in the scratch directory\n"
		"only, with archiving, archive cleanup, replication and logical replication workers off, its\n"
		"restore_command copying WAL that dre fetched beforehand, and no repository password or AWS\n"
		"credentials in any program's environment. Run as root, PostgreSQL's programs run as --run-as.\n"
		"\n"
		"Options:\n"
		"  --time T          the snapshot at or before T; with --pg the recovery target time\n"
		"  --latest          --pg: recover to the end of the archive (the default)\n"
		"  -d, --dbname CONNINFO  pg-dump: restore on this server (a new database; no roles are created)\n"
		"  --sql FILE        checks: statements ending with ';' at the end of a line, each may follow a line\n"
		"                    '-- expect: OP VALUE' (OP = != < <= > >=, VALUE a number or a 'quoted' string)\n"
		"                    compared with the first column of its only row; a statement without one must\n"
		"                    only succeed\n"
		"  --sql-db DB       --pg: the database the checks run in (default postgres)\n"
		"  --exec CMD        sh -c CMD after the checks: in the restored tree (files), else in the scratch\n"
		"                    directory with DRE_DRILL_CONNINFO (a libpq connection string) set; DRE_DRILL_DIR\n"
		"                    is its directory. It runs as you; a non-zero exit fails the drill.\n"
		"  --rto DURATION    fail the drill (exit 8) when its RTO exceeds DURATION (900s, 15m, 1h30m)\n"
		"  --timeout DURATION  give up after DURATION (default 24h)\n"
		"  --scratch DIR     make the scratch directory in DIR (default $TMPDIR, else /var/tmp)\n"
		"  --keep            keep the scratch directory (and a --dbname scratch database) for a look\n"
		"  --pg-bindir DIR   PostgreSQL's programs (default: /usr/lib/postgresql/<the backup's version>/bin,\n"
		"                    else pg_config --bindir, else the newest /usr/lib/postgresql/*/bin)\n"
		"  --run-as USER     when run as root, the user PostgreSQL's programs run as (default postgres)\n"
		"  -j, --jobs N      pg_restore and pg_amcheck jobs (default: the online CPUs)\n"
		"\n"
		"The report: each phase (fetch, setup, restore, replay, verify, checks) with its seconds, the RTO\n"
		"(from the start to the checks passing), tables compared and each mismatch, bytes restored, and for\n"
		"--pg the time and LSN recovered to and the WAL replayed; --json gives the same as one object.\n"
		"\n"
		"Exit status: 0 the drill passed; 5 the backup failed it (damaged data, row counts that differ, a\n"
		"check or --exec failed, recovery stopped, pg_restore or pg_amcheck failed); 8 it passed but took\n"
		"longer than --rto; 3 no such snapshot, base backup or WAL; 1 the drill could not run (PostgreSQL\n"
		"not installed, scratch space, interrupted); 2 usage (a broken --sql file: its line is named).\n",
};
