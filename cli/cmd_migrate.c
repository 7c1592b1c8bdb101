/*
 * cmd_migrate.c — `dre migrate`: upgrades a repository written by an older dre to this dre's format version, so
 * that this dre may write to it. Explicit, never automatic: once upgraded, the older dre versions that other
 * hosts may still run (an archive_command, a cron push) can no longer open it.
 */
#include "cli/cli.h"

static int migrate_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	uint32_t from;
	(void)arg;
	TRY(engine_migrate(r, &from));
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:i, s:i, s:b}", "from", (int)from, "to", (int)r->format,
							 "changed", from != r->format));
	if (ctx->quiet)
		return 0;
	if (from == r->format)
		printf("repository already has format version %u: nothing to do\n", (unsigned)from);
	else
		printf("repository upgraded from format version %u to %u; the snapshots already in it stay as they "
		       "are and keep restoring\n",
		       (unsigned)from, (unsigned)r->format);
	return 0;
}

static int migrate_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 0, 0, ""));
	return cli_with_repo(ctx, migrate_in_repo, NULL);
}

const cli_command cmd_migrate = {
	.name = "migrate",
	.summary = "upgrade a repository to this dre's format version",
	.opts = NULL,
	.run = migrate_run,
	.usage = "usage: dre migrate\n"
		 "\n"
		 "Upgrades a repository made by an older dre (format version 1, 2 or 3) to version 4, which this dre\n"
		 "needs to push, forget or prune in it (version 4 writers follow prune's plans, format-spec.md §16):\n"
		 "it rewrites the config object and nothing else, in one atomic put, so an\n"
		 "interrupted migrate leaves the repository whole, at the old version or the new one. The snapshots\n"
		 "already there stay in their old format and keep restoring; new ones are written in the new one.\n"
		 "Older dre versions cannot open the repository afterwards: upgrade dre on every host that uses it\n"
		 "(archive_command included) first. Archiving WAL needs no migrate.\n",
};
