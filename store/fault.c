/*
 * fault.c — DRE_TEST_STORE_FAULTS: the spec, the seeded draws, and the counting, delaying driver that store_open
 * puts around a store when the variable is set (store/fault.h; the user's side is in store.h).
 *
 * The rate is per store operation: the wrapper draws once as an operation begins and, at the rate, arms one
 * fault for the calling thread, a (site, kind) pair picked among those the operation can meet (a put: creating
 * its temporary file, a pwrite, the fsync of the file or of its directory; a get: the open or a pread; ...).
 * The local driver's store_fault_hit at that site fires it; the wrapper disarms whatever the operation did not
 * reach (an S3 store reaches none). Draws are a counter run through splitmix64 from the seed, so they need no
 * lock; which operation gets which draw depends on how threads interleave, so a seed makes a run's fault rate
 * reproducible, not its exact faults.
 */
#include "store/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "store/err.h"

#define ENV "DRE_TEST_STORE_FAULTS"
#define LATENCY_MS_MAX 60000u

enum fault_kind { KIND_EIO, KIND_ENOSPC, KIND_SHORT_WRITE, KIND_SHORT_READ, KIND_FSYNC, KIND_LATENCY, KIND_N };

static const char *const kind_names[KIND_N] = {"eio", "enospc", "short-write", "short-read", "fsync", "latency"};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#define BIT(k) (1u << (k))
#define FAILURE_KINDS                                                                                          \
	(BIT(KIND_EIO) | BIT(KIND_ENOSPC) | BIT(KIND_SHORT_WRITE) | BIT(KIND_SHORT_READ) | BIT(KIND_FSYNC))

enum op { OP_PUT, OP_GET, OP_STAT, OP_LIST, OP_DEL, OP_OTHER, OP_N };
static const char *const op_names[OP_N] = {"put", "get", "stat", "list", "del", "other"};

/* What each operation can meet: where, and what the system call can really return there. */
struct fault_pair {
	enum store_fault_site site;
	enum fault_kind kind;
};
#define PAIRS_MAX 7
static const struct fault_pair op_pairs[OP_N][PAIRS_MAX + 1] = {
	[OP_PUT] = {{STORE_FAULT_CREATE, KIND_EIO}, {STORE_FAULT_CREATE, KIND_ENOSPC}, {STORE_FAULT_WRITE, KIND_EIO},
		    {STORE_FAULT_WRITE, KIND_ENOSPC}, {STORE_FAULT_WRITE, KIND_SHORT_WRITE},
		    {STORE_FAULT_SYNC, KIND_FSYNC}, {STORE_FAULT_SYNC_DIR, KIND_FSYNC}, {0, KIND_N}},
	[OP_GET] = {{STORE_FAULT_OPEN, KIND_EIO}, {STORE_FAULT_READ, KIND_EIO}, {STORE_FAULT_READ, KIND_SHORT_READ},
		    {0, KIND_N}},
	[OP_STAT] = {{STORE_FAULT_STAT, KIND_EIO}, {0, KIND_N}},
	[OP_LIST] = {{STORE_FAULT_LIST, KIND_EIO}, {0, KIND_N}},
	[OP_DEL] = {{STORE_FAULT_DELETE, KIND_EIO}, {STORE_FAULT_SYNC_DIR, KIND_FSYNC}, {0, KIND_N}},
	[OP_OTHER] = {{0, KIND_N}},
};

/* The fault armed for this thread's current operation (kind KIND_N: none). */
static _Thread_local struct fault_pair armed = {0, KIND_N};

struct store_faults {
	uint64_t seed;
	double rate;
	uint64_t threshold; /* a draw below this fires: rate × 2^64 */
	unsigned kinds;     /* BIT(kind) for each enabled kind */
	unsigned latency_ms;
	unsigned ops;  /* BIT(op) for each operation that may get a fault (ops=; default all) */
	char *match;   /* only keys (list: prefixes) starting with this get faults (match=); NULL: all */
	char *stats; /* file that each closing store appends a line of counts to; NULL for none */
	atomic_uint_fast64_t draws;
	atomic_uint_fast64_t injected[KIND_N]; /* not yet reported by a closing store */
};

struct store_faults *store_faults_active;

static struct store_faults loaded;
static int load_rc;
static char load_msg[512];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* ---- the spec ---- */

static int spec_error(const char *spec, const char *fmt, const char *what)
{
	char why[256];
	snprintf(why, sizeof why, fmt, what);
	return err_set(DRE_EINVAL,
		       "%s=\"%s\": %s. HINT: seed=N,rate=0.05,kinds=eio,enospc,short-write,short-read,fsync,"
		       "ops=put,get,stat,list,del,match=PREFIX,latency-ms=N,stats=FILE (store/store.h)",
		       ENV, spec, why);
}

static int parse_kind(const char *spec, const char *name, unsigned *kinds)
{
	for (int k = 0; k < KIND_N; k++) {
		if (k != KIND_LATENCY && strcmp(name, kind_names[k]) == 0) {
			*kinds |= BIT(k);
			return 0;
		}
	}
	return spec_error(spec, "unknown fault kind \"%s\" (eio, enospc, short-write, short-read, fsync)", name);
}

static int parse_op(const char *spec, const char *name, unsigned *ops)
{
	for (int o = 0; o < OP_OTHER; o++) {
		if (strcmp(name, op_names[o]) == 0) {
			*ops |= BIT(o);
			return 0;
		}
	}
	return spec_error(spec, "unknown operation \"%s\" (put, get, stat, list, del)", name);
}

static int parse_uint(const char *spec, const char *key, const char *val, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(val, &end, 10);
	if (*val < '0' || *val > '9' || *end != '\0' || errno != 0 || v > max)
		return spec_error(spec, "%s wants a whole number", key);
	*out = v;
	return 0;
}

static int parse_spec(const char *spec, struct store_faults *f)
{
	char *copy = strdup(spec);
	if (copy == NULL)
		return err_set(DRE_ENOMEM, "%s: out of memory", ENV);
	bool have_rate = false;
	enum { NO_LIST, KINDS, OPS } in_list = NO_LIST; /* the list key whose values follow as bare words */
	uint64_t v = 0; /* read after a failed parse too, when rc already ends the loop */
	int rc = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			rc = in_list == KINDS ? parse_kind(spec, tok, &f->kinds)
			     : in_list == OPS ? parse_op(spec, tok, &f->ops)
					      : spec_error(spec, "\"%s\" is neither key=value nor a value of kinds= or ops=", tok);
			continue;
		}
		*eq = '\0';
		const char *key = tok, *val = eq + 1;
		in_list = NO_LIST;
		if (strcmp(key, "seed") == 0) {
			rc = parse_uint(spec, "seed", val, UINT64_MAX, &f->seed);
		} else if (strcmp(key, "rate") == 0) {
			char *end;
			double r = strtod(val, &end);
			if (*val == '\0' || *end != '\0' || !isfinite(r) || r < 0 || r > 1)
				rc = spec_error(spec, "rate \"%s\" is not a number from 0 to 1", val);
			f->rate = r;
			have_rate = true;
		} else if (strcmp(key, "kinds") == 0) {
			in_list = KINDS;
			rc = parse_kind(spec, val, &f->kinds);
		} else if (strcmp(key, "ops") == 0) {
			in_list = OPS;
			rc = parse_op(spec, val, &f->ops);
		} else if (strcmp(key, "match") == 0) {
			if (*val == '\0')
				rc = spec_error(spec, "%s wants a key prefix", "match");
			else if ((f->match = strdup(val)) == NULL)
				rc = err_set(DRE_ENOMEM, "%s: out of memory", ENV);
		} else if (strcmp(key, "latency-ms") == 0) {
			rc = parse_uint(spec, "latency-ms (at most 60000)", val, LATENCY_MS_MAX, &v);
			f->latency_ms = (unsigned)v;
		} else if (strcmp(key, "stats") == 0) {
			if (*val == '\0')
				rc = spec_error(spec, "%s wants a file name", "stats");
			else if ((f->stats = strdup(val)) == NULL)
				rc = err_set(DRE_ENOMEM, "%s: out of memory", ENV);
		} else {
			rc = spec_error(spec, "unknown key \"%s\" (seed, rate, kinds, ops, match, latency-ms, stats)", key);
		}
	}
	free(copy);
	if (rc == 0 && !have_rate)
		rc = spec_error(spec, "%s is missing", "rate=");
	if (rc < 0)
		return rc;
	if ((f->kinds & FAILURE_KINDS) == 0)
		f->kinds |= FAILURE_KINDS; /* none named: every kind of failure */
	if (f->latency_ms > 0)
		f->kinds |= BIT(KIND_LATENCY);
	if (f->ops == 0)
		f->ops = BIT(OP_PUT) | BIT(OP_GET) | BIT(OP_STAT) | BIT(OP_LIST) | BIT(OP_DEL);
	double t = f->rate * 18446744073709551616.0; /* × 2^64 */
	f->threshold = t >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)t;
	return 0;
}

static void load(void)
{
	const char *spec = getenv(ENV);
	if (spec == NULL || *spec == '\0')
		return;
	if (getrandom(&loaded.seed, sizeof loaded.seed, GRND_NONBLOCK) != (ssize_t)sizeof loaded.seed)
		loaded.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32); /* when seed= does not say */
	load_rc = parse_spec(spec, &loaded);
	if (load_rc < 0) {
		snprintf(load_msg, sizeof load_msg, "%s", err_msg());
		return;
	}
	store_faults_active = &loaded;
}

int store_faults_load(void)
{
	pthread_once(&load_once, load);
	return load_rc < 0 ? err_set(load_rc, "%s", load_msg) : 0;
}

/* ---- draws ---- */

/* Whether a draw fires at the rate; *r gets the draw, for picking what fires. */
static bool draw(struct store_faults *f, uint64_t *r)
{
	if (f->threshold == 0)
		return false;
	uint64_t n = atomic_fetch_add(&f->draws, 1);
	*r = splitmix64(f->seed ^ splitmix64(n));
	return *r < f->threshold || f->threshold == UINT64_MAX;
}

/* At the rate: arms one of the faults op on key can meet among the enabled kinds. */
static void arm(struct store_faults *f, enum op op, const char *key)
{
	armed.kind = KIND_N;
	if (!(f->ops & BIT(op)))
		return;
	if (f->match != NULL && (key == NULL || strncmp(key, f->match, strlen(f->match)) != 0))
		return;
	uint64_t r;
	if (!draw(f, &r))
		return;
	struct fault_pair can[PAIRS_MAX];
	unsigned n = 0;
	for (const struct fault_pair *p = op_pairs[op]; p->kind != KIND_N; p++)
		if (f->kinds & BIT(p->kind))
			can[n++] = *p;
	if (n > 0)
		armed = can[splitmix64(r) % n];
}

int store_fault_take(enum store_fault_site site)
{
	if (armed.kind == KIND_N || armed.site != site)
		return 0;
	enum fault_kind k = armed.kind;
	armed.kind = KIND_N;
	atomic_fetch_add(&store_faults_active->injected[k], 1);
	switch (k) {
	case KIND_ENOSPC:
		return ENOSPC;
	case KIND_SHORT_WRITE:
	case KIND_SHORT_READ:
		return STORE_FAULT_SHORT;
	default:
		return EIO;
	}
}

/* ---- the wrapping driver ---- */

struct fault_store {
	store base; /* first, so a store * is a struct fault_store * */
	struct store_driver drv; /* the inner driver's name and which optional operations it has */
	store *inner;
	struct store_faults *f;
	atomic_uint_fast64_t ops[OP_N];
};

/* Counts the operation on key (NULL for none), delays it at the rate, and arms its fault. */
static store *begin(store *st, enum op op, const char *key)
{
	struct fault_store *fs = (struct fault_store *)st;
	struct store_faults *f = fs->f;
	atomic_fetch_add(&fs->ops[op], 1);
	uint64_t r;
	if (f->latency_ms > 0 && draw(f, &r)) {
		atomic_fetch_add(&f->injected[KIND_LATENCY], 1);
		struct timespec ts = {(time_t)(f->latency_ms / 1000), (long)(f->latency_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	arm(f, op, key);
	return fs->inner;
}

/* After the operation: a fault it did not reach must not fire in the next one. */
static int finish_op(int rc)
{
	armed.kind = KIND_N;
	return rc;
}

static int fs_put(store *st, const char *key, const void *buf, size_t len, unsigned flags)
{
	return finish_op(store_put(begin(st, OP_PUT, key), key, buf, len, flags));
}

static int fs_get(store *st, const char *key, uint64_t off, size_t len, void *buf)
{
	return finish_op(store_get(begin(st, OP_GET, key), key, off, len, buf));
}

static int fs_stat(store *st, const char *key, uint64_t *size)
{
	return finish_op(store_stat(begin(st, OP_STAT, key), key, size));
}

/* The listing callback may itself call the store (it does not today): the fault is disarmed before it runs. */
struct list_arg {
	store_list_fn fn;
	void *arg;
};

static int list_each(void *arg, const char *key, uint64_t size)
{
	struct list_arg *la = arg;
	armed.kind = KIND_N;
	return la->fn(la->arg, key, size);
}

static int fs_list(store *st, const char *prefix, store_list_fn fn, void *arg)
{
	struct list_arg la = {fn, arg};
	return finish_op(store_list(begin(st, OP_LIST, prefix), prefix, list_each, &la));
}

static int fs_del(store *st, const char *key)
{
	return finish_op(store_del(begin(st, OP_DEL, key), key));
}

static int fs_prepare(store *st)
{
	return finish_op(store_prepare(begin(st, OP_OTHER, NULL)));
}

static int fs_uploads(store *st, store_upload_fn fn, void *arg)
{
	return finish_op(store_uploads(begin(st, OP_OTHER, NULL), fn, arg));
}

static int fs_abort_upload(store *st, const char *key, const char *upload_id)
{
	return finish_op(store_abort_upload(begin(st, OP_OTHER, NULL), key, upload_id));
}

/* One JSON line with this store's operations and the faults injected since the last line, appended in one
 * write so that processes closing at once do not interleave. Best effort: a test that reads the file notices
 * a missing line. */
static void write_stats(struct fault_store *fs)
{
	struct store_faults *f = fs->f;
	char line[1024];
	size_t n = 0;
	n += (size_t)snprintf(line + n, sizeof line - n,
			      "{\"pid\": %ld, \"driver\": \"%s\", \"seed\": %llu, \"rate\": %g, \"ops\": {", (long)getpid(),
			      fs->drv.name, (unsigned long long)f->seed, f->rate);
	for (int i = 0; i < OP_N && n < sizeof line; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, "%s\"%s\": %llu", i ? ", " : "", op_names[i],
				      (unsigned long long)atomic_load(&fs->ops[i]));
	for (int k = 0; k < KIND_N && n < sizeof line; k++)
		n += (size_t)snprintf(line + n, sizeof line - n, "%s\"%s\": %llu", k ? ", " : "}, \"faults\": {",
				      kind_names[k], (unsigned long long)atomic_exchange(&f->injected[k], 0));
	if (n < sizeof line)
		n += (size_t)snprintf(line + n, sizeof line - n, "}}\n");
	if (n >= sizeof line)
		return;
	int fd = open(f->stats, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, n);
	(void)w;
	close(fd);
}

static void fs_close(store *st)
{
	struct fault_store *fs = (struct fault_store *)st;
	if (fs->f->stats != NULL)
		write_stats(fs);
	store_close(fs->inner);
	free(fs->base.url);
	free(fs);
}

int store_fault_wrap(store *inner, store **out)
{
	if (store_faults_active == NULL) {
		*out = inner;
		return 0;
	}
	struct fault_store *fs = calloc(1, sizeof *fs);
	char *url = fs ? strdup(inner->url) : NULL;
	if (url == NULL) {
		free(fs);
		int rc = err_set(DRE_ENOMEM, "repository %s: out of memory", inner->url);
		store_close(inner);
		return rc;
	}
	fs->drv = (struct store_driver){
		.name = inner->drv->name,
		.put = fs_put,
		.get = fs_get,
		.stat = fs_stat,
		.list = fs_list,
		.del = fs_del,
		.prepare = inner->drv->prepare ? fs_prepare : NULL,
		.uploads = inner->drv->uploads ? fs_uploads : NULL,
		.abort_upload = inner->drv->abort_upload ? fs_abort_upload : NULL,
		.close = fs_close,
	};
	fs->base.drv = &fs->drv;
	fs->base.url = url;
	fs->base.in_flight = inner->in_flight;
	fs->inner = inner;
	fs->f = store_faults_active;
	*out = &fs->base;
	return 0;
}
