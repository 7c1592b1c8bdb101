/*
 * test_hostile.c — repositories crafted by someone who holds the key (or whose damage happens to authenticate):
 * index entries whose offset or length lie outside the pack, chunks and list blobs that claim more plaintext
 * than the format allows, zstd bombs (a frame whose content size says 2^40, a small frame of 4 GiB of zeros),
 * list blobs that reference themselves or each other, counts that lie, a malformed index object, an index entry
 * that points at another blob of its pack, and an index object that places a chunk in a pack that is gone.
 *
 * Each case is a snapshot "evil" beside an honest snapshot "good", and goes through every reader: restore, ls
 * (the node walk), check, check --read-data, prune and copy. Each must fail with DRE_ECORRUPT and a message
 * naming the object (check: report it as an error), without a crash, an allocation the size of a lie (the
 * address space is capped below the 4 GiB a bomb claims), or a loop; prune must fail or leave "good" whole; copy
 * must commit nothing. The byte-level cases without the key (swaps, truncation, foreign objects, a replayed index)
 * are tests/e2e/hostile.sh.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/engine.h"
#include "engine/lifecycle/prune.h"
#include "engine/pipeline/copy.h"
#include "engine/repo/bytes.h"
#include "engine/repo/crypto.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/pack.h"
#include "engine/repo/snapshot.h"
#include "store/err.h"
#include "tests/unit/unit.h"

static char tmpdir[256];

/* ---- crafting, with the repository's own keys ---- */

/* A blob as it will be sealed: any flags, any raw length claimed, any stored bytes. */
struct cblob {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t flags;
	uint32_t raw_len;
	const uint8_t *stored;
	size_t stored_len;
};

/* Writes a pack of these blobs (format-spec.md §8, no padding: readers do not need it); es gets their entries. */
static int put_pack(repo *r, const struct cblob *b, size_t n, uint8_t pack_id[CRYPTO_ID_LEN], pack_entry *es)
{
	uint8_t subkey[CRYPTO_KEY_LEN], nonce[CRYPTO_NONCE_LEN], aad[37];
	buf p = {0}, h = {0};
	crypto_ctx *cc;
	TRY(crypto_ctx_new(&cc));
	int rc = crypto_random(pack_id, CRYPTO_ID_LEN);
	if (rc == 0)
		rc = repo_pack_subkey(r, pack_id, subkey);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		es[i] = (pack_entry){.offset = (uint32_t)p.len, .stored_len = (uint32_t)b[i].stored_len,
				     .raw_len = b[i].raw_len, .flags = b[i].flags};
		memcpy(es[i].id, b[i].id, CRYPTO_ID_LEN);
		memcpy(aad, b[i].id, CRYPTO_ID_LEN);
		aad[32] = b[i].flags;
		put_le32(aad + 33, b[i].raw_len);
		pack_blob_nonce(es[i].offset, nonce);
		size_t at = p.len;
		buf_put(&p, b[i].stored, b[i].stored_len);
		if (!buf_reserve(&p, CRYPTO_TAG_LEN))
			rc = err_set(DRE_ENOMEM, "test pack");
		else
			rc = crypto_seal(cc, subkey, nonce, aad, sizeof aad, p.data + at, b[i].stored_len,
					 p.data + at + b[i].stored_len);
		p.len += CRYPTO_TAG_LEN;
	}
	buf_u32(&h, (uint32_t)n);
	pack_entries_put(&h, es, n);
	uint8_t trailer[PACK_TRAILER_LEN];
	put_le32(trailer, (uint32_t)(h.len + CRYPTO_TAG_LEN));
	memcpy(trailer + 4, PACK_MAGIC, 4);
	memset(nonce, 0xff, sizeof nonce);
	size_t hat = p.len;
	buf_put(&p, h.data, h.len);
	if (rc == 0 && !buf_reserve(&p, CRYPTO_TAG_LEN + PACK_TRAILER_LEN))
		rc = err_set(DRE_ENOMEM, "test pack");
	if (rc == 0)
		rc = crypto_seal(cc, subkey, nonce, trailer, sizeof trailer, p.data + hat, h.len, p.data + hat + h.len);
	p.len += CRYPTO_TAG_LEN;
	buf_put(&p, trailer, sizeof trailer);
	char key[80];
	repo_pack_key(pack_id, key);
	if (rc == 0)
		rc = buf_check(&p, "test pack");
	if (rc == 0)
		rc = store_put(r->st, key, p.data, p.len, 0);
	buf_free(&p);
	buf_free(&h);
	crypto_ctx_free(cc);
	return rc;
}

/* One index object naming these entries of pack_id (lies included). */
static int put_index(repo *r, const uint8_t pack_id[CRYPTO_ID_LEN], const pack_entry *es, size_t n)
{
	index_builder ib = {0};
	chunk_index *scratch;
	TRY(index_new(&scratch));
	int rc = index_builder_add_pack(&ib, pack_id, es, n);
	if (rc == 0)
		rc = index_builder_flush(&ib, r, scratch);
	index_builder_free(&ib);
	index_free(scratch);
	return rc;
}

/* A stream snapshot NAME of size bytes whose checksum is that of data (NULL: of size zero bytes). */
static int put_stream(repo *r, const char *name, const uint8_t *data, uint64_t size,
		      const uint8_t (*ids)[CRYPTO_ID_LEN], size_t nids)
{
	snap_node node = {.type = NODE_STREAM, .path = (char *)name, .mode = 0600, .size = size, .nchunks = nids};
	XXH128_hash_t h = data ? XXH3_128bits(data, (size_t)size) : XXH3_128bits("", 0);
	XXH128_canonicalFromHash((XXH128_canonical_t *)node.xxh128, h);
	snapshot s = {.kind = SNAP_STREAM, .name = (char *)name, .host = "h", .size = size, .time_ns = 1,
		      .end_time_ns = 2};
	return unit_save_snapshot(r, &s, &node, 1, ids, nids);
}

/*
 * zstd frames made by hand (RFC 8878): RLE blocks of zeros, each 3 header bytes and 1 byte of content, so a frame
 * of 4 GiB of plaintext takes 128 KiB. fcs: the content size written in the header (0: none); window_log: the
 * window descriptor's, without the single-segment flag (0: single segment, the window is the content size).
 */
static uint8_t *zstd_zeros(uint64_t total, uint64_t fcs, unsigned window_log, size_t *len)
{
	size_t nblocks = (size_t)((total + (128u << 10) - 1) / (128u << 10));
	uint8_t *f = malloc(4 + 2 + 8 + nblocks * 4), *p = f;
	if (f == NULL)
		return NULL;
	put_le32(p, 0xFD2FB528u), p += 4;
	*p++ = (uint8_t)((fcs ? 3u << 6 : 0) | (window_log ? 0 : 1u << 5));
	if (window_log)
		*p++ = (uint8_t)((window_log - 10) << 3);
	if (fcs)
		put_le64(p, fcs), p += 8;
	for (size_t i = 0; i < nblocks; i++) {
		uint64_t left = total - (uint64_t)i * (128u << 10);
		uint32_t bs = left < (128u << 10) ? (uint32_t)left : 128u << 10;
		uint32_t hdr = bs << 3 | 1u << 1 | (i + 1 == nblocks);
		p[0] = (uint8_t)hdr, p[1] = (uint8_t)(hdr >> 8), p[2] = (uint8_t)(hdr >> 16), p[3] = 0;
		p += 4;
	}
	*len = (size_t)(p - f);
	return f;
}

/* ---- the readers, each run against a hostile snapshot ---- */

struct warned {
	size_t n;
	char text[8192];
};

static void collect(void *arg, const char *msg)
{
	struct warned *w = arg;
	size_t used = strlen(w->text);
	w->n++;
	snprintf(w->text + used, sizeof w->text - used, "%s\n", msg);
}

/* Restores snapshot NAME to /dev/null. */
static int restore_name(repo *r, const char *name)
{
	snapshot s;
	TRY(snap_find(r, name, -1, &s));
	int fd = open("/dev/null", O_WRONLY);
	restore_opts o = {.out_fd = fd, .threads = 2};
	restore_result res;
	int rc = engine_restore(r, &s, &o, &res);
	close(fd);
	snap_free(&s);
	return rc;
}

/* What `dre ls` does: every node of the snapshot. */
static int walk_nodes(repo *r, const char *name)
{
	snapshot s;
	snap_walk *w;
	snap_node n;
	int rc;
	TRY(snap_find(r, name, -1, &s));
	rc = snap_walk_open(r, NULL, &s, false, &w);
	if (rc == 0) {
		while ((rc = snap_walk_next(w, &n)) == 1)
			;
		snap_walk_free(w);
	}
	snap_free(&s);
	return rc;
}

static bool has(const char *text, const char *what)
{
	if (strstr(text, what) != NULL)
		return true;
	fprintf(stderr, "    expected \"%s\" in: %s\n", what, text);
	return false;
}

enum { NODES_BAD = 1, STRUCTURE_BAD = 2, DATA_BAD = 4 };

/*
 * Runs every reader on a repository holding "good" (honest) and "evil" (the case): restore and copy of evil fail
 * as corrupt naming `names`; ls fails so too when the node list is bad (NODES_BAD), else works; check reports
 * an error naming `names` when the structure is bad (STRUCTURE_BAD), check --read-data when the data is
 * (DATA_BAD); prune fails or leaves good restorable; good restores throughout.
 */
static void battery(repo *r, const char *label, const char *names, int bad)
{
	fprintf(stderr, "  case: %s\n", label);
	int rc = restore_name(r, "evil");
	CHECK(rc == DRE_ECORRUPT);
	CHECK(has(err_msg(), names));
	CHECK_RC(restore_name(r, "good"));

	rc = walk_nodes(r, "evil");
	if (bad & NODES_BAD) {
		CHECK(rc == DRE_ECORRUPT);
		CHECK(has(err_msg(), names));
	} else {
		CHECK_RC(rc);
	}

	for (int read_data = 0; read_data < 2; read_data++) {
		struct warned w = {0, ""};
		check_opts co = {.read_data = read_data, .hooks = {.warn = collect, .arg = &w}};
		check_report rep;
		CHECK_RC(engine_check(r, &co, &rep));
		if ((bad & STRUCTURE_BAD) || (read_data && (bad & DATA_BAD))) {
			CHECK(rep.errors > 0);
			CHECK(has(w.text, names));
		}
	}

	char dst_path[300];
	static int ncopy;
	repo *t = NULL;
	repo_params p;
	repo_params_default(&p);
	p.scrypt_log2n = 10;
	snprintf(dst_path, sizeof dst_path, "%s/target%d", tmpdir, ncopy++);
	CHECK_RC(engine_init(dst_path, NULL, "pw2", &p, &t));
	if (t != NULL) {
		char *what[] = {"evil"};
		copy_opts o = {.what = what, .nwhat = 1, .threads = 2};
		copy_result res;
		CHECK(engine_copy(r, t, &o, &res) == DRE_ECORRUPT);
		CHECK(has(err_msg(), names));
		snap_list l;
		CHECK_RC(snap_list_load(t, &l, NULL, NULL));
		CHECK(l.n == 0);
		snap_list_free(&l);
		engine_close(t);
	}

	/* last: it may rewrite the repository. Everything referenced stays, hostile or not. */
	prune_opts po = {.max_unused = 0, .grace_ns = 0};
	prune_result pres;
	rc = engine_prune(r, &po, &pres);
	CHECK(rc == 0 || rc == DRE_ECORRUPT);
	CHECK_RC(restore_name(r, "good"));
}

/* A repository with "good": 300 KiB of noise pushed the usual way. */
static repo *good_repo(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return NULL;
	char path[300];
	snprintf(path, sizeof path, "%s/good", tmpdir);
	uint8_t *data = malloc(300u << 10);
	unit_fill(data, 300u << 10, 7);
	FILE *f = fopen(path, "w");
	fwrite(data, 1, 300u << 10, f);
	fclose(f);
	free(data);
	int fd = open(path, O_RDONLY);
	push_opts po = {.name = "good", .threads = 2};
	push_result pr;
	CHECK_RC(engine_push_fd(r, &po, fd, &pr));
	close(fd);
	return r;
}

/* A data chunk: its plaintext, ID and a blob that stores it raw. */
struct chunk {
	uint8_t data[4096];
	struct cblob b;
};

static void make_chunk(repo *r, struct chunk *c, unsigned seed)
{
	crypto_ctx *cc;
	unit_fill(c->data, sizeof c->data, seed);
	CHECK_RC(crypto_ctx_new(&cc));
	CHECK_RC(crypto_hmac(cc, r->id_key, c->data, sizeof c->data, c->b.id));
	crypto_ctx_free(cc);
	c->b.flags = 0;
	c->b.raw_len = sizeof c->data;
	c->b.stored = c->data;
	c->b.stored_len = sizeof c->data;
}

/* ---- the cases ---- */

/* An honest pack, and an index entry for its chunk with the offset or length changed. */
static void test_index_entry_out_of_range(void)
{
	struct {
		const char *label;
		uint32_t offset, stored_len;
		const char *says; /* besides the pack */
		int bad;
	} cases[] = {
		{"offset past the pack's end", 1u << 20, 4096, "truncated", STRUCTURE_BAD | DATA_BAD},
		{"offset + length past 2^32 (u32 overflow)", 0xFFFFFFF0u, 0xFFFFFFF0u, "corrupt index entry",
		 STRUCTURE_BAD | DATA_BAD},
		{"length past the pack's end", 0, 200000, "truncated", STRUCTURE_BAD | DATA_BAD},
		/* inside the pack: only reading it (check --read-data) shows the index and the header disagree */
		{"offset of the next blob (a swap inside the pack)", 4096 + CRYPTO_TAG_LEN, 4096, "corrupt pack", DATA_BAD},
		{"length one short", 0, 4095, "corrupt pack", DATA_BAD},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		repo *r = good_repo();
		if (r == NULL)
			return;
		struct chunk a, b;
		make_chunk(r, &a, 1);
		make_chunk(r, &b, 2);
		struct cblob bl[2] = {a.b, b.b};
		uint8_t pid[CRYPTO_ID_LEN];
		pack_entry es[2];
		CHECK_RC(put_pack(r, bl, 2, pid, es));
		es[0].offset = cases[i].offset;
		es[0].stored_len = cases[i].stored_len;
		CHECK_RC(put_index(r, pid, es, 2));
		CHECK_RC(put_stream(r, "evil", a.data, sizeof a.data, (const uint8_t(*)[CRYPTO_ID_LEN])a.b.id, 1));
		char hex[65];
		hex_encode(pid, CRYPTO_ID_LEN, hex);
		hex[16] = '\0';
		battery(r, cases[i].label, hex, cases[i].bad);
		/* after prune: evil fails for the same cause, its pack still there, or prune rewrote the entry from the
		 * pack's header (repacked it) and evil restores; never a pack with the blob deleted */
		int rc = restore_name(r, "evil");
		if (rc != 0) {
			char key[80];
			uint64_t size;
			CHECK(rc == DRE_ECORRUPT);
			CHECK(has(err_msg(), cases[i].says));
			repo_pack_key(pid, key);
			CHECK_RC(store_stat(r->st, key, &size));
		}
		engine_close(r);
	}
}

/* Bombs: chunks whose zstd frame or raw length claims far more than a chunk can be. */
static void test_decompression_bombs(void)
{
	size_t big_len, fcs_len, nofcs_len;
	/* 4 GiB of zeros in a 128 KiB frame with no content size and a 128 KiB window: decodable as a stream */
	uint8_t *big = zstd_zeros(4ull << 30, 0, 17, &big_len);
	/* a frame whose header says 2^40 bytes, holding 1000 */
	uint8_t *fcs = zstd_zeros(1000, 1ull << 40, 17, &fcs_len);
	/* a single-segment frame that says 4 GiB: its window is the whole content */
	uint8_t *nofcs = zstd_zeros(4ull << 30, 4ull << 30, 0, &nofcs_len);
	CHECK(big != NULL && fcs != NULL && nofcs != NULL);
	if (big == NULL || fcs == NULL || nofcs == NULL)
		return;
	struct {
		const char *label;
		const uint8_t *frame;
		size_t frame_len;
		uint32_t raw_len; /* UINT32_MAX: the repository's max chunk size */
		uint32_t index_raw_len; /* 0: the same */
		int bad;
	} cases[] = {
		{"4 GiB of zeros, claiming the max chunk size", big, big_len, UINT32_MAX, 0, DATA_BAD},
		{"4 GiB of zeros, claiming 2^27 bytes", big, big_len, 1u << 27, 0, DATA_BAD},
		{"content size 2^40, claiming 1000 bytes", fcs, fcs_len, 1000, 0, DATA_BAD},
		{"single segment of 4 GiB", nofcs, nofcs_len, UINT32_MAX, 0, DATA_BAD},
		/* the index says more than the pack: the blob does not authenticate under the index's length */
		{"index claims 2^27, the pack 1000", fcs, fcs_len, 1000, 1u << 27, DATA_BAD},
		/* more than an index may hold: the index object is refused */
		{"raw length 2^32 - 1", big, big_len, UINT32_MAX - 1, UINT32_MAX - 1, STRUCTURE_BAD | DATA_BAD},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		repo *r = good_repo();
		if (r == NULL)
			break;
		struct chunk spare; /* unreferenced beside the bomb: makes prune repack the pack */
		make_chunk(r, &spare, 3);
		struct cblob bl[2] = {{.flags = BLOB_ZSTD, .stored = cases[i].frame, .stored_len = cases[i].frame_len},
				      spare.b};
		bl[0].raw_len = cases[i].raw_len == UINT32_MAX ? r->params.cdc_max : cases[i].raw_len;
		CHECK_RC(crypto_random(bl[0].id, CRYPTO_ID_LEN));
		uint8_t pid[CRYPTO_ID_LEN];
		pack_entry es[2];
		CHECK_RC(put_pack(r, bl, 2, pid, es));
		if (cases[i].index_raw_len)
			es[0].raw_len = cases[i].index_raw_len;
		CHECK_RC(put_index(r, pid, es, 2));
		CHECK_RC(put_stream(r, "evil", NULL, es[0].raw_len, (const uint8_t(*)[CRYPTO_ID_LEN])bl[0].id, 1));
		char hex[65];
		hex_encode((cases[i].bad & STRUCTURE_BAD) ? bl[0].id : pid, CRYPTO_ID_LEN, hex);
		hex[16] = '\0';
		if (cases[i].bad & STRUCTURE_BAD) /* the chunk is in no index: check names the snapshot, not the pack */
			battery(r, cases[i].label, "not in the index", cases[i].bad);
		else
			battery(r, cases[i].label, hex, cases[i].bad);
		engine_close(r);
	}
	free(big);
	free(fcs);
	free(nofcs);
}

/* A list blob in a pack of its own, indexed. */
static int put_list_blob(repo *r, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *plain, size_t len,
			 uint32_t raw_len_claim)
{
	struct cblob b = {.flags = BLOB_LIST, .raw_len = raw_len_claim ? raw_len_claim : (uint32_t)len,
			  .stored = plain, .stored_len = len};
	memcpy(b.id, id, CRYPTO_ID_LEN);
	uint8_t pid[CRYPTO_ID_LEN];
	pack_entry e;
	TRY(put_pack(r, &b, 1, pid, &e));
	return put_index(r, pid, &e, 1);
}

/* A level-`level` list blob of kind holding one reference (to, count). */
static void ref_blob(uint8_t out[LIST_HDR_LEN + LIST_REF_LEN], uint8_t kind, uint8_t level,
		     const uint8_t to[CRYPTO_ID_LEN], uint64_t count)
{
	out[0] = kind, out[1] = level, out[2] = out[3] = 0;
	put_le32(out + 4, 1);
	memcpy(out + LIST_HDR_LEN, to, CRYPTO_ID_LEN);
	put_le64(out + LIST_HDR_LEN + CRYPTO_ID_LEN, count);
}

/* "evil": good's header with one of its list references replaced. */
static int put_evil_header(repo *r, bool nodes, const list_ref *ref)
{
	snapshot s;
	TRY(snap_find(r, "good", -1, &s));
	if (nodes) {
		s.nodes = *ref;
		s.nnodes = ref->count;
	} else {
		s.chunks = *ref;
		s.chunks_total = ref->count;
	}
	free(s.name);
	s.name = strdup("evil");
	int rc = snap_save(r, &s);
	snap_free(&s);
	return rc;
}

/* The entries of good's node or chunk list (chunk boundaries depend on each repository's key): an evil header
 * that keeps them agrees with good's nodes, so its lie is in the list blobs alone. */
static uint64_t good_count(repo *r, bool nodes)
{
	snapshot g;
	uint64_t count = 0;
	CHECK_RC(snap_find(r, "good", -1, &g));
	count = nodes ? g.nodes.count : g.chunks.count;
	snap_free(&g);
	return count;
}

/* Lists that loop, lie about their counts, or claim a huge blob, as the node list (ls fails too) and as the chunk
 * list. */
static void test_hostile_lists(void)
{
	for (int nodes = 0; nodes < 2; nodes++) {
		uint8_t kind = nodes ? LIST_NODES : LIST_CHUNKS;
		int bad = STRUCTURE_BAD | (nodes ? NODES_BAD : 0);
		uint8_t a[CRYPTO_ID_LEN], b[CRYPTO_ID_LEN], blob[LIST_HDR_LEN + LIST_REF_LEN];
		list_ref ref;
		snapshot g;

		/* a blob that references itself */
		repo *r = good_repo();
		if (r == NULL)
			return;
		uint64_t count = good_count(r, nodes);
		CHECK_RC(crypto_random(a, sizeof a));
		ref_blob(blob, kind, 1, a, count);
		CHECK_RC(put_list_blob(r, a, blob, sizeof blob, 0));
		ref = (list_ref){.level = 1, .count = count};
		memcpy(ref.id, a, CRYPTO_ID_LEN);
		CHECK_RC(put_evil_header(r, nodes, &ref));
		battery(r, nodes ? "node list blob referencing itself" : "chunk list blob referencing itself",
			"wrong kind or level", bad);
		engine_close(r);

		/* two blobs that reference each other, at the levels each claims */
		r = good_repo();
		if (r == NULL)
			return;
		count = good_count(r, nodes);
		CHECK_RC(crypto_random(a, sizeof a));
		CHECK_RC(crypto_random(b, sizeof b));
		ref_blob(blob, kind, 2, b, count);
		CHECK_RC(put_list_blob(r, a, blob, sizeof blob, 0));
		ref_blob(blob, kind, 1, a, count);
		CHECK_RC(put_list_blob(r, b, blob, sizeof blob, 0));
		ref = (list_ref){.level = 2, .count = count};
		memcpy(ref.id, a, CRYPTO_ID_LEN);
		CHECK_RC(put_evil_header(r, nodes, &ref));
		battery(r, nodes ? "two node list blobs referencing each other" : "two chunk list blobs referencing each other",
			"wrong kind or level", bad);
		engine_close(r);

		/* a root whose count says 2^62 entries over a real list (the header then disagrees with the nodes, which
		 * a walk of the nodes alone finds too) */
		r = good_repo();
		if (r == NULL)
			return;
		CHECK_RC(snap_find(r, "good", -1, &g));
		ref = nodes ? g.nodes : g.chunks;
		ref.count = 1ull << 62;
		snap_free(&g);
		CHECK_RC(put_evil_header(r, nodes, &ref));
		battery(r, nodes ? "node list count 2^62" : "chunk list count 2^62", "damaged", bad | NODES_BAD);
		engine_close(r);

		/* a list blob that claims more plaintext than a list blob may hold, and one that is a 4 GiB bomb */
		for (int bomb = 0; bomb < 2; bomb++) {
			r = good_repo();
			if (r == NULL)
				return;
			count = good_count(r, nodes);
			size_t zlen;
			uint8_t *z = zstd_zeros(4ull << 30, 0, 17, &zlen);
			CHECK_RC(crypto_random(a, sizeof a));
			struct cblob bl = {.flags = BLOB_LIST, .raw_len = bomb ? LIST_BLOB_MAX : 1u << 26};
			memcpy(bl.id, a, CRYPTO_ID_LEN);
			if (bomb) {
				bl.flags |= BLOB_ZSTD;
				bl.stored = z, bl.stored_len = zlen;
			} else {
				ref_blob(blob, kind, 0, a, 1);
				bl.stored = blob, bl.stored_len = sizeof blob;
			}
			uint8_t pid[CRYPTO_ID_LEN];
			pack_entry e;
			CHECK_RC(put_pack(r, &bl, 1, pid, &e));
			CHECK_RC(put_index(r, pid, &e, 1));
			ref = (list_ref){.level = 0, .count = count};
			memcpy(ref.id, a, CRYPTO_ID_LEN);
			CHECK_RC(put_evil_header(r, nodes, &ref));
			char hex[65];
			hex_encode(a, CRYPTO_ID_LEN, hex);
			hex[16] = '\0';
			battery(r, bomb ? "list blob bomb of 4 GiB" : "list blob claiming 64 MiB", hex,
				bad | DATA_BAD);
			free(z);
			engine_close(r);
		}
	}
}

/* An index object whose counts promise 2^32 packs of 2^32 entries in a few bytes: refused, nothing allocated for
 * the promise, and the snapshots that do not need it still restore. */
static void test_malformed_index_object(void)
{
	repo *r = good_repo();
	if (r == NULL)
		return;
	uint8_t plain[4 + CRYPTO_ID_LEN + 4], id[CRYPTO_ID_LEN];
	char key[80];
	put_le32(plain, UINT32_MAX);
	memset(plain + 4, 0xab, CRYPTO_ID_LEN);
	put_le32(plain + 4 + CRYPTO_ID_LEN, UINT32_MAX);
	CHECK_RC(crypto_random(id, sizeof id));
	repo_object_key("index/", id, key);
	CHECK_RC(repo_put_object(r, 'I', key, plain, sizeof plain, 0));
	CHECK_RC(restore_name(r, "good"));
	struct warned w = {0, ""};
	check_opts co = {.hooks = {.warn = collect, .arg = &w}};
	check_report rep;
	CHECK_RC(engine_check(r, &co, &rep));
	CHECK(rep.errors > 0);
	key[6 + 16] = '\0';
	CHECK(has(w.text, key));
	CHECK(has(w.text, "malformed"));
	/* prune must not take the packs of an index object it cannot read for unindexed ones */
	prune_opts po = {.max_unused = 0, .grace_ns = 0};
	prune_result pres;
	CHECK(engine_prune(r, &po, &pres) == DRE_ECORRUPT);
	CHECK(has(err_msg(), key));
	CHECK_RC(restore_name(r, "good"));
	engine_close(r);
}

/* An index object that places good's chunks in a pack that does not exist (an older index put back after prune
 * moved them, or a writer's whose packs were deleted), loaded before the true one (the lowest ID): restore may
 * fail naming the missing pack, check reports it, and prune finds the true locations, drops the stale entries and
 * deletes nothing good needs. */
static void test_index_names_missing_pack(void)
{
	repo *r = good_repo();
	if (r == NULL)
		return;
	chunk_index *idx;
	CHECK_RC(index_new(&idx));
	CHECK_RC(index_load(r, idx, NULL, NULL, NULL, NULL));
	CHECK_RC(index_seal(idx));
	/* every entry of good's packs, moved to a pack that is not there, under index/00…00 */
	buf b = {0};
	uint8_t gone[CRYPTO_ID_LEN];
	CHECK_RC(crypto_random(gone, sizeof gone));
	snapshot s;
	CHECK_RC(snap_find(r, "good", -1, &s));
	snap_walk *w;
	snap_node n;
	uint8_t id[CRYPTO_ID_LEN];
	pack_entry *es = NULL;
	size_t nes = 0, cap = 0;
	CHECK_RC(snap_walk_open(r, idx, &s, true, &w));
	while (snap_walk_next(w, &n) == 1)
		for (uint64_t k = 0; k < n.nchunks && snap_walk_chunk(w, id) == 0; k++) {
			index_entry e;
			CHECK(index_find(idx, id, &e));
			CHECK(array_room(&es, &cap, nes, sizeof *es, 16));
			es[nes++] = e.loc;
		}
	snap_walk_free(w);
	CHECK(nes > 0);
	buf_u32(&b, 1);
	buf_put(&b, gone, CRYPTO_ID_LEN);
	buf_u32(&b, (uint32_t)nes);
	pack_entries_put(&b, es, nes);
	char key[80];
	uint8_t zero[CRYPTO_ID_LEN] = {0};
	repo_object_key("index/", zero, key);
	CHECK_RC(repo_put_object(r, 'I', key, b.data, b.len, 0));
	buf_free(&b);
	free(es);
	index_free(idx);

	char hex[65];
	hex_encode(gone, CRYPTO_ID_LEN, hex);
	hex[16] = '\0';
	int rc = restore_name(r, "good");
	CHECK(rc == 0 || (rc == DRE_ECORRUPT && has(err_msg(), hex)));
	struct warned wn = {0, ""};
	check_opts co = {.hooks = {.warn = collect, .arg = &wn}};
	check_report rep;
	CHECK_RC(engine_check(r, &co, &rep));
	CHECK(rep.errors > 0);
	CHECK(has(wn.text, "missing pack"));
	prune_opts po = {.max_unused = 0, .grace_ns = 0};
	prune_result pres;
	CHECK_RC(engine_prune(r, &po, &pres));
	CHECK(pres.index_rewritten + pres.index_deleted >= 1);
	CHECK_RC(restore_name(r, "good"));
	co.read_data = true;
	wn.n = 0, wn.text[0] = '\0';
	CHECK_RC(engine_check(r, &co, &rep));
	CHECK(rep.errors == 0);
	snap_free(&s);
	engine_close(r);
}

/* A key object's scrypt fields allow N = 2^24 with r = 32, 64 GiB: refused before anything is allocated, while
 * the default (32 MiB) and the largest allowed (1 GiB) pass the check. */
static void test_scrypt_memory_bomb(void)
{
	uint8_t salt[32] = {0}, out[CRYPTO_KEY_LEN];
	CHECK(crypto_scrypt("pw", 2, salt, sizeof salt, 24, 32, 1, out, sizeof out) == DRE_ECORRUPT);
	CHECK(has(err_msg(), "65536 MiB"));
	CHECK(crypto_scrypt("pw", 2, salt, sizeof salt, 21, 8, 1, out, sizeof out) == DRE_ECORRUPT);
	CHECK_RC(crypto_scrypt("pw", 2, salt, sizeof salt, 10, 8, 1, out, sizeof out));
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/dre-hostile-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
#if !defined(__SANITIZE_ADDRESS__)
	/* a reader that believed a bomb's 4 GiB would fail here instead of passing unnoticed (ASan reserves
	 * terabytes of address space, so it runs without the cap) */
	struct rlimit lim = {3ull << 30, 3ull << 30};
	if (setrlimit(RLIMIT_AS, &lim) != 0)
		perror("setrlimit");
#endif
	RUN(test_index_entry_out_of_range);
	RUN(test_decompression_bombs);
	RUN(test_hostile_lists);
	RUN(test_malformed_index_object);
	RUN(test_index_names_missing_pack);
	RUN(test_scrypt_memory_bomb);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_exit();
}
