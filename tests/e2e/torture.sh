#!/usr/bin/env bash
# torture: the short run of the crash torture (tests/torture/torture.sh; `make torture` is the long one). dre is
# killed with SIGKILL 40 times (24 under a sanitizer build) at random points of push, forget, prune, copy,
# wal-push and wal-fetch and at random moments; after each kill the same command run again succeeds, both
# repositories pass check --read-data, and every committed snapshot and archived WAL file restores byte for byte.
# Also the kill hook itself (engine/testhook.h), and bad options of the torture script (exit 2).
. "$(dirname "$0")/lib.bash"

TORTURE=$DRE_SRC/tests/torture/torture.sh
kills=40 every=20
case $DRE in *asan* | *tsan*) kills=24 every=12 ;; esac # the sanitizers run dre about 3 times slower
seed=${TORTURE_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}

expect_rc 2 "torture refuses a count that is not a number" "$TORTURE" --dre "$DRE" --kills many
check "  ... and says which option" err_has "whole numbers"
expect_rc 2 "torture refuses --verify-every 0" "$TORTURE" --dre "$DRE" --verify-every 0

# the hook: name:N kills at the N-th arrival and logs the point first; a malformed N names no point
"$DRE" init --pack-size 1M --chunk-min 4K --chunk-avg 16K --chunk-max 64K >/dev/null || exit 1
"$GENDUMP" 3 1 >"$T/dump"
kill_push() { # KILL_AT: push the dump under DRE_TEST_KILL_AT=KILL_AT, logging to $T/kill.log; prints the exit status
	rm -f "$T/kill.log"
	{ DRE_TEST_KILL_AT=$1 DRE_TEST_KILL_LOG=$T/kill.log "$DRE" push hook <"$T/dump" >/dev/null 2>&1; echo $?; } 2>/dev/null
}
check "DRE_TEST_KILL_AT=push-loaded kills at the first arrival" test "$(kill_push push-loaded)" = 137
check "  ... and logs the point" test "$(cat "$T/kill.log" 2>/dev/null)" = "push-loaded 1"
check "DRE_TEST_KILL_AT=pack-before-put:2 kills at the second pack put" test "$(kill_push pack-before-put:2)" = 137
check "  ... and logs the arrival" test "$(cat "$T/kill.log" 2>/dev/null)" = "pack-before-put 2"
check "push-loaded:2 is never reached: the push succeeds" test "$(kill_push push-loaded:2)" = 0
check "a count that is not a number (push-loaded:x) kills nowhere" test "$(kill_push push-loaded:x)" = 0
check "  ... and neither does push-loaded:0" test "$(kill_push push-loaded:0)" = 0
check "  ... and nothing was logged" test ! -e "$T/kill.log"
expect_rc 0 "check after the hook's kills" "$DRE" check --read-data

mkdir -p "$T/torture"
"$TORTURE" --dre "$DRE" --kills "$kills" --verify-every "$every" --seed "$seed" --dir "$T/torture" >"$T/torture.out" 2>&1
rc=$?
sed 's/^/    /' "$T/torture.out" | tail -n 50
summary=$(grep '^torture: kills=' "$T/torture.out" | tail -n 1)
field() { echo "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
check "torture (seed $seed) exits 0" test "$rc" = 0
check "  ... killed dre $kills times" test "$(field kills)" = "$kills"
check "  ... and the next command succeeded after every kill" test "$(field survived)" = "$kills" -a "$(field next_failed)" = 0
check "  ... check --read-data passed on both repositories each round" test "$(field check_failed)" = 0
check "  ... restored committed snapshots byte for byte ($(field verified))" test "${summary:+$(field verified)}" -gt 0
check "  ... lost nothing and found nothing corrupt" test "$(field lost)" = 0 -a "$(field corrupt)" = 0
check "  ... killed at named points of several commands" test "$(grep -cE '^  [a-z-]+ +[1-9][0-9]* +[0-9]+$' "$T/torture.out")" -ge 4
finish
