/*
 * push.h — a push driven step by step, for engine modules that build a snapshot of their own kind: a base
 * backup (pg.c) reads the data directory between pg_backup_start and pg_backup_stop, then adds backup_label,
 * which exists only in memory, and the LSNs it learnt, as snapshot meta. Same pipeline, same guarantees as
 * engine_push_paths (packs → index → snapshot), one snapshot per session.
 */
#ifndef DRE_PUSH_H
#define DRE_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "engine/engine.h"

typedef struct push_session push_session;

/* What a tree walk does with one entry. */
typedef enum push_verdict {
	PUSH_TAKE,     /* as engine_push_paths would */
	PUSH_SKIP,     /* leave it out */
	PUSH_DIR_ONLY, /* record an empty directory (even for a symlink to one), not what is in it */
	PUSH_FOLLOW,   /* a symlink to a directory: back up the directory under the link's name */
} push_verdict;

typedef struct push_tree {
	/* rel is the entry's path relative to the tree's root; st its lstat() */
	push_verdict (*filter)(void *arg, const char *rel, const struct stat *st);
	void *arg;
	bool vanish_ok; /* a file removed during the walk is left out, not an error (a live data directory) */
} push_tree;

int push_session_start(repo *r, const push_opts *o, uint8_t kind, push_session **out);
/* Adds everything below fs_path, with paths relative to it (the directory itself gets no node). */
int push_session_add_tree(push_session *s, const char *fs_path, const push_tree *t);
/* Adds a regular file with these bytes, its mode and owner from like. */
int push_session_add_data(push_session *s, const char *rel, const void *data, size_t len, const struct stat *like);
/* Adds a stream node named path with everything read from fd (a producer's output: pg-dump); what names the
 * input in messages. */
int push_session_add_stream(push_session *s, const char *path, int fd, const char *what);
int push_session_add_meta(push_session *s, const char *key, const char *value);
/* Ends the session: with rc == 0 and record the snapshot is saved (res filled). Returns the outcome; frees s. */
int push_session_end(push_session *s, int rc, bool record, push_result *res);

/* ---- nodes given whole, with their attributes (a copy from another repository) ---- */

/* The header fields a copy keeps from its source: start and end time and host (the kind and the name are the
 * session's own, and meta is added with push_session_add_meta). */
int push_session_set_origin(push_session *s, const snapshot *src);

/* Gives up to cap bytes of a node's content in buf; *got = 0 at its end. */
typedef int (*push_read_fn)(void *arg, uint8_t *buf, size_t cap, size_t *got);

/* Adds a node with exactly n's type, path and attributes (mode, uid, gid, mtime, format 3's ctime, dev, ino, nlink,
 * rdev and extended attributes; a symlink's target). A stream
 * or file takes its content from read, which must give n->size bytes whose XXH3-128 is n->xxh128, else
 * DRE_ECORRUPT naming the path (the session must then end without recording). read is not called for a
 * directory or a symlink (it may be NULL). */
int push_session_add_node(push_session *s, const snap_node *n, push_read_fn read, void *arg);

#endif
