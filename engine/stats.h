/*
 * stats.h — what a repository says about its backups, from the repository alone: per snapshot name the newest
 * snapshot (when it ended, how long it took, its size and the bytes it stored), the newest archived WAL segment
 * and when it was archived, and the bytes of every object in the store. `dre stats` prints it, so that a
 * monitoring host that runs no backup can watch what the hosts that do would write into their metrics files;
 * check and prune take the repository size from here.
 *
 * It reads every snapshot header (as `dre snapshots` does), lists the whole store once and reads one WAL object
 * per cluster; when there is WAL, the archive's gaps as wal-show finds them (engine/pg/pg.h). It writes nothing
 * and takes no lock. It spans the repository model and the WAL archive, so it lives beside engine.h.
 */
#ifndef DRE_STATS_H
#define DRE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/pg/wal.h"
#include "engine/repo/repo.h"

typedef struct stats_name {
	char *name;
	uint8_t kind;             /* of the newest snapshot (snap_kind) */
	size_t snapshots;         /* of this name, from every host */
	int64_t start_ns, end_ns; /* the newest snapshot's: the one that ended last */
	uint64_t size, stored;    /* its plaintext bytes and the bytes of new packs it wrote */
} stats_name;

typedef struct repo_stats {
	stats_name *names; /* sorted by name (bytewise) */
	size_t nnames;
	size_t snapshots, damaged; /* damaged: snapshot objects that could not be read, left out */
	uint64_t objects, bytes;   /* every object the store lists */
	size_t wal_systems;        /* clusters with WAL in the archive */
	uint64_t wal_system;       /* the cluster of wal, when wal.found */
	wal_last wal;              /* the newest segment archived, of all clusters: the latest archive time */
	uint64_t wal_missing;      /* segments missing inside the archived ranges, not removed by expiry (wal-show's
				    * gaps), of all clusters and timelines */
	size_t backups_missing_wal; /* base backups without all of their own WAL */
} repo_stats;

/* Fills out; warn (may be NULL) hears of each damaged snapshot object. repo_stats_free() it on success. */
int repo_stats_load(repo *r, repo_stats *out, void (*warn)(void *arg, const char *msg), void *warn_arg);
void repo_stats_free(repo_stats *s);

/* The number and bytes of every object in the store, from one listing. */
int repo_stats_size(repo *r, uint64_t *objects, uint64_t *bytes);

#endif
