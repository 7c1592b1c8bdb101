#!/usr/bin/env bash
# The threaded paths with more workers than cores: push (a producer's stream, a files tree), restore, check
# --read-data, prune repacking, copy, each with --threads 4 while the lock's refresh thread rewrites the lock
# every second (DRE_TEST_LOCK_REFRESH_S=1). Every snapshot restores byte for byte and no lock is left behind.
# `make tsan` runs it under ThreadSanitizer (tests/tsan/run); on S3 the pushes add upload threads.
# stores: local s3
. "$(dirname "$0")/lib.bash"

export DRE_TEST_LOCK_REFRESH_S=1
dre4() { "$DRE" --threads 4 "$@"; }
# small chunks and packs: many jobs in flight for each worker, many packs sealed while the others compress
dre4 init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null || exit 1

# the producer pauses between its halves, so the push outlives a refresh of its lock with workers busy
"$GENDUMP" 6 1 >"$T/db.sql"
"$GENDUMP" 6 2 >>"$T/db.sql"
expect_rc 0 "push a producer's stream with 4 workers" \
	dre4 push db -- sh -c "'$GENDUMP' 6 1; sleep 2; '$GENDUMP' 6 2"

mkdir -p "$T/tree/a/b" "$T/tree/c"
for i in 1 2 3 4 5 6; do
	head -c $((400000 * i)) /dev/urandom >"$T/tree/a/r$i.bin"
	head -c $((300000 * i)) "$T/db.sql" >"$T/tree/c/part$i.sql" # shares chunks with the stream
done
printf 'small\n' >"$T/tree/a/b/small.txt"
ln -s ../c/part1.sql "$T/tree/a/link"
expect_rc 0 "push a files tree with 4 workers" dre4 push files "$T/tree"

head -c 6000000 /dev/urandom >"$T/gone"
head -c 3000000 "$T/gone" >"$T/half"
head -c 1000000 /dev/urandom >>"$T/half"
expect_rc 0 "push a stream that will be forgotten" dre4 push gone <"$T/gone"
expect_rc 0 "push a stream sharing half of it" dre4 push half <"$T/half"

# restores_stream DRE NAME FILE, restores_tree DRE: DRE is dre4 or tdre4 (the copy)
restores_stream() { "$1" restore "$2" >"$T/out.stream" 2>"$T/restore.err" && cmp -s "$3" "$T/out.stream"; }
restores_tree() {
	rm -rf "$T/out" && "$1" restore files --target "$T/out" >/dev/null 2>"$T/restore.err" &&
		diff -r --no-dereference "$T/tree" "$T/out/${T#/}/tree" >/dev/null
}
check "the stream restores byte for byte with 4 workers" restores_stream dre4 db "$T/db.sql"
check "the files tree restores with 4 workers" restores_tree dre4
expect_rc 0 "check --read-data" dre4 check --read-data

gone_id=$("$DRE" snapshots --json | json "[s['id'] for s in d if s['name']=='gone'][-1]")
expect_rc 0 "forget one stream" dre4 forget "$gone_id"
# the grace outlives a refresh of prune's delete lock
expect_rc 0 "prune repacks what the other stream half needs" dre4 prune --grace 2s --max-unused 5% --json
check "  ... repacked packs" [ "$(json "d['packs_repacked'] >= 1" <"$T/cmd.out")" = True ]
expect_rc 0 "check --read-data after prune" dre4 check --read-data
check "the stream sharing the forgotten one restores after the repack" restores_stream dre4 half "$T/half"

TGT=$T/target
printf 'another password\n' >"$T/pw2"
if on_s3; then TGT=$DRE_REPOSITORY-copy; fi
tdre4() { DRE_PASSWORD_FILE=$T/pw2 "$DRE" --threads 4 -r "$TGT" "$@"; }
expect_rc 0 "init a copy target" tdre4 init
expect_rc 0 "copy every snapshot with 4 workers" dre4 copy --to "$TGT" --to-password-file "$T/pw2"
check "the copied stream restores byte for byte" restores_stream tdre4 db "$T/db.sql"
check "the copied files tree restores" restores_tree tdre4
expect_rc 0 "check --read-data of the copy" tdre4 check --read-data

# every refresh wrote a new lock object and removed the old one; every release removed the last
check "no lock is left in the repository" [ "$("$DRE" locks --json | json "len(d)")" = 0 ]
check "no lock is left in the copy" [ "$(tdre4 locks --json | json "len(d)")" = 0 ]
finish
