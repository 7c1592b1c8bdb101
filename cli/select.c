/*
 * select.c — the --tag, --host and --path options of `snapshots`, `forget` and `restore`, read into a
 * snap_filter (engine/repo/select.h says what they select). Each may be given more than once.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Every value of option idx (-1: the command has no such option) into *v, *n; checked by check. */
static int take(const cli_args *a, int idx, const char *name, const char ***v, size_t *n, const snap_filter *one)
{
	if (idx < 0)
		return 0;
	TRY(cli_opt_all(a, idx, v, n));
	int rc = snap_filter_check(one);
	if (rc == DRE_EINVAL) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", err_msg());
		return cli_usage("--%s: %s", name, msg);
	}
	return rc;
}

int cli_filter_parse(const cli_args *a, int tag, int host, int path, snap_filter *f)
{
	memset(f, 0, sizeof *f);
	int rc = take(a, tag, "tag", &f->tags, &f->ntags, f);
	if (rc == 0)
		rc = take(a, host, "host", &f->hosts, &f->nhosts, f);
	if (rc == 0)
		rc = take(a, path, "path", &f->paths, &f->npaths, f);
	if (rc < 0)
		cli_filter_free(f);
	return rc;
}

void cli_filter_free(snap_filter *f)
{
	free(f->tags);
	free(f->hosts);
	free(f->paths);
	memset(f, 0, sizeof *f);
}
