/*
 * Unit tests of the S3 store driver (store/s3.c). The configuration tests need no server; the contract tests
 * run against the real Ceph RADOS Gateway that tests/run starts (DRE_S3_ENDPOINT and the AWS_* credentials in
 * the environment) and are left out, loudly, by tests/run when none could be started.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/err.h"
#include "store/store.h"
#include "tests/unit/unit.h"

static char bucket_url[256]; /* s3://dre-unit-<random>/unit */


static int open_msg(const char *url, const store_opts *o, const char *want_in_msg)
{
	store *st = NULL;
	int rc = store_open(url, o, &st);
	if (rc == 0) {
		store_close(st);
		return 0;
	}
	if (want_in_msg && strstr(err_msg(), want_in_msg) == NULL) {
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err_msg(), want_in_msg);
		return 1;
	}
	return rc;
}

/* ---- no server needed ---- */

static void test_url_and_options(void)
{
	store_opts o = {.s3_endpoint = "http://127.0.0.1:1"};
	CHECK(open_msg("s3://Bad_Bucket/x", &o, "not a bucket name") == DRE_EINVAL);
	CHECK(open_msg("s3://ab", &o, "not a bucket name") == DRE_EINVAL);
	CHECK(open_msg("s3://bucket/Upper/Case", &o, "prefix") == DRE_EINVAL);
	CHECK(open_msg("s3://bucket/a/../b", &o, "prefix") == DRE_EINVAL);
	store_opts ftp = {.s3_endpoint = "ftp://127.0.0.1"};
	CHECK(open_msg("s3://bucket", &ftp, "want http://HOST") == DRE_EINVAL);
	store_opts path = {.s3_endpoint = "http://127.0.0.1:1/some/path"};
	CHECK(open_msg("s3://bucket", &path, "without a path") == DRE_EINVAL);
	store_opts sse = {.s3_endpoint = "http://127.0.0.1:1", .s3_sse = "rot13"};
	CHECK(open_msg("s3://bucket", &sse, "AES256") == DRE_EINVAL);
	store_opts kms = {.s3_endpoint = "http://127.0.0.1:1", .s3_sse_kms_key_id = "k"};
	CHECK(open_msg("s3://bucket", &kms, "aws:kms") == DRE_EINVAL);
	store_opts ca = {.s3_endpoint = "https://127.0.0.1:1", .s3_ca_file = "/nonexistent/ca.pem"};
	CHECK(open_msg("s3://bucket", &ca, "/nonexistent/ca.pem") == DRE_EINVAL); /* a setting's mistake: exit 1, not 3 */
	CHECK(open_msg("s3://bucket/a/b/", &o, NULL) == 0);
}

static void test_credentials_chain(void)
{
	char *key = getenv("AWS_ACCESS_KEY_ID") ? strdup(getenv("AWS_ACCESS_KEY_ID")) : NULL;
	char *secret = getenv("AWS_SECRET_ACCESS_KEY") ? strdup(getenv("AWS_SECRET_ACCESS_KEY")) : NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	store_opts o = {.s3_endpoint = "http://127.0.0.1:1"};

	char dir[512], file[600];
	snprintf(dir, sizeof dir, "%s/dre-cred.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(file, sizeof file, "%s/credentials", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", file, 1);
	unsetenv("AWS_PROFILE");
	CHECK(open_msg("s3://bucket", &o, "AWS_ACCESS_KEY_ID") == DRE_EINVAL); /* no file at all */

	FILE *f = fopen(file, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n\n[other]\naws_access_key_id = B\n",
		      f);
		fclose(f);
	}
	CHECK(open_msg("s3://bucket", &o, NULL) == 0);
	setenv("AWS_PROFILE", "other", 1);
	CHECK(open_msg("s3://bucket", &o, "lacks aws_access_key_id or aws_secret_access_key") == DRE_EINVAL);
	setenv("AWS_PROFILE", "missing", 1);
	CHECK(open_msg("s3://bucket", &o, "[missing] is not there") == DRE_EINVAL);
	f = fopen(file, "w");
	if (f) {
		fputs("[default\nbroken\n", f);
		fclose(f);
	}
	unsetenv("AWS_PROFILE");
	CHECK(open_msg("s3://bucket", &o, "syntax error on line 1") == DRE_EINVAL);
	unlink(file);
	rmdir(dir);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	if (key)
		setenv("AWS_ACCESS_KEY_ID", key, 1);
	if (secret)
		setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	free(key);
	free(secret);
}

static void test_unreachable_endpoint(void)
{
	/* nothing listens on port 1: every attempt fails to connect, and the error says how often it tried */
	setenv("DRE_S3_RETRIES", "2", 1);
	store_opts o = {.s3_endpoint = "http://127.0.0.1:1"};
	store *st = NULL;
	CHECK_RC(store_open("s3://bucket/p", &o, &st));
	if (st) {
		uint64_t size;
		CHECK(store_stat(st, "config", &size) == DRE_EIO);
		CHECK(strstr(err_msg(), "gave up after 3 attempts") != NULL);
		CHECK(strstr(err_msg(), "s3://bucket/p/config") != NULL);
		store_close(st);
	}
	unsetenv("DRE_S3_RETRIES");
}

/* ---- against the gateway ---- */

static store *open_test_store(const char *url)
{
	store *st = NULL;
	CHECK_RC(store_open(url, NULL, &st));
	return st;
}

static void test_put_get_stat_del(void)
{
	store *st = open_test_store(bucket_url);
	if (!st)
		return;
	CHECK_RC(store_prepare(st));
	CHECK_RC(store_prepare(st)); /* the bucket exists now: still fine */
	uint8_t data[100000], back[100000];
	unit_fill(data, sizeof data, 1);
	CHECK_RC(store_put(st, "packs/ab/abcdef", data, sizeof data, 0));
	uint64_t size = 0;
	CHECK_RC(store_stat(st, "packs/ab/abcdef", &size));
	CHECK(size == sizeof data);
	memset(back, 0, sizeof back);
	CHECK_RC(store_get(st, "packs/ab/abcdef", 0, sizeof data, back));
	CHECK(memcmp(back, data, sizeof data) == 0);
	CHECK_RC(store_get(st, "packs/ab/abcdef", 4321, 1000, back));
	CHECK(memcmp(back, data + 4321, 1000) == 0);
	CHECK_RC(store_get(st, "packs/ab/abcdef", sizeof data, 0, back)); /* empty range at the very end */
	CHECK(store_get(st, "packs/ab/abcdef", sizeof data - 10, 20, back) == DRE_ECORRUPT); /* past the end */
	CHECK(store_get(st, "packs/ab/abcdef", sizeof data + 10, 20, back) == DRE_ECORRUPT);
	CHECK(strstr(err_msg(), "truncated") != NULL);

	CHECK(store_stat(st, "packs/ab/missing", &size) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "packs/ab/missing") != NULL);
	CHECK(store_get(st, "packs/ab/missing", 0, 10, back) == DRE_ENOTFOUND);
	CHECK(store_put(st, "Bad/Key", data, 1, 0) == DRE_EINVAL);
	CHECK(store_put(st, "../escape", data, 1, 0) == DRE_EINVAL);

	CHECK_RC(store_put(st, "empty", data, 0, 0));
	CHECK_RC(store_stat(st, "empty", &size));
	CHECK(size == 0);

	CHECK_RC(store_del(st, "packs/ab/abcdef"));
	CHECK(store_stat(st, "packs/ab/abcdef", &size) == DRE_ENOTFOUND);
	CHECK_RC(store_del(st, "packs/ab/abcdef")); /* missing is not an error */
	CHECK_RC(store_del(st, "empty"));
	store_close(st);
}

static void test_create_once(void)
{
	store *st = open_test_store(bucket_url);
	if (!st)
		return;
	CHECK_RC(store_put(st, "snapshots/once", "first", 5, STORE_PUT_CREATE_ONCE));
	CHECK(store_put(st, "snapshots/once", "other", 5, STORE_PUT_CREATE_ONCE) == DRE_EEXIST);
	CHECK(strstr(err_msg(), "already exists") != NULL);
	char back[5];
	CHECK_RC(store_get(st, "snapshots/once", 0, 5, back));
	CHECK(memcmp(back, "first", 5) == 0); /* never replaced */
	CHECK_RC(store_put(st, "snapshots/once", "third", 5, 0)); /* a plain put may replace */
	CHECK_RC(store_del(st, "snapshots/once"));
	store_close(st);
}

typedef struct counted {
	size_t n, bad_size;
	uint64_t bytes;
} counted;

static int count_key(void *arg, const char *key, uint64_t size)
{
	counted *c = arg;
	c->n++;
	c->bytes += size;
	if (strncmp(key, "many/", 5) != 0 || size != (uint64_t)(strlen(key) % 7))
		c->bad_size++;
	return 0;
}

static int stop_at_ten(void *arg, const char *key, uint64_t size)
{
	(void)key, (void)size;
	size_t *n = arg;
	return ++*n == 10 ? err_set(DRE_EINVAL, "enough") : 0;
}

static void test_list_over_1000(void)
{
	store *st = open_test_store(bucket_url);
	if (!st)
		return;
	enum { N = 1234 };
	char key[64];
	const char pad[8] = "1234567";
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "many/%04d", i);
		CHECK_RC(store_put(st, key, pad, strlen(key) % 7, 0));
	}
	counted c = {0};
	CHECK_RC(store_list(st, "many/", count_key, &c));
	CHECK(c.n == N); /* two pages: S3 returns at most 1000 keys per page */
	CHECK(c.bad_size == 0);
	counted sub = {0};
	CHECK_RC(store_list(st, "many/10", count_key, &sub));
	CHECK(sub.n == 100);
	counted none = {0};
	CHECK_RC(store_list(st, "nothing-here/", count_key, &none));
	CHECK(none.n == 0);
	size_t seen = 0;
	CHECK(store_list(st, "many/", stop_at_ten, &seen) == DRE_EINVAL);
	CHECK(seen == 10);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "many/%04d", i);
		CHECK_RC(store_del(st, key));
	}
	store_close(st);
}

static void test_multipart(void)
{
	setenv("DRE_S3_MULTIPART_THRESHOLD", "6M", 1);
	setenv("DRE_S3_PART_SIZE", "5M", 1);
	store *st = open_test_store(bucket_url);
	unsetenv("DRE_S3_MULTIPART_THRESHOLD");
	unsetenv("DRE_S3_PART_SIZE");
	if (!st)
		return;
	size_t n = (12u << 20) + 12345; /* three parts, the last short */
	uint8_t *data = malloc(n), *back = malloc(n);
	CHECK(data && back);
	if (data && back) {
		unit_fill(data, n, 7);
		CHECK_RC(store_put(st, "packs/mp/big", data, n, 0));
		uint64_t size = 0;
		CHECK_RC(store_stat(st, "packs/mp/big", &size));
		CHECK(size == n);
		CHECK_RC(store_get(st, "packs/mp/big", 0, n, back));
		CHECK(memcmp(data, back, n) == 0);
		CHECK_RC(store_get(st, "packs/mp/big", (5u << 20) - 100, 200, back)); /* across a part boundary */
		CHECK(memcmp(data + (5u << 20) - 100, back, 200) == 0);
		CHECK_RC(store_del(st, "packs/mp/big"));
	}
	free(data);
	free(back);
	store_close(st);
}

typedef struct worker {
	store *st;
	int id, failures;
} worker;

static void *hammer(void *arg)
{
	worker *w = arg;
	uint8_t data[70000], back[70000];
	char key[64];
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "conc/%d-%d", w->id, i);
		unit_fill(data, sizeof data, (uint32_t)(w->id * 100 + i));
		if (store_put(w->st, key, data, sizeof data, 0) < 0 || store_get(w->st, key, 0, sizeof data, back) < 0 ||
		    memcmp(data, back, sizeof data) != 0 || store_del(w->st, key) < 0)
			w->failures++;
	}
	return NULL;
}

static void test_concurrent_requests(void)
{
	store *st = open_test_store(bucket_url);
	if (!st)
		return;
	enum { T = 8 };
	pthread_t th[T];
	worker w[T];
	for (int i = 0; i < T; i++) {
		w[i] = (worker){st, i, 0};
		CHECK(pthread_create(&th[i], NULL, hammer, &w[i]) == 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].failures == 0);
	}
	store_close(st);
}

static void test_wrong_secret(void)
{
	char *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret-wrong-secret-00", 1);
	store *st = open_test_store(bucket_url);
	setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	free(secret);
	if (!st)
		return;
	char back[4];
	CHECK(store_get(st, "config", 0, 4, back) == DRE_EPERM);
	CHECK(strstr(err_msg(), "403 SignatureDoesNotMatch") != NULL);
	CHECK(strstr(err_msg(), "HINT: check AWS_SECRET_ACCESS_KEY") != NULL);
	CHECK(store_put(st, "x", "y", 1, 0) == DRE_EPERM);
	store_close(st);
}

static void test_missing_bucket(void)
{
	store *st = open_test_store("s3://dre-no-such-bucket/repo");
	if (!st)
		return;
	uint64_t size;
	CHECK(store_stat(st, "config", &size) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "bucket dre-no-such-bucket does not exist") != NULL);
	char b[4];
	CHECK(store_get(st, "config", 0, 4, b) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "NoSuchBucket") != NULL);
	CHECK(store_put(st, "config", "abc", 3, 0) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "NoSuchBucket") != NULL);
	store_close(st);
}

int main(void)
{
	setenv("AWS_ACCESS_KEY_ID", getenv("AWS_ACCESS_KEY_ID") ? getenv("AWS_ACCESS_KEY_ID") : "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", getenv("AWS_SECRET_ACCESS_KEY") ? getenv("AWS_SECRET_ACCESS_KEY") : "SK", 1);
	RUN(test_url_and_options);
	RUN(test_credentials_chain);
	RUN(test_unreachable_endpoint);
	if (getenv("DRE_S3_ENDPOINT") == NULL) {
		printf("# no DRE_S3_ENDPOINT: the tests against a gateway were not run\n");
		return unit_exit();
	}
	unsigned r = (unsigned)time(NULL) ^ (unsigned)getpid() * 2654435761u;
	snprintf(bucket_url, sizeof bucket_url, "s3://dre-unit-%08x/unit", r);
	RUN(test_put_get_stat_del);
	RUN(test_create_once);
	RUN(test_list_over_1000);
	RUN(test_multipart);
	RUN(test_concurrent_requests);
	RUN(test_wrong_secret);
	RUN(test_missing_bucket);
	return unit_exit();
}
