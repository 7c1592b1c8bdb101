/*
 * pq.h — the few libpq calls every PostgreSQL module of dre makes, with errors as values: a failed connection,
 * command or query becomes DRE_EIO with the server's message and what dre was doing.
 */
#ifndef DRE_PQ_H
#define DRE_PQ_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects as psql -d does: conninfo is a database name, a libpq connection string or a URI (NULL: libpq's
 * defaults, PGHOST, PGDATABASE, ...). */
int pq_connect(const char *conninfo, PGconn **out);
/* Whether s is a key=value connection string or a URI, not a plain database name (which pg_dumpall's --dbname
 * and PQconninfoParse do not take). */
bool pq_is_conninfo(const char *s);
/* "SELECT count(*) FROM ONLY schema.table" with both names quoted for c, malloc'd in *sql; *what (what the
 * count is, for messages) is "counting the rows of schema.table". Both the caller's to free. */
int pq_count_sql(PGconn *c, const char *schema, const char *table, char **sql, char **what);
/* Sets the message from c's last error: "PostgreSQL: <what>: <the server's message>". */
int pq_fail(PGconn *c, const char *what);
/* Runs sql with text parameters; a result that is not TUPLES_OK with exactly one row is an error naming what.
 * *out is the caller's to PQclear. */
int pq_row(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params, PGresult **out);
/* Runs a statement that returns no rows (BEGIN, SET, CREATE ...). */
int pq_command(PGconn *c, const char *what, const char *sql);

#endif
