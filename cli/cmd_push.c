/*
 * cmd_push.c — `dre push`: decides from the arguments which of the three engine pushes to call (standard
 * input, a producer command after "--", or paths), checks what can be checked before asking for the password,
 * and prints the one-line summary (or JSON) of the snapshot saved.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <unistd.h>

#include "engine/pipeline/pattern.h"

/* A snapshot recorded without some entries it could not read (push_result.left_out): exit 9. */
#define CLI_EXIT_INCOMPLETE 9
#define PUSH_EINCOMPLETE (-110)

enum push_mode { PUSH_STDIN, PUSH_COMMAND, PUSH_PATHS };

enum { P_TAG, P_HOST, P_PARENT, P_FORCE_READ, P_IGNORE_CTIME, P_IGNORE_INODE, P_EXCLUDE, P_EXCLUDE_FILE,
       P_ONE_FS, P_ALLOW_EMPTY };
static const cli_opt push_table[] = {
	{"tag", 0, true},	    {"host", 0, true},		{"parent", 0, true},	   {"force-read", 0, false},
	{"ignore-ctime", 0, false}, {"ignore-inode", 0, false}, {"exclude", 'e', true},	   {"exclude-file", 0, true},
	{"one-file-system", 'x', false}, {"allow-empty", 0, false}, {0},
};

typedef struct push_job {
	enum push_mode mode;
	const char *name;
	char *const *args; /* the command's argv or the paths */
	size_t nargs;
	push_opts o;
	const char **tags; /* malloc'd, into copies */
	char **copies;     /* of each --tag value, NULL-terminated */
	pattern_set *exclude;
} push_job;

/* --tag a,b --tag c: tags a, b and c, pointing into copies of the values (j->copies) split in place. */
static int push_tags(const cli_args *a, push_job *j)
{
	const char **given;
	size_t n;
	TRY(cli_opt_all(a, P_TAG, &given, &n));
	int rc = 0;
	j->copies = calloc(n + 1, sizeof *j->copies);
	if (j->copies == NULL)
		rc = err_set(DRE_ENOMEM, "cannot hold the tags");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char *save = NULL;
		if ((j->copies[i] = strdup(given[i])) == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot hold the tags");
			break;
		}
		for (char *t = strtok_r(j->copies[i], ",", &save); rc == 0 && t; t = strtok_r(NULL, ",", &save)) {
			const char **more = realloc(j->tags, (j->o.ntags + 1) * sizeof *j->tags);
			if (more == NULL) {
				rc = err_set(DRE_ENOMEM, "cannot hold the tags");
				break;
			}
			j->tags = more;
			j->tags[j->o.ntags++] = t;
			rc = cli_as_usage(engine_check_tag(t));
		}
	}
	if (rc == 0 && n > 0 && j->o.ntags == 0)
		rc = cli_usage("--tag needs at least one tag");
	free(given);
	j->o.tags = j->tags;
	return rc;
}

/* --exclude and --exclude-file, in the order given */
static int push_excludes(const cli_args *a, push_job *j)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < a->nvals; i++) {
		if (a->vals[i].idx != P_EXCLUDE && a->vals[i].idx != P_EXCLUDE_FILE)
			continue;
		if (j->exclude == NULL)
			TRY(pattern_set_new(&j->exclude));
		rc = a->vals[i].idx == P_EXCLUDE ? pattern_set_add(j->exclude, a->vals[i].val, "--exclude")
						 : pattern_set_add_file(j->exclude, a->vals[i].val);
	}
	j->o.exclude = j->exclude;
	return cli_as_usage(rc);
}

static int push_plan(const cli_args *a, push_job *j)
{
	TRY(cli_want_args(a, 1, SIZE_MAX, "the snapshot NAME"));
	TRY(cli_as_usage(engine_check_name(a->pos[0])));
	*j = (push_job){.mode = PUSH_PATHS, .name = a->pos[0], .args = a->pos + 1, .nargs = a->npos - 1};
	j->o = (push_opts){.name = j->name,
			   .host = a->opt[P_HOST],
			   .parent = a->opt[P_PARENT],
			   .force_read = a->opt[P_FORCE_READ] != NULL,
			   .ignore_ctime = a->opt[P_IGNORE_CTIME] != NULL,
			   .ignore_inode = a->opt[P_IGNORE_INODE] != NULL,
			   .one_file_system = a->opt[P_ONE_FS] != NULL,
			   .allow_empty = a->opt[P_ALLOW_EMPTY] != NULL};
	TRY(push_tags(a, j));
	TRY(push_excludes(a, j));
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
	bool files_only = j->o.parent || j->o.force_read || j->o.ignore_ctime || j->o.ignore_inode || j->exclude ||
			  j->o.one_file_system;
	if (j->mode != PUSH_PATHS && files_only)
		return cli_usage("--parent, --force-read, --ignore-ctime, --ignore-inode, --exclude, --exclude-file and "
				 "--one-file-system are for pushes of files (dre push NAME PATH...)");
	if (j->mode == PUSH_PATHS && j->o.allow_empty)
		return cli_usage("--allow-empty is for streams: a push of files records empty files as they are");
	if (j->o.parent && j->o.force_read)
		return cli_usage("--parent and --force-read exclude each other: --force-read compares with no parent");
	return 0;
}

static int push_report(const cli_ctx *ctx, const char *name, const push_result *res)
{
	char id[2 * CRYPTO_ID_LEN + 1], size[32], stored[32], ratio[32];
	hex_encode(res->id, CRYPTO_ID_LEN, id);
	if (ctx->json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s?}", "id", id,
				      "name", name, "size", (json_int_t)res->size, "stored_new",
				      (json_int_t)res->stored_new, "chunks", (json_int_t)res->chunks, "chunks_new",
				      (json_int_t)res->chunks_new, "list_blobs_new", (json_int_t)res->lists_new,
				      "files", (json_int_t)res->files, "files_skipped", (json_int_t)res->files_skipped,
				      "bytes_skipped", (json_int_t)res->bytes_skipped, "left_out",
				      (json_int_t)res->left_out, "seconds", res->seconds, "reader", res->reader);
		json_object_set_new(o, "parent", res->parent[0] ? json_string(res->parent) : json_null());
		json_object_set_new(o, "incomplete", json_boolean(res->left_out > 0));
		return cli_print_json(stdout, o);
	}
	if (ctx->quiet)
		return 0;
	fmt_size(res->size, size);
	fmt_size(res->stored_new, stored);
	fmt_ratio(res->size, res->stored_new, ratio);
	/* the bytes taken from the parent were not read: the speed is that of the bytes that were */
	printf("snapshot %.8s saved: %s in %zu files, %s new stored, dedup %s, %.1f MB/s, %.2f s\n", id, size,
	       res->files, stored, ratio, mb_per_s(res->size - res->bytes_skipped, res->seconds), res->seconds);
	if (res->parent[0]) {
		char skipped[32];
		fmt_size(res->bytes_skipped, skipped);
		printf("%zu files (%s) unchanged since snapshot %.8s: not read\n", res->files_skipped, skipped,
		       res->parent);
	}
	return 0;
}

static int push_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	const push_job *j = arg;
	cli_progress prog = {.verb = "read", .show_stored = true};
	push_opts o = j->o;
	o.threads = ctx->threads;
	o.hooks = cli_hooks(ctx, &prog);
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
	TRY(push_report(ctx, j->name, &res));
	if (res.left_out > 0)
		return err_set(PUSH_EINCOMPLETE, "%zu %s could not be read whole (reported above): the snapshot is "
						 "recorded and marked incomplete",
			       res.left_out, res.left_out == 1 ? "entry" : "entries");
	return 0;
}

static int push_run(cli_ctx *ctx, const cli_args *a)
{
	push_job j = {0};
	int rc = push_plan(a, &j);
	if (rc == 0)
		rc = cli_with_repo(ctx, push_in_repo, &j);
	for (size_t i = 0; j.copies && j.copies[i]; i++)
		free(j.copies[i]);
	free(j.copies);
	free(j.tags);
	pattern_set_free(j.exclude);
	return rc;
}

static int push_exit(int rc)
{
	return rc == PUSH_EINCOMPLETE ? CLI_EXIT_INCOMPLETE : cli_exit_status(rc);
}

const cli_command cmd_push = {
	.name = "push",
	.summary = "back up a stream (standard input or a command's output) or files",
	.opts = push_table,
	.run = push_run,
	.exit_status = push_exit,
	.metric = CLI_METRIC_BACKUP,
	.usage = "usage: dre push [OPTIONS] NAME < STREAM\n"
		 "       dre push [OPTIONS] NAME -- COMMAND [ARGS...]\n"
		 "       dre push [OPTIONS] NAME PATH...\n"
		 "\n"
		 "Saves one snapshot called NAME (1..255 bytes, no '/'), deduplicated against everything already\n"
		 "in the repository:\n"
		 "  NAME                  everything read from standard input (which must not be a terminal)\n"
		 "  NAME -- COMMAND ARGS  the standard output of COMMAND; the snapshot is recorded only when it\n"
		 "                        exits with status 0 (else dre exits with status 6)\n"
		 "  NAME PATH...          files and directories, recursively, with their modes, owners, times,\n"
		 "                        hard links, extended attributes and ACLs, symlinks and device nodes\n"
		 "                        (FIFOs and sockets are skipped with a note); a leading '/' is dropped\n"
		 "\n"
		 "A stream that gives no byte is refused (exit 1) unless --allow-empty.\n"
		 "\n"
		 "Files: each file is compared with what the newest snapshot of the same NAME and host recorded\n"
		 "(the parent); when its size, mtime, ctime, inode and device are the same, and its mtime is more\n"
		 "than 2 s older than the parent's start, its content is taken from the parent without reading it.\n"
		 "A file whose content changed while all of these stayed the same (an mtime set back with touch\n"
		 "keeps size and mtime, but not ctime) is only seen with --force-read: run one from time to time.\n"
		 "An entry that cannot be read (permissions, I/O error, removed meanwhile) or that changes while\n"
		 "it is read is reported with its path and reason; the snapshot is still recorded, marked\n"
		 "incomplete, and dre exits with status 9.\n"
		 "\n"
		 "Options:\n"
		 "  --tag TAG[,TAG...]    record tags (repeatable); snapshots, forget and restore select by them\n"
		 "  --host HOST           record HOST instead of this machine's name\n"
		 "  --parent SNAPSHOT     compare files with this snapshot (ID, prefix or name) instead\n"
		 "  --force-read          read every file, comparing with no parent\n"
		 "  --ignore-ctime        leave ctime out of the comparison\n"
		 "  --ignore-inode        leave inode and device out of it (file systems without stable inodes)\n"
		 "  -e, --exclude PATTERN leave out what matches (repeatable; '!PATTERN' takes it back)\n"
		 "  --exclude-file FILE   patterns from FILE, one a line ('#' comments)\n"
		 "  -x, --one-file-system record mount points below the paths given, not what is in them\n"
		 "  --allow-empty         record a stream of 0 bytes\n"
		 "Patterns: '*.tmp' or 'cache' match a name anywhere; '/srv/x/cache' is anchored at the root;\n"
		 "'models/cache' matches the end of a path; '**' matches any number of directories; a trailing\n"
		 "'/' matches directories only.\n"
		 "\n"
		 "Prints 'snapshot ID saved: ...' with sizes, dedup ratio and speed, and how many files were taken\n"
		 "from the parent (--json: an object with id, name, size, stored_new, chunks, chunks_new,\n"
		 "list_blobs_new, files, files_skipped, bytes_skipped, parent, left_out, incomplete, seconds;\n"
		 "--quiet: nothing). On a terminal a progress line is shown on standard error.\n",
};
