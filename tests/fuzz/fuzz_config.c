/* fuzz_config — the config object's plaintext (format-spec.md §7): sealed and stored as "config" in the fixture's
 * repository, read by repo_open (version, chunker and pack sizes, compression) with the fixture's key. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	repo *r = fuzz_repo(), *opened;
	fuzz_check(repo_put_object(r, 'C', "config", data, size, 0), "storing a config object");
	if (repo_open(r->st, fuzz_password(), &opened) == 0)
		repo_close(opened);
	return 0;
}
