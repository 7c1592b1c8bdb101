#!/bin/bash
# A repository written by the previous format (version 2, tests/golden/repo-v2, made by dre 0.1.0 before format 3)
# is read as it is: listed, restored, checked. Pushing into it is refused with the way out, `dre migrate`, which
# upgrades it in place; old snapshots keep restoring beside new ones, and new pushes deduplicate against old data.
. "$(dirname "$0")/lib.bash"

R=$T/repo
cp -r "$DRE_SRC/tests/golden/repo-v2" "$R"
export DRE_PASSWORD_FILE=$DRE_SRC/tests/golden/repo-v2.key DRE_REPOSITORY=$R
# the golden inputs, made again as they were made (see the comment above)
seq 1 30000 >"$T/stream.txt"
mkdir -p "$T/tree/sub"
printf 'hello\n' >"$T/tree/hello.txt"
: >"$T/tree/empty"
seq 1 5000 >"$T/tree/sub/n.txt"
ln -s ../hello.txt "$T/tree/sub/link"

expect_rc 0 "version 2: cat config says version 2" "$DRE" cat config
check "  ... it does" sh -c "'$PY' -c 'import json; assert json.load(open(\"$T/cmd.out\"))[\"version\"] == 2'"
expect_rc 0 "version 2: snapshots lists both" "$DRE" snapshots
check "  ... numbers and files" sh -c "grep -q numbers '$T/cmd.out' && grep -q files '$T/cmd.out'"
expect_rc 0 "version 2: ls files" "$DRE" ls files
check "  ... shows the symlink and the empty file" sh -c "grep -q 'tree/sub/link -> ../hello.txt' '$T/cmd.out' && grep -q 'tree/empty' '$T/cmd.out'"
expect_rc 0 "version 2: restore the stream" "$DRE" restore numbers --target "$T/out1"
check "  ... byte for byte" cmp "$T/stream.txt" "$T/out1/numbers"
expect_rc 0 "version 2: restore the files" "$DRE" restore files --target "$T/out2"
check "  ... byte for byte" diff -r "$T/tree" "$T/out2/tree"
check "  ... with the symlink" test "$(readlink "$T/out2/tree/sub/link")" = ../hello.txt
check "  ... and the mode and mtime" sh -c "[ \$(stat -c %a '$T/out2/tree/sub/n.txt') = 640 ] && [ \$(stat -c %Y '$T/out2/tree/sub/n.txt') = 1704164645 ]"
expect_rc 0 "version 2: cat snapshot lists its chunks" "$DRE" cat snapshot numbers
check "  ... as many as it counts" sh -c "'$PY' -c 'import json; d=json.load(open(\"$T/cmd.out\")); n=d[\"nodes\"][0]; assert len(n[\"chunks\"])==n[\"nchunks\"]==d[\"chunks\"]>1'"
expect_rc 0 "version 2: check --read-data is clean" "$DRE" check --read-data

expect_rc 1 "version 2: push is refused" "$DRE" push more <"$T/stream.txt"
check "  ... naming dre migrate" err_has "dre migrate"
check "  ... and storing nothing" sh -c "[ \$('$DRE' snapshots --json | '$PY' -c 'import json,sys; print(len(json.load(sys.stdin)))') = 2 ]"

expect_rc 0 "migrate" "$DRE" migrate
check "  ... says it upgraded from 2 to 5" grep -q "from format version 2 to 5" "$T/cmd.out"
expect_rc 0 "migrate again" "$DRE" migrate
check "  ... has nothing to do" grep -q "nothing to do" "$T/cmd.out"
expect_rc 0 "cat config says version 5" "$DRE" cat config --json
check "  ... it does" sh -c "'$PY' -c 'import json; assert json.load(open(\"$T/cmd.out\"))[\"version\"] == 5'"

expect_rc 0 "version 5: push the same stream again" "$DRE" push numbers <"$T/stream.txt"
new=$(stored_new numbers)
check "  ... stores only its lists, $new bytes (the chunks are the old snapshot's)" test "$new" -lt 4096
expect_rc 0 "version 5: the old snapshot still restores" "$DRE" restore "$(
	"$DRE" snapshots --json | json "[s['id'] for s in d if s['name']=='numbers'][0]")" --target "$T/out3"
check "  ... byte for byte" cmp "$T/stream.txt" "$T/out3/numbers"
expect_rc 0 "version 5: the new snapshot restores" "$DRE" restore numbers --target "$T/out4"
check "  ... byte for byte" cmp "$T/stream.txt" "$T/out4/numbers"
expect_rc 0 "a mixed repository: check --read-data is clean" "$DRE" check --read-data
if "$PY" -c 'import cryptography, zstandard, xxhash' 2>/dev/null; then
	check "a mixed repository: the independent decoder verifies it" "$PY" "$DRE_SRC/tests/spec_decoder.py" "$R" \
		"$DRE_PASSWORD_FILE" verify
fi
finish
