/*
 * forget.h — `dre forget`: removes snapshots, either those a retention policy (retention.h) does not keep or
 * those named by ID, then the archived WAL that no remaining base backup needs (walexpire.h).
 *
 * Only snapshot objects are deleted ("snapshots/<hex>"): the packs their data lives in stay until `dre prune`
 * finds them unreferenced (format-spec.md §16.3: deleting a snapshot cannot make another lose data, so forget
 * needs no plan and no grace time). It runs under a delete lock (lock.h), so two forgets or a forget and a
 * prune never work at once; a dry run takes no lock and deletes nothing, and computes the same plan.
 *
 * With a policy, the snapshots selected (by name and kind, and by tag, host and path: select.h) are grouped, by
 * default by (name, host), and the policy applies to each group on its own: the newest snapshot of a group is
 * never removed. With IDs, exactly the snapshots named are removed, the newest of a name included; an ID may
 * name a snapshot object that cannot be read (a damaged one `dre check` reported), which is then removed as well.
 *
 * WAL expiry runs after the snapshots are removed, when a base backup (kind pg-base) was among them or a PITR
 * window was given, with every base backup that remains (whatever its name or host) as the kept set. It is
 * skipped, with a warning, while some snapshot object cannot be read: it might be a base backup that needs WAL.
 */
#ifndef DRE_FORGET_H
#define DRE_FORGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/repo.h"
#include "engine/lifecycle/retention.h"
#include "engine/repo/select.h"
#include "engine/repo/snapshot.h"

/* What snapshots are grouped by: both bits (the default, 0 means the same), or one of them. */
enum forget_group_by { FORGET_BY_NAME = 1, FORGET_BY_HOST = 2 };

typedef struct forget_opts {
	/* With nids == 0: the policy, and which snapshots it considers. The policy must not be empty. */
	retention_policy policy;
	const char *const *names; /* only these names (nnames 0: every name) */
	size_t nnames;
	snap_filter filter; /* only the snapshots it selects, by tag, host and path (select.h); empty: all */
	uint8_t kind;       /* only this kind (enum snap_kind); 0: every kind */
	unsigned group_by; /* enum forget_group_by bits; 0: name and host */
	/* With nids > 0: remove exactly these, each a full ID or a unique prefix of 4 or more lowercase hex digits.
	 * The policy and the selection above are then not used. */
	const char *const *ids;
	size_t nids;
	/* WAL expiry (format-spec.md §16.5): the PITR window, measured back from now (a calendar duration). */
	bool pitr_window_given;
	retention_duration pitr_window;
	bool dry_run; /* plan only: nothing is deleted, no lock taken; WAL expiry reports what it would remove */
	void (*warn)(void *arg, const char *msg); /* damaged snapshots, names that matched nothing; may be NULL */
	void *warn_arg;
} forget_opts;

typedef struct forget_item {
	const snapshot *s; /* NULL: a snapshot object named by ID that could not be read */
	uint8_t id[CRYPTO_ID_LEN];
	size_t group;     /* index in forget_result.groups */
	bool keep;
	unsigned reasons; /* RET_BIT()s (retention.h); 0 when removed, and in ID mode */
	bool removed;     /* its object was deleted (never with dry_run) */
} forget_item;

typedef struct forget_group {
	const char *name, *host; /* what its snapshots share: NULL for what it is not grouped by, and in ID mode */
	size_t first, n;         /* its items: items[first .. first + n), oldest first */
	size_t kept, removed;    /* removed: planned with dry_run */
} forget_group;

typedef struct forget_result {
	forget_item *items;
	size_t nitems;
	forget_group *groups;
	size_t ngroups;
	size_t kept, removed; /* over every group; removed: planned with dry_run */
	size_t damaged;       /* snapshot objects that could not be read (each reported through warn) */
	bool wal_ran;         /* WAL expiry ran (with dry_run: was computed), and the numbers it gave: */
	size_t wal_removed, wal_kept;
	uint64_t wal_bytes_removed;
	snap_list list; /* owns the snapshots the items point at */
} forget_result;

/*
 * Plans and (unless dry_run) carries out a forget. DRE_EUNSUPP for a repository older than REPO_FORMAT_PRUNE
 * (the way out, `dre migrate`, in the message); DRE_EBUSY when another delete lock is live; DRE_ENOTFOUND for
 * an ID that names no snapshot; DRE_EINVAL for an ambiguous or malformed ID or an empty policy. A failure part way
 * through deleting says how many snapshots were removed before it. res is filled in on success; free it with
 * forget_result_free() whatever engine_forget returned.
 */
int engine_forget(repo *r, const forget_opts *o, forget_result *res);
void forget_result_free(forget_result *res);

#endif
