/*
 * prune.h — frees what no snapshot references: dead packs deleted, mostly-unreferenced packs repacked, orphans
 * of killed pushes removed, the index rewritten without the dead entries. It runs beside pushes: the protocol
 * (format-spec.md §16.3, R1–R5) and the argument for it (§16.4) are in the spec, and tests/model/prune.pml
 * models it.
 *
 * Memory: the chunk index (about 36 bytes per chunk), one bit per chunk for "referenced", a few words per pack,
 * one pack buffer for repacking and one per list reader; nothing per snapshot but its ID.
 */
#ifndef DRE_PRUNE_H
#define DRE_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct prune_opts {
	double max_unused; /* a pack whose unreferenced share of its bytes is above this (0..1) is repacked */
	int64_t grace_ns;  /* R3: between writing the plan and the rescan */
	bool dry_run;      /* R1 only: report what would happen, write nothing */
	engine_hooks hooks;
} prune_opts;

#define PRUNE_DEFAULT_MAX_UNUSED 0.05
#define PRUNE_DEFAULT_GRACE_NS (30 * (int64_t)1000000000)

typedef struct prune_result {
	/* what R1 found */
	size_t snapshots, index_objects, packs, packs_missing;
	uint64_t chunks, chunks_referenced, bytes_total, bytes_referenced;
	/* the plan */
	size_t packs_dead, packs_repacked, packs_orphan, plans_adopted;
	bool orphans_deferred; /* orphans left for a later prune: a live write lock was seen */
	/* the sweep */
	size_t packs_kept;  /* planned, then kept in R4: a snapshot committed meanwhile needs them */
	size_t packs_deleted, packs_written, index_rewritten, index_deleted;
	size_t uploads_aborted; /* S3 multipart uploads, local temporary files, of killed commands */
	uint64_t bytes_deleted, bytes_written;
	size_t index_memory; /* bytes the chunk index took */
	double seconds;
} prune_result;

int engine_prune(repo *r, const prune_opts *o, prune_result *res);

#endif
