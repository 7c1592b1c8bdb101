#!/bin/bash
# stores: local s3
# Keys: add, list (ID, creation time, KDF, the key in use), remove (refusing the key in use and the last one,
# unknown and ambiguous IDs), passwd (new key, checked, then the old one removed), and no lock left behind.
. "$(dirname "$0")/lib.bash"

R=$T/repo
"$DRE" init >/dev/null
head -c 200K /dev/urandom >"$T/a"
"$DRE" push a <"$T/a" >/dev/null
printf 'second password\n' >"$T/pw2"
printf 'third password\n' >"$T/pw3"
opens() { DRE_PASSWORD_FILE=$1 "$DRE" restore a >"$T/a.out" 2>/dev/null && cmp -s "$T/a" "$T/a.out"; }
# keys_json [PASSWORD_FILE]: the key list as JSON in $T/keys.json
keys_json() { DRE_PASSWORD_FILE=${1:-$DRE_PASSWORD_FILE} "$DRE" key list --json >"$T/keys.json"; }
kj() { json "$1" <"$T/keys.json"; }
no_locks() { "$DRE" locks >"$T/locks.out" 2>&1 && grep -q "^no locks" "$T/locks.out"; }
no_locks_with() { DRE_PASSWORD_FILE=$1 no_locks; }

keys_json
k1=$(kj "[k['id'] for k in d if k['in_use']][0]")
check "one key after init, in use" test "$(kj "len(d)")" = 1

expect_rc 0 "key add" env DRE_NEW_PASSWORD_FILE="$T/pw2" "$DRE" key add
k2=$(grep -o 'keys/[0-9a-f]*' "$T/cmd.out" | head -1)
k2=${k2#keys/}
check "  ... the new password opens the repository" opens "$T/pw2"
"$DRE" key generate "$T/gen" 2>/dev/null
expect_rc 0 "key add with a generated key" env DRE_NEW_PASSWORD_FILE="$T/gen" "$DRE" key add
kg=$(grep -o 'keys/[0-9a-f]*' "$T/cmd.out" | head -1)
kg=${kg#keys/}

expect_rc 0 "key list" "$DRE" key list
check "  ... has a header" grep -q "ID .*CREATED .*KDF" "$T/cmd.out"
check "  ... marks the key in use" grep -q "^\* ${k1:0:8} .*scrypt.*(in use)" "$T/cmd.out"
check "  ... shows the added key, not in use" grep -q "^  ${k2:0:8}  [0-9]\{4\}-[0-9][0-9]-[0-9][0-9] .*scrypt N=2^15 r=8 p=1$" "$T/cmd.out"
check "  ... shows the generated key's KDF" grep -q "^  ${kg:0:8} .*generated key (HKDF)" "$T/cmd.out"
keys_json
check "key list --json: three keys" test "$(kj "len(d)")" = 3
check "  ... full IDs, creation times, KDFs" test "$(kj "sorted((k['id'], k['kdf']) for k in d if k['created'].endswith('Z'))")" = \
	"$("$PY" -c "print(sorted([('$k1', 'scrypt'), ('$k2', 'scrypt'), ('$kg', 'generated')]))")"
check "  ... one in use" test "$(kj "[k['id'] for k in d if k['in_use']]")" = "['$k1']"
keys_json "$T/pw2"
check "  ... with the second password, the second key is the one in use" test "$(kj "[k['id'] for k in d if k['in_use']]")" = "['$k2']"

# --- remove: refusals and bad IDs ---
expect_rc 1 "key remove of the key in use is refused" "$DRE" key remove "${k1:0:8}"
check "  ... saying why" err_has "key in use"
check "  ... the key is still there" opens "$DRE_PASSWORD_FILE"
expect_rc 3 "key remove of an unknown ID" "$DRE" key remove 00000000000000000000
check "  ... says no such key" err_has "no key 00000000000000000000"
expect_rc 1 "key remove of something that is not an ID" "$DRE" key remove xyz1
check "  ... says so" err_has "not a key ID"
expect_rc 1 "key remove of a 3-digit prefix" "$DRE" key remove "${k2:0:3}"
expect_rc 2 "key remove without an ID is a usage error" "$DRE" key remove
expect_rc 2 "key remove with two IDs is a usage error" "$DRE" key remove "${k2:0:8}" "${kg:0:8}"
if ! on_s3; then
	# an ambiguous prefix: a copy of key 2 under an ID that shares its first 8 digits (it opens nothing: the
	# AAD binds each key object to its own name)
	twin=${k2:0:8}$(printf '%056d' 0)
	cp "$R/keys/$k2" "$R/keys/$twin"
	expect_rc 1 "key remove of an ambiguous prefix is refused" "$DRE" key remove "${k2:0:8}"
	check "  ... saying it is ambiguous" err_has "ambiguous"
	expect_rc 0 "  ... the full ID removes just that one" "$DRE" key remove "$twin"
	check "  ... which is gone" test ! -e "$R/keys/$twin"
	check "  ... and the original is still there" test -e "$R/keys/$k2"
fi

# --- remove ---
expect_rc 0 "key remove the second key by prefix" "$DRE" key remove "${k2:0:8}"
check "  ... names it" grep -q "removed key keys/$k2" "$T/cmd.out"
expect_rc 4 "  ... its password no longer opens the repository" env DRE_PASSWORD_FILE="$T/pw2" "$DRE" snapshots
check "  ... the first still does" opens "$DRE_PASSWORD_FILE"
check "  ... and the generated key" opens "$T/gen"
check "  ... no lock left behind" no_locks
expect_rc 0 "key remove by full ID, with the generated key's password" \
	env DRE_PASSWORD_FILE="$T/gen" "$DRE" key remove "keys/$k1"
expect_rc 4 "  ... the first password no longer opens it" "$DRE" snapshots
expect_rc 1 "the last key: remove is refused" env DRE_PASSWORD_FILE="$T/gen" "$DRE" key remove "$kg"
check "  ... saying it is the last" err_has "last usable key"
check "  ... and it still opens" opens "$T/gen"

# --- passwd ---
export DRE_PASSWORD_FILE=$T/gen
expect_rc 0 "key add the second password again" env DRE_NEW_PASSWORD_FILE="$T/pw2" "$DRE" key add
expect_rc 0 "key passwd" env DRE_NEW_PASSWORD_FILE="$T/pw3" "$DRE" key passwd
check "  ... says what it added and removed" grep -q "added key keys/[0-9a-f]*, removed key keys/$kg" "$T/cmd.out"
k3=$(grep -o 'added key keys/[0-9a-f]*' "$T/cmd.out" | sed 's|.*keys/||')
expect_rc 4 "  ... the old password fails" "$DRE" snapshots
check "  ... the new one works" opens "$T/pw3"
check "  ... the other key is untouched" opens "$T/pw2"
keys_json "$T/pw3"
check "  ... two keys" test "$(kj "len(d)")" = 2
check "  ... the new one in use" test "$(kj "[k['id'] for k in d if k['in_use']]")" = "['$k3']"
check "  ... the old one gone" test "$(kj "[k['id'] for k in d if k['id'] == '$kg']")" = "[]"
check "  ... no lock left behind" no_locks_with "$T/pw3"
export DRE_PASSWORD_FILE=$T/pw3
expect_rc 2 "key passwd without a new password source is a usage error" env -u DRE_NEW_PASSWORD_FILE \
	"$DRE" key passwd </dev/null
expect_rc 3 "key passwd with a missing new password file fails" env DRE_NEW_PASSWORD_FILE="$T/nope" \
	"$DRE" key passwd
check "  ... and changes nothing" opens "$T/pw3"
keys_json
check "  ... still two keys" test "$(kj "len(d)")" = 2
finish
