#!/bin/bash
# A 5 GB sparse file: pushed (holes read as zeros, deduplicated to almost nothing) and restored sparse.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
mkdir "$T/src"
truncate -s 5G "$T/src/sparse.img"
printf 'header' | dd of="$T/src/sparse.img" conv=notrunc status=none
printf 'middle' | dd of="$T/src/sparse.img" bs=1M seek=2500 conv=notrunc status=none
expect_rc 0 "push a 5 GB sparse file" "$DRE" push sparse "$T/src"
check "5 GB of holes store almost nothing" test "$(stored_new sparse)" -lt 2000000
expect_rc 0 "restore it" "$DRE" restore sparse --target "$T/out"
f="$T/out$T/src/sparse.img"
check "restored size is 5 GB" test "$(stat -c %s "$f")" = $((5 * 1024 * 1024 * 1024))
check "restored file is sparse" test "$(du -k "$f" | cut -f1)" -lt 100000
check "restored content identical" cmp -s "$T/src/sparse.img" "$f"
finish
