/*
 * drillint.h — what the files of engine/drill/ share (not for callers: drill.h is the interface).
 *
 *   drill.c       the run: scratch directory, phases, RTO, cleanup; the --exec command
 *   drillproc.c   child processes: privileges dropped, a clean environment, waits that honour the cancel flag
 *                 and the deadline, the fetch from the repository in a child of its own
 *   drillpg.c     the scratch PostgreSQL: finding its programs, initdb, start, stop, connections and queries
 *                 that can be cancelled
 *   drilldump.c   the pg-dump drill;  drillbase.c  the base backup drill;  drillsql.c  the --sql checks
 */
#ifndef DRE_DRILLINT_H
#define DRE_DRILLINT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

#include "engine/drill/drill.h"

#define DRILL_PG_PORT 5432 /* fixed: the socket directory is the scratch directory, no one else's */

struct drill {
	repo *r;
	const drill_opts *o;
	drill_report *rep;
	int64_t start_ns, deadline_ns; /* deadline 0: none */
	char scratch[4096];            /* "" until made */
	int64_t phase_started[DRILL_NPHASES];
	int phase_current;             /* the phase begun last; -1: none yet */

	/* who runs PostgreSQL's programs: when dre is root, run_as (privileges dropped in the child) */
	bool switch_user;
	uid_t uid;
	gid_t gid;
	char user[64];
	gid_t *groups;
	int ngroups;
	char **env;    /* what children get: dre's environment without passwords and credentials */
	char **pg_env; /* the same without PG* variables (programs talking to the private instance) */

	/* PostgreSQL */
	char bindir[4096];
	int major;            /* of bindir's programs */
	pid_t postmaster;     /* > 0 while the private instance runs */
	char conninfo[8192];  /* the server's maintenance database: the private socket, or the user's conninfo */
	bool external;        /* conninfo is the user's server */
	bool db_created;      /* dbname exists on the external server and must be dropped */
	char dbname[80];
};

/* ---- drill.c ---- */
/* snprintf into a path or command buffer; DRE_EINVAL when it does not fit (a path too long to use). */
int drill_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void drill_phase_begin(struct drill *d, enum drill_phase p);
void drill_phase_end(struct drill *d, enum drill_phase p);
/* Runs o->exec (sh -c) in cwd with DRE_DRILL_DIR = cwd and DRE_DRILL_CONNINFO = conninfo (when not NULL). */
int drill_exec(struct drill *d, const char *cwd, const char *conninfo);

/* ---- drillproc.c ---- */
/* DRE_EIO when *cancel is set ("interrupted by signal N") or the deadline passed. */
int drill_poll(struct drill *d);
/* Sleeps ms (shorter when a signal arrives), then drill_poll. */
int drill_sleep(struct drill *d, long ms);

typedef struct drill_cmd {
	char *const *argv;  /* argv[0] a path, or a name looked up in PATH; NULL: only enter cwd (an access test) */
	const char *cwd;    /* NULL: dre's */
	const char *log;    /* standard output and error appended to this file; NULL: /dev/null */
	bool to_stderr;     /* instead: both to dre's standard error */
	bool as_user;       /* as the PostgreSQL user (when dre is root) */
	bool private_env;   /* the environment without PG* variables */
	char *const *extra_env; /* "NAME=value" added; NULL-terminated, or NULL */
	bool own_group;     /* a process group of its own: the terminal's ^C reaches dre only, which stops it */
	int death_signal;   /* sent to it when dre dies (prctl PR_SET_PDEATHSIG); 0: SIGTERM */
} drill_cmd;

int drill_spawn(struct drill *d, const drill_cmd *c, pid_t *pid);
/* Waits for pid; when the drill is cancelled or past its deadline the process (its group with own_group) gets
 * SIGTERM, then SIGKILL after 5 s, and the poll's error is returned. *status: its exit status, 128 + signal. */
int drill_wait(struct drill *d, pid_t pid, bool own_group, int *status);
/* spawn + wait. */
int drill_run(struct drill *d, const drill_cmd *c, int *status);
/* Runs argv (as dre, plain environment) and returns its standard output's first line in out. */
int drill_capture(struct drill *d, char *const *argv, char *out, size_t cap);

/* Runs fn(d, arg, out) in a child process (the fetch: engine_restore, engine_pg_restore, WAL) so a signal stops it
 * at once; out (outlen bytes, plain data) and the error message come back through a pipe. */
typedef int (*drill_child_fn)(struct drill *d, void *arg, void *out);
int drill_in_child(struct drill *d, drill_child_fn fn, void *arg, void *out, size_t outlen);

/* The last lines of a log that contain one of the words (NULL: any line), joined with " / ", into out. */
void drill_log_tail(const char *path, const char *const *words, char *out, size_t cap);
/* Removes a tree without following symbolic links or crossing into another file system. */
int drill_rmtree(const char *path);
/* Gives a tree to the PostgreSQL user (lchown, no links followed); nothing when dre is not root. */
int drill_chown_tree(struct drill *d, const char *path);
/* Writes a small file (the PostgreSQL user's when dre is root). Not through a temporary name with fsync: scratch
 * files live only as long as the drill, and a crash leaves the whole directory to be removed anyway. */
int drill_write_file(struct drill *d, const char *path, const char *text, bool append);

/* ---- drillpg.c ---- */
/* Finds PostgreSQL's programs (prog must be there): --pg-bindir, else /usr/lib/postgresql/<want_major>/bin,
 * else `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin; with want_major their version must
 * be that one (or with at_least, that one or newer). Sets d->bindir, d->major and the report's server text. */
int drill_pg_bindir(struct drill *d, const char *prog, int want_major, bool at_least);
/* initdb into SCRATCH/data (trust, -U postgres, no fsync). */
int drill_pg_initdb(struct drill *d);
/* The settings that keep the scratch instance to itself, as postgresql.conf lines (for postgresql.auto.conf). */
int drill_pg_safe_conf(struct drill *d, char *out, size_t cap);
/* Starts postgres on datadir with the safe settings on its command line; with recovery, waits until it has
 * recovered and promoted (PQping says it accepts connections), else until it accepts connections. A postgres
 * that exits meanwhile is DRE_ECORRUPT in recovery (what its log says), else DRE_EIO. */
int drill_pg_start(struct drill *d, const char *datadir, bool recovery);
/* SIGQUIT (immediate shutdown), then SIGKILL to its process group after 30 s; nothing when none runs. */
void drill_pg_stop(struct drill *d);
/* Connection string for database db on the drill's server (quoted values); for an external server the user's
 * settings with dbname replaced. */
int drill_pg_conninfo(struct drill *d, const char *db, char *out, size_t cap);
int drill_pg_connect(struct drill *d, const char *db, PGconn **out);
/* Runs sql; waits polling the cancel flag and the deadline (then cancels the query). *out: the last result,
 * whatever its status (PQclear it). */
int drill_pg_exec(struct drill *d, PGconn *c, const char *what, const char *sql, PGresult **out);
/* drill_pg_exec that must return COMMAND_OK or TUPLES_OK. */
int drill_pg_command(struct drill *d, PGconn *c, const char *what, const char *sql);
/* "key='value'" appended to a connection string (quotes and backslashes escaped). */
void drill_conninfo_add(char *out, size_t cap, const char *key, const char *value);

/* ---- drillsql.c ---- */
/* Runs o->checks in database db; the results go into the report. DRE_ECORRUPT when one failed. */
int drill_sql_run(struct drill *d, const char *db);

/* ---- the kinds ---- */
int drill_dump(struct drill *d);
int drill_base(struct drill *d);
int drill_files(struct drill *d);

#endif
