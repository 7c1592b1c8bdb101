#!/usr/bin/env bash
# The push/prune race with real concurrent processes and no pause points: in each round a snapshot is pushed,
# then forgotten and pruned while two pushes of the same data (which deduplicate against the packs the prune
# is deleting) run at once, started at random offsets. Every push either commits or fails with exit 7; at the end
# check --read-data accepts the repository and every committed snapshot restores byte for byte.
# DRE_TEST_ROUNDS sets the number of rounds (default 6 on a local repository, 3 on S3; long runs use more).
# stores: local s3
. "$(dirname "$0")/lib.bash"

rounds=${DRE_TEST_ROUNDS:-6}
on_s3 && rounds=${DRE_TEST_ROUNDS:-3}
"$DRE" init --pack-size 1MiB --chunk-min 4KiB --chunk-avg 16KiB --chunk-max 64KiB >/dev/null || exit 1
for i in 1 2 3; do head -c 1500000 /dev/urandom >"$T/pool$i"; done

snap_ids() { "$DRE" snapshots --json | json "' '.join(s['id'] for s in d if s['name']=='$1')"; }
# sleep a random 0..0.4 s
jitter() { sleep "0.$((RANDOM % 5))"; }

committed=0
busy=0
other=0
: >"$T/committed"
for r in $(seq "$rounds"); do
	f=$T/pool$(((r % 3) + 1))
	"$DRE" push old <"$f" >/dev/null || exit 1
	ids=$(snap_ids old)
	(
		jitter
		# shellcheck disable=SC2086
		"$DRE" forget $ids >/dev/null && "$DRE" prune --grace 0 >/dev/null
	) 2>"$T/prune$r.err" &
	ppid=$!
	pids=()
	for k in 1 2; do
		(jitter; "$DRE" push "new$r-$k" <"$f" >/dev/null 2>"$T/push$r-$k.err") &
		pids+=($!)
	done
	for k in 1 2; do
		wait "${pids[$((k - 1))]}"
		rc=$?
		case $rc in
		0) committed=$((committed + 1)); echo "new$r-$k $f" >>"$T/committed" ;;
		7) busy=$((busy + 1)) ;;
		*) other=$((other + 1)); echo "round $r push $k: exit $rc: $(cat "$T/push$r-$k.err")" ;;
		esac
	done
	wait "$ppid"
	rc=$?
	# forget and prune may find the other's delete lock (exit 7): not an error, the next round prunes
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 7 ]; then
		other=$((other + 1))
		echo "round $r forget+prune: exit $rc: $(cat "$T/prune$r.err")"
	fi
done
echo "# $rounds rounds: $committed pushes committed, $busy refused as busy"
check "every push committed or was refused as busy ($committed committed, $busy busy)" test "$other" -eq 0
check "some pushes committed" test "$committed" -gt 0
expect_rc 0 "a final prune" "$DRE" prune --grace 0
expect_rc 0 "check --read-data accepts the repository" "$DRE" check --read-data
bad=0
while read -r name file; do
	rm -rf "$T/out"
	if ! "$DRE" restore "$name" --target "$T/out" >/dev/null 2>&1 || ! cmp -s "$file" "$T/out/$name"; then
		bad=$((bad + 1))
		echo "committed snapshot $name does not restore"
	fi
done <"$T/committed"
check "every committed snapshot restores byte for byte ($committed)" test "$bad" -eq 0

finish
