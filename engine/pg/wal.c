/*
 * wal.c — the WAL archive (wal.h, format-spec.md §15).
 *
 * wal-push runs once per segment and PostgreSQL waits on it, so its cost is latency: the file is read whole,
 * compressed with zstd's worker threads straight into the buffer that is then sealed in place and put, and the
 * common case (a name not archived yet) is one create-once put with no lookup before it.
 */
#include "engine/pg/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "engine/repo/bytes.h"
#include "engine/repo/localfile.h"
#include "engine/pipeline/meter.h"
#include "engine/pipeline/workq.h"
#include "engine/testhook.h"
#include "store/err.h"

#define WAL_FORMAT 1
#define WAL_KIND_FILE 1
#define WAL_KIND_SYSTEM 2
#define WAL_FLAG_ZSTD 1u
#define WAL_FILE_HDR 48 /* format, kind, flags, 5 zero, u64 size, 16 xxh128, i64 pushed, i64 last xact time */
#define WAL_SYSTEM_LEN 24 /* format, kind, u16 page magic, u32 segment size, u64 system id, i64 created */
#define WAL_MAX_FILE (1u << 30)
#define WAL_MAX_OBJECT (WAL_MAX_FILE + (4u << 20))

/* XLogLongPageHeaderData (PostgreSQL's access/xlog_internal.h): the first page of every segment. */
#define XLP_LONG_HEADER 0x0002
#define XLP_OFF_MAGIC 0
#define XLP_OFF_INFO 2
#define XLP_OFF_PAGEADDR 8
#define XLP_OFF_SYSID 24
#define XLP_OFF_SEG_SIZE 32
#define XLP_LONG_LEN 40

static bool hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static uint32_t hex32(const char *s)
{
	char tmp[9];
	memcpy(tmp, s, 8);
	tmp[8] = '\0';
	return (uint32_t)strtoul(tmp, NULL, 16);
}

int wal_name_parse(const char *name, wal_name *out)
{
	size_t len = strlen(name);
	memset(out, 0, sizeof *out);
	if (len == 16 && hex_run(name, 8) && strcmp(name + 8, ".history") == 0) {
		out->type = WAL_HISTORY;
		out->tli = hex32(name);
	} else if (len >= 24 && hex_run(name, 24)) {
		const char *rest = name + 24;
		if (*rest == '\0')
			out->type = WAL_SEGMENT;
		else if (strcmp(rest, ".partial") == 0)
			out->type = WAL_PARTIAL;
		else if (strlen(rest) == 16 && rest[0] == '.' && hex_run(rest + 1, 8) && strcmp(rest + 9, ".backup") == 0)
			out->type = WAL_BACKUP;
		else
			goto bad;
		out->tli = hex32(name);
		out->log = hex32(name + 8);
		out->seg = hex32(name + 16);
	} else {
		goto bad;
	}
	if (out->tli == 0)
		goto bad;
	return 0;
bad:
	return err_set(DRE_EINVAL,
		       "'%s' is not a WAL file name (a segment such as 000000010000000000000001, or one with "
		       ".partial, .XXXXXXXX.backup, or a TTTTTTTT.history file)",
		       name);
}

uint64_t wal_name_segno(const wal_name *n, uint32_t seg_size)
{
	return (uint64_t)n->log * (UINT64_C(0x100000000) / seg_size) + n->seg;
}

void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char out[WAL_NAME_MAX])
{
	uint64_t per = UINT64_C(0x100000000) / seg_size;
	snprintf(out, WAL_NAME_MAX, "%08X%08X%08X", tli, (uint32_t)(segno / per), (uint32_t)(segno % per));
}

int wal_lsn_parse(const char *text, uint64_t *lsn)
{
	const char *slash = strchr(text, '/');
	char *end;
	if (slash == NULL || slash == text || slash - text > 8 || !slash[1] || strlen(slash + 1) > 8)
		goto bad;
	errno = 0;
	uint64_t hi = strtoull(text, &end, 16);
	if (end != slash || errno)
		goto bad;
	uint64_t lo = strtoull(slash + 1, &end, 16);
	if (*end || errno)
		goto bad;
	*lsn = hi << 32 | lo;
	return 0;
bad:
	return err_set(DRE_EINVAL, "'%s' is not an LSN (such as 0/3000028)", text);
}

void wal_lsn_format(uint64_t lsn, char out[24])
{
	snprintf(out, 24, "%X/%X", (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

static int read_whole(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return err_sys("cannot open %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int rc = S_ISREG(st.st_mode) ? err_sys("cannot stat %s", path)
					    : err_set(DRE_EINVAL, "%s is not a regular file", path);
		close(fd);
		return rc;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return err_set(DRE_EINVAL, "%s is %lld bytes: larger than any WAL file (%zu)", path,
			       (long long)st.st_size, max);
	}
	size_t size = (size_t)st.st_size;
	uint8_t *data = malloc(size ? size : 1);
	if (data == NULL) {
		close(fd);
		return err_set(DRE_ENOMEM, "cannot allocate %zu bytes for %s", size, path);
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = n < 0 ? err_sys("cannot read %s", path)
				       : err_set(DRE_EIO, "%s shrank while it was read", path);
			close(fd);
			free(data);
			return rc;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = data;
	*len = size;
	return 0;
}

int wal_pgdata_system_id(const char *pgdata, uint64_t *out)
{
	char path[4096];
	uint8_t *ctl;
	size_t len;
	snprintf(path, sizeof path, "%s/global/pg_control", pgdata);
	TRY(read_whole(path, 1u << 20, &ctl, &len));
	/* ControlFileData starts with the system identifier, then pg_control_version (1300 for 13 to 16) */
	int rc = 0;
	if (len < 16 || get_le32(ctl + 8) < 900 || get_le32(ctl + 8) > 9999)
		rc = err_set(DRE_EINVAL, "%s is not a PostgreSQL control file", path);
	else
		*out = get_le64(ctl);
	free(ctl);
	return rc;
}

bool wal_seg_size_valid(uint64_t seg_size)
{
	return seg_size >= (1u << 20) && seg_size <= WAL_MAX_FILE && (seg_size & (seg_size - 1)) == 0;
}

static void system_key(uint64_t sysid, char out[96])
{
	snprintf(out, 96, "wal/%" PRIu64 "/system", sysid);
}

/* Store keys are lowercase (format-spec §2): the names' hex digits are written in lowercase there. */
static int file_key(uint64_t sysid, const wal_name *n, const char *name, char out[WAL_KEY_MAX])
{
	int len = snprintf(out, WAL_KEY_MAX, "wal/%" PRIu64 "/%08x/%s", sysid, n->tli, name);
	if (len <= 0 || len >= WAL_KEY_MAX)
		return err_set(DRE_EINVAL, "WAL file name %s is too long", name);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

int wal_object_key(uint64_t system_id, const char *name, char out[WAL_KEY_MAX])
{
	wal_name wn;
	TRY(wal_name_parse(name, &wn));
	return file_key(system_id, &wn, name, out);
}

static int system_load(repo *r, uint64_t sysid, uint32_t *seg_size, uint16_t *magic)
{
	char key[96];
	uint8_t *p;
	size_t len;
	system_key(sysid, key);
	TRY(repo_get_object(r, 'W', key, &p, &len));
	int rc = 0;
	if (len != WAL_SYSTEM_LEN || p[0] != WAL_FORMAT || p[1] != WAL_KIND_SYSTEM)
		rc = err_set(DRE_ECORRUPT, "corrupt object %s: not a WAL system record", key);
	else {
		*magic = get_le16(p + 2);
		*seg_size = get_le32(p + 4);
		if (!wal_seg_size_valid(*seg_size))
			rc = err_set(DRE_ECORRUPT, "corrupt object %s: segment size %u", key, *seg_size);
	}
	free(p);
	return rc;
}

/* The repository's record of the system: written by the first push of a segment, compared by the others. */
static int system_check(repo *r, uint64_t sysid, uint32_t seg_size, uint16_t magic)
{
	uint32_t have;
	uint16_t have_magic;
	int rc = system_load(r, sysid, &have, &have_magic);
	if (rc == DRE_ENOTFOUND) {
		char key[96];
		uint8_t rec[WAL_SYSTEM_LEN] = {WAL_FORMAT, WAL_KIND_SYSTEM};
		system_key(sysid, key);
		put_le16(rec + 2, magic);
		put_le32(rec + 4, seg_size);
		put_le64(rec + 8, sysid);
		put_le64(rec + 16, (uint64_t)meter_now_ns());
		rc = repo_put_object(r, 'W', key, rec, sizeof rec, STORE_PUT_CREATE_ONCE);
		if (rc != DRE_EEXIST) /* another push created it meanwhile: compare with that one */
			return rc;
		rc = system_load(r, sysid, &have, &have_magic);
	}
	TRY(rc);
	if (have != seg_size)
		return err_set(DRE_EINVAL,
			       "system %" PRIu64 " archives %u-byte WAL segments in this repository, this one is %u bytes",
			       sysid, have, seg_size);
	return 0;
}

/* A segment proves whose it is: its first page carries the system identifier and the segment size. */
static int segment_header(const char *path, const wal_name *n, const uint8_t *data, size_t len, uint64_t *sysid,
			  uint32_t *seg_size, uint16_t *magic)
{
	if (len < XLP_LONG_LEN)
		return err_set(DRE_EINVAL, "%s is %zu bytes: too short for a WAL segment", path, len);
	*magic = get_le16(data + XLP_OFF_MAGIC);
	uint16_t info = get_le16(data + XLP_OFF_INFO);
	*sysid = get_le64(data + XLP_OFF_SYSID);
	*seg_size = get_le32(data + XLP_OFF_SEG_SIZE);
	if ((*magic & 0xff00) != 0xd100 || !(info & XLP_LONG_HEADER))
		return err_set(DRE_EINVAL, "%s does not start with a WAL long page header (magic 0x%04x)", path, *magic);
	if (!wal_seg_size_valid(*seg_size))
		return err_set(DRE_EINVAL, "%s: segment size %u in its header is not a power of two from 1 MiB to 1 GiB",
			       path, *seg_size);
	if (len != *seg_size)
		return err_set(DRE_EINVAL, "%s is %zu bytes, its header says segments are %u", path, len, *seg_size);
	uint64_t want = wal_name_segno(n, *seg_size) * *seg_size;
	if (get_le64(data + XLP_OFF_PAGEADDR) != want)
		return err_set(DRE_EINVAL, "%s: its first page is for WAL position %" PRIX64 ", not the one its name says",
			       path, get_le64(data + XLP_OFF_PAGEADDR));
	return 0;
}

static void dirname_of(const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
}

/* For files without a page header: --pgdata, else the data directory that holds …/pg_wal/NAME, else ".". */
static int find_system_id(const char *path, const char *pgdata, uint64_t *sysid)
{
	char dir[4096], parent[4096];
	if (pgdata != NULL)
		return err_ctx(wal_pgdata_system_id(pgdata, sysid), "cannot tell which cluster %s belongs to", path);
	dirname_of(path, dir, sizeof dir);
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	if (strcmp(base, "pg_wal") == 0) {
		dirname_of(dir, parent, sizeof parent);
		if (wal_pgdata_system_id(parent, sysid) == 0)
			return 0;
	}
	return err_ctx(wal_pgdata_system_id(".", sysid),
		       "cannot tell which cluster %s belongs to: run it in the data directory, as PostgreSQL does, "
		       "or give --pgdata", path);
}

/*
 * The time of the last transaction that ended (commit or abort record) in a segment, ns since the epoch, or 0.
 * Recovery to a time T stops at the first such record after T, so this is what tells whether a target is
 * reached before a missing segment. It reads PostgreSQL's record layout (access/xlogrecord.h, unchanged from
 * 10 to 17): page headers are skipped, each page's address is checked (a recycled segment holds stale pages
 * past the last record), and the walk stops at an XLOG_SWITCH or at the first record that does not fit.
 */
#define XLP_FIRST_IS_CONTRECORD 0x0001
#define XLOG_SHORT_PHD 24
#define XLOG_LONG_PHD 40
#define XLOG_RECORD_HDR 24
#define RM_XLOG_ID 0
#define RM_XACT_ID 1
#define XLOG_SWITCH 0x40
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000) /* 2000-01-01 in Unix microseconds */

struct wal_cursor {
	const uint8_t *seg;
	size_t len;
	uint32_t blcksz;
	uint64_t base;  /* LSN of the segment's first byte */
	uint16_t magic;
	size_t pos;     /* physical offset of the next payload byte */
};

/* Moves over a page header when pos is at a page start; false when the page is not this segment's. */
static bool cursor_page(struct wal_cursor *c)
{
	if (c->pos % c->blcksz != 0)
		return true;
	if (c->pos + XLOG_LONG_PHD > c->len)
		return false;
	const uint8_t *ph = c->seg + c->pos;
	if (get_le16(ph) != c->magic || get_le64(ph + 8) != c->base + c->pos)
		return false;
	c->pos += c->pos == 0 ? XLOG_LONG_PHD : XLOG_SHORT_PHD;
	return true;
}

/* Copies (out may be NULL: skips) n payload bytes. */
static bool cursor_read(struct wal_cursor *c, uint8_t *out, size_t n)
{
	while (n > 0) {
		if (!cursor_page(c))
			return false;
		size_t room = c->blcksz - c->pos % c->blcksz;
		size_t take = n < room ? n : room;
		if (c->pos + take > c->len)
			return false;
		if (out) {
			memcpy(out, c->seg + c->pos, take);
			out += take;
		}
		c->pos += take;
		n -= take;
	}
	return true;
}

static int64_t segment_last_xact_ns(const uint8_t *seg, size_t len, uint64_t base)
{
	struct wal_cursor c = {seg, len, get_le32(seg + 36), base, get_le16(seg), 0};
	int64_t last = 0;
	if (c.blcksz < 1024 || c.blcksz > (1u << 16) || (c.blcksz & (c.blcksz - 1)) || len % c.blcksz)
		return 0;
	uint32_t cont = get_le16(seg + 2) & XLP_FIRST_IS_CONTRECORD ? get_le32(seg + 16) : 0;
	if (!cursor_page(&c) || !cursor_read(&c, NULL, cont))
		return 0;
	for (;;) {
		uint8_t rec[XLOG_RECORD_HDR];
		c.pos = (c.pos + 7) & ~(size_t)7; /* records start MAXALIGNed */
		if (c.pos >= len || !cursor_read(&c, rec, sizeof rec))
			break;
		uint32_t tot = get_le32(rec);
		uint8_t info = rec[16], rmid = rec[17];
		if (tot < XLOG_RECORD_HDR || tot > WAL_MAX_FILE)
			break;
		if (rmid == RM_XLOG_ID && (info & 0xf0) == XLOG_SWITCH)
			break;
		uint8_t op = info & 0x70; /* XLOG_XACT_OPMASK: commit, abort, commit/abort prepared */
		bool xact_end = rmid == RM_XACT_ID && (op == 0x00 || op == 0x20 || op == 0x30 || op == 0x40);
		size_t rest = tot - XLOG_RECORD_HDR;
		if (!xact_end || rest > 4096) {
			if (!cursor_read(&c, NULL, rest))
				break;
			continue;
		}
		uint8_t body[4096];
		if (!cursor_read(&c, body, rest))
			break;
		/* block headers: origin (253, u16), top-level xid (252, u32), then the main data length */
		size_t off = 0, main_len = 0;
		bool found = false;
		while (off < rest && !found) {
			uint8_t id = body[off++];
			if (id == 253)
				off += 2;
			else if (id == 252)
				off += 4;
			else if (id == 255 && off + 1 <= rest)
				main_len = body[off], found = true;
			else if (id == 254 && off + 4 <= rest)
				main_len = get_le32(body + off), found = true;
			else
				break; /* a block reference: not a plain commit/abort record */
		}
		if (!found || main_len < 8 || main_len > rest)
			continue;
		int64_t us = (int64_t)get_le64(body + rest - main_len); /* xl_xact_commit.xact_time */
		int64_t ns = (us + PG_EPOCH_OFFSET_US) * 1000;
		if (us > 0 && us < INT64_C(4102444800000000) && ns > last) /* before 2130 */
			last = ns;
	}
	return last;
}

/* Loads, decrypts and checks the header of the file object at key; *hdr points into *obj (free that). */
static int open_file_object(repo *r, const char *key, uint8_t **obj, uint8_t **hdr, size_t *plen)
{
	size_t len;
	TRY(store_load(r->st, key, WAL_MAX_OBJECT, obj, &len));
	int rc = repo_open_object(r, 'W', key, *obj, len, hdr, plen);
	if (rc == 0 && (*plen < WAL_FILE_HDR || (*hdr)[0] != WAL_FORMAT || (*hdr)[1] != WAL_KIND_FILE ||
			((*hdr)[2] & ~WAL_FLAG_ZSTD) || get_le64(*hdr + 8) > WAL_MAX_FILE))
		rc = err_set(DRE_ECORRUPT, "corrupt object %s: not an archived WAL file", key);
	if (rc < 0)
		free(*obj);
	return rc;
}

static int load_file_object(repo *r, uint64_t sysid, const char *name, uint8_t **obj, uint8_t **hdr,
			    size_t *plen, char key[WAL_KEY_MAX])
{
	TRY(wal_object_key(sysid, name, key));
	return open_file_object(r, key, obj, hdr, plen);
}

/* Compares an archived object with the file being pushed: same size and XXH3-128 is the same file. */
static int same_as_archived(repo *r, const char *key, uint64_t size, const uint8_t xxh[16], bool *same)
{
	uint8_t *obj, *p;
	size_t plen;
	TRY(open_file_object(r, key, &obj, &p, &plen));
	*same = get_le64(p + 8) == size && memcmp(p + 16, xxh, 16) == 0;
	free(obj);
	return 0;
}

/* Compresses src into dst (cap bytes); returns 0 with *out_len = 0 when zstd does not shrink it. */
static int compress_wal(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len)
{
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	if (zc == NULL)
		return err_set(DRE_ENOMEM, "cannot create a zstd context");
	/* level 1: on WAL it is as small as the default level 3 (4.6 against 5.0 MB for a 16 MiB segment of
	 * inserts, measured) and takes half the time, which the archiver waits for */
	ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, 1);
	/* the archiver waits on this call: spread a segment over the cores (ignored by a single-threaded zstd) */
	int cpus = workq_workers(0); /* one per online CPU */
	if (cpus > 1 && len >= (2u << 20))
		ZSTD_CCtx_setParameter(zc, ZSTD_c_nbWorkers, cpus < 8 ? cpus : 8);
	size_t n = ZSTD_compress2(zc, dst, cap, src, len);
	ZSTD_freeCCtx(zc);
	*out_len = ZSTD_isError(n) || n >= len ? 0 : n;
	return 0;
}

int engine_wal_push(repo *r, const char *path, const char *pgdata, wal_push_result *res)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	wal_name wn;
	uint8_t *in = NULL, *obj = NULL;
	size_t len;
	memset(res, 0, sizeof *res);
	if (r->format < 2)
		return err_set(DRE_EUNSUPP, "repository format %u has no WAL archive: create a new repository with "
					    "'dre init' (format %d) for WAL archiving", r->format, REPO_FORMAT_VERSION);
	TRY(wal_name_parse(name, &wn));
	TRY(read_whole(path, WAL_MAX_FILE, &in, &len));
	wal_spool_remove(path); /* archiving means recovery is over: what was fetched ahead is not needed */

	uint32_t seg_size = 0;
	uint16_t magic = 0;
	uint64_t sysid = 0;
	int rc;
	if (wn.type == WAL_SEGMENT || wn.type == WAL_PARTIAL)
		rc = segment_header(path, &wn, in, len, &sysid, &seg_size, &magic);
	else
		rc = find_system_id(path, pgdata, &sysid);
	if (rc == 0 && seg_size != 0)
		rc = system_check(r, sysid, seg_size, magic);
	if (rc == 0)
		rc = file_key(sysid, &wn, name, res->key);

	uint8_t xxh[16];
	XXH128_canonicalFromHash((XXH128_canonical_t *)xxh, XXH3_128bits(in, len));
	size_t bound = ZSTD_compressBound(len), total = 0;
	if (rc == 0) {
		obj = malloc(REPO_ENVELOPE_HDR + WAL_FILE_HDR + (bound > len ? bound : len) + CRYPTO_TAG_LEN);
		if (obj == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate the object for %s", path);
	}
	if (rc == 0) {
		uint8_t *hdr = obj + REPO_ENVELOPE_HDR, *body = hdr + WAL_FILE_HDR;
		size_t clen = 0;
		rc = compress_wal(in, len, body, bound, &clen);
		memset(hdr, 0, WAL_FILE_HDR);
		hdr[0] = WAL_FORMAT;
		hdr[1] = WAL_KIND_FILE;
		hdr[2] = clen ? WAL_FLAG_ZSTD : 0;
		put_le64(hdr + 8, len);
		memcpy(hdr + 16, xxh, 16);
		put_le64(hdr + 32, (uint64_t)meter_now_ns());
		if (seg_size != 0)
			put_le64(hdr + 40, (uint64_t)segment_last_xact_ns(in, len, wal_name_segno(&wn, seg_size) * seg_size));
		if (clen == 0)
			memcpy(body, in, len);
		size_t plain = WAL_FILE_HDR + (clen ? clen : len);
		total = REPO_ENVELOPE_HDR + plain + CRYPTO_TAG_LEN;
		if (rc == 0)
			rc = repo_seal_object(r, 'W', res->key, obj, plain);
	}
	free(in);
	in = NULL;
	if (rc == 0)
		test_pause("wal-push-before-put");
	if (rc == 0)
		rc = store_put(r->st, res->key, obj, total, STORE_PUT_CREATE_ONCE);
	if (rc == 0)
		test_pause("wal-push-after-put");
	free(obj);
	if (rc == DRE_EEXIST) {
		bool same = false;
		rc = same_as_archived(r, res->key, len, xxh, &same);
		if (rc == 0 && !same)
			rc = err_set(DRE_EEXIST,
				     "%s is already archived as %s with different contents: refusing to replace it. "
				     "HINT: is another cluster with the same system identifier archiving to this "
				     "repository, or was this cluster restored without a new timeline?",
				     path, res->key);
		res->already = rc == 0;
		total = 0;
	}
	res->system_id = sysid;
	res->size = len;
	res->stored = total;
	return rc;
}

struct systems {
	uint64_t ids[16];
	size_t n;
};

static int collect_system(void *arg, const char *key, uint64_t size)
{
	(void)size;
	struct systems *s = arg;
	char *end;
	if (strncmp(key, "wal/", 4) != 0)
		return 0;
	uint64_t id = strtoull(key + 4, &end, 10);
	if (*end != '/' || strcmp(end, "/system") != 0)
		return 0;
	if (s->n < 16)
		s->ids[s->n++] = id;
	return 0;
}

/* When nothing says which cluster: the repository's only one. */
static int only_system(repo *r, uint64_t *sysid)
{
	struct systems s = {.n = 0};
	TRY(store_list(r->st, "wal/", collect_system, &s));
	if (s.n == 1) {
		*sysid = s.ids[0];
		return 0;
	}
	if (s.n == 0)
		return err_set(DRE_ENOTFOUND, "the repository holds no WAL archive");
	return err_set(DRE_EINVAL, "the repository archives WAL of %zu clusters: give --pgdata (a data directory "
				   "with global/pg_control) to say which",
		       s.n);
}

int wal_object_info(repo *r, uint64_t system_id, const char *name, int64_t *pushed_ns, int64_t *last_xact_ns,
		    uint64_t *size)
{
	uint8_t *obj, *hdr;
	size_t plen;
	char key[WAL_KEY_MAX];
	TRY(load_file_object(r, system_id, name, &obj, &hdr, &plen, key));
	*pushed_ns = (int64_t)get_le64(hdr + 32);
	*last_xact_ns = (int64_t)get_le64(hdr + 40);
	*size = get_le64(hdr + 8);
	free(obj);
	return 0;
}

/* A file object's bytes, decompressed when they are a zstd frame (then *alloc is to be freed) and checked
 * against the header's XXH3-128. */
static int file_decode(const char *key, const uint8_t *hdr, size_t plen, uint8_t **alloc, const uint8_t **body,
		       uint64_t *size)
{
	*size = get_le64(hdr + 8);
	*body = hdr + WAL_FILE_HDR;
	*alloc = NULL;
	size_t blen = plen - WAL_FILE_HDR;
	if (hdr[2] & WAL_FLAG_ZSTD) {
		/* before the header's size (up to 1 GiB) is allocated: a frame that cannot decode to it is refused (a
		 * zstd block of at least 4 bytes gives at most 128 KiB, and the frame's own content size must agree) */
		unsigned long long frame = ZSTD_getFrameContentSize(*body, blen);
		if (*size > (uint64_t)blen * 32768 || frame == ZSTD_CONTENTSIZE_ERROR ||
		    (frame != ZSTD_CONTENTSIZE_UNKNOWN && frame != *size))
			return err_set(DRE_ECORRUPT, "corrupt object %s: its zstd frame does not decode to %" PRIu64 " bytes",
				       key, *size);
		if ((*alloc = malloc(*size ? *size : 1)) == NULL)
			return err_set(DRE_ENOMEM, "cannot allocate %" PRIu64 " bytes for %s", *size, key);
		size_t n = ZSTD_decompress(*alloc, *size, *body, blen);
		*body = *alloc;
		if (ZSTD_isError(n) || n != *size)
			return err_set(DRE_ECORRUPT, "corrupt object %s: its zstd frame does not decode to %" PRIu64 " bytes",
				       key, *size);
	} else if (blen != *size) {
		return err_set(DRE_ECORRUPT, "corrupt object %s: %zu bytes of data, its header says %" PRIu64, key, blen,
			       *size);
	}
	uint8_t xxh[16];
	XXH128_canonicalFromHash((XXH128_canonical_t *)xxh, XXH3_128bits(*body, *size));
	if (memcmp(xxh, hdr + 16, 16) != 0)
		return err_set(DRE_ECORRUPT, "corrupt object %s: checksum mismatch", key);
	return 0;
}

static int fetch_to(repo *r, uint64_t system_id, const char *name, const char *dest)
{
	uint8_t *obj, *hdr, *out = NULL;
	const uint8_t *body;
	size_t plen;
	uint64_t size;
	char key[WAL_KEY_MAX];
	TRY(load_file_object(r, system_id, name, &obj, &hdr, &plen, key));
	int rc = file_decode(key, hdr, plen, &out, &body, &size);
	/* not durable: PostgreSQL reads the file at once and fetches it again after a crash */
	struct iovec v = {(void *)body, size};
	if (rc == 0)
		test_pause("wal-fetch-before-write");
	if (rc == 0)
		rc = localfile_write(dest, &v, 1, 0600, false);
	if (rc == 0)
		test_pause("wal-fetch-after-write");
	free(out);
	free(obj);
	return rc;
}

static int resolve_system(repo *r, const char *pgdata, uint64_t *system_id)
{
	if (*system_id != 0)
		return 0;
	int rc = pgdata != NULL ? wal_pgdata_system_id(pgdata, system_id) : 0;
	if (rc < 0) /* DRE_ENOTFOUND is kept for "not archived" */
		return err_ctx(rc == DRE_ENOTFOUND ? DRE_EINVAL : rc, "--pgdata %s", pgdata);
	if (pgdata == NULL && wal_pgdata_system_id(".", system_id) < 0)
		TRY(only_system(r, system_id));
	return 0;
}

int engine_wal_fetch(repo *r, const char *name, const char *dest, const char *pgdata, uint64_t system_id)
{
	TRY(resolve_system(r, pgdata, &system_id));
	return fetch_to(r, system_id, name, dest);
}


/* ---- prefetch (restore_command) ----
 *
 * Recovery asks for one segment per call and waits on each, and every call would pay for opening the
 * repository (scrypt) and one round trip. So a fetch of segment S also fetches the next segments of its
 * timeline, in parallel, into a spool beside the destination (pg_wal/.dre-prefetch/), each verified and
 * written under a temporary name first; a later call for one of them only renames it into place, without
 * opening the repository, and tops the spool up when it runs low. A miss (the end of the archive) empties
 * the spool, as does the first wal-push after promotion: nothing is left behind in pg_wal.
 */

#define SPOOL_DIR ".dre-prefetch"

/* Only for PostgreSQL's own restore_command (%p is pg_wal/RECOVERYXLOG): a fetch by hand into any other
 * directory must not leave segments fetched ahead beside it. */
static bool spool_wanted(const char *dest)
{
	char dir[4096];
	dirname_of(dest, dir, sizeof dir);
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	return strcmp(base, "pg_wal") == 0;
}

static void spool_dir(const char *dest, char *out, size_t cap)
{
	char dir[4096];
	dirname_of(dest, dir, sizeof dir);
	snprintf(out, cap, "%s/" SPOOL_DIR, dir);
}

/* Removes the spool's files: all, or those of segments before `before` on its timeline. */
static void spool_clean(const char *spool, const wal_name *before)
{
	DIR *d = opendir(spool);
	struct dirent *de;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		wal_name wn;
		char path[4400];
		if (de->d_name[0] == '.')
			continue;
		bool old = wal_name_parse(de->d_name, &wn) < 0 || before == NULL ||
			   (wn.tli == before->tli && (wn.log < before->log || (wn.log == before->log && wn.seg < before->seg)));
		snprintf(path, sizeof path, "%s/%s", spool, de->d_name);
		if (old)
			unlink(path);
	}
	closedir(d);
	if (before == NULL)
		rmdir(spool);
}

void wal_spool_remove(const char *wal_path)
{
	char spool[4200];
	spool_dir(wal_path, spool, sizeof spool);
	spool_clean(spool, NULL);
}

int wal_spool_take(const char *name, const char *dest, int prefetch, bool *hit, bool *refill)
{
	char spool[4200], path[4300];
	wal_name wn;
	*hit = *refill = false;
	TRY(wal_name_parse(name, &wn));
	if (wn.type != WAL_SEGMENT || prefetch <= 0 || !spool_wanted(dest))
		return 0;
	spool_dir(dest, spool, sizeof spool);
	snprintf(path, sizeof path, "%s/%s", spool, name);
	if (rename(path, dest) == 0)
		*hit = true;
	else if (errno != ENOENT && errno != ENOTDIR)
		return err_sys("cannot move %s to %s", path, dest);
	if (!*hit)
		return 0;
	spool_clean(spool, &wn);
	/* top up when fewer than half of the segments fetched ahead are left */
	int ahead = 0; /* what is left after the cleaning is ahead of this segment */
	DIR *d = opendir(spool);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		ahead += de->d_name[0] != '.';
	if (d)
		closedir(d);
	*refill = ahead < (prefetch + 1) / 2;
	return 0;
}

struct prefetch {
	repo *r;
	uint64_t sysid;
	const char *spool;
	char (*names)[WAL_NAME_MAX];
	int n, next;
	bool stop; /* a segment is not archived: the archive ends there */
	pthread_mutex_t mu;
};

static void *prefetch_thread(void *arg)
{
	struct prefetch *pf = arg;
	for (;;) {
		pthread_mutex_lock(&pf->mu);
		int i = pf->stop ? pf->n : pf->next++;
		pthread_mutex_unlock(&pf->mu);
		if (i >= pf->n)
			return NULL;
		char path[4400];
		snprintf(path, sizeof path, "%s/%s", pf->spool, pf->names[i]);
		if (access(path, F_OK) == 0)
			continue;
		int rc = fetch_to(pf->r, pf->sysid, pf->names[i], path);
		if (rc < 0) { /* the file itself is fetched, and errors reported, when it is asked for */
			pthread_mutex_lock(&pf->mu);
			pf->stop = true;
			pthread_mutex_unlock(&pf->mu);
		}
	}
}

int engine_wal_prefetch(repo *r, const char *name, const char *dest, const char *pgdata, uint64_t system_id,
			int count)
{
	wal_name wn;
	char spool[4200];
	uint32_t seg_size;
	uint16_t magic;
	TRY(wal_name_parse(name, &wn));
	if (wn.type != WAL_SEGMENT || count <= 0 || !spool_wanted(dest))
		return 0;
	TRY(resolve_system(r, pgdata, &system_id));
	TRY(system_load(r, system_id, &seg_size, &magic));
	spool_dir(dest, spool, sizeof spool);
	if (mkdir(spool, 0700) < 0 && errno != EEXIST)
		return err_sys("cannot create the prefetch directory %s", spool);

	struct prefetch pf = {.r = r, .sysid = system_id, .spool = spool, .n = count};
	pf.names = calloc((size_t)count, sizeof *pf.names);
	if (pf.names == NULL)
		return err_set(DRE_ENOMEM, "cannot prefetch");
	uint64_t segno = wal_name_segno(&wn, seg_size);
	for (int i = 0; i < count; i++)
		wal_segment_name(wn.tli, segno + 1 + (uint64_t)i, seg_size, pf.names[i]);
	pthread_mutex_init(&pf.mu, NULL);
	/* as many at once as the store wants in flight, at least one per core; each holds one segment */
	size_t nthreads = (size_t)(store_in_flight(r->st) > 0 ? store_in_flight(r->st) : 0);
	if (nthreads < (size_t)workq_workers(0))
		nthreads = (size_t)workq_workers(0);
	if (nthreads > (size_t)count)
		nthreads = (size_t)count;
	pthread_t th[16];
	size_t started = 0;
	for (; started < nthreads && started < 16; started++)
		if (pthread_create(&th[started], NULL, prefetch_thread, &pf) != 0)
			break;
	if (started == 0)
		prefetch_thread(&pf);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&pf.mu);
	free(pf.names);
	rmdir(spool); /* only when nothing was fetched: no empty directory left in pg_wal */
	return 0;
}

/* ---- the archive's shape ---- */

static wal_system *archive_system(wal_archive *a, uint64_t sysid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->sys[i].system_id == sysid)
			return &a->sys[i];
	void *p = realloc(a->sys, (a->n + 1) * sizeof *a->sys);
	if (p == NULL)
		return NULL;
	a->sys = p;
	wal_system *s = &a->sys[a->n++];
	memset(s, 0, sizeof *s);
	s->system_id = sysid;
	s->seg_size = WAL_SEG_SIZE_DEFAULT;
	return s;
}

static wal_timeline *system_timeline(wal_system *s, uint32_t tli)
{
	for (size_t i = 0; i < s->ntl; i++)
		if (s->tls[i].tli == tli)
			return &s->tls[i];
	void *p = realloc(s->tls, (s->ntl + 1) * sizeof *s->tls);
	if (p == NULL)
		return NULL;
	s->tls = p;
	wal_timeline *t = &s->tls[s->ntl++];
	memset(t, 0, sizeof *t);
	t->tli = tli;
	return t;
}

struct listing {
	wal_archive *a;
	uint64_t only;
	/* segment names are kept until the segment size is known */
	struct seg_ref {
		uint64_t sysid;
		uint32_t tli, log, seg;
	} *segs;
	size_t nsegs, cap;
};

int wal_key_parse(const char *key, uint64_t *system_id, char name[WAL_NAME_MAX], wal_name *wn)
{
	char *end;
	if (strncmp(key, "wal/", 4) != 0)
		goto bad;
	*system_id = strtoull(key + 4, &end, 10);
	if (*end != '/' || *system_id == 0)
		goto bad;
	const char *slash = strrchr(end, '/');
	if (slash == end || strlen(slash + 1) >= WAL_NAME_MAX)
		goto bad;
	/* back to PostgreSQL's uppercase hex: everything before the suffix (.partial, .backup, .history) */
	snprintf(name, WAL_NAME_MAX, "%s", slash + 1);
	char *dot = strrchr(name, '.');
	for (char *p = name; *p && (dot == NULL || p < dot); p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	if (wal_name_parse(name, wn) == 0)
		return 0;
bad:
	return err_set(DRE_EINVAL, "%s is not an archived WAL file", key);
}

int wal_system_seg_size(repo *r, uint64_t system_id, uint32_t *seg_size)
{
	uint16_t magic;
	return system_load(r, system_id, seg_size, &magic);
}

static int list_one(void *arg, const char *key, uint64_t size)
{
	(void)size;
	struct listing *l = arg;
	char *end;
	if (strncmp(key, "wal/", 4) != 0)
		return 0;
	uint64_t sysid = strtoull(key + 4, &end, 10);
	if (*end != '/' || sysid == 0 || (l->only && sysid != l->only))
		return 0;
	wal_system *s = archive_system(l->a, sysid);
	if (s == NULL)
		return err_set(DRE_ENOMEM, "cannot list the WAL archive");
	char name[WAL_NAME_MAX];
	wal_name wn;
	if (wal_key_parse(key, &sysid, name, &wn) < 0)
		return 0; /* the system record, or not a WAL object: ignored, as the spec says */
	wal_timeline *t = system_timeline(s, wn.tli);
	if (t == NULL)
		return err_set(DRE_ENOMEM, "cannot list the WAL archive");
	switch (wn.type) {
	case WAL_HISTORY: t->history = true; break;
	case WAL_PARTIAL: t->npartial++; break;
	case WAL_BACKUP: t->nbackup++; break;
	case WAL_SEGMENT:
		if (!array_room(&l->segs, &l->cap, l->nsegs, sizeof *l->segs, 256))
			return err_set(DRE_ENOMEM, "cannot list the WAL archive");
		l->segs[l->nsegs++] = (struct seg_ref){sysid, wn.tli, wn.log, wn.seg};
		break;
	}
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int tl_cmp(const void *a, const void *b)
{
	uint32_t x = ((const wal_timeline *)a)->tli, y = ((const wal_timeline *)b)->tli;
	return x < y ? -1 : x > y;
}

int wal_archive_load(repo *r, uint64_t system_id, wal_archive *out)
{
	struct listing l = {.a = out, .only = system_id};
	memset(out, 0, sizeof *out);
	char prefix[64] = "wal/";
	if (system_id)
		snprintf(prefix, sizeof prefix, "wal/%" PRIu64 "/", system_id);
	int rc = store_list(r->st, prefix, list_one, &l);
	for (size_t i = 0; rc == 0 && i < out->n; i++) {
		wal_system *s = &out->sys[i];
		rc = system_load(r, s->system_id, &s->seg_size, &s->page_magic);
		if (rc == DRE_ENOTFOUND) /* only history files so far */
			rc = 0;
	}
	for (size_t i = 0; rc == 0 && i < l.nsegs; i++) {
		wal_system *s = archive_system(out, l.segs[i].sysid);
		wal_timeline *t = s ? system_timeline(s, l.segs[i].tli) : NULL;
		wal_name wn = {.type = WAL_SEGMENT, .tli = l.segs[i].tli, .log = l.segs[i].log, .seg = l.segs[i].seg};
		if (t == NULL || !array_room(&t->segnos, &t->cap, t->nseg, sizeof *t->segnos, 64))
			rc = err_set(DRE_ENOMEM, "cannot list the WAL archive");
		else
			t->segnos[t->nseg++] = wal_name_segno(&wn, s->seg_size);
	}
	free(l.segs);
	for (size_t i = 0; rc == 0 && i < out->n; i++) {
		wal_system *s = &out->sys[i];
		qsort(s->tls, s->ntl, sizeof *s->tls, tl_cmp);
		for (size_t j = 0; j < s->ntl; j++)
			qsort(s->tls[j].segnos, s->tls[j].nseg, sizeof(uint64_t), u64_cmp);
	}
	if (rc < 0)
		wal_archive_free(out);
	return rc;
}

void wal_archive_free(wal_archive *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t j = 0; j < a->sys[i].ntl; j++)
			free(a->sys[i].tls[j].segnos);
		free(a->sys[i].tls);
	}
	free(a->sys);
	memset(a, 0, sizeof *a);
}

const wal_system *wal_archive_system(const wal_archive *a, uint64_t system_id)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->sys[i].system_id == system_id)
			return &a->sys[i];
	return NULL;
}

const wal_timeline *wal_system_timeline(const wal_system *s, uint32_t tli)
{
	for (size_t i = 0; s != NULL && i < s->ntl; i++)
		if (s->tls[i].tli == tli)
			return &s->tls[i];
	return NULL;
}

bool wal_timeline_has(const wal_timeline *t, uint64_t segno)
{
	if (t == NULL)
		return false;
	size_t lo = 0, hi = t->nseg;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->segnos[mid] < segno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->nseg && t->segnos[lo] == segno;
}

int wal_system_last(repo *r, const wal_system *s, wal_last *out)
{
	const wal_timeline *newest = NULL;
	uint64_t size;
	memset(out, 0, sizeof *out);
	for (size_t k = 0; k < s->ntl; k++) /* sorted by timeline: a later one wins a tie */
		if (s->tls[k].nseg && (newest == NULL || s->tls[k].segnos[s->tls[k].nseg - 1] >=
								 newest->segnos[newest->nseg - 1]))
			newest = &s->tls[k];
	if (newest == NULL)
		return 0;
	wal_segment_name(newest->tli, newest->segnos[newest->nseg - 1], s->seg_size, out->name);
	TRY(wal_object_info(r, s->system_id, out->name, &out->archived_ns, &out->last_xact_ns, &size));
	out->found = true;
	return 0;
}

int wal_history_load(repo *r, uint64_t system_id, uint32_t tli, wal_history *out)
{
	char name[WAL_NAME_MAX], key[WAL_KEY_MAX];
	uint8_t *obj, *hdr;
	char *text = NULL;
	size_t plen;
	memset(out, 0, sizeof *out);
	if (tli == 1)
		return 0;
	snprintf(name, sizeof name, "%08X.history", tli);
	int rc = load_file_object(r, system_id, name, &obj, &hdr, &plen, key);
	if (rc == DRE_ENOTFOUND)
		return err_set(DRE_ENOTFOUND, "timeline %u has no history file %s in the archive", tli, name);
	TRY(rc);
	uint8_t *unz = NULL;
	const uint8_t *body;
	uint64_t size;
	rc = file_decode(key, hdr, plen, &unz, &body, &size);
	if (rc == 0 && size > (1u << 20))
		rc = err_set(DRE_ECORRUPT, "%s: a history file of %" PRIu64 " bytes", key, size);
	if (rc == 0 && (text = malloc(size + 1)) == NULL)
		rc = err_set(DRE_ENOMEM, "cannot read %s", key);
	if (rc == 0)
		memcpy(text, body, size);
	free(unz);
	free(obj);
	if (rc != 0) {
		free(text);
		return rc;
	}
	text[size] = '\0';
	/* lines "parentTLI <tab> switchpoint <tab> reason"; comments start with # */
	for (char *line = text, *next; rc == 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *p = line, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		unsigned long parent = strtoul(p, &end, 10);
		char lsn_text[32];
		if (end == p || sscanf(end, " %31s", lsn_text) != 1 || out->n >= 64) {
			rc = err_set(DRE_ECORRUPT, "%s: cannot read the line '%s'", name, line);
			break;
		}
		uint64_t lsn;
		if (wal_lsn_parse(lsn_text, &lsn) < 0) {
			rc = err_set(DRE_ECORRUPT, "%s: cannot read the line '%s'", name, line);
			break;
		}
		out->tlis[out->n] = (uint32_t)parent;
		out->ends[out->n] = lsn;
		out->n++;
	}
	free(text);
	return rc;
}

/* ---- check ---- */

struct wal_check {
	repo *r;
	bool read_data;
	void (*warn)(void *arg, const char *msg);
	void *arg;
	wal_check_report *rep;
};

static int check_one(void *arg, const char *key, uint64_t size)
{
	struct wal_check *c = arg;
	const char *name = strrchr(key, '/');
	if (name == NULL || strcmp(name, "/system") == 0)
		return 0;
	c->rep->files++;
	c->rep->stored += size;
	if (!c->read_data)
		return 0;
	uint8_t *obj, *hdr, *unz = NULL;
	const uint8_t *body;
	size_t plen;
	uint64_t fsize;
	int rc = open_file_object(c->r, key, &obj, &hdr, &plen);
	if (rc == 0) {
		rc = file_decode(key, hdr, plen, &unz, &body, &fsize);
		free(unz);
		free(obj);
	}
	if (rc == DRE_ECORRUPT || rc == DRE_ENOTFOUND) {
		c->rep->errors++;
		if (c->warn)
			c->warn(c->arg, err_msg());
		return 0;
	}
	return rc;
}

int wal_check_archive(repo *r, bool read_data, void (*warn)(void *arg, const char *msg), void *arg,
		      wal_check_report *rep)
{
	struct wal_check c = {r, read_data, warn, arg, rep};
	memset(rep, 0, sizeof *rep);
	return store_list(r->st, "wal/", check_one, &c);
}
