#!/bin/bash
# stores: local s3
# dre locks and dre unlock: a running push shows its write lock; killed, its lock goes stale (same host, pid
# gone) and unlock removes it; unlock leaves live locks alone, --remove-all removes them too.
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
# locks_json: the lock list as JSON in $T/locks.json
locks_json() { "$DRE" locks --json >"$T/locks.json" 2>"$T/locks.err"; }
lj() { json "$1" <"$T/locks.json"; }
# wait_lock: until a lock shows up (60 s at most: a push opening the repository on a loaded machine is slow)
wait_lock() {
	for _ in $(seq 1 600); do
		locks_json && [ "$(lj "len(d)")" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

expect_rc 0 "locks on a fresh repository" "$DRE" locks
check "  ... says there are none" grep -q "^no locks$" "$T/cmd.out"
expect_rc 0 "locks --json on a fresh repository" "$DRE" locks --json
check "  ... an empty array" test "$(json "d" <"$T/cmd.out")" = "[]"

# held_producer FILE: a producer that writes nothing until FILE exists (2 minutes at most), so that the push it
# feeds holds its lock for as long as the test needs, however slow the machine, and no longer
held_producer() { echo "for i in \$(seq 1200); do [ -e '$1' ] && break; sleep 0.1; done; echo hi"; }

# a push whose producer takes its time holds its lock meanwhile
"$DRE" push x -- sh -c "$(held_producer "$T/go.x")" >/dev/null 2>&1 &
pushpid=$!
check "a running push shows a lock" wait_lock
check "  ... one lock" test "$(lj "len(d)")" = 1
check "  ... a write lock of push" test "$(lj "(d[0]['kind'], d[0]['command'])")" = "('write', 'push')"
check "  ... held by the push's process" test "$(lj "d[0]['pid']")" = "$pushpid"
check "  ... on this host, as this user" test "$(lj "(d[0]['host'], d[0]['user'])")" = "('$(hostname)', '$(id -un)')"
check "  ... not stale" test "$(lj "d[0]['stale']")" = False
lockid=$(lj "d[0]['id']")
expect_rc 0 "locks" "$DRE" locks
check "  ... has a header" grep -q "^ID .*KIND .*COMMAND .*HOST .*USER .*PID .*SINCE .*REFRESHED" "$T/cmd.out"
check "  ... shows the push's lock" grep -q "^${lockid:0:8}  write   push .* $pushpid  [0-9-]* [0-9:]*  [0-9-]* [0-9:]*$" "$T/cmd.out"
expect_rc 0 "unlock while the push runs" "$DRE" unlock
check "  ... removes nothing: the lock is live" grep -q "removed 0 stale locks" "$T/cmd.out"
locks_json
check "  ... the lock is still there" test "$(lj "len(d)")" = 1

# killed, the push leaves its lock behind; its pid no longer runs on this host, so the lock is stale at once
kill -9 "$pushpid"
wait "$pushpid" 2>/dev/null
touch "$T/go.x" # its producer, orphaned, ends too
expect_rc 0 "locks after the push was killed" "$DRE" locks
check "  ... shows its lock as stale" grep -q "^${lockid:0:8}  write   push .* $pushpid .*  stale$" "$T/cmd.out"
locks_json
check "  ... stale in JSON too" test "$(lj "d[0]['stale']")" = True
expect_rc 0 "a push is not held up by a stale lock" "$DRE" push y -- echo hello
expect_rc 0 "unlock" "$DRE" unlock
check "  ... removes the stale lock" grep -q "removed 1 stale lock$" "$T/cmd.out"
expect_rc 0 "locks after unlock" "$DRE" locks
check "  ... none left" grep -q "^no locks$" "$T/cmd.out"
expect_rc 0 "unlock --json with nothing to remove" "$DRE" unlock --json
check "  ... removed 0" test "$(json "d['removed']" <"$T/cmd.out")" = 0

# --remove-all removes a live lock; the push that held it notices before it writes its snapshot
"$DRE" push z -- sh -c "$(held_producer "$T/go.z")" >"$T/z.out" 2>"$T/z.err" &
pushpid=$!
check "another running push shows a lock" wait_lock
expect_rc 0 "unlock --remove-all" "$DRE" unlock --remove-all
check "  ... removes the live lock" grep -q "removed 1 lock$" "$T/cmd.out"
locks_json
check "  ... none left" test "$(lj "len(d)")" = 0
touch "$T/go.z"
wait "$pushpid"
rc=$?
check "  ... the push whose lock was removed fails as busy (exit 7, got $rc)" test "$rc" = 7
check "  ... saying its lock is gone" grep -qi "lock .* is gone" "$T/z.err"
check "  ... and records no snapshot" test "$("$DRE" snapshots --json | json "[s['name'] for s in d]")" = "['y']"

expect_rc 2 "unlock takes no arguments" "$DRE" unlock now
expect_rc 2 "locks takes no arguments" "$DRE" locks x
finish
