#include "engine/testhook.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void test_pause(const char *name)
{
	const char *kill_at = getenv("DRE_TEST_KILL_AT");
	if (kill_at != NULL && strcmp(kill_at, name) == 0)
		raise(SIGKILL);
	const char *dir = getenv("DRE_TEST_PAUSE");
	const char *at = getenv("DRE_TEST_PAUSE_AT");
	if (dir == NULL || dir[0] == '\0' || at == NULL)
		return;
	size_t len = strlen(name);
	const char *hit = at;
	while ((hit = strstr(hit, name)) != NULL &&
	       !((hit == at || hit[-1] == ',') && (hit[len] == '\0' || hit[len] == ',')))
		hit += len;
	if (hit == NULL)
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.reached", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof path, "%s/%s.go", dir, name);
	struct timespec tick = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 30000 && access(path, F_OK) != 0; i++)
		nanosleep(&tick, NULL);
}
