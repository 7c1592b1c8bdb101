#!/usr/bin/env bash
# tests/torture/torture.sh — crash torture: dre is killed with SIGKILL again and again, and must lose nothing.
#
#   tests/torture/torture.sh --dre PATH [--kills N] [--seed N] [--verify-every N] [--dir DIR] [--s3]
#   (or TORTURE_KILLS, TORTURE_SEED, TORTURE_VERIFY_EVERY, TORTURE_DIR, TORTURE_S3=1 in the environment)
#
# On two temporary repositories (a source and a copy target) it loops over pushes of generated dumps (dre-gendump,
# beside PATH) and of a changing file tree, forget, prune, copy --wal and wal-push/wal-fetch of 16 MiB WAL segments.
# Every command is set up to be killed: two in three at a named point of the engine, chosen at random with a
# random arrival count (DRE_TEST_KILL_AT=<point>:<n>, engine/testhook.h, which logs the point it died at to
# DRE_TEST_KILL_LOG), the others after a random share of the time the command took last. A command that ends
# first, or never reaches its point, is checked like any other and not counted as a kill. After every kill the
# same command is run again, as a user or PostgreSQL's archive_command would, with no lock cleared by hand: it
# must succeed. Every --verify-every kills and at the end, both repositories must pass `check --read-data`, every
# snapshot a push reported as committed (exit 0) and no forget removed must still be listed (in the target: every
# one a successful copy saw), and every snapshot listed must restore byte for byte what was pushed under its name
# (those of killed pushes too); every WAL file archived must fetch byte for byte.
#
# It prints a table of kills by point and by command, and a last line
#   torture: kills=K survived=S next_failed=F verified=V lost=L corrupt=C check_failed=X seconds=T
# The exit status is 0 only when lost, corrupt, check_failed and next_failed (a command that failed, after a kill
# or not) are all 0.
# --s3 puts both repositories on the S3 gateway of DRE_S3_ENDPOINT (there pushes upload packs from threads of
# their own, so the upload-* points are reached too).
set -uo pipefail

dre=
kills=${TORTURE_KILLS:-1000}
seed=${TORTURE_SEED:-$(date +%s)}
verify_every=${TORTURE_VERIFY_EVERY:-25}
dir=${TORTURE_DIR:-}
use_s3=${TORTURE_S3:-0}
usage() {
	echo "usage: tests/torture/torture.sh --dre PATH [--kills N] [--seed N] [--verify-every N] [--dir DIR] [--s3]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--dre) [ $# -ge 2 ] || usage; dre=$2; shift 2 ;;
	--kills) [ $# -ge 2 ] || usage; kills=$2; shift 2 ;;
	--seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
	--verify-every) [ $# -ge 2 ] || usage; verify_every=$2; shift 2 ;;
	--dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
	--s3) use_s3=1; shift ;;
	*) usage ;;
	esac
done
[ -n "$dre" ] || dre=${DRE:-}
[ -n "$dre" ] && [ -x "$dre" ] || { echo "torture: --dre must name the dre binary" >&2; usage; }
for v in "$kills" "$seed" "$verify_every"; do
	case $v in '' | *[!0-9]*) echo "torture: --kills, --seed and --verify-every want whole numbers" >&2; exit 2 ;; esac
done
[ "$verify_every" -gt 0 ] || { echo "torture: --verify-every must be at least 1" >&2; exit 2; }
dre=$(cd "$(dirname "$dre")" && pwd)/$(basename "$dre")
gendump=$(dirname "$dre")/dre-gendump
[ -x "$gendump" ] || { echo "torture: $gendump is missing (make builds it beside dre)" >&2; exit 2; }
if [ "$use_s3" = 1 ] && [ -z "${DRE_S3_ENDPOINT:-}" ]; then
	echo "torture: --s3 needs DRE_S3_ENDPOINT and credentials (tests/s3/rgw start prints them)" >&2
	exit 2
fi

if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/dre-torture.XXXXXX") || exit 1
	trap 'rm -rf "$dir"' EXIT
fi
T=$dir
mkdir -p "$T/in" "$T/wal" "$T/out" "$T/tree" || exit 1
export XDG_CACHE_HOME=$T/cache
unset DRE_REPOSITORY DRE_PASSWORD DRE_PASSWORD_COMMAND DRE_TEST_PAUSE DRE_TEST_PAUSE_AT DRE_TEST_KILL_AT
KILL_LOG=$T/kill.log
RANDOM=$seed
start_s=$SECONDS

if [ "$use_s3" = 1 ]; then
	bucket=dre-torture-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	R1=s3://$bucket/src
	R2=s3://$bucket/dst
else
	R1=$T/src
	R2=$T/dst
fi

# ---- setup: two repositories with small packs and chunks (many packs, index objects and kill points per push),
# opened with a generated key (no scrypt per command) ----
printf 'torture password\n' >"$T/password"
for r in "$R1" "$R2"; do
	DRE_PASSWORD_FILE=$T/password "$dre" -q -r "$r" init --pack-size 1M --chunk-min 4K --chunk-avg 16K \
		--chunk-max 64K >/dev/null || exit 1
done
"$dre" key generate "$T/key" >/dev/null 2>&1 || exit 1
for r in "$R1" "$R2"; do
	DRE_PASSWORD_FILE=$T/password DRE_NEW_PASSWORD_FILE=$T/key "$dre" -q -r "$r" key add >/dev/null || exit 1
done
export DRE_PASSWORD_FILE=$T/key

# ---- what the script knows ----
declare -A input_sha=()    # snapshot name -> sha256 of what was pushed under it (streams: the bytes; trees: a manifest)
declare -A input_kind=()   # snapshot name -> stream | files
declare -A committed=()    # snapshot name -> 1: a push of it exited 0 and no forget of it exited 0 since
declare -A in_r2=()        # snapshot name -> 1: a copy that exited 0 ran while it was committed in the source
declare -A wal_sha=()      # WAL file name -> sha256, once a wal-push of it exited 0
declare -A kills_by_point=() kills_by_cmd=() timed_by_cmd=() runs_by_cmd=() unreached_by_point=()
names=()                # every name pushed, in order
wal_names=()
wal_next=1              # the next segment number to archive
wal_pending=            # a segment whose wal-push was killed: PostgreSQL retries the same file
n_kills=0 n_survived=0 n_next_failed=0 n_verified=0 n_lost=0 n_corrupt=0 n_check_failed=0 n_rounds=0 n_wal_verified=0
n_unlocked=0 iter=0
failures=()

fail() {
	failures+=("$1")
	echo "torture: FAIL: $1"
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
# tree_sha DIR: one hash over the relative paths and contents of every file under DIR
tree_sha() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1); }
rnd() { R=$((RANDOM % $1)); } # R = 0..N-1 (no $(...): a subshell would not advance the seeded sequence)

# ---- inputs ----
make_stream() { # NAME: a generated dump of 1 to 4 MiB (a few base seeds, half of them a "day" later: dedup varies)
	local f=$T/in/$1 mb s
	rnd 4; mb=$((1 + R))
	rnd 4; s=$((1 + R))
	rnd 2
	if [ "$R" = 0 ]; then "$gendump" "$mb" "$s" >"$f"; else "$gendump" "$mb" "$s" --next-day >"$f"; fi
	# a cut at a random length, so the last chunk and pack differ from run to run
	rnd 65536
	truncate -s $(($(stat -c %s "$f") - R)) "$f"
	input_sha[$1]=$(sha_of "$f")
	input_kind[$1]=stream
}
mutate_tree() { # a few files rewritten, added, removed or grown in $T/tree (about 20 files, 1.5 MiB)
	local i n f
	rnd 5; n=$((2 + R))
	for ((i = 0; i < n; i++)); do
		rnd 3; f=$T/tree/d$R
		rnd 24; f=$f/f$R
		mkdir -p "$(dirname "$f")"
		rnd 4
		case $R in
		0) rm -f "$f" ;;
		1) rnd 300000; head -c $((1 + R)) /dev/urandom >>"$f" ;;
		*) rnd 200000; head -c $((1 + R)) /dev/urandom >"$f" ;;
		esac
	done
}
make_tree_input() { # NAME
	mutate_tree
	input_sha[$1]=$(tree_sha "$T/tree")
	input_kind[$1]=files
}
# make_wal N: WAL segment N of timeline 1, 16 MiB, as PostgreSQL writes one (long page header), mostly text with
# random stretches; prints its name
make_wal() {
	python3 - "$1" "$T/wal" "$seed" <<'EOF'
import random, struct, sys
segno, d, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
SEG = 16 << 20
rng = random.Random(seed * 100003 + segno)
b = bytearray((b"INSERT INTO accounts VALUES (%d, 'row');" % segno) * (SEG // 36 + 1))[:SEG]
for _ in range(rng.randrange(1, 24)):
	n = rng.randrange(1, 65536)
	at = rng.randrange(8192, SEG - n)
	b[at:at + n] = rng.randbytes(n)
b[0:40] = bytes(40)
struct.pack_into('<HHIQ', b, 0, 0xD110, 0x0006, 1, segno * SEG)
struct.pack_into('<QII', b, 24, 7312345678901234567, SEG, 8192)
name = '%08X%08X%08X' % (1, segno // 256, segno % 256)
open('%s/%s' % (d, name), 'wb').write(b)
print(name)
EOF
}

# ---- the points each command can reach (engine/testhook.h) ----
PUSH_POINTS="push-loaded push-reading pack-sealed pack-before-put store-put-synced pack-after-put push-before-index \
index-before-put index-after-put push-before-snapshot push-after-snapshot"
[ "$use_s3" = 1 ] && PUSH_POINTS="$PUSH_POINTS upload-before-put upload-after-put"
declare -A POINTS=(
	[push-stream]=$PUSH_POINTS
	[push-files]=$PUSH_POINTS
	[forget]="forget-removing"
	[prune]="prune-marked prune-repacked prune-planned prune-rescanned prune-deleting prune-deleted prune-reindexing \
prune-reindexed pack-sealed pack-before-put pack-after-put index-before-put index-after-put"
	[copy]="copy-wal-copied copy-snapshot-copied push-loaded pack-sealed pack-before-put pack-after-put \
push-before-index index-before-put index-after-put push-before-snapshot push-after-snapshot"
	[wal-push]="wal-push-before-put store-put-synced wal-push-after-put"
	[wal-fetch]="wal-fetch-before-write wal-fetch-after-write"
)
# points reached many times in one command: a kill at a later arrival than the first
MANY=" push-reading pack-sealed pack-before-put store-put-synced pack-after-put index-before-put index-after-put upload-before-put \
upload-after-put prune-deleting forget-removing copy-wal-copied copy-snapshot-copied "

# ---- running one command ----
declare -A est_ms=([push-stream]=300 [push-files]=300 [forget]=60 [prune]=300 [copy]=500 [wal-push]=150 [wal-fetch]=100)
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# run_cmd OP MODE POINT ARGS...: runs dre ARGS (stdin from $cmd_in) with output in $T/cmd.out and $T/cmd.err.
# MODE: none, point (DRE_TEST_KILL_AT=POINT) or timed (SIGKILL after a random share of the command's usual time).
# Sets rc, and killed_at to the point or "timed" when it was killed, else "".
cmd_in=/dev/null
run_cmd() {
	local op=$1 mode=$2 point=$3 t0 pid delay
	shift 3
	rm -f "$KILL_LOG"
	killed_at=
	t0=$(now_ms)
	# the groups' stderr is /dev/null: bash reports a child killed by a signal there ("Killed")
	if [ "$mode" = point ]; then
		{
			DRE_TEST_KILL_AT=$point DRE_TEST_KILL_LOG=$KILL_LOG "$dre" "$@" <"$cmd_in" >"$T/cmd.out" 2>"$T/cmd.err"
			rc=$?
		} 2>/dev/null
	elif [ "$mode" = timed ]; then
		rnd $((${est_ms[$op]} * 12 / 10 + 1))
		delay=$R
		{
			"$dre" "$@" <"$cmd_in" >"$T/cmd.out" 2>"$T/cmd.err" &
			pid=$!
			sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid"
			rc=$?
		} 2>/dev/null
	else
		"$dre" "$@" <"$cmd_in" >"$T/cmd.out" 2>"$T/cmd.err"
		rc=$?
	fi
	if [ "$rc" = 137 ]; then
		if [ "$mode" = point ] && [ -s "$KILL_LOG" ]; then
			killed_at=$(cut -d' ' -f1 "$KILL_LOG" | head -n 1)
		elif [ "$mode" = timed ]; then
			killed_at=timed
		else
			killed_at=unknown
		fi
	elif [ "$rc" = 0 ]; then # how long it takes when it runs to the end: the range of timed kills
		local ms=$(($(now_ms) - t0))
		est_ms[$op]=$(((${est_ms[$op]} + ms) / 2 + 1))
	fi
	cmd_in=/dev/null
}

# ---- the operations; each takes MODE POINT and runs its command once ----
# An operation that was killed is retried by the loop with MODE none: retry_* state says what to run again.
retry_name= retry_ids=()

op_push_stream() {
	local name=${retry_name:-db-$iter}
	[ -n "$retry_name" ] || { make_stream "$name"; names+=("$name"); }
	cmd_in=$T/in/$name
	run_cmd push-stream "$1" "$2" -r "$R1" push --json "$name"
	if [ "$rc" = 0 ]; then committed[$name]=1; rm -f "$T/in/$name"; fi
	retry_name=$name
}
op_push_files() {
	local name=${retry_name:-tree-$iter}
	if [ -z "$retry_name" ]; then
		make_tree_input "$name"
		names+=("$name")
	elif [ "$(tree_sha "$T/tree")" != "${input_sha[$name]}" ]; then
		fail "the tree changed under a retried push of $name" # cannot happen: nothing writes it meanwhile
	fi
	run_cmd push-files "$1" "$2" -r "$R1" push --json "$name" "$T/tree"
	[ "$rc" != 0 ] || committed[$name]=1
	retry_name=$name
}
op_forget() { # one to three of the snapshots committed, oldest first, by ID
	local ids=() n
	if [ ${#retry_ids[@]} -eq 0 ]; then
		rnd 3; n=$((1 + R))
		# most commands push: a forget that finds many snapshots brings them back down to 8
		[ ${#committed[@]} -lt 16 ] || n=$((${#committed[@]} - 8))
		local name
		for name in "${names[@]}"; do
			[ "${committed[$name]:-}" = 1 ] || continue
			[ ${#retry_ids[@]} -lt "$n" ] || break
			retry_ids+=("$name")
		done
	fi
	# the IDs of those names still listed (a killed forget removed some)
	"$dre" -r "$R1" snapshots --json >"$T/snaps.json" 2>"$T/cmd.err" || { rc=1; return; }
	mapfile -t ids < <(python3 -c '
import json, sys
want = set(sys.argv[2:])
[print(s["id"]) for s in json.load(open(sys.argv[1])) if s["name"] in want]' "$T/snaps.json" "${retry_ids[@]}")
	if [ ${#ids[@]} -eq 0 ]; then
		rc=0
		killed_at=
	else
		run_cmd forget "$1" "$2" -r "$R1" forget "${ids[@]}"
	fi
	local name
	for name in "${retry_ids[@]}"; do
		[ "$rc" != 0 ] || unset "committed[$name]"
	done
	[ "$rc" != 0 ] || { retry_ids=(); freed=1; }
}
freed=0 # forgets since the last prune that finished
op_prune() {
	if [ "$1" != none ] && [ "$freed" = 0 ] && feasible forget; then
		# work for prune's later phases: a forget first (not killed; it must succeed like any command)
		op_forget none ""
		[ "$rc" = 0 ] || fail "forget before a prune exited $rc: $(head -n 3 "$T/cmd.err" | tr '\n' ' ')"
		[ "$rc" = 0 ] || n_next_failed=$((n_next_failed + 1))
	fi
	# no command runs beside this one, so the temporary files of killed puts may go at once (not after 30 min)
	DRE_TEST_UPLOAD_AGE_S=0 run_cmd prune "$1" "$2" -r "$R1" prune --grace 0 --max-unused 20%
	[ "$rc" != 0 ] || freed=0
}
op_copy() {
	local before=()
	local name
	for name in "${!committed[@]}"; do before+=("$name"); done
	run_cmd copy "$1" "$2" -r "$R1" copy --wal --to "$R2" --to-password-file "$T/key"
	if [ "$rc" = 0 ]; then for name in "${before[@]}"; do in_r2[$name]=1; done; fi
}
op_wal_push() {
	local name=$wal_pending
	if [ -z "$name" ]; then
		name=$(make_wal "$wal_next") || { rc=1; return; }
		wal_next=$((wal_next + 1))
	fi
	run_cmd wal-push "$1" "$2" -r "$R1" wal-push "$T/wal/$name"
	if [ "$rc" = 0 ]; then
		wal_sha[$name]=$(sha_of "$T/wal/$name")
		wal_names+=("$name")
		rm -f "$T/wal/$name"
		wal_pending=
	else
		wal_pending=$name
	fi
}
op_wal_fetch() {
	rnd ${#wal_names[@]}
	local name=${retry_name:-${wal_names[$R]}}
	retry_name=$name
	rm -f "$T/out/wal"
	run_cmd wal-fetch "$1" "$2" -r "$R1" wal-fetch "$name" "$T/out/wal"
	if [ "$rc" = 0 ]; then
		if [ "$(sha_of "$T/out/wal")" = "${wal_sha[$name]}" ]; then
			n_wal_verified=$((n_wal_verified + 1))
		else
			n_corrupt=$((n_corrupt + 1))
			fail "wal-fetch $name: not the bytes archived"
		fi
	fi
}

# ---- verification ----
# verify_repo REPO LABEL MUST ALL: check --read-data, then every snapshot listed whose name is known restores byte
# for byte (unless ALL is "all": of those that did in an earlier round, one in four, at random); every name for
# which MUST (an associative array's name) holds 1 is listed.
declare -A restored_ok=() # "REPO ID" -> 1: restored byte for byte in an earlier round
verify_repo() {
	local repo=$1 label=$2 must=$3 all=$4 id name kind
	"$dre" -r "$repo" unlock >"$T/unlock.out" 2>&1 || fail "$label: unlock failed: $(tail -n 1 "$T/unlock.out")"
	n_unlocked=$((n_unlocked + $(grep -o '[0-9]\+' "$T/unlock.out" | head -n 1 || echo 0)))
	if ! "$dre" -r "$repo" check --read-data >"$T/check.out" 2>"$T/check.err"; then
		n_check_failed=$((n_check_failed + 1))
		fail "$label: check --read-data failed: $(head -n 5 "$T/check.err" | tr '\n' ' ')"
	fi
	"$dre" -r "$repo" snapshots --json >"$T/snaps.json" 2>"$T/cmd.err" || { fail "$label: snapshots failed"; return; }
	declare -A listed=()
	while read -r id name; do
		listed[$name]=1
		kind=${input_kind[$name]:-}
		[ -n "$kind" ] || continue # not one of this script's names: cannot happen
		if [ "$all" != all ] && [ -n "${restored_ok["$repo $id"]:-}" ]; then
			rnd 4
			[ "$R" = 0 ] || continue
		fi
		rm -rf "$T/out/r"
		if [ "$kind" = stream ]; then
			mkdir -p "$T/out/r"
			"$dre" -q -r "$repo" restore "$id" >"$T/out/r/stream" 2>"$T/restore.err" &&
				got=$(sha_of "$T/out/r/stream")
		else
			"$dre" -q -r "$repo" restore "$id" --target "$T/out/r" >/dev/null 2>"$T/restore.err" &&
				got=$(tree_sha "$T/out/r${T}/tree")
		fi
		if [ $? -ne 0 ]; then
			n_corrupt=$((n_corrupt + 1))
			fail "$label: snapshot ${id:0:8} ($name) does not restore: $(head -n 2 "$T/restore.err" | tr '\n' ' ')"
		elif [ "$got" != "${input_sha[$name]}" ]; then
			n_corrupt=$((n_corrupt + 1))
			fail "$label: snapshot ${id:0:8} ($name) restores other bytes than were pushed"
		else
			n_verified=$((n_verified + 1))
			restored_ok["$repo $id"]=1
		fi
	done < <(python3 -c 'import json,sys; [print(s["id"], s["name"]) for s in json.load(open(sys.argv[1]))]' "$T/snaps.json")
	local -n want=$must
	for name in "${!want[@]}"; do
		[ "${want[$name]}" = 1 ] || continue
		[ "$repo" = "$R2" ] || [ "${committed[$name]:-}" = 1 ] || continue
		if [ -z "${listed[$name]:-}" ]; then
			n_lost=$((n_lost + 1))
			fail "$label: snapshot $name was committed and is gone"
		fi
	done
	rm -rf "$T/out/r"
}
verify_wal() { # ALL: every archived WAL file fetches byte for byte (else two of them)
	local list=("${wal_names[@]}") name
	[ ${#list[@]} -gt 0 ] || return 0
	if [ "$1" != all ]; then
		rnd ${#list[@]}
		name=${list[$R]}
		rnd ${#list[@]}
		list=("$name" "${list[$R]}")
	fi
	for name in "${list[@]}"; do
		rm -f "$T/out/wal"
		if ! "$dre" -r "$R1" wal-fetch "$name" "$T/out/wal" 2>"$T/cmd.err"; then
			n_lost=$((n_lost + 1))
			fail "WAL $name was archived and does not fetch: $(head -n 1 "$T/cmd.err")"
		elif [ "$(sha_of "$T/out/wal")" != "${wal_sha[$name]}" ]; then
			n_corrupt=$((n_corrupt + 1))
			fail "WAL $name fetches other bytes than were archived"
		else
			n_wal_verified=$((n_wal_verified + 1))
		fi
	done
}
verify_all() {
	n_rounds=$((n_rounds + 1))
	verify_repo "$R1" source committed "$1"
	verify_repo "$R2" target in_r2 "$1"
	verify_wal "$1"
}

# ---- the loop ----
COMMANDS="push-stream push-files forget prune copy wal-push wal-fetch"
read -r -a ALL_POINTS <<<"$(printf '%s\n' ${POINTS[push-stream]} ${POINTS[forget]} ${POINTS[prune]} ${POINTS[copy]} \
	${POINTS[wal-push]} ${POINTS[wal-fetch]} | awk '!seen[$0]++' | tr '\n' ' ')"
feasible() { # COMMAND: it has something to work on
	case $1 in
	forget) [ ${#committed[@]} -ge 3 ] ;;
	wal-fetch) [ ${#wal_names[@]} -gt 0 ] ;;
	*) true ;;
	esac
}
pick_op() { # sets op, for a timed kill: pushes most often, as a day of backups would have them
	while :; do
		rnd 100
		if [ "$R" -lt 28 ]; then op=push-stream
		elif [ "$R" -lt 46 ]; then op=push-files
		elif [ "$R" -lt 58 ]; then op=forget
		elif [ "$R" -lt 70 ]; then op=prune
		elif [ "$R" -lt 82 ]; then op=copy
		elif [ "$R" -lt 93 ]; then op=wal-push
		else op=wal-fetch
		fi
		feasible "$op" && return
	done
}
pick_point() { # sets point and op: a point drawn evenly from all, then one of the commands that reach it
	local cands c
	while :; do
		rnd ${#ALL_POINTS[@]}
		point=${ALL_POINTS[$R]}
		cands=()
		for c in $COMMANDS; do
			case " ${POINTS[$c]} " in *" $point "*) feasible "$c" && cands+=("$c") ;; esac
		done
		[ ${#cands[@]} -gt 0 ] || continue
		rnd ${#cands[@]}
		op=${cands[$R]}
		return
	done
}
run_op() { # OP MODE POINT
	case $1 in
	push-stream) op_push_stream "$2" "$3" ;;
	push-files) op_push_files "$2" "$3" ;;
	forget) op_forget "$2" "$3" ;;
	prune) op_prune "$2" "$3" ;;
	copy) op_copy "$2" "$3" ;;
	wal-push) op_wal_push "$2" "$3" ;;
	wal-fetch) op_wal_fetch "$2" "$3" ;;
	esac
}

echo "torture: seed $seed, $kills kills, source $R1, target $R2, dre $dre"
while [ "$n_kills" -lt "$kills" ]; do
	iter=$((iter + 1))
	retry_name= retry_ids=()
	rnd 3
	if [ "$R" = 0 ]; then
		mode=timed point=
		pick_op
	else
		mode=point
		pick_point
		rnd 4
		case $MANY in *" $point "*) point=$point:$((1 + R)) ;; *) point=$point:1 ;; esac
	fi
	runs_by_cmd[$op]=$((${runs_by_cmd[$op]:-0} + 1))
	run_op "$op" "$mode" "$point"
	if [ -z "$killed_at" ]; then
		if [ "$rc" != 0 ]; then
			n_next_failed=$((n_next_failed + 1))
			fail "$op (iteration $iter, not killed) exited $rc: $(head -n 3 "$T/cmd.err" | tr '\n' ' ')"
		elif [ "$mode" = point ]; then
			unreached_by_point[${point%%:*}]=$((${unreached_by_point[${point%%:*}]:-0} + 1))
		fi
		continue
	fi
	n_kills=$((n_kills + 1))
	kills_by_cmd[$op]=$((${kills_by_cmd[$op]:-0} + 1))
	if [ "$killed_at" = timed ]; then
		timed_by_cmd[$op]=$((${timed_by_cmd[$op]:-0} + 1))
	else
		kills_by_point[$killed_at]=$((${kills_by_point[$killed_at]:-0} + 1))
	fi
	# the next command: the same one again, as its user would run it
	kill_point=$killed_at
	run_op "$op" none ""
	if [ "$rc" = 0 ]; then
		n_survived=$((n_survived + 1))
	else
		n_next_failed=$((n_next_failed + 1))
		fail "$op after a kill at $kill_point (iteration $iter) exited $rc: $(head -n 3 "$T/cmd.err" | tr '\n' ' ')"
	fi
	if [ $((n_kills % verify_every)) = 0 ]; then
		verify_all some
		echo "torture: $n_kills kills, $((SECONDS - start_s)) s: survived $n_survived, verified $n_verified snapshot restores, lost $n_lost, corrupt $n_corrupt"
	fi
done
verify_all all
seconds=$((SECONDS - start_s))

# ---- the report ----
echo
echo "kills by point (deliberate, DRE_TEST_KILL_AT=<point>:<n>)"
printf '  %-24s %6s %s\n' point kills "not reached (command finished first)"
for p in "${ALL_POINTS[@]}"; do
	printf '  %-24s %6d %6d\n' "$p" "${kills_by_point[$p]:-0}" "${unreached_by_point[$p]:-0}"
done
[ -z "${kills_by_point[unknown]:-}" ] || printf '  %-24s %6d\n' "(no point logged)" "${kills_by_point[unknown]}"
echo "kills by command"
printf '  %-12s %6s %6s %6s %6s\n' command runs kills point timed
for c in $COMMANDS; do
	printf '  %-12s %6d %6d %6d %6d\n' "$c" "${runs_by_cmd[$c]:-0}" "${kills_by_cmd[$c]:-0}" \
		$((${kills_by_cmd[$c]:-0} - ${timed_by_cmd[$c]:-0})) "${timed_by_cmd[$c]:-0}"
done
echo "verification rounds $n_rounds (check --read-data of both repositories each), stale locks removed by unlock $n_unlocked"
echo "snapshot restores verified byte for byte $n_verified, WAL fetches verified $n_wal_verified"
if [ "$use_s3" != 1 ]; then # what kills during a put leave behind: the store ignores them, nothing removes them
	echo "temporary files left in the repositories: $(find "$R1" "$R2" -name '.tmp.*' | wc -l)" \
		"($(find "$R1" "$R2" -name '.tmp.*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') bytes)"
fi
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "torture: kills=$n_kills survived=$n_survived next_failed=$n_next_failed verified=$n_verified lost=$n_lost" \
	"corrupt=$n_corrupt check_failed=$n_check_failed seconds=$seconds"
[ "$n_next_failed" = 0 ] && [ "$n_lost" = 0 ] && [ "$n_corrupt" = 0 ] && [ "$n_check_failed" = 0 ] &&
	[ "$n_survived" = "$n_kills" ] && [ "$n_verified" -gt 0 ]
