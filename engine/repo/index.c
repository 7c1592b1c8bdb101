#include "engine/repo/index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/repo/localfile.h"
#include "engine/repo/plan.h"
#include "engine/testhook.h"
#include "store/err.h"

/* raw length and flags share a word: chunks are at most CDC_MAX_LIMIT (2^26) bytes */
#define RAW_BITS 28
#define RAW_MASK ((1u << RAW_BITS) - 1)
#define FLAGS_MAX 0x0Fu
#define DELTA_MIN_MERGE 32768 /* the delta is merged into the sorted array at this size, or at 1/16 of it */
#define DELTA_MIN_CAP 1024

typedef struct slot {
	uint8_t key[INDEX_KEY_LEN];
	uint32_t pack, offset, stored_len;
	uint32_t raw_flags; /* raw length | flags << RAW_BITS */
} slot;

_Static_assert(sizeof(slot) == 32, "an index slot is 32 bytes");
_Static_assert(CDC_MAX_LIMIT <= RAW_MASK, "raw lengths fit below the flags");

struct chunk_index {
	/* sorted by key; dir[b] .. dir[b + 1] are the entries whose key starts with the dir_bits bits b */
	slot *base;
	size_t nbase, base_cap;
	uint32_t *dir;
	unsigned dir_bits;
	/* entries added since the last merge: open addressing, linear probing */
	slot *delta;
	uint8_t *dused;
	size_t dcap, dcount;

	uint8_t (*packs)[CRYPTO_ID_LEN];
	size_t npacks, packs_cap;
	uint32_t *pack_slots; /* pack ID → number + 1, 0 = empty */
	size_t pack_slots_cap;

	/* index objects whose entries are all in here, sorted once loaded (the cache records them) */
	uint8_t (*objects)[CRYPTO_ID_LEN];
	size_t nobjects, objects_cap;

	/* packs a prune plans to delete (sorted IDs): their entries are not found (format-spec.md §16.3 W1) */
	uint8_t (*excluded)[CRYPTO_ID_LEN];
	size_t nexcluded;
	bool excluded_found; /* index_avoid_packs: their entries are still found, only placed last */
	/* with tracking on, the packs a push relied on, by number (§16.3 W2) */
	bool track;
	uint8_t *used;
	size_t used_cap;

	bool sealed; /* index_seal: base positions stay put, new entries stay in the delta */

	/* with mapping on (prune): each index object read, in load order, and the packs each names */
	bool map;
	uint8_t (*map_objs)[CRYPTO_ID_LEN];
	size_t nmap_objs, map_objs_cap;
	index_object_pack *map_pairs;
	size_t nmap_pairs, map_pairs_cap;
};

static inline uint64_t key_prefix(const uint8_t *key) /* big-endian: the order of memcmp */
{
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h = h << 8 | key[i];
	return h;
}

/* For the hash tables. Chunk IDs are uniform already; the mixing keeps IDs that are not (tests, pack IDs of
 * a damaged store) from piling up in one run of slots. */
static inline uint64_t key_hash(const uint8_t *key)
{
	uint64_t a, b;
	memcpy(&a, key, sizeof a);
	memcpy(&b, key + 8, sizeof b);
	uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
	return h ^ h >> 31;
}

static int slot_cmp(const void *a, const void *b)
{
	return memcmp(a, b, INDEX_KEY_LEN);
}

/*
 * Sorts slots in place. glibc's qsort merge-sorts through a temporary copy of the whole array, which doubled the
 * peak memory of loading a large index; so the slots are first distributed in place by their first key byte
 * (an American flag sort: chunk IDs are uniform, so the 256 buckets are even), then each bucket is sorted on its
 * own, with a temporary copy of 1/256 of the array at most.
 */
static void slot_sort(slot *s, size_t n)
{
	if (n < 65536) {
		qsort(s, n, sizeof *s, slot_cmp);
		return;
	}
	size_t start[257] = {0}, next[256];
	for (size_t i = 0; i < n; i++)
		start[s[i].key[0] + 1]++;
	for (int b = 0; b < 256; b++) {
		start[b + 1] += start[b];
		next[b] = start[b];
	}
	for (int b = 0; b < 256; b++) {
		while (next[b] < start[b + 1]) {
			uint8_t d = s[next[b]].key[0];
			if (d == b) {
				next[b]++;
				continue;
			}
			slot t = s[next[d]];
			s[next[d]++] = s[next[b]];
			s[next[b]] = t;
		}
	}
	for (int b = 0; b < 256; b++)
		qsort(s + start[b], start[b + 1] - start[b], sizeof *s, slot_cmp);
}

static void slot_from_entry(slot *s, const index_entry *e)
{
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): s is a slot of a table that delta_grow sized */
	memcpy(s->key, e->loc.id, INDEX_KEY_LEN);
	s->pack = e->pack;
	s->offset = e->loc.offset;
	s->stored_len = e->loc.stored_len;
	s->raw_flags = e->loc.raw_len | (uint32_t)e->loc.flags << RAW_BITS;
}

static void slot_to_entry(const slot *s, const uint8_t *id, index_entry *e)
{
	if (id != NULL)
		memcpy(e->loc.id, id, CRYPTO_ID_LEN);
	else {
		memcpy(e->loc.id, s->key, INDEX_KEY_LEN);
		memset(e->loc.id + INDEX_KEY_LEN, 0, CRYPTO_ID_LEN - INDEX_KEY_LEN);
	}
	e->pack = s->pack;
	e->loc.offset = s->offset;
	e->loc.stored_len = s->stored_len;
	e->loc.raw_len = s->raw_flags & RAW_MASK;
	e->loc.flags = (uint8_t)(s->raw_flags >> RAW_BITS);
}

/* An empty delta table of cap slots. */
static int delta_new(size_t cap, slot **d, uint8_t **u)
{
	*d = malloc(cap * sizeof **d);
	*u = calloc(cap, 1);
	if (*d == NULL || *u == NULL) {
		free(*d);
		free(*u);
		return err_set(DRE_ENOMEM, "cannot allocate the chunk index (%zu entries)", cap);
	}
	return 0;
}

static int delta_alloc(chunk_index *idx, size_t cap)
{
	slot *d;
	uint8_t *u;
	TRY(delta_new(cap, &d, &u));
	free(idx->delta);
	free(idx->dused);
	idx->delta = d;
	idx->dused = u;
	idx->dcap = cap;
	idx->dcount = 0;
	return 0;
}

int index_new(chunk_index **out)
{
	chunk_index *idx = calloc(1, sizeof *idx);
	if (idx == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the chunk index");
	idx->pack_slots_cap = 256;
	idx->pack_slots = calloc(idx->pack_slots_cap, sizeof *idx->pack_slots);
	idx->dir = calloc(2, sizeof *idx->dir);
	int rc = idx->pack_slots && idx->dir ? delta_alloc(idx, DELTA_MIN_CAP)
					     : err_set(DRE_ENOMEM, "cannot allocate the chunk index");
	if (rc < 0) {
		index_free(idx);
		return rc;
	}
	*out = idx;
	return 0;
}

void index_free(chunk_index *idx)
{
	if (idx == NULL)
		return;
	free(idx->base);
	free(idx->dir);
	free(idx->delta);
	free(idx->dused);
	free(idx->packs);
	free(idx->pack_slots);
	free(idx->objects);
	free(idx->excluded);
	free(idx->used);
	free(idx->map_objs);
	free(idx->map_pairs);
	free(idx);
}

size_t index_count(const chunk_index *idx)
{
	return idx->nbase + idx->dcount;
}

size_t index_pack_count(const chunk_index *idx)
{
	return idx->npacks;
}

size_t index_memory(const chunk_index *idx)
{
	return idx->base_cap * sizeof(slot) + (((size_t)1 << idx->dir_bits) + 1) * sizeof(uint32_t) +
	       idx->dcap * (sizeof(slot) + 1) + idx->packs_cap * CRYPTO_ID_LEN +
	       idx->pack_slots_cap * sizeof(uint32_t) + idx->objects_cap * CRYPTO_ID_LEN;
}

const uint8_t *index_pack_id(const chunk_index *idx, uint32_t pack_no)
{
	return pack_no < idx->npacks ? idx->packs[pack_no] : NULL;
}

/* Rebuilds the pack ID lookup with cap slots (a power of two above twice the packs). */
static int pack_slots_rebuild(chunk_index *idx, size_t cap)
{
	uint32_t *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return err_set(DRE_ENOMEM, "cannot grow the pack table");
	for (size_t n = 0; n < idx->npacks; n++) {
		size_t i = key_hash(idx->packs[n]) & (cap - 1);
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
	size_t i = key_hash(pack_id) & mask;
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
		return pack_slots_rebuild(idx, idx->pack_slots_cap * 2);
	idx->pack_slots[i] = *pack_no + 1;
	return 0;
}

/* About two entries per bucket: a lookup reads one directory word and one or two cache lines of slots. */
static int dir_build(chunk_index *idx)
{
	unsigned bits = 0;
	while (bits < 31 && ((size_t)2 << bits) <= idx->nbase / 2)
		bits++;
	size_t nb = (size_t)1 << bits;
	uint32_t *dir = realloc(idx->dir, (nb + 1) * sizeof *dir);
	if (dir == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the chunk index directory");
	idx->dir = dir;
	idx->dir_bits = bits;
	size_t e = 0;
	for (size_t b = 0; b < nb; b++) {
		dir[b] = (uint32_t)e;
		while (e < idx->nbase && (bits == 0 ? 0 : key_prefix(idx->base[e].key) >> (64 - bits)) == b)
			e++;
	}
	dir[nb] = (uint32_t)idx->nbase;
	return 0;
}

static slot *base_find(const chunk_index *idx, const uint8_t *key)
{
	size_t b = idx->dir_bits == 0 ? 0 : key_prefix(key) >> (64 - idx->dir_bits);
	for (size_t i = idx->dir[b]; i < idx->dir[b + 1]; i++) {
		int c = memcmp(idx->base[i].key, key, INDEX_KEY_LEN);
		if (c == 0)
			return &idx->base[i];
		if (c > 0)
			break;
	}
	return NULL;
}

static size_t delta_slot(const chunk_index *idx, const uint8_t *key, bool *found)
{
	size_t mask = idx->dcap - 1;
	size_t i = key_hash(key) & mask;
	while (idx->dused[i]) {
		if (memcmp(idx->delta[i].key, key, INDEX_KEY_LEN) == 0) {
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
	*found = false;
	return i;
}

static slot *find_slot(const chunk_index *idx, const uint8_t *key)
{
	bool found;
	size_t i = delta_slot(idx, key, &found);
	return found ? &idx->delta[i] : base_find(idx, key);
}

/*
 * Merges n sorted slots, none of them already in base, into base: it grows in place (realloc, which moves
 * large blocks by remapping pages rather than copying) and the merge runs from the back, so no second copy of
 * the array is ever held.
 */
static int base_merge(chunk_index *idx, const slot *add, size_t n)
{
	if (n == 0)
		return 0;
	if (idx->nbase + n > UINT32_MAX)
		return err_set(DRE_EINVAL, "too many chunks in one repository index");
	if (idx->nbase + n > idx->base_cap) {
		size_t cap = idx->nbase + n;
		slot *b = realloc(idx->base, cap * sizeof *b);
		if (b == NULL)
			return err_set(DRE_ENOMEM, "cannot grow the chunk index to %zu entries", cap);
		idx->base = b;
		idx->base_cap = cap;
	}
	size_t i = idx->nbase, j = n, d = idx->nbase + n;
	while (j > 0) {
		if (i > 0 && memcmp(idx->base[i - 1].key, add[j - 1].key, INDEX_KEY_LEN) > 0)
			idx->base[--d] = idx->base[--i];
		else
			idx->base[--d] = add[--j];
	}
	idx->nbase += n;
	return dir_build(idx);
}

/* Moves the delta's entries into the sorted array and empties it. */
static int delta_merge(chunk_index *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < idx->dcap; i++)
		if (idx->dused[i])
			idx->delta[n++] = idx->delta[i];
	if (n > 0)
		slot_sort(idx->delta, n);
	TRY(base_merge(idx, idx->delta, n));
	return delta_alloc(idx, DELTA_MIN_CAP);
}

static int delta_grow(chunk_index *idx)
{
	size_t cap = idx->dcap * 2;
	slot *d;
	uint8_t *u;
	TRY(delta_new(cap, &d, &u));
	for (size_t j = 0; j < idx->dcap; j++) {
		if (!idx->dused[j])
			continue;
		size_t i = key_hash(idx->delta[j].key) & (cap - 1);
		while (u[i])
			i = (i + 1) & (cap - 1);
		d[i] = idx->delta[j];
		u[i] = 1;
	}
	free(idx->delta);
	free(idx->dused);
	idx->delta = d;
	idx->dused = u;
	idx->dcap = cap;
	return 0;
}

static int id_cmp(const void *a, const void *b);

static bool pack_excluded(const chunk_index *idx, uint32_t pack_no)
{
	return idx->nexcluded > 0 && pack_no < idx->npacks &&
	       bsearch(idx->packs[pack_no], idx->excluded, idx->nexcluded, CRYPTO_ID_LEN, id_cmp) != NULL;
}

/* The slot of id, unless its location is in an excluded pack. */
static slot *find_usable(const chunk_index *idx, const uint8_t *id)
{
	slot *s = find_slot(idx, id);
	return s != NULL && (idx->excluded_found || !pack_excluded(idx, s->pack)) ? s : NULL;
}

static int note_used(chunk_index *idx, uint32_t pack_no)
{
	if (!idx->track || pack_no == INDEX_PACK_PENDING)
		return 0;
	if (pack_no >= idx->used_cap) {
		size_t cap = idx->used_cap ? idx->used_cap : 256;
		while (cap <= pack_no)
			cap *= 2;
		uint8_t *u = realloc(idx->used, cap);
		if (u == NULL)
			return err_set(DRE_ENOMEM, "cannot grow the set of packs in use");
		memset(u + idx->used_cap, 0, cap - idx->used_cap);
		idx->used = u;
		idx->used_cap = cap;
	}
	idx->used[pack_no] = 1;
	return 0;
}

bool index_find(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN], index_entry *out)
{
	const slot *s = find_usable(idx, id);
	if (s != NULL)
		slot_to_entry(s, id, out);
	return s != NULL;
}

bool index_pack_lookup(const chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN], uint32_t *pack_no)
{
	size_t mask = idx->pack_slots_cap - 1;
	for (size_t i = key_hash(pack_id) & mask; idx->pack_slots[i] != 0; i = (i + 1) & mask) {
		uint32_t n = idx->pack_slots[i] - 1;
		if (memcmp(idx->packs[n], pack_id, CRYPTO_ID_LEN) == 0) {
			*pack_no = n;
			return true;
		}
	}
	return false;
}

int index_seal(chunk_index *idx)
{
	TRY(idx->dcount > 0 ? delta_merge(idx) : 0);
	idx->sealed = true;
	return 0;
}

bool index_locate(const chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN], size_t *pos, index_entry *e)
{
	const slot *s = base_find(idx, id);
	if (s == NULL)
		return false;
	*pos = (size_t)(s - idx->base);
	slot_to_entry(s, id, e);
	return true;
}

void index_entry_at(const chunk_index *idx, size_t pos, index_entry *e)
{
	slot_to_entry(&idx->base[pos], NULL, e);
}

void index_map_objects(chunk_index *idx)
{
	idx->map = true;
}

size_t index_mapped_objects(const chunk_index *idx, const uint8_t (**ids)[CRYPTO_ID_LEN],
			    const index_object_pack **pairs, size_t *npairs)
{
	*ids = (const uint8_t(*)[CRYPTO_ID_LEN])idx->map_objs;
	*pairs = idx->map_pairs;
	*npairs = idx->nmap_pairs;
	return idx->nmap_objs;
}

int index_exclude_packs(chunk_index *idx, const uint8_t (*ids)[CRYPTO_ID_LEN], size_t n)
{
	if (n == 0)
		return 0;
	uint8_t(*e)[CRYPTO_ID_LEN] = realloc(idx->excluded, (idx->nexcluded + n) * CRYPTO_ID_LEN);
	if (e == NULL)
		return err_set(DRE_ENOMEM, "cannot hold the packs a prune plans to delete");
	memcpy(e[idx->nexcluded], ids, n * CRYPTO_ID_LEN);
	idx->excluded = e;
	idx->nexcluded += n;
	qsort(idx->excluded, idx->nexcluded, CRYPTO_ID_LEN, id_cmp);
	return 0;
}

int index_avoid_packs(chunk_index *idx, const uint8_t (*ids)[CRYPTO_ID_LEN], size_t n)
{
	idx->excluded_found = true;
	return index_exclude_packs(idx, ids, n);
}

void index_track_use(chunk_index *idx)
{
	idx->track = true;
}

bool index_pack_used(const chunk_index *idx, const uint8_t pack_id[CRYPTO_ID_LEN])
{
	uint32_t n;
	return index_pack_lookup(idx, pack_id, &n) && n < idx->used_cap && idx->used[n];
}

int index_insert(chunk_index *idx, const index_entry *e)
{
	if (e->loc.flags > FLAGS_MAX || e->loc.raw_len > RAW_MASK)
		return err_set(DRE_ECORRUPT, "index entry with unknown flags 0x%02x or raw length %u", e->loc.flags,
			       e->loc.raw_len);
	slot *s = find_slot(idx, e->loc.id);
	if (s != NULL) {
		/* a location found by loading beats a pending reservation, and one in a pack no prune plans to delete
		 * beats one in a pack that a prune does (a repacked chunk) */
		if ((s->pack == INDEX_PACK_PENDING && e->pack != INDEX_PACK_PENDING) ||
		    (pack_excluded(idx, s->pack) && !pack_excluded(idx, e->pack)))
			slot_from_entry(s, e);
		return 0;
	}
	if ((idx->dcount + 1) * 4 > idx->dcap * 3)
		TRY(delta_grow(idx));
	bool found;
	size_t i = delta_slot(idx, e->loc.id, &found);
	slot_from_entry(&idx->delta[i], e);
	idx->dused[i] = 1;
	idx->dcount++;
	if (!idx->sealed && idx->dcount >= DELTA_MIN_MERGE && idx->dcount >= idx->nbase / 16)
		TRY(delta_merge(idx));
	return 1;
}

int index_reserve(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	slot *s = find_slot(idx, id);
	if (s != NULL && !pack_excluded(idx, s->pack)) {
		TRY(note_used(idx, s->pack));
		return 0;
	}
	if (s != NULL) { /* only in a pack a prune is deleting: stored again, by this push */
		s->pack = INDEX_PACK_PENDING;
		return 1;
	}
	index_entry e;
	memset(&e, 0, sizeof e);
	memcpy(e.loc.id, id, CRYPTO_ID_LEN);
	e.pack = INDEX_PACK_PENDING;
	return index_insert(idx, &e);
}

int index_use(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	slot *s = find_slot(idx, id);
	if (s == NULL || pack_excluded(idx, s->pack))
		return 0;
	TRY(note_used(idx, s->pack));
	return 1;
}

int index_commit(chunk_index *idx, uint32_t pack_no, const pack_entry *pe)
{
	slot *s = find_slot(idx, pe->id);
	if (s == NULL)
		return err_set(DRE_EINVAL, "internal: committing a chunk that was never reserved");
	index_entry e = {.loc = *pe, .pack = pack_no};
	slot_from_entry(s, &e);
	return note_used(idx, pack_no);
}

int index_each(const chunk_index *idx, int (*fn)(void *arg, const index_entry *e), void *arg)
{
	index_entry e;
	for (size_t i = 0; i < idx->nbase; i++) {
		slot_to_entry(&idx->base[i], NULL, &e);
		TRY(fn(arg, &e));
	}
	for (size_t i = 0; i < idx->dcap; i++) {
		if (!idx->dused[i])
			continue;
		slot_to_entry(&idx->delta[i], NULL, &e);
		TRY(fn(arg, &e));
	}
	return 0;
}

static int object_note(chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	if (!array_room(&idx->objects, &idx->objects_cap, idx->nobjects, CRYPTO_ID_LEN, 64))
		return err_set(DRE_ENOMEM, "cannot grow the list of index objects");
	memcpy(idx->objects[idx->nobjects++], id, CRYPTO_ID_LEN);
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

int index_builder_flush(index_builder *b, repo *r, chunk_index *idx)
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
		test_pause("index-before-put");
	if (rc == 0)
		rc = repo_put_object(r, 'I', key, obj.data, obj.len, STORE_PUT_CREATE_ONCE);
	if (rc == 0)
		test_pause("index-after-put");
	buf_free(&obj);
	if (rc == 0)
		rc = object_note(idx, id);
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

/* Entries read from index objects, gathered unsorted and merged into the sorted array once at the end. */
struct staging {
	slot *s;
	size_t n, cap;
};

static int index_decode(chunk_index *idx, struct staging *st, const char *key, const uint8_t *p, size_t len)
{
	rd in = rd_make(p, len);
	uint32_t npacks = rd_u32(&in);
	for (uint32_t k = 0; k < npacks && !in.failed; k++) {
		const uint8_t *pack_id = rd_take(&in, CRYPTO_ID_LEN);
		uint32_t n = rd_u32(&in);
		uint32_t pack_no;
		if (in.failed || (uint64_t)n * PACK_ENTRY_LEN > in.len - in.off) /* counts that promise more than is there */
			return err_set(DRE_ECORRUPT, "corrupt index %s: malformed contents (pack %u of %u claims %u entries)",
				       key, k + 1, npacks, n);
		TRY(index_pack_intern(idx, pack_id, &pack_no));
		if (idx->map) {
			if (!array_room(&idx->map_pairs, &idx->map_pairs_cap, idx->nmap_pairs, sizeof *idx->map_pairs, 64))
				return err_set(DRE_ENOMEM, "cannot map the index objects");
			idx->map_pairs[idx->nmap_pairs++] = (index_object_pack){(uint32_t)idx->nmap_objs, pack_no, n};
		}
		while (st->cap < st->n + n)
			if (!array_room(&st->s, &st->cap, st->cap, sizeof *st->s, 4096))
				return err_set(DRE_ENOMEM, "cannot grow the chunk index");
		for (uint32_t i = 0; i < n; i++) {
			index_entry e = {.pack = pack_no};
			pack_entry_get(&in, &e.loc);
			if (e.loc.flags > FLAGS_MAX || e.loc.raw_len > RAW_MASK)
				return err_set(DRE_ECORRUPT, "corrupt index %s: an entry with flags 0x%02x and raw length %u",
					       key, e.loc.flags, e.loc.raw_len);
			slot_from_entry(&st->s[st->n++], &e);
		}
	}
	if (in.failed || in.off != in.len)
		return err_set(DRE_ECORRUPT, "corrupt index %s: malformed contents", key);
	return 0;
}

/* Sorts the staged entries, drops those already known, and merges the rest into the sorted array. */
static int staging_merge(chunk_index *idx, struct staging *st)
{
	if (st->n > 0)
		slot_sort(st->s, st->n);
	size_t n = 0;
	for (size_t i = 0; i < st->n; i++) {
		/* the same chunk in two packs (concurrent pushes, a repack): one location is enough, and one in a pack
		 * that no prune plans to delete is the one to keep */
		if (n > 0 && memcmp(st->s[n - 1].key, st->s[i].key, INDEX_KEY_LEN) == 0) {
			if (pack_excluded(idx, st->s[n - 1].pack) && !pack_excluded(idx, st->s[i].pack))
				st->s[n - 1] = st->s[i];
			continue;
		}
		slot *known = base_find(idx, st->s[i].key);
		if (known != NULL) {
			if (pack_excluded(idx, known->pack) && !pack_excluded(idx, st->s[i].pack))
				*known = st->s[i];
			continue;
		}
		st->s[n++] = st->s[i];
	}
	int rc;
	if (idx->nbase == 0 && idx->base == NULL) {
		/* the first load: the staging array becomes the sorted array, trimmed to size */
		slot *b = n > 0 ? realloc(st->s, n * sizeof *b) : NULL;
		idx->base = b ? b : st->s;
		idx->base_cap = b ? n : st->cap;
		idx->nbase = n;
		st->s = NULL;
		rc = dir_build(idx);
	} else
		rc = base_merge(idx, st->s, n);
	free(st->s);
	st->s = NULL;
	st->n = st->cap = 0;
	return rc;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CRYPTO_ID_LEN);
}

/* an index object as listed: its ID first, so that id_cmp orders and finds these too */
struct listed {
	uint8_t id[CRYPTO_ID_LEN];
	uint64_t size;
};

struct listing {
	struct listed *ids;
	size_t n, cap;
	index_warn_fn warn;
	void *warn_arg;
};

static int list_one(void *arg, const char *key, uint64_t size)
{
	struct listing *l = arg;
	const char *hex = strrchr(key, '/');
	uint8_t id[CRYPTO_ID_LEN];
	if (hex == NULL || strlen(hex + 1) != 2 * CRYPTO_ID_LEN || !hex_decode(hex + 1, id, CRYPTO_ID_LEN)) {
		char msg[400];
		snprintf(msg, sizeof msg, "ignoring %s: not named like an index object", key);
		if (l->warn)
			l->warn(l->warn_arg, msg);
		return 0;
	}
	if (!array_room(&l->ids, &l->cap, l->n, sizeof *l->ids, 64))
		return err_set(DRE_ENOMEM, "cannot list the index objects");
	memcpy(l->ids[l->n].id, id, CRYPTO_ID_LEN);
	l->ids[l->n++].size = size;
	return 0;
}

static void warn_msg(index_warn_fn warn, void *arg, const char *msg)
{
	if (warn)
		warn(arg, msg);
}

/* Resets idx to empty (a cache that turned out not to match the store). */
static void index_clear(chunk_index *idx)
{
	free(idx->base);
	idx->base = NULL;
	idx->nbase = idx->base_cap = 0;
	idx->dir_bits = 0;
	idx->dir[0] = idx->dir[1] = 0;
	idx->npacks = 0;
	memset(idx->pack_slots, 0, idx->pack_slots_cap * sizeof *idx->pack_slots);
	idx->nobjects = 0;
}

static int cache_load(repo *r, chunk_index *idx, const char *path);

int index_load(repo *r, chunk_index *idx, const char *cache_path, index_warn_fn warn, void *warn_arg,
	       size_t *objects)
{
	struct listing l = {.warn = warn, .warn_arg = warn_arg};
	struct staging st = {0};
	char key[80], msg[1200];
	bool cached = false;

	/* While a prune plans to delete packs, every reader prefers another location of what they hold (a
	 * repacked copy), and the cache is neither read nor written: it may have kept the planned location of a
	 * chunk and dropped the copy (format-spec.md §16.3). A caller that read the plans itself (a push) has
	 * excluded their packs already. */
	if (idx->nexcluded == 0) {
		plan_set plans;
		TRY(plan_load_all(r, &plans));
		int prc = 0;
		for (size_t i = 0; prc == 0 && i < plans.n; i++)
			for (size_t k = 0; prc == 0 && k < plans.items[i].n; k++)
				prc = index_avoid_packs(idx, &plans.items[i].packs[k].id, 1);
		plan_set_free(&plans);
		TRY(prc);
	}
	if (idx->nexcluded > 0)
		cache_path = NULL;

	if (cache_path != NULL && idx->nbase == 0 && idx->dcount == 0) {
		int rc = cache_load(r, idx, cache_path);
		if (rc < 0 && rc != DRE_ENOTFOUND) {
			snprintf(msg, sizeof msg, "index cache not used, rebuilding it: %s", err_msg());
			warn_msg(warn, warn_arg, msg);
			index_clear(idx);
		}
		cached = rc == 0;
	}
	int rc = store_list(r->st, "index/", list_one, &l);
	if (rc < 0) {
		free(l.ids);
		return err_ctx(rc, "loading the index");
	}
	if (l.n > 0)
		qsort(l.ids, l.n, sizeof *l.ids, id_cmp);
	/* every object the cache covers must still be in the store: one that is gone (removed, or a repository
	 * restored from an older copy) may have taken its packs with it */
	for (size_t i = 0; cached && i < idx->nobjects; i++) {
		if (l.n == 0 || bsearch(idx->objects[i], l.ids, l.n, sizeof *l.ids, id_cmp) == NULL) {
			hex_encode(idx->objects[i], CRYPTO_ID_LEN, key);
			snprintf(msg, sizeof msg, "index cache not used, rebuilding it: index/%.16s… it covers is no "
				 "longer in the store", key);
			warn_msg(warn, warn_arg, msg);
			index_clear(idx);
			cached = false;
		}
	}
	/* The staging array sized at once from the listed sizes (an entry takes 45 bytes in an object and 32 here):
	 * grown by doubling it would reach twice the entries at its peak, which is most of a large load's memory. */
	uint64_t to_read = 0;
	for (size_t i = 0; i < l.n; i++)
		if (!(cached && idx->nobjects > 0 &&
		      bsearch(l.ids[i].id, idx->objects, idx->nobjects, CRYPTO_ID_LEN, id_cmp) != NULL))
			to_read += l.ids[i].size < REPO_MAX_META_OBJECT ? l.ids[i].size : REPO_MAX_META_OBJECT;
	size_t estimate = (size_t)(to_read / PACK_ENTRY_LEN);
	if (estimate > 0 && (st.s = malloc(estimate * sizeof *st.s)) != NULL)
		st.cap = estimate; /* else it grows as it goes */
	size_t fresh = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (cached && idx->nobjects > 0 &&
		    bsearch(l.ids[i].id, idx->objects, idx->nobjects, CRYPTO_ID_LEN, id_cmp) != NULL)
			continue; /* the cache has its entries */
		uint8_t *plain = NULL;
		size_t len = 0, before = st.n;
		repo_object_key("index/", l.ids[i].id, key);
		rc = repo_get_object_sized(r, 'I', key, l.ids[i].size, &plain, &len);
		size_t pairs_before = idx->nmap_pairs;
		if (rc == 0)
			rc = index_decode(idx, &st, key, plain, len);
		free(plain);
		if (rc == 0 && idx->map) {
			if (array_room(&idx->map_objs, &idx->map_objs_cap, idx->nmap_objs, CRYPTO_ID_LEN, 64))
				memcpy(idx->map_objs[idx->nmap_objs++], l.ids[i].id, CRYPTO_ID_LEN);
			else
				rc = err_set(DRE_ENOMEM, "cannot map the index objects");
		}
		if (rc < 0)
			idx->nmap_pairs = pairs_before;
		if (rc == 0) {
			rc = object_note(idx, l.ids[i].id);
			fresh++;
		} else if ((rc == DRE_ECORRUPT || rc == DRE_ENOTFOUND) && !(idx->map && rc == DRE_ECORRUPT)) {
			st.n = before; /* a damaged object adds nothing, and is not covered */
			warn_msg(warn, warn_arg, err_msg());
			rc = 0;
		}
	}
	free(l.ids);
	if (rc == 0)
		rc = staging_merge(idx, &st);
	free(st.s);
	if (rc == 0 && idx->nobjects > 0)
		qsort(idx->objects, idx->nobjects, CRYPTO_ID_LEN, id_cmp);
	if (rc < 0)
		return err_ctx(rc, "loading the index");
	if (objects)
		*objects = l.n;
	if (cache_path != NULL && fresh > 0 && index_cache_save(r, idx, cache_path) < 0) {
		snprintf(msg, sizeof msg, "index cache not written: %s", err_msg());
		warn_msg(warn, warn_arg, msg);
	}
	return 0;
}

int index_object_read(repo *r, chunk_index *idx, const uint8_t id[CRYPTO_ID_LEN])
{
	struct staging st = {0};
	uint8_t *plain = NULL;
	size_t len = 0;
	char key[80];
	repo_object_key("index/", id, key);
	int rc = repo_get_object(r, 'I', key, &plain, &len);
	if (rc == 0)
		rc = index_decode(idx, &st, key, plain, len);
	free(plain);
	if (rc == 0 && !idx->sealed)
		rc = staging_merge(idx, &st);
	for (size_t i = 0; rc == 0 && idx->sealed && i < st.n; i++) {
		index_entry e;
		slot_to_entry(&st.s[i], NULL, &e);
		rc = index_insert(idx, &e);
		rc = rc > 0 ? 0 : rc;
	}
	free(st.s);
	return rc;
}

/*
 * The cache file (native byte order; it never leaves this machine):
 *   header | nobjects × index object ID | npacks × pack ID | nentries × slot, sorted | HMAC-SHA-256
 * The MAC key is derived from the repository's keys, so only a process that opened the repository can write a
 * cache it will accept: a wrong entry would make a push skip a chunk the repository does not have.
 */
#define CACHE_MAGIC "DREIXC1\n"
#define CACHE_BYTE_ORDER 0x01020304u

struct cache_header {
	char magic[8];
	uint32_t byte_order, slot_size;
	uint8_t repo_id[REPO_ID_LEN];
	uint64_t nobjects, npacks, nentries;
};

static int cache_key(const repo *r, uint8_t key[CRYPTO_KEY_LEN])
{
	static const char info[] = "dre v1 index cache";
	return crypto_hkdf(r->enc_key, CRYPTO_KEY_LEN, r->repo_id, REPO_ID_LEN, info, sizeof info - 1, key,
			   CRYPTO_KEY_LEN);
}

static int cache_mac(const repo *r, const struct iovec *iov, int n, uint8_t mac[CRYPTO_ID_LEN])
{
	uint8_t key[CRYPTO_KEY_LEN];
	crypto_ctx *cc;
	TRY(crypto_ctx_new(&cc));
	int rc = cache_key(r, key);
	if (rc == 0)
		rc = crypto_hmacv(cc, key, iov, n, mac);
	crypto_wipe(key, sizeof key);
	crypto_ctx_free(cc);
	return rc;
}

const char *index_cache_path(const repo *r, char *out, size_t len)
{
	char hex[2 * REPO_ID_LEN + 1];
	if (r->cache_dir == NULL || r->cache_dir[0] == '\0')
		return NULL;
	hex_encode(r->repo_id, REPO_ID_LEN, hex);
	if (snprintf(out, len, "%s/%s/index", r->cache_dir, hex) >= (int)len)
		return NULL;
	return out;
}

int index_cache_save(repo *r, chunk_index *idx, const char *cache_path)
{
	TRY(delta_merge(idx));
	for (size_t i = 0; i < idx->nbase; i++)
		if (idx->base[i].pack == INDEX_PACK_PENDING)
			return err_set(DRE_EINVAL, "internal: the index holds chunks whose packs are not written");
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", cache_path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		TRY(localfile_mkdirs(dir, 0700));
	}
	struct cache_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, CACHE_MAGIC, sizeof h.magic);
	h.byte_order = CACHE_BYTE_ORDER;
	h.slot_size = sizeof(slot);
	memcpy(h.repo_id, r->repo_id, REPO_ID_LEN);
	h.nobjects = idx->nobjects;
	h.npacks = idx->npacks;
	h.nentries = idx->nbase;
	uint8_t mac[CRYPTO_ID_LEN];
	struct iovec iov[5] = {{&h, sizeof h},
			       {idx->objects, idx->nobjects * CRYPTO_ID_LEN},
			       {idx->packs, idx->npacks * CRYPTO_ID_LEN},
			       {idx->base, idx->nbase * sizeof(slot)},
			       {mac, sizeof mac}};
	if (idx->nobjects > 0)
		qsort(idx->objects, idx->nobjects, CRYPTO_ID_LEN, id_cmp);
	TRY(cache_mac(r, iov, 4, mac));
	return localfile_write(cache_path, iov, 5, 0600, true);
}

/* Reads the cache into an empty idx: DRE_ENOTFOUND when there is none, DRE_ECORRUPT when it is not valid. */
static int cache_load(repo *r, chunk_index *idx, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DRE_ENOTFOUND : err_sys("cannot open %s", path);
	struct cache_header h = {0}; /* read only when fstat worked, but the iovecs below are built anyway */
	struct stat sb;
	uint8_t mac[CRYPTO_ID_LEN], want[CRYPTO_ID_LEN];
	slot *base = NULL;
	int rc = fstat(fd, &sb) < 0 ? err_sys("cannot read %s", path) : 0;
	if (rc == 0)
		rc = localfile_read_exact(fd, &h, sizeof h, path);
	uint64_t size = (uint64_t)sb.st_size, rest = size - sizeof h - CRYPTO_ID_LEN;
	if (rc == 0 && (memcmp(h.magic, CACHE_MAGIC, sizeof h.magic) != 0 || h.byte_order != CACHE_BYTE_ORDER ||
			h.slot_size != sizeof(slot)))
		rc = err_set(DRE_ECORRUPT, "%s is not an index cache of this dre", path);
	if (rc == 0 && memcmp(h.repo_id, r->repo_id, REPO_ID_LEN) != 0)
		rc = err_set(DRE_ECORRUPT, "%s is the index cache of another repository", path);
	if (rc == 0 && (size < sizeof h + CRYPTO_ID_LEN || h.nobjects > rest / CRYPTO_ID_LEN ||
			h.npacks > rest / CRYPTO_ID_LEN || h.nentries > rest / sizeof(slot) ||
			(h.nobjects + h.npacks) * CRYPTO_ID_LEN + h.nentries * sizeof(slot) != rest ||
			h.npacks >= INDEX_PACK_PENDING || h.nentries > UINT32_MAX))
		rc = err_set(DRE_ECORRUPT, "%s is damaged: its counts do not match its size", path);
	if (rc == 0) {
		idx->objects = malloc(h.nobjects ? h.nobjects * CRYPTO_ID_LEN : 1);
		idx->objects_cap = h.nobjects;
		idx->packs = malloc(h.npacks ? h.npacks * CRYPTO_ID_LEN : 1);
		base = malloc(h.nentries ? h.nentries * sizeof *base : 1);
		if (idx->objects == NULL || idx->packs == NULL || base == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate the chunk index (%" PRIu64 " entries)", h.nentries);
		else
			idx->packs_cap = h.npacks;
	}
	struct iovec iov[4] = {{&h, sizeof h},
			       {idx->objects, h.nobjects * CRYPTO_ID_LEN},
			       {idx->packs, h.npacks * CRYPTO_ID_LEN},
			       {base, h.nentries * sizeof(slot)}};
	for (int i = 1; rc == 0 && i < 4; i++)
		rc = localfile_read_exact(fd, iov[i].iov_base, iov[i].iov_len, path);
	if (rc == 0)
		rc = localfile_read_exact(fd, mac, sizeof mac, path);
	close(fd);
	if (rc == 0)
		rc = cache_mac(r, iov, 4, want);
	if (rc == 0 && memcmp(mac, want, sizeof mac) != 0)
		rc = err_set(DRE_ECORRUPT, "%s is damaged or not written by this repository's keys (MAC mismatch)",
			     path);
	for (uint64_t i = 0; rc == 0 && i < h.nentries; i++)
		if ((i > 0 && memcmp(base[i - 1].key, base[i].key, INDEX_KEY_LEN) >= 0) || base[i].pack >= h.npacks ||
		    base[i].raw_flags >> RAW_BITS > FLAGS_MAX ||
		    (base[i].raw_flags & RAW_MASK) > pack_blob_max(r, (uint8_t)(base[i].raw_flags >> RAW_BITS)))
			rc = err_set(DRE_ECORRUPT, "%s is damaged: entry %" PRIu64 " is out of order or out of range",
				     path, i);
	if (rc == 0) {
		idx->nobjects = h.nobjects;
		idx->base = base;
		idx->nbase = idx->base_cap = h.nentries;
		base = NULL;
		/* the pack table was read whole; its lookup table is rebuilt */
		size_t cap = idx->pack_slots_cap;
		idx->npacks = h.npacks;
		while (cap < idx->npacks * 2)
			cap *= 2;
		rc = pack_slots_rebuild(idx, cap);
		if (rc == 0)
			rc = dir_build(idx);
	}
	free(base);
	return rc;
}
