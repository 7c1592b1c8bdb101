/*
 * cmd_pg.c — the PostgreSQL commands: wal-push and wal-fetch (archive_command and restore_command), wal-show
 * (the archive's window and gaps, for people and for monitoring), pg-backup and pg-restore.
 *
 * wal-push and wal-fetch run with PostgreSQL's environment, in the data directory: their settings come from
 * --config, and wal-fetch keeps exit status 1 for "not in the archive" alone, because PostgreSQL asks for
 * files that never existed (the next timeline's .history) and must tell that apart from a failure.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/pg/pg.h"
#include "engine/pipeline/meter.h"
#include "engine/pg/walexpire.h"

/* ---- wal-push ---- */

enum { WP_PGDATA };
static const cli_opt wal_push_table[] = {{"pgdata", 0, true}, {0}};

struct wal_push_job {
	const char *path, *pgdata;
};

static int wal_push_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	const struct wal_push_job *j = arg;
	wal_push_result res;
	TRY(engine_wal_push(r, j->path, j->pgdata, &res));
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:s, s:s, s:I, s:I, s:b}", "file", j->path, "key", res.key,
							"size", (json_int_t)res.size, "stored", (json_int_t)res.stored,
							"already_archived", res.already));
	if (!ctx->quiet) {
		if (res.already)
			printf("%s was already archived with the same contents\n", j->path);
		else
			printf("archived %s: %" PRIu64 " bytes, %" PRIu64 " stored\n", j->path, res.size, res.stored);
	}
	return 0;
}

static int wal_push_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 1, 1, "the WAL file to archive (archive_command's %p)"));
	struct wal_push_job j = {a->pos[0], a->opt[WP_PGDATA] ? a->opt[WP_PGDATA] : ctx->config.pgdata};
	return cli_with_repo(ctx, wal_push_in_repo, &j);
}

const cli_command cmd_wal_push = {
	.name = "wal-push",
	.summary = "archive a WAL file (PostgreSQL's archive_command)",
	.opts = wal_push_table,
	.run = wal_push_run,
	.metric = CLI_METRIC_WAL,
	.usage = "usage: dre wal-push [--pgdata DIR] PATH\n"
		 "\n"
		 "Archives the WAL segment, .partial, .backup or .history file at PATH, compressed and encrypted,\n"
		 "and returns only when it is durable in the repository:\n"
		 "    archive_command = 'dre --config /etc/dre/pg.conf wal-push %p'\n"
		 "Pushing a file that is already archived with the same contents succeeds; a different file under an\n"
		 "archived name is refused (exit 1). Files are kept per cluster (system identifier, from a segment's\n"
		 "header, else from global/pg_control in --pgdata or the current directory) and per timeline.\n",
};

/* ---- wal-fetch ---- */

enum { WF_PGDATA, WF_PREFETCH };
static const cli_opt wal_fetch_table[] = {{"pgdata", 0, true}, {"prefetch", 0, true}, {0}};

#define WAL_PREFETCH_DEFAULT 8

struct wal_fetch_job {
	const char *name, *dest, *pgdata;
	int prefetch;
	bool hit; /* already moved into place from the prefetch spool */
};

static int wal_fetch_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	(void)ctx;
	const struct wal_fetch_job *j = arg;
	if (!j->hit) {
		int rc = engine_wal_fetch(r, j->name, j->dest, j->pgdata, 0);
		if (rc == DRE_ENOTFOUND) { /* engine_wal_fetch keeps this code for "not archived" */
			wal_name wn;
			if (wal_name_parse(j->name, &wn) == 0 && wn.type == WAL_SEGMENT)
				wal_spool_remove(j->dest); /* the end of the archive: nothing ahead to keep */
			return CLI_EQUIET;
		}
		TRY(rc);
	}
	/* PostgreSQL has its file; fetching ahead is only an optimization, its failures are not this call's */
	if (engine_wal_prefetch(r, j->name, j->dest, j->pgdata, 0, j->prefetch) < 0 && !ctx->quiet)
		fprintf(stderr, "dre: warning: prefetch after %s: %s\n", j->name, err_msg());
	return 0;
}

/* 1 is PostgreSQL's "not there"; anything else must not look like it (> 125: recovery stops, not promotes). */
static int wal_fetch_exit(int rc)
{
	return rc == CLI_EQUIET ? 1 : 128 + cli_exit_status(rc);
}

static int wal_fetch_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 2, 2, "the WAL file name and the path to write it to (restore_command's %f %p)"));
	struct wal_fetch_job j = {a->pos[0], a->pos[1], a->opt[WF_PGDATA], WAL_PREFETCH_DEFAULT, false};
	if (a->opt[WF_PREFETCH]) {
		uint64_t v;
		TRY(cli_parse_uint("prefetch", a->opt[WF_PREFETCH], 64, &v));
		j.prefetch = (int)v;
	}
	bool refill;
	TRY(wal_spool_take(j.name, j.dest, j.prefetch, &j.hit, &refill));
	if (j.hit && !refill)
		return 0; /* no need to open the repository at all */
	return cli_with_repo(ctx, wal_fetch_in_repo, &j);
}

const cli_command cmd_wal_fetch = {
	.name = "wal-fetch",
	.summary = "restore an archived WAL file (PostgreSQL's restore_command)",
	.opts = wal_fetch_table,
	.run = wal_fetch_run,
	.exit_status = wal_fetch_exit,
	.usage = "usage: dre wal-fetch [--pgdata DIR] [--prefetch N] NAME PATH\n"
		 "\n"
		 "Writes archived WAL file NAME to PATH, checking its checksum:\n"
		 "    restore_command = 'dre --config /etc/dre/pg.conf wal-fetch %f %p'\n"
		 "The cluster is the one whose global/pg_control is in --pgdata or the current directory (where\n"
		 "PostgreSQL runs restore_command), else the repository's only one.\n"
		 "When PATH is in pg_wal (as PostgreSQL's %p is), a segment's fetch also fetches the next N segments\n"
		 "(--prefetch, default 8, 0 for none) in parallel into pg_wal/.dre-prefetch/, verified, so that the\n"
		 "next calls only move a file into place; that directory is emptied at the end of the archive and\n"
		 "by the first wal-push after promotion.\n"
		 "\n"
		 "Exit status: 0 written; 1 NAME is not in the archive (silently: PostgreSQL asks for files that\n"
		 "never existed); any other error 128 + dre's usual status (129 I/O, 132 wrong password, 133\n"
		 "corrupt object), which PostgreSQL takes as a failure that stops recovery rather than as the end\n"
		 "of the archive.\n",
};

/* ---- wal-show ---- */

/* A backup restores to any time after its end when its own WAL is there and every segment after its start is. */
static bool backup_pitr(const pg_sys_view *v, size_t j, const pg_backup_entry *e)
{
	return e->wal_complete && v->any && v->b[j].start_segno >= v->run_from;
}

static json_t *gaps_json(const wal_timeline *t, uint32_t seg_size, const pg_sys_view *v, size_t *ngaps,
			 size_t *nexpired)
{
	json_t *a = json_array();
	for (size_t i = 1; i < t->nseg; i++)
		if (t->segnos[i] != t->segnos[i - 1] + 1) {
			char from[WAL_NAME_MAX], to[WAL_NAME_MAX];
			bool expired = wal_expire_gap_expired(t->segnos[i - 1] + 1, t->segnos[i] - 1, v->first_free, v->b, v->n);
			wal_segment_name(t->tli, t->segnos[i - 1] + 1, seg_size, from);
			wal_segment_name(t->tli, t->segnos[i] - 1, seg_size, to);
			json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:b}", "from", from, "to", to, "segments",
							   (json_int_t)(t->segnos[i] - t->segnos[i - 1] - 1), "expired",
							   expired));
			(*(expired ? nexpired : ngaps))++;
		}
	return a;
}

static int wal_show_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	(void)arg;
	pg_status st;
	wal_last newest = {0};
	int64_t now_ns = meter_now_ns();
	size_t ngaps = 0, nexpired = 0, nbroken = 0;
	int rc = 0;
	TRY(engine_pg_status(r, &st));
	json_t *systems = json_array();
	for (size_t i = 0; rc == 0 && i < st.archive.n; i++) {
		const wal_system *s = &st.archive.sys[i];
		pg_sys_view v;
		wal_last sys_last;
		char sysid[24];
		if ((rc = wal_system_last(r, s, &sys_last)) < 0 || (rc = pg_sys_view_make(&st, s, &v)) < 0)
			break;
		if (sys_last.found && (!newest.found || sys_last.archived_ns > newest.archived_ns))
			newest = sys_last;
		snprintf(sysid, sizeof sysid, "%" PRIu64, s->system_id);
		json_t *tls = json_array(), *backups = json_array(), *window = NULL;
		for (size_t k = 0; k < s->ntl; k++) {
			const wal_timeline *t = &s->tls[k];
			char first[WAL_NAME_MAX] = "", last[WAL_NAME_MAX] = "";
			ctx->run.wal_missing += pg_sys_view_missing(&v, t, NULL);
			if (t->nseg) {
				wal_segment_name(t->tli, t->segnos[0], s->seg_size, first);
				wal_segment_name(t->tli, t->segnos[t->nseg - 1], s->seg_size, last);
			}
			json_array_append_new(tls, json_pack("{s:i, s:s?, s:s?, s:I, s:o, s:b, s:I, s:I}", "timeline",
							     (int)t->tli, "first", t->nseg ? first : NULL, "last",
							     t->nseg ? last : NULL, "segments", (json_int_t)t->nseg,
							     "gaps", gaps_json(t, s->seg_size, &v, &ngaps, &nexpired), "history",
							     t->history, "partial", (json_int_t)t->npartial,
							     "backup_files", (json_int_t)t->nbackup));
		}
		const pg_backup_entry *earliest = NULL; /* of the backups that restore to any time after their end */
		for (size_t j = 0; j < v.n; j++) {
			const pg_backup_entry *e = &st.backups[v.idx[j]];
			char id[2 * CRYPTO_ID_LEN + 1], start[24], stop[24], stop_time[40];
			bool pitr = backup_pitr(&v, j, e);
			hex_encode(e->id, CRYPTO_ID_LEN, id);
			wal_lsn_format(e->info.start_lsn, start);
			wal_lsn_format(e->info.stop_lsn, stop);
			fmt_time_utc(e->info.stop_ns, stop_time);
			nbroken += !e->wal_complete;
			if (pitr && (earliest == NULL || e->info.stop_ns < earliest->info.stop_ns))
				earliest = e;
			json_array_append_new(
				backups,
				json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s?, s:b}", "id", id, "name",
					  e->name, "timeline", (int)e->info.timeline, "start_lsn", start, "stop_lsn",
					  stop, "start_wal", e->info.start_wal, "stop_wal", e->info.stop_wal,
					  "restorable_from", stop_time, "stop_time_ns", (json_int_t)e->info.stop_ns,
					  "wal_complete", e->wal_complete, "missing", e->wal_complete ? NULL : e->wal_missing,
					  "pitr", pitr));
		}
		if (earliest != NULL) {
			char id[2 * CRYPTO_ID_LEN + 1], from[40], last[WAL_NAME_MAX];
			hex_encode(earliest->id, CRYPTO_ID_LEN, id);
			fmt_time_utc(earliest->info.stop_ns, from);
			wal_segment_name(v.last_tli, v.last, s->seg_size, last);
			window = json_pack("{s:s, s:I, s:s, s:s, s:s}", "from", from, "from_ns",
					   (json_int_t)earliest->info.stop_ns, "backup", id, "first_wal",
					   earliest->info.start_wal, "last_wal", last);
		}
		json_array_append_new(systems, json_pack("{s:s, s:I, s:o, s:o, s:o?, s:o?}", "system_id", sysid,
							 "segment_size", (json_int_t)s->seg_size, "timelines", tls,
							 "backups", backups, "recoverable", window, "last_archived",
							 cli_last_archived_json(&sys_last, now_ns)));
		pg_sys_view_free(&v);
	}
	if (rc < 0) {
		json_decref(systems);
		pg_status_free(&st);
		return rc;
	}
	ctx->run.wal_shown = true;
	if (ctx->json) {
		rc = cli_print_json(stdout, json_pack("{s:o, s:I, s:I, s:I, s:I, s:o?}", "systems", systems, "gaps",
						      (json_int_t)ngaps, "missing_segments", (json_int_t)ctx->run.wal_missing,
						      "expired_gaps", (json_int_t)nexpired,
						      "backups_missing_wal", (json_int_t)nbroken, "last_archived",
						      cli_last_archived_json(&newest, now_ns)));
	} else {
		if (st.archive.n == 0)
			printf("no WAL archived in this repository\n");
		size_t si;
		json_t *sj;
		json_array_foreach(systems, si, sj) {
			printf("system %s (segments of %lld bytes)\n", json_string_value(json_object_get(sj, "system_id")),
			       (long long)json_integer_value(json_object_get(sj, "segment_size")));
			size_t ti;
			json_t *tj;
			json_array_foreach(json_object_get(sj, "timelines"), ti, tj) {
				const char *first = json_string_value(json_object_get(tj, "first"));
				printf("  timeline %d: %s%s%s, %lld segments%s%s\n",
				       (int)json_integer_value(json_object_get(tj, "timeline")), first ? first : "no segments",
				       first ? " .. " : "", first ? json_string_value(json_object_get(tj, "last")) : "",
				       (long long)json_integer_value(json_object_get(tj, "segments")),
				       json_is_true(json_object_get(tj, "history")) ? ", history file" : "",
				       json_integer_value(json_object_get(tj, "partial")) ? ", partial segment" : "");
				size_t gi;
				json_t *gj;
				json_array_foreach(json_object_get(tj, "gaps"), gi, gj) {
					const char *from = json_string_value(json_object_get(gj, "from"));
					const char *to = json_string_value(json_object_get(gj, "to"));
					bool expired = json_is_true(json_object_get(gj, "expired"));
					long long n = (long long)json_integer_value(json_object_get(gj, "segments"));
					printf("    %s: %s%s%s (%lld segment%s%s)\n", expired ? "expired" : "MISSING", from,
					       strcmp(from, to) ? " .. " : "", strcmp(from, to) ? to : "", n, n == 1 ? "" : "s",
					       expired ? ", which no base backup kept needs" : "");
				}
			}
			size_t bi;
			json_t *bj;
			json_array_foreach(json_object_get(sj, "backups"), bi, bj) {
				bool complete = json_is_true(json_object_get(bj, "wal_complete"));
				bool pitr = json_is_true(json_object_get(bj, "pitr"));
				printf("  base backup %.8s (%s) timeline %d, WAL %s .. %s, restores to %s%s%s\n",
				       json_string_value(json_object_get(bj, "id")),
				       json_string_value(json_object_get(bj, "name")),
				       (int)json_integer_value(json_object_get(bj, "timeline")),
				       json_string_value(json_object_get(bj, "start_wal")),
				       json_string_value(json_object_get(bj, "stop_wal")),
				       json_string_value(json_object_get(bj, "restorable_from")),
				       !complete ? "; NOT RESTORABLE: missing "
				       : pitr	 ? " or later"
						 : " only (its end: the WAL after it is not all archived)",
				       complete ? "" : json_string_value(json_object_get(bj, "missing")));
			}
			json_t *la = json_object_get(sj, "last_archived");
			if (la != NULL && json_object_get(la, "archived") != NULL)
				printf("  last archived segment: %s at %s (%.0f s ago)\n",
				       json_string_value(json_object_get(la, "wal")),
				       json_string_value(json_object_get(la, "archived")),
				       json_real_value(json_object_get(la, "age_seconds")));
			json_t *w = json_object_get(sj, "recoverable");
			if (w != NULL)
				printf("  point-in-time recovery: from %s (base backup %.8s) to the end of the archive (%s)\n",
				       json_string_value(json_object_get(w, "from")), json_string_value(json_object_get(w, "backup")),
				       json_string_value(json_object_get(w, "last_wal")));
			else
				printf("  point-in-time recovery: none (no base backup has all the WAL after it)\n");
		}
		json_decref(systems);
	}
	pg_status_free(&st);
	TRY(rc);
	if (ngaps || nbroken)
		return err_set(DRE_ECORRUPT, "the WAL archive has %zu gap%s%s%zu base backup%s without all its WAL", ngaps,
			       ngaps == 1 ? "" : "s", ", ", nbroken, nbroken == 1 ? "" : "s");
	return 0;
}

static int wal_show_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 0, 0, ""));
	return cli_with_repo(ctx, wal_show_in_repo, NULL);
}

const cli_command cmd_wal_show = {
	.name = "wal-show",
	.summary = "show the WAL archive: per timeline its range and gaps, and the base backups",
	.opts = NULL,
	.run = wal_show_run,
	.metric = CLI_METRIC_WAL_SHOW,
	.usage = "usage: dre wal-show [--json]\n"
		 "\n"
		 "For each cluster (system identifier) and timeline: the first and last archived segment, every\n"
		 "missing segment between them, the history file; then each base backup, its WAL range and the\n"
		 "earliest time it can restore to (its end), and the point-in-time window: from the end of the\n"
		 "oldest base backup with all the WAL after it to the end of the archive. Segments that WAL expiry\n"
		 "('dre forget', format-spec.md 16.5) removed show as expired, not missing. Exit status 5 when a\n"
		 "segment is missing or a base backup lacks WAL it needs, so that monitoring can alert on it.\n"
		 "\n"
		 "The last archived segment (the highest segment number, of the newest timeline among equals) is shown\n"
		 "with the time wal-push archived it, which the segment's object records (by the clock of the host\n"
		 "that ran wal-push, not the store's modification time), so RPO lag can be watched from the\n"
		 "repository alone. --json: per system and at the top (the newest of all systems) \"last_archived\":\n"
		 "{\"wal\", \"archived\" (UTC), \"archived_ns\", \"age_seconds\" (now minus archived), \"last_transaction\",\n"
		 "\"last_transaction_ns\" (the segment's last commit or abort; absent when it has none)}, or null.\n"
		 "\n"
		 "With --metrics FILE it records dre_wal_missing_segments (the segments it lists as missing), which\n"
		 "the alert rule DreWalGap reads: run it from a timer, e.g. every 15 minutes.\n",
};

/* ---- pg-backup ---- */

enum { PB_PGDATA, PB_DBNAME, PB_NAME, PB_FAST, PB_TIMEOUT, PB_FORCE_READ };
static const cli_opt pg_backup_table[] = {
	{"pgdata", 0, true}, {"dbname", 'd', true}, {"name", 0, true}, {"fast", 0, false}, {"archive-timeout", 0, true},
	{"force-read", 0, false}, {0},
};

static int pg_backup_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	pg_backup_opts *o = arg;
	cli_progress prog = {.verb = "read", .show_stored = true};
	pg_backup_result res;
	o->hooks = cli_hooks(ctx, &prog);
	o->threads = ctx->threads;
	int rc = engine_pg_backup(r, o, &res);
	cli_progress_end(&prog);
	TRY(rc);
	ctx->run.sized = true;
	ctx->run.size = res.push.size;
	ctx->run.stored = res.push.stored_new;
	char id[2 * CRYPTO_ID_LEN + 1], start[24], stop[24];
	hex_encode(res.push.id, CRYPTO_ID_LEN, id);
	wal_lsn_format(res.info.start_lsn, start);
	wal_lsn_format(res.info.stop_lsn, stop);
	if (ctx->json)
		return cli_print_json(
			stdout, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s?, s:f, s:s, s:s, s:i, s:s, s:s, s:f}", "id",
					  id, "name", o->name ? o->name : "pg", "size", (json_int_t)res.push.size,
					  "stored_new", (json_int_t)res.push.stored_new, "files", (json_int_t)res.push.files,
					  "files_skipped", (json_int_t)res.push.files_skipped, "bytes_skipped",
					  (json_int_t)res.push.bytes_skipped, "parent",
					  res.push.parent[0] ? res.push.parent : NULL, "seconds",
					  res.push.seconds, "start_lsn", start, "stop_lsn", stop, "timeline",
					  (int)res.info.timeline, "start_wal", res.info.start_wal, "stop_wal",
					  res.info.stop_wal, "wal_wait_seconds", res.wal_wait_seconds));
	if (!ctx->quiet) {
		char size[32], stored[32], skipped[32];
		fmt_size(res.push.size, size);
		fmt_size(res.push.stored_new, stored);
		fmt_size(res.push.bytes_skipped, skipped);
		printf("base backup %.8s saved: %s in %zu files, %s new stored, %.1f MB/s, %.2f s; timeline %u, "
		       "LSN %s .. %s, WAL %s .. %s archived\n",
		       id, size, res.push.files, stored, mb_per_s(res.push.size, res.push.seconds), res.push.seconds,
		       res.info.timeline, start, stop, res.info.start_wal, res.info.stop_wal);
		if (res.push.parent[0])
			printf("%zu files (%s) unchanged since base backup %.8s: not read\n", res.push.files_skipped,
			       skipped, res.push.parent);
	}
	return 0;
}

static int pg_backup_run(cli_ctx *ctx, const cli_args *a)
{
	pg_backup_opts o = {.pgdata = a->opt[PB_PGDATA] ? a->opt[PB_PGDATA] : ctx->config.pgdata,
			    .conninfo = a->opt[PB_DBNAME] ? a->opt[PB_DBNAME] : ctx->config.dbname,
			    .name = a->opt[PB_NAME],
			    .fast = a->opt[PB_FAST] != NULL,
			    .force_read = a->opt[PB_FORCE_READ] != NULL};
	ctx->run.name = o.name ? o.name : "pg"; /* the metrics' name, even when it fails */
	TRY(cli_want_args(a, 0, 0, ""));
	if (o.name)
		TRY(cli_as_usage(engine_check_name(o.name)));
	if (a->opt[PB_TIMEOUT]) {
		uint64_t v;
		TRY(cli_parse_uint("archive-timeout", a->opt[PB_TIMEOUT], 86400, &v));
		o.archive_timeout = v ? (int)v : 1;
	}
	return cli_with_repo(ctx, pg_backup_in_repo, &o);
}

const cli_command cmd_pg_backup = {
	.name = "pg-backup",
	.summary = "online base backup of a running PostgreSQL cluster",
	.opts = pg_backup_table,
	.run = pg_backup_run,
	.metric = CLI_METRIC_BACKUP,
	.usage = "usage: dre pg-backup [--pgdata DIR] [--dbname CONNINFO] [--name NAME] [--fast]\n"
		 "                     [--archive-timeout SECONDS] [--force-read]\n"
		 "\n"
		 "Connects with libpq, runs pg_backup_start, backs up the data directory and its tablespaces through\n"
		 "the dedup pipeline (leaving out pg_wal, postmaster.pid, temporary files and the rest PostgreSQL's\n"
		 "documentation lists), runs pg_backup_stop, stores backup_label, and waits until the WAL from the\n"
		 "backup's start to its end is in this repository's archive (so archive_command must be\n"
		 "'dre wal-push %p' into it). Only then is the snapshot (kind pg-base) recorded.\n"
		 "\n"
		 "A file is not read when the newest base backup of the same name and cluster recorded it with the\n"
		 "same size, mtime, ctime, inode and device, and its mtime is more than 2 s older than that backup's\n"
		 "start (a file written during or after it is always read); its chunks are taken from that backup.\n"
		 "--force-read reads every file: run one regularly (e.g. weekly), since a change that keeps all of\n"
		 "these (a restored file system image, a clock set back) is only seen by reading.\n"
		 "\n"
		 "Options (also the config file's pgdata and dbname):\n"
		 "  --pgdata DIR           the data directory (default: the server's data_directory)\n"
		 "  -d, --dbname CONNINFO  a libpq connection string or URI (default: PGHOST, PGPORT, PGUSER, ...)\n"
		 "  --name NAME            the snapshot name (default pg)\n"
		 "  --fast                 an immediate checkpoint at the start (default: a spread one)\n"
		 "  --archive-timeout S    how long to wait for the WAL to be archived (default 60)\n"
		 "  --force-read           read every file, whatever the previous base backup recorded\n",
};

/* ---- pg-restore ---- */

enum { PR_PGDATA, PR_TIME, PR_LSN, PR_LATEST, PR_BACKUP, PR_TIMELINE, PR_FORCE, PR_NAME, PR_COMMAND, PR_TSMAP,
       PR_ARCHIVE_MODE };
static const cli_opt pg_restore_table[] = {
	{"pgdata", 'D', true},	   {"time", 0, true},  {"lsn", 0, true},  {"latest", 0, false},
	{"backup", 0, true},	   {"target-timeline", 0, true}, {"force", 0, false}, {"name", 0, true},
	{"restore-command", 0, true}, {"tablespace-map", 0, true}, {"archive-mode", 0, true}, {0},
};

static void append(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);
	snprintf(out + n, cap - n, "%s", s);
}

/* The restore_command that reaches this repository the way this run did: the same binary and --config. */
static int restore_command(cli_ctx *ctx, char *out, size_t cap)
{
	char exe[PATH_MAX], abs[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return err_sys("cannot tell where the dre binary is (for restore_command)");
	exe[n] = '\0';
	out[0] = '\0';
	if (ctx->config_path != NULL) {
		if (realpath(ctx->config_path, abs) == NULL)
			return err_sys("cannot resolve %s", ctx->config_path);
		pg_command_quote(out, cap, exe);
		append(out, cap, " --config ");
		pg_command_quote(out, cap, abs);
	} else {
		const char *url, *pwfile = getenv("DRE_PASSWORD_FILE");
		TRY(cli_repo_url(ctx, &url));
		if (pwfile == NULL || *pwfile == '\0')
			return cli_usage("restore_command needs the password without a terminal: give --config FILE "
					 "(with password-file), set DRE_PASSWORD_FILE, or --restore-command CMD");
		append(out, cap, "DRE_REPOSITORY=");
		pg_command_quote(out, cap, strstr(url, "://") == NULL && realpath(url, abs) ? abs : url);
		append(out, cap, " DRE_PASSWORD_FILE=");
		pg_command_quote(out, cap, realpath(pwfile, abs) ? abs : pwfile);
		append(out, cap, " ");
		pg_command_quote(out, cap, exe);
	}
	append(out, cap, " wal-fetch %f %p");
	return 0;
}

static int pg_restore_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	pg_restore_opts *o = arg;
	cli_progress prog = {.verb = "restored"};
	pg_restore_result res;
	o->hooks = cli_hooks(ctx, &prog);
	o->threads = ctx->threads;
	int rc = engine_pg_restore(r, o, &res);
	cli_progress_end(&prog);
	TRY(rc);
	char id[2 * CRYPTO_ID_LEN + 1], stop[40];
	hex_encode(res.id, CRYPTO_ID_LEN, id);
	fmt_time_utc(res.info.stop_ns, stop);
	bool off = o->archive_mode == PG_ARCHIVE_OFF;
	if (ctx->json)
		return cli_print_json(
			stdout, json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:s, s:s, s:s, s:s?, s:s?}", "backup", id,
					  "pgdata", o->pgdata, "backup_timeline", (int)res.info.timeline,
					  "target_timeline", (int)res.target_timeline, "bytes",
					  (json_int_t)res.restore.bytes, "files", (json_int_t)res.restore.files,
					  "wal_segments", (json_int_t)res.wal_segments, "wal_last", res.wal_last,
					  "restore_command", o->restore_command, "archive_mode_written",
					  off ? "off" : "preserve", "archive_mode",
					  off ? "off" : res.archive_mode_found[0] ? res.archive_mode_found : NULL,
					  "archive_command",
					  res.archive_command_found[0] ? res.archive_command_found : NULL));
	if (!ctx->quiet) {
		char size[32];
		fmt_size(res.restore.bytes, size);
		printf("restored base backup %.8s (timeline %u, ended %s) into %s: %s in %zu files\n"
		       "archive checked: %" PRIu64 " WAL segments from %s to %s, target timeline %u\n"
		       "wrote recovery.signal and the recovery settings in postgresql.auto.conf.\n"
		       "Next: start PostgreSQL on it (pg_ctl -D %s start); it replays the WAL to the target and "
		       "promotes.\n",
		       id, res.info.timeline, stop, o->pgdata, size, res.restore.files, res.wal_segments,
		       res.info.start_wal, res.wal_last[0] ? res.wal_last : res.info.start_wal, res.target_timeline,
		       o->pgdata);
		if (off)
			printf("archive mode: off (--archive-mode off wrote archive_mode = 'off' into "
			       "postgresql.auto.conf): the restored cluster will not archive WAL.\n");
		else if (res.archive_mode_found[0] && strcmp(res.archive_mode_found, "off") != 0)
			printf("archive mode: preserved (archive_mode = '%s', archive_command = '%s', as backed up): "
			       "started as it is, the cluster archives its new timeline there, into the production "
			       "archive if that is where it points. For a test restore use --archive-mode off, or "
			       "'dre drill --pg'.\n",
			       res.archive_mode_found, res.archive_command_found);
		else
			printf("archive mode: preserved (%s): for a test restore use --archive-mode off, or "
			       "'dre drill --pg'.\n",
			       res.archive_mode_found[0] ? "archive_mode = 'off', as backed up"
							 : "the restored configuration does not set archive_mode; the "
							   "server's configuration elsewhere decides");
	}
	return 0;
}

static int pg_restore_run(cli_ctx *ctx, const cli_args *a)
{
	static char command[8192];
	pg_restore_opts o = {.pgdata = a->opt[PR_PGDATA],
			     .backup = a->opt[PR_BACKUP],
			     .name = a->opt[PR_NAME],
			     .force = a->opt[PR_FORCE] != NULL,
			     .tablespace_map = a->opt[PR_TSMAP]};
	TRY(cli_want_args(a, 0, 0, ""));
	if (o.pgdata == NULL || *o.pgdata == '\0')
		return cli_usage("give the data directory to restore into with --pgdata DIR");
	int targets = (a->opt[PR_TIME] != NULL) + (a->opt[PR_LSN] != NULL) + (a->opt[PR_LATEST] != NULL);
	if (targets > 1)
		return cli_usage("give one of --time, --lsn and --latest");
	if (targets == 0 && o.backup == NULL)
		return cli_usage("give the recovery target: --time T, --lsn LSN or --latest (or --backup ID)");
	if (a->opt[PR_TIME]) {
		o.target = PG_TARGET_TIME;
		TRY(cli_as_usage(engine_parse_time(a->opt[PR_TIME], &o.time_ns)));
	} else if (a->opt[PR_LSN]) {
		o.target = PG_TARGET_LSN;
		TRY(cli_as_usage(wal_lsn_parse(a->opt[PR_LSN], &o.lsn)));
	}
	const char *tl = a->opt[PR_TIMELINE];
	if (tl && strcmp(tl, "latest") != 0) {
		uint64_t v;
		TRY(cli_parse_uint("target-timeline", tl, UINT32_MAX, &v));
		if (v == 0)
			return cli_usage("--target-timeline: timelines start at 1");
		o.timeline = (uint32_t)v;
	}
	if (o.backup && (strlen(o.backup) < 4 || strspn(o.backup, "0123456789abcdef") != strlen(o.backup)))
		return cli_usage("--backup: an ID prefix of at least 4 lowercase hex digits");
	const char *am = a->opt[PR_ARCHIVE_MODE];
	if (am != NULL && strcmp(am, "off") == 0)
		o.archive_mode = PG_ARCHIVE_OFF;
	else if (am != NULL && strcmp(am, "preserve") != 0)
		return cli_usage("--archive-mode: '%s' is not off or preserve", am);
	if (a->opt[PR_COMMAND])
		snprintf(command, sizeof command, "%s", a->opt[PR_COMMAND]);
	else
		TRY(restore_command(ctx, command, sizeof command));
	o.restore_command = command;
	return cli_with_repo(ctx, pg_restore_in_repo, &o);
}

const cli_command cmd_pg_restore = {
	.name = "pg-restore",
	.summary = "restore a base backup for point-in-time recovery",
	.opts = pg_restore_table,
	.run = pg_restore_run,
	.usage = "usage: dre pg-restore --pgdata DIR (--time T | --lsn LSN | --latest | --backup ID)\n"
		 "                      [--target-timeline N|latest] [--name NAME] [--force]\n"
		 "                      [--restore-command CMD] [--tablespace-map OID=DIR[,...]]\n"
		 "                      [--archive-mode off|preserve]\n"
		 "\n"
		 "Chooses the newest base backup that ended before the target on the target timeline's history,\n"
		 "checks that the archive holds every WAL segment from the backup's start to the target (naming\n"
		 "the first missing one), restores the files into DIR (which must be empty or absent, unless\n"
		 "--force), and writes recovery.signal and, in postgresql.auto.conf, restore_command,\n"
		 "recovery_target_time or _lsn, recovery_target_timeline and recovery_target_action = 'promote'.\n"
		 "Then start PostgreSQL on DIR. The output says which archive mode it wrote.\n"
		 "\n"
		 "Options:\n"
		 "  -D, --pgdata DIR         where to restore\n"
		 "  --time T                 recover up to T: \"2026-11-21 14:30:00+00\" (local time without a zone)\n"
		 "  --lsn LSN                recover up to LSN (such as 0/5000060)\n"
		 "  --latest                 recover to the end of the archive\n"
		 "  --backup ID              this base backup (an ID prefix); with no target, to the end of the archive\n"
		 "  --target-timeline N      the timeline to follow (default: the latest in the archive)\n"
		 "  --name NAME              only base backups of this name\n"
		 "  --force                  restore into a non-empty directory\n"
		 "  --restore-command CMD    the restore_command to write (default: this dre with the same --config)\n"
		 "  --tablespace-map OID=DIR[,OID=DIR]  restore these tablespaces there (default: where they were;\n"
		 "                           each must be empty or absent) and link pg_tblspc/OID to it\n"
		 "  --archive-mode preserve  keep the backed-up archive_mode and archive_command (default): for a\n"
		 "                           cluster that replaces the one backed up and goes on archiving\n"
		 "  --archive-mode off       write archive_mode = 'off' into postgresql.auto.conf: for a test\n"
		 "                           restore, which would otherwise archive its new timeline into the\n"
		 "                           production archive, where a later recovery to 'latest' follows it\n",
};
