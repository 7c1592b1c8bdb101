/*
 * drilldump.c — the drill of a pg-dump snapshot (drill.h, pgdump.h).
 *
 *   fetch    the archive and its globals to SCRATCH/fetch (hashes verified by the restore pipeline)
 *   setup    a private instance (initdb, postgres) or the user's server; a new database dre_drill_<random>
 *   restore  the roles of the globals (private instance only: on a shared server they would be real roles), then
 *            pg_restore -j into the new database
 *   verify   count(*) of every table the dump counted and holds data for (its table of contents, pg_restore -l),
 *            compared with what it recorded
 *   checks   --sql in that database, --exec
 *
 * Tablespaces are left out everywhere (pg_restore --no-tablespaces, the globals' tablespace statements
 * dropped): they name directories outside the scratch space. Subscriptions are left out too: a restored one
 * is created disabled, but it names the publisher it would connect to.
 */
#include "engine/drill/drillint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/pg/pq.h"

/* The estimate counts are pg_class.reltuples as of the last ANALYZE: within 10 %, and 10 rows, passes. */
#define ESTIMATE_SLACK_PERCENT 10
#define ESTIMATE_SLACK_ROWS 10

static int fetch_dump(struct drill *d, void *arg, void *out)
{
	restore_opts ro = {.target = arg, .out_fd = -1, .threads = d->o->threads, .hooks = d->o->hooks};
	return engine_restore(d->r, d->o->snap, &ro, out);
}

/* ---- setup ---- */

static int scratch_db_name(struct drill *d)
{
	uint8_t rnd[6];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return err_sys("cannot name the scratch database");
	snprintf(d->dbname, sizeof d->dbname, "dre_drill_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5]);
	snprintf(d->rep->database, sizeof d->rep->database, "%s", d->dbname);
	return 0;
}

static int create_db(struct drill *d)
{
	PGconn *c;
	char sql[200];
	if (d->external) {
		TRY(drill_poll(d));
		TRY(pq_connect(d->o->conninfo, &c));
	} else {
		TRY(drill_pg_connect(d, "postgres", &c));
	}
	/* template0: the user's server may have a template1 that is not empty */
	snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\" TEMPLATE template0", d->dbname);
	int rc = drill_pg_command(d, c, "creating the scratch database", sql);
	if (rc == 0 && d->external) {
		d->db_created = true;
		snprintf(d->rep->server + strlen(d->rep->server), sizeof d->rep->server - strlen(d->rep->server),
			 ", server %s", PQhost(c) && *PQhost(c) ? PQhost(c) : "of --dbname");
	}
	PQfinish(c);
	return rc;
}

/* Before anything is fetched: pg_restore reads archives of its own version and older, so the programs must be
 * of the dumped server's major version at least. */
static int find_programs(struct drill *d)
{
	int major = (int)(d->rep->dump.server_version / 10000);
	d->external = d->o->conninfo != NULL;
	return drill_pg_bindir(d, d->external ? "pg_restore" : "postgres", major, true);
}

static int setup(struct drill *d)
{
	TRY(scratch_db_name(d));
	if (d->external)
		return create_db(d);
	char data[4200];
	snprintf(data, sizeof data, "%s/data", d->scratch);
	size_t n = strlen(d->rep->server);
	snprintf(d->rep->server + n, sizeof d->rep->server - n, ", private instance");
	TRY(drill_pg_initdb(d));
	TRY(drill_pg_start(d, data, false));
	return create_db(d);
}

/* ---- restore ---- */

/* Whether a globals line touches a tablespace (CREATE/ALTER/COMMENT ON TABLESPACE, a GRANT on one). */
static bool tablespace_line(const char *line)
{
	static const char *const starts[] = {"CREATE TABLESPACE ", "ALTER TABLESPACE ", "COMMENT ON TABLESPACE ",
					     NULL};
	for (size_t i = 0; starts[i] != NULL; i++)
		if (strncasecmp(line, starts[i], strlen(starts[i])) == 0)
			return true;
	return (strncasecmp(line, "GRANT ", 6) == 0 || strncasecmp(line, "REVOKE ", 7) == 0 ||
		strncasecmp(line, "SECURITY LABEL ", 15) == 0) &&
	       strcasestr(line, " ON TABLESPACE ") != NULL;
}

/* The roles of the globals, without their tablespaces, through psql; a role that exists already (postgres) is
 * no error, anything else is. */
static int restore_globals(struct drill *d, const char *fetch)
{
	char in[8400], roles[4200], log[4200], exe[4200], host[4200], port[16], why[1024];
	int status;
	snprintf(in, sizeof in, "%s/%s", fetch, d->rep->dump.globals_node);
	snprintf(roles, sizeof roles, "%s/globals-roles.sql", d->scratch);
	snprintf(log, sizeof log, "%s/globals.log", d->scratch);
	FILE *f = fopen(in, "r"), *out = fopen(roles, "w");
	if (f == NULL || out == NULL) {
		int rc = err_sys("cannot read the dump's globals %s", f == NULL ? in : roles);
		if (f)
			fclose(f);
		if (out)
			fclose(out);
		return rc;
	}
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) >= 0)
		if (!tablespace_line(line))
			fputs(line, out);
	free(line);
	fclose(f);
	if (fclose(out) != 0)
		return err_sys("cannot write %s", roles);
	TRY(drill_chown_tree(d, roles));
	snprintf(exe, sizeof exe, "%s/psql", d->bindir);
	snprintf(host, sizeof host, "%s", d->scratch);
	snprintf(port, sizeof port, "%d", DRILL_PG_PORT);
	char *argv[] = {exe, "-X", "-q", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-f", roles, NULL};
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = log, .as_user = true, .private_env = true,
		       .own_group = true};
	TRY(drill_run(d, &c, &status));
	FILE *lf = fopen(log, "r");
	char text[1024];
	why[0] = '\0';
	while (lf != NULL && fgets(text, sizeof text, lf))
		if ((strstr(text, "ERROR:") || strstr(text, "FATAL:")) && !strstr(text, "already exists") && !why[0])
			snprintf(why, sizeof why, "%.*s", (int)strcspn(text, "\n"), text);
	if (lf)
		fclose(lf);
	if (status != 0 || why[0])
		return err_set(DRE_ECORRUPT, "the dump's globals (roles) do not restore%s%s%s", why[0] ? ": " : "", why,
			       status != 0 ? " (psql failed)" : "");
	d->rep->globals_restored = true;
	return 0;
}

static int run_pg_restore(struct drill *d, const char *dump)
{
	char exe[4200], jobs[16], ci[8192], log[4200], why[2048];
	int status;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(exe, sizeof exe, "%s/pg_restore", d->bindir);
	snprintf(jobs, sizeof jobs, "%d", d->o->jobs > 0 ? d->o->jobs : ncpu > 0 ? (int)ncpu : 1);
	snprintf(log, sizeof log, "%s/pg_restore.log", d->scratch);
	TRY(drill_pg_conninfo(d, d->dbname, ci, sizeof ci));
	char *argv[16];
	size_t n = 0;
	argv[n++] = exe;
	argv[n++] = "--jobs";
	argv[n++] = jobs;
	argv[n++] = "--no-tablespaces";
	argv[n++] = "--no-subscriptions";
	if (!d->rep->globals_restored) { /* the owners and grantees may not exist here */
		argv[n++] = "--no-owner";
		argv[n++] = "--no-privileges";
	}
	argv[n++] = "--dbname";
	argv[n++] = ci;
	argv[n++] = (char *)dump;
	argv[n] = NULL;
	/* on the user's server with the user's rights and PG* settings (a password file, SSL); on the private
	 * instance as its owner */
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = log, .as_user = !d->external,
		       .private_env = !d->external, .own_group = true};
	TRY(drill_run(d, &c, &status));
	if (status != 0) {
		static const char *const words[] = {"error:", "ERROR:", "FATAL:", NULL};
		drill_log_tail(log, words, why, sizeof why);
		return err_set(DRE_ECORRUPT, "pg_restore of the dump failed (exit %d): %s", status,
			       why[0] ? why : "see its messages above");
	}
	return 0;
}

/* ---- verify ---- */

/* The archive's table of contents (pg_restore -l): which tables it holds data for. pg_dump's own options
 * (--exclude-table, --schema, ...) leave tables out that pg-dump still counted (format-spec.md §10.5). Its size
 * follows the schema, not the data. */
static int toc_load(struct drill *d, const char *dump, char **out)
{
	char exe[4200], toc[4200];
	int status;
	snprintf(exe, sizeof exe, "%s/pg_restore", d->bindir);
	snprintf(toc, sizeof toc, "%s/toc.txt", d->scratch);
	char *argv[] = {exe, "--list", (char *)dump, NULL};
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = toc, .as_user = !d->external,
		       .private_env = !d->external, .own_group = true};
	TRY(drill_run(d, &c, &status));
	if (status != 0)
		return err_set(DRE_ECORRUPT, "pg_restore --list of the dump failed (exit %d): its table of contents "
					     "does not read", status);
	FILE *f = fopen(toc, "r");
	if (f == NULL)
		return err_sys("cannot read %s", toc);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char chunk[65536];
	size_t n;
	while (mem != NULL && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, mem);
	bool bad = ferror(f);
	fclose(f);
	if (mem == NULL || fclose(mem) != 0 || bad) {
		free(text);
		return err_set(DRE_EIO, "cannot read %s", toc);
	}
	*out = text;
	return 0;
}

/* A TOC line reads "ID; TABLEOID OID TABLE DATA SCHEMA NAME OWNER". */
static bool toc_has_data(const char *toc, const pg_table_count *t)
{
	char *want = NULL;
	if (asprintf(&want, " TABLE DATA %s %s ", t->schema, t->table) < 0)
		return true; /* compare it: a count that fails is reported, a skipped one would not be */
	bool has = strstr(toc, want) != NULL;
	free(want);
	return has;
}

static int count_one(struct drill *d, PGconn *c, const pg_table_count *t, int64_t *found)
{
	char *sql, *what;
	int rc = pq_count_sql(c, t->schema, t->table, &sql, &what);
	PGresult *res = NULL;
	if (rc == 0)
		rc = drill_pg_exec(d, c, what, sql, &res);
	free(sql);
	if (rc == 0) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			*found = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else if (state != NULL && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0))
			*found = -1; /* undefined table or schema: the restore lost it */
		else
			rc = pq_fail(c, what);
	}
	PQclear(res);
	free(what);
	return rc;
}

static int verify_counts(struct drill *d, const char *dump)
{
	drill_report *rep = d->rep;
	const pg_dump_info *in = &rep->dump;
	char *toc = NULL;
	if (in->count == PG_COUNT_NONE)
		return 0;
	rep->mismatches = calloc(in->ntables + 1, sizeof *rep->mismatches);
	if (rep->mismatches == NULL)
		return err_set(DRE_ENOMEM, "cannot compare %zu tables", in->ntables);
	TRY(toc_load(d, dump, &toc));
	PGconn *c;
	int rc = drill_pg_connect(d, d->dbname, &c);
	if (rc < 0) {
		free(toc);
		return rc;
	}
	for (size_t i = 0; i < in->ntables && rc == 0; i++) {
		const pg_table_count *t = &in->tables[i];
		int64_t found = -1;
		if (!toc_has_data(toc, t)) {
			rep->tables_not_in_dump++;
			continue;
		}
		if (in->count == PG_COUNT_ESTIMATE && t->rows < 0) { /* never analysed: no estimate to compare */
			rep->tables_not_counted++;
			continue;
		}
		if ((rc = count_one(d, c, t, &found)) < 0)
			break;
		rep->tables_compared++;
		bool same = found == t->rows;
		if (in->count == PG_COUNT_ESTIMATE && found >= 0) {
			int64_t slack = t->rows * ESTIMATE_SLACK_PERCENT / 100;
			if (slack < ESTIMATE_SLACK_ROWS)
				slack = ESTIMATE_SLACK_ROWS;
			same = llabs(found - t->rows) <= slack;
		}
		if (!same)
			rep->mismatches[rep->nmismatches++] = (drill_mismatch){t->schema, t->table, t->rows, found};
	}
	PQfinish(c);
	free(toc);
	TRY(rc);
	if (rep->nmismatches == 0)
		return 0;
	char list[1024] = "";
	size_t o = 0;
	for (size_t i = 0; i < rep->nmismatches && i < 3 && o < sizeof list; i++) {
		const drill_mismatch *m = &rep->mismatches[i];
		char found[32];
		snprintf(found, sizeof found, "%lld", (long long)m->found);
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s.%s recorded %lld, found %s", i ? "; " : "",
				      m->schema, m->table, (long long)m->recorded, m->found < 0 ? "no table" : found);
	}
	return err_set(DRE_ECORRUPT, "%zu of %zu tables differ from the %s counts recorded at dump time: %s%s",
		       rep->nmismatches, rep->tables_compared, in->count == PG_COUNT_EXACT ? "exact" : "estimated", list,
		       rep->nmismatches > 3 ? "; ..." : "");
}

/* ---- the drill ---- */

int drill_dump(struct drill *d)
{
	drill_report *rep = d->rep;
	char fetch[4200], dump[8400], ci[8192];
	restore_result res = {0};
	TRY(pg_dump_info_get(d->o->snap, &rep->dump));
	TRY(find_programs(d));
	snprintf(fetch, sizeof fetch, "%s/fetch", d->scratch);
	snprintf(dump, sizeof dump, "%s/%s", fetch, rep->dump.dump_node);

	drill_phase_begin(d, DRILL_FETCH);
	int rc = drill_in_child(d, fetch_dump, fetch, &res, sizeof res);
	drill_phase_end(d, DRILL_FETCH);
	rep->bytes_restored = res.bytes;
	rep->files_restored = res.files;
	TRY(rc);

	drill_phase_begin(d, DRILL_SETUP);
	rc = setup(d);
	drill_phase_end(d, DRILL_SETUP);
	TRY(rc);

	drill_phase_begin(d, DRILL_RESTORE);
	if (!d->external)
		rc = drill_chown_tree(d, fetch);
	if (rc == 0 && !d->external && rep->dump.globals_node != NULL)
		rc = restore_globals(d, fetch);
	if (rc == 0)
		rc = run_pg_restore(d, dump);
	drill_phase_end(d, DRILL_RESTORE);
	TRY(rc);

	drill_phase_begin(d, DRILL_VERIFY);
	rc = verify_counts(d, dump);
	drill_phase_end(d, DRILL_VERIFY);
	TRY(rc);

	if (d->o->checks == NULL && d->o->exec == NULL)
		return 0;
	drill_phase_begin(d, DRILL_CHECKS);
	rc = drill_sql_run(d, d->dbname);
	if (rc == 0 && d->o->exec != NULL && (rc = drill_pg_conninfo(d, d->dbname, ci, sizeof ci)) == 0)
		rc = drill_exec(d, d->scratch, ci);
	drill_phase_end(d, DRILL_CHECKS);
	return rc;
}
