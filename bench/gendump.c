/*
 * gendump — writes the deterministic, pg_dump-like SQL text stream of engine/gendata.h to stdout, for tests,
 * the demo and the bench/ scripts (`dre bench` calls the same generator directly).
 *
 *   dre-gendump SIZE_MB [SEED] [--next-day]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gendata.h"
#include "store/err.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dre-gendump SIZE_MB [SEED] [--next-day]\n");
		return 2;
	}
	uint64_t size = (uint64_t)strtoull(argv[1], NULL, 10) << 20;
	uint64_t seed = argc > 2 && argv[2][0] != '-' ? strtoull(argv[2], NULL, 10) : 1;
	bool next_day = argc > 2 && strcmp(argv[argc - 1], "--next-day") == 0;
	if (gendata_dump_fd(STDOUT_FILENO, size, seed, next_day, "standard output") < 0) {
		fprintf(stderr, "dre-gendump: %s\n", err_msg());
		return 1;
	}
	return 0;
}
