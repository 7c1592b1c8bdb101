/*
 * test_pattern.c — path patterns (engine/pipeline/pattern.h): each rule of the header on a table of pattern sets,
 * paths and expected verdicts written out by hand; malformed patterns and pattern files refused with where they
 * came from; the may-match-below questions a walk asks before it descends.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/pipeline/pattern.h"
#include "store/err.h"
#include "unit.h"

static char tmpdir[256];

/* A set of the patterns in list, separated by newlines; NULL after a failed check. */
static pattern_set *set_of(const char *list)
{
	pattern_set *ps = NULL;
	char buf[512];
	CHECK_RC(pattern_set_new(&ps));
	if (!ps)
		return NULL;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *p = strtok_r(buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		int rc = pattern_set_add(ps, p, "--exclude");
		if (rc < 0) {
			fprintf(stderr, "pattern %s: %s\n", p, err_msg());
			CHECK(rc == 0);
		}
	}
	return ps;
}

static const struct match_case {
	const char *patterns; /* newline-separated, in order */
	const char *path;
	bool is_dir;
	bool want;
} match_cases[] = {
	/* no "/": any component, anywhere; a matched directory takes its tree */
	{"*.tmp", "/a/b/x.tmp", false, true},
	{"*.tmp", "/x.tmp", false, true},
	{"*.tmp", "/a/x.tmp/y/z", false, true},
	{"*.tmp", "/a/x.tmpz", false, false},
	{"*.tmp", "/a/.tmp", false, true}, /* `*` takes a leading dot */
	{"node_modules", "/srv/app/node_modules", true, true},
	{"node_modules", "/srv/app/node_modules/lodash/index.js", false, true},
	{"node_modules", "/srv/app/node_modules2", true, false},
	{"node_modules", "/srv/app/my_node_modules", true, false},
	{"*", "/anything/at/all", false, true},
	{"?.c", "/src/a.c", false, true},
	{"?.c", "/src/ab.c", false, false},
	{"?.c", "/src/.c", false, false},
	{"a*b*c", "/abxbyc", false, true},
	{"a*b*c", "/abxbycd", false, false},
	{"*x*y", "/xxxy", false, true},
	{"*x*y", "/xxyx", false, false},
	{"abc*", "/abc", false, true}, /* `*` takes nothing too */
	{"abc**", "/abc", false, true},
	{"Cache", "/a/cache", true, false}, /* case-sensitive */
	/* a leading "/": anchored at the root */
	{"/srv/models/cache", "/srv/models/cache", true, true},
	{"/srv/models/cache", "/srv/models/cache/f", false, true},
	{"/srv/models/cache", "/x/srv/models/cache", true, false},
	{"/srv/models/cache", "/srv/models", true, false},
	{"/srv/models/cache", "/srv/models/cachex", true, false},
	{"/srv/models/cache", "srv/models/cache", true, true},      /* the leading "/" of a path is optional */
	{"/srv/models/cache", "//srv///models/cache/", true, true}, /* repeated and trailing slashes */
	{"/srv/*/cache", "/srv/a/cache", true, true},
	{"/srv/*/cache", "/srv/a/b/cache", true, false},
	{"/x.tmp", "/x.tmp", false, true},
	{"/x.tmp", "/a/x.tmp", false, false},
	/* a "/" inside: any run of consecutive components */
	{"models/cache", "/srv/models/cache", true, true},
	{"models/cache", "/models/cache", true, true},
	{"models/cache", "/srv/models/cache/x", false, true},
	{"models/cache", "/srv/models/cachex", true, false},
	{"models/cache", "/srv/mymodels/cache", true, false},
	{"models/cache", "/srv/models/other/cache", true, false},
	{"models/cache", "/srv/models", true, false},
	{"m*/c?che", "/srv/models/cache", true, true},
	/* `**` at the start, in the middle, at the end */
	{"**/cache", "/a/b/cache", true, true},
	{"**/cache", "/cache", true, true},
	{"/**/cache", "/cache", true, true},
	{"/**/cache", "/a/b/cache", true, true},
	{"/**/cache", "/a/b/cachex", true, false},
	{"/**/*.log", "/var/log/x.log", false, true},
	{"/srv/**/cache", "/srv/cache", true, true},
	{"/srv/**/cache", "/srv/a/b/cache", true, true},
	{"/srv/**/cache", "/srv/a/b/cache/f", false, true},
	{"/srv/**/cache", "/other/cache", true, false},
	{"/srv/**/cache", "/srv/a/b/c", true, false},
	{"/srv/**/**/cache", "/srv/cache", true, true},
	{"a/**/b/**/c", "/x/a/1/b/2/3/c", false, true},
	{"a/**/b/**/c", "/x/a/c/b", false, false},
	{"a/**/b/**/c", "/a/b/c", false, true},
	{"/srv/**", "/srv", true, true},
	{"/srv/**", "/srv/a/b", false, true},
	{"/srv/**", "/srvx", true, false},
	{"/**", "/anything", false, true},
	{"**", "/a/b", false, true},
	{"a**b", "/axxb", false, true}, /* inside a component, `**` is `*` */
	{"a**b", "/ax/b", false, false},
	/* character classes */
	{"[abc].txt", "/a.txt", false, true},
	{"[abc].txt", "/d.txt", false, false},
	{"[!abc].txt", "/d.txt", false, true},
	{"[!abc].txt", "/a.txt", false, false},
	{"[^abc].txt", "/d.txt", false, true},
	{"[^abc].txt", "/b.txt", false, false},
	{"[a-c]x", "/bx", false, true},
	{"[a-c]x", "/dx", false, false},
	{"[a-cx-z]", "/y", false, true},
	{"[[:digit:]]*", "/1abc", false, true},
	{"[[:digit:]]*", "/abc", false, false},
	{"[![:upper:]]", "/a", false, true},
	{"[![:upper:]]", "/A", false, false},
	{"[]]", "/]", false, true},
	{"[!]]", "/a", false, true},
	{"[!]]", "/]", false, false},
	{"[a-]", "/-", false, true},
	{"[\\]]", "/]", false, true},
	{"[.]*", "/.hidden", false, true},
	{"\\*", "/*", false, true},
	{"\\*", "/a", false, false},
	{"\\[x\\]", "/[x]", false, true},
	/* a trailing "/": directories only, but what is below a directory matched */
	{"cache/", "/a/cache", true, true},
	{"cache/", "/a/cache", false, false},
	{"cache/", "/a/cache/file", false, true},
	{"/srv/cache/", "/srv/cache", false, false},
	{"/srv/cache/", "/srv/cache", true, true},
	{"models/cache/", "/srv/models/cache", false, false},
	{"models/cache/", "/srv/models/cache", true, true},
	/* `!`: the last pattern that matches decides */
	{"*.log\n!keep.log", "/a/keep.log", false, false},
	{"*.log\n!keep.log", "/a/x.log", false, true},
	{"!keep.log\n*.log", "/a/keep.log", false, true},
	{"*.log\n!keep.log\nkeep.log", "/a/keep.log", false, true},
	{"cache/\n!cache/index", "/a/cache", true, true},
	{"cache/\n!cache/index", "/a/cache/index", false, false},
	{"cache/\n!cache/index", "/a/cache/index/deeper", false, false},
	{"cache/\n!cache/index", "/a/cache/other", false, true},
	{"/home/u/*\n!/home/u/Documents", "/home/u/Documents", true, false},
	{"/home/u/*\n!/home/u/Documents", "/home/u/Documents/x", false, false},
	{"/home/u/*\n!/home/u/Documents", "/home/u/Music/y", false, true},
	{"/home/u/*\n!/home/u/Documents", "/home/v/Music", true, false},
	{"!*.log", "/a.log", false, false}, /* a re-include with nothing before it matches nothing */
	{"\\!x", "/!x", false, true},        /* `\!` is a literal "!" ... */
	{"\\!x", "/x", false, false},
	{"*\n!!x", "/!x", false, false}, /* ... and so is the second of `!!` */
	{"*\n!!x", "/x", false, true},
	/* `$VAR` is not expanded */
	{"$HOME", "/$HOME", true, true},
	{"$HOME", "/root", true, false},
	/* the root, an empty path: nothing to match */
	{"*", "/", true, false},
	{"*", "", true, false},
	{"**", "/", true, false},
	{"*", "/.", true, false},
	/* "." components of a path are passed over: a walk's root "/srv/models/." is "/srv/models" */
	{".*", "/srv/models/.", true, false},
	{".*", "/srv/./.git", true, true},
	{"/srv/a", "/srv/./a/.", true, true},
	{"/srv/models/", "/srv/models/.", true, true},
	{"/srv/models/*", "/srv/models/.", true, false},
	{"/**", "//", true, false},
};

static void test_match_table(void)
{
	for (size_t i = 0; i < sizeof match_cases / sizeof *match_cases; i++) {
		const struct match_case *c = &match_cases[i];
		pattern_set *ps = set_of(c->patterns);
		if (!ps)
			continue;
		bool got = pattern_set_match(ps, c->path, c->is_dir);
		if (got != c->want) {
			fprintf(stderr, "case %zu: patterns \"%s\" path \"%s\" is_dir %d: got %d, want %d\n", i,
				c->patterns, c->path, c->is_dir, got, c->want);
			CHECK(got == c->want);
		}
		pattern_set_free(ps);
	}
}

/* Several `**` against a path of 2,000 components: each `**` retried alone, so this ends at once rather than
 * after trying every way to split the path between them. */
static void test_deep_path(void)
{
	static char path[4200];
	size_t n = 0;
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(path + n, sizeof path - n, "/a");
	pattern_set *ps = set_of("/**/a/**/a/**/a/**/a/**/b\na/**/a/**/a/**/a/**/c");
	if (!ps)
		return;
	CHECK(!pattern_set_match(ps, path, false));
	CHECK(pattern_set_may_match_below(ps, path));
	memcpy(path + n - 1, "b", 1);
	CHECK(pattern_set_match(ps, path, false));
	pattern_set_free(ps);
}

static void test_empty_set(void)
{
	pattern_set *ps = NULL;
	CHECK_RC(pattern_set_new(&ps));
	CHECK(pattern_set_empty(ps));
	CHECK(!pattern_set_match(ps, "/a", false));
	CHECK(!pattern_set_may_match_below(ps, "/a"));
	CHECK(pattern_set_may_unmatch_below(ps, "/a"));
	CHECK_RC(pattern_set_add(ps, "x", "--exclude"));
	CHECK(!pattern_set_empty(ps));
	pattern_set_free(ps);
	pattern_set_free(NULL);
}

static void test_malformed(void)
{
	static const struct {
		const char *pattern;
		const char *cause; /* a piece of the message */
	} cases[] = {
		{"", "empty pattern"},
		{"!", "empty pattern"},
		{"[abc", "unclosed '['"},
		{"a[", "unclosed '['"},
		{"[!", "unclosed '['"},
		{"[]", "unclosed '['"},
		{"a[/]b", "unclosed '['"}, /* "/" separates components, even inside brackets */
		{"[a\\", "unclosed '['"},
		{"[z-a]", "backwards range"},
		{"[[:nope:]]", "unknown character class"},
		{"[[:alpha:]", "unclosed '['"},
		{"[[:alpha]", "unclosed '[:'"},
		{"[[=a=]]", "not supported"},
		{"[[.a.]]", "not supported"},
		{"abc\\", "trailing '\\'"},
		{"/srv/a\\/b", "trailing '\\'"},
		{"./x", "'.' or '..'"},
		{"a/../b", "'.' or '..'"},
		{"/", "no component"},
		{"!//", "no component"},
	};
	pattern_set *ps = NULL;
	CHECK_RC(pattern_set_new(&ps));
	if (!ps)
		return;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int rc = pattern_set_add(ps, cases[i].pattern, "--exclude");
		if (rc != DRE_EINVAL || strstr(err_msg(), cases[i].cause) == NULL ||
		    strncmp(err_msg(), "--exclude: ", 11) != 0) {
			fprintf(stderr, "pattern \"%s\": rc %d, message \"%s\"\n", cases[i].pattern, rc, err_msg());
			CHECK(rc == DRE_EINVAL);
			CHECK(strstr(err_msg(), cases[i].cause) != NULL);
		}
	}
	CHECK(pattern_set_empty(ps)); /* none of them was added */

	char *longest = malloc(PATTERN_MAX + 2);
	if (longest) {
		memset(longest, 'a', PATTERN_MAX);
		longest[PATTERN_MAX] = '\0';
		CHECK_RC(pattern_set_add(ps, longest, "--exclude"));
		longest[PATTERN_MAX] = 'a';
		longest[PATTERN_MAX + 1] = '\0';
		CHECK(pattern_set_add(ps, longest, "--include") == DRE_EINVAL);
		CHECK(strstr(err_msg(), "--include: ") == err_msg() && strstr(err_msg(), "longer than") != NULL);
		free(longest);
	}
	pattern_set_free(ps);
}

static void write_file(const char *path, const char *content, size_t len)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(content, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void test_file(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/excludes", tmpdir);
	static const char content[] = "\xef\xbb\xbf*.tmp\r\n"
				      "# caches and scratch\r\n"
				      "\r\n"
				      "   \t\n"
				      "  /srv/models/cache/  \n"
				      "#*.bin\n"
				      "  # indented comment\n"
				      "*.log\n"
				      "!keep.log\t \n"
				      "$HOME/x\n"
				      "last-without-newline";
	write_file(path, content, sizeof content - 1);
	pattern_set *ps = NULL;
	CHECK_RC(pattern_set_new(&ps));
	if (!ps)
		return;
	CHECK_RC(pattern_set_add_file(ps, path));
	CHECK(pattern_set_match(ps, "/a/b.tmp", false)); /* CR and the byte order mark are gone */
	CHECK(pattern_set_match(ps, "/srv/models/cache", true));
	CHECK(!pattern_set_match(ps, "/srv/models/cache", false)); /* trailing blanks trimmed, not the "/" */
	CHECK(!pattern_set_match(ps, "/a/x.bin", false));           /* a comment */
	CHECK(!pattern_set_match(ps, "/a/# indented comment", false));
	CHECK(pattern_set_match(ps, "/a/x.log", false));
	CHECK(!pattern_set_match(ps, "/a/keep.log", false));
	CHECK(pattern_set_match(ps, "/a/$HOME/x", false));
	CHECK(pattern_set_match(ps, "/a/last-without-newline", false));
	CHECK(!pattern_set_match(ps, "/a/# caches and scratch", false));
	pattern_set_free(ps);

	/* a malformed pattern names the file and line; the ones before it stay */
	static const char bad[] = "# ok\n*.tmp\n\nfoo[bar\n*.log\n";
	write_file(path, bad, sizeof bad - 1);
	ps = NULL;
	CHECK_RC(pattern_set_new(&ps));
	if (!ps)
		return;
	CHECK(pattern_set_add_file(ps, path) == DRE_EINVAL);
	char want[400];
	snprintf(want, sizeof want, "%s:4: bad pattern 'foo[bar': unclosed '['", path);
	CHECK(strstr(err_msg(), want) == err_msg());
	CHECK(pattern_set_match(ps, "/x.tmp", false));
	CHECK(!pattern_set_match(ps, "/x.log", false));

	/* a NUL byte, an endless line, a directory, a file that is not there */
	static const char nul[] = "*.tmp\nab\0c\n";
	write_file(path, nul, sizeof nul - 1);
	CHECK(pattern_set_add_file(ps, path) == DRE_EINVAL);
	snprintf(want, sizeof want, "%s:2: a NUL byte", path);
	CHECK(strstr(err_msg(), want) == err_msg());
	size_t n = PATTERN_MAX + 1000;
	char *big = malloc(n);
	if (big) {
		memset(big, 'a', n);
		write_file(path, big, n);
		CHECK(pattern_set_add_file(ps, path) == DRE_EINVAL);
		snprintf(want, sizeof want, "%s:1: line longer than", path);
		CHECK(strstr(err_msg(), want) == err_msg());
		free(big);
	}
	CHECK(pattern_set_add_file(ps, "/dev/zero") == DRE_EINVAL);
	CHECK(strstr(err_msg(), "/dev/zero:1: a NUL byte") != NULL);
	CHECK(pattern_set_add_file(ps, tmpdir) == DRE_EINVAL);
	CHECK(strstr(err_msg(), tmpdir) != NULL && strstr(err_msg(), "Is a directory") != NULL);
	snprintf(path, sizeof path, "%s/missing", tmpdir);
	CHECK(pattern_set_add_file(ps, path) == DRE_EINVAL);
	CHECK(strstr(err_msg(), path) != NULL && strstr(err_msg(), "No such file") != NULL);
	if (geteuid() != 0) { /* root reads a file of mode 0 */
		snprintf(path, sizeof path, "%s/excludes", tmpdir);
		CHECK(chmod(path, 0) == 0);
		CHECK(pattern_set_add_file(ps, path) == DRE_EINVAL);
		CHECK(strstr(err_msg(), "Permission denied") != NULL);
	}
	pattern_set_free(ps);

	/* an empty file and one of comments add nothing */
	snprintf(path, sizeof path, "%s/empty", tmpdir);
	write_file(path, "", 0);
	ps = NULL;
	CHECK_RC(pattern_set_new(&ps));
	if (!ps)
		return;
	CHECK_RC(pattern_set_add_file(ps, path));
	write_file(path, "# nothing\n\n", 11);
	CHECK_RC(pattern_set_add_file(ps, path));
	CHECK(pattern_set_empty(ps));
	pattern_set_free(ps);
}

static const struct below_case {
	const char *patterns;
	const char *dir;
	bool may_match, may_unmatch;
} below_cases[] = {
	/* include one file: descend along its path only */
	{"/srv/models/a.bin", "/", true, true},
	{"/srv/models/a.bin", "/srv", true, true},
	{"/srv/models/a.bin", "srv/models", true, true},
	{"/srv/models/a.bin", "/srv/other", false, true},
	{"/srv/models/a.bin", "/etc", false, true},
	{"/srv/models/a.bin", "/srv/models/a.bin", true, false}, /* matched itself: its whole tree */
	{"/srv/models", "/srv/models/sub", true, false},
	{"/srv/*/a.bin", "/srv/x", true, true},
	{"/srv/*/a.bin", "/srv/x/y", false, true},
	{"/srv/**/x", "/srv/a/b", true, true},
	{"/srv/**/x", "/etc", false, true},
	{"/srv/models/", "/srv", true, true},
	/* a pattern without a leading "/" can match below any directory */
	{"*.bin", "/etc", true, true},
	{"models/a.bin", "/etc", true, true},
	/* a later `!` takes a subtree out again */
	{"/srv\n!/srv/tmp", "/srv", true, true},
	{"/srv\n!/srv/tmp", "/srv/tmp", false, true},
	{"/srv\n!/srv/tmp\n/srv/tmp/keep", "/srv/tmp", true, true},
	{"/srv\n!/srv/tmp\n*.bin", "/srv/tmp", true, true},
	/* exclude: an excluded directory needs descending only for a later `!` that could match below it */
	{"cache/", "/a/cache", true, false},
	{"cache/\n!cache/index", "/a/cache", true, true},
	{"cache/\n!/a/cache/index", "/a/cache", true, true},
	{"cache/\n!/b/cache/index", "/a/cache", true, false},
	{"!cache/index\ncache/", "/a/cache", true, false},
	{"/srv/cache/\n!/other/keep", "/srv/cache", true, false},
	{"/home/u/*\n!/home/u/Documents", "/home/u", true, true},
	{"/home/u/*\n!/home/u/Documents", "/home/u/Music", true, false},
};

static void test_below(void)
{
	for (size_t i = 0; i < sizeof below_cases / sizeof *below_cases; i++) {
		const struct below_case *c = &below_cases[i];
		pattern_set *ps = set_of(c->patterns);
		if (!ps)
			continue;
		bool m = pattern_set_may_match_below(ps, c->dir), u = pattern_set_may_unmatch_below(ps, c->dir);
		if (m != c->may_match || u != c->may_unmatch) {
			fprintf(stderr, "case %zu: patterns \"%s\" dir \"%s\": may_match %d (want %d), may_unmatch %d "
					"(want %d)\n",
				i, c->patterns, c->dir, m, c->may_match, u, c->may_unmatch);
			CHECK(m == c->may_match && u == c->may_unmatch);
		}
		pattern_set_free(ps);
	}
}

/* The promise the *_below questions make: never "no" where a descendant's verdict differs. Checked against
 * every path of a small tree, for sets built from the pieces the rules combine. */
static void test_below_sound(void)
{
	static const char *const sets[] = {
		"/a/b/c",         "/a/*/c",          "/a/**/c",       "b/c",         "c/",         "/a/b\n!/a/b/c",
		"/a\n!/a/b\n/a/b/c/d", "*\n!/a/b",   "/a/b/\n!c",     "!/a\n/a/b",   "/**/b/**",   "/a/[bc]/d",
	};
	static const char *const dirs[] = {"/", "/a", "/a/b", "/a/b/c", "/a/c", "/b", "/b/c", "/a/b/c/d"};
	static const char *const below[] = {"a", "b", "c", "d", "b/c", "c/d", "b/c/d", "x/c", "a/b/c"};
	for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
		pattern_set *ps = set_of(sets[s]);
		if (!ps)
			continue;
		for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
			bool may_match = pattern_set_may_match_below(ps, dirs[d]);
			bool may_unmatch = pattern_set_may_unmatch_below(ps, dirs[d]);
			for (size_t b = 0; b < sizeof below / sizeof *below; b++) {
				char path[64];
				snprintf(path, sizeof path, "%s/%s", strcmp(dirs[d], "/") == 0 ? "" : dirs[d], below[b]);
				for (int is_dir = 0; is_dir < 2; is_dir++) {
					bool m = pattern_set_match(ps, path, is_dir);
					if ((m && !may_match) || (!m && !may_unmatch)) {
						fprintf(stderr, "set \"%s\" dir %s: %s matches %d, but may_match %d "
								"may_unmatch %d\n",
							sets[s], dirs[d], path, m, may_match, may_unmatch);
						CHECK(0);
					}
				}
			}
		}
		pattern_set_free(ps);
	}
}

/* Within one component, a glob dre accepts means what it means to fnmatch(3) (no flags, C locale): random short
 * globs made of the pieces of the syntax, against random names. */
static void test_glob_against_fnmatch(void)
{
	static const char *const pieces[] = {"a",  "b", "*", "?", "[", "]",  "!",         "^",         "-",  "\\",
					     ":", "a-", "-b", "[!", "[^", "\\]", "[:alpha:]", "[:punct:]", "[a-b]"};
	static const char name_bytes[] = "ab]-!*^\\:";
	unsigned x = 2463534242u;
	int accepted = 0, mismatches = 0;
	for (int it = 0; it < 50000; it++) {
		char glob[64] = "", name[8], path[12];
		size_t npieces = 1 + it % 6, nl = 1 + (it / 6) % 6, gl = 0;
		for (size_t i = 0; i < npieces + nl; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			if (i < npieces)
				gl += (size_t)snprintf(glob + gl, sizeof glob - gl, "%s",
						       pieces[x % (sizeof pieces / sizeof *pieces)]);
			else
				name[i - npieces] = name_bytes[x % (sizeof name_bytes - 1)];
		}
		name[nl] = '\0';
		if (glob[0] == '!')
			continue; /* a re-include, not a glob */
		pattern_set *ps = NULL;
		CHECK_RC(pattern_set_new(&ps));
		if (!ps)
			return;
		if (pattern_set_add(ps, glob, "--exclude") == 0) {
			accepted++;
			snprintf(path, sizeof path, "/%s", name);
			bool ours = pattern_set_match(ps, path, false), theirs = fnmatch(glob, name, 0) == 0;
			if (ours != theirs && mismatches++ < 10)
				fprintf(stderr, "glob \"%s\" name \"%s\": %d, fnmatch %d\n", glob, name, ours, theirs);
		}
		pattern_set_free(ps);
	}
	CHECK(mismatches == 0);
	CHECK(accepted > 10000); /* the comparison covered a good share */
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/dre-pattern-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_match_table);
	RUN(test_deep_path);
	RUN(test_empty_set);
	RUN(test_malformed);
	RUN(test_file);
	RUN(test_below);
	RUN(test_below_sound);
	RUN(test_glob_against_fnmatch);
	unit_rm_tree(tmpdir);
	return unit_exit();
}
