/*
 * seed.c — writes the fuzz targets' seed inputs from a real repository (tests/fuzz/seed makes one with dre):
 * every object decrypted with dre's own code and saved in the form its target reads (fuzz.h), the selector byte
 * in front. Bigger objects than a seed should be are left out.
 *
 *   dre-fuzzseed REPOSITORY INDEX_CACHE_FILE OUTDIR      (password in DRE_PASSWORD)
 *
 * It writes a lock and a prune plan into the repository to have real ones (and removes them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/repo/bytes.h"
#include "engine/repo/index.h"
#include "engine/repo/list.h"
#include "engine/repo/lock.h"
#include "engine/repo/pack.h"
#include "engine/repo/plan.h"
#include "engine/repo/snapshot.h"
#include "store/err.h"

#define SEED_MAX (64u << 10)

static const char *outdir;
static repo *r;
static chunk_index *idx;

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "dre-fuzzseed: %s: %s\n", what, err_msg());
		exit(1);
	}
}

/* Writes OUTDIR/target/name: the selector bytes, then the data. */
static void emit(const char *target, const char *name, const void *sel, size_t sel_len, const void *p, size_t len)
{
	char path[4096];
	if (len > SEED_MAX)
		return;
	snprintf(path, sizeof path, "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || (sel_len > 0 && fwrite(sel, 1, sel_len, f) != sel_len) || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void emit1(const char *target, const char *name, uint8_t sel, const void *p, size_t len)
{
	emit(target, name, &sel, 1, p, len);
}

/* ---- listings ---- */

typedef struct listed {
	char k[200];
	uint64_t size;
} listed;

typedef struct keys {
	listed *o;
	size_t n, cap;
} keys;

static int add_key(void *arg, const char *key, uint64_t size)
{
	keys *ks = arg;
	if (!array_room(&ks->o, &ks->cap, ks->n, sizeof *ks->o, 64))
		return err_set(DRE_ENOMEM, "listing");
	snprintf(ks->o[ks->n].k, sizeof ks->o[ks->n].k, "%s", key);
	ks->o[ks->n++].size = size;
	return 0;
}

static keys list(const char *prefix)
{
	keys ks = {0};
	check(store_list(r->st, prefix, add_key, &ks), prefix);
	return ks;
}

static void keys_free(keys *ks)
{
	free(ks->o);
}

/* the raw object as an envelope seed (fuzz_envelope's selector: C I S W L P) */
static void envelope_seed(char type, const char *key, const char *name)
{
	static const char types[] = "CISWLP";
	uint8_t *p;
	size_t len;
	check(store_load(r->st, key, 1u << 30, &p, &len), key);
	emit1("envelope", name, (uint8_t)(strchr(types, type) - types), p, len);
	free(p);
}

/* ---- per kind ---- */

static void seed_config_keys(void)
{
	uint8_t *p;
	size_t len;
	check(repo_get_object(r, 'C', "config", &p, &len), "config");
	emit("config", "config", NULL, 0, p, len);
	free(p);
	envelope_seed('C', "config", "config");
	keys ks = list("keys/");
	for (size_t i = 0; i < ks.n && i < 4; i++) {
		char name[32];
		check(store_load(r->st, ks.o[i].k, 4096, &p, &len), ks.o[i].k);
		snprintf(name, sizeof name, "key-%zu", i);
		emit1("key", name, 1, p, len);
		free(p);
	}
	keys_free(&ks);
}

static void seed_index(void)
{
	keys ks = list("index/");
	for (size_t i = 0; i < ks.n && i < 8; i++) {
		uint8_t *p;
		size_t len;
		char name[32];
		check(repo_get_object(r, 'I', ks.o[i].k, &p, &len), ks.o[i].k);
		snprintf(name, sizeof name, "index-%zu", i);
		emit("index", name, NULL, 0, p, len);
		free(p);
		if (i == 0)
			envelope_seed('I', ks.o[i].k, "index");
	}
	keys_free(&ks);
}

struct blobs {
	uint8_t ids[16][CRYPTO_ID_LEN];
	size_t n;
};

static int visit(void *arg, const uint8_t id[CRYPTO_ID_LEN], uint8_t level, uint64_t count)
{
	struct blobs *b = arg;
	(void)level;
	(void)count;
	if (b->n < 16)
		memcpy(b->ids[b->n++], id, CRYPTO_ID_LEN);
	return 0;
}

/* Every list blob of s (up to 16) as fuzz_list reads them: u8 k, then ID, u16 length, plaintext; then the header. */
static void seed_lists(const snapshot *s, const uint8_t *hdr, size_t hlen, size_t no)
{
	struct blobs b = {.n = 0};
	const list_ref *refs[2] = {&s->nodes, &s->chunks};
	for (int k = 0; k < 2; k++) {
		list_reader lr;
		const uint8_t *e;
		size_t elen;
		check(list_reader_open(&lr, r, idx, k == 0 ? LIST_NODES : LIST_CHUNKS, refs[k], "seed list"), "list");
		lr.visit = visit;
		lr.visit_arg = &b;
		int rc, nodes = 0;
		while ((rc = list_reader_next(&lr, &e, &elen)) == 1)
			if (k == 0 && nodes++ < 3) {
				char name[48];
				snprintf(name, sizeof name, "node-%zu-%d", no, nodes);
				emit1("snapshot", name, 1, e, elen);
			}
		check(rc, "reading a list");
		list_reader_free(&lr);
	}
	buf out = {0};
	list_io *io;
	check(list_io_new(&io), "list io");
	uint8_t *plain = malloc(LIST_BLOB_MAX);
	buf_u8(&out, (uint8_t)b.n);
	for (size_t i = 0; i < b.n; i++) {
		size_t len;
		check(list_blob_read(r, idx, io, b.ids[i], plain, &len), "list blob");
		buf_put(&out, b.ids[i], CRYPTO_ID_LEN);
		buf_u16(&out, (uint16_t)len);
		buf_put(&out, plain, len);
	}
	buf_put(&out, hdr, hlen);
	check(buf_check(&out, "list seed"), "list seed");
	char name[32];
	snprintf(name, sizeof name, "snapshot-%zu", no);
	emit("list", name, NULL, 0, out.data, out.len);
	buf_free(&out);
	free(plain);
	list_io_free(io);
}

static void seed_snapshots(void)
{
	keys ks = list("snapshots/");
	for (size_t i = 0; i < ks.n && i < 8; i++) {
		uint8_t *p;
		size_t len;
		char name[32];
		check(repo_get_object(r, 'S', ks.o[i].k, &p, &len), ks.o[i].k);
		snprintf(name, sizeof name, "snapshot-%zu", i);
		emit1("snapshot", name, 0, p, len);
		snapshot s;
		check(snap_decode(ks.o[i].k, p, len, &s), ks.o[i].k);
		if (s.format != SNAP_FORMAT_TABLE)
			seed_lists(&s, p, len, i);
		snap_free(&s);
		free(p);
		if (i == 0)
			envelope_seed('S', ks.o[i].k, "snapshot");
	}
	keys_free(&ks);
}

static void seed_packs(void)
{
	keys ks = list("packs/");
	crypto_ctx *cc;
	check(crypto_ctx_new(&cc), "crypto");
	size_t done = 0;
	for (size_t i = 0; i < ks.n && done < 6; i++) {
		if (ks.o[i].size > (1u << 20))
			continue;
		uint8_t *p, id[CRYPTO_ID_LEN], subkey[CRYPTO_KEY_LEN], nonce[CRYPTO_NONCE_LEN];
		size_t len;
		char name[32];
		const char *hex = strrchr(ks.o[i].k, '/') + 1;
		check(hex_decode(hex, id, CRYPTO_ID_LEN) ? 0 : err_set(DRE_EINVAL, "pack name"), ks.o[i].k);
		check(store_load(r->st, ks.o[i].k, 1u << 20, &p, &len), ks.o[i].k);
		check(repo_pack_subkey(r, id, subkey), "subkey");
		snprintf(name, sizeof name, "raw-%zu", done);
		emit1("pack", name, 0, p, len); /* only small ones fit */
		uint32_t hlen = get_le32(p + len - 8);
		size_t hoff = len - 8 - hlen, plen = hlen - CRYPTO_TAG_LEN;
		uint8_t *h = malloc(plen);
		memcpy(h, p + hoff, plen);
		memset(nonce, 0xff, sizeof nonce);
		check(crypto_open(cc, subkey, nonce, p + len - 8, 8, h, plen, p + hoff + plen), "pack header");
		uint8_t sel[5] = {1};
		put_le32(sel + 1, (uint32_t)hoff);
		snprintf(name, sizeof name, "header-%zu", done);
		emit("pack", name, sel, sizeof sel, h, plen);
		rd in = rd_make(h, plen);
		uint32_t n = rd_u32(&in);
		for (uint32_t k = 0; k < n && k < 3; k++) {
			pack_entry e;
			pack_entry_get(&in, &e);
			uint8_t aad[37], *blob = malloc((size_t)e.stored_len + CRYPTO_TAG_LEN);
			memcpy(aad, e.id, CRYPTO_ID_LEN);
			aad[32] = e.flags;
			put_le32(aad + 33, e.raw_len);
			pack_blob_nonce(e.offset, nonce);
			memcpy(blob, p + e.offset, (size_t)e.stored_len + CRYPTO_TAG_LEN);
			check(crypto_open(cc, subkey, nonce, aad, sizeof aad, blob, e.stored_len, blob + e.stored_len), "blob");
			uint8_t bsel[6] = {2, e.flags};
			put_le32(bsel + 2, e.raw_len);
			snprintf(name, sizeof name, "blob-%zu-%u", done, k);
			emit("pack", name, bsel, sizeof bsel, blob, e.stored_len);
			free(blob);
		}
		free(h);
		free(p);
		done++;
	}
	crypto_ctx_free(cc);
	keys_free(&ks);
}

static void seed_wal(void)
{
	keys ks = list("wal/");
	size_t files = 0;
	for (size_t i = 0; i < ks.n; i++) {
		char name[64];
		const char *base = strrchr(ks.o[i].k, '/') + 1;
		snprintf(name, sizeof name, "key-%zu", i);
		emit1("wal", name, 3, ks.o[i].k, strlen(ks.o[i].k));
		snprintf(name, sizeof name, "name-%zu", i);
		emit1("wal", name, 3, base, strlen(base));
		if (ks.o[i].size > SEED_MAX)
			continue;
		uint8_t *p;
		size_t len;
		check(repo_get_object(r, 'W', ks.o[i].k, &p, &len), ks.o[i].k);
		if (strcmp(base, "system") == 0) {
			emit1("wal", "system", 2, p, len);
			envelope_seed('W', ks.o[i].k, "wal-system");
		} else if (strstr(base, ".history") != NULL) {
			snprintf(name, sizeof name, "history-%zu", i);
			if (len >= 48 && !(p[2] & 1))
				emit1("wal", name, 1, p + 48, len - 48);
			snprintf(name, sizeof name, "file-%zu", i);
			emit1("wal", name, 0, p, len);
		} else if (files++ < 4) {
			snprintf(name, sizeof name, "file-%zu", i);
			emit1("wal", name, 0, p, len);
		}
		free(p);
	}
	keys_free(&ks);
}

static void seed_lock_plan(void)
{
	repo_lock *l;
	check(lock_acquire(r, REPO_LOCK_WRITE, "push", &l), "a lock");
	keys ks = list("locks/");
	for (size_t i = 0; i < ks.n && i < 1; i++) {
		uint8_t *p;
		size_t len;
		check(repo_get_object(r, 'L', ks.o[i].k, &p, &len), ks.o[i].k);
		emit1("lock_plan", "lock", 0, p, len);
		free(p);
		envelope_seed('L', ks.o[i].k, "lock");
	}
	keys_free(&ks);
	lock_release(l, NULL, NULL);

	plan_pack packs[2] = {{{0x11}, PLAN_DEAD}, {{0x22}, PLAN_REPACKED}};
	prune_plan pl = {.packs = packs, .n = 2};
	check(plan_write(r, &pl), "a plan");
	uint8_t *p;
	size_t len;
	check(repo_get_object(r, 'P', pl.key, &p, &len), pl.key);
	emit1("lock_plan", "plan", 1, p, len);
	free(p);
	envelope_seed('P', pl.key, "plan");
	check(store_del(r->st, pl.key), "removing the plan");
}

static void seed_cache(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	static uint8_t data[SEED_MAX + 64];
	size_t len = fread(data, 1, sizeof data, f);
	fclose(f);
	if (len > CRYPTO_ID_LEN)
		emit1("index_cache", "cache", 3, data, len - CRYPTO_ID_LEN); /* its MAC is the target's to add */
}

int main(int argc, char **argv)
{
	if (argc != 4 || getenv("DRE_PASSWORD") == NULL) {
		fprintf(stderr, "usage: DRE_PASSWORD=... dre-fuzzseed REPOSITORY INDEX_CACHE_FILE OUTDIR\n");
		return 2;
	}
	outdir = argv[3];
	store *st;
	check(store_open(argv[1], NULL, &st), argv[1]);
	check(repo_open(st, getenv("DRE_PASSWORD"), &r), argv[1]);
	check(index_new(&idx), "index");
	check(index_load(r, idx, NULL, NULL, NULL, NULL), "index");
	seed_config_keys();
	seed_index();
	seed_snapshots();
	seed_packs();
	seed_wal();
	seed_lock_plan();
	seed_cache(argv[2]);
	index_free(idx);
	repo_close(r);
	store_close(st);
	return 0;
}
