/*
 * test_list.c — content lists (engine/repo/list.h): round trips of every shape (empty, one blob, several levels),
 * cuts that follow content (an edit stores only the blobs around it), a run of one repeated entry, and readers
 * that refuse damaged or hostile trees: a blob of the wrong level (a loop), counts that lie, a missing blob.
 */
#include "engine/engine.h"
#include "engine/repo/list.h"
#include "engine/repo/pack.h"
#include "store/err.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"

static char tmpdir[] = "/tmp/dre-test-list-XXXXXX";

/* A sink that stores blobs in one pack and counts the ones it had not seen. */
struct sink {
	pack_writer pw;
	size_t fresh, dup;
};

static int sink_put(void *arg, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *blob, size_t len)
{
	struct sink *k = arg;
	for (size_t i = 0; i < k->pw.n; i++)
		if (memcmp(k->pw.entries[i].id, id, CRYPTO_ID_LEN) == 0) {
			k->dup++;
			return 0;
		}
	k->fresh++;
	if (pack_writer_full(&k->pw))
		return err_set(DRE_EINVAL, "test pack full");
	return pack_writer_add_list(&k->pw, id, blob, len);
}

/* Entry i of a synthetic chunk list: a keyed-looking ID from (seed, i). */
static void entry(uint8_t id[CRYPTO_ID_LEN], unsigned seed, uint64_t i)
{
	unit_fill(id, CRYPTO_ID_LEN, (unsigned)(seed * 1000003u + i * 2654435761u + 7));
}

/* Writes ids [0, n) of seed, entry changed_at replaced, into a list whose blobs go to k. */
static int write_list(repo *r, struct sink *k, unsigned seed, uint64_t n, uint64_t changed_at, list_ref *root)
{
	list_writer w;
	uint8_t id[CRYPTO_ID_LEN];
	TRY(list_writer_init(&w, r, LIST_CHUNKS, sink_put, k));
	int rc = 0;
	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		entry(id, i == changed_at ? seed + 99 : seed, i);
		rc = list_writer_add(&w, id, sizeof id);
	}
	if (rc == 0)
		rc = list_writer_finish(&w, root);
	list_writer_free(&w);
	return rc;
}

/* Puts the sink's pack and indexes it, so readers can find its blobs. */
static void store_pack(chunk_index *idx, struct sink *k)
{
	uint64_t size;
	uint32_t pack_no;
	if (k->pw.n == 0)
		return;
	CHECK_RC(pack_writer_finish(&k->pw, &size));
	CHECK_RC(index_pack_intern(idx, k->pw.id, &pack_no));
	for (size_t i = 0; i < k->pw.n; i++) {
		index_entry e = {.loc = k->pw.entries[i], .pack = pack_no};
		CHECK(index_insert(idx, &e) >= 0);
	}
	CHECK_RC(pack_writer_reset(&k->pw));
}

/* Reads a list back and checks it is ids [0, n) of seed. */
static void read_back(repo *r, chunk_index *idx, const list_ref *root, unsigned seed, uint64_t n, uint64_t changed_at)
{
	list_reader lr;
	const uint8_t *e;
	size_t len;
	uint8_t want[CRYPTO_ID_LEN];
	uint64_t got = 0;
	int rc;
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, root, "test list"));
	while ((rc = list_reader_next(&lr, &e, &len)) == 1) {
		entry(want, got == changed_at ? seed + 99 : seed, got);
		if (len != CRYPTO_ID_LEN || memcmp(e, want, CRYPTO_ID_LEN) != 0) {
			CHECK(!"entry differs");
			break;
		}
		got++;
	}
	CHECK(rc == 0);
	CHECK(got == n);
	list_reader_free(&lr);
}

/* A repository, an index to find list blobs in, and a sink whose pack goes into it. */
struct fixture {
	repo *r;
	chunk_index *idx;
	struct sink k;
};

static bool fixture_open(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	if ((f->r = unit_make_repo(tmpdir)) == NULL)
		return false;
	CHECK_RC(index_new(&f->idx));
	CHECK_RC(pack_writer_init_sized(&f->k.pw, f->r, 8u << 20));
	return f->idx != NULL;
}

static void fixture_close(struct fixture *f)
{
	pack_writer_free(&f->k.pw);
	index_free(f->idx);
	engine_close(f->r);
}

static void test_roundtrip_shapes(void)
{
	struct fixture f;
	if (!fixture_open(&f))
		return;
	static const uint64_t sizes[] = {0, 1, 2, 60, 2000, 50000};
	for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
		list_ref root;
		f.k.fresh = 0;
		CHECK_RC(write_list(f.r, &f.k, (unsigned)t + 1, sizes[t], UINT64_MAX, &root));
		CHECK(root.count == sizes[t]);
		if (sizes[t] == 0)
			CHECK(root.level == 0 && f.k.fresh == 0);
		if (sizes[t] == 50000) /* 1.6 MB of IDs: blobs of 2..64 KiB, so at least two levels */
			CHECK(root.level >= 1 && f.k.fresh > 50);
		store_pack(f.idx, &f.k);
		read_back(f.r, f.idx, &root, (unsigned)t + 1, sizes[t], UINT64_MAX);
	}
	fixture_close(&f);
}

/* One changed entry in 50,000 changes the blobs on one path from a leaf to the root, nothing else. */
static void test_edit_stores_little(void)
{
	struct fixture f;
	if (!fixture_open(&f))
		return;
	repo *r = f.r;
	chunk_index *idx = f.idx;
	struct sink *k = &f.k;
	list_ref a, b, c;
	CHECK_RC(write_list(r, k, 5, 50000, UINT64_MAX, &a));
	size_t first = k->fresh;
	k->fresh = k->dup = 0;
	CHECK_RC(write_list(r, k, 5, 50000, UINT64_MAX, &b));
	CHECK(k->fresh == 0 && memcmp(a.id, b.id, CRYPTO_ID_LEN) == 0); /* the same list: the same blobs */
	k->fresh = k->dup = 0;
	CHECK_RC(write_list(r, k, 5, 50000, 25000, &c));
	CHECK(k->fresh >= 2 && k->fresh <= 2 * (size_t)(c.level + 1)); /* a leaf or two, and their parents */
	CHECK(first > 100);
	store_pack(idx, k);
	read_back(r, idx, &c, 5, 50000, 25000);
	fixture_close(&f);
}

/* A run of one repeated ID (a file of zeros) makes full, identical blobs that shrink level by level. */
static void test_repeated_entry(void)
{
	struct fixture f;
	if (!fixture_open(&f))
		return;
	repo *r = f.r;
	chunk_index *idx = f.idx;
	struct sink *k = &f.k;
	list_writer w;
	list_ref root;
	uint8_t id[CRYPTO_ID_LEN];
	memset(id, 0, sizeof id); /* cut hash 0: every entry would cut but for the minimum */
	CHECK_RC(list_writer_init(&w, r, LIST_CHUNKS, sink_put, k));
	for (int i = 0; i < 1000000; i++)
		CHECK_RC(list_writer_add(&w, id, sizeof id));
	CHECK_RC(list_writer_finish(&w, &root));
	CHECK(k->fresh < 16 && root.count == 1000000 && root.level >= 2);
	store_pack(idx, k);
	list_reader lr;
	const uint8_t *e;
	size_t len, n = 0;
	int rc;
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, &root, "zeros"));
	while ((rc = list_reader_next(&lr, &e, &len)) == 1)
		n += memcmp(e, id, sizeof id) == 0;
	CHECK(rc == 0 && n == 1000000);
	list_reader_free(&lr);
	list_writer_free(&w);
	fixture_close(&f);
}

/* Each lie a hostile or damaged repository can tell is refused as DRE_ECORRUPT, with no crash. */
static void test_refuses_damage(void)
{
	struct fixture f;
	if (!fixture_open(&f))
		return;
	repo *r = f.r;
	chunk_index *idx = f.idx;
	struct sink *k = &f.k;
	list_ref root, bad;
	CHECK_RC(write_list(r, k, 9, 20000, UINT64_MAX, &root));
	CHECK(root.level >= 1);

	/* a level-1 blob that names itself: the reader sees a blob of level 1 where level 0 is due */
	uint8_t blob[LIST_HDR_LEN + LIST_REF_LEN], self[CRYPTO_ID_LEN];
	crypto_ctx *cc;
	CHECK_RC(crypto_ctx_new(&cc));
	blob[0] = LIST_CHUNKS, blob[1] = 1, blob[2] = blob[3] = 0;
	put_le32(blob + 4, 1);
	memset(blob + LIST_HDR_LEN, 0, LIST_REF_LEN);
	put_le64(blob + LIST_HDR_LEN + CRYPTO_ID_LEN, 5);
	/* an ID can't be its own content's HMAC, but a blob stored under the ID of the blob it names can claim to */
	CHECK_RC(list_blob_id(r, cc, blob, sizeof blob, self));
	memcpy(blob + LIST_HDR_LEN, self, CRYPTO_ID_LEN);
	CHECK_RC(pack_writer_add_list(&k->pw, self, blob, sizeof blob));
	store_pack(idx, k);

	list_reader lr;
	const uint8_t *e;
	size_t len;
	int rc;
	bad = (list_ref){.level = 1, .count = 5};
	memcpy(bad.id, self, CRYPTO_ID_LEN);
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, &bad, "a loop"));
	while ((rc = list_reader_next(&lr, &e, &len)) == 1)
		;
	CHECK(rc == DRE_ECORRUPT && strstr(err_msg(), "a loop is damaged") != NULL);
	list_reader_free(&lr);

	/* the root's count says more, or fewer, entries than the tree holds */
	uint64_t counts[] = {root.count + 1, root.count - 1, 1};
	for (size_t i = 0; i < 3; i++) {
		bad = root;
		bad.count = counts[i];
		CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, &bad, "a lying count"));
		while ((rc = list_reader_next(&lr, &e, &len)) == 1)
			;
		CHECK(rc == DRE_ECORRUPT);
		list_reader_free(&lr);
	}
	/* the wrong level, the wrong kind, a blob that is not there */
	bad = root;
	bad.level = (uint8_t)(root.level + 1);
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, &bad, "wrong level"));
	CHECK(list_reader_next(&lr, &e, &len) == DRE_ECORRUPT);
	list_reader_free(&lr);
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_NODES, &root, "wrong kind"));
	CHECK(list_reader_next(&lr, &e, &len) == DRE_ECORRUPT);
	list_reader_free(&lr);
	bad = root;
	bad.id[0] ^= 1;
	CHECK_RC(list_reader_open(&lr, r, idx, LIST_CHUNKS, &bad, "missing"));
	CHECK(list_reader_next(&lr, &e, &len) == DRE_ECORRUPT && strstr(err_msg(), "not in the index") != NULL);
	list_reader_free(&lr);
	bad = root;
	bad.level = LIST_MAX_LEVELS;
	CHECK(list_reader_open(&lr, r, idx, LIST_CHUNKS, &bad, "too deep") == DRE_ECORRUPT);
	list_reader_free(&lr);

	crypto_ctx_free(cc);
	fixture_close(&f);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	RUN(test_roundtrip_shapes);
	RUN(test_edit_stores_little);
	RUN(test_repeated_entry);
	RUN(test_refuses_damage);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_exit();
}
