/*
 * password.c — where a password comes from. There is deliberately no command-line option: argv is visible to
 * every user through /proc. Opening tries, in order, DRE_PASSWORD_FILE, DRE_PASSWORD_COMMAND, DRE_PASSWORD,
 * the --config file's password-file and password-command, then a prompt on /dev/tty with echo off. New passwords (init, key add) are asked twice on the terminal.
 * Every buffer that held a password is wiped before it is freed.
 */
#include "cli/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define PASS_MAX 4096
#define NO_TTY 1 /* prompt_tty(): there is no terminal to ask on */

void cli_password_free(char *pass)
{
	if (pass == NULL)
		return;
	crypto_wipe(pass, strlen(pass));
	free(pass);
}

/* Reads all of f as a password (what names it in messages), one trailing newline stripped. */
static int read_secret(FILE *f, const char *what, char **out)
{
	char *text = calloc(1, PASS_MAX + 2);
	if (text == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	size_t n = fread(text, 1, PASS_MAX + 1, f);
	int rc = 0;
	if (ferror(f))
		rc = err_sys("cannot read %s", what);
	else if (n > PASS_MAX)
		rc = err_set(DRE_EINVAL, "%s is longer than %d bytes", what, PASS_MAX);
	else if (memchr(text, '\0', n) != NULL)
		rc = err_set(DRE_EINVAL, "%s contains a NUL byte", what);
	if (rc < 0) {
		crypto_wipe(text, PASS_MAX + 2);
		free(text);
		return rc;
	}
	if (n > 0 && text[n - 1] == '\n')
		text[n - 1] = '\0';
	*out = text;
	return 0;
}

static int from_file(const char *path, const char *var, char **out)
{
	char what[512];
	snprintf(what, sizeof what, "password file %s (%s)", path, var);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return err_sys("cannot open %s", what);
	int rc = read_secret(f, what, out);
	fclose(f);
	return rc;
}

static int from_command(const char *cmd, const char *source, char **out)
{
	char what[128];
	snprintf(what, sizeof what, "the output of %s", source);
	/* NOLINTNEXTLINE(cert-env33-c): DRE_PASSWORD_COMMAND is a shell command by design, the user's own */
	FILE *f = popen(cmd, "re"); /* runs /bin/sh -c cmd */
	if (f == NULL)
		return err_sys("cannot run %s '%s'", source, cmd);
	int rc = read_secret(f, what, out);
	int status = pclose(f);
	if (rc == 0 && (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		cli_password_free(*out);
		*out = NULL;
		if (status != -1 && WIFSIGNALED(status))
			return err_set(DRE_EIO, "%s '%s' was killed by signal %d", source, cmd, WTERMSIG(status));
		return err_set(DRE_EIO, "%s '%s' failed with exit status %d", source, cmd,
			       status == -1 ? -1 : WEXITSTATUS(status));
	}
	return rc;
}

/* The file named by the environment variable var: 1 when it gave *out, 0 when var is unset, <0 on error. */
static int from_var_file(const char *var, char **out)
{
	const char *path = getenv(var);
	if (path == NULL || *path == '\0')
		return 0;
	int rc = from_file(path, var, out);
	return rc < 0 ? rc : 1;
}

/* The opening sources other than the terminal: the environment's, then the config file's password-file and
 * password-command. 1 when one of them gave *out, 0 when none is set, <0 on error. */
static int from_env(const cli_config *cfg, char **out)
{
	const char *cmd = getenv("DRE_PASSWORD_COMMAND");
	const char *pass = getenv("DRE_PASSWORD");
	int rc = from_var_file("DRE_PASSWORD_FILE", out);

	if (rc != 0)
		return rc;
	if (cmd != NULL && *cmd != '\0')
		rc = from_command(cmd, "DRE_PASSWORD_COMMAND", out);
	else if (pass != NULL)
		rc = (*out = strdup(pass)) ? 0 : err_set(DRE_ENOMEM, "out of memory");
	else if (cfg != NULL && cfg->password_file != NULL && *cfg->password_file != '\0')
		rc = from_file(cfg->password_file, "password-file in the config file", out);
	else if (cfg != NULL && cfg->password_command != NULL && *cfg->password_command != '\0')
		rc = from_command(cfg->password_command, "the config file's password-command", out);
	else
		return 0;
	return rc < 0 ? rc : 1;
}

/* The terminal state to put back if a signal arrives while echo is off. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_saved_fd = -1;

static void tty_restore_and_die(int sig)
{
	if (tty_saved_fd >= 0)
		tcsetattr(tty_saved_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line from the terminal fd, at most PASS_MAX bytes, without the newline. */
static int read_tty_line(int fd, char **out)
{
	char *text = calloc(1, PASS_MAX + 1);
	size_t n = 0;
	char ch;
	if (text == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	while (read(fd, &ch, 1) == 1 && ch != '\n') {
		if (n == PASS_MAX) {
			cli_password_free(text);
			return err_set(DRE_EINVAL, "the password is longer than %d bytes", PASS_MAX);
		}
		text[n++] = ch;
	}
	*out = text;
	return 0;
}

/* Turns echo off on fd (and back on with on = false), handling meanwhile the signals that would leave it off. */
static void tty_echo_off(int fd, bool off)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	static struct sigaction old[3];
	struct sigaction sa = {.sa_handler = tty_restore_and_die};
	struct termios quiet = tty_saved;

	sigemptyset(&sa.sa_mask);
	if (!off) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		tty_saved_fd = -1;
	}
	for (int k = 0; k < 3; k++)
		sigaction(sigs[k], off ? &sa : &old[k], off ? &old[k] : NULL);
	if (off) {
		tty_saved_fd = fd;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
}

/* Asks on /dev/tty with echo off. NO_TTY when the process has no terminal. */
static int prompt_tty(const char *prompt, char **out)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || tcgetattr(fd, &tty_saved) != 0) {
		if (fd >= 0)
			close(fd);
		return NO_TTY;
	}
	/* echo off before the prompt shows: what is typed once it is visible must not be echoed (or flushed) */
	tty_echo_off(fd, true);
	(void)!write(fd, prompt, strlen(prompt));
	int rc = read_tty_line(fd, out);
	tty_echo_off(fd, false);
	(void)!write(fd, "\n", 1);
	close(fd);
	return rc;
}

int cli_password_open(const char *url, const cli_config *cfg, char **out)
{
	char prompt[1200];
	*out = NULL;
	int rc = from_env(cfg, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	snprintf(prompt, sizeof prompt, "password for %s: ", url);
	rc = prompt_tty(prompt, out);
	if (rc == NO_TTY)
		return err_set(CLI_EUSAGE, "no password: set DRE_PASSWORD_FILE, DRE_PASSWORD_COMMAND or "
					   "DRE_PASSWORD, or password-file in a --config file, or run on a terminal");
	return rc;
}

/* Asks for a new password twice on the terminal. */
static int prompt_twice(const char *url, const char *no_tty_hint, char **out)
{
	char prompt[1200];
	char *again = NULL;
	snprintf(prompt, sizeof prompt, "new password for %s: ", url);
	int rc = prompt_tty(prompt, out);
	if (rc == NO_TTY)
		return err_set(CLI_EUSAGE, "no new password: %s, or run on a terminal", no_tty_hint);
	if (rc < 0)
		return rc;
	rc = prompt_tty("enter it again: ", &again);
	if (rc == 0 && strcmp(*out, again) != 0)
		rc = err_set(CLI_EUSAGE, "the two passwords do not match");
	cli_password_free(again);
	if (rc != 0) {
		cli_password_free(*out);
		*out = NULL;
		return rc < 0 ? rc : err_set(DRE_EIO, "the terminal went away");
	}
	return 0;
}

int cli_password_new(const char *url, const cli_config *cfg, const char *env_file, char **out)
{
	*out = NULL;
	int rc = env_file ? from_var_file(env_file, out) : from_env(cfg, out);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		const char *hint = env_file ? "set DRE_NEW_PASSWORD_FILE"
					    : "set DRE_PASSWORD_FILE, DRE_PASSWORD_COMMAND or DRE_PASSWORD";
		TRY(prompt_twice(url, hint, out));
	}
	if (**out == '\0') {
		cli_password_free(*out);
		*out = NULL;
		return err_set(CLI_EUSAGE, "empty passwords are not allowed");
	}
	return 0;
}
