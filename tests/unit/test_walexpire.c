/* Unit tests of WAL expiry (engine/pg/walexpire.c, format-spec.md §16.5): the rule on hand-written cases, then
 * wal_expire on a local repository with two timelines, .partial, .backup and history files. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/repo/bytes.h"
#include "engine/engine.h"
#include "engine/repo/lock.h"
#include "engine/pg/wal.h"
#include "engine/pg/walexpire.h"
#include "store/err.h"
#include "unit.h"

#define SEG (1u << 20) /* the smallest segment size PostgreSQL allows keeps the tests fast */
#define SYSID UINT64_C(7312345678901234567)

static char tmpdir[256];

/* ---- the rule ---- */

/* remove[] as a string of '.' (kept) and 'x' (removed) for segments from..to, to compare at a glance */
static void pattern(const wal_expire_backup *b, size_t n, int64_t window, int64_t now, uint64_t from, uint64_t to,
		    char *out)
{
	uint64_t segnos[64] = {0};
	bool remove[64] = {false};
	size_t k = 0;
	for (uint64_t s = from; s <= to && k < 64; s++)
		segnos[k++] = s;
	wal_expire_select(b, n, window, now, segnos, k, remove);
	for (size_t i = 0; i < k; i++)
		out[i] = remove[i] ? 'x' : '.';
	out[k] = '\0';
}

static void expect(const char *got, const char *want)
{
	CHECK(strcmp(got, want) == 0);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "    got  %s\n    want %s\n", got, want);
}

/* Three backups of one timeline, each ended 10 after it began: segments 10-11, 20-21, 30. */
static const wal_expire_backup three[] = {
	{.start_segno = 10, .stop_segno = 11, .time_ns = 100, .stop_ns = 110, .on_path = true},
	{.start_segno = 20, .stop_segno = 21, .time_ns = 200, .stop_ns = 210, .on_path = true},
	{.start_segno = 30, .stop_segno = 30, .time_ns = 300, .stop_ns = 310, .on_path = true},
};

static void test_no_window(void)
{
	char got[80];
	/* the whole kept range: the oldest backup anchors, everything before its start goes */
	CHECK(wal_expire_anchor(three, 3, -1, 400) == 10);
	pattern(three, 3, -1, 400, 5, 35, got);
	expect(got, "xxxxx..........................");
	/* the order of the array does not matter */
	wal_expire_backup rev[] = {three[2], three[0], three[1]};
	CHECK(wal_expire_anchor(rev, 3, -1, 400) == 10);
	/* a window longer than the backups' history is the same as none */
	CHECK(wal_expire_anchor(three, 3, 1000, 400) == 10);
	CHECK(wal_expire_anchor(three, 3, INT64_MAX, INT64_MIN + 5) == 10); /* no overflow */
}

static void test_window_anchors_on_an_older_backup(void)
{
	char got[80];
	/* now − window = 250: the second backup is the newest that ended before it; the first keeps its range */
	CHECK(wal_expire_anchor(three, 3, 150, 400) == 20);
	pattern(three, 3, 150, 400, 5, 35, got);
	expect(got, "xxxxx..xxxxxxxx................");
	/* now − window = 350: the third anchors; the first two keep their ranges only */
	CHECK(wal_expire_anchor(three, 3, 50, 400) == 30);
	pattern(three, 3, 50, 400, 5, 35, got);
	expect(got, "xxxxx..xxxxxxxx..xxxxxxxx......");
	/* window 0: the newest that ended before now */
	CHECK(wal_expire_anchor(three, 3, 0, 400) == 30);
	/* ended exactly at now − window is not before it: pg-restore picks a backup that ended before the target */
	CHECK(wal_expire_anchor(three, 3, 190, 400) == 10);
	CHECK(wal_expire_anchor(three, 3, 189, 400) == 20);
	/* none ended before now − window: the oldest anchors */
	CHECK(wal_expire_anchor(three, 3, 300, 400) == 10);
}

static void test_overlapping_backups(void)
{
	/* a backup taken while another ran: later by snapshot time, yet it started on an earlier segment. For a
	 * target after the third's end pg-restore may pick it (it is newer), so its start bounds the anchor. */
	wal_expire_backup b[] = {three[0], three[1], three[2],
				 {.start_segno = 25, .stop_segno = 32, .time_ns = 305, .stop_ns = 320, .on_path = true}};
	CHECK(wal_expire_anchor(b, 4, 85, 400) == 25); /* now − window = 315: the third anchors, the fourth is after it */
	CHECK(wal_expire_anchor(b, 4, 50, 400) == 25); /* 350: the fourth anchors */
	CHECK(wal_expire_needed(26, 25, b, 4) && !wal_expire_needed(24, 25, b, 4) && wal_expire_needed(21, 25, b, 4));
}

static void test_two_timelines(void)
{
	char got[80];
	/* Timeline 2 branched from timeline 1 at segment 24. The second backup lies on timeline 1 after the branch
	 * point: not on the newest timeline's history, it never anchors (pg-restore would not pick it for a target
	 * on timeline 2), and only its own range is kept. The third is on timeline 2. */
	wal_expire_backup b[] = {three[0],
				 {.start_segno = 26, .stop_segno = 27, .time_ns = 200, .stop_ns = 210, .on_path = false},
				 {.start_segno = 30, .stop_segno = 30, .time_ns = 300, .stop_ns = 310, .on_path = true}};
	/* now − window = 250: the newest on the path that ended before it is the first, not the second */
	CHECK(wal_expire_anchor(b, 3, 150, 400) == 10);
	pattern(b, 3, 150, 400, 5, 35, got);
	expect(got, "xxxxx..........................");
	/* 350: the third anchors; the second keeps its range, across timelines (segment numbers only) */
	CHECK(wal_expire_anchor(b, 3, 50, 400) == 30);
	pattern(b, 3, 50, 400, 5, 35, got);
	expect(got, "xxxxx..xxxxxxxxxxxxxx..xx......");
	/* no window: the oldest on the path anchors, even when one off the path is older */
	wal_expire_backup c[] = {{.start_segno = 3, .stop_segno = 4, .time_ns = 50, .stop_ns = 60, .on_path = false},
				 b[2]};
	CHECK(wal_expire_anchor(c, 2, -1, 400) == 30);
	pattern(c, 2, -1, 400, 1, 31, got);
	expect(got, "xx..xxxxxxxxxxxxxxxxxxxxxxxxx..");
	/* one off the path that is newer than the anchor backup but started before it (it ran beside it) still
	 * bounds the anchor: a restore along its own timeline (--target-timeline 1) may pick it */
	wal_expire_backup d[] = {three[0],
				 {.start_segno = 8, .stop_segno = 27, .time_ns = 150, .stop_ns = 240, .on_path = false},
				 b[2]};
	CHECK(wal_expire_anchor(d, 3, 150, 400) == 8);
	CHECK(wal_expire_anchor(d, 3, 50, 400) == 30); /* the third anchors: the off-path one is older than it */
}

static void test_no_kept_backups(void)
{
	char got[80];
	CHECK(wal_expire_anchor(NULL, 0, -1, 400) == WAL_EXPIRE_KEEP_ALL);
	CHECK(wal_expire_anchor(NULL, 0, 0, 400) == WAL_EXPIRE_KEEP_ALL);
	pattern(NULL, 0, 0, 400, 0, 9, got);
	expect(got, "..........");
	/* backups, none on the newest timeline's history: nothing is known to be safe to remove */
	wal_expire_backup off = three[0];
	off.on_path = false;
	CHECK(wal_expire_anchor(&off, 1, -1, 400) == WAL_EXPIRE_KEEP_ALL);
	pattern(&off, 1, -1, 400, 0, 9, got);
	expect(got, "..........");
}

static void test_expired_or_missing(void)
{
	/* after an expiry anchored on the third: 10-11, 20-21, 30-35 remain */
	uint64_t after[] = {10, 11, 20, 21, 30, 31, 32, 33, 34, 35};
	uint64_t ff = wal_expire_first_free(after, 10, three, 3);
	CHECK(ff == 31);
	CHECK(wal_expire_gap_expired(12, 19, ff, three, 3));
	CHECK(wal_expire_gap_expired(22, 29, ff, three, 3));
	/* a stretch inside a backup's range is missing whatever removed it */
	CHECK(!wal_expire_gap_expired(11, 19, ff, three, 3));
	/* ... and so is one above WAL that expiry would have removed first */
	uint64_t lost[] = {10, 11, 12, 13, 20, 21, 30, 31};
	ff = wal_expire_first_free(lost, 8, three, 3);
	CHECK(ff == 12);
	CHECK(!wal_expire_gap_expired(14, 19, ff, three, 3));
	/* an expiry cut short (it removes in increasing order) leaves an expired stretch below what it reached */
	uint64_t cut[] = {10, 11, 16, 17, 18, 19, 20, 21, 30};
	ff = wal_expire_first_free(cut, 9, three, 3);
	CHECK(ff == 16 && wal_expire_gap_expired(12, 15, ff, three, 3));
	/* nothing outside the ranges */
	uint64_t only[] = {10, 11, 30};
	CHECK(wal_expire_first_free(only, 3, three, 3) == UINT64_MAX);
}

/* ---- wal_expire on a repository ---- */

static uint8_t *make_segment(uint32_t tli, uint64_t segno, unsigned seed)
{
	uint8_t *d = calloc(1, SEG);
	for (size_t i = 40; i < SEG; i += 4096)
		d[i] = (uint8_t)(seed + i);
	put_le16(d, 0xD110);
	put_le16(d + 2, 0x0002 | 0x0004);
	put_le32(d + 4, tli);
	put_le64(d + 8, segno * SEG);
	put_le64(d + 24, SYSID);
	put_le32(d + 32, SEG);
	put_le32(d + 36, 8192);
	return d;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static char pgwal[400];

static void push_named(repo *r, const char *name, const void *data, size_t len)
{
	char path[600];
	wal_push_result res;
	snprintf(path, sizeof path, "%s/%s", pgwal, name);
	write_file(path, data, len);
	CHECK_RC(engine_wal_push(r, path, NULL, &res));
	unlink(path);
}

static void push_segment(repo *r, uint32_t tli, uint64_t segno, const char *suffix)
{
	char name[WAL_NAME_MAX + 16];
	uint8_t *seg = make_segment(tli, segno, (unsigned)(tli * 100 + segno));
	wal_segment_name(tli, segno, SEG, name);
	strcat(name, suffix);
	push_named(r, name, seg, SEG);
	free(seg);
}

/* A base backup's snapshot as forget hands it over: only the header and the meta matter. */
struct fake_backup {
	snapshot s;
	snap_meta meta[8];
	char val[8][32];
};

static void fake_backup(struct fake_backup *f, uint32_t tli, uint64_t start_lsn, uint64_t stop_lsn, int64_t t)
{
	static const char *const keys[8] = {"pg.system-id", "pg.timeline", "pg.version", "pg.wal-segment-size",
					    "pg.start-lsn", "pg.stop-lsn", "pg.start-time", "pg.stop-time"};
	memset(f, 0, sizeof *f);
	snprintf(f->val[0], 32, "%" PRIu64, SYSID);
	snprintf(f->val[1], 32, "%u", tli);
	snprintf(f->val[2], 32, "150010");
	snprintf(f->val[3], 32, "%u", SEG);
	wal_lsn_format(start_lsn, f->val[4]);
	wal_lsn_format(stop_lsn, f->val[5]);
	snprintf(f->val[6], 32, "%" PRId64, t);
	snprintf(f->val[7], 32, "%" PRId64, t + 10);
	for (int i = 0; i < 8; i++)
		f->meta[i] = (snap_meta){(char *)keys[i], f->val[i]};
	f->s.kind = SNAP_PG_BASE;
	f->s.name = "pg";
	f->s.host = "h";
	f->s.time_ns = t;
	f->s.end_time_ns = t + 10;
	f->s.meta = f->meta;
	f->s.nmeta = 8;
	f->s.id[0] = (uint8_t)t;
}

/* The archive as "t:segno" words ("1:3 1:3b 1:8p 2:h" for segment, .backup, .partial, history), sorted. */
struct listing {
	char words[64][16];
	size_t n;
};

static int list_word(void *arg, const char *key, uint64_t size)
{
	(void)size;
	struct listing *l = arg;
	uint64_t sys;
	char name[WAL_NAME_MAX];
	wal_name wn;
	if (wal_key_parse(key, &sys, name, &wn) < 0 || l->n >= 64)
		return 0;
	const char *suffix[] = {"", "", "p", "b", "h"};
	if (wn.type == WAL_HISTORY)
		snprintf(l->words[l->n++], 16, "%u:h", wn.tli);
	else
		snprintf(l->words[l->n++], 16, "%u:%u%s", wn.tli, wn.seg, suffix[wn.type]);
	return 0;
}

static int word_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void archive_is(repo *r, const char *want)
{
	struct listing l = {.n = 0};
	char got[1024] = "";
	CHECK_RC(store_list(r->st, "wal/", list_word, &l));
	qsort(l.words, l.n, sizeof l.words[0], word_cmp);
	for (size_t i = 0; i < l.n; i++) {
		strcat(got, i ? " " : "");
		strcat(got, l.words[i]);
	}
	expect(got, want);
}

struct warnings {
	int n;
	char last[1024];
};

static void on_warn(void *arg, const char *msg)
{
	struct warnings *w = arg;
	w->n++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

/* A data directory whose control file names the system (history and backup files carry no header), whose
 * pg_wal the files are pushed from. */
static void make_pgdata(void)
{
	char pgdata[300], path[500];
	snprintf(pgdata, sizeof pgdata, "%s/pgdata", tmpdir);
	mkdir(pgdata, 0700);
	snprintf(path, sizeof path, "%s/global", pgdata);
	mkdir(path, 0700);
	uint8_t ctl[8192] = {0};
	put_le64(ctl, SYSID);
	put_le32(ctl + 8, 1300);
	snprintf(path, sizeof path, "%s/global/pg_control", pgdata);
	write_file(path, ctl, sizeof ctl);
	snprintf(pgwal, sizeof pgwal, "%s/pg_wal", pgdata);
	mkdir(pgwal, 0700);
}

static void test_expire_repository(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	/* timeline 1: segments 1-9; timeline 2 branches at 0/880000 (in segment 8): 8.partial on timeline 1,
	 * segments 8-12 on timeline 2; a .backup file at 3 */
	for (uint64_t s = 1; s <= 9; s++)
		push_segment(r, 1, s, "");
	push_segment(r, 1, 8, ".partial");
	for (uint64_t s = 8; s <= 12; s++)
		push_segment(r, 2, s, "");
	const char backup[] = "START WAL LOCATION: 0/300028 (file 000000010000000000000003)\n";
	push_named(r, "000000010000000000000003.00000028.backup", backup, sizeof backup - 1);
	const char hist[] = "1\t0/880000\tno recovery target specified\n";
	push_named(r, "00000002.history", hist, sizeof hist - 1);
	const char *all = "1:1 1:2 1:3 1:3b 1:4 1:5 1:6 1:7 1:8 1:8p 1:9 2:10 2:11 2:12 2:8 2:9 2:h";
	archive_is(r, all);

	/* b1: timeline 1, 3-4; b2: timeline 1, 6; b3: timeline 2, 10; b4: timeline 1 after the branch point,
	 * 9 (not on timeline 2's history) */
	struct fake_backup b1, b2, b3, b4;
	fake_backup(&b1, 1, 0x300028, 0x400100, 100);
	fake_backup(&b2, 1, 0x600028, 0x600100, 200);
	fake_backup(&b3, 2, 0xA00028, 0xA00100, 300);
	fake_backup(&b4, 1, 0x900028, 0x900100, 250);
	wal_expire_result res;
	struct warnings w = {0};

	/* no kept backup: nothing goes */
	CHECK_RC(wal_expire(r, NULL, 0, -1, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 0 && res.kept == 17);
	archive_is(r, all);

	/* a dry run: says what would go (1 and 2, below b1), removes nothing */
	snapshot kept[4] = {b1.s, b2.s, b3.s, b4.s};
	CHECK_RC(wal_expire(r, kept, 4, -1, 400, true, on_warn, &w, &res));
	CHECK(res.removed == 2 && res.kept == 15 && res.bytes_removed > 0);
	archive_is(r, all);

	/* a running pg-backup: nothing goes, with a warning */
	repo_lock *lk = NULL;
	CHECK_RC(lock_acquire(r, REPO_LOCK_WRITE, "pg-backup", &lk));
	CHECK_RC(wal_expire(r, kept, 4, -1, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 0 && w.n == 1 && strstr(w.last, "base backup is running") != NULL);
	lock_release(lk, NULL, NULL);
	archive_is(r, all);

	/* a window whose start (250) only b1 and b2 ended before: b2 anchors (b4 ended later, and is off the
	 * path anyway); 5 goes, b1's range and its .backup file stay */
	CHECK_RC(wal_expire(r, kept, 4, 150, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 3 && res.kept == 14);
	archive_is(r, "1:3 1:3b 1:4 1:6 1:7 1:8 1:8p 1:9 2:10 2:11 2:12 2:8 2:9 2:h");

	/* b2 and b4 kept, window 0: b4 ended last but is not on timeline 2's history, so b2 anchors */
	snapshot two[2] = {b2.s, b4.s};
	CHECK_RC(wal_expire(r, two, 2, 0, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 3); /* 1:3, 1:3b, 1:4 */
	archive_is(r, "1:6 1:7 1:8 1:8p 1:9 2:10 2:11 2:12 2:8 2:9 2:h");

	/* only b3 kept: everything below 10 goes, on both timelines, .partial included; the history stays */
	CHECK_RC(wal_expire(r, &b3.s, 1, -1, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 7 && res.kept == 4);
	archive_is(r, "2:10 2:11 2:12 2:h");

	/* a kept backup whose manifest lacks what the rule needs: nothing goes */
	struct fake_backup bad;
	fake_backup(&bad, 2, 0xB00028, 0xB00100, 350);
	bad.s.nmeta = 5; /* no stop LSN, no times */
	snapshot with_bad[2] = {bad.s, b3.s};
	int before = w.n;
	CHECK_RC(wal_expire(r, with_bad, 2, 0, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 0 && w.n == before + 1);
	archive_is(r, "2:10 2:11 2:12 2:h");
	engine_close(r);
}

static void test_missing_history_keeps_everything(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	/* timeline 3 has segments but its history file is not archived: which backups lie on its history is
	 * unknown, so nothing of the system goes */
	for (uint64_t s = 1; s <= 4; s++)
		push_segment(r, 1, s, "");
	push_segment(r, 3, 5, "");
	struct fake_backup b;
	fake_backup(&b, 1, 0x300028, 0x300100, 100);
	wal_expire_result res;
	struct warnings w = {0};
	CHECK_RC(wal_expire(r, &b.s, 1, -1, 400, false, on_warn, &w, &res));
	CHECK(res.removed == 0 && res.kept == 5 && w.n == 1 && strstr(w.last, "00000003.history") != NULL);
	engine_close(r);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/dre-walexpire-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
	make_pgdata();
	RUN(test_no_window);
	RUN(test_window_anchors_on_an_older_backup);
	RUN(test_overlapping_backups);
	RUN(test_two_timelines);
	RUN(test_no_kept_backups);
	RUN(test_expired_or_missing);
	RUN(test_expire_repository);
	RUN(test_missing_history_keeps_everything);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return unit_exit();
}
