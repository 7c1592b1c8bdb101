/*
 * test_restore_fs.c — what a restore does to the target's file system (engine/pipeline/restore_fs.h): the
 * hard-link map stays within its bounds, the if-changed comparison looks at the content, and --delete's removal
 * keeps what it is told to and never follows a symlink.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/pipeline/restore_fs.h"
#include "store/err.h"
#include "tests/unit/unit.h"

static char scratch_dir[256];

static void scratch(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", scratch_dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_links_bounded(void)
{
	rfs_links m = {0};
	snap_node n = {.type = NODE_FILE, .nlink = 2, .size = 1};
	char path[32];
	bool added = false;
	for (uint64_t i = 0; i < RFS_LINKS_MAX; i++) {
		n.dev = i % 3;
		n.ino = i * 7919;
		snprintf(path, sizeof path, "p/%llu", (unsigned long long)i);
		CHECK_RC(rfs_links_add(&m, &n, path, false, &added));
		if (!added)
			break;
	}
	CHECK(added && m.n == RFS_LINKS_MAX);
	for (uint64_t i = 0; i < RFS_LINKS_MAX; i += 997) {
		rfs_link *l = rfs_links_find(&m, i % 3, i * 7919);
		snprintf(path, sizeof path, "p/%llu", (unsigned long long)i);
		CHECK(l != NULL && strcmp(l->path, path) == 0 && !l->done);
	}
	n.dev = 99;
	CHECK_RC(rfs_links_add(&m, &n, "one more", false, &added));
	CHECK(!added && m.n == RFS_LINKS_MAX); /* full: later links become copies */
	CHECK(rfs_links_find(&m, 99, n.ino) == NULL);
	rfs_links_free(&m);

	/* the paths' bytes are bounded too */
	char *long_path = malloc(4001);
	CHECK(long_path != NULL);
	if (long_path == NULL)
		return;
	memset(long_path, 'x', 4000);
	long_path[4000] = '\0';
	size_t count = 0;
	for (n.ino = 0;; n.ino++) {
		CHECK_RC(rfs_links_add(&m, &n, long_path, true, &added));
		if (!added)
			break;
		count++;
	}
	CHECK(count == RFS_LINK_BYTES / 4001 && m.bytes <= RFS_LINK_BYTES);
	rfs_links_free(&m);
	free(long_path);
}

static void node_of(const char *path, snap_node *n)
{
	struct stat st;
	uint8_t data[64];
	int fd = open(path, O_RDONLY);
	ssize_t len = fd >= 0 ? read(fd, data, sizeof data) : -1;
	CHECK(fd >= 0 && len >= 0 && fstat(fd, &st) == 0);
	if (fd >= 0)
		close(fd);
	memset(n, 0, sizeof *n);
	n->type = NODE_FILE;
	n->size = (uint64_t)st.st_size;
	n->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	XXH128_canonicalFromHash((XXH128_canonical_t *)n->xxh128, XXH3_128bits(data, len > 0 ? (size_t)len : 0));
}

static void test_is_node(void)
{
	char path[300], link[300];
	uint8_t piece[16]; /* smaller than the file: the comparison reads in pieces */
	struct stat st;
	snap_node n;
	bool same = false;
	scratch("cmp", path, sizeof path);
	write_file(path, "the content of a file");
	node_of(path, &n);
	CHECK(lstat(path, &st) == 0);
	CHECK_RC(rfs_is_node(path, &st, &n, piece, sizeof piece, &same));
	CHECK(same);

	/* other content, same size, same mtime: the hash decides */
	struct timespec keep[2] = {st.st_atim, st.st_mtim};
	write_file(path, "THE CONTENT OF A FILE");
	CHECK(utimensat(AT_FDCWD, path, keep, 0) == 0);
	CHECK(lstat(path, &st) == 0);
	CHECK_RC(rfs_is_node(path, &st, &n, piece, sizeof piece, &same));
	CHECK(!same);

	/* the same content with another mtime is not the node either (its mtime is put back by a rewrite) */
	write_file(path, "the content of a file");
	CHECK(lstat(path, &st) == 0);
	n.mtime_ns += 1;
	CHECK_RC(rfs_is_node(path, &st, &n, piece, sizeof piece, &same));
	CHECK(!same);

	/* symlinks: the target decides; a file is never a symlink's node */
	scratch("lnk", link, sizeof link);
	CHECK(symlink("cmp", link) == 0);
	snap_node ln = {.type = NODE_SYMLINK, .link = "cmp"};
	CHECK(lstat(link, &st) == 0);
	CHECK_RC(rfs_is_node(link, &st, &ln, piece, sizeof piece, &same));
	CHECK(same);
	ln.link = "cmp2";
	CHECK_RC(rfs_is_node(link, &st, &ln, piece, sizeof piece, &same));
	CHECK(!same);
	CHECK(lstat(path, &st) == 0);
	ln.link = "cmp";
	CHECK_RC(rfs_is_node(path, &st, &ln, piece, sizeof piece, &same));
	CHECK(!same);
}

static void test_remove_extra(void)
{
	char dir[300], path[400], outside[300], shown[4096];
	scratch("mirror", dir, sizeof dir);
	scratch("outside", outside, sizeof outside);
	CHECK(mkdir(dir, 0700) == 0 && mkdir(outside, 0700) == 0);
	snprintf(path, sizeof path, "%s/victim", outside);
	write_file(path, "must survive");
	const char *files[] = {"keep", "extra", "sub/kept-inside", "gone/a/b", "gone/c"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
			*s = '\0';
			mkdir(path, 0700);
			*s = '/';
		}
		write_file(path, files[i]);
	}
	snprintf(path, sizeof path, "%s/link-out", dir);
	CHECK(symlink(outside, path) == 0);

	char *keep[] = {"keep", "sub"}; /* sorted */
	size_t count = 0;
	CHECK_RC(rfs_remove_extra(dir, keep, 2, shown, sizeof shown, &count));
	CHECK(count == 6); /* extra, link-out, gone, gone/a, gone/a/b, gone/c */
	snprintf(path, sizeof path, "%s/keep", dir);
	CHECK(access(path, F_OK) == 0);
	snprintf(path, sizeof path, "%s/sub/kept-inside", dir);
	CHECK(access(path, F_OK) == 0); /* what is inside a kept directory is the caller's */
	snprintf(path, sizeof path, "%s/gone", dir);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/victim", outside);
	CHECK(access(path, F_OK) == 0); /* the symlink went, not what it points to */

	snprintf(path, sizeof path, "%s/nothing-here", dir);
	CHECK(rfs_remove_extra(path, keep, 2, shown, sizeof shown, &count) == DRE_ENOTFOUND);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch_dir, sizeof scratch_dir, "%s/test_restore_fs.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(scratch_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_links_bounded);
	RUN(test_is_node);
	RUN(test_remove_extra);
	unit_rm_tree(scratch_dir);
	return unit_exit();
}
