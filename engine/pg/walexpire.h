/*
 * walexpire.h — WAL expiry (format-spec.md §16.5): after forget has removed base backups, the archived WAL
 * files that no kept base backup needs are removed, per system identifier.
 *
 * The rule is split in two: a pure part (which segment numbers are needed, given the kept backups' ranges, a
 * PITR window and the time) that the unit tests run on hand-written cases, and wal_expire, which reads the kept
 * backups' manifests, lists wal/ and deletes. wal-show uses the pure part's view of the archive too, to tell a
 * stretch that expiry removed from WAL that went missing.
 */
#ifndef DRE_WALEXPIRE_H
#define DRE_WALEXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/repo.h"
#include "engine/repo/snapshot.h"

typedef struct wal_expire_result {
	size_t removed, kept;
	uint64_t bytes_removed;
} wal_expire_result;

/*
 * kept: every pg-base snapshot that remains in the repository after the forget (all names and hosts; other
 * kinds are ignored). pitr_window_ns < 0: the whole kept range. now_ns: the reference time. With dry_run
 * nothing is deleted and res says what would be. warn (may be NULL) hears why a system's WAL was left alone.
 * Files are deleted in increasing segment order, so that an expiry cut short leaves what a complete one with
 * a lower anchor would have left (wal-show still reads it as expired, not as missing).
 */
int wal_expire(repo *r, const snapshot *kept, size_t nkept, int64_t pitr_window_ns, int64_t now_ns, bool dry_run,
	       void (*warn)(void *arg, const char *msg), void *warn_arg, wal_expire_result *res);

/* ---- the rule itself, without I/O ---- */

/* One kept base backup of a system, as the rule sees it. */
typedef struct wal_expire_backup {
	uint64_t start_segno, stop_segno; /* the segments holding its start LSN and its stop LSN − 1 */
	int64_t time_ns;                  /* the snapshot's time: pg-restore prefers the newest by it */
	int64_t stop_ns;                  /* when it ended (pg.stop-time) */
	bool on_path;                     /* it lies on the latest timeline's history (it may anchor) */
} wal_expire_backup;

/* No segment number is below it: nothing is removed. */
#define WAL_EXPIRE_KEEP_ALL 0

/*
 * The anchor segment: every segment from it on is needed. The anchor backup A is the newest (by snapshot time,
 * the order pg-restore picks in) of the backups on the path that ended before now − window (the oldest on the
 * path when none did, or when window_ns < 0); the anchor is the lowest start segment of A and of every backup
 * at or after A in that order, since pg-restore may pick any of them for a target after A's end (a backup taken
 * while A ran may be newer and yet have started earlier). WAL_EXPIRE_KEEP_ALL when no backup is on the path.
 */
uint64_t wal_expire_anchor(const wal_expire_backup *b, size_t n, int64_t window_ns, int64_t now_ns);

/* Whether a file of segment number segno is needed: at or above the anchor, or inside a backup's range. */
bool wal_expire_needed(uint64_t segno, uint64_t anchor, const wal_expire_backup *b, size_t n);

/* Both at once over a list of segment numbers: remove[i] says whether segnos[i] goes. */
void wal_expire_select(const wal_expire_backup *b, size_t n, int64_t window_ns, int64_t now_ns,
		       const uint64_t *segnos, size_t nseg, bool *remove);

/*
 * For wal-show, over one system's archived segment numbers (every timeline together, as §16.5 compares them)
 * and the backups' ranges: whether a missing stretch [from, to] is what expiry leaves rather than lost WAL.
 * Expiry removes, in increasing order, segments outside every backup's range, so below a stretch it removed
 * only backups' ranges can remain: the stretch is expired when it touches no backup's range and no segment
 * outside every range is archived below it. first_free is the lowest archived segment outside every range
 * (UINT64_MAX when none), from wal_expire_first_free.
 */
uint64_t wal_expire_first_free(const uint64_t *segnos, size_t nseg, const wal_expire_backup *b, size_t n);
bool wal_expire_gap_expired(uint64_t from, uint64_t to, uint64_t first_free, const wal_expire_backup *b, size_t n);

#endif
