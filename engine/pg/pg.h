/*
 * pg.h — PostgreSQL physical backups: an online base backup through libpq (pg_backup_start, the data directory
 * through the push pipeline, pg_backup_stop, then waiting for its WAL in the archive), the choice of a base
 * backup and the WAL check for a point-in-time restore, and the status of backups and archive for wal-show.
 *
 * A base backup is a snapshot of kind SNAP_PG_BASE whose paths are relative to the data directory and whose
 * meta (format-spec.md §10.1) holds what recovery and a later WAL retention need: system identifier, timeline,
 * start and stop LSN and WAL file, start and stop time, server version, segment size.
 */
#ifndef DRE_PG_H
#define DRE_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/pg/wal.h"
#include "engine/pg/walexpire.h"

typedef struct pg_base_info {
	uint64_t system_id;
	uint32_t timeline, version, seg_size;
	uint64_t start_lsn, stop_lsn;
	int64_t start_ns, stop_ns;
	char start_wal[WAL_NAME_MAX], stop_wal[WAL_NAME_MAX];
} pg_base_info;

/* The meta of a base backup snapshot; DRE_ECORRUPT names what is missing. */
int pg_base_info_get(const snapshot *s, pg_base_info *out);

typedef struct pg_backup_opts {
	const char *pgdata;   /* NULL: the server's data_directory (then it must be on this machine) */
	const char *conninfo; /* a libpq connection string or URI; NULL: libpq's defaults (PGHOST, PGPORT, ...) */
	const char *name;     /* snapshot name; NULL: "pg" */
	bool fast;            /* an immediate checkpoint instead of a spread one */
	int archive_timeout;  /* seconds to wait for the backup's WAL to reach the archive; 0: 60 */
	bool force_read;      /* read every file; else a relation file unchanged since the newest backup of this name
			       * and system (push_opts: size, mtime older than its start, ctime, inode) is not read */
	int threads;
	engine_hooks hooks;
} pg_backup_opts;

typedef struct pg_backup_result {
	push_result push;
	pg_base_info info;
	double wal_wait_seconds;
} pg_backup_result;

/* The snapshot is saved only once every WAL segment from start to stop is in the archive. */
int engine_pg_backup(repo *r, const pg_backup_opts *o, pg_backup_result *res);

enum pg_target { PG_TARGET_LATEST = 0, PG_TARGET_TIME, PG_TARGET_LSN };

/* The restored cluster's WAL archiving. Its archive_mode and archive_command are the backed-up cluster's, which
 * archive into the production repository: PRESERVE keeps them (a restore that replaces production and goes on
 * archiving there); OFF appends archive_mode = 'off' to postgresql.auto.conf, so that a test restore does not
 * archive its new timeline into production's archive, where a later recovery would follow it. */
enum pg_archive_mode { PG_ARCHIVE_PRESERVE = 0, PG_ARCHIVE_OFF };

typedef struct pg_restore_opts {
	const char *pgdata;
	const char *backup; /* a snapshot ID prefix; NULL: the newest backup that suits the target */
	const char *name;   /* only backups of this name; NULL: any */
	enum pg_target target;
	int64_t time_ns;    /* PG_TARGET_TIME */
	uint64_t lsn;       /* PG_TARGET_LSN */
	uint32_t timeline;  /* recovery_target_timeline; 0: latest */
	bool force;         /* restore into a non-empty directory */
	const char *restore_command; /* written into postgresql.auto.conf */
	const char *tablespace_map;  /* "OID=DIR[,OID=DIR...]": where tablespaces go; others to their old paths */
	const char *tablespace_root; /* not NULL: tablespaces tablespace_map leaves out go to DIR/<OID> instead of
				      * their old paths (a drill writes nothing outside its scratch directory) */
	enum pg_archive_mode archive_mode;
	int threads;
	engine_hooks hooks;
} pg_restore_opts;

typedef struct pg_restore_result {
	uint8_t id[CRYPTO_ID_LEN];
	pg_base_info info;
	uint32_t target_timeline;
	restore_result restore;
	uint64_t wal_segments; /* archived segments checked from the backup's start on */
	char wal_last[WAL_NAME_MAX];
	/* archive_mode and archive_command as the restored postgresql.conf and postgresql.auto.conf set them before
	 * pg-restore wrote its lines (the last setting wins, include directives not followed); "" where neither
	 * sets it (Debian keeps postgresql.conf outside the data directory) */
	char archive_mode_found[32], archive_command_found[1024];
} pg_restore_result;

/* Appends s to out in single quotes for the shell that runs a restore_command, with '%' doubled: PostgreSQL
 * would read it as a placeholder (%f, %p). Truncates rather than overflow cap. */
void pg_command_quote(char *out, size_t cap, const char *s);

/* Chooses the backup, checks the archive (DRE_ENOTFOUND naming a missing segment), restores the files and
 * writes recovery.signal and the recovery settings. */
int engine_pg_restore(repo *r, const pg_restore_opts *o, pg_restore_result *res);

/* For wal-show: the archive of every system and every base backup. */
typedef struct pg_backup_entry {
	uint8_t id[CRYPTO_ID_LEN];
	char name[256];
	pg_base_info info;
	bool wal_complete;                 /* every segment from its start to its stop is archived */
	char wal_missing[WAL_NAME_MAX];    /* the first that is not */
} pg_backup_entry;

typedef struct pg_status {
	wal_archive archive;
	pg_backup_entry *backups; /* oldest first */
	size_t nbackups;
} pg_status;

int engine_pg_status(repo *r, pg_status *out);
/* The same from snapshots already listed (l): only the archive is listed. */
int pg_status_build(repo *r, const snap_list *l, pg_status *out);
void pg_status_free(pg_status *s);

/* The archive as WAL expiry sees it (format-spec.md §16.5): one system's base backups and what follows from
 * them. A stretch that expiry removed is told apart from WAL that went missing, and the point-in-time window is
 * the one the archive gives now, after whatever expiry did. pg_sys_view_free() it. */
typedef struct pg_sys_view {
	wal_expire_backup *b; /* the system's backups, in st.backups order (pg_backup_entry index in idx) */
	size_t *idx, n;
	uint64_t first_free; /* the lowest archived segment outside every backup's range */
	uint64_t run_from;   /* every segment from it to the archive's last is archived (on some timeline) */
	bool any;            /* the system has a segment at all */
	uint64_t last;
	uint32_t last_tli;
} pg_sys_view;

int pg_sys_view_make(const pg_status *st, const wal_system *s, pg_sys_view *v);
void pg_sys_view_free(pg_sys_view *v);
/* Segments absent inside timeline t's archived range that expiry did not remove (wal-show's gaps); *gaps (may be
 * NULL) is incremented per stretch. */
uint64_t pg_sys_view_missing(const pg_sys_view *v, const wal_timeline *t, size_t *gaps);

/* For monitoring (dre stats): the missing segments of every cluster and timeline, and the base backups without
 * all their WAL. */
int pg_status_missing(const pg_status *st, uint64_t *segments, size_t *backups_missing_wal);

#endif
