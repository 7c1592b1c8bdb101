/*
 * drillsql.c — the --sql checks of a drill (drill.h): reading a check file, and running its statements on the
 * restored database, one autocommit statement each.
 *
 * The format is deliberately line-based (a statement ends with ';' at the end of a line) so that a reader needs
 * no SQL lexer: a ';' at a line's end inside a dollar-quoted body would end the statement there.
 */
#include "engine/drill/drillint.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "engine/pipeline/meter.h"

#define CHECKS_MAX_BYTES (1u << 20)

static char *skip_blank(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void trim_end(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
}

/* "OP VALUE" after "-- expect:". */
static int parse_expect(const char *path, unsigned line, char *s, drill_check *c)
{
	static const char *const ops[] = {"<=", ">=", "!=", "<>", "=", "<", ">", NULL};
	s = skip_blank(s);
	trim_end(s);
	size_t i;
	for (i = 0; ops[i] != NULL; i++)
		if (strncmp(s, ops[i], strlen(ops[i])) == 0)
			break;
	if (ops[i] == NULL)
		return err_set(DRE_EINVAL, "%s:%u: '-- expect:' wants OP VALUE with OP one of = != < <= > >= (such as "
					   "'-- expect: >= 1000' or \"-- expect: = 'ok'\"), not '%s'",
			       path, line, s);
	snprintf(c->op, sizeof c->op, "%s", strcmp(ops[i], "<>") == 0 ? "!=" : ops[i]);
	char *v = skip_blank(s + strlen(ops[i]));
	size_t len = strlen(v);
	if (len == 0)
		return err_set(DRE_EINVAL, "%s:%u: '-- expect: %s' has no value", path, line, c->op);
	if (v[0] == '\'' || v[0] == '"') {
		if (len < 2 || v[len - 1] != v[0])
			return err_set(DRE_EINVAL, "%s:%u: the value %s has no closing quote", path, line, v);
		if (strcmp(c->op, "=") != 0 && strcmp(c->op, "!=") != 0)
			return err_set(DRE_EINVAL, "%s:%u: a quoted value compares as text, with = or != only, not %s",
				       path, line, c->op);
		c->text = true;
		c->value = strndup(v + 1, len - 2);
	} else {
		char *end;
		errno = 0;
		c->number = strtod(v, &end);
		if (end == v || *end != '\0' || errno != 0 || !isfinite(c->number))
			return err_set(DRE_EINVAL, "%s:%u: '%s' is neither a number nor a quoted string", path, line, v);
		c->value = strdup(v);
	}
	return c->value ? 0 : err_set(DRE_ENOMEM, "cannot read %s", path);
}

static int checks_add(drill_checks *out, const drill_check *c)
{
	drill_check *v = realloc(out->v, (out->n + 1) * sizeof *v);
	if (v == NULL)
		return err_set(DRE_ENOMEM, "cannot read %s", out->path);
	out->v = v;
	out->v[out->n++] = *c;
	return 0;
}

static void check_free(drill_check *c)
{
	free(c->sql);
	free(c->value);
	memset(c, 0, sizeof *c);
}

static int sql_read(FILE *f, drill_checks *out)
{
	const char *path = out->path;
	drill_check cur = {0};
	bool expecting = false; /* cur holds an expectation for the next statement */
	unsigned expect_line = 0, lineno = 0;
	char *sql = NULL, *line = NULL;
	size_t sql_len = 0, cap = 0;
	ssize_t got;
	int rc = 0;
	while (rc == 0 && (got = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)got) != NULL) {
			rc = err_set(DRE_EINVAL, "%s:%u: a NUL byte: not a text file", path, lineno);
			break;
		}
		char *t = skip_blank(line);
		bool comment = strncmp(t, "--", 2) == 0;
		bool expect = comment && strncasecmp(skip_blank(t + 2), "expect:", 7) == 0;
		if (sql_len == 0) {
			if (expect) {
				if (expecting) {
					rc = err_set(DRE_EINVAL, "%s:%u: a second '-- expect:' (line %u has one) before a "
								 "statement",
						     path, lineno, expect_line);
					break;
				}
				rc = parse_expect(path, lineno, skip_blank(t + 2) + 7, &cur);
				expecting = true;
				expect_line = lineno;
				continue;
			}
			if (comment || strspn(t, " \t\r\n") == strlen(t))
				continue;
			cur.line = lineno;
		} else if (expect) {
			rc = err_set(DRE_EINVAL, "%s:%u: '-- expect:' inside a statement: the statement of line %u does not end "
						 "with ';' at the end of a line",
				     path, lineno, cur.line);
			break;
		}
		char *grown = realloc(sql, sql_len + (size_t)got + 1);
		if (grown == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot read %s", path);
			break;
		}
		sql = grown;
		memcpy(sql + sql_len, line, (size_t)got + 1);
		trim_end(sql);
		size_t n = strlen(sql);
		if (n > 0 && sql[n - 1] == ';') {
			sql[n - 1] = '\0';
			trim_end(sql);
			cur.sql = sql;
			sql = NULL;
			sql_len = 0;
			if (*skip_blank(cur.sql) == '\0') {
				rc = err_set(DRE_EINVAL, "%s:%u: an empty statement", path, cur.line);
				break;
			}
			rc = checks_add(out, &cur);
			if (rc < 0)
				break;
			memset(&cur, 0, sizeof cur);
			expecting = false;
		} else {
			sql_len = n; /* trailing blanks dropped; the line's newline back */
			sql[sql_len++] = '\n';
			sql[sql_len] = '\0';
		}
	}
	if (rc == 0 && sql_len > 0)
		rc = err_set(DRE_EINVAL, "%s:%u: the statement does not end with ';' at the end of a line", path,
			     cur.line);
	else if (rc == 0 && expecting)
		rc = err_set(DRE_EINVAL, "%s:%u: '-- expect:' with no statement after it", path, expect_line);
	else if (rc == 0 && out->n == 0)
		rc = err_set(DRE_EINVAL, "%s: no statement (each ends with ';' at the end of a line)", path);
	free(sql);
	free(line);
	if (cur.sql != NULL || cur.value != NULL)
		check_free(&cur);
	return rc;
}

int drill_sql_load(const char *path, drill_checks *out)
{
	struct stat st;
	memset(out, 0, sizeof *out);
	out->path = path;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return err_sys("--sql %s", path);
	int rc = 0;
	if (fstat(fileno(f), &st) < 0)
		rc = err_sys("--sql %s", path);
	else if (!S_ISREG(st.st_mode))
		rc = err_set(DRE_EINVAL, "--sql %s: not a regular file", path);
	else if (st.st_size > CHECKS_MAX_BYTES)
		rc = err_set(DRE_EINVAL, "--sql %s: %lld bytes, more than a check file may have (1 MiB)", path,
			     (long long)st.st_size);
	if (rc == 0)
		rc = sql_read(f, out);
	fclose(f);
	if (rc < 0)
		drill_checks_free(out);
	return rc;
}

void drill_checks_free(drill_checks *c)
{
	for (size_t i = 0; i < c->n; i++)
		check_free(&c->v[i]);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* ---- running them ---- */

static char *strdup_line(const char *s)
{
	size_t n = strlen(s);
	while (n > 0 && strchr(" \r\n", s[n - 1]))
		n--;
	char *out = strndup(s, n);
	for (char *p = out; p && *p; p++)
		if (*p == '\n')
			*p = ' ';
	return out;
}

static char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdup_printf(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return strdup(text);
}

/* Judges a result that ran: the check passes, or r->error says why not. */
static void judge(const drill_check *c, PGresult *res, drill_check_result *r)
{
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r->error = strdup_line(PQresultErrorMessage(res));
		return;
	}
	if (c->op[0] == '\0') {
		r->passed = true;
		return;
	}
	if (st != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 1) {
		r->error = strdup_printf("returned %d rows, expected one to compare with %s %s",
					 st == PGRES_TUPLES_OK ? PQntuples(res) : 0, c->op, c->value);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		r->error = strdup_printf("returned NULL, expected %s %s", c->op, c->value);
		return;
	}
	r->got = strdup(PQgetvalue(res, 0, 0));
	if (r->got == NULL)
		return;
	int cmp;
	if (c->text) {
		cmp = strcmp(r->got, c->value);
	} else {
		char *end;
		errno = 0;
		double v = strtod(r->got, &end);
		if (end == r->got || *end != '\0' || errno != 0) {
			r->error = strdup_printf("returned '%s', not a number to compare with %s %s", r->got, c->op,
						 c->value);
			return;
		}
		cmp = v < c->number ? -1 : v > c->number ? 1 : 0;
	}
	const char *op = c->op;
	r->passed = strcmp(op, "=") == 0    ? cmp == 0
		    : strcmp(op, "!=") == 0 ? cmp != 0
		    : strcmp(op, "<") == 0  ? cmp < 0
		    : strcmp(op, "<=") == 0 ? cmp <= 0
		    : strcmp(op, ">") == 0  ? cmp > 0
					    : cmp >= 0;
	if (!r->passed)
		r->error = strdup_printf("expected %s %s%s%s, got %s%s%s", op, c->text ? "'" : "", c->value,
					 c->text ? "'" : "", c->text ? "'" : "", r->got, c->text ? "'" : "");
}

int drill_sql_run(struct drill *d, const char *db)
{
	const drill_checks *ck = d->o->checks;
	drill_report *rep = d->rep;
	if (ck == NULL || ck->n == 0)
		return 0;
	rep->checks = calloc(ck->n, sizeof *rep->checks);
	if (rep->checks == NULL)
		return err_set(DRE_ENOMEM, "cannot hold the results of %zu checks", ck->n);
	rep->nchecks = ck->n;
	PGconn *c;
	TRY(drill_pg_connect(d, db, &c));
	int rc = 0;
	const drill_check_result *first = NULL;
	for (size_t i = 0; i < ck->n && rc == 0; i++) {
		drill_check_result *r = &rep->checks[i];
		char what[64];
		PGresult *res;
		r->check = &ck->v[i];
		snprintf(what, sizeof what, "check of %s line %u", ck->path, r->check->line);
		double t0 = (double)meter_now_ns();
		rc = drill_pg_exec(d, c, what, r->check->sql, &res);
		if (rc < 0)
			break;
		r->ran = true;
		judge(r->check, res, r);
		PQclear(res);
		r->seconds = ((double)meter_now_ns() - t0) / 1e9;
		if (!r->passed) {
			rep->checks_failed++;
			if (r->error == NULL)
				r->error = strdup("out of memory");
			if (first == NULL)
				first = r;
		}
	}
	PQfinish(c);
	TRY(rc);
	if (first != NULL)
		return err_set(DRE_ECORRUPT, "%zu of %zu --sql checks failed; the first, %s line %u: %s",
			       rep->checks_failed, rep->nchecks, ck->path, first->check->line, first->error);
	return 0;
}
