/* fuzz_list — content lists (format-spec.md §10.2) as a reader meets them: list blobs in a real pack of the
 * fixture's repository, found through the index, walked from a snapshot header's two references by snap_walk
 * (list_reader: levels, counts, references, node records; snap_node_decode; the header's totals).
 * Input: u8 number of blobs (at most 16), then per blob its ID (32 bytes), u16 length and plaintext; the rest is
 * a format-2 snapshot header (snap_decode) whose references name blobs by those IDs. */
#include <stdlib.h>
#include <string.h>

#include "engine/repo/pack.h"
#include "engine/repo/snapshot.h"
#include "tests/fuzz/fuzz.h"

static pack_writer pw;
static bool pw_ready;

static void walk(repo *r, const chunk_index *idx, const snapshot *s)
{
	snap_walk *w;
	if (snap_walk_open(r, idx, s, true, &w) < 0)
		return;
	snap_node n;
	uint8_t id[CRYPTO_ID_LEN];
	int rc;
	while ((rc = snap_walk_next(w, &n)) == 1)
		for (uint64_t i = 0; i < n.nchunks && rc == 1; i++)
			rc = snap_walk_chunk(w, id) == 0 ? 1 : -1;
	snap_walk_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	repo *r = fuzz_repo();
	if (!pw_ready) {
		fuzz_check(pack_writer_init_sized(&pw, r, 4u << 20), "a list pack writer");
		pw_ready = true;
	}
	rd in = rd_make(data, size);
	unsigned k = rd_u8(&in) % 17;
	for (unsigned i = 0; i < k; i++) {
		const uint8_t *id = rd_take(&in, CRYPTO_ID_LEN), *lp = rd_take(&in, 2), *blob;
		if (id == NULL || lp == NULL)
			break;
		size_t len = (size_t)lp[0] | (size_t)lp[1] << 8;
		if ((blob = rd_take(&in, len)) == NULL || pack_writer_full(&pw))
			break;
		fuzz_check(pack_writer_add_list(&pw, id, blob, len), "adding a list blob");
	}
	snapshot s;
	size_t rest_len;
	const uint8_t *rest = fuzz_rest(&in, &rest_len);
	int rc = snap_decode("snapshots/fuzz", rest, rest_len, &s);
	if (rc == 0 && s.format == SNAP_FORMAT_TABLE)
		snap_free(&s); /* format 1 has no lists: fuzz_snapshot walks its table */
	if (rc < 0 || s.format == SNAP_FORMAT_TABLE) {
		fuzz_check(pack_writer_reset(&pw), "resetting the pack writer");
		return 0;
	}
	chunk_index *idx;
	char key[80] = "";
	fuzz_check(index_new(&idx), "making an index");
	if (!pack_writer_empty(&pw)) {
		uint64_t stored;
		uint32_t pack_no;
		fuzz_check(pack_writer_finish(&pw, &stored), "writing a list pack");
		repo_pack_key(pw.id, key);
		fuzz_check(index_pack_intern(idx, pw.id, &pack_no), "indexing the pack");
		for (size_t i = 0; i < pw.n; i++) {
			index_entry e = {.loc = pw.entries[i], .pack = pack_no};
			fuzz_check(index_insert(idx, &e), "indexing a blob");
		}
	}
	walk(r, idx, &s);
	snap_free(&s);
	index_free(idx);
	if (key[0])
		fuzz_check(store_del(r->st, key), "removing the list pack");
	fuzz_check(pack_writer_reset(&pw), "resetting the pack writer");
	return 0;
}
