/*
 * crypto.h — the repository's cryptographic primitives, all through OpenSSL 3 EVP (nothing hand-rolled).
 * format-spec.md §Cryptography defines what each is used for; this module only wraps the calls.
 *
 * Contexts (crypto_ctx) hold the EVP_MAC_CTX and EVP_CIPHER_CTX of one thread and are reused for every chunk:
 * create one per worker thread, never share one between threads.
 */
#ifndef DRE_CRYPTO_H
#define DRE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CRYPTO_KEY_LEN 32
#define CRYPTO_ID_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16

typedef struct crypto_ctx crypto_ctx;

int crypto_ctx_new(crypto_ctx **out);
void crypto_ctx_free(crypto_ctx *c);

/* Cryptographically secure random bytes (RAND_bytes). */
int crypto_random(void *buf, size_t len);

/* HMAC-SHA-256(key, msg) into out[32]; the MAC context in c is reused. */
int crypto_hmac(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const void *msg, size_t len,
		uint8_t out[CRYPTO_ID_LEN]);

/* The same over the concatenation of iov[0..n): a MAC of a file written in pieces, without joining them. */
int crypto_hmacv(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const struct iovec *iov, int n,
		 uint8_t out[CRYPTO_ID_LEN]);

/* HKDF-SHA-256 (RFC 5869, extract and expand) of outlen bytes. */
int crypto_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const void *info,
		size_t info_len, uint8_t *out, size_t outlen);

/* The most memory (128 · r · N bytes) scrypt parameters may ask for: 32 times the default's 32 MiB. */
#define CRYPTO_SCRYPT_MAX_MEM (1ull << 30)

/* scrypt (RFC 7914) with N = 2^log2n; DRE_ECORRUPT when the parameters are out of the format's range or ask for
 * more than CRYPTO_SCRYPT_MAX_MEM. */
int crypto_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, unsigned log2n,
		  unsigned r, unsigned p, uint8_t *out, size_t outlen);

/* AES-256-GCM, in place: buf is plaintext in and ciphertext out; the 16-byte tag goes to tag. */
int crypto_seal(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
		const void *aad, size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[CRYPTO_TAG_LEN]);

/* AES-256-GCM open, in place. Returns DRE_ECORRUPT (message "authentication failed") when the tag does not
 * verify; the caller adds which object. buf's content is unspecified after a failure. */
int crypto_open(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
		const void *aad, size_t aad_len, uint8_t *buf, size_t len, const uint8_t tag[CRYPTO_TAG_LEN]);

/* Overwrites secrets in a way the compiler cannot drop. */
void crypto_wipe(void *p, size_t len);

/* Lowercase hex of len bytes into out (2*len+1 bytes); parse returns false on bad input. */
void hex_encode(const uint8_t *in, size_t len, char *out);
int hex_decode(const char *in, uint8_t *out, size_t len);

#endif
