/*
 * retention.h — which snapshots a retention policy keeps (`dre forget`). Pure computation over snapshot times
 * and group numbers: no I/O, no repository, so the calendar logic is tested on hand-written calendars
 * (tests/unit/test_retention.c). forget.h does the grouping, the deleting and the WAL expiry around it.
 *
 * The rules are restic's `forget` policy, applied to each group on its own, walking its snapshots newest first:
 *
 *   RET_LAST     keep-last N: the N newest snapshots.
 *   RET_HOURLY … RET_YEARLY   keep-hourly/daily/weekly/monthly/yearly N: the newest snapshot of each of the N
 *                newest buckets (hour, day, ISO week, month, year) that hold a snapshot. Buckets with no
 *                snapshot do not count, so "keep-daily 7" keeps 7 days' worth even when some days were missed.
 *   RET_WITHIN   keep-within D: every snapshot taken after (newest − D), D measured back from the group's
 *                NEWEST snapshot, not from now (as restic does), so a group that stopped being backed up is
 *                not emptied by time passing. A snapshot exactly D before the newest is not within.
 *   RET_WITHIN_HOURLY … RET_WITHIN_YEARLY   keep-within-daily D etc.: the newest snapshot of every bucket,
 *                for the snapshots within D of the newest (the same boundary as RET_WITHIN).
 *   RET_NEWEST   not a rule: the newest snapshot of a group is always kept; it gets this reason when no rule
 *                kept it, so a policy can never empty a group.
 *
 * A snapshot is kept when any rule keeps it, and carries the reason of every rule that did.
 *
 * Buckets are calendar units of the local time zone (localtime_r, after tzset(), so TZ is honoured): a day
 * is a local date, however many hours it has across a DST change; a week is an ISO week (Monday to Sunday,
 * so one week can span two years); months and years are local calendar months and years. An hour is a local
 * clock hour at a given UTC offset: the hour repeated when DST ends (01:00–02:00 twice) is two buckets, as it is
 * two hours of real time.
 *
 * Durations ("1y6m", "7d", "2w", "12h") are calendar-aware: years, months, weeks and days are subtracted from
 * the newest snapshot's local date and clock time (mktime normalizes, so 31 March − 1m is 3 March, like Go's
 * AddDate that restic uses), then hours are subtracted as 3600 s each.
 */
#ifndef DRE_RETENTION_H
#define DRE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rules, in the order reasons are listed. RET_BIT(rule) is its bit in retention_item.reasons. */
enum retention_rule {
	RET_LAST,
	RET_HOURLY,
	RET_DAILY,
	RET_WEEKLY,
	RET_MONTHLY,
	RET_YEARLY,
	RET_WITHIN,
	RET_WITHIN_HOURLY,
	RET_WITHIN_DAILY,
	RET_WITHIN_WEEKLY,
	RET_WITHIN_MONTHLY,
	RET_WITHIN_YEARLY,
	RET_NEWEST,
	RET_NRULES
};
#define RET_BIT(rule) (1u << (rule))

/* Bounds of what retention_parse_duration accepts per unit, so that date arithmetic cannot overflow. */
#define RETENTION_MAX_YEARS 10000u
#define RETENTION_MAX_MONTHS (12u * RETENTION_MAX_YEARS)
#define RETENTION_MAX_DAYS (366u * RETENTION_MAX_YEARS)
#define RETENTION_MAX_HOURS (24u * RETENTION_MAX_DAYS)
/* The largest count a keep-last/-hourly/... rule takes (more than any repository holds snapshots). */
#define RETENTION_MAX_COUNT 100000000u

/* A calendar duration: weeks are given as 7 days. */
typedef struct retention_duration {
	uint32_t years, months, days, hours;
} retention_duration;

/*
 * What to keep. has[rule] says which rules were given (a rule given with 0 keeps nothing by itself, which is
 * not the same as absent: see retention_policy_empty). count is read for RET_LAST..RET_YEARLY, within for
 * RET_WITHIN..RET_WITHIN_YEARLY; RET_NEWEST is not a rule and its fields are ignored. Zero-initialize it.
 */
typedef struct retention_policy {
	bool has[RET_NRULES];
	uint32_t count[RET_NRULES];
	retention_duration within[RET_NRULES];
} retention_policy;

/* True when no rule is given: forget refuses such a policy (restic does too) rather than keep only the newest. */
bool retention_policy_empty(const retention_policy *p);

/* One snapshot for retention_apply: time and group in, keep and reasons out. */
typedef struct retention_item {
	int64_t time_ns; /* start time, ns since the epoch (UTC) */
	size_t group;    /* items with the same number form one group */
	bool keep;       /* out */
	unsigned reasons; /* out: RET_BIT()s of the rules that keep it; 0 when removed */
} retention_item;

/*
 * Sets keep and reasons of every item, each group on its own. Items may come in any order; within a group, of
 * two items with the same time the later one in the array counts as the newer (snap_list_load orders equal
 * times by ID, which is how format-spec.md §10 breaks the tie). Returns 0, or DRE_ENOMEM.
 */
int retention_apply(const retention_policy *p, retention_item *items, size_t n);

/*
 * Parses "7d", "2w", "12h", "1y6m", "1y2m3w4d5h": numbers each followed by a unit, y (years), m (months),
 * w (weeks), d (days), h (hours), each unit at most once, in any order. DRE_EINVAL says what is wrong.
 */
int retention_parse_duration(const char *text, retention_duration *out);

/* The instant D before t_ns, calendar-aware in the local time zone (see above). */
int64_t retention_before(const retention_duration *d, int64_t t_ns);

/* A rule's name as forget prints it: "last", "daily", "within-daily", "newest", ... */
const char *retention_rule_name(enum retention_rule rule);

/* The names of the rules in reasons, ", "-separated ("last, daily, weekly"); "" for none. Truncates to cap. */
void retention_reasons_format(unsigned reasons, char *out, size_t cap);

#endif
