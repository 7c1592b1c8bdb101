/*
 * engine.h — what cli/ calls. One function per command; each opens nothing on its own and reports through
 * err.h codes and messages, plus optional callbacks for progress and warnings that cli/ turns into output.
 *
 * Typical use:
 *   engine_open(url, &store_opts, pass, &r);
 *   engine_push_fd(r, &opts, 0, &res);  or engine_push_command / engine_push_paths
 *   snap_find(r, "mydb", -1, &snap); engine_restore(r, &snap, &ropts);
 *   engine_check(r, &copts, &report);
 */
#ifndef DRE_ENGINE_H
#define DRE_ENGINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/repo.h"
#include "engine/repo/snapshot.h"
#include "store/err.h"
#include "store/store.h"

/* Opens the store at url (so: how to reach it, may be NULL) and the repository in it with pass. engine_close()
 * closes both. */
int engine_open(const char *url, const store_opts *so, const char *pass, repo **out);
/* Creates a repository at url: the directory, or the S3 bucket, is created when missing. A location that holds
 * anything but a repository's objects (a directory of other files, a bucket prefix with other objects) is refused
 * with DRE_EEXIST; an existing repository is DRE_EEXIST too ("already exists"). */
int engine_init(const char *url, const store_opts *so, const char *pass, const repo_params *p, repo **out);
void engine_close(repo *r);

/* Where this machine keeps caches for r (the index cache, index.h); dir must outlive r. NULL: no cache, every
 * push and restore reads all index objects from the store. */
void engine_set_cache_dir(repo *r, const char *dir);

/* Upgrades r to this dre's format version (format-spec.md §13): *from gets the version it had. Snapshots already
 * there stay as they are and keep restoring; older dre versions cannot open the repository afterwards. */
int engine_migrate(repo *r, uint32_t *from);

/* Adds a key object for another password; lists the key objects with what each says about itself. */
int engine_key_add(repo *r, const char *new_pass, char name_out[80]);
int engine_key_list(repo *r, int (*fn)(void *arg, const repo_key_info *k), void *arg);
/* Removes the key object `what` names (its ID or a unique prefix, repo_key_find) under a delete lock (lock.h):
 * never the key r was opened with, never the last usable one. removed gets its name. */
int engine_key_remove(repo *r, const char *what, char removed[80]);
/* Changes the password of r's key: adds a key object for new_pass, opens the repository afresh with new_pass,
 * then removes r's key object, in that order, so an interruption leaves both keys and never none. new_name gets
 * the new key's name, which r then counts as its own. */
int engine_key_passwd(repo *r, const char *new_pass, char new_name[80]);

/* Called on the calling thread at most every half second and once at the end (final = true). */
typedef void (*engine_progress_fn)(void *arg, uint64_t bytes_done, uint64_t bytes_stored, double seconds,
				   bool final);
/* A non-fatal problem (a damaged index object skipped, a special file not backed up). */
typedef void (*engine_warn_fn)(void *arg, const char *msg);

/* Formats a warning and hands it to fn (nothing when fn is NULL); longer ones are cut at 1400 bytes. */
void engine_warnf(engine_warn_fn fn, void *arg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void engine_vwarnf(engine_warn_fn fn, void *arg, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

typedef struct engine_hooks {
	engine_progress_fn progress;
	engine_warn_fn warn;
	void *arg;
} engine_hooks;

struct pattern_set;

typedef struct push_opts {
	const char *name; /* snapshot name: 1..255 bytes, no "/" and no control characters */
	int threads;      /* worker threads; 0 = one per online CPU */
	engine_hooks hooks;
	const char *lock_command; /* what its lock says it is (dre locks); NULL: "push" */
	const char *host;         /* the snapshot's host; NULL: this machine's name */
	const char *const *tags;  /* recorded as the meta "tags" (engine_check_tag each) */
	size_t ntags;
	bool allow_empty; /* a stream: record it even when it gave no byte (else DRE_EINVAL, nothing recorded) */

	/* Files and base backups: a file whose size, mtime, ctime, inode and device are those the parent snapshot
	 * recorded for the same path, and whose mtime is older than the parent's start (less SKIP_MARGIN), takes
	 * the parent's chunks without being read. */
	const char *parent; /* the parent: an ID, prefix or name; NULL: the newest snapshot of this name and kind */
	bool force_read;    /* no parent: read every file */
	bool ignore_ctime, ignore_inode; /* leave ctime, or inode and device, out of the comparison */
	const char *parent_key, *parent_value; /* a parent must have this meta value (a base backup: its system) */

	/* Files pushes only */
	const struct pattern_set *exclude; /* entries whose absolute path matches are left out (pattern.h) */
	bool one_file_system;              /* a directory on another file system is recorded empty */
} push_opts;

/* What a file's mtime must be older than, before the parent's start, to be taken without reading: a write in the
 * same tick of a coarse file system clock as the parent's read would otherwise go unseen. */
#define SKIP_MARGIN_NS (2 * 1000000000LL)

typedef struct push_result {
	uint8_t id[CRYPTO_ID_LEN];
	uint64_t size;       /* plaintext bytes read */
	uint64_t stored_new; /* bytes of new pack objects */
	uint64_t chunks, chunks_new;
	uint64_t lists_new;  /* list blobs stored new (format-spec.md §10.2) */
	size_t files;
	size_t files_skipped;  /* files taken from the parent without reading them */
	uint64_t bytes_skipped; /* their bytes (part of size) */
	size_t left_out;       /* entries that could not be read (each reported through warn): the snapshot is
				* recorded and its meta "incomplete" says how many */
	char parent[17];       /* the first 16 hex digits of the parent's ID, "" when none was used */
	double seconds;
	const char *reader; /* "io_uring" or "read(2)": which reader served regular files */
	int workers;        /* worker threads the push ran (push_opts.threads, or the default it chose) */
} push_result;

/* Checks a snapshot name; DRE_EINVAL says what is wrong. */
int engine_check_name(const char *name);
/* Checks a tag: 1..255 bytes, no comma, no control characters. */
int engine_check_tag(const char *tag);

/* Pushes everything readable from fd (stdin, a pipe, a file) as one stream snapshot. */
int engine_push_fd(repo *r, const push_opts *o, int fd, push_result *res);

/* Runs argv as a producer with its stdout piped into the push; the snapshot is recorded only when the producer
 * exits with status 0 (DRE_EPRODUCER otherwise, with its status in the message). */
int engine_push_command(repo *r, const push_opts *o, char *const argv[], push_result *res);

/* Pushes files and directories (recursively) as one files snapshot. Paths are stored relative: a leading "/"
 * is dropped, so /srv/models/a restores to TARGET/srv/models/a. */
int engine_push_paths(repo *r, const push_opts *o, char *const paths[], size_t npaths, push_result *res);

/* Nodes at prefix and below go to dir instead of TARGET/prefix (tablespaces restored outside the data
 * directory). */
typedef struct restore_relocation {
	const char *prefix; /* a node path, e.g. "pg_tblspc/16385" */
	const char *dir;
} restore_relocation;

/* What a restore into a target does where the target already holds something it would write. */
typedef enum restore_overwrite {
	RESTORE_REFUSE = 0,  /* refuse before writing anything (an empty or missing target never conflicts) */
	RESTORE_ALWAYS,      /* replace it */
	RESTORE_IF_CHANGED,  /* replace a file only when its size, mtime or XXH3-128 differs; keep it otherwise */
	RESTORE_NEVER,       /* keep it, reporting each through warn */
} restore_overwrite;

typedef struct restore_opts {
	const char *target; /* directory for files snapshots (and for a stream: the file TARGET/<name>) */
	const restore_relocation *relocate;
	size_t nrelocate;
	int out_fd;         /* for a stream snapshot when target is NULL */
	const char *only;   /* restore only the node of this path (a pg-dump's archive or globals); NULL: all */
	int threads;
	engine_hooks hooks;

	/* With a target: the subtree at this node path ("srv/models", a leading "/" allowed) only, a directory's
	 * contents placed directly in the target, anything else under its own name; DRE_ENOTFOUND when the snapshot
	 * has nothing there. NULL: the whole snapshot, each node at TARGET/<its path>. */
	const char *from;
	/* Only the nodes that match, or whose parent directories match (pattern.h; the node's path with "/" in
	 * front, as `dre ls` shows it); the directories on the way are created. NULL: every node. */
	const struct pattern_set *include;
	restore_overwrite overwrite;
	/* Remove, inside the restored directories, what the snapshot does not have (with RESTORE_ALWAYS or
	 * RESTORE_IF_CHANGED only; DRE_EINVAL otherwise) */
	bool delete_extra;
} restore_opts;

typedef struct restore_result {
	uint64_t bytes;
	size_t files;
	size_t linked;  /* hard links made with link(2) (their content is part of an earlier file) */
	size_t kept;    /* existing entries left as they were (RESTORE_IF_CHANGED: the same; RESTORE_NEVER) */
	size_t deleted; /* entries delete_extra removed, everything inside a removed directory included */
	size_t skipped; /* extended attributes and device nodes the target could not take (each reported) */
	double seconds;
	int workers; /* worker threads the restore ran */
} restore_result;

/* Restores a snapshot, verifying each stream's and file's XXH3-128: a mismatch is DRE_ECORRUPT naming it.
 * Into a target it restores what each node has: modes, owners (as root), mtimes, holes of sparse files,
 * symlinks, extended attributes (POSIX ACLs among them), device nodes (as root) and hard links (regular files
 * of the snapshot with the same device and inode are linked to the first one restored). */
int engine_restore(repo *r, const snapshot *s, const restore_opts *o, restore_result *res);

typedef struct check_opts {
	bool read_data;      /* read every pack the index names */
	double read_percent; /* else, when > 0 (at most 100): that share of them, chosen at random, at least one */
	uint32_t slice, slices; /* else, when slices > 0: the slice-th (1..slices) of slices deterministic slices by
				 * pack ID, so runs with slice = 1..slices read every pack exactly once */
	engine_hooks hooks; /* warn receives each problem found, one line each */
} check_opts;

typedef struct check_report {
	size_t snapshots, packs, index_objects;
	size_t chunks, lists; /* chunks of data and list blobs (format-spec.md §10.2) the index holds */
	size_t packs_read;    /* packs read and authenticated whole (read_data or a subset) */
	size_t errors;      /* problems that make some snapshot unrestorable or the repository inconsistent */
	size_t unreferenced_packs; /* packs no index lists (an interrupted push); not an error */
	size_t incomplete_uploads; /* multipart uploads never completed (a push killed mid-put); not an error */
	size_t pending_deletion;   /* packs a prune plan names that are gone already (a prune running or killed) */
	size_t wal_files;          /* archived WAL files (with read_data: each decrypted and checksummed) */
	uint64_t bytes_read;
} check_report;

/* Returns 0 when it could run to the end (report->errors says what it found), <0 when it could not run. */
int engine_check(repo *r, const check_opts *o, check_report *report);

/* Parses "2026-11-21 12:00", "2026-11-21 12:00:05", "2026-11-21T12:00:00Z", "…+02:00", or a date alone;
 * without a zone the time is local. Returns ns since the epoch (the first instant the text names), or
 * DRE_EINVAL. This is the exact time a recovery target (pg-restore --time) needs. */
int engine_parse_time(const char *text, int64_t *ns);
/* The same text read for choosing a snapshot "taken at or before" it: the last nanosecond of what the text
 * names at the precision it was written, so that a time copied from the `dre snapshots` table (whole seconds)
 * finds the snapshot taken during that second. "2026-11-21 12:00:05" ends at 12:00:05.999999999, "12:00" at
 * 12:00:59.999999999, a date alone at the end of that local day; a time with a fraction is exact. */
int engine_parse_time_until(const char *text, int64_t *ns);

#endif
