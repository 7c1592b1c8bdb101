/*
 * unit.h — the smallest test harness that does the job: each CHECK prints nothing on success and a
 * "file:line: expression" line on failure; each TEST prints "ok - name" or "not ok - name" (TAP-like), which
 * tests/run counts. main() calls RUN(name) for each test and returns unit_exit().
 */
#ifndef DRE_UNIT_H
#define DRE_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_failed_tests;

#define CHECK(cond)                                                                                            \
	do {                                                                                                   \
		if (!(cond)) {                                                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
			unit_failed_checks++;                                                                  \
		}                                                                                              \
	} while (0)

#define CHECK_RC(expr)                                                                                         \
	do {                                                                                                   \
		int unit_rc_ = (expr);                                                                         \
		if (unit_rc_ < 0) {                                                                            \
			fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #expr, unit_rc_,    \
				err_msg());                                                                    \
			unit_failed_checks++;                                                                  \
		}                                                                                              \
	} while (0)

#define RUN(fn)                                                                                                \
	do {                                                                                                   \
		int before_ = unit_failed_checks;                                                              \
		fn();                                                                                          \
		if (unit_failed_checks == before_) {                                                           \
			printf("ok - %s\n", #fn);                                                              \
		} else {                                                                                       \
			printf("not ok - %s\n", #fn);                                                          \
			unit_failed_tests++;                                                                   \
		}                                                                                              \
		fflush(stdout);                                                                                \
	} while (0)

/* n bytes of xorshift noise from seed: incompressible, and the same for the same seed. */
static inline void unit_fill(unsigned char *p, size_t n, unsigned seed)
{
	unsigned x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

#ifdef DRE_ENGINE_H /* for the tests of the engine, which include engine/engine.h first */
/* A fresh repository dir/repoN (password "pw", scrypt cut down so tests stay fast); NULL after a failed check. */
static inline repo *unit_make_repo(const char *dir)
{
	static int n;
	char path[300];
	repo_params p;
	repo *r = NULL;
	repo_params_default(&p);
	p.scrypt_log2n = 10;
	snprintf(path, sizeof path, "%s/repo%d", dir, n++);
	CHECK_RC(engine_init(path, NULL, "pw", &p, &r));
	return r;
}
#endif

static inline int unit_exit(void)
{
	return unit_failed_tests ? 1 : 0;
}

#endif
