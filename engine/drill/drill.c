/*
 * drill.c — a drill from start to cleanup (drill.h): who runs PostgreSQL, the environment children get, the
 * scratch directory, the phases and their clock, the RTO, the --exec command, and the cleanup that runs
 * whatever happened.
 */
#include "engine/drill/drillint.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/pg/pq.h"
#include "engine/pipeline/meter.h"

extern char **environ;

static const char *const phase_names[DRILL_NPHASES] = {"fetch", "setup", "restore", "replay", "verify", "checks"};

const char *drill_phase_name(enum drill_phase p)
{
	return (unsigned)p < DRILL_NPHASES ? phase_names[p] : "?";
}

int drill_fmt(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "path or command too long: %.80s...", out);
	return 0;
}

void drill_phase_begin(struct drill *d, enum drill_phase p)
{
	d->phase_started[p] = meter_now_ns();
	d->phase_current = (int)p;
	d->rep->phase[p].ran = true;
	if (d->o->phase)
		d->o->phase(d->o->phase_arg, p, false, 0);
}

void drill_phase_end(struct drill *d, enum drill_phase p)
{
	d->rep->phase[p].seconds = (double)(meter_now_ns() - d->phase_started[p]) / 1e9;
	if (d->o->phase)
		d->o->phase(d->o->phase_arg, p, true, d->rep->phase[p].seconds);
}

/* ---- who runs PostgreSQL, with what environment ---- */

static int user_setup(struct drill *d)
{
	if (geteuid() != 0) {
		/* cppcheck-suppress getpwuidCalled ; no other thread of dre looks up users */
		struct passwd *me = getpwuid(geteuid());
		snprintf(d->user, sizeof d->user, "%s", me ? me->pw_name : "?");
		if (d->o->run_as != NULL && strcmp(d->o->run_as, d->user) != 0)
			return err_set(DRE_EINVAL, "--run-as %s: only root can run PostgreSQL as another user (dre runs as %s)",
				       d->o->run_as, d->user);
		return 0;
	}
	const char *name = d->o->run_as ? d->o->run_as : "postgres";
	/* cppcheck-suppress getpwnamCalled ; no other thread of dre looks up users */
	struct passwd *pw = getpwnam(name);
	if (pw == NULL)
		return err_set(DRE_ENOTFOUND, "user %s does not exist: PostgreSQL refuses to run as root, and the drill "
					      "runs it as %s. HINT: --run-as USER",
			       name, name);
	if (pw->pw_uid == 0)
		return err_set(DRE_EINVAL, "--run-as %s: PostgreSQL refuses to run as root", name);
	d->switch_user = true;
	d->uid = pw->pw_uid;
	d->gid = pw->pw_gid;
	snprintf(d->user, sizeof d->user, "%s", name);
	int n = 64;
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(d->groups, (size_t)n * sizeof *g);
		if (g == NULL)
			return err_set(DRE_ENOMEM, "cannot hold the groups of user %s", name);
		d->groups = g;
		int want = n;
		if (getgrouplist(name, d->gid, d->groups, &want) >= 0) {
			d->ngroups = want;
			return 0;
		}
		n = want > n ? want : n * 2;
	}
	return err_set(DRE_EIO, "cannot list the groups of user %s", name);
}

/* Variables no child gets: the repository's password and the store's credentials stay with dre. */
static bool secret_var(const char *v)
{
	static const char *const names[] = {"DRE_PASSWORD", "DRE_PASSWORD_FILE", "DRE_PASSWORD_COMMAND",
					    "DRE_NEW_PASSWORD_FILE", "DRE_TO_PASSWORD", "DRE_TO_PASSWORD_FILE",
					    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
					    "AWS_SESSION_TOKEN", NULL};
	for (size_t i = 0; names[i] != NULL; i++) {
		size_t n = strlen(names[i]);
		if (strncmp(v, names[i], n) == 0 && v[n] == '=')
			return true;
	}
	return false;
}

static int env_setup(struct drill *d)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	d->env = calloc(n + 2, sizeof *d->env);
	d->pg_env = calloc(n + 2, sizeof *d->pg_env);
	if (d->env == NULL || d->pg_env == NULL)
		return err_set(DRE_ENOMEM, "cannot prepare the environment of the drill's programs");
	size_t a = 0, b = 0;
	for (size_t i = 0; i < n; i++) {
		if (secret_var(environ[i]))
			continue;
		d->env[a++] = environ[i];
		/* the private instance is named on each command line; PGHOST, PGOPTIONS, PGSERVICE... must not
		 * redirect or alter that */
		if (strncmp(environ[i], "PG", 2) != 0)
			d->pg_env[b++] = environ[i];
	}
	return 0;
}

/* ---- the scratch directory ---- */

static int scratch_make(struct drill *d)
{
	const char *parent = d->o->scratch;
	const char *tmp = getenv("TMPDIR");
	if (parent == NULL)
		parent = tmp != NULL && *tmp == '/' ? tmp : "/var/tmp";
	char tmpl[4096];
	int w = snprintf(tmpl, sizeof tmpl, "%s/dre-drill-XXXXXX", parent);
	if (w < 0 || (size_t)w >= sizeof tmpl - 64)
		return err_set(DRE_EINVAL, "scratch directory %s: the path is too long", parent);
	if (mkdtemp(tmpl) == NULL)
		return err_sys("cannot make a scratch directory in %s", parent);
	snprintf(d->scratch, sizeof d->scratch, "%s", tmpl);
	snprintf(d->rep->scratch, sizeof d->rep->scratch, "%s", tmpl);
	if (d->switch_user && chown(d->scratch, d->uid, d->gid) < 0)
		return err_sys("cannot give the scratch directory %s to user %s", d->scratch, d->user);
	return 0;
}

/* PostgreSQL drills: the socket's path must fit sockaddr_un, and the user must reach the directory. */
static int scratch_for_pg(struct drill *d)
{
	struct sockaddr_un sun;
	char sock[4200];
	int n = snprintf(sock, sizeof sock, "%s/.s.PGSQL.%d.lock", d->scratch, DRILL_PG_PORT);
	if (n < 0 || (size_t)n >= sizeof sun.sun_path)
		return err_set(DRE_EINVAL, "the scratch directory %s is too long a path for PostgreSQL's Unix socket (%d "
					   "bytes of at most %zu). HINT: --scratch DIR with a shorter path",
			       d->scratch, n, sizeof sun.sun_path - 1);
	drill_cmd c = {.argv = NULL, .cwd = d->scratch, .as_user = true};
	pid_t pid;
	int st, rc = drill_spawn(d, &c, &pid);
	if (rc < 0) {
		char why[1024];
		snprintf(why, sizeof why, "%s", err_msg());
		return err_set(rc, "%s (PostgreSQL runs as %s; a parent directory without search permission?). HINT: "
				   "--scratch DIR in a directory %s can enter, such as /var/tmp",
			       why, d->user, d->user);
	}
	return drill_wait(d, pid, false, &st);
}

/* ---- --exec ---- */

int drill_exec(struct drill *d, const char *cwd, const char *conninfo)
{
	char dir[4200], ci[8300];
	int status;
	snprintf(dir, sizeof dir, "DRE_DRILL_DIR=%s", cwd);
	snprintf(ci, sizeof ci, "DRE_DRILL_CONNINFO=%s", conninfo ? conninfo : "");
	char *env[] = {dir, conninfo ? ci : NULL, NULL};
	char *argv[] = {"/bin/sh", "-c", (char *)d->o->exec, NULL};
	/* its output is the user's to see: on dre's standard error, so that --json's standard output stays JSON */
	drill_cmd c = {.argv = argv, .cwd = cwd, .to_stderr = true, .extra_env = env, .own_group = true};
	TRY(drill_run(d, &c, &status));
	d->rep->exec_status = status;
	if (status != 0)
		return err_set(DRE_ECORRUPT, "the --exec command failed (exit status %d) on the restored data in %s",
			       status, cwd);
	return 0;
}

/* ---- the run ---- */

static int kind_of(const drill_opts *o, enum drill_kind *k)
{
	if (o->snap == NULL) {
		*k = DRILL_BASE;
		return 0;
	}
	switch (o->snap->kind) {
	case SNAP_PG_DUMP: *k = DRILL_DUMP; return 0;
	case SNAP_FILES:
	case SNAP_STREAM: *k = DRILL_FILES; return 0;
	case SNAP_PG_BASE:
		return err_set(DRE_EINVAL, "snapshot %s is a PostgreSQL base backup: drill it with --pg (base backup "
					   "and WAL, to a time or the end of the archive)",
			       o->snap->name);
	default:
		return err_set(DRE_EINVAL, "snapshot %s is a %s snapshot: a drill restores pg-dump, files and stream "
					   "snapshots, and base backups with --pg",
			       o->snap->name, snap_kind_name(o->snap->kind));
	}
}

/* The scratch database on the user's server. Plain blocking libpq: when a signal brought the drill here, its
 * cancel flag is set, and the drop must still happen. */
static void drop_scratch_db(struct drill *d)
{
	char sql[200], why[1024] = "";
	PGconn *c = NULL;
	bool done = false;
	if (pq_connect(d->o->conninfo, &c) < 0) {
		snprintf(why, sizeof why, "%s", err_msg());
	} else {
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\"%s", d->dbname,
			 PQserverVersion(c) >= 130000 ? " WITH (FORCE)" : "");
		done = pq_command(c, "dropping the scratch database", sql) == 0;
		if (!done)
			snprintf(why, sizeof why, "%s", err_msg());
		PQfinish(c);
	}
	if (!done)
		engine_warnf(d->o->hooks.warn, d->o->hooks.arg, "cannot drop the scratch database %s: %s", d->dbname, why);
	d->db_created = !done;
}

static void cleanup(struct drill *d)
{
	drill_pg_stop(d);
	if (d->db_created && !d->o->keep)
		drop_scratch_db(d);
	if (d->scratch[0] == '\0')
		return;
	if (d->o->keep) {
		d->rep->kept = true;
		return;
	}
	if (drill_rmtree(d->scratch) < 0) {
		d->rep->kept = true;
		if (d->o->hooks.warn)
			d->o->hooks.warn(d->o->hooks.arg, err_msg());
	}
}

int engine_drill(repo *r, const drill_opts *o, drill_report *rep)
{
	struct drill d = {.r = r, .o = o, .rep = rep, .phase_current = -1};
	memset(rep, 0, sizeof *rep);
	rep->exec_status = -1;
	rep->failed_phase = -1;
	rep->rto_limit = o->rto_limit;
	d.start_ns = meter_now_ns();
	if (o->timeout > 0)
		d.deadline_ns = d.start_ns + (int64_t)(o->timeout * 1e9);

	int rc = kind_of(o, &rep->kind);
	if (rc == 0 && o->snap != NULL) {
		memcpy(rep->id, o->snap->id, CRYPTO_ID_LEN);
		snprintf(rep->name, sizeof rep->name, "%s", o->snap->name);
		rep->snap_time_ns = o->snap->time_ns;
	}
	if (rc == 0 && rep->kind != DRILL_FILES)
		rc = user_setup(&d);
	if (rc == 0)
		rc = env_setup(&d);
	if (rc == 0)
		rc = scratch_make(&d);
	if (rc == 0 && rep->kind != DRILL_FILES && !(rep->kind == DRILL_DUMP && o->conninfo != NULL))
		rc = scratch_for_pg(&d);
	if (rc == 0) {
		switch (rep->kind) {
		case DRILL_DUMP: rc = drill_dump(&d); break;
		case DRILL_BASE: rc = drill_base(&d); break;
		case DRILL_FILES: rc = drill_files(&d); break;
		}
	}
	rep->rto = (double)(meter_now_ns() - d.start_ns) / 1e9;
	if (rc < 0)
		rep->failed_phase = d.phase_current;

	char saved[4096];
	snprintf(saved, sizeof saved, "%s", err_msg());
	cleanup(&d);
	if (rc == 0 && o->rto_limit > 0 && rep->rto > o->rto_limit) {
		rep->rto_exceeded = true;
		rc = DRILL_ERTO;
		snprintf(saved, sizeof saved,
			 "the drill passed, but its recovery time (%.1f s) exceeded --rto (%.0f s)", rep->rto,
			 o->rto_limit);
	}
	rep->passed = rc == 0;
	if (rc < 0) {
		rep->failure = strdup(saved);
		err_set(rc, "%s", saved);
	}
	free(d.groups);
	free(d.env);
	free(d.pg_env);
	return rc;
}

void drill_report_free(drill_report *rep)
{
	pg_dump_info_free(&rep->dump);
	free(rep->mismatches);
	for (size_t i = 0; i < rep->nchecks; i++) {
		free(rep->checks[i].got);
		free(rep->checks[i].error);
	}
	free(rep->checks);
	free(rep->failure);
	memset(rep, 0, sizeof *rep);
}
