/* fuzz_wal — the WAL archive (format-spec.md §15). Input: one byte choosing what, then:
 *   0  a file object's plaintext, sealed and stored as segment 000000010000000000000001 of a system, read by
 *      wal_object_info and engine_wal_fetch (header, zstd frame, size, XXH3-128) into a scratch file;
 *   1  the text of a .history file, stored as a valid file object of 00000002.history (the checksum and header
 *      made by the target), read by wal_history_load;
 *   2  a system record's plaintext, read by wal_system_seg_size;
 *   3  text parsed as a WAL file name, an LSN and a store key under wal/ (what listings and pg_control give). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "engine/pg/wal.h"
#include "engine/repo/bytes.h"
#include "tests/fuzz/fuzz.h"

#define SYSTEM 7341234567890123456ull
#define FILE_HDR 48

static void put_and(repo *r, const char *key, const uint8_t *p, size_t len)
{
	fuzz_check(repo_put_object(r, 'W', key, p, len, 0), "storing a WAL object");
}

static void file_object(repo *r, const uint8_t *p, size_t len)
{
	static const char name[] = "000000010000000000000001";
	char key[WAL_KEY_MAX];
	fuzz_check(wal_object_key(SYSTEM, name, key), "a WAL key");
	put_and(r, key, p, len);
	int64_t pushed, last;
	uint64_t fsize;
	(void)wal_object_info(r, SYSTEM, name, &pushed, &last, &fsize);
	(void)engine_wal_fetch(r, name, fuzz_path("fetched"), NULL, SYSTEM);
	fuzz_check(store_del(r->st, key), "removing a WAL object");
}

static void history(repo *r, const uint8_t *p, size_t len)
{
	char key[WAL_KEY_MAX];
	fuzz_check(wal_object_key(SYSTEM, "00000002.history", key), "a WAL key");
	uint8_t *obj = calloc(1, FILE_HDR + len);
	if (obj == NULL)
		abort();
	obj[0] = 1; /* format */
	obj[1] = 1; /* a file */
	put_le64(obj + 8, len);
	XXH128_canonicalFromHash((XXH128_canonical_t *)(obj + 16), XXH3_128bits(p, len));
	memcpy(obj + FILE_HDR, p, len);
	put_and(r, key, obj, FILE_HDR + len);
	free(obj);
	wal_history h;
	(void)wal_history_load(r, SYSTEM, 2, &h);
	fuzz_check(store_del(r->st, key), "removing a WAL object");
}

static void system_record(repo *r, const uint8_t *p, size_t len)
{
	char key[96];
	snprintf(key, sizeof key, "wal/%llu/system", (unsigned long long)SYSTEM);
	put_and(r, key, p, len);
	uint32_t seg_size;
	(void)wal_system_seg_size(r, SYSTEM, &seg_size);
	fuzz_check(store_del(r->st, key), "removing a WAL object");
}

static void names(const uint8_t *p, size_t len)
{
	char *text = fuzz_strndup(p, len), name[WAL_NAME_MAX], out[WAL_NAME_MAX], lsn_text[24];
	wal_name wn;
	uint64_t sysid, lsn;
	if (wal_name_parse(text, &wn) == 0 && wn.type != WAL_HISTORY) {
		wal_segment_name(wn.tli, wal_name_segno(&wn, WAL_SEG_SIZE_DEFAULT), WAL_SEG_SIZE_DEFAULT, out);
		char key[WAL_KEY_MAX];
		(void)wal_object_key(SYSTEM, text, key);
	}
	if (wal_lsn_parse(text, &lsn) == 0)
		wal_lsn_format(lsn, lsn_text);
	(void)wal_key_parse(text, &sysid, name, &wn);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	repo *r = fuzz_repo();
	switch (data[0] % 4) {
	case 0: file_object(r, data + 1, size - 1); break;
	case 1: history(r, data + 1, size - 1); break;
	case 2: system_record(r, data + 1, size - 1); break;
	default: names(data + 1, size - 1); break;
	}
	return 0;
}
