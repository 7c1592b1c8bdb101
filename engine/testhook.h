/*
 * testhook.h — named points in the engine where tests stop or kill a process.
 *
 * Pause (tests that force an interleaving of two processes, the push/prune race, format-spec.md §16.4): with
 * DRE_TEST_PAUSE=DIR and DRE_TEST_PAUSE_AT=name[,name...] set, test_pause("name") creates DIR/name.reached and
 * waits until the test creates DIR/name.go (at most 10 minutes).
 *
 * Kill (the crash tests and tests/torture): with DRE_TEST_KILL_AT=name:N the process kills itself with SIGKILL
 * the N-th time any of its threads reaches the point name (DRE_TEST_KILL_AT=name means name:1). When
 * DRE_TEST_KILL_LOG=FILE is set, the line "name N" is appended to FILE first, so a test knows where it died. A
 * value whose N is not a positive number names no point, and nothing is killed.
 *
 * Fail (an input error where none can be made on demand: a read error in the middle of a file): with
 * DRE_TEST_FAIL_AT=name:N, test_fail("name") is true the N-th time any thread asks, and the caller fails as it
 * would on a real error there.
 *
 * The environment is read once per process; a point that is not named costs a comparison of its name.
 * The store has one point of its own, store-put-synced (store.h's store_test_point, which engine_open points
 * here): a local put's temporary file written and fsynced, not yet renamed.
 */
#ifndef DRE_TESTHOOK_H
#define DRE_TESTHOOK_H

#include <stdbool.h>

void test_pause(const char *name);
bool test_fail(const char *name);

#endif
