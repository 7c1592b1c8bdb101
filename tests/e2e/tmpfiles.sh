#!/usr/bin/env bash
# tmpfiles: a command killed in the middle of a put on a local repository leaves the object's temporary file
# (".tmp.<pid>.<random>.<name>") behind, which nothing else removes; prune removes those older than the lock
# stale age while no push is running, as it aborts S3's unfinished multipart uploads, and says so. A fresh one
# is kept, and so is any while a push holds its lock. The repository stays one that check accepts.
. "$(dirname "$0")/lib.bash"

"$DRE" init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null || exit 1
repo=$DRE_REPOSITORY
head -c 3000000 /dev/urandom >"$T/a"
head -c 1000000 /dev/urandom >"$T/b"

tmpfiles() { find "$repo" -name '.tmp.*' -type f | wc -l; }
aborted() { json "d['uploads_aborted']" <"$T/cmd.out"; }

# The points pack-before-put and pack-after-put are around a whole put and leave no temporary; the store's own
# point store-put-synced (store.h) is inside it: the temporary is written and synced, not yet moved into place.
# The push puts its lock first (arrival 1), then its first pack (arrival 2).
{ DRE_TEST_KILL_AT=store-put-synced:2 "$DRE" push a <"$T/a" >/dev/null 2>&1; echo $? >"$T/rc"; } 2>/dev/null
check "a push killed in the middle of writing a pack dies there" test "$(cat "$T/rc")" = 137
check "  ... and leaves the pack's temporary file" test "$(find "$repo/packs" -name '.tmp.*' -type f | wc -l)" = 1
name=$(basename "$(find "$repo/packs" -name '.tmp.*' -type f)")
dir=$(basename "$(dirname "$(find "$repo/packs" -name '.tmp.*' -type f)")")
check "  ... whose name carries the pack's name ($name)" \
	sh -c "echo '$name' | grep -Eq '^\.tmp\.[0-9]+\.[0-9a-f]{16}\.$dir[0-9a-f]{62}$'"
expect_rc 0 "a listing does not show it (check)" "$DRE" check

expect_rc 0 "prune with a fresh temporary" "$DRE" prune --grace 0 --json
check "  ... keeps it (younger than the lock stale age)" test "$(aborted)" = 0 -a "$(tmpfiles)" = 1

# While a push holds its write lock, none is removed, however old.
P=$T/pause
mkdir -p "$P"
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-loaded "$DRE" push held <"$T/b" >/dev/null 2>"$T/held.err" &
held=$!
trap 'touch "$P/push-loaded.go"; wait $held' EXIT
for _ in $(seq 1200); do [ -e "$P/push-loaded.reached" ] && break; sleep 0.1; done
check "a push is running (paused at push-loaded)" test -e "$P/push-loaded.reached"
expect_rc 0 "prune beside a running push, stale age 0" env DRE_TEST_UPLOAD_AGE_S=0 "$DRE" prune --grace 0 --json
check "  ... keeps the temporary" test "$(aborted)" = 0 -a "$(tmpfiles)" = 1
touch "$P/push-loaded.go"
check "  ... and the running push finishes" wait "$held"
trap - EXIT

expect_rc 0 "prune after the push, stale age 0" env DRE_TEST_UPLOAD_AGE_S=0 "$DRE" prune --grace 0
check "  ... says it removed it" grep -q "removed 1 unfinished uploads left by interrupted commands (temporary files)" \
	"$T/cmd.out"
check "  ... and no temporary is left" test "$(tmpfiles)" = 0
expect_rc 0 "check after removing it" "$DRE" check
expect_rc 0 "the killed push runs again" "$DRE" push a <"$T/a"
rm -rf "$T/out"
check "  ... and restores byte for byte" sh -c "'$DRE' restore a > '$T/out' && cmp -s '$T/a' '$T/out'"
finish
