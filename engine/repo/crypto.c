#include "engine/repo/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"

struct crypto_ctx {
	EVP_MAC *mac;
	EVP_MAC_CTX *hmac;
	EVP_CIPHER *gcm;
	EVP_CIPHER_CTX *cipher;
};

static int ossl_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return err_set(DRE_EIO, "openssl %s failed: %s", what, buf);
}

int crypto_ctx_new(crypto_ctx **out)
{
	crypto_ctx *c = calloc(1, sizeof *c);
	if (c == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a crypto context");
	c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	c->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	c->hmac = c->mac ? EVP_MAC_CTX_new(c->mac) : NULL;
	c->cipher = EVP_CIPHER_CTX_new();
	if (c->mac == NULL || c->gcm == NULL || c->hmac == NULL || c->cipher == NULL) {
		crypto_ctx_free(c);
		return ossl_fail("context set-up (HMAC, AES-256-GCM)");
	}
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
			       OSSL_PARAM_construct_end()};
	if (!EVP_MAC_CTX_set_params(c->hmac, params)) {
		crypto_ctx_free(c);
		return ossl_fail("HMAC-SHA-256 set-up");
	}
	*out = c;
	return 0;
}

void crypto_ctx_free(crypto_ctx *c)
{
	if (c == NULL)
		return;
	EVP_MAC_CTX_free(c->hmac);
	EVP_MAC_free(c->mac);
	EVP_CIPHER_CTX_free(c->cipher);
	EVP_CIPHER_free(c->gcm);
	free(c);
}

int crypto_random(void *buf, size_t len)
{
	if (RAND_bytes(buf, (int)len) != 1)
		return ossl_fail("RAND_bytes");
	return 0;
}

int crypto_hmacv(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const struct iovec *iov, int n,
		 uint8_t out[CRYPTO_ID_LEN])
{
	size_t outl = 0;
	if (!EVP_MAC_init(c->hmac, key, CRYPTO_KEY_LEN, NULL))
		return ossl_fail("HMAC-SHA-256");
	for (int i = 0; i < n; i++)
		if (!EVP_MAC_update(c->hmac, iov[i].iov_base, iov[i].iov_len))
			return ossl_fail("HMAC-SHA-256");
	if (!EVP_MAC_final(c->hmac, out, &outl, CRYPTO_ID_LEN) || outl != CRYPTO_ID_LEN)
		return ossl_fail("HMAC-SHA-256");
	return 0;
}

int crypto_hmac(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const void *msg, size_t len,
		uint8_t out[CRYPTO_ID_LEN])
{
	struct iovec v = {(void *)msg, len};
	return crypto_hmacv(c, key, &v, 1, out);
}

/* Runs one of OpenSSL's KDFs by name with its parameters (what, for messages: "HKDF-SHA-256", "scrypt"). */
static int kdf_derive(const char *alg, const char *what, const OSSL_PARAM *params, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, alg, NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int rc = 0;
	if (kctx == NULL || EVP_KDF_derive(kctx, out, outlen, params) != 1)
		rc = ossl_fail(what);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int crypto_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const void *info,
		size_t info_len, uint8_t *out, size_t outlen)
{
	/* an empty salt is left out: RFC 5869 then uses HashLen zero bytes, and OpenSSL rejects a NULL one */
	OSSL_PARAM params[5], *q = params;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt_len > 0)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*q = OSSL_PARAM_construct_end();
	return kdf_derive("HKDF", "HKDF-SHA-256", params, out, outlen);
}

int crypto_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, unsigned log2n,
		  unsigned r, unsigned p, uint8_t *out, size_t outlen)
{
	if (log2n < 10 || log2n > 24 || r < 1 || r > 32 || p < 1 || p > 16)
		return err_set(DRE_ECORRUPT, "scrypt parameters out of range (log2 N %u, r %u, p %u)", log2n, r, p);
	/* The fields alone allow 64 GiB (N = 2^24, r = 32): a key object planted in the store must not make every
	 * open try to allocate that (format-spec.md §3). */
	if ((128ull * r) << log2n > CRYPTO_SCRYPT_MAX_MEM)
		return err_set(DRE_ECORRUPT, "scrypt parameters ask for %llu MiB (log2 N %u, r %u), more than the %llu MiB allowed",
			       (unsigned long long)(((128ull * r) << log2n) >> 20), log2n, r,
			       (unsigned long long)(CRYPTO_SCRYPT_MAX_MEM >> 20));
	uint64_t n = 1ull << log2n;
	uint32_t rr = r, pp = p;
	uint64_t maxmem = 128ull * r * n * p + (64ull << 20);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, pass_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	return kdf_derive("SCRYPT", "scrypt", params, out, outlen);
}

int crypto_seal(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
		const void *aad, size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[CRYPTO_TAG_LEN])
{
	int outl;
	EVP_CIPHER_CTX *x = c->cipher;
	if (len > INT32_MAX)
		return err_set(DRE_EINVAL, "cannot encrypt %zu bytes in one message", len);
	if (!EVP_EncryptInit_ex2(x, c->gcm, key, nonce, NULL))
		return ossl_fail("AES-256-GCM init");
	if ((aad_len && !EVP_EncryptUpdate(x, NULL, &outl, aad, (int)aad_len)) ||
	    (len && !EVP_EncryptUpdate(x, buf, &outl, buf, (int)len)) || !EVP_EncryptFinal_ex(x, buf + len, &outl) ||
	    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN, tag))
		return ossl_fail("AES-256-GCM encrypt");
	return 0;
}

int crypto_open(crypto_ctx *c, const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
		const void *aad, size_t aad_len, uint8_t *buf, size_t len, const uint8_t tag[CRYPTO_TAG_LEN])
{
	int outl;
	EVP_CIPHER_CTX *x = c->cipher;
	if (len > INT32_MAX)
		return err_set(DRE_ECORRUPT, "encrypted message of %zu bytes is too long", len);
	if (!EVP_DecryptInit_ex2(x, c->gcm, key, nonce, NULL))
		return ossl_fail("AES-256-GCM init");
	if ((aad_len && !EVP_DecryptUpdate(x, NULL, &outl, aad, (int)aad_len)) ||
	    (len && !EVP_DecryptUpdate(x, buf, &outl, buf, (int)len)) ||
	    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, (void *)tag))
		return ossl_fail("AES-256-GCM decrypt");
	if (EVP_DecryptFinal_ex(x, buf + len, &outl) <= 0) {
		ERR_clear_error();
		return err_set(DRE_ECORRUPT, "authentication failed (the bytes were changed, truncated or "
					     "belong to another object)");
	}
	return 0;
}

void crypto_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_nibble(in[2 * i]);
		int lo = hi < 0 ? -1 : hex_nibble(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * len] == '\0';
}
