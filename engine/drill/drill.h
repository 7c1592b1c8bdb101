/*
 * drill.h — restore drills: `dre drill` proves that a backup restores, by restoring it into scratch space and
 * checking what came back, and measures how long that took (the recovery time a real restore would need).
 *
 *   pg-dump snapshot   fetch the archive (and its globals) to scratch files; restore them with pg_restore -j into
 *                      a new database, on a private PostgreSQL instance dre makes with initdb in the scratch
 *                      directory (or, with conninfo, a database dre_drill_<random> on that server); compare every
 *                      table's row count with the counts the dump recorded (pgdump.h).
 *   base backup + WAL  pg-restore into the scratch directory (tablespaces inside it, archiving off), the WAL it
 *                      needs fetched beside it; a private postgres replays to the target and promotes; pg_amcheck
 *                      where installed, else a full read of every table.
 *   files, stream      restore into the scratch directory (every file's XXH3-128 verified on the way).
 * Then the caller's checks: SQL statements with expected results (drill_sql_load) and a command (exec).
 *
 * Never into production. The scratch instance listens on a Unix socket in the scratch directory only; it runs
 * with archive_mode, archive_command, archive_cleanup_command, recovery_end_command, primary_conninfo,
 * logical replication workers, synchronous_standby_names and the logging collector off or empty, given on its
 * command line (which outranks every configuration file) and also written into postgresql.auto.conf after
 * pg-restore's lines, and pg_replslot emptied. Its restore_command copies from the scratch directory, so the
 * repository's password never reaches it; every program dre starts gets an environment without DRE_PASSWORD*
 * and AWS credentials. Nothing is written outside the scratch directory but the scratch database of conninfo.
 *
 * When dre runs as root, PostgreSQL's programs run as run_as (default "postgres"): the child drops privileges
 * (setgid, initgroups, setuid) before exec, and the scratch directory is given to that user.
 *
 * Cleanup: the instance is stopped (SIGQUIT: an immediate shutdown, it is thrown away), the scratch database
 * dropped and the scratch directory removed, after a failure too, and when *cancel becomes non-zero (the CLI's
 * SIGINT/SIGTERM handler): every wait polls it, and the fetch from the repository runs in a child process that
 * is killed at once. keep leaves the directory (and the dump drill's scratch database) for a look.
 */
#ifndef DRE_DRILL_H
#define DRE_DRILL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/pg/pg.h"
#include "engine/pg/pgdump.h"

/* The drill ran and everything restored and passed its checks, but it took longer than rto_limit. Not an
 * err.h code: only engine_drill returns it (the CLI gives it an exit status of its own). */
#define DRILL_ERTO (-50)

/* ---- the --sql checks ---- */

/* One statement of a check file, with its expectation ("-- expect: OP VALUE" on the line before it). */
typedef struct drill_check {
	unsigned line;  /* of the statement's first line */
	char *sql;      /* without the final ';' */
	char op[3];     /* "=", "!=", "<", "<=", ">", ">="; "" when the statement must only succeed */
	bool text;      /* VALUE was quoted: compared as text (= and != only); else as a number */
	double number;
	char *value;    /* VALUE as written, unquoted */
} drill_check;

typedef struct drill_checks {
	const char *path;
	drill_check *v;
	size_t n;
} drill_checks;

/*
 * Reads a check file: statements end with ';' at the end of a line; "--" lines are comments, except
 * "-- expect: OP VALUE" right before a statement (OP one of = != <> < <= > >=, VALUE a number or a string in
 * single or double quotes), which checks the first column of the statement's only row. DRE_EINVAL names the
 * file and line of the first problem. Files of more than 1 MiB are refused.
 */
int drill_sql_load(const char *path, drill_checks *out);
void drill_checks_free(drill_checks *c);

/* ---- the drill ---- */

enum drill_kind { DRILL_DUMP = 1, DRILL_BASE, DRILL_FILES };
enum drill_phase { DRILL_FETCH, DRILL_SETUP, DRILL_RESTORE, DRILL_REPLAY, DRILL_VERIFY, DRILL_CHECKS,
		   DRILL_NPHASES };

/* "fetch", "setup", "restore", "replay", "verify", "checks" */
const char *drill_phase_name(enum drill_phase p);

/* Told when a phase begins (done false) and ends (done true, with its seconds). */
typedef void (*drill_phase_fn)(void *arg, enum drill_phase p, bool done, double seconds);

typedef struct drill_opts {
	const snapshot *snap;    /* a pg-dump, files or stream snapshot; NULL: a base backup drill (pg) */
	/* base backup drill: which backup and how far (pg-restore's choice, pg.h) */
	const char *base_name;   /* only base backups of this name; NULL: any */
	enum pg_target target;   /* PG_TARGET_LATEST or PG_TARGET_TIME */
	int64_t time_ns;
	/* where */
	const char *scratch;     /* the directory to make the scratch directory in; NULL: $TMPDIR, else /var/tmp */
	const char *conninfo;    /* dump drill: restore on this server instead of a private instance */
	const char *bindir;      /* PostgreSQL's programs; NULL: found (drill.c says how) */
	const char *run_as;      /* the user PostgreSQL's programs run as when dre runs as root; NULL: postgres */
	int jobs;                /* pg_restore -j; 0: the online CPUs */
	/* checks */
	const drill_checks *checks; /* NULL: none */
	const char *checks_db;   /* base backup drill: the database the checks run in; NULL: postgres */
	const char *exec;        /* sh -c EXEC in the restored tree (files) or the scratch directory, with
				  * DRE_DRILL_DIR (and DRE_DRILL_CONNINFO for PostgreSQL drills) set; NULL: none */
	/* limits */
	double rto_limit;        /* seconds; 0: none */
	double timeout;          /* seconds the whole drill may take before it gives up; 0: none */
	bool keep;               /* leave the scratch directory (and scratch database) */
	int threads;
	engine_hooks hooks;
	drill_phase_fn phase;
	void *phase_arg;
	volatile sig_atomic_t *cancel; /* non-zero: stop, clean up, fail (the signal number, for the message) */
} drill_opts;

typedef struct drill_mismatch {
	const char *schema, *table; /* point into the dump's info (the report's) */
	int64_t recorded, found;    /* found -1: the table is missing after the restore */
} drill_mismatch;

typedef struct drill_check_result {
	const drill_check *check;
	bool ran, passed;
	char *got;    /* the first column of the first row; NULL: no row, or SQL NULL */
	char *error;  /* why it failed: the server's message, or what was wrong with the result */
	double seconds;
} drill_check_result;

typedef struct drill_report {
	enum drill_kind kind;
	uint8_t id[CRYPTO_ID_LEN]; /* the snapshot drilled (the base backup pg-restore chose) */
	char name[256];
	int64_t snap_time_ns;
	char scratch[4096];        /* the scratch directory ("" until made) */
	bool kept;
	struct {
		bool ran;
		double seconds;
	} phase[DRILL_NPHASES];
	int failed_phase;          /* the phase the drill failed in; -1: none (or before the first) */
	double rto;                /* seconds from the start until the checks passed (or the drill failed) */
	double rto_limit;
	bool rto_exceeded;
	uint64_t bytes_restored;   /* bytes written from the repository into scratch space, WAL included */
	size_t files_restored;
	char server[160];          /* PostgreSQL drills: where it restored ("PostgreSQL 15.10, private instance") */

	/* pg-dump */
	pg_dump_info dump;
	char database[80];         /* the scratch database */
	bool globals_restored;
	size_t tables_compared, tables_not_counted;
	size_t tables_not_in_dump; /* recorded, but pg_dump's own options left their data out (format-spec §10.5) */
	drill_mismatch *mismatches;
	size_t nmismatches;

	/* base backup */
	pg_restore_result base;
	uint64_t wal_segments_fetched, wal_bytes_fetched;
	int64_t recovered_to_ns;   /* pg_last_xact_replay_timestamp(); 0: no transaction replayed */
	char recovered_lsn[24];    /* pg_last_wal_replay_lsn() */
	uint64_t wal_replayed;     /* bytes of WAL from the backup's start to recovered_lsn */
	uint32_t timeline;         /* the scratch cluster's after promotion */
	char verify_method[16];    /* "pg_amcheck" or "full read" */
	size_t databases_verified, tables_read;

	/* checks */
	drill_check_result *checks;
	size_t nchecks, checks_failed;
	int exec_status;           /* -1: no --exec, or it did not run; else its exit status (128 + signal) */

	bool passed;
	char *failure;             /* why the drill failed (the message engine_drill returned with) */
} drill_report;

/*
 * Runs a drill; the report is filled as far as it got, also on failure (drill_report_free it either way).
 * DRE_ECORRUPT: the backup failed the drill (damaged data, a row count that differs, a check or the command
 * failed, recovery stopped, amcheck found corruption); DRILL_ERTO: it passed, but too slowly; other codes: the
 * drill could not run (PostgreSQL not installed, the scratch space, the repository, interrupted).
 */
int engine_drill(repo *r, const drill_opts *o, drill_report *rep);
void drill_report_free(drill_report *rep);

#endif
