/*
 * genmodel — writes a deterministic stand-in for a model file to stdout, for benchmarks: a small header, then
 * 4 MiB tensors of bfloat16 weights drawn from a bell-shaped distribution (so zstd saves only the little that
 * real weights allow, mostly in the exponent byte).
 *
 *   dre-genmodel SIZE_MB [SEED] [--fine-tuned]
 *
 * --fine-tuned gives the same file with every tenth tensor re-drawn, as training the top layers and a few
 * adapters would leave it; the other tensors are byte-identical and at the same offsets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENSOR (4u << 20)

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dre-genmodel SIZE_MB [SEED] [--fine-tuned]\n");
		return 2;
	}
	size_t mb = strtoul(argv[1], NULL, 10);
	uint64_t seed = argc > 2 && argv[2][0] != '-' ? strtoull(argv[2], NULL, 10) : 1;
	int tuned = argc > 2 && strcmp(argv[argc - 1], "--fine-tuned") == 0;
	size_t ntensors = (mb << 20) / TENSOR;
	uint16_t *t = malloc(TENSOR);
	if (t == NULL)
		return 1;
	printf("{\"format\":\"dre-genmodel\",\"tensors\":%zu,\"dtype\":\"bf16\"}\n", ntensors);
	for (size_t k = 0; k < ntensors; k++) {
		uint64_t s = seed * 1000003u + k + (tuned && k % 10 == 9 ? 0x5eed0000u : 0);
		float scale = 0.02f * (float)(1 + k % 7);
		for (size_t i = 0; i < TENSOR / 2; i++) {
			/* a sum of four uniforms: close enough to a normal for the byte statistics */
			uint64_t r = rng(&s);
			float x = ((float)(r & 0xffff) + (float)(r >> 16 & 0xffff) + (float)(r >> 32 & 0xffff) +
				   (float)(r >> 48)) / 65536.0f - 2.0f;
			x *= scale;
			uint32_t bits;
			memcpy(&bits, &x, sizeof bits);
			t[i] = (uint16_t)(bits >> 16);
		}
		if (fwrite(t, 1, TENSOR, stdout) != TENSOR)
			return 1;
	}
	free(t);
	return 0;
}
