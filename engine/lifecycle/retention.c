#include "engine/lifecycle/retention.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/err.h"

#define NS 1000000000LL

enum unit { U_HOUR, U_DAY, U_WEEK, U_MONTH, U_YEAR };

static const char *const rule_names[RET_NRULES] = {
	"last",          "hourly",         "daily",          "weekly",        "monthly",
	"yearly",        "within",         "within-hourly",  "within-daily",  "within-weekly",
	"within-monthly", "within-yearly", "newest",
};

const char *retention_rule_name(enum retention_rule rule)
{
	return (unsigned)rule < RET_NRULES ? rule_names[rule] : "?";
}

void retention_reasons_format(unsigned reasons, char *out, size_t cap)
{
	size_t n = 0;
	if (cap == 0)
		return;
	out[0] = '\0';
	for (int k = 0; k < RET_NRULES; k++) {
		if (!(reasons & RET_BIT(k)) || n >= cap)
			continue;
		int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", rule_names[k]);
		n += w > 0 ? (size_t)w : 0;
	}
}

bool retention_policy_empty(const retention_policy *p)
{
	for (int k = 0; k < RET_NEWEST; k++)
		if (p->has[k])
			return false;
	return true;
}

/* Seconds since the epoch, rounded down (times before 1970 too). */
static int64_t floor_secs(int64_t t_ns)
{
	int64_t s = t_ns / NS;
	return t_ns % NS < 0 ? s - 1 : s;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil); m is 1..12. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * The bucket of t in the local time zone: equal keys for equal buckets. Keys need only be distinct, not
 * ordered, because retention_apply compares each snapshot with the one before it in time. A week is named by
 * its Monday's date, which makes ISO weeks that span New Year one bucket without computing week numbers.
 */
static int64_t bucket_key(enum unit u, int64_t t_ns)
{
	time_t t = (time_t)floor_secs(t_ns);
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL)
		return (int64_t)t; /* a time the C library cannot place: a bucket of its own */
	int64_t year = (int64_t)tm.tm_year + 1900;
	int64_t day = days_from_civil(year, tm.tm_mon + 1, tm.tm_mday);
	switch (u) {
	case U_HOUR:
		/* the UTC offset tells the two 01:00 hours apart when DST ends; offsets are within ±18 h */
		return (day * 24 + tm.tm_hour) * 262144 + (tm.tm_gmtoff + 131072);
	case U_DAY: return day;
	case U_WEEK: return day - (tm.tm_wday + 6) % 7;
	case U_MONTH: return year * 12 + tm.tm_mon;
	case U_YEAR: return year;
	}
	return day;
}

int64_t retention_before(const retention_duration *d, int64_t t_ns)
{
	int64_t secs = floor_secs(t_ns), frac = t_ns - secs * NS;
	if (d->years || d->months || d->days) {
		time_t t = (time_t)secs;
		struct tm tm;
		if (localtime_r(&t, &tm) != NULL) {
			tm.tm_year -= (int)d->years;
			tm.tm_mon -= (int)d->months;
			tm.tm_mday -= (int)d->days;
			tm.tm_isdst = -1; /* the offset of the date arrived at, not of the one left */
			secs = (int64_t)mktime(&tm);
		} else {
			secs -= ((int64_t)d->years * 365 + (int64_t)d->months * 30 + d->days) * 86400;
		}
	}
	secs -= (int64_t)d->hours * 3600;
	if (secs <= INT64_MIN / NS + 1)
		return INT64_MIN; /* further back than ns since 1970 reach: every snapshot is within */
	return secs * NS + frac;
}

int retention_parse_duration(const char *text, retention_duration *out)
{
	static const char units[] = "ymwdh";
	static const char hint[] = "a duration is numbers each with a unit: y (years), m (months), w (weeks), "
				   "d (days), h (hours), as in 7d, 2w or 1y6m";
	retention_duration d = {0};
	uint64_t weeks = 0, days = 0;
	unsigned seen = 0;
	const char *p = text;
	if (*p == '\0')
		return err_set(DRE_EINVAL, "the duration is empty: %s", hint);
	while (*p != '\0') {
		uint64_t v = 0;
		if (!isdigit((unsigned char)*p))
			return err_set(DRE_EINVAL, "'%s' is not a duration (a number is missing at '%s'): %s", text, p,
				       hint);
		for (; isdigit((unsigned char)*p); p++) {
			v = v * 10 + (uint64_t)(*p - '0');
			if (v > RETENTION_MAX_HOURS)
				return err_set(DRE_EINVAL, "duration '%s' is too long", text);
		}
		const char *u = *p != '\0' ? strchr(units, *p) : NULL;
		if (*p == '\0')
			return err_set(DRE_EINVAL, "'%s' is not a duration (%llu has no unit): %s", text,
				       (unsigned long long)v, hint);
		if (u == NULL)
			return err_set(DRE_EINVAL, "'%s' is not a duration (unknown unit at '%s'): %s", text, p, hint);
		unsigned bit = 1u << (u - units);
		if (seen & bit)
			return err_set(DRE_EINVAL, "'%s' is not a duration (unit '%c' given twice): %s", text, *p, hint);
		seen |= bit;
		uint64_t max = *p == 'y' ? RETENTION_MAX_YEARS : *p == 'm' ? RETENTION_MAX_MONTHS
							     : *p == 'h' ? RETENTION_MAX_HOURS
									 : RETENTION_MAX_DAYS;
		if (v > max)
			return err_set(DRE_EINVAL, "duration '%s' is too long (at most %llu%c)", text,
				       (unsigned long long)max, *p);
		switch (*p) {
		case 'y': d.years = (uint32_t)v; break;
		case 'm': d.months = (uint32_t)v; break;
		case 'w': weeks = v; break;
		case 'd': days = v; break;
		case 'h': d.hours = (uint32_t)v; break;
		}
		p++;
	}
	if (weeks * 7 + days > RETENTION_MAX_DAYS)
		return err_set(DRE_EINVAL, "duration '%s' is too long (at most %u days)", text, RETENTION_MAX_DAYS);
	d.days = (uint32_t)(weeks * 7 + days);
	*out = d;
	return 0;
}

typedef struct order {
	int64_t time_ns;
	size_t group, idx;
} order;

/* Group by group, and within one newest first (the later item first when times are equal). */
static int order_cmp(const void *a, const void *b)
{
	const order *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->time_ns != y->time_ns)
		return x->time_ns > y->time_ns ? -1 : 1;
	return x->idx > y->idx ? -1 : x->idx < y->idx;
}

/* A bucket rule's walk state: how many more buckets it may keep, and the bucket of the last one it kept. */
typedef struct bucket_state {
	uint64_t left; /* UINT64_MAX for the within-rules, which are bounded by time instead */
	bool any;
	int64_t last;
} bucket_state;

static bool bucket_take(bucket_state *b, enum unit u, int64_t t_ns)
{
	if (b->left == 0)
		return false;
	int64_t k = bucket_key(u, t_ns);
	if (b->any && k == b->last)
		return false;
	b->any = true;
	b->last = k;
	if (b->left != UINT64_MAX)
		b->left--;
	return true;
}

/* Applies p to one group: items o[0..n), newest first. */
static void apply_group(const retention_policy *p, retention_item *items, const order *o, size_t n)
{
	bucket_state st[RET_NRULES];
	int64_t since[RET_NRULES]; /* within-rules: a snapshot is within when taken after this */
	for (int k = 0; k < RET_NRULES; k++) {
		st[k] = (bucket_state){0, false, 0};
		since[k] = INT64_MAX;
		if (!p->has[k] || k == RET_NEWEST)
			continue;
		if (k < RET_WITHIN) {
			st[k].left = p->count[k];
		} else {
			st[k].left = UINT64_MAX;
			since[k] = retention_before(&p->within[k], o[0].time_ns);
		}
	}
	for (size_t i = 0; i < n; i++) {
		retention_item *it = &items[o[i].idx];
		int64_t t = it->time_ns;
		unsigned why = 0;
		if (p->has[RET_LAST] && i < p->count[RET_LAST])
			why |= RET_BIT(RET_LAST);
		for (int k = RET_HOURLY; k <= RET_YEARLY; k++)
			if (p->has[k] && bucket_take(&st[k], (enum unit)(k - RET_HOURLY), t))
				why |= RET_BIT(k);
		/* cppcheck-suppress uninitvar ; the loop above sets every since[k] */
		if (p->has[RET_WITHIN] && t > since[RET_WITHIN])
			why |= RET_BIT(RET_WITHIN);
		for (int k = RET_WITHIN_HOURLY; k <= RET_WITHIN_YEARLY; k++)
			if (p->has[k] && t > since[k] && bucket_take(&st[k], (enum unit)(k - RET_WITHIN_HOURLY), t))
				why |= RET_BIT(k);
		if (i == 0 && why == 0)
			why = RET_BIT(RET_NEWEST);
		it->reasons = why;
		it->keep = why != 0;
	}
}

int retention_apply(const retention_policy *p, retention_item *items, size_t n)
{
	order *o = malloc((n ? n : 1) * sizeof *o);
	if (o == NULL)
		return err_set(DRE_ENOMEM, "out of memory applying the retention policy");
	tzset(); /* localtime_r need not read TZ again; a caller (a test) may have changed it */
	for (size_t i = 0; i < n; i++)
		o[i] = (order){items[i].time_ns, items[i].group, i};
	qsort(o, n, sizeof *o, order_cmp);
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a + 1; b < n && o[b].group == o[a].group;)
			b++;
		apply_group(p, items, o + a, b - a);
	}
	free(o);
	return 0;
}
