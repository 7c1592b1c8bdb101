#!/bin/bash
# Hostile repositories, made with plain byte operations by someone who has the store but not the key: objects
# swapped between IDs (a pack, an index object, a snapshot under another's key), snapshots of other repositories
# (another password; the same password and another repository ID) copied in, an index object that a prune
# superseded put back, a truncated pack and index object, zero-length objects. Each is detected by restore, ls,
# check and check --read-data with exit 5 and a message naming the object; snapshots lists what it can read and
# names the rest; prune refuses and deletes nothing (or, for the replayed index, repairs it); copy commits no
# snapshot built from damaged data. Objects crafted with the key (bombs, lying lengths, loops) are in
# tests/unit/test_hostile.c.
. "$(dirname "$0")/lib.bash"

R=$T/repo
# generated keys open a repository without scrypt: this test runs dre some 150 times
rm "$DRE_PASSWORD_FILE" && "$DRE" key generate "$DRE_PASSWORD_FILE" >/dev/null
"$DRE" init >/dev/null
head -c 3M /dev/urandom >"$T/a"
head -c 3M /dev/urandom >"$T/b"
"$DRE" push a <"$T/a" >/dev/null
"$DRE" push b <"$T/b" >/dev/null
sid() { "$DRE" snapshots --json | json "[s for s in d if s['name']=='$1'][0]['id']"; }
snap_a=$(sid a)
snap_b=$(sid b)
# each push writes its data pack, then its list pack, then one index object (format-spec.md §10.2)
mapfile -t packs_by_age < <(ls -tr "$R"/packs/*/*)
data_a=${packs_by_age[0]} list_a=${packs_by_age[1]} data_b=${packs_by_age[2]} list_b=${packs_by_age[3]}
mapfile -t index_by_age < <(ls -tr "$R"/index/*)
index_a=${index_by_age[0]} index_b=${index_by_age[1]}
short() { basename "$1" | cut -c1-16; }

# every object of the repository with its checksum: prune must leave this unchanged when it refuses
inventory() { (cd "$R" && find packs index snapshots keys config -type f | sort | xargs sha256sum); }
restores() { "$DRE" restore "$1" --no-cache >"$T/$1.out" 2>/dev/null && cmp -s "$T/$1" "$T/$1.out"; }
# saves file $1, then puts it back (over whatever replaced it) with restore_file
save_file() { cp -a "$1" "$T/saved.$(basename "$1")"; }
restore_file() { cp -a "$T/saved.$(basename "$1")" "$1" && rm "$T/saved.$(basename "$1")"; }
# prune_refuses LABEL: prune exits 5, says why, and deletes or writes nothing
prune_refuses() {
	inventory >"$T/before"
	expect_rc 5 "$1: prune refuses" "$DRE" prune --grace 0 --max-unused 0%
	check "$1: prune deleted and wrote nothing" cmp -s "$T/before" <(inventory)
}
# prune_keeps LABEL: prune, which reads no data pack it keeps, may succeed, but deletes and writes nothing
prune_keeps() {
	inventory >"$T/before"
	"$DRE" prune --grace 0 >"$T/cmd.out" 2>"$T/cmd.err"
	check "$1: prune deleted and wrote nothing" cmp -s "$T/before" <(inventory)
}
# copy_refuses LABEL WHAT: copying snapshot WHAT fails with exit 5 and the target holds no snapshot
TGT=$T/target
"$DRE" key generate "$T/pw2" >/dev/null
DRE_PASSWORD_FILE=$T/pw2 "$DRE" -r "$TGT" init >/dev/null
copy_refuses() {
	expect_rc 5 "$1: copy of $2 fails as corrupt" "$DRE" copy --to "$TGT" --to-password-file "$T/pw2" "$2"
	check "$1: the target holds no snapshot" test -z "$(ls "$TGT/snapshots" 2>/dev/null)"
}
# after each case, the repository is whole again
whole() { expect_rc 0 "$1: repaired, check --read-data is clean" "$DRE" check --read-data; }

# --- a pack stored under another pack's ID ---
# b's list pack holds a's list pack's bytes: its header and blobs authenticate only under a's pack subkey
save_file "$list_b"
cp "$list_a" "$list_b"
expect_rc 5 "swapped pack: restore b fails as corrupt" "$DRE" restore b --no-cache
check "swapped pack: the error names the pack" err_has "$(short "$list_b")"
check "swapped pack: a still restores" restores a
expect_rc 5 "swapped pack: ls b fails as corrupt" "$DRE" ls b
check "swapped pack: ls names the pack" err_has "$(short "$list_b")"
expect_rc 0 "swapped pack: snapshots still lists both (headers only)" "$DRE" snapshots
expect_rc 5 "swapped pack: check reports it (it reads every list)" "$DRE" check
check "swapped pack: check names snapshot b" err_has "snapshot ${snap_b:0:8}"
expect_rc 5 "swapped pack: check --read-data reports it" "$DRE" check --read-data
check "swapped pack: check --read-data names the pack" err_has "corrupt pack $(basename "$list_b" | cut -c1-16)"
prune_refuses "swapped pack"
copy_refuses "swapped pack" b
restore_file "$list_b"
# the data pack: lists read, chunks do not
save_file "$data_b"
cp "$data_a" "$data_b"
expect_rc 5 "swapped data pack: restore b fails as corrupt" "$DRE" restore b --no-cache
check "swapped data pack: the error names the pack" err_has "corrupt pack $(basename "$data_b")"
expect_rc 5 "swapped data pack: check --read-data reports it" "$DRE" check --read-data
check "swapped data pack: ... and the snapshot that needs it" err_has "${snap_b:0:8}"
copy_refuses "swapped data pack" b
restore_file "$data_b"
whole "swapped pack"

# --- an index object under another index object's ID ---
save_file "$index_b"
cp "$index_a" "$index_b"
expect_rc 5 "swapped index: restore b fails as corrupt" "$DRE" restore b --no-cache
check "swapped index: the error says the chunk is not in the index" err_has "not in the index"
check "swapped index: a still restores" restores a
expect_rc 5 "swapped index: check reports it" "$DRE" check
check "swapped index: check names the index object" err_has "index/$(short "$index_b")"
prune_refuses "swapped index"
check "swapped index: prune names the index object" err_has "index/$(short "$index_b")"
restore_file "$index_b"
whole "swapped index"

# --- a snapshot under another snapshot's ID ---
save_file "$R/snapshots/$snap_b"
cp "$R/snapshots/$snap_a" "$R/snapshots/$snap_b"
expect_rc 5 "swapped snapshot: cat snapshot b fails as corrupt" "$DRE" cat snapshot "$snap_b"
check "swapped snapshot: the error names the snapshot object" err_has "snapshots/${snap_b:0:16}"
expect_rc 5 "swapped snapshot: restore by its ID fails as corrupt" "$DRE" restore "${snap_b:0:12}"
expect_rc 5 "swapped snapshot: ls by its ID fails as corrupt" "$DRE" ls "${snap_b:0:12}"
expect_rc 5 "swapped snapshot: snapshots lists a, names b's object, exits 5" "$DRE" snapshots
check "  ... a is listed" grep -q "${snap_a:0:8}" "$T/cmd.out"
check "  ... b's object is named" err_has "snapshots/${snap_b:0:16}"
check "swapped snapshot: a still restores" restores a
expect_rc 5 "swapped snapshot: check reports it" "$DRE" check
prune_refuses "swapped snapshot"
restore_file "$R/snapshots/$snap_b"
whole "swapped snapshot"

# --- snapshots of other repositories copied in ---
# O1: another password; O2: the same password, so another master key and repository ID
"$DRE" key generate "$T/pw3" >/dev/null
DRE_PASSWORD_FILE=$T/pw3 "$DRE" -r "$T/o1" init >/dev/null
DRE_PASSWORD_FILE=$T/pw3 "$DRE" -r "$T/o1" push a <"$T/a" >/dev/null
"$DRE" -r "$T/o2" init >/dev/null
"$DRE" -r "$T/o2" push a <"$T/a" >/dev/null
for other in o1 o2; do
	o=$T/$other
	os=$(ls "$o/snapshots")
	cp "$o/snapshots/$os" "$R/snapshots/$os"
	expect_rc 5 "$other's snapshot copied in: snapshots exits 5" "$DRE" snapshots
	check "  ... naming the foreign object" err_has "snapshots/${os:0:16}"
	check "  ... and listing ours" grep -q "${snap_b:0:8}" "$T/cmd.out"
	expect_rc 5 "$other's snapshot copied in: restore by its ID fails as corrupt" "$DRE" restore "${os:0:12}"
	expect_rc 5 "$other's snapshot copied in: ls by its ID fails as corrupt" "$DRE" ls "${os:0:12}"
	expect_rc 5 "$other's snapshot copied in: check reports it" "$DRE" check
	check "  ... naming it" err_has "snapshots/${os:0:16}"
	prune_refuses "$other's snapshot copied in"
	rm "$R/snapshots/$os"
	# the whole other repository's packs and index objects too: they name nothing we have and decrypt with nothing
	# we hold
	oi=$(ls "$o/index")
	cp "$o/index/$oi" "$R/index/$oi"
	expect_rc 5 "$other's index copied in: check reports it" "$DRE" check
	check "  ... naming it" err_has "index/${oi:0:16}"
	check "$other's index copied in: our snapshots still restore" restores b
	prune_refuses "$other's index copied in"
	rm "$R/index/$oi"
done
whole "foreign objects"

# --- truncated and zero-length objects ---
for how in truncated empty; do
	cut_to() { if [ "$how" = empty ]; then : >"$1"; else truncate -s $(($(stat -c %s "$1") / 2)) "$1"; fi; }
	save_file "$data_b"
	cut_to "$data_b"
	expect_rc 5 "$how pack: restore b fails as corrupt" "$DRE" restore b --no-cache
	check "$how pack: the error names the pack" err_has "$(short "$data_b")"
	expect_rc 5 "$how pack: check (structure) reports it" "$DRE" check
	check "$how pack: check says it is too short" err_has "too short"
	expect_rc 5 "$how pack: check --read-data reports it" "$DRE" check --read-data
	prune_keeps "$how pack"
	copy_refuses "$how pack" b
	restore_file "$data_b"
	save_file "$index_b"
	cut_to "$index_b"
	expect_rc 5 "$how index: restore b fails as corrupt" "$DRE" restore b --no-cache
	check "$how index: a still restores" restores a
	expect_rc 5 "$how index: check reports it" "$DRE" check
	check "$how index: check names it" err_has "index/$(short "$index_b")"
	prune_refuses "$how index"
	restore_file "$index_b"
	save_file "$R/snapshots/$snap_b"
	cut_to "$R/snapshots/$snap_b"
	expect_rc 5 "$how snapshot: restore by its ID fails as corrupt" "$DRE" restore "${snap_b:0:12}"
	check "$how snapshot: the error names it" err_has "snapshots/${snap_b:0:16}"
	expect_rc 5 "$how snapshot: snapshots exits 5" "$DRE" snapshots
	prune_refuses "$how snapshot"
	restore_file "$R/snapshots/$snap_b"
	key=$(ls "$R/keys" | head -1)
	save_file "$R/keys/$key"
	cut_to "$R/keys/$key"
	expect_rc 5 "$how key: open fails as corrupt, not as a wrong password" "$DRE" snapshots
	check "$how key: the key object is named" err_has "keys/${key:0:16}"
	restore_file "$R/keys/$key"
	save_file "$R/config"
	cut_to "$R/config"
	expect_rc 5 "$how config: open fails as corrupt" "$DRE" snapshots
	check "$how config: config is named" err_has "config"
	restore_file "$R/config"
done
whole "truncated objects"

# --- an index object that prune superseded, put back ---
# de holds d's data and e's in one pack; d, pushed after it, dedups against that pack. After forget de, prune
# repacks d's chunks into a new pack and drops de's index object. Putting that object back makes d's chunks
# indexed twice, once in a pack that is gone.
head -c 3M /dev/urandom >"$T/d"
head -c 3M /dev/urandom >"$T/e"
cat "$T/d" "$T/e" >"$T/de"
"$DRE" push de <"$T/de" >/dev/null
"$DRE" push d <"$T/d" >/dev/null
(cd "$R/index" && ls) >"$T/index.before"
cp -a "$R/index" "$T/index.saved"
expect_rc 0 "replay: forget de" "$DRE" forget "$(sid de)"
expect_rc 0 "replay: prune repacks de's pack and drops its index object" "$DRE" prune --grace 0 --max-unused 5% --json
check "replay: prune repacked a pack" test "$(json "d['packs_repacked']" <"$T/cmd.out")" -ge 1
dropped=$(cd "$R/index" && ls | comm -13 - "$T/index.before")
check "replay: prune dropped an index object" test -n "$dropped"
for old in $dropped; do
	cp "$T/index.saved/$old" "$R/index/$old"
done
expect_rc 5 "replayed index: check reports the packs it names as missing" "$DRE" check
check "replayed index: ... saying missing pack" err_has "missing pack"
# the index keeps one location per chunk: whichever object was read first gives it, so d may restore or fail
# naming the missing pack (exit 5); prune reads the index again preferring the packs that exist
d_rc=0
"$DRE" restore d --no-cache >"$T/d.out" 2>"$T/cmd.err" || d_rc=$?
check "replayed index: d restores, or fails naming a missing pack" \
	eval '{ [ $d_rc = 0 ] && cmp -s "$T/d" "$T/d.out"; } || { [ $d_rc = 5 ] && err_has "missing pack"; }'
check "replayed index: a still restores" restores a
expect_rc 0 "replayed index: prune drops the stale entries again" "$DRE" prune --grace 0
expect_rc 0 "replayed index: check --read-data is clean after that prune" "$DRE" check --read-data
check "replayed index: d restores" restores d
finish
