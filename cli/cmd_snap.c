/*
 * cmd_snap.c — the listing commands: `snapshots` (one row per snapshot, oldest first) and `ls` (one line per
 * node of a snapshot, like `ls -l`). Both print aligned columns for people and the engine's JSON for scripts.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- snapshots ---- */

enum { C_ID, C_TIME, C_HOST, C_NAME, C_KIND, C_SIZE, C_STORED, C_DEDUP, NCOLS };
static const char *const headers[NCOLS] = {"ID", "TIME", "HOST", "NAME", "KIND", "SIZE", "STORED", "DEDUP"};

typedef struct row {
	char id[9], time[32], size[32], stored[32], dedup[32];
	const char *cell[NCOLS];
} row;

static void fill_row(row *w, const snapshot *s)
{
	fmt_id_short(s->id, w->id);
	fmt_time_local(s->time_ns, w->time);
	fmt_size(s->size, w->size);
	fmt_size(s->stored_new, w->stored);
	fmt_ratio(s->size, s->stored_new, w->dedup);
	const char *cells[NCOLS] = {w->id, w->time, s->host, s->name, snap_kind_name(s->kind),
				    w->size, w->stored, w->dedup};
	memcpy(w->cell, cells, sizeof cells);
}

static void print_row(const char *const cell[NCOLS], const int width[NCOLS])
{
	for (int c = 0; c < NCOLS; c++) {
		bool right = c >= C_SIZE; /* the numbers */
		printf(right ? "%*s%s" : "%-*s%s", width[c], cell[c], c + 1 < NCOLS ? "  " : "\n");
	}
}

static int print_table(const snapshot *const *sel, size_t n)
{
	int width[NCOLS];
	row *rows = calloc(n ? n : 1, sizeof *rows);
	if (rows == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(headers[c]);
	for (size_t i = 0; i < n; i++) {
		fill_row(&rows[i], sel[i]);
		for (int c = 0; c < NCOLS; c++) {
			int len = (int)strlen(rows[i].cell[c]);
			width[c] = len > width[c] ? len : width[c];
		}
	}
	print_row(headers, width);
	for (size_t i = 0; i < n; i++)
		print_row(rows[i].cell, width);
	free(rows);
	return 0;
}

static int print_json_list(const snapshot *const *sel, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < n; i++)
		if (json_array_append_new(list, snap_summary_json(sel[i])) != 0) {
			json_decref(list);
			list = NULL;
		}
	return cli_print_json(stdout, list);
}

static int list_snapshots(cli_ctx *ctx, repo *r, void *arg)
{
	const char *name = *(const char **)arg;
	snap_list l;
	TRY(snap_list_load(r, &l, cli_warn, NULL));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, each sizeof *sel */
	const snapshot **sel = calloc(l.n ? l.n : 1, sizeof *sel);
	size_t n = 0;
	int rc = sel ? 0 : err_set(DRE_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		if (name == NULL || strcmp(l.items[i].name, name) == 0)
			sel[n++] = &l.items[i];
	if (rc == 0 && ctx->json)
		rc = print_json_list(sel, n);
	else if (rc == 0 && n > 0)
		rc = print_table(sel, n);
	else if (rc == 0 && !ctx->quiet && name != NULL)
		fprintf(stderr, "no snapshots named %s\n", name);
	else if (rc == 0 && !ctx->quiet)
		fputs("no snapshots\n", stderr);
	/* what could be read is listed; a damaged or foreign snapshot object is an integrity problem all the same */
	if (rc == 0 && l.damaged > 0)
		rc = err_set(DRE_ECORRUPT,
			     "%zu snapshot object%s could not be read (named above). HINT: 'dre check' tells what is "
			     "damaged; 'dre forget ID' removes a snapshot object that cannot be repaired",
			     l.damaged, l.damaged == 1 ? "" : "s");
	free(sel);
	snap_list_free(&l);
	return rc;
}

static int snapshots_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 0, 1, ""));
	const char *name = a->npos ? a->pos[0] : NULL;
	return cli_with_repo(ctx, list_snapshots, &name);
}

const cli_command cmd_snapshots = {
	.name = "snapshots",
	.summary = "list snapshots",
	.opts = NULL,
	.run = snapshots_run,
	.usage = "usage: dre snapshots [NAME]\n"
		 "\n"
		 "Lists the snapshots (those called NAME only, when given), oldest first: ID (first 8 hex digits),\n"
		 "TIME (local), HOST, NAME, KIND, SIZE (read), STORED (new data the push stored) and DEDUP\n"
		 "(SIZE / STORED). With --json: an array of objects with the full ID and exact numbers.\n"
		 "A snapshot object that cannot be read is named on standard error and left out; the exit\n"
		 "status is then 5.\n",
};

/* ---- ls ---- */

/* "drwxr-xr-x": the type (d, -, l, or s for a stream) and the permission bits, setuid/setgid/sticky too. */
static void fmt_mode(uint8_t type, uint32_t mode, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	out[0] = (char)(type == NODE_DIR ? 'd' : type == NODE_SYMLINK ? 'l' : type == NODE_STREAM ? 's' : '-');
	for (int k = 0; k < 9; k++)
		out[1 + k] = (char)((mode & (0400u >> k)) ? rwx[k] : '-');
	if (mode & 04000)
		out[3] = out[3] == 'x' ? 's' : 'S';
	if (mode & 02000)
		out[6] = out[6] == 'x' ? 's' : 'S';
	if (mode & 01000)
		out[9] = out[9] == 'x' ? 't' : 'T';
	out[10] = '\0';
}

static int ls_snapshot(cli_ctx *ctx, repo *r, const snapshot *s, void *arg)
{
	char mode[11], mtime[32], digits[32];
	(void)arg;
	if (ctx->json)
		return cli_print_snapshot_json(r, s, false);
	/* no node is larger than the whole snapshot: one pass, aligned */
	int width = snprintf(digits, sizeof digits, "%" PRIu64, s->size);
	snap_walk *w;
	snap_node n;
	int rc;
	TRY(snap_walk_open(r, NULL, s, false, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		fmt_mode(n.type, n.mode, mode);
		fmt_time_local(n.mtime_ns, mtime);
		printf("%s %*" PRIu64 " %s %s%s%s\n", mode, width, n.size, mtime, n.path, n.link ? " -> " : "",
		       n.link ? n.link : "");
	}
	snap_walk_free(w);
	return rc;
}

static int ls_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 1, 1, "the snapshot: a name or an ID prefix"));
	return cli_with_snapshot(ctx, a->pos[0], -1, ls_snapshot, NULL);
}

const cli_command cmd_ls = {
	.name = "ls",
	.summary = "list the contents of a snapshot",
	.opts = NULL,
	.run = ls_run,
	.usage = "usage: dre ls WHAT\n"
		 "\n"
		 "Lists what a snapshot holds, one line per stream, file, directory or symlink: mode (type d, -, l,\n"
		 "or s for a stream), size in bytes, modification time (local) and path. WHAT is a name (its newest\n"
		 "snapshot) or an ID prefix of at least 4 hex digits. With --json: the snapshot without chunk IDs.\n",
};
