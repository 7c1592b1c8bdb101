/*
 * cmd_lock.c — `dre locks` (who is working on the repository: every lock object, and which are stale) and
 * `dre unlock` (remove the stale ones, or with --remove-all every one). What a lock is and when it is stale:
 * engine/repo/lock.h and format-spec.md §16.1.
 */
#include "cli/cli.h"

#include "engine/repo/lock.h"

#include <string.h>

static const char *lock_kind_name(uint8_t kind)
{
	return kind == REPO_LOCK_DELETE ? "delete" : kind == REPO_LOCK_WRITE ? "write" : "?";
}

struct lock_out {
	json_t *locks; /* --json: the array; else NULL */
	size_t n;
};

static int lock_print(void *arg, const lock_info *li)
{
	struct lock_out *out = arg;
	const char *hex = strchr(li->key, '/') ? strchr(li->key, '/') + 1 : li->key;
	if (out->locks != NULL) {
		char since[40], refreshed[40];
		fmt_time_utc(li->created_ns, since);
		fmt_time_utc(li->refreshed_ns, refreshed);
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b}", "id", hex, "key", li->key,
				      "kind", lock_kind_name(li->kind), "command", li->command, "host", li->host, "user",
				      li->user, "pid", (json_int_t)li->pid, "since", since, "refreshed", refreshed, "stale",
				      li->stale);
		if (o == NULL || json_array_append_new(out->locks, o) != 0)
			return err_set(DRE_ENOMEM, "out of memory");
		return 0;
	}
	if (out->n++ == 0)
		printf("%-8s  %-6s  %-10s  %-16s  %-10s  %7s  %-19s  %s\n", "ID", "KIND", "COMMAND", "HOST", "USER",
		       "PID", "SINCE", "REFRESHED");
	char since[32], refreshed[32];
	fmt_time_local(li->created_ns, since);
	fmt_time_local(li->refreshed_ns, refreshed);
	printf("%-8.8s  %-6s  %-10s  %-16.16s  %-10.10s  %7lu  %-19s  %-19s%s\n", hex, lock_kind_name(li->kind),
	       li->command, li->host, li->user, (unsigned long)li->pid, since, refreshed, li->stale ? "  stale" : "");
	return 0;
}

static int locks_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	struct lock_out out = {ctx->json ? json_array() : NULL, 0};
	(void)arg;
	int rc = lock_list(r, lock_print, &out, cli_warn, NULL);
	if (rc < 0 || out.locks == NULL) {
		json_decref(out.locks);
		if (rc == 0 && out.n == 0 && !ctx->quiet)
			printf("no locks\n");
		return rc;
	}
	return cli_print_json(stdout, out.locks);
}

static int locks_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 0, 0, ""));
	return cli_with_repo(ctx, locks_in_repo, NULL);
}

const cli_command cmd_locks = {
	.name = "locks",
	.summary = "list the locks of the processes working on the repository",
	.opts = NULL,
	.run = locks_run,
	.usage = "usage: dre locks [--json]\n"
		 "\n"
		 "Lists every lock: push, pg-backup and copy hold a write lock while they run; forget, prune and\n"
		 "key remove a delete lock. For each: its ID, kind, command, host, user and process ID, when it was\n"
		 "taken and last refreshed (every 5 minutes while its process runs), and 'stale' when its process is\n"
		 "gone: not refreshed for 30 minutes, or on this host with a process ID that no longer runs. Stale\n"
		 "locks are ignored; 'dre unlock' removes them.\n",
};

enum { U_REMOVE_ALL };
static const cli_opt unlock_opts[] = {{"remove-all", 0, false}, {0}};

static int unlock_in_repo(cli_ctx *ctx, repo *r, void *arg)
{
	bool all = *(const bool *)arg;
	size_t removed = 0;
	int rc = lock_remove(r, all, &removed);
	if (rc < 0)
		return err_ctx(rc, "removed %zu lock%s, then", removed, removed == 1 ? "" : "s");
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:I}", "removed", (json_int_t)removed));
	if (!ctx->quiet)
		printf("removed %zu %slock%s\n", removed, all ? "" : "stale ", removed == 1 ? "" : "s");
	return 0;
}

static int unlock_run(cli_ctx *ctx, const cli_args *a)
{
	bool all = a->opt[U_REMOVE_ALL] != NULL;
	TRY(cli_want_args(a, 0, 0, ""));
	return cli_with_repo(ctx, unlock_in_repo, &all);
}

const cli_command cmd_unlock = {
	.name = "unlock",
	.summary = "remove stale locks",
	.opts = unlock_opts,
	.run = unlock_run,
	.usage = "usage: dre unlock [--remove-all]\n"
		 "\n"
		 "Removes the stale locks (see 'dre locks') and says how many. Stale locks are ignored anyway; this\n"
		 "only tidies the repository.\n"
		 "\n"
		 "Options:\n"
		 "  --remove-all  remove every lock, live ones too: only when you know that no dre is working on the\n"
		 "                repository (a push whose lock is removed stops before it writes anything more)\n",
};
