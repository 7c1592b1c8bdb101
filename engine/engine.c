#include "engine/engine.h"
#include "engine/repo/lock.h"
#include "engine/testhook.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The store's own kill point (store.h) goes through the engine's test hooks. Set once, before any store exists,
 * so that threads of a store already open never see it change. */
static pthread_once_t store_hook_once = PTHREAD_ONCE_INIT;
static void store_hook_set(void)
{
	store_test_point = test_pause;
}

int engine_open(const char *url, const store_opts *so, const char *pass, repo **out)
{
	store *st;
	pthread_once(&store_hook_once, store_hook_set);
	TRY(store_open(url, so, &st));
	int rc = repo_open(st, pass, out);
	if (rc < 0)
		store_close(st);
	return rc;
}

/* Whether key is one a repository's store holds (format-spec.md §2). */
static bool repo_layout_key(const char *key)
{
	static const char *const dirs[] = {"keys/", "packs/", "index/", "snapshots/", "wal/", "locks/", "prune/"};
	if (strcmp(key, "config") == 0)
		return true;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (strncmp(key, dirs[i], strlen(dirs[i])) == 0)
			return true;
	return false;
}

struct foreign_key {
	bool found;
	char key[256];
};

static int find_foreign(void *arg, const char *key, uint64_t size)
{
	struct foreign_key *f = arg;
	(void)size;
	if (repo_layout_key(key))
		return 0;
	f->found = true;
	snprintf(f->key, sizeof f->key, "%s", key);
	return DRE_EEXIST; /* one is enough: stops the listing */
}

/* init writes into a location that holds nothing, a repository (repo_init says it exists) or what an interrupted
 * init left there; never among other files, such as the tree the user meant to back up. The listing stops at
 * the first object that is not a repository's (on S3, one request when it is there). */
static int check_init_location(store *st)
{
	uint64_t size;
	struct foreign_key f = {0};
	if (store_stat(st, "config", &size) == 0)
		return 0;
	int rc = store_list(st, "", find_foreign, &f);
	if (f.found)
		return err_set(DRE_EEXIST,
			       "%s is not empty and is not a repository (it holds %s): refusing to write a repository "
			       "among its files. HINT: give a new or empty directory (or bucket prefix) for the repository",
			       st->url, f.key);
	return rc;
}

int engine_init(const char *url, const store_opts *so, const char *pass, const repo_params *p, repo **out)
{
	store *st;
	pthread_once(&store_hook_once, store_hook_set);
	TRY(store_open(url, so, &st));
	int rc = store_prepare(st);
	if (rc == 0)
		rc = check_init_location(st);
	if (rc == 0)
		rc = repo_init(st, pass, p, out);
	if (rc < 0)
		store_close(st);
	return rc;
}

void engine_set_cache_dir(repo *r, const char *dir)
{
	r->cache_dir = dir;
}

void engine_close(repo *r)
{
	if (r == NULL)
		return;
	store *st = r->st;
	repo_close(r);
	store_close(st);
}

int engine_migrate(repo *r, uint32_t *from)
{
	*from = r->format;
	return repo_upgrade(r, REPO_FORMAT_VERSION);
}

int engine_key_add(repo *r, const char *new_pass, char name_out[80])
{
	return repo_key_add(r, new_pass, name_out);
}

int engine_key_list(repo *r, int (*fn)(void *arg, const repo_key_info *k), void *arg)
{
	return repo_key_list(r, fn, arg);
}

/* Key removal is a deletion: two at once could each remove the key the other keeps (format-spec.md §16.1). */
int engine_key_remove(repo *r, const char *what, char removed[80])
{
	repo_lock *l;
	TRY(repo_key_find(r, what, removed));
	TRY(lock_acquire(r, REPO_LOCK_DELETE, "key-remove", &l));
	int rc = lock_check(l);
	if (rc == 0)
		rc = repo_key_remove(r, removed, false);
	lock_release(l, NULL, NULL);
	return rc;
}

int engine_key_passwd(repo *r, const char *new_pass, char new_name[80])
{
	repo_lock *l;
	repo *check = NULL;
	char old[80];
	snprintf(old, sizeof old, "%s", r->key_name);
	TRY(lock_acquire(r, REPO_LOCK_DELETE, "key-passwd", &l));
	int rc = repo_key_add(r, new_pass, new_name);
	if (rc == 0) {
		/* the whole way a later command goes: list the keys, find one the password opens, read config */
		rc = repo_open(r->st, new_pass, &check);
		if (rc < 0)
			rc = err_ctx(rc, "the new key %s does not open the repository", new_name);
		else if (memcmp(check->master, r->master, sizeof r->master) != 0)
			rc = err_set(DRE_ECORRUPT, "the new password opens %s, of another master key", check->key_name);
		repo_close(check);
		if (rc < 0) {
			store_del(r->st, new_name); /* the old key still works: leave things as they were */
		} else {
			rc = lock_check(l);
			if (rc == 0)
				rc = repo_key_remove(r, old, true);
			if (rc == 0)
				snprintf(r->key_name, sizeof r->key_name, "%s", new_name);
			else
				rc = err_ctx(rc, "the new key %s works, but the old key %s is still there", new_name, old);
		}
	}
	lock_release(l, NULL, NULL);
	return rc;
}

/* A label a user gives (a snapshot name, a tag): 1..255 bytes, no control character and not the byte that
 * separates it from others where it is written (a path's "/", a tag list's ","). */
static int check_label(const char *text, const char *what, char separator)
{
	size_t n = text ? strlen(text) : 0;
	if (n == 0 || n > 255)
		return err_set(DRE_EINVAL, "%s must be 1 to 255 bytes long", what);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch < 32 || ch == 127 || ch == (unsigned char)separator)
			return err_set(DRE_EINVAL, "%s '%s' contains '%c' or a control character", what, text, separator);
	}
	return 0;
}

int engine_check_name(const char *name)
{
	return check_label(name, "snapshot name", '/');
}

int engine_check_tag(const char *tag)
{
	return check_label(tag, "tag", ',');
}

/* Reads exactly `digits` digits. */
static bool take_num(const char **s, int digits, int *out)
{
	int v = 0;
	for (int i = 0; i < digits; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return false;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += digits;
	*out = v;
	return true;
}

/* How much of a time the text gave: what engine_parse_time_until extends it by. */
enum time_precision { TIME_DAY, TIME_MINUTE, TIME_SECOND, TIME_FRACTION };

static int parse_time(const char *text, int64_t *ns, enum time_precision *prec)
{
	const char *s = text;
	struct tm tm;
	int year, mon, day, hour = 0, min = 0, sec = 0;
	long frac_ns = 0;
	bool has_zone = false;
	long zone_off = 0;

	memset(&tm, 0, sizeof tm);
	if (!take_num(&s, 4, &year) || *s++ != '-' || !take_num(&s, 2, &mon) || *s++ != '-' || !take_num(&s, 2, &day))
		goto bad;
	*prec = TIME_DAY;
	if (*s == ' ' || *s == 'T' || *s == 't') {
		s++;
		if (!take_num(&s, 2, &hour) || *s++ != ':' || !take_num(&s, 2, &min))
			goto bad;
		*prec = TIME_MINUTE;
		if (*s == ':') {
			s++;
			if (!take_num(&s, 2, &sec))
				goto bad;
			*prec = TIME_SECOND;
			if (*s == '.') {
				s++;
				*prec = TIME_FRACTION;
				long scale = 100000000;
				while (*s >= '0' && *s <= '9') {
					frac_ns += (*s - '0') * scale;
					scale /= 10;
					s++;
				}
			}
		}
		if (*s == ' ')
			s++;
		if (*s == 'Z' || *s == 'z') {
			has_zone = true;
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1, zh, zm = 0;
			if (!take_num(&s, 2, &zh))
				goto bad;
			if (*s == ':')
				s++;
			if (*s != '\0' && !take_num(&s, 2, &zm))
				goto bad;
			has_zone = true;
			zone_off = sign * (zh * 3600L + zm * 60L);
		}
	}
	if (*s != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		goto bad;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	time_t t;
	if (has_zone) {
		t = timegm(&tm) - zone_off;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	/* nanoseconds since 1970 in 64 bits reach from 1677 to 2262 */
	if (t > INT64_MAX / 1000000000 - 1 || t < INT64_MIN / 1000000000 + 1)
		return err_set(DRE_EINVAL, "cannot read time '%s': it is out of range (years 1678 to 2261)", text);
	*ns = (int64_t)t * 1000000000 + frac_ns;
	return 0;
bad:
	return err_set(DRE_EINVAL,
		       "cannot read time '%s'. HINT: use \"YYYY-MM-DD HH:MM[:SS]\" (local time) or RFC 3339, e.g. "
		       "2026-11-21T12:00:00Z",
		       text);
}

int engine_parse_time(const char *text, int64_t *ns)
{
	enum time_precision prec;
	return parse_time(text, ns, &prec);
}

int engine_parse_time_until(const char *text, int64_t *ns)
{
	enum time_precision prec;
	int64_t start, span = 0, end;
	TRY(parse_time(text, &start, &prec));
	switch (prec) {
	case TIME_FRACTION: end = start; break;
	case TIME_SECOND: span = 1000000000; break;
	case TIME_MINUTE: span = 60 * (int64_t)1000000000; break;
	default: {
		/* the next local midnight, however long this day is across a DST change */
		time_t t = (time_t)(start / 1000000000);
		struct tm tm;
		localtime_r(&t, &tm);
		tm.tm_mday++;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		time_t next = mktime(&tm);
		end = next > t && next < INT64_MAX / 1000000000 ? (int64_t)next * 1000000000 - 1 : INT64_MAX;
		break;
	}
	}
	if (span > 0) /* the last nanosecond of that second or minute; after 2262 there is none */
		end = start <= INT64_MAX - span ? start + (span - 1) : INT64_MAX;
	*ns = end;
	return 0;
}

void engine_vwarnf(engine_warn_fn fn, void *arg, const char *fmt, va_list ap)
{
	char msg[1400];
	if (fn == NULL)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	fn(arg, msg);
}

void engine_warnf(engine_warn_fn fn, void *arg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	engine_vwarnf(fn, arg, fmt, ap);
	va_end(ap);
}
