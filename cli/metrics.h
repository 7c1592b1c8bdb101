/*
 * metrics.h — metrics for alerting, in the Prometheus text exposition format that node_exporter's textfile
 * collector reads (`--metrics FILE`, config key metrics-file), and the same families printed by `dre stats
 * --prometheus`.
 *
 * After a command whose table entry names a metric kind (cli_command.metric) returns, main() calls
 * metrics_record() with the outcome. It merges into FILE what this run learnt, keeping every other series:
 *   - an exclusive flock(2) on FILE.lock, beside FILE (not FILE itself: the rename below replaces its inode),
 *     so that concurrent dre processes (archive_command runs wal-push many times a minute) never lose each
 *     other's lines and the failure counter is read, incremented and written by one process at a time;
 *   - FILE is read and parsed; a file that does not parse (or is larger than METRICS_FILE_MAX) is reported in a
 *     warning and written afresh, never trusted in part;
 *   - FILE.tmp.PID is written, fsync'd, renamed over FILE, and the directory fsync'd: node_exporter reads the
 *     old file or the new one, never half of one.
 * FILE gets mode 0644 whatever the umask (PostgreSQL runs archive_command under umask 0077): node_exporter
 * must read it, and it holds no secret, only names, times and sizes. The directory must be writable by every
 * user that runs dre with --metrics into it (postgres for wal-push, root for cron jobs), or give each user a
 * file of its own: node_exporter merges the families of every *.prom file.
 *
 * A failure to write FILE is a warning on standard error; the command's exit status stays what the command
 * made it, since a backup that worked must not be reported as failed because monitoring could not be told.
 *
 * Every series has the label repository (the URL, a local path made absolute): several repositories may write
 * one file without overwriting each other's series, and `dre stats --prometheus` on a monitoring host labels
 * its series the same way. Per-backup families add name (the snapshot name). Label values are escaped as the
 * format says (\\, \", \n). Families are written in name order, each with its HELP and TYPE line, and series in
 * label order, so that two versions of the file diff line by line. Timestamps are seconds since the epoch.
 */
#ifndef DRE_METRICS_H
#define DRE_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"

/* The largest metrics file read back: far above what dre writes (a few hundred bytes per backup name). */
#define METRICS_FILE_MAX (4u << 20)

/* Every family dre writes, in name order: X(name, type, the labels before repository: "name," or "", HELP text).
 * The one list behind the HELP lines, `dre help stats` and so the checks in tests/e2e/metrics.sh. */
#define METRICS_FAMILIES(X)                                                                                    \
	X("dre_backup_duration_seconds", "gauge", "name,",                                                     \
	  "Seconds the last successful backup of this name took (push, pg-dump, pg-backup).")                  \
	X("dre_backup_last_failure_timestamp_seconds", "gauge", "name,",                                       \
	  "When the last failed backup of this name ended, in seconds since the epoch.")                       \
	X("dre_backup_last_success_timestamp_seconds", "gauge", "name,",                                       \
	  "When the last successful backup of this name ended, in seconds since the epoch.")                   \
	X("dre_backup_size_bytes", "gauge", "name,", "Bytes the last successful backup of this name read.")    \
	X("dre_backup_stored_bytes", "gauge", "name,",                                                         \
	  "Bytes of new packs the last successful backup of this name stored, after deduplication.")           \
	X("dre_check_last_failure_timestamp_seconds", "gauge", "",                                             \
	  "When the last check that failed or found errors ended, in seconds since the epoch.")                \
	X("dre_check_last_success_timestamp_seconds", "gauge", "",                                             \
	  "When the last check that found no error ended, in seconds since the epoch.")                        \
	X("dre_drill_last_failure_timestamp_seconds", "gauge", "name,",                                        \
	  "When the last failed restore drill of this name ended, in seconds since the epoch.")                \
	X("dre_drill_last_success_timestamp_seconds", "gauge", "name,",                                        \
	  "When the last successful restore drill of this name ended, in seconds since the epoch.")            \
	X("dre_drill_row_mismatches", "gauge", "name,",                                                        \
	  "Tables whose row counts differed from the recorded ones in the last drill of this name.")           \
	X("dre_drill_rto_seconds", "gauge", "name,",                                                           \
	  "Seconds from the start of the last drill of this name to its checks passing (measured RTO).")       \
	X("dre_forget_last_failure_timestamp_seconds", "gauge", "",                                            \
	  "When the last forget that failed ended, in seconds since the epoch.")                               \
	X("dre_forget_last_success_timestamp_seconds", "gauge", "",                                            \
	  "When the last successful forget (not a dry run) ended, in seconds since the epoch.")                \
	X("dre_prune_last_failure_timestamp_seconds", "gauge", "",                                             \
	  "When the last prune that failed ended, in seconds since the epoch.")                                \
	X("dre_prune_last_success_timestamp_seconds", "gauge", "",                                             \
	  "When the last successful prune (not a dry run) ended, in seconds since the epoch.")                 \
	X("dre_repository_size_bytes", "gauge", "",                                                            \
	  "Bytes of every object in the repository as its store lists them (after check, prune, stats).")      \
	X("dre_wal_archive_failures_total", "counter", "",                                                     \
	  "Runs of wal-push (archive_command) that failed, since the metrics file was created.")               \
	X("dre_wal_last_archived_timestamp_seconds", "gauge", "",                                              \
	  "When the last WAL file was archived, in seconds since the epoch.")                                  \
	X("dre_wal_missing_segments", "gauge", "",                                                             \
	  "WAL segments missing inside the archived range of a timeline, not removed by retention (wal-show).")

/* A set of series, read from or to be written in the exposition format. */
typedef struct metrics metrics;

int metrics_new(metrics **out);
void metrics_free(metrics *m);
/* Sets the series of dre family `family` for repository (and name, for a per-name family; else NULL). */
int metrics_set(metrics *m, const char *family, const char *repository, const char *name, double value);
/* Prints m in the exposition format: families by name, HELP and TYPE first, series in label order. */
int metrics_print(const metrics *m, FILE *f);

/* The value of the repository label for ctx's repository: its URL, or a local path made absolute. */
void metrics_repository(cli_ctx *ctx, char *out, size_t cap);

/* With --metrics: the size of every object in r into ctx->run, for dre_repository_size_bytes (one listing of
 * the whole store; check and prune call it). A failure is a warning: the command itself went well. */
void metrics_repo_size(cli_ctx *ctx, repo *r);

/* Merges the outcome of a run of c into ctx->metrics_path as described above (ok: it exited 0; seconds: its
 * duration as main measured it; first_arg: its first positional argument, NULL if none, the name when
 * ctx->run.name is NULL). A failure is a warning on standard error, nothing more. */
void metrics_record(cli_ctx *ctx, const cli_command *c, const char *first_arg, bool ok, double seconds);

#endif
