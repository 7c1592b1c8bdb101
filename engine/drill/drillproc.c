/*
 * drillproc.c — the drill's child processes (drillint.h).
 *
 * A child is prepared entirely in the parent (environment, groups, paths): between fork and exec it makes only
 * system calls — open the log, give up root, enter its directory, ask for a signal when dre dies, exec — and a
 * failure there comes back as an errno through a close-on-exec pipe, so "cannot run X" is an error of its own
 * and not a mysterious exit status.
 */
#include "engine/drill/drillint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/pipeline/meter.h"

int drill_poll(struct drill *d)
{
	if (d->o->cancel != NULL && *d->o->cancel != 0)
		return err_set(DRE_EIO, "interrupted by signal %d (%s)", (int)*d->o->cancel,
			       strsignal((int)*d->o->cancel));
	if (d->deadline_ns != 0 && meter_now_ns() > d->deadline_ns)
		return err_set(DRE_EIO, "the drill ran longer than its timeout (%.0f s): given up. HINT: --timeout "
					"DURATION gives it longer",
			       d->o->timeout);
	return 0;
}

int drill_sleep(struct drill *d, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL); /* a signal cuts it short: the poll sees the flag */
	return drill_poll(d);
}

/* What a child reports before exec: the step and errno. */
struct spawn_fail {
	int step, err;
};
enum { STEP_LOG = 1, STEP_USER, STEP_CWD, STEP_EXEC };

static void child_fail(int fd, int step)
{
	struct spawn_fail f = {step, errno};
	if (write(fd, &f, sizeof f) < 0) {
		/* nothing left to tell it with */
	}
	_exit(127);
}

/* In a child: the CLI's handlers (which only set the cancel flag) and a blocked mask must not outlive the fork. */
static void child_signals_default(void)
{
	sigset_t none;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int drill_spawn(struct drill *d, const drill_cmd *c, pid_t *out)
{
	int pfd[2];
	pid_t parent = getpid();
	char *const *env = c->private_env ? d->pg_env : d->env;
	char **envp = NULL;
	size_t nenv = 0, nextra = 0;
	while (env[nenv] != NULL)
		nenv++;
	while (c->extra_env != NULL && c->extra_env[nextra] != NULL)
		nextra++;
	envp = calloc(nenv + nextra + 2, sizeof *envp);
	if (envp == NULL)
		return err_set(DRE_ENOMEM, "cannot start a program");
	size_t n = 0;
	for (size_t i = 0; i < nextra; i++)
		envp[n++] = c->extra_env[i];
	for (size_t i = 0; i < nenv; i++) {
		const char *eq = strchr(env[i], '=');
		size_t klen = eq ? (size_t)(eq - env[i]) + 1 : strlen(env[i]);
		bool shadowed = false;
		for (size_t k = 0; k < nextra; k++)
			if (strncmp(c->extra_env[k], env[i], klen) == 0)
				shadowed = true;
		if (!shadowed)
			envp[n++] = env[i];
	}
	const char *what = c->argv ? c->argv[0] : c->cwd;
	bool as_user = c->as_user && d->switch_user;
	fflush(stdout);
	fflush(stderr);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(envp);
		return err_sys("cannot start %s: pipe", what);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int rc = err_sys("cannot start %s: fork", what);
		close(pfd[0]);
		close(pfd[1]);
		free(envp);
		return rc;
	}
	if (pid == 0) {
		close(pfd[0]);
		child_signals_default();
		signal(SIGPIPE, SIG_DFL);
		if (c->own_group)
			setpgid(0, 0);
		int fd = c->to_stderr ? 2
			 : c->log     ? open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
				      : open("/dev/null", O_WRONLY | O_CLOEXEC);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || (fd != 2 && dup2(fd, 2) < 0))
			child_fail(pfd[1], STEP_LOG);
		if (as_user && (setgroups((size_t)d->ngroups, d->groups) < 0 || setgid(d->gid) < 0 ||
				setuid(d->uid) < 0 || getuid() != d->uid))
			child_fail(pfd[1], STEP_USER);
		if (c->cwd != NULL && chdir(c->cwd) < 0)
			child_fail(pfd[1], STEP_CWD);
		prctl(PR_SET_PDEATHSIG, c->death_signal ? c->death_signal : SIGTERM);
		if (getppid() != parent)
			_exit(127); /* dre died before the request took */
		if (c->argv == NULL)
			_exit(0);
		execvpe(c->argv[0], c->argv, envp);
		child_fail(pfd[1], STEP_EXEC);
	}
	close(pfd[1]);
	free(envp);
	if (c->own_group)
		setpgid(pid, pid); /* also from here: no window in which a signal to the group misses it */
	struct spawn_fail f;
	ssize_t got;
	do
		got = read(pfd[0], &f, sizeof f);
	while (got < 0 && errno == EINTR);
	close(pfd[0]);
	if (got == (ssize_t)sizeof f) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		errno = f.err;
		switch (f.step) {
		case STEP_LOG: return err_sys("cannot start %s: cannot open its log %s", what, c->log ? c->log : "");
		case STEP_USER:
			return err_sys("cannot start %s as user %s (uid %u)", what, d->user, (unsigned)d->uid);
		case STEP_CWD:
			return err_sys("cannot enter %s%s%s", c->cwd, as_user ? " as user " : "", as_user ? d->user : "");
		default: return err_sys("cannot run %s", what);
		}
	}
	*out = pid;
	return 0;
}

static int status_of(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

/* Stops what the drill gave up on: SIGTERM, then after 5 s SIGKILL; reaps it. */
static void stop_child(pid_t pid, bool group)
{
	int st;
	kill(group ? -pid : pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	kill(group ? -pid : pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

int drill_wait(struct drill *d, pid_t pid, bool own_group, int *status)
{
	long sleep_ms = 5;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			*status = status_of(st);
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return err_sys("cannot wait for process %d", (int)pid);
		int rc = drill_poll(d);
		if (rc < 0) {
			char saved[1024];
			snprintf(saved, sizeof saved, "%s", err_msg());
			stop_child(pid, own_group);
			return err_set(rc, "%s", saved);
		}
		struct timespec ts = {0, sleep_ms * 1000000};
		nanosleep(&ts, NULL);
		if (sleep_ms < 100)
			sleep_ms *= 2;
	}
}

int drill_run(struct drill *d, const drill_cmd *c, int *status)
{
	pid_t pid;
	TRY(drill_spawn(d, c, &pid));
	return drill_wait(d, pid, c->own_group, status);
}

int drill_capture(struct drill *d, char *const *argv, char *out, size_t cap)
{
	char path[4200];
	int status;
	snprintf(path, sizeof path, "%s/capture.out", d->scratch);
	unlink(path);
	drill_cmd c = {.argv = argv, .log = path};
	TRY(drill_run(d, &c, &status));
	FILE *f = fopen(path, "r");
	out[0] = '\0';
	if (f != NULL) {
		if (fgets(out, (int)cap, f) == NULL)
			out[0] = '\0';
		fclose(f);
	}
	unlink(path);
	out[strcspn(out, "\r\n")] = '\0';
	if (status != 0)
		return err_set(DRE_EIO, "%s exited with status %d%s%s", argv[0], status, out[0] ? ": " : "", out);
	return 0;
}

/* ---- the fetch in a child process ---- */

struct child_head {
	int rc;
	char msg[2048];
};

int drill_in_child(struct drill *d, drill_child_fn fn, void *arg, void *out, size_t outlen)
{
	int pfd[2];
	TRY(drill_poll(d));
	fflush(stdout);
	fflush(stderr);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys("cannot start the fetch: pipe");
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int rc = err_sys("cannot start the fetch: fork");
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		close(pfd[0]);
		child_signals_default();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		struct child_head h = {0};
		h.rc = fn(d, arg, out);
		if (h.rc < 0)
			snprintf(h.msg, sizeof h.msg, "%s", err_msg());
		const uint8_t *parts[2] = {(const uint8_t *)&h, out};
		const size_t lens[2] = {sizeof h, outlen};
		for (int i = 0; i < 2; i++)
			for (size_t off = 0; off < lens[i];) {
				ssize_t w = write(pfd[1], parts[i] + off, lens[i] - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					_exit(1);
				off += (size_t)w;
			}
		_exit(0); /* not exit(): the parent's stdio buffers and atexit handlers are the parent's */
	}
	close(pfd[1]);
	struct child_head h;
	uint8_t *bufs[2] = {(uint8_t *)&h, out};
	const size_t lens[2] = {sizeof h, outlen};
	size_t got[2] = {0, 0};
	int rc = 0, part = 0;
	while (part < 2) {
		if (got[part] == lens[part]) {
			part++;
			continue;
		}
		struct pollfd p = {pfd[0], POLLIN, 0};
		int pr = poll(&p, 1, 100);
		if ((rc = drill_poll(d)) < 0)
			break;
		if (pr <= 0)
			continue;
		ssize_t n = read(pfd[0], bufs[part] + got[part], lens[part] - got[part]);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got[part] += (size_t)n;
	}
	close(pfd[0]);
	if (rc < 0) {
		char saved[1024];
		snprintf(saved, sizeof saved, "%s", err_msg());
		stop_child(pid, false);
		return err_set(rc, "%s", saved);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (part < 2) {
		TRY(drill_poll(d)); /* a ^C killed it along with dre's own flag */
		if (WIFSIGNALED(st))
			return err_set(DRE_EIO, "the fetch process was killed by signal %d", WTERMSIG(st));
		return err_set(DRE_EIO, "the fetch process exited with status %d without a result", status_of(st));
	}
	if (h.rc < 0)
		return err_set(h.rc, "%s", h.msg);
	return 0;
}

/* ---- files ---- */

void drill_log_tail(const char *path, const char *const *words, char *out, size_t cap)
{
	/* the last 4 matching lines of at most the last 64 KiB */
	char *keep[4] = {0};
	size_t nkeep = 0;
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > 65536) {
		fseek(f, -65536, SEEK_END);
		int ch;
		while ((ch = fgetc(f)) != EOF && ch != '\n')
			;
	} else {
		rewind(f);
	}
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		bool hit = words == NULL && line[0] != '\0';
		for (size_t i = 0; words != NULL && words[i] != NULL; i++)
			if (strstr(line, words[i]) != NULL)
				hit = true;
		if (!hit)
			continue;
		char *copy = strdup(line);
		if (copy == NULL)
			break;
		if (nkeep == 4) {
			free(keep[0]);
			memmove(keep, keep + 1, 3 * sizeof *keep);
			nkeep--;
		}
		keep[nkeep++] = copy;
	}
	fclose(f);
	size_t o = 0;
	for (size_t i = 0; i < nkeep; i++) {
		int w = snprintf(out + o, cap - o, "%s%s", i ? " / " : "", keep[i]);
		if (w > 0 && o + (size_t)w < cap)
			o += (size_t)w;
		free(keep[i]);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = (flag == FTW_DP || flag == FTW_D) ? rmdir(path) : unlink(path);
	if (r < 0 && errno != ENOENT) {
		err_sys("cannot remove %s", path);
		return 1;
	}
	return 0;
}

int drill_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_sys("cannot remove %s", path);
	/* a directory PostgreSQL left without search permission for root cannot happen (root), nor for the
	 * owner: the drill made every directory; FTW_MOUNT keeps it inside the scratch file system */
	int r = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r < 0)
		return err_sys("cannot remove %s", path);
	if (r > 0)
		return DRE_EIO;
	return 0;
}

/* nftw passes no argument to its callback: the owner to give goes through these (the drill's own thread only) */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if ((st->st_uid != chown_uid || st->st_gid != chown_gid) && lchown(path, chown_uid, chown_gid) < 0) {
		err_sys("cannot give %s to its user", path);
		return 1;
	}
	return 0;
}

int drill_chown_tree(struct drill *d, const char *path)
{
	if (!d->switch_user)
		return 0;
	chown_uid = d->uid;
	chown_gid = d->gid;
	int r = nftw(path, chown_one, 32, FTW_PHYS | FTW_MOUNT);
	if (r < 0)
		return err_sys("cannot give %s to user %s", path, d->user);
	return r > 0 ? DRE_EIO : 0;
}

int drill_write_file(struct drill *d, const char *path, const char *text, bool append)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (append ? O_APPEND : O_TRUNC), 0600);
	if (fd < 0)
		return err_sys("cannot write %s", path);
	size_t len = strlen(text);
	int rc = 0;
	if (write(fd, text, len) != (ssize_t)len)
		rc = err_sys("cannot write %s", path);
	if (rc == 0 && d->switch_user && fchown(fd, d->uid, d->gid) < 0)
		rc = err_sys("cannot give %s to user %s", path, d->user);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("cannot write %s", path);
	return rc;
}
