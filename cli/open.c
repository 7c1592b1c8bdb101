/*
 * open.c — the one place that turns the global options into an open repository: the URL (-r, else
 * DRE_REPOSITORY, else the config file's repository, else ~/.local/share/dre/repo), the password (password.c), engine_open(), and engine_close()
 * when the command is done. Commands pass a function to run in between, so none of them repeats this.
 */
#include "cli/cli.h"

#include <stdlib.h>

int cli_repo_url(cli_ctx *ctx, const char **out)
{
	static char path[4096];
	const char *env = getenv("DRE_REPOSITORY");
	const char *home = getenv("HOME");

	if (ctx->repo_url != NULL && *ctx->repo_url == '\0')
		return cli_usage("--repo: the repository URL is empty");
	if (ctx->repo_url == NULL && env != NULL && *env != '\0')
		ctx->repo_url = env;
	if (ctx->repo_url == NULL && ctx->config.repository != NULL && *ctx->config.repository != '\0')
		ctx->repo_url = ctx->config.repository;
	if (ctx->repo_url == NULL) {
		if (home == NULL || *home == '\0')
			return cli_usage("no repository: use --repo URL or set DRE_REPOSITORY (HOME is not set)");
		snprintf(path, sizeof path, "%s/.local/share/dre/repo", home);
		ctx->repo_url = path;
	}
	*out = ctx->repo_url;
	return 0;
}

/* --cache-dir, else DRE_CACHE_DIR, else $XDG_CACHE_HOME/dre, else ~/.cache/dre; NULL with --no-cache. */
static const char *cache_dir(const cli_ctx *ctx)
{
	static char path[4096];
	const char *env = getenv("DRE_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (ctx->no_cache)
		return NULL;
	if (ctx->cache_dir != NULL)
		return ctx->cache_dir;
	if (env != NULL && *env != '\0')
		return env;
	if (xdg != NULL && *xdg == '/')
		snprintf(path, sizeof path, "%s/dre", xdg);
	else if (home != NULL && *home != '\0')
		snprintf(path, sizeof path, "%s/.cache/dre", home);
	else
		return NULL;
	return path;
}

int cli_open_repo(cli_ctx *ctx, repo **out)
{
	const char *url;
	char *pass;
	TRY(cli_repo_url(ctx, &url));
	TRY(cli_password_open(url, &ctx->config, &pass));
	int rc = engine_open(url, &ctx->store, pass, out);
	cli_password_free(pass);
	if (rc == 0)
		engine_set_cache_dir(*out, cache_dir(ctx));
	return rc;
}

int cli_with_repo(cli_ctx *ctx, cli_repo_fn fn, void *arg)
{
	repo *r;
	TRY(cli_open_repo(ctx, &r));
	int rc = fn(ctx, r, arg);
	engine_close(r);
	return rc;
}

struct with_snapshot {
	const char *what;
	int64_t before_ns;
	const snap_filter *filter;
	cli_snap_fn fn;
	void *arg;
};

static int find_and_run(cli_ctx *ctx, repo *r, void *arg)
{
	struct with_snapshot *w = arg;
	snapshot s;
	TRY(snap_find_filtered(r, w->what, w->before_ns, w->filter, &s));
	int rc = w->fn(ctx, r, &s, w->arg);
	snap_free(&s);
	return rc;
}

int cli_with_snapshot(cli_ctx *ctx, const char *what, int64_t before_ns, cli_snap_fn fn, void *arg)
{
	return cli_with_snapshot_filtered(ctx, what, before_ns, NULL, fn, arg);
}

int cli_with_snapshot_filtered(cli_ctx *ctx, const char *what, int64_t before_ns, const snap_filter *f,
			       cli_snap_fn fn, void *arg)
{
	struct with_snapshot w = {what, before_ns, f, fn, arg};
	return cli_with_repo(ctx, find_and_run, &w);
}
