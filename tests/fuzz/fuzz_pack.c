/* fuzz_pack — pack objects (format-spec.md §8). Input: one byte choosing what, then:
 *   0  a whole pack object, read by pack_read_header with a fixed pack's subkey: the trailer and length checks
 *      before AES-GCM (nothing after them: random bytes do not authenticate);
 *   1  u32 blob area length (at most 1 MiB), then a header plaintext, which the target seals as a writer would
 *      (the pack subkey, the all-ones nonce, the trailer as AAD) behind that many bytes, for pack_read_header;
 *   2  u8 flags, u32 raw length, then a blob's stored bytes, sealed at offset 0 and opened by pack_blob_open
 *      (zstd frames, length checks), with the raw length bounded as every caller bounds it (pack_blob_max). */
#include <stdlib.h>
#include <string.h>

#include "engine/repo/pack.h"
#include "tests/fuzz/fuzz.h"

static crypto_ctx *cc;
static ZSTD_DCtx *zd;
static uint8_t subkey[CRYPTO_KEY_LEN];
static const uint8_t pack_id[CRYPTO_ID_LEN] = {0x9a, 0x17};

static void setup(void)
{
	if (cc != NULL)
		return;
	fuzz_check(crypto_ctx_new(&cc), "crypto context");
	zd = ZSTD_createDCtx();
	if (zd == NULL)
		abort();
	fuzz_check(repo_pack_subkey(fuzz_repo(), pack_id, subkey), "pack subkey");
}

static void read_header(const uint8_t *obj, size_t len)
{
	pack_entry *es = NULL;
	size_t n = 0;
	if (pack_read_header(fuzz_repo(), cc, "packs/9a/fuzz", obj, len, subkey, &es, &n) == 0)
		free(es);
}

static void sealed_header(rd *in)
{
	size_t area = rd_u32(in) % ((1u << 20) + 1), hlen;
	const uint8_t *header = fuzz_rest(in, &hlen);
	size_t total = area + hlen + CRYPTO_TAG_LEN + PACK_TRAILER_LEN;
	uint8_t *obj = calloc(1, total), nonce[CRYPTO_NONCE_LEN], *trailer = obj + total - PACK_TRAILER_LEN;
	if (obj == NULL)
		abort();
	memcpy(obj + area, header, hlen);
	put_le32(trailer, (uint32_t)(hlen + CRYPTO_TAG_LEN));
	memcpy(trailer + 4, PACK_MAGIC, 4);
	memset(nonce, 0xff, sizeof nonce);
	fuzz_check(crypto_seal(cc, subkey, nonce, trailer, PACK_TRAILER_LEN, obj + area, hlen, obj + area + hlen),
		   "sealing a pack header");
	read_header(obj, total);
	free(obj);
}

static void sealed_blob(rd *in)
{
	pack_entry e = {.id = {0xb1, 0x0b}, .offset = 0};
	e.flags = rd_u8(in);
	e.raw_len = rd_u32(in);
	size_t len;
	const uint8_t *stored = fuzz_rest(in, &len);
	if (e.raw_len > pack_blob_max(fuzz_repo(), e.flags) || (e.flags & ~BLOB_FLAGS))
		return; /* every reader refuses these before it opens a blob (index, list and restore checks) */
	e.stored_len = (uint32_t)len;
	uint8_t aad[37], nonce[CRYPTO_NONCE_LEN];
	memcpy(aad, e.id, CRYPTO_ID_LEN);
	aad[32] = e.flags;
	put_le32(aad + 33, e.raw_len);
	pack_blob_nonce(e.offset, nonce);
	uint8_t *blob = malloc(len + CRYPTO_TAG_LEN), *out = malloc(e.raw_len ? e.raw_len : 1);
	if (blob == NULL || out == NULL)
		abort();
	memcpy(blob, stored, len);
	fuzz_check(crypto_seal(cc, subkey, nonce, aad, sizeof aad, blob, len, blob + len), "sealing a blob");
	(void)pack_blob_open(cc, zd, subkey, &e, blob, out);
	free(blob);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	setup();
	rd in = rd_make(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0: read_header(data + 1, size - 1); break;
	case 1: sealed_header(&in); break;
	default: sealed_blob(&in); break;
	}
	return 0;
}
