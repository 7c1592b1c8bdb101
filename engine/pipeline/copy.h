/*
 * copy.h — `dre copy`: replicates snapshots (and with wal, the WAL archive) from one repository into another, on
 * any pair of stores, re-encrypted under the target's keys.
 *
 * Content is read chunk by chunk from the source (chunkread.h) and pushed into the target through a push session
 * (push.h): the target cuts and keys the chunks itself (chunk IDs are keyed per repository, so they could not be
 * reused anyway), deduplicates against what it holds and stores only the rest. Each copy keeps the source's
 * kind, name, host, start and end time and meta, and records the meta key "copy-of": the hex ID of the original
 * snapshot (the source's, or when the source is itself a copy, its copy-of). A snapshot the target already holds
 * (a copy of the same original, the original itself, or the same ID) is skipped, so a repeated copy moves nothing
 * but snapshot headers, an interrupted one is resumed by running it again, and copies along different paths
 * (local → S3 → offsite, and local → offsite) recognise each other.
 *
 * The target receives a snapshot only when its packs and index are durable there (push order), so a copy that is
 * killed leaves orphan packs at most, never a snapshot that names what the target lacks.
 */
#ifndef DRE_COPY_H
#define DRE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* The meta key a copy records the original snapshot's ID under. */
#define COPY_META_KEY "copy-of"

/* What happened to one selected snapshot. */
typedef struct copy_event {
	const snapshot *src;
	const uint8_t *target_id;  /* the copy in the target: new, or the one already there */
	bool copied;               /* false: already there */
	const push_result *push;   /* when copied */
	uint64_t fetched;          /* bytes of source packs read for it */
} copy_event;

typedef struct copy_opts {
	char *const *what; /* snapshot names (every snapshot of that name) or IDs (unique prefixes of ≥ 4 hex
			    * digits); nwhat 0: every snapshot */
	size_t nwhat;
	bool wal;          /* also copy every wal/ object the target lacks (before the snapshots) */
	int threads;       /* the target push's workers; 0 = one per CPU */
	engine_hooks hooks; /* each snapshot's push progress, and warnings */
	void (*event)(void *arg, const copy_event *e); /* after each selected snapshot, oldest first; may be NULL */
	void *event_arg;
} copy_opts;

typedef struct copy_result {
	size_t copied, skipped;  /* skipped: already in the target */
	uint64_t bytes_read;     /* plaintext of the snapshots copied */
	uint64_t bytes_fetched;  /* bytes of source packs read */
	uint64_t stored_new;     /* bytes of new pack objects in the target */
	size_t wal_copied, wal_present;
	uint64_t wal_bytes;      /* bytes of wal/ objects written to the target */
	double seconds;
} copy_result;

/* Copies from src into dst under a write lock on dst. Selection errors (a name or ID that matches nothing:
 * DRE_ENOTFOUND) come before anything is written. Stops at the first failure: the snapshots copied before it
 * stay, counted in res. */
int engine_copy(repo *src, repo *dst, const copy_opts *o, copy_result *res);

#endif
