#include "engine/testhook.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	char kill_name[128]; /* "" when no kill point is set (or its value is malformed) */
	unsigned long kill_n;
	char fail_name[128]; /* the same for DRE_TEST_FAIL_AT */
	unsigned long fail_n;
	const char *kill_log;
	const char *pause_dir, *pause_at;
} hook;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;
static atomic_ulong kill_hits; /* times a thread reached hook.kill_name */
static atomic_ulong fail_hits;

/* "name:N" or "name" (N = 1) from variable var into name (128 bytes) and *count; nothing when malformed. */
static void parse_point(const char *var, char *name, unsigned long *count)
{
	const char *v = getenv(var);
	if (v != NULL && v[0] != '\0' && strlen(v) < 128) {
		const char *colon = strrchr(v, ':');
		size_t name_len = colon ? (size_t)(colon - v) : strlen(v);
		unsigned long n = 1;
		if (colon != NULL) {
			char *end;
			n = colon[1] >= '0' && colon[1] <= '9' ? strtoul(colon + 1, &end, 10) : 0;
			if (n == 0 || *end != '\0')
				n = 0;
		}
		if (n > 0 && name_len > 0) {
			memcpy(name, v, name_len);
			name[name_len] = '\0';
			*count = n;
		}
	}
}

static void hook_read_env(void)
{
	parse_point("DRE_TEST_KILL_AT", hook.kill_name, &hook.kill_n);
	parse_point("DRE_TEST_FAIL_AT", hook.fail_name, &hook.fail_n);
	hook.kill_log = getenv("DRE_TEST_KILL_LOG");
	hook.pause_dir = getenv("DRE_TEST_PAUSE");
	hook.pause_at = getenv("DRE_TEST_PAUSE_AT");
	if (hook.pause_dir != NULL && hook.pause_dir[0] == '\0')
		hook.pause_dir = NULL;
}

/* The N-th arrival writes where it is to the kill log, then dies as a power cut or `kill -9` would take it. */
static void kill_point(const char *name)
{
	unsigned long hit = atomic_fetch_add(&kill_hits, 1) + 1;
	if (hit != hook.kill_n)
		return;
	if (hook.kill_log != NULL && hook.kill_log[0] != '\0') {
		char line[160];
		int len = snprintf(line, sizeof line, "%s %lu\n", name, hit);
		int fd = open(hook.kill_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			if (write(fd, line, (size_t)len) < 0) {
				/* the kill matters more than its record */
			}
			close(fd);
		}
	}
	raise(SIGKILL);
}

static bool pause_named(const char *name)
{
	size_t len = strlen(name);
	const char *at = hook.pause_at, *hit = at;
	while ((hit = strstr(hit, name)) != NULL &&
	       !((hit == at || hit[-1] == ',') && (hit[len] == '\0' || hit[len] == ',')))
		hit += len;
	return hit != NULL;
}

void test_pause(const char *name)
{
	pthread_once(&hook_once, hook_read_env);
	if (hook.kill_n > 0 && strcmp(hook.kill_name, name) == 0)
		kill_point(name);
	if (hook.pause_dir == NULL || hook.pause_at == NULL || !pause_named(name))
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.reached", hook.pause_dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof path, "%s/%s.go", hook.pause_dir, name);
	struct timespec tick = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 30000 && access(path, F_OK) != 0; i++)
		nanosleep(&tick, NULL);
}

bool test_fail(const char *name)
{
	pthread_once(&hook_once, hook_read_env);
	return hook.fail_name[0] != '\0' && strcmp(name, hook.fail_name) == 0 &&
	       atomic_fetch_add(&fail_hits, 1) + 1 == hook.fail_n;
}
