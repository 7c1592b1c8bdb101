#!/bin/bash
# Damaged objects: truncated and bit-flipped packs, index objects, snapshots and keys give a clear error naming
# the object, `dre check` reports them, and snapshots that do not depend on them still restore.
. "$(dirname "$0")/lib.bash"

R=$T/repo
"$DRE" init >/dev/null
head -c 5M /dev/urandom >"$T/a"
head -c 5M /dev/urandom >"$T/b"
"$DRE" push a <"$T/a" >/dev/null
"$DRE" push b <"$T/b" >/dev/null
# the objects that belong to snapshot b alone: its newest pack is the one of its list blobs (written after its
# data, format-spec.md §10.2), so damage there breaks b's node and chunk lists
snap_b=$("$DRE" snapshots --json | json "[s for s in d if s['name']=='b'][0]['id']")
newest() { ls -t "$R/$1" | head -1; }
pack_b=$(ls -t "$R"/packs/*/* | head -1)
data_b=$(ls -t "$R"/packs/*/* | sed -n 2p)
index_b=$R/index/$(newest index)

truncate_by() { truncate -s $(($(stat -c %s "$1") - $2)) "$1"; }
save() { cp -a "$1" "$T/saved"; }
put_back() { chmod u+w "$1" 2>/dev/null; cp -a "$T/saved" "$1"; }
restores_b() { "$DRE" restore b >"$T/b.out" 2>/dev/null && cmp -s "$T/b" "$T/b.out"; }
restores_a() { "$DRE" restore a >"$T/a.out" 2>/dev/null && cmp -s "$T/a" "$T/a.out"; }

# --- pack ---
for how in flip truncate; do
	save "$pack_b"
	if [ $how = flip ]; then flip "$pack_b" 1000; else truncate -s $(($(stat -c %s "$pack_b") / 2)) "$pack_b"; fi
	expect_rc 5 "$how pack: restore b fails as corrupt" "$DRE" restore b
	check "$how pack: error names the pack" err_has "pack $(basename "$pack_b" | cut -c1-16)"
	check "$how pack: snapshot a still restores" restores_a
	expect_rc 5 "$how pack: check --read-data reports it" "$DRE" check --read-data
	check "$how pack: check names the pack" err_has "$(basename "$pack_b" | cut -c1-16)"
	expect_rc 5 "$how list pack: check (structure only) reports it too: it reads every list" "$DRE" check
	check "$how list pack: ... naming the snapshot" err_has "snapshot ${snap_b:0:8}"
	put_back "$pack_b"
done
# b's data pack, flipped: the lists read fine, the chunk does not
save "$data_b"
flip "$data_b" 1000
expect_rc 5 "flip data pack: restore b fails as corrupt" "$DRE" restore b
check "flip data pack: error names the pack" err_has "pack $(basename "$data_b" | cut -c1-16)"
check "flip data pack: snapshot a still restores" restores_a
put_back "$data_b"
rm "$T/saved"
rm "$T/saved"
# losing only the padded tail of the header leaves every blob readable, but check --read-data still sees it
save "$pack_b"
truncate_by "$pack_b" 100
expect_rc 5 "pack missing its last 100 bytes: check --read-data reports it" "$DRE" check --read-data
put_back "$pack_b"
rm "$T/saved"
mv "$pack_b" "$T/saved"
expect_rc 5 "missing pack: restore fails" "$DRE" restore b
check "missing pack: error says missing" err_has "missing pack"
expect_rc 5 "missing pack: check reports it (structure only)" "$DRE" check
check "missing pack: check says missing" err_has "missing pack"
mv "$T/saved" "$pack_b"

# --- index ---
for how in flip truncate; do
	save "$index_b"
	if [ $how = flip ]; then flip "$index_b" 60; else truncate_by "$index_b" 7; fi
	# the index cache already holds what the object said, and the packs are whole: b still restores
	check "$how index: restore b from the index cache" restores_b
	expect_rc 5 "$how index: restore b --no-cache fails as corrupt" "$DRE" restore b --no-cache
	check "$how index: the index object is named" err_has "index/$(basename "$index_b" | cut -c1-16)"
	check "$how index: snapshot a still restores" restores_a
	expect_rc 5 "$how index: check reports it" "$DRE" check
	check "$how index: check names it" err_has "$(basename "$index_b" | cut -c1-16)"
	put_back "$index_b"
done

# --- snapshot ---
snapfile=$R/snapshots/$snap_b
for how in flip truncate; do
	save "$snapfile"
	if [ $how = flip ]; then flip "$snapfile" -20; else truncate_by "$snapfile" 30; fi
	expect_rc 5 "$how snapshot: restoring it by ID fails as corrupt" "$DRE" cat snapshot "$snap_b"
	check "$how snapshot: the snapshot object is named" err_has "snapshots/${snap_b:0:16}"
	check "$how snapshot: snapshot a still restores" restores_a
	expect_rc 5 "$how snapshot: check reports it" "$DRE" check
	put_back "$snapfile"
done

# --- key ---
key=$(ls "$R"/keys/ | head -1)
for how in flip truncate; do
	save "$R/keys/$key"
	if [ $how = flip ]; then flip "$R/keys/$key" 60; else truncate_by "$R/keys/$key" 10; fi
	expect_rc 5 "$how key: open fails as corrupt, not as a wrong password" "$DRE" snapshots
	check "$how key: the key object is named" err_has "keys/${key:0:16}"
	put_back "$R/keys/$key"
done
# with a second key, damage to one key object does not lock out the holder of the other
printf 'second password\n' >"$T/pw2"
expect_rc 0 "key add" env DRE_NEW_PASSWORD_FILE="$T/pw2" "$DRE" key add
second=$(grep -o 'keys/[0-9a-f]*' "$T/cmd.out" | head -1)
first=keys/$key
for pair in "$first:$T/pw2" "$second:$DRE_PASSWORD_FILE"; do
	k=$R/${pair%%:*}
	save "$k"
	flip "$k" 60
	if DRE_PASSWORD_FILE="${pair#*:}" "$DRE" restore a >"$T/a.out" 2>"$T/cmd.err" && cmp -s "$T/a" "$T/a.out"; then
		ok "damaged $(basename "$k" | cut -c1-8): the other key's password still opens the repository"
	else
		not_ok "damaged $(basename "$k" | cut -c1-8): the other key's password still opens the repository"
	fi
	put_back "$k"
done

# --- wrong password ---
printf 'wrong\n' >"$T/bad"
expect_rc 4 "wrong password exits 4" env DRE_PASSWORD_FILE="$T/bad" "$DRE" snapshots
check "wrong password is said" err_has "wrong password"
expect_rc 0 "after all that, check --read-data is clean" "$DRE" check --read-data

# --- a list blob shared by two snapshots ---
# c2 pushes c's data again under another name: a new node list, the same chunk list. check reads a shared
# subtree once, but a damaged one must still be reported for every snapshot that needs it.
head -c 3M /dev/urandom >"$T/c"
"$DRE" push c <"$T/c" >/dev/null
pack_c=$(ls -t "$R"/packs/*/* | head -1)
"$DRE" push c2 <"$T/c" >/dev/null
save "$pack_c"
flip "$pack_c" 20
expect_rc 5 "shared chunk list damaged: check reports it" "$DRE" check
check "  ... for c" err_has "($(printf c))"
check "  ... and for c2, which shares it" err_has "(c2)"
expect_rc 5 "  ... restore c2 fails as corrupt" "$DRE" restore c2
check "  ... snapshot a still restores" restores_a
put_back "$pack_c"
expect_rc 0 "repaired: check is clean" "$DRE" check
finish
