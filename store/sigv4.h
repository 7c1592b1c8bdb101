/*
 * sigv4.h — AWS Signature Version 4 for S3 requests, computed with OpenSSL's HMAC-SHA-256.
 *
 * The signer builds the canonical request itself (sorted, RFC 3986-encoded query; lowercased, trimmed, sorted
 * headers) rather than leaving it to libcurl's CURLOPT_AWS_SIGV4, which in Debian 12's libcurl signs the query
 * string as given and so gets SignatureDoesNotMatch for a listing with prefix=c%2F. The canonical query string it
 * returns is also what the caller sends, so what is signed and what goes on the wire cannot differ.
 *
 * Pure computation: no I/O, no allocation, no global state; safe from any thread.
 */
#ifndef DRE_SIGV4_H
#define DRE_SIGV4_H

#include <stddef.h>

#define SIGV4_HEX_LEN 64 /* a SHA-256 or HMAC-SHA-256 in lowercase hex, without the NUL */
#define SIGV4_MAX_QUERY 6
#define SIGV4_MAX_HEADERS 12

typedef struct sigv4_kv {
	const char *name;
	const char *value;
} sigv4_kv;

typedef struct sigv4_request {
	const char *method;       /* "GET", "PUT", ... */
	const char *path;         /* not yet encoded: "/bucket/key"; every byte but A-Z a-z 0-9 - . _ ~ / is %XX-encoded */
	sigv4_kv query[SIGV4_MAX_QUERY]; /* not yet encoded; a value-less parameter ("?uploads") has value "" */
	size_t nquery;
	sigv4_kv headers[SIGV4_MAX_HEADERS]; /* every header to sign (host, x-amz-date, x-amz-content-sha256, ...) */
	size_t nheaders;
	const char *payload_hash; /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;     /* "20130524T000000Z", the same as the x-amz-date header */
	const char *region;       /* "us-east-1" */
	const char *service;      /* "s3" */
} sigv4_request;

typedef struct sigv4_result {
	char canonical_request[8192];
	char string_to_sign[256];
	char encoded_path[2048]; /* the path as signed and as it must be sent */
	char query[2048];        /* the canonical query string ("" when none): send it after "?" as it is */
	char signed_headers[512];
	char signature[SIGV4_HEX_LEN + 1];
	char authorization[1024]; /* the Authorization header's value */
} sigv4_result;

/* Signs rq with the access key and secret. Returns 0, or -1 when a field is missing or something does not fit
 * the result's buffers (paths, query values and header values are bounded by the caller's keys, so this is a
 * programming error, not an input error). */
int sigv4_sign(const sigv4_request *rq, const char *access_key, const char *secret, sigv4_result *out);

/* Lowercase hex SHA-256 of len bytes (out holds SIGV4_HEX_LEN + 1). */
void sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1]);

/* "20130524T000000Z" for a Unix time (UTC). */
void sigv4_amz_date(long long unix_seconds, char out[17]);

#endif
