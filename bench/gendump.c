/*
 * gendump — writes a deterministic, pg_dump-like SQL text stream to stdout, for tests, the demo and benchmarks.
 *
 *   dre-gendump SIZE_MB [SEED] [--next-day]
 *
 * The dump has 300 tables of different widths (ints, timestamps, words, uuids, numerics) in COPY blocks. With
 * --next-day the same dump is produced with one table in ten edited: a few rows changed, inserted or deleted,
 * spread through the table, as a day of OLTP traffic would leave it. Everything else is byte-identical.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
			      "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
			      "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "order",
			      "customer", "invoice", "shipped", "pending", "cancelled", "refund", "premium"};
#define NWORDS (sizeof words / sizeof *words)

static char out[1 << 16];
static size_t out_len;
static uint64_t written, limit;

static void emit(const char *s, size_t n)
{
	if (out_len + n > sizeof out) {
		fwrite(out, 1, out_len, stdout);
		out_len = 0;
	}
	memcpy(out + out_len, s, n);
	out_len += n;
	written += n;
}

static void emitf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void emitf(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	emit(tmp, (size_t)n);
}

static void row(uint64_t table, uint64_t id, int ncols, uint64_t salt)
{
	uint64_t saved = rng_state;
	rng_state = table * 1000003ull + id * 7919ull + salt;
	emitf("%llu", (unsigned long long)id);
	for (int c = 1; c < ncols; c++) {
		uint64_t r = rng();
		switch ((c + table) % 5) {
		case 0: emitf("\t%llu", (unsigned long long)(r % 1000000)); break;
		case 1:
			emitf("\t2026-%02d-%02d %02d:%02d:%02d+00", (int)(r % 12) + 1, (int)((r >> 8) % 28) + 1,
			      (int)((r >> 16) % 24), (int)((r >> 24) % 60), (int)((r >> 32) % 60));
			break;
		case 2: emitf("\t%s %s", words[r % NWORDS], words[(r >> 16) % NWORDS]); break;
		case 3:
			emitf("\t%08x-%04x-4%03x-a%03x-%012llx", (unsigned)r, (unsigned)(r >> 32) & 0xffff,
			      (unsigned)(r >> 48) & 0xfff, (unsigned)(r >> 20) & 0xfff,
			      (unsigned long long)(rng() & 0xffffffffffffull));
			break;
		default: emitf("\t%llu.%02llu", (unsigned long long)(r % 100000), (unsigned long long)(r >> 40) % 100); break;
		}
	}
	emit("\n", 1);
	rng_state = saved;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dre-gendump SIZE_MB [SEED] [--next-day]\n");
		return 2;
	}
	limit = (uint64_t)strtoull(argv[1], NULL, 10) << 20;
	uint64_t seed = argc > 2 && argv[2][0] != '-' ? strtoull(argv[2], NULL, 10) : 1;
	int next_day = argc > 2 && strcmp(argv[argc - 1], "--next-day") == 0;
	const int ntables = 300;
	uint64_t per_table = limit / ntables;

	rng_state = seed;
	static const char header[] =
		"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n";
	emit(header, sizeof header - 1);
	for (int t = 0; t < ntables && written < limit; t++) {
		int ncols = 2 + (int)((seed + (uint64_t)t * 7) % 12);
		int edited = next_day && t % 10 == 3;
		emitf("COPY public.table_%03d (id", t);
		for (int c = 1; c < ncols; c++)
			emitf(", col%d", c);
		emit(") FROM stdin;\n", 14);
		uint64_t start = written;
		for (uint64_t id = 1; written - start < per_table && written < limit; id++) {
			uint64_t h = (id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)t;
			if (edited && h % 500 == 0)
				continue; /* deleted */
			row((uint64_t)t + seed * 1000, id, ncols, edited && h % 500 == 1 ? 77 : 0); /* updated */
			if (edited && h % 500 == 2)
				row((uint64_t)t + seed * 1000, id + 1000000000, ncols, 5); /* inserted */
		}
		emit("\\.\n\n", 4);
	}
	fwrite(out, 1, out_len, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
