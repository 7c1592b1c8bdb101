/*
 * unit.h — the smallest test harness that does the job: each CHECK prints nothing on success and a
 * "file:line: expression" line on failure; each TEST prints "ok - name" or "not ok - name" (TAP-like), which
 * tests/run counts. main() calls RUN(name) for each test and returns unit_exit().
 */
#ifndef DRE_UNIT_H
#define DRE_UNIT_H

#include <ftw.h>
#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_failed_tests;

#define CHECK(cond)                                                                                            \
	do {                                                                                                   \
		if (!(cond)) {                                                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
			unit_failed_checks++;                                                                  \
		}                                                                                              \
	} while (0)

#define CHECK_RC(expr)                                                                                         \
	do {                                                                                                   \
		int unit_rc_ = (expr);                                                                         \
		if (unit_rc_ < 0) {                                                                            \
			fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #expr, unit_rc_,    \
				err_msg());                                                                    \
			unit_failed_checks++;                                                                  \
		}                                                                                              \
	} while (0)

#define RUN(fn)                                                                                                \
	do {                                                                                                   \
		int before_ = unit_failed_checks;                                                              \
		fn();                                                                                          \
		if (unit_failed_checks == before_) {                                                           \
			printf("ok - %s\n", #fn);                                                              \
		} else {                                                                                       \
			printf("not ok - %s\n", #fn);                                                          \
			unit_failed_tests++;                                                                   \
		}                                                                                              \
		fflush(stdout);                                                                                \
	} while (0)

/* n bytes of xorshift noise from seed: incompressible, and the same for the same seed. */
static inline void unit_fill(unsigned char *p, size_t n, unsigned seed)
{
	unsigned x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

static inline int unit_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes a test's scratch directory and everything in it, whatever the modes inside. */
static inline void unit_rm_tree(const char *dir)
{
	nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#ifdef DRE_ENGINE_H /* for the tests of the engine, which include engine/engine.h first */
/* A fresh repository dir/repoN (password "pw", scrypt cut down so tests stay fast); NULL after a failed check. */
static inline repo *unit_make_repo(const char *dir)
{
	static int n;
	char path[300];
	repo_params p;
	repo *r = NULL;
	repo_params_default(&p);
	p.scrypt_log2n = 10;
	snprintf(path, sizeof path, "%s/repo%d", dir, n++);
	CHECK_RC(engine_init(path, NULL, "pw", &p, &r));
	return r;
}
#endif

#ifdef DRE_SNAPSHOT_H
#include "engine/repo/list.h"
#include "engine/repo/pack.h"

/* Where unit_save_snapshot's list blobs go: one pack. */
struct unit_lists {
	pack_writer pw;
};

static inline int unit_list_sink(void *arg, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *blob, size_t len)
{
	struct unit_lists *u = arg;
	for (size_t i = 0; i < u->pw.n; i++)
		if (memcmp(u->pw.entries[i].id, id, CRYPTO_ID_LEN) == 0)
			return 0;
	return pack_writer_add_list(&u->pw, id, blob, len);
}

/* Writes a snapshot made by hand (a hostile one, too): its nodes, and ids (every node's chunk IDs in node
 * order) as list blobs in one pack and one index object, then the header with s's other fields. */
static inline int unit_save_snapshot(repo *r, snapshot *s, const snap_node *nodes, size_t n,
				     const uint8_t (*ids)[CRYPTO_ID_LEN], size_t nids)
{
	struct unit_lists u;
	list_writer nw, cw;
	index_builder ib = {0};
	chunk_index *idx = NULL;
	uint8_t rec[LIST_ENTRY_MAX];
	size_t len;
	uint64_t size;
	if (s->format != SNAP_FORMAT_LISTS) /* format 2 when asked for, else what dre writes */
		s->format = SNAP_FORMAT_NODES;
	int rc = pack_writer_init_sized(&u.pw, r, 1u << 20);
	if (rc == 0)
		rc = list_writer_init(&nw, r, LIST_NODES, unit_list_sink, &u);
	if (rc == 0)
		rc = list_writer_init(&cw, r, LIST_CHUNKS, unit_list_sink, &u);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = snap_node_encode(s->format, &nodes[i], rec, sizeof rec, &len);
		if (rc == 0)
			rc = list_writer_add(&nw, rec, len);
	}
	for (size_t i = 0; rc == 0 && i < nids; i++)
		rc = list_writer_add(&cw, ids[i], CRYPTO_ID_LEN);
	if (rc == 0)
		rc = list_writer_finish(&nw, &s->nodes);
	if (rc == 0)
		rc = list_writer_finish(&cw, &s->chunks);
	s->nnodes = n;
	s->chunks_total = nids;
	if (rc == 0 && u.pw.n > 0) {
		rc = pack_writer_finish(&u.pw, &size);
		if (rc == 0)
			rc = index_new(&idx);
		if (rc == 0)
			rc = index_builder_add_pack(&ib, u.pw.id, u.pw.entries, u.pw.n);
		if (rc == 0)
			rc = index_builder_flush(&ib, r, idx);
	}
	if (rc == 0)
		rc = snap_save(r, s);
	index_builder_free(&ib);
	index_free(idx);
	list_writer_free(&nw);
	list_writer_free(&cw);
	pack_writer_free(&u.pw);
	return rc;
}
#endif

static inline int unit_exit(void)
{
	return unit_failed_tests ? 1 : 0;
}

#endif
