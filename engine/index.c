#include "engine/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"

struct chunk_index {
	index_entry *slots; /* open addressing, linear probing; used[i] marks an occupied slot */
	uint8_t *used;
	size_t cap, count; /* cap is a power of two */
	uint8_t (*packs)[CRYPTO_ID_LEN];
	size_t npacks, packs_cap;
	/* pack ID → number, a second small open-addressing table */
	uint32_t *pack_slots; /* number + 1, 0 = empty */
	size_t pack_slots_cap;
};

static inline uint64_t id_hash(const uint8_t *id)
{
	uint64_t h;
	memcpy(&h, id, sizeof h);
	return h;
}

int index_new(chunk_index **out)
{
	chunk_index *idx = calloc(1, sizeof *idx);
	if (idx == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the chunk index");
	idx->cap = 1024;
	idx->slots = malloc(idx->cap * sizeof *idx->slots);
	idx->used = calloc(idx->cap, 1);
	idx->pack_slots_cap = 256;
	idx->pack_slots = calloc(idx->pack_slots_cap, sizeof *idx->pack_slots);
	if (idx->slots == NULL || idx->used == NULL || idx->pack_slots == NULL) {
		index_free(idx);
		return err_set(DRE_ENOMEM, "cannot allocate the chunk index");
	}
	*out = idx;
	return 0;
}

void index_free(chunk_index *idx)
{
	if (idx == NULL)
		return;
	free(idx->slots);
	free(idx->used);
	free(idx->packs);
	free(idx->pack_slots);
	free(idx);
}

size_t index_count(const chunk_index *idx)
{
	return idx->count;
}

size_t index_pack_count(const chunk_index *idx)
{
	return idx->npacks;
}

const uint8_t *index_pack_id(const chunk_index *idx, uint32_t pack_no)
{
	return pack_no < idx->npacks ? idx->packs[pack_no] : NULL;
}

static int pack_slots_grow(chunk_index *idx)
{
	size_t cap = idx->pack_slots_cap * 2;
	uint32_t *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return err_set(DRE_ENOMEM, "cannot grow the pack table");
	for (size_t n = 0; n < idx->npacks; n++) {
		size_t i = id_hash(idx->packs[n]) & (cap - 1);
		while (slots[i] != 0)
			i = (i + 1) & (cap - 1);
		slots[i] = (uint32_t)n + 1;
	}
	free(idx->pack_slots);
	idx->pack_slots = slots;
	idx->pack_slots_cap = cap;
	return 0;
}

int index_pack_intern(chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN], uint32_t *pack_no)
{
	size_t mask = idx->pack_slots_cap - 1;
	size_t i = id_hash(pack_id) & mask;
	while (idx->pack_slots[i] != 0) {
		uint32_t n = idx->pack_slots[i] - 1;
		if (memcmp(idx->packs[n], pack_id, CRYPTO_ID_LEN) == 0) {
			*pack_no = n;
			return 0;
		}
		i = (i + 1) & mask;
	}
	if (idx->npacks >= INDEX_PACK_PENDING - 1)
		return err_set(DRE_EINVAL, "too many packs in one repository index");
	if (!array_room(&idx->packs, &idx->packs_cap, idx->npacks, CRYPTO_ID_LEN, 64))
		return err_set(DRE_ENOMEM, "cannot grow the pack table");
	memcpy(idx->packs[idx->npacks], pack_id, CRYPTO_ID_LEN);
	*pack_no = (uint32_t)idx->npacks++;
	if (idx->npacks * 2 > idx->pack_slots_cap)
		return pack_slots_grow(idx);
	idx->pack_slots[i] = *pack_no + 1;
	return 0;
}

static size_t slot_of(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN], bool *found)
{
	size_t mask = idx->cap - 1;
	size_t i = id_hash(id) & mask;
	while (idx->used[i]) {
		if (memcmp(idx->slots[i].loc.id, id, CRYPTO_ID_LEN) == 0) {
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
	*found = false;
	return i;
}

static int index_grow(chunk_index *idx)
{
	size_t cap = idx->cap * 2;
	index_entry *slots = malloc(cap * sizeof *slots);
	uint8_t *used = calloc(cap, 1);
	if (slots == NULL || used == NULL) {
		free(slots);
		free(used);
		return err_set(DRE_ENOMEM, "cannot grow the chunk index to %zu entries", cap);
	}
	for (size_t j = 0; j < idx->cap; j++) {
		if (!idx->used[j])
			continue;
		size_t i = id_hash(idx->slots[j].loc.id) & (cap - 1);
		while (used[i])
			i = (i + 1) & (cap - 1);
		slots[i] = idx->slots[j];
		used[i] = 1;
	}
	free(idx->slots);
	free(idx->used);
	idx->slots = slots;
	idx->used = used;
	idx->cap = cap;
	return 0;
}

const index_entry *index_find(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	bool found;
	size_t i = slot_of(idx, id, &found);
	return found ? &idx->slots[i] : NULL;
}

int index_insert(chunk_index *idx, const index_entry *e)
{
	bool found;
	if ((idx->count + 1) * 10 > idx->cap * 7)
		TRY(index_grow(idx));
	size_t i = slot_of(idx, e->loc.id, &found);
	if (found) {
		/* a location found by loading beats a pending reservation */
		if (idx->slots[i].pack == INDEX_PACK_PENDING && e->pack != INDEX_PACK_PENDING)
			idx->slots[i] = *e;
		return 0;
	}
	idx->slots[i] = *e;
	idx->used[i] = 1;
	idx->count++;
	return 1;
}

int index_reserve(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	index_entry e;
	memset(&e, 0, sizeof e);
	memcpy(e.loc.id, id, CRYPTO_ID_LEN);
	e.pack = INDEX_PACK_PENDING;
	return index_insert(idx, &e);
}

int index_commit(chunk_index *idx, uint32_t pack_no, const pack_entry *pe)
{
	bool found;
	size_t i = slot_of(idx, pe->id, &found);
	if (!found)
		return err_set(DRE_EINVAL, "internal: committing a chunk that was never reserved");
	idx->slots[i].loc = *pe;
	idx->slots[i].pack = pack_no;
	return 0;
}

int index_each(const chunk_index *idx, int (*fn)(void *arg, const index_entry *e), void *arg)
{
	for (size_t i = 0; i < idx->cap; i++)
		if (idx->used[i])
			TRY(fn(arg, &idx->slots[i]));
	return 0;
}

int index_builder_add_pack(index_builder *b, const uint8_t pack_id[CRYPTO_ID_LEN], const pack_entry *e, size_t n)
{
	buf_put(&b->data, pack_id, CRYPTO_ID_LEN);
	buf_u32(&b->data, (uint32_t)n);
	pack_entries_put(&b->data, e, n);
	b->npacks++;
	b->nentries += n;
	return buf_check(&b->data, "the index being built");
}

int index_builder_flush(index_builder *b, repo *r)
{
	uint8_t id[CRYPTO_ID_LEN];
	char key[80];
	buf obj = {0};

	if (b->npacks == 0)
		return 0;
	buf_u32(&obj, b->npacks);
	buf_put(&obj, b->data.data, b->data.len);
	int rc = buf_check(&obj, "an index object");
	if (rc == 0)
		rc = crypto_random(id, sizeof id);
	repo_object_key("index/", id, key);
	if (rc == 0)
		rc = repo_put_object(r, 'I', key, obj.data, obj.len, STORE_PUT_CREATE_ONCE);
	buf_free(&obj);
	if (rc == 0) {
		b->data.len = 0;
		b->npacks = 0;
		b->nentries = 0;
	}
	return rc;
}

void index_builder_free(index_builder *b)
{
	buf_free(&b->data);
}

static int index_decode(chunk_index *idx, const char *key, const uint8_t *p, size_t len)
{
	rd in = rd_make(p, len);
	uint32_t npacks = rd_u32(&in);
	for (uint32_t k = 0; k < npacks && !in.failed; k++) {
		const uint8_t *pack_id = rd_take(&in, CRYPTO_ID_LEN);
		uint32_t n = rd_u32(&in);
		uint32_t pack_no;
		if (in.failed || (uint64_t)n * PACK_ENTRY_LEN > in.len - in.off)
			break;
		TRY(index_pack_intern(idx, pack_id, &pack_no));
		for (uint32_t i = 0; i < n; i++) {
			index_entry e = {.pack = pack_no};
			pack_entry_get(&in, &e.loc);
			TRY(index_insert(idx, &e));
		}
	}
	if (in.failed || in.off != in.len)
		return err_set(DRE_ECORRUPT, "corrupt index %s: malformed contents", key);
	return 0;
}

struct load_ctx {
	repo *r;
	chunk_index *idx;
	index_warn_fn warn;
	void *warn_arg;
	size_t objects;
};

static int load_one(void *arg, const char *key, uint64_t size)
{
	struct load_ctx *lc = arg;
	uint8_t *plain = NULL;
	size_t len = 0;
	(void)size;
	lc->objects++;
	int rc = repo_get_object(lc->r, 'I', key, &plain, &len);
	if (rc == 0)
		rc = index_decode(lc->idx, key, plain, len);
	free(plain);
	if (rc == DRE_ECORRUPT || rc == DRE_ENOTFOUND) {
		if (lc->warn)
			lc->warn(lc->warn_arg, err_msg());
		return 0;
	}
	return rc;
}

int index_load(repo *r, chunk_index *idx, index_warn_fn warn, void *warn_arg, size_t *objects)
{
	struct load_ctx lc = {r, idx, warn, warn_arg, 0};
	TRY_CTX(store_list(r->st, "index/", load_one, &lc), "loading the index");
	if (objects)
		*objects = lc.objects;
	return 0;
}
