/* fuzz.c — the fixture the targets share (fuzz.h). */
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/repo/localfile.h"
#include "store/err.h"

static repo *the_repo;
static char the_dir[4096];
static char the_pass[REPO_GENERATED_KEY_LEN + 1];
static char scratch[4096 + 64];

void fuzz_check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "fuzz fixture: %s: %s\n", what, err_msg());
		abort();
	}
}

static void remove_dir(void)
{
	if (the_repo != NULL) {
		store *st = the_repo->st;
		repo_close(the_repo);
		store_close(st);
		the_repo = NULL;
	}
	if (the_dir[0])
		localfile_remove_tree(the_dir);
}

/* Under $DRE_FUZZ_TMP (tests/fuzz/run sets it and removes it afterwards), else /dev/shm, else $TMPDIR. */
static void make_dir(void)
{
	const char *base = getenv("DRE_FUZZ_TMP");
	if (base == NULL || access(base, W_OK) != 0)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(the_dir, sizeof the_dir, "%s/dre-fuzz.XXXXXX", base ? base : "/tmp");
	if (mkdtemp(the_dir) == NULL) {
		perror("fuzz fixture: mkdtemp");
		abort();
	}
	atexit(remove_dir);
}

const char *fuzz_dir(void)
{
	if (!the_dir[0])
		make_dir();
	return the_dir;
}

const char *fuzz_path(const char *name)
{
	snprintf(scratch, sizeof scratch, "%s/%s", fuzz_dir(), name);
	return scratch;
}

repo *fuzz_repo(void)
{
	if (the_repo != NULL)
		return the_repo;
	char path[4200];
	snprintf(path, sizeof path, "%s/repo", fuzz_dir());
	store *st;
	fuzz_check(store_local_open(path, &st), "opening the fixture's store");
	fuzz_check(repo_generate_key(the_pass), "generating a key");
	repo_params p;
	repo_params_default(&p);
	p.scrypt_log2n = 10;
	p.scrypt_r = 1;
	p.scrypt_p = 1;
	fuzz_check(repo_init(st, the_pass, &p, &the_repo), "creating the fixture's repository");
	return the_repo;
}

const char *fuzz_password(void)
{
	fuzz_repo();
	return the_pass;
}

void fuzz_write_file(const char *path, const uint8_t *data, size_t len)
{
	struct iovec v = {(void *)data, len};
	fuzz_check(localfile_write(path, &v, 1, 0600, false), "writing a scratch file");
}

char *fuzz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}
