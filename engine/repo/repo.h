/*
 * repo.h — the repository model: keys, config, derived secrets, and the encrypted "envelope" objects.
 * format-spec.md §Keys, §Config and §Envelope define the bytes; this module is their only writer and reader.
 *
 * Opening a repository: list keys/, try each key object with the password (scrypt → AES-256-GCM unwrap of the
 * 32-byte master key), derive the working keys with HKDF, read and decrypt "config". Everything after that uses
 * the derived keys only.
 */
#ifndef DRE_REPO_H
#define DRE_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker/chunker.h"
#include "engine/repo/crypto.h"
#include "store/store.h"

/* The version new repositories get; dre reads every version from the minimum on (format-spec.md §13). */
#define REPO_FORMAT_VERSION 5
#define REPO_FORMAT_MIN_VERSION 1
/* The first version whose snapshots keep their content in list blobs; an older repository is read as it is,
 * and written to only after `dre migrate` (format-spec.md §13). */
#define REPO_FORMAT_LISTS 3
/* The first version with locks and prune plans (format-spec.md §16): forget and prune need it, and a push into an
 * older repository is refused, since a dre of that version would not follow the plans of a prune. */
#define REPO_FORMAT_PRUNE 4
/* The first version whose snapshots (format 3) keep what a later push compares to skip an unchanged file, hard
 * links, device nodes and extended attributes: every push writes format 3, so a push into an older repository is
 * refused until `dre migrate` (a dre of that version could not read the snapshot). */
#define REPO_FORMAT_NODES 5
#define REPO_ID_LEN 32

/* Largest sizes dre accepts for whole-object reads: a damaged store cannot make it allocate without bound. */
#define REPO_MAX_META_OBJECT (1u << 30)
#define REPO_MAX_KEY_OBJECT 4096u

typedef struct repo_params {
	uint32_t cdc_min, cdc_avg, cdc_max; /* chunker sizes, bytes */
	uint32_t pack_size;                 /* target pack object size, bytes */
	int zstd_level;                     /* 1..19 */
	unsigned scrypt_log2n, scrypt_r, scrypt_p;
} repo_params;

/* The defaults (format-spec.md §Defaults explains the measurements behind them). */
void repo_params_default(repo_params *p);
/* Checks ranges; DRE_EINVAL names the bad parameter. */
int repo_params_check(const repo_params *p);

typedef struct repo {
	store *st;
	repo_params params;
	uint8_t repo_id[REPO_ID_LEN];
	int64_t created;
	uint32_t format;                 /* the repository's format version (1 has no WAL archive) */
	uint8_t master[CRYPTO_KEY_LEN];  /* kept to wrap further key objects; wiped on close */
	uint8_t enc_key[CRYPTO_KEY_LEN]; /* ikm for every per-object subkey */
	uint8_t id_key[CRYPTO_KEY_LEN];  /* HMAC key of chunk IDs */
	uint8_t list_key[CRYPTO_KEY_LEN]; /* HMAC key of list blob IDs (format 3) */
	cdc chunker;                      /* gear table derived from the master key */
	char key_name[80];                /* the key object that opened it: "keys/<hex>" */
	const char *cache_dir;            /* this machine's cache directory (the caller's string), NULL: none */
} repo;

/* Creates a repository in an empty store: one key object for pass, then config (create-once).
 * DRE_EEXIST when the store already holds a config. */
int repo_init(store *st, const char *pass, const repo_params *p, repo **out);

/* Opens with pass; DRE_EAUTH when no key object accepts it, DRE_ENOTFOUND when the store has no repository. */
int repo_open(store *st, const char *pass, repo **out);

/* Generated keys: "dre1k-" and 64 lowercase hex digits from the CSPRNG. Their key objects derive the wrapping
 * key with HKDF instead of scrypt (format-spec.md §5): 256 random bits need no stretching, and opening the
 * repository then costs microseconds, which archive_command pays on every call. */
#define REPO_GENERATED_KEY_LEN 70
bool repo_is_generated_key(const char *pass);
int repo_generate_key(char out[REPO_GENERATED_KEY_LEN + 1]);

/* Adds a key object wrapping the same master key under another password (HKDF for a generated key). */
int repo_key_add(repo *r, const char *pass, char name_out[80]);

/* What a key object says about itself, without its password. */
typedef struct repo_key_info {
	char name[80]; /* "keys/<hex>" */
	uint8_t kdf;   /* 1 scrypt, 2 HKDF (a generated key); 0 when damaged */
	uint8_t scrypt_log2n, scrypt_r, scrypt_p;
	int64_t created; /* seconds since the epoch */
	bool damaged;    /* unreadable, or fails its checksum (the reason is in err_msg() during the callback) */
	bool in_use;     /* the key object that opened r */
} repo_key_info;

/* Every key object in the store, in listing order. */
int repo_key_list(repo *r, int (*fn)(void *arg, const repo_key_info *k), void *arg);

/* The key object that what names: "keys/<hex>", its hex ID or a unique prefix of it (at least 4 digits).
 * DRE_ENOTFOUND when none matches, DRE_EINVAL when it is not an ID or several match. */
int repo_key_find(repo *r, const char *what, char name_out[80]);

/* Deletes key object name. It refuses (DRE_EINVAL) when no other key object passes its checksum, so that the
 * repository never loses its last way in; unless in_use_ok, it also refuses r's own key, the one password the
 * caller has proved to know ('key passwd' removes it only once a new key works). The caller holds a delete
 * lock, so that two removals cannot each take the key the other relies on. */
int repo_key_remove(repo *r, const char *name, bool in_use_ok);

void repo_close(repo *r);

/* Rewrites config with a newer format version (nothing else changes; format-spec.md §13). A no-op when the
 * repository already has that version or a newer one. */
int repo_upgrade(repo *r, uint32_t version);

/* Envelope objects (config, index, snapshots): the whole plaintext encrypted with a subkey derived from a
 * random salt, the object's type and key bound as AAD. put encrypts a copy; get returns a malloc'd plaintext. */
int repo_put_object(repo *r, char type, const char *key, const uint8_t *plain, size_t len, unsigned put_flags);
int repo_get_object(repo *r, char type, const char *key, uint8_t **plain, size_t *len);
/* The same when a listing gave the object's size: one GET, no stat (snapshots: one request each). */
int repo_get_object_sized(repo *r, char type, const char *key, uint64_t size, uint8_t **plain, size_t *len);

/* The same in place, for large objects (WAL segments): obj holds REPO_ENVELOPE_HDR bytes of room, then the
 * len bytes of plaintext, then CRYPTO_TAG_LEN bytes of room; on return it is the object to put. */
#define REPO_ENVELOPE_HDR 40
int repo_seal_object(repo *r, char type, const char *key, uint8_t *obj, size_t len);
/* Decrypts a whole object in place; *plain points into obj. */
int repo_open_object(repo *r, char type, const char *key, uint8_t *obj, size_t len, uint8_t **plain,
		     size_t *plain_len);

/* Decrypts an envelope already in memory (cat, check). */
int repo_open_envelope(repo *r, char type, const char *key, const uint8_t *obj, size_t len, uint8_t **plain,
		       size_t *plain_len);

/* Object keys. Hex IDs are 64 lowercase hex digits. */
void repo_pack_key(const uint8_t id[CRYPTO_ID_LEN], char out[80]);     /* packs/<2 hex>/<64 hex> */
void repo_object_key(const char *prefix, const uint8_t id[CRYPTO_ID_LEN], char out[80]); /* prefix + hex */

/* The per-pack subkey: HKDF-SHA-256(enc_key, salt = pack ID, info = "dre v1 pack"). */
int repo_pack_subkey(const repo *r, const uint8_t pack_id[CRYPTO_ID_LEN], uint8_t out[CRYPTO_KEY_LEN]);

#endif
