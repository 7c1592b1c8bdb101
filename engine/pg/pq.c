/*
 * pq.c — libpq with errors as values (pq.h).
 */
#include "engine/pg/pq.h"

#include <stdio.h>
#include <string.h>

#include "store/err.h"

int pq_connect(const char *conninfo, PGconn **out)
{
	/* as psql and pg_dump take it: a database name, a key=value string or a URI */
	const char *const keys[] = {"dbname", NULL}, *const values[] = {conninfo, NULL};
	PGconn *c = conninfo ? PQconnectdbParams(keys, values, 1) : PQconnectdb("");
	if (c == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a PostgreSQL connection");
	if (PQstatus(c) != CONNECTION_OK) {
		int rc = pq_fail(c, "cannot connect");
		PQfinish(c);
		return rc;
	}
	*out = c;
	return 0;
}

bool pq_is_conninfo(const char *s)
{
	return strchr(s, '=') != NULL || strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0;
}

int pq_count_sql(PGconn *c, const char *schema, const char *table, char **sql, char **what)
{
	*sql = *what = NULL;
	if (asprintf(what, "counting the rows of %s.%s", schema, table) < 0) {
		*what = NULL;
		return err_set(DRE_ENOMEM, "cannot count the rows of %s.%s: out of memory", schema, table);
	}
	char *s = PQescapeIdentifier(c, schema, strlen(schema)), *t = PQescapeIdentifier(c, table, strlen(table));
	int rc = 0;
	if (s == NULL || t == NULL)
		rc = pq_fail(c, *what);
	else if (asprintf(sql, "SELECT count(*) FROM ONLY %s.%s", s, t) < 0) {
		*sql = NULL;
		rc = err_set(DRE_ENOMEM, "%s: out of memory", *what);
	}
	PQfreemem(s);
	PQfreemem(t);
	return rc;
}

int pq_fail(PGconn *c, const char *what)
{
	const char *msg = PQerrorMessage(c);
	size_t len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	return err_set(DRE_EIO, "PostgreSQL: %s: %.*s", what, (int)len, msg);
}

int pq_row(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params, PGresult **out)
{
	PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		int rc = PQresultStatus(res) == PGRES_TUPLES_OK
				 ? err_set(DRE_EIO, "PostgreSQL: %s: %d rows, expected one", what, PQntuples(res))
				 : pq_fail(c, what);
		PQclear(res);
		return rc;
	}
	*out = res;
	return 0;
}

int pq_command(PGconn *c, const char *what, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pq_fail(c, what);
	PQclear(res);
	return rc;
}
