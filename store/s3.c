/*
 * s3.c — the S3-compatible store driver: AWS S3, Ceph RADOS Gateway, MinIO, and the like.
 *
 * Repository URL: s3://BUCKET[/PREFIX]; object KEY is stored as PREFIX/KEY. Every request goes through
 * libcurl, signed with SigV4 (store/sigv4.h) over the real SHA-256 of the body, so the server refuses a body
 * damaged on the way; a GET that returns fewer bytes than asked is a transport error and is retried.
 *
 * Settings, each from store_opts first, then the environment, then store_opts.fallback (a config file), then
 * the default:
 *   endpoint      DRE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; default https://s3.REGION.amazonaws.com.
 *                 http:// only when the endpoint says so; certificates are always verified over https.
 *   region        AWS_REGION, AWS_DEFAULT_REGION; default us-east-1
 *   CA bundle     DRE_S3_CA_FILE, AWS_CA_BUNDLE
 *   storage class DRE_S3_STORAGE_CLASS      (x-amz-storage-class on every new object)
 *   SSE           DRE_S3_SSE, DRE_S3_SSE_KMS_KEY_ID
 *   credentials   AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); else the profile
 *                 AWS_PROFILE (default "default") of AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).
 *                 Never printed.
 * Tuning, environment only:
 *   DRE_S3_MULTIPART_THRESHOLD  objects larger than this go up in parts (default 64 MiB; minimum 5 MiB)
 *   DRE_S3_PART_SIZE            the size of those parts (default 16 MiB; minimum 5 MiB, S3's own floor)
 *   DRE_S3_RETRIES              attempts per request after the first (default 10: 13 to 26 s of backoff in all)
 *   DRE_S3_CONNECTIONS          requests worth having in flight (default 4): a restore keeps that many reads
 *                               going, a push that many pack uploads (engine/pipeline/upload.h)
 *   DRE_S3_TRACE=1              one line per request on standard error (method, key, status, time, attempt)
 *
 * Retries: a failed connection, a timeout, a short body, HTTP 408, 429, 500, 502, 503 and 504, and a 400 that
 * says the body arrived damaged (XAmzContentSHA256Mismatch, BadDigest, IncompleteBody) or late (RequestTimeout)
 * are retried with capped exponential backoff and jitter in [cap/2, cap]; any other 4xx fails at once with the
 * bucket, key, status and the server's error code and message. A certificate that does not verify is not
 * retried either. A put is atomic on S3 (an object appears whole or not at all), so a
 * retried or abandoned put never leaves half an object; a multipart upload that fails is aborted.
 *
 * Create-once puts send If-None-Match: *, so of two writers exactly one wins (412 → DRE_EEXIST). A server that
 * answers 501 NotImplemented to it (OpenStack Swift) gets a HEAD-then-PUT instead, which leaves a window in
 * which two writers can both succeed; dre's create-once names are random or content-derived, so that window
 * only matters for a deliberately concurrent init.
 *
 * Connections are kept alive in a pool of curl handles shared by the threads that call the driver; each
 * call is one request in flight, so the number in flight is bounded by the engine's threads, which size
 * themselves by base.in_flight (DRE_S3_CONNECTIONS).
 */
#include "store/store.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "store/err.h"
#include "store/sigv4.h"
#include "store/xml.h"

#define S3_POOL_MAX 32                     /* idle connections kept */
#define S3_MIN_PART ((uint64_t)5 << 20)    /* S3 refuses smaller parts (but the last) */
#define S3_MAX_PARTS 10000
#define S3_MAX_RESPONSE ((size_t)16 << 20) /* XML bodies: a listing page is ~250 KB */
#define S3_BACKOFF_BASE_MS 100
#define S3_BACKOFF_CAP_MS 5000

struct s3 {
	store base; /* first, so a store * is a struct s3 * */
	char *bucket, *prefix; /* prefix without a trailing "/"; "" for the bucket's root */
	char *endpoint;        /* scheme://host[:port], no trailing "/" */
	char *host;            /* the Host header: host[:port], with "bucket." in front when virtual-hosted */
	bool path_style;
	char *region, *access_key, *secret_key, *session_token;
	char *ca_file, *storage_class, *sse, *sse_kms_key_id;
	uint64_t multipart_threshold, part_size;
	int retries;
	bool trace;
	atomic_bool if_none_match_unsupported;
	atomic_bool bucket_known; /* the bucket answered once: a 404 on a HEAD is about the key */
	pthread_mutex_t lock;
	CURL *idle[S3_POOL_MAX];
	size_t nidle;
};

static struct s3 *s3_of(store *st)
{
	return (struct s3 *)st;
}

/* ---- one request ---- */

typedef struct s3_call {
	const char *method;
	const char *object; /* the full object name (prefix included); NULL for the bucket itself */
	sigv4_kv query[SIGV4_MAX_QUERY];
	size_t nquery;
	sigv4_kv hdr[6]; /* extra headers, all signed */
	size_t nhdr;
	const uint8_t *body;
	size_t body_len;
	const char *body_sha; /* hex SHA-256 of body, computed once for every attempt */
	uint8_t *dst;         /* a GET into caller memory: exactly dst_len bytes are wanted */
	size_t dst_len;

	/* filled by each attempt */
	long status;
	size_t got;        /* bytes written to dst */
	bool overflow;     /* the server sent more than dst_len, or an XML body over S3_MAX_RESPONSE */
	char *resp;        /* any other response body (error documents, listings), NUL-terminated */
	size_t resp_len, resp_cap;
	size_t sent;       /* upload read position */
	uint64_t content_length;
	bool have_length;
	uint64_t range_total; /* the object's size from Content-Range ("bytes a-b/total"); 0 when not given */
	char etag[128];
	char code[64], message[256]; /* from an error document */
	char curl_err[CURL_ERROR_SIZE];
	CURLcode cc;
} s3_call;

static CURL *handle_get(struct s3 *s)
{
	CURL *h = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->nidle > 0)
		h = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->lock);
	if (h == NULL)
		h = curl_easy_init();
	else
		curl_easy_reset(h); /* keeps the live connection */
	return h;
}

static void handle_put(struct s3 *s, CURL *h)
{
	pthread_mutex_lock(&s->lock);
	if (s->nidle < S3_POOL_MAX) {
		s->idle[s->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (h != NULL)
		curl_easy_cleanup(h);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	s3_call *c = arg;
	size_t len = size * n;
	bool ok_status = c->status >= 200 && c->status < 300;
	if (c->dst != NULL && ok_status) {
		if (len > c->dst_len - c->got) {
			c->overflow = true;
			return 0;
		}
		memcpy(c->dst + c->got, p, len);
		c->got += len;
		return len;
	}
	if (c->resp_len + len + 1 > c->resp_cap) {
		size_t cap = c->resp_cap ? c->resp_cap : 4096;
		while (cap < c->resp_len + len + 1)
			cap *= 2;
		char *q = cap <= S3_MAX_RESPONSE ? realloc(c->resp, cap) : NULL;
		if (q == NULL) {
			c->overflow = true;
			return 0;
		}
		c->resp = q;
		c->resp_cap = cap;
	}
	memcpy(c->resp + c->resp_len, p, len);
	c->resp_len += len;
	c->resp[c->resp_len] = '\0';
	return len;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	s3_call *c = arg;
	size_t len = size * n;
	const char *v;
	size_t vlen;
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new status line (after a 100 Continue, say) */
		const char *sp = memchr(line, ' ', len);
		c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		c->have_length = false;
		c->range_total = 0;
		c->etag[0] = '\0';
	} else if (header_is(line, len, "content-range", &v, &vlen)) {
		const char *slash = memchr(v, '/', vlen);
		if (slash != NULL && slash + 1 < v + vlen && slash[1] != '*')
			c->range_total = strtoull(slash + 1, NULL, 10);
	} else if (header_is(line, len, "content-length", &v, &vlen)) {
		char num[32];
		if (vlen < sizeof num) {
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			c->content_length = strtoull(num, NULL, 10);
			c->have_length = true;
		}
	} else if (header_is(line, len, "etag", &v, &vlen) && vlen < sizeof c->etag) {
		memcpy(c->etag, v, vlen);
		c->etag[vlen] = '\0';
	}
	return len;
}

static size_t on_upload(char *p, size_t size, size_t n, void *arg)
{
	s3_call *c = arg;
	size_t room = size * n, left = c->body_len - c->sent;
	size_t k = left < room ? left : room;
	memcpy(p, c->body + c->sent, k);
	c->sent += k;
	return k;
}

/* Rewinding lets libcurl resend a body itself (after a redirect or an auth retry of its own). */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	s3_call *c = arg;
	if (origin != SEEK_SET || off < 0 || (size_t)off > c->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	c->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* An element's text into a fixed field; false (and the field empty) when it does not fit. */
static bool text_to(char *dst, size_t cap, const char *text, size_t len)
{
	bool fits = len < cap;
	snprintf(dst, cap, "%.*s", fits ? (int)len : 0, text);
	return fits;
}

static bool text_true(const char *text, size_t len)
{
	return len == 4 && memcmp(text, "true", 4) == 0;
}

/* A listed object name, less the repository's prefix, into key. */
static bool key_to(char *key, size_t cap, size_t strip, const char *text, size_t len)
{
	return len > strip && text_to(key, cap, text + strip, len - strip);
}

static int error_elem(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	s3_call *c = arg;
	if (depth == 2 && strcmp(path[0], "Error") == 0) {
		if (strcmp(path[1], "Code") == 0)
			text_to(c->code, sizeof c->code, text, len);
		else if (strcmp(path[1], "Message") == 0)
			text_to(c->message, sizeof c->message, text, len > sizeof c->message - 1 ? sizeof c->message - 1 : len);
	}
	return 0;
}

/* The object's path as signed: "/bucket/object" path-style, "/object" virtual-hosted. */
static int request_path(const struct s3 *s, const char *object, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s%s%s", s->path_style ? "/" : "", s->path_style ? s->bucket : "",
			 object ? "/" : "", object ? object : "");
	if (n <= 0)
		n = snprintf(out, cap, "/");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* One attempt: sign, send, collect. Returns 0 when an HTTP response arrived (c->status says which), or -1
 * with c->cc set for a transfer failure. */
static int call_once(struct s3 *s, s3_call *c)
{
	char path[1400], date[17], url[4096];
	time_t now = time(NULL);
	sigv4_amz_date((long long)now, date);
	if (request_path(s, c->object, path, sizeof path) < 0) {
		c->cc = CURLE_URL_MALFORMAT;
		snprintf(c->curl_err, sizeof c->curl_err, "object name too long");
		return -1;
	}

	sigv4_request rq = {.method = c->method, .path = path, .payload_hash = c->body_sha, .amz_date = date,
			    .region = s->region, .service = "s3"};
	memcpy(rq.query, c->query, c->nquery * sizeof c->query[0]);
	rq.nquery = c->nquery;
	rq.headers[rq.nheaders++] = (sigv4_kv){"host", s->host};
	rq.headers[rq.nheaders++] = (sigv4_kv){"x-amz-date", date};
	rq.headers[rq.nheaders++] = (sigv4_kv){"x-amz-content-sha256", c->body_sha};
	if (s->session_token)
		rq.headers[rq.nheaders++] = (sigv4_kv){"x-amz-security-token", s->session_token};
	for (size_t i = 0; i < c->nhdr; i++)
		rq.headers[rq.nheaders++] = c->hdr[i];
	sigv4_result sig;
	if (sigv4_sign(&rq, s->access_key, s->secret_key, &sig) < 0) {
		c->cc = CURLE_URL_MALFORMAT;
		snprintf(c->curl_err, sizeof c->curl_err, "request does not fit the signer's limits");
		return -1;
	}
	snprintf(url, sizeof url, "%s%s%s%s", s->endpoint, sig.encoded_path, sig.query[0] ? "?" : "", sig.query);

	struct curl_slist *hl = NULL, *t;
	char line[1200];
	bool oom = false;
	for (size_t i = 0; i < rq.nheaders && !oom; i++) {
		snprintf(line, sizeof line, "%s: %s", rq.headers[i].name, rq.headers[i].value);
		oom = (t = curl_slist_append(hl, line)) == NULL;
		hl = oom ? hl : t;
	}
	snprintf(line, sizeof line, "Authorization: %s", sig.authorization);
	const char *extra[] = {line, "Expect:", "Accept:", c->body && strcmp(c->method, "POST") == 0 ? NULL : "Content-Type:"};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0] && !oom; i++) {
		if (extra[i] == NULL)
			continue;
		oom = (t = curl_slist_append(hl, extra[i])) == NULL;
		hl = oom ? hl : t;
	}
	CURL *h = oom ? NULL : handle_get(s);
	if (h == NULL) {
		curl_slist_free_all(hl);
		c->cc = CURLE_OUT_OF_MEMORY;
		snprintf(c->curl_err, sizeof c->curl_err, "out of memory");
		return -1;
	}

	c->status = 0;
	c->got = c->sent = c->resp_len = 0;
	c->overflow = c->have_length = false;
	c->range_total = 0;
	c->etag[0] = c->code[0] = c->message[0] = c->curl_err[0] = '\0';
	if (c->resp)
		c->resp[0] = '\0';

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* a stalled transfer: under 1 KB/s for 30 s */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (s->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	if (strcmp(c->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(c->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(h, CURLOPT_READDATA, c);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, c);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
	} else if (strcmp(c->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? (const char *)c->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
	} else if (strcmp(c->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	}

	c->cc = curl_easy_perform(h);
	if (c->cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	if (c->cc != CURLE_OK && c->cc != CURLE_WRITE_ERROR) {
		curl_easy_cleanup(h); /* its connection is in an unknown state */
	} else {
		handle_put(s, h);
	}
	if (c->cc == CURLE_WRITE_ERROR && c->overflow)
		return 0; /* a response arrived; the caller sees overflow */
	if (c->cc != CURLE_OK) {
		if (!c->curl_err[0])
			snprintf(c->curl_err, sizeof c->curl_err, "%s", curl_easy_strerror(c->cc));
		return -1;
	}
	if (c->status >= 300 && c->resp_len > 0)
		xml_parse(c->resp, c->resp_len, "error document", error_elem, c); /* best effort: keep the status */
	return 0;
}

static bool status_retryable(const s3_call *c)
{
	switch (c->status) {
	case 408: case 429: case 500: case 502: case 503: case 504:
		return true;
	case 400: /* a body damaged or cut short on the way (the hash we sent no longer matches), or idle too long */
		return strcmp(c->code, "XAmzContentSHA256Mismatch") == 0 || strcmp(c->code, "BadDigest") == 0 ||
		       strcmp(c->code, "IncompleteBody") == 0 || strcmp(c->code, "RequestTimeout") == 0;
	case 409: /* AWS: a concurrent conditional write or a racing multipart operation */
		return strcmp(c->code, "ConditionalRequestConflict") == 0 || strcmp(c->code, "OperationAborted") == 0;
	default:
		return false;
	}
}

/* A range answer that says the object itself ends before the range does: the object is short, not the
 * transfer. */
static bool object_too_short(const s3_call *c)
{
	return c->status == 206 && c->range_total > 0 && c->got < c->dst_len && c->got == c->content_length;
}

/* A body shorter than asked (a GET that lost its connection in a way curl did not notice, or a server that
 * answered a range with less): a transport failure to retry, never bytes to hand to the decryptor. */
static bool short_body(const s3_call *c)
{
	return c->dst != NULL && c->status >= 200 && c->status < 300 && !c->overflow && c->got != c->dst_len &&
	       !object_too_short(c);
}

/* Transfer failures that another attempt cannot mend: the server's certificate, the URL, our own memory. */
static bool transfer_permanent(CURLcode cc)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT: case CURLE_OUT_OF_MEMORY:
		return true;
	default:
		return false;
	}
}

static long backoff_ms(int attempt)
{
	long cap = S3_BACKOFF_BASE_MS;
	for (int i = 0; i < attempt && cap < S3_BACKOFF_CAP_MS; i++)
		cap *= 2;
	if (cap > S3_BACKOFF_CAP_MS)
		cap = S3_BACKOFF_CAP_MS;
	unsigned r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (unsigned)clock();
	return cap / 2 + (long)(r % (unsigned)(cap / 2 + 1)); /* jitter in [cap/2, cap] */
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void trace(const struct s3 *s, const s3_call *c, int attempt, double t0, int rc)
{
	if (!s->trace)
		return;
	char q[160] = "";
	for (size_t i = 0, n = 0; i < c->nquery && n < sizeof q; i++)
		n += (size_t)snprintf(q + n, sizeof q - n, "%s%s", i ? "&" : "?", c->query[i].name);
	if (rc < 0)
		fprintf(stderr, "dre: s3: %s %s%s -> %s (%.0f ms, attempt %d)\n", c->method, c->object ? c->object : "/",
			q, c->curl_err, (now_s() - t0) * 1e3, attempt + 1);
	else
		fprintf(stderr, "dre: s3: %s %s%s -> %ld%s%s (%.0f ms, attempt %d)\n", c->method,
			c->object ? c->object : "/", q, c->status, c->code[0] ? " " : "", c->code, (now_s() - t0) * 1e3,
			attempt + 1);
}

/* Runs a call with retries. Returns 0 when a final HTTP response arrived (c->status may still be an error
 * for the caller to map), or DRE_EIO when every attempt failed in transport or with a retryable status. */
static int call(struct s3 *s, s3_call *c)
{
	char sha[SIGV4_HEX_LEN + 1];
	if (c->body_sha == NULL) {
		sigv4_sha256_hex(c->body ? (const void *)c->body : "", c->body_len, sha);
		c->body_sha = sha;
	}
	double start = now_s();
	for (int attempt = 0;; attempt++) {
		double t0 = now_s();
		int rc = call_once(s, c);
		trace(s, c, attempt, t0, rc);
		if (rc < 0 && transfer_permanent(c->cc)) {
			bool tls = c->cc != CURLE_UNSUPPORTED_PROTOCOL && c->cc != CURLE_URL_MALFORMAT &&
				   c->cc != CURLE_OUT_OF_MEMORY;
			bool name = tls && strstr(c->curl_err, "name") != NULL; /* trusted, but issued for another host */
			return err_set(c->cc == CURLE_OUT_OF_MEMORY ? DRE_ENOMEM : DRE_EIO, "s3 %s %s/%s%s%s: %s%s",
				       c->method, s->endpoint, s->bucket, c->object ? "/" : "", c->object ? c->object : "",
				       c->curl_err,
				       name  ? " HINT: the server's certificate is for another host name: name the host in "
					       "--s3-endpoint as the certificate does"
				       : tls ? " HINT: --s3-ca-file (or DRE_S3_CA_FILE) names the CA that signed the server's "
					       "certificate"
					     : "");
		}
		bool retry = rc < 0 || status_retryable(c) || short_body(c);
		if (!retry)
			return 0;
		if (attempt >= s->retries) {
			const char *why = rc < 0 ? c->curl_err : c->code[0] ? c->code : "";
			char detail[300];
			if (rc < 0)
				snprintf(detail, sizeof detail, "%s", why);
			else if (short_body(c))
				snprintf(detail, sizeof detail, "HTTP %ld with a short body: %zu of %zu bytes", c->status,
					 c->got, c->dst_len);
			else
				snprintf(detail, sizeof detail, "HTTP %ld%s%s", c->status, *why ? " " : "", why);
			return err_set(DRE_EIO, "s3 %s s3://%s/%s: gave up after %d attempts in %.1f s: %s", c->method,
				       s->bucket, c->object ? c->object : "", attempt + 1, now_s() - start, detail);
		}
		struct timespec ts = {0, 0};
		long ms = backoff_ms(attempt);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static void call_free(s3_call *c)
{
	free(c->resp);
	c->resp = NULL;
	c->resp_cap = c->resp_len = 0;
}

/* Maps a final non-2xx response to an error naming the bucket, the key, the status and the server's code. */
static int call_error(const struct s3 *s, const s3_call *c)
{
	const char *code = c->code[0] ? c->code : NULL;
	char where[1200];
	snprintf(where, sizeof where, "s3://%s%s%s", s->bucket, c->object ? "/" : "", c->object ? c->object : "");
	char server[400] = "";
	if (code)
		snprintf(server, sizeof server, " %s%s%s", code, c->message[0] ? ": " : "", c->message);
	int err = DRE_EIO;
	const char *hint = "";
	switch (c->status) {
	case 404:
		err = DRE_ENOTFOUND;
		if (code && strcmp(code, "NoSuchBucket") == 0)
			hint = " HINT: create the bucket, or let 'dre init' create it";
		break;
	case 403:
		err = DRE_EPERM;
		if (code && strcmp(code, "SignatureDoesNotMatch") == 0)
			hint = " HINT: check AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)";
		else if (code && strcmp(code, "InvalidAccessKeyId") == 0 && s->sse_kms_key_id &&
			 strstr(c->message, "kms") != NULL) /* Ceph's answer to an SSE-KMS key it cannot find */
			hint = " HINT: check --s3-sse-kms-key-id (DRE_S3_SSE_KMS_KEY_ID)";
		else if (code && strcmp(code, "InvalidAccessKeyId") == 0)
			hint = " HINT: check AWS_ACCESS_KEY_ID (or the profile's aws_access_key_id)";
		else if (code && strcmp(code, "RequestTimeTooSkewed") == 0)
			hint = " HINT: this machine's clock is off";
		break;
	case 412: err = DRE_EEXIST; break;
	case 416: err = DRE_ECORRUPT; break;
	}
	if (c->overflow)
		return err_set(DRE_EIO, "s3 %s %s: the server sent more than was asked for", c->method, where);
	return err_set(err, "s3 %s %s: HTTP %ld%s%s", c->method, where, c->status, server, hint);
}

static bool ok2xx(const s3_call *c)
{
	return c->status >= 200 && c->status < 300 && !c->overflow;
}

/* call(), with any final answer but a 2xx turned into call_error()'s error. */
static int call_ok(struct s3 *s, s3_call *c)
{
	int rc = call(s, c);
	return rc == 0 && !ok2xx(c) ? call_error(s, c) : rc;
}

/* ---- names ---- */

static int object_name(const struct s3 *s, const char *key, char *out, size_t cap)
{
	TRY(store_key_check(key, false));
	int n = snprintf(out, cap, "%s%s%s", s->prefix, *s->prefix ? "/" : "", key);
	if (n < 0 || (size_t)n >= cap)
		return err_set(DRE_EINVAL, "invalid object key \"%s\": too long", key);
	return 0;
}

/* A HEAD answers 404 without a body, so "no such key" and "no such bucket" look alike: ask about the bucket
 * once, so that a repository in a missing bucket says so instead of "not initialized". */
static int not_found(struct s3 *s, const char *key)
{
	if (!atomic_load(&s->bucket_known)) {
		s3_call b = {.method = "HEAD"};
		int rc = call(s, &b);
		call_free(&b);
		if (rc == 0 && b.status == 404)
			return err_set(DRE_ENOTFOUND, "s3 bucket %s does not exist at %s (NoSuchBucket)", s->bucket,
				       s->endpoint);
		if (rc == 0 && ok2xx(&b))
			atomic_store(&s->bucket_known, true);
	}
	return err_set(DRE_ENOTFOUND, "object %s not found in s3://%s%s%s", key, s->bucket, *s->prefix ? "/" : "",
		       s->prefix);
}

/* ---- put ---- */

static void add_put_headers(const struct s3 *s, s3_call *c)
{
	if (s->storage_class)
		c->hdr[c->nhdr++] = (sigv4_kv){"x-amz-storage-class", s->storage_class};
	if (s->sse)
		c->hdr[c->nhdr++] = (sigv4_kv){"x-amz-server-side-encryption", s->sse};
	if (s->sse_kms_key_id)
		c->hdr[c->nhdr++] = (sigv4_kv){"x-amz-server-side-encryption-aws-kms-key-id", s->sse_kms_key_id};
}

/* Whether the object under name holds exactly buf (a create-once put whose first attempt landed but whose
 * answer was lost, so the retry met its own object). */
static bool same_content(struct s3 *s, const char *name, const void *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return false;
	s3_call c = {.method = "GET", .object = name, .dst = copy, .dst_len = len};
	char range[64];
	if (len > 0) {
		snprintf(range, sizeof range, "bytes=0-%zu", len - 1);
		c.hdr[c.nhdr++] = (sigv4_kv){"range", range};
	}
	/* the whole object, not a prefix of a longer one: a 206 says its size in Content-Range */
	bool same = call(s, &c) == 0 && ok2xx(&c) && c.got == len &&
		    (c.status == 206 ? c.range_total == len : c.have_length && c.content_length == len) &&
		    memcmp(copy, buf, len) == 0;
	call_free(&c);
	free(copy);
	return same;
}

static int put_single(struct s3 *s, const char *key, const char *name, const void *buf, size_t len, bool once)
{
	bool conditional = once && !atomic_load(&s->if_none_match_unsupported);
	if (once && !conditional) {
		/* the documented fallback: look first (racy, see the top of this file) */
		s3_call h = {.method = "HEAD", .object = name};
		int rc = call(s, &h);
		call_free(&h);
		TRY(rc);
		if (ok2xx(&h))
			return err_set(DRE_EEXIST, "object %s already exists in s3://%s", key, s->bucket);
		if (h.status != 404)
			return call_error(s, &h);
	}
	s3_call c = {.method = "PUT", .object = name, .body = buf, .body_len = len};
	add_put_headers(s, &c);
	if (conditional)
		c.hdr[c.nhdr++] = (sigv4_kv){"if-none-match", "*"};
	int rc = call(s, &c);
	if (rc == 0 && conditional && (c.status == 501 || strcmp(c.code, "NotImplemented") == 0)) {
		call_free(&c);
		atomic_store(&s->if_none_match_unsupported, true);
		return put_single(s, key, name, buf, len, once);
	}
	if (rc == 0 && c.status == 412) {
		call_free(&c);
		if (same_content(s, name, buf, len))
			return 0;
		return err_set(DRE_EEXIST, "object %s already exists in s3://%s (412 PreconditionFailed)", key,
			       s->bucket);
	}
	if (rc == 0 && !ok2xx(&c))
		rc = call_error(s, &c);
	call_free(&c);
	return rc;
}

typedef struct upload_state {
	char upload_id[512];
} upload_state;

static int initiate_elem(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	upload_state *u = arg;
	static const char *const id[] = {"InitiateMultipartUploadResult", "UploadId", NULL};
	if (xml_path_is(path, depth, id))
		text_to(u->upload_id, sizeof u->upload_id, text, len);
	return 0;
}

static int complete_elem(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	s3_call *c = arg;
	(void)text;
	(void)len;
	if (depth == 1 && strcmp(path[0], "Error") == 0 && !c->code[0])
		snprintf(c->code, sizeof c->code, "InternalError");
	return error_elem(arg, path, depth, text, len);
}

static void abort_upload(struct s3 *s, const char *name, const char *upload_id)
{
	s3_call c = {.method = "DELETE", .object = name};
	c.query[c.nquery++] = (sigv4_kv){"uploadId", upload_id};
	char saved[1024];
	snprintf(saved, sizeof saved, "%s", err_msg()); /* the failure that made us abort is the one to report */
	call(s, &c);
	call_free(&c);
	err_set(0, "%s", saved);
}

static int put_multipart(struct s3 *s, const char *key, const char *name, const uint8_t *buf, size_t len)
{
	uint64_t part = s->part_size;
	while ((len + part - 1) / part > S3_MAX_PARTS)
		part *= 2;
	size_t nparts = (size_t)((len + part - 1) / part);

	s3_call c = {.method = "POST", .object = name};
	c.query[c.nquery++] = (sigv4_kv){"uploads", ""};
	add_put_headers(s, &c);
	upload_state u = {{0}};
	int rc = call_ok(s, &c);
	if (rc == 0 && (xml_parse(c.resp ? c.resp : "", c.resp_len, "multipart initiation", initiate_elem, &u) < 0 ||
			!u.upload_id[0]))
		rc = err_set(DRE_EIO, "s3 POST s3://%s/%s?uploads: no UploadId in the answer", s->bucket, name);
	call_free(&c);
	TRY(rc);

	/* <Part><PartNumber>N</PartNumber><ETag>"…"</ETag></Part> per part, ETags are ≤ 66 bytes */
	size_t cap = 64 + nparts * 200;
	char *doc = malloc(cap);
	if (doc == NULL) {
		err_set(DRE_ENOMEM, "s3 multipart upload of %s: out of memory", key);
		abort_upload(s, name, u.upload_id);
		return DRE_ENOMEM;
	}
	size_t dl = (size_t)snprintf(doc, cap, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < nparts && rc == 0; i++) {
		char num[16];
		snprintf(num, sizeof num, "%zu", i + 1);
		size_t off = (size_t)(i * part), n = len - off < part ? len - off : (size_t)part;
		s3_call p = {.method = "PUT", .object = name, .body = buf + off, .body_len = n};
		p.query[p.nquery++] = (sigv4_kv){"partNumber", num};
		p.query[p.nquery++] = (sigv4_kv){"uploadId", u.upload_id};
		rc = call_ok(s, &p);
		if (rc == 0 && !p.etag[0])
			rc = err_set(DRE_EIO, "s3 PUT s3://%s/%s part %zu: no ETag in the answer", s->bucket, name, i + 1);
		if (rc == 0)
			dl += (size_t)snprintf(doc + dl, cap - dl, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>",
					       i + 1, p.etag);
		call_free(&p);
	}
	if (rc == 0) {
		dl += (size_t)snprintf(doc + dl, cap - dl, "</CompleteMultipartUpload>");
		s3_call f = {.method = "POST", .object = name, .body = (const uint8_t *)doc, .body_len = dl};
		f.query[f.nquery++] = (sigv4_kv){"uploadId", u.upload_id};
		f.hdr[f.nhdr++] = (sigv4_kv){"content-type", "application/xml"};
		rc = call(s, &f);
		/* a 200 can still carry an <Error> document: the failure came after the headers were sent */
		if (rc == 0 && ok2xx(&f) && f.resp_len > 0)
			xml_parse(f.resp, f.resp_len, "multipart completion", complete_elem, &f);
		if (rc == 0 && (!ok2xx(&f) || f.code[0])) {
			/* a retried completion whose first try landed finds its upload gone: the object is there */
			uint64_t size = 0;
			bool landed = f.status == 404 && strcmp(f.code, "NoSuchUpload") == 0 &&
				      s->base.drv->stat(&s->base, key, &size) == 0 && size == len;
			rc = landed ? 0 : call_error(s, &f);
		}
		call_free(&f);
	}
	free(doc);
	if (rc < 0)
		abort_upload(s, name, u.upload_id);
	return rc;
}

static int s3_put(store *st, const char *key, const void *buf, size_t len, unsigned flags)
{
	struct s3 *s = s3_of(st);
	char name[1100];
	TRY(object_name(s, key, name, sizeof name));
	bool once = flags & STORE_PUT_CREATE_ONCE;
	/* create-once objects are small (config, keys, snapshots) and need the single conditional PUT */
	if (!once && len > s->multipart_threshold)
		return err_ctx(put_multipart(s, key, name, buf, len), "storing %s", key);
	return put_single(s, key, name, buf, len, once);
}

/* ---- get, stat, del ---- */

static int s3_get(store *st, const char *key, uint64_t off, size_t len, void *buf)
{
	struct s3 *s = s3_of(st);
	char name[1100], range[64];
	TRY(object_name(s, key, name, sizeof name));
	if (len == 0) { /* an empty range cannot be asked for: the object must merely reach that far */
		uint64_t size;
		TRY(st->drv->stat(st, key, &size));
		if (size < off)
			return err_set(DRE_ECORRUPT, "object %s is truncated: wanted bytes %llu..%llu, it has %llu", key,
				       (unsigned long long)off, (unsigned long long)off, (unsigned long long)size);
		return 0;
	}
	s3_call c = {.method = "GET", .object = name, .dst = buf, .dst_len = len};
	snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off, (unsigned long long)(off + len - 1));
	c.hdr[c.nhdr++] = (sigv4_kv){"range", range};
	int rc = call(s, &c);
	if (rc == 0 && c.status == 404 && strcmp(c.code, "NoSuchBucket") != 0)
		rc = err_set(DRE_ENOTFOUND, "object %s not found in s3://%s%s%s", key, s->bucket, *s->prefix ? "/" : "",
			     s->prefix);
	else if (rc == 0 && (c.status == 416 || object_too_short(&c)))
		rc = err_set(DRE_ECORRUPT, "object %s is truncated: wanted bytes %llu..%llu, it has %llu", key,
			     (unsigned long long)off, (unsigned long long)(off + len), (unsigned long long)c.range_total);
	else if (rc == 0 && c.status == 200 && off > 0)
		rc = err_set(DRE_EIO, "s3 GET s3://%s/%s: the server ignored the Range header", s->bucket, name);
	else if (rc == 0 && !ok2xx(&c))
		rc = call_error(s, &c);
	if (rc == 0)
		atomic_store(&s->bucket_known, true);
	call_free(&c);
	return rc;
}

static int s3_stat(store *st, const char *key, uint64_t *size)
{
	struct s3 *s = s3_of(st);
	char name[1100];
	TRY(object_name(s, key, name, sizeof name));
	s3_call c = {.method = "HEAD", .object = name};
	int rc = call(s, &c);
	call_free(&c);
	TRY(rc);
	if (c.status == 404)
		return not_found(s, key);
	if (!ok2xx(&c)) {
		/* a HEAD's answer has no body to say why: a one-byte GET of the same object gets the error document */
		uint8_t one;
		s3_call g = {.method = "GET", .object = name, .dst = &one, .dst_len = 1};
		g.hdr[g.nhdr++] = (sigv4_kv){"range", "bytes=0-0"};
		if (call(s, &g) == 0 && g.status == c.status && g.code[0]) {
			int err = call_error(s, &g);
			call_free(&g);
			return err;
		}
		call_free(&g);
		return call_error(s, &c);
	}
	if (!c.have_length)
		return err_set(DRE_EIO, "s3 HEAD s3://%s/%s: no Content-Length in the answer", s->bucket, name);
	atomic_store(&s->bucket_known, true);
	*size = c.content_length;
	return 0;
}

static int s3_del(store *st, const char *key)
{
	struct s3 *s = s3_of(st);
	char name[1100];
	TRY(object_name(s, key, name, sizeof name));
	s3_call c = {.method = "DELETE", .object = name};
	int rc = call(s, &c);
	if (rc == 0 && !ok2xx(&c) && c.status != 404)
		rc = call_error(s, &c);
	call_free(&c);
	return rc;
}

/* ---- list ---- */

typedef struct list_page {
	size_t strip;            /* bytes of "PREFIX/" in front of every key */
	store_list_fn fn;
	void *arg;
	char key[1100];
	uint64_t size;
	bool have_key;
	bool truncated;
	char token[1024];
} list_page;

static int list_elem(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	list_page *lp = arg;
	if (depth < 2 || strcmp(path[0], "ListBucketResult") != 0)
		return 0;
	if (depth == 2) {
		if (strcmp(path[1], "IsTruncated") == 0)
			lp->truncated = text_true(text, len);
		else if (strcmp(path[1], "NextContinuationToken") == 0)
			text_to(lp->token, sizeof lp->token, text, len);
		else if (strcmp(path[1], "Contents") == 0 && lp->have_key) {
			lp->have_key = false;
			if (store_key_check(lp->key, false) < 0)
				return 0; /* not an object of dre's: foreign files in a shared bucket are skipped */
			return lp->fn(lp->arg, lp->key, lp->size);
		}
		return 0;
	}
	if (depth == 3 && strcmp(path[1], "Contents") == 0) {
		char num[32];
		if (strcmp(path[2], "Key") == 0)
			lp->have_key = key_to(lp->key, sizeof lp->key, lp->strip, text, len);
		else if (strcmp(path[2], "Size") == 0)
			lp->size = text_to(num, sizeof num, text, len) ? strtoull(num, NULL, 10) : UINT64_MAX;
	}
	return 0;
}

static int s3_list(store *st, const char *prefix, store_list_fn fn, void *arg)
{
	struct s3 *s = s3_of(st);
	TRY(store_key_check(prefix, true));
	char full[1100];
	int n = snprintf(full, sizeof full, "%s%s%s", s->prefix, *s->prefix ? "/" : "", prefix);
	if (n < 0 || (size_t)n >= sizeof full)
		return err_set(DRE_EINVAL, "invalid object prefix \"%s\": too long", prefix);
	list_page lp = {.strip = *s->prefix ? strlen(s->prefix) + 1 : 0, .fn = fn, .arg = arg};
	char token[1024] = "";
	for (;;) {
		s3_call c = {.method = "GET"};
		c.query[c.nquery++] = (sigv4_kv){"list-type", "2"};
		c.query[c.nquery++] = (sigv4_kv){"prefix", full};
		if (token[0])
			c.query[c.nquery++] = (sigv4_kv){"continuation-token", token};
		int rc = call_ok(s, &c);
		if (rc == 0) {
			lp.truncated = false;
			lp.token[0] = '\0';
			rc = xml_parse(c.resp ? c.resp : "", c.resp_len, "bucket listing", list_elem, &lp);
		}
		call_free(&c);
		if (rc < 0)
			return rc;
		atomic_store(&s->bucket_known, true);
		if (!lp.truncated)
			return 0;
		if (!lp.token[0] || strcmp(lp.token, token) == 0)
			return err_set(DRE_EIO, "s3 listing of s3://%s/%s: truncated without a new continuation token",
				       s->bucket, full);
		snprintf(token, sizeof token, "%s", lp.token);
	}
}

/* ---- unfinished multipart uploads ---- */

typedef struct upload_page {
	size_t strip;
	store_upload_fn fn;
	void *arg;
	char key[1100], initiated[64], upload_id[512];
	bool have_key, truncated;
	char next_key[1100], next_id[512];
} upload_page;

static int upload_elem(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	upload_page *up = arg;
	if (depth < 2 || strcmp(path[0], "ListMultipartUploadsResult") != 0)
		return 0;
	if (depth == 2) {
		if (strcmp(path[1], "IsTruncated") == 0)
			up->truncated = text_true(text, len);
		else if (strcmp(path[1], "NextKeyMarker") == 0)
			text_to(up->next_key, sizeof up->next_key, text, len);
		else if (strcmp(path[1], "NextUploadIdMarker") == 0)
			text_to(up->next_id, sizeof up->next_id, text, len);
		else if (strcmp(path[1], "Upload") == 0 && up->have_key) {
			up->have_key = false;
			if (store_key_check(up->key, false) == 0)
				return up->fn(up->arg, up->key, up->upload_id, up->initiated);
		}
		return 0;
	}
	if (depth == 3 && strcmp(path[1], "Upload") == 0) {
		if (strcmp(path[2], "Key") == 0)
			up->have_key = key_to(up->key, sizeof up->key, up->strip, text, len);
		else if (strcmp(path[2], "Initiated") == 0)
			text_to(up->initiated, sizeof up->initiated, text, len);
		else if (strcmp(path[2], "UploadId") == 0)
			text_to(up->upload_id, sizeof up->upload_id, text, len);
	}
	return 0;
}

static int s3_abort_upload(store *st, const char *key, const char *upload_id)
{
	struct s3 *s = s3_of(st);
	char name[1100];
	TRY(object_name(s, key, name, sizeof name));
	s3_call c = {.method = "DELETE", .object = name};
	c.query[c.nquery++] = (sigv4_kv){"uploadId", upload_id};
	int rc = call_ok(s, &c);
	call_free(&c);
	return rc < 0 ? err_ctx(rc, "aborting the multipart upload of %s", key) : 0;
}

static int s3_uploads(store *st, store_upload_fn fn, void *arg)
{
	struct s3 *s = s3_of(st);
	char prefix[1100];
	snprintf(prefix, sizeof prefix, "%s%s", s->prefix, *s->prefix ? "/" : "");
	upload_page up = {.strip = strlen(prefix), .fn = fn, .arg = arg};
	char key_marker[1100] = "", id_marker[512] = "";
	for (;;) {
		s3_call c = {.method = "GET"};
		c.query[c.nquery++] = (sigv4_kv){"uploads", ""};
		c.query[c.nquery++] = (sigv4_kv){"prefix", prefix};
		if (key_marker[0]) {
			c.query[c.nquery++] = (sigv4_kv){"key-marker", key_marker};
			c.query[c.nquery++] = (sigv4_kv){"upload-id-marker", id_marker};
		}
		int rc = call_ok(s, &c);
		if (rc == 0) {
			up.truncated = false;
			up.next_key[0] = up.next_id[0] = '\0';
			rc = xml_parse(c.resp ? c.resp : "", c.resp_len, "multipart upload listing", upload_elem, &up);
		}
		call_free(&c);
		if (rc < 0 || !up.truncated)
			return rc;
		if (!up.next_key[0] || (strcmp(up.next_key, key_marker) == 0 && strcmp(up.next_id, id_marker) == 0))
			return err_set(DRE_EIO, "s3 listing of multipart uploads in s3://%s: truncated without a new marker",
				       s->bucket);
		snprintf(key_marker, sizeof key_marker, "%s", up.next_key);
		snprintf(id_marker, sizeof id_marker, "%s", up.next_id);
	}
}

/* ---- prepare: create the bucket for init ---- */

static int s3_prepare(store *st)
{
	struct s3 *s = s3_of(st);
	s3_call h = {.method = "HEAD"};
	int rc = call(s, &h);
	call_free(&h);
	TRY(rc);
	if (ok2xx(&h))
		return 0;
	if (h.status != 404)
		return call_error(s, &h);
	char doc[256];
	s3_call c = {.method = "PUT"};
	if (strcmp(s->region, "us-east-1") != 0) { /* us-east-1 is the one region that refuses to be named */
		int n = snprintf(doc, sizeof doc,
				 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
				 "</CreateBucketConfiguration>",
				 s->region);
		c.body = (const uint8_t *)doc;
		c.body_len = (size_t)n;
	}
	rc = call(s, &c);
	if (rc == 0 && !ok2xx(&c) && strcmp(c.code, "BucketAlreadyOwnedByYou") != 0)
		rc = err_ctx(call_error(s, &c), "creating bucket %s", s->bucket);
	call_free(&c);
	return rc;
}

/* ---- open, close ---- */

static void s3_free(struct s3 *s)
{
	for (size_t i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	pthread_mutex_destroy(&s->lock);
	if (s->secret_key)
		memset(s->secret_key, 0, strlen(s->secret_key));
	free(s->bucket);
	free(s->prefix);
	free(s->endpoint);
	free(s->host);
	free(s->region);
	free(s->access_key);
	free(s->secret_key);
	free(s->session_token);
	free(s->ca_file);
	free(s->storage_class);
	free(s->sse);
	free(s->sse_kms_key_id);
	free(s->base.url);
	free(s);
}

static void s3_close(store *st)
{
	s3_free(s3_of(st));
}

static const struct store_driver s3_driver = {
	.name = "s3",
	.put = s3_put,
	.get = s3_get,
	.stat = s3_stat,
	.list = s3_list,
	.del = s3_del,
	.prepare = s3_prepare,
	.uploads = s3_uploads,
	.abort_upload = s3_abort_upload,
	.close = s3_close,
};

/* A setting: given (an option) first, then the environment variables a, b, c, then last (a config file). */
static const char *first_env(const char *given, const char *a, const char *b, const char *c, const char *last)
{
	const char *names[] = {a, b, c};
	if (given != NULL && *given)
		return given;
	for (size_t i = 0; i < 3; i++) {
		const char *v = names[i] ? getenv(names[i]) : NULL;
		if (v != NULL && *v)
			return v;
	}
	return last != NULL && *last ? last : NULL;
}

/* The fallback's field, or NULL when there is no fallback. */
#define FALLBACK(o, field) ((o)->fallback ? (o)->fallback->field : NULL)

static int dup_opt(char **dst, const char *v)
{
	if (v == NULL)
		return 0;
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

typedef struct profile_read {
	const char *profile;
	char *key, *secret, *token;
	bool found, oom;
} profile_read;

static int on_ini(void *arg, const char *section, const char *name, const char *value)
{
	profile_read *p = arg;
	if (strcmp(section, p->profile) != 0)
		return 1;
	p->found = true;
	char **dst = strcmp(name, "aws_access_key_id") == 0       ? &p->key
		     : strcmp(name, "aws_secret_access_key") == 0 ? &p->secret
		     : strcmp(name, "aws_session_token") == 0     ? &p->token
								  : NULL;
	if (dst != NULL) {
		free(*dst);
		*dst = strdup(value);
		p->oom |= *dst == NULL;
	}
	return 1;
}

/* The credential chain: options, the environment, the config file's keys; then the shared credentials file's
 * profile (each of the file and the profile chosen the same way). A key and its secret come as a pair. */
static int load_credentials(struct s3 *s, const store_opts *o)
{
	const char *key = o->s3_access_key_id, *secret = o->s3_secret_access_key, *token = o->s3_session_token;
	if (!(key && *key && secret && *secret)) {
		key = getenv("AWS_ACCESS_KEY_ID");
		secret = getenv("AWS_SECRET_ACCESS_KEY");
		token = getenv("AWS_SESSION_TOKEN");
	}
	if (!(key && *key && secret && *secret)) {
		key = FALLBACK(o, s3_access_key_id);
		secret = FALLBACK(o, s3_secret_access_key);
		token = FALLBACK(o, s3_session_token);
	}
	if (key && *key && secret && *secret) {
		if (dup_opt(&s->access_key, key) < 0 || dup_opt(&s->secret_key, secret) < 0 ||
		    dup_opt(&s->session_token, token && *token ? token : NULL) < 0)
			return err_set(DRE_ENOMEM, "out of memory");
		return 0;
	}
	const char *profile = first_env(o->s3_profile, "AWS_PROFILE", NULL, NULL, FALLBACK(o, s3_profile));
	const char *file = first_env(o->s3_credentials_file, "AWS_SHARED_CREDENTIALS_FILE", NULL, NULL,
				     FALLBACK(o, s3_credentials_file));
	const char *home = getenv("HOME");
	char path[4096];
	if (file == NULL || !*file) {
		snprintf(path, sizeof path, "%s/.aws/credentials", home ? home : "");
		file = path;
	}
	profile_read p = {.profile = profile ? profile : "default"};
	int rc = ini_parse(file, on_ini, &p);
	int result = 0;
	if (rc == -1 && profile == NULL) /* no file, and nobody asked for a profile: plainly no credentials */
		result = err_set(DRE_EINVAL,
				 "no S3 credentials for s3://%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
				 "AWS_PROFILE and %s",
				 s->bucket, file);
	else if (rc == -1)
		result = err_set(DRE_EINVAL, "S3 profile %s was asked for, but %s cannot be read: %s", p.profile, file,
				 strerror(errno));
	else if (rc != 0)
		result = err_set(DRE_EINVAL, "S3 credentials file %s: syntax error on line %d", file, rc);
	else if (p.oom)
		result = err_set(DRE_ENOMEM, "out of memory");
	else if (!p.found || !p.key || !p.secret)
		result = err_set(DRE_EINVAL, "S3 credentials file %s: profile [%s] %s", file, p.profile,
				 p.found ? "lacks aws_access_key_id or aws_secret_access_key" : "is not there");
	if (result == 0) {
		s->access_key = p.key;
		s->secret_key = p.secret;
		s->session_token = p.token;
		return 0;
	}
	free(p.key);
	if (p.secret)
		memset(p.secret, 0, strlen(p.secret));
	free(p.secret);
	free(p.token);
	return result;
}

static int parse_size_env(const char *name, uint64_t dflt, uint64_t min, uint64_t *out)
{
	const char *v = getenv(name);
	*out = dflt;
	if (v == NULL || !*v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult = 1;
	if (*end == 'K' || *end == 'k')
		mult = 1u << 10;
	else if (*end == 'M' || *end == 'm')
		mult = 1u << 20;
	else if (*end == 'G' || *end == 'g')
		mult = 1u << 30;
	if (mult > 1)
		end++;
	if (errno || end == v || *end || n > (UINT64_MAX / mult) || n * mult < min)
		return err_set(DRE_EINVAL, "%s=%s: want a size of at least %llu bytes (like 8M)", name, v,
			       (unsigned long long)min);
	*out = n * mult;
	return 0;
}

static bool bucket_name_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' || b[i] == '.'))
			return false;
	return true;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int s3_configure(struct s3 *s, const char *url, const store_opts *o)
{
	/* s3://bucket[/prefix] */
	const char *b = url + 5, *slash = strchr(b, '/');
	size_t bn = slash ? (size_t)(slash - b) : strlen(b);
	if (!bucket_name_ok(b, bn))
		return err_set(DRE_EINVAL, "repository %s: \"%.*s\" is not a bucket name (3-63 of a-z 0-9 . -)", url,
			       (int)bn, b);
	const char *pre = slash ? slash + 1 : "";
	size_t pn = strlen(pre);
	while (pn > 0 && pre[pn - 1] == '/')
		pn--;
	if ((s->bucket = strndup(b, bn)) == NULL || (s->prefix = strndup(pre, pn)) == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	if (*s->prefix && store_key_check(s->prefix, false) < 0)
		return err_set(DRE_EINVAL, "repository %s: the prefix \"%s\" may use only 0-9 a-z / . _ - in parts "
					   "that do not start with \".\"",
			       url, s->prefix);

	const char *region = first_env(o->s3_region, "AWS_REGION", "AWS_DEFAULT_REGION", NULL, FALLBACK(o, s3_region));
	if (dup_opt(&s->region, region ? region : "us-east-1") < 0)
		return err_set(DRE_ENOMEM, "out of memory");
	const char *ep = first_env(o->s3_endpoint, "DRE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL",
				   FALLBACK(o, s3_endpoint));
	char aws[256];
	bool on_aws = ep == NULL;
	if (on_aws) {
		snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", s->region);
		ep = aws;
	}
	const char *hostpart;
	if (strncmp(ep, "https://", 8) == 0)
		hostpart = ep + 8;
	else if (strncmp(ep, "http://", 7) == 0)
		hostpart = ep + 7;
	else
		return err_set(DRE_EINVAL, "S3 endpoint %s: want http://HOST[:PORT] or https://HOST[:PORT]", ep);
	size_t hn = strcspn(hostpart, "/?#");
	if (hn == 0 || (hostpart[hn] == '/' && hostpart[hn + 1] != '\0') || hostpart[hn] == '?' || hostpart[hn] == '#')
		return err_set(DRE_EINVAL, "S3 endpoint %s: want http://HOST[:PORT] or https://HOST[:PORT], without a path",
			       ep);
	int addressing = o->s3_addressing != STORE_S3_AUTO ? (int)o->s3_addressing
			 : o->fallback	    ? (int)o->fallback->s3_addressing
					    : STORE_S3_AUTO;
	s->path_style = addressing == STORE_S3_PATH_STYLE ||
			(addressing == STORE_S3_AUTO && (!on_aws || strchr(s->bucket, '.') != NULL));
	size_t scheme = (size_t)(hostpart - ep);
	char buf[600];
	if (s->path_style) {
		s->endpoint = strndup(ep, scheme + hn);
		s->host = strndup(hostpart, hn);
	} else {
		snprintf(buf, sizeof buf, "%.*s%s.%.*s", (int)scheme, ep, s->bucket, (int)hn, hostpart);
		s->endpoint = strdup(buf);
		s->host = strdup(buf + scheme);
	}
	if (s->endpoint == NULL || s->host == NULL)
		return err_set(DRE_ENOMEM, "out of memory");

	if (dup_opt(&s->ca_file, first_env(o->s3_ca_file, "DRE_S3_CA_FILE", "AWS_CA_BUNDLE", NULL,
					   FALLBACK(o, s3_ca_file))) < 0 ||
	    dup_opt(&s->storage_class, first_env(o->s3_storage_class, "DRE_S3_STORAGE_CLASS", NULL, NULL,
						 FALLBACK(o, s3_storage_class))) < 0 ||
	    dup_opt(&s->sse, first_env(o->s3_sse, "DRE_S3_SSE", NULL, NULL, FALLBACK(o, s3_sse))) < 0 ||
	    dup_opt(&s->sse_kms_key_id, first_env(o->s3_sse_kms_key_id, "DRE_S3_SSE_KMS_KEY_ID", NULL, NULL,
						  FALLBACK(o, s3_sse_kms_key_id))) < 0)
		return err_set(DRE_ENOMEM, "out of memory");
	if (s->sse && strcmp(s->sse, "AES256") != 0 && strcmp(s->sse, "aws:kms") != 0)
		return err_set(DRE_EINVAL, "S3 server-side encryption \"%s\": want AES256 (SSE-S3) or aws:kms (SSE-KMS)",
			       s->sse);
	if (s->sse_kms_key_id && (s->sse == NULL || strcmp(s->sse, "aws:kms") != 0))
		return err_set(DRE_EINVAL, "an SSE-KMS key ID needs server-side encryption aws:kms");
	if (s->ca_file && access(s->ca_file, R_OK) < 0) /* a setting's mistake, not a missing repository (exit 3) */
		return err_set(DRE_EINVAL, "S3 CA file %s cannot be read: %s", s->ca_file, strerror(errno));

	TRY(parse_size_env("DRE_S3_MULTIPART_THRESHOLD", (uint64_t)64 << 20, S3_MIN_PART, &s->multipart_threshold));
	TRY(parse_size_env("DRE_S3_PART_SIZE", (uint64_t)16 << 20, S3_MIN_PART, &s->part_size));
	uint64_t retries;
	TRY(parse_size_env("DRE_S3_RETRIES", 10, 0, &retries));
	/* measured on 2 cores, 1 GiB from the test gateway: restore 403 MB/s with 2 reads in flight, 758 with 4,
	 * 812 with 6 (and 22 MiB more memory per read) */
	uint64_t conns;
	TRY(parse_size_env("DRE_S3_CONNECTIONS", 4, 1, &conns));
	s->base.in_flight = conns > 64 ? 64 : (int)conns;
	s->retries = retries > 100 ? 100 : (int)retries;
	const char *tr = getenv("DRE_S3_TRACE");
	s->trace = tr && *tr && strcmp(tr, "0") != 0;
	return load_credentials(s, o);
}

int store_s3_open(const char *url, const store_opts *opts, store **out)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return err_set(DRE_EIO, "repository %s: libcurl cannot start: %s", url, curl_easy_strerror(curl_init_rc));
	struct s3 *s = calloc(1, sizeof *s);
	if (s == NULL)
		return err_set(DRE_ENOMEM, "repository %s: out of memory", url);
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return err_set(DRE_ENOMEM, "repository %s: cannot create a mutex", url);
	}
	s->base.drv = &s3_driver;
	s->base.url = strdup(url);
	int rc = s->base.url ? s3_configure(s, url, opts) : err_set(DRE_ENOMEM, "repository %s: out of memory", url);
	if (rc < 0) {
		s3_free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}
