/*
 * chunkread.c — chunks read one after another, with the reads of neighbouring blobs coalesced (chunkread.h).
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/pipeline/chunkread.h"
#include "engine/repo/pack.h"
#include "store/err.h"

struct chunk_reader {
	repo *r;
	const chunk_index *idx;
	index_entry q[CHUNKREAD_QUEUE]; /* a ring of the chunks asked for, resolved */
	size_t head, n;
	crypto_ctx *cc;
	ZSTD_DCtx *zd;
	/* the last range read: pack rpack, bytes [roff, roff + rlen) */
	uint8_t *rbuf;
	size_t rcap, rlen;
	uint32_t rpack;
	uint64_t roff;
	/* one blob is copied out of rbuf before it is opened: opening decrypts in place, and the same blob may be
	 * asked for again while the range is still held */
	uint8_t *blob;
	size_t blob_cap;
	uint8_t *out; /* the plaintext handed out */
	size_t out_len;
	uint8_t out_id[CRYPTO_ID_LEN];
	bool have_out;
	uint32_t key_pack; /* pack whose subkey is cached */
	uint8_t subkey[CRYPTO_KEY_LEN];
	uint64_t fetched;
};

int chunkread_new(repo *r, const chunk_index *idx, chunk_reader **out)
{
	chunk_reader *cr = calloc(1, sizeof *cr);
	if (cr == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a chunk reader");
	cr->r = r;
	cr->idx = idx;
	cr->rpack = cr->key_pack = INDEX_PACK_PENDING;
	cr->blob_cap = ZSTD_compressBound(pack_blob_max_any(r)) + CRYPTO_TAG_LEN;
	cr->rcap = CHUNKREAD_READ_MAX + cr->blob_cap;
	cr->rbuf = malloc(cr->rcap);
	cr->blob = malloc(cr->blob_cap);
	cr->out = malloc(pack_blob_max_any(r));
	cr->zd = ZSTD_createDCtx();
	int rc = 0;
	if (cr->rbuf == NULL || cr->blob == NULL || cr->out == NULL || cr->zd == NULL)
		rc = err_set(DRE_ENOMEM, "cannot allocate a chunk reader");
	if (rc == 0)
		rc = crypto_ctx_new(&cr->cc);
	if (rc < 0) {
		chunkread_free(cr);
		return rc;
	}
	*out = cr;
	return 0;
}

void chunkread_free(chunk_reader *cr)
{
	if (cr == NULL)
		return;
	free(cr->rbuf);
	free(cr->blob);
	free(cr->out);
	ZSTD_freeDCtx(cr->zd);
	crypto_ctx_free(cr->cc);
	crypto_wipe(cr->subkey, sizeof cr->subkey);
	free(cr);
}

size_t chunkread_room(const chunk_reader *cr)
{
	return CHUNKREAD_QUEUE - cr->n;
}

uint64_t chunkread_fetched(const chunk_reader *cr)
{
	return cr->fetched;
}

static uint64_t blob_end(const index_entry *e)
{
	return (uint64_t)e->loc.offset + e->loc.stored_len + CRYPTO_TAG_LEN;
}

int chunkread_queue(chunk_reader *cr, const uint8_t id[CRYPTO_ID_LEN], const char *what)
{
	index_entry e;
	char hex[65];
	if (cr->n == CHUNKREAD_QUEUE)
		return err_set(DRE_EINVAL, "internal: the chunk reader's queue is full");
	if (!index_find(cr->idx, id, &e) || e.pack == INDEX_PACK_PENDING || (e.loc.flags & BLOB_LIST)) {
		hex_encode(id, CRYPTO_ID_LEN, hex);
		return err_set(DRE_ECORRUPT,
			       "chunk %.16s of %s is not in the index (its index object is missing or damaged). "
			       "HINT: 'dre check' lists what is damaged",
			       hex, what);
	}
	/* the index is read from the store: its lengths bound what is allocated and read, so check them here */
	if (e.loc.raw_len > pack_blob_max(cr->r, e.loc.flags) || e.loc.stored_len + (size_t)CRYPTO_TAG_LEN > cr->blob_cap) {
		hex_encode(index_pack_id(cr->idx, e.pack), CRYPTO_ID_LEN, hex);
		return err_set(DRE_ECORRUPT, "corrupt index entry for pack %s: a blob of %u bytes (%u stored)", hex,
			       e.loc.raw_len, e.loc.stored_len);
	}
	cr->q[(cr->head + cr->n) % CHUNKREAD_QUEUE] = e;
	cr->n++;
	return 0;
}

static bool in_range(const chunk_reader *cr, const index_entry *e)
{
	return cr->rpack == e->pack && e->loc.offset >= cr->roff && blob_end(e) <= cr->roff + cr->rlen;
}

/* Reads the range of pack e->pack from e's blob on, over the queued blobs that follow it back to back. */
static int fetch(chunk_reader *cr, const index_entry *e)
{
	uint64_t start = e->loc.offset, end = blob_end(e);
	for (size_t i = 1; i < cr->n; i++) {
		const index_entry *f = &cr->q[(cr->head + i) % CHUNKREAD_QUEUE];
		if (f->pack != e->pack)
			break;
		if (f->loc.offset >= start && blob_end(f) <= end)
			continue; /* already inside (a chunk that repeats) */
		if (f->loc.offset != end || blob_end(f) - start > CHUNKREAD_READ_MAX)
			break;
		end = blob_end(f);
	}
	char key[80], hex[65];
	const uint8_t *pack_id = index_pack_id(cr->idx, e->pack);
	repo_pack_key(pack_id, key);
	cr->rpack = INDEX_PACK_PENDING; /* nothing valid while the read runs */
	int rc = store_get(cr->r->st, key, start, (size_t)(end - start), cr->rbuf);
	if (rc < 0) {
		hex_encode(pack_id, CRYPTO_ID_LEN, hex);
		return err_ctx(rc == DRE_ENOTFOUND ? DRE_ECORRUPT : rc, "%s pack %s",
			       rc == DRE_ENOTFOUND ? "missing" : "cannot read", hex);
	}
	cr->fetched += end - start;
	cr->rpack = e->pack;
	cr->roff = start;
	cr->rlen = (size_t)(end - start);
	return 0;
}

int chunkread_next(chunk_reader *cr, const uint8_t **data, size_t *len)
{
	if (cr->n == 0)
		return err_set(DRE_EINVAL, "internal: no chunk queued");
	index_entry e = cr->q[cr->head];
	/* a chunk that repeats (runs of zeros, repeated blocks) is the one just decoded */
	if (!(cr->have_out && memcmp(e.loc.id, cr->out_id, CRYPTO_ID_LEN) == 0)) {
		if (!in_range(cr, &e))
			TRY(fetch(cr, &e));
		if (cr->key_pack != e.pack) {
			TRY(repo_pack_subkey(cr->r, index_pack_id(cr->idx, e.pack), cr->subkey));
			cr->key_pack = e.pack;
		}
		size_t blen = e.loc.stored_len + (size_t)CRYPTO_TAG_LEN;
		memcpy(cr->blob, cr->rbuf + (e.loc.offset - cr->roff), blen);
		cr->have_out = false;
		int rc = pack_blob_open(cr->cc, cr->zd, cr->subkey, &e.loc, cr->blob, cr->out);
		if (rc < 0) {
			char hex[65], chex[65];
			hex_encode(index_pack_id(cr->idx, e.pack), CRYPTO_ID_LEN, hex);
			hex_encode(e.loc.id, CRYPTO_ID_LEN, chex);
			return err_ctx(DRE_ECORRUPT, "corrupt pack %s: chunk %.16s at offset %u", hex, chex, e.loc.offset);
		}
		memcpy(cr->out_id, e.loc.id, CRYPTO_ID_LEN);
		cr->out_len = e.loc.raw_len;
		cr->have_out = true;
	}
	cr->head = (cr->head + 1) % CHUNKREAD_QUEUE;
	cr->n--;
	*data = cr->out;
	*len = cr->out_len;
	return 0;
}
