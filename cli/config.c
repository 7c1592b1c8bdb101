/*
 * config.c — `--config FILE`: an INI file of settings for runs whose environment dre does not choose
 * (PostgreSQL's archive_command, cron). Its keys are the long options and the environment variables in
 * lowercase with dashes, one per line, outside any section:
 *
 *   repository = s3://backups/prod           (-r, DRE_REPOSITORY)
 *   password-file = /etc/dre/password        (DRE_PASSWORD_FILE; password-command: DRE_PASSWORD_COMMAND)
 *   threads = 2                              (--threads)
 *   s3-endpoint, s3-region, s3-ca-file, s3-storage-class, s3-sse, s3-sse-kms-key-id   (--s3-*)
 *   s3-path-style = true | s3-virtual-hosted = true
 *   s3-access-key-id, s3-secret-access-key, s3-session-token   (AWS_ACCESS_KEY_ID, ...)
 *   s3-profile, s3-credentials-file                            (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE)
 *   metrics-file = /var/lib/node_exporter/textfile/dre.prom   (--metrics)
 *
 * The command line wins over the environment, and the environment over the file (pgBackRest's order). A key
 * it does not know, a section, or a line it cannot read is an error naming the file and the line. The file
 * may hold secrets: it is read as given, and nothing from it is printed but key names.
 */
#include "cli/cli.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_VALUES 32

/* Values read from the file; freed by cli_config_free(). */
static char *values[CONFIG_MAX_VALUES];
static size_t nvalues;

typedef struct config_read {
	cli_ctx *ctx;
	char err[512];
} config_read;

static int keep(config_read *c, const char *value, const char **dst)
{
	if (nvalues == CONFIG_MAX_VALUES || (values[nvalues] = strdup(value)) == NULL) {
		snprintf(c->err, sizeof c->err, "too many settings, or out of memory");
		return 0;
	}
	*dst = values[nvalues++];
	return 1;
}

static int flag(config_read *c, const char *name, const char *value, bool *out)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
		*out = true;
	else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
		*out = false;
	else {
		snprintf(c->err, sizeof c->err, "%s wants true or false", name);
		return 0;
	}
	return 1;
}

static int on_key(void *arg, const char *section, const char *name, const char *value)
{
	config_read *c = arg;
	cli_config *cfg = &c->ctx->config;
	store_opts *so = &cfg->store;
	if (c->err[0])
		return 1; /* the first problem is the one reported */
	if (*section) {
		snprintf(c->err, sizeof c->err, "sections are not used (found [%s])", section);
		return 0;
	}
	struct {
		const char *name;
		const char **dst;
	} strings[] = {
		{"repository", &cfg->repository},	   {"password-file", &cfg->password_file},
		{"password-command", &cfg->password_command}, {"threads", &cfg->threads},
		{"s3-endpoint", &so->s3_endpoint},	   {"s3-region", &so->s3_region},
		{"s3-ca-file", &so->s3_ca_file},	   {"s3-storage-class", &so->s3_storage_class},
		{"s3-sse", &so->s3_sse},		   {"s3-sse-kms-key-id", &so->s3_sse_kms_key_id},
		{"s3-access-key-id", &so->s3_access_key_id}, {"s3-secret-access-key", &so->s3_secret_access_key},
		{"s3-session-token", &so->s3_session_token}, {"s3-profile", &so->s3_profile},
		{"s3-credentials-file", &so->s3_credentials_file},
		{"pgdata", &cfg->pgdata},		   {"dbname", &cfg->dbname},
		{"metrics-file", &cfg->metrics_file},
	};
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
		if (strcmp(name, strings[i].name) == 0)
			return keep(c, value, strings[i].dst);
	bool on;
	if (strcmp(name, "s3-path-style") == 0 || strcmp(name, "s3-virtual-hosted") == 0) {
		if (!flag(c, name, value, &on))
			return 0;
		if (on)
			so->s3_addressing = name[3] == 'p' ? STORE_S3_PATH_STYLE : STORE_S3_VIRTUAL_HOSTED;
		return 1;
	}
	snprintf(c->err, sizeof c->err, "unknown setting '%s'", name);
	return 0;
}

int cli_config_load(cli_ctx *ctx)
{
	const char *path = ctx->config_path;
	if (path == NULL)
		return 0;
	if (*path == '\0')
		return err_set(CLI_EUSAGE, "--config: the file name is empty");
	config_read c = {.ctx = ctx};
	int rc = ini_parse(path, on_key, &c);
	if (rc == -1)
		return err_sys("cannot read config file %s", path);
	if (rc == -2)
		return err_set(DRE_ENOMEM, "config file %s: out of memory", path);
	if (rc > 0)
		return err_set(CLI_EUSAGE, "config file %s, line %d: %s", path, rc,
			       c.err[0] ? c.err : "not a 'key = value' line");
	if (ctx->threads == 0 && ctx->config.threads != NULL) {
		uint64_t n;
		TRY(cli_parse_uint("threads", ctx->config.threads, 1024, &n));
		ctx->threads = (int)n;
	}
	ctx->store.fallback = &ctx->config.store;
	if (ctx->metrics_path == NULL && ctx->config.metrics_file != NULL) {
		if (*ctx->config.metrics_file == '\0')
			return err_set(CLI_EUSAGE, "config file %s: metrics-file is empty", path);
		ctx->metrics_path = ctx->config.metrics_file;
	}
	return 0;
}

void cli_config_free(void)
{
	for (size_t i = 0; i < nvalues; i++) {
		memset(values[i], 0, strlen(values[i])); /* may be a secret */
		free(values[i]);
	}
	nvalues = 0;
}
