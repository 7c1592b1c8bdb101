/*
 * cmd_push.c — `dre push`: decides from the arguments which of the three engine pushes to call (standard
 * input, a producer command after "--", or paths), checks what can be checked before asking for the password,
 * and prints the one-line summary (or JSON) of the snapshot saved.
 */
#include "cli/cli.h"

#include <unistd.h>

enum push_mode { PUSH_STDIN, PUSH_COMMAND, PUSH_PATHS };

typedef struct push_job {
	enum push_mode mode;
	const char *name;
	char *const *args; /* the command's argv or the paths */
	size_t nargs;
} push_job;

static int push_plan(const cli_args *a, push_job *j)
{
	TRY(cli_want_args(a, 1, SIZE_MAX, "the snapshot NAME"));
	TRY(cli_as_usage(engine_check_name(a->pos[0])));
	*j = (push_job){.mode = PUSH_PATHS, .name = a->pos[0], .args = a->pos + 1, .nargs = a->npos - 1};
	if (a->dashdash != SIZE_MAX) {
		if (a->dashdash != 1)
			return cli_usage("'--' must come right after NAME: dre push NAME -- COMMAND [ARGS...]");
		if (j->nargs == 0)
			return cli_usage("missing the COMMAND after '--'");
		j->mode = PUSH_COMMAND;
	} else if (j->nargs == 0) {
		if (isatty(STDIN_FILENO))
			return cli_usage("standard input is a terminal: pipe a stream into 'dre push NAME', or use "
					 "'dre push NAME -- COMMAND [ARGS...]' or 'dre push NAME PATH...'");
		j->mode = PUSH_STDIN;
	}
	return 0;
}

static int push_report(const cli_ctx *ctx, const char *name, const push_result *res)
{
	char id[2 * CRYPTO_ID_LEN + 1], size[32], stored[32], ratio[32];
	hex_encode(res->id, CRYPTO_ID_LEN, id);
	if (ctx->json)
		return cli_print_json(stdout,
				      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s?}", "id", id, "name",
						name, "size", (json_int_t)res->size, "stored_new",
						(json_int_t)res->stored_new, "chunks", (json_int_t)res->chunks,
						"chunks_new", (json_int_t)res->chunks_new, "list_blobs_new",
						(json_int_t)res->lists_new, "files", (json_int_t)res->files, "seconds",
						res->seconds, "reader", res->reader));
	if (ctx->quiet)
		return 0;
	fmt_size(res->size, size);
	fmt_size(res->stored_new, stored);
	fmt_ratio(res->size, res->stored_new, ratio);
	printf("snapshot %.8s saved: %s read, %s new stored, dedup %s, %.1f MB/s, %.2f s\n", id, size, stored, ratio,
	       mb_per_s(res->size, res->seconds), res->seconds);
	return 0;
}

static int push_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	const push_job *j = arg;
	cli_progress prog = {.verb = "read", .show_stored = true};
	push_opts o = {.name = j->name, .threads = ctx->threads, .hooks = cli_hooks(ctx, &prog)};
	push_result res = {0};
	int rc;

	switch (j->mode) {
	case PUSH_STDIN: rc = engine_push_fd(r, &o, STDIN_FILENO, &res); break;
	case PUSH_COMMAND: rc = engine_push_command(r, &o, j->args, &res); break;
	default: rc = engine_push_paths(r, &o, j->args, j->nargs, &res); break;
	}
	cli_progress_end(&prog);
	TRY(rc);
	ctx->run.sized = true;
	ctx->run.size = res.size;
	ctx->run.stored = res.stored_new;
	return push_report(ctx, j->name, &res);
}

static int push_run(cli_ctx *ctx, const cli_args *a)
{
	push_job j;
	TRY(push_plan(a, &j));
	return cli_with_repo(ctx, push_in_repo, &j);
}

const cli_command cmd_push = {
	.name = "push",
	.summary = "back up a stream (standard input or a command's output) or files",
	.opts = NULL,
	.run = push_run,
	.metric = CLI_METRIC_BACKUP,
	.usage = "usage: dre push NAME < STREAM\n"
		 "       dre push NAME -- COMMAND [ARGS...]\n"
		 "       dre push NAME PATH...\n"
		 "\n"
		 "Saves one snapshot called NAME (1..255 bytes, no '/'), deduplicated against everything already\n"
		 "in the repository:\n"
		 "  NAME                  everything read from standard input (which must not be a terminal)\n"
		 "  NAME -- COMMAND ARGS  the standard output of COMMAND; the snapshot is recorded only when it\n"
		 "                        exits with status 0 (else dre exits with status 6)\n"
		 "  NAME PATH...          files and directories, recursively; a leading '/' is dropped\n"
		 "\n"
		 "Prints 'snapshot ID saved: ...' with sizes, dedup ratio and speed (--json: an object with id,\n"
		 "name, size, stored_new, chunks, chunks_new, list_blobs_new, files, seconds; --quiet: nothing).\n"
		 "On a terminal a progress line is shown on standard error.\n",
};
