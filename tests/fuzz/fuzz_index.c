/* fuzz_index — index object plaintext (format-spec.md §9): sealed and stored as the envelope "index/<id>" in the
 * fixture's repository, read back by index_object_read (the path of prune and of index_load), then every entry
 * visited and looked up. */
#include <stdlib.h>

#include "engine/repo/index.h"
#include "tests/fuzz/fuzz.h"

static int visit(void *arg, const index_entry *e)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t id[CRYPTO_ID_LEN] = {0x1d, 0x0e};
	repo *r = fuzz_repo();
	char key[80];
	repo_object_key("index/", id, key);
	fuzz_check(repo_put_object(r, 'I', key, data, size, 0), "storing an index object");
	chunk_index *idx;
	fuzz_check(index_new(&idx), "making an index");
	if (index_object_read(r, idx, id) == 0) {
		size_t n = 0;
		(void)index_each(idx, visit, &n);
		if (n != index_count(idx))
			abort(); /* every entry the index counts must be visited */
		if (size >= 4 + 32 + 4 + PACK_ENTRY_LEN) {
			index_entry e;
			(void)index_find(idx, data + 4 + 32 + 4, &e); /* the first entry's chunk ID */
		}
		(void)index_seal(idx);
	}
	index_free(idx);
	fuzz_check(store_del(r->st, key), "removing the index object");
	return 0;
}
