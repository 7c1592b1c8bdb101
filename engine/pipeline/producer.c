/*
 * producer.c — running the program a stream push reads from (producer.h).
 */
#include "engine/pipeline/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/err.h"

extern char **environ;

static void close_pair(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

/* environ with env's variables added, replacing those of the same name; built before fork, since the child of
 * a threaded process may only call async-signal-safe functions. The strings are borrowed. */
static char **env_merge(char *const env[])
{
	size_t n = 0, k = 0;
	while (environ[n] != NULL)
		n++;
	while (env[k] != NULL)
		k++;
	char **all = calloc(n + k + 1, sizeof *all);
	if (all == NULL)
		return NULL;
	size_t a = 0;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (size_t j = 0; j < k && !replaced; j++) {
			size_t name = strcspn(env[j], "=");
			replaced = strncmp(environ[i], env[j], name + 1) == 0;
		}
		if (!replaced)
			all[a++] = environ[i];
	}
	for (size_t j = 0; j < k; j++)
		all[a++] = env[j];
	return all;
}

/* Why exec of cmd failed with errno e, in the words a user looks for: "command not found" first of all. */
static const char *exec_failure(const char *cmd, int e)
{
	struct stat st;
	bool path = strchr(cmd, '/') != NULL; /* else execvpe searched PATH and there is no one file to look at */
	switch (e) {
	case ENOENT:
		/* a script whose #! interpreter is missing fails with ENOENT too, though the script is there */
		if (path && stat(cmd, &st) == 0)
			return "its interpreter (the #! line) was not found";
		return "command not found";
	case EACCES:
		if (path && stat(cmd, &st) == 0 && S_ISDIR(st.st_mode))
			return "is a directory, not a command";
		return "not executable (permission denied)";
	case ENOTDIR: return "command not found (a part of its path is not a directory)";
	default: return strerror(e);
	}
}

int producer_start(char *const argv[], char *const env[], producer *out)
{
	int out_pipe[2], err_pipe[2];
	if (argv == NULL || argv[0] == NULL)
		return err_set(DRE_EINVAL, "no producer command given");
	char **envp = env != NULL ? env_merge(env) : environ;
	if (envp == NULL)
		return err_set(DRE_ENOMEM, "cannot start producer '%s': out of memory", argv[0]);
	if (pipe2(out_pipe, O_CLOEXEC) < 0) {
		if (envp != environ)
			free(envp);
		return err_sys("cannot create a pipe for producer '%s'", argv[0]);
	}
	/* an exec failure comes back through a second pipe, so it is not mistaken for an empty stream */
	if (pipe2(err_pipe, O_CLOEXEC) < 0) {
		close_pair(out_pipe);
		if (envp != environ)
			free(envp);
		return err_sys("cannot create a pipe for producer '%s'", argv[0]);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int saved = errno;
		close_pair(out_pipe);
		close_pair(err_pipe);
		if (envp != environ)
			free(envp);
		errno = saved;
		return err_sys("cannot start producer '%s'", argv[0]);
	}
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		execvpe(argv[0], argv, envp);
		int e = errno;
		if (write(err_pipe[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	if (envp != environ)
		free(envp);
	close(out_pipe[1]);
	close(err_pipe[1]);
	int e = 0;
	ssize_t n;
	while ((n = read(err_pipe[0], &e, sizeof e)) < 0 && errno == EINTR)
		;
	close(err_pipe[0]);
	if (n == (ssize_t)sizeof e) {
		close(out_pipe[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return err_set(DRE_EPRODUCER, "producer '%s': %s: no snapshot recorded", argv[0],
			       exec_failure(argv[0], e));
	}
	*out = (producer){.pid = pid, .fd = out_pipe[0], .name = argv[0]};
	meter_start(&out->clock, NULL);
	return 0;
}

int producer_wait(producer *p, bool stop, double *seconds)
{
	int status = 0;
	if (stop)
		kill(p->pid, SIGTERM);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (seconds != NULL)
		*seconds = meter_seconds(&p->clock);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_set(DRE_EPRODUCER, "producer '%s' exited with status %d: no snapshot recorded", p->name,
			       WEXITSTATUS(status));
	return err_set(DRE_EPRODUCER, "producer '%s' was killed by signal %d: no snapshot recorded", p->name,
		       WTERMSIG(status));
}
