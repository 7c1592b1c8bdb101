/*
 * fuzz.h — libFuzzer targets for every parser of bytes dre does not trust (issue 15, item 1), and what they share.
 *
 * One target per parser, tests/fuzz/fuzz_<name>.c, each a LLVMFuzzerTestOneInput that must not crash, leak, hang or
 * allocate without bound on any input (the runner passes -rss_limit_mb, -malloc_limit_mb and -timeout):
 *
 *   pack           pack objects: the trailer and header framing before AES-GCM with a fixed key (raw bytes), the
 *                  header plaintext (sealed by the target with the pack's real subkey, nonce and AAD, then read by
 *                  pack_read_header), and one blob (sealed likewise, opened by pack_blob_open: zstd frames)
 *   envelope       envelope objects of every type as raw bytes: repo_open_envelope's framing before AES-GCM
 *   index          index object plaintext, sealed and stored, read by index_object_read
 *   snapshot       snapshot headers (both formats) and node records: snap_decode, snap_node_decode, JSON
 *   list           list blobs: sealed into a real pack in the store, indexed, walked by list_reader
 *   key            key objects as stored (keys/<id>), opened by repo_open with a fixed password
 *   config         config plaintext, sealed and stored, read by repo_open
 *   wal            WAL file object plaintext, .history text (wrapped in a valid file object) and WAL names and
 *                  keys: wal_object_info, engine_wal_fetch, wal_history_load, wal_name_parse, wal_key_parse
 *   lock_plan      lock and prune plan plaintext, sealed and stored, read by lock_list and plan_load_all
 *   s3_xml         S3 answers (listings, multipart listings and initiation, errors) through store/s3.c's own
 *                  element handlers (the target includes store/s3.c: they are static)
 *   ini_config     --config files, through cli_config_load
 *   aws_credentials  ~/.aws/credentials, through store_s3_open (which reads it; nothing touches the network)
 *   cli_values     the command line's sizes, numbers, times and durations, LSNs and WAL file names
 *   index_cache    the local index cache file, with a valid MAC appended (only its structure is fuzzed), read
 *                  by index_load
 *
 * Encrypted objects: random bytes never pass AES-GCM, so the targets seal the fuzzer's plaintext with dre's own
 * code (repo_put_object, or crypto_seal with the pack's subkey, nonce and AAD) and hand the result to the real
 * reader, so the decryption path stays the one dre runs; pack and envelope also feed raw bytes to the checks
 * that come before AES-GCM. No parser had to be split for this.
 *
 * The fixture (fuzz_repo) is a real local repository made once per process in a fresh temporary directory
 * (/dev/shm when writable: objects are written and read on every input), opened with a generated key so that
 * opening costs HKDF, not scrypt. Targets remove what they wrote before they return.
 *
 * Corpora: tests/fuzz/corpus/<target>/ (seeded from real objects: tests/fuzz/seed), crashes found and fixed:
 * tests/fuzz/regress/<target>/; both are replayed by `make fuzz-ci`. tests/fuzz/run runs the targets.
 */
#ifndef DRE_FUZZ_H
#define DRE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "engine/repo/bytes.h"
#include "engine/repo/repo.h"

/* What every target defines (libFuzzer's entry point). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's repository (made on first use; an abort with a message when it cannot be: the fixture is not
 * what is being tested). */
repo *fuzz_repo(void);
/* Its password (a generated key) and its directory. */
const char *fuzz_password(void);
const char *fuzz_dir(void);
/* A fresh path inside the fixture's directory for a scratch file named name. */
const char *fuzz_path(const char *name);
/* Writes data to path (whole file); aborts on failure. */
void fuzz_write_file(const char *path, const uint8_t *data, size_t len);

/* Stops with a message when a fixture step fails: a broken fixture must not pass for a fuzzing result. */
void fuzz_check(int rc, const char *what);

/* Targets split their input with engine/repo/bytes.h's reader (rd_make, rd_u8, rd_u32, rd_take); this is what
 * is left of it, the part a parser then reads. */
static inline const uint8_t *fuzz_rest(const rd *in, size_t *len)
{
	*len = in->len - in->off;
	return in->p + in->off;
}

/* A NUL-terminated copy of data (malloc'd). */
char *fuzz_strndup(const uint8_t *data, size_t len);

#endif
