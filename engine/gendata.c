/*
 * gendata.c — the dump generator (gendata.h). Every byte it writes is pinned by build/dre-gendump's output
 * (tests/unit/test_gendata.c holds checksums of it): change nothing here that changes the stream.
 */
#include "engine/gendata.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/err.h"

#define GEN_TABLES 300

static const char *const words[] = {
	"alpha",   "bravo",  "charlie", "delta",    "echo",     "foxtrot", "golf",    "hotel",    "india",
	"juliet",  "kilo",   "lima",    "mike",     "november", "oscar",   "papa",    "quebec",   "romeo",
	"sierra",  "tango",  "uniform", "victor",   "whiskey",  "xray",    "yankee",  "zulu",     "order",
	"customer", "invoice", "shipped", "pending", "cancelled", "refund", "premium"};
#define NWORDS (sizeof words / sizeof *words)

typedef struct gen {
	uint64_t rng_state;
	char out[1 << 16];
	size_t out_len;
	uint64_t written, limit;
	gendata_sink sink;
	void *arg;
	int rc;    /* the sink's first error */
	bool stop; /* the sink has had enough, or failed */
} gen;

static uint64_t rng(gen *g)
{
	uint64_t z = (g->rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void flush(gen *g)
{
	if (g->stop || g->out_len == 0)
		return;
	int rc = g->sink(g->arg, g->out, g->out_len);
	g->out_len = 0;
	if (rc != 0) {
		g->stop = true;
		g->rc = rc < 0 ? rc : 0;
	}
}

static void emit(gen *g, const char *s, size_t n)
{
	if (g->out_len + n > sizeof g->out)
		flush(g);
	if (g->stop)
		return;
	memcpy(g->out + g->out_len, s, n);
	g->out_len += n;
	g->written += n;
}

static void emitf(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emitf(gen *g, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	emit(g, tmp, (size_t)n);
}

/* One COPY row: its values depend only on (table, id, salt), so an edit elsewhere leaves it unchanged. */
static void row(gen *g, uint64_t table, uint64_t id, int ncols, uint64_t salt)
{
	uint64_t saved = g->rng_state;
	g->rng_state = table * 1000003ull + id * 7919ull + salt;
	emitf(g, "%llu", (unsigned long long)id);
	for (int c = 1; c < ncols; c++) {
		uint64_t r = rng(g);
		switch ((c + table) % 5) {
		case 0: emitf(g, "\t%llu", (unsigned long long)(r % 1000000)); break;
		case 1:
			emitf(g, "\t2026-%02d-%02d %02d:%02d:%02d+00", (int)(r % 12) + 1, (int)((r >> 8) % 28) + 1,
			      (int)((r >> 16) % 24), (int)((r >> 24) % 60), (int)((r >> 32) % 60));
			break;
		case 2: emitf(g, "\t%s %s", words[r % NWORDS], words[(r >> 16) % NWORDS]); break;
		case 3:
			emitf(g, "\t%08x-%04x-4%03x-a%03x-%012llx", (unsigned)r, (unsigned)(r >> 32) & 0xffff,
			      (unsigned)(r >> 48) & 0xfff, (unsigned)(r >> 20) & 0xfff,
			      (unsigned long long)(rng(g) & 0xffffffffffffull));
			break;
		default:
			emitf(g, "\t%llu.%02llu", (unsigned long long)(r % 100000), (unsigned long long)(r >> 40) % 100);
			break;
		}
	}
	emit(g, "\n", 1);
	g->rng_state = saved;
}

int gendata_dump(uint64_t size, uint64_t seed, bool next_day, gendata_sink sink, void *arg)
{
	gen g = {.rng_state = seed, .limit = size, .sink = sink, .arg = arg};
	uint64_t per_table = size / GEN_TABLES;
	static const char header[] =
		"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n";

	emit(&g, header, sizeof header - 1);
	for (int t = 0; t < GEN_TABLES && g.written < g.limit && !g.stop; t++) {
		int ncols = 2 + (int)((seed + (uint64_t)t * 7) % 12);
		bool edited = next_day && t % 10 == 3;
		emitf(&g, "COPY public.table_%03d (id", t);
		for (int c = 1; c < ncols; c++)
			emitf(&g, ", col%d", c);
		emit(&g, ") FROM stdin;\n", 14);
		uint64_t start = g.written;
		for (uint64_t id = 1; g.written - start < per_table && g.written < g.limit && !g.stop; id++) {
			uint64_t h = (id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)t;
			if (edited && h % 500 == 0)
				continue; /* deleted */
			row(&g, (uint64_t)t + seed * 1000, id, ncols, edited && h % 500 == 1 ? 77 : 0); /* updated */
			if (edited && h % 500 == 2)
				row(&g, (uint64_t)t + seed * 1000, id + 1000000000, ncols, 5); /* inserted */
		}
		emit(&g, "\\.\n\n", 4);
	}
	flush(&g);
	return g.rc;
}

typedef struct fd_sink {
	int fd;
	const char *what;
} fd_sink;

static int to_fd(void *arg, const void *data, size_t len)
{
	fd_sink *s = arg;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(s->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("cannot write %s", s->what);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int gendata_dump_fd(int fd, uint64_t size, uint64_t seed, bool next_day, const char *what)
{
	fd_sink s = {fd, what};
	return gendata_dump(size, seed, next_day, to_fd, &s);
}

typedef struct fill_sink {
	uint8_t *buf;
	size_t len, done;
} fill_sink;

static int to_buf(void *arg, const void *data, size_t len)
{
	fill_sink *s = arg;
	size_t n = len < s->len - s->done ? len : s->len - s->done;
	memcpy(s->buf + s->done, data, n);
	s->done += n;
	return s->done == s->len ? 1 : 0;
}

int gendata_dump_fill(uint8_t *buf, size_t len, uint64_t seed, bool next_day)
{
	fill_sink s = {buf, len, 0};
	if (len == 0)
		return 0;
	TRY(gendata_dump(len, seed, next_day, to_buf, &s));
	/* the stream for size len is longer than len (gendata.h); a shorter one would be a generator bug */
	if (s.done < len)
		return err_set(DRE_EINVAL, "the dump generator gave %zu bytes for %zu", s.done, len);
	return 0;
}
