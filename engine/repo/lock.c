/*
 * lock.c — lock objects (format-spec.md §16.1): write, refresh from a thread of the holder, list, judge stale.
 */
#include "engine/repo/lock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/repo/bytes.h"
#include "engine/pipeline/meter.h"
#include "store/err.h"

#define LOCK_FORMAT 1
#define LOCK_PREFIX "locks/"

struct repo_lock {
	repo *r;
	lock_info info;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	int64_t refreshed_mono_ns; /* when the object now in the store was written, by CLOCK_MONOTONIC */
	int refresh_rc;            /* the last refresh's failure, reported by lock_check */
	bool lost;                 /* a refresh came too late: the lock is not relied on again */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Test hook: DRE_TEST_LOCK_REFRESH_S shortens the refresh interval, so a test sees a refresh happen. */
static long refresh_interval_s(void)
{
	const char *t = getenv("DRE_TEST_LOCK_REFRESH_S");
	long v = t ? strtol(t, NULL, 10) : 0;
	return v > 0 ? v : LOCK_REFRESH_S;
}

static int lock_encode(const lock_info *li, buf *b)
{
	buf_u8(b, LOCK_FORMAT);
	buf_u8(b, li->kind);
	buf_u16(b, 0);
	buf_u32(b, li->pid);
	buf_u64(b, (uint64_t)li->created_ns);
	buf_u64(b, (uint64_t)li->refreshed_ns);
	buf_str16(b, li->host);
	buf_str16(b, li->user);
	buf_str16(b, li->command);
	return buf_check(b, "lock object");
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static int lock_decode(const char *key, const uint8_t *p, size_t len, lock_info *li)
{
	rd in = rd_make(p, len);
	memset(li, 0, sizeof *li);
	copy_str(li->key, sizeof li->key, key);
	uint8_t format = rd_u8(&in);
	li->kind = rd_u8(&in);
	uint16_t zero = rd_u16(&in);
	li->pid = rd_u32(&in);
	li->created_ns = (int64_t)rd_u64(&in);
	li->refreshed_ns = (int64_t)rd_u64(&in);
	char *host = rd_str16(&in), *user = rd_str16(&in), *command = rd_str16(&in);
	int rc = 0;
	if (in.failed || host == NULL || user == NULL || command == NULL || in.off != in.len || zero != 0)
		rc = err_set(DRE_ECORRUPT, "lock object %s is malformed", key);
	else if (format != LOCK_FORMAT)
		rc = err_set(DRE_EUNSUPP, "lock object %s has format %u, which this dre does not know", key, format);
	else if (li->kind != REPO_LOCK_WRITE && li->kind != REPO_LOCK_DELETE)
		rc = err_set(DRE_ECORRUPT, "lock object %s has an unknown kind %u", key, li->kind);
	if (rc == 0) {
		copy_str(li->host, sizeof li->host, host);
		copy_str(li->user, sizeof li->user, user);
		copy_str(li->command, sizeof li->command, command);
	}
	free(host);
	free(user);
	free(command);
	return rc;
}

static void this_host(char *out, size_t cap)
{
	if (gethostname(out, cap - 1) != 0)
		out[0] = '\0';
	out[cap - 1] = '\0';
}

/* Stale: not refreshed for LOCK_STALE_S by our clock, or on this host with a pid that is not running. */
static bool lock_is_stale(const lock_info *li, int64_t now_ns)
{
	/* this way round: refreshed_ns is read from the object and may be any i64, so now - refreshed could overflow */
	if (li->refreshed_ns < now_ns - (int64_t)LOCK_STALE_S * 1000000000)
		return true;
	char host[256];
	this_host(host, sizeof host);
	if (strcmp(host, li->host) == 0 && li->pid > 0 && kill((pid_t)li->pid, 0) != 0 && errno == ESRCH)
		return true;
	return false;
}

/* Writes li under a fresh random key (li->key gets it). */
static int lock_write(repo *r, lock_info *li)
{
	uint8_t id[CRYPTO_ID_LEN];
	buf b = {0};
	TRY(crypto_random(id, sizeof id));
	repo_object_key(LOCK_PREFIX, id, li->key);
	int rc = lock_encode(li, &b);
	if (rc == 0)
		rc = repo_put_object(r, 'L', li->key, b.data, b.len, STORE_PUT_CREATE_ONCE);
	buf_free(&b);
	return rc < 0 ? err_ctx(rc, "cannot write lock %s", li->key) : 0;
}

/* The refresh thread: a new object with a new refresh time, then the old one removed, so that at every moment
 * one of them is in the store. */
static void *refresh_main(void *arg)
{
	repo_lock *l = arg;
	pthread_mutex_lock(&l->mu);
	while (!l->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += refresh_interval_s();
		while (!l->stopping && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
			;
		if (l->stopping)
			break;
		if (mono_ns() - l->refreshed_mono_ns > (int64_t)LOCK_STALE_S / 2 * 1000000000) {
			/* the process was paused: others may have judged the lock stale, and a refresh now would not
			 * undo what they did meanwhile (format-spec.md §16.1) */
			l->lost = true;
			break;
		}
		lock_info next = l->info;
		pthread_mutex_unlock(&l->mu);

		next.refreshed_ns = meter_now_ns();
		int64_t t = mono_ns();
		int rc = lock_write(l->r, &next);
		char old[80];
		pthread_mutex_lock(&l->mu);
		if (rc == 0) {
			copy_str(old, sizeof old, l->info.key);
			l->info = next;
			l->refreshed_mono_ns = t;
			l->refresh_rc = 0;
			pthread_mutex_unlock(&l->mu);
			store_del(l->r->st, old); /* a failure leaves a duplicate that goes stale on its own */
			pthread_mutex_lock(&l->mu);
		} else {
			l->refresh_rc = rc;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

struct list_ctx {
	repo *r;
	int (*fn)(void *arg, const lock_info *li);
	void *arg;
	void (*warn)(void *arg, const char *msg);
	void *warn_arg;
	const char *mine_key; /* the caller's own lock, or "" */
	int64_t now_ns;
};

static int list_one(void *arg, const char *key, uint64_t size)
{
	struct list_ctx *c = arg;
	uint8_t *plain = NULL;
	size_t len = 0;
	lock_info li;
	int rc = repo_get_object_sized(c->r, 'L', key, size, &plain, &len);
	if (rc == DRE_ENOTFOUND) /* removed by its holder between the listing and the read */
		return 0;
	if (rc == 0)
		rc = lock_decode(key, plain, len, &li);
	free(plain);
	if (rc != 0) {
		if (c->warn) {
			char msg[1200];
			snprintf(msg, sizeof msg, "lock %s skipped: %s", key, err_msg());
			c->warn(c->warn_arg, msg);
		}
		return 0;
	}
	li.stale = lock_is_stale(&li, c->now_ns);
	li.mine = strcmp(c->mine_key, key) == 0;
	return c->fn(c->arg, &li);
}

int lock_list(repo *r, int (*fn)(void *arg, const lock_info *li), void *arg,
	      void (*warn)(void *arg, const char *msg), void *warn_arg)
{
	struct list_ctx c = {r, fn, arg, warn, warn_arg, "", meter_now_ns()};
	return store_list(r->st, LOCK_PREFIX, list_one, &c);
}

struct any_ctx {
	uint8_t kind;
	bool found;
	lock_info holder;
};

static int any_one(void *arg, const lock_info *li)
{
	struct any_ctx *a = arg;
	if (li->kind == a->kind && !li->stale && !li->mine && !a->found) {
		a->found = true;
		a->holder = *li;
	}
	return 0;
}

static int any_live(repo *r, uint8_t kind, const char *mine_key, struct any_ctx *a)
{
	memset(a, 0, sizeof *a);
	a->kind = kind;
	struct list_ctx c = {r, any_one, a, NULL, NULL, mine_key, meter_now_ns()};
	return store_list(r->st, LOCK_PREFIX, list_one, &c);
}

/* l's key, copied under its mutex: the refresh thread replaces it */
static void own_key(repo_lock *l, char out[80])
{
	out[0] = '\0';
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	copy_str(out, 80, l->info.key);
	pthread_mutex_unlock(&l->mu);
}

int lock_any_live(repo *r, enum lock_kind kind, repo_lock *l, bool *found)
{
	struct any_ctx a;
	char mine[80];
	own_key(l, mine);
	int rc = any_live(r, (uint8_t)kind, mine, &a);
	*found = a.found;
	return rc;
}

static int busy_error(const lock_info *h)
{
	time_t since = (time_t)(h->created_ns / 1000000000);
	struct tm tm;
	char when[32] = "?";
	if (localtime_r(&since, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	return err_set(DRE_EBUSY,
		       "the repository is locked by '%s' (pid %" PRIu32 " on %s, user %s, since %s; %s). HINT: 'dre locks' "
		       "shows every lock; a lock whose process is gone goes stale after %d minutes, or 'dre unlock' "
		       "removes it once it is stale",
		       h->command, h->pid, h->host, h->user, when, h->key, LOCK_STALE_S / 60);
}

int lock_acquire(repo *r, enum lock_kind kind, const char *command, repo_lock **out)
{
	*out = NULL;
	repo_lock *l = calloc(1, sizeof *l);
	if (l == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate a lock");
	l->r = r;
	l->info.kind = (uint8_t)kind;
	l->info.pid = (uint32_t)getpid();
	l->info.created_ns = l->info.refreshed_ns = meter_now_ns();
	copy_str(l->info.command, sizeof l->info.command, command);
	this_host(l->info.host, sizeof l->info.host);
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024];
	if (getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp != NULL)
		copy_str(l->info.user, sizeof l->info.user, pw.pw_name);
	else
		snprintf(l->info.user, sizeof l->info.user, "%u", (unsigned)getuid());
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->refreshed_mono_ns = mono_ns();

	int rc = lock_write(r, &l->info);
	if (rc == 0 && kind == REPO_LOCK_DELETE) {
		/* written first, listed second: of two deleters starting together at least one sees the other */
		struct any_ctx a;
		rc = any_live(r, REPO_LOCK_DELETE, l->info.key, &a);
		if (rc == 0 && a.found) {
			rc = busy_error(&a.holder);
			store_del(r->st, l->info.key);
		}
	}
	if (rc == 0) {
		rc = pthread_create(&l->thread, NULL, refresh_main, l) == 0
			     ? 0
			     : err_set(DRE_ENOMEM, "cannot start the lock refresh thread");
		l->thread_started = rc == 0;
		if (rc < 0)
			store_del(r->st, l->info.key);
	}
	if (rc < 0) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int lock_check(repo_lock *l)
{
	char key[80];
	pthread_mutex_lock(&l->mu);
	copy_str(key, sizeof key, l->info.key);
	int64_t age = mono_ns() - l->refreshed_mono_ns;
	bool lost = l->lost;
	pthread_mutex_unlock(&l->mu);
	if (lost)
		age = INT64_MAX;
	if (l->info.kind == REPO_LOCK_DELETE) {
		/* a deleter also makes sure it is still the only one (format-spec.md §16.4) */
		struct any_ctx a;
		TRY(any_live(l->r, REPO_LOCK_DELETE, key, &a));
		if (a.found)
			return busy_error(&a.holder);
	}
	if (age > (int64_t)LOCK_STALE_S / 2 * 1000000000)
		return err_set(DRE_EBUSY, "lock %s was not refreshed for more than %d minutes (the process was paused?): "
					  "another process may have judged it stale, so nothing more is written",
			       key, LOCK_STALE_S / 120);
	uint64_t size;
	int rc = store_stat(l->r->st, key, &size);
	if (rc == DRE_ENOTFOUND)
		return err_set(DRE_EBUSY, "lock %s is gone (removed by 'dre unlock' or by a process that judged it stale), "
					  "so nothing more is written",
			       key);
	return rc < 0 ? err_ctx(rc, "cannot check lock %s", key) : 0;
}

void lock_release(repo_lock *l, void (*warn)(void *arg, const char *msg), void *warn_arg)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	if (store_del(l->r->st, l->info.key) < 0 && warn != NULL) {
		char msg[1200];
		snprintf(msg, sizeof msg, "lock %s not removed (it goes stale on its own): %s", l->info.key, err_msg());
		warn(warn_arg, msg);
	}
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

struct remove_ctx {
	repo *r;
	bool all;
	size_t removed;
};

static int remove_one(void *arg, const lock_info *li)
{
	struct remove_ctx *c = arg;
	if (!c->all && !li->stale)
		return 0;
	int rc = store_del(c->r->st, li->key);
	if (rc < 0)
		return err_ctx(rc, "cannot remove lock %s", li->key);
	c->removed++;
	return 0;
}

int lock_remove(repo *r, bool all, size_t *removed)
{
	struct remove_ctx c = {r, all, 0};
	int rc = lock_list(r, remove_one, &c, NULL, NULL);
	*removed = c.removed;
	return rc;
}
