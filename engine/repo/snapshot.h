/*
 * snapshot.h — the manifest of one push: what was backed up, when, and the ordered chunk list of every stream
 * and file, each with an XXH3-128 of its plaintext so restore proves end to end what it wrote.
 *
 * Stored as an envelope object "snapshots/<hex id>" (type 'S', format-spec.md §10). In format 3 the object is a
 * small header (what listing and retention need); the node records and the chunk IDs are two content lists in
 * packs (list.h), so listing reads headers only and no reader holds a whole snapshot in memory.
 */
#ifndef DRE_SNAPSHOT_H
#define DRE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/bytes.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/repo.h"

enum snap_kind { SNAP_STREAM = 1, SNAP_FILES = 2, SNAP_WAL = 3, SNAP_PG_BASE = 4, SNAP_PG_DUMP = 5 };
enum snap_node_type {
	NODE_STREAM = 1,
	NODE_FILE = 2,
	NODE_DIR = 3,
	NODE_SYMLINK = 4,
	NODE_CHARDEV = 5, /* device nodes: snapshot format 3 (repository version 5) */
	NODE_BLOCKDEV = 6,
};

/* Repository version 3 bounds a node's path and symlink target (format-spec.md §10). */
#define SNAP_PATH_MAX 4095
/* Extended attributes (snapshot format 3): a name is at most 255 bytes (Linux's XATTR_NAME_MAX), and a node's
 * whole record, attributes included, at most LIST_ENTRY_MAX bytes. */
#define SNAP_XATTR_NAME_MAX 255

/* One stream, file, directory or symlink of a snapshot. path and link belong to whoever produced the node (the
 * walk below: valid until its next call). */
typedef struct snap_node {
	uint8_t type;
	char *path; /* relative, "/"-separated; the snapshot name for a stream */
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	uint64_t size;
	uint8_t xxh128[16]; /* XXH3-128 of the plaintext, canonical (big-endian) form; zero for dirs and links */
	char *link;         /* symlink target, else NULL */
	uint64_t nchunks;
	/* snapshot format 3 (zero in older ones): what a later push compares to skip an unchanged file, what makes
	 * hard links (regular files of one snapshot with nlink > 1 and the same dev and ino are one file), a device
	 * node's number, and the extended attributes (POSIX ACLs are the system.posix_acl_* ones) */
	int64_t ctime_ns;
	uint64_t dev, ino;
	uint32_t nlink;
	uint64_t rdev;
	uint16_t nxattr;
	const uint8_t *xattrs; /* nxattr encoded attributes (snap_xattr_next reads them), xattr_len bytes, owned
				* like path */
	size_t xattr_len;
} snap_node;

/* The next extended attribute of n: *pos starts at 0; 1 with name (a NUL-terminated copy), value and len, 0 at
 * the end. The record was checked when decoded, so this cannot fail. */
int snap_xattr_next(const snap_node *n, size_t *pos, char name[SNAP_XATTR_NAME_MAX + 1], const uint8_t **value,
		    size_t *len);
/* Appends an attribute to an encoded block of *used bytes in out (cap bytes), in the order given: names must
 * come in strictly increasing byte order (so the same file makes the same record). DRE_EINVAL when it does not
 * fit or the name is bad. */
int snap_xattr_append(uint8_t *out, size_t cap, size_t *used, const char *name, const void *value, size_t len);

/* Meta keys any kind may carry (format-spec.md §10): the paths a files push was given, as given (a JSON array of
 * strings); its tags (a JSON array of strings); the number of entries a push could not read and left out (decimal,
 * absent when it read everything). */
#define SNAP_META_PATHS "paths"
#define SNAP_META_TAGS "tags"
#define SNAP_META_INCOMPLETE "incomplete"

typedef struct snap_meta {
	char *key;
	char *value;
} snap_meta;

/* Snapshot object formats: 1 holds the whole node table and chunk lists (repository versions 1 and 2, read
 * only); 2 is a header that refers to two content lists (list.h), whatever the input size; 3 (repository version
 * 5) has the same header, and node records that also hold ctime, device, inode, link count, a device number and
 * extended attributes. */
#define SNAP_FORMAT_TABLE 1
#define SNAP_FORMAT_LISTS 2
#define SNAP_FORMAT_NODES 3

struct snap_table; /* format 1's decoded node table */

typedef struct snapshot {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t format;
	uint8_t kind;
	char *name, *host;
	int64_t time_ns, end_time_ns; /* UTC, push start and end */
	uint64_t size;                /* plaintext bytes of all nodes */
	uint64_t stored_new;          /* bytes of pack objects this push wrote, padding included */
	uint64_t chunks_total, chunks_new;
	uint64_t nnodes;
	size_t nmeta;
	snap_meta *meta; /* free-form key/value pairs for later kinds (base backups) */
	list_ref nodes, chunks;   /* format 2: the node records, and every node's chunk IDs in node order */
	struct snap_table *table; /* format 1 */
} snapshot;

const char *snap_kind_name(uint8_t kind);
/* The value of meta key in s, NULL when it has none. */
const char *snap_meta_get(const snapshot *s, const char *key);
const char *snap_node_type_name(uint8_t type);

/* The header (format 2) of s; refuses to encode format 1. */
int snap_encode(const snapshot *s, buf *out);
/* Either format. key names the object in messages. */
int snap_decode(const char *key, const uint8_t *p, size_t len, snapshot *out);
void snap_free(snapshot *s);

/* The node path of a path given to a push, or of one inside a snapshot (format-spec.md §10.3): "/srv/models/" →
 * "srv/models", "./a//b" → "a/b", "/" → "". DRE_EINVAL for a ".." component or more than cap - 1 bytes. */
int snap_path_of(const char *path, char *out, size_t cap);

/* One node record of a node list of snapshot format 2 or 3 (format-spec.md §10.3). The encoder refuses paths and
 * targets longer than SNAP_PATH_MAX; decode's path and link point into the caller's buffers of SNAP_PATH_MAX + 1,
 * and its xattrs into p. */
int snap_node_encode(uint8_t format, const snap_node *n, uint8_t *out, size_t cap, size_t *len);
int snap_node_decode(uint8_t format, const uint8_t *p, size_t len, snap_node *n, char *path, char *link);

/*
 * Walks a snapshot's nodes in order, and with chunks set, each node's chunk IDs: after snap_walk_next gave a
 * node, snap_walk_chunk gives its nchunks IDs one by one (any not taken are skipped). Memory is bounded
 * whatever the snapshot's size; a stream node comes with the snapshot's start time as its mtime (format-spec.md
 * §10.3). idx finds the list blobs; NULL loads the repository's index (from the cache
 * when there is one). The end (0 from next) is reached only when every count the header gives matched.
 */
typedef struct snap_walk snap_walk;
int snap_walk_open(repo *r, const chunk_index *idx, const snapshot *s, bool chunks, snap_walk **out);
int snap_walk_next(snap_walk *w, snap_node *n);
int snap_walk_chunk(snap_walk *w, uint8_t id[CRYPTO_ID_LEN]);
void snap_walk_free(snap_walk *w);

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
/* Whether text may be such a prefix: 4 to 64 lowercase hex digits. */
bool snap_id_prefix_text(const char *s);

/* JSON (jansson) of a snapshot's header (snapshots --json), and of one node without its chunks; json_t* as
 * void*. */
void *snap_summary_json(const snapshot *s);
void *snap_node_json(const snap_node *n);

#endif
