/*
 * drillfiles.c — the drill of a files or stream snapshot (drill.h): restored into SCRATCH/files by the restore
 * pipeline, which checks every file's XXH3-128 as it writes it, then the caller's command run in that tree.
 */
#include "engine/drill/drillint.h"

#include <stdio.h>

static int fetch_files(struct drill *d, void *arg, void *out)
{
	restore_opts ro = {.target = arg, .out_fd = -1, .threads = d->o->threads, .hooks = d->o->hooks};
	return engine_restore(d->r, d->o->snap, &ro, out);
}

int drill_files(struct drill *d)
{
	char dir[4200];
	restore_result res = {0};
	snprintf(dir, sizeof dir, "%s/files", d->scratch);
	drill_phase_begin(d, DRILL_FETCH);
	int rc = drill_in_child(d, fetch_files, dir, &res, sizeof res);
	drill_phase_end(d, DRILL_FETCH);
	d->rep->bytes_restored = res.bytes;
	d->rep->files_restored = res.files;
	TRY(rc);
	if (d->o->exec == NULL)
		return 0;
	drill_phase_begin(d, DRILL_CHECKS);
	rc = drill_exec(d, dir, NULL);
	drill_phase_end(d, DRILL_CHECKS);
	return rc;
}
