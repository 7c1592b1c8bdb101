/*
 * cmd_repo.c — the commands about the repository itself rather than its snapshots: `init` (create it with its
 * chunking and packing parameters), `key` (add, list, remove or change passwords) and `cat` (print the config or a snapshot as
 * JSON, for people debugging and for scripts).
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- init ---- */

enum { I_CHUNK_MIN, I_CHUNK_AVG, I_CHUNK_MAX, I_PACK_SIZE, I_LEVEL };
static const cli_opt init_opts[] = {
	{"chunk-min", 0, true}, {"chunk-avg", 0, true}, {"chunk-max", 0, true},
	{"pack-size", 0, true}, {"compression-level", 0, true}, {0},
};

static int init_params(const cli_args *a, repo_params *p)
{
	uint32_t *sizes[] = {&p->cdc_min, &p->cdc_avg, &p->cdc_max, &p->pack_size};
	uint64_t v;

	repo_params_default(p);
	for (int k = I_CHUNK_MIN; k <= I_PACK_SIZE; k++) {
		if (a->opt[k] == NULL)
			continue;
		TRY(cli_parse_size(init_opts[k].name, a->opt[k], UINT32_MAX, &v));
		*sizes[k] = (uint32_t)v;
	}
	if (a->opt[I_LEVEL] != NULL) {
		TRY(cli_parse_uint(init_opts[I_LEVEL].name, a->opt[I_LEVEL], 1000, &v));
		p->zstd_level = (int)v;
	}
	return cli_as_usage(repo_params_check(p));
}

static int init_run(cli_ctx *ctx, const cli_args *a)
{
	repo_params p;
	const char *url;
	char *pass;
	repo *r;
	char id[2 * REPO_ID_LEN + 1];

	TRY(cli_want_args(a, 0, 0, ""));
	TRY(init_params(a, &p));
	TRY(cli_repo_url(ctx, &url));
	TRY(cli_password_new(url, &ctx->config, NULL, &pass));
	int rc = engine_init(url, &ctx->store, pass, &p, &r);
	cli_password_free(pass);
	TRY(rc);
	hex_encode(r->repo_id, REPO_ID_LEN, id);
	engine_close(r);
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:s, s:s}", "repository", url, "id", id));
	if (!ctx->quiet)
		printf("created repository %s\n", url);
	return 0;
}

const cli_command cmd_init = {
	.name = "init",
	.summary = "create a repository",
	.opts = init_opts,
	.run = init_run,
	.usage = "usage: dre init [--chunk-min N] [--chunk-avg N] [--chunk-max N] [--pack-size N]\n"
		 "                [--compression-level N]\n"
		 "\n"
		 "Creates a repository at the --repo URL (the directory is created when missing) protected by a\n"
		 "password: asked twice on the terminal, or taken from DRE_PASSWORD_FILE, DRE_PASSWORD_COMMAND or\n"
		 "DRE_PASSWORD. The parameters are fixed for the life of the repository.\n"
		 "\n"
		 "Options (sizes take K, M or G suffixes, binary):\n"
		 "  --chunk-min N          smallest chunk (default 32K)\n"
		 "  --chunk-avg N          average chunk, a power of two (default 128K)\n"
		 "  --chunk-max N          largest chunk (default 512K)\n"
		 "  --pack-size N          target size of a pack object (default 16M)\n"
		 "  --compression-level N  zstd level, 1..19 (default 1)\n",
};

/* ---- key ---- */

static int key_add(cli_ctx *ctx, repo *r, void *arg)
{
	char *pass, name[80];
	(void)arg;
	TRY(cli_password_new(ctx->repo_url, &ctx->config, "DRE_NEW_PASSWORD_FILE", &pass));
	int rc = engine_key_add(r, pass, name);
	cli_password_free(pass);
	TRY(rc);
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:s}", "key", name));
	if (!ctx->quiet)
		printf("added key %s\n", name);
	return 0;
}

static const char *kdf_name(const repo_key_info *k)
{
	return k->damaged ? "damaged" : k->kdf == 2 ? "generated" : "scrypt";
}

static int key_print(void *arg, const repo_key_info *k)
{
	json_t *keys = arg;
	char created[32] = "-", kdf[64];
	const char *hex = k->name + 5; /* after "keys/" */
	if (keys != NULL) {
		time_t t = (time_t)k->created;
		struct tm tm;
		if (gmtime_r(&t, &tm) == NULL || strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(created, sizeof created, "?");
		json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:b, s:b}", "id", hex, "key", k->name, "created",
				      k->damaged ? NULL : created, "kdf", kdf_name(k), "in_use", k->in_use, "damaged",
				      k->damaged);
		if (o != NULL && k->kdf == 1)
			json_object_set_new(o, "scrypt", json_pack("{s:i, s:i, s:i}", "log2_n", k->scrypt_log2n, "r",
								   k->scrypt_r, "p", k->scrypt_p));
		if (o == NULL || json_array_append_new(keys, o) != 0)
			return err_set(DRE_ENOMEM, "out of memory");
		return 0;
	}
	if (!k->damaged)
		fmt_time_local(k->created * 1000000000, created);
	if (k->damaged)
		snprintf(kdf, sizeof kdf, "damaged: %s", err_msg());
	else if (k->kdf == 1)
		snprintf(kdf, sizeof kdf, "scrypt N=2^%u r=%u p=%u", k->scrypt_log2n, k->scrypt_r, k->scrypt_p);
	else
		snprintf(kdf, sizeof kdf, "generated key (HKDF)");
	printf("%s %-8.8s  %-19s  %s%s\n", k->in_use ? "*" : " ", hex, created, kdf,
	       k->in_use ? "  (in use)" : "");
	return 0;
}

static int key_list(cli_ctx *ctx, repo *r, void *arg)
{
	json_t *keys = ctx->json ? json_array() : NULL;
	(void)arg;
	if (keys == NULL)
		printf("  %-8s  %-19s  %s\n", "ID", "CREATED", "KDF");
	int rc = engine_key_list(r, key_print, keys);
	if (rc < 0 || keys == NULL) {
		json_decref(keys);
		return rc;
	}
	return cli_print_json(stdout, keys);
}

static int key_remove(cli_ctx *ctx, repo *r, void *arg)
{
	char name[80];
	TRY(engine_key_remove(r, arg, name));
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:s}", "removed", name));
	if (!ctx->quiet)
		printf("removed key %s\n", name);
	return 0;
}

static int key_passwd(cli_ctx *ctx, repo *r, void *arg)
{
	char *pass, old[80], name[80];
	(void)arg;
	snprintf(old, sizeof old, "%s", r->key_name);
	TRY(cli_password_new(ctx->repo_url, &ctx->config, "DRE_NEW_PASSWORD_FILE", &pass));
	int rc = engine_key_passwd(r, pass, name);
	cli_password_free(pass);
	TRY(rc);
	if (ctx->json)
		return cli_print_json(stdout, json_pack("{s:s, s:s}", "added", name, "removed", old));
	if (!ctx->quiet)
		printf("changed the password: added key %s, removed key %s\n", name, old);
	return 0;
}

/* Writes a new generated key to a file of its own (never over an existing one): no repository involved. */
static int key_generate(const char *path)
{
	char key[REPO_GENERATED_KEY_LEN + 2];
	TRY(repo_generate_key(key));
	size_t klen = strlen(key);
	key[klen] = '\n';
	key[klen + 1] = '\0';
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? err_set(DRE_EEXIST, "%s exists: refusing to replace a key file", path)
				       : err_sys("cannot create %s", path);
	size_t len = strlen(key);
	int rc = write(fd, key, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : err_sys("cannot write %s", path);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("cannot write %s", path);
	memset(key, 0, sizeof key);
	if (rc < 0)
		unlink(path);
	return rc;
}

static int key_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 1, 2, "what to do: 'add', 'list', 'remove ID', 'passwd' or 'generate FILE'"));
	if (strcmp(a->pos[0], "remove") == 0) {
		if (a->npos != 2)
			return cli_usage("'key remove' needs the ID of the key to remove (as 'dre key list' shows it)");
		return cli_with_repo(ctx, key_remove, a->pos[1]);
	}
	if (strcmp(a->pos[0], "generate") == 0) {
		if (a->npos != 2)
			return cli_usage("'key generate' needs the FILE to write the key to");
		TRY(key_generate(a->pos[1]));
		if (!ctx->quiet)
			fprintf(stderr, "wrote a new generated key to %s; add it with DRE_NEW_PASSWORD_FILE=%s dre key add\n",
				a->pos[1], a->pos[1]);
		return 0;
	}
	if (a->npos != 1)
		return cli_usage("'key %s' takes no further arguments", a->pos[0]);
	if (strcmp(a->pos[0], "add") == 0)
		return cli_with_repo(ctx, key_add, NULL);
	if (strcmp(a->pos[0], "list") == 0)
		return cli_with_repo(ctx, key_list, NULL);
	if (strcmp(a->pos[0], "passwd") == 0)
		return cli_with_repo(ctx, key_passwd, NULL);
	return cli_usage("unknown key subcommand '%s' (use 'add', 'list', 'remove', 'passwd' or 'generate')", a->pos[0]);
}

const cli_command cmd_key = {
	.name = "key",
	.summary = "add, list, remove or change passwords, or generate a key file",
	.opts = NULL,
	.run = key_run,
	.usage = "usage: dre key add\n"
		 "       dre key list\n"
		 "       dre key remove ID\n"
		 "       dre key passwd\n"
		 "       dre key generate FILE\n"
		 "\n"
		 "A repository can be opened by several passwords, each in a key object wrapping the same master key.\n"
		 "'add' opens the repository with the current password and adds one for a new password, read from\n"
		 "the file DRE_NEW_PASSWORD_FILE names or asked twice on the terminal; it prints the new key's name.\n"
		 "'list' prints each key object: its ID, when it was made, its KDF (scrypt for a typed password,\n"
		 "HKDF for a generated key), and '*' for the one the current password opened.\n"
		 "'remove ID' removes the key object with that ID (or a unique prefix of at least 4 digits). It\n"
		 "refuses the key the current password opened and the last usable key. Whoever knew the removed\n"
		 "password can no longer open the repository with it (but may have kept the master key: a removed\n"
		 "key re-encrypts nothing).\n"
		 "'passwd' changes the current password: it adds a key for the new one (DRE_NEW_PASSWORD_FILE or the\n"
		 "terminal), checks that the repository opens with it, then removes the current key; interrupted,\n"
		 "it leaves both keys, never none.\n"
		 "'generate FILE' writes a new random key (\"dre1k-\" and 64 hex digits, 256 bits) to FILE, mode 0600,\n"
		 "without touching a repository. Used as a password (DRE_NEW_PASSWORD_FILE=FILE dre key add, or\n"
		 "DRE_PASSWORD_FILE=FILE dre init), its key object needs no scrypt: opening the repository with it\n"
		 "takes microseconds instead of 0.1 s, which is what archive_command pays on every segment. Keep\n"
		 "FILE as safe as the repository itself: whoever reads it can open the repository.\n",
};

/* ---- cat ---- */

static int cat_snapshot(cli_ctx *ctx, repo *r, const snapshot *s, void *arg)
{
	(void)ctx, (void)arg;
	return cli_print_snapshot_json(r, s, true);
}

static json_t *config_json(const repo *r)
{
	char id[2 * REPO_ID_LEN + 1], created[32];
	time_t t = (time_t)r->created;
	struct tm tm;
	hex_encode(r->repo_id, REPO_ID_LEN, id);
	if (gmtime_r(&t, &tm) == NULL || strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(created, sizeof created, "?");
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:s}", "id", id, "version", (int)r->format,
			 "chunk_min", (json_int_t)r->params.cdc_min, "chunk_avg", (json_int_t)r->params.cdc_avg,
			 "chunk_max", (json_int_t)r->params.cdc_max, "pack_size", (json_int_t)r->params.pack_size,
			 "zstd_level", r->params.zstd_level, "created", created);
}

static int cat_config(cli_ctx *ctx, repo *r, void *arg)
{
	(void)ctx, (void)arg;
	return cli_print_json(stdout, config_json(r));
}

static int cat_run(cli_ctx *ctx, const cli_args *a)
{
	TRY(cli_want_args(a, 1, 2, "what to print: 'snapshot WHAT' or 'config'"));
	if (strcmp(a->pos[0], "config") == 0) {
		TRY(cli_want_args(a, 1, 1, ""));
		return cli_with_repo(ctx, cat_config, NULL);
	}
	if (strcmp(a->pos[0], "snapshot") == 0) {
		TRY(cli_want_args(a, 2, 2, "the snapshot: a name or an ID prefix"));
		return cli_with_snapshot(ctx, a->pos[1], -1, cat_snapshot, NULL);
	}
	return cli_usage("cannot print '%s' (use 'snapshot WHAT' or 'config')", a->pos[0]);
}

const cli_command cmd_cat = {
	.name = "cat",
	.summary = "print a snapshot or the repository config as JSON",
	.opts = NULL,
	.run = cat_run,
	.usage = "usage: dre cat snapshot WHAT\n"
		 "       dre cat config\n"
		 "\n"
		 "Prints, as JSON (--json is accepted and changes nothing):\n"
		 "  snapshot WHAT  the whole manifest of a snapshot, every chunk ID included; WHAT is a name (its\n"
		 "                 newest snapshot) or an ID prefix of at least 4 hex digits\n"
		 "  config         the repository ID, format version, chunk sizes, pack size, zstd level and\n"
		 "                 creation time\n",
};
