/*
 * test_select.c — choosing snapshots by tag, host and path (engine/repo/select.h): restic's meaning of --tag a,b
 * (both), --tag given twice (either), --tag '' (untagged), --host (any), --path (all, trailing slashes ignored);
 * meta values that are not JSON arrays of strings; what a user may not give; and snap_find_filtered over a real
 * repository: the newest match, the time bound, IDs, and messages that say what left nothing.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/engine.h"
#include "engine/repo/select.h"
#include "store/err.h"
#include "unit.h"

/* A snapshot header with host and the meta values given (NULL: absent). */
static snapshot make(const char *name, const char *host, const char *tags, const char *paths)
{
	static snap_meta meta[64][2];
	static size_t used;
	snap_meta *m = meta[used++ % 64];
	snapshot s = {.kind = SNAP_FILES, .name = (char *)name, .host = (char *)host, .meta = m};
	if (tags != NULL)
		m[s.nmeta++] = (snap_meta){(char *)SNAP_META_TAGS, (char *)tags};
	if (paths != NULL)
		m[s.nmeta++] = (snap_meta){(char *)SNAP_META_PATHS, (char *)paths};
	return s;
}

#define LIST(...) ((const char *[]){__VA_ARGS__})
#define N(...) (sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))

static void test_empty_filter_matches_everything(void)
{
	snap_filter none = {0};
	snapshot s = make("a", "h", NULL, NULL);
	CHECK(snap_filter_empty(NULL) && snap_filter_empty(&none));
	CHECK(snap_filter_match(NULL, &s));
	CHECK(snap_filter_match(&none, &s));
}

static void test_tags(void)
{
	snapshot ab = make("a", "h", "[\"a\",\"b\"]", NULL), a = make("a", "h", "[\"a\"]", NULL);
	snapshot none = make("a", "h", NULL, NULL), empty = make("a", "h", "[]", NULL);
	snap_filter both = {.tags = LIST("a,b"), .ntags = 1};
	snap_filter either = {.tags = LIST("b", "c"), .ntags = 2};
	snap_filter untagged = {.tags = LIST(""), .ntags = 1};
	snap_filter a_or_untagged = {.tags = LIST("a", ""), .ntags = 2};
	/* a,b: every tag of the list */
	CHECK(snap_filter_match(&both, &ab));
	CHECK(!snap_filter_match(&both, &a));
	CHECK(!snap_filter_match(&both, &none));
	/* given twice: any of the lists */
	CHECK(snap_filter_match(&either, &ab));
	CHECK(!snap_filter_match(&either, &a));
	/* '': no tag at all, whether the meta is absent or an empty array */
	CHECK(snap_filter_match(&untagged, &none));
	CHECK(snap_filter_match(&untagged, &empty));
	CHECK(!snap_filter_match(&untagged, &a));
	CHECK(snap_filter_match(&a_or_untagged, &a) && snap_filter_match(&a_or_untagged, &none));
	snapshot b = make("a", "h", "[\"b\"]", NULL);
	CHECK(!snap_filter_match(&a_or_untagged, &b));
	/* a tag is compared whole: "a" is not "ab", and a tag list is not a prefix test */
	snap_filter ab_tag = {.tags = LIST("ab"), .ntags = 1};
	CHECK(!snap_filter_match(&ab_tag, &ab));
	snapshot ab_only = make("x", "h", "[\"ab\"]", NULL);
	CHECK(snap_filter_match(&ab_tag, &ab_only));
}

static void test_hosts(void)
{
	snapshot db1 = make("a", "db1", NULL, NULL);
	snap_filter one = {.hosts = LIST("db1"), .nhosts = 1};
	snap_filter any = {.hosts = LIST("db2", "db1"), .nhosts = 2};
	snap_filter other = {.hosts = LIST("db10"), .nhosts = 1};
	CHECK(snap_filter_match(&one, &db1));
	CHECK(snap_filter_match(&any, &db1));
	CHECK(!snap_filter_match(&other, &db1));
	snapshot db = make("a", "db", NULL, NULL);
	CHECK(!snap_filter_match(&one, &db));
}

static void test_paths(void)
{
	snapshot s = make("m", "h", NULL, "[\"/srv/models\",\"/etc/app/\",\"/\"]");
	snap_filter models = {.paths = LIST("/srv/models"), .npaths = 1};
	snap_filter slash = {.paths = LIST("/srv/models//"), .npaths = 1};
	snap_filter etc = {.paths = LIST("/etc/app"), .npaths = 1};
	snap_filter root = {.paths = LIST("/"), .npaths = 1};
	snap_filter both = {.paths = LIST("/srv/models", "/etc/app"), .npaths = 2};
	snap_filter one_missing = {.paths = LIST("/srv/models", "/var"), .npaths = 2};
	snap_filter below = {.paths = LIST("/srv"), .npaths = 1};
	snap_filter inside = {.paths = LIST("/srv/models/a"), .npaths = 1};
	CHECK(snap_filter_match(&models, &s));
	CHECK(snap_filter_match(&slash, &s));  /* trailing slashes of the filter */
	CHECK(snap_filter_match(&etc, &s));    /* and of what the push was given */
	CHECK(snap_filter_match(&root, &s));
	CHECK(snap_filter_match(&both, &s));   /* every path given */
	CHECK(!snap_filter_match(&one_missing, &s));
	CHECK(!snap_filter_match(&below, &s)); /* a path is compared whole, not as a prefix */
	CHECK(!snap_filter_match(&inside, &s));
	/* a stream has no paths: it matches no --path */
	snapshot stream = make("db", "h", NULL, NULL);
	CHECK(!snap_filter_match(&models, &stream));
	/* "/" is not every path */
	snapshot srv = make("m", "h", NULL, "[\"/srv\"]");
	CHECK(!snap_filter_match(&root, &srv));
}

static void test_all_kinds_at_once(void)
{
	snapshot s = make("m", "db1", "[\"prod\",\"daily\"]", "[\"/srv\"]");
	snap_filter f = {.tags = LIST("prod"), .ntags = 1, .hosts = LIST("db1"), .nhosts = 1, .paths = LIST("/srv"),
			 .npaths = 1};
	CHECK(snap_filter_match(&f, &s));
	f.hosts = LIST("db2");
	CHECK(!snap_filter_match(&f, &s));
	f.hosts = LIST("db1");
	f.paths = LIST("/var");
	CHECK(!snap_filter_match(&f, &s));
	f.paths = LIST("/srv");
	f.tags = LIST("weekly");
	CHECK(!snap_filter_match(&f, &s));
}

/* A snapshot whose meta is not what a push writes (another writer, an old dre): treated as having none. */
static void test_malformed_meta(void)
{
	snap_filter tag = {.tags = LIST("a"), .ntags = 1}, untagged = {.tags = LIST(""), .ntags = 1};
	snap_filter path = {.paths = LIST("/a"), .npaths = 1};
	const char *bad[] = {"a", "{\"a\":1}", "[\"a\",1]", "[", "\"a\"", "[[\"a\"]]", "", "[\"a\\u0000b\"]"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snapshot s = make("x", "h", bad[i], bad[i]);
		CHECK(!snap_filter_match(&tag, &s));
		CHECK(snap_filter_match(&untagged, &s));
		CHECK(!snap_filter_match(&path, &s));
		json_t *a = snap_meta_strings(&s, SNAP_META_TAGS);
		CHECK(a != NULL && json_array_size(a) == 0);
		json_decref(a);
	}
	snapshot good = make("x", "h", "[\"a\",\"b\\nc\"]", NULL);
	json_t *a = snap_meta_strings(&good, SNAP_META_TAGS);
	CHECK(json_array_size(a) == 2 && strcmp(json_string_value(json_array_get(a, 0)), "a") == 0);
	json_decref(a);
}

static void expect_invalid(const snap_filter *f, const char *says)
{
	int rc = snap_filter_check(f);
	CHECK(rc == DRE_EINVAL);
	if (rc == DRE_EINVAL && strstr(err_msg(), says) == NULL) {
		fprintf(stderr, "  message '%s' does not say '%s'\n", err_msg(), says);
		CHECK(!"message");
	}
}

static void test_check(void)
{
	char long_tag[300];
	memset(long_tag, 't', 256);
	long_tag[256] = '\0';
	snap_filter ok = {.tags = LIST("a", "a,b", "", "with space", "ünïcode"), .ntags = 5,
			  .hosts = LIST("db1"), .nhosts = 1, .paths = LIST("/srv/"), .npaths = 1};
	CHECK_RC(snap_filter_check(&ok));
	expect_invalid(&(snap_filter){.tags = LIST("a,,b"), .ntags = 1}, "empty tag");
	expect_invalid(&(snap_filter){.tags = LIST(",a"), .ntags = 1}, "empty tag");
	expect_invalid(&(snap_filter){.tags = LIST("a,"), .ntags = 1}, "empty tag");
	expect_invalid(&(snap_filter){.tags = LIST("a\nb"), .ntags = 1}, "control character");
	expect_invalid(&(snap_filter){.tags = LIST("x\x7f"), .ntags = 1}, "control character");
	expect_invalid(&(snap_filter){.tags = LIST((const char *)long_tag), .ntags = 1}, "255");
	expect_invalid(&(snap_filter){.hosts = LIST(""), .nhosts = 1}, "host name is empty");
	expect_invalid(&(snap_filter){.paths = LIST(""), .npaths = 1}, "path is empty");
	memset(long_tag, 't', 255);
	long_tag[255] = '\0';
	CHECK_RC(snap_filter_check(&(snap_filter){.tags = LIST((const char *)long_tag), .ntags = 1}));
}

static void test_describe(void)
{
	char out[128];
	snap_filter f = {.tags = LIST("a,b", ""), .ntags = 2, .hosts = LIST("db1"), .nhosts = 1,
			 .paths = LIST("/srv"), .npaths = 1};
	snap_filter_describe(&f, out, sizeof out);
	CHECK(strcmp(out, "--tag a,b --tag '' --host db1 --path /srv") == 0);
	snap_filter_describe(&f, out, 10); /* cut, still a string */
	CHECK(strlen(out) == 9);
	snap_filter_describe(NULL, out, sizeof out);
	CHECK(out[0] == '\0');
}

/* ---- over a repository ---- */

static int save(repo *r, const char *name, const char *host, int64_t t, const char *tags, const char *paths,
		char hex[2 * CRYPTO_ID_LEN + 1])
{
	snapshot s = make(name, host, tags, paths);
	s.time_ns = t;
	s.end_time_ns = t + 1;
	snap_node dir = {.type = NODE_DIR, .path = "srv", .mode = 0755};
	TRY(unit_save_snapshot(r, &s, &dir, 1, NULL, 0));
	hex_encode(s.id, CRYPTO_ID_LEN, hex);
	return 0;
}

/* The filtered find of what, as a hex ID ("" when it fails: err_msg says why). */
static int find(repo *r, const char *what, int64_t before, const snap_filter *f, char hex[2 * CRYPTO_ID_LEN + 1])
{
	snapshot s;
	hex[0] = '\0';
	int rc = snap_find_filtered(r, what, before, f, &s);
	if (rc == 0) {
		hex_encode(s.id, CRYPTO_ID_LEN, hex);
		snap_free(&s);
	}
	return rc;
}

static void test_find_filtered(void)
{
	char dir[] = "/tmp/dre-test-select-XXXXXX";
	char m1[65], m2[65], m3[65], d1[65], got[65];
	CHECK(mkdtemp(dir) != NULL);
	repo *r = unit_make_repo(dir);
	if (r == NULL)
		return;
	CHECK_RC(save(r, "models", "gpu1", 100, "[\"prod\"]", "[\"/srv/models\"]", m1));
	CHECK_RC(save(r, "models", "gpu2", 200, "[\"prod\",\"big\"]", "[\"/srv/models\"]", m2));
	CHECK_RC(save(r, "models", "gpu1", 300, NULL, "[\"/srv/other\"]", m3));
	CHECK_RC(save(r, "db", "gpu1", 250, "[\"prod\"]", NULL, d1));

	snap_filter none = {0}, prod = {.tags = LIST("prod"), .ntags = 1};
	snap_filter gpu1 = {.hosts = LIST("gpu1"), .nhosts = 1};
	snap_filter models = {.paths = LIST("/srv/models/"), .npaths = 1};
	snap_filter nobody = {.hosts = LIST("gpu9"), .nhosts = 1};

	/* no filter: snap_find, the newest of the name */
	CHECK_RC(find(r, "models", -1, &none, got));
	CHECK(strcmp(got, m3) == 0);
	CHECK_RC(find(r, "models", -1, NULL, got));
	CHECK(strcmp(got, m3) == 0);
	/* the newest of the name that matches */
	CHECK_RC(find(r, "models", -1, &prod, got));
	CHECK(strcmp(got, m2) == 0);
	CHECK_RC(find(r, "models", -1, &gpu1, got));
	CHECK(strcmp(got, m3) == 0);
	CHECK_RC(find(r, "models", -1, &models, got));
	CHECK(strcmp(got, m2) == 0);
	/* and taken at or before the time */
	CHECK_RC(find(r, "models", 199, &prod, got));
	CHECK(strcmp(got, m1) == 0);
	CHECK_RC(find(r, "models", 200, &prod, got));
	CHECK(strcmp(got, m2) == 0);
	CHECK(find(r, "models", 99, &prod, got) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "at or before") != NULL);
	/* any name */
	CHECK_RC(find(r, NULL, -1, &prod, got));
	CHECK(strcmp(got, d1) == 0);
	/* nothing matches: the message names the filter */
	CHECK(find(r, "models", -1, &nobody, got) == DRE_ENOTFOUND && got[0] == '\0');
	CHECK(strstr(err_msg(), "no snapshot named models matches --host gpu9") != NULL);
	CHECK(find(r, "nosuch", -1, &prod, got) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "no snapshot named or with ID nosuch") != NULL);
	/* an ID: the snapshot it names, when the filter selects it */
	char prefix[9];
	snprintf(prefix, sizeof prefix, "%.8s", m2);
	CHECK_RC(find(r, prefix, -1, &prod, got));
	CHECK(strcmp(got, m2) == 0);
	snprintf(prefix, sizeof prefix, "%.8s", m3);
	CHECK(find(r, prefix, -1, &prod, got) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "does not match --tag prod") != NULL);
	/* a bad filter is refused before anything is read */
	snap_filter bad = {.tags = LIST("a,,b"), .ntags = 1};
	CHECK(find(r, "models", -1, &bad, got) == DRE_EINVAL);

	engine_close(r);
	unit_rm_tree(dir);
}

static void test_parse_time_until(void)
{
	int64_t exact, until;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	/* a time to the second covers that second */
	CHECK_RC(engine_parse_time("2026-12-04T17:34:58Z", &exact));
	CHECK_RC(engine_parse_time_until("2026-12-04T17:34:58Z", &until));
	CHECK(until == exact + 999999999);
	/* to the minute, that minute */
	CHECK_RC(engine_parse_time("2026-12-04 17:34", &exact));
	CHECK_RC(engine_parse_time_until("2026-12-04 17:34", &until));
	CHECK(until == exact + 60 * 1000000000LL - 1);
	/* with a fraction, exactly that */
	CHECK_RC(engine_parse_time("2026-12-04T17:34:58.25Z", &exact));
	CHECK_RC(engine_parse_time_until("2026-12-04T17:34:58.25Z", &until));
	CHECK(until == exact && exact % 1000000000 == 250000000);
	/* a date alone: to the end of that local day, however long the day (Berlin's 2026-10-25 has 25 hours) */
	CHECK_RC(engine_parse_time("2026-12-04", &exact));
	CHECK_RC(engine_parse_time_until("2026-12-04", &until));
	CHECK(until == exact + 24 * 3600 * 1000000000LL - 1);
	CHECK_RC(engine_parse_time("2026-10-25", &exact));
	CHECK_RC(engine_parse_time_until("2026-10-25", &until));
	CHECK(until == exact + 25 * 3600 * 1000000000LL - 1);
	CHECK_RC(engine_parse_time("2026-03-29", &exact));
	CHECK_RC(engine_parse_time_until("2026-03-29", &until));
	CHECK(until == exact + 23 * 3600 * 1000000000LL - 1);
	/* the same errors as engine_parse_time */
	CHECK(engine_parse_time_until("yesterday", &until) == DRE_EINVAL);
	CHECK(engine_parse_time_until("2026-12-04 17", &until) == DRE_EINVAL);
	/* near the end of the range: no overflow */
	CHECK_RC(engine_parse_time_until("2261-12-31T23:59Z", &until));
	CHECK(until > 0);
	unsetenv("TZ");
	tzset();
}

int main(void)
{
	RUN(test_empty_filter_matches_everything);
	RUN(test_tags);
	RUN(test_hosts);
	RUN(test_paths);
	RUN(test_all_kinds_at_once);
	RUN(test_malformed_meta);
	RUN(test_check);
	RUN(test_describe);
	RUN(test_find_filtered);
	RUN(test_parse_time_until);
	return unit_exit();
}
