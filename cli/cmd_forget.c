/*
 * cmd_forget.c — `dre forget`: removes snapshots by a retention policy (restic's --keep-* options) or by ID,
 * then expires the WAL no remaining base backup needs (engine/lifecycle/forget.h). Prints, per group, every snapshot with
 * what happens to it and why, so that a --dry-run shows exactly what the real run would do.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/lifecycle/forget.h"

/* The first twelve are in enum retention_rule's order, so an option's index is its rule. */
static const cli_opt forget_opts_table[] = {
	{"keep-last", 0, true},          {"keep-hourly", 0, true},         {"keep-daily", 0, true},
	{"keep-weekly", 0, true},        {"keep-monthly", 0, true},        {"keep-yearly", 0, true},
	{"keep-within", 0, true},        {"keep-within-hourly", 0, true},  {"keep-within-daily", 0, true},
	{"keep-within-weekly", 0, true}, {"keep-within-monthly", 0, true}, {"keep-within-yearly", 0, true},
	{"host", 0, true},               {"kind", 0, true},                {"group-by", 0, true},
	{"pitr-window", 0, true},        {"dry-run", 'n', false},          {"tag", 0, true},
	{"path", 0, true},               {0},
};
enum { F_HOST = RET_NEWEST, F_KIND, F_GROUP_BY, F_PITR_WINDOW, F_DRY_RUN, F_TAG, F_PATH, F_NOPTS };
_Static_assert(F_NOPTS <= CLI_MAX_OPTS, "cli_args.opt has a slot per option");
_Static_assert(RET_NEWEST == 12, "the --keep-* options are the rules before RET_NEWEST");

/* "--name: <what the engine said>" as a usage error. */
static int opt_usage(const char *name, int rc)
{
	char msg[512];
	if (rc != DRE_EINVAL)
		return rc;
	snprintf(msg, sizeof msg, "%s", err_msg());
	return cli_usage("--%s: %s", name, msg);
}

static int parse_policy(const cli_args *a, retention_policy *p)
{
	for (int k = 0; k < RET_NEWEST; k++) {
		const char *name = forget_opts_table[k].name, *text = a->opt[k];
		uint64_t v;
		if (text == NULL)
			continue;
		p->has[k] = true;
		if (k >= RET_WITHIN) {
			TRY(opt_usage(name, retention_parse_duration(text, &p->within[k])));
			continue;
		}
		if (text[0] == '-')
			return cli_usage("--%s: '%s' is negative: give how many to keep, 0 or more", name, text);
		TRY(cli_parse_uint(name, text, RETENTION_MAX_COUNT, &v));
		p->count[k] = (uint32_t)v;
	}
	return 0;
}

static int parse_kind(const char *text, uint8_t *kind)
{
	static const uint8_t kinds[] = {SNAP_STREAM, SNAP_FILES, SNAP_PG_BASE};
	for (size_t i = 0; i < sizeof kinds; i++)
		if (strcmp(text, snap_kind_name(kinds[i])) == 0) {
			*kind = kinds[i];
			return 0;
		}
	return cli_usage("--kind: unknown kind '%s' (stream, files or pg-base)", text);
}

static int parse_group_by(const char *text, unsigned *by)
{
	if (strcmp(text, "name") == 0)
		*by = FORGET_BY_NAME;
	else if (strcmp(text, "host") == 0)
		*by = FORGET_BY_HOST;
	else if (strcmp(text, "name,host") == 0 || strcmp(text, "host,name") == 0)
		*by = FORGET_BY_NAME | FORGET_BY_HOST;
	else
		return cli_usage("--group-by: '%s' is not name, host or name,host", text);
	return 0;
}

static bool looks_like_id(const char *s)
{
	size_t n = strlen(s);
	if (n < 4 || n > 2 * CRYPTO_ID_LEN)
		return false;
	return strspn(s, "0123456789abcdef") == n;
}

static int parse_forget(const cli_args *a, forget_opts *o)
{
	TRY(parse_policy(a, &o->policy));
	TRY(cli_filter_parse(a, F_TAG, F_HOST, F_PATH, &o->filter));
	if (a->opt[F_KIND] != NULL)
		TRY(parse_kind(a->opt[F_KIND], &o->kind));
	if (a->opt[F_GROUP_BY] != NULL)
		TRY(parse_group_by(a->opt[F_GROUP_BY], &o->group_by));
	if (a->opt[F_PITR_WINDOW] != NULL) {
		TRY(opt_usage("pitr-window", retention_parse_duration(a->opt[F_PITR_WINDOW], &o->pitr_window)));
		o->pitr_window_given = true;
	}
	o->dry_run = a->opt[F_DRY_RUN] != NULL;
	if (!retention_policy_empty(&o->policy)) {
		o->names = (const char *const *)a->pos;
		o->nnames = a->npos;
		return 0;
	}
	/* no policy: the arguments are IDs, and there must be some */
	if (a->npos == 0)
		return cli_usage("nothing to forget: give a policy (--keep-last N, --keep-daily N, --keep-within D, "
				 "...) or snapshot IDs");
	for (size_t i = 0; i < a->npos; i++)
		if (!looks_like_id(a->pos[i]))
			return cli_usage("no --keep-* option given, and '%s' is not a snapshot ID (4 to 64 lowercase "
					 "hex digits): to apply a policy to the snapshots named %s, give --keep-last N "
					 "or another --keep-* option",
					 a->pos[i], a->pos[i]);
	if (!snap_filter_empty(&o->filter) || o->kind != 0 || o->group_by != 0)
		return cli_usage("--tag, --host, --path, --kind and --group-by choose what a policy applies to; "
				 "snapshot IDs name exactly what to remove");
	o->ids = (const char *const *)a->pos;
	o->nids = a->npos;
	return 0;
}

/* ---- text output ---- */

enum { C_ID, C_TIME, C_NAME, C_HOST, C_KIND, C_SIZE, C_ACTION, C_REASONS, NCOLS };
static const char *const headers[NCOLS] = {"ID", "TIME", "NAME", "HOST", "KIND", "SIZE", "ACTION", "REASONS"};

typedef struct row {
	char id[9], time[32], size[32], reasons[256];
	const char *cell[NCOLS];
} row;

static void fill_row(row *w, const forget_item *it)
{
	const snapshot *s = it->s;
	fmt_id_short(it->id, w->id);
	retention_reasons_format(it->reasons, w->reasons, sizeof w->reasons);
	if (s != NULL) {
		fmt_time_local(s->time_ns, w->time);
		fmt_size(s->size, w->size);
	} else {
		snprintf(w->time, sizeof w->time, "?");
		snprintf(w->size, sizeof w->size, "?");
	}
	const char *cells[NCOLS] = {w->id,
				    w->time,
				    s ? s->name : "(unreadable)",
				    s ? s->host : "?",
				    s ? snap_kind_name(s->kind) : "?",
				    w->size,
				    it->keep ? "keep" : "remove",
				    w->reasons};
	memcpy(w->cell, cells, sizeof cells);
}

/* Columns padded to width, without trailing blanks (a removed snapshot has no reasons). */
static void print_row(const char *const cell[NCOLS], const int width[NCOLS])
{
	char line[2048];
	size_t n = 0;
	for (int c = 0; c < NCOLS && n < sizeof line; c++) {
		int w = snprintf(line + n, sizeof line - n, c == C_SIZE ? "%*s%s" : "%-*s%s", width[c], cell[c],
				 c + 1 < NCOLS ? "  " : "");
		n += w > 0 ? (size_t)w : 0;
	}
	n = n < sizeof line ? n : sizeof line - 1;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	printf("%.*s\n", (int)n, line);
}

static int print_group(const forget_result *res, const forget_group *g, bool dry_run)
{
	int width[NCOLS];
	row *rows = calloc(g->n ? g->n : 1, sizeof *rows);
	if (rows == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	if (g->name != NULL && g->host != NULL)
		printf("snapshots named %s on host %s", g->name, g->host);
	else if (g->name != NULL)
		printf("snapshots named %s", g->name);
	else if (g->host != NULL)
		printf("snapshots on host %s", g->host);
	else
		printf("snapshots named by ID");
	printf(": %zu kept, %zu %s\n", g->kept, g->removed, dry_run ? "to remove" : "removed");
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(headers[c]);
	for (size_t i = 0; i < g->n; i++) {
		fill_row(&rows[i], &res->items[g->first + i]);
		for (int c = 0; c < NCOLS; c++) {
			int len = (int)strlen(rows[i].cell[c]);
			width[c] = len > width[c] ? len : width[c];
		}
	}
	print_row(headers, width);
	for (size_t i = 0; i < g->n; i++)
		print_row(rows[i].cell, width);
	free(rows);
	return 0;
}

static int print_text(const forget_result *res, bool dry_run)
{
	for (size_t k = 0; k < res->ngroups; k++) {
		TRY(print_group(res, &res->groups[k], dry_run));
		putchar('\n');
	}
	if (res->nitems == 0)
		printf("no snapshots to consider\n");
	else if (dry_run)
		printf("dry run: %zu kept, %zu would be removed; nothing was deleted\n", res->kept, res->removed);
	else if (res->removed > 0)
		printf("%zu kept, %zu removed; run 'dre prune' to free the space only they used\n", res->kept,
		       res->removed);
	else
		printf("%zu kept, 0 removed\n", res->kept);
	if (res->wal_ran) {
		char bytes[32];
		fmt_size(res->wal_bytes_removed, bytes);
		printf("WAL: %zu files %s (%s), %zu kept\n", res->wal_removed, dry_run ? "would be removed" : "removed",
		       bytes, res->wal_kept);
	}
	return 0;
}

/* ---- JSON output ---- */

static json_t *item_json(const forget_item *it)
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	json_t *o = it->s ? snap_summary_json(it->s) : json_object();
	json_t *reasons = json_array();
	if (o == NULL || reasons == NULL) {
		json_decref(o);
		json_decref(reasons);
		return NULL;
	}
	if (it->s == NULL) {
		hex_encode(it->id, CRYPTO_ID_LEN, hex);
		json_object_set_new(o, "id", json_string(hex));
		json_object_set_new(o, "unreadable", json_true());
	}
	for (int k = 0; k < RET_NRULES; k++)
		if (it->reasons & RET_BIT(k))
			json_array_append_new(reasons, json_string(retention_rule_name((enum retention_rule)k)));
	json_object_set_new(o, "action", json_string(it->keep ? "keep" : "remove"));
	json_object_set_new(o, "reasons", reasons);
	json_object_set_new(o, "removed", json_boolean(it->removed));
	return o;
}

static json_t *opt_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int print_json(const forget_result *res, bool dry_run)
{
	json_t *groups = json_array();
	for (size_t k = 0; groups != NULL && k < res->ngroups; k++) {
		const forget_group *g = &res->groups[k];
		json_t *snaps = json_array();
		for (size_t i = 0; snaps != NULL && i < g->n; i++)
			if (json_array_append_new(snaps, item_json(&res->items[g->first + i])) != 0) {
				json_decref(snaps);
				snaps = NULL;
			}
		json_t *jg = json_pack("{s:o, s:o, s:o?, s:I, s:I}", "name", opt_string(g->name), "host",
				       opt_string(g->host), "snapshots", snaps, "kept", (json_int_t)g->kept, "removed",
				       (json_int_t)g->removed);
		if (jg == NULL || json_array_append_new(groups, jg) != 0) {
			json_decref(groups);
			groups = NULL;
		}
	}
	json_t *wal = res->wal_ran ? json_pack("{s:I, s:I, s:I}", "removed", (json_int_t)res->wal_removed, "kept",
					       (json_int_t)res->wal_kept, "bytes_removed",
					       (json_int_t)res->wal_bytes_removed)
				   : json_null();
	return cli_print_json(stdout, json_pack("{s:b, s:o?, s:{s:I, s:I, s:I}, s:o?}", "dry_run", dry_run,
						"groups", groups, "totals", "snapshots",
						(json_int_t)res->nitems, "kept", (json_int_t)res->kept, "removed",
						(json_int_t)res->removed, "wal", wal));
}

static int forget_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	forget_opts *o = arg;
	forget_result res;
	o->warn = cli_warn;
	o->warn_arg = NULL;
	int rc = engine_forget(r, o, &res);
	if (rc == DRE_EINVAL)
		rc = cli_as_usage(rc); /* an ambiguous or malformed ID: what the user typed */
	if (rc == 0 && ctx->json)
		rc = print_json(&res, o->dry_run);
	else if (rc == 0 && !ctx->quiet)
		rc = print_text(&res, o->dry_run);
	forget_result_free(&res);
	return rc;
}

static int forget_run(cli_ctx *ctx, const cli_args *a)
{
	forget_opts o = {0};
	ctx->run.dry_run = a->opt[F_DRY_RUN] != NULL; /* changes nothing: not a forget to record */
	int rc = parse_forget(a, &o);
	if (rc == 0)
		rc = cli_with_repo(ctx, forget_in_repo, &o);
	cli_filter_free(&o.filter);
	return rc;
}

const cli_command cmd_forget = {
	.name = "forget",
	.summary = "remove snapshots by a retention policy or by ID",
	.opts = forget_opts_table,
	.run = forget_run,
	.metric = CLI_METRIC_LIFECYCLE,
	.usage =
		"usage: dre forget [NAME...] [--keep-* ...] [--tag T] [--host H] [--path P] [--kind K] [--group-by G]\n"
		"                  [--dry-run]\n"
		"       dre forget ID...\n"
		"\n"
		"Removes the snapshots a policy does not keep, or exactly the snapshots named by ID (a full ID or a\n"
		"unique prefix of 4 or more hex digits). Only snapshot objects are removed: run 'dre prune' afterwards\n"
		"to free the space their data used. Prints each snapshot with keep (and the rules that keep it) or\n"
		"remove; with --json the same as an object (groups, snapshots with action and reasons, totals).\n"
		"\n"
		"The policy applies to each group of snapshots on its own, by default those of one name and host;\n"
		"the newest snapshot of a group is always kept. A snapshot is kept when any rule keeps it:\n"
		"  --keep-last N          the N newest\n"
		"  --keep-hourly N        the newest of each of the N newest hours that have snapshots\n"
		"  --keep-daily N, --keep-weekly N, --keep-monthly N, --keep-yearly N   the same by day, ISO week\n"
		"                         (Monday to Sunday), month and year, in the local time zone\n"
		"  --keep-within D        every snapshot taken less than D before the group's newest one (not\n"
		"                         before now, so a group no longer backed up keeps its last ones)\n"
		"  --keep-within-hourly D, --keep-within-daily D, ... -weekly, -monthly, -yearly D\n"
		"                         the newest of each hour, day, ... among the snapshots within D\n"
		"D is a calendar duration: numbers with units y, m (months), w, d, h, as in 7d, 2w, 1y6m, 36h.\n"
		"\n"
		"  NAME...                apply the policy to these names only\n"
		"  --kind K               only snapshots of this kind (stream, files, pg-base)\n"
		"  --tag T[,T...]         only snapshots with every tag of the list (given more than once: any of\n"
		"                         the lists; --tag '' the snapshots without tags)\n"
		"  --host H               only snapshots of host H (given more than once: any of them)\n"
		"  --path P               only snapshots of a files push given the path P (every path given)\n"
		"  --group-by G           name, host, or name,host (the default)\n"
		"  --pitr-window D        keep the WAL to restore to any time in the last D (below)\n"
		"  -n, --dry-run          show what would be removed; remove nothing\n"
		"\n"
		"When a base backup (pg-base) is removed, or --pitr-window is given, the archived WAL that no remaining\n"
		"base backup needs is removed too: every remaining backup keeps the WAL from its start to its stop,\n"
		"and the WAL from the newest backup that ended before the window (default: the oldest backup) on.\n"
		"Forget takes the repository's delete lock: it fails (exit 7) while a prune or another forget runs.\n",
};
