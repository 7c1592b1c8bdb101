/*
 * args.c — the command-line parser. Hand-rolled rather than getopt_long because dre needs three things getopt
 * makes awkward: global options accepted both before and after the command, a "--" whose position matters
 * (`dre push NAME -- COMMAND ARGS...`), and errors that go through err.h like every other failure.
 *
 * Accepted forms: "--name value", "--name=value", "-x value", "-xvalue", bundled flags "-qh"; "-" alone and
 * everything after "--" are positional.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cli_opt global_opts[] = {
	{"repo", 'r', true}, {"json", 0, false}, {"quiet", 'q', false}, {"threads", 0, true},
	{"help", 'h', false}, {"version", 0, false}, {"s3-endpoint", 0, true}, {"s3-region", 0, true},
	{"s3-ca-file", 0, true}, {"s3-storage-class", 0, true}, {"s3-sse", 0, true}, {"s3-sse-kms-key-id", 0, true},
	{"s3-path-style", 0, false}, {"s3-virtual-hosted", 0, false}, {"config", 0, true},
	{"cache-dir", 0, true}, {"no-cache", 0, false}, {"metrics", 0, true}, {0},
};
enum {
	G_REPO, G_JSON, G_QUIET, G_THREADS, G_HELP, G_VERSION, G_S3_ENDPOINT, G_S3_REGION, G_S3_CA_FILE,
	G_S3_STORAGE_CLASS, G_S3_SSE, G_S3_SSE_KMS_KEY_ID, G_S3_PATH_STYLE, G_S3_VIRTUAL_HOSTED, G_CONFIG,
	G_CACHE_DIR, G_NO_CACHE, G_METRICS
};

#define MAX_THREADS 1024

typedef struct match {
	const cli_opt *o;
	int idx;
	bool global;
} match;

static bool usage_hint;

bool cli_usage_hint(void)
{
	return usage_hint;
}

int(cli_usage)(const char *fmt, ...) /* in parentheses: not cli.h's analyzer macro */
{
	char text[512];
	usage_hint = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return err_set(CLI_EUSAGE, "%s", text);
}

int cli_as_usage(int rc)
{
	char text[1024];
	if (rc != DRE_EINVAL)
		return rc;
	snprintf(text, sizeof text, "%s", err_msg());
	return cli_usage("%s", text);
}

/* Finds a long option (name, len) or, when short_name is not 0, a short one: the command's first. */
static bool lookup(const cli_opt *cmd, const char *name, size_t len, char short_name, match *m)
{
	const cli_opt *tables[2] = {cmd, global_opts};
	for (int t = 0; t < 2; t++) {
		for (int k = 0; tables[t] != NULL && tables[t][k].name != NULL; k++) {
			const cli_opt *o = &tables[t][k];
			bool hit = short_name ? o->short_name == short_name
					      : name != NULL && strlen(o->name) == len && strncmp(o->name, name, len) == 0;
			if (hit) {
				*m = (match){o, k, t == 1};
				return true;
			}
		}
	}
	return false;
}

static int store_opt(const match *m, const char *val, cli_ctx *ctx, cli_args *a)
{
	uint64_t n;
	if (!m->global) {
		a->opt[m->idx] = val;
		if (m->o->has_arg) /* one argument each at least, so argc bounds them (a flag may come bundled) */
			a->vals[a->nvals++] = (struct cli_optval){m->idx, val};
		return 0;
	}
	switch (m->idx) {
	case G_REPO: ctx->repo_url = val; break;
	case G_JSON: ctx->json = true; break;
	case G_QUIET: ctx->quiet = true; break;
	case G_HELP: ctx->help = true; break;
	case G_VERSION: ctx->version = true; break;
	case G_S3_ENDPOINT: ctx->store.s3_endpoint = val; break;
	case G_S3_REGION: ctx->store.s3_region = val; break;
	case G_S3_CA_FILE: ctx->store.s3_ca_file = val; break;
	case G_S3_STORAGE_CLASS: ctx->store.s3_storage_class = val; break;
	case G_S3_SSE: ctx->store.s3_sse = val; break;
	case G_S3_SSE_KMS_KEY_ID: ctx->store.s3_sse_kms_key_id = val; break;
	case G_S3_PATH_STYLE: ctx->store.s3_addressing = STORE_S3_PATH_STYLE; break;
	case G_S3_VIRTUAL_HOSTED: ctx->store.s3_addressing = STORE_S3_VIRTUAL_HOSTED; break;
	case G_CONFIG: ctx->config_path = val; break;
	case G_CACHE_DIR:
		if (*val == '\0')
			return cli_usage("--cache-dir: the directory name is empty");
		ctx->cache_dir = val;
		break;
	case G_NO_CACHE: ctx->no_cache = true; break;
	case G_METRICS:
		if (*val == '\0')
			return cli_usage("--metrics: the file name is empty");
		ctx->metrics_path = val;
		break;
	case G_THREADS:
		TRY(cli_parse_uint("threads", val, MAX_THREADS, &n));
		ctx->threads = (int)n;
		break;
	}
	return 0;
}

static int parse_long(int argc, char **argv, int *i, const cli_opt *cmd, cli_ctx *ctx, cli_args *a)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const char *val = "";
	match m;

	if (!lookup(cmd, arg, len, 0, &m))
		return cli_usage("unknown option '--%.*s'", (int)len, arg);
	if (m.o->has_arg) {
		if (eq != NULL)
			val = eq + 1;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else
			return cli_usage("option '--%s' needs a value", m.o->name);
	} else if (eq != NULL) {
		return cli_usage("option '--%s' takes no value", m.o->name);
	}
	return store_opt(&m, val, ctx, a);
}

static int parse_short(int argc, char **argv, int *i, const cli_opt *cmd, cli_ctx *ctx, cli_args *a)
{
	for (const char *p = argv[*i] + 1; *p != '\0'; p++) {
		match m;
		if (!lookup(cmd, NULL, 0, *p, &m))
			return cli_usage("unknown option '-%c'", *p);
		if (!m.o->has_arg) {
			TRY(store_opt(&m, "", ctx, a));
			continue;
		}
		if (p[1] != '\0')
			return store_opt(&m, p + 1, ctx, a);
		if (*i + 1 >= argc)
			return cli_usage("option '-%c' needs a value", *p);
		return store_opt(&m, argv[++*i], ctx, a);
	}
	return 0;
}

int cli_parse(int argc, char **argv, int *i, const cli_opt *opts, cli_ctx *ctx, cli_args *a,
	      bool stop_at_positional)
{
	memset(a, 0, sizeof *a);
	a->dashdash = SIZE_MAX;
	a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
	a->vals = calloc((size_t)argc + 1, sizeof *a->vals);
	if (a->pos == NULL || a->vals == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	for (; *i < argc; (*i)++) {
		char *arg = argv[*i];
		if (a->dashdash != SIZE_MAX || arg[0] != '-' || arg[1] == '\0') {
			if (stop_at_positional)
				return 0;
			a->pos[a->npos++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			a->dashdash = a->npos;
		} else if (arg[1] == '-') {
			TRY(parse_long(argc, argv, i, opts, ctx, a));
		} else {
			TRY(parse_short(argc, argv, i, opts, ctx, a));
		}
	}
	return 0;
}

void cli_args_free(cli_args *a)
{
	free(a->pos);
	free(a->vals);
	a->pos = NULL;
	a->vals = NULL;
}

int cli_opt_all(const cli_args *a, int idx, const char ***out, size_t *n)
{
	size_t k = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < a->nvals; i++)
		k += a->vals[i].idx == idx;
	if (k == 0)
		return 0;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, each sizeof **out */
	const char **v = calloc(k, sizeof *v);
	if (v == NULL)
		return err_set(DRE_ENOMEM, "out of memory");
	for (size_t i = 0; i < a->nvals; i++)
		if (a->vals[i].idx == idx)
			v[(*n)++] = a->vals[i].val;
	*out = v;
	return 0;
}

int cli_want_args(const cli_args *a, size_t min, size_t max, const char *what)
{
	if (a->npos < min)
		return cli_usage("missing %s", what);
	if (a->npos > max)
		return cli_usage("unexpected argument '%s'", a->pos[max]);
	return 0;
}

/* Leading decimal digits of text into *out; *end after them. False when there are none or on overflow. */
static bool take_digits(const char *text, uint64_t *out, const char **end)
{
	if (!isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	char *e;
	unsigned long long v = strtoull(text, &e, 10);
	if (errno == ERANGE)
		return false;
	*out = v;
	*end = e;
	return true;
}

int cli_parse_uint(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
	const char *end;
	if (!take_digits(text, out, &end) || *end != '\0')
		return cli_usage("--%s: '%s' is not a number", opt, text);
	if (*out > max)
		return cli_usage("--%s: %s is larger than %llu", opt, text, (unsigned long long)max);
	return 0;
}

/* The shift of a size suffix: "" or "B" 0, "K"/"KiB"/"KB" 10, M 20, G 30, T 40; -1 when not one of those. */
static int suffix_shift(const char *s)
{
	static const char units[] = "KMGT";
	if (*s == '\0' || strcasecmp(s, "B") == 0)
		return 0;
	const char *u = strchr(units, toupper((unsigned char)*s));
	if (u == NULL || *u == '\0')
		return -1;
	s++;
	if (*s != '\0' && strcasecmp(s, "B") != 0 && strcasecmp(s, "iB") != 0)
		return -1;
	return 10 * (int)(u - units + 1);
}

int cli_parse_size(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int shift;
	if (!take_digits(text, &v, &end) || (shift = suffix_shift(end)) < 0)
		return cli_usage("--%s: '%s' is not a size (a number with an optional K, M or G suffix)", opt, text);
	if (v > (max >> shift))
		return cli_usage("--%s: %s is larger than %llu bytes", opt, text, (unsigned long long)max);
	*out = v << shift;
	return 0;
}
