#!/bin/bash
# Store faults (issue 15): push (stream and files), restore, check, wal-push, wal-fetch, forget, prune and copy run
# again and again under DRE_TEST_STORE_FAULTS (store/store.h: EIO, ENOSPC, short writes and reads, fsync
# failures inside the local driver, latency) at 1%, 5% and 20% of store operations. Each command either succeeds
# or fails with a message that names the object and the cause, never crashing or tripping a sanitizer, and never
# calling an I/O fault damage (exit 5; only check's 5, "errors found", may come from one); wal-fetch of an
# archived segment never says "not in the archive" (exit 1) because of a fault. Afterwards, without faults:
# check --read-data passes on both repositories, every snapshot a push reported committed (and no forget
# removed) is there, every snapshot there restores byte for byte, every segment wal-push archived fetches byte
# for byte. With DRE_S3_ENDPOINT set (tests/run starts a gateway), the same loop on an S3 repository behind
# tests/s3/faultproxy.py at 5% and 20% of HTTP requests (503 SlowDown, 500, connection resets, cut answers).
# Then a real disk full: a repository on an 8 MiB tmpfs (the fault layer's ENOSPC where mounting is refused).
#
# DRE_FAULT_ROUNDS (default 5), DRE_FAULT_RATES (default "0.01 0.05 0.2"), DRE_FAULT_S3_ROUNDS (default 2) and
# DRE_FAULT_S3_RATES (default "0.05 0.2") size the run; `make faults-long` runs many more rounds. The log has a
# line per failed command and a summary per store ("# local, rates ...: N commands ...").
. "$(dirname "$0")/lib.bash"

ROUNDS=${DRE_FAULT_ROUNDS:-5}
RATES=${DRE_FAULT_RATES:-0.01 0.05 0.2}
S3_ROUNDS=${DRE_FAULT_S3_ROUNDS:-2}
STATS=$T/fault.stats
IN=$T/in # every input pushed, under the snapshot's name
mkdir -p "$IN" "$T/wal"
# generated keys: a repository opens in microseconds instead of an scrypt derivation per command
"$DRE" key generate "$T/key" >/dev/null 2>&1 && "$DRE" key generate "$T/pw2" >/dev/null 2>&1 || exit 1
export DRE_PASSWORD_FILE=$T/key
tdre() { DRE_PASSWORD_FILE=$T/pw2 "$DRE" -r "$TGT" "$@"; }

# ---- inputs ----
for k in 1 2 3; do "$GENDUMP" 1 "$k" >"$T/dump$k.sql"; done
mkdir -p "$T/tree/sub"
head -c 200000 /dev/urandom >"$T/tree/sub/noise.bin"
head -c 300000 "$T/dump1.sql" >"$T/tree/part.sql"
printf 'hello\n' >"$T/tree/hello.txt"

# mkseg SEGNO: a 1 MiB WAL segment of timeline 1 as PostgreSQL writes one, in $T/wal; prints its name
mkseg() {
	"$PY" - "$1" "$T/wal" <<'EOF'
import os, struct, sys
segno, d = int(sys.argv[1]), sys.argv[2]
SEG = 1 << 20
b = bytearray((b"INSERT INTO t VALUES (42, 'row');" * (SEG // 33 + 1))[:SEG])
b[0:40] = bytes(40)
struct.pack_into('<HHIQ', b, 0, 0xD110, 0x0006, 1, segno * SEG)
struct.pack_into('<QII', b, 24, 7312345678901234567, SEG, 8192)
b[8192 + 100:8192 + 164] = os.urandom(64)
name = '%08X%08X%08X' % (1, segno // 4096, segno % 4096)
open(os.path.join(d, name), 'wb').write(b)
print(name)
EOF
}

# ---- running a command under faults and judging what it did ----
seed=$((RANDOM * 32768 + RANDOM))
echo "# seeds from $seed"
FAULT_CAUSE='Input/output error|No space left on device'
commands=0 succeeded=0 failed_cmds=0 bad=0
declare -A op_ok op_fail

# faulty OP CMD...: CMD with the fault layer on at $rate; stdout in $T/f.out, stderr in
# $T/f.err, the exit status in rc. A failure must print a line "dre: ..." (check: "error: ...") with a cause
# matching $FAULT_CAUSE; nothing may crash or trip a sanitizer.
faulty() {
	local op=$1
	shift
	seed=$((seed + 1))
	DRE_TEST_STORE_FAULTS="seed=$seed,rate=$rate,latency-ms=1,stats=$STATS" "$@" >"$T/f.out" 2>"$T/f.err"
	rc=$?
	commands=$((commands + 1))
	local why=
	if grep -qE 'Sanitizer|runtime error|LeakSanitizer' "$T/f.err"; then
		why="a sanitizer report"
	elif [ "$rc" -ne 0 ] && [ "$op" = wal-fetch ] && [ "$rc" -ge 137 ]; then
		why="exit $rc (a signal)"
	elif [ "$rc" -ge 126 ] && [ "$op" != wal-fetch ]; then
		why="exit $rc (a signal)"
	elif [ "$rc" -ne 0 ] && ! grep -qE "^(dre|error): .*($FAULT_CAUSE)" "$T/f.err"; then
		why="exit $rc without a message naming the cause"
	elif [[ $op != check* ]] && { [ "$rc" -eq 5 ] || [ "$rc" -eq 133 ]; }; then
		why="exit $rc: an integrity problem, for a fault that damaged nothing" # check's 5 means "found errors"
	fi
	if [ -n "$why" ]; then
		bad=$((bad + 1))
		not_ok "$op under faults (seed $seed, rate $rate): $why"
		sed 's/^/    stderr: /' "$T/f.err" | head -20
	fi
	if [ "$rc" -eq 0 ]; then
		succeeded=$((succeeded + 1))
		op_ok[$op]=$((${op_ok[$op]:-0} + 1))
	else
		failed_cmds=$((failed_cmds + 1))
		op_fail[$op]=$((${op_fail[$op]:-0} + 1))
		echo "# $op (rate $rate) exit $rc: $(grep -m 1 -E '^(dre|error): ' "$T/f.err" | cut -c 1-240)"
	fi
	[ "$rc" -eq 0 ]
}

# the records the final verification reads: name|kind of every push that said it committed, names a forget
# was asked to remove (and whether it said it did), segments wal-push archived
: >"$T/committed"
: >"$T/forgot"
: >"$T/archived"
lost=0
wrong=0

# one_round TAG: every command once under faults (rate and repository as set by the caller)
one_round() {
	local tag=$1 name k
	k=$((RANDOM % 3 + 1))
	name=db-$tag
	{ cat "$T/dump$k.sql"; echo "-- $tag"; } >"$IN/$name"
	if faulty push "$DRE" --json push "$name" <"$IN/$name"; then
		echo "$name|stream|$(json "d['id']" <"$T/f.out")" >>"$T/committed"
	fi

	name=tree-$tag
	cp -a "$T/tree" "$IN/$name"
	echo "$tag" >"$IN/$name/tag"
	if faulty push-files "$DRE" --json push "$name" "$IN/$name"; then
		echo "$name|files|$(json "d['id']" <"$T/f.out")" >>"$T/committed"
	fi

	# restore a committed snapshot: success must mean the exact bytes
	local pick
	pick=$(shuf -n 1 "$T/committed" 2>/dev/null)
	if [ -n "$pick" ]; then
		local pname=${pick%%|*} pkind
		pkind=$(echo "$pick" | cut -d'|' -f2)
		if [ "$pkind" = stream ]; then
			if faulty restore "$DRE" restore "$pname" && ! cmp -s "$T/f.out" "$IN/$pname"; then
				wrong=$((wrong + 1))
				not_ok "restore of $pname under faults exited 0 with other bytes"
			fi
		else
			rm -rf "$T/rt"
			if faulty restore-files "$DRE" restore "$pname" --target "$T/rt" && ! diff -r "$IN/$pname" "$T/rt$IN/$pname" >/dev/null; then
				wrong=$((wrong + 1))
				not_ok "restore of $pname under faults exited 0 with other files"
			fi
		fi
	fi

	# WAL: archive a new segment, fetch an archived one
	local seg
	segno=$((segno + 1))
	seg=$(mkseg "$segno")
	faulty wal-push "$DRE" wal-push "$T/wal/$seg" && echo "$seg" >>"$T/archived"
	seg=$(shuf -n 1 "$T/archived" 2>/dev/null)
	if [ -n "$seg" ]; then
		rm -f "$T/seg.out"
		faulty wal-fetch "$DRE" wal-fetch "$seg" "$T/seg.out"
		if [ "$rc" -eq 1 ]; then
			lost=$((lost + 1))
			not_ok "wal-fetch of archived $seg under faults said it is not in the archive (exit 1)"
		elif [ "$rc" -eq 0 ] && ! cmp -s "$T/seg.out" "$T/wal/$seg"; then
			wrong=$((wrong + 1))
			not_ok "wal-fetch of $seg under faults exited 0 with other bytes"
		fi
	fi

	# check every round (with --read-data every other one); forget the oldest committed snapshot not yet
	# forgotten and prune in alternate rounds; copy every round
	if [ $((round % 2)) -eq 0 ]; then
		faulty check-read-data "$DRE" check --read-data
		faulty prune "$DRE" prune --grace 0
	else
		faulty check "$DRE" check
		local victim
		victim=$(awk -F'|' 'NR == FNR { gone[$1] = 1; next } !($1 in gone) { print; exit }' "$T/forgot" "$T/committed")
		if [ -n "$victim" ]; then
			faulty forget "$DRE" forget "${victim##*|}"
			echo "${victim%%|*}|$rc" >>"$T/forgot"
		fi
	fi
	faulty copy "$DRE" copy --to "$TGT" --to-password-file "$T/pw2"
}

# verify LABEL: without faults, the repository and the copy target are whole and nothing committed was lost
verify() {
	local label=$1
	expect_rc 0 "$label: check --read-data without faults passes" "$DRE" check --read-data
	expect_rc 0 "$label: the copy target's check --read-data passes" tdre check --read-data
	"$DRE" snapshots --json | json "'\n'.join(s['name'] + '|' + s['id'] for s in d)" >"$T/present"
	tdre snapshots --json | json "'\n'.join(s['name'] + '|' + s['id'] for s in d)" >"$T/tpresent"
	local missing=0 name
	while IFS='|' read -r name _ _; do
		if grep -q "^$name|0\$" "$T/forgot"; then
			if grep -q "^$name|" "$T/present"; then
				missing=$((missing + 1))
				echo "    forget said it removed $name, but it is still there"
			fi
		elif ! grep -q "^$name|" "$T/forgot" && ! grep -q "^$name|" "$T/present"; then
			missing=$((missing + 1))
			echo "    committed but missing: $name"
		fi
	done <"$T/committed"
	lost=$((lost + missing))
	check "$label: every committed snapshot no forget removed is there, every one forget removed is gone" test "$missing" = 0
	local bad_restore=0 n=0 store
	for store in src tgt; do
		while IFS='|' read -r name id; do
			[ -n "$name" ] || continue
			n=$((n + 1))
			rm -rf "$T/rt" "$T/r.out"
			if [ -d "$IN/$name" ]; then
				if [ $store = src ]; then "$DRE" restore "$id" --target "$T/rt"; else tdre restore "$id" --target "$T/rt"; fi >/dev/null 2>"$T/r.err" &&
					diff -r "$IN/$name" "$T/rt$IN/$name" >/dev/null
			else
				if [ $store = src ]; then "$DRE" restore "$id"; else tdre restore "$id"; fi >"$T/r.out" 2>"$T/r.err" &&
					cmp -s "$IN/$name" "$T/r.out"
			fi || {
				bad_restore=$((bad_restore + 1))
				echo "    $store snapshot $name ($id) does not restore to its input: $(head -c 300 "$T/r.err")"
			}
		done <"$([ $store = src ] && echo "$T/present" || echo "$T/tpresent")"
	done
	lost=$((lost + bad_restore))
	check "$label: all $n snapshots (source and copy) restore byte for byte" test "$bad_restore" = 0
	local bad_wal=0 seg
	while read -r seg; do
		"$DRE" wal-fetch "$seg" "$T/seg.out" 2>"$T/r.err" && cmp -s "$T/seg.out" "$T/wal/$seg" || {
			bad_wal=$((bad_wal + 1))
			echo "    archived segment $seg does not fetch: $(head -c 300 "$T/r.err")"
		}
	done <"$T/archived"
	lost=$((lost + bad_wal))
	check "$label: all $(wc -l <"$T/archived") archived segments fetch byte for byte" test "$bad_wal" = 0
}

# report LABEL: commands and faults of the run so far
report() {
	local ops faults
	ops=$("$PY" -c "import json,sys; print(sum(sum(json.loads(l)['ops'].values()) for l in open(sys.argv[1])))" "$STATS" 2>/dev/null)
	faults=$("$PY" -c "
import json, sys
t = {}
for l in open(sys.argv[1]):
    for k, v in json.loads(l)['faults'].items(): t[k] = t.get(k, 0) + v
print(sum(t.values()), ' '.join('%s %d' % kv for kv in sorted(t.items()) if kv[1]))" "$STATS" 2>/dev/null)
	echo "# $1: $commands commands ($succeeded succeeded, $failed_cmds failed), $ops store operations, faults injected: $faults; lost $lost, wrong $wrong"
	local op
	for op in "${!op_ok[@]}" "${!op_fail[@]}"; do echo "$op"; done | sort -u | while read -r op; do
		echo "#   $op: ${op_ok[$op]:-0} ok, ${op_fail[$op]:-0} failed"
	done
}

# ---- local repository ----
TGT=$T/target
expect_rc 0 "init a local repository (small packs: more objects, more faults)" \
	"$DRE" init --chunk-min 8K --chunk-avg 16K --chunk-max 64K --pack-size 1M
expect_rc 0 "init the copy target" tdre init
[ "$failed" = 0 ] || finish
expect_rc 1 "a bad DRE_TEST_STORE_FAULTS is refused" env DRE_TEST_STORE_FAULTS=rate=0.1,kinds=eio,bogus "$DRE" snapshots
check "... naming the variable and what is wrong in it" err_has 'DRE_TEST_STORE_FAULTS="rate=0.1,kinds=eio,bogus": unknown fault kind "bogus"'
expect_rc 1 "an I/O error reading the key objects is one (exit 1), not damage (5) or a wrong password (4)" \
	env DRE_TEST_STORE_FAULTS=rate=1,kinds=eio,ops=get,stat,match=keys/ "$DRE" snapshots
check "... and the message names the key object and the cause" \
	grep -qE '^dre: cannot (stat|read) object keys/[0-9a-f]+ .*: Input/output error$' "$T/cmd.err"
segno=16
round=0
for rate in $RATES; do
	for _ in $(seq "$ROUNDS"); do
		round=$((round + 1))
		one_round "l$round"
	done
	echo "# rate $rate done: $commands commands so far, $succeeded succeeded (${SECONDS}s)"
done
check "no command crashed, tripped a sanitizer or failed without naming the cause" test "$bad" = 0
check "no restore or wal-fetch under faults exited 0 with other bytes" test "$wrong" = 0
check "pushes got through under faults (some succeeded)" grep -q . "$T/committed"
verify "local, rates $RATES"
echo "# verified (${SECONDS}s)"
report "local, rates ${RATES// /\/} x $ROUNDS rounds"
check "nothing lost (local)" test "$lost" = 0

# ---- S3, through the fault proxy ----
if [ -n "${DRE_S3_ENDPOINT:-}" ]; then
	bucket=dre-faults-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	S3REPO=s3://$bucket/repo
	upstream=${DRE_S3_ENDPOINT#http://}
	start_proxy() { # start_proxy RATE SEED: faultproxy.py in front of the gateway; PROXY is its endpoint
		rm -f "$T/proxy.port"
		"$PY" "$DRE_SRC/tests/s3/faultproxy.py" --upstream "$upstream" --port-file "$T/proxy.port" \
			--stats "$T/proxy.stats.$1" --log "$T/proxy.log" --timeout 60 --rate "$1" --seed "$2" \
			--faults 503,500,reset,truncate,truncate-rst &
		proxy_pid=$!
		for _ in $(seq 1200); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
		PROXY=http://127.0.0.1:$(cat "$T/proxy.port")
	}
	stop_proxy() { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }
	export DRE_REPOSITORY=$S3REPO
	TGT=$T/target-s3
	: >"$T/committed"
	: >"$T/forgot"
	: >"$T/archived"
	: >"$STATS"
	commands=0 succeeded=0 failed_cmds=0 lost=0 wrong=0 bad=0
	op_ok=() op_fail=()
	expect_rc 0 "s3: init a repository on the gateway" "$DRE" init --chunk-min 8K --chunk-avg 16K --chunk-max 64K --pack-size 1M
	expect_rc 0 "s3: init a local copy target" tdre init
	# few retries, so that faults get through to dre instead of being absorbed by its backoff
	FAULT_CAUSE='gave up after [0-9]+ attempts|Input/output error|No space left on device'
	s3_requests=0 s3_faults=0
	for rate in ${DRE_FAULT_S3_RATES:-0.05 0.2}; do
		start_proxy "$rate" "$seed"
		for _ in $(seq "$S3_ROUNDS"); do
			round=$((round + 1))
			DRE_S3_ENDPOINT=$PROXY DRE_S3_RETRIES=2 one_round "s$round"
		done
		stop_proxy
		s3_requests=$((s3_requests + $(json "d['requests']" <"$T/proxy.stats.$rate")))
		s3_faults=$((s3_faults + $(json "d['faults']" <"$T/proxy.stats.$rate")))
		echo "# s3 rate $rate: proxy $(cat "$T/proxy.stats.$rate")"
	done
	check "s3: no command crashed, tripped a sanitizer or failed without naming the cause" test "$bad" = 0
	check "s3: no restore or wal-fetch under faults exited 0 with other bytes" test "$wrong" = 0
	verify "s3"
	report "s3 through the proxy ($s3_requests requests, $s3_faults HTTP faults), rates ${DRE_FAULT_S3_RATES:-0.05/0.2} x $S3_ROUNDS rounds"
	check "nothing lost (s3)" test "$lost" = 0
	export DRE_REPOSITORY=$T/repo
else
	echo "# S3 block skipped: DRE_S3_ENDPOINT is not set"
fi

# ---- disk full: a real small file system ----
echo "# disk full from ${SECONDS}s"
SMALL=$T/small
mkdir -p "$SMALL"
mounted=0
if mount -t tmpfs -o size=8m tmpfs "$SMALL" 2>"$T/mount.err"; then
	mounted=1
	trap 'umount "$SMALL" 2>/dev/null' EXIT
	trap 'exit 143' TERM INT # so that the EXIT trap unmounts it when the runner's timeout stops the script
else
	echo "# disk full: cannot mount a tmpfs ($(cat "$T/mount.err")); the fault layer's ENOSPC stands in"
fi
export DRE_REPOSITORY=$SMALL/repo
expect_rc 0 "disk full: init a repository on an 8 MiB file system$([ "$mounted" = 1 ] || echo ' (no: an ordinary directory)')" "$DRE" init
head -c 1000000 /dev/urandom >"$T/first.bin"
expect_rc 0 "disk full: a first push fits" "$DRE" push first "$T/first.bin"
head -c 2000000 /dev/zero >"$SMALL/ballast"
head -c 12000000 /dev/urandom >"$T/big.bin"
if [ "$mounted" = 1 ]; then
	expect_rc 1 "disk full: a push of more than fits fails" "$DRE" push big "$T/big.bin"
else
	expect_rc 1 "disk full (the fault layer's): a push whose pack does not fit fails" \
		env DRE_TEST_STORE_FAULTS="rate=1,kinds=enospc,ops=put,match=packs/" "$DRE" push big "$T/big.bin"
fi
check "disk full: the error names the object and says No space left on device" \
	grep -qE '^dre: .*(object|lock) [a-z0-9/]+ .*No space left on device' "$T/cmd.err"
check "disk full: no temporary file is left in the repository" test -z "$(find "$SMALL/repo" -name '.tmp.*')"
check "disk full: no snapshot named big was recorded" sh -c "! '$DRE' snapshots --json | grep -q '\"big\"'"
expect_rc 0 "disk full: check --read-data passes" "$DRE" check --read-data
rm -rf "$T/rt"
expect_rc 0 "disk full: the earlier snapshot restores" "$DRE" restore first --target "$T/rt"
check "disk full: ... byte for byte" cmp -s "$T/first.bin" "$T/rt$T/first.bin"
rm -f "$SMALL/ballast"
expect_rc 0 "disk full: prune frees what the failed push left" "$DRE" prune --grace 0
head -c 1500000 /dev/urandom >"$T/after.bin"
expect_rc 0 "disk full: after freeing space the next push succeeds" "$DRE" push after "$T/after.bin"
expect_rc 0 "disk full: ... and check --read-data passes" "$DRE" check --read-data
if [ "$mounted" = 1 ]; then
	umount "$SMALL"
	trap - EXIT
fi

echo "# done (${SECONDS}s)"
finish
