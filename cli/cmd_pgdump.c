/*
 * cmd_pgdump.c — `dre pg-dump`: a logical backup of one database with the row count of every table, taken in
 * the snapshot the dump reads (engine/pg/pgdump.h), and its summary.
 */
#include "cli/cli.h"

#include <string.h>

#include "engine/pg/pgdump.h"

enum { PD_DBNAME, PD_COUNT, PD_GLOBALS, PD_BINDIR };
static const cli_opt pg_dump_table[] = {
	{"dbname", 'd', true}, {"count", 0, true}, {"globals", 0, false}, {"pg-bindir", 0, true}, {0},
};

static int64_t rows_total(const pg_dump_info *in)
{
	int64_t n = 0;
	for (size_t i = 0; i < in->ntables; i++)
		n += in->tables[i].rows > 0 ? in->tables[i].rows : 0;
	return n;
}

static int pg_dump_report(const cli_ctx *ctx, const pg_dump_opts *o, const pg_dump_result *res)
{
	const pg_dump_info *in = &res->info;
	char id[2 * CRYPTO_ID_LEN + 1];
	hex_encode(res->push.id, CRYPTO_ID_LEN, id);
	if (ctx->json)
		return cli_print_json(
			stdout, json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:I, s:I, s:b, s:I, s:I, s:f, s:f}", "id", id,
					  "name", o->name, "database", in->database, "server_version",
					  (int)in->server_version, "database_size", (json_int_t)in->database_size,
					  "count", pg_count_name(in->count), "tables", (json_int_t)in->ntables, "rows",
					  (json_int_t)rows_total(in), "globals", o->globals, "size",
					  (json_int_t)res->push.size, "stored_new", (json_int_t)res->push.stored_new,
					  "dump_seconds", in->seconds, "seconds", res->push.seconds));
	if (ctx->quiet)
		return 0;
	char size[32], stored[32], ratio[32], rows[64] = "rows not counted";
	fmt_size(res->push.size, size);
	fmt_size(res->push.stored_new, stored);
	fmt_ratio(res->push.size, res->push.stored_new, ratio);
	if (in->count != PG_COUNT_NONE)
		snprintf(rows, sizeof rows, "%zu tables, %lld rows (%s)", in->ntables, (long long)rows_total(in),
			 pg_count_name(in->count));
	printf("pg-dump %.8s saved: database %s, %s%s; %s read, %s new stored, dedup %s, pg_dump %.2f s, %.2f s\n",
	       id, in->database, rows, o->globals ? ", with globals" : "", size, stored, ratio, in->seconds,
	       res->push.seconds);
	return 0;
}

static int pg_dump_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	pg_dump_opts *o = arg;
	cli_progress prog = {.verb = "read", .show_stored = true};
	pg_dump_result res;
	o->hooks = cli_hooks(ctx, &prog);
	o->threads = ctx->threads;
	int rc = engine_pg_dump(r, o, &res);
	cli_progress_end(&prog);
	TRY(rc);
	ctx->run.sized = true;
	ctx->run.size = res.push.size;
	ctx->run.stored = res.push.stored_new;
	rc = pg_dump_report(ctx, o, &res);
	pg_dump_info_free(&res.info);
	return rc;
}

static int pg_dump_run(cli_ctx *ctx, const cli_args *a)
{
	pg_dump_opts o = {.conninfo = a->opt[PD_DBNAME] ? a->opt[PD_DBNAME] : ctx->config.dbname,
			  .globals = a->opt[PD_GLOBALS] != NULL,
			  .bindir = a->opt[PD_BINDIR]};
	TRY(cli_want_args(a, 1, SIZE_MAX, "the snapshot NAME"));
	if (a->dashdash != SIZE_MAX && a->dashdash != 1)
		return cli_usage("'--' must come right after NAME: dre pg-dump NAME [options] -- PG_DUMP_OPTIONS...");
	if (a->dashdash == SIZE_MAX && a->npos > 1)
		return cli_usage("unexpected argument '%s': pg_dump's own options go after '--'", a->pos[1]);
	o.name = a->pos[0];
	o.extra = a->npos > 1 ? a->pos + 1 : NULL;
	TRY(cli_as_usage(engine_check_name(o.name)));
	TRY(cli_as_usage(pg_dump_extra_check(o.extra)));
	const char *count = a->opt[PD_COUNT] ? a->opt[PD_COUNT] : "exact";
	if (!pg_count_parse(count, &o.count))
		return cli_usage("--count: '%s' is not exact, estimate or none", count);
	ctx->run.name = o.name;
	return cli_with_repo(ctx, pg_dump_in_repo, &o);
}

const cli_command cmd_pg_dump = {
	.name = "pg-dump",
	.summary = "logical backup of a PostgreSQL database, with every table's row count",
	.opts = pg_dump_table,
	.run = pg_dump_run,
	.metric = CLI_METRIC_BACKUP,
	.usage = "usage: dre pg-dump NAME [--dbname CONNINFO] [--count exact|estimate|none] [--globals]\n"
		 "                   [--pg-bindir DIR] [-- PG_DUMP_OPTIONS...]\n"
		 "\n"
		 "Runs pg_dump in the form that deduplicates (custom format, uncompressed: dre compresses after\n"
		 "deduplicating, so a dump after a day of changes stores only what changed) and saves its output as\n"
		 "snapshot NAME (kind pg-dump), only when pg_dump exits with status 0 (else exit status 6).\n"
		 "\n"
		 "dre opens a REPEATABLE READ transaction of its own, exports its snapshot, lets pg_dump read that\n"
		 "snapshot (--snapshot) and counts every table's rows in the same transaction while pg_dump runs: the\n"
		 "counts are exactly what the dump holds, however busy the database. The snapshot records them with\n"
		 "the server version, the database size and how long pg_dump ran; 'dre drill NAME' restores the dump\n"
		 "and compares. 'dre restore NAME | pg_restore -d DB' restores it by hand.\n"
		 "\n"
		 "Options (--dbname also from the config file's dbname):\n"
		 "  -d, --dbname CONNINFO  a database name, libpq connection string or URI (default: PGHOST,\n"
		 "                         PGPORT, PGUSER, PGDATABASE ...); pg_dump gets the same\n"
		 "  --count exact          count(*) of every table (default): a second read of every table, on\n"
		 "                         dre's own connection while pg_dump runs\n"
		 "  --count estimate       pg_class.reltuples instead (as of the last ANALYZE; free, for databases\n"
		 "                         where a second full read costs too much); a drill compares within 10%\n"
		 "  --count none           no counts (a drill then only proves that the dump restores)\n"
		 "  --globals              also pg_dumpall --globals-only (roles, tablespaces) as NAME.globals.sql:\n"
		 "                         a restore into a new server needs them; reading role passwords needs a\n"
		 "                         superuser\n"
		 "  --pg-bindir DIR        where pg_dump and pg_dumpall are (default: PATH)\n"
		 "  -- OPTIONS             more pg_dump options (--exclude-table, --schema, ...); --format,\n"
		 "                         --compress, --file, --jobs, --snapshot and --dbname are dre's to set\n"
		 "\n"
		 "Prints 'pg-dump ID saved: ...' (--json: id, name, database, server_version, database_size, count,\n"
		 "tables, rows, globals, size, stored_new, dump_seconds, seconds).\n",
};
