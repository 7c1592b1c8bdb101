/* Unit tests of the local directory store driver (store/local.c). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/err.h"
#include "store/store.h"
#include "tests/unit/unit.h"

/* ---- helpers ---- */

static char base_dir[4096]; /* a fresh directory per test */


static void make_base(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(base_dir, sizeof base_dir, "%s/dre-tsl.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(base_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
}

static void rm_base(void)
{
	unit_rm_tree(base_dir);
}

static void path_in_base(char *out, size_t cap, const char *rel)
{
	snprintf(out, cap, "%s/%s", base_dir, rel);
}

static store *open_repo(const char *rel)
{
	char p[4200];
	store *st = NULL;
	path_in_base(p, sizeof p, rel);
	int rc = store_local_open(p, &st);
	if (rc < 0) {
		fprintf(stderr, "store_local_open %s: %s\n", p, err_msg());
		exit(2);
	}
	return st;
}

static int count_dot_files_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	return path[ftw->base] == '.' ? 1 : 0;
}

/* 1 when any name under dir starts with "." (a leftover temporary). */
static int has_dot_files(const char *dir)
{
	return nftw(dir, count_dot_files_cb, 16, FTW_PHYS) == 1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* list collector */
#define MAX_SEEN 4096
struct seen {
	int n;
	char *key[MAX_SEEN];
	uint64_t size[MAX_SEEN];
	int stop_after; /* return -42 after this many calls (0: never) */
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;
	if (s->n < MAX_SEEN) {
		s->key[s->n] = strdup(key);
		s->size[s->n] = size;
	}
	s->n++;
	if (s->stop_after && s->n >= s->stop_after)
		return -42;
	return 0;
}

static void seen_free(struct seen *s)
{
	for (int i = 0; i < s->n && i < MAX_SEEN; i++)
		free(s->key[i]);
	memset(s, 0, sizeof *s);
}

/* size of key in s, or -1 */
static int64_t seen_size(const struct seen *s, const char *key)
{
	for (int i = 0; i < s->n && i < MAX_SEEN; i++)
		if (strcmp(s->key[i], key) == 0)
			return (int64_t)s->size[i];
	return -1;
}

static int list_count(store *st, const char *prefix, struct seen *s)
{
	seen_free(s);
	int rc = store_list(st, prefix, collect, s);
	return rc < 0 ? rc : s->n;
}

/* ---- tests ---- */

static void test_round_trip(void)
{
	make_base();
	char root[4200];
	path_in_base(root, sizeof root, "a/b/repo");
	char given[4300];
	snprintf(given, sizeof given, "%s//", root); /* the root does not exist yet; trailing slashes are fine */
	store *st = NULL;
	CHECK_RC(store_local_open(given, &st));
	if (st == NULL)
		return;
	CHECK(strcmp(st->url, given) == 0);
	CHECK(strcmp(st->drv->name, "local") == 0);

	size_t big = 1 << 20;
	uint8_t *a = malloc(big), *b = malloc(big);
	unit_fill(a, big, 1);
	CHECK_RC(store_put(st, "config", "hello", 5, STORE_PUT_CREATE_ONCE));
	CHECK_RC(store_put(st, "packs/ab/ab12cd", a, big, 0));
	CHECK_RC(store_put(st, "empty", "", 0, 0));

	uint64_t size = 0;
	CHECK_RC(store_stat(st, "config", &size));
	CHECK(size == 5);
	CHECK_RC(store_stat(st, "packs/ab/ab12cd", &size));
	CHECK(size == big);
	CHECK_RC(store_stat(st, "empty", &size));
	CHECK(size == 0);

	char small[8] = {0};
	CHECK_RC(store_get(st, "config", 0, 5, small));
	CHECK(memcmp(small, "hello", 5) == 0);
	memset(b, 0, big);
	CHECK_RC(store_get(st, "packs/ab/ab12cd", 0, big, b));
	CHECK(memcmp(a, b, big) == 0);
	CHECK_RC(store_get(st, "empty", 0, 0, small));

	uint8_t *loaded = NULL;
	size_t loaded_len = 0;
	CHECK_RC(store_load(st, "packs/ab/ab12cd", big, &loaded, &loaded_len));
	CHECK(loaded_len == big && loaded && memcmp(loaded, a, big) == 0);
	free(loaded);
	CHECK(store_load(st, "packs/ab/ab12cd", big - 1, &loaded, &loaded_len) == DRE_ECORRUPT);

	/* the file is where the key says */
	char p[4400];
	struct stat sb;
	snprintf(p, sizeof p, "%s/packs/ab/ab12cd", root);
	CHECK(stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == big);

	struct seen s = {0};
	CHECK(list_count(st, "", &s) == 3);
	CHECK(seen_size(&s, "config") == 5);
	CHECK(seen_size(&s, "packs/ab/ab12cd") == (int64_t)big);
	CHECK(seen_size(&s, "empty") == 0);
	CHECK(list_count(st, "packs/", &s) == 1);
	CHECK(seen_size(&s, "packs/ab/ab12cd") == (int64_t)big);

	/* overwrite without flags replaces */
	unit_fill(b, big, 2);
	CHECK_RC(store_put(st, "packs/ab/ab12cd", b, 1000, 0));
	CHECK_RC(store_stat(st, "packs/ab/ab12cd", &size));
	CHECK(size == 1000);
	memset(a, 0, 1000);
	CHECK_RC(store_get(st, "packs/ab/ab12cd", 0, 1000, a));
	CHECK(memcmp(a, b, 1000) == 0);

	CHECK_RC(store_del(st, "packs/ab/ab12cd"));
	CHECK(store_stat(st, "packs/ab/ab12cd", &size) == DRE_ENOTFOUND);
	CHECK_RC(store_del(st, "packs/ab/ab12cd")); /* missing is fine */
	CHECK_RC(store_del(st, "nodir/at/all"));
	CHECK(list_count(st, "packs/", &s) == 0);
	CHECK(list_count(st, "", &s) == 2);
	CHECK(!has_dot_files(root));
	seen_free(&s);

	/* store_open: plain path and file:// */
	store *st2 = NULL;
	char url[4400];
	snprintf(url, sizeof url, "file://%s", root);
	CHECK_RC(store_open(url, NULL, &st2));
	if (st2) {
		CHECK_RC(store_get(st2, "config", 0, 5, small));
		CHECK(memcmp(small, "hello", 5) == 0);
		store_close(st2);
	}
	store_close(st);
	free(a);
	free(b);
	rm_base();
}

static void test_ranges(void)
{
	make_base();
	store *st = open_repo("repo");
	uint8_t data[10000], out[10000];
	unit_fill(data, sizeof data, 3);
	CHECK_RC(store_put(st, "packs/00/r", data, sizeof data, 0));
	static const struct {
		uint64_t off;
		size_t len;
	} r[] = {{0, 0}, {0, 1}, {9999, 1}, {5000, 5000}, {1234, 100}, {0, 10000}, {10000, 0}, {4095, 4097}};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		memset(out, 0xee, sizeof out);
		CHECK_RC(store_get(st, "packs/00/r", r[i].off, r[i].len, out));
		CHECK(memcmp(out, data + r[i].off, r[i].len) == 0);
		CHECK(r[i].len == sizeof out || out[r[i].len] == 0xee); /* not a byte more */
	}
	store_close(st);
	rm_base();
}

/* Pages of path's first len bytes in the page cache, or -1 when that cannot be told. */
static long resident_pages(const char *path, size_t len)
{
	long page = sysconf(_SC_PAGESIZE), n = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	size_t npages = (len + (size_t)page - 1) / (size_t)page;
	unsigned char *vec = malloc(npages);
	if (vec == NULL || mincore(m, len, vec) < 0)
		n = -1;
	for (size_t i = 0; n >= 0 && i < npages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(m, len);
	return n;
}

/* Whether dir's file system takes an O_DIRECT write of one aligned block. */
static bool takes_direct(const char *dir)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/.direct-probe", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_DIRECT, 0600);
	void *b = store_buffer_alloc(STORE_DIRECT_ALIGN);
	bool ok = fd >= 0 && b != NULL && (memset(b, 0, STORE_DIRECT_ALIGN), write(fd, b, STORE_DIRECT_ALIGN)) ==
						  (ssize_t)STORE_DIRECT_ALIGN;
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(b);
	return ok;
}

/*
 * Large puts from aligned buffers go out with O_DIRECT (local.c) and must read back byte for byte whatever
 * their length; unaligned or small buffers take the plain write. Where the file system takes O_DIRECT, the
 * aligned object's body must not be in the page cache afterwards while the unaligned one's is, which shows
 * that each went the way it should. tmpfs (/dev/shm), where O_DIRECT may be refused, must still work.
 */
static void direct_round_trip(const char *root, bool check_cache)
{
	char dir[4200], path[4300];
	store *st = NULL;
	snprintf(dir, sizeof dir, "%s/direct-repo", root);
	CHECK_RC(store_local_open(dir, &st));
	if (st == NULL)
		return;
	const size_t big = (3u << 20) + 1234;
	uint8_t *al = store_buffer_alloc(big + 1), *out = malloc(big + 1);
	CHECK(al != NULL && out != NULL && ((uintptr_t)al & (STORE_DIRECT_ALIGN - 1)) == 0);
	if (al == NULL || out == NULL)
		goto done;
	static const struct {
		const char *key;
		size_t off, len;
	} cases[] = {
		{"packs/00/aligned-tail", 0, (3u << 20) + 1234}, /* direct body, buffered tail */
		{"packs/00/aligned-exact", 0, 2u << 20},         /* all direct */
		{"packs/00/unaligned", 1, 3u << 20},             /* buffer not aligned: plain write */
		{"packs/00/small", 0, 1000},                     /* below the direct minimum */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const uint8_t *src = al + cases[i].off;
		size_t len = cases[i].len;
		unit_fill(al, big + 1, (int)i + 7);
		CHECK_RC(store_put(st, cases[i].key, src, len, 0));
		uint64_t size = 0;
		CHECK_RC(store_stat(st, cases[i].key, &size));
		CHECK(size == len);
		snprintf(path, sizeof path, "%s/%s", dir, cases[i].key);
		if (check_cache && len >= (1u << 20)) {
			long pages = resident_pages(path, len), all = (long)(len / 4096);
			if (cases[i].off == 0)
				CHECK(pages >= 0 && pages <= 2); /* at most the tail's page */
			else
				CHECK(pages > all / 2);
			if (cases[i].off == 0 ? pages > 2 : pages <= all / 2)
				fprintf(stderr, "%s: %ld of %ld pages in the page cache\n", cases[i].key, pages, all);
		}
		memset(out, 0xee, big + 1);
		CHECK_RC(store_get(st, cases[i].key, 0, len, out));
		CHECK(memcmp(out, src, len) == 0);
	}
	CHECK(!has_dot_files(dir));
done:
	free(al);
	free(out);
	store_close(st);
}

static void test_direct_put(void)
{
	make_base();
	bool direct = takes_direct(base_dir);
	if (!direct)
		fprintf(stderr, "# %s does not take O_DIRECT: only the round trip is checked\n", base_dir);
	direct_round_trip(base_dir, direct);
	rm_base();

	char shm[] = "/dev/shm/dre-tsl.XXXXXX";
	if (mkdtemp(shm) != NULL) {
		direct_round_trip(shm, false);
		snprintf(base_dir, sizeof base_dir, "%s", shm);
		rm_base();
	}
}

static void test_truncated(void)
{
	make_base();
	store *st = open_repo("repo");
	uint8_t data[10000], out[10000];
	unit_fill(data, sizeof data, 4);
	CHECK_RC(store_put(st, "packs/00/t", data, sizeof data, 0));
	CHECK(store_get(st, "packs/00/t", 9990, 20, out) == DRE_ECORRUPT);
	CHECK(strstr(err_msg(), "packs/00/t") != NULL);
	CHECK(strstr(err_msg(), "truncated") != NULL);
	CHECK(strstr(err_msg(), "9990..10010") != NULL);
	CHECK(strstr(err_msg(), "it has 10000") != NULL);
	CHECK(store_get(st, "packs/00/t", 20000, 10, out) == DRE_ECORRUPT);
	CHECK(store_get(st, "packs/00/t", 10001, 0, out) == DRE_ECORRUPT);
	CHECK(store_get(st, "packs/00/t", UINT64_MAX - 4, 10, out) == DRE_ECORRUPT);

	/* truncated behind the store's back */
	char p[4200];
	path_in_base(p, sizeof p, "repo/packs/00/t");
	CHECK(truncate(p, 100) == 0);
	CHECK(store_get(st, "packs/00/t", 0, 1000, out) == DRE_ECORRUPT);
	CHECK(strstr(err_msg(), "it has 100") != NULL);
	CHECK_RC(store_get(st, "packs/00/t", 0, 100, out));
	CHECK(memcmp(out, data, 100) == 0);
	store_close(st);
	rm_base();
}

static void test_missing(void)
{
	make_base();
	store *st = open_repo("never-created");
	uint8_t out[16];
	uint64_t size;
	struct seen s = {0};
	CHECK(store_get(st, "config", 0, 1, out) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "config") != NULL && strstr(err_msg(), "not found") != NULL);
	CHECK(strstr(err_msg(), "never-created") != NULL);
	CHECK(store_stat(st, "config", &size) == DRE_ENOTFOUND);
	CHECK(list_count(st, "", &s) == 0);
	CHECK(list_count(st, "snapshots/", &s) == 0);
	CHECK_RC(store_del(st, "config"));
	store_close(st);

	st = open_repo("repo");
	CHECK_RC(store_put(st, "config", "x", 1, 0));
	CHECK(store_get(st, "packs/00/nothere", 0, 1, out) == DRE_ENOTFOUND);
	CHECK(strstr(err_msg(), "packs/00/nothere") != NULL);
	CHECK(store_stat(st, "packs/00/nothere", &size) == DRE_ENOTFOUND);
	CHECK(store_get(st, "config/x", 0, 1, out) == DRE_ENOTFOUND); /* a file where a directory would be */
	CHECK(store_stat(st, "config/x", &size) == DRE_ENOTFOUND);
	CHECK_RC(store_del(st, "config/x"));
	CHECK(list_count(st, "config/", &s) == 0);
	CHECK_RC(store_put(st, "packs/00/p", "y", 1, 0));
	CHECK(store_stat(st, "packs/00", &size) == DRE_ENOTFOUND); /* a directory is not an object */
	CHECK(store_get(st, "packs", 0, 1, out) == DRE_ENOTFOUND);
	store_close(st);
	seen_free(&s);
	rm_base();
}

static void test_create_once(void)
{
	make_base();
	store *st = open_repo("repo");
	char out[8] = {0};
	CHECK_RC(store_put(st, "snapshots/0011", "first", 5, STORE_PUT_CREATE_ONCE));
	CHECK(store_put(st, "snapshots/0011", "other", 5, STORE_PUT_CREATE_ONCE) == DRE_EEXIST);
	CHECK(strstr(err_msg(), "object snapshots/0011 already exists") != NULL);
	CHECK_RC(store_get(st, "snapshots/0011", 0, 5, out));
	CHECK(memcmp(out, "first", 5) == 0);
	CHECK(store_put(st, "snapshots/0011", "longer one", 10, STORE_PUT_CREATE_ONCE) == DRE_EEXIST);
	uint64_t size = 0;
	CHECK_RC(store_stat(st, "snapshots/0011", &size));
	CHECK(size == 5);
	char root[4200];
	path_in_base(root, sizeof root, "repo");
	CHECK(!has_dot_files(root));

	/* a write that fails after the temporary exists removes it and names key and path */
	CHECK_RC(store_put(st, "snap/a/b", "z", 1, 0));
	int rc = store_put(st, "snap/a", "z", 1, 0); /* "snap/a" is a directory */
	CHECK(rc == DRE_EIO);
	CHECK(strstr(err_msg(), "cannot write object snap/a (") != NULL);
	CHECK(strstr(err_msg(), "/repo/snap/a)") != NULL);
	CHECK(!has_dot_files(root));
	store_close(st);
	rm_base();
}

static void test_invalid_keys(void)
{
	make_base();
	store *st = open_repo("repo");
	static const char *bad[] = {"",          "/abs",    ".hidden", "a/../b", "..",   "a/..",  "a//b", "A",
				    "a b",       "a/",      "a/.tmp",  "ü",      "a\\b", "a:b",  "../x", "a/./b",
				    "snapshots/", "packs/AB"};
	char out[4];
	uint64_t size;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *k = bad[i];
		int rc = store_put(st, k, "x", 1, 0);
		CHECK(rc == DRE_EINVAL);
		if (*k && strstr(err_msg(), k) == NULL) {
			fprintf(stderr, "message does not name key \"%s\": %s\n", k, err_msg());
			unit_failed_checks++;
		}
		CHECK(store_put(st, k, "x", 1, STORE_PUT_CREATE_ONCE) == DRE_EINVAL);
		CHECK(store_get(st, k, 0, 1, out) == DRE_EINVAL);
		CHECK(store_stat(st, k, &size) == DRE_EINVAL);
		CHECK(store_del(st, k) == DRE_EINVAL);
	}
	/* the good ones */
	static const char *good[] = {"config", "keys/0a1b", "packs/ff/ff00-x_y.z", "a.b", "x/y/z/w"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK_RC(store_put(st, good[i], "x", 1, 0));
	/* list prefixes */
	struct seen s = {0};
	CHECK(list_count(st, "../", &s) == DRE_EINVAL);
	CHECK(list_count(st, "/", &s) == DRE_EINVAL);
	CHECK(list_count(st, "a//", &s) == DRE_EINVAL);
	CHECK(list_count(st, "Keys/", &s) == DRE_EINVAL);
	CHECK(list_count(st, "", &s) == 5);
	/* nothing escaped the root */
	char p[4200];
	struct stat sb;
	path_in_base(p, sizeof p, "b");
	CHECK(stat(p, &sb) < 0);
	path_in_base(p, sizeof p, "x");
	CHECK(stat(p, &sb) < 0);
	seen_free(&s);
	store_close(st);
	rm_base();
}

static void test_list(void)
{
	make_base();
	store *st = open_repo("repo");
	static const char *keys[] = {"snapshots/s1", "snapshots/s2", "packs/00/p1", "packs/ff/p2", "packs/ff/p3",
				     "index/i1",     "config",       "keys/k1"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		CHECK_RC(store_put(st, keys[i], "0123456789", i + 1, 0));
	/* temporaries and hidden directories the listing must skip */
	char p[4200];
	path_in_base(p, sizeof p, "repo/packs/ff/.tmp.1.abc");
	write_file(p, "junk");
	path_in_base(p, sizeof p, "repo/.tmp.2.def");
	write_file(p, "junk");
	path_in_base(p, sizeof p, "repo/snapshots/.tmp.3.123");
	write_file(p, "junk");
	path_in_base(p, sizeof p, "repo/packs/.hidden");
	CHECK(mkdir(p, 0755) == 0);
	path_in_base(p, sizeof p, "repo/packs/.hidden/p9");
	write_file(p, "junk");
	/* a symlink to an object counts like the object; a dangling one is skipped */
	path_in_base(p, sizeof p, "repo/keys/k2");
	CHECK(symlink("k1", p) == 0);
	path_in_base(p, sizeof p, "repo/keys/k3");
	CHECK(symlink("nothere", p) == 0);

	struct seen s = {0};
	CHECK(list_count(st, "", &s) == 9);
	CHECK(list_count(st, "packs/", &s) == 3);
	CHECK(seen_size(&s, "packs/00/p1") == 3);
	CHECK(seen_size(&s, "packs/ff/p2") == 4);
	CHECK(seen_size(&s, "packs/ff/p3") == 5);
	CHECK(list_count(st, "packs/f", &s) == 2);
	CHECK(list_count(st, "packs/ff/", &s) == 2);
	CHECK(list_count(st, "packs/ff/p2", &s) == 1);
	CHECK(list_count(st, "packs/ff/p", &s) == 2);
	CHECK(list_count(st, "packs/ff/p23", &s) == 0);
	CHECK(list_count(st, "pack", &s) == 3);
	CHECK(list_count(st, "packs", &s) == 3);
	CHECK(list_count(st, "snapshots/", &s) == 2);
	CHECK(seen_size(&s, "snapshots/s1") == 1);
	CHECK(list_count(st, "s", &s) == 2);
	CHECK(list_count(st, "keys/", &s) == 2);
	CHECK(seen_size(&s, "keys/k2") == 8);
	CHECK(list_count(st, "index/", &s) == 1);
	CHECK(list_count(st, "config", &s) == 1);
	CHECK(list_count(st, "nothere/", &s) == 0);
	CHECK(list_count(st, "nothere/deeper/", &s) == 0);
	CHECK(list_count(st, "config/", &s) == 0); /* a file where the start directory would be */

	/* a negative callback return stops the listing and comes back */
	seen_free(&s);
	s.stop_after = 2;
	CHECK(store_list(st, "", collect, &s) == -42);
	CHECK(s.n == 2);
	seen_free(&s);
	store_close(st);
	rm_base();
}

static void test_list_many(void)
{
	make_base();
	store *st = open_repo("repo");
	enum { N = 2300 };
	char key[64];
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "packs/%02x/%08x", (unsigned)(i * 7) & 0xff, (unsigned)i);
		int rc = store_put(st, key, key, (size_t)(i % 50), 0);
		if (rc < 0) {
			CHECK_RC(rc);
			break;
		}
	}
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "index/%08x", (unsigned)i);
		CHECK_RC(store_put(st, key, "i", 1, 0));
	}
	static unsigned char hit[N];
	struct seen s = {0};
	CHECK(list_count(st, "packs/", &s) == N);
	int bad = 0;
	for (int i = 0; i < s.n && i < MAX_SEEN; i++) {
		unsigned d, v;
		if (sscanf(s.key[i], "packs/%2x/%8x", &d, &v) != 2 || v >= N || d != ((v * 7) & 0xff) ||
		    s.size[i] != v % 50 || hit[v]++)
			bad++;
	}
	CHECK(bad == 0);
	for (int i = 0; i < N; i++)
		CHECK(hit[i] == 1);
	CHECK(list_count(st, "index/", &s) == 50);
	CHECK(list_count(st, "", &s) == N + 50);
	seen_free(&s);
	store_close(st);
	rm_base();
}

/* ---- concurrency ---- */

enum { CONC_OBJS = 4, CONC_SIZE = 1 << 20, CONC_READS = 3000 };
static uint8_t *conc_data[CONC_OBJS];

struct conc_arg {
	store *st;
	int id;
	int errors;
};

static void *conc_reader(void *p)
{
	struct conc_arg *a = p;
	uint32_t x = 0x9e3779b9u * (uint32_t)(a->id + 1);
	uint8_t *buf = malloc(65536);
	char key[64];
	for (int i = 0; i < CONC_READS; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		int obj = (int)(x % CONC_OBJS);
		size_t len = (x >> 8) % 65536;
		uint64_t off = (x >> 3) % (CONC_SIZE - len + 1);
		snprintf(key, sizeof key, "packs/0%d/obj%d", obj, obj);
		if (store_get(a->st, key, off, len, buf) < 0 || memcmp(buf, conc_data[obj] + off, len) != 0)
			a->errors++;
		if (i % 500 == 0) { /* errors stay per thread */
			if (store_get(a->st, "packs/00/missing", 0, 1, buf) != DRE_ENOTFOUND ||
			    strstr(err_msg(), "packs/00/missing") == NULL)
				a->errors++;
		}
	}
	free(buf);
	return NULL;
}

static void *conc_writer(void *p)
{
	struct conc_arg *a = p;
	char key[64];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "packs/%02x/w%d-%d", i % 64, a->id, i);
		if (store_put(a->st, key, key, strlen(key), 0) < 0)
			a->errors++;
	}
	return NULL;
}

static void test_concurrent_get(void)
{
	make_base();
	store *st = open_repo("repo");
	char key[64];
	for (int i = 0; i < CONC_OBJS; i++) {
		conc_data[i] = malloc(CONC_SIZE);
		unit_fill(conc_data[i], CONC_SIZE, 100 + (uint32_t)i);
		snprintf(key, sizeof key, "packs/0%d/obj%d", i, i);
		CHECK_RC(store_put(st, key, conc_data[i], CONC_SIZE, 0));
	}
	pthread_t th[6];
	struct conc_arg args[6];
	for (int i = 0; i < 6; i++) {
		args[i] = (struct conc_arg){.st = st, .id = i};
		CHECK(pthread_create(&th[i], NULL, i < 4 ? conc_reader : conc_writer, &args[i]) == 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].errors == 0);
	}
	struct seen s = {0};
	CHECK(list_count(st, "packs/", &s) == CONC_OBJS + 400);
	seen_free(&s);
	for (int i = 0; i < CONC_OBJS; i++)
		free(conc_data[i]);
	store_close(st);
	rm_base();
}

/* A directory in the store's cache that disappears is created again. */
static void test_dir_removed(void)
{
	make_base();
	store *st = open_repo("repo");
	CHECK_RC(store_put(st, "packs/aa/x", "1", 1, 0));
	rm_base();
	CHECK(mkdir(base_dir, 0700) == 0);
	CHECK_RC(store_put(st, "packs/aa/y", "2", 1, 0));
	CHECK_RC(store_put(st, "packs/aa/z", "3", 1, STORE_PUT_CREATE_ONCE));
	struct seen s = {0};
	CHECK(list_count(st, "packs/", &s) == 2);
	seen_free(&s);
	store_close(st);
	rm_base();
}

/* ---- permissions ---- */

static int perm_put_fails(store *st, const char *key)
{
	int rc = store_put(st, key, "x", 1, 0);
	if (rc != DRE_EPERM) {
		fprintf(stderr, "put %s: got %d (%s), wanted DRE_EPERM\n", key, rc, err_msg());
		return 0;
	}
	if (strstr(err_msg(), key) == NULL) {
		fprintf(stderr, "put %s: message does not name the key: %s\n", key, err_msg());
		return 0;
	}
	fprintf(stderr, "put %s as uid %ld: %s\n", key, (long)geteuid(), err_msg());
	return 1;
}

/* Returns 0 when run, 1 when it cannot be tested here (then the caller prints a skip). */
static int test_permission(void)
{
	make_base();
	char root[4200];
	path_in_base(root, sizeof root, "repo");
	store *st = open_repo("repo");
	CHECK_RC(store_put(st, "packs/ab/ab01", "x", 1, 0)); /* owned by whoever runs the test */
	CHECK(chmod(base_dir, 0755) == 0);
	int skipped = 0;

	if (geteuid() == 0) {
		/* root: a child that becomes nobody can neither write into a root-owned repository nor read it
		 * (private: directories 0700, objects 0600) */
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
				perror("setuid");
				_exit(3);
			}
			int ok = perm_put_fails(st, "packs/ab/ab02") /* directory exists: temporary file */
				 && perm_put_fails(st, "packs/cd/cd01") /* new directory */
				 && perm_put_fails(st, "snapshots/s1");
			store *st2 = NULL;
			if (store_local_open(root, &st2) < 0) /* fresh handle: nothing cached */
				_exit(4);
			ok = ok && perm_put_fails(st2, "packs/ab/ab03");
			if (ok && store_put(st2, "config", "x", 1, STORE_PUT_CREATE_ONCE) != DRE_EPERM)
				ok = 0;
			char out[1];
			if (ok && store_get(st2, "packs/ab/ab01", 0, 1, out) != DRE_EPERM) {
				fprintf(stderr, "get as nobody: wanted DRE_EPERM, got: %s\n", err_msg());
				ok = 0;
			}
			store_close(st2);
			_exit(ok ? 0 : 1);
		}
		int status = 0;
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	} else {
		/* not root: a read-only directory does the same unless we can override permissions */
		char p[4400];
		snprintf(p, sizeof p, "%s/packs/ab", root);
		CHECK(chmod(p, 0555) == 0);
		snprintf(p, sizeof p, "%s/packs/ab/probe", root);
		int fd = open(p, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0) { /* CAP_DAC_OVERRIDE or similar */
			close(fd);
			unlink(p);
			skipped = 1;
		} else {
			CHECK(perm_put_fails(st, "packs/ab/ab02"));
		}
		snprintf(p, sizeof p, "%s/packs/ab", root);
		chmod(p, 0755);
	}
	CHECK(!has_dot_files(root));
	store_close(st);
	rm_base();
	return skipped;
}

/* ---- temporaries of killed puts, reported as unfinished uploads ---- */

#define PACK_KEY "packs/3f/3f9a0123456789abcdef0123456789abcdef0123456789abcdef01234567"

struct upload_seen {
	int n;
	char key[8][200], id[8][300], initiated[8][40];
	int stop_rc; /* returned by the callback when not 0 */
};

static int upload_collect(void *arg, const char *key, const char *upload_id, const char *initiated)
{
	struct upload_seen *u = arg;
	if (u->n < 8) {
		snprintf(u->key[u->n], sizeof u->key[0], "%s", key);
		snprintf(u->id[u->n], sizeof u->id[0], "%s", upload_id);
		snprintf(u->initiated[u->n], sizeof u->initiated[0], "%s", initiated);
	}
	u->n++;
	return u->stop_rc;
}

static int upload_find(const struct upload_seen *u, const char *key)
{
	for (int i = 0; i < u->n && i < 8; i++)
		if (strcmp(u->key[i], key) == 0)
			return i;
	return -1;
}

static void kill_self(const char *point)
{
	if (strcmp(point, "store-put-synced") == 0)
		raise(SIGKILL);
}

/* A put killed between writing its temporary and moving it into place, as a crash would take it. */
static void put_killed(store *st, const char *key)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		store_test_point = kill_self;
		store_put(st, key, "half a pack", 11, 0);
		_exit(0); /* not reached: the kill point comes first */
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void plant(const char *rel, time_t mtime)
{
	char p[4200];
	path_in_base(p, sizeof p, rel);
	write_file(p, "junk");
	struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
	CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
}

static bool exists_in_base(const char *rel)
{
	char p[4200];
	struct stat sb;
	path_in_base(p, sizeof p, rel);
	return lstat(p, &sb) == 0;
}

static void test_uploads(void)
{
	make_base();
	store *st = open_repo("repo");
	CHECK_RC(store_put(st, "config", "c", 1, 0));
	CHECK_RC(store_put(st, "snapshots/s1", "s", 1, 0));
	struct upload_seen u = {0};
	CHECK_RC(store_uploads(st, upload_collect, &u));
	CHECK(u.n == 0); /* finished puts leave nothing */

	put_killed(st, PACK_KEY);
	CHECK(!exists_in_base("repo/" PACK_KEY));
	/* temporaries of a dre that did not put the key in the name, at the top and deeper, with a known time */
	plant("repo/.tmp.123.0123456789abcdef", 1700000000);
	plant("repo/snapshots/.tmp.77.fedcba9876543210", 1700000001);
	/* hidden files that are not temporaries of this driver: never reported, so never removed */
	plant("repo/snapshots/.tmp.1.abc", 1700000000);
	plant("repo/snapshots/.tmp.x.0123456789abcdef", 1700000000);
	plant("repo/snapshots/.tmp.1.0123456789ABCDEF", 1700000000);
	plant("repo/snapshots/.tmp.1.0123456789abcdef.", 1700000000);
	plant("repo/snapshots/.tmp.1.0123456789abcdef.Bad", 1700000000);
	plant("repo/snapshots/.other", 1700000000);
	char p[4200];
	path_in_base(p, sizeof p, "repo/snapshots/.tmp.2.0123456789abcdef.dir");
	CHECK(mkdir(p, 0700) == 0);

	memset(&u, 0, sizeof u);
	CHECK_RC(store_uploads(st, upload_collect, &u));
	CHECK(u.n == 3);
	int pack = upload_find(&u, PACK_KEY), top = upload_find(&u, ""), snap = upload_find(&u, "snapshots/");
	CHECK(pack >= 0 && top >= 0 && snap >= 0);
	if (pack < 0 || top < 0 || snap < 0) {
		store_close(st);
		rm_base();
		return;
	}
	/* the ID is the file's path under the root; its name carries the key */
	CHECK(strncmp(u.id[pack], "packs/3f/.tmp.", 14) == 0);
	const char *pack_base = PACK_KEY + strlen("packs/3f/");
	CHECK(strlen(u.id[pack]) > strlen(PACK_KEY) &&
	      strcmp(u.id[pack] + strlen(u.id[pack]) - strlen(pack_base), pack_base) == 0);
	CHECK(strlen(u.initiated[pack]) == 20 && u.initiated[pack][19] == 'Z');
	CHECK(strcmp(u.id[top], ".tmp.123.0123456789abcdef") == 0);
	CHECK(strcmp(u.initiated[top], "2023-11-14T22:13:20Z") == 0);
	CHECK(strcmp(u.id[snap], "snapshots/.tmp.77.fedcba9876543210") == 0);
	CHECK(strcmp(u.initiated[snap], "2023-11-14T22:13:21Z") == 0);

	/* list still hides every temporary */
	struct seen s = {0};
	CHECK(list_count(st, "", &s) == 2);
	CHECK(list_count(st, "packs/", &s) == 0);
	seen_free(&s);

	/* the callback's error stops the walk and is returned */
	struct upload_seen stop = {.stop_rc = -42};
	CHECK(store_uploads(st, upload_collect, &stop) == -42 && stop.n == 1);

	/* IDs that are not this store's temporaries are refused, and nothing is removed */
	static const char *bad[][2] = {
		{PACK_KEY, PACK_KEY},                                    /* an object */
		{"", "../.tmp.1.0123456789abcdef"},                     /* outside the root */
		{"", "packs/../.tmp.1.0123456789abcdef"},               /* ".." inside */
		{"", "/tmp/.tmp.1.0123456789abcdef"},                   /* absolute */
		{"snapshots/", "snapshots/.tmp.1.abc"},                 /* not a name tmp_create makes */
		{"snapshots/", "snapshots/.other"},                     /* another hidden file */
		{"snapshots/s1", "snapshots/.tmp.77.fedcba9876543210"}, /* not the key the name says */
		{"", "packs/.tmp.1.0123456789abcdef/x"},                /* a temporary's name as a directory */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = store_abort_upload(st, bad[i][0], bad[i][1]);
		CHECK(rc == DRE_EINVAL);
		if (rc != DRE_EINVAL)
			fprintf(stderr, "  abort_upload(%s, %s) gave %d\n", bad[i][0], bad[i][1], rc);
	}
	CHECK(store_abort_upload(st, "", NULL) == DRE_EINVAL);
	CHECK(strstr(err_msg(), "not a temporary file") != NULL);
	CHECK(exists_in_base("repo/snapshots/.other") && exists_in_base("repo/snapshots/.tmp.1.abc"));

	/* each reported one is removed; a second abort of the same finds it gone and is not an error */
	for (int i = 0; i < 3; i++)
		CHECK_RC(store_abort_upload(st, u.key[i], u.id[i]));
	CHECK_RC(store_abort_upload(st, u.key[pack], u.id[pack]));
	memset(&u, 0, sizeof u);
	CHECK_RC(store_uploads(st, upload_collect, &u));
	CHECK(u.n == 0);
	CHECK(exists_in_base("repo/snapshots/.other") && exists_in_base("repo/snapshots/.tmp.1.abc"));
	CHECK(exists_in_base("repo/snapshots/s1") && exists_in_base("repo/config"));
	/* the put that was killed goes through when run again */
	CHECK_RC(store_put(st, PACK_KEY, "a whole pack", 12, 0));
	CHECK(list_count(st, "packs/", &s) == 1);
	seen_free(&s);
	store_close(st);

	/* a store with nothing there yet (before init) has no uploads */
	st = open_repo("none");
	memset(&u, 0, sizeof u);
	CHECK_RC(store_uploads(st, upload_collect, &u));
	CHECK(u.n == 0);
	store_close(st);
	rm_base();
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_ranges);
	RUN(test_direct_put);
	RUN(test_truncated);
	RUN(test_missing);
	RUN(test_create_once);
	RUN(test_invalid_keys);
	RUN(test_list);
	RUN(test_list_many);
	RUN(test_concurrent_get);
	RUN(test_dir_removed);
	RUN(test_uploads);

	int before = unit_failed_checks;
	int skipped = test_permission();
	if (unit_failed_checks != before) {
		printf("not ok - test_permission\n");
		unit_failed_tests++;
	} else if (skipped) {
		printf("ok - test_permission # skip cannot drop write permission here\n");
	} else {
		printf("ok - test_permission\n");
	}
	fflush(stdout);
	return unit_exit();
}
