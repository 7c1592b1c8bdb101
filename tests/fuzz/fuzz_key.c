/* fuzz_key — key objects (format-spec.md §5) as stored: the only object under keys/ of a repository whose config
 * is the fixture's, opened by repo_open with the fixture's password (a generated key: KDF 2 objects first, then
 * KDF 1 ones). Input: one byte of options, then the object. Option bit 0: the target writes the right XXH3-64
 * into bytes 96..103, so that the checks after the checksum are reached. A KDF 1 object's scrypt cost is cut
 * to log2 N 10 or 11, r 1 or 2, p 1 when those bytes are in range, so that one input costs milliseconds (a
 * hostile object can ask for 2^24 and r 32: a cost the format allows, not a parser's fault). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "engine/repo/bytes.h"
#include "tests/fuzz/fuzz.h"

#define KEY_OBJECT_LEN 104
#define KEY_NAME "keys/00000000000000000000000000000000000000000000000000000000000000ee"

static store *keystore;

static void setup(void)
{
	if (keystore != NULL)
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/keyrepo", fuzz_dir());
	repo *r = fuzz_repo();
	uint8_t *cfg;
	size_t len;
	fuzz_check(store_load(r->st, "config", 1u << 20, &cfg, &len), "reading the fixture's config");
	fuzz_check(store_local_open(path, &keystore), "opening the key store");
	fuzz_check(store_put(keystore, "config", cfg, len, 0), "copying the config");
	free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	setup();
	uint8_t *obj = malloc(size);
	if (obj == NULL)
		abort();
	size_t len = size - 1;
	memcpy(obj, data + 1, len);
	if (len == KEY_OBJECT_LEN && obj[4] == 1 && obj[5] >= 10 && obj[5] <= 24 && obj[6] >= 1 && obj[6] <= 32 &&
	    obj[7] >= 1 && obj[7] <= 16) {
		obj[5] = (uint8_t)(10 + (obj[5] & 1));
		obj[6] = (uint8_t)(1 + (obj[6] & 1));
		obj[7] = 1;
	}
	if ((data[0] & 1) && len == KEY_OBJECT_LEN)
		put_le64(obj + 96, XXH3_64bits(obj, 96));
	fuzz_check(store_put(keystore, KEY_NAME, obj, len, 0), "storing a key object");
	free(obj);
	repo *r;
	if (repo_open(keystore, fuzz_password(), &r) == 0)
		repo_close(r);
	return 0;
}
