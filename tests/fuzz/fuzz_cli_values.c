/* fuzz_cli_values — what the command line parses out of text: numbers and sizes (cli/args.c), times
 * (engine_parse_time: --time), calendar durations (retention_parse_duration: --keep-within, --pitr-window),
 * snapshot ID prefixes, generated keys, and whole argument vectors (cli_parse with an option table like a
 * command's). Input: one byte choosing the parser, then the text (for cli_parse: arguments split at NUL bytes). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/lifecycle/retention.h"
#include "tests/fuzz/fuzz.h"

static void args(const uint8_t *p, size_t len)
{
	static const cli_opt opts[] = {{"time", 't', true}, {"dry-run", 'n', false}, {"keep-daily", 0, true},
				       {"json", 0, false}, {0}};
	char *text = malloc(len + 2);
	char *argv[65];
	int argc = 0;
	if (text == NULL)
		abort();
	memcpy(text, p, len);
	text[len] = '\0';
	argv[argc++] = "dre";
	for (size_t i = 0; i <= len && argc < 64; i += strlen(text + i) + 1)
		argv[argc++] = text + i;
	argv[argc] = NULL;
	cli_ctx ctx;
	cli_args a;
	memset(&ctx, 0, sizeof ctx);
	memset(&a, 0, sizeof a);
	int i = 1;
	(void)cli_parse(argc, argv, &i, opts, &ctx, &a, false);
	cli_args_free(&a);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 8 == 7) {
		args(data + 1, size - 1);
		return 0;
	}
	char *text = fuzz_strndup(data + 1, size - 1);
	uint64_t v;
	int64_t ns;
	retention_duration d;
	switch (data[0] % 8) {
	case 0: (void)cli_parse_uint("threads", text, 1024, &v); break;
	case 1: (void)cli_parse_uint("n", text, UINT64_MAX, &v); break;
	case 2: (void)cli_parse_size("size", text, UINT64_MAX, &v); break;
	case 3: (void)cli_parse_size("pack-size", text, 1u << 30, &v); break;
	case 4: (void)engine_parse_time(text, &ns); break;
	case 5:
		if (retention_parse_duration(text, &d) == 0)
			(void)retention_before(&d, INT64_C(1767225600) * 1000000000);
		break;
	default:
		(void)snap_id_prefix_text(text);
		(void)repo_is_generated_key(text);
		break;
	}
	free(text);
	return 0;
}
