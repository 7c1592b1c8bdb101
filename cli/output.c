/*
 * output.c — how dre shows numbers, times and progress to people: binary sizes with one decimal ("1.5 GiB"),
 * local times, 8-hex-digit short IDs, dedup ratios, the one-line progress display on a terminal, and JSON
 * printing. Kept in one place so every command formats the same quantity the same way.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void fmt_size(uint64_t n, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	if (n < 1024) {
		snprintf(out, 32, "%" PRIu64 " B", n);
		return;
	}
	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	snprintf(out, 32, "%.1f %s", v, units[u]);
}

/* "3.2x"; "-" when nothing was read; "inf" when everything read was already stored. */
void fmt_ratio(uint64_t size, uint64_t stored, char out[32])
{
	if (size == 0)
		snprintf(out, 32, "-");
	else if (stored == 0)
		snprintf(out, 32, "inf");
	else
		snprintf(out, 32, "%.1fx", (double)size / (double)stored);
}

void fmt_time_local(int64_t ns, char out[32])
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, 32, "?");
}

void fmt_time_utc(int64_t ns, char out[40])
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, 40, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		snprintf(out, 40, "?");
}

void fmt_id_short(const uint8_t id[CRYPTO_ID_LEN], char out[9])
{
	hex_encode(id, 4, out);
}

/* One byte as it is printed: control characters and the backslash as C escapes; out gets up to 4 bytes + NUL. */
static size_t escape_byte(unsigned char c, char out[5])
{
	static const char named[] = {['\a'] = 'a', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n',
				     ['\v'] = 'v', ['\f'] = 'f', ['\r'] = 'r'};
	if (c == '\\')
		return (size_t)snprintf(out, 5, "\\\\");
	if (c < sizeof named && named[c] != 0)
		return (size_t)snprintf(out, 5, "\\%c", named[c]);
	if (c < 32 || c == 127)
		return (size_t)snprintf(out, 5, "\\x%02x", c);
	out[0] = (char)c;
	out[1] = '\0';
	return 1;
}

void cli_fputs_escaped(const char *s, FILE *f)
{
	char e[5];
	for (; *s != '\0'; s++) {
		size_t n = escape_byte((unsigned char)*s, e);
		fwrite(e, 1, n, f);
	}
}

char *cli_escape(const char *s)
{
	char e[5];
	size_t len = 0;
	for (const char *p = s; *p != '\0'; p++)
		len += escape_byte((unsigned char)*p, e);
	char *out = malloc(len + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++)
		o += escape_byte((unsigned char)*s, o);
	*o = '\0';
	return out;
}

double mb_per_s(uint64_t bytes, double seconds)
{
	return seconds > 0 ? (double)bytes / 1e6 / seconds : 0.0;
}

int cli_print_json(FILE *f, json_t *j)
{
	if (j == NULL)
		return err_set(DRE_ENOMEM, "out of memory building JSON");
	int rc = json_dumpf(j, f, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(j);
	if (rc != 0 || fputc('\n', f) == EOF)
		return err_sys("cannot write JSON output");
	return 0;
}

void cli_warn(void *arg, const char *msg)
{
	if (arg != NULL)
		cli_progress_end(arg);
	fprintf(stderr, "dre: warning: %s\n", msg);
}

static void progress_line(void *arg, uint64_t done, uint64_t stored, double seconds, bool final)
{
	cli_progress *p = arg;
	char d[32], s[32];
	fmt_size(done, d);
	fprintf(stderr, "\r%s %s, %.1f MB/s", d, p->verb, mb_per_s(done, seconds));
	if (p->show_stored) {
		fmt_size(stored, s);
		/* what dedup and compression together kept out of the store so far */
		double saved = done > 0 && stored < done ? 100.0 * (double)(done - stored) / (double)done : 0.0;
		fprintf(stderr, ", %s stored, %.0f%% saved", s, saved);
	}
	fputs("\033[K", stderr); /* erase what a longer previous line left */
	if (final)
		fputc('\n', stderr);
	p->open_line = !final;
}

engine_hooks cli_hooks(const cli_ctx *ctx, cli_progress *p)
{
	bool show = !ctx->quiet && isatty(STDERR_FILENO);
	p->open_line = false;
	return (engine_hooks){.progress = show ? progress_line : NULL, .warn = cli_warn, .arg = p};
}

void cli_progress_end(cli_progress *p)
{
	if (p->open_line)
		fputc('\n', stderr);
	p->open_line = false;
}

/*
 * Prints the header's fields, then the nodes as they are walked, one per line, with their chunk IDs one per
 * line: a snapshot of any size prints in bounded memory, as one JSON object.
 */
int cli_print_snapshot_json(repo *r, const snapshot *s, bool with_chunks)
{
	json_t *head = snap_summary_json(s);
	char *text = head ? json_dumps(head, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
	json_decref(head);
	size_t tlen = text ? strlen(text) : 0;
	if (tlen < 2 || text[tlen - 1] != '}') {
		free(text);
		return err_set(DRE_ENOMEM, "cannot render the snapshot as JSON");
	}
	text[tlen - 2] = '\0'; /* "\n}" */
	printf("%s,\n  \"nodes\": [", text);
	free(text);

	snap_walk *w;
	snap_node n;
	int rc;
	const char *sep = "\n";
	TRY(snap_walk_open(r, NULL, s, with_chunks, &w));
	while ((rc = snap_walk_next(w, &n)) == 1) {
		json_t *j = snap_node_json(&n);
		char *node = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(j);
		if (node == NULL) {
			rc = err_set(DRE_ENOMEM, "cannot render node %s as JSON", n.path);
			break;
		}
		size_t nlen = strlen(node);
		node[nlen - 1] = '\0'; /* the closing brace: chunks may follow */
		printf("%s    %s", sep, node);
		free(node);
		sep = ",\n";
		if (!with_chunks) {
			putchar('}');
			continue;
		}
		fputs(",\"chunks\":[", stdout);
		rc = 0;
		for (uint64_t k = 0; rc == 0 && k < n.nchunks; k++) {
			uint8_t id[CRYPTO_ID_LEN];
			char hex[2 * CRYPTO_ID_LEN + 1];
			rc = snap_walk_chunk(w, id);
			hex_encode(id, CRYPTO_ID_LEN, hex);
			if (rc == 0)
				printf("%s\n      \"%s\"", k ? "," : "", hex);
		}
		fputs(n.nchunks ? "\n    ]}" : "]}", stdout);
		if (rc < 0)
			break;
	}
	snap_walk_free(w);
	TRY(rc);
	fputs("\n  ]\n}\n", stdout);
	if (fflush(stdout) != 0 || ferror(stdout))
		return err_sys("cannot write JSON output");
	return 0;
}
