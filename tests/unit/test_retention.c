/*
 * test_retention.c — the retention rules of `dre forget` on hand-written calendars. Every expected kept set is
 * written out by hand (K keep, R remove, oldest first), with the UTC offset of each local time written too, so
 * the expectations do not come from the code under test. Several cases are built so that a day, month or year
 * computed in UTC, or a day taken as 86400 s, would bucket differently: around New Year, month ends, and the
 * DST changes of America/New_York (2026-03-08, 2026-11-01) and Europe/Berlin (2026-03-29, 2026-10-25).
 */
#include <stdlib.h>
#include <time.h>

#include "engine/lifecycle/retention.h"
#include "store/err.h"
#include "unit.h"

#define NS 1000000000LL
#define L(rule) RET_BIT(RET_##rule)

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* The instant of local wall time y-mo-d h:mi in a zone whose UTC offset is then off hours (-5 for EST). */
static int64_t at(int y, int mo, int d, int h, int mi, int off)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return ((int64_t)timegm(&tm) - (int64_t)off * 3600) * NS;
}

static retention_policy count_policy(enum retention_rule rule, uint32_t n)
{
	retention_policy p = {0};
	p.has[rule] = true;
	p.count[rule] = n;
	return p;
}

static retention_policy within_policy(enum retention_rule rule, const char *d)
{
	retention_policy p = {0};
	p.has[rule] = true;
	CHECK_RC(retention_parse_duration(d, &p.within[rule]));
	return p;
}

/* Applies p to one group of times and compares with want ("KRK…", oldest first) and, when given, reasons. */
static void expect_plan(const char *what, const retention_policy *p, const int64_t *t, size_t n, const char *want,
			const unsigned *reasons)
{
	retention_item it[32];
	CHECK(n <= 32 && strlen(want) == n);
	for (size_t i = 0; i < n && i < 32; i++)
		it[i] = (retention_item){.time_ns = t[i], .group = 7};
	CHECK_RC(retention_apply(p, it, n));
	for (size_t i = 0; i < n && i < 32; i++) {
		bool keep = want[i] == 'K';
		if (it[i].keep != keep || (it[i].reasons != 0) != keep || (reasons && it[i].reasons != reasons[i])) {
			char got[128];
			retention_reasons_format(it[i].reasons, got, sizeof got);
			fprintf(stderr, "%s: snapshot %zu: got %s (%s), wanted %c (reasons %#x)\n", what, i,
				it[i].keep ? "keep" : "remove", got, want[i], reasons ? reasons[i] : 0);
			unit_failed_checks++;
		}
	}
}

#define EXPECT(what, p, times, want, reasons)                                                                  \
	expect_plan(what, p, times, sizeof(times) / sizeof(times)[0], want, reasons)

static void test_daily_month_and_year_end(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2026, 12, 30, 10, 0, -5),
		at(2026, 12, 31, 8, 0, -5),
		at(2026, 12, 31, 23, 30, -5), /* already 1 January in UTC */
		at(2027, 1, 1, 0, 30, -5),
		at(2027, 1, 1, 22, 0, -5),
		at(2027, 1, 31, 23, 59, -5), /* already 1 February in UTC */
		at(2027, 2, 1, 0, 1, -5),
	};
	retention_policy p = count_policy(RET_DAILY, 4);
	const unsigned why[] = {0, 0, L(DAILY), 0, L(DAILY), L(DAILY), L(DAILY)};
	EXPECT("keep-daily 4", &p, t, "RRKRKKK", why);
	p = count_policy(RET_DAILY, 100);
	EXPECT("keep-daily 100", &p, t, "KRKRKKK", NULL);
}

static void test_weekly_iso_year_boundary(void)
{
	set_tz("America/New_York");
	/* 2026 has 53 ISO weeks: week 53 runs from Monday 28 December 2026 to Sunday 3 January 2027 */
	const int64_t t[] = {
		at(2026, 12, 26, 12, 0, -5), /* Saturday, week 52 */
		at(2026, 12, 28, 9, 0, -5),  /* Monday, week 53 */
		at(2027, 1, 1, 12, 0, -5),   /* Friday, still week 53 */
		at(2027, 1, 3, 23, 30, -5),  /* Sunday, week 53 (Monday in UTC) */
		at(2027, 1, 4, 12, 0, -5),   /* Monday, week 1 of 2027 */
		at(2027, 1, 10, 12, 0, -5),  /* Sunday, week 1 */
		at(2027, 1, 20, 12, 0, -5),  /* Wednesday, week 3: week 2 has no snapshot and does not count */
	};
	retention_policy p = count_policy(RET_WEEKLY, 3);
	EXPECT("keep-weekly 3", &p, t, "RRRKRKK", NULL);
	p = count_policy(RET_WEEKLY, 4);
	const unsigned why[] = {L(WEEKLY), 0, 0, L(WEEKLY), 0, L(WEEKLY), L(WEEKLY)};
	EXPECT("keep-weekly 4", &p, t, "KRRKRKK", why);
}

static void test_monthly(void)
{
	set_tz("Europe/Berlin");
	const int64_t t[] = {
		at(2026, 1, 15, 12, 0, 1),
		at(2026, 2, 10, 12, 0, 1),
		at(2026, 2, 28, 23, 30, 1),
		at(2026, 3, 15, 12, 0, 1),
		at(2026, 3, 31, 23, 30, 2), /* CEST since 29 March */
		at(2026, 4, 1, 0, 30, 2),   /* still 31 March in UTC */
		at(2026, 4, 20, 8, 0, 2),
	};
	retention_policy p = count_policy(RET_MONTHLY, 3);
	EXPECT("keep-monthly 3", &p, t, "RRKRKRK", NULL);
	p = count_policy(RET_MONTHLY, 12);
	EXPECT("keep-monthly 12", &p, t, "KRKRKRK", NULL);
}

static void test_yearly(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2024, 6, 1, 12, 0, -4),
		at(2025, 3, 1, 12, 0, -5),
		at(2025, 12, 31, 23, 0, -5), /* 2026 in UTC */
		at(2026, 1, 1, 1, 0, -5),
		at(2026, 7, 4, 12, 0, -4),
	};
	retention_policy p = count_policy(RET_YEARLY, 2);
	EXPECT("keep-yearly 2", &p, t, "RRKRK", NULL);
	p = count_policy(RET_YEARLY, 5);
	EXPECT("keep-yearly 5", &p, t, "KRKRK", NULL);
}

static void test_last_with_daily(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2026, 6, 1, 10, 0, -4), at(2026, 6, 2, 9, 0, -4),  at(2026, 6, 2, 18, 0, -4),
		at(2026, 6, 3, 8, 0, -4),  at(2026, 6, 3, 12, 0, -4), at(2026, 6, 3, 20, 0, -4),
	};
	retention_policy p = count_policy(RET_LAST, 2);
	p.has[RET_DAILY] = true;
	p.count[RET_DAILY] = 3;
	const unsigned why[] = {L(DAILY), 0, L(DAILY), 0, L(LAST), L(LAST) | L(DAILY)};
	EXPECT("keep-last 2 keep-daily 3", &p, t, "KRKRKK", why);
	p = count_policy(RET_LAST, 4);
	EXPECT("keep-last 4", &p, t, "RRKKKK", NULL);
}

static void test_several_in_one_day(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2026, 6, 10, 1, 0, -4),  at(2026, 6, 10, 9, 0, -4),  at(2026, 6, 10, 23, 59, -4),
		at(2026, 6, 11, 0, 0, -4),  at(2026, 6, 11, 12, 0, -4),
	};
	retention_policy p = count_policy(RET_DAILY, 2);
	EXPECT("keep-daily 2, the newest of each day", &p, t, "RRKRK", NULL);
	p = count_policy(RET_HOURLY, 3);
	EXPECT("keep-hourly 3", &p, t, "RRKKK", NULL);
}

static void test_within(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2026, 6, 20, 12, 0, -4),
		at(2026, 6, 23, 12, 0, -4), /* exactly 7 days before the newest: not within */
		at(2026, 6, 23, 12, 1, -4),
		at(2026, 6, 29, 0, 0, -4),
		at(2026, 6, 30, 12, 0, -4),
	};
	retention_policy p = within_policy(RET_WITHIN, "7d");
	const unsigned why[] = {0, 0, L(WITHIN), L(WITHIN), L(WITHIN)};
	EXPECT("keep-within 7d", &p, t, "RRKKK", why);
	p = within_policy(RET_WITHIN, "1w");
	EXPECT("keep-within 1w", &p, t, "RRKKK", why);
	p = within_policy(RET_WITHIN, "1w1h");
	EXPECT("keep-within 1w1h", &p, t, "RKKKK", NULL);

	/* a calendar day back across the spring change is 23 hours, not 24 */
	const int64_t spring[] = {
		at(2026, 3, 7, 23, 20, -5), /* 24 h 10 min before the newest */
		at(2026, 3, 8, 0, 20, -5),  /* 23 h 10 min before the newest, but more than a calendar day */
		at(2026, 3, 8, 0, 40, -5),
		at(2026, 3, 9, 0, 30, -4),
	};
	p = within_policy(RET_WITHIN, "1d");
	EXPECT("keep-within 1d across DST", &p, spring, "RRKK", NULL);
	p = within_policy(RET_WITHIN, "24h");
	EXPECT("keep-within 24h across DST", &p, spring, "RKKK", NULL);

	/* a calendar month back from 15 April is 15 March: 31 days, not 30 */
	const int64_t month[] = {
		at(2026, 3, 15, 11, 0, -4),
		at(2026, 3, 15, 18, 0, -4),
		at(2026, 4, 15, 12, 0, -4),
	};
	p = within_policy(RET_WITHIN, "1m");
	EXPECT("keep-within 1m", &p, month, "RKK", NULL);
	p = within_policy(RET_WITHIN, "30d");
	EXPECT("keep-within 30d", &p, month, "RRK", NULL);
	p = within_policy(RET_WITHIN, "1y");
	EXPECT("keep-within 1y", &p, month, "KKK", NULL);
}

static void test_within_daily(void)
{
	set_tz("America/New_York");
	const int64_t t[] = {
		at(2026, 6, 27, 10, 0, -4), /* before newest − 3d */
		at(2026, 6, 27, 21, 0, -4), at(2026, 6, 28, 8, 0, -4), at(2026, 6, 28, 9, 0, -4),
		at(2026, 6, 29, 12, 0, -4), at(2026, 6, 30, 7, 0, -4), at(2026, 6, 30, 20, 0, -4),
	};
	retention_policy p = within_policy(RET_WITHIN_DAILY, "3d");
	const unsigned why[] = {0, L(WITHIN_DAILY), 0, L(WITHIN_DAILY), L(WITHIN_DAILY), 0, L(WITHIN_DAILY)};
	EXPECT("keep-within-daily 3d", &p, t, "RKRKKRK", why);
	/* combined: keep-last marks the newest too; keep-within-weekly (everything is within 5d) keeps the newest
	 * of the week that ends on Sunday 28 June, which keep-within-daily keeps already, and 27 June 10:00 (outside
	 * 3d) stays removed, since it is not the newest of its week */
	p.has[RET_LAST] = true;
	p.count[RET_LAST] = 1;
	p.has[RET_WITHIN_WEEKLY] = true;
	CHECK_RC(retention_parse_duration("5d", &p.within[RET_WITHIN_WEEKLY]));
	const unsigned why2[] = {0, L(WITHIN_DAILY), 0, L(WITHIN_DAILY) | L(WITHIN_WEEKLY), L(WITHIN_DAILY), 0,
				 L(LAST) | L(WITHIN_DAILY) | L(WITHIN_WEEKLY)};
	EXPECT("keep-last 1 keep-within-daily 3d keep-within-weekly 5d", &p, t, "RKRKKRK", why2);
}

static void test_dst_new_york(void)
{
	set_tz("America/New_York");
	/* spring forward, 2026-03-08 02:00 EST → 03:00 EDT: 8 March has 23 hours */
	const int64_t spring[] = {
		at(2026, 3, 7, 23, 50, -5),
		at(2026, 3, 8, 0, 10, -5),
		at(2026, 3, 9, 0, 30, -4), /* 23 h 20 min after the one before: a new day all the same */
	};
	retention_policy p = count_policy(RET_DAILY, 2);
	EXPECT("keep-daily 2, New York spring", &p, spring, "RKK", NULL);
	/* fall back, 2026-11-01 02:00 EDT → 01:00 EST: 1 November has 25 hours */
	const int64_t fall[] = {
		at(2026, 11, 1, 0, 5, -4),
		at(2026, 11, 1, 23, 55, -5), /* 24 h 50 min after the one before: the same day */
		at(2026, 11, 2, 0, 5, -5),
	};
	EXPECT("keep-daily 2, New York fall", &p, fall, "RKK", NULL);
	/* the hour 01:00–02:00 happens twice that night: two buckets */
	const int64_t hours[] = {
		at(2026, 11, 1, 0, 50, -4), at(2026, 11, 1, 1, 10, -4), at(2026, 11, 1, 1, 30, -4),
		at(2026, 11, 1, 1, 10, -5), at(2026, 11, 1, 1, 40, -5),
	};
	p = count_policy(RET_HOURLY, 3);
	EXPECT("keep-hourly 3, the repeated hour", &p, hours, "KRKRK", NULL);
	p = within_policy(RET_WITHIN_HOURLY, "1d");
	EXPECT("keep-within-hourly 1d, the repeated hour", &p, hours, "KRKRK", NULL);
}

static void test_dst_berlin(void)
{
	set_tz("Europe/Berlin");
	/* spring forward, 2026-03-29 02:00 CET → 03:00 CEST */
	const int64_t spring[] = {
		at(2026, 3, 28, 23, 30, 1),
		at(2026, 3, 29, 0, 15, 1), /* 28 March in UTC */
		at(2026, 3, 29, 23, 45, 2),
		at(2026, 3, 30, 0, 15, 2), /* 29 March in UTC */
	};
	retention_policy p = count_policy(RET_DAILY, 2);
	EXPECT("keep-daily 2, Berlin spring", &p, spring, "RRKK", NULL);
	p = count_policy(RET_DAILY, 3);
	EXPECT("keep-daily 3, Berlin spring", &p, spring, "KRKK", NULL);
	/* fall back, 2026-10-25 03:00 CEST → 02:00 CET */
	const int64_t fall[] = {
		at(2026, 10, 24, 23, 30, 2),
		at(2026, 10, 25, 0, 30, 2), /* 24 October in UTC */
		at(2026, 10, 25, 23, 30, 1),
		at(2026, 10, 26, 0, 30, 1), /* 25 October in UTC */
	};
	EXPECT("keep-daily 3, Berlin fall", &p, fall, "KRKK", NULL);
	/* Sunday 25 October ends the week that began on Monday 19 October */
	p = count_policy(RET_WEEKLY, 2);
	EXPECT("keep-weekly 2, Berlin fall", &p, fall, "RRKK", NULL);
}

static void test_newest_always_kept(void)
{
	set_tz("UTC");
	const int64_t t[] = {at(2026, 1, 1, 0, 0, 0), at(2026, 1, 2, 0, 0, 0), at(2026, 1, 3, 0, 0, 0)};
	retention_policy p = count_policy(RET_LAST, 0);
	const unsigned why[] = {0, 0, L(NEWEST)};
	EXPECT("keep-last 0", &p, t, "RRK", why);
	p = count_policy(RET_DAILY, 0);
	EXPECT("keep-daily 0", &p, t, "RRK", why);
	p = count_policy(RET_LAST, 1);
	const unsigned last[] = {0, 0, L(LAST)};
	EXPECT("keep-last 1 keeps the newest as last, not newest", &p, t, "RRK", last);
	p = within_policy(RET_WITHIN, "0h");
	EXPECT("keep-within 0h", &p, t, "RRK", why);
}

static void test_groups_and_order(void)
{
	set_tz("UTC");
	int64_t d1 = at(2026, 5, 1, 12, 0, 0), d2 = at(2026, 5, 2, 12, 0, 0), d3 = at(2026, 5, 3, 12, 0, 0);
	/* two groups, interleaved and out of time order; two snapshots of group 5 at the same time */
	retention_item it[] = {
		{.time_ns = d3, .group = 9}, {.time_ns = d1, .group = 5}, {.time_ns = d2, .group = 9},
		{.time_ns = d2, .group = 5}, {.time_ns = d2, .group = 5}, {.time_ns = d1, .group = 9},
	};
	retention_policy p = count_policy(RET_LAST, 1);
	CHECK_RC(retention_apply(&p, it, 6));
	/* group 9: its newest is d3 (item 0); group 5: of the two at d2, the later one in the array (item 4) */
	CHECK(it[0].keep && it[0].reasons == L(LAST));
	CHECK(!it[1].keep && !it[2].keep && !it[3].keep && !it[5].keep);
	CHECK(it[4].keep && it[4].reasons == L(LAST));
	p = count_policy(RET_DAILY, 5);
	CHECK_RC(retention_apply(&p, it, 6));
	CHECK(it[0].keep && it[2].keep && it[5].keep);  /* group 9: three days */
	CHECK(it[1].keep && !it[3].keep && it[4].keep); /* group 5: two days, the later of the two at d2 */
	CHECK_RC(retention_apply(&p, it, 0));
}

static void test_parse_duration(void)
{
	retention_duration d;
	CHECK_RC(retention_parse_duration("7d", &d));
	CHECK(d.years == 0 && d.months == 0 && d.days == 7 && d.hours == 0);
	CHECK_RC(retention_parse_duration("2w", &d));
	CHECK(d.days == 14 && d.years == 0 && d.hours == 0);
	CHECK_RC(retention_parse_duration("1y6m", &d));
	CHECK(d.years == 1 && d.months == 6 && d.days == 0 && d.hours == 0);
	CHECK_RC(retention_parse_duration("12h", &d));
	CHECK(d.hours == 12 && d.days == 0);
	CHECK_RC(retention_parse_duration("1y2m3w4d5h", &d));
	CHECK(d.years == 1 && d.months == 2 && d.days == 25 && d.hours == 5);
	CHECK_RC(retention_parse_duration("5h1d", &d));
	CHECK(d.days == 1 && d.hours == 5);
	const char *bad[] = {"", "7", "7x", "d", "1d1d", "-1d", "7 d", "1.5d", "99999999999y", "20000y", "7D"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = retention_parse_duration(bad[i], &d);
		if (rc != DRE_EINVAL) {
			fprintf(stderr, "duration '%s' was accepted (%d)\n", bad[i], rc);
			unit_failed_checks++;
		}
	}
	CHECK(retention_parse_duration("7x", &d) == DRE_EINVAL && strstr(err_msg(), "'7x'") != NULL);
}

static void test_before_calendar(void)
{
	set_tz("America/New_York");
	retention_duration d = {.months = 1};
	/* 31 March − 1 month: 31 February, which mktime (like Go's AddDate) carries to 3 March */
	CHECK(retention_before(&d, at(2026, 3, 31, 12, 0, -4)) == at(2026, 3, 3, 12, 0, -5));
	d = (retention_duration){.days = 1};
	CHECK(retention_before(&d, at(2026, 11, 2, 0, 30, -5)) == at(2026, 11, 1, 0, 30, -4));
	d = (retention_duration){.hours = 2};
	CHECK(retention_before(&d, at(2026, 11, 1, 1, 30, -5)) == at(2026, 11, 1, 0, 30, -4));
	d = (retention_duration){.years = 10000};
	CHECK(retention_before(&d, at(2026, 1, 1, 0, 0, -5)) == INT64_MIN);
}

static void test_names(void)
{
	char text[128];
	retention_reasons_format(L(LAST) | L(DAILY) | L(WEEKLY), text, sizeof text);
	CHECK(strcmp(text, "last, daily, weekly") == 0);
	retention_reasons_format(L(WITHIN_DAILY) | L(NEWEST), text, sizeof text);
	CHECK(strcmp(text, "within-daily, newest") == 0);
	retention_reasons_format(0, text, sizeof text);
	CHECK(strcmp(text, "") == 0);
	retention_reasons_format(L(LAST) | L(DAILY), text, 6);
	CHECK(strcmp(text, "last,") == 0);
	retention_policy p = {0};
	CHECK(retention_policy_empty(&p));
	p.has[RET_WITHIN_YEARLY] = true;
	CHECK(!retention_policy_empty(&p));
}

int main(void)
{
	RUN(test_daily_month_and_year_end);
	RUN(test_weekly_iso_year_boundary);
	RUN(test_monthly);
	RUN(test_yearly);
	RUN(test_last_with_daily);
	RUN(test_several_in_one_day);
	RUN(test_within);
	RUN(test_within_daily);
	RUN(test_dst_new_york);
	RUN(test_dst_berlin);
	RUN(test_newest_always_kept);
	RUN(test_groups_and_order);
	RUN(test_parse_duration);
	RUN(test_before_calendar);
	RUN(test_names);
	return unit_exit();
}
