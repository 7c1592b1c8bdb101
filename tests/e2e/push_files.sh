#!/bin/bash
# Files pushes (issue 16): unchanged files are taken from the parent snapshot without reading them, and only those;
# an entry that cannot be read is reported and left out while the snapshot is recorded, marked incomplete (exit 9);
# --exclude, --exclude-file, --one-file-system; tags and host; empty streams refused.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
S=$T/src
mkdir -p "$S/models" "$S/conf/sub"
for i in 1 2 3 4 5; do head -c $((700000 + i * 1000)) /dev/urandom >"$S/models/m$i.bin"; done
seq 1 20000 >"$S/conf/app.conf"
printf 'x\n' >"$S/conf/sub/small"
: >"$S/conf/empty"
# every file last written well before the first push: the skip rule needs an mtime 2 s older than the parent's start
find "$S" -type f -exec touch -d '2026-01-01 00:00:00' {} +
nfiles=$(find "$S" -type f | wc -l)
total=$(find "$S" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
# pushed NAME FIELD: a field of the last push's --json output
field() { json "d['$1']" <"$T/cmd.out"; }
restored_equal() { diff -r "$S" "$1$S" >/dev/null; }

expect_rc 0 "first push reads every file" "$DRE" push files "$S" --json
check "  ... none skipped, no parent" sh -c "[ $(field files_skipped) = 0 ] && [ $(field parent) = None ]"
first=$(field id)

expect_rc 0 "second push of the unchanged tree" "$DRE" push files "$S" --json
check "  ... takes all $nfiles files from the parent" test "$(field files_skipped)" = "$nfiles"
check "  ... all $total bytes, and says which parent" sh -c "[ $(field bytes_skipped) = $total ] && [ $(field parent) = ${first:0:16} ]"
check "  ... stores no new data" test "$(field chunks_new)" = 0
expect_rc 0 "  ... and restores byte for byte" "$DRE" restore files --target "$T/r1"
check "  ... (compared)" restored_equal "$T/r1"

printf 'more\n' >>"$S/conf/app.conf"
touch -d '2026-01-01 00:00:00' "$S/conf/app.conf"
expect_rc 0 "a file that grew is read" "$DRE" push files "$S" --json
check "  ... and only it" test "$(field files_skipped)" = $((nfiles - 1))
expect_rc 0 "  ... restored with its new content" "$DRE" restore files --target "$T/r2"
check "  ... (compared)" restored_equal "$T/r2"

# the same size and a forged mtime: ctime still tells
printf 'X' | dd of="$S/models/m3.bin" bs=1 seek=1000 conv=notrunc status=none
touch -d '2026-01-01 00:00:00' "$S/models/m3.bin"
cp "$S/models/m3.bin" "$T/m3.new"
expect_rc 0 "content changed with size and mtime kept: the new ctime makes it read" "$DRE" push files "$S" --json
check "  ... read" test "$(field files_skipped)" = $((nfiles - 1))
printf 'Y' | dd of="$S/models/m3.bin" bs=1 seek=1000 conv=notrunc status=none
touch -d '2026-01-01 00:00:00' "$S/models/m3.bin"
expect_rc 0 "the same with --ignore-ctime: nothing tells, the file is taken from the parent" \
	"$DRE" push files "$S" --ignore-ctime --json
check "  ... all skipped" test "$(field files_skipped)" = "$nfiles"
expect_rc 0 "  ... so it restores the parent's content" "$DRE" restore files --target "$T/r3"
check "  ... (the old bytes, as docs/files.md warns)" cmp -s "$T/m3.new" "$T/r3$S/models/m3.bin"
expect_rc 0 "--force-read reads every file" "$DRE" push files "$S" --force-read --json
check "  ... none skipped, no parent" sh -c "[ $(field files_skipped) = 0 ] && [ $(field parent) = None ]"
expect_rc 0 "  ... and has the new content" "$DRE" restore files --target "$T/r4"
check "  ... (compared)" restored_equal "$T/r4"

touch -d '+1 hour' "$S/conf/sub/small"
expect_rc 0 "push once more" "$DRE" push files "$S" --json
expect_rc 0 "a file whose mtime is not older than the parent's start is read, whatever it matches" \
	"$DRE" push files "$S" --json
check "  ... (one of $nfiles read)" test "$(field files_skipped)" = $((nfiles - 1))

expect_rc 0 "--parent names another snapshot" "$DRE" push files "$S" --parent "${first:0:12}" --json
check "  ... which is the parent" test "$(field parent)" = "${first:0:16}"
"$DRE" push astream </etc/hostname >/dev/null
expect_rc 1 "--parent of another kind is refused" "$DRE" push files "$S" --parent astream
check "  ... saying why" err_has "is a stream snapshot"
expect_rc 3 "--parent that does not exist" "$DRE" push files "$S" --parent nosuch
expect_rc 2 "--parent with --force-read" "$DRE" push files "$S" --parent files --force-read
expect_rc 2 "--force-read on a stream" "$DRE" push s --force-read </etc/hostname

# exclusion
printf 'cache\n# a comment\n\n*.tmp\n' >"$T/excludes"
mkdir -p "$S/cache" "$S/conf/keep"
printf 'c\n' >"$S/cache/c"
printf 't\n' >"$S/conf/a.tmp"
printf 'k\n' >"$S/conf/keep/b.tmp"
expect_rc 0 "--exclude and --exclude-file" "$DRE" push ex "$S" --exclude-file "$T/excludes" --exclude "m[12].bin" \
	--exclude "!keep/*.tmp"
expect_rc 0 "  ... ls" "$DRE" ls ex
# (cache itself is recorded: a later '!' pattern without a leading '/' could take back something inside it)
check "  ... leaves out what is in cache/, *.tmp and m1, m2" sh -c "! grep -Eq 'cache/c|a\.tmp|m1\.bin|m2\.bin' '$T/cmd.out'"
check "  ... keeps what '!' took back and the rest" sh -c "grep -q 'keep/b.tmp' '$T/cmd.out' && grep -q m3.bin '$T/cmd.out'"
expect_rc 2 "a malformed pattern" "$DRE" push ex "$S" --exclude "[abc"
check "  ... is named" err_has "\[abc"
expect_rc 2 "a missing exclude file" "$DRE" push ex "$S" --exclude-file "$T/nosuch"

# --one-file-system (a tmpfs mounted inside the tree; root only)
if [ "$(id -u)" -eq 0 ] && mkdir "$T/fs" && mkdir "$T/fs/mnt" && mount -t tmpfs -o size=1m dre-e2e "$T/fs/mnt"; then
	printf 'other\n' >"$T/fs/mnt/inside"
	printf 'here\n' >"$T/fs/here"
	expect_rc 0 "--one-file-system" "$DRE" push fs "$T/fs" -x
	"$DRE" ls fs >"$T/ls.out"
	check "  ... records the mount point, not what is in it" sh -c "grep -q 'fs/mnt\$' '$T/ls.out' &&
		grep -q 'fs/here' '$T/ls.out' && ! grep -q inside '$T/ls.out'"
	expect_rc 0 "without it" "$DRE" push fs "$T/fs"
	check "  ... the mounted file is there" sh -c "'$DRE' ls fs | grep -q inside"
	umount "$T/fs/mnt"
fi

# FIFOs and sockets: skipped with a note
mkfifo "$S/conf/fifo"
expect_rc 0 "a FIFO is skipped" "$DRE" push files "$S"
check "  ... with a note" err_has "fifo is a FIFO or socket: not backed up"
rm "$S/conf/fifo"

# an unreadable file and directory, pushed by a user who cannot read them
if [ "$(id -u)" -eq 0 ]; then
	U=$T/user
	mkdir -p "$U/locked"
	printf 'ok\n' >"$U/ok"
	printf 'secret\n' >"$U/secret"
	printf 'x\n' >"$U/locked/x"
	chmod 000 "$U/secret" "$U/locked"
	chmod 755 "$T"
	chmod 644 "$DRE_PASSWORD_FILE"
	if ! on_s3; then chmod -R a+rwX "$DRE_REPOSITORY"; fi
	expect_rc 9 "a user who cannot read two entries: exit 9" setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME="$T" "$DRE" --no-cache push user "$U"
	check "  ... each named with its reason" sh -c "grep -q 'cannot open $U/secret: Permission denied' '$T/cmd.err' &&
		grep -q 'cannot open directory $U/locked: Permission denied' '$T/cmd.err'"
	check "  ... and the count" err_has "2 entries could not be read whole"
	expect_rc 0 "  ... the snapshot is recorded" "$DRE" snapshots user --json
	check "  ... marked incomplete" test "$(json "d[-1]['meta']['incomplete']" <"$T/cmd.out")" = 2
	expect_rc 0 "  ... and restores what could be read" "$DRE" restore user --target "$T/r5"
	check "  ... (ok, and the directory)" sh -c "cmp -s '$U/ok' '$T/r5$U/ok' && [ -d '$T/r5$U/locked' ]"
fi

# a read error in the middle of a file (injected: engine/testhook.h) that spans several pipeline buffers
mkdir -p "$T/big"
seq 1 300000 >"$T/big/a"
head -c 20000000 /dev/urandom >"$T/big/b"
seq 7 300000 >"$T/big/c"
expect_rc 9 "a read error in the middle of a file" env DRE_TEST_FAIL_AT=push-read:3 "$DRE" push big "$T/big"
check "  ... names it" err_has "cannot read $T/big/b: Input/output error"
expect_rc 0 "  ... the others restore" "$DRE" restore big --target "$T/r6"
check "  ... byte for byte, without it" sh -c "cmp -s '$T/big/a' '$T/r6$T/big/a' && cmp -s '$T/big/c' '$T/r6$T/big/c' &&
	[ ! -e '$T/r6$T/big/b' ]"
expect_rc 0 "  ... and check --read-data is clean" "$DRE" check --read-data

# a file that changes while it is read, and one that vanishes before it is reached (the push pauses after its
# first read of b)
mkdir "$T/pause"
DRE_TEST_PAUSE=$T/pause DRE_TEST_PAUSE_AT=push-reading "$DRE" push big "$T/big" --force-read >"$T/live.out" 2>"$T/live.err" &
pid=$!
for _ in $(seq 1200); do [ -e "$T/pause/push-reading.reached" ] && break; sleep 0.1; done
printf 'appended\n' >>"$T/big/a"
rm "$T/big/c"
touch "$T/pause/push-reading.go"
wait "$pid"
check "a file changed while read and one vanished: exit 9" test $? = 9
check "  ... the changed one is kept as read" grep -q "$T/big/a changed while it was read: kept as read" "$T/live.err"
check "  ... the vanished one is named" grep -q "$T/big/c vanished before it was read: left out" "$T/live.err"

# streams: empty ones, tags and host
expect_rc 1 "an empty stream is refused" "$DRE" push nothing </dev/null
check "  ... saying so" err_has "gave no data (0 bytes): no snapshot recorded"
expect_rc 1 "  ... from a command too" "$DRE" push nothing -- true
"$DRE" snapshots --json >"$T/all.json"
check "  ... (no snapshot named nothing)" test "$(json "len([s for s in d if s['name']=='nothing'])" <"$T/all.json")" = 0
expect_rc 0 "--allow-empty records it" "$DRE" push nothing --allow-empty </dev/null
expect_rc 2 "--allow-empty is for streams" "$DRE" push files "$S" --allow-empty
expect_rc 0 "--tag and --host" "$DRE" push tagged --tag daily,db --tag eu --host db7 </etc/hostname
"$DRE" snapshots --json >"$T/all.json"
check "  ... are recorded" test "$(json "[(s['host'], s['tags']) for s in d if s['name']=='tagged']" <"$T/all.json")" = \
	"[('db7', ['daily', 'db', 'eu'])]"
expect_rc 2 "a tag with a control character" "$DRE" push tagged --tag "$(printf 'a\tb')" </etc/hostname
expect_rc 2 "an empty --tag" "$DRE" push tagged --tag , </etc/hostname
finish
