/*
 * metrics.c — the metrics file (metrics.h): a strict reader and a writer of the Prometheus text exposition
 * format (version 0.0.4), the merge under a lock, and what each kind of command records.
 *
 * The reader accepts what the format allows and node_exporter's textfile collector takes: comments, HELP and
 * TYPE lines before a family's samples, each family's lines in one group, label values with the escapes \\ \"
 * \n. It refuses sample timestamps (node_exporter refuses them too), a sample without a TYPE line, duplicate
 * series, and anything it cannot read, naming the line; the merge then writes the file afresh.
 */
#include "cli/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/pipeline/meter.h"
#include "engine/repo/bytes.h"
#include "engine/repo/localfile.h"
#include "engine/stats.h"

#define METRICS_MAX_FAMILIES 4096
#define METRICS_MAX_SERIES 10000 /* ~1000 backup names; keeps the duplicate search short */
#define METRICS_MAX_LABELS 32

static const struct known {
	const char *name, *type;
	bool per_name;
	const char *help;
} known[] = {
#define METRICS_KNOWN(n, t, l, h) {n, t, sizeof(l) > 1, h},
	METRICS_FAMILIES(METRICS_KNOWN)
#undef METRICS_KNOWN
};
#define NKNOWN (sizeof known / sizeof known[0])

typedef struct family {
	char *name;
	char *type, *help;     /* as read, help still escaped; NULL when absent. A known family prints the table's. */
	const struct known *k; /* NULL: a family of another writer, kept as read */
	bool had_series, closed; /* reading: its group began, and another family's began after it */
} family;

typedef struct series {
	size_t fam;
	char *name;   /* the sample's name: the family's, or with a histogram or summary suffix */
	char *labels; /* canonical: name="escaped value" pairs sorted by label name, comma-separated */
	double value;
} series;

struct metrics {
	family *fams;
	size_t nfams, capf;
	series *ser;
	size_t nser, caps;
};

int metrics_new(metrics **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : err_set(DRE_ENOMEM, "out of memory for the metrics");
}

static void metrics_clear(metrics *m)
{
	for (size_t i = 0; i < m->nfams; i++) {
		free(m->fams[i].name);
		free(m->fams[i].type);
		free(m->fams[i].help);
	}
	for (size_t i = 0; i < m->nser; i++) {
		free(m->ser[i].name);
		free(m->ser[i].labels);
	}
	free(m->fams);
	free(m->ser);
	memset(m, 0, sizeof *m);
}

void metrics_free(metrics *m)
{
	if (m == NULL)
		return;
	metrics_clear(m);
	free(m);
}

static const struct known *known_family(const char *name)
{
	for (size_t i = 0; i < NKNOWN; i++)
		if (strcmp(known[i].name, name) == 0)
			return &known[i];
	return NULL;
}

static char *strndup_or_null(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* The family called name (n bytes), created when missing; SIZE_MAX when out of room. */
static size_t family_get(metrics *m, const char *name, size_t n)
{
	for (size_t i = 0; i < m->nfams; i++)
		if (strlen(m->fams[i].name) == n && memcmp(m->fams[i].name, name, n) == 0)
			return i;
	if (m->nfams == METRICS_MAX_FAMILIES || !array_room(&m->fams, &m->capf, m->nfams, sizeof *m->fams, 32))
		return SIZE_MAX;
	family *f = &m->fams[m->nfams];
	memset(f, 0, sizeof *f);
	if ((f->name = strndup_or_null(name, n)) == NULL)
		return SIZE_MAX;
	f->k = known_family(f->name);
	return m->nfams++;
}

static series *series_find(metrics *m, const char *name, const char *labels)
{
	for (size_t i = 0; i < m->nser; i++)
		if (strcmp(m->ser[i].name, name) == 0 && strcmp(m->ser[i].labels, labels) == 0)
			return &m->ser[i];
	return NULL;
}

/* Adds a series (name and labels are taken over, freed on failure). */
static int series_add(metrics *m, size_t fam, char *name, char *labels, double value)
{
	if (name == NULL || labels == NULL || m->nser == METRICS_MAX_SERIES ||
	    !array_room(&m->ser, &m->caps, m->nser, sizeof *m->ser, 64)) {
		free(name);
		free(labels);
		return err_set(DRE_ENOMEM, "out of memory for the metrics (or more than %d series)", METRICS_MAX_SERIES);
	}
	m->ser[m->nser++] = (series){fam, name, labels, value};
	return 0;
}

/* ---- labels ---- */

/* Appends value to b escaped for a label: \\, \" and \n. */
static void escape_label(buf *b, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			buf_u8(b, '\\');
		if (*p == '\n')
			buf_put(b, "\\n", 2);
		else
			buf_u8(b, (uint8_t)*p);
	}
}

/* repository="…"[,name="…"] sorted: name before repository. */
static char *dre_labels(const char *repository, const char *name)
{
	buf b = {0};
	if (name != NULL) {
		buf_put(&b, "name=\"", 6);
		escape_label(&b, name);
		buf_put(&b, "\",", 2);
	}
	buf_put(&b, "repository=\"", 12);
	escape_label(&b, repository);
	buf_put(&b, "\"", 2); /* with the terminating NUL */
	if (b.failed) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

int metrics_set(metrics *m, const char *family_name, const char *repository, const char *name, double value)
{
	const struct known *k = known_family(family_name);
	if (k == NULL || k->per_name != (name != NULL))
		return err_set(DRE_EINVAL, "metrics: %s is not a dre family%s", family_name,
			       k ? (k->per_name ? " without a name" : " with a name") : "");
	size_t fam = family_get(m, family_name, strlen(family_name));
	char *labels = dre_labels(repository, name);
	if (fam == SIZE_MAX || labels == NULL) {
		free(labels);
		return err_set(DRE_ENOMEM, "out of memory for the metrics");
	}
	series *s = series_find(m, family_name, labels);
	if (s != NULL) {
		free(labels);
		s->value = value;
		return 0;
	}
	return series_add(m, fam, strdup(family_name), labels, value);
}

/* Adds delta to the series (a counter), from 0 when it is not there yet. */
static int metrics_add(metrics *m, const char *family_name, const char *repository, double delta)
{
	char *labels = dre_labels(repository, NULL);
	if (labels == NULL)
		return err_set(DRE_ENOMEM, "out of memory for the metrics");
	series *s = series_find(m, family_name, labels);
	free(labels);
	return metrics_set(m, family_name, repository, NULL, (s ? s->value : 0) + delta);
}

/* ---- writing ---- */

/* Integers as integers (counters, byte counts, whole seconds), others with enough digits for milliseconds. */
static void fmt_value(double v, char out[48])
{
	if (isnan(v))
		snprintf(out, 48, "NaN");
	else if (isinf(v))
		snprintf(out, 48, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9e15 && v < 9e15 && v == (double)(int64_t)v)
		snprintf(out, 48, "%" PRId64, (int64_t)v);
	else
		snprintf(out, 48, "%.15g", v);
}

static int series_cmp(const void *a, const void *b, void *arg)
{
	const metrics *m = arg;
	const series *x = &m->ser[*(const size_t *)a], *y = &m->ser[*(const size_t *)b];
	int c = strcmp(m->fams[x->fam].name, m->fams[y->fam].name);
	if (c == 0)
		c = strcmp(x->name, y->name);
	if (c == 0)
		c = strcmp(x->labels, y->labels);
	return c;
}

int metrics_print(const metrics *m, FILE *f)
{
	size_t *order = malloc((m->nser ? m->nser : 1) * sizeof *order);
	if (order == NULL)
		return err_set(DRE_ENOMEM, "out of memory for the metrics");
	for (size_t i = 0; i < m->nser; i++)
		order[i] = i;
	qsort_r(order, m->nser, sizeof *order, series_cmp, (void *)m);
	size_t last_fam = SIZE_MAX;
	for (size_t i = 0; i < m->nser; i++) {
		const series *s = &m->ser[order[i]];
		const family *fam = &m->fams[s->fam];
		if (s->fam != last_fam) {
			const char *help = fam->k ? fam->k->help : fam->help, *type = fam->k ? fam->k->type : fam->type;
			if (help != NULL)
				fprintf(f, "# HELP %s %s\n", fam->name, help);
			fprintf(f, "# TYPE %s %s\n", fam->name, type);
			last_fam = s->fam;
		}
		char v[48];
		fmt_value(s->value, v);
		fprintf(f, "%s%s%s%s %s\n", s->name, *s->labels ? "{" : "", s->labels, *s->labels ? "}" : "", v);
	}
	free(order);
	if (ferror(f))
		return err_sys("cannot write the metrics");
	return 0;
}

/* ---- reading ---- */

typedef struct reader {
	metrics *m;
	const char *p, *end; /* the rest of the current line */
	int line;
	size_t cur_fam; /* the family whose group is open; SIZE_MAX before the first */
} reader;

static int bad(const reader *r, const char *what)
{
	return err_set(DRE_ECORRUPT, "line %d: %s", r->line, what);
}

static void skip_blanks(reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
		r->p++;
}

static bool name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
	       (!first && c >= '0' && c <= '9');
}

/* A metric name (colon allowed) or label name at r->p; its length, 0 when there is none. */
static size_t take_name(reader *r, bool colon)
{
	const char *s = r->p;
	while (r->p < r->end && name_char(*r->p, r->p == s, colon))
		r->p++;
	return (size_t)(r->p - s);
}

/* The token up to the next blank. */
static size_t take_token(reader *r, const char **tok)
{
	*tok = r->p;
	while (r->p < r->end && *r->p != ' ' && *r->p != '\t')
		r->p++;
	return (size_t)(r->p - *tok);
}

/* Opens the group of family fam: a family's lines must be one group. */
static int enter_family(reader *r, size_t fam)
{
	if (fam == r->cur_fam)
		return 0;
	if (r->m->fams[fam].closed)
		return bad(r, "the lines of a metric family are not in one group");
	if (r->cur_fam != SIZE_MAX)
		r->m->fams[r->cur_fam].closed = true;
	r->cur_fam = fam;
	return 0;
}

static bool help_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\\' && (++i == n || (s[i] != '\\' && s[i] != 'n')))
			return false;
	return true;
}

/* "# HELP name text", "# TYPE name type", or a comment. */
static int read_comment(reader *r)
{
	r->p++;
	skip_blanks(r);
	const char *kw;
	size_t kwlen = take_token(r, &kw);
	bool help = kwlen == 4 && memcmp(kw, "HELP", 4) == 0, type = kwlen == 4 && memcmp(kw, "TYPE", 4) == 0;
	if (!help && !type)
		return 0;
	skip_blanks(r);
	const char *name = r->p;
	size_t n = take_name(r, true);
	if (n == 0 || (r->p < r->end && *r->p != ' ' && *r->p != '\t'))
		return bad(r, help ? "HELP without a valid metric name" : "TYPE without a valid metric name");
	size_t fam = family_get(r->m, name, n);
	if (fam == SIZE_MAX)
		return err_set(DRE_ENOMEM, "out of memory for the metrics (or more than %d families)",
			       METRICS_MAX_FAMILIES);
	TRY(enter_family(r, fam));
	family *f = &r->m->fams[fam];
	if (f->had_series)
		return bad(r, "HELP or TYPE after the family's samples");
	if (r->p < r->end)
		r->p++; /* the one blank before the text */
	if (help) {
		if (f->help != NULL)
			return bad(r, "a second HELP line for the family");
		if (!help_valid(r->p, (size_t)(r->end - r->p)))
			return bad(r, "HELP text with a backslash that is not \\\\ or \\n");
		f->help = strndup_or_null(r->p, (size_t)(r->end - r->p));
		return f->help ? 0 : err_set(DRE_ENOMEM, "out of memory for the metrics");
	}
	skip_blanks(r);
	const char *t;
	size_t tn = take_token(r, &t);
	skip_blanks(r);
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	bool ok = false;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		ok |= tn == strlen(types[i]) && memcmp(t, types[i], tn) == 0;
	if (!ok || r->p != r->end)
		return bad(r, "TYPE is not one of counter, gauge, histogram, summary, untyped");
	if (f->type != NULL)
		return bad(r, "a second TYPE line for the family");
	f->type = strndup_or_null(t, tn);
	return f->type ? 0 : err_set(DRE_ENOMEM, "out of memory for the metrics");
}

/* The family a sample called name (n bytes) belongs to: the one of that name, or a histogram or summary that
 * name extends with _bucket, _sum or _count. SIZE_MAX when no family has a TYPE line for it. */
static size_t sample_family(const metrics *m, const char *name, size_t n)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	for (size_t i = 0; i < m->nfams; i++) {
		const family *f = &m->fams[i];
		size_t fl = strlen(f->name);
		if (f->type == NULL || fl > n || memcmp(f->name, name, fl) != 0)
			continue;
		if (fl == n)
			return i;
		if (strcmp(f->type, "histogram") != 0 && strcmp(f->type, "summary") != 0)
			continue;
		for (size_t k = 0; k < 3; k++)
			if (n - fl == strlen(suffixes[k]) && memcmp(name + fl, suffixes[k], n - fl) == 0 &&
			    (k != 0 || strcmp(f->type, "histogram") == 0))
				return i;
	}
	return SIZE_MAX;
}

struct label_ref {
	const char *name, *value; /* value still escaped, as the canonical form writes it */
	size_t nlen, vlen;
};

static int label_cmp(const void *a, const void *b)
{
	const struct label_ref *x = a, *y = b;
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* {name="value",...} at r->p into the canonical form (labels sorted by name). */
static int read_labels(reader *r, char **out)
{
	struct label_ref l[METRICS_MAX_LABELS];
	size_t n = 0;
	r->p++; /* { */
	for (;;) {
		skip_blanks(r);
		if (r->p < r->end && *r->p == '}')
			break;
		if (n == METRICS_MAX_LABELS)
			return bad(r, "more than 32 labels");
		l[n].name = r->p;
		if ((l[n].nlen = take_name(r, false)) == 0)
			return bad(r, "a label without a valid name");
		skip_blanks(r);
		if (r->p + 1 >= r->end || r->p[0] != '=')
			return bad(r, "a label without '='");
		r->p++;
		skip_blanks(r);
		if (r->p >= r->end || *r->p != '"')
			return bad(r, "a label value without its opening quote");
		l[n].value = ++r->p;
		while (r->p < r->end && *r->p != '"') {
			if (*r->p == '\\' && (r->p + 1 >= r->end || (r->p[1] != '\\' && r->p[1] != '"' && r->p[1] != 'n')))
				return bad(r, "a label value with a backslash that is not \\\\, \\\" or \\n");
			r->p += *r->p == '\\' ? 2 : 1;
		}
		if (r->p >= r->end)
			return bad(r, "a label value without its closing quote");
		l[n].vlen = (size_t)(r->p - l[n].value);
		r->p++;
		for (size_t i = 0; i < n; i++)
			if (label_cmp(&l[i], &l[n]) == 0)
				return bad(r, "a label given twice");
		n++;
		skip_blanks(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p >= r->end || *r->p != '}')
			return bad(r, "labels not closed by '}'");
		break;
	}
	r->p++; /* } */
	qsort(l, n, sizeof *l, label_cmp);
	buf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_u8(&b, ',');
		buf_put(&b, l[i].name, l[i].nlen);
		buf_put(&b, "=\"", 2);
		buf_put(&b, l[i].value, l[i].vlen);
		buf_u8(&b, '"');
	}
	buf_u8(&b, '\0');
	if (b.failed) {
		buf_free(&b);
		return err_set(DRE_ENOMEM, "out of memory for the metrics");
	}
	*out = (char *)b.data;
	return 0;
}

static int read_value(reader *r, double *v)
{
	const char *tok;
	char text[64];
	size_t n = take_token(r, &tok);
	if (n == 0 || n >= sizeof text)
		return bad(r, "a sample without a value");
	memcpy(text, tok, n);
	text[n] = '\0';
	if (strcmp(text, "NaN") == 0 || strcmp(text, "+Inf") == 0 || strcmp(text, "-Inf") == 0) {
		*v = text[0] == 'N' ? NAN : text[0] == '+' ? INFINITY : -INFINITY;
		return 0;
	}
	char *end;
	errno = 0;
	*v = strtod(text, &end);
	if (end != text + n || strpbrk(text, "xXnNiI") != NULL) /* no hex, no spelled-out nan or inf */
		return bad(r, "a sample value that is not a number");
	return 0;
}

static int read_sample(reader *r)
{
	const char *name = r->p;
	size_t n = take_name(r, true);
	char *labels = NULL;
	double v = 0;
	if (n == 0)
		return bad(r, "a line that is neither a comment nor a sample");
	size_t fam = sample_family(r->m, name, n);
	if (fam == SIZE_MAX)
		return bad(r, "a sample without a TYPE line before it");
	TRY(enter_family(r, fam));
	skip_blanks(r);
	if (r->p < r->end && *r->p == '{')
		TRY(read_labels(r, &labels));
	skip_blanks(r);
	int rc = read_value(r, &v);
	skip_blanks(r);
	if (rc == 0 && r->p != r->end)
		rc = bad(r, "a sample with a timestamp (node_exporter refuses them) or trailing text");
	char *sname = strndup_or_null(name, n);
	if (rc == 0 && sname != NULL && series_find(r->m, sname, labels ? labels : "") != NULL)
		rc = bad(r, "a series given twice");
	if (rc < 0) {
		free(labels);
		free(sname);
		return rc;
	}
	r->m->fams[fam].had_series = true;
	return series_add(r->m, fam, sname, labels ? labels : strdup(""), v);
}

/* Reads text (len bytes) into m, which must be empty; DRE_ECORRUPT names the first line it cannot take. */
static int metrics_parse(metrics *m, const char *text, size_t len)
{
	reader r = {.m = m, .cur_fam = SIZE_MAX};
	if (memchr(text, '\0', len) != NULL)
		return err_set(DRE_ECORRUPT, "a NUL byte: not a text file");
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		r.p = p;
		r.end = nl ? nl : end;
		r.line++;
		p = nl ? nl + 1 : end;
		skip_blanks(&r);
		if (r.p == r.end)
			continue;
		TRY(*r.p == '#' ? read_comment(&r) : read_sample(&r));
	}
	if (len > 0 && text[len - 1] != '\n')
		return err_set(DRE_ECORRUPT, "the last line has no newline (a partly written file)");
	return 0;
}

/* ---- the file ---- */

/* FILE's contents into m; a file that does not parse leaves m empty and says so in *why. */
static int load_file(const char *path, metrics *m, char *why, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	why[0] = '\0';
	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys("cannot read %s", path);
	if (fstat(fd, &st) < 0) {
		int rc = err_sys("cannot read %s", path);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)METRICS_FILE_MAX) {
		close(fd);
		snprintf(why, cap, "%s", S_ISREG(st.st_mode) ? "larger than 4 MiB" : "not a regular file");
		return S_ISREG(st.st_mode) ? 0 : err_set(DRE_EINVAL, "%s is not a regular file", path);
	}
	char *text = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	int rc = 0;
	if (text == NULL)
		rc = err_set(DRE_ENOMEM, "out of memory reading %s", path);
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = err_sys("cannot read %s", path);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	if (rc == 0 && metrics_parse(m, text, got) < 0) {
		snprintf(why, cap, "%s", err_msg());
		metrics_clear(m);
	}
	free(text);
	return rc;
}

/* Writes m to path through a temporary name, fsync, rename, fsync of the directory; mode 0644 whatever the umask,
 * since node_exporter reads it. */
static int write_file(const char *path, const metrics *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return err_set(DRE_ENOMEM, "cannot render the metrics for %s", path);
	int rc = metrics_print(m, f);
	if (fclose(f) != 0 && rc == 0)
		rc = err_set(DRE_ENOMEM, "cannot render the metrics for %s", path);
	struct iovec iov = {.iov_base = text, .iov_len = len};
	if (rc == 0)
		rc = localfile_write(path, &iov, 1, 0644, true);
	free(text);
	return rc;
}

typedef struct metric_op {
	const char *family;
	double value;
	bool add; /* a counter: add value */
} metric_op;

/* Under the lock: read, apply ops, write. */
static int merge(const char *path, const char *repository, const char *name, const metric_op *ops, size_t nops)
{
	char lock[PATH_MAX], why[512];
	if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock)
		return err_set(DRE_EINVAL, "metrics file name %s is too long", path);
	/* read-only is enough for flock, and lets another user take the lock on a file root created */
	int fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_sys("cannot open the lock file %s", lock);
	struct stat st; /* under umask 0077 (archive_command) it would lock other users out */
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0777) != 0644)
		fchmod(fd, 0644);
	int rc;
	while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = err_sys("cannot lock %s", lock);
		close(fd);
		return rc;
	}
	metrics m = {0};
	rc = load_file(path, &m, why, sizeof why);
	if (rc == 0 && why[0])
		fprintf(stderr, "dre: warning: metrics file %s: %s; writing it afresh\n", path, why);
	for (size_t i = 0; rc == 0 && i < nops; i++) {
		bool per_name = known_family(ops[i].family)->per_name;
		rc = ops[i].add ? metrics_add(&m, ops[i].family, repository, ops[i].value)
				: metrics_set(&m, ops[i].family, repository, per_name ? name : NULL, ops[i].value);
	}
	if (rc == 0)
		rc = write_file(path, &m);
	metrics_clear(&m);
	close(fd); /* releases the lock */
	return rc;
}

/* ---- what a run records ---- */

void metrics_repository(cli_ctx *ctx, char *out, size_t cap)
{
	const char *url;
	char abs[PATH_MAX];
	if (cli_repo_url(ctx, &url) < 0) {
		snprintf(out, cap, "%s", "");
		return;
	}
	const char *path = strncmp(url, "file://", 7) == 0 ? url + 7 : strstr(url, "://") ? NULL : url;
	if (path != NULL && realpath(path, abs) != NULL)
		url = abs;
	snprintf(out, cap, "%s", url);
}

/* Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF, which Prometheus refuses) without
 * control characters: what a label value can carry and an alert can show. */
static bool label_text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : (*p & 0xf0) == 0xe0 ? 3 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
			return false;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		if ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0) || (*p == 0xf0 && p[1] < 0x90) ||
		    (*p == 0xf4 && p[1] >= 0x90))
			return false;
		p += n;
	}
	return true;
}

/* Seconds to the millisecond: what a duration or a time in the file needs, and short to read. */
static double milli(double s)
{
	return (double)(int64_t)(s * 1000 + 0.5) / 1000;
}

static double now_seconds(void)
{
	int64_t ms = meter_now_ns() / 1000000; /* milliseconds: readable, enough */
	return (double)ms / 1000;
}

void metrics_repo_size(cli_ctx *ctx, repo *r)
{
	uint64_t objects;
	if (repo_stats_size(r, &objects, &ctx->run.repo_size) < 0)
		fprintf(stderr, "dre: warning: metrics file %s: no repository size: %s\n", ctx->metrics_path, err_msg());
	else
		ctx->run.repo_sized = true;
}

void metrics_record(cli_ctx *ctx, const cli_command *c, const char *first_arg, bool ok, double seconds)
{
	const struct cli_run *run = &ctx->run;
	const char *name = run->name ? run->name : first_arg;
	double now = now_seconds();
	metric_op ops[8];
	size_t n = 0;
	char repository[PATH_MAX + 16];

	switch (c->metric) {
	case CLI_METRIC_NONE: return;
	case CLI_METRIC_BACKUP:
		if (!ok) {
			ops[n++] = (metric_op){"dre_backup_last_failure_timestamp_seconds", now, false};
			break;
		}
		ops[n++] = (metric_op){"dre_backup_last_success_timestamp_seconds", now, false};
		ops[n++] = (metric_op){"dre_backup_duration_seconds", milli(seconds), false};
		if (run->sized) {
			ops[n++] = (metric_op){"dre_backup_size_bytes", (double)run->size, false};
			ops[n++] = (metric_op){"dre_backup_stored_bytes", (double)run->stored, false};
		}
		break;
	case CLI_METRIC_WAL:
		ops[n++] = ok ? (metric_op){"dre_wal_last_archived_timestamp_seconds", now, false}
			      : (metric_op){"dre_wal_archive_failures_total", 1, true};
		break;
	case CLI_METRIC_DRILL:
		ops[n++] = (metric_op){ok ? "dre_drill_last_success_timestamp_seconds"
					  : "dre_drill_last_failure_timestamp_seconds",
				       now, false};
		if (run->rto > 0)
			ops[n++] = (metric_op){"dre_drill_rto_seconds", milli(run->rto), false};
		if (run->mismatches >= 0)
			ops[n++] = (metric_op){"dre_drill_row_mismatches", (double)run->mismatches, false};
		break;
	case CLI_METRIC_CHECK:
		ops[n++] = (metric_op){ok ? "dre_check_last_success_timestamp_seconds"
					  : "dre_check_last_failure_timestamp_seconds",
				       now, false};
		break;
	case CLI_METRIC_WAL_SHOW: /* a gap makes wal-show fail (exit 5): the count is what matters, either way */
		if (run->wal_shown)
			ops[n++] = (metric_op){"dre_wal_missing_segments", (double)run->wal_missing, false};
		break;
	case CLI_METRIC_LIFECYCLE:
		if (run->dry_run)
			break;
		if (strcmp(c->name, "forget") == 0)
			ops[n++] = (metric_op){ok ? "dre_forget_last_success_timestamp_seconds"
						  : "dre_forget_last_failure_timestamp_seconds",
					       now, false};
		else
			ops[n++] = (metric_op){ok ? "dre_prune_last_success_timestamp_seconds"
						  : "dre_prune_last_failure_timestamp_seconds",
					       now, false};
		break;
	}
	if (run->repo_sized)
		ops[n++] = (metric_op){"dre_repository_size_bytes", (double)run->repo_size, false};

	/* a series per name needs a name a label can carry; without one the run is not attributable */
	bool named = name != NULL && *name != '\0' && label_text_ok(name);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (named || !known_family(ops[i].family)->per_name)
			ops[kept++] = ops[i];
	if (kept < n && name != NULL)
		fprintf(stderr, "dre: warning: metrics file %s: the name is not UTF-8 text without control characters; "
				"its per-name metrics are not recorded\n",
			ctx->metrics_path);
	if (kept == 0)
		return;
	metrics_repository(ctx, repository, sizeof repository);
	if (!label_text_ok(repository)) {
		fprintf(stderr, "dre: warning: metrics file %s not updated: the repository's name is not UTF-8 text without "
				"control characters\n",
			ctx->metrics_path);
		return;
	}
	if (merge(ctx->metrics_path, repository, named ? name : NULL, ops, kept) < 0)
		fprintf(stderr, "dre: warning: metrics file %s not updated: %s\n", ctx->metrics_path, err_msg());
}
