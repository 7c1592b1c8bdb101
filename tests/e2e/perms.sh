#!/bin/bash
# Who can read what dre writes on this machine:
#   a. a new local repository is private whatever the umask: every directory 0700, every object 0600 (config,
#      keys, packs, indexes, snapshots, and the lock objects while a command holds them); another user cannot
#      read the key objects;
#   b. the local index cache is private too (0700 directories, 0600 file);
#   c. a repository made by an older dre (config 0644, directories 0755) keeps those modes for what is added,
#      so the other users it served (archive_command as postgres) keep working; one shared with a group on
#      purpose (chmod -R g+rX: config 0640) stays readable by the group;
#   d. restore gives files and directories the modes they were backed up with, not the repository's;
#   e. the metrics file is 0644 (node_exporter reads it; it holds no secret).
. "$(dirname "$0")/lib.bash"

repo=$T/private
export DRE_REPOSITORY=$repo

# modes DIR TYPE: the distinct modes (octal) of everything of TYPE (f or d) under DIR, the top included
modes() { find "$1" -type "$2" -printf '%m\n' | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# a. a new repository, made under a permissive umask
mkdir -p "$T/data/sub"
head -c 300000 /dev/urandom >"$T/data/sub/noise"
echo "some text" >"$T/data/text"
chmod 0644 "$T/data/text" "$T/data/sub/noise"
chmod 0755 "$T/data/sub"
expect_rc 0 "a: init under umask 000" sh -c "umask 000 && exec \"\$0\" init" "$DRE"
expect_rc 0 "a: push under umask 000" sh -c "umask 000 && exec \"\$0\" push files \"\$1\"" "$DRE" "$T/data"
printf 'another password\n' >"$T/pw2"
expect_rc 0 "a: key add" env DRE_NEW_PASSWORD_FILE="$T/pw2" "$DRE" key add
check "a: the repository directory is 0700" test "$(stat -c %a "$repo")" = 700
check "a: every directory in it is 0700 ($(modes "$repo" d))" test "$(modes "$repo" d)" = 700
check "a: every object in it is 0600 ($(modes "$repo" f))" test "$(modes "$repo" f)" = 600
check "a: there are key, pack, index and snapshot objects" \
	test -n "$(ls "$repo/keys")" -a -n "$(find "$repo" -path '*pack*' -type f)" -a -n "$(ls "$repo/snapshots")"

# a lock object, seen while a push holds it (stopped at a test point)
P=$T/pause
mkdir -p "$P"
DRE_TEST_PAUSE=$P DRE_TEST_PAUSE_AT=push-before-snapshot "$DRE" push held "$T/data/text" >/dev/null 2>"$T/held.err" &
held=$!
for ((i = 0; i < 600; i++)); do [ -e "$P/push-before-snapshot.reached" ] && break; sleep 0.1; done
locks=$(find "$repo" -path '*lock*' -type f -printf '%m\n' | sort -u | tr '\n' ' ')
check "a: the lock object of a running push is 0600 (${locks:-none found})" test "$locks" = "600 "
touch "$P/push-before-snapshot.go"
check "a: the push that held the lock finishes" wait "$held"

if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	key=$(find "$repo/keys" -type f | head -1)
	check "a: another user cannot read a key object" sh -c "! runuser -u nobody -- cat '$key' >/dev/null 2>&1"
	check "a: ... nor list the repository" sh -c "! runuser -u nobody -- ls '$repo' >/dev/null 2>&1"
fi

# b. the index cache (XDG_CACHE_HOME is set by tests/run; make sure of it)
export XDG_CACHE_HOME=$T/cache
expect_rc 0 "b: a push writes the index cache" "$DRE" push files2 "$T/data"
cache=$XDG_CACHE_HOME/dre
check "b: the cache directories are 0700 ($(modes "$cache" d))" test "$(modes "$cache" d)" = 700
check "b: the cache file is 0600 ($(modes "$cache" f))" test "$(modes "$cache" f)" = 600

# c. a repository of an older dre: what it made was 0644/0755 under the usual umask
old=$T/old
cp -a "$repo" "$old"
find "$old" -type d -exec chmod 0755 {} +
find "$old" -type f -exec chmod 0644 {} +
head -c 200000 /dev/urandom >"$T/more"
expect_rc 0 "c: push into a repository made by an older dre (0644 objects)" "$DRE" -r "$old" push more "$T/more"
check "c: ... its directories stay 0755 ($(modes "$old" d))" test "$(modes "$old" d)" = 755
check "c: ... and its objects 0644, new ones included ($(modes "$old" f))" test "$(modes "$old" f)" = 644
check "c: ... new objects were written" test "$(find "$old" -type f -newer "$T/more" | wc -l)" -gt 0
shared=$T/shared
cp -a "$repo" "$shared"
chmod -R g+rX "$shared"
expect_rc 0 "c: push into a repository shared with its group (chmod -R g+rX)" "$DRE" -r "$shared" push more "$T/more"
check "c: ... its directories are 0750 ($(modes "$shared" d))" test "$(modes "$shared" d)" = 750
check "c: ... and its objects 0640, new ones included ($(modes "$shared" f))" test "$(modes "$shared" f)" = 640
expect_rc 0 "c: check of the shared repository" "$DRE" -r "$shared" check --read-data

# d. restore keeps the backed-up modes
expect_rc 0 "d: restore" "$DRE" restore files --target "$T/out"
check "d: a 0644 file comes back 0644" test "$(stat -c %a "$T/out$T/data/text")" = 644
check "d: a 0755 directory comes back 0755" test "$(stat -c %a "$T/out$T/data/sub")" = 755

# e. the metrics file: read by node_exporter as another user
expect_rc 0 "e: push with --metrics under umask 077" sh -c "umask 077 && exec \"\$0\" --metrics \"\$1\" push m \"\$2\"" \
	"$DRE" "$T/dre.prom" "$T/data/text"
check "e: the metrics file is 0644" test "$(stat -c %a "$T/dre.prom")" = 644
finish
