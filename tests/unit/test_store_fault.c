/*
 * Unit tests of the store fault layer (store/fault.c, DRE_TEST_STORE_FAULTS): each kind makes the local driver
 * fail the way a disk does, with the message a real failure has; short transfers still move every byte; the
 * counts reach the stats file; a bad spec is refused naming what is wrong. The variable is read once per
 * process, so each case runs in a child of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/err.h"
#include "store/fault.h"
#include "store/store.h"
#include "tests/unit/unit.h"

static char base_dir[4096];

/* Runs fn in a child with DRE_TEST_STORE_FAULTS=spec (unset when NULL) and a fresh base_dir; its failed checks
 * count in the parent. */
static void in_child(const char *spec, void (*fn)(void))
{
	const char *t = getenv("TMPDIR");
	snprintf(base_dir, sizeof base_dir, "%s/dre-tsf.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(base_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (spec)
			setenv("DRE_TEST_STORE_FAULTS", spec, 1);
		else
			unsetenv("DRE_TEST_STORE_FAULTS");
		fn();
		fflush(NULL);
		_exit(unit_failed_checks > 0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unit_rm_tree(base_dir);
}

static store *open_store(void)
{
	store *st = NULL;
	CHECK_RC(store_open(base_dir, NULL, &st));
	if (st == NULL)
		_exit(1);
	return st;
}

/* An object written behind the store's back, so that setting it up cannot meet a fault. */
static void plant(const char *key, const void *buf, size_t len)
{
	char path[4200], dir[4200];
	snprintf(path, sizeof path, "%s/%s", base_dir, key);
	snprintf(dir, sizeof dir, "%s", path);
	for (char *s = dir + strlen(base_dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		mkdir(dir, 0700);
		*s = '/';
	}
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL && fwrite(buf, 1, len, f) == len);
	if (f)
		fclose(f);
}

static bool exists(const char *key)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", base_dir, key);
	return access(path, F_OK) == 0;
}

/* Whether any file under base_dir/dir has a name starting with ".tmp.". */
static bool tmp_left(const char *dir)
{
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "find '%s/%s' -name '.tmp.*' | grep -q .", base_dir, dir);
	return system(cmd) == 0;
}

static bool msg_has(const char *s)
{
	return strstr(err_msg(), s) != NULL;
}

/* ---- cases ---- */

static void unset_case(void)
{
	store *st = open_store();
	CHECK(store_faults_active == NULL);
	CHECK(strcmp(st->drv->name, "local") == 0);
	CHECK_RC(store_put(st, "a/b", "x", 1, 0));
	store_close(st);
}

static void test_unset_leaves_the_store_alone(void)
{
	in_child(NULL, unset_case);
}

static void eio_case(void)
{
	store *st = open_store();
	CHECK(store_faults_active != NULL);
	CHECK(strcmp(st->drv->name, "local") == 0); /* the wrapper keeps the driver's name */
	plant("packs/aa/old", "0123456789", 10);

	CHECK(store_put(st, "packs/aa/new", "hello", 5, 0) == DRE_EIO);
	CHECK(msg_has("cannot write object packs/aa/new (") && msg_has(": Input/output error"));
	CHECK(!exists("packs/aa/new"));
	CHECK(!tmp_left("packs"));

	char buf[10];
	CHECK(store_get(st, "packs/aa/old", 0, 10, buf) == DRE_EIO);
	CHECK(msg_has("cannot read object packs/aa/old (") && msg_has(": Input/output error"));
	uint64_t size;
	CHECK(store_stat(st, "packs/aa/old", &size) == DRE_EIO);
	CHECK(msg_has("cannot stat object packs/aa/old (") && msg_has(": Input/output error"));
	CHECK(store_del(st, "packs/aa/old") == DRE_EIO);
	CHECK(msg_has("cannot delete object packs/aa/old (") && msg_has(": Input/output error"));
	CHECK(exists("packs/aa/old"));
	store_close(st);
}

static void test_eio_fails_every_operation_like_a_disk(void)
{
	in_child("seed=1,rate=1,kinds=eio", eio_case);
}

static int count_key(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	(*(int *)arg)++;
	return 0;
}

static void list_case(void)
{
	store *st = open_store();
	plant("index/one", "1", 1);
	int n = 0;
	CHECK(store_list(st, "index/", count_key, &n) == DRE_EIO);
	CHECK(msg_has("cannot list index/ (") && msg_has(": Input/output error"));
	CHECK(n == 0);
	store_close(st);
}

static void test_eio_fails_a_listing(void)
{
	in_child("rate=1,kinds=eio", list_case);
}

static void enospc_case(void)
{
	store *st = open_store();
	plant("snapshots/s1", "abc", 3);
	int seen_create = 0, seen_write = 0;
	for (int i = 0; i < 24; i++) {
		char key[40];
		snprintf(key, sizeof key, "packs/bb/k%d", i);
		CHECK(store_put(st, key, "payload", 7, 0) == DRE_EIO);
		CHECK(msg_has("cannot write object packs/bb/k") && msg_has(": No space left on device"));
		seen_create += msg_has("cannot create a temporary file");
		seen_write += !msg_has("cannot create a temporary file");
		CHECK(!exists(key));
	}
	CHECK(seen_create > 0 && seen_write > 0); /* both places a full disk shows */
	CHECK(!tmp_left("packs"));
	char buf[3];
	CHECK_RC(store_get(st, "snapshots/s1", 0, 3, buf)); /* reading needs no space */
	CHECK(memcmp(buf, "abc", 3) == 0);
	store_close(st);
}

static void test_enospc_fails_puts_and_leaves_no_temporary(void)
{
	in_child("seed=3,rate=1,kinds=enospc", enospc_case);
}

/* ops= and match= narrow the faults to some operations on some keys */
static void narrow_case(void)
{
	store *st = open_store();
	plant("keys/k1", "key", 3);
	plant("config", "cfg", 3);
	char buf[3];
	uint64_t size;
	int n = 0;
	CHECK_RC(store_list(st, "keys/", count_key, &n)); /* a list: not in ops */
	CHECK(n == 1);
	CHECK_RC(store_get(st, "config", 0, 3, buf)); /* not under match */
	CHECK_RC(store_stat(st, "config", &size));
	CHECK(store_get(st, "keys/k1", 0, 3, buf) == DRE_EIO);
	CHECK(msg_has("cannot read object keys/k1 (") && msg_has(": Input/output error"));
	CHECK(store_stat(st, "keys/k1", &size) == DRE_EIO);
	CHECK_RC(store_put(st, "keys/k2", "new", 3, 0)); /* a put: not in ops */
	store_close(st);
}

static void test_ops_and_match_narrow_the_faults(void)
{
	in_child("rate=1,kinds=eio,ops=get,stat,match=keys/", narrow_case);
}

static char stats_path[4200];

/* The line the child's store wrote to stats_path at close. */
static void stats_line(char *line, size_t cap)
{
	FILE *f = fopen(stats_path, "r");
	line[0] = '\0';
	CHECK(f != NULL && fgets(line, (int)cap, f) != NULL);
	if (f)
		fclose(f);
}

static void short_case(void)
{
	store *st = open_store();
	size_t len = (3u << 20) + 123; /* through O_DIRECT where the file system takes it, then the tail */
	uint8_t *p = store_buffer_alloc(len), *back = malloc(len);
	CHECK(p != NULL && back != NULL);
	if (p == NULL || back == NULL)
		_exit(1);
	unit_fill(p, len, 7);
	for (int i = 0; i < 4; i++) {
		char key[40];
		snprintf(key, sizeof key, "packs/cc/k%d", i);
		CHECK_RC(store_put(st, key, p, len, 0));
		memset(back, 0, len);
		CHECK_RC(store_get(st, key, 0, len, back));
		CHECK(memcmp(p, back, len) == 0);
		CHECK_RC(store_get(st, key, 1000, 5000, back));
		CHECK(memcmp(p + 1000, back, 5000) == 0);
	}
	/* a range past the end is still an error, however the reads were cut */
	CHECK(store_get(st, "packs/cc/k0", len - 10, 20, back) == DRE_ECORRUPT);
	CHECK(msg_has("object packs/cc/k0 is truncated"));
	free(p);
	free(back);
	store_close(st);
	char line[1024];
	stats_line(line, sizeof line);
	CHECK(strstr(line, "\"short-write\": 4,") != NULL); /* each put's first pwrite was cut */
	CHECK(strstr(line, "\"short-read\": 9,") != NULL);  /* and each get's first pread */
}

static void set_stats_path(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(stats_path, sizeof stats_path, "%s/dre-tsf-stats.%ld", t && *t ? t : "/tmp", (long)getpid());
	unlink(stats_path);
}

static void test_short_writes_and_reads_still_move_every_byte(void)
{
	char spec[4400];
	set_stats_path();
	snprintf(spec, sizeof spec, "seed=5,rate=1,kinds=short-write,short-read,stats=%s", stats_path);
	in_child(spec, short_case);
	unlink(stats_path);
}

static void fsync_case(void)
{
	store *st = open_store();
	int file_sync = 0, dir_sync = 0;
	for (int i = 0; i < 24; i++) {
		char key[40];
		snprintf(key, sizeof key, "index/k%d", i);
		CHECK(store_put(st, key, "data", 4, 0) == DRE_EIO);
		CHECK(msg_has(": Input/output error"));
		if (msg_has("): fsync:")) {
			file_sync++;
			CHECK(!exists(key)); /* not durable: not placed */
		} else if (msg_has("cannot sync its directory")) {
			dir_sync++;
			CHECK(exists(key)); /* placed, as after a real failure of that fsync */
		} else {
			CHECK(i == 0 && msg_has("cannot create or sync directory")); /* the first put makes index/ */
		}
	}
	CHECK(file_sync > 0 && dir_sync > 0);
	CHECK(!tmp_left("index"));
	store_close(st);
}

static void test_fsync_failures_of_the_file_and_of_its_directory(void)
{
	in_child("seed=9,rate=1,kinds=fsync", fsync_case);
}

static void rate_zero_case(void)
{
	store *st = open_store();
	for (int i = 0; i < 50; i++) {
		char key[40], buf[4];
		snprintf(key, sizeof key, "locks/k%d", i);
		CHECK_RC(store_put(st, key, "lock", 4, 0));
		CHECK_RC(store_get(st, key, 0, 4, buf));
		CHECK_RC(store_del(st, key));
	}
	store_close(st);
}

static void test_rate_zero_injects_nothing(void)
{
	in_child("seed=1,rate=0", rate_zero_case);
}

/* rate 0.5 over many operations: about half fail, and each failure is one of the kinds asked for */
static void rate_half_case(void)
{
	store *st = open_store();
	int failed = 0;
	for (int i = 0; i < 400; i++) {
		char key[40];
		snprintf(key, sizeof key, "packs/dd/k%d", i % 20);
		int rc = store_put(st, key, "v", 1, 0);
		if (rc < 0) {
			failed++;
			CHECK(rc == DRE_EIO && (msg_has("Input/output error") || msg_has("No space left on device")));
		}
	}
	CHECK(failed > 120 && failed < 280); /* 0.5 × 400 less the short writes, which succeed */
	store_close(st);
}

static void test_rate_is_per_operation(void)
{
	in_child("seed=11,rate=0.5,kinds=eio,enospc,short-write,fsync", rate_half_case);
}

static void stats_case(void)
{
	store *st = open_store();
	plant("keys/k", "key", 3);
	char buf[3];
	for (int i = 0; i < 5; i++)
		CHECK(store_get(st, "keys/k", 0, 3, buf) == DRE_EIO);
	CHECK(store_put(st, "keys/n", "n", 1, 0) == DRE_EIO);
	store_close(st);
	char line[1024];
	stats_line(line, sizeof line);
	CHECK(strstr(line, "\"driver\": \"local\"") != NULL);
	CHECK(strstr(line, "\"seed\": 21,") != NULL);
	CHECK(strstr(line, "\"put\": 1, \"get\": 5,") != NULL);
	CHECK(strstr(line, "\"eio\": 6,") != NULL);
	CHECK(strstr(line, "\"latency\": 6}") != NULL); /* every one of the 6 operations (plant is not one) */
}

static void test_stats_count_operations_and_faults(void)
{
	char spec[4400];
	set_stats_path();
	snprintf(spec, sizeof spec, "seed=21,rate=1,kinds=eio,latency-ms=1,stats=%s", stats_path);
	in_child(spec, stats_case);
	unlink(stats_path);
}

static const char *bad_spec_want;

static void bad_spec_case(void)
{
	store *st = NULL;
	CHECK(store_open(base_dir, NULL, &st) == DRE_EINVAL);
	CHECK(msg_has("DRE_TEST_STORE_FAULTS=\""));
	if (!msg_has(bad_spec_want)) {
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err_msg(), bad_spec_want);
		CHECK(0);
	}
	CHECK(st == NULL);
}

static void test_bad_specs_are_refused(void)
{
	static const char *const cases[][2] = {
		{"seed=1", "rate= is missing"},
		{"rate=abc", "rate \"abc\" is not a number from 0 to 1"},
		{"rate=1.5", "rate \"1.5\" is not a number from 0 to 1"},
		{"rate=-0.1", "is not a number from 0 to 1"},
		{"rate=nan", "is not a number from 0 to 1"},
		{"rate=0.1,kinds=eio,bogus", "unknown fault kind \"bogus\""},
		{"rate=0.1,kinds=latency", "unknown fault kind \"latency\""},
		{"rate=0.1,eio", "\"eio\" is neither key=value nor a value of kinds= or ops="},
		{"rate=0.1,colour=red", "unknown key \"colour\""},
		{"rate=0.1,ops=get,write", "unknown operation \"write\""},
		{"rate=0.1,ops=other", "unknown operation \"other\""},
		{"rate=0.1,match=", "match wants a key prefix"},
		{"rate=0.1,seed=x", "seed wants a whole number"},
		{"rate=0.1,seed=-1", "seed wants a whole number"},
		{"rate=0.1,latency-ms=60001", "latency-ms (at most 60000) wants a whole number"},
		{"rate=0.1,stats=", "stats wants a file name"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bad_spec_want = cases[i][1];
		in_child(cases[i][0], bad_spec_case);
	}
}

int main(void)
{
	RUN(test_unset_leaves_the_store_alone);
	RUN(test_eio_fails_every_operation_like_a_disk);
	RUN(test_eio_fails_a_listing);
	RUN(test_enospc_fails_puts_and_leaves_no_temporary);
	RUN(test_short_writes_and_reads_still_move_every_byte);
	RUN(test_fsync_failures_of_the_file_and_of_its_directory);
	RUN(test_rate_zero_injects_nothing);
	RUN(test_rate_is_per_operation);
	RUN(test_ops_and_match_narrow_the_faults);
	RUN(test_stats_count_operations_and_faults);
	RUN(test_bad_specs_are_refused);
	return unit_exit();
}
