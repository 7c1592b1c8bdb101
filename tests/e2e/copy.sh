#!/bin/bash
# dre copy, local → local: a stream and a files snapshot (modes, mtimes, a symlink, an empty directory) copied
# into a repository with its own password, restored from it byte for byte, with the same header and meta
# copy-of; a second copy moves nothing; a copy killed midway leaves no snapshot, and running it again finishes
# it storing less than a full copy; the errors (wrong target password, no target, unknown snapshot, no target
# password); --wal with a real WAL segment of a fresh PostgreSQL 15 cluster.
# The S3 cases (local → S3, S3 → S3) are in copy_s3.sh.
. "$(dirname "$0")/lib.bash"

TGT=$T/target
printf 'another password\n' >"$T/pw2"
tdre() { DRE_PASSWORD_FILE=$T/pw2 "$DRE" -r "$1" "${@:2}"; }
# copy_json TARGET ARGS...: a copy into TARGET with --json into $T/copy.json
copy_json() { "$DRE" copy --to "$1" --to-password-file "$T/pw2" --json "${@:2}" >"$T/copy.json"; }
cj() { json "$1" <"$T/copy.json"; }

"$DRE" init >/dev/null
tdre "$TGT" init >/dev/null

# ---- a stream and a files snapshot ----
"$GENDUMP" 20 >"$T/dump.sql"
"$DRE" push db <"$T/dump.sql" >/dev/null
mkdir -p "$T/tree/sub/deeper" "$T/tree/empty"
head -c 300000 /dev/urandom >"$T/tree/sub/rand.bin"
printf 'hello\n' >"$T/tree/hello.txt"
: >"$T/tree/zero"
head -c 2000000 "$T/dump.sql" >"$T/tree/sub/deeper/part.sql" # shares chunks with the stream
ln -s sub/rand.bin "$T/tree/link"
chmod 0640 "$T/tree/hello.txt"
chmod 0751 "$T/tree/sub"
chmod 0700 "$T/tree/empty"
chmod 0604 "$T/tree/zero"
touch -h -d '2020-02-03 04:05:06.789' "$T/tree/link"
touch -d '2021-03-04 05:06:07.123456789' "$T/tree/hello.txt" "$T/tree/sub/rand.bin" "$T/tree/empty"
touch -d '2019-01-01 00:00:00' "$T/tree/sub"
(cd "$T" && "$DRE" push files tree >/dev/null)

expect_rc 0 "copy everything into a repository with another password" copy_json "$TGT"
check "the first copy copied 2 snapshots" test "$(cj "d['copied']")" = 2
first_stored=$(cj "d['stored_new']")
first_fetched=$(cj "d['bytes_fetched']")
echo "# first copy: $(cj "d['bytes_read']") bytes read, $first_fetched fetched, $first_stored stored new"
src_stored=$("$DRE" snapshots --json | json "sum(s['stored_new'] for s in d)")
check "the first copy stored about what the source holds" test $((first_stored * 10)) -gt $((src_stored * 8)) -a $((first_stored * 10)) -lt $((src_stored * 12))

"$DRE" snapshots --json >"$T/src.json"
tdre "$TGT" snapshots --json >"$T/tgt.json"
check "the copies keep name, kind, host, times, size and files; meta copy-of names the source" "$PY" - "$T/src.json" "$T/tgt.json" <<'EOF'
import json, sys
src = json.load(open(sys.argv[1])); tgt = json.load(open(sys.argv[2]))
assert len(src) == 2 and len(tgt) == 2, (len(src), len(tgt))
for s, t in zip(src, tgt):
    for k in ("name", "kind", "time", "end_time", "host", "size", "files"):
        assert s[k] == t[k], (k, s[k], t[k])
    assert t["id"] != s["id"]
    assert t["meta"]["copy-of"] == s["id"], t.get("meta")
EOF

tdre "$TGT" restore db >"$T/db.out"
check "the stream restores from the copy byte for byte" cmp -s "$T/dump.sql" "$T/db.out"
expect_rc 0 "the files restore from the copy" tdre "$TGT" restore files --target "$T/out"
check "the files are identical" diff -r --no-dereference "$T/tree" "$T/out/tree"
attrs() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %T@ %l\n' | sort); }
attrs "$T/tree" >"$T/attrs.src"
attrs "$T/out/tree" >"$T/attrs.out"
check "modes, mtimes, the symlink and the empty directory are the same" cmp -s "$T/attrs.src" "$T/attrs.out" ||
	diff "$T/attrs.src" "$T/attrs.out" | head -20
# node lists, chunks apart (the target cuts and keys them with its own secrets)
nodes() { "$@" | json "[{k: v for k, v in n.items() if k not in ('chunks', 'nchunks')} for n in d['nodes']]"; }
check "the node records are the same (chunks apart)" test \
	"$(nodes "$DRE" cat snapshot files --json)" = "$(nodes tdre "$TGT" cat snapshot files --json)"
expect_rc 0 "check of the target passes" tdre "$TGT" check --read-data

# ---- a second copy moves nothing ----
expect_rc 0 "a second copy" copy_json "$TGT"
second_stored=$(cj "d['stored_new']")
echo "# second copy: $(cj "d['bytes_read']") bytes read, $(cj "d['bytes_fetched']") fetched, $second_stored stored new"
check "the second copy copied nothing and found 2 there" test "$(cj "d['copied']"),$(cj "d['already_there']")" = 0,2
check "the second copy stored and fetched nothing" test "$second_stored,$(cj "d['bytes_fetched']")" = 0,0
check "the target still holds 2 snapshots" test "$(tdre "$TGT" snapshots --json | json 'len(d)')" = 2
expect_rc 0 "the human summary" "$DRE" copy --to "$TGT" --to-password-file "$T/pw2"
check "it says what it did" grep -q "0 copied, 2 already there" "$T/cmd.out"

# a new snapshot: only it is copied, deduplicated against what the target holds
"$GENDUMP" 20 1 --next-day | "$DRE" push db >/dev/null
expect_rc 0 "copy by name after a next-day push" copy_json "$TGT" db
check "one copied, one already there" test "$(cj "d['copied']"),$(cj "d['already_there']")" = 1,1
echo "# next-day copy stored $(cj "d['stored_new']") bytes of $(cj "d['bytes_read']")"
check "the next-day copy stored under a fifth of what it read" test $(($(cj "d['stored_new']") * 5)) -lt "$(cj "d['bytes_read']")"
id=$("$DRE" snapshots --json | json "d[0]['id']")
T2=$T/target2
tdre "$T2" init >/dev/null
expect_rc 0 "copy by ID prefix" copy_json "$T2" "${id:0:10}"
check "the ID selects one snapshot" test "$(cj "d['copied']"),$(cj "[s['source'] for s in d['snapshots']]")" = "1,['$id']"

# ---- the refusals ----
printf 'wrong\n' >"$T/wrong"
expect_rc 4 "wrong target password: exit 4" "$DRE" copy --to "$TGT" --to-password-file "$T/wrong"
check "it names the target" err_has "target repository"
expect_rc 3 "target not initialised: exit 3" "$DRE" copy --to "$T/nothing" --to-password-file "$T/pw2"
expect_rc 3 "unknown snapshot name: exit 3" "$DRE" copy --to "$TGT" --to-password-file "$T/pw2" nosuchname
check "it names the snapshot" err_has nosuchname
expect_rc 2 "no password for the target: exit 2" env -u DRE_TO_PASSWORD_FILE -u DRE_TO_PASSWORD "$DRE" copy --to "$TGT"
expect_rc 2 "no --to: exit 2" "$DRE" copy
expect_rc 0 "DRE_TO_PASSWORD_FILE works too" env DRE_TO_PASSWORD_FILE="$T/pw2" "$DRE" copy --to "$TGT" --json
expect_rc 0 "and DRE_TO_PASSWORD" env DRE_TO_PASSWORD="another password" "$DRE" copy --to "$TGT" --json
expect_rc 1 "copying a repository into itself is refused" "$DRE" copy --to "$DRE_REPOSITORY" \
	--to-password-file "$DRE_PASSWORD_FILE"

# ---- killed midway, then resumed ----
S2=$T/src2
K=$T/killed
F=$T/full
"$DRE" -r "$S2" init >/dev/null
"$GENDUMP" 60 7 >"$T/big1.sql"
"$GENDUMP" 60 8 >"$T/big2.sql"
"$DRE" -r "$S2" push big <"$T/big1.sql" >/dev/null
"$DRE" -r "$S2" push big <"$T/big2.sql" >/dev/null
tdre "$K" init >/dev/null
tdre "$F" init >/dev/null
# killed once the first snapshot is there, while the second is on its way (its packs written, its index object
# not): the copy pauses at engine/testhook.h's points, so where it dies does not depend on the machine's speed
P=$T/pause-copy
mkdir -p "$P"
# reached NAME: until the copy paused at NAME (2 minutes at most)
reached() {
	for _ in $(seq 1 1200); do
		[ -e "$P/$1.reached" ] && return 0
		sleep 0.1
	done
	return 1
}
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-before-index,push-after-snapshot \
	"$DRE" -r "$S2" --threads 1 copy --to "$K" --to-password-file "$T/pw2" >/dev/null 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
reached push-before-index || not_ok "the copy reached its first index (push-before-index)"
: >"$P/push-before-index.go"
reached push-after-snapshot || not_ok "the copy wrote its first snapshot (push-after-snapshot)"
rm -f "$P/push-before-index.go" "$P/push-before-index.reached" # the second snapshot's index waits again
: >"$P/push-after-snapshot.go"
reached push-before-index || not_ok "the copy reached its second index (push-before-index)"
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
trap - EXIT
killed_snaps=$(ls "$K/snapshots" | wc -l)
echo "# killed with $killed_snaps snapshot(s) in the target"
check "the killed copy left only whole snapshots (1 of 2)" test "$killed_snaps" = 1
check "every snapshot it left restores" sh -c "DRE_PASSWORD_FILE=$T/pw2 '$DRE' -r '$K' restore big | cmp -s - '$T/big1.sql'"
expect_rc 0 "the copy run again" sh -c "'$DRE' -r '$S2' copy --to '$K' --to-password-file '$T/pw2' --json >'$T/copy.json'"
resumed=$(cj "d['stored_new']")
check "the resumed copy copied 1 and found 1" test "$(cj "d['copied']"),$(cj "d['already_there']")" = 1,1
expect_rc 0 "a full copy for comparison" sh -c "'$DRE' -r '$S2' copy --to '$F' --to-password-file '$T/pw2' --json >'$T/copy.json'"
full=$(cj "d['stored_new']")
echo "# resumed copy stored $resumed bytes, a full copy $full"
check "the resumed copy stored less than a full copy" test "$resumed" -lt "$full"
tdre "$K" restore big >"$T/big.out"
check "the newest restores after the resume" cmp -s "$T/big2.sql" "$T/big.out"
old=$(tdre "$K" snapshots --json | json "d[0]['id']")
tdre "$K" restore "$old" >"$T/big.out"
check "the oldest restores after the resume" cmp -s "$T/big1.sql" "$T/big.out"
expect_rc 0 "check of the resumed target passes (orphan packs are no error)" tdre "$K" check

# ---- --wal, with a real WAL segment ----
PGC=$DRE_SRC/tests/pg/pgcluster
if ! "$PGC" install >/dev/null 2>&1; then
	not_ok "PostgreSQL 15 could not be installed ($PGC install failed): no WAL to copy"
	finish
fi
chmod o+x "$T"
"$PGC" init "$T/pgc" >/dev/null 2>&1 || not_ok "initdb"
seg=$(ls "$T/pgc/data/pg_wal/" | grep -E '^[0-9A-F]{24}$' | head -1)
W=$T/walsrc
WT=$T/waltgt
"$DRE" -r "$W" init >/dev/null
tdre "$WT" init >/dev/null
expect_rc 0 "wal-push of a real segment into the source" "$DRE" -r "$W" wal-push "$T/pgc/data/pg_wal/$seg"
"$DRE" -r "$W" push db <"$T/dump.sql" >/dev/null
expect_rc 0 "copy --wal" sh -c "'$DRE' -r '$W' copy --to '$WT' --to-password-file '$T/pw2' --wal --json >'$T/copy.json'"
check "it copied the segment and the system record" test "$(cj "d['wal_copied']"),$(cj "d['copied']")" = 2,1
sysid=$(ls "$W/wal")
check "the target holds the same wal/ keys" test "$(cd "$W" && find wal -type f | sort)" = "$(cd "$WT" && find wal -type f | sort)"
expect_rc 0 "wal-fetch from the target" tdre "$WT" wal-fetch "$seg" "$T/seg.out"
check "the fetched segment is the original" cmp -s "$T/pgc/data/pg_wal/$seg" "$T/seg.out"
check "the target's objects are its own (not the source's bytes)" sh -c "! cmp -s '$W/wal/$sysid/system' '$WT/wal/$sysid/system'"
expect_rc 0 "wal-show on the target" tdre "$WT" wal-show
expect_rc 0 "copy --wal again" sh -c "'$DRE' -r '$W' copy --to '$WT' --to-password-file '$T/pw2' --wal --json >'$T/copy.json'"
check "the second copy --wal copied nothing" test "$(cj "d['wal_copied']"),$(cj "d['wal_already_there']"),$(cj "d['copied']")" = 0,2,0
expect_rc 0 "check --read-data of the WAL target" tdre "$WT" check --read-data
"$PGC" stop "$T/pgc" >/dev/null 2>&1
finish
