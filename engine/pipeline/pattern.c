/*
 * pattern.c — path patterns (pattern.h).
 *
 * A pattern is split into components once, when added, and each component checked and classified then, so that
 * matching neither allocates nor meets a malformed glob. The glob matcher is dre's own rather than fnmatch(3):
 * it works on a component in place (path components are not NUL-terminated), on bytes whatever the locale, and
 * the checks that refuse what fnmatch would silently take literally (an unclosed `[`) share its parser.
 */
#include "engine/pipeline/pattern.h"

#include "store/err.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum comp_kind {
	COMP_LITERAL,   /* no wildcard and no escape: compared as bytes */
	COMP_SUFFIX,    /* `*` then bytes, the usual `*.tmp`: compared as the name's end */
	COMP_GLOB,      /* one component's glob */
	COMP_ANY_DEPTH, /* `**`: any number of whole components */
};

struct comp {
	uint32_t off, len; /* in the pattern's text */
	enum comp_kind kind;
};

/* A pattern without a leading "/" is stored with a `**` in front: "any run of components" is then "the first
 * components, after any number of others", and one matcher serves both. */
struct pattern {
	bool negated;
	bool dir_only;
	size_t ncomps;
	const char *text; /* the pattern without its `!`, stored after comps */
	struct comp comps[];
};

struct pattern_set {
	struct pattern **v;
	size_t n, cap;
};

/* ---- globs within one component ---- */

static int (*class_fn(const char *name, size_t len))(int)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} classes[] = {
		{"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank}, {"cntrl", iscntrl},
		{"digit", isdigit}, {"graph", isgraph}, {"lower", islower}, {"print", isprint},
		{"punct", ispunct}, {"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit},
	};
	for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
		if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0)
			return classes[i].fn;
	return NULL;
}

/*
 * The bracket expression at p (its `[`), ending before pe. Returns the byte after its closing `]`, or NULL with
 * *why set when it is malformed. With c ≥ 0, *hit says whether byte c is in it. The same code checks a pattern
 * when it is added (c = -1) and matches it later, so a glob that was accepted is read the same way both times.
 */
static const char *bracket_scan(const char *p, const char *pe, int c, bool *hit, const char **why)
{
	bool negate = false, in = false;
	p++;
	if (p < pe && (*p == '!' || *p == '^')) {
		negate = true;
		p++;
	}
	for (bool first = true;; first = false) {
		if (p >= pe) {
			*why = "unclosed '[' (write \\[ for a literal one)";
			return NULL;
		}
		if (*p == ']' && !first)
			break;
		if (*p == '[' && p + 1 < pe && (p[1] == '=' || p[1] == '.')) {
			*why = "[= =] and [. .] are not supported";
			return NULL;
		}
		if (*p == '[' && p + 1 < pe && p[1] == ':') {
			const char *name = p + 2, *q = name;
			while (q + 1 < pe && !(q[0] == ':' && q[1] == ']'))
				q++;
			if (q + 1 >= pe) {
				*why = "unclosed '[:'";
				return NULL;
			}
			int (*fn)(int) = class_fn(name, (size_t)(q - name));
			if (!fn) {
				*why = "unknown character class (alnum alpha blank cntrl digit graph lower print punct "
				       "space upper xdigit)";
				return NULL;
			}
			if (c >= 0 && fn(c))
				in = true;
			p = q + 2;
			continue;
		}
		if (*p == '\\' && ++p >= pe)
			break; /* reported as unclosed below */
		unsigned char lo = (unsigned char)*p++, hi = lo;
		if (p + 1 < pe && *p == '-' && p[1] != ']') {
			p++;
			if (*p == '\\' && ++p >= pe)
				break;
			hi = (unsigned char)*p++;
			if (hi < lo) {
				*why = "backwards range in '[...]'";
				return NULL;
			}
		}
		if (c >= lo && c <= hi)
			in = true;
	}
	if (p >= pe) {
		*why = "unclosed '[' (write \\[ for a literal one)";
		return NULL;
	}
	*hit = in != negate;
	return p + 1;
}

/* Whether the component glob [p, pe) matches the name [s, se). The glob was checked when it was added. */
static bool glob_match(const char *p, const char *pe, const char *s, const char *se)
{
	/* One saved star suffices: every other token matches exactly one byte, so retrying from the last `*` with
	 * one more byte swallowed explores every way the earlier ones could have matched too. */
	const char *star_p = NULL, *star_s = NULL;
	while (s < se) {
		if (p < pe) {
			if (*p == '*') {
				star_p = ++p;
				star_s = s;
				continue;
			}
			if (*p == '?') {
				p++;
				s++;
				continue;
			}
			if (*p == '[') {
				bool hit = false;
				const char *why;
				const char *q = bracket_scan(p, pe, (unsigned char)*s, &hit, &why);
				if (q && hit) {
					p = q;
					s++;
					continue;
				}
			} else {
				const char *lit = *p == '\\' && p + 1 < pe ? p + 1 : p;
				if (*lit == *s) {
					p = lit + 1;
					s++;
					continue;
				}
			}
		}
		if (!star_p)
			return false;
		p = star_p;
		s = ++star_s;
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

/* NULL when the component glob [p, pe) is well formed, else why not. */
static const char *glob_check(const char *p, const char *pe)
{
	while (p < pe) {
		if (*p == '\\') {
			if (p + 1 >= pe)
				return "a trailing '\\' escapes nothing";
			p += 2;
		} else if (*p == '[') {
			bool hit;
			const char *why = NULL;
			p = bracket_scan(p, pe, -1, &hit, &why);
			if (!p)
				return why;
		} else {
			p++;
		}
	}
	return NULL;
}

/* Whether [p, pe) needs glob_match, rather than comparing bytes. */
static bool has_wildcard(const char *p, const char *pe)
{
	for (; p < pe; p++)
		if (*p == '*' || *p == '?' || *p == '[' || *p == '\\')
			return true;
	return false;
}

/* ---- whole patterns against paths ---- */

static const char *skip_slashes(const char *s, const char *end)
{
	while (s < end && *s == '/')
		s++;
	return s;
}

/* The start of the path's next component from s: slashes and "." components are passed over, as "/srv/./a" and
 * a walk's "/srv/models/." name the same files as "/srv/a" and "/srv/models" (and `.*` must not take the latter). */
static const char *skip_to_comp(const char *s, const char *end)
{
	for (;;) {
		s = skip_slashes(s, end);
		if (s == end || s[0] != '.' || (s + 1 < end && s[1] != '/'))
			return s;
		s++;
	}
}

/* A loop, not memchr: components are a few bytes long, shorter than memchr's set-up. */
static const char *comp_end(const char *s, const char *end)
{
	while (s < end && *s != '/')
		s++;
	return s;
}

struct target {
	const char *end;
	bool is_dir;
	bool open_end; /* the path is a directory whose descendants count too (the *_below questions) */
};

static bool comp_match(const struct pattern *pat, const struct comp *c, const char *s, const char *e)
{
	const char *p = pat->text + c->off;
	size_t n = (size_t)(e - s);
	if (c->kind == COMP_LITERAL)
		return n == c->len && memcmp(p, s, n) == 0;
	if (c->kind == COMP_SUFFIX)
		return n >= c->len - 1 && memcmp(p + 1, e - (c->len - 1), c->len - 1) == 0;
	return glob_match(p, p + c->len, s, e);
}

/*
 * Whether pat matches the path's components from s on, ending anywhere: the pattern may run out before the path
 * does (it matched an ancestor, which is a directory), or at its end (the path itself, where a trailing-"/" pattern
 * needs is_dir). With open_end, also when the path runs out first: some descendant could supply the components
 * still wanted.
 *
 * Every component but `**` takes exactly one path component, so, as with `*` in glob_match, only the last `**`
 * needs retrying with one component more: an earlier `**` that took fewer could only leave the later one more to
 * take. This keeps a pattern of several `**` linear in the path's components rather than exponential.
 */
static bool match_from(const struct pattern *pat, const char *s, const struct target *t)
{
	size_t pi = 0, retry_pi = 0;
	const char *retry_s = NULL;
	for (;;) {
		s = skip_to_comp(s, t->end);
		if (pi == pat->ncomps) {
			if (s < t->end || !pat->dir_only || t->is_dir)
				return true;
		} else if (pat->comps[pi].kind == COMP_ANY_DEPTH) {
			retry_pi = ++pi;
			retry_s = s;
			continue;
		} else if (s == t->end) {
			if (t->open_end)
				return true;
		} else {
			const char *e = comp_end(s, t->end);
			if (comp_match(pat, &pat->comps[pi], s, e)) {
				s = e;
				pi++;
				continue;
			}
		}
		if (!retry_s || retry_s == t->end)
			return false;
		retry_s = skip_to_comp(comp_end(retry_s, t->end), t->end);
		s = retry_s;
		pi = retry_pi;
	}
}

/* Whether pat matches some path strictly below directory dir (a pattern matching dir itself does). */
static bool could_match_below(const struct pattern *pat, const char *dir)
{
	struct target t = {dir + strlen(dir), true, true};
	return match_from(pat, dir, &t);
}

/* The index of the last pattern matching path, or ps->n when none does. The root has no component to match, not
 * even for `**`. */
static size_t last_match(const pattern_set *ps, const char *path, bool is_dir)
{
	struct target t = {path + strlen(path), is_dir, false};
	if (skip_to_comp(path, t.end) == t.end)
		return ps->n;
	for (size_t i = ps->n; i-- > 0;)
		if (match_from(ps->v[i], path, &t))
			return i;
	return ps->n;
}

bool pattern_set_match(const pattern_set *ps, const char *path, bool is_dir)
{
	size_t k = last_match(ps, path, is_dir);
	return k < ps->n && !ps->v[k]->negated;
}

/*
 * Below dir, every pattern that matches dir still matches (through the ancestor dir), so the last of them, k, is
 * overruled only by a later pattern that matches the descendant itself: the verdict below can differ from dir's
 * only through a pattern after k of the opposite kind that could match below dir.
 */
static bool may_differ_below(const pattern_set *ps, const char *dir, bool want_match)
{
	size_t k = last_match(ps, dir, true);
	bool dir_matches = k < ps->n && !ps->v[k]->negated;
	if (dir_matches == want_match)
		return true;
	for (size_t j = k < ps->n ? k + 1 : 0; j < ps->n; j++)
		if (ps->v[j]->negated != want_match && could_match_below(ps->v[j], dir))
			return true;
	return false;
}

bool pattern_set_may_match_below(const pattern_set *ps, const char *dir)
{
	return may_differ_below(ps, dir, true);
}

bool pattern_set_may_unmatch_below(const pattern_set *ps, const char *dir)
{
	return may_differ_below(ps, dir, false);
}

bool pattern_set_empty(const pattern_set *ps)
{
	return ps->n == 0;
}

/* ---- building a set ---- */

int pattern_set_new(pattern_set **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : err_set(DRE_ENOMEM, "pattern set: out of memory");
}

void pattern_set_free(pattern_set *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		free(ps->v[i]);
	free(ps->v);
	free(ps);
}

static int bad_pattern(const char *where, const char *pattern, const char *why)
{
	return err_set(DRE_EINVAL, "%s: bad pattern '%.200s%s': %s", where, pattern, strlen(pattern) > 200 ? "..." : "",
		       why);
}

int pattern_set_add(pattern_set *ps, const char *pattern, const char *where)
{
	if (!where)
		where = "pattern";
	size_t len = strlen(pattern);
	if (len > PATTERN_MAX)
		return err_set(DRE_EINVAL, "%s: bad pattern '%.200s...': longer than %d bytes, so it cannot match a path",
			       where, pattern, PATTERN_MAX);
	bool negated = pattern[0] == '!';
	const char *body = pattern + negated;
	if (*body == '\0')
		return bad_pattern(where, pattern, "empty pattern");

	size_t body_len = strlen(body), max_comps = 2; /* a `**` put in front, and one more than the slashes */
	for (size_t i = 0; i < body_len; i++)
		max_comps += body[i] == '/';
	struct pattern *pat = malloc(sizeof *pat + max_comps * sizeof pat->comps[0] + body_len + 1);
	if (!pat)
		return err_set(DRE_ENOMEM, "%s: pattern: out of memory", where);
	char *text = (char *)&pat->comps[max_comps];
	memcpy(text, body, body_len + 1);
	pat->text = text;
	pat->negated = negated;
	pat->dir_only = body[body_len - 1] == '/';
	pat->ncomps = 0;
	if (body[0] != '/')
		pat->comps[pat->ncomps++] = (struct comp){0, 0, COMP_ANY_DEPTH};

	const char *end = text + body_len, *why = NULL;
	size_t seen = 0; /* components of the pattern as written */
	for (const char *s = skip_slashes(text, end); s < end && !why; s = skip_slashes(comp_end(s, end), end)) {
		const char *e = comp_end(s, end);
		size_t n = (size_t)(e - s);
		struct comp c = {(uint32_t)(s - text), (uint32_t)n, COMP_LITERAL};
		seen++;
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
			why = "a '.' or '..' component (write the path from / without them, or a name without \"/\")";
		} else if (n == 2 && s[0] == '*' && s[1] == '*') {
			c.kind = COMP_ANY_DEPTH;
			if (pat->ncomps > 0 && pat->comps[pat->ncomps - 1].kind == COMP_ANY_DEPTH)
				continue; /* `**` twice is `**` */
		} else if ((why = glob_check(s, e)) == NULL && has_wildcard(s, e)) {
			c.kind = s[0] == '*' && n > 1 && !has_wildcard(s + 1, e) ? COMP_SUFFIX : COMP_GLOB;
		}
		pat->comps[pat->ncomps++] = c;
	}
	if (!why && seen == 0)
		why = "no component to match";
	if (why) {
		free(pat);
		return bad_pattern(where, pattern, why);
	}

	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 8;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, each sizeof *v */
		struct pattern **v = realloc(ps->v, cap * sizeof *v);
		if (!v) {
			free(pat);
			return err_set(DRE_ENOMEM, "%s: pattern: out of memory", where);
		}
		ps->v = v;
		ps->cap = cap;
	}
	ps->v[ps->n++] = pat;
	return 0;
}

/* One line of a pattern file into buf (without its newline): 1, 0 at the end of the file, or an error. The file
 * is configuration, but whatever path it names is read, so a line's length is bounded (by buf) all the same. */
static int read_line(FILE *f, const char *path, unsigned long lineno, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	int ch;
	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (ch == '\0')
			return err_set(DRE_EINVAL, "%s:%lu: a NUL byte: not a pattern file", path, lineno);
		if (n == cap)
			return err_set(DRE_EINVAL, "%s:%lu: line longer than %zu bytes", path, lineno, cap);
		buf[n++] = (char)ch;
	}
	if (ferror(f))
		return err_set(DRE_EINVAL, "cannot read pattern file %s: %s", path, strerror(errno));
	*len = n;
	return ch == EOF && n == 0 ? 0 : 1;
}

int pattern_set_add_file(pattern_set *ps, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return err_set(DRE_EINVAL, "cannot read pattern file %s: %s", path, strerror(errno));
	/* room for a pattern of PATTERN_MAX bytes and some indentation around it; zeroed, or clang-tidy's analyzer
	 * loses track of which bytes read_line filled */
	size_t cap = PATTERN_MAX + 256;
	char *buf = calloc(1, cap + 1), *where = malloc(strlen(path) + 24);
	int rc = buf && where ? 0 : err_set(DRE_ENOMEM, "pattern file %s: out of memory", path);
	size_t len = 0;
	for (unsigned long lineno = 1; rc == 0; lineno++) {
		rc = read_line(f, path, lineno, buf, cap, &len);
		if (rc <= 0)
			break;
		rc = 0;
		char *s = buf;
		if (lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			len -= 3;
		}
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		while (len > 0 && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		if (len == 0 || *s == '#')
			continue;
		s[len] = '\0';
		snprintf(where, strlen(path) + 24, "%s:%lu", path, lineno);
		rc = pattern_set_add(ps, s, where);
	}
	free(buf);
	free(where);
	fclose(f);
	return rc;
}
