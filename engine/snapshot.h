/*
 * snapshot.h — the manifest of one push: what was backed up, when, and the ordered chunk list of every stream
 * and file, each with an XXH3-128 of its plaintext so restore proves end to end what it wrote.
 * Stored as an envelope object "snapshots/<hex id>" (type 'S'), compact binary (format-spec.md §Snapshots).
 */
#ifndef DRE_SNAPSHOT_H
#define DRE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/bytes.h"
#include "engine/repo.h"

enum snap_kind { SNAP_STREAM = 1, SNAP_FILES = 2, SNAP_WAL = 3, SNAP_PG_BASE = 4 };
enum snap_node_type { NODE_STREAM = 1, NODE_FILE = 2, NODE_DIR = 3, NODE_SYMLINK = 4 };

typedef struct snap_node {
	uint8_t type;
	char *path; /* relative, "/"-separated; the snapshot name for a stream */
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	uint64_t size;
	uint8_t xxh128[16]; /* XXH3-128 of the plaintext, canonical (big-endian) form */
	char *link;         /* symlink target, else NULL */
	uint32_t nchunks;
	uint8_t (*chunks)[CRYPTO_ID_LEN];
} snap_node;

typedef struct snap_meta {
	char *key;
	char *value;
} snap_meta;

typedef struct snapshot {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t kind;
	char *name, *host;
	int64_t time_ns, end_time_ns; /* UTC, push start and end */
	uint64_t size;                /* plaintext bytes of all nodes */
	uint64_t stored_new;          /* bytes this push added to the store (packs, before padding) */
	uint64_t chunks_total, chunks_new;
	size_t nmeta;
	snap_meta *meta; /* free-form key/value pairs for later kinds (WAL, base backups) */
	size_t nnodes;
	snap_node *nodes;
} snapshot;

const char *snap_kind_name(uint8_t kind);

int snap_encode(const snapshot *s, buf *out);
/* key names the object in messages. */
int snap_decode(const char *key, const uint8_t *p, size_t len, snapshot *out);
void snap_free(snapshot *s);

/* Assigns a random ID and writes the snapshot (create-once). */
int snap_save(repo *r, snapshot *s);
int snap_load(repo *r, const uint8_t id[CRYPTO_ID_LEN], snapshot *out);

/* Every snapshot, sorted by time (oldest first). Damaged ones are reported via warn and skipped. */
typedef struct snap_list {
	snapshot *items;
	size_t n;
	size_t damaged;
} snap_list;
int snap_list_load(repo *r, snap_list *out, void (*warn)(void *arg, const char *msg), void *warn_arg);
void snap_list_free(snap_list *l);

/*
 * Resolves what the user typed: a full or abbreviated (≥ 4 hex digits, unique) snapshot ID, or a name — the
 * newest snapshot of that name, or with before_ns ≥ 0 the newest taken at or before it. DRE_ENOTFOUND names
 * what was asked for; an ambiguous prefix is DRE_EINVAL. The result is a copy (snap_free it).
 */
int snap_find(repo *r, const char *what, int64_t before_ns, snapshot *out);

/* JSON rendering (jansson); with_chunks includes every chunk ID. *out is malloc'd. */
int snap_to_json(const snapshot *s, bool with_chunks, char **out);
/* The JSON object of one snapshot as a summary (snapshots --json): no nodes. Returns a json_t* as void*. */
void *snap_summary_json(const snapshot *s);

#endif
