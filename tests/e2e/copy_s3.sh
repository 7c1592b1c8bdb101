#!/bin/bash
# dre copy across stores: local → S3, S3 → S3 (two buckets of the test gateway), S3 → local, each target with a
# password of its own; every copy restores byte for byte, and a second S3 → S3 copy moves nothing.
# needs: s3
. "$(dirname "$0")/lib.bash"

A=$DRE_REPOSITORY # a fresh bucket (lib.bash)
B="s3://dre-e2e-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')/copy-b"
L=$T/local
L2=$T/local2
printf 'password of A\n' >"$T/pwA"
printf 'password of B\n' >"$T/pwB"
as() { DRE_PASSWORD_FILE=$1 "$DRE" -r "$2" "${@:3}"; }
# cp_json SRC SRC_PW DST DST_PW ARGS...: a copy with --json into $T/copy.json
cp_json() { as "$2" "$1" copy --to "$3" --to-password-file "$4" --json "${@:5}" >"$T/copy.json"; }
cj() { json "$1" <"$T/copy.json"; }

"$DRE" -r "$L" init >/dev/null
as "$T/pwA" "$A" init >/dev/null
as "$T/pwB" "$B" init >/dev/null
"$DRE" -r "$L2" init >/dev/null

"$GENDUMP" 20 3 >"$T/dump.sql"
"$DRE" -r "$L" push db <"$T/dump.sql" >/dev/null
mkdir -p "$T/tree/sub" "$T/tree/empty"
head -c 700000 /dev/urandom >"$T/tree/sub/rand.bin"
printf 'hello\n' >"$T/tree/hello.txt"
ln -s sub/rand.bin "$T/tree/link"
chmod 0640 "$T/tree/hello.txt"
touch -d '2021-03-04 05:06:07.123456789' "$T/tree/hello.txt" "$T/tree/sub"
(cd "$T" && "$DRE" -r "$L" push files tree >/dev/null)
attrs() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %T@ %l\n' | sort); }
attrs "$T/tree" >"$T/attrs.src"

# verify NAME PW REPO: both snapshots restore from REPO as pushed
verify() {
	as "$2" "$3" restore db >"$T/db.out"
	check "$1: the stream restores" cmp -s "$T/dump.sql" "$T/db.out"
	rm -rf "$T/out"
	as "$2" "$3" restore files --target "$T/out" >/dev/null 2>&1
	check "$1: the files restore" diff -r --no-dereference "$T/tree" "$T/out/tree"
	attrs "$T/out/tree" >"$T/attrs.out"
	check "$1: with their modes and mtimes" cmp -s "$T/attrs.src" "$T/attrs.out"
}

expect_rc 0 "local → S3" cp_json "$L" "$DRE_PASSWORD_FILE" "$A" "$T/pwA"
echo "# local → S3: $(cj "d['bytes_read']") bytes read, $(cj "d['stored_new']") stored new, $(cj "d['seconds']") s"
check "local → S3 copied 2" test "$(cj "d['copied']")" = 2
verify "local → S3" "$T/pwA" "$A"

expect_rc 0 "S3 → S3, another bucket" cp_json "$A" "$T/pwA" "$B" "$T/pwB"
echo "# S3 → S3: $(cj "d['bytes_read']") bytes read, $(cj "d['bytes_fetched']") fetched, $(cj "d['stored_new']") stored new, $(cj "d['seconds']") s"
check "S3 → S3 copied 2" test "$(cj "d['copied']")" = 2
verify "S3 → S3" "$T/pwB" "$B"
"$DRE" -r "$L" snapshots --json >"$T/l.json"
as "$T/pwB" "$B" snapshots --json >"$T/b.json"
as "$T/pwA" "$A" snapshots --json >"$T/a.json"
check "a copy of a copy names the original in copy-of, and keeps its header" "$PY" - "$T/l.json" "$T/a.json" "$T/b.json" <<'EOF'
import json, sys
l, a, b = (json.load(open(p)) for p in sys.argv[1:])
assert len(l) == len(a) == len(b) == 2
for x, y, z in zip(l, a, b):
    assert y["meta"]["copy-of"] == x["id"] and z["meta"]["copy-of"] == x["id"]
    for k in ("name", "time", "end_time", "host", "size"):
        assert x[k] == y[k] == z[k], k
EOF

expect_rc 0 "S3 → S3 again" cp_json "$A" "$T/pwA" "$B" "$T/pwB"
check "the second S3 → S3 copy moved nothing" test \
	"$(cj "d['copied']"),$(cj "d['already_there']"),$(cj "d['stored_new']"),$(cj "d['bytes_fetched']")" = 0,2,0,0
expect_rc 0 "the original local → the second bucket: already there through the copy of a copy" \
	cp_json "$L" "$DRE_PASSWORD_FILE" "$B" "$T/pwB"
check "nothing copied" test "$(cj "d['copied']"),$(cj "d['already_there']")" = 0,2

expect_rc 0 "S3 → local" cp_json "$B" "$T/pwB" "$L2" "$DRE_PASSWORD_FILE"
check "S3 → local copied 2" test "$(cj "d['copied']")" = 2
verify "S3 → local" "$DRE_PASSWORD_FILE" "$L2"
expect_rc 0 "the original local → local: already there through the copy of a copy of a copy" \
	cp_json "$L" "$DRE_PASSWORD_FILE" "$L2" "$DRE_PASSWORD_FILE"
check "nothing copied" test "$(cj "d['copied']"),$(cj "d['already_there']")" = 0,2
expect_rc 0 "check --read-data of the second bucket" as "$T/pwB" "$B" check --read-data
finish
