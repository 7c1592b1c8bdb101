/* Unit tests of the WAL archive (engine/pg/wal.c): names, LSNs, push/fetch round trips, refusals, the listing. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/repo/bytes.h"
#include "engine/engine.h"
#include "engine/pg/wal.h"
#include "store/err.h"
#include "unit.h"

#define SEG (1u << 20) /* the smallest segment size PostgreSQL allows keeps the tests fast */
#define SYSID UINT64_C(7312345678901234567)

static char tmpdir[256];

/* A segment as PostgreSQL writes one: the long page header, then record-like bytes. */
static uint8_t *make_segment(uint32_t tli, uint64_t segno, uint64_t sysid, unsigned seed)
{
	uint8_t *d = malloc(SEG);
	for (size_t i = 0; i < SEG; i++)
		d[i] = (uint8_t)("INSERT INTO t VALUES (42, 'row');"[i % 33] ^ (i % 4096 == 0 ? seed : 0));
	memset(d, 0, 40);
	put_le16(d, 0xD110);
	put_le16(d + 2, 0x0002 | 0x0004);
	put_le32(d + 4, tli);
	put_le64(d + 8, segno * SEG);
	put_le64(d + 24, sysid);
	put_le32(d + 32, SEG);
	put_le32(d + 36, 8192);
	unit_fill(d + 4096, 512, seed); /* something that differs between seeds */
	return d;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	*out = malloc((size_t)st.st_size + 1);
	*len = (size_t)read(fd, *out, (size_t)st.st_size);
	close(fd);
	return 0;
}

/* Writes segment segno of timeline tli (make_segment with seed) as DIR/<its name> and pushes it. */
static int push_segment(repo *r, const char *dir, uint32_t tli, uint64_t segno, unsigned seed, wal_push_result *res)
{
	char name[WAL_NAME_MAX], path[600];
	uint8_t *seg = make_segment(tli, segno, SYSID, seed);
	wal_segment_name(tli, segno, SEG, name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	write_file(path, seg, SEG);
	free(seg);
	return engine_wal_push(r, path, NULL, res);
}

static void test_names(void)
{
	wal_name n;
	CHECK_RC(wal_name_parse("000000010000000A000000FF", &n));
	CHECK(n.type == WAL_SEGMENT && n.tli == 1 && n.log == 10 && n.seg == 255);
	CHECK(wal_name_segno(&n, 16u << 20) == 10 * 256 + 255);
	CHECK_RC(wal_name_parse("000000020000000000000003.partial", &n));
	CHECK(n.type == WAL_PARTIAL && n.tli == 2);
	CHECK_RC(wal_name_parse("000000010000000000000002.00000028.backup", &n));
	CHECK(n.type == WAL_BACKUP && n.seg == 2);
	CHECK_RC(wal_name_parse("0000000A.history", &n));
	CHECK(n.type == WAL_HISTORY && n.tli == 10);
	const char *bad[] = {"000000010000000a000000ff", "00000001000000000000000", "RECOVERYXLOG",
			     "000000000000000000000001", "00000001.hist", "000000010000000000000002.backup",
			     "000000010000000000000002.0000028.backup", "000000010000000000000001/x", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK(wal_name_parse(bad[i], &n) == DRE_EINVAL);
		CHECK(strstr(err_msg(), "not a WAL file name") != NULL);
	}
	char name[WAL_NAME_MAX];
	wal_segment_name(3, 10 * 256 + 255, 16u << 20, name);
	CHECK(strcmp(name, "000000030000000A000000FF") == 0);
	wal_segment_name(1, 64 + 5, 64u << 20, name); /* 64 segments of 64 MiB per 4 GiB */
	CHECK(strcmp(name, "000000010000000100000005") == 0);
}

static void test_lsns(void)
{
	uint64_t lsn;
	char text[24];
	CHECK_RC(wal_lsn_parse("16/B374D848", &lsn));
	CHECK(lsn == UINT64_C(0x16B374D848));
	wal_lsn_format(lsn, text);
	CHECK(strcmp(text, "16/B374D848") == 0);
	CHECK_RC(wal_lsn_parse("0/0", &lsn));
	CHECK(lsn == 0);
	const char *bad[] = {"", "0", "/1", "1/", "1/2/3", "G/0", "123456789/0", "0/123456789", "0/1x"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECK(wal_lsn_parse(bad[i], &lsn) == DRE_EINVAL);
	CHECK(wal_lsn_segno(UINT64_C(0x3000028), 16u << 20) == 3);
}

static void test_push_fetch_roundtrip(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	char dir[300], path[400], out[400];
	snprintf(dir, sizeof dir, "%s/pg_wal", tmpdir);
	mkdir(dir, 0700);
	uint8_t *seg = make_segment(1, 3, SYSID, 1);
	snprintf(path, sizeof path, "%s/000000010000000000000003", dir);
	write_file(path, seg, SEG);

	wal_push_result res;
	CHECK_RC(engine_wal_push(r, path, NULL, &res));
	CHECK(!res.already && res.system_id == SYSID && res.size == SEG);
	CHECK(res.stored > 0 && res.stored < SEG / 4); /* compressed */
	CHECK(strcmp(res.key, "wal/7312345678901234567/00000001/000000010000000000000003") == 0);
	char key[WAL_KEY_MAX];
	CHECK_RC(wal_object_key(SYSID, "0000000A000000FF000000AB.000000C8.backup", key));
	CHECK(strcmp(key, "wal/7312345678901234567/0000000a/0000000a000000ff000000ab.000000c8.backup") == 0);
	/* the same file again: fine, nothing written */
	CHECK_RC(engine_wal_push(r, path, NULL, &res));
	CHECK(res.already && res.stored == 0);

	snprintf(out, sizeof out, "%s/fetched", tmpdir);
	CHECK_RC(engine_wal_fetch(r, "000000010000000000000003", out, NULL, SYSID));
	uint8_t *back;
	size_t len;
	CHECK(read_file(out, &back, &len) == 0 && len == SEG && memcmp(back, seg, SEG) == 0);
	free(back);
	/* the repository's only system is found without being told */
	unlink(out);
	CHECK_RC(engine_wal_fetch(r, "000000010000000000000003", out, NULL, 0));
	CHECK(access(out, F_OK) == 0);

	/* not archived: DRE_ENOTFOUND, which wal-fetch turns into PostgreSQL's exit 1 */
	CHECK(engine_wal_fetch(r, "000000010000000000000004", out, NULL, SYSID) == DRE_ENOTFOUND);
	CHECK(engine_wal_fetch(r, "00000002.history", out, NULL, SYSID) == DRE_ENOTFOUND);

	/* a different file under the same name is refused, and the archived one stays */
	uint8_t *other = make_segment(1, 3, SYSID, 2);
	write_file(path, other, SEG);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EEXIST);
	CHECK(strstr(err_msg(), "different contents") != NULL && strstr(err_msg(), "000000010000000000000003"));
	CHECK_RC(engine_wal_fetch(r, "000000010000000000000003", out, NULL, SYSID));
	CHECK(read_file(out, &back, &len) == 0 && len == SEG && memcmp(back, seg, SEG) == 0);
	free(back);
	free(other);
	free(seg);
	engine_close(r);
}

static void test_push_refuses_bad_files(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	char path[400];
	wal_push_result res;
	uint8_t *seg = make_segment(1, 5, SYSID, 1);

	/* the name says segment 6, the page header says 5 */
	snprintf(path, sizeof path, "%s/000000010000000000000006", tmpdir);
	write_file(path, seg, SEG);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EINVAL);
	CHECK(strstr(err_msg(), "not the one its name says") != NULL);
	/* cut short */
	snprintf(path, sizeof path, "%s/000000010000000000000005", tmpdir);
	write_file(path, seg, SEG / 2);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EINVAL);
	CHECK(strstr(err_msg(), "its header says segments are") != NULL);
	/* not WAL at all */
	memset(seg, 0, 64);
	write_file(path, seg, SEG);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EINVAL);
	CHECK(strstr(err_msg(), "long page header") != NULL);
	/* not a WAL name */
	snprintf(path, sizeof path, "%s/RECOVERYXLOG", tmpdir);
	write_file(path, seg, SEG);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EINVAL);
	/* missing */
	snprintf(path, sizeof path, "%s/000000010000000000000009", tmpdir);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_ENOTFOUND);
	free(seg);
	engine_close(r);
}

static void test_corrupt_object_is_an_error(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	char out[400];
	wal_push_result res;
	CHECK_RC(push_segment(r, tmpdir, 1, 7, 3, &res));
	uint8_t *obj;
	size_t len;
	CHECK_RC(store_load(r->st, res.key, 1u << 30, &obj, &len));
	obj[len / 2] ^= 1;
	CHECK_RC(store_del(r->st, res.key));
	CHECK_RC(store_put(r->st, res.key, obj, len, 0));
	snprintf(out, sizeof out, "%s/fetched-corrupt", tmpdir);
	CHECK(engine_wal_fetch(r, "000000010000000000000007", out, NULL, SYSID) == DRE_ECORRUPT);
	CHECK(strstr(err_msg(), res.key) != NULL);
	CHECK(access(out, F_OK) != 0); /* nothing half-written is left for PostgreSQL to read */
	wal_check_report rep;
	CHECK_RC(wal_check_archive(r, false, NULL, NULL, &rep));
	CHECK(rep.files == 1 && rep.errors == 0); /* without reading, only counted */
	CHECK_RC(wal_check_archive(r, true, NULL, NULL, &rep));
	CHECK(rep.files == 1 && rep.errors == 1);
	free(obj);
	engine_close(r);
}

static void test_history_and_listing(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	char pgdata[300], path[500];
	wal_push_result res;
	/* a data directory whose control file names the system (history files carry no header) */
	snprintf(pgdata, sizeof pgdata, "%s/pgdata", tmpdir);
	mkdir(pgdata, 0700);
	snprintf(path, sizeof path, "%s/global", pgdata);
	mkdir(path, 0700);
	uint8_t ctl[8192] = {0};
	put_le64(ctl, SYSID);
	put_le32(ctl + 8, 1300);
	snprintf(path, sizeof path, "%s/global/pg_control", pgdata);
	write_file(path, ctl, sizeof ctl);
	snprintf(path, sizeof path, "%s/pg_wal", pgdata);
	mkdir(path, 0700);

	/* timeline 1: segments 1, 2, 3, 5 (4 is missing) and 0x1A; timeline 2 branches at 0/3800000 */
	snprintf(path, sizeof path, "%s/pg_wal", pgdata);
	CHECK_RC(push_segment(r, path, 1, 0x1A, 7, &res));
	char out[600];
	snprintf(out, sizeof out, "%s/fetched-hex", tmpdir);
	CHECK_RC(engine_wal_fetch(r, "00000001000000000000001A", out, NULL, SYSID));
	unsigned segs[] = {1, 2, 3, 5};
	for (size_t i = 0; i < 4; i++)
		CHECK_RC(push_segment(r, path, 1, segs[i], segs[i], &res));
	CHECK_RC(push_segment(r, path, 2, 3, 9, &res));
	const char hist[] = "1\t0/3800000\tbefore 2026-11-21 14:30:00+00\n";
	snprintf(path, sizeof path, "%s/pg_wal/00000002.history", pgdata);
	write_file(path, hist, sizeof hist - 1);
	CHECK_RC(engine_wal_push(r, path, NULL, &res)); /* the system from …/pg_wal/../global/pg_control */
	CHECK(res.system_id == SYSID);

	wal_archive a;
	CHECK_RC(wal_archive_load(r, 0, &a));
	CHECK(a.n == 1 && a.sys[0].system_id == SYSID && a.sys[0].seg_size == SEG && a.sys[0].ntl == 2);
	if (a.n == 1 && a.sys[0].ntl == 2) {
		const wal_timeline *t1 = wal_system_timeline(&a.sys[0], 1), *t2 = wal_system_timeline(&a.sys[0], 2);
		CHECK(t1 && t1->nseg == 5 && t1->segnos[0] == 1 && t1->segnos[3] == 5 && t1->segnos[4] == 0x1A);
		CHECK(t1 && !t1->history);
		CHECK(wal_timeline_has(t1, 3) && !wal_timeline_has(t1, 4));
		CHECK(t2 && t2->nseg == 1 && t2->history);
	}
	wal_archive_free(&a);

	wal_history h;
	CHECK_RC(wal_history_load(r, SYSID, 2, &h));
	CHECK(h.n == 1 && h.tlis[0] == 1 && h.ends[0] == 0x3800000);
	CHECK_RC(wal_history_load(r, SYSID, 1, &h));
	CHECK(h.n == 0);
	CHECK(wal_history_load(r, SYSID, 3, &h) == DRE_ENOTFOUND);

	/* a segment of another size for the same system is refused */
	uint8_t *big = calloc(1, 2 * SEG), *hdr = make_segment(1, 6, SYSID, 1);
	memcpy(big, hdr, 40);
	free(hdr);
	put_le32(big + 32, 2 * SEG);
	put_le64(big + 8, 6 * 2 * (uint64_t)SEG);
	snprintf(path, sizeof path, "%s/000000010000000000000006", tmpdir);
	write_file(path, big, 2 * SEG);
	CHECK(engine_wal_push(r, path, NULL, &res) == DRE_EINVAL);
	CHECK(strstr(err_msg(), "byte WAL segments") != NULL);
	free(big);
	engine_close(r);
}


/* A record as PostgreSQL lays it out: XLogRecord header, then (commit/abort) the main data length and data. */
static size_t put_record(uint8_t *seg, size_t pos, uint8_t rmid, uint8_t info, int64_t xact_time_us, uint32_t pad)
{
	uint8_t rec[64] = {0};
	size_t n = 24, total;
	if (rmid == 1) {
		rec[n++] = 255; /* XLR_BLOCK_ID_DATA_SHORT */
		rec[n++] = 8;
		put_le64(rec + n, (uint64_t)xact_time_us);
		n += 8;
	}
	total = n + (rmid == 1 ? 0 : pad); /* a filler's body is zeros */
	put_le32(rec, (uint32_t)total);
	rec[16] = info;
	rec[17] = rmid;
	/* copy around page headers (8192-byte pages: 40 bytes on the first, 24 on the others) */
	for (size_t i = 0; i < total; i++) {
		if (pos % 8192 == 0)
			pos += pos == 0 ? 40 : 24;
		seg[pos++] = i < n ? rec[i] : 0;
	}
	return (pos + 7) & ~(size_t)7;
}

static void page_header(uint8_t *seg, size_t page, uint64_t segno, uint16_t info, uint32_t rem_len)
{
	uint8_t *ph = seg + page * 8192;
	memset(ph, 0, 24);
	put_le16(ph, 0xD110);
	put_le16(ph + 2, info);
	put_le32(ph + 4, 1);
	put_le64(ph + 8, segno * SEG + page * 8192);
	put_le32(ph + 16, rem_len);
}

static void test_last_transaction_time(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	const int64_t t1 = INT64_C(849000000000000), t2 = t1 + 5000000, stale = t1 + 99000000; /* µs since 2000 */
	uint8_t *seg = make_segment(1, 9, SYSID, 4);
	memset(seg + 40, 0, SEG - 40);
	for (size_t pg = 1; pg < SEG / 8192; pg++)
		page_header(seg, pg, 9, 0, 0);
	size_t pos = put_record(seg, 40, 1, 0x00, t1, 0);               /* a commit */
	pos = put_record(seg, pos, 0, 0x00, 0, (uint32_t)(8176 - pos - 24)); /* filler up to 16 bytes before page 1 */
	page_header(seg, 1, 9, 0x0001, 26); /* the next record continues on page 1 */
	pos = put_record(seg, pos, 1, 0x20, t2, 0);                      /* an abort, across the page boundary */
	pos = put_record(seg, pos, 0, 0x40, 0, 0);                       /* XLOG_SWITCH: the rest is not WAL */
	put_record(seg, 3 * 8192 + 24, 1, 0x00, stale, 0);              /* a later commit that must be ignored */
	char path[400];
	snprintf(path, sizeof path, "%s/000000010000000000000009", tmpdir);
	write_file(path, seg, SEG);
	wal_push_result res;
	CHECK_RC(engine_wal_push(r, path, NULL, &res));
	int64_t pushed, last;
	uint64_t size;
	CHECK_RC(wal_object_info(r, SYSID, "000000010000000000000009", &pushed, &last, &size));
	CHECK(last == (t2 + INT64_C(946684800000000)) * 1000);
	CHECK(size == SEG && pushed > 0);

	/* a page from an older use of the file (its address is another segment's) ends the walk as well */
	size_t after_abort = pos - 24; /* where the switch record went: overwrite it with a filler to page 2 */
	memset(seg + after_abort, 0, 64);
	put_record(seg, after_abort, 0, 0x00, 0, (uint32_t)(2 * 8192 - after_abort - 24));
	page_header(seg, 2, 1234, 0, 0);
	put_record(seg, 2 * 8192, 1, 0x00, stale, 0);
	snprintf(path, sizeof path, "%s/pg_wal2", tmpdir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/pg_wal2/000000010000000000000009", tmpdir);
	write_file(path, seg, SEG);
	repo *r2 = unit_make_repo(tmpdir);
	if (r2 != NULL) {
		CHECK_RC(engine_wal_push(r2, path, NULL, &res));
		CHECK_RC(wal_object_info(r2, SYSID, "000000010000000000000009", &pushed, &last, &size));
		CHECK(last == (t2 + INT64_C(946684800000000)) * 1000);
		engine_close(r2);
	}
	free(seg);
	engine_close(r);
}

static void test_prefetch_spool(void)
{
	repo *r = unit_make_repo(tmpdir);
	if (r == NULL)
		return;
	char dir[300], path[600], dest[400], spool[400];
	wal_push_result res;
	snprintf(dir, sizeof dir, "%s/pf/pg_wal", tmpdir);
	snprintf(path, sizeof path, "%s/pf", tmpdir);
	mkdir(path, 0700);
	mkdir(dir, 0700);
	for (unsigned i = 1; i <= 4; i++) {
		char name[WAL_NAME_MAX];
		CHECK_RC(push_segment(r, dir, 1, i, i, &res));
		wal_segment_name(1, i, SEG, name);
		snprintf(path, sizeof path, "%s/%s", dir, name); /* archived: PostgreSQL would recycle it */
		unlink(path);
	}
	snprintf(dest, sizeof dest, "%s/RECOVERYXLOG", dir);
	snprintf(spool, sizeof spool, "%s/.dre-prefetch", dir);
	bool hit, refill;
	CHECK_RC(wal_spool_take("000000010000000000000001", dest, 8, &hit, &refill));
	CHECK(!hit);
	CHECK_RC(engine_wal_fetch(r, "000000010000000000000001", dest, NULL, SYSID));
	CHECK_RC(engine_wal_prefetch(r, "000000010000000000000001", dest, NULL, SYSID, 8));
	snprintf(path, sizeof path, "%s/000000010000000000000004", spool);
	CHECK(access(path, F_OK) == 0); /* 2, 3, 4 fetched ahead; 5 is not archived: the spool ends there */
	CHECK_RC(wal_spool_take("000000010000000000000002", dest, 8, &hit, &refill));
	CHECK(hit && refill); /* 2 of the 8 are left: time to top up */
	uint8_t *back, *want = make_segment(1, 2, SYSID, 2);
	size_t len;
	CHECK(read_file(dest, &back, &len) == 0 && len == SEG && memcmp(back, want, SEG) == 0);
	free(back);
	free(want);
	/* the end of the archive empties it; a fetch outside pg_wal never starts one */
	wal_spool_remove(dest);
	CHECK(access(spool, F_OK) != 0);
	snprintf(dest, sizeof dest, "%s/elsewhere", tmpdir);
	CHECK_RC(engine_wal_fetch(r, "000000010000000000000001", dest, NULL, SYSID));
	CHECK_RC(engine_wal_prefetch(r, "000000010000000000000001", dest, NULL, SYSID, 8));
	snprintf(path, sizeof path, "%s/.dre-prefetch", tmpdir);
	CHECK(access(path, F_OK) != 0);
	engine_close(r);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/dre-wal-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
	RUN(test_names);
	RUN(test_lsns);
	RUN(test_push_fetch_roundtrip);
	RUN(test_push_refuses_bad_files);
	RUN(test_corrupt_object_is_an_error);
	RUN(test_history_and_listing);
	RUN(test_last_transaction_time);
	RUN(test_prefetch_spool);
	return unit_exit();
}
