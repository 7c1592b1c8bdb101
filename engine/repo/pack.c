#include "engine/repo/pack.h"

#include <stdlib.h>
#include <string.h>

#include "engine/repo/bytes.h"
#include "engine/testhook.h"
#include "store/err.h"

void pack_blob_nonce(uint32_t offset, uint8_t nonce[CRYPTO_NONCE_LEN])
{
	memset(nonce, 0, CRYPTO_NONCE_LEN);
	put_le64(nonce, offset);
}

static void pack_header_nonce(uint8_t nonce[CRYPTO_NONCE_LEN])
{
	memset(nonce, 0xff, CRYPTO_NONCE_LEN);
}

static void pack_blob_aad(const uint8_t id[CRYPTO_ID_LEN], uint8_t flags, uint32_t raw_len, uint8_t aad[37])
{
	memcpy(aad, id, CRYPTO_ID_LEN);
	aad[32] = flags;
	put_le32(aad + 33, raw_len);
}

uint64_t pack_padme(uint64_t len)
{
	if (len < 2)
		return len;
	unsigned e = 63 - (unsigned)__builtin_clzll(len);       /* floor(log2 len) */
	unsigned s = 32 - (unsigned)__builtin_clz(e);            /* floor(log2 e) + 1 */
	unsigned last_bits = e - s;
	uint64_t mask = (1ull << last_bits) - 1;
	return (len + mask) & ~mask;
}

void pack_entries_put(buf *b, const pack_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_put(b, e[i].id, CRYPTO_ID_LEN);
		buf_u32(b, e[i].offset);
		buf_u32(b, e[i].stored_len);
		buf_u32(b, e[i].raw_len);
		buf_u8(b, e[i].flags);
	}
}

void pack_entry_get(rd *in, pack_entry *e)
{
	const uint8_t *id = rd_take(in, CRYPTO_ID_LEN);
	if (id != NULL)
		memcpy(e->id, id, CRYPTO_ID_LEN);
	e->offset = rd_u32(in);
	e->stored_len = rd_u32(in);
	e->raw_len = rd_u32(in);
	e->flags = rd_u8(in);
}

static int writer_init(pack_writer *pw, const repo *r, size_t target, size_t blob_max)
{
	memset(pw, 0, sizeof *pw);
	pw->r = r;
	pw->target = target;
	pw->blob_max = blob_max;
	/* room for one more blob past the target, compressed worst case, plus its tag */
	pw->cap = target + ZSTD_compressBound(blob_max) + CRYPTO_TAG_LEN;
	pw->data = store_buffer_alloc(pw->cap); /* aligned: a local store writes it past the page cache */
	pw->zc = ZSTD_createCCtx();
	if (pw->data == NULL || pw->zc == NULL) {
		pack_writer_free(pw);
		return err_set(DRE_ENOMEM, "cannot allocate a %zu-byte pack buffer", pw->cap);
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(pw->zc, ZSTD_c_compressionLevel, r->params.zstd_level))) {
		pack_writer_free(pw);
		return err_set(DRE_EINVAL, "zstd rejects compression level %d", r->params.zstd_level);
	}
	int rc = crypto_ctx_new(&pw->cc);
	if (rc < 0) {
		pack_writer_free(pw);
		return rc;
	}
	return pack_writer_reset(pw);
}

int pack_writer_init(pack_writer *pw, const repo *r)
{
	return writer_init(pw, r, r->params.pack_size, r->params.cdc_max);
}

int pack_writer_init_sized(pack_writer *pw, const repo *r, size_t target)
{
	return writer_init(pw, r, target, pack_blob_max_any(r));
}

void pack_writer_free(pack_writer *pw)
{
	free(pw->data);
	free(pw->entries);
	ZSTD_freeCCtx(pw->zc);
	crypto_ctx_free(pw->cc);
	buf_free(&pw->header);
	crypto_wipe(pw->subkey, sizeof pw->subkey);
	memset(pw, 0, sizeof *pw);
}

int pack_writer_reset(pack_writer *pw)
{
	pw->len = 0;
	pw->n = 0;
	pw->raw_bytes = 0;
	TRY(crypto_random(pw->id, sizeof pw->id));
	return repo_pack_subkey(pw->r, pw->id, pw->subkey);
}

static int writer_add(pack_writer *pw, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *data, size_t len,
		      uint8_t type)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	uint8_t aad[37];
	uint8_t *dst = pw->data + pw->len;
	size_t room = pw->cap - pw->len - CRYPTO_TAG_LEN;
	uint8_t flags = BLOB_ZSTD | type;

	if (len > pack_blob_max(pw->r, type) || len > pw->blob_max || ZSTD_compressBound(len) > room)
		return err_set(DRE_EINVAL, "blob of %zu bytes does not fit the pack buffer", len);
	if (!array_room(&pw->entries, &pw->entries_cap, pw->n, sizeof *pw->entries, 1024))
		return err_set(DRE_ENOMEM, "cannot grow the pack entry list");
	size_t stored = len;
	if (pw->skip_zstd > 0)
		pw->skip_zstd--;
	else {
		stored = ZSTD_compress2(pw->zc, dst, room, data, len);
		if (ZSTD_isError(stored) || stored > len - len / PACK_GAIN_MIN)
			pw->skip_zstd = PACK_SKIP_RUN;
	}
	if (ZSTD_isError(stored) || stored >= len) {
		/* incompressible: keep it as it is, flagged, so restore does not run zstd on it */
		memcpy(dst, data, len);
		stored = len;
		flags = type;
	}
	pack_blob_nonce((uint32_t)pw->len, nonce);
	pack_blob_aad(id, flags, (uint32_t)len, aad);
	TRY(crypto_seal(pw->cc, pw->subkey, nonce, aad, sizeof aad, dst, stored, dst + stored));

	pack_entry *e = &pw->entries[pw->n++];
	memcpy(e->id, id, CRYPTO_ID_LEN);
	e->offset = (uint32_t)pw->len;
	e->stored_len = (uint32_t)stored;
	e->raw_len = (uint32_t)len;
	e->flags = flags;
	pw->len += stored + CRYPTO_TAG_LEN;
	pw->raw_bytes += len;
	return 0;
}

int pack_writer_add(pack_writer *pw, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *data, size_t len)
{
	return writer_add(pw, id, data, len, 0);
}

int pack_writer_add_list(pack_writer *pw, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *data, size_t len)
{
	return writer_add(pw, id, data, len, BLOB_LIST);
}

int pack_writer_seal(pack_writer *pw, size_t *total_out)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	uint8_t trailer[PACK_TRAILER_LEN];
	buf *h = &pw->header;

	h->len = 0;
	buf_u32(h, (uint32_t)pw->n);
	pack_entries_put(h, pw->entries, pw->n);
	uint64_t unpadded = pw->len + h->len + CRYPTO_TAG_LEN + PACK_TRAILER_LEN;
	uint64_t pad = pack_padme(unpadded) - unpadded;
	if (buf_reserve(h, pad)) {
		memset(h->data + h->len, 0, pad);
		h->len += pad;
	}
	TRY(buf_check(h, "a pack header"));

	size_t total = pw->len + h->len + CRYPTO_TAG_LEN + PACK_TRAILER_LEN;
	if (total > pw->cap) {
		uint8_t *p = store_buffer_alloc(total);
		if (p == NULL)
			return err_set(DRE_ENOMEM, "cannot grow the pack buffer to %zu bytes", total);
		memcpy(p, pw->data, pw->len);
		free(pw->data);
		pw->data = p;
		pw->cap = total;
	}
	put_le32(trailer, (uint32_t)(h->len + CRYPTO_TAG_LEN));
	memcpy(trailer + 4, PACK_MAGIC, 4);
	uint8_t *hdr = pw->data + pw->len;
	memcpy(hdr, h->data, h->len);
	pack_header_nonce(nonce);
	TRY(crypto_seal(pw->cc, pw->subkey, nonce, trailer, sizeof trailer, hdr, h->len, hdr + h->len));
	memcpy(hdr + h->len + CRYPTO_TAG_LEN, trailer, sizeof trailer);
	*total_out = total;
	test_pause("pack-sealed");
	return 0;
}

int pack_writer_put(pack_writer *pw, size_t total)
{
	char key[80];
	repo_pack_key(pw->id, key);
	test_pause("pack-before-put");
	TRY(store_put(pw->r->st, key, pw->data, total, 0));
	test_pause("pack-after-put");
	return 0;
}

int pack_writer_finish(pack_writer *pw, uint64_t *size)
{
	size_t total;
	TRY(pack_writer_seal(pw, &total));
	TRY(pack_writer_put(pw, total));
	*size = total;
	return 0;
}

int pack_blob_open(crypto_ctx *cc, ZSTD_DCtx *zd, const uint8_t subkey[CRYPTO_KEY_LEN], const pack_entry *e,
		   uint8_t *blob, uint8_t *out)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	uint8_t aad[37];

	pack_blob_nonce(e->offset, nonce);
	pack_blob_aad(e->id, e->flags, e->raw_len, aad);
	TRY(crypto_open(cc, subkey, nonce, aad, sizeof aad, blob, e->stored_len, blob + e->stored_len));
	if (e->flags & BLOB_ZSTD) {
		size_t n = ZSTD_decompressDCtx(zd, out, e->raw_len, blob, e->stored_len);
		if (ZSTD_isError(n))
			return err_set(DRE_ECORRUPT, "zstd: %s", ZSTD_getErrorName(n));
		if (n != e->raw_len)
			return err_set(DRE_ECORRUPT, "chunk decompressed to %zu bytes, expected %u", n, e->raw_len);
	} else {
		if (e->stored_len != e->raw_len)
			return err_set(DRE_ECORRUPT, "raw chunk of %u bytes stored as %u", e->raw_len, e->stored_len);
		memcpy(out, blob, e->raw_len);
	}
	return 0;
}

int pack_read_header(const repo *r, crypto_ctx *cc, const char *key, const uint8_t *pack, size_t len,
		     const uint8_t subkey[CRYPTO_KEY_LEN], pack_entry **entries, size_t *n)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	(void)r;
	if (len < PACK_TRAILER_LEN + CRYPTO_TAG_LEN + 4 || memcmp(pack + len - 4, PACK_MAGIC, 4) != 0)
		return err_set(DRE_ECORRUPT, "corrupt pack %s: no pack trailer (object is %zu bytes)", key, len);
	const uint8_t *trailer = pack + len - PACK_TRAILER_LEN;
	uint32_t hlen = get_le32(trailer);
	if (hlen < CRYPTO_TAG_LEN + 4 || hlen > len - PACK_TRAILER_LEN)
		return err_set(DRE_ECORRUPT, "corrupt pack %s: header length %u does not fit a %zu-byte object", key,
			       hlen, len);
	size_t hoff = len - PACK_TRAILER_LEN - hlen;
	size_t plen = hlen - CRYPTO_TAG_LEN;
	uint8_t *h = malloc(plen);
	if (h == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a pack header of %zu bytes", plen);
	memcpy(h, pack + hoff, plen);
	pack_header_nonce(nonce);
	int rc = crypto_open(cc, subkey, nonce, trailer, PACK_TRAILER_LEN, h, plen, pack + hoff + plen);
	if (rc < 0) {
		free(h);
		return err_ctx(rc, "corrupt pack %s: header", key);
	}
	rd in = rd_make(h, plen);
	uint32_t count = rd_u32(&in);
	if ((uint64_t)count * PACK_ENTRY_LEN > plen - 4) {
		free(h);
		return err_set(DRE_ECORRUPT, "corrupt pack %s: header lists %u entries in %zu bytes", key, count, plen);
	}
	pack_entry *es = malloc((count ? count : 1) * sizeof *es);
	if (es == NULL) {
		free(h);
		return err_set(DRE_ENOMEM, "cannot allocate %u pack entries", count);
	}
	for (uint32_t i = 0; i < count; i++) {
		pack_entry_get(&in, &es[i]);
		if ((uint64_t)es[i].offset + es[i].stored_len + CRYPTO_TAG_LEN > hoff || (es[i].flags & ~BLOB_FLAGS)) {
			free(es);
			free(h);
			return err_set(DRE_ECORRUPT, "corrupt pack %s: entry %u lies outside the blob area", key, i);
		}
	}
	free(h);
	*entries = es;
	*n = count;
	return 0;
}
