#!/usr/bin/env bash
# The push/prune race, forced interleaving by interleaving (format-spec.md §16.4, tests/model/prune.pml): each
# process stops at a named point (DRE_TEST_PAUSE, engine/testhook.h) until the test lets it go. In every case a
# push either commits a snapshot that restores byte for byte, or fails with exit 7 and commits nothing; check
# accepts the repository after each.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null || exit 1
P=$T/pause
mkdir -p "$P"

snap_id() { "$DRE" snapshots --json | json "[s['id'] for s in d if s['name']=='$1'][-1]"; }
not_snap() { "$DRE" snapshots --json | json "any(s['name']=='$1' for s in d)" | grep -q False; }
restores() { # NAME FILE
	rm -rf "$T/out" && "$DRE" restore "$1" --target "$T/out" >/dev/null 2>&1 && cmp -s "$2" "$T/out/$1"
}
# wait_for NAME: until a paused process reached point NAME (60 s at most)
wait_for() {
	local i
	for i in $(seq 600); do
		[ -e "$P/$1.reached" ] && return 0
		sleep 0.1
	done
	echo "timed out waiting for $1" >&2
	return 1
}
go() { touch "$P/$1.go"; }
reset_pause() { rm -f "$P"/*; }
# dead_data FILE NAME: pushes FILE as NAME and forgets it, so its packs are what the next prune deletes
dead_data() {
	head -c 2000000 /dev/urandom >"$1"
	"$DRE" push "$2" <"$1" >/dev/null && "$DRE" forget "$(snap_id "$2")" >/dev/null
}

# 1. The push loads the index; a whole prune runs (plan, deletes, plan removed) before the push writes anything:
#    no plan is left for W3 and W4 to see, but W4 finds a pack it relied on gone, and the push fails.
dead_data "$T/d1" old1 || exit 1
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-loaded "$DRE" push new1 <"$T/d1" >"$T/push1.out" 2>"$T/push1.err" &
pid=$!
wait_for push-loaded
expect_rc 0 "1: a prune runs to its end while a push that read the index before it waits" \
	"$DRE" prune --grace 0 --json
check "  ... it deleted the dead packs" sh -c "grep -q '\"packs_deleted\": [1-9]' '$T/cmd.out'"
go push-loaded
wait "$pid"
rc=$?
check "  ... the push then fails as busy (exit $rc, wanted 7)" test "$rc" -eq 7
check "  ... saying a prune deleted what it relied on" grep -q "prune" "$T/push1.err"
check "  ... and committed nothing" not_snap new1
expect_rc 0 "  ... check accepts the repository" "$DRE" check
expect_rc 0 "  ... the push run again succeeds" "$DRE" push new1 <"$T/d1"
check "  ... and restores byte for byte" restores new1 "$T/d1"

# 2. The prune marks (R1) before the push commits; the push commits before the plan is written: R4 finds the
#    new snapshot and keeps the packs it needs.
dead_data "$T/d2" old2 || exit 1
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=prune-marked "$DRE" prune --grace 0 --json >"$T/prune2.out" 2>"$T/prune2.err" &
pid=$!
wait_for prune-marked
expect_rc 0 "2: a push commits between the prune's mark and its plan" "$DRE" push new2 <"$T/d2"
go prune-marked
wait "$pid"
check "  ... the prune succeeds" test $? -eq 0
check "  ... keeping the planned packs the new snapshot needs" \
	sh -c "grep -q '\"packs_kept\": [1-9]' '$T/prune2.out'"
check "  ... the new snapshot restores byte for byte" restores new2 "$T/d2"
expect_rc 0 "  ... check --read-data accepts the repository" "$DRE" check --read-data

# 3. The push writes its snapshot after the prune's mark and before its plan, then waits before its last check
#    (W4) while the prune plans, rescans and finishes: R4 keeps the packs, W4 finds nothing it relied on gone.
dead_data "$T/d3" old3 || exit 1
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-before-snapshot,push-after-snapshot "$DRE" push new3 <"$T/d3" >/dev/null 2>"$T/push3.err" &
ppid=$!
wait_for push-before-snapshot
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=prune-marked "$DRE" prune --grace 0 --json >"$T/prune3.out" 2>"$T/prune3.err" &
rpid=$!
wait_for prune-marked
go push-before-snapshot
wait_for push-after-snapshot
go prune-marked
wait "$rpid"
check "3: the prune runs between the push's snapshot put and its last check" test $? -eq 0
check "  ... keeping the packs the snapshot needs" sh -c "grep -q '\"packs_kept\": [1-9]' '$T/prune3.out'"
go push-after-snapshot
wait "$ppid"
rc=$?
check "  ... the push commits (exit $rc)" test "$rc" -eq 0
check "  ... and its snapshot restores byte for byte" restores new3 "$T/d3"
expect_rc 0 "  ... check --read-data accepts the repository" "$DRE" check --read-data

# 4. The prune's plan exists when the push checks before its snapshot (W3): the push fails before writing it.
dead_data "$T/d4" old4 || exit 1
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-before-snapshot "$DRE" push new4 <"$T/d4" >/dev/null 2>"$T/push4.err" &
ppid=$!
wait_for push-before-snapshot
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=prune-planned "$DRE" prune --grace 0 >/dev/null 2>&1 &
rpid=$!
wait_for prune-planned
go push-before-snapshot
wait "$ppid"
rc=$?
check "4: a plan appears before the push's snapshot: the push fails as busy (exit $rc)" test "$rc" -eq 7
check "  ... committing nothing" not_snap new4
go prune-planned
wait "$rpid"
check "  ... the prune completes" test $? -eq 0
expect_rc 0 "  ... check accepts the repository" "$DRE" check

# 5. A push has written packs but no index object names them yet when the prune marks: they are orphans, and
#    the prune leaves them alone because the push's lock is live. The push then commits.
head -c 1500000 /dev/urandom >"$T/d5"
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-before-index "$DRE" push new5 <"$T/d5" >/dev/null 2>&1 &
ppid=$!
wait_for push-before-index
expect_rc 0 "5: prune while a push's packs are in no index yet" "$DRE" prune --grace 0 --json
check "  ... leaves them alone (orphans deferred)" grep -q '"orphans_deferred": true' "$T/cmd.out"
go push-before-index
wait "$ppid"
check "  ... the push commits" test $? -eq 0
check "  ... and restores byte for byte" restores new5 "$T/d5"

# 6. Two prunes: the second finds the first's delete lock and refuses.
reset_pause
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=prune-marked "$DRE" prune --grace 0 >/dev/null 2>&1 &
rpid=$!
wait_for prune-marked
expect_rc 7 "6: a second prune while one runs is refused as busy" "$DRE" prune --grace 0
check "  ... naming the holder" err_has "locked by 'prune'"
go prune-marked
wait "$rpid"
check "  ... the first completes" test $? -eq 0

expect_rc 0 "a last prune" "$DRE" prune --grace 0
expect_rc 0 "check --read-data at the end" "$DRE" check --read-data
for n in new1 new2 new3 new5; do
	f=$T/d${n#new}
	check "$n restores at the end" restores "$n" "$f"
done

finish
