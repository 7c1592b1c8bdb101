#!/bin/bash
# Two pushes at once into one repository; a read-only repository; a push killed in the middle.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
"$GENDUMP" 30 1 >"$T/d1"
"$GENDUMP" 30 2 >"$T/d2"
"$DRE" push one <"$T/d1" >"$T/o1" 2>&1 &
p1=$!
"$DRE" push two <"$T/d2" >"$T/o2" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
check "two concurrent pushes both succeed" test $r1 -eq 0 -a $r2 -eq 0
"$DRE" restore one >"$T/r1"
"$DRE" restore two >"$T/r2"
check "first concurrent snapshot restores" cmp -s "$T/d1" "$T/r1"
check "second concurrent snapshot restores" cmp -s "$T/d2" "$T/r2"

# a push killed mid-way leaves every earlier snapshot restorable and no snapshot of its own
n_before=$("$DRE" snapshots --json | json "len(d)")
(head -c 200M /dev/urandom; sleep 30) | "$DRE" push killed >/dev/null 2>&1 &
pid=$!
sleep 3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "a killed push records no snapshot" test "$("$DRE" snapshots --json | json "len(d)")" = "$n_before"
"$DRE" restore one >"$T/r1b"
check "earlier snapshots restore after a killed push" cmp -s "$T/d1" "$T/r1b"
expect_rc 0 "check is clean after a killed push" "$DRE" check --read-data

# a read-only repository (local only: on S3 that is a bucket policy, which the test gateway has no user for)
if ! on_s3; then
	# read-only repository: as an unprivileged user when run as root, else by removing write permission
	if [ "$(id -u)" = 0 ]; then
		chmod -R a+rX "$T" && chmod a+r "$DRE_PASSWORD_FILE"
		as_reader() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent "$@"; }
		chmod a+rx "$(dirname "$DRE")" "$DRE" 2>/dev/null
	else
		chmod -R a-w "$T/repo"
		as_reader() { "$@"; }
	fi
	expect_rc 1 "push into a read-only repository fails" as_reader "$DRE" push ro </etc/hostname
	check "read-only: the error says permission denied" err_has "permission denied"
	expect_rc 0 "read-only: snapshots still list" as_reader "$DRE" snapshots
	expect_rc 0 "read-only: restore still works" as_reader sh -c "'$DRE' restore one | cmp -s - '$T/d1'"
	expect_rc 0 "read-only: check still works" as_reader "$DRE" check
	chmod -R u+w "$T/repo"
fi
finish
