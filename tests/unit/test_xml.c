/* Unit tests of the expat wrapper (store/xml.c) on the S3 documents dre reads. */
#include <stdio.h>
#include <string.h>

#include "store/err.h"
#include "store/xml.h"
#include "tests/unit/unit.h"

typedef struct seen {
	char keys[4][32];
	int nkeys;
	char code[32];
	int ends;
} seen;

static int collect(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	seen *s = arg;
	static const char *const key[] = {"ListBucketResult", "Contents", "Key", NULL};
	static const char *const code[] = {"Error", "Code", NULL};
	s->ends++;
	if (xml_path_is(path, depth, key) && s->nkeys < 4)
		snprintf(s->keys[s->nkeys++], sizeof s->keys[0], "%.*s", (int)len, text);
	if (xml_path_is(path, depth, code))
		snprintf(s->code, sizeof s->code, "%.*s", (int)len, text);
	return 0;
}

static void test_listing(void)
{
	const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			  "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
			  "<Contents><Key>r/packs/a&amp;b</Key><Size>12</Size></Contents>"
			  "<Contents><Key>r/snap\xc3\xa9</Key><Size>3</Size></Contents>"
			  "<IsTruncated>false</IsTruncated></ListBucketResult>";
	seen s = {0};
	CHECK(xml_parse(doc, strlen(doc), "listing", collect, &s) == 0);
	CHECK(s.nkeys == 2);
	CHECK(strcmp(s.keys[0], "r/packs/a&b") == 0); /* entities decoded */
	CHECK(strcmp(s.keys[1], "r/snap\xc3\xa9") == 0);
}

static void test_error_document(void)
{
	const char *doc = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message>"
			  "<RequestId>x</RequestId></Error>";
	seen s = {0};
	CHECK(xml_parse(doc, strlen(doc), "error", collect, &s) == 0);
	CHECK(strcmp(s.code, "SignatureDoesNotMatch") == 0);
	CHECK(s.ends == 4);
}

static void test_malformed(void)
{
	const char *bad[] = {"<Error><Code>x</Error>", "<a>", "", "not xml at all", "<a></a><b></b>"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seen s = {0};
		int rc = xml_parse(bad[i], strlen(bad[i]), "doc", collect, &s);
		CHECK(rc == DRE_ECORRUPT);
		CHECK(strstr(err_msg(), "doc: malformed XML") != NULL);
	}
}

static void test_depth_limit(void)
{
	char doc[1024] = "";
	for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
		strcat(doc, "<a>");
	for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
		strcat(doc, "</a>");
	seen s = {0};
	CHECK(xml_parse(doc, strlen(doc), "doc", collect, &s) == DRE_ECORRUPT);
}

static int stop_at_second(void *arg, const char *const *path, int depth, const char *text, size_t len)
{
	(void)path, (void)depth, (void)text, (void)len;
	int *n = arg;
	return ++*n == 2 ? err_set(DRE_EINVAL, "stopped") : 0;
}

static void test_callback_stops(void)
{
	const char *doc = "<r><a/><b/><c/></r>";
	int n = 0;
	CHECK(xml_parse(doc, strlen(doc), "doc", stop_at_second, &n) == DRE_EINVAL);
	CHECK(n == 2);
	CHECK(strcmp(err_msg(), "stopped") == 0);
}

int main(void)
{
	RUN(test_listing);
	RUN(test_error_document);
	RUN(test_malformed);
	RUN(test_depth_limit);
	RUN(test_callback_stops);
	return unit_exit();
}
