/*
 * cmd_stats.c — `dre stats`: what the metrics files of the hosts that run the backups would say, computed from
 * the repository alone (engine/stats.h), for a monitoring host that runs none: a table, --json, or
 * --prometheus (the families of metrics.h it can know, in the same format and with the same labels). Its help
 * text is also where every metric is documented.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <limits.h>

#include "cli/metrics.h"
#include "engine/pipeline/meter.h"
#include "engine/stats.h"

enum { S_PROMETHEUS };
static const cli_opt stats_opts_table[] = {{"prometheus", 0, false}, {0}};

/* Seconds to the millisecond. */
static double ns_seconds(int64_t ns)
{
	int64_t ms = ns / 1000000;
	return (double)ms / 1000;
}

json_t *cli_last_archived_json(const struct wal_last *l, int64_t now)
{
	char at[40], xact[40];
	if (!l->found)
		return NULL;
	fmt_time_utc(l->archived_ns, at);
	fmt_time_utc(l->last_xact_ns, xact);
	return json_pack("{s:s, s:s*, s:o*, s:o*, s:s*, s:o*}", "wal", l->name, "archived", l->archived_ns ? at : NULL,
			 "archived_ns", l->archived_ns ? json_integer(l->archived_ns) : NULL, "age_seconds",
			 l->archived_ns ? json_real(ns_seconds(now - l->archived_ns)) : NULL, "last_transaction",
			 l->last_xact_ns ? xact : NULL, "last_transaction_ns",
			 l->last_xact_ns ? json_integer(l->last_xact_ns) : NULL);
}

static int stats_prometheus(const char *repository, const repo_stats *st)
{
	metrics *m;
	int rc = 0;
	TRY(metrics_new(&m));
	for (size_t i = 0; rc == 0 && i < st->nnames; i++) {
		const stats_name *e = &st->names[i];
		rc = metrics_set(m, "dre_backup_last_success_timestamp_seconds", repository, e->name, ns_seconds(e->end_ns));
		if (rc == 0)
			rc = metrics_set(m, "dre_backup_duration_seconds", repository, e->name,
					 ns_seconds(e->end_ns > e->start_ns ? e->end_ns - e->start_ns : 0));
		if (rc == 0)
			rc = metrics_set(m, "dre_backup_size_bytes", repository, e->name, (double)e->size);
		if (rc == 0)
			rc = metrics_set(m, "dre_backup_stored_bytes", repository, e->name, (double)e->stored);
	}
	if (rc == 0 && st->wal.found && st->wal.archived_ns)
		rc = metrics_set(m, "dre_wal_last_archived_timestamp_seconds", repository, NULL,
				 ns_seconds(st->wal.archived_ns));
	if (rc == 0 && st->wal_systems > 0)
		rc = metrics_set(m, "dre_wal_missing_segments", repository, NULL, (double)st->wal_missing);
	if (rc == 0)
		rc = metrics_set(m, "dre_repository_size_bytes", repository, NULL, (double)st->bytes);
	if (rc == 0)
		rc = metrics_print(m, stdout);
	metrics_free(m);
	return rc;
}

static int stats_json(const char *repository, const repo_stats *st)
{
	json_t *names = json_array();
	for (size_t i = 0; i < st->nnames; i++) {
		const stats_name *e = &st->names[i];
		char end[40];
		fmt_time_utc(e->end_ns, end);
		json_array_append_new(
			names, json_pack("{s:s, s:s, s:I, s:s, s:I, s:f, s:I, s:I}", "name", e->name, "kind",
					 snap_kind_name(e->kind), "snapshots", (json_int_t)e->snapshots, "last_success", end,
					 "last_success_ns", (json_int_t)e->end_ns, "duration_seconds",
					 ns_seconds(e->end_ns > e->start_ns ? e->end_ns - e->start_ns : 0), "size",
					 (json_int_t)e->size, "stored", (json_int_t)e->stored));
	}
	char sysid[24];
	snprintf(sysid, sizeof sysid, "%" PRIu64, st->wal_system);
	json_t *last = cli_last_archived_json(&st->wal, meter_now_ns());
	if (last != NULL)
		json_object_set_new(last, "system_id", json_string(sysid));
	return cli_print_json(stdout, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:{s:I, s:o*, s:I, s:I}}", "repository",
						repository, "size_bytes", (json_int_t)st->bytes, "objects",
						(json_int_t)st->objects, "snapshots", (json_int_t)st->snapshots,
						"damaged_snapshots", (json_int_t)st->damaged, "names", names, "wal",
						"systems", (json_int_t)st->wal_systems, "last_archived", last,
						"missing_segments", (json_int_t)st->wal_missing, "backups_missing_wal",
						(json_int_t)st->backups_missing_wal));
}

static void stats_text(const char *repository, const repo_stats *st)
{
	char size[32], stored[32], when[32];
	fmt_size(st->bytes, size);
	printf("repository %s: %" PRIu64 " objects, %s; %zu snapshot%s", repository, st->objects, size, st->snapshots,
	       st->snapshots == 1 ? "" : "s");
	if (st->damaged)
		printf(" (%zu damaged, left out)", st->damaged);
	printf("\n");
	if (st->nnames > 0)
		printf("%-24s %-8s %-19s %10s %10s %10s %9s\n", "NAME", "KIND", "LAST SUCCESS", "DURATION", "SIZE",
		       "STORED", "SNAPSHOTS");
	for (size_t i = 0; i < st->nnames; i++) {
		const stats_name *e = &st->names[i];
		char secs[32];
		fmt_time_local(e->end_ns, when);
		fmt_size(e->size, size);
		fmt_size(e->stored, stored);
		snprintf(secs, sizeof secs, "%.1f s", ns_seconds(e->end_ns > e->start_ns ? e->end_ns - e->start_ns : 0));
		printf("%-24s %-8s %-19s %10s %10s %10s %9zu\n", e->name, snap_kind_name(e->kind), when, secs, size, stored,
		       e->snapshots);
	}
	if (!st->wal.found) {
		printf("WAL: %s\n", st->wal_systems ? "no segment archived" : "none archived");
	} else if (st->wal.archived_ns) {
		fmt_time_local(st->wal.archived_ns, when);
		printf("WAL: last segment %s archived %s (%.0f s ago)\n", st->wal.name, when,
		       ns_seconds(meter_now_ns() - st->wal.archived_ns));
	} else {
		printf("WAL: last segment %s (its archive time is not recorded)\n", st->wal.name);
	}
	if (st->wal_missing || st->backups_missing_wal)
		printf("WAL: %" PRIu64 " segment%s missing, %zu base backup%s without all its WAL ('dre wal-show' lists "
		       "them)\n",
		       st->wal_missing, st->wal_missing == 1 ? "" : "s", st->backups_missing_wal,
		       st->backups_missing_wal == 1 ? "" : "s");
}

static int stats_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	const cli_args *a = arg;
	repo_stats st;
	char repository[PATH_MAX + 16];
	TRY(repo_stats_load(r, &st, cli_warn, NULL));
	metrics_repository(ctx, repository, sizeof repository);
	int rc = 0;
	if (a->opt[S_PROMETHEUS] != NULL)
		rc = stats_prometheus(repository, &st);
	else if (ctx->json)
		rc = stats_json(repository, &st);
	else if (!ctx->quiet)
		stats_text(repository, &st);
	repo_stats_free(&st);
	return rc;
}

static int stats_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 0, 0, ""));
	if (a->opt[S_PROMETHEUS] != NULL && ctx->json)
		return cli_usage("give one of --json and --prometheus");
	return cli_with_repo(ctx, stats_in_repo, (void *)a);
}

#define STATS_HELP_LINE(n, t, labels, h) "  " n "{" labels "repository} " t "\n      " h "\n"

const cli_command cmd_stats = {
	.name = "stats",
	.summary = "what the metrics would say, computed from the repository alone",
	.opts = stats_opts_table,
	.run = stats_run,
	.usage = "usage: dre stats [--json | --prometheus]\n"
		 "\n"
		 "For a monitoring host that runs no backup: per snapshot name the newest snapshot (when it ended,\n"
		 "how long it took, its size and the bytes it stored, how many there are), the newest archived WAL\n"
		 "segment and when wal-push archived it (recorded in the segment's object), the segments missing\n"
		 "from the archive (wal-show's gaps), and the size of the repository (every object its store lists).\n"
		 "It reads snapshot headers, lists the store and reads one WAL object per cluster; it changes\n"
		 "nothing and takes no lock.\n"
		 "  --json        an object: repository, size_bytes, objects, snapshots, names[], wal{}\n"
		 "  --prometheus  the metrics below that the repository can tell, in the Prometheus text format, as\n"
		 "                --metrics writes them (for a textfile: dre stats --prometheus > F.tmp && mv F.tmp F)\n"
		 "\n"
		 "Metrics (--metrics FILE after push, pg-dump, pg-backup, wal-push, wal-show, forget, prune, check, drill;\n"
		 "each family with HELP and TYPE lines; every series has the label repository, the repository's URL\n"
		 "or absolute path, so several repositories can share one file; times are seconds since the epoch):\n"
		 METRICS_FAMILIES(STATS_HELP_LINE)
		 "A backup's duration (of the whole dre run), size and stored bytes are those of its last success; a\n"
		 "drill's RTO and mismatches those of the last drill that measured them, failed or not. forget and\n"
		 "prune with --dry-run record nothing. A failure to write FILE is a warning; the exit status stays.\n"
		 "dre stats --prometheus gives the dre_backup_* success families (duration: the newest snapshot's\n"
		 "end minus its start), dre_wal_last_archived_timestamp_seconds, dre_wal_missing_segments (only\n"
		 "stats: run it on a timer where WAL gaps must alert) and dre_repository_size_bytes.\n",
};
