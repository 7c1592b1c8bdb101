/*
 * lock.h — who is working on a repository: lock objects "locks/<hex>" (envelope type 'L', format-spec.md §16).
 *
 * Locks are the first layer of the deletion protocol, not its proof (format-spec.md §16 says why the protocol
 * is safe without them): they keep two deleters (forget, prune, key remove) from running at once, let prune
 * leave alone the packs of pushes that are running, and show an operator who is there (`dre locks`).
 *
 *   REPO_LOCK_WRITE   push, pg-backup, copy into a repository: any number at once, beside a deleter.
 *   REPO_LOCK_DELETE  forget, prune: excludes every other live REPO_LOCK_DELETE (both may fail when two start together:
 *                each writes its lock, then lists; seeing another, it removes its own and fails with DRE_EBUSY).
 *
 * A lock is refreshed by a thread of its holder every LOCK_REFRESH_S seconds (a new object, then the old one
 * removed). It is stale when its refresh time is more than LOCK_STALE_S seconds old by the reader's clock, or
 * when it names this host and a pid that no longer runs. Stale locks are ignored, and `dre unlock` removes them.
 * wal-push takes no lock (format-spec.md §16: WAL expiry cannot remove what a wal-push writes).
 */
#ifndef DRE_LOCK_H
#define DRE_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/repo/repo.h"

#define LOCK_REFRESH_S 300
#define LOCK_STALE_S 1800

enum lock_kind { REPO_LOCK_WRITE = 1, REPO_LOCK_DELETE = 2 };


typedef struct repo_lock repo_lock;

/* One lock as read from the store. */
typedef struct lock_info {
	char key[80];     /* "locks/<hex>" */
	uint8_t kind;     /* enum lock_kind */
	char command[32]; /* "push", "prune", ... */
	char host[256];
	char user[64];
	uint32_t pid;
	int64_t created_ns, refreshed_ns;
	bool stale;
	bool mine; /* the lock of this process */
} lock_info;

/* Takes a lock of kind for command and starts its refresh thread. REPO_LOCK_DELETE fails with DRE_EBUSY, naming the
 * holder, when another live REPO_LOCK_DELETE exists. */
int lock_acquire(repo *r, enum lock_kind kind, const char *command, repo_lock **out);

/* Whether the holder may still rely on its lock: DRE_EBUSY when its object is gone (someone judged it stale and
 * removed it), its last refresh is older than LOCK_STALE_S / 2 by this process's monotonic clock, or (for a
 * REPO_LOCK_DELETE) another live REPO_LOCK_DELETE exists. A push calls it before it writes an index object or its
 * snapshot, a prune before it deletes. */
int lock_check(repo_lock *l);

/* Stops the refresh thread and removes the lock object (a failure to remove is reported by warn, not returned:
 * the lock goes stale on its own). NULL is a no-op. */
void lock_release(repo_lock *l, void (*warn)(void *arg, const char *msg), void *warn_arg);

/* Every lock in the store; damaged lock objects are reported via warn and skipped. */
int lock_list(repo *r, int (*fn)(void *arg, const lock_info *li), void *arg,
	      void (*warn)(void *arg, const char *msg), void *warn_arg);

/* Whether any live lock of kind exists other than l's own (l may be NULL). */
int lock_any_live(repo *r, enum lock_kind kind, repo_lock *l, bool *found);

/* Removes stale locks (all locks with all), counting them in *removed. */
int lock_remove(repo *r, bool all, size_t *removed);

#endif
