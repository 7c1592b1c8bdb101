/* fuzz_ini_config — `--config FILE` (cli/config.c): an INI file of settings, read by cli_config_load as every
 * command reads it. Input: the file. */
#include <string.h>

#include "cli/cli.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_path("config.ini");
	fuzz_write_file(path, data, size);
	cli_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.config_path = path;
	(void)cli_config_load(&ctx);
	cli_config_free();
	return 0;
}
