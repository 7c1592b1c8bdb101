#include "engine/repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "engine/repo/bytes.h"
#include "store/err.h"

#define KEY_MAGIC "DRK1"
#define KEY_HDR_LEN 48
/* header, wrapped master key, tag, then an XXH3-64 of all before it: a damaged key object must be told apart
 * from a wrong password, which the GCM tag alone cannot do */
#define KEY_SUM_OFF (KEY_HDR_LEN + CRYPTO_KEY_LEN + CRYPTO_TAG_LEN)
#define KEY_OBJ_LEN (KEY_SUM_OFF + 8)
#define ENV_MAGIC "DRE1"
#define ENV_HDR_LEN REPO_ENVELOPE_HDR
#define CONFIG_LEN 64

static const uint8_t zero_nonce[CRYPTO_NONCE_LEN];

void repo_params_default(repo_params *p)
{
	p->cdc_min = 32u << 10;
	p->cdc_avg = 128u << 10;
	p->cdc_max = 512u << 10;
	p->pack_size = 16u << 20;
	p->zstd_level = 1;
	p->scrypt_log2n = 15;
	p->scrypt_r = 8;
	p->scrypt_p = 1;
}

int repo_params_check(const repo_params *p)
{
	cdc probe;
	static const uint64_t zero_gear[256];
	if (!cdc_init(&probe, zero_gear, p->cdc_min, p->cdc_avg, p->cdc_max))
		return err_set(DRE_EINVAL,
			       "chunk sizes min %u, avg %u, max %u are not valid: avg must be a power of two and "
			       "%u <= min < avg < max <= %u",
			       p->cdc_min, p->cdc_avg, p->cdc_max, CDC_MIN_LIMIT, CDC_MAX_LIMIT);
	if (p->pack_size < (1u << 20) || p->pack_size > (1u << 30) || p->pack_size < p->cdc_max)
		return err_set(DRE_EINVAL, "pack size %u must be between 1 MiB and 1 GiB and at least the largest chunk",
			       p->pack_size);
	if (p->zstd_level < 1 || p->zstd_level > 19)
		return err_set(DRE_EINVAL, "compression level %d must be between 1 and 19", p->zstd_level);
	return 0;
}

void repo_object_key(const char *prefix, const uint8_t id[CRYPTO_ID_LEN], char out[80])
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(id, CRYPTO_ID_LEN, hex);
	snprintf(out, 80, "%s%s", prefix, hex);
}

void repo_pack_key(const uint8_t id[CRYPTO_ID_LEN], char out[80])
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(id, CRYPTO_ID_LEN, hex);
	snprintf(out, 80, "packs/%.2s/%s", hex, hex);
}

int repo_pack_subkey(const repo *r, const uint8_t pack_id[CRYPTO_ID_LEN], uint8_t out[CRYPTO_KEY_LEN])
{
	static const char info[] = "dre v1 pack";
	return crypto_hkdf(r->enc_key, CRYPTO_KEY_LEN, pack_id, CRYPTO_ID_LEN, info, sizeof info - 1, out,
			   CRYPTO_KEY_LEN);
}

/* Every working secret is HKDF(master key, empty salt, info) (format-spec.md §3). */
static int derive(const uint8_t master[CRYPTO_KEY_LEN], const char *info, uint8_t *out, size_t len)
{
	return crypto_hkdf(master, CRYPTO_KEY_LEN, NULL, 0, info, strlen(info), out, len);
}

/* The encryption key comes first and alone: config is encrypted with it, and config holds the chunk sizes
 * that the rest needs. */
static int derive_enc_key(repo *r, const uint8_t master[CRYPTO_KEY_LEN])
{
	return derive(master, "dre v1 encryption", r->enc_key, CRYPTO_KEY_LEN);
}

/* The chunk-ID key and the chunker with its gear table, once the parameters are known. */
static int derive_chunking(repo *r, const uint8_t master[CRYPTO_KEY_LEN])
{
	uint8_t table[256 * 8];
	uint64_t gear[256];

	TRY(derive(master, "dre v1 chunk id", r->id_key, CRYPTO_KEY_LEN));
	TRY(derive(master, "dre v3 list id", r->list_key, CRYPTO_KEY_LEN));
	TRY(derive(master, "dre v1 gear table", table, sizeof table));
	for (int i = 0; i < 256; i++)
		gear[i] = get_le64(table + 8 * i);
	crypto_wipe(table, sizeof table);
	bool ok = cdc_init(&r->chunker, gear, r->params.cdc_min, r->params.cdc_avg, r->params.cdc_max);
	crypto_wipe(gear, sizeof gear);
	if (!ok)
		return err_set(DRE_ECORRUPT, "config: chunk sizes %u/%u/%u are not valid", r->params.cdc_min,
			       r->params.cdc_avg, r->params.cdc_max);
	return 0;
}

/* A generated key ("dre1k-" and 64 hex digits, 256 random bits) needs no stretching: its key objects use HKDF,
 * which costs microseconds where scrypt costs 0.1 s on every open (every archive_command call). */
#define GENERATED_KEY_PREFIX "dre1k-"
#define KDF_SCRYPT 1
#define KDF_HKDF 2

bool repo_is_generated_key(const char *pass)
{
	size_t plen = sizeof GENERATED_KEY_PREFIX - 1;
	if (strncmp(pass, GENERATED_KEY_PREFIX, plen) != 0 || strlen(pass) != plen + 64)
		return false;
	for (const char *p = pass + plen; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int repo_generate_key(char out[REPO_GENERATED_KEY_LEN + 1])
{
	uint8_t raw[32];
	TRY(crypto_random(raw, sizeof raw));
	memcpy(out, GENERATED_KEY_PREFIX, sizeof GENERATED_KEY_PREFIX - 1);
	hex_encode(raw, sizeof raw, out + sizeof GENERATED_KEY_PREFIX - 1);
	crypto_wipe(raw, sizeof raw);
	return 0;
}

static int key_kek(const uint8_t *obj, const char *pass, uint8_t kek[CRYPTO_KEY_LEN])
{
	static const char info[] = "dre v1 generated key";
	if (obj[4] == KDF_HKDF)
		return crypto_hkdf((const uint8_t *)pass, strlen(pass), obj + 8, 32, info, sizeof info - 1, kek,
				   CRYPTO_KEY_LEN);
	return crypto_scrypt(pass, strlen(pass), obj + 8, 32, obj[5], obj[6], obj[7], kek, CRYPTO_KEY_LEN);
}

static int key_write(repo *r, const uint8_t master[CRYPTO_KEY_LEN], const char *pass, char name_out[80])
{
	uint8_t obj[KEY_OBJ_LEN];
	uint8_t kek[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_ID_LEN];
	char name[80];
	crypto_ctx *cc = NULL;
	int rc;

	memset(obj, 0, sizeof obj);
	memcpy(obj, KEY_MAGIC, 4);
	if (repo_is_generated_key(pass)) {
		obj[4] = KDF_HKDF;
	} else {
		obj[4] = KDF_SCRYPT;
		obj[5] = (uint8_t)r->params.scrypt_log2n;
		obj[6] = (uint8_t)r->params.scrypt_r;
		obj[7] = (uint8_t)r->params.scrypt_p;
	}
	TRY(crypto_random(obj + 8, 32));
	put_le64(obj + 40, (uint64_t)time(NULL));
	TRY(crypto_random(id, sizeof id));
	repo_object_key("keys/", id, name);
	TRY(key_kek(obj, pass, kek));
	memcpy(obj + KEY_HDR_LEN, master, CRYPTO_KEY_LEN);

	uint8_t aad[KEY_HDR_LEN + 80];
	size_t aad_len = KEY_HDR_LEN + strlen(name);
	memcpy(aad, obj, KEY_HDR_LEN);
	memcpy(aad + KEY_HDR_LEN, name, strlen(name));
	rc = crypto_ctx_new(&cc);
	if (rc == 0)
		rc = crypto_seal(cc, kek, zero_nonce, aad, aad_len, obj + KEY_HDR_LEN, CRYPTO_KEY_LEN,
				 obj + KEY_HDR_LEN + CRYPTO_KEY_LEN);
	crypto_ctx_free(cc);
	crypto_wipe(kek, sizeof kek);
	put_le64(obj + KEY_SUM_OFF, XXH3_64bits(obj, KEY_SUM_OFF));
	if (rc == 0)
		rc = store_put(r->st, name, obj, sizeof obj, STORE_PUT_CREATE_ONCE);
	if (rc == 0 && name_out != NULL)
		snprintf(name_out, 80, "%s", name);
	return rc;
}

/* Loads and checks one key object (obj: KEY_OBJ_LEN bytes). */
static int key_load(store *st, const char *name, uint8_t obj[KEY_OBJ_LEN])
{
	uint8_t *p = NULL;
	size_t len = 0;
	TRY(store_load(st, name, REPO_MAX_KEY_OBJECT, &p, &len));
	int rc = 0;
	if (len != KEY_OBJ_LEN || memcmp(p, KEY_MAGIC, 4) != 0 || (p[4] != KDF_SCRYPT && p[4] != KDF_HKDF))
		rc = err_set(DRE_ECORRUPT, "corrupt key object %s: not a dre v1 key (%zu bytes)", name, len);
	else if (get_le64(p + KEY_SUM_OFF) != XXH3_64bits(p, KEY_SUM_OFF))
		rc = err_set(DRE_ECORRUPT, "corrupt key object %s: checksum mismatch", name);
	else if (p[4] == KDF_HKDF && (p[5] || p[6] || p[7]))
		rc = err_set(DRE_ECORRUPT, "corrupt key object %s: KDF parameters on a generated key", name);
	else
		memcpy(obj, p, KEY_OBJ_LEN);
	free(p);
	return rc;
}

/* Tries one loaded key object; 1 = opened (master filled), 0 = wrong password, <0 = error. */
static int key_try(const uint8_t *stored, const char *name, const char *pass, uint8_t master[CRYPTO_KEY_LEN])
{
	uint8_t kek[CRYPTO_KEY_LEN], obj[KEY_OBJ_LEN];
	crypto_ctx *cc = NULL;
	int rc;

	memcpy(obj, stored, KEY_OBJ_LEN);
	rc = key_kek(obj, pass, kek);
	if (rc < 0)
		return err_ctx(rc, "key object %s", name);
	uint8_t aad[KEY_HDR_LEN + 80];
	size_t nlen = strlen(name) < 80 ? strlen(name) : 79;
	memcpy(aad, obj, KEY_HDR_LEN);
	memcpy(aad + KEY_HDR_LEN, name, nlen);
	rc = crypto_ctx_new(&cc);
	if (rc == 0) {
		rc = crypto_open(cc, kek, zero_nonce, aad, KEY_HDR_LEN + nlen, obj + KEY_HDR_LEN, CRYPTO_KEY_LEN,
				 obj + KEY_HDR_LEN + CRYPTO_KEY_LEN);
		rc = rc == 0 ? 1 : rc == DRE_ECORRUPT ? 0 : rc;
	}
	if (rc == 1)
		memcpy(master, obj + KEY_HDR_LEN, CRYPTO_KEY_LEN);
	crypto_ctx_free(cc);
	crypto_wipe(kek, sizeof kek);
	crypto_wipe(obj, sizeof obj);
	return rc;
}

static int config_encode(const repo *r, uint8_t out[CONFIG_LEN])
{
	memset(out, 0, CONFIG_LEN);
	put_le32(out, r->format);
	memcpy(out + 4, r->repo_id, REPO_ID_LEN);
	put_le32(out + 36, r->params.cdc_min);
	put_le32(out + 40, r->params.cdc_avg);
	put_le32(out + 44, r->params.cdc_max);
	put_le32(out + 48, r->params.pack_size);
	out[52] = 1; /* compression: zstd */
	out[53] = (uint8_t)r->params.zstd_level;
	put_le64(out + 56, (uint64_t)r->created);
	return 0;
}

static int config_decode(repo *r, const uint8_t *p, size_t len)
{
	if (len != CONFIG_LEN)
		return err_set(DRE_ECORRUPT, "corrupt object config: %zu bytes, expected %d", len, CONFIG_LEN);
	uint32_t version = get_le32(p);
	if (version < REPO_FORMAT_MIN_VERSION || version > REPO_FORMAT_VERSION)
		return err_set(DRE_EUNSUPP,
			       "repository format version %u is not supported by this dre (it reads %d to %d)",
			       version, REPO_FORMAT_MIN_VERSION, REPO_FORMAT_VERSION);
	r->format = version;
	memcpy(r->repo_id, p + 4, REPO_ID_LEN);
	r->params.cdc_min = get_le32(p + 36);
	r->params.cdc_avg = get_le32(p + 40);
	r->params.cdc_max = get_le32(p + 44);
	r->params.pack_size = get_le32(p + 48);
	if (p[52] != 1)
		return err_set(DRE_EUNSUPP, "config: compression method %u is not supported", p[52]);
	/* NOLINTNEXTLINE(bugprone-signed-char-misuse,cert-str34-c): zstd's fast levels are negative */
	r->params.zstd_level = (int8_t)p[53];
	r->created = (int64_t)get_le64(p + 56);
	if (repo_params_check(&r->params) < 0)
		return err_ctx(DRE_ECORRUPT, "corrupt object config");
	return 0;
}

int repo_upgrade(repo *r, uint32_t version)
{
	uint8_t cfg[CONFIG_LEN];
	if (version <= r->format)
		return 0;
	if (version > REPO_FORMAT_VERSION)
		return err_set(DRE_EINVAL, "internal: format version %u is newer than this dre's", version);
	uint32_t old = r->format;
	r->format = version;
	int rc = config_encode(r, cfg);
	/* one put replaces the whole object: a reader sees the old config or the new one, never a mix */
	if (rc == 0)
		rc = repo_put_object(r, 'C', "config", cfg, sizeof cfg, 0);
	if (rc < 0) {
		r->format = old;
		return err_ctx(rc, "cannot upgrade the repository config to format version %u", version);
	}
	return 0;
}

int repo_init(store *st, const char *pass, const repo_params *p, repo **out)
{
	uint8_t master[CRYPTO_KEY_LEN];
	uint8_t cfg[CONFIG_LEN];
	uint64_t size;
	int rc;

	TRY(repo_params_check(p));
	rc = store_stat(st, "config", &size);
	if (rc == 0)
		return err_set(DRE_EEXIST, "a repository already exists at %s", st->url);
	if (rc != DRE_ENOTFOUND)
		return rc;

	repo *r = calloc(1, sizeof *r);
	if (r == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the repository");
	r->st = st;
	r->params = *p;
	r->created = (int64_t)time(NULL);
	r->format = REPO_FORMAT_VERSION;
	rc = crypto_random(master, sizeof master);
	if (rc == 0)
		rc = crypto_random(r->repo_id, sizeof r->repo_id);
	memcpy(r->master, master, sizeof master);
	if (rc == 0)
		rc = derive_enc_key(r, master);
	if (rc == 0)
		rc = derive_chunking(r, master);
	if (rc == 0)
		rc = key_write(r, master, pass, r->key_name);
	if (rc == 0)
		rc = config_encode(r, cfg);
	/* config last: its presence is what makes the store a repository */
	if (rc == 0)
		rc = repo_put_object(r, 'C', "config", cfg, sizeof cfg, STORE_PUT_CREATE_ONCE);
	crypto_wipe(master, sizeof master);
	if (rc < 0) {
		repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

struct key_list {
	char (*names)[80];
	size_t n, cap;
};

static int key_list_add(void *arg, const char *key, uint64_t size)
{
	(void)size;
	struct key_list *kl = arg;
	if (strlen(key) >= 80)
		return 0;
	if (!array_room(&kl->names, &kl->cap, kl->n, sizeof *kl->names, 8))
		return err_set(DRE_ENOMEM, "cannot list keys");
	snprintf(kl->names[kl->n++], 80, "%s", key);
	return 0;
}

int repo_open(store *st, const char *pass, repo **out)
{
	struct key_list kl = {0};
	uint8_t master[CRYPTO_KEY_LEN];
	uint8_t *cfg = NULL;
	size_t cfg_len = 0;
	uint64_t size;
	int rc, opened = 0, corrupt = 0, unread = 0;
	char corrupt_msg[512] = "", unread_msg[512] = "";

	rc = store_stat(st, "config", &size);
	if (rc == DRE_ENOTFOUND) {
		char why[1024];
		snprintf(why, sizeof why, "%s", err_msg()); /* the store's reason: no config object, or no bucket */
		return err_set(DRE_ENOTFOUND, "no repository at %s (%s). HINT: create one with 'dre init'", st->url, why);
	}
	TRY(rc);
	TRY(store_list(st, "keys/", key_list_add, &kl));

	repo *r = calloc(1, sizeof *r);
	if (r == NULL) {
		free(kl.names);
		return err_set(DRE_ENOMEM, "cannot allocate the repository");
	}
	r->st = st;
	/* A generated key opens its own (HKDF) key objects: try those first, and scrypt ones only when none does, so
	 * that it never pays for the stretching meant for typed passwords; a typed password tries scrypt ones only. */
	bool generated = repo_is_generated_key(pass);
	uint8_t (*objs)[KEY_OBJ_LEN] = calloc(kl.n ? kl.n : 1, KEY_OBJ_LEN);
	bool *usable = calloc(kl.n ? kl.n : 1, sizeof *usable);
	if (objs == NULL || usable == NULL) {
		free(objs);
		free(usable);
		free(kl.names);
		repo_close(r);
		return err_set(DRE_ENOMEM, "cannot read the key objects");
	}
	for (size_t i = 0; i < kl.n; i++) {
		int lrc = key_load(st, kl.names[i], objs[i]);
		usable[i] = lrc == 0;
		if (lrc == DRE_ECORRUPT || lrc == DRE_ENOTFOUND) { /* one damaged key must not lock out the others */
			corrupt++;
			snprintf(corrupt_msg, sizeof corrupt_msg, "%s", err_msg());
		} else if (lrc < 0 && unread == 0) {
			/* an I/O failure: that key may be the one that opens, so if none does, this is what went
			 * wrong, not damage or a wrong password */
			unread = lrc;
			snprintf(unread_msg, sizeof unread_msg, "%s", err_msg());
		}
	}
	for (int round = 0; round < (generated ? 2 : 1) && !opened; round++) {
		bool want_hkdf = generated && round == 0;
		for (size_t i = 0; i < kl.n && !opened; i++) {
			if (!usable[i] || (objs[i][4] == KDF_HKDF) != want_hkdf)
				continue;
			rc = key_try(objs[i], kl.names[i], pass, master);
			if (rc == 1) {
				opened = 1;
				snprintf(r->key_name, sizeof r->key_name, "%s", kl.names[i]);
			} else if (rc < 0) {
				corrupt++;
				snprintf(corrupt_msg, sizeof corrupt_msg, "%s", err_msg());
			}
		}
	}
	crypto_wipe(objs, (kl.n ? kl.n : 1) * KEY_OBJ_LEN);
	free(objs);
	free(usable);
	free(kl.names);
	if (!opened) {
		repo_close(r);
		if (unread < 0)
			return err_set(unread, "%s", unread_msg);
		if (corrupt && (size_t)corrupt == kl.n)
			return err_set(DRE_ECORRUPT, "%s", corrupt_msg);
		if (kl.n == 0)
			return err_set(DRE_ECORRUPT, "repository %s has no key objects (keys/ is empty)", st->url);
		return err_set(DRE_EAUTH, "wrong password: none of the %zu key object(s) in %s opens with it%s%s",
			       kl.n, st->url, corrupt ? "; also " : "", corrupt ? corrupt_msg : "");
	}
	rc = derive_enc_key(r, master);
	if (rc == 0)
		rc = repo_get_object(r, 'C', "config", &cfg, &cfg_len);
	if (rc == 0)
		rc = config_decode(r, cfg, cfg_len);
	if (rc == 0) {
		/* scrypt settings are per key object, not per repository: new keys get today's defaults */
		repo_params d;
		repo_params_default(&d);
		r->params.scrypt_log2n = d.scrypt_log2n;
		r->params.scrypt_r = d.scrypt_r;
		r->params.scrypt_p = d.scrypt_p;
	}
	if (rc == 0)
		rc = derive_chunking(r, master);
	memcpy(r->master, master, sizeof master);
	crypto_wipe(master, sizeof master);
	free(cfg);
	if (rc < 0) {
		repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int repo_key_add(repo *r, const char *pass, char name_out[80])
{
	return key_write(r, r->master, pass, name_out);
}

int repo_key_list(repo *r, int (*fn)(void *arg, const repo_key_info *k), void *arg)
{
	struct key_list kl = {0};
	int rc = store_list(r->st, "keys/", key_list_add, &kl);
	for (size_t i = 0; rc == 0 && i < kl.n; i++) {
		repo_key_info k;
		uint8_t obj[KEY_OBJ_LEN];
		memset(&k, 0, sizeof k);
		snprintf(k.name, sizeof k.name, "%s", kl.names[i]);
		k.in_use = strcmp(k.name, r->key_name) == 0;
		rc = key_load(r->st, k.name, obj);
		if (rc == DRE_ENOTFOUND) { /* removed since the listing */
			rc = 0;
			continue;
		}
		if (rc == DRE_ENOMEM)
			break;
		k.damaged = rc < 0;
		if (rc == 0) {
			k.kdf = obj[4];
			k.scrypt_log2n = obj[5];
			k.scrypt_r = obj[6];
			k.scrypt_p = obj[7];
			k.created = (int64_t)get_le64(obj + 40);
		}
		rc = fn(arg, &k);
	}
	free(kl.names);
	return rc;
}

int repo_key_find(repo *r, const char *what, char name_out[80])
{
	const char *hex = strncmp(what, "keys/", 5) == 0 ? what + 5 : what;
	size_t len = strlen(hex);
	if (len < 4 || len > 2 * CRYPTO_ID_LEN || strspn(hex, "0123456789abcdef") != len)
		return err_set(DRE_EINVAL, "'%s' is not a key ID: 4 to 64 lowercase hex digits, as 'dre key list' shows",
			       what);
	struct key_list kl = {0};
	TRY(store_list(r->st, "keys/", key_list_add, &kl));
	size_t found = 0;
	for (size_t i = 0; i < kl.n; i++) {
		if (strncmp(kl.names[i] + 5, hex, len) != 0)
			continue;
		if (found++ == 0)
			snprintf(name_out, 80, "%s", kl.names[i]);
	}
	free(kl.names);
	if (found == 0)
		return err_set(DRE_ENOTFOUND, "no key %s in %s", hex, r->st->url);
	if (found > 1)
		return err_set(DRE_EINVAL, "key ID %s is ambiguous: %zu keys start with it. HINT: give more digits", hex,
			       found);
	return 0;
}

int repo_key_remove(repo *r, const char *name, bool in_use_ok)
{
	struct key_list kl = {0};
	size_t others = 0;
	bool exists = false;
	TRY(store_list(r->st, "keys/", key_list_add, &kl));
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < kl.n; i++) {
		uint8_t obj[KEY_OBJ_LEN];
		if (strcmp(kl.names[i], name) == 0) {
			exists = true;
			continue;
		}
		/* a damaged key opens nothing: it does not count as a way in */
		rc = key_load(r->st, kl.names[i], obj);
		if (rc == 0)
			others++;
		if (rc != DRE_ENOMEM)
			rc = 0;
	}
	free(kl.names);
	TRY(rc);
	if (!exists)
		return err_set(DRE_ENOTFOUND, "no key %s in %s", name, r->st->url);
	if (others == 0)
		return err_set(DRE_EINVAL, "%s is the last usable key of %s: refusing to remove it (nobody could open "
					   "the repository any more)",
			       name, r->st->url);
	if (!in_use_ok && strcmp(name, r->key_name) == 0)
		return err_set(DRE_EINVAL,
			       "%s is the key in use (the one this password opened): refusing to remove it. HINT: remove it "
			       "with another key's password, or change this password with 'dre key passwd'",
			       name);
	rc = store_del(r->st, name);
	return rc < 0 ? err_ctx(rc, "cannot remove %s", name) : 0;
}

void repo_close(repo *r)
{
	if (r == NULL)
		return;
	crypto_wipe(r, sizeof *r);
	free(r);
}

/* The header already carries the type; with the object's own key appended the AAD binds both. */
static int envelope_aad(const uint8_t hdr[ENV_HDR_LEN], const char *key, uint8_t *aad, size_t *aad_len)
{
	size_t klen = strlen(key);
	if (klen > 200)
		return err_set(DRE_EINVAL, "object key %s is too long", key);
	memcpy(aad, hdr, ENV_HDR_LEN);
	memcpy(aad + ENV_HDR_LEN, key, klen);
	*aad_len = ENV_HDR_LEN + klen;
	return 0;
}

static int envelope_subkey(const repo *r, const uint8_t salt[32], uint8_t out[CRYPTO_KEY_LEN])
{
	static const char info[] = "dre v1 object";
	return crypto_hkdf(r->enc_key, CRYPTO_KEY_LEN, salt, 32, info, sizeof info - 1, out, CRYPTO_KEY_LEN);
}

int repo_seal_object(repo *r, char type, const char *key, uint8_t *obj, size_t len)
{
	uint8_t subkey[CRYPTO_KEY_LEN];
	uint8_t aad[ENV_HDR_LEN + 256];
	size_t aad_len = 0;
	crypto_ctx *cc = NULL;

	memset(obj, 0, ENV_HDR_LEN);
	memcpy(obj, ENV_MAGIC, 4);
	obj[4] = (uint8_t)type;
	int rc = crypto_random(obj + 8, 32);
	if (rc == 0)
		rc = envelope_aad(obj, key, aad, &aad_len);
	if (rc == 0)
		rc = envelope_subkey(r, obj + 8, subkey);
	if (rc == 0)
		rc = crypto_ctx_new(&cc);
	if (rc == 0)
		rc = crypto_seal(cc, subkey, zero_nonce, aad, aad_len, obj + ENV_HDR_LEN, len, obj + ENV_HDR_LEN + len);
	crypto_ctx_free(cc);
	crypto_wipe(subkey, sizeof subkey);
	return rc;
}

int repo_put_object(repo *r, char type, const char *key, const uint8_t *plain, size_t len, unsigned put_flags)
{
	size_t total = ENV_HDR_LEN + len + CRYPTO_TAG_LEN;
	uint8_t *obj = malloc(total);
	if (obj == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate %zu bytes for object %s", total, key);
	memcpy(obj + ENV_HDR_LEN, plain, len);
	int rc = repo_seal_object(r, type, key, obj, len);
	if (rc == 0)
		rc = store_put(r->st, key, obj, total, put_flags);
	free(obj);
	return rc;
}

int repo_open_object(repo *r, char type, const char *key, uint8_t *obj, size_t len, uint8_t **plain,
		     size_t *plain_len)
{
	uint8_t subkey[CRYPTO_KEY_LEN];
	uint8_t aad[ENV_HDR_LEN + 256];
	size_t aad_len = 0;
	crypto_ctx *cc = NULL;
	int rc;

	if (len < ENV_HDR_LEN + CRYPTO_TAG_LEN || memcmp(obj, ENV_MAGIC, 4) != 0)
		return err_set(DRE_ECORRUPT, "corrupt object %s: not a dre v1 object (%zu bytes)", key, len);
	if (obj[4] != (uint8_t)type)
		return err_set(DRE_ECORRUPT, "corrupt object %s: type '%c', expected '%c'", key,
			       obj[4] >= 32 && obj[4] < 127 ? obj[4] : '?', type);
	size_t n = len - ENV_HDR_LEN - CRYPTO_TAG_LEN;
	rc = envelope_aad(obj, key, aad, &aad_len);
	if (rc == 0)
		rc = envelope_subkey(r, obj + 8, subkey);
	if (rc == 0)
		rc = crypto_ctx_new(&cc);
	if (rc == 0)
		rc = crypto_open(cc, subkey, zero_nonce, aad, aad_len, obj + ENV_HDR_LEN, n, obj + ENV_HDR_LEN + n);
	crypto_ctx_free(cc);
	crypto_wipe(subkey, sizeof subkey);
	if (rc < 0)
		return err_ctx(rc, "corrupt object %s", key);
	*plain = obj + ENV_HDR_LEN;
	*plain_len = n;
	return 0;
}

int repo_open_envelope(repo *r, char type, const char *key, const uint8_t *obj, size_t len, uint8_t **plain,
		       size_t *plain_len)
{
	uint8_t *copy = malloc(len ? len : 1), *p;
	size_t n;
	if (copy == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate %zu bytes for object %s", len, key);
	memcpy(copy, obj, len);
	int rc = repo_open_object(r, type, key, copy, len, &p, &n);
	if (rc == 0) {
		memmove(copy, p, n);
		*plain = copy;
		*plain_len = n;
	} else {
		free(copy);
	}
	return rc;
}

int repo_get_object(repo *r, char type, const char *key, uint8_t **plain, size_t *len)
{
	uint64_t size;
	TRY(store_stat(r->st, key, &size));
	return repo_get_object_sized(r, type, key, size, plain, len);
}

int repo_get_object_sized(repo *r, char type, const char *key, uint64_t size, uint8_t **plain, size_t *len)
{
	uint8_t *obj = NULL, *p;
	size_t obj_len = 0;
	TRY(store_load_sized(r->st, key, size, REPO_MAX_META_OBJECT, &obj, &obj_len));
	int rc = repo_open_object(r, type, key, obj, obj_len, &p, len); /* in the buffer just read: no copy */
	if (rc == 0) {
		memmove(obj, p, *len);
		*plain = obj;
	} else {
		free(obj);
	}
	return rc;
}
