/*
 * cmd_snap.c — the listing commands: `snapshots` (one row per snapshot, oldest first) and `ls` (one line per
 * node of a snapshot, like `ls -l`). Both print aligned columns for people and the engine's JSON for scripts.
 */
#include "cli/cli.h"

#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

/* ---- snapshots ---- */

enum { S_TAG, S_HOST, S_PATH };
static const cli_opt snapshots_opts[] = {{"tag", 0, true}, {"host", 0, true}, {"path", 0, true}, {0}};

enum { C_ID, C_TIME, C_HOST, C_NAME, C_KIND, C_SIZE, C_STORED, C_DEDUP, C_TAGS, NCOLS };
static const char *const headers[NCOLS] = {"ID", "TIME", "HOST", "NAME", "KIND", "SIZE", "STORED", "DEDUP", "TAGS"};

typedef struct row {
	char id[9], time[32], size[32], stored[32], dedup[32];
	char *tags; /* malloc'd, escaped: a tag comes from the snapshot object, whoever wrote it */
	const char *cell[NCOLS];
} row;

/* "a,b": the snapshot's tags as --tag takes them; "" for none. malloc'd; NULL when out of memory. */
static char *tags_text(const snapshot *s)
{
	json_t *tags = snap_meta_strings(s, SNAP_META_TAGS), *v;
	size_t i, len = 1;
	char *text = NULL;
	json_array_foreach(tags, i, v)
	{
		len += json_string_length(v) + 1;
	}
	if (tags != NULL && (text = malloc(len)) != NULL) {
		size_t at = 0;
		json_array_foreach(tags, i, v)
		{
			at += (size_t)sprintf(text + at, "%s%s", i ? "," : "", json_string_value(v));
		}
		text[at] = '\0';
	}
	json_decref(tags);
	char *escaped = text ? cli_escape(text) : NULL;
	free(text);
	return escaped;
}

static int fill_row(row *w, const snapshot *s)
{
	fmt_id_short(s->id, w->id);
	fmt_time_local(s->time_ns, w->time);
	fmt_size(s->size, w->size);
	fmt_size(s->stored_new, w->stored);
	fmt_ratio(s->size, s->stored_new, w->dedup);
	if ((w->tags = tags_text(s)) == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	const char *cells[NCOLS] = {w->id, w->time, s->host, s->name, snap_kind_name(s->kind),
				    w->size, w->stored, w->dedup, w->tags};
	memcpy(w->cell, cells, sizeof cells);
	return 0;
}

/* Columns padded to width, without trailing blanks (most snapshots have no tags). */
static void print_row(const char *const cell[NCOLS], const int width[NCOLS])
{
	int blanks = 0; /* owed before the next cell: dropped at the end of the line */
	for (int c = 0; c < NCOLS; c++) {
		bool right = c >= C_SIZE && c <= C_DEDUP; /* the numbers */
		int pad = width[c] - (int)strlen(cell[c]);
		if (*cell[c] == '\0') {
			blanks += width[c] + 2;
			continue;
		}
		printf("%*s%s", blanks + (right ? pad : 0), "", cell[c]);
		blanks = (right ? 0 : pad) + 2;
	}
	putchar('\n');
}

static int print_table(const snapshot *const *sel, size_t n)
{
	int width[NCOLS], rc = 0;
	size_t filled = 0;
	row *rows = calloc(n ? n : 1, sizeof *rows);
	if (rows == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(headers[c]);
	for (; rc == 0 && filled < n; filled++) {
		rc = fill_row(&rows[filled], sel[filled]);
		for (int c = 0; rc == 0 && c < NCOLS; c++) {
			int len = (int)strlen(rows[filled].cell[c]);
			width[c] = len > width[c] ? len : width[c];
		}
	}
	if (rc == 0) {
		print_row(headers, width);
		for (size_t i = 0; i < n; i++)
			print_row(rows[i].cell, width);
	}
	for (size_t i = 0; i < filled; i++)
		free(rows[i].tags);
	free(rows);
	return rc;
}

/* The engine's summary with the paths and tags read out of their meta values, as arrays. */
static json_t *snapshot_json(const snapshot *s)
{
	json_t *o = snap_summary_json(s);
	if (o != NULL && (json_object_set_new(o, "paths", snap_meta_strings(s, SNAP_META_PATHS)) != 0 ||
			  json_object_set_new(o, "tags", snap_meta_strings(s, SNAP_META_TAGS)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json_list(const snapshot *const *sel, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < n; i++)
		if (json_array_append_new(list, snapshot_json(sel[i])) != 0) {
			json_decref(list);
			list = NULL;
		}
	return cli_print_json(stdout, list);
}

struct snapshots_job {
	const char *name;
	snap_filter filter;
};

static int list_snapshots(cli_ctx *ctx, repo *r, void *arg)
{
	const struct snapshots_job *j = arg;
	const char *name = j->name;
	snap_list l;
	TRY(snap_list_load(r, &l, cli_warn, NULL));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, each sizeof *sel */
	const snapshot **sel = calloc(l.n ? l.n : 1, sizeof *sel);
	size_t n = 0;
	int rc = sel ? 0 : err_set(DRE_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		if ((name == NULL || strcmp(l.items[i].name, name) == 0) && snap_filter_match(&j->filter, &l.items[i]))
			sel[n++] = &l.items[i];
	char opts[512];
	snap_filter_describe(&j->filter, opts, sizeof opts);
	if (rc == 0 && ctx->json)
		rc = print_json_list(sel, n);
	else if (rc == 0 && n > 0)
		rc = print_table(sel, n);
	else if (rc == 0 && !ctx->quiet)
		fprintf(stderr, "no snapshots%s%s%s%s\n", name ? " named " : "", name ? name : "",
			*opts ? " match " : "", opts);
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
	struct snapshots_job j = {0};
	TRY(cli_want_args(a, 0, 1, ""));
	j.name = a->npos ? a->pos[0] : NULL;
	int rc = cli_filter_parse(a, S_TAG, S_HOST, S_PATH, &j.filter);
	if (rc == 0)
		rc = cli_with_repo(ctx, list_snapshots, &j);
	cli_filter_free(&j.filter);
	return rc;
}

const cli_command cmd_snapshots = {
	.name = "snapshots",
	.summary = "list snapshots",
	.opts = snapshots_opts,
	.run = snapshots_run,
	.usage = "usage: dre snapshots [NAME] [--tag T[,T...]] [--host H] [--path P]\n"
		 "\n"
		 "Lists the snapshots (those called NAME only, when given), oldest first: ID (first 8 hex digits),\n"
		 "TIME (local), HOST, NAME, KIND, SIZE (read), STORED (new data the push stored), DEDUP\n"
		 "(SIZE / STORED) and TAGS. With --json: an array of objects with the full ID, exact numbers, and\n"
		 "the paths a files push was given and the tags, as arrays.\n"
		 "A snapshot object that cannot be read is named on standard error and left out; the exit\n"
		 "status is then 5.\n"
		 "\n"
		 "Only the snapshots that match, when given (each option may be given more than once):\n"
		 "  --tag T[,T...]  with every tag of the list; given more than once, any of the lists; --tag ''\n"
		 "                  the snapshots without tags\n"
		 "  --host H        taken on host H (any of the hosts given)\n"
		 "  --path P        of a files push given the path P (every path given; a trailing '/' is ignored)\n",
};

/* ---- ls ---- */

/* "drwxr-xr-x": the type (d, -, l, c, b, or s for a stream) and the permission bits, setuid/setgid/sticky too. */
static void fmt_mode(uint8_t type, uint32_t mode, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	switch (type) {
	case NODE_DIR: out[0] = 'd'; break;
	case NODE_SYMLINK: out[0] = 'l'; break;
	case NODE_STREAM: out[0] = 's'; break;
	case NODE_CHARDEV: out[0] = 'c'; break;
	case NODE_BLOCKDEV: out[0] = 'b'; break;
	default: out[0] = '-'; break;
	}
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

/* Owner names as ls -l shows them, from a small cache: a snapshot of many files asks the system's user and
 * group databases about each owner once, in memory that does not grow with the number of owners. */
#define OWNER_CACHE 16
typedef struct owner_cache {
	struct owner_entry {
		bool used, group;
		uint32_t id;
		char name[64];
	} e[OWNER_CACHE];
	size_t next; /* the entry replaced next */
} owner_cache;

static const char *owner_name(owner_cache *c, bool group, uint32_t id)
{
	for (size_t i = 0; i < OWNER_CACHE; i++)
		if (c->e[i].used && c->e[i].group == group && c->e[i].id == id)
			return c->e[i].name;
	struct owner_entry *e = &c->e[c->next];
	c->next = (c->next + 1) % OWNER_CACHE;
	*e = (struct owner_entry){.used = true, .group = group, .id = id};
	char db[16384]; /* getpwuid_r and getgrgid_r keep the entry's strings here */
	const char *name = NULL;
	if (group) {
		struct group gr, *res = NULL;
		if (getgrgid_r((gid_t)id, &gr, db, sizeof db, &res) == 0 && res != NULL)
			name = res->gr_name;
	} else {
		struct passwd pw, *res = NULL;
		if (getpwuid_r((uid_t)id, &pw, db, sizeof db, &res) == 0 && res != NULL)
			name = res->pw_name;
	}
	/* a name this machine does not know, or too long to keep, shows as the number, like ls */
	if (name == NULL || strlen(name) >= sizeof e->name)
		snprintf(e->name, sizeof e->name, "%" PRIu32, id);
	else
		snprintf(e->name, sizeof e->name, "%s", name);
	return e->name;
}

static int ls_snapshot(cli_ctx *ctx, repo *r, const snapshot *s, void *arg)
{
	char mode[11], mtime[32], digits[32];
	owner_cache *owners;
	(void)arg;
	if (ctx->json) /* JSON carries names as they are: its own escaping keeps them whole */
		return cli_print_snapshot_json(r, s, false);
	/* no node is larger than the whole snapshot: one pass, aligned */
	int width = snprintf(digits, sizeof digits, "%" PRIu64, s->size);
	snap_walk *w = NULL;
	snap_node n;
	int rc;
	if ((owners = calloc(1, sizeof *owners)) == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	rc = snap_walk_open(r, NULL, s, false, &w);
	bool opened = rc == 0;
	while (opened && (rc = snap_walk_next(w, &n)) == 1) {
		fmt_mode(n.type, n.mode, mode);
		fmt_time_local(n.mtime_ns, mtime);
		/* a stream has no owner of its own */
		printf("%s %-8s ", mode, n.type == NODE_STREAM ? "-" : owner_name(owners, false, n.uid));
		printf("%-8s %*" PRIu64 " %s ", n.type == NODE_STREAM ? "-" : owner_name(owners, true, n.gid), width,
		       n.size, mtime);
		/* one line per node whatever its name holds: a newline in a name must not start another */
		cli_fputs_escaped(n.path, stdout);
		if (n.link != NULL) {
			fputs(" -> ", stdout);
			cli_fputs_escaped(n.link, stdout);
		}
		putchar('\n');
	}
	if (opened)
		snap_walk_free(w);
	free(owners);
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
		 "Lists what a snapshot holds, one line per stream, file, directory, symlink or device: mode (type\n"
		 "d, -, l, c, b, or s for a stream), owner and group (names where this machine knows the IDs, else\n"
		 "the numbers; '-' for a stream), size in bytes, modification time (local), path and a symlink's\n"
		 "target. Control characters in paths and targets are shown as C escapes (\\n, \\t, \\x1b) and a\n"
		 "backslash as \\\\, so each entry stays on one line. WHAT is a name (its newest snapshot) or an ID\n"
		 "prefix of at least 4 hex digits. With --json: the snapshot without chunk IDs, names as they are.\n",
};
