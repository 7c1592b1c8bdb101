/*
 * pgdump.h — logical backups that prove themselves: `dre pg-dump` runs pg_dump in the form that deduplicates
 * (custom format, uncompressed: dre compresses) inside an MVCC snapshot it exported from a REPEATABLE READ
 * transaction of its own, and counts every table's rows in that same transaction, so a drill (drill.h) can
 * compare a restore's counts with exactly what the dump holds.
 *
 * A dump is a snapshot of kind SNAP_PG_DUMP (format-spec.md §10.5) with stream nodes: the archive under the
 * snapshot's name, and with --globals `NAME.globals.sql` (pg_dumpall --globals-only: roles and tablespaces). The
 * meta keys below say what the dump holds.
 */
#ifndef DRE_PGDUMP_H
#define DRE_PGDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define PG_DUMP_META_DATABASE "pg-dump.database"         /* current_database() */
#define PG_DUMP_META_SERVER_VERSION "pg-dump.server-version" /* server_version_num, "150010" */
#define PG_DUMP_META_DATABASE_SIZE "pg-dump.database-size"   /* pg_database_size(), bytes */
#define PG_DUMP_META_SECONDS "pg-dump.seconds"           /* how long pg_dump ran, "12.345" */
#define PG_DUMP_META_SNAPSHOT "pg-dump.snapshot"         /* the exported snapshot pg_dump read */
#define PG_DUMP_META_COUNT "pg-dump.count"               /* "exact", "estimate" or "none" */
#define PG_DUMP_META_TABLES "pg-dump.tables"             /* JSON [[schema, table, rows], ...]; absent with none */
#define PG_DUMP_META_GLOBALS "pg-dump.globals"           /* the globals node's path, when there is one */

enum pg_count { PG_COUNT_EXACT = 0, PG_COUNT_ESTIMATE, PG_COUNT_NONE };

/* "exact", "estimate", "none": as pg-dump.count and --count write them. parse: false for anything else. */
const char *pg_count_name(enum pg_count c);
bool pg_count_parse(const char *text, enum pg_count *out);

typedef struct pg_table_count {
	char *schema, *table;
	int64_t rows;
} pg_table_count;

/* What a pg-dump snapshot's meta says (pg_dump_info_get); free with pg_dump_info_free. */
typedef struct pg_dump_info {
	char *database;
	uint32_t server_version;
	uint64_t database_size;
	double seconds;
	enum pg_count count;
	pg_table_count *tables; /* sorted by schema, then table */
	size_t ntables;
	const char *dump_node;    /* the archive's node path (the snapshot's name) */
	const char *globals_node; /* NULL without --globals */
} pg_dump_info;

/* DRE_EINVAL when s is not a pg-dump snapshot, DRE_ECORRUPT naming a meta key that is missing or malformed.
 * dump_node and globals_node point into s. */
int pg_dump_info_get(const snapshot *s, pg_dump_info *out);
void pg_dump_info_free(pg_dump_info *i);

typedef struct pg_dump_opts {
	const char *name;      /* snapshot name */
	const char *conninfo;  /* a database name, connection string or URI (pq.h); NULL: libpq's defaults */
	char *const *extra;    /* more pg_dump arguments (after "--"), NULL-terminated; NULL: none */
	enum pg_count count;
	bool globals;          /* also pg_dumpall --globals-only */
	const char *bindir;    /* where pg_dump and pg_dumpall are; NULL: PATH */
	int threads;
	engine_hooks hooks;
} pg_dump_opts;

typedef struct pg_dump_result {
	push_result push;
	pg_dump_info info; /* what was recorded (pg_dump_info_free it) */
} pg_dump_result;

/* DRE_EINVAL naming the first of extra (pg_dump options) that pg-dump sets itself (the format, compression,
 * output, snapshot, jobs, connection). engine_pg_dump checks it too; cli/ calls it first for a usage error. */
int pg_dump_extra_check(char *const *extra);

/* Records the snapshot only when pg_dump (and pg_dumpall) exited 0 and every count was taken: DRE_EPRODUCER
 * with the program's exit status otherwise (its own messages went to standard error). */
int engine_pg_dump(repo *r, const pg_dump_opts *o, pg_dump_result *res);

#endif
