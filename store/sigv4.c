#include "store/sigv4.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* An output cursor that remembers whether anything did not fit, so the building code needs no check per call. */
typedef struct cursor {
	char *p;
	size_t len, cap;
	bool overflow;
} cursor;

static void cur_init(cursor *c, char *p, size_t cap)
{
	*c = (cursor){p, 0, cap, false};
	p[0] = '\0';
}

static void cur_putn(cursor *c, const char *s, size_t n)
{
	if (c->overflow || c->len + n + 1 > c->cap) {
		c->overflow = true;
		return;
	}
	memcpy(c->p + c->len, s, n);
	c->len += n;
	c->p[c->len] = '\0';
}

static void cur_puts(cursor *c, const char *s)
{
	cur_putn(c, s, strlen(s));
}

static void cur_putc(cursor *c, char ch)
{
	cur_putn(c, &ch, 1);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* RFC 3986 encoding as SigV4 wants it: unreserved bytes as they are, "/" kept when keep_slash, the rest %XX. */
static void uri_encode(cursor *c, const char *s, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			cur_putc(c, (char)*p);
		} else {
			char e[3] = {'%', digits[*p >> 4], digits[*p & 15]};
			cur_putn(c, e, 3);
		}
	}
}

void sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex(md, 32, out);
}

void sigv4_amz_date(long long unix_seconds, char out[17])
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

/* Encoded query parameters, sorted by name then value as the canonical form requires. */
typedef struct enc_param {
	char name[256];
	char value[1024];
} enc_param;

static int param_cmp(const void *a, const void *b)
{
	const enc_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

typedef struct canon_header {
	char name[64];
	const char *value;
} canon_header;

static int header_cmp(const void *a, const void *b)
{
	return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

/* A header value trimmed, with runs of spaces collapsed to one. */
static void put_trimmed(cursor *c, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space)
			cur_putc(c, ' ');
		space = false;
		cur_putc(c, *v);
	}
}

int sigv4_sign(const sigv4_request *rq, const char *access_key, const char *secret, sigv4_result *out)
{
	if (rq->method == NULL || rq->path == NULL || rq->payload_hash == NULL || rq->amz_date == NULL ||
	    rq->region == NULL || rq->service == NULL || strlen(rq->amz_date) != 16 || rq->nquery > SIGV4_MAX_QUERY ||
	    rq->nheaders > SIGV4_MAX_HEADERS || access_key == NULL || secret == NULL || strlen(secret) > 200)
		return -1;
	cursor c;
	bool overflow = false;

	cur_init(&c, out->encoded_path, sizeof out->encoded_path);
	uri_encode(&c, *rq->path ? rq->path : "/", true);
	overflow |= c.overflow;

	enc_param params[SIGV4_MAX_QUERY];
	for (size_t i = 0; i < rq->nquery; i++) {
		cur_init(&c, params[i].name, sizeof params[i].name);
		uri_encode(&c, rq->query[i].name, false);
		overflow |= c.overflow;
		cur_init(&c, params[i].value, sizeof params[i].value);
		uri_encode(&c, rq->query[i].value ? rq->query[i].value : "", false);
		overflow |= c.overflow;
	}
	/* cppcheck-suppress uninitvar ; the loop above filled params[0..nquery) */
	qsort(params, rq->nquery, sizeof params[0], param_cmp);
	cur_init(&c, out->query, sizeof out->query);
	for (size_t i = 0; i < rq->nquery; i++) {
		if (i > 0)
			cur_putc(&c, '&');
		cur_puts(&c, params[i].name);
		cur_putc(&c, '=');
		cur_puts(&c, params[i].value);
	}
	overflow |= c.overflow;

	canon_header hs[SIGV4_MAX_HEADERS];
	for (size_t i = 0; i < rq->nheaders; i++) {
		size_t n = strlen(rq->headers[i].name);
		if (n >= sizeof hs[i].name)
			return -1;
		for (size_t k = 0; k <= n; k++)
			hs[i].name[k] = (char)tolower((unsigned char)rq->headers[i].name[k]);
		hs[i].value = rq->headers[i].value;
	}
	/* cppcheck-suppress uninitvar ; the loop above filled hs[0..nheaders) */
	qsort(hs, rq->nheaders, sizeof hs[0], header_cmp);
	cur_init(&c, out->signed_headers, sizeof out->signed_headers);
	for (size_t i = 0; i < rq->nheaders; i++) {
		if (i > 0)
			cur_putc(&c, ';');
		cur_puts(&c, hs[i].name);
	}
	overflow |= c.overflow;

	cur_init(&c, out->canonical_request, sizeof out->canonical_request);
	cur_puts(&c, rq->method);
	cur_putc(&c, '\n');
	cur_puts(&c, out->encoded_path);
	cur_putc(&c, '\n');
	cur_puts(&c, out->query);
	cur_putc(&c, '\n');
	for (size_t i = 0; i < rq->nheaders; i++) {
		cur_puts(&c, hs[i].name);
		cur_putc(&c, ':');
		put_trimmed(&c, hs[i].value);
		cur_putc(&c, '\n');
	}
	cur_putc(&c, '\n');
	cur_puts(&c, out->signed_headers);
	cur_putc(&c, '\n');
	cur_puts(&c, rq->payload_hash);
	overflow |= c.overflow;

	char day[9], canon_hash[SIGV4_HEX_LEN + 1], scope[128];
	memcpy(day, rq->amz_date, 8);
	day[8] = '\0';
	sigv4_sha256_hex(out->canonical_request, c.len, canon_hash);
	if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, rq->region, rq->service) >= (int)sizeof scope)
		return -1;
	if (snprintf(out->string_to_sign, sizeof out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", rq->amz_date,
		     scope, canon_hash) >= (int)sizeof out->string_to_sign)
		return -1;

	/* The signing key is four HMACs deep: date, region, service, "aws4_request". */
	char k0[208];
	unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
	snprintf(k0, sizeof k0, "AWS4%s", secret);
	hmac(k0, strlen(k0), day, k1);
	hmac(k1, 32, rq->region, k2);
	hmac(k2, 32, rq->service, k3);
	hmac(k3, 32, "aws4_request", k4);
	hmac(k4, 32, out->string_to_sign, sig);
	OPENSSL_cleanse(k0, sizeof k0);
	OPENSSL_cleanse(k1, sizeof k1);
	OPENSSL_cleanse(k2, sizeof k2);
	OPENSSL_cleanse(k3, sizeof k3);
	OPENSSL_cleanse(k4, sizeof k4);
	hex(sig, 32, out->signature);

	if (snprintf(out->authorization, sizeof out->authorization,
		     "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s", access_key, scope,
		     out->signed_headers, out->signature) >= (int)sizeof out->authorization)
		return -1;
	return overflow ? -1 : 0;
}
