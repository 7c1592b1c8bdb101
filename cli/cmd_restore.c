/*
 * cmd_restore.c — `dre restore`: picks the snapshot (a name, optionally as of --time, or an ID prefix), decides
 * where it goes (standard output for a stream, --target DIR otherwise), refuses to pour a stream onto a
 * terminal, and reports on standard error so that standard output stays the restored data.
 */
#include "cli/cli.h"

#include <unistd.h>

enum { R_TIME, R_TARGET, R_GLOBALS };
static const cli_opt restore_opts_table[] = {{"time", 0, true}, {"target", 0, true}, {"globals", 0, false}, {0}};

typedef struct restore_job {
	const char *target;
	int64_t before_ns;
	bool globals;
} restore_job;

static int restore_report(const cli_ctx *ctx, const restore_job *j, const snapshot *s, const restore_result *res)
{
	char id[2 * CRYPTO_ID_LEN + 1], size[32];
	hex_encode(s->id, CRYPTO_ID_LEN, id);
	if (ctx->json) /* standard output only when the data did not go there */
		return cli_print_json(j->target ? stdout : stderr,
				      json_pack("{s:s, s:s, s:s?, s:I, s:I, s:f}", "id", id, "name", s->name, "target",
						j->target, "bytes", (json_int_t)res->bytes, "files",
						(json_int_t)res->files, "seconds", res->seconds));
	if (ctx->quiet)
		return 0;
	fmt_size(res->bytes, size);
	fprintf(stderr, "restored snapshot %.8s (%s): %s", id, s->name, size);
	if (s->kind != SNAP_STREAM && res->files != 1)
		fprintf(stderr, " in %zu files", res->files);
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
			  .hooks = cli_hooks(ctx, &prog)};
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

static int restore_run(cli_ctx *ctx, const cli_args *a)
{
	restore_job j = {.target = a->opt[R_TARGET], .before_ns = -1, .globals = a->opt[R_GLOBALS] != NULL};

	TRY(cli_want_args(a, 1, 1, "the snapshot to restore: a name or an ID prefix"));
	if (a->opt[R_TIME] != NULL)
		TRY(cli_as_usage(engine_parse_time(a->opt[R_TIME], &j.before_ns)));
	if (j.target != NULL && *j.target == '\0')
		return cli_usage("--target: the directory is empty");
	/* Whatever the snapshot holds, it cannot go to a terminal: say so before asking for the password. */
	if (j.target == NULL && isatty(STDOUT_FILENO))
		return cli_usage("refusing to write a stream to a terminal; redirect it or use --target DIR");
	return cli_with_snapshot(ctx, a->pos[0], j.before_ns, restore_snapshot, &j);
}

const cli_command cmd_restore = {
	.name = "restore",
	.summary = "restore a snapshot",
	.opts = restore_opts_table,
	.run = restore_run,
	.usage = "usage: dre restore WHAT [--time T] [--target DIR] [--globals]\n"
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
		 "                (local time without a zone)\n"
		 "  --target DIR  restore into DIR\n"
		 "  --globals     a pg-dump's roles and tablespaces (pg_dumpall --globals-only, for psql) instead\n"
		 "                of its archive\n",
};
