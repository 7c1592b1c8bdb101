/*
 * cmd_restore.c — `dre restore`: picks the snapshot (a name, optionally as of --time, or an ID prefix), decides
 * where it goes (standard output for a stream, --target DIR otherwise), refuses to pour a stream onto a
 * terminal, and reports on standard error so that standard output stays the restored data. Into a directory
 * it also chooses what (--from, --include) and what happens to what the directory holds already (--overwrite,
 * --delete).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/pipeline/pattern.h"

enum { R_TIME, R_TARGET, R_GLOBALS, R_TAG, R_HOST, R_PATH, R_FROM, R_INCLUDE, R_OVERWRITE, R_DELETE };
static const cli_opt restore_opts_table[] = {{"time", 0, true},      {"target", 0, true},    {"globals", 0, false},
					     {"tag", 0, true},       {"host", 0, true},      {"path", 0, true},
					     {"from", 0, true},      {"include", 0, true},   {"overwrite", 0, true},
					     {"delete", 0, false},   {0}};

typedef struct restore_job {
	const char *target;
	int64_t before_ns;
	bool globals;
	const char *from;
	pattern_set *include; /* NULL: no --include */
	restore_overwrite overwrite;
	bool delete_extra;
} restore_job;

static int restore_report(const cli_ctx *ctx, const restore_job *j, const snapshot *s, const restore_result *res)
{
	char id[2 * CRYPTO_ID_LEN + 1], size[32];
	hex_encode(s->id, CRYPTO_ID_LEN, id);
	if (ctx->json) /* standard output only when the data did not go there */
		return cli_print_json(j->target ? stdout : stderr,
				      json_pack("{s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "id", id, "name",
						s->name, "target", j->target, "bytes", (json_int_t)res->bytes, "files",
						(json_int_t)res->files, "hard_links", (json_int_t)res->linked, "kept",
						(json_int_t)res->kept, "deleted", (json_int_t)res->deleted, "not_restored",
						(json_int_t)res->skipped, "seconds", res->seconds));
	if (ctx->quiet)
		return 0;
	fmt_size(res->bytes, size);
	fprintf(stderr, "restored snapshot %.8s (%s): %s", id, s->name, size);
	if (s->kind != SNAP_STREAM && res->files != 1)
		fprintf(stderr, " in %zu files", res->files);
	if (res->linked > 0)
		fprintf(stderr, ", %zu hard link%s", res->linked, res->linked == 1 ? "" : "s");
	if (res->kept > 0)
		fprintf(stderr, j->overwrite == RESTORE_NEVER ? ", %zu kept as they were (--overwrite never)"
							      : ", %zu unchanged (kept)",
			res->kept);
	if (res->deleted > 0)
		fprintf(stderr, ", %zu deleted (--delete)", res->deleted);
	if (res->skipped > 0)
		fprintf(stderr, ", %zu attributes or device nodes not restored (warnings above)", res->skipped);
	fprintf(stderr, ", %.1f MB/s, %.2f s\n", mb_per_s(res->bytes, res->seconds), res->seconds);
	return 0;
}

static int restore_snapshot(cli_ctx *ctx, repo *r, const snapshot *s, void *arg)
{
	const restore_job *j = arg;
	cli_progress prog = {.verb = "restored"};
	restore_opts o = {.target = j->target,
			  .out_fd = j->target ? -1 : STDOUT_FILENO,
			  .threads = ctx->threads,
			  .hooks = cli_hooks(ctx, &prog),
			  .from = j->from,
			  .include = j->include,
			  .overwrite = j->overwrite,
			  .delete_extra = j->delete_extra};
	restore_result res = {0};

	char globals[SNAP_PATH_MAX + 2];
	if (s->kind == SNAP_PG_DUMP) {
		/* one stream on standard output: the archive, for pg_restore, or the globals, for psql */
		snprintf(globals, sizeof globals, "%s.globals.sql", s->name);
		if (j->target == NULL || j->globals)
			o.only = j->globals ? globals : s->name;
	} else if (j->globals) {
		return cli_usage("--globals: snapshot %s is a %s snapshot, not a pg-dump", s->name,
				 snap_kind_name(s->kind));
	} else if (j->target == NULL && s->kind != SNAP_STREAM) {
		return cli_usage("snapshot %s holds %s, not a stream: give --target DIR", s->name,
				 snap_kind_name(s->kind));
	}
	int rc = engine_restore(r, s, &o, &res);
	cli_progress_end(&prog);
	TRY(rc);
	return restore_report(ctx, j, s, &res);
}

/* --from, --include, --overwrite and --delete: what of the snapshot goes into the directory, and what becomes of
 * what the directory holds already. */
static int restore_choose(const cli_args *a, restore_job *j)
{
	const char *ow = a->opt[R_OVERWRITE];
	const char **inc = NULL;
	size_t ninc = 0;
	j->from = a->opt[R_FROM];
	j->delete_extra = a->opt[R_DELETE] != NULL;
	if (j->target == NULL && (j->from || a->opt[R_INCLUDE] || ow || j->delete_extra))
		return cli_usage("--from, --include, --overwrite and --delete restore into a directory: give --target "
				 "DIR");
	if (j->from != NULL && *j->from == '\0')
		return cli_usage("--from: the path is empty (\"/\" is the whole snapshot)");
	if (ow == NULL)
		j->overwrite = RESTORE_REFUSE;
	else if (strcmp(ow, "always") == 0)
		j->overwrite = RESTORE_ALWAYS;
	else if (strcmp(ow, "if-changed") == 0)
		j->overwrite = RESTORE_IF_CHANGED;
	else if (strcmp(ow, "never") == 0)
		j->overwrite = RESTORE_NEVER;
	else
		return cli_usage("--overwrite %s: give always, if-changed or never", ow);
	if (j->delete_extra && j->overwrite != RESTORE_ALWAYS && j->overwrite != RESTORE_IF_CHANGED)
		return cli_usage("--delete removes what the target holds beyond the snapshot: give it with --overwrite "
				 "always or --overwrite if-changed");
	TRY(cli_opt_all(a, R_INCLUDE, &inc, &ninc));
	int rc = ninc > 0 ? pattern_set_new(&j->include) : 0;
	for (size_t i = 0; rc == 0 && i < ninc; i++)
		rc = cli_as_usage(pattern_set_add(j->include, inc[i], "--include"));
	free(inc);
	return rc;
}

static int restore_run(cli_ctx *ctx, const cli_args *a)
{
	restore_job j = {.target = a->opt[R_TARGET], .before_ns = -1, .globals = a->opt[R_GLOBALS] != NULL};

	TRY(cli_want_args(a, 1, 1, "the snapshot to restore: a name or an ID prefix"));
	if (a->opt[R_TIME] != NULL)
		TRY(cli_as_usage(engine_parse_time_until(a->opt[R_TIME], &j.before_ns)));
	if (j.target != NULL && *j.target == '\0')
		return cli_usage("--target: the directory is empty");
	/* Whatever the snapshot holds, it cannot go to a terminal: say so before asking for the password. */
	if (j.target == NULL && isatty(STDOUT_FILENO))
		return cli_usage("refusing to write a stream to a terminal; redirect it or use --target DIR");
	int rc = restore_choose(a, &j);
	snap_filter f;
	if (rc == 0)
		rc = cli_filter_parse(a, R_TAG, R_HOST, R_PATH, &f);
	if (rc == 0) {
		rc = cli_with_snapshot_filtered(ctx, a->pos[0], j.before_ns, &f, restore_snapshot, &j);
		cli_filter_free(&f);
	}
	pattern_set_free(j.include);
	return rc;
}

const cli_command cmd_restore = {
	.name = "restore",
	.summary = "restore a snapshot",
	.opts = restore_opts_table,
	.run = restore_run,
	.usage = "usage: dre restore WHAT [--time T] [--tag T] [--host H] [--path P] [--target DIR] [--globals]\n"
		 "                   [--from PATH] [--include PATTERN]... [--overwrite always|if-changed|never]\n"
		 "                   [--delete]\n"
		 "\n"
		 "Restores a snapshot, verifying the checksum of every stream and file it writes. WHAT is a\n"
		 "snapshot name (its newest snapshot) or an ID prefix of at least 4 hex digits.\n"
		 "A stream snapshot goes to standard output (which must not be a terminal), or with --target to\n"
		 "DIR/NAME; a files snapshot needs --target. A pg-dump snapshot gives its archive (for pg_restore)\n"
		 "on standard output, or with --target both DIR/NAME and, when dumped with --globals,\n"
		 "DIR/NAME.globals.sql. A summary goes to standard error unless --quiet.\n"
		 "\n"
		 "Options:\n"
		 "  --time T      the newest snapshot of that name taken at or before T: \"2026-11-21 12:00\",\n"
		 "                \"2026-11-21 12:00:05\", \"2026-11-21T12:00:00Z\", \"...+02:00\" or a date alone\n"
		 "                (local time without a zone). T covers what it names: a second (as the snapshots\n"
		 "                table shows times) until its end, a minute until 12:00:59, a date until midnight\n"
		 "  --tag T[,T...], --host H, --path P   the newest of those with every tag of the list (any list\n"
		 "                when given more than once), of host H, of a push given path P (dre help snapshots)\n"
		 "  --target DIR  restore into DIR, with modes, owners (as root), mtimes, extended attributes and\n"
		 "                POSIX ACLs, hard links, device nodes (as root) and sparse files' holes. Each node\n"
		 "                goes to DIR/ITS PATH (as 'dre ls' shows it): /srv/models pushed is DIR/srv/models\n"
		 "  --from PATH   only the subtree at PATH (as 'dre ls' shows it, a leading \"/\" allowed), its\n"
		 "                contents directly in DIR: --from /srv/models puts /srv/models/a at DIR/a. Back\n"
		 "                where it was: --from /srv/models --target /srv/models --overwrite if-changed\n"
		 "  --include PATTERN  only what matches PATTERN, or lies below a directory that does (restic's\n"
		 "                patterns, \"**\" too, on the path as 'dre ls' shows it with \"/\" in front); the\n"
		 "                directories on the way are made. May be given more than once\n"
		 "  --overwrite always|if-changed|never   what to do where DIR holds something the restore would\n"
		 "                write. Without it such a restore is refused before anything is written (an empty\n"
		 "                or new DIR restores as it is). always: replace it; if-changed: replace a file only\n"
		 "                when its size, mtime or content (read and hashed) differs, else keep it; never:\n"
		 "                keep it (each is named)\n"
		 "  --delete      with --overwrite always or if-changed: remove, inside the directories restored,\n"
		 "                what the snapshot does not have there (DIR becomes the snapshot's copy)\n"
		 "  --globals     a pg-dump's roles and tablespaces (pg_dumpall --globals-only, for psql) instead\n"
		 "                of its archive\n",
};
