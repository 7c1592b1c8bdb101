/* fuzz_envelope — envelope objects of every type (format-spec.md §6) as a store hands them over: the magic,
 * type, length and key checks of repo_open_envelope before AES-GCM with the fixture's keys (what follows a
 * successful open is fuzzed by the targets of each type). Input: one byte choosing the type, then the object. */
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		char type;
		const char *key;
	} kinds[] = {
		{'C', "config"},
		{'I', "index/00000000000000000000000000000000000000000000000000000000000000aa"},
		{'S', "snapshots/00000000000000000000000000000000000000000000000000000000000000bb"},
		{'W', "wal/0123456789abcdef/00000001/000000010000000000000001"},
		{'L', "locks/00000000000000000000000000000000000000000000000000000000000000cc"},
		{'P', "prune/00000000000000000000000000000000000000000000000000000000000000dd"},
	};
	if (size < 1)
		return 0;
	size_t k = data[0] % (sizeof kinds / sizeof kinds[0]);
	uint8_t *plain = NULL;
	size_t len = 0;
	if (repo_open_envelope(fuzz_repo(), kinds[k].type, kinds[k].key, data + 1, size - 1, &plain, &len) == 0)
		free(plain);
	return 0;
}
