#!/usr/bin/env bash
# prune: frees what forget left unreferenced (dead packs deleted, mixed packs repacked, orphans of killed pushes
# removed), every kept snapshot still restores byte for byte and check accepts the repository; bad options are
# refused; a prune killed at each of its phases leaves a repository check accepts, and the next prune finishes.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null || exit 1

head -c 3000000 /dev/urandom >"$T/a"
head -c 3000000 /dev/urandom >"$T/b"
head -c 1500000 "$T/a" >"$T/c"
head -c 500000 /dev/urandom >>"$T/c"

# packs: the number of pack objects, from prune --dry-run --json (works on either store)
packs() { "$DRE" prune --dry-run --json | json "d['packs']"; }
snap_id() { "$DRE" snapshots --json | json "[s['id'] for s in d if s['name']=='$1'][-1]"; }
# out_true EXPR: the last expect_rc's JSON output makes EXPR (over d) true
out_true() { [ "$(json "$1" <"$T/cmd.out")" = True ]; }
restores() { # NAME FILE
	rm -rf "$T/out" && "$DRE" restore "$1" --target "$T/out" >/dev/null 2>"$T/restore.err" && cmp -s "$2" "$T/out/$1"
}

"$DRE" push x <"$T/a" >/dev/null && "$DRE" push y <"$T/b" >/dev/null && "$DRE" push z <"$T/c" >/dev/null ||
	exit 1

expect_rc 0 "prune with nothing to free" "$DRE" prune --grace 0 --json
check "  ... deletes nothing" out_true 'd["packs_deleted"] == 0 and d["packs_dead"] == 0'

before=$(packs)
expect_rc 0 "forget y" "$DRE" forget "$(snap_id y)"
expect_rc 0 "prune --dry-run after forget" "$DRE" prune --dry-run
check "  ... says what it would delete" grep -q "would delete: [1-9]" "$T/cmd.out"
check "  ... and deletes nothing" test "$(packs)" = "$before"

expect_rc 0 "prune after forget" "$DRE" prune --grace 0 --json
check "  ... deleted packs" out_true 'd["packs_deleted"] >= 2'
check "  ... freed about what y stored (2.5 MiB or more)" \
	out_true 'd["bytes_freed"] >= 2500000'
check "  ... fewer packs" test "$(packs)" -lt "$before"
expect_rc 0 "check after prune" "$DRE" check --read-data
check "x restores byte for byte" restores x "$T/a"
check "z restores byte for byte" restores z "$T/c"

# x forgotten: half of a's chunks are still z's, so packs of a mix both and are repacked
expect_rc 0 "forget x" "$DRE" forget "$(snap_id x)"
expect_rc 0 "prune repacks the packs z still half needs" "$DRE" prune --grace 0 --max-unused 5% --json
check "  ... repacked some" out_true 'd["packs_repacked"] >= 1 and d["packs_written"] >= 1'
expect_rc 0 "check --read-data after the repack" "$DRE" check --read-data
check "z restores byte for byte after the repack" restores z "$T/c"
expect_rc 0 "a second prune finds nothing to do" "$DRE" prune --grace 0 --json
check "  ... nothing" out_true 'd["packs_deleted"] + d["packs_repacked"] == 0'

# a push killed after writing its packs, before any index object names them: orphans
DRE_TEST_KILL_AT=push-before-index "$DRE" push orphan <"$T/b" >/dev/null 2>&1
expect_rc 0 "prune removes the orphans of a killed push" "$DRE" prune --grace 0 --json
check "  ... counted as orphans and deleted" \
	out_true 'd["packs_orphan"] >= 1 and d["packs_deleted"] >= 1'
expect_rc 0 "check after removing orphans" "$DRE" check
check "  ... reports no unreferenced pack" sh -c "! grep -qi 'unreferenced\|no index lists' '$T/cmd.out'"

# bad input
expect_rc 2 "--max-unused 150% is refused" "$DRE" prune --max-unused 150%
check "  ... saying why" err_has "max-unused"
expect_rc 2 "--max-unused abc is refused" "$DRE" prune --max-unused abc
expect_rc 2 "--grace 2x is refused" "$DRE" prune --grace 2x
check "  ... saying why" err_has "grace"
expect_rc 2 "an argument is refused" "$DRE" prune extra

# killed at each phase: check accepts the repository, every kept snapshot restores, the next prune finishes
# every phase on a local repository; on S3, where each step is slower, the phases where the store holds the
# most in between (a plan and no deletion; deletions and no index rewrite; half an index rewrite)
phases="prune-marked prune-repacked prune-planned prune-rescanned prune-deleting prune-deleted prune-reindexing
	prune-reindexed"
on_s3 && phases="prune-planned prune-deleted prune-reindexing"
n=0
for phase in $phases; do
	n=$((n + 1))
	# mix pushes k then u; keep pushes u alone: forgetting mix leaves its index object naming dead packs (k)
	# and live ones (u), so the index is rewritten, and the pack where k meets u is repacked
	head -c 1000000 /dev/urandom >"$T/k$n"
	head -c 1500000 /dev/urandom >"$T/keep$n"
	cat "$T/k$n" "$T/keep$n" >"$T/mix$n"
	"$DRE" push "mix$n" <"$T/mix$n" >/dev/null && "$DRE" push "keep$n" <"$T/keep$n" >/dev/null || exit 1
	"$DRE" forget "$(snap_id "mix$n")" >/dev/null || exit 1
	DRE_TEST_KILL_AT=$phase "$DRE" prune --grace 0 >/dev/null 2>&1
	rc=$?
	check "prune killed at $phase (exit $rc)" test "$rc" -eq 137
	expect_rc 0 "  ... check accepts the repository" "$DRE" check
	check "  ... z restores" restores z "$T/c"
	check "  ... keep$n restores" restores "keep$n" "$T/keep$n"
	expect_rc 0 "  ... the next prune finishes the job" "$DRE" prune --grace 0 --json
	expect_rc 0 "  ... and leaves no plan behind" "$DRE" prune --dry-run --json
	check "  ... (none adopted)" out_true 'd["plans_adopted"] == 0' 
	expect_rc 0 "  ... check --read-data after it" "$DRE" check --read-data
done
check "after all that, keep1 still restores" restores keep1 "$T/keep1"

finish
