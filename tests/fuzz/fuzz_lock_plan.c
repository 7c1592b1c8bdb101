/* fuzz_lock_plan — lock objects (format-spec.md §16.1) and prune plans (§16.2): the plaintext, sealed and stored
 * under locks/ or prune/ of the fixture's repository, read back by lock_list (as `dre locks` and every deleter
 * do) or plan_load_all (as every writer and prune do). Input: one byte choosing which, then the plaintext. */
#include "engine/repo/lock.h"
#include "engine/repo/plan.h"
#include "tests/fuzz/fuzz.h"

static int seen(void *arg, const lock_info *li)
{
	(void)li;
	(*(int *)arg)++;
	return 0;
}

static void ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t id[CRYPTO_ID_LEN] = {0x10, 0xc4};
	if (size < 1)
		return 0;
	repo *r = fuzz_repo();
	char key[80];
	bool lock = !(data[0] & 1);
	repo_object_key(lock ? "locks/" : "prune/", id, key);
	fuzz_check(repo_put_object(r, lock ? 'L' : 'P', key, data + 1, size - 1, 0), "storing an object");
	if (lock) {
		int n = 0;
		(void)lock_list(r, seen, &n, ignore, NULL);
	} else {
		plan_set s;
		if (plan_load_all(r, &s) == 0)
			plan_set_free(&s);
	}
	fuzz_check(store_del(r->st, key), "removing an object");
	return 0;
}
