/*
 * main.c — dre's entry point: global options, finding the command, `help`, and the single place where an
 * error becomes a message on standard error and an exit status. Commands return 0 or an err.h code with the
 * message set; nothing below main() calls exit().
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/metrics.h"
#include "engine/pipeline/meter.h"

static const char main_usage[] =
	"usage: dre [global options] COMMAND [options] [args]\n"
	"\n"
	"Streaming, deduplicating, encrypted backups.\n"
	"\n"
	"Commands:\n"
	"%s"
	"\n"
	"Global options (accepted before or after the command):\n"
	"  -r, --repo URL   the repository (default: $DRE_REPOSITORY, else ~/.local/share/dre/repo)\n"
	"      --json       machine-readable output\n"
	"  -q, --quiet      no progress or summaries, only errors and warnings\n"
	"      --threads N  worker threads (default: one per CPU)\n"
	"  -h, --help       show help\n"
	"      --version    show the version\n"
	"      --config FILE  settings from an INI file: repository, password-file, password-command, threads\n"
	"                   and the s3-* options below (with s3-access-key-id, s3-secret-access-key,\n"
	"                   s3-session-token, s3-profile, s3-credentials-file), pgdata and dbname (pg-backup, pg-dump),\n"
	"                   metrics-file (--metrics);\n"
	"                   options and the environment win\n"
	"      --cache-dir DIR  where the index cache lives (default: $DRE_CACHE_DIR, else\n"
	"                   $XDG_CACHE_HOME/dre, else ~/.cache/dre); push and restore then read only the\n"
	"                   index objects it does not cover\n"
	"      --no-cache   read every index object from the repository; nothing written locally\n"
	"      --metrics FILE  after push, pg-dump, pg-backup, wal-push, wal-show, forget, prune, check, drill:\n"
	"                   record the outcome in FILE for node_exporter's textfile collector (Prometheus\n"
	"                   text format, merged under FILE.lock with what other dre runs wrote, replaced\n"
	"                   atomically, mode 0644); config key metrics-file. A failure to write it is a\n"
	"                   warning and leaves the exit status alone. The metrics: 'dre help stats'\n"
	"\n"
	"S3 repositories (-r s3://BUCKET[/PREFIX]); each also from the environment variable shown:\n"
	"      --s3-endpoint URL        DRE_S3_ENDPOINT or AWS_ENDPOINT_URL (default AWS for the region);\n"
	"                               http:// only when written so\n"
	"      --s3-region NAME         AWS_REGION or AWS_DEFAULT_REGION (default us-east-1)\n"
	"      --s3-ca-file FILE        DRE_S3_CA_FILE or AWS_CA_BUNDLE: CA certificates to verify the server\n"
	"      --s3-storage-class NAME  DRE_S3_STORAGE_CLASS (STANDARD_IA, GLACIER_IR, ...)\n"
	"      --s3-sse AES256|aws:kms  DRE_S3_SSE: server-side encryption (on top of dre's own)\n"
	"      --s3-sse-kms-key-id ID   DRE_S3_SSE_KMS_KEY_ID\n"
	"      --s3-path-style, --s3-virtual-hosted   addressing (default: virtual-hosted on AWS, else path)\n"
	"  Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else the profile\n"
	"  AWS_PROFILE (default \"default\") in AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).\n"
	"\n"
	"Password (there is deliberately no command-line option for it), tried in this order:\n"
	"  DRE_PASSWORD_FILE     a file holding the password (one trailing newline is ignored)\n"
	"  DRE_PASSWORD_COMMAND  a shell command that prints the password\n"
	"  DRE_PASSWORD          the password itself\n"
	"  else it is asked on the terminal. 'dre key add' reads the new one from DRE_NEW_PASSWORD_FILE.\n"
	"\n"
	"Exit status:\n"
	"  0  success\n"
	"  1  error (I/O, permission, other)\n"
	"  2  usage error\n"
	"  3  not found (snapshot, repository, file)\n"
	"  4  wrong password\n"
	"  5  integrity problem (corrupt object, checksum mismatch, check found errors)\n"
	"  6  the producer command of a push failed\n"
	"  7  busy: a lock is held, or a concurrent prune planned to delete data this run relied on (nothing\n"
	"     was committed; run it again)\n"
	"  8  drill: the backup passed every check but took longer than --rto\n"
	"  (wal-fetch: 1 when the file is not in the archive, 128 + the status above for any other error)\n"
	"\n"
	"Run 'dre help COMMAND' for the options of a command.\n";

static int help_run(cli_ctx *ctx, const cli_args *a);

static const cli_command cmd_help = {
	.name = "help",
	.summary = "show help for dre or for a command",
	.opts = NULL,
	.run = help_run,
	.usage = "usage: dre help [COMMAND]\n",
};

static const cli_command *const commands[] = {
	&cmd_init, &cmd_push, &cmd_snapshots, &cmd_restore, &cmd_ls, &cmd_cat, &cmd_check, &cmd_key, &cmd_migrate,
	&cmd_wal_push, &cmd_wal_fetch, &cmd_wal_show, &cmd_pg_dump, &cmd_pg_backup, &cmd_pg_restore, &cmd_drill, &cmd_copy, &cmd_forget, &cmd_prune, &cmd_stats, &cmd_locks, &cmd_unlock, &cmd_bench, &cmd_help,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static void print_main_usage(FILE *f)
{
	char list[4096]; /* grows with the command table: 1024 cut the list short */
	size_t n = 0;
	for (size_t i = 0; i < NCOMMANDS && n < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "  %-11s %s\n", commands[i]->name,
				      commands[i]->summary);
	fprintf(f, main_usage, list);
}

static void print_version(void)
{
	printf("dre %s (repository format %d)\n", DRE_VERSION, REPO_FORMAT_VERSION);
}

static int help_run(cli_ctx *ctx, const cli_args *a)
{
	(void)ctx;
	TRY(cli_want_args(a, 0, 1, ""));
	if (a->npos == 0) {
		print_main_usage(stdout);
		return 0;
	}
	const cli_command *c = find_command(a->pos[0]);
	if (c == NULL)
		return cli_usage("no command '%s'", a->pos[0]);
	fputs(c->usage, stdout);
	return 0;
}

int cli_exit_status(int rc)
{
	switch (rc) {
	case 0: return CLI_EXIT_OK;
	case CLI_EUSAGE: return CLI_EXIT_USAGE;
	case DRE_ENOTFOUND: return CLI_EXIT_NOTFOUND;
	case DRE_EAUTH: return CLI_EXIT_AUTH;
	case DRE_ECORRUPT: return CLI_EXIT_INTEGRITY;
	case DRE_EPRODUCER: return CLI_EXIT_PRODUCER;
	case DRE_EBUSY: return CLI_EXIT_BUSY;
	default: return CLI_EXIT_ERROR;
	}
}

/* Flushes standard output (a full disk or closed pipe is an error too), prints the error, maps the status. */
static int finish(const cli_ctx *ctx, int rc)
{
	const cli_command *c = ctx->command ? find_command(ctx->command) : NULL;
	if (fflush(stdout) != 0 && rc == 0)
		rc = err_sys("cannot write to standard output");
	if (rc == 0)
		return CLI_EXIT_OK;
	if (rc != CLI_EQUIET)
		fprintf(stderr, "dre: %s\n", *err_msg() ? err_msg() : err_name(rc));
	if (c != NULL && c->exit_status != NULL)
		return c->exit_status(rc);
	if (rc == CLI_EUSAGE && cli_usage_hint())
		fprintf(stderr, "Try 'dre help%s%s' for more information.\n", ctx->command ? " " : "",
			ctx->command ? ctx->command : "");
	return cli_exit_status(rc);
}

/* Runs the command at argv[i], whose options start at argv[i + 1]; returns the exit status. The metrics file
 * is written after finish() printed the command's error, so that its own failure cannot replace it. */
static int run_command(cli_ctx *ctx, int argc, char **argv, int i)
{
	const cli_command *c = find_command(argv[i]);
	cli_args a;
	meter clock;
	bool ran = false;
	if (c == NULL)
		return finish(ctx, cli_usage("unknown command '%s'", argv[i]));
	ctx->command = c == &cmd_help ? NULL : c->name; /* "Try 'dre help'" */
	i++;
	int rc = cli_parse(argc, argv, &i, c->opts, ctx, &a, false);
	if (rc == 0 && !ctx->help && !ctx->version)
		rc = cli_config_load(ctx);
	if (rc == 0 && ctx->help)
		fputs(c->usage, stdout);
	else if (rc == 0 && ctx->version)
		print_version();
	else if (rc == 0) {
		ran = true;
		meter_start(&clock, NULL);
		rc = c->run(ctx, &a);
	}
	double seconds = ran ? meter_seconds(&clock) : 0;
	int status = finish(ctx, rc);
	if (ran && c->metric != CLI_METRIC_NONE && ctx->metrics_path != NULL)
		metrics_record(ctx, c, a.npos ? a.pos[0] : NULL, status == CLI_EXIT_OK, seconds);
	cli_args_free(&a);
	return status;
}

int main(int argc, char **argv)
{
	cli_ctx ctx = {.run.mismatches = -1}; /* -1: not counted, until a drill counts */
	cli_args a;
	int i = 1;
	int rc = cli_parse(argc, argv, &i, NULL, &ctx, &a, true);
	cli_args_free(&a);
	if (rc == 0 && i < argc) {
		int status = run_command(&ctx, argc, argv, i);
		cli_config_free();
		return status;
	}
	if (rc == 0 && ctx.version)
		print_version();
	else if (rc == 0 && ctx.help)
		print_main_usage(stdout);
	else if (rc == 0) {
		print_main_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	return finish(&ctx, rc);
}
