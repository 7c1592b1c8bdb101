/*
 * cli.h — what the files of cli/ share: the global options, the argument parser, the command table entry, the
 * password sources and the output helpers. cli/ only parses, asks for the password, calls engine.h and prints;
 * everything it does to a repository goes through engine.h.
 *
 * Errors travel as in the engine: a function returns 0 or a negative code with the message set by err_set().
 * CLI_EUSAGE is the one code of cli/'s own: a usage problem it found itself (exit 2).
 */
#ifndef DRE_CLI_H
#define DRE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "engine/engine.h"
#include "engine/repo/select.h"

#define DRE_VERSION "0.1.0"

/* A usage problem found by cli/ (bad option, missing argument, no password source): exit 2. */
#define CLI_EUSAGE (-100)

/* Exit statuses (documented in `dre help`). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_NOTFOUND = 3,
	CLI_EXIT_AUTH = 4,
	CLI_EXIT_INTEGRITY = 5,
	CLI_EXIT_PRODUCER = 6,
	CLI_EXIT_BUSY = 7,
};

/* What --config FILE set (config.c); NULL where it is silent. */
typedef struct cli_config {
	const char *repository, *password_file, *password_command, *threads;
	const char *pgdata, *dbname; /* pg-backup's --pgdata and --dbname */
	const char *metrics_file;    /* --metrics */
	store_opts store; /* the S3 settings, below the environment's */
} cli_config;

/* Global options: accepted before the command and after it. */
typedef struct cli_ctx {
	const char *repo_url; /* -r/--repo; NULL until cli_repo_url() fills in the default */
	bool json, quiet, help, version;
	int threads; /* 0 = the engine's default */
	store_opts store; /* --s3-* options; what they leave unset the S3 driver takes from the environment */
	const char *config_path; /* --config */
	const char *cache_dir;   /* --cache-dir */
	bool no_cache;           /* --no-cache */
	cli_config config;
	const char *command; /* the command being run, for "Try 'dre help COMMAND'" */
	const char *metrics_path; /* --metrics FILE, else the config's metrics-file; NULL: no metrics written */
	struct cli_run {
		/* What the command learnt for the metrics file (metrics.c), filled as it goes; main() records it with
		 * the outcome once the command returned. */
		const char *name;  /* the backup, drill or check subject; NULL: the command's first argument */
		bool sized;        /* size and stored are known (a backup that finished) */
		uint64_t size;     /* plaintext bytes of the backup */
		uint64_t stored;   /* bytes of new packs it stored */
		double rto;        /* drill: seconds from its start to its checks passing */
		int64_t mismatches; /* drill: tables whose row counts differ; -1 when not counted */
		bool repo_sized;   /* repo_size is known (check, prune, stats) */
		uint64_t repo_size; /* bytes of every object in the repository */
		bool dry_run;      /* forget or prune changed nothing: no lifecycle time is recorded */
		bool wal_shown;    /* wal-show read the whole archive: wal_missing is known */
		uint64_t wal_missing; /* its segments missing inside the archived ranges, not removed by expiry */
	} run;
} cli_ctx;

/* One option of a command (long form "--name", optional short form "-c"). Tables end with {0}. */
typedef struct cli_opt {
	const char *name;
	char short_name;
	bool has_arg;
} cli_opt;

#define CLI_MAX_OPTS 24

typedef struct cli_args {
	const char *opt[CLI_MAX_OPTS]; /* by index in the command's table: the value, "" for a flag, NULL if absent */
	char **pos;                    /* positional arguments, NULL-terminated */
	size_t npos;
	size_t dashdash; /* positionals seen before "--", or SIZE_MAX when there was no "--" */
	/* every value of the command's options that take one, in the order given: opt[] keeps the last,
	 * cli_opt_all() gives all of an option that may be given more than once (--tag a --tag b) */
	struct cli_optval {
		int idx;
		const char *val;
	} *vals;
	size_t nvals;
} cli_args;

typedef struct cli_command {
	const char *name;
	const char *summary; /* one line for `dre help` */
	const char *usage;   /* the text of `dre help NAME` */
	const cli_opt *opts; /* NULL when it has only the global ones */
	int (*run)(cli_ctx *ctx, const cli_args *a);
	/* The exit status of a failure, when the command has its own (wal-fetch); NULL: the table above. */
	int (*exit_status)(int rc);
	/* Which metrics its runs update in the --metrics file (metrics.c); CLI_METRIC_NONE: none. */
	enum cli_metric { CLI_METRIC_NONE = 0, CLI_METRIC_BACKUP, CLI_METRIC_WAL, CLI_METRIC_DRILL, CLI_METRIC_CHECK,
			  CLI_METRIC_LIFECYCLE, CLI_METRIC_WAL_SHOW } metric;
} cli_command;

/* cmd_stats.c — the newest archived WAL segment as wal-show --json and stats --json give it: wal, archived (UTC),
 * archived_ns, age_seconds (before now_ns), last_transaction, last_transaction_ns; NULL when l found none. */
struct wal_last;
json_t *cli_last_archived_json(const struct wal_last *l, int64_t now_ns);

/* The exit status for an error code (main.c). */
int cli_exit_status(int rc);

/* A failure already reported, or meant to be silent (wal-fetch of a file not in the archive): no message. */
#define CLI_EQUIET (-101)

extern const cli_command cmd_init, cmd_push, cmd_snapshots, cmd_restore, cmd_ls, cmd_cat, cmd_check, cmd_key,
	cmd_migrate;
extern const cli_command cmd_wal_push, cmd_wal_fetch, cmd_wal_show, cmd_pg_dump, cmd_pg_backup, cmd_pg_restore;
extern const cli_command cmd_bench;
extern const cli_command cmd_locks, cmd_unlock;
extern const cli_command cmd_copy;
extern const cli_command cmd_forget;
extern const cli_command cmd_prune;
extern const cli_command cmd_stats;
extern const cli_command cmd_drill;

/* args.c — parsing. */
/* Sets a usage error in the arguments (exit 2, with a pointer to `dre help`) and returns CLI_EUSAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#ifdef __clang_analyzer__
/* For clang-tidy's analyzer (make lint), as in err.h: cli_usage always fails. */
#define cli_usage(...) ({ (cli_usage)(__VA_ARGS__); CLI_EUSAGE; })
#endif
/* Whether cli_usage() was called: other CLI_EUSAGE errors (no password, ...) are not about the arguments. */
bool cli_usage_hint(void);
/* Turns DRE_EINVAL from an engine check of user input (a name, a time, parameters) into a usage error. */
int cli_as_usage(int rc);
/* Parses argv[*i..argc) into a (options of the command, by index in opts) and ctx (global options). With
 * stop_at_positional it stops at the first positional argument, leaving *i on it (the command name).
 * a->pos is malloc'd: cli_args_free() it whatever the result. */
int cli_parse(int argc, char **argv, int *i, const cli_opt *opts, cli_ctx *ctx, cli_args *a,
	      bool stop_at_positional);
void cli_args_free(cli_args *a);
/* The values of the command's option idx, each time it was given, in order: *n of them in *out (malloc'd; NULL
 * when there are none). */
int cli_opt_all(const cli_args *a, int idx, const char ***out, size_t *n);
/* Checks that there are between min and max positionals; what names the missing one. */
int cli_want_args(const cli_args *a, size_t min, size_t max, const char *what);
/* Numbers of option --opt (its name without dashes): "123"; sizes also "64K", "8MiB", "1g" (binary). */
int cli_parse_uint(const char *opt, const char *text, uint64_t max, uint64_t *out);
int cli_parse_size(const char *opt, const char *text, uint64_t max, uint64_t *out);

/* password.c — where passwords come from. Results are malloc'd; free them with cli_password_free(). */
/* The password to open the repository at url (named in the terminal prompt); cfg's password-file and
 * password-command come after the environment's sources. */
int cli_password_open(const char *url, const cli_config *cfg, char **out);
/* A password for a new key object: from the file named by the environment variable env_file (key add), or with
 * env_file NULL from the opening sources (init); else asked twice on the terminal. Empty ones are refused. */
int cli_password_new(const char *url, const cli_config *cfg, const char *env_file, char **out);
void cli_password_free(char *pass);

/* config.c — reads --config FILE into ctx->config (once the arguments are parsed), an error naming the file
 * and line for a key it does not know; cli_config_free() at exit. */
int cli_config_load(cli_ctx *ctx);
void cli_config_free(void);

/* open.c — the repository URL and opening it with the password. */
int cli_repo_url(cli_ctx *ctx, const char **out);
int cli_open_repo(cli_ctx *ctx, repo **out);
/* Opens the repository, runs fn, closes it; returns what fn returned. */
typedef int (*cli_repo_fn)(cli_ctx *ctx, repo *r, void *arg);
int cli_with_repo(cli_ctx *ctx, cli_repo_fn fn, void *arg);
/* The same with the snapshot `what` names (snap_find; before_ns -1 for the newest) loaded for fn. */
typedef int (*cli_snap_fn)(cli_ctx *ctx, repo *r, const snapshot *s, void *arg);
int cli_with_snapshot(cli_ctx *ctx, const char *what, int64_t before_ns, cli_snap_fn fn, void *arg);
/* The same with the newest snapshot that f also selects (snap_find_filtered; f may be NULL). */
int cli_with_snapshot_filtered(cli_ctx *ctx, const char *what, int64_t before_ns, const snap_filter *f,
			       cli_snap_fn fn, void *arg);

/* select.c — --tag, --host and --path (engine/repo/select.h): every value of the options at these indexes of
 * the command's table (-1: it has no such option), checked (a usage error names the option). The arrays are
 * malloc'd: cli_filter_free() f whatever the result. */
int cli_filter_parse(const cli_args *a, int tag, int host, int path, snap_filter *f);
void cli_filter_free(snap_filter *f);

/* output.c — formatting and hooks. */
void fmt_size(uint64_t n, char out[32]);
void fmt_ratio(uint64_t size, uint64_t stored, char out[32]);
void fmt_time_local(int64_t ns, char out[32]);
void fmt_time_utc(int64_t ns, char out[40]); /* "2026-11-21 14:30:00+00", as PostgreSQL reads it */
void fmt_id_short(const uint8_t id[CRYPTO_ID_LEN], char out[9]);
double mb_per_s(uint64_t bytes, double seconds);
/* A name as one line shows it: control characters as C escapes (\n, \t, \x1b) and a backslash as \\, so a
 * newline in a file name cannot break a line-per-entry format. cli_escape's copy is malloc'd (NULL: no memory). */
void cli_fputs_escaped(const char *s, FILE *f);
char *cli_escape(const char *s);
/* Prints j (taking the reference) indented, with a newline. */
int cli_print_json(FILE *f, json_t *j);
/* Prints s as JSON on stdout (snap_summary_json, then every node walked, with its chunk IDs when asked). */
int cli_print_snapshot_json(repo *r, const snapshot *s, bool with_chunks);
/* Prints "dre: warning: <msg>" on stderr; arg is NULL or the cli_progress whose line it first ends. */
void cli_warn(void *arg, const char *msg);

/* What the progress line says; hooks.arg points at one. */
typedef struct cli_progress {
	const char *verb; /* "read", "restored" */
	bool show_stored;
	bool open_line; /* a progress line is on the terminal without its newline */
} cli_progress;
/* Hooks for a push or restore: a progress line on stderr when it is a terminal and not --quiet. */
engine_hooks cli_hooks(const cli_ctx *ctx, cli_progress *p);
/* Ends a progress line the engine left open (it failed before its final report). */
void cli_progress_end(cli_progress *p);

#endif
