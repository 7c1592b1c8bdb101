/* fuzz_aws_credentials — the shared credentials file (~/.aws/credentials, an INI file of profiles), read by
 * store/s3.c when no key comes from the options, the environment or --config: through store_s3_open, which
 * parses it and connects to nothing. Input: one byte choosing the profile asked for, then the file. */
#include <stdlib.h>

#include "store/store.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const profiles[] = {NULL, "default", "prod", "a b", ""};
	static bool clean;
	if (!clean) { /* the environment's keys come before the file: none here */
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
		unsetenv("AWS_SESSION_TOKEN");
		unsetenv("AWS_PROFILE");
		unsetenv("AWS_SHARED_CREDENTIALS_FILE");
		clean = true;
	}
	if (size < 1)
		return 0;
	const char *path = fuzz_path("credentials");
	fuzz_write_file(path, data + 1, size - 1);
	store_opts o = {.s3_credentials_file = path,
			.s3_profile = profiles[data[0] % (sizeof profiles / sizeof profiles[0])],
			.s3_endpoint = "http://127.0.0.1:9"};
	store *st;
	if (store_s3_open("s3://fuzz-bucket/prefix", &o, &st) == 0)
		store_close(st);
	return 0;
}
