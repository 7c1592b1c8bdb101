#!/bin/bash
# forget: a policy per (name, host) group — a dry run changes nothing, the JSON has the documented shape, the real
# run removes what the plan said and every kept snapshot still restores byte for byte; the newest of a group is
# never removed by a policy; IDs remove exactly what they name; bad input is refused with a clear message and
# the right exit status, removing nothing; an old repository is refused with the way out; a live delete lock
# makes forget fail with exit 7. The calendar rules are tests/unit/test_retention.c's.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null || exit 1
for i in 1 2 3 4; do
	seq "$i" 20000 >"$T/a$i"
	"$DRE" push a <"$T/a$i" >/dev/null || exit 1
done
for i in 1 2 3; do
	seq 5 "$i" 30000 >"$T/b$i"
	"$DRE" push b <"$T/b$i" >/dev/null || exit 1
done

# ids NAME: the IDs of NAME's snapshots, oldest first, one per line
ids() { "$DRE" snapshots --json | json "'\n'.join(s['id'] for s in d if s['name']=='$1')"; }
count() { "$DRE" snapshots --json | json "len(d)"; }
# restores_as ID FILE: the snapshot restores to exactly FILE's bytes
restores_as() { "$DRE" restore "$1" >"$T/out" 2>/dev/null && cmp -s "$2" "$T/out"; }
mapfile -t A < <(ids a)
mapfile -t B < <(ids b)
check "seven snapshots to start with" test "$(count)" = 7

expect_rc 0 "forget --keep-last 2 --dry-run" "$DRE" forget --keep-last 2 --dry-run
check "  ... removes nothing" test "$(count)" = 7
check "  ... says what it would do" grep -q "dry run: 4 kept, 3 would be removed; nothing was deleted" "$T/cmd.out"
check "  ... one table per group" sh -c "grep -q 'snapshots named a on host' '$T/cmd.out' &&
	grep -q 'snapshots named b on host' '$T/cmd.out'"
check "  ... the oldest of a marked remove, the newest marked keep with its reason" sh -c "
	grep '^${A[0]:0:8} ' '$T/cmd.out' | grep -q ' remove\$' &&
	grep '^${A[3]:0:8} ' '$T/cmd.out' | grep -q ' keep  *last\$'"

expect_rc 0 "forget --keep-last 2 --dry-run --json" "$DRE" forget --keep-last 2 --dry-run --json
check "  ... has groups, snapshots with id, time, action and reasons, and totals" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
assert d['dry_run'] is True and d['wal'] is None, d
assert d['totals'] == {'snapshots': 7, 'kept': 4, 'removed': 3}, d['totals']
g = {x['name']: x for x in d['groups']}
assert sorted(g) == ['a', 'b'] and all(x['host'] for x in d['groups'])
a = g['a']['snapshots']
assert [s['id'] for s in a] == '${A[*]}'.split(), a
assert [s['action'] for s in a] == ['remove', 'remove', 'keep', 'keep'], a
assert [s['reasons'] for s in a] == [[], [], ['last'], ['last']], a
assert all(s['time'] and s['kind'] == 'stream' and s['removed'] is False for s in a)
assert (g['a']['kept'], g['a']['removed'], g['b']['kept'], g['b']['removed']) == (2, 2, 2, 1)
"
check "  ... and removes nothing" test "$(count)" = 7

expect_rc 0 "forget --keep-last 2" "$DRE" forget --keep-last 2
check "  ... points at prune" grep -q "4 kept, 3 removed; run 'dre prune'" "$T/cmd.out"
check "  ... a keeps its two newest" test "$(ids a | tr '\n' ' ')" = "${A[2]} ${A[3]} "
check "  ... b keeps its two newest" test "$(ids b | tr '\n' ' ')" = "${B[1]} ${B[2]} "
check "  ... a's kept snapshots restore byte for byte" sh -c "
	$(declare -f restores_as); DRE='$DRE' T='$T'; restores_as ${A[2]} '$T/a3' && restores_as ${A[3]} '$T/a4'"
check "  ... b's kept snapshots restore byte for byte" sh -c "
	$(declare -f restores_as); DRE='$DRE' T='$T'; restores_as ${B[1]} '$T/b2' && restores_as ${B[2]} '$T/b3'"
check "  ... restore by name gives the newest" sh -c "'$DRE' restore a >'$T/out' && cmp -s '$T/a4' '$T/out'"
if ! on_s3; then
	check "  ... and leaves no lock behind" test -z "$(ls -A "$T/repo/locks" 2>/dev/null)"
fi
expect_rc 0 "check after forget" "$DRE" check

expect_rc 0 "forget a --keep-last 0 (a policy that keeps nothing)" "$DRE" forget a --keep-last 0 --json
check "  ... still keeps a's newest, with the reason newest" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
assert [g['name'] for g in d['groups']] == ['a'], d
s = d['groups'][0]['snapshots']
assert [(x['id'], x['action'], x['reasons'], x['removed']) for x in s] == [
	('${A[2]}', 'remove', [], True), ('${A[3]}', 'keep', ['newest'], False)], s
"
check "  ... which restores" restores_as "${A[3]}" "$T/a4"
check "  ... and b, not named, is untouched" test "$(ids b | tr '\n' ' ')" = "${B[1]} ${B[2]} "
expect_rc 0 "forget --keep-within 1h on groups of one" "$DRE" forget --keep-within 1h
check "  ... removes nothing" test "$(count)" = 3

expect_rc 0 "forget ID (a unique prefix)" "$DRE" forget "${B[1]:0:8}"
check "  ... removes exactly that one" test "$(ids b | tr '\n' ' ')" = "${B[2]} "
check "  ... and says so" grep -q "0 kept, 1 removed" "$T/cmd.out"
expect_rc 0 "forget ID (a full ID, the newest of its name)" "$DRE" forget "${B[2]}"
check "  ... removes it: IDs remove exactly what they name" test -z "$(ids b)"
check "  ... a is untouched" test "$(ids a)" = "${A[3]}"

# files snapshots, to filter by kind
mkdir -p "$T/tree"
echo one >"$T/tree/f"
"$DRE" push t "$T/tree" >/dev/null || exit 1
echo two >"$T/tree/f"
"$DRE" push t "$T/tree" >/dev/null || exit 1
"$DRE" push s <"$T/a1" >/dev/null || exit 1
expect_rc 0 "forget --kind files --keep-last 1" "$DRE" forget --kind files --keep-last 1 --json
check "  ... considers only the files snapshots" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
assert [g['name'] for g in d['groups']] == ['t'] and d['totals'] == {'snapshots': 2, 'kept': 1, 'removed': 1}, d
"
check "  ... the stream snapshots stay" test "$(ids a)" = "${A[3]}" -a -n "$(ids s)"
check "  ... the kept files snapshot restores" sh -c "rm -rf '$T/r' && '$DRE' restore t --target '$T/r' >/dev/null &&
	diff -r '$T/tree' '$T/r/${T#/}/tree'"
expect_rc 0 "forget --group-by host --keep-last 1 --dry-run" \
	"$DRE" forget --group-by host --keep-last 1 --dry-run --json
check "  ... makes one group of every name, with no name" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
assert len(d['groups']) == 1 and d['groups'][0]['name'] is None and d['groups'][0]['host'], d
assert d['totals'] == {'snapshots': 3, 'kept': 1, 'removed': 2}, d['totals']
"

expect_rc 0 "forget --pitr-window with a policy runs WAL expiry" "$DRE" forget --keep-last 5 --pitr-window 7d
check "  ... and reports it" grep -q "^WAL: 0 files removed" "$T/cmd.out"

expect_rc 0 "a name that matches nothing" "$DRE" forget nosuch --keep-last 1
check "  ... is warned about" err_has "warning: no snapshot named nosuch"
expect_rc 0 "--quiet" "$DRE" forget --keep-last 5 --quiet
check "  ... prints nothing" test ! -s "$T/cmd.out"

if ! on_s3; then
	# a snapshot object that cannot be read: listed as damaged, removable by its ID, and WAL expiry waits for it
	"$DRE" push d <"$T/a1" >/dev/null || exit 1
	dmg=$(ids d)
	printf 'garbage' >"$T/repo/snapshots/$dmg"
	expect_rc 0 "with a damaged snapshot, --pitr-window" "$DRE" forget --keep-last 5 --pitr-window 1d
	check "  ... warns that it is skipped" err_has "WAL expiry skipped: 1 snapshot object could not be read"
	expect_rc 0 "forget the damaged snapshot by ID" "$DRE" forget "${dmg:0:10}"
	check "  ... lists it as unreadable" grep -q "^${dmg:0:8} .*(unreadable).* remove" "$T/cmd.out"
	check "  ... removes its object" test ! -e "$T/repo/snapshots/$dmg"
	expect_rc 0 "  ... after which dre snapshots warns no more" "$DRE" snapshots
	check "  ... (no warning)" test ! -s "$T/cmd.err"
fi

n=$(count)
expect_rc 2 "no policy and no ID" "$DRE" forget
check "  ... says what to give" err_has "nothing to forget: give a policy"
expect_rc 2 "a name without a policy" "$DRE" forget a
check "  ... says it is not an ID and how to give a policy" err_has "'a' is not a snapshot ID.*--keep-last"
expect_rc 2 "a policy without a keep option (only --dry-run)" "$DRE" forget --dry-run
expect_rc 2 "bad duration 7x" "$DRE" forget --keep-within 7x
check "  ... names the option and the text" err_has "--keep-within: '7x' is not a duration"
expect_rc 2 "duration without a unit" "$DRE" forget --keep-within-daily 7
check "  ... says so" err_has "has no unit"
expect_rc 2 "negative count" "$DRE" forget --keep-last -1
check "  ... says so" err_has "--keep-last: '-1' is negative"
expect_rc 2 "count that is not a number" "$DRE" forget --keep-daily seven
check "  ... says so" err_has "--keep-daily: 'seven' is not a number"
expect_rc 3 "unknown ID" "$DRE" forget deadbeef
check "  ... names it" err_has "no snapshot with ID deadbeef"
expect_rc 3 "a known ID and an unknown one" "$DRE" forget "${A[3]}" deadbeef
expect_rc 2 "unknown kind" "$DRE" forget --kind tarball --keep-last 1
check "  ... lists the kinds" err_has "unknown kind 'tarball' (stream, files or pg-base)"
expect_rc 2 "IDs with --host" "$DRE" forget "${A[3]}" --host x
expect_rc 2 "bad --group-by" "$DRE" forget --group-by kind --keep-last 1
expect_rc 2 "bad --pitr-window" "$DRE" forget --keep-last 1 --pitr-window soon
check "bad input removed nothing" test "$(count)" = "$n"

# an older repository: forget needs its locks (format version 4)
cp -r "$DRE_SRC/tests/golden/repo-v2" "$T/old"
expect_rc 1 "a version 2 repository is refused" env DRE_PASSWORD_FILE="$DRE_SRC/tests/golden/repo-v2.key" \
	"$DRE" -r "$T/old" forget --keep-last 1
check "  ... pointing at dre migrate" err_has "dre migrate"

# a live delete lock (a prune with its plan written, where it waits out its grace time) makes forget fail with
# "busy"; the prune waits at engine/testhook.h's pause point for as long as the test needs, however slow the machine
head -c 300000 /dev/urandom >"$T/p"
"$DRE" push p <"$T/p" >/dev/null && "$DRE" forget "$(ids p)" >/dev/null || exit 1 # data for prune to plan on
mkdir -p "$T/pause"
DRE_TEST_PAUSE=$T/pause DRE_TEST_PAUSE_AT=prune-planned "$DRE" prune --grace 0 >"$T/prune.out" 2>&1 &
prune=$!
trap 'touch "$T/pause/prune-planned.go"' EXIT
for _ in $(seq 1200); do
	[ -e "$T/pause/prune-planned.reached" ] && break
	sleep 0.1
done
expect_rc 7 "forget while a prune holds the delete lock" "$DRE" forget --keep-last 1
check "  ... says it is busy" err_has "prune"
expect_rc 0 "a dry run needs no lock" "$DRE" forget --keep-last 1 --dry-run
touch "$T/pause/prune-planned.go"
wait "$prune"
check "  ... and the prune finishes" test $? -eq 0
expect_rc 0 "forget after the prune" "$DRE" forget --keep-last 1
finish
