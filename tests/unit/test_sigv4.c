/*
 * Unit tests of the SigV4 signer (store/sigv4.c) against the examples AWS publishes in the S3 API reference
 * ("Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk"): the same
 * canonical requests byte for byte and the same signatures. All use access key AKIAIOSFODNN7EXAMPLE, region
 * us-east-1, service s3 and the time 20130524T000000Z.
 */
#include <string.h>

#include "store/err.h"
#include "store/sigv4.h"
#include "tests/unit/unit.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"

static sigv4_request base(const char *method, const char *path, const char *payload_hash)
{
	return (sigv4_request){.method = method, .path = path, .payload_hash = payload_hash, .amz_date = DATE,
			       .region = "us-east-1", .service = "s3"};
}

static void add_header(sigv4_request *rq, const char *name, const char *value)
{
	rq->headers[rq->nheaders++] = (sigv4_kv){name, value};
}

static void test_get_object_with_range(void)
{
	sigv4_request rq = base("GET", "/test.txt", EMPTY_SHA);
	add_header(&rq, "x-amz-date", DATE); /* in no particular order: the signer sorts */
	add_header(&rq, "Range", "bytes=0-9");
	add_header(&rq, "Host", HOST);
	add_header(&rq, "x-amz-content-sha256", EMPTY_SHA);
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) == 0);
	CHECK(strcmp(r.canonical_request, "GET\n/test.txt\n\nhost:" HOST "\nrange:bytes=0-9\n"
					  "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:" DATE "\n\n"
					  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA) == 0);
	CHECK(strcmp(r.string_to_sign, "AWS4-HMAC-SHA256\n" DATE "\n20130524/us-east-1/s3/aws4_request\n"
				       "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972") == 0);
	CHECK(strcmp(r.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") == 0);
	CHECK(strcmp(r.authorization,
		     "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
		     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") == 0);
}

static void test_put_object(void)
{
	/* The body is "Welcome to Amazon S3."; "$" in the key must be encoded in the canonical URI. */
	const char *body = "Welcome to Amazon S3.";
	char body_sha[SIGV4_HEX_LEN + 1];
	sigv4_sha256_hex(body, strlen(body), body_sha);
	CHECK(strcmp(body_sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0);

	sigv4_request rq = base("PUT", "/test$file.text", body_sha);
	add_header(&rq, "Host", HOST);
	add_header(&rq, "Date", "Fri, 24 May 2013 00:00:00 GMT");
	add_header(&rq, "x-amz-date", DATE);
	add_header(&rq, "x-amz-storage-class", "REDUCED_REDUNDANCY");
	add_header(&rq, "x-amz-content-sha256", body_sha);
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) == 0);
	CHECK(strcmp(r.encoded_path, "/test%24file.text") == 0);
	CHECK(strcmp(r.canonical_request,
		     "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:" HOST "\n"
		     "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
		     "x-amz-date:" DATE "\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
		     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
		     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0);
	CHECK(strcmp(r.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd") == 0);
}

static void test_get_bucket_lifecycle(void)
{
	/* "?lifecycle" has no value: its canonical form is "lifecycle=". */
	sigv4_request rq = base("GET", "/", EMPTY_SHA);
	rq.query[rq.nquery++] = (sigv4_kv){"lifecycle", ""};
	add_header(&rq, "Host", HOST);
	add_header(&rq, "x-amz-date", DATE);
	add_header(&rq, "x-amz-content-sha256", EMPTY_SHA);
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) == 0);
	CHECK(strcmp(r.canonical_request, "GET\n/\nlifecycle=\nhost:" HOST "\nx-amz-content-sha256:" EMPTY_SHA
					  "\nx-amz-date:" DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA) == 0);
	CHECK(strcmp(r.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543") == 0);
}

static void test_list_objects(void)
{
	/* Parameters given out of order must come out sorted, as libcurl 7.88's signer fails to do. */
	sigv4_request rq = base("GET", "/", EMPTY_SHA);
	rq.query[rq.nquery++] = (sigv4_kv){"prefix", "J"};
	rq.query[rq.nquery++] = (sigv4_kv){"max-keys", "2"};
	add_header(&rq, "Host", HOST);
	add_header(&rq, "x-amz-date", DATE);
	add_header(&rq, "x-amz-content-sha256", EMPTY_SHA);
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) == 0);
	CHECK(strcmp(r.query, "max-keys=2&prefix=J") == 0);
	CHECK(strcmp(r.canonical_request, "GET\n/\nmax-keys=2&prefix=J\nhost:" HOST "\nx-amz-content-sha256:" EMPTY_SHA
					  "\nx-amz-date:" DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA) == 0);
	CHECK(strcmp(r.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") == 0);
}

static void test_query_encoding(void)
{
	/* The case Debian's libcurl gets wrong: a "/" inside a value is %2F, and names sort after encoding. */
	sigv4_request rq = base("GET", "/bucket", "UNSIGNED-PAYLOAD");
	rq.query[rq.nquery++] = (sigv4_kv){"prefix", "repo/packs/"};
	rq.query[rq.nquery++] = (sigv4_kv){"list-type", "2"};
	rq.query[rq.nquery++] = (sigv4_kv){"continuation-token", "a+b=c d"};
	add_header(&rq, "host", "127.0.0.1:8000");
	add_header(&rq, "x-amz-date", DATE);
	add_header(&rq, "x-amz-content-sha256", "  UNSIGNED-PAYLOAD  ");
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) == 0);
	CHECK(strcmp(r.query, "continuation-token=a%2Bb%3Dc%20d&list-type=2&prefix=repo%2Fpacks%2F") == 0);
	CHECK(strstr(r.canonical_request, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n") != NULL); /* trimmed */
	CHECK(strcmp(r.encoded_path, "/bucket") == 0);
}

static void test_rejects_missing_fields(void)
{
	sigv4_request rq = base("GET", "/", EMPTY_SHA);
	rq.amz_date = "2013";
	sigv4_result r;
	CHECK(sigv4_sign(&rq, AK, SK, &r) < 0);
	rq = base("GET", "/", NULL);
	CHECK(sigv4_sign(&rq, AK, SK, &r) < 0);
}

static void test_amz_date(void)
{
	char d[17];
	sigv4_amz_date(1369353600LL, d); /* 2013-05-24 00:00:00 UTC */
	CHECK(strcmp(d, DATE) == 0);
}

int main(void)
{
	RUN(test_get_object_with_range);
	RUN(test_put_object);
	RUN(test_get_bucket_lifecycle);
	RUN(test_list_objects);
	RUN(test_query_encoding);
	RUN(test_rejects_missing_fields);
	RUN(test_amz_date);
	return unit_exit();
}
