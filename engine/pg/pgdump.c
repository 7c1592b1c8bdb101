/*
 * pgdump.c — `dre pg-dump` (pgdump.h).
 *
 *   dre's connection:  BEGIN REPEATABLE READ; pg_export_snapshot(); the server's facts; the table list
 *   pg_dump:           --snapshot=<that one> -Fc -Z0, its output streamed into the push as node NAME
 *   a thread:          count(*) of every table on dre's connection, in the same transaction, while pg_dump runs
 *   then:              pg_dumpall --globals-only as node NAME.globals.sql (--globals), the meta, the snapshot
 *
 * pg_dump reads the very MVCC snapshot the counts are taken in, so a restore of this dump must give exactly
 * these counts, however busy the database was.
 */
#include "engine/pg/pgdump.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pg/pq.h"
#include "engine/pipeline/producer.h"
#include "engine/pipeline/push.h"

/* ---- the meta ---- */

static int info_fail(const snapshot *s, const char *key)
{
	return err_set(DRE_ECORRUPT, "pg-dump snapshot %s: %s is missing or malformed", s->name, key);
}

static int meta_number(const snapshot *s, const char *key, bool real, double *d, uint64_t *u)
{
	const char *v = snap_meta_get(s, key);
	char *end;
	if (v == NULL || *v == '\0' || *v == '-')
		return info_fail(s, key);
	errno = 0;
	if (real)
		*d = strtod(v, &end);
	else
		*u = strtoull(v, &end, 10);
	if (*end != '\0' || errno != 0)
		return info_fail(s, key);
	return 0;
}

static int table_cmp(const void *a, const void *b)
{
	const pg_table_count *x = a, *y = b;
	int c = strcmp(x->schema, y->schema);
	return c != 0 ? c : strcmp(x->table, y->table);
}

static int tables_decode(const snapshot *s, const char *text, pg_dump_info *out)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	int rc = 0;
	if (j == NULL || !json_is_array(j)) {
		json_decref(j);
		return info_fail(s, PG_DUMP_META_TABLES);
	}
	out->tables = calloc(json_array_size(j) + 1, sizeof *out->tables);
	if (out->tables == NULL)
		rc = err_set(DRE_ENOMEM, "pg-dump snapshot %s: cannot hold its table counts", s->name);
	for (size_t i = 0; rc == 0 && i < json_array_size(j); i++) {
		json_t *t = json_array_get(j, i);
		json_t *schema = json_array_get(t, 0), *table = json_array_get(t, 1), *rows = json_array_get(t, 2);
		if (!json_is_array(t) || json_array_size(t) != 3 || !json_is_string(schema) || !json_is_string(table) ||
		    !json_is_integer(rows)) {
			rc = info_fail(s, PG_DUMP_META_TABLES);
			break;
		}
		pg_table_count *c = &out->tables[out->ntables++];
		c->schema = strdup(json_string_value(schema));
		c->table = strdup(json_string_value(table));
		c->rows = json_integer_value(rows);
		if (c->schema == NULL || c->table == NULL)
			rc = err_set(DRE_ENOMEM, "pg-dump snapshot %s: cannot hold its table counts", s->name);
	}
	json_decref(j);
	if (rc == 0)
		qsort(out->tables, out->ntables, sizeof *out->tables, table_cmp);
	return rc;
}

static const char *const count_names[] = {"exact", "estimate", "none"};

const char *pg_count_name(enum pg_count c)
{
	return count_names[c];
}

bool pg_count_parse(const char *text, enum pg_count *out)
{
	for (size_t i = 0; text != NULL && i < sizeof count_names / sizeof *count_names; i++)
		if (strcmp(text, count_names[i]) == 0) {
			*out = (enum pg_count)i;
			return true;
		}
	return false;
}

void pg_dump_info_free(pg_dump_info *i)
{
	for (size_t k = 0; k < i->ntables; k++) {
		free(i->tables[k].schema);
		free(i->tables[k].table);
	}
	free(i->tables);
	free(i->database);
	memset(i, 0, sizeof *i);
}

int pg_dump_info_get(const snapshot *s, pg_dump_info *out)
{
	uint64_t version = 0, size = 0;
	memset(out, 0, sizeof *out);
	if (s->kind != SNAP_PG_DUMP)
		return err_set(DRE_EINVAL, "snapshot %s is a %s snapshot, not a pg-dump", s->name,
			       snap_kind_name(s->kind));
	const char *db = snap_meta_get(s, PG_DUMP_META_DATABASE), *count = snap_meta_get(s, PG_DUMP_META_COUNT);
	if (db == NULL)
		return info_fail(s, PG_DUMP_META_DATABASE);
	TRY(meta_number(s, PG_DUMP_META_SERVER_VERSION, false, NULL, &version));
	TRY(meta_number(s, PG_DUMP_META_DATABASE_SIZE, false, NULL, &size));
	TRY(meta_number(s, PG_DUMP_META_SECONDS, true, &out->seconds, NULL));
	if (version > UINT32_MAX)
		return info_fail(s, PG_DUMP_META_SERVER_VERSION);
	if (!pg_count_parse(count, &out->count))
		return info_fail(s, PG_DUMP_META_COUNT);
	out->server_version = (uint32_t)version;
	out->database_size = size;
	out->dump_node = s->name;
	out->globals_node = snap_meta_get(s, PG_DUMP_META_GLOBALS);
	out->database = strdup(db);
	if (out->database == NULL)
		return err_set(DRE_ENOMEM, "pg-dump snapshot %s: cannot hold its meta", s->name);
	const char *tables = snap_meta_get(s, PG_DUMP_META_TABLES);
	if (out->count != PG_COUNT_NONE && tables == NULL) {
		pg_dump_info_free(out);
		return info_fail(s, PG_DUMP_META_TABLES);
	}
	int rc = tables != NULL ? tables_decode(s, tables, out) : 0;
	if (rc < 0)
		pg_dump_info_free(out);
	return rc;
}

/* ---- the dump ---- */

/* pg_dump options dre sets itself: the format, compression, output, snapshot and connection are its to choose. */
int pg_dump_extra_check(char *const *extra)
{
	static const char *const reserved[] = {"-F", "--format", "-Z", "--compress", "-f", "--file", "-j", "--jobs",
					       "--snapshot", "-d", "--dbname", NULL};
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		const char *a = extra[i];
		for (size_t k = 0; reserved[k] != NULL; k++) {
			size_t n = strlen(reserved[k]);
			bool long_opt = reserved[k][1] == '-';
			if (strncmp(a, reserved[k], n) == 0 && (a[n] == '\0' || (long_opt ? a[n] == '=' : true)))
				return err_set(DRE_EINVAL,
					       "pg_dump option %s is dre's to set: pg-dump writes the custom format "
					       "uncompressed to its own pipe, in its own snapshot, on the connection of "
					       "--dbname",
					       a);
		}
	}
	return 0;
}

/* The tables whose rows pg_dump dumps: ordinary tables (partitions included) outside the system schemas that
 * are not an extension's own, in bytewise order (format-spec.md §10.5), not the database's collation. Estimates
 * come from pg_class (-1: never analysed). */
static const char tables_sql[] =
	"SELECT n.nspname, c.relname, c.reltuples::bigint FROM pg_class c "
	"JOIN pg_namespace n ON n.oid = c.relnamespace "
	"WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	"AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
	"AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
	"AND d.deptype = 'e') ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";

struct dump {
	PGconn *c;
	const pg_dump_opts *o;
	char snapshot_id[128];
	pg_dump_info *info;
	/* the counting thread's outcome */
	int count_rc;
	char count_msg[1024];
};

static int tables_list(struct dump *d)
{
	PGresult *res = PQexec(d->c, tables_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return pq_fail(d->c, "listing the tables");
	}
	int n = PQntuples(res), rc = 0;
	d->info->tables = calloc((size_t)n + 1, sizeof *d->info->tables);
	if (d->info->tables == NULL)
		rc = err_set(DRE_ENOMEM, "cannot hold a list of %d tables", n);
	for (int i = 0; rc == 0 && i < n; i++) {
		pg_table_count *t = &d->info->tables[d->info->ntables++];
		t->schema = strdup(PQgetvalue(res, i, 0));
		t->table = strdup(PQgetvalue(res, i, 1));
		t->rows = d->o->count == PG_COUNT_ESTIMATE ? strtoll(PQgetvalue(res, i, 2), NULL, 10) : -1;
		if (t->schema == NULL || t->table == NULL)
			rc = err_set(DRE_ENOMEM, "cannot hold a list of %d tables", n);
	}
	PQclear(res);
	return rc;
}

static int count_table(PGconn *c, pg_table_count *t)
{
	char *sql, *what;
	PGresult *res;
	int rc = pq_count_sql(c, t->schema, t->table, &sql, &what);
	if (rc == 0)
		rc = pq_row(c, what, sql, 0, NULL, &res);
	if (rc == 0) {
		t->rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	free(sql);
	free(what);
	return rc;
}

/* Runs beside the push, on the connection the main thread does not touch until it joins. */
static void *count_thread(void *arg)
{
	struct dump *d = arg;
	for (size_t i = 0; i < d->info->ntables && d->count_rc == 0; i++) {
		d->count_rc = count_table(d->c, &d->info->tables[i]);
		if (d->count_rc < 0)
			snprintf(d->count_msg, sizeof d->count_msg, "%s", err_msg());
	}
	return NULL;
}

/* The transaction whose snapshot pg_dump reads, and what the meta says about the server and database. */
static int dump_begin(struct dump *d)
{
	PGresult *res;
	TRY(pq_command(d->c, "starting the dump's transaction", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
	TRY(pq_row(d->c, "exporting a snapshot",
		   "SELECT pg_export_snapshot(), current_database(), current_setting('server_version_num'), "
		   "pg_database_size(current_database())",
		   0, NULL, &res));
	snprintf(d->snapshot_id, sizeof d->snapshot_id, "%s", PQgetvalue(res, 0, 0));
	d->info->database = strdup(PQgetvalue(res, 0, 1));
	d->info->server_version = (uint32_t)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
	d->info->database_size = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	if (d->info->database == NULL)
		return err_set(DRE_ENOMEM, "cannot start the dump");
	d->info->count = d->o->count;
	return d->o->count == PG_COUNT_NONE ? 0 : tables_list(d);
}

/* Appends to out (cap bytes, n used) keyword='value', quotes and backslashes escaped as libpq reads them. */
static bool conninfo_append(char *out, size_t cap, size_t *n, const char *keyword, const char *value)
{
	int w = snprintf(out + *n, cap - *n, "%s%s='", *n ? " " : "", keyword);
	if (w < 0 || (size_t)w >= cap - *n)
		return false;
	*n += (size_t)w;
	for (const char *c = value; *c; c++) {
		if (*n + 3 >= cap)
			return false;
		if (*c == '\\' || *c == '\'')
			out[(*n)++] = '\\';
		out[(*n)++] = *c;
	}
	if (*n + 2 >= cap)
		return false;
	out[(*n)++] = '\'';
	out[*n] = '\0';
	return true;
}

/*
 * The connection string pg_dump and pg_dumpall get as --dbname: pg_dumpall takes only a connection string or URI,
 * where pg_dump and libpq take a plain database name too, so a name becomes dbname='name'. A password in it
 * (password=, or user:password@ in a URI) is moved to *password (malloc'd; NULL when there is none) for the
 * program's PGPASSWORD: argv is readable by every user of the machine. No message repeats the string.
 */
static int conninfo_string(const char *conninfo, char *out, size_t cap, char **password)
{
	*password = NULL;
	size_t n = 0;
	out[0] = '\0';
	if (!pq_is_conninfo(conninfo)) {
		if (!conninfo_append(out, cap, &n, "dbname", conninfo))
			return err_set(DRE_EINVAL, "the database name of --dbname is too long");
		return 0;
	}
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
	if (opts == NULL) {
		/* dre's own connection, made first with the same string, reports libpq's reason */
		PQfreemem(why);
		return err_set(DRE_EINVAL, "the connection string of --dbname cannot be parsed");
	}
	bool has_password = false;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		has_password |= o->val != NULL && strcmp(o->keyword, "password") == 0;
	int rc = 0;
	if (!has_password) {
		if (snprintf(out, cap, "%s", conninfo) >= (int)cap)
			rc = err_set(DRE_EINVAL, "the connection string of --dbname is too long");
	} else {
		for (PQconninfoOption *o = opts; rc == 0 && o->keyword != NULL; o++) {
			if (o->val == NULL)
				continue;
			if (strcmp(o->keyword, "password") == 0) {
				free(*password); /* NULL: libpq lists each keyword once */
				if ((*password = strdup(o->val)) == NULL)
					rc = err_set(DRE_ENOMEM, "cannot start pg_dump: out of memory");
			} else if (!conninfo_append(out, cap, &n, o->keyword, o->val)) {
				rc = err_set(DRE_EINVAL, "the connection string of --dbname is too long");
			}
		}
		for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
			if (o->val != NULL && strcmp(o->keyword, "password") == 0)
				crypto_wipe(o->val, strlen(o->val));
	}
	PQconninfoFree(opts);
	if (rc < 0 && *password != NULL) {
		crypto_wipe(*password, strlen(*password));
		free(*password);
		*password = NULL;
	}
	return rc;
}

/* argv for pg_dump or pg_dumpall: bindir/prog, the fixed options, --dbname, then extra; *password as for
 * conninfo_string. */
static int dump_argv(const pg_dump_opts *o, const char *prog, const char *const *fixed, char *const *extra,
		     char *path, size_t cap, char *conn, size_t conn_cap, char **password, char ***out)
{
	size_t nfixed = 0, nextra = 0;
	*password = NULL;
	while (fixed[nfixed] != NULL)
		nfixed++;
	while (extra != NULL && extra[nextra] != NULL)
		nextra++;
	if (o->bindir != NULL)
		snprintf(path, cap, "%s/%s", o->bindir, prog);
	else
		snprintf(path, cap, "%s", prog);
	char **argv = calloc(nfixed + nextra + 4, sizeof *argv);
	if (argv == NULL)
		return err_set(DRE_ENOMEM, "cannot start %s", prog);
	size_t n = 0;
	argv[n++] = path;
	for (size_t i = 0; i < nfixed; i++)
		argv[n++] = (char *)fixed[i];
	if (o->conninfo != NULL) {
		int rc = conninfo_string(o->conninfo, conn, conn_cap, password);
		if (rc < 0) {
			free(argv);
			return rc;
		}
		argv[n++] = "--dbname";
		argv[n++] = conn;
	}
	for (size_t i = 0; i < nextra; i++)
		argv[n++] = extra[i];
	*out = argv;
	return 0;
}

/* Runs prog with args, its output the stream node path of the session. */
static int dump_node(push_session *ps, const pg_dump_opts *o, const char *prog, const char *const *fixed,
		     char *const *extra, const char *path, double *seconds)
{
	char exe[4200], conn[8192], *password = NULL, *env[2] = {NULL, NULL};
	char **argv = NULL;
	producer pr;
	TRY(dump_argv(o, prog, fixed, extra, exe, sizeof exe, conn, sizeof conn, &password, &argv));
	int rc = 0;
	if (password != NULL && asprintf(&env[0], "PGPASSWORD=%s", password) < 0) {
		env[0] = NULL;
		rc = err_set(DRE_ENOMEM, "cannot start %s: out of memory", prog);
	}
	if (rc == 0)
		rc = producer_start(argv, env[0] ? env : NULL, &pr);
	free(argv);
	if (password != NULL) {
		crypto_wipe(password, strlen(password));
		free(password);
	}
	if (env[0] != NULL) {
		crypto_wipe(env[0], strlen(env[0]));
		free(env[0]);
	}
	TRY(rc);
	rc = push_session_add_stream(ps, path, pr.fd, prog);
	int prc = producer_wait(&pr, rc < 0, seconds);
	return rc < 0 ? rc : prc;
}

static int meta_add_number(push_session *ps, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int meta_add_number(push_session *ps, const char *key, const char *fmt, ...)
{
	char v[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	return push_session_add_meta(ps, key, v);
}

static int dump_meta(push_session *ps, struct dump *d)
{
	const pg_dump_info *in = d->info;
	TRY(push_session_add_meta(ps, PG_DUMP_META_DATABASE, in->database));
	TRY(meta_add_number(ps, PG_DUMP_META_SERVER_VERSION, "%" PRIu32, in->server_version));
	TRY(meta_add_number(ps, PG_DUMP_META_DATABASE_SIZE, "%" PRIu64, in->database_size));
	TRY(meta_add_number(ps, PG_DUMP_META_SECONDS, "%.3f", in->seconds));
	TRY(push_session_add_meta(ps, PG_DUMP_META_SNAPSHOT, d->snapshot_id));
	TRY(push_session_add_meta(ps, PG_DUMP_META_COUNT, pg_count_name(in->count)));
	if (in->globals_node != NULL)
		TRY(push_session_add_meta(ps, PG_DUMP_META_GLOBALS, in->globals_node));
	if (in->count == PG_COUNT_NONE)
		return 0;
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < in->ntables; i++) {
		const pg_table_count *t = &in->tables[i];
		if (json_array_append_new(a, json_pack("[s, s, I]", t->schema, t->table, (json_int_t)t->rows)) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	if (text == NULL)
		return err_set(DRE_ENOMEM, "cannot record the counts of %zu tables", in->ntables);
	int rc = push_session_add_meta(ps, PG_DUMP_META_TABLES, text);
	free(text);
	return rc;
}

static int dump_run(repo *r, struct dump *d, pg_dump_result *res)
{
	const pg_dump_opts *o = d->o;
	static const char *const dump_fixed[] = {"--format=custom", "--compress=0", NULL};
	static const char *const globals_fixed[] = {"--globals-only", NULL};
	char snapshot_opt[160], globals_path[SNAP_PATH_MAX + 1];
	const char *fixed[4] = {dump_fixed[0], dump_fixed[1], snapshot_opt, NULL};
	push_opts po = {.name = o->name, .threads = o->threads, .hooks = o->hooks, .lock_command = "pg-dump"};
	push_session *ps;
	pthread_t counter;
	bool counting = false;

	snprintf(snapshot_opt, sizeof snapshot_opt, "--snapshot=%s", d->snapshot_id);
	TRY(push_session_start(r, &po, SNAP_PG_DUMP, &ps));
	int rc = 0;
	if (o->count == PG_COUNT_EXACT) {
		if (pthread_create(&counter, NULL, count_thread, d) != 0)
			rc = err_set(DRE_ENOMEM, "cannot start counting rows");
		else
			counting = true;
	}
	if (rc == 0)
		rc = dump_node(ps, o, "pg_dump", fixed, o->extra, o->name, &d->info->seconds);
	if (counting) {
		if (rc < 0) { /* no use counting what will not be recorded */
			PGcancel *cancel = PQgetCancel(d->c);
			char ignored[256];
			if (cancel != NULL)
				PQcancel(cancel, ignored, sizeof ignored);
			PQfreeCancel(cancel);
		}
		pthread_join(counter, NULL);
		if (rc == 0 && d->count_rc < 0)
			rc = err_set(d->count_rc, "%s", d->count_msg);
	}
	/* the snapshot pg_dump read is released only now: the counts are of exactly what it dumped */
	if (rc == 0)
		rc = pq_command(d->c, "ending the dump's transaction", "COMMIT");
	if (rc == 0 && o->globals) {
		snprintf(globals_path, sizeof globals_path, "%s.globals.sql", o->name);
		rc = dump_node(ps, o, "pg_dumpall", globals_fixed, NULL, globals_path, NULL);
		if (rc == 0) {
			d->info->globals_node = globals_path;
			rc = dump_meta(ps, d);
			d->info->globals_node = NULL; /* points into this frame; the caller learns it from the meta */
		}
	} else if (rc == 0) {
		rc = dump_meta(ps, d);
	}
	return push_session_end(ps, rc, true, &res->push);
}

int engine_pg_dump(repo *r, const pg_dump_opts *o, pg_dump_result *res)
{
	memset(res, 0, sizeof *res);
	TRY(engine_check_name(o->name));
	TRY(pg_dump_extra_check(o->extra));
	if (strlen(o->name) + sizeof ".globals.sql" > SNAP_PATH_MAX)
		return err_set(DRE_EINVAL, "snapshot name %s is too long for a pg-dump", o->name);
	struct dump d = {.o = o, .info = &res->info};
	TRY(pq_connect(o->conninfo, &d.c));
	int rc = dump_begin(&d);
	if (rc == 0)
		rc = dump_run(r, &d, res);
	PQfinish(d.c);
	if (rc < 0)
		pg_dump_info_free(&res->info);
	return rc;
}
