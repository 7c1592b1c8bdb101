/*
 * cmd_check.c — `dre check`: runs the engine's integrity check, shows each problem as it is found, then one
 * summary line (or the report as JSON), and exits with status 5 when anything was wrong, so a cron job or a
 * monitoring script needs nothing but the exit status.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/metrics.h"

enum { K_READ_DATA, K_SUBSET };
static const cli_opt check_opts_table[] = {{"read-data", 0, false}, {"read-data-subset", 0, true}, {0}};

struct check_args {
	check_opts o;
	const char *subset; /* as typed, for the report */
};

/* "N%" (a share of the packs, 0 < N <= 100, decimals allowed) or "K/N" (the K-th of N slices). */
static int parse_subset(const char *text, check_opts *o)
{
	static const char want[] = "wants N% (a random share of the packs, more than 0 and at most 100) or K/N (the "
				   "K-th of N slices, 1 <= K <= N)";
	size_t len = strlen(text);
	const char *slash = strchr(text, '/');
	if (len > 1 && text[len - 1] == '%') {
		char num[32];
		size_t digits = strspn(text, "0123456789."), dots = 0;
		for (size_t i = 0; i < len - 1; i++)
			dots += text[i] == '.';
		if (digits != len - 1 || dots > 1 || len - 1 >= sizeof num || text[0] == '.' || text[len - 2] == '.')
			return cli_usage("--read-data-subset %s, not '%s'", want, text);
		memcpy(num, text, len - 1);
		num[len - 1] = '\0';
		o->read_percent = strtod(num, NULL);
		if (!(o->read_percent > 0 && o->read_percent <= 100))
			return cli_usage("--read-data-subset %s: a share of the packs is more than 0%% and at most 100%%", text);
		return 0;
	}
	if (slash != NULL) {
		char k[24];
		uint64_t kv, nv;
		if ((size_t)(slash - text) >= sizeof k)
			return cli_usage("--read-data-subset %s, not '%s'", want, text);
		memcpy(k, text, (size_t)(slash - text));
		k[slash - text] = '\0';
		TRY(cli_parse_uint("read-data-subset", k, UINT32_MAX, &kv));
		TRY(cli_parse_uint("read-data-subset", slash + 1, UINT32_MAX, &nv));
		if (nv == 0 || kv == 0 || kv > nv)
			return cli_usage("--read-data-subset %s: no such slice (K/N needs 1 <= K <= N)", text);
		o->slice = (uint32_t)kv;
		o->slices = (uint32_t)nv;
		return 0;
	}
	return cli_usage("--read-data-subset %s, not '%s'", want, text);
}

static void check_problem(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "error: %s\n", msg);
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static int check_print(const cli_ctx *ctx, const struct check_args *ca, const check_report *rep)
{
	const check_opts *o = &ca->o;
	if (ctx->json)
		return cli_print_json(
			stdout, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:s?, s:I, s:I, s:I}", "snapshots",
					  (json_int_t)rep->snapshots, "packs", (json_int_t)rep->packs, "index_objects",
					  (json_int_t)rep->index_objects, "chunks", (json_int_t)rep->chunks, "lists",
					  (json_int_t)rep->lists, "errors", (json_int_t)rep->errors, "unreferenced_packs",
					  (json_int_t)rep->unreferenced_packs, "incomplete_uploads",
					  (json_int_t)rep->incomplete_uploads, "pending_deletion",
					  (json_int_t)rep->pending_deletion, "read_data", o->read_data,
					  "read_data_subset", ca->subset, "packs_read", (json_int_t)rep->packs_read,
					  "bytes_read", (json_int_t)rep->bytes_read, "wal_files", (json_int_t)rep->wal_files));
	if (ctx->quiet)
		return 0;
	if (rep->unreferenced_packs > 0)
		fprintf(stderr, "dre: note: %zu pack%s not listed in any index (left by an interrupted push); not an error; "
				"'dre prune' removes them\n",
			rep->unreferenced_packs, rep->unreferenced_packs == 1 ? " is" : "s are");
	if (rep->pending_deletion > 0)
		fprintf(stderr, "dre: note: %zu pack%s deleted by a prune that has not finished (running, or "
				"interrupted: the next 'dre prune' finishes it); not an error\n",
			rep->pending_deletion, rep->pending_deletion == 1 ? " was" : "s were");
	if (rep->incomplete_uploads > 0)
		fprintf(stderr,
			"dre: note: %zu multipart upload%s never completed (left by an interrupted push); not an error, "
			"but the parts take space until they are aborted HINT: a bucket lifecycle rule "
			"AbortIncompleteMultipartUpload removes them\n",
			rep->incomplete_uploads, rep->incomplete_uploads == 1 ? " was" : "s were");
	printf("checked %zu snapshot%s, %zu pack%s, %zu index object%s, %zu chunk%s, %zu list blob%s", rep->snapshots,
	       plural(rep->snapshots), rep->packs, plural(rep->packs), rep->index_objects, plural(rep->index_objects),
	       rep->chunks, plural(rep->chunks), rep->lists, plural(rep->lists));
	if (rep->wal_files > 0)
		printf(", %zu archived WAL file%s", rep->wal_files, plural(rep->wal_files));
	if (o->read_data)
		printf(", read %.1f MB", (double)rep->bytes_read / 1e6);
	else if (ca->subset != NULL)
		printf(", read %zu pack%s (%s, %.1f MB)", rep->packs_read, plural(rep->packs_read), ca->subset,
		       (double)rep->bytes_read / 1e6);
	if (rep->errors == 0)
		printf(": no errors found\n");
	else
		printf(": %zu error%s found\n", rep->errors, plural(rep->errors));
	return 0;
}

static int check_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	struct check_args *ca = arg;
	check_report rep = {0};
	ca->o.hooks.warn = check_problem;
	TRY(engine_check(r, &ca->o, &rep));
	if (ctx->metrics_path != NULL)
		metrics_repo_size(ctx, r);
	TRY(check_print(ctx, ca, &rep));
	if (rep.errors > 0)
		return err_set(DRE_ECORRUPT, "the check found %zu error%s", rep.errors, plural(rep.errors));
	return 0;
}

static int check_run(cli_ctx *ctx, const cli_args *a)
{
	struct check_args ca = {.o = {.read_data = a->opt[K_READ_DATA] != NULL}, .subset = a->opt[K_SUBSET]};
	TRY(cli_want_args(a, 0, 0, ""));
	if (ca.subset != NULL) {
		if (ca.o.read_data)
			return cli_usage("--read-data reads every pack: it takes no --read-data-subset");
		TRY(parse_subset(ca.subset, &ca.o));
	}
	return cli_with_repo(ctx, check_in_repo, &ca);
}

const cli_command cmd_check = {
	.name = "check",
	.summary = "verify the repository",
	.opts = check_opts_table,
	.run = check_run,
	.metric = CLI_METRIC_CHECK,
	.usage = "usage: dre check [--read-data | --read-data-subset N% | --read-data-subset K/N]\n"
		 "\n"
		 "Verifies that every snapshot can be restored: snapshots, index objects and the packs they name.\n"
		 "Each problem is printed on standard error as 'error: ...', then a summary line on standard\n"
		 "output (--json: the report as an object). Exits with status 5 when any error was found.\n"
		 "\n"
		 "Options:\n"
		 "  --read-data  also read and authenticate every pack and chunk (reads the whole repository)\n"
		 "  --read-data-subset N%   the same for a random N percent of the packs (at least one)\n"
		 "  --read-data-subset K/N  the same for the K-th of N slices of the packs, by pack ID: runs with\n"
		 "                          K = 1..N read every pack exactly once (e.g. a weekly job, one slice a day)\n"
		 "\n"
		 "A pack found missing or damaged is named with the snapshots that need it. Archived WAL files are\n"
		 "read whole with --read-data only.\n",
};
