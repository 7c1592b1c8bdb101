/*
 * cmd_copy.c — `dre copy --to REPO`: opens the source (the usual -r and password) and the target (its own
 * password: --to-password-file, else DRE_TO_PASSWORD_FILE, else DRE_TO_PASSWORD; the same S3 settings), runs
 * engine_copy and prints a line per snapshot and a summary, or one JSON object.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "engine/pipeline/copy.h"

enum { C_TO, C_TO_PASSWORD_FILE, C_WAL };
static const cli_opt copy_opts_table[] = {{"to", 0, true}, {"to-password-file", 0, true}, {"wal", 0, false}, {0}};

typedef struct copy_job {
	const cli_ctx *ctx;
	const cli_args *a;
	const char *to;
	const char *to_password_file;
	json_t *snaps; /* --json: one object per selected snapshot */
	cli_progress *prog;
} copy_job;

/* The target's password. There is no prompt: asking on the terminal for a second repository would read like
 * the first's prompt, and a copy is usually scheduled. The file sources go through password.c's reader (the
 * option by way of the variable it stands for), so both read and wipe a password the same way. */
static int target_password(const copy_job *j, char **out)
{
	const char *pass = getenv("DRE_TO_PASSWORD");
	const char *file = getenv("DRE_TO_PASSWORD_FILE");
	*out = NULL;
	if (j->to_password_file != NULL) {
		if (*j->to_password_file == '\0')
			return cli_usage("--to-password-file: the file name is empty");
		if (setenv("DRE_TO_PASSWORD_FILE", j->to_password_file, 1) != 0)
			return err_sys("cannot set DRE_TO_PASSWORD_FILE");
		file = j->to_password_file;
	}
	if (file != NULL && *file != '\0')
		return cli_password_new(j->to, NULL, "DRE_TO_PASSWORD_FILE", out);
	if (pass != NULL && *pass != '\0')
		return (*out = strdup(pass)) ? 0 : err_set(DRE_ENOMEM, "out of memory");
	return err_set(CLI_EUSAGE, "no password for the target repository %s: give --to-password-file FILE, or set "
				   "DRE_TO_PASSWORD_FILE or DRE_TO_PASSWORD",
		       j->to);
}

static void copy_event_print(void *arg, const copy_event *e)
{
	copy_job *j = arg;
	const cli_ctx *ctx = j->ctx;
	char sid[2 * CRYPTO_ID_LEN + 1], tid[2 * CRYPTO_ID_LEN + 1], when[32], size[32], fetched[32], stored[32];
	hex_encode(e->src->id, CRYPTO_ID_LEN, sid);
	hex_encode(e->target_id, CRYPTO_ID_LEN, tid);
	if (ctx->json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "source", sid, "target", tid, "name", e->src->name,
				      "copied", e->copied);
		if (o != NULL && e->copied) {
			json_object_set_new(o, "size", json_integer((json_int_t)e->push->size));
			json_object_set_new(o, "fetched", json_integer((json_int_t)e->fetched));
			json_object_set_new(o, "stored_new", json_integer((json_int_t)e->push->stored_new));
			json_object_set_new(o, "seconds", json_real(e->push->seconds));
		}
		if (o != NULL)
			json_array_append_new(j->snaps, o);
		return;
	}
	if (ctx->quiet)
		return;
	cli_progress_end(j->prog);
	fmt_time_local(e->src->time_ns, when);
	if (!e->copied) {
		printf("snapshot %.8s (%s, %s) already there as %.8s\n", sid, e->src->name, when, tid);
		return;
	}
	fmt_size(e->push->size, size);
	fmt_size(e->fetched, fetched);
	fmt_size(e->push->stored_new, stored);
	printf("snapshot %.8s (%s, %s) copied as %.8s: %s read (%s fetched), %s new stored, %.2f s\n", sid,
	       e->src->name, when, tid, size, fetched, stored, e->push->seconds);
}

static int copy_report(const cli_ctx *ctx, copy_job *j, const copy_result *res)
{
	if (ctx->json) {
		json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:O}", "copied",
				      (json_int_t)res->copied, "already_there", (json_int_t)res->skipped, "bytes_read",
				      (json_int_t)res->bytes_read, "bytes_fetched", (json_int_t)res->bytes_fetched,
				      "stored_new", (json_int_t)res->stored_new, "wal_copied", (json_int_t)res->wal_copied,
				      "wal_already_there", (json_int_t)res->wal_present, "wal_bytes",
				      (json_int_t)res->wal_bytes, "seconds", res->seconds, "snapshots", j->snaps);
		return cli_print_json(stdout, o);
	}
	if (ctx->quiet)
		return 0;
	char read[32], fetched[32], stored[32], wal[32];
	fmt_size(res->bytes_read, read);
	fmt_size(res->bytes_fetched, fetched);
	fmt_size(res->stored_new, stored);
	printf("%zu copied, %zu already there: %s read (%s fetched), %s new stored", res->copied, res->skipped, read,
	       fetched, stored);
	if (j->a->opt[C_WAL] != NULL) {
		fmt_size(res->wal_bytes, wal);
		printf("; %zu WAL files copied (%s), %zu already there", res->wal_copied, wal, res->wal_present);
	}
	printf(", %.2f s\n", res->seconds);
	return 0;
}

static int copy_in_repo(cli_ctx *ctx, repo *src, void *arg)
{
	copy_job *j = arg;
	char *pass;
	repo *dst;
	TRY(target_password(j, &pass));
	int rc = engine_open(j->to, &ctx->store, pass, &dst);
	cli_password_free(pass);
	if (rc < 0)
		return err_ctx(rc, "target repository %s", j->to);
	engine_set_cache_dir(dst, src->cache_dir); /* per repository ID below it: the two caches stay apart */

	cli_progress prog = {.verb = "read", .show_stored = true};
	j->prog = &prog;
	copy_opts o = {.what = j->a->pos,
		       .nwhat = j->a->npos,
		       .wal = j->a->opt[C_WAL] != NULL,
		       .threads = ctx->threads,
		       .hooks = cli_hooks(ctx, &prog),
		       .event = copy_event_print,
		       .event_arg = j};
	copy_result res;
	j->snaps = json_array();
	rc = j->snaps ? engine_copy(src, dst, &o, &res) : err_set(DRE_ENOMEM, "out of memory");
	cli_progress_end(&prog);
	engine_close(dst);
	if (rc == 0)
		rc = copy_report(ctx, j, &res);
	json_decref(j->snaps);
	return rc;
}

static int copy_run(cli_ctx *ctx, const cli_args *a)
{
	copy_job j = {.ctx = ctx,
		      .a = a, .to = a->opt[C_TO], .to_password_file = a->opt[C_TO_PASSWORD_FILE]};
	if (j.to == NULL)
		return cli_usage("missing --to REPO: the repository to copy into");
	if (*j.to == '\0')
		return cli_usage("--to: the repository URL is empty");
	if (a->dashdash != SIZE_MAX)
		return cli_usage("'--' is not used by copy");
	for (size_t i = 0; i < a->npos; i++)
		if (*a->pos[i] == '\0')
			return cli_usage("an empty snapshot name or ID");
	return cli_with_repo(ctx, copy_in_repo, &j);
}

const cli_command cmd_copy = {
	.name = "copy",
	.summary = "copy snapshots (and WAL) into another repository",
	.opts = copy_opts_table,
	.run = copy_run,
	.usage = "usage: dre copy --to REPO [--to-password-file FILE] [--wal] [NAME... | ID...]\n"
		 "\n"
		 "Copies snapshots from the repository (-r, as usual) into REPO, on any store (a directory or\n"
		 "s3://BUCKET[/PREFIX], with the same S3 settings), re-encrypted under REPO's keys and deduplicated\n"
		 "against what REPO holds. NAME copies every snapshot of that name, ID (a prefix of 4 or more hex\n"
		 "digits) one snapshot; nothing: every snapshot. Oldest first. Each copy keeps the name, kind, host,\n"
		 "times and meta of its source and records the original snapshot's ID as meta copy-of (the source's,\n"
		 "or the source's own copy-of when it is a copy); a snapshot REPO already holds is skipped, so running\n"
		 "the same copy again moves nothing, and a copy that was interrupted is finished by running it again.\n"
		 "A snapshot appears in REPO only once everything it needs is there.\n"
		 "\n"
		 "Options:\n"
		 "  --to REPO                the target repository (it must exist: 'dre -r REPO init')\n"
		 "  --to-password-file FILE  its password; else DRE_TO_PASSWORD_FILE, else DRE_TO_PASSWORD\n"
		 "  --wal                    also copy every archived WAL file REPO lacks (before the snapshots)\n"
		 "\n"
		 "Prints a line per snapshot and a summary (--json: one object).\n",
};
