#!/bin/bash
# stores: local s3
# check --read-data-subset: a random share of the packs or one of n slices by pack ID; the slices 1/n..n/n read
# every pack exactly once; a damaged pack is named with the snapshots that need it; list blobs are counted apart
# from chunks; bad subsets are usage errors.
. "$(dirname "$0")/lib.bash"

"$DRE" init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null
R=$T/repo
packs_now() { on_s3 || ls "$R"/packs/*/* | sort; }
for s in a b c; do
	head -c 3M /dev/urandom >"$T/$s"
	packs_now >"$T/before"
	"$DRE" push $s <"$T/$s" >/dev/null
	# the packs this push wrote, newest first (local only)
	on_s3 || ls -t $(packs_now | comm -13 "$T/before" -) >"$T/packs_$s"
done
snap_b=$("$DRE" snapshots --json | json "[s for s in d if s['name']=='b'][0]['id']")
chunks_pushed=$("$DRE" snapshots --json | json "sum(s['chunks_new'] for s in d)")

# jfield FIELD: one field of the last expect_rc's JSON report
jfield() { json "d['$1']" <"$T/cmd.out"; }

expect_rc 0 "check: clean" "$DRE" check --json
packs=$(jfield packs)
check "  ... several packs to slice ($packs)" test "$packs" -ge 8
check "  ... chunks counted without list blobs" test "$(jfield chunks)" -eq "$chunks_pushed"
check "  ... list blobs counted on their own" test "$(jfield lists)" -gt 0
expect_rc 0 "check --read-data: clean" "$DRE" check --read-data --json
check "  ... reads every pack" test "$(jfield packs_read)" -eq "$packs"
check "  ... and still counts chunks without list blobs" test "$(jfield chunks)" -eq "$chunks_pushed"

# --- slices ---
n=4
total=0
for k in $(seq 1 $n); do
	expect_rc 0 "check --read-data-subset $k/$n: clean" "$DRE" check --read-data-subset $k/$n --json
	got=$(jfield packs_read)
	total=$((total + got))
	check "  ... the report names the subset" test "$(jfield read_data_subset)" = "$k/$n"
	expect_rc 0 "  ... again" "$DRE" check --read-data-subset $k/$n --json
	check "  ... reads the same packs the second time ($got)" test "$(jfield packs_read)" -eq "$got"
done
check "slices 1/$n..$n/$n read every pack exactly once ($total of $packs)" test "$total" -eq "$packs"
expect_rc 0 "check --read-data-subset 1/1 reads everything" "$DRE" check --read-data-subset 1/1 --json
check "  ... $packs packs" test "$(jfield packs_read)" -eq "$packs"
expect_rc 0 "check --read-data-subset 10%" "$DRE" check --read-data-subset 10% --json
want=$((packs / 10 > 0 ? packs / 10 : 1))
check "  ... reads 10% of the packs, at least one ($want)" test "$(jfield packs_read)" -eq "$want"
expect_rc 0 "check --read-data-subset 0.1% reads at least one pack" "$DRE" check --read-data-subset 0.1% --json
check "  ... one" test "$(jfield packs_read)" -eq 1
expect_rc 0 "check --read-data-subset 100%" "$DRE" check --read-data-subset 100%
check "  ... says what it read" grep -q "read $packs packs (100%" "$T/cmd.out"

# --- bad subsets: usage errors ---
for bad in 0/7 8/7 1/0 0% 101% abc 7 % /3 3/ 1.5/3 -5% 10.% 2x% 5/x; do
	expect_rc 2 "--read-data-subset '$bad' is a usage error" "$DRE" check --read-data-subset "$bad"
	check "  ... saying what is wrong" err_has "read-data-subset"
done
expect_rc 2 "--read-data with --read-data-subset is a usage error" "$DRE" check --read-data --read-data-subset 1/2
expect_rc 2 "--read-data-subset without a value is a usage error" "$DRE" check --read-data-subset

# --- a damaged pack (local: its bytes are flipped in place) ---
if on_s3; then
	finish
fi
# slice_of PACKFILE: which of the $n slices reads it (the rule `dre help check` gives: the first 4 bytes of the
# pack ID as a big-endian number, in n equal ranges)
slice_of() { local id; id=$(basename "$1"); echo $(((0x${id:0:8} * n >> 32) + 1)); }

data_b=$(sed -n 2p "$T/packs_b") # the newest is b's list blobs (format-spec.md §10.2), the next its data
list_b=$(sed -n 1p "$T/packs_b")
for what in data list; do
	p=$([ $what = data ] && echo "$data_b" || echo "$list_b")
	id=$(basename "$p")
	cp -a "$p" "$T/saved"
	flip "$p" 1000
	bad=$(slice_of "$p")
	expect_rc 5 "$what pack of b flipped: slice $bad/$n reports it" "$DRE" check --read-data-subset $bad/$n
	check "  ... naming the pack" err_has "corrupt pack $id"
	check "  ... and the snapshot that needs it" err_has "pack $id holds data of 1 snapshot: ${snap_b:0:8} (b)"
	for k in $(seq 1 $n); do
		[ "$k" = "$bad" ] && continue
		if [ $what = data ]; then
			expect_rc 0 "  ... slice $k/$n does not read it: clean" "$DRE" check --read-data-subset $k/$n
		else # the structure check reads every list blob, whatever the slice
			expect_rc 5 "  ... slice $k/$n finds it too: the structure check reads b's lists" \
				"$DRE" check --read-data-subset $k/$n
			check "  ... naming the snapshot" err_has "snapshot ${snap_b:0:8} (b)"
		fi
	done
	expect_rc 5 "  ... 100% finds it" "$DRE" check --read-data-subset 100%
	check "  ... naming the pack and the snapshot" err_has "pack $id holds data of 1 snapshot: ${snap_b:0:8} (b)"
	expect_rc 5 "  ... --read-data finds it" "$DRE" check --read-data
	check "  ... naming the pack and the snapshot" err_has "pack $id holds data of 1 snapshot: ${snap_b:0:8} (b)"
	chmod u+w "$p" 2>/dev/null
	cp -a "$T/saved" "$p"
done

# a pack of a that c shares (c pushes a's data again): both are named
"$DRE" push c2 <"$T/a" >/dev/null
snap_a=$("$DRE" snapshots --json | json "[s for s in d if s['name']=='a'][0]['id']")
snap_c2=$("$DRE" snapshots --json | json "[s for s in d if s['name']=='c2'][0]['id']")
p=$(sed -n 2p "$T/packs_a")
id=$(basename "$p")
cp -a "$p" "$T/saved"
flip "$p" 1000
expect_rc 5 "a data pack shared by a and c2: check --read-data-subset $(slice_of "$p")/$n reports it" \
	"$DRE" check --read-data-subset "$(slice_of "$p")/$n"
check "  ... naming both snapshots" err_has "pack $id holds data of 2 snapshots: ${snap_a:0:8} (a), ${snap_c2:0:8} (c2)"
cp -a "$T/saved" "$p"
# a missing pack is named with its snapshots by the structure check alone
mv "$p" "$T/saved"
expect_rc 5 "a missing pack: check reports it" "$DRE" check
check "  ... naming both snapshots" err_has "pack $id holds data of 2 snapshots: ${snap_a:0:8} (a), ${snap_c2:0:8} (c2)"
mv "$T/saved" "$p"
expect_rc 0 "repaired: check --read-data is clean" "$DRE" check --read-data
finish
