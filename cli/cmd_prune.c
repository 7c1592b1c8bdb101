/*
 * cmd_prune.c — `dre prune`: frees the space of what no snapshot references any more (after `dre forget`),
 * beside running pushes (format-spec.md §16).
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/metrics.h"
#include "engine/lifecycle/prune.h"

enum { P_DRY_RUN, P_MAX_UNUSED, P_GRACE };
static const cli_opt prune_opts_table[] = {
	{"dry-run", 'n', false},
	{"max-unused", 0, true},
	{"grace", 0, true},
	{0},
};

/* "5%" or "0.05": the share of a pack's bytes that may be unreferenced before it is repacked. */
static int parse_share(const char *text, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text)
		return cli_usage("--max-unused wants a percentage such as 5%%, not '%s'", text);
	if (*end == '%') {
		v /= 100;
		end++;
	}
	if (*end != '\0' || !(v >= 0 && v <= 1))
		return cli_usage("--max-unused wants a percentage from 0%% to 100%%, not '%s'", text);
	*out = v;
	return 0;
}

/* "30s", "2m", "1h", or seconds. */
static int parse_grace(const char *text, int64_t *ns)
{
	size_t len = strlen(text);
	uint64_t unit = 1, v;
	char num[32];
	if (len == 0 || len >= sizeof num)
		return cli_usage("--grace wants a duration such as 30s or 2m, not '%s'", text);
	memcpy(num, text, len + 1);
	switch (num[len - 1]) {
	case 's': unit = 1; num[--len] = '\0'; break;
	case 'm': unit = 60; num[--len] = '\0'; break;
	case 'h': unit = 3600; num[--len] = '\0'; break;
	default: break;
	}
	if (len == 0 || cli_parse_uint("grace", num, 86400, &v) < 0)
		return cli_usage("--grace wants a duration of at most a day, such as 30s or 2m, not '%s'", text);
	if (v * unit > 86400)
		return cli_usage("--grace wants a duration of at most a day, not '%s'", text);
	*ns = (int64_t)(v * unit) * 1000000000;
	return 0;
}

static int prune_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	prune_opts *o = arg;
	prune_result res;
	o->hooks.warn = cli_warn;
	TRY(engine_prune(r, o, &res));
	if (ctx->metrics_path != NULL && !o->dry_run)
		metrics_repo_size(ctx, r);
	char total[32], ref[32], del[32], wr[32], freed[32];
	fmt_size(res.bytes_total, total);
	fmt_size(res.bytes_referenced, ref);
	fmt_size(res.bytes_deleted, del);
	fmt_size(res.bytes_written, wr);
	fmt_size(res.bytes_deleted > res.bytes_written ? res.bytes_deleted - res.bytes_written : 0, freed);
	if (ctx->json)
		return cli_print_json(
			stdout,
			json_pack("{s:b, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:i, s:i, s:i,"
				  " s:I, s:I, s:I, s:f, s:i, s:i}",
				  "dry_run", o->dry_run, "snapshots", (int)res.snapshots, "index_objects",
				  (int)res.index_objects, "packs", (int)res.packs, "chunks", (json_int_t)res.chunks,
				  "chunks_referenced", (json_int_t)res.chunks_referenced, "bytes_total",
				  (json_int_t)res.bytes_total, "bytes_referenced", (json_int_t)res.bytes_referenced,
				  "packs_dead", (int)res.packs_dead, "packs_repacked", (int)res.packs_repacked,
				  "packs_orphan", (int)res.packs_orphan, "packs_missing", (int)res.packs_missing,
				  "orphans_deferred", res.orphans_deferred, "plans_adopted", (int)res.plans_adopted,
				  "packs_kept", (int)res.packs_kept, "packs_deleted", (int)res.packs_deleted,
				  "packs_written", (int)res.packs_written, "index_rewritten", (int)res.index_rewritten,
				  "bytes_deleted", (json_int_t)res.bytes_deleted, "bytes_written",
				  (json_int_t)res.bytes_written, "bytes_freed",
				  (json_int_t)(res.bytes_deleted > res.bytes_written ? res.bytes_deleted - res.bytes_written
										 : 0),
				  "seconds", res.seconds, "index_deleted", (int)res.index_deleted,
				  "uploads_aborted", (int)res.uploads_aborted));
	if (ctx->quiet)
		return 0;
	printf("%zu snapshots reference %" PRIu64 " of %" PRIu64 " chunks: %s of %s in %zu packs\n", res.snapshots,
	       res.chunks_referenced, res.chunks, ref, total, res.packs);
	if (res.plans_adopted > 0)
		printf("finishing %zu plan(s) of an interrupted prune\n", res.plans_adopted);
	printf("%s: %zu unreferenced packs, %zu packs to repack, %zu orphan packs (of interrupted pushes)\n",
	       o->dry_run ? "would delete" : "planned", res.packs_dead, res.packs_repacked, res.packs_orphan);
	if (res.packs_missing > 0)
		printf("%zu packs named by the index are missing from the store: their index entries are dropped\n",
		       res.packs_missing);
	if (res.orphans_deferred)
		printf("packs in no index object were left alone: a push is running (a later prune removes them)\n");
	if (o->dry_run)
		return 0;
	if (res.uploads_aborted > 0) {
		bool s3 = ctx->repo_url != NULL && strncmp(ctx->repo_url, "s3://", 5) == 0;
		printf("removed %zu unfinished uploads left by interrupted commands (%s)\n", res.uploads_aborted,
		       s3 ? "multipart uploads" : "temporary files");
	}
	if (res.packs_kept > 0)
		printf("kept %zu planned packs: snapshots committed during the prune need them\n", res.packs_kept);
	printf("deleted %zu packs (%s), wrote %zu packs (%s), rewrote %zu and removed %zu index objects: %s freed in "
	       "%.1f s\n",
	       res.packs_deleted, del, res.packs_written, wr, res.index_rewritten, res.index_deleted - res.index_rewritten,
	       freed, res.seconds);

	return 0;
}

static int prune_run(cli_ctx *ctx, const cli_args *a)
{
	prune_opts o = {.max_unused = PRUNE_DEFAULT_MAX_UNUSED, .grace_ns = PRUNE_DEFAULT_GRACE_NS};
	o.dry_run = a->opt[P_DRY_RUN] != NULL;
	ctx->run.dry_run = o.dry_run; /* changes nothing: not a prune to record */
	TRY(cli_want_args(a, 0, 0, ""));
	if (a->opt[P_MAX_UNUSED] != NULL)
		TRY(parse_share(a->opt[P_MAX_UNUSED], &o.max_unused));
	if (a->opt[P_GRACE] != NULL)
		TRY(parse_grace(a->opt[P_GRACE], &o.grace_ns));
	return cli_with_repo(ctx, prune_in_repo, &o);
}

const cli_command cmd_prune = {
	.name = "prune",
	.summary = "delete the data no snapshot references any more",
	.opts = prune_opts_table,
	.run = prune_run,
	.metric = CLI_METRIC_LIFECYCLE,
	.usage = "usage: dre prune [--dry-run] [--max-unused 5%] [--grace 30s]\n"
		 "\n"
		 "Frees the space of data that no snapshot references: after 'dre forget', and the packs that\n"
		 "interrupted pushes left behind. Packs with no referenced chunk are deleted; a pack whose\n"
		 "unreferenced share is above --max-unused (default 5%) is rewritten with only what is referenced;\n"
		 "the index is rewritten without the deleted packs. Running pushes, base backups and wal-push may go\n"
		 "on meanwhile: prune writes a plan of what it will delete, waits --grace (default 30 s), looks again\n"
		 "for snapshots committed meanwhile and keeps what they need, then deletes (format-spec.md §16 says\n"
		 "why nothing a committed snapshot needs is lost). A push that relied on a planned pack fails with\n"
		 "exit status 7 instead of committing, and succeeds when run again.\n"
		 "\n"
		 "Killed at any point, prune leaves a repository that 'dre check' accepts; the next prune finishes\n"
		 "its work. Packs in no index object are removed only when no push holds a lock (see 'dre locks').\n"
		 "--dry-run prints what would be deleted and changes nothing.\n",
};
