/* fuzz_index_cache — the local index cache (engine/repo/index.c: header, index object IDs, pack IDs, sorted
 * slots, HMAC-SHA-256), read by index_load as every push and restore reads it. A cache is authenticated with a
 * key derived from the repository's, which random bytes never match; so the target writes the fixture's
 * repository ID into the header (option bit 0) and appends the right MAC (option bit 1), and what is fuzzed is
 * everything the loader checks after the MAC: counts, sizes, order and ranges. Input: one byte of options, then
 * the file without its MAC. */
#include <stdlib.h>
#include <string.h>

#include "engine/repo/index.h"
#include "tests/fuzz/fuzz.h"

#define CACHE_REPO_ID_OFF 16

static void ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static crypto_ctx *cc;
	static uint8_t mac_key[CRYPTO_KEY_LEN];
	static const char info[] = "dre v1 index cache";
	repo *r = fuzz_repo();
	if (cc == NULL) {
		fuzz_check(crypto_ctx_new(&cc), "crypto context");
		fuzz_check(crypto_hkdf(r->enc_key, CRYPTO_KEY_LEN, r->repo_id, REPO_ID_LEN, info, sizeof info - 1,
				       mac_key, CRYPTO_KEY_LEN),
			   "the cache's MAC key");
	}
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *file = malloc(len + CRYPTO_ID_LEN);
	if (file == NULL)
		abort();
	memcpy(file, data + 1, len);
	if ((data[0] & 1) && len >= CACHE_REPO_ID_OFF + REPO_ID_LEN)
		memcpy(file + CACHE_REPO_ID_OFF, r->repo_id, REPO_ID_LEN);
	size_t total = len;
	if (data[0] & 2) {
		fuzz_check(crypto_hmac(cc, mac_key, file, len, file + len), "the cache's MAC");
		total += CRYPTO_ID_LEN;
	}
	const char *path = fuzz_path("index-cache");
	fuzz_write_file(path, file, total);
	free(file);
	chunk_index *idx;
	fuzz_check(index_new(&idx), "making an index");
	if (index_load(r, idx, path, ignore, NULL, NULL) == 0) {
		index_entry e;
		if (len >= 48 + 24)
			(void)index_find(idx, data + 1, &e);
	}
	index_free(idx);
	return 0;
}
