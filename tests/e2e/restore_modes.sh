#!/bin/bash
# Restores that do what the user means (issue 16 §4):
#   a. --from PATH restores the subtree at PATH inside the snapshot, its contents directly in the target;
#   b. --include PATTERN restores what matches, or lies below a directory that does, and the directories on the
#      way (with their attributes);
#   c. a target that holds something the restore would write is refused before anything is written; other
#      files in it are no conflict;
#   d. --overwrite never | if-changed | always, and --delete inside the restored directories only;
#   e. a directory where the snapshot has a file, and the reverse; a stream restored into a directory.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null
src=$T/srv/models
rel=${src#/} # the snapshot's path for it, as dre ls shows it
mkdir -p "$src/sub/deep" "$src/cache"
head -c 300000 /dev/urandom >"$src/weights.bin"
echo config >"$src/config.txt"
echo readme >"$src/sub/readme.txt"
echo deep >"$src/sub/deep/notes.txt"
echo tmp >"$src/cache/x.tmp"
ln -s config.txt "$src/current"
chmod 0750 "$src/sub"
touch -d '2026-01-02 03:04:05.123456789' "$src/sub"
expect_rc 0 "push the tree" "$DRE" push models "$src"

same_tree() { diff -r --no-dereference "$1" "$2" >/dev/null; }
files_under() { (cd "$1" && find . -type f | sort | tr '\n' ' '); }
# field NAME: a number from the --json summary of the last expect_rc
field() { json "d['$1']" <"$T/cmd.out"; }

# a. --from
expect_rc 0 "a: a whole restore puts the tree at TARGET/<its path>" "$DRE" restore models --target "$T/whole"
check "a:   ... byte for byte" same_tree "$src" "$T/whole/$rel"
expect_rc 0 "a: --from PATH puts its contents directly in the target" \
	"$DRE" restore models --from "$src" --target "$T/from"
check "a:   ... byte for byte, nothing of the path above it" same_tree "$src" "$T/from"
check "a:   ... with the modes and mtimes pushed" \
	test "$(stat -c '%a %Y' "$T/from/sub")" = "$(stat -c '%a %Y' "$src/sub")"
expect_rc 0 "a: --from without the leading / and with a trailing one" \
	"$DRE" restore models --from "$rel/sub/" --target "$T/from2"
check "a:   ... the subtree's contents" same_tree "$src/sub" "$T/from2"
expect_rc 0 "a: --from a file puts it in the target under its own name" \
	"$DRE" restore models --from "$src/config.txt" --target "$T/from3"
check "a:   ... that file alone" test "$(ls -A "$T/from3")" = config.txt
expect_rc 3 "a: --from a path the snapshot does not have: not found (3)" \
	"$DRE" restore models --from "$src/nope" --target "$T/from4"
check "a:   ... the error names it" err_has "has no path $src/nope"
check "a:   ... and nothing was made" test ! -e "$T/from4"

# b. --include
expect_rc 0 "b: --include '*.txt' restores what matches" "$DRE" restore models --include '*.txt' --target "$T/inc"
check "b:   ... those files and no other" \
	test "$(files_under "$T/inc/$rel")" = "./config.txt ./sub/deep/notes.txt ./sub/readme.txt "
check "b:   ... a directory on the way has the mode and mtime pushed" \
	test "$(stat -c '%a %Y' "$T/inc/$rel/sub")" = "$(stat -c '%a %Y' "$src/sub")"
expect_rc 0 "b: --include a directory (anchored) restores all below it, here with --from" \
	"$DRE" restore models --from "$src" --include "$src/sub" --target "$T/inc2"
check "b:   ... the directory whole, nothing beside it" \
	sh -c "diff -r '$src/sub' '$T/inc2/sub' >/dev/null && test \"\$(ls -A '$T/inc2')\" = sub"
expect_rc 0 "b: two --include, '**' among them" \
	"$DRE" restore models --from "$src" --include '**/deep/*' --include '/**/cache' --target "$T/inc3"
check "b:   ... both" test "$(files_under "$T/inc3")" = "./cache/x.tmp ./sub/deep/notes.txt "
expect_rc 3 "b: --include that matches nothing: not found (3)" \
	"$DRE" restore models --include '*.nothing' --target "$T/inc4"
check "b:   ... said so" err_has "matches --include"
expect_rc 2 "b: a malformed pattern is a usage error naming it" \
	"$DRE" restore models --include 'a[' --target "$T/inc4"
check "b:   ... named" err_has "a\["

# c. the default: refuse what would be written over, before writing anything
mkdir -p "$T/busy"
echo mine >"$T/busy/unrelated"
expect_rc 0 "c: a target holding only other files: the restore goes ahead" \
	"$DRE" restore models --from "$src" --target "$T/busy"
check "c:   ... and leaves them" grep -qx mine "$T/busy/unrelated"
echo "local edit" >"$T/busy/config.txt"
rm "$T/busy/sub/readme.txt"
expect_rc 1 "c: a target holding a file the restore would write: refused (1)" \
	"$DRE" restore models --from "$src" --target "$T/busy"
check "c:   ... naming the first such path and the options" \
	sh -c "grep -q 'busy/cache/x.tmp exists' '$T/cmd.err' && grep -q 'overwrite always' '$T/cmd.err'"
check "c:   ... before writing anything" \
	sh -c "grep -qx 'local edit' '$T/busy/config.txt' && test ! -e '$T/busy/sub/readme.txt'"

# d. --overwrite and --delete
expect_rc 0 "d: --overwrite never keeps what is there" \
	"$DRE" restore models --from "$src" --target "$T/busy" --overwrite never
check "d:   ... the edited file stays" grep -qx "local edit" "$T/busy/config.txt"
check "d:   ... the missing one is restored" cmp -s "$src/sub/readme.txt" "$T/busy/sub/readme.txt"
check "d:   ... each file kept is named" err_has "kept the existing $T/busy/config.txt"

expect_rc 0 "d: a fresh copy to work on" "$DRE" restore models --from "$src" --target "$T/ic"
printf CONFIG >"$T/ic/config.txt.new" && echo >>"$T/ic/config.txt.new"
mv "$T/ic/config.txt.new" "$T/ic/config.txt"
touch -r "$src/config.txt" "$T/ic/config.txt" # same size, same mtime, other content
touch -d yesterday "$T/ic/sub/deep/notes.txt" # same content, other mtime
rm "$T/ic/sub/readme.txt"
expect_rc 0 "d: --overwrite if-changed" \
	"$DRE" --json restore models --from "$src" --target "$T/ic" --overwrite if-changed
check "d:   ... keeps the 3 unchanged (weights.bin, cache/x.tmp, current) and says so" test "$(field kept)" = 3
check "d:   ... writes the 3 others" test "$(field files)" = 3
check "d:   ... a change that kept size and mtime is found by the content" cmp -s "$src/config.txt" "$T/ic/config.txt"
check "d:   ... and a changed mtime put back" \
	test "$(stat -c %Y "$T/ic/sub/deep/notes.txt")" = "$(stat -c %Y "$src/sub/deep/notes.txt")"

echo edit >"$T/ic/config.txt"
echo extra >"$T/ic/extra.txt"
expect_rc 0 "d: --overwrite always" "$DRE" restore models --from "$src" --target "$T/ic" --overwrite always
check "d:   ... replaces" cmp -s "$src/config.txt" "$T/ic/config.txt"
check "d:   ... and without --delete leaves what the snapshot does not have" test -f "$T/ic/extra.txt"
mkdir -p "$T/ic/sub/stale/dir"
touch "$T/ic/sub/stale/dir/f"
ln -s "$T/whole" "$T/ic/sub/whole-link"
expect_rc 0 "d: --delete with --overwrite if-changed" \
	"$DRE" --json restore models --from "$src" --target "$T/ic" --overwrite if-changed --delete
check "d:   ... removes what the snapshot does not have (5 entries)" test "$(field deleted)" = 5
check "d:   ... the target is the snapshot's copy" same_tree "$src" "$T/ic"
check "d:   ... a symlink removed, not followed" same_tree "$src" "$T/whole/$rel"

echo keep >"$T/whole/outside.txt"
echo stray >"$T/whole/$rel/stray"
echo stray >"$T/whole/$rel/sub/deep/stray"
expect_rc 0 "d: --delete with --include 'sub'" \
	"$DRE" restore models --target "$T/whole" --include sub --overwrite always --delete
check "d:   ... removes inside the directory that matched" test ! -e "$T/whole/$rel/sub/deep/stray"
check "d:   ... not in a directory on the way to it" test -f "$T/whole/$rel/stray"
check "d:   ... nor above the snapshot's directories" test -f "$T/whole/outside.txt"
expect_rc 2 "d: --delete alone is a usage error" "$DRE" restore models --target "$T/ic" --delete
check "d:   ... that says what it needs" err_has "overwrite always or --overwrite if-changed"
expect_rc 2 "d: --delete with --overwrite never too" \
	"$DRE" restore models --target "$T/ic" --delete --overwrite never
expect_rc 2 "d: an unknown --overwrite policy" "$DRE" restore models --target "$T/ic" --overwrite sometimes

# e. what stands where the snapshot has something of another type
rm "$T/ic/config.txt" && mkdir "$T/ic/config.txt"
expect_rc 0 "e: --overwrite always replaces an empty directory with the file" \
	"$DRE" restore models --from "$src" --target "$T/ic" --overwrite always
check "e:   ... the file" cmp -s "$src/config.txt" "$T/ic/config.txt"
rm "$T/ic/current" && mkdir "$T/ic/current" && touch "$T/ic/current/f"
expect_rc 1 "e: ... but not a directory that holds something" \
	"$DRE" restore models --from "$src" --target "$T/ic" --overwrite always
check "e:   ... said so" err_has "is not empty"
rm -r "$T/ic/current" "$T/ic/sub" && echo file >"$T/ic/sub"
expect_rc 0 "e: --overwrite never keeps a file where the snapshot has a directory" \
	"$DRE" restore models --from "$src" --target "$T/ic" --overwrite never
check "e:   ... and restores nothing below it" sh -c "test -f '$T/ic/sub' && test -L '$T/ic/current'"
check "e:   ... said so" err_has "which is not a directory"
expect_rc 0 "e: --overwrite if-changed replaces it with the directory" \
	"$DRE" restore models --from "$src" --target "$T/ic" --overwrite if-changed
check "e:   ... the snapshot's copy again" same_tree "$src" "$T/ic"

echo damaged >"$src/config.txt"
expect_rc 0 "e: back where it was: --from PATH --target PATH --overwrite if-changed" \
	"$DRE" restore models --from "$src" --target "$src" --overwrite if-changed
check "e:   ... the damaged file is put back" grep -qx config "$src/config.txt"
check "e:   ... the rest kept (6 files and symlinks but that one)" grep -q "5 unchanged (kept)" "$T/cmd.err"

printf 'stream data\n' | "$DRE" push notes >/dev/null 2>&1
expect_rc 0 "e: a stream into a directory" "$DRE" restore notes --target "$T/st"
expect_rc 1 "e: ... again: refused, the file is there" "$DRE" restore notes --target "$T/st"
expect_rc 0 "e: ... with --overwrite always" "$DRE" restore notes --target "$T/st" --overwrite always
check "e:   ... the stream" grep -qx 'stream data' "$T/st/notes"
expect_rc 2 "e: --from without --target is a usage error" sh -c "'$DRE' restore notes --from x >/dev/null"
finish
