#!/bin/bash
# Push and restore round trips: streams (random, dump-like, empty, all-zero), a producer command, a directory
# tree with modes, times and symlinks; snapshot selection by name, ID and time; JSON output; password sources.
# stores: local s3
. "$(dirname "$0")/lib.bash"

expect_rc 0 "init creates a repository" "$DRE" init
expect_rc 1 "init refuses an existing repository" "$DRE" init
check "init error says it exists" err_has "already exists"

head -c 30M /dev/urandom >"$T/random"
expect_rc 0 "push random data from stdin" "$DRE" push rand <"$T/random"
expect_rc 0 "restore random data to stdout" sh -c "'$DRE' restore rand >'$T/random.out'"
check "random data round trip is byte-identical" cmp -s "$T/random" "$T/random.out"

"$GENDUMP" 40 >"$T/dump.sql"
expect_rc 0 "push dump-like text" "$DRE" push mydb <"$T/dump.sql"
"$DRE" restore mydb >"$T/dump.out"
check "dump round trip is byte-identical" cmp -s "$T/dump.sql" "$T/dump.out"
check "dump compressed in the store" test "$(stored_new mydb)" -lt $((40 * 1024 * 1024 / 2))

expect_rc 1 "push empty input is refused" "$DRE" push empty </dev/null
expect_rc 0 "push empty input with --allow-empty" "$DRE" push empty --allow-empty </dev/null
"$DRE" restore empty >"$T/empty.out"
check "empty input restores empty" test ! -s "$T/empty.out"

head -c 20M /dev/zero >"$T/zeros"
expect_rc 0 "push all-zero input" "$DRE" push zeros <"$T/zeros"
check "all-zero input dedups to almost nothing" test "$(stored_new zeros)" -lt 200000
"$DRE" restore zeros >"$T/zeros.out"
check "all-zero round trip" cmp -s "$T/zeros" "$T/zeros.out"

# a producer command: recorded only when it succeeds
expect_rc 0 "push -- producer" "$DRE" push prod -- cat "$T/dump.sql"
"$DRE" restore prod >"$T/prod.out"
check "producer output round trip" cmp -s "$T/dump.sql" "$T/prod.out"
n_before=$("$DRE" snapshots --json | json "len(d)")
expect_rc 6 "a failing producer exits 6" "$DRE" push bad -- sh -c "head -c 1000000 /dev/urandom; exit 3"
check "failing producer: message names the status" err_has "status 3"
expect_rc 6 "a missing producer exits 6" "$DRE" push bad -- /nonexistent/pg_dump
check "failing producer records no snapshot" test "$("$DRE" snapshots --json | json "len(d)")" = "$n_before"

# a directory tree with metadata
mkdir -p "$T/tree/sub/deeper" "$T/tree/emptydir"
head -c 3M /dev/urandom >"$T/tree/sub/big.bin"
echo hello >"$T/tree/hello.txt"
: >"$T/tree/sub/empty"
ln -s hello.txt "$T/tree/link"
chmod 0750 "$T/tree/sub"
chmod 0600 "$T/tree/hello.txt"
touch -d "2020-01-02 03:04:05" "$T/tree/hello.txt" "$T/tree/sub/deeper"
expect_rc 0 "push a directory tree" "$DRE" push tree "$T/tree"
expect_rc 0 "restore the tree" "$DRE" restore tree --target "$T/restored"
R="$T/restored${T}/tree"
check "tree contents identical" diff -r "$T/tree" "$R"
check "file mode restored" test "$(stat -c %a "$R/hello.txt")" = 600
check "dir mode restored" test "$(stat -c %a "$R/sub")" = 750
check "file mtime restored" test "$(stat -c %Y "$R/hello.txt")" = "$(stat -c %Y "$T/tree/hello.txt")"
check "dir mtime restored" test "$(stat -c %Y "$R/sub/deeper")" = "$(stat -c %Y "$T/tree/sub/deeper")"
check "symlink restored" test "$(readlink "$R/link")" = hello.txt
check "empty dir restored" test -d "$R/emptydir"
expect_rc 0 "ls lists the files" "$DRE" ls tree
check "ls shows the symlink and a file" sh -c "grep -q 'link -> hello.txt' '$T/cmd.out' && grep -q 'sub/big.bin' '$T/cmd.out'"
expect_rc 2 "restore of files without --target is a usage error" "$DRE" restore tree

# selection by ID prefix and by time
id=$("$DRE" snapshots --json | json "[s for s in d if s['name']=='rand'][0]['id']")
expect_rc 0 "restore by ID prefix" sh -c "'$DRE' restore ${id:0:10} >'$T/byid'"
check "restore by ID gives the right data" cmp -s "$T/random" "$T/byid"
sleep 1.1
between=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 1.1
echo "second version" | "$DRE" push rand
"$DRE" restore rand >"$T/newest"
check "newest snapshot of a name wins" grep -q "second version" "$T/newest"
"$DRE" restore rand --time "$between" >"$T/older"
check "--time picks the snapshot taken before it" cmp -s "$T/random" "$T/older"
expect_rc 3 "--time before any snapshot is not found" "$DRE" restore rand --time "2001-01-01 00:00"
expect_rc 3 "unknown snapshot name exits 3" "$DRE" restore nosuchname
check "unknown name is named in the error" err_has nosuchname
expect_rc 3 "unknown snapshot ID exits 3" "$DRE" restore deadbeefdeadbeef
expect_rc 2 "bad --time is a usage error" "$DRE" restore rand --time "next tuesday"

# JSON output
expect_rc 0 "snapshots --json" "$DRE" snapshots --json
check "snapshots --json has the fields" sh -c "'$PY' -c 'import json,sys; d=json.load(open(\"$T/cmd.out\")); s=d[0]; [s[k] for k in (\"id\",\"name\",\"time\",\"host\",\"kind\",\"size\",\"stored_new\",\"dedup_ratio\")]'"
expect_rc 0 "cat snapshot --json" "$DRE" cat snapshot mydb --json
check "cat snapshot lists chunks and a checksum" sh -c "'$PY' -c 'import json; d=json.load(open(\"$T/cmd.out\")); n=d[\"nodes\"][0]; assert len(n[\"chunks\"])==n[\"nchunks\"]>0 and len(n[\"xxh3_128\"])==32'"

# password sources and the read(2) fallback
expect_rc 0 "DRE_PASSWORD_COMMAND works" env -u DRE_PASSWORD_FILE DRE_PASSWORD_COMMAND="cat $DRE_PASSWORD_FILE" "$DRE" snapshots
expect_rc 0 "DRE_PASSWORD works" env -u DRE_PASSWORD_FILE DRE_PASSWORD="correct horse battery staple" "$DRE" snapshots
expect_rc 2 "no password source and no terminal is a clear error" env -u DRE_PASSWORD_FILE setsid "$DRE" snapshots
cp "$T/dump.sql" "$T/dump-copy.sql"
expect_rc 0 "push a file with io_uring disabled" env DRE_NO_IO_URING=1 "$DRE" push uring-off "$T/dump-copy.sql"
check "same data through read(2) is fully deduplicated" test "$(stored_new uring-off)" -lt 100000
expect_rc 0 "check --read-data on a healthy repository" "$DRE" check --read-data
finish
