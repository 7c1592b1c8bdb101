/*
 * drillpg.c — the scratch PostgreSQL of a drill (drillint.h): its programs, initdb, a postgres that talks to
 * no one, and libpq calls that give up when the drill is cancelled.
 *
 * postgres runs as dre's direct child (not through pg_ctl), in a process group of its own, so dre knows its pid
 * from the start, stops it with one signal and reaps it; it gets SIGQUIT if dre itself dies.
 */
#include "engine/drill/drillint.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/pg/pq.h"

/* ---- the programs ---- */

static bool has_prog(const char *dir, const char *prog)
{
	char path[4200];
	return drill_fmt(path, sizeof path, "%s/%s", dir, prog) == 0 && access(path, X_OK) == 0;
}

/* "postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)": major 15, version "15.10". */
static int prog_version(struct drill *d, const char *dir, const char *prog, int *major, char *version, size_t cap)
{
	char exe[4200], line[256];
	TRY(drill_fmt(exe, sizeof exe, "%s/%s", dir, prog));
	char *argv[] = {exe, "--version", NULL};
	TRY(drill_capture(d, argv, line, sizeof line));
	const char *p = strstr(line, ") ");
	if (p == NULL || p[2] < '1' || p[2] > '9')
		return err_set(DRE_EIO, "%s --version said '%s', not a PostgreSQL version", exe, line);
	*major = (int)strtol(p + 2, NULL, 10);
	snprintf(version, cap, "%.*s", (int)strcspn(p + 2, " "), p + 2);
	return 0;
}

/* The newest /usr/lib/postgresql/N/bin that has prog (Debian's layout); "" when none. */
static void newest_debian(const char *prog, char *out, size_t cap)
{
	int best = 0;
	out[0] = '\0';
	DIR *dir = opendir("/usr/lib/postgresql");
	if (dir == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		char bin[4200];
		int v = (int)strtol(de->d_name, NULL, 10);
		if (v <= best || strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		if (drill_fmt(bin, sizeof bin, "/usr/lib/postgresql/%s/bin", de->d_name) == 0 && has_prog(bin, prog) &&
		    drill_fmt(out, cap, "%s", bin) == 0)
			best = v;
	}
	closedir(dir);
}

int drill_pg_bindir(struct drill *d, const char *prog, int want_major, bool at_least)
{
	char cand[3][4096] = {"", "", ""}, version[32] = "";
	int major = 0;
	if (d->o->bindir != NULL) {
		TRY(drill_fmt(cand[0], sizeof cand[0], "%s", d->o->bindir));
		if (!has_prog(cand[0], prog))
			return err_set(DRE_ENOTFOUND, "--pg-bindir %s has no %s", d->o->bindir, prog);
	} else {
		if (want_major > 0 && !at_least)
			snprintf(cand[0], sizeof cand[0], "/usr/lib/postgresql/%d/bin", want_major);
		char *argv[] = {"pg_config", "--bindir", NULL};
		if (drill_capture(d, argv, cand[1], sizeof cand[1]) < 0)
			cand[1][0] = '\0';
		newest_debian(prog, cand[2], sizeof cand[2]);
	}
	int found = 0;
	for (int i = 0; i < 3; i++) {
		if (cand[i][0] == '\0' || !has_prog(cand[i], prog))
			continue;
		found++;
		TRY(prog_version(d, cand[i], prog, &major, version, sizeof version));
		if (want_major == 0 || major == want_major || (at_least && major > want_major)) {
			memcpy(d->bindir, cand[i], sizeof d->bindir);
			d->major = major;
			drill_fmt(d->rep->server, sizeof d->rep->server, "PostgreSQL %s (%s)", version, d->bindir);
			return 0;
		}
		if (d->o->bindir != NULL)
			break;
	}
	if (found == 0)
		return err_set(DRE_ENOTFOUND, "PostgreSQL's %s was not found (not in --pg-bindir, pg_config --bindir or "
					      "/usr/lib/postgresql/*/bin). HINT: install the PostgreSQL server package%s, "
					      "or give --pg-bindir DIR",
			       prog, want_major > 0 ? " of that version" : "");
	return err_set(DRE_ENOTFOUND, "the backup is of PostgreSQL %d, and the %s found is of PostgreSQL %d. HINT: "
				      "install PostgreSQL %d's server%s, or give --pg-bindir DIR",
		       want_major, prog, major, want_major, at_least ? " or a newer one" : "");
}

/* ---- the instance ---- */

int drill_pg_initdb(struct drill *d)
{
	char exe[4200], data[4200], log[4200], why[1024];
	int status;
	snprintf(exe, sizeof exe, "%s/initdb", d->bindir);
	snprintf(data, sizeof data, "%s/data", d->scratch);
	snprintf(log, sizeof log, "%s/initdb.log", d->scratch);
	char *argv[] = {exe, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8",
			"--locale=C", NULL};
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = log, .as_user = true, .private_env = true,
		       .own_group = true};
	TRY(drill_run(d, &c, &status));
	if (status != 0) {
		drill_log_tail(log, NULL, why, sizeof why);
		return err_set(DRE_EIO, "initdb of the scratch instance in %s failed (exit %d): %s", data, status, why);
	}
	return 0;
}

void drill_conninfo_add(char *out, size_t cap, const char *key, const char *value)
{
	size_t n = strlen(out);
	int w = snprintf(out + n, cap - n, "%s%s='", n ? " " : "", key);
	if (w < 0 || n + (size_t)w >= cap)
		return;
	n += (size_t)w;
	for (; *value && n + 3 < cap; value++) {
		if (*value == '\'' || *value == '\\')
			out[n++] = '\\';
		out[n++] = *value;
	}
	if (n + 2 <= cap) {
		out[n++] = '\'';
		out[n] = '\0';
	}
}

int drill_pg_conninfo(struct drill *d, const char *db, char *out, size_t cap)
{
	out[0] = '\0';
	if (!d->external) {
		char port[16];
		snprintf(port, sizeof port, "%d", DRILL_PG_PORT);
		drill_conninfo_add(out, cap, "host", d->scratch);
		drill_conninfo_add(out, cap, "port", port);
		drill_conninfo_add(out, cap, "user", "postgres");
		drill_conninfo_add(out, cap, "dbname", db);
		return 0;
	}
	char *msg = NULL;
	if (!pq_is_conninfo(d->o->conninfo)) { /* a database name: the server is libpq's default one */
		drill_conninfo_add(out, cap, "dbname", db);
		return 0;
	}
	PQconninfoOption *opts = PQconninfoParse(d->o->conninfo, &msg);
	if (opts == NULL) {
		int rc = err_set(DRE_EINVAL, "--dbname: %s", msg ? msg : "cannot read the connection string");
		PQfreemem(msg);
		return rc;
	}
	for (PQconninfoOption *p = opts; p->keyword != NULL; p++)
		if (p->val != NULL && *p->val != '\0' && strcmp(p->keyword, "dbname") != 0)
			drill_conninfo_add(out, cap, p->keyword, p->val);
	PQconninfoFree(opts);
	drill_conninfo_add(out, cap, "dbname", db);
	return 0;
}

int drill_pg_safe_conf(struct drill *d, char *out, size_t cap)
{
	static const char *const fixed =
		"listen_addresses = ''\n"
		"archive_mode = 'off'\n"
		"archive_command = ''\n"
		"archive_cleanup_command = ''\n"
		"recovery_end_command = ''\n"
		"primary_conninfo = ''\n"
		"primary_slot_name = ''\n"
		"max_logical_replication_workers = 0\n"
		"synchronous_standby_names = ''\n"
		"logging_collector = 'off'\n"
		"log_destination = 'stderr'\n"
		"external_pid_file = ''\n"
		"ssl = 'off'\n"
		"hot_standby = 'off'\n";
	int n = snprintf(out, cap,
			 "# dre drill: a scratch instance that archives, replicates and listens to no one\n"
			 "%sport = %d\nunix_socket_directories = '%s'\n%s",
			 fixed, DRILL_PG_PORT, d->scratch,
			 d->major >= 15 ? "archive_library = ''\n" : "stats_temp_directory = 'pg_stat_tmp'\n");
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "scratch directory %s: its path is too long", d->scratch);
	return 0;
}

/* The safe settings again as "-c name=value" arguments: the command line outranks every configuration file. */
static int safe_args(struct drill *d, char **argv, size_t max, size_t *n, char *text, size_t cap)
{
	char conf[4096];
	TRY(drill_pg_safe_conf(d, conf, sizeof conf));
	size_t used = 0;
	for (char *line = conf; *line;) {
		char *eol = strchrnul(line, '\n');
		char *eq = memchr(line, '=', (size_t)(eol - line));
		if (line[0] != '#' && eq != NULL && *n + 2 < max) {
			const char *key = line, *val = eq + 2;
			size_t klen = (size_t)(eq - line - 1), vlen = (size_t)(eol - val);
			if (vlen >= 2 && val[0] == '\'') {
				val++;
				vlen -= 2;
			}
			int w = snprintf(text + used, cap - used, "%.*s=%.*s", (int)klen, key, (int)vlen, val);
			if (w < 0 || used + (size_t)w + 1 > cap)
				return err_set(DRE_EINVAL, "too many settings for the scratch instance");
			argv[(*n)++] = "-c";
			argv[(*n)++] = text + used;
			used += (size_t)w + 1;
		}
		line = *eol ? eol + 1 : eol;
	}
	return 0;
}

int drill_pg_start(struct drill *d, const char *datadir, bool recovery)
{
	char exe[4200], log[4200], cfile[4300], hba[4300], ident[4300], conf[4096], argbuf[8192];
	char *argv[64];
	size_t n = 0;
	snprintf(exe, sizeof exe, "%s/postgres", d->bindir);
	snprintf(log, sizeof log, "%s/postgres.log", d->scratch);
	/* its own configuration files: the backed-up cluster's may name paths (certificates, includes, log or
	 * statistics directories) outside the scratch directory, or lie in /etc where Debian keeps them */
	snprintf(cfile, sizeof cfile, "config_file=%s/postgresql.conf", d->scratch);
	snprintf(hba, sizeof hba, "hba_file=%s/pg_hba.conf", d->scratch);
	snprintf(ident, sizeof ident, "ident_file=%s/pg_ident.conf", d->scratch);
	TRY(drill_pg_safe_conf(d, conf, sizeof conf));
	TRY(drill_write_file(d, cfile + strlen("config_file="), conf, false));
	TRY(drill_write_file(d, hba + strlen("hba_file="),
			     "# dre drill: the socket is in a directory only its user can enter\nlocal all all trust\n",
			     false));
	TRY(drill_write_file(d, ident + strlen("ident_file="), "", false));
	argv[n++] = exe;
	argv[n++] = "-D";
	argv[n++] = (char *)datadir;
	argv[n++] = "-c";
	argv[n++] = cfile;
	argv[n++] = "-c";
	argv[n++] = hba;
	argv[n++] = "-c";
	argv[n++] = ident;
	TRY(safe_args(d, argv, sizeof argv / sizeof argv[0] - 1, &n, argbuf, sizeof argbuf));
	argv[n] = NULL;
	drill_cmd c = {.argv = argv, .cwd = d->scratch, .log = log, .as_user = true, .private_env = true,
		       .own_group = true, .death_signal = SIGQUIT};
	TRY(drill_spawn(d, &c, &d->postmaster));

	char ci[8192];
	TRY(drill_pg_conninfo(d, "postgres", ci, sizeof ci));
	size_t len = strlen(ci);
	snprintf(ci + len, sizeof ci - len, " connect_timeout=10");
	for (;;) {
		int st;
		pid_t r = waitpid(d->postmaster, &st, WNOHANG);
		if (r == d->postmaster) {
			static const char *const words[] = {"FATAL", "PANIC", "ERROR", NULL};
			char why[2048];
			d->postmaster = 0;
			drill_log_tail(log, words, why, sizeof why);
			if (why[0] == '\0')
				drill_log_tail(log, NULL, why, sizeof why);
			if (recovery)
				return err_set(DRE_ECORRUPT, "PostgreSQL stopped during recovery (exit %d): %s",
					       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), why);
			return err_set(DRE_EIO, "the scratch PostgreSQL did not start (exit %d): %s",
				       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), why);
		}
		if (PQping(ci) == PQPING_OK)
			return 0;
		TRY(drill_sleep(d, 100));
	}
}

void drill_pg_stop(struct drill *d)
{
	if (d->postmaster <= 0)
		return;
	pid_t pid = d->postmaster;
	int st;
	kill(pid, SIGQUIT);
	for (int i = 0; i < 600; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
		if (i == 599) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
		}
	}
	kill(-pid, SIGKILL); /* a backend the postmaster did not take down */
	d->postmaster = 0;
}

/* ---- libpq ---- */

int drill_pg_connect(struct drill *d, const char *db, PGconn **out)
{
	char ci[8192];
	TRY(drill_pg_conninfo(d, db, ci, sizeof ci));
	TRY(drill_poll(d));
	return pq_connect(ci, out);
}

int drill_pg_exec(struct drill *d, PGconn *c, const char *what, const char *sql, PGresult **out)
{
	PGresult *last = NULL;
	*out = NULL;
	if (!PQsendQuery(c, sql))
		return pq_fail(c, what);
	for (;;) {
		if (!PQconsumeInput(c)) {
			PQclear(last);
			return pq_fail(c, what);
		}
		while (!PQisBusy(c)) {
			PGresult *r = PQgetResult(c);
			if (r == NULL) {
				*out = last;
				return 0;
			}
			PQclear(last);
			last = r;
		}
		int rc = drill_poll(d);
		if (rc < 0) {
			char saved[1024], ignored[256];
			snprintf(saved, sizeof saved, "%s", err_msg());
			PGcancel *k = PQgetCancel(c);
			if (k != NULL)
				PQcancel(k, ignored, sizeof ignored);
			PQfreeCancel(k);
			PQclear(last);
			return err_set(rc, "%s: %s", what, saved);
		}
		struct pollfd p = {PQsocket(c), POLLIN, 0};
		poll(&p, 1, 100);
	}
}

int drill_pg_command(struct drill *d, PGconn *c, const char *what, const char *sql)
{
	PGresult *res;
	TRY(drill_pg_exec(d, c, what, sql, &res));
	ExecStatusType st = PQresultStatus(res);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pq_fail(c, what);
	PQclear(res);
	return rc;
}
