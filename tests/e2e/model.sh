#!/bin/bash
# SPIN checks tests/model/prune.pml, the model of the deletion protocol (format-spec.md §16.3): exhaustively, every
# interleaving and crash of two pushes and a prune (and of a push and two prunes under delete locks), asserting in
# every state that no committed snapshot names a chunk that is gone (SAFE) and that no index object names a deleted
# pack no plan names (INDEX_OK). Each configuration is compiled with -DSAFETY -DCOLLAPSE (COLLAPSE only compresses
# the stored states: the search stays exhaustive). The protocol as §16.3 specifies it must finish without hitting
# the depth limit, reach every statement of the push and prune processes (the model is not vacuous), and report
# "errors: 0". The stale-lock configurations (the residual risks of §16.4) and the mutants of the protocol (each
# takes out or reorders one step the argument rests on) must each violate the property named, with the trail in
# the log (spin -t). Needs spin (tests/install-deps), not dre.
set -u
# The model does not depend on how dre is built: the sanitizer build's run of the suite does not check it again.
case ${DRE:-} in
*/build-asan/*)
	echo "ok - the model was checked in the run of the plain build (it does not depend on the build)"
	exit 0
	;;
esac
src=${DRE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
model=$src/tests/model/prune.pml
work=$(mktemp -d "${TMPDIR:-/tmp}/model.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
failed=0
ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1"
	failed=1
}

if ! command -v spin >/dev/null 2>&1; then
	not_ok "spin is not installed (Debian's spin; tests/install-deps installs it)"
	exit 1
fi
CC=${CC:-cc}

# replay DIR DEFINES...: the counterexample of DIR's pan (its model's printf lines up to the violation) to
# DIR/trail, indented; prints the property it violates
replay() {
	local dir=$1
	shift
	(cd "$dir" && spin -t "$@" prune.pml) | grep -v '^[[:space:]]*$' | sed -n '1,/violated/p' | sed 's/^ */    | /' >"$dir/trail"
	sed -n 's/^    | \([A-Z_]*\) violated.*/\1/p' "$dir/trail" | head -1
}

# shortest DIR SECONDS: searches breadth-first for the shortest counterexample, within SECONDS; true when found
shortest() {
	local dir=$1 secs=$2
	(cd "$dir" && "$CC" -O1 -DSAFETY -DBFS -DCOLLAPSE -DMEMLIM=1024 -o pan.bfs pan.c 2>/dev/null &&
		timeout "$secs" ./pan.bfs -w22 >bfs.out 2>&1) && grep -q 'errors: [1-9]' "$dir/bfs.out"
}

# verify NAME WANT DEFINES...: compiles and runs pan (depth-first) for one configuration. WANT "pass": the search
# completes with no error and reaches every statement of Push and Prune; WANT SAFE or INDEX_OK: it finds a
# counterexample that violates that property.
verify() {
	local name=$1 want=$2 dir=$work/$((++n)) errors states secs what got
	shift 2
	mkdir "$dir" && cp "$model" "$dir/prune.pml" || exit 2
	if ! (cd "$dir" && spin -a "$@" prune.pml >spin.out 2>&1 && "$CC" -O1 -DSAFETY -DCOLLAPSE -DMEMLIM=1024 -o pan pan.c 2>cc.out); then
		not_ok "$name (spin -a $* or cc failed)"
		cat "$dir/spin.out" "$dir/cc.out" 2>/dev/null | head -20 | sed 's/^/    /'
		return
	fi
	SECONDS=0
	(cd "$dir" && ./pan -m100000 -w24 >pan.out 2>&1)
	secs=$SECONDS
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.out")
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$dir/pan.out")
	what="$name [$*: $states states, ${secs}s]"
	echo "    pan $*: errors: ${errors:-?}, $states states stored, ${secs}s" >&2
	if [ -z "$errors" ] || grep -q -e 'max search depth too small' -e 'out of memory' "$dir/pan.out"; then
		not_ok "$what (pan did not complete)"
		tail -20 "$dir/pan.out" | sed 's/^/    /'
	elif [ "$want" = pass ]; then
		if [ "$errors" != 0 ]; then
			shortest "$dir" 30 && what="$what (shortest counterexample below)"
			not_ok "$what: $(replay "$dir" "$@") violated"
			cat "$dir/trail"
		elif ! awk '/^unreached in proctype (Push|Prune)/ { getline; if ($0 !~ /^\t\(0 of /) bad = 1 } END { exit bad }' "$dir/pan.out"; then
			not_ok "$what (statements never reached: the model is partly vacuous)"
			sed -n '/^unreached in proctype/,$p' "$dir/pan.out" | sed 's/^/    /'
		else
			ok "$what"
		fi
	elif [ "$errors" = 0 ]; then
		not_ok "$what (expected $want to be violated, found no violation)"
	else
		got=$(replay "$dir" "$@")
		if [ "$got" = "$want" ]; then
			ok "$what: $got violated"
		else
			not_ok "$what: expected $want to be violated, the counterexample violates ${got:-?}"
		fi
		cat "$dir/trail"
	fi
}
n=0

# The protocol as §16.3 specifies it (R4 counts a new location only in a pack its listing has: -DR4_LISTED).
# Where §16.3 is silent the model does what engine/lifecycle/prune.c does.
P=(-DRESTART -DR4_LISTED)
verify "§16.3: two pushes, a prune (killed and run again), forget, crashes" pass "${P[@]}"
verify "§16.3: a push, two prunes with delete locks (each killed and run again), forget, crashes" pass "${P[@]}" -DPRUNES2

# The residual risks of §16.4, when locks may look stale while their holders are only paused. A write lock taken
# for stale lets the prune delete a running push's fresh pack as an orphan, which the push then names in its
# index object: INDEX_OK fails, committed snapshots stay whole (R4 trusts only listed packs).
verify "stale write locks: an index object names a deleted orphan (§16.4)" INDEX_OK "${P[@]}" -DSTALE
verify "stale write locks: committed snapshots stay whole" pass "${P[@]}" -DSTALE -DONLY_SAFE
# A prune paused past its R5 lock check while another takes its delete lock for stale, adopts and deletes its
# plan, keeping a pack that a snapshot committed meanwhile relies on; the first then deletes it (§16.4).
verify "stale delete lock: a committed snapshot loses a chunk (§16.4)" SAFE "${P[@]}" -DPRUNES2 -DSTALE_DLOCK -DONLY_SAFE

# Mutants: each step the argument rests on, taken out or reordered, must be missed.
verify "mutant: no W4 check" SAFE "${P[@]}" -DNO_W4 -DONLY_SAFE
verify "mutant: W4 lists prune/ only, not packs/ (a whole prune between W1 and W4 goes unseen)" SAFE "${P[@]}" -DNO_W4_PACKS -DONLY_SAFE
verify "mutant: W4 lists packs/ before prune/" SAFE "${P[@]}" -DW4_PACKS_FIRST -DONLY_SAFE
verify "mutant: no R4 rescan of index/ and snapshots/" SAFE "${P[@]}" -DNO_RESCAN -DONLY_SAFE
verify "mutant: W1 does not exclude planned packs" SAFE "${P[@]}" -DNO_W1_EXCL -DONLY_SAFE
verify "mutant: orphans deleted whatever the write locks" INDEX_OK "${P[@]}" -DNO_ORPHAN_LOCK
verify "mutant: R1 lists locks/ before packs/" INDEX_OK "${P[@]}" -DR1_LOCKS_FIRST
verify "mutant: the adopted plans' packs deleted unless R4 keeps them" SAFE "${P[@]}" -DADOPT_ALL -DONLY_SAFE
verify "mutant: R1 marks a referenced chunk in a pack the listing lacks, and goes on" SAFE "${P[@]}" -DPRUNES2 -DR1_NOSTOP -DONLY_SAFE
verify "mutant: two prunes without delete locks" INDEX_OK "${P[@]}" -DPRUNES2 -DNO_DLOCK
verify "mutant: R4 trusts a new index object's location in a pack it did not list (stale write locks)" SAFE -DRESTART -DSTALE -DONLY_SAFE

exit "$failed"
