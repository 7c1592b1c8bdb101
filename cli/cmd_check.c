/*
 * cmd_check.c — `dre check`: runs the engine's integrity check, shows each problem as it is found, then one
 * summary line (or the report as JSON), and exits with status 5 when anything was wrong, so a cron job or a
 * monitoring script needs nothing but the exit status.
 */
#include "cli/cli.h"

enum { K_READ_DATA };
static const cli_opt check_opts_table[] = {{"read-data", 0, false}, {0}};

static void check_problem(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "error: %s\n", msg);
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static int check_print(const cli_ctx *ctx, const check_opts *o, const check_report *rep)
{
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I}", "snapshots",
							(json_int_t)rep->snapshots, "packs", (json_int_t)rep->packs,
							"index_objects", (json_int_t)rep->index_objects, "chunks",
							(json_int_t)rep->chunks, "errors", (json_int_t)rep->errors,
							"unreferenced_packs", (json_int_t)rep->unreferenced_packs,
							"incomplete_uploads", (json_int_t)rep->incomplete_uploads,
							"read_data", o->read_data, "bytes_read",
							(json_int_t)rep->bytes_read, "wal_files", (json_int_t)rep->wal_files));
	if (ctx->quiet)
		return 0;
	if (rep->unreferenced_packs > 0)
		fprintf(stderr, "dre: note: %zu pack%s not listed in any index (left by an interrupted push); not an error\n",
			rep->unreferenced_packs, rep->unreferenced_packs == 1 ? " is" : "s are");
	if (rep->incomplete_uploads > 0)
		fprintf(stderr,
			"dre: note: %zu multipart upload%s never completed (left by an interrupted push); not an error, "
			"but the parts take space until they are aborted HINT: a bucket lifecycle rule "
			"AbortIncompleteMultipartUpload removes them\n",
			rep->incomplete_uploads, rep->incomplete_uploads == 1 ? " was" : "s were");
	printf("checked %zu snapshot%s, %zu pack%s, %zu index object%s, %zu chunk%s", rep->snapshots,
	       plural(rep->snapshots), rep->packs, plural(rep->packs), rep->index_objects, plural(rep->index_objects),
	       rep->chunks, plural(rep->chunks));
	if (rep->wal_files > 0)
		printf(", %zu archived WAL file%s", rep->wal_files, plural(rep->wal_files));
	if (o->read_data)
		printf(", read %.1f MB", (double)rep->bytes_read / 1e6);
	if (rep->errors == 0)
		printf(": no errors found\n");
	else
		printf(": %zu error%s found\n", rep->errors, plural(rep->errors));
	return 0;
}

static int check_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	check_opts o = {.read_data = *(const bool *)arg, .hooks = {.warn = check_problem}};
	check_report rep = {0};
	TRY(engine_check(r, &o, &rep));
	TRY(check_print(ctx, &o, &rep));
	if (rep.errors > 0)
		return err_set(DRE_ECORRUPT, "the check found %zu error%s", rep.errors, plural(rep.errors));
	return 0;
}

static int check_run(cli_ctx *ctx, const cli_args *a)
{
	bool read_data = a->opt[K_READ_DATA] != NULL;
	TRY(cli_want_args(a, 0, 0, ""));
	return cli_with_repo(ctx, check_in_repo, &read_data);
}

const cli_command cmd_check = {
	.name = "check",
	.summary = "verify the repository",
	.opts = check_opts_table,
	.run = check_run,
	.usage = "usage: dre check [--read-data]\n"
		 "\n"
		 "Verifies that every snapshot can be restored: snapshots, index objects and the packs they name.\n"
		 "Each problem is printed on standard error as 'error: ...', then a summary line on standard\n"
		 "output (--json: the report as an object). Exits with status 5 when any error was found.\n"
		 "\n"
		 "Options:\n"
		 "  --read-data  also read and authenticate every pack and chunk (reads the whole repository)\n",
};
