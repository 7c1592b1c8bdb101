#!/bin/bash
# Deduplication: an edited copy (bytes inserted mid-file) stores only the chunks around the edit; a next-day
# dump stores a small fraction; pushing the same data again stores nothing new.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
head -c 64M /dev/urandom >"$T/base"
expect_rc 0 "push the original" "$DRE" push file <"$T/base"
# insert 100 bytes in the middle
{ head -c 33554432 "$T/base"; printf '%0100d' 7; tail -c +33554433 "$T/base"; } >"$T/edited"
expect_rc 0 "push the edited copy" "$DRE" push file <"$T/edited"
new=$(stored_new file)
echo "# edited copy of 64 MiB stored $new new bytes"
# the chunks around the edit: at most a few max-size chunks (512 KiB each) plus pack overhead
check "edited copy stores only the chunks around the edit (< 2 MiB)" test "$new" -lt 2097152
"$DRE" restore file >"$T/edited.out"
check "edited copy restores" cmp -s "$T/edited" "$T/edited.out"
"$DRE" restore file --time "$("$DRE" snapshots --json | json "d[0]['time']")" >"$T/base.out"
check "original still restores" cmp -s "$T/base" "$T/base.out"

expect_rc 0 "push identical data again" "$DRE" push file <"$T/edited"
check "identical data stores nothing new" test "$(stored_new file)" -eq 0

"$GENDUMP" 64 >"$T/day1.sql"
"$GENDUMP" 64 1 --next-day >"$T/day2.sql"
"$DRE" push db <"$T/day1.sql" >/dev/null
d1=$(stored_new db)
"$DRE" push db <"$T/day2.sql" >/dev/null
d2=$(stored_new db)
echo "# next-day dump: day 1 stored $d1 bytes, day 2 stored $d2 bytes"
check "next-day dump stores under a fifth of day one" test $((d2 * 5)) -lt "$d1"
"$DRE" restore db >"$T/day2.out"
check "next-day dump restores" cmp -s "$T/day2.sql" "$T/day2.out"
finish
