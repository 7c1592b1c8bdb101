#include "engine/repo/list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine/repo/bytes.h"
#include "engine/repo/pack.h"
#include "store/err.h"

_Static_assert(LIST_BLOB_MAX == BLOB_LIST_MAX_LEN, "pack.h and list.h agree on the largest list blob");

int list_blob_id(const repo *r, crypto_ctx *cc, const uint8_t *blob, size_t len, uint8_t id[CRYPTO_ID_LEN])
{
	return crypto_hmac(cc, r->list_key, blob, len, id);
}

/* ---- writer ---- */

int list_writer_init(list_writer *w, const repo *r, uint8_t kind, list_sink_fn sink, void *arg)
{
	memset(w, 0, sizeof *w);
	w->r = r;
	w->kind = kind;
	w->sink = sink;
	w->arg = arg;
	return crypto_ctx_new(&w->cc);
}

void list_writer_free(list_writer *w)
{
	for (int l = 0; l < LIST_MAX_LEVELS; l++)
		free(w->lv[l].data);
	crypto_ctx_free(w->cc);
	memset(w, 0, sizeof *w);
}

/* Whether an entry ends its blob: IDs are keyed hashes already, so their first bytes serve; a node record is
 * hashed. Only entries past LIST_MIN_BYTES may cut, so that a run of one repeated entry (the chunks of a file
 * of zeros) still makes blobs that shrink level by level. */
static bool cut_here(uint8_t kind, int level, const uint8_t *entry, size_t len, size_t blob_len)
{
	if (blob_len >= LIST_MAX_BYTES)
		return true;
	if (blob_len < LIST_MIN_BYTES)
		return false;
	uint64_t h = (kind == LIST_NODES && level == 0) ? XXH3_64bits(entry, len) : get_le64(entry);
	return (h & ((1u << LIST_CUT_BITS) - 1)) == 0;
}

static int level_add(list_writer *w, int l, const uint8_t *entry, size_t len, uint64_t below);

/* Finishes the blob of level l: its ID, to the sink, and its reference one level up. */
static int level_cut(list_writer *w, int l)
{
	list_level *v = &w->lv[l];
	uint8_t id[CRYPTO_ID_LEN], ref[LIST_REF_LEN];
	v->data[0] = w->kind;
	v->data[1] = (uint8_t)l;
	put_le16(v->data + 2, 0);
	put_le32(v->data + 4, v->n);
	TRY(list_blob_id(w->r, w->cc, v->data, v->len, id));
	TRY(w->sink(w->arg, id, v->data, v->len));
	memcpy(ref, id, CRYPTO_ID_LEN);
	put_le64(ref + CRYPTO_ID_LEN, v->below);
	uint64_t below = v->below;
	v->len = LIST_HDR_LEN;
	v->n = 0;
	v->below = 0;
	v->emitted = true;
	if (l + 1 >= LIST_MAX_LEVELS)
		return err_set(DRE_EINVAL, "a content list is too long (more than %d levels)", LIST_MAX_LEVELS);
	return level_add(w, l + 1, ref, sizeof ref, below);
}

static int level_add(list_writer *w, int l, const uint8_t *entry, size_t len, uint64_t below)
{
	list_level *v = &w->lv[l];
	if (v->data == NULL) {
		if ((v->data = malloc(LIST_BLOB_MAX)) == NULL)
			return err_set(DRE_ENOMEM, "cannot allocate a list blob");
		v->len = LIST_HDR_LEN;
	}
	size_t need = len + (w->kind == LIST_NODES && l == 0 ? 2 : 0);
	if (v->len + need > LIST_BLOB_MAX)
		return err_set(DRE_EINVAL, "internal: list blob overflow");
	if (w->kind == LIST_NODES && l == 0) {
		put_le16(v->data + v->len, (uint16_t)len);
		v->len += 2;
	}
	memcpy(v->data + v->len, entry, len);
	v->len += len;
	v->n++;
	v->below += below;
	if (cut_here(w->kind, l, entry, len, v->len))
		return level_cut(w, l);
	return 0;
}

int list_writer_add(list_writer *w, const uint8_t *entry, size_t len)
{
	if (w->kind == LIST_CHUNKS ? len != CRYPTO_ID_LEN : (len == 0 || len > LIST_ENTRY_MAX))
		return err_set(DRE_EINVAL, "internal: a list entry of %zu bytes", len);
	w->count++;
	return level_add(w, 0, entry, len, 1);
}

int list_writer_finish(list_writer *w, list_ref *root)
{
	memset(root, 0, sizeof *root);
	root->count = w->count;
	if (w->count == 0)
		return 0;
	/* Cut each level bottom up; the root is the first level that holds the only reference to everything: a
	 * single entry with nothing emitted at that level before. */
	for (int l = 0; l < LIST_MAX_LEVELS; l++) {
		list_level *v = &w->lv[l];
		if (l > 0 && v->n == 1 && !v->emitted) {
			memcpy(root->id, v->data + LIST_HDR_LEN, CRYPTO_ID_LEN);
			root->level = (uint8_t)(l - 1);
			return 0;
		}
		if (v->n > 0)
			TRY(level_cut(w, l));
	}
	return err_set(DRE_EINVAL, "a content list is too long (more than %d levels)", LIST_MAX_LEVELS);
}

/* ---- reading blobs ---- */

/*
 * A push writes a list's blobs one after another into its list pack, so a reader that needs one blob will most
 * likely need the next ones: it reads LIST_WINDOW bytes from the blob on (one request where a store's requests
 * cost a round trip) and serves the following blobs from there.
 */
#define LIST_WINDOW (256u << 10)

struct list_io {
	crypto_ctx *cc;
	ZSTD_DCtx *zd;
	uint8_t *raw; /* the stored blob, decrypted in place */
	size_t raw_cap;
	uint8_t *win; /* LIST_WINDOW bytes of pack win_pack from win_off */
	uint32_t win_pack;
	uint64_t win_off, win_len;
	uint32_t size_pack; /* the pack whose size is known */
	uint64_t pack_size;
	uint32_t key_pack;
	uint8_t subkey[CRYPTO_KEY_LEN];
};

int list_io_new(list_io **out)
{
	list_io *io = calloc(1, sizeof *io);
	if (io == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a list reader");
	io->raw_cap = ZSTD_compressBound(LIST_BLOB_MAX) + CRYPTO_TAG_LEN;
	io->raw = malloc(io->raw_cap);
	io->win = malloc(LIST_WINDOW > io->raw_cap ? LIST_WINDOW : io->raw_cap);
	io->zd = ZSTD_createDCtx();
	io->key_pack = io->win_pack = io->size_pack = INDEX_PACK_PENDING;
	int rc = io->raw && io->win && io->zd ? crypto_ctx_new(&io->cc)
					      : err_set(DRE_ENOMEM, "cannot allocate a list reader");
	if (rc < 0) {
		list_io_free(io);
		return rc;
	}
	*out = io;
	return 0;
}

void list_io_free(list_io *io)
{
	if (io == NULL)
		return;
	free(io->raw);
	free(io->win);
	ZSTD_freeDCtx(io->zd);
	crypto_ctx_free(io->cc);
	crypto_wipe(io->subkey, sizeof io->subkey);
	free(io);
}

int list_blob_read(repo *r, const chunk_index *idx, list_io *io, const uint8_t id[CRYPTO_ID_LEN], uint8_t *plain,
		   size_t *len)
{
	index_entry e;
	char hex[65], phex[65], key[80];
	hex_encode(id, CRYPTO_ID_LEN, hex);
	if (!index_find(idx, id, &e) || e.pack == INDEX_PACK_PENDING)
		return err_set(DRE_ECORRUPT, "list blob %.16s is not in the index (its index object is missing or "
					     "damaged). HINT: 'dre check' lists what is damaged",
			       hex);
	hex_encode(index_pack_id(idx, e.pack), CRYPTO_ID_LEN, phex);
	if (!(e.loc.flags & BLOB_LIST) || e.loc.raw_len > LIST_BLOB_MAX || e.loc.raw_len < LIST_HDR_LEN ||
	    (size_t)e.loc.stored_len + CRYPTO_TAG_LEN > io->raw_cap)
		return err_set(DRE_ECORRUPT, "corrupt index: blob %.16s in pack %.16s is not a list blob (flags 0x%02x, "
					     "%u bytes)",
			       hex, phex, e.loc.flags, e.loc.raw_len);
	repo_pack_key(index_pack_id(idx, e.pack), key);
	uint64_t off = e.loc.offset, need = (uint64_t)e.loc.stored_len + CRYPTO_TAG_LEN;
	int rc = 0;
	if (io->win_pack != e.pack || off < io->win_off || off + need > io->win_off + io->win_len) {
		if (io->size_pack != e.pack) {
			io->size_pack = INDEX_PACK_PENDING;
			rc = store_stat(r->st, key, &io->pack_size);
			if (rc == 0)
				io->size_pack = e.pack;
		}
		uint64_t end = off + LIST_WINDOW;
		if (rc == 0 && end > io->pack_size)
			end = io->pack_size;
		if (rc == 0 && end < off + need)
			return err_set(DRE_ECORRUPT, "corrupt pack %s: %" PRIu64 " bytes, too short for list blob %.16s at "
						     "offset %" PRIu64,
				       phex, io->pack_size, hex, off);
		io->win_pack = INDEX_PACK_PENDING;
		if (rc == 0)
			rc = store_get(r->st, key, off, (size_t)(end - off), io->win);
		if (rc == 0) {
			io->win_pack = e.pack;
			io->win_off = off;
			io->win_len = end - off;
		}
	}
	if (rc < 0)
		return err_ctx(rc == DRE_ENOTFOUND ? DRE_ECORRUPT : rc, "%s pack %s (list blob %.16s)",
			       rc == DRE_ENOTFOUND ? "missing" : "cannot read", phex, hex);
	memcpy(io->raw, io->win + (off - io->win_off), (size_t)need); /* opened in place: the window stays intact */
	if (io->key_pack != e.pack) {
		TRY(repo_pack_subkey(r, index_pack_id(idx, e.pack), io->subkey));
		io->key_pack = e.pack;
	}
	if (pack_blob_open(io->cc, io->zd, io->subkey, &e.loc, io->raw, plain) < 0)
		return err_set(DRE_ECORRUPT, "corrupt pack %s: list blob %.16s at offset %u does not authenticate",
			       phex, hex, e.loc.offset);
	*len = e.loc.raw_len;
	return 0;
}

/* ---- reader ---- */

static int corrupt(const list_reader *lr, const char *why)
{
	return err_set(DRE_ECORRUPT, "%s is damaged: %s", lr->what, why);
}

/* Sums a blob's references against the count its parent promised. */
static int check_ref_sum(list_reader *lr, int l)
{
	uint64_t sum = 0;
	const uint8_t *d = lr->lv[l].data;
	for (uint32_t i = 0; i < lr->lv[l].n; i++) {
		uint64_t c = get_le64(d + LIST_HDR_LEN + (size_t)i * LIST_REF_LEN + CRYPTO_ID_LEN);
		if (c == 0 || sum + c < sum)
			return corrupt(lr, "a reference with an impossible count");
		sum += c;
	}
	if (sum != lr->lv[l].count)
		return corrupt(lr, "a list blob's references do not add up to its count");
	return 0;
}

/* Reads the blob a reference points to into level l and checks it against what the reference says: its header,
 * its length, and the counts of its own references. */
static int load_level(list_reader *lr, int l, const uint8_t id[CRYPTO_ID_LEN], uint64_t count)
{
	if (lr->lv[l].data == NULL && (lr->lv[l].data = malloc(LIST_BLOB_MAX)) == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a list blob");
	size_t len;
	TRY(list_blob_read(lr->r, lr->idx, lr->io, id, lr->lv[l].data, &len));
	const uint8_t *d = lr->lv[l].data;
	if (d[0] != lr->kind || d[1] != l || get_le16(d + 2) != 0)
		return corrupt(lr, "a list blob of the wrong kind or level (a reference loop or a swapped blob)");
	uint32_t n = get_le32(d + 4);
	if (n == 0 || (l > 0 && (uint64_t)n * LIST_REF_LEN != len - LIST_HDR_LEN) ||
	    (l == 0 && lr->kind == LIST_CHUNKS && (uint64_t)n * CRYPTO_ID_LEN != len - LIST_HDR_LEN) ||
	    (l == 0 && count != n))
		return corrupt(lr, "a list blob whose entry count does not match its length or its reference");
	lr->lv[l].len = len;
	lr->lv[l].off = LIST_HDR_LEN;
	lr->lv[l].n = n;
	lr->lv[l].i = 0;
	lr->lv[l].count = count;
	return l > 0 ? check_ref_sum(lr, l) : 0;
}

int list_reader_open(list_reader *lr, repo *r, const chunk_index *idx, uint8_t kind, const list_ref *root,
		     const char *what)
{
	memset(lr, 0, sizeof *lr);
	lr->r = r;
	lr->idx = idx;
	lr->kind = kind;
	lr->what = what;
	lr->left = root->count;
	lr->top = -1;
	if (root->count == 0)
		return 0;
	if (root->level >= LIST_MAX_LEVELS)
		return corrupt(lr, "its root is at an impossible level");
	TRY(list_io_new(&lr->io));
	lr->top = root->level;
	/* the root is entered lazily by next(), as a one-reference level above it */
	lr->lv[lr->top].count = root->count;
	lr->pending_root = true;
	memcpy(lr->root_id, root->id, CRYPTO_ID_LEN);
	return 0;
}

void list_reader_free(list_reader *lr)
{
	for (int l = 0; l < LIST_MAX_LEVELS; l++)
		free(lr->lv[l].data);
	list_io_free(lr->io);
	memset(lr, 0, sizeof *lr);
}

/* Enters the blob a reference points to at level l, unless the visitor skips it; 1 when entered. */
static int enter(list_reader *lr, int l, const uint8_t id[CRYPTO_ID_LEN], uint64_t count)
{
	if (count == 0 || count > lr->left)
		return corrupt(lr, "a reference counts more entries than the list holds");
	if (lr->visit) {
		int v = lr->visit(lr->visit_arg, id, (uint8_t)l, count);
		TRY(v);
		if (v == 1) {
			lr->left -= count;
			return 0;
		}
	}
	TRY(load_level(lr, l, id, count));
	return 1;
}

int list_reader_next(list_reader *lr, const uint8_t **entry, size_t *len)
{
	if (lr->top < 0)
		return 0;
	if (lr->pending_root) {
		lr->pending_root = false;
		int e = enter(lr, lr->top, lr->root_id, lr->lv[lr->top].count);
		TRY(e);
		if (e == 0) {
			lr->top = -1;
			return 0;
		}
		lr->depth = lr->top; /* the deepest level entered */
	}
	for (;;) {
		/* climb to the lowest level with entries left */
		int l = lr->depth;
		while (l <= lr->top && lr->lv[l].i == lr->lv[l].n)
			l++;
		if (l > lr->top) {
			lr->top = -1;
			if (lr->left != 0)
				return corrupt(lr, "it ends before the count its snapshot gives");
			return 0;
		}
		if (l == 0) {
			uint8_t *d = lr->lv[0].data;
			size_t off = lr->lv[0].off, elen = CRYPTO_ID_LEN;
			if (lr->kind == LIST_NODES) {
				if (off + 2 > lr->lv[0].len || (elen = get_le16(d + off)) == 0)
					return corrupt(lr, "a node record runs past its blob");
				off += 2;
			}
			if (off + elen > lr->lv[0].len || lr->left == 0)
				return corrupt(lr, "an entry runs past its blob");
			lr->lv[0].off = off + elen;
			lr->lv[0].i++;
			if (lr->lv[0].i == lr->lv[0].n && lr->lv[0].off != lr->lv[0].len)
				return corrupt(lr, "a list blob with bytes after its last entry");
			lr->left--;
			lr->depth = 0;
			*entry = d + off;
			*len = elen;
			return 1;
		}
		/* descend through the next reference of level l */
		const uint8_t *ref = lr->lv[l].data + lr->lv[l].off;
		lr->lv[l].off += LIST_REF_LEN;
		lr->lv[l].i++;
		int e = enter(lr, l - 1, ref, get_le64(ref + CRYPTO_ID_LEN));
		TRY(e);
		lr->depth = e == 1 ? l - 1 : l;
	}
}
