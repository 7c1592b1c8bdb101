/*
 * wal.h — the PostgreSQL WAL archive: one envelope object per archived file (segment, .partial, .backup,
 * .history) under "wal/<system id>/<timeline>/<file name>" (format-spec.md §15), so that a fetch is one GET and
 * the archive's shape is one LIST, without reading packs or snapshots.
 *
 * WAL files do not go through the chunk pipeline: a segment is written once, is never seen again in another
 * file, and the archiver waits on every call, so one compressed, encrypted object per file is both the fastest
 * and the simplest thing that keeps each push durable on its own.
 */
#ifndef DRE_WAL_H
#define DRE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/repo.h"

#define WAL_NAME_MAX 64
#define WAL_KEY_MAX 160
#define WAL_SEG_SIZE_DEFAULT (16u << 20)

typedef enum wal_file_type { WAL_SEGMENT = 1, WAL_PARTIAL, WAL_BACKUP, WAL_HISTORY } wal_file_type;

/* What a WAL file name says: "000000010000000A000000FF" (segment), "….partial", "….00000028.backup",
 * "00000002.history". */
typedef struct wal_name {
	wal_file_type type;
	uint32_t tli;
	uint32_t log, seg; /* the two halves of the segment number as written (not for history files) */
} wal_name;

/* DRE_EINVAL naming the text when it is not one of the four forms. */
int wal_name_parse(const char *name, wal_name *out);
/* A segment size PostgreSQL allows: a power of two from 1 MiB to 1 GiB. */
bool wal_seg_size_valid(uint64_t seg_size);
/* The segment number: log * (2^32 / seg_size) + seg. */
uint64_t wal_name_segno(const wal_name *n, uint32_t seg_size);
/* "TTTTTTTTLLLLLLLLSSSSSSSS" of segment segno on timeline tli. */
void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char out[WAL_NAME_MAX]);
/* The segment holding byte lsn (lsn / seg_size). */
static inline uint64_t wal_lsn_segno(uint64_t lsn, uint32_t seg_size)
{
	return lsn / seg_size;
}
/* "16/B374D848" ↔ 0x16B374D848. DRE_EINVAL when the text is not an LSN. */
int wal_lsn_parse(const char *text, uint64_t *lsn);
void wal_lsn_format(uint64_t lsn, char out[24]);

/* The store key of archived file name: "wal/<system>/<timeline>/<name>", hex digits in lowercase. */
int wal_object_key(uint64_t system_id, const char *name, char out[WAL_KEY_MAX]);
/* The other way, for a listing of wal/: the system and the file's name in PostgreSQL's uppercase form.
 * DRE_EINVAL for any other key (the system record, objects that are not WAL files). */
int wal_key_parse(const char *key, uint64_t *system_id, char name[WAL_NAME_MAX], wal_name *wn);
/* The segment size the repository records for a system (its "system" object); DRE_ENOTFOUND before the
 * first segment of the system was archived. */
int wal_system_seg_size(repo *r, uint64_t system_id, uint32_t *seg_size);

/* The system identifier in DIR/global/pg_control (the first 8 bytes of the control file). */
int wal_pgdata_system_id(const char *pgdata, uint64_t *out);

typedef struct wal_push_result {
	bool already;        /* an identical copy was archived before: nothing written */
	uint64_t system_id;
	uint64_t size;       /* bytes of the file */
	uint64_t stored;     /* bytes of the object written */
	char key[WAL_KEY_MAX];
} wal_push_result;

/*
 * Archives the file at path (archive_command's %p). The system identifier comes from a segment's own page
 * header, else (history and backup files) from the control file of pgdata, or of the data directory that path
 * lies in (…/pg_wal/NAME), or of the current directory, which is where PostgreSQL runs archive_command.
 * Returns only when the object is durable. A different file already archived under the name is DRE_EEXIST.
 */
int engine_wal_push(repo *r, const char *path, const char *pgdata, wal_push_result *res);

/*
 * Writes archived file name to dest (restore_command's %f and %p), through a temporary name in dest's directory.
 * system_id 0: from pgdata's control file, else the current directory's, else the repository's only system.
 * DRE_ENOTFOUND when the archive does not hold it.
 */
int engine_wal_fetch(repo *r, const char *name, const char *dest, const char *pgdata, uint64_t system_id);

/*
 * Prefetch for recovery, when dest is in a pg_wal directory (restore_command's %p): engine_wal_prefetch fetches
 * the count segments after name (same timeline) into the spool directory beside dest (".dre-prefetch"), in parallel, stopping at the first one not archived; errors
 * are left for the call that asks for that file. wal_spool_take moves name from the spool to dest if it is
 * there (*hit), drops older ones, and says whether the spool is low (*refill: fewer than prefetch/2 left).
 * wal_spool_remove empties the spool beside wal_path (after a miss, and at the first wal-push).
 */
int engine_wal_prefetch(repo *r, const char *name, const char *dest, const char *pgdata, uint64_t system_id,
			int count);
int wal_spool_take(const char *name, const char *dest, int prefetch, bool *hit, bool *refill);
void wal_spool_remove(const char *wal_path);

/* Reads the header of an archived file without keeping its body: when it was pushed, the time of the last
 * transaction commit or abort in it (0: none, or not a segment), its size. */
int wal_object_info(repo *r, uint64_t system_id, const char *name, int64_t *pushed_ns, int64_t *last_xact_ns,
		    uint64_t *size);

/* ---- the archive's shape, from one listing ---- */

typedef struct wal_timeline {
	uint32_t tli;
	uint64_t *segnos; /* full segments, sorted, unique */
	size_t nseg, cap;
	bool history;     /* <tli>.history is archived */
	size_t npartial, nbackup;
} wal_timeline;

typedef struct wal_system {
	uint64_t system_id;
	uint32_t seg_size; /* from the system object; WAL_SEG_SIZE_DEFAULT until a segment is archived */
	uint16_t page_magic;
	wal_timeline *tls; /* sorted by timeline */
	size_t ntl;
} wal_system;

typedef struct wal_archive {
	wal_system *sys;
	size_t n;
} wal_archive;

/* Lists wal/; with system_id ≠ 0 only that system. Reads one small object per system (its segment size). */
int wal_archive_load(repo *r, uint64_t system_id, wal_archive *out);
void wal_archive_free(wal_archive *a);
const wal_system *wal_archive_system(const wal_archive *a, uint64_t system_id);
const wal_timeline *wal_system_timeline(const wal_system *s, uint32_t tli);
bool wal_timeline_has(const wal_timeline *t, uint64_t segno);

/* The newest segment of s (the highest segment number, on the newest timeline among equals) with what its
 * object's header records (format-spec.md §15): when it was archived, by the writer's clock, and the time of its
 * last transaction. found is false when s has no segment. One GET: how current the archive is, for wal-show and
 * stats, without trusting a store's modification times. */
typedef struct wal_last {
	bool found;
	char name[WAL_NAME_MAX];
	int64_t archived_ns, last_xact_ns; /* 0: not recorded */
} wal_last;
int wal_system_last(repo *r, const wal_system *s, wal_last *out);

/* A timeline's ancestry from its history file: ends[i] is where timeline tlis[i] ended and its child began. */
typedef struct wal_history {
	size_t n;
	uint32_t tlis[64];
	uint64_t ends[64];
} wal_history;

/* Timeline 1 has no history file (n = 0); another timeline's missing history file is DRE_ENOTFOUND. */
int wal_history_load(repo *r, uint64_t system_id, uint32_t tli, wal_history *out);

/* For dre check: counts the archived files; with read_data decrypts and checksums each, reporting the damaged
 * ones through warn (errors counted) and returning <0 only when it could not run. */
typedef struct wal_check_report {
	size_t files, errors;
	uint64_t stored;
} wal_check_report;
int wal_check_archive(repo *r, bool read_data, void (*warn)(void *arg, const char *msg), void *arg,
		      wal_check_report *rep);

#endif
