/* fuzz_s3_xml — the S3 answers dre reads (store/xml.c and its callers in store/s3.c): bucket listings, listings
 * of unfinished multipart uploads, multipart initiation and completion answers, and error documents, each through
 * the element handler store/s3.c gives xml_parse. Those handlers are static, so this target compiles store/s3.c
 * into itself (the archive's copy is then never linked). Input: one byte choosing the document and the
 * repository prefix to strip, then the document. */
#include "store/s3.c"

#include "tests/fuzz/fuzz.h"

static int listed(void *arg, const char *key, uint64_t size)
{
	(void)size;
	if (store_key_check(key, false) < 0)
		abort(); /* the handler must hand on only keys that pass the store's rules */
	(*(int *)arg)++;
	return 0;
}

static int upload(void *arg, const char *key, const char *upload_id, const char *initiated)
{
	(void)upload_id;
	(void)initiated;
	return listed(arg, key, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *doc = (const char *)data + 1;
	size_t len = size - 1, strip = (data[0] >> 3) & 7; /* "PREFIX/" of up to 7 bytes */
	int n = 0;
	switch (data[0] % 5) {
	case 0: {
		list_page lp = {.strip = strip, .fn = listed, .arg = &n};
		(void)xml_parse(doc, len, "bucket listing", list_elem, &lp);
		break;
	}
	case 1: {
		upload_page up = {.strip = strip, .fn = upload, .arg = &n};
		(void)xml_parse(doc, len, "multipart upload listing", upload_elem, &up);
		break;
	}
	case 2: {
		upload_state u = {{0}};
		(void)xml_parse(doc, len, "multipart initiation", initiate_elem, &u);
		break;
	}
	case 3: {
		s3_call c = {.method = "POST"};
		(void)xml_parse(doc, len, "multipart completion", complete_elem, &c);
		break;
	}
	default: {
		s3_call c = {.method = "GET"};
		(void)xml_parse(doc, len, "error document", error_elem, &c);
		break;
	}
	}
	return 0;
}
