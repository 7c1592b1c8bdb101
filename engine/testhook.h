/*
 * testhook.h — pause points for tests that force an interleaving of two processes (the push/prune race,
 * format-spec.md §16.4). With DRE_TEST_PAUSE=DIR and DRE_TEST_PAUSE_AT=name[,name...] set, test_pause("name")
 * creates DIR/name.reached and waits until the test creates DIR/name.go (it waits at most 10 minutes).
 * Without them it does nothing but read the environment. With DRE_TEST_KILL_AT=name the process kills itself (SIGKILL) there: the crash tests.
 */
#ifndef DRE_TESTHOOK_H
#define DRE_TESTHOOK_H

void test_pause(const char *name);

#endif
