#!/usr/bin/env bash
# bench/skip.sh — `make bench-skip`: what a backup costs when most files did not change: dre taking unchanged
# files from the parent snapshot without reading them, against dre --force-read, restic and pgBackRest, on the
# same data (bench/README.md, "Unchanged files").
#
#   bench/skip.sh [--small] [--cases LIST] [--build DIR] [--dre FILE] [--gendump FILE] [--genmodel FILE]
#                 [--files N] [--tree-mb MB] [--model-files N] [--model-mb MB] [--pg-scale N]
#                 [--pg-transactions N] [--warm] [--no-peers] [--markdown FILE] [--json FILE]
#
# LIST: a comma-separated choice of tree, model, pg (default: all three).
#
# tree   N (10,000) files of MB (5,120) MiB in all, in 100 directories. Sizes are log-uniform over a range of
#        1 to 65,536, scaled to the total (about 90 bytes to 6 MiB at the defaults); every other file is
#        dump-like text (dre-gendump), the rest random bytes (an AES-256-CTR keystream of openssl). Every mtime
#        is set an hour back: the tree has been there a while, as a tree backed up every few hours has.
#        Pushed once; then, unchanged, pushed again (dre compares each file with the first snapshot and reads
#        none) and pushed with --force-read.
# model  N (10) model files of MB (300) MiB each (dre-genmodel: bf16 weights). Pushed once; then the middle
#        file is rewritten in place as its fine-tuned version (one 4 MiB tensor in ten re-drawn, the size kept,
#        the mtime now), and the directory pushed again and with --force-read.
# pg     A private PostgreSQL 15 cluster (tests/pg/pgcluster) filled by pgbench -i -s N (330: about 5 GB on
#        disk), archive_command pushing each WAL file into two dre repositories and one pgBackRest
#        repository. A first base backup into each (dre pg-backup --fast; pgbackrest --type=full backup),
#        then "a day of writes": M (150,000) pgbench transactions (TPC-B, 4 clients). Then, once the archive
#        has caught up: dre pg-backup (its parent is the first), dre pg-backup --force-read into the other
#        repository, and pgbackrest --type=incr backup (which copies every file whose size or mtime changed).
#
# The skipping push and the --force-read push must start from the same repository: after the first push, each
# files case copies dre's repository (and its cache) and pushes --force-read into the copy; restic, when it is
# installed, runs the same three steps (backup, backup, backup --force into a copy; --repository-version 2).
# The pg case gives each dre run a repository of its own from the start (a copy could not follow the archive).
# dre's files pushes use a password (scrypt on each open, as a user's would); its pg repositories a generated
# key, as archive_command wants. pgBackRest: compress-type=zst, repo1-cipher-type=aes-256-cbc, process-max=2
# (dre runs one worker per core, 2 here), start-fast=y (as pg-backup --fast).
#
# Figures, per step: wall and CPU seconds and peak RSS of the command and its children (wait4); MB/s: the size
# of the tree, the model directory or the data directory (less pg_wal) over the wall time; new bytes stored: the
# growth of the repository directory (du -sb; dre's wal/ and pgBackRest's archive/ left out); files skipped:
# dre's files_skipped, restic's files_unmodified; bytes read, two ways:
# - cold (the default as root): every measured step starts after a sync with the page cache dropped, as a backup
#   hours after the last one would, and "read" is what the command and its children read from the disk
#   (read_bytes of /proc/self/io, which adds up the children this script's timer reaped): the same measure for
#   every tool, metadata, indexes and manifests included;
# - warm (--warm, --small, or not root): the cache stays as it is, and "read" is what dre reports (its size less
#   bytes_skipped; its io_uring reads do not show in the kernel's per-process counters) and, for the others, the
#   bytes their processes read through read(2) and its kin (rchar): their repository's files, and restic's
#   temporary pack files, included.
# Each files case restores the skipping push's snapshot and compares it with the data (diff -r); a difference
# ends the run with an error.
#
# --small: tiny sizes (200 files / 16 MiB, 2 × 40 MiB, pgbench -s 1 and 400 transactions; about 20 s), warm and
# without the syncs, for tests/e2e/bench.sh. Peers: in full mode restic and pgbackrest are installed from Debian
# when missing (not with --no-peers); in --small mode they run only when already installed. Everything lives in
# one directory from mktemp under ${TMPDIR:-/tmp}, removed at the end, also after a failure or a signal; the
# full run needs about 27 GB there and takes about 12 minutes on a 2-core VM. The table goes to standard output
# (and --markdown FILE), every figure to --json FILE.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog=bench/skip.sh

usage() {
	echo "usage: $prog [--small] [--cases tree,model,pg] [--build DIR] [--dre FILE] [--gendump FILE] [--genmodel FILE]" >&2
	echo "       [--files N] [--tree-mb MB] [--model-files N] [--model-mb MB] [--pg-scale N] [--pg-transactions N]" >&2
	echo "       [--warm] [--no-peers] [--markdown FILE] [--json FILE]" >&2
	[ $# -eq 0 ] || echo "$prog: $*" >&2
	exit 2
}
# number NAME VALUE: a whole number of at least 1
number() { case $2 in '' | *[!0-9]* | 0*) usage "$1 wants a whole number of at least 1, not '$2'" ;; esac; }

small=0 cases=tree,model,pg build=build dre='' gendump='' genmodel='' warm=0 peers=1 markdown='' json_out=''
files='' tree_mb='' model_files='' model_mb='' pg_scale='' pg_tx=''
while [ $# -gt 0 ]; do
	case $1 in
	--small) small=1; shift; continue ;;
	--warm) warm=1; shift; continue ;;
	--no-peers) peers=0; shift; continue ;;
	--cases | --build | --dre | --gendump | --genmodel | --files | --tree-mb | --model-files | --model-mb | \
		--pg-scale | --pg-transactions | --markdown | --json)
		[ $# -ge 2 ] || usage "$1 wants a value" ;;
	*) usage "unknown argument '$1'" ;;
	esac
	case $1 in
	--cases) cases=$2 ;;
	--build) build=$2 ;;
	--dre) dre=$2 ;;
	--gendump) gendump=$2 ;;
	--genmodel) genmodel=$2 ;;
	--files) number "$1" "$2"; files=$2 ;;
	--tree-mb) number "$1" "$2"; tree_mb=$2 ;;
	--model-files) number "$1" "$2"; model_files=$2 ;;
	--model-mb) number "$1" "$2"; model_mb=$2 ;;
	--pg-scale) number "$1" "$2"; pg_scale=$2 ;;
	--pg-transactions) number "$1" "$2"; pg_tx=$2 ;;
	--markdown) markdown=$2 ;;
	--json) json_out=$2 ;;
	esac
	shift 2
done
if [ "$small" = 1 ]; then
	: "${files:=200}" "${tree_mb:=16}" "${model_files:=2}" "${model_mb:=40}" "${pg_scale:=1}" "${pg_tx:=400}"
	warm=1
else
	: "${files:=10000}" "${tree_mb:=5120}" "${model_files:=10}" "${model_mb:=300}" "${pg_scale:=330}" "${pg_tx:=150000}"
fi
do_tree=0 do_model=0 do_pg=0
IFS=, read -r -a case_list <<<"$cases"
[ ${#case_list[@]} -gt 0 ] || usage "--cases wants one or more of tree, model, pg"
for c in "${case_list[@]}"; do
	case $c in
	tree) do_tree=1 ;;
	model) do_model=1 ;;
	pg) do_pg=1 ;;
	*) usage "--cases: unknown case '$c' (tree, model, pg)" ;;
	esac
done
# the change is one tensor in ten re-drawn by dre-genmodel --fine-tuned: a file of fewer than ten 4 MiB tensors
# would not change at all
[ "$model_mb" -ge 40 ] || usage "--model-mb must be at least 40 (ten 4 MiB tensors, one of which the change re-draws)"
[ "$model_files" -ge 2 ] || usage "--model-files must be at least 2 (one file changes, the others do not)"
[ "$files" -ge 100 ] || usage "--files must be at least 100 (the tree has 100 directories)"
[ $((tree_mb << 20)) -ge "$files" ] || usage "--tree-mb $tree_mb is too small for $files files"
[ "$pg_tx" -ge 4 ] || usage "--pg-transactions must be at least 4 (4 clients)"

say() { echo "$prog: [$SECONDS s] $*" >&2; }
die() { say "$*"; exit 1; }
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
: "${dre:=$src/$build/dre}" "${gendump:=$src/$build/dre-gendump}" "${genmodel:=$src/$build/dre-genmodel}"
dre=$(abs "$dre") gendump=$(abs "$gendump") genmodel=$(abs "$genmodel")
[ -x "$dre" ] || die "no dre binary at $dre (make BUILD=$build all, or --dre FILE)"
[ "$do_tree" = 0 ] || [ -x "$gendump" ] || die "no dre-gendump at $gendump (make BUILD=$build all, or --gendump FILE)"
[ "$do_model" = 0 ] || [ -x "$genmodel" ] ||
	die "no dre-genmodel at $genmodel (make BUILD=$build $build/dre-genmodel, or --genmodel FILE)"
[ "$do_tree" = 0 ] || command -v openssl >/dev/null 2>&1 || die "openssl is missing (the tree's random files)"
help=$("$dre" push --help 2>&1 || true)
[[ $help == *--force-read* ]] || die "$dre has no push --force-read: it does not skip unchanged files"

sudo=()
[ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo=(sudo); }
# apt_install PKG...: Debian packages, quietly
apt_install() {
	say "installing $*"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
		>/dev/null 2>&1 || { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" env \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } ||
		die "apt-get install $* failed"
}
use_restic=0 use_pgbr=0
if [ "$peers" = 1 ]; then
	want=()
	[ "$do_tree$do_model" = 00 ] || command -v restic >/dev/null 2>&1 || want+=(restic)
	[ "$do_pg" = 0 ] || command -v pgbackrest >/dev/null 2>&1 || want+=(pgbackrest)
	[ "$small" = 1 ] || [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
	command -v restic >/dev/null 2>&1 && use_restic=1
	command -v pgbackrest >/dev/null 2>&1 && use_pgbr=1
fi
[ "$do_pg" = 0 ] || "$src/tests/pg/pgcluster" install || die "PostgreSQL 15 could not be installed"

D=$(mktemp -d "${TMPDIR:-/tmp}/skipbench.XXXXXX")
chmod 755 "$D" # the cluster's owner (postgres) runs dre from here and writes the pg repositories
PGD=$D/pg
cleanup() {
	[ ! -f "$PGD/env" ] || "$src/tests/pg/pgcluster" stop "$PGD" >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
export DRE_PASSWORD=bench-password RESTIC_PASSWORD=bench-password LC_ALL=C
unset DRE_PASSWORD_FILE DRE_PASSWORD_COMMAND DRE_REPOSITORY RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
cold=no
[ "$warm" = 1 ] || [ ! -w /proc/sys/vm/drop_caches ] || cold=yes
# the postgres user runs the pg case's dre (pg-backup, archive_command): a copy it can surely reach
mkdir -p "$D/bin"
cp "$dre" "$D/bin/dre"
chmod 755 "$D/bin" "$D/bin/dre"
DRE=$D/bin/dre

# measure.py OUT CMD...: runs CMD and exits with its status; OUT gets its wall seconds, the CPU seconds and peak
# RSS of CMD and every child it waited for (wait4), and the bytes they read through read(2) and its kin (rchar)
# and from storage (read_bytes), from this process's /proc/self/io, which adds up the counters of the children it
# reaped
cat >"$D/measure.py" <<'EOF'
import json, os, sys, time
def io():
    return {k: int(v) for k, v in (line.split(":") for line in open("/proc/self/io"))}
a, t = io(), time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall, b = time.monotonic() - t, io()
json.dump({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_kib": ru.ru_maxrss, "rchar": b["rchar"] - a["rchar"],
           "read_bytes": b["read_bytes"] - a["read_bytes"]}, open(sys.argv[1], "w"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF

# timed NAME CMD...: runs CMD under measure.py after a sync (and with the page cache dropped when cold); its
# output in $D/NAME.out and .err, its figures in $D/NAME.m; a failure shows the error and ends the run
timed() {
	local name=$1
	shift
	[ "$small" = 1 ] || sync # a sync of the whole machine, which the smoke test beside other tests does without
	[ "$cold" = no ] || echo 3 >/proc/sys/vm/drop_caches
	if ! python3 "$D/measure.py" "$D/$name.m" "$@" >"$D/$name.out" 2>"$D/$name.err"; then
		tail -n 20 "$D/$name.err" >&2
		die "$name failed: $*"
	fi
}
dub() { du -sb "$1" | cut -f1; }
# row CASE STEP TOOL NAME SIZE STORED: one line of the results, from $D/NAME.m and the tool's own report in
# $D/NAME.out (dre's --json: bytes read are its size less bytes_skipped; restic's --json summary)
row() {
	python3 - "$D/$4" "$@" >>"$D/rows.jsonl" 2>"$D/row.err" <<'EOF' || die "$4: $(tail -n 1 "$D/row.err")"
import json, sys
name, case, step, tool, _, size, stored = sys.argv[1:]
m = json.load(open(name + ".m"))
read = skipped = None
if tool == "dre":
    d = json.load(open(name + ".out"))
    if "files_skipped" not in d or "bytes_skipped" not in d:
        sys.exit("dre's --json has no files_skipped or bytes_skipped")
    read, skipped = d["size"] - d["bytes_skipped"], d["files_skipped"]
elif tool == "restic":
    d = [j for j in map(json.loads, filter(str.strip, open(name + ".out"))) if j.get("message_type") == "summary"]
    if not d:
        sys.exit("restic --json printed no summary")
    skipped = d[-1]["files_unmodified"]
print(json.dumps({"case": case, "step": step, "tool": tool, "size": int(size), "wall_s": round(m["wall"], 3),
                  "cpu_s": round(m["cpu"], 3), "peak_rss_kib": m["rss_kib"], "bytes_read_disk": m["read_bytes"],
                  "rchar": m["rchar"], "bytes_read_reported": read, "stored_new": int(stored),
                  "files_skipped": skipped}))
EOF
}
# repo_bytes DIR: the size of a repository, its WAL archive (dre's wal/) left out
repo_bytes() { echo $(($(dub "$1") - $([ -d "$1/wal" ] && dub "$1/wal" || echo 0))); }
# step CASE STEP TOOL NAME REPO SIZE CMD...: timed NAME CMD..., then its row; new bytes stored are the growth of
# the repository directory REPO
step() {
	local c=$1 s=$2 tool=$3 name=$4 repo=$5 size=$6 before
	shift 6
	before=$(repo_bytes "$repo")
	timed "$name" "$@"
	row "$c" "$s" "$tool" "$name" "$size" $(($(repo_bytes "$repo") - before))
}
# same_tree WANT RESTORED: the restored copy of WANT (under RESTORED/<its name>, or RESTORED itself when a
# restore puts the pushed directory's contents at the target) has the same files with the same contents
same_tree() {
	local got
	got=$2/$(basename "$1")
	[ -d "$got" ] || got=$2
	diff -r "$1" "$got" >"$D/diff.out" 2>&1 || { head -n 5 "$D/diff.out" >&2; return 1; }
}

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(nproc) cores, $cpu, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r)"
versions="dre $("$DRE" --version 2>&1 | head -n 1 | sed 's/^dre //')"
[ "$use_restic" = 0 ] || versions+=", $(restic version | cut -d' ' -f1-2)"
[ "$use_pgbr" = 0 ] || versions+=", $(pgbackrest version)"
: >"$D/rows.jsonl"
: >"$D/notes"

# files_case CASE DIR CHANGE: the three pushes of DIR (relative to D) by dre and restic; CHANGE is a command run
# between the first push and the others
files_case() {
	local c=$1 dir=$2 change=$3 size
	size=$(find "$D/$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }')
	cd "$D"
	say "$c: dre push"
	"$DRE" -r "$D/dre-a" -q init
	step "$c" "first push" dre "$c-dre-first" "$D/dre-a" "$size" \
		env DRE_CACHE_DIR="$D/cache-a" "$DRE" -r "$D/dre-a" --json push "$c" "$dir"
	if [ "$use_restic" = 1 ]; then
		say "$c: restic backup"
		RESTIC_CACHE_DIR=$D/rcache-a restic -r "$D/restic-a" init --repository-version 2 >/dev/null
		step "$c" "first push" restic "$c-restic-first" "$D/restic-a" "$size" \
			env RESTIC_CACHE_DIR="$D/rcache-a" restic -r "$D/restic-a" backup --json --host bench "$dir"
	fi
	$change
	# the --force-read runs start from the repositories as the first push left them
	cp -a "$D/dre-a" "$D/dre-b"
	[ ! -d "$D/cache-a" ] || cp -a "$D/cache-a" "$D/cache-b"
	[ "$use_restic" = 0 ] || cp -a "$D/restic-a" "$D/restic-b"
	[ ! -d "$D/rcache-a" ] || cp -a "$D/rcache-a" "$D/rcache-b"

	say "$c: dre push again, and --force-read"
	step "$c" "push again" dre "$c-dre-skip" "$D/dre-a" "$size" \
		env DRE_CACHE_DIR="$D/cache-a" "$DRE" -r "$D/dre-a" --json push "$c" "$dir"
	step "$c" "push again, --force-read" dre "$c-dre-force" "$D/dre-b" "$size" \
		env DRE_CACHE_DIR="$D/cache-b" "$DRE" -r "$D/dre-b" --json push --force-read "$c" "$dir"
	if [ "$use_restic" = 1 ]; then
		say "$c: restic backup again, and --force"
		step "$c" "push again" restic "$c-restic-skip" "$D/restic-a" "$size" \
			env RESTIC_CACHE_DIR="$D/rcache-a" restic -r "$D/restic-a" backup --json --host bench "$dir"
		step "$c" "push again, --force" restic "$c-restic-force" "$D/restic-b" "$size" \
			env RESTIC_CACHE_DIR="$D/rcache-b" restic -r "$D/restic-b" backup --json --host bench --force "$dir"
	fi
	# what the skipping push recorded is the data, byte for byte
	DRE_CACHE_DIR=$D/cache-a "$DRE" -r "$D/dre-a" -q restore "$c" --target "$D/restored" ||
		die "$c: the restore of the second push failed"
	same_tree "$D/$dir" "$D/restored" || die "$c: the second push does not restore to the data it was given"
	echo "$c: the second dre push restores to the data, byte for byte" >>"$D/notes"
	rm -rf "$D/restored" "$D"/dre-[ab] "$D"/cache-[ab] "$D"/restic-[ab] "$D"/rcache-[ab]
	cd - >/dev/null
}

# ---------------------------------------------------------------------------------------------------------------
# tree
if [ "$do_tree" = 1 ]; then
	say "tree: generating $files files, $tree_mb MiB"
	python3 - "$D/tree" "$files" $((tree_mb << 20)) "$gendump" <<'EOF'
import math, os, random, subprocess, sys, time
top, n, total, gendump = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(16)
raw = [math.exp(rng.uniform(0, math.log(65536))) for _ in range(n)]
scale = total / sum(raw)
sizes = [max(1, int(r * scale)) for r in raw]
sizes[sizes.index(max(sizes))] += total - sum(sizes)
text_bytes = sum(s for i, s in enumerate(sizes) if i % 2 == 0)
text = subprocess.Popen([gendump, str(text_bytes // (1 << 20) + 1), "1"], stdout=subprocess.PIPE)
rand = subprocess.Popen(["openssl", "enc", "-aes-256-ctr", "-nosalt", "-K", "%064x" % 16, "-iv", "%032x" % 0,
                         "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def take(stream, k):
    b = stream.read(k)
    if len(b) != k:
        sys.exit("generator stream ended early")
    return b
for d in range(100):
    os.makedirs(os.path.join(top, "d%02d" % d))
past = time.time() - 3600
paths = []
for i, s in enumerate(sizes):
    p = os.path.join(top, "d%02d" % (i % 100), "f%05d" % i)
    with open(p, "wb") as f:
        src = text.stdout if i % 2 == 0 else rand.stdout
        while s > 0:
            k = min(s, 1 << 22)
            f.write(take(src, k))
            s -= k
    paths.append(p)
rand.kill()
while text.stdout.read(1 << 20):
    pass
if text.wait() != 0:
    sys.exit("dre-gendump failed")
for p in paths + [os.path.join(top, "d%02d" % d) for d in range(100)] + [top]:
    os.utime(p, (past, past))
EOF
	files_case tree tree :
	rm -rf "$D/tree"
fi

# ---------------------------------------------------------------------------------------------------------------
# model
if [ "$do_model" = 1 ]; then
	say "model: generating $model_files files of $model_mb MiB"
	mkdir -p "$D/model"
	for i in $(seq "$model_files"); do
		"$genmodel" "$model_mb" "$i" >"$D/model/layer-$(printf %02d "$i").bin"
	done
	touch -d '1 hour ago' "$D/model"/* "$D/model"
	changed=$(((model_files + 1) / 2))
	fine_tune() { "$genmodel" "$model_mb" "$changed" --fine-tuned >"$D/model/layer-$(printf %02d "$changed").bin"; }
	files_case model model fine_tune
	rm -rf "$D/model"
fi

# ---------------------------------------------------------------------------------------------------------------
# pg
if [ "$do_pg" = 1 ]; then
	PGC=$src/tests/pg/pgcluster
	AS=() # the cluster's owner runs what touches the cluster, its data directory and the pg repositories
	[ "$(id -u)" -ne 0 ] || AS=(runuser -u postgres --)
	cd "$D" # a directory the cluster's owner can enter
	"${AS[@]}" test -x "$DRE" || die "$DRE cannot be run by the cluster's owner: ${TMPDIR:-/tmp} must be searchable"
	say "pg: a cluster, pgbench -i -s $pg_scale"
	# archiving starts once the tables are there: nothing restores to a time before the first backups
	"$PGC" init "$PGD" "archive_mode = on" "archive_command = '/bin/true'" "max_wal_size = 4GB" \
		>"$D/pg-init.log" 2>&1 || { cat "$D/pg-init.log" >&2; die "initdb failed"; }
	"$PGC" start "$PGD" || die "the cluster did not start"
	# shellcheck disable=SC1091
	. "$PGD/env"
	CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
	q() { "$PGC" psql "$PGD" "$@"; }
	"$PGC" exec "$PGD" pgbench -i -q -I dtGvp -s "$pg_scale" >"$D/pgbench-i.log" 2>&1 ||
		{ tail "$D/pgbench-i.log" >&2; die "pgbench -i failed"; }
	# a file written less than the margin for coarse clocks (2 s) before the first backups start would be read
	# again by every later one (its mtime is not older than the parent's start less the margin): they start 3 s
	# after the tables were written out, whatever the set-up below takes
	q "CHECKPOINT" >/dev/null
	settled_ms=$(($(date +%s%3N) + 3000))

	"$DRE" -q key generate "$D/pg-key"
	for r in a b; do
		mkdir -p "$D/pg-dre-$r" "$D/pg-cache-$r"
		printf 'repository = %s\npassword-file = %s\n' "$D/pg-dre-$r" "$D/pg-key" >"$D/pg-dre-$r.conf"
	done
	archive="env DRE_CACHE_DIR=$D/pg-cache-a $DRE --config $D/pg-dre-a.conf -q wal-push %p"
	archive+=" && env DRE_CACHE_DIR=$D/pg-cache-b $DRE --config $D/pg-dre-b.conf -q wal-push %p"
	if [ "$use_pgbr" = 1 ]; then
		P=$D/pgbr
		mkdir -p "$P/repo" "$P/log" "$P/lock" "$P/spool"
		cat >"$P/pgbackrest.conf" <<-EOF
			[global]
			repo1-path=$P/repo
			repo1-retention-full=2
			repo1-cipher-type=aes-256-cbc
			repo1-cipher-pass=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
			compress-type=zst
			process-max=2
			start-fast=y
			log-path=$P/log
			log-level-console=warn
			log-level-file=off
			lock-path=$P/lock
			spool-path=$P/spool

			[bench]
			pg1-path=$PGDATA
			pg1-port=$PGPORT
			pg1-socket-path=$PGHOST
			pg1-user=postgres
		EOF
		archive+=" && pgbackrest --config=$P/pgbackrest.conf --stanza=bench archive-push %p"
	fi
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$D"/pg-dre-* "$D"/pg-cache-* "$D/pg-key" "$D"/pg-dre-?.conf
	[ "$(id -u)" -ne 0 ] || [ "$use_pgbr" = 0 ] || chown -R postgres: "$P"
	chmod 600 "$D/pg-key"
	# pgdre_cmd a|b ARGS...: cmd is dre on that repository, as the cluster's owner
	pgdre_cmd() {
		local r=$1
		shift
		cmd=("${AS[@]}" env DRE_CACHE_DIR="$D/pg-cache-$r" "$DRE" --config "$D/pg-dre-$r.conf" "$@")
	}
	pgbr_cmd() { cmd=("${AS[@]}" pgbackrest --config="$P/pgbackrest.conf" --stanza=bench "$@"); }
	for r in a b; do
		pgdre_cmd $r -q init
		"${cmd[@]}"
	done
	if [ "$use_pgbr" = 1 ]; then
		pgbr_cmd stanza-create
		"${cmd[@]}" >"$D/pgbr-stanza.log" 2>&1 || { cat "$D/pgbr-stanza.log" >&2; die "pgbackrest stanza-create failed"; }
	fi
	q "ALTER SYSTEM SET archive_command TO '$archive'" "SELECT pg_reload_conf()" >/dev/null
	for i in $(seq 100); do
		[ "$(q "SHOW archive_command")" = "$archive" ] && break
		sleep 0.1
	done
	[ "$(q "SHOW archive_command")" = "$archive" ] || die "the cluster did not take the new archive_command"

	# caught_up: every WAL file written so far is archived (a backup then waits only for its own)
	caught_up() {
		local seg i
		seg=$(q "SELECT pg_walfile_name(pg_switch_wal())")
		for ((i = 0; i < 6000; i++)); do
			[ "$(q "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" = t ] && return 0
			sleep 0.1
		done
		tail -n 20 "$PGD/log" >&2
		die "WAL file $seg was not archived in 10 minutes (archive_command: $archive)"
	}
	data_size() { echo $(($(dub "$PGDATA") - $(dub "$PGDATA/pg_wal"))); } # what a base backup reads, about
	say "pg: first base backups"
	caught_up
	while [ "$(date +%s%3N)" -lt "$settled_ms" ]; do sleep 0.1; done
	size=$(data_size)
	pgdre_cmd a --json pg-backup --fast --dbname "$CONN"
	step pg "first backup" dre pg-dre-first "$D/pg-dre-a" "$size" "${cmd[@]}"
	pgdre_cmd b --json pg-backup --fast --dbname "$CONN"
	timed pg-dre-first-b "${cmd[@]}"
	if [ "$use_pgbr" = 1 ]; then
		pgbr_cmd --type=full backup
		step pg "first backup (full)" pgBackRest pg-pgbr-full "$P/repo/backup" "$size" "${cmd[@]}"
	fi

	say "pg: $pg_tx pgbench transactions"
	"$PGC" exec "$PGD" pgbench -n -c 4 -j 2 -t $((pg_tx / 4)) >"$D/pgbench.log" 2>&1 ||
		{ tail "$D/pgbench.log" >&2; die "pgbench failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$D/pgbench.log" | head -n 1)
	echo "pg: $((pg_tx / 4 * 4)) pgbench transactions (4 clients, ${tps%.*} tps) between the two rounds of backups" \
		>>"$D/notes"
	q "CHECKPOINT" >/dev/null
	caught_up
	size=$(data_size)

	say "pg: second base backups"
	pgdre_cmd a --json pg-backup --fast --dbname "$CONN"
	step pg "backup again" dre pg-dre-skip "$D/pg-dre-a" "$size" "${cmd[@]}"
	pgdre_cmd b --json pg-backup --force-read --fast --dbname "$CONN"
	step pg "backup again, --force-read" dre pg-dre-force "$D/pg-dre-b" "$size" "${cmd[@]}"
	if [ "$use_pgbr" = 1 ]; then
		pgbr_cmd --type=incr backup
		step pg "backup again (incr)" pgBackRest pg-pgbr-incr "$P/repo/backup" "$size" "${cmd[@]}"
	fi
	"$PGC" stop "$PGD" >/dev/null 2>&1 || true
	rm -rf "$PGD" "$D"/pg-dre-? "$D"/pgbr
	cd - >/dev/null
fi

# ---------------------------------------------------------------------------------------------------------------
# the tables
command="$prog"
[ "$small" = 0 ] || command+=" --small"
command+=" --cases $cases --files $files --tree-mb $tree_mb --model-files $model_files --model-mb $model_mb"
command+=" --pg-scale $pg_scale --pg-transactions $pg_tx"
[ "$warm" = 0 ] || command+=" --warm"
[ "$use_restic$use_pgbr" != 00 ] || command+=" (no peers)"
python3 - "$D/rows.jsonl" "$D/notes" "$D/table.md" "$json_out" "$machine" "$versions" "$cold" "$command" \
	"$files" "$model_files" <<'EOF'
import json, sys, time
rows_f, notes_f, md_f, json_f, machine, versions, cold, command, files, model_files = sys.argv[1:]
cold = cold == "yes"
rows = [json.loads(l) for l in open(rows_f)]
notes = [l.rstrip("\n") for l in open(notes_f)]
title = {"tree": "tree: %s files, unchanged" % format(int(files), ","),
         "model": "model: %s files, one of them fine-tuned (one tensor in ten re-drawn)" % model_files,
         "pg": "pg: base backups after pgbench writes (the data directory less pg_wal)"}
out = ["%s; %s" % (machine, versions), "command: %s" % command,
       "each step after a sync, %s" % ("the page cache dropped (cold)" if cold else "the page cache as it was (warm)"),
       ""]
def read_mb(r):
    if cold:
        return "%.1f" % (r["bytes_read_disk"] / 1e6)
    if r["bytes_read_reported"] is not None:
        return "%.1f" % (r["bytes_read_reported"] / 1e6)
    return "%.1f*" % (r["rchar"] / 1e6)
for case in dict.fromkeys(r["case"] for r in rows):
    rs = [r for r in rows if r["case"] == case]
    out += ["%s, %.1f MB" % (title[case], rs[-1]["size"] / 1e6), "",
            "| step | tool | wall s | MB/s | CPU s | peak RSS MiB | read MB | new stored MB | files skipped |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        out.append("| %s | %s | %.2f | %.0f | %.2f | %.0f | %s | %.1f | %s |" % (
            r["step"], r["tool"], r["wall_s"], r["size"] / 1e6 / max(r["wall_s"], 1e-3), r["cpu_s"],
            r["peak_rss_kib"] / 1024, read_mb(r), r["stored_new"] / 1e6,
            "–" if r["files_skipped"] is None else format(r["files_skipped"], ",")))
    out.append("")
if cold:
    out.append("read MB: bytes the command and its children read from the disk (/proc read_bytes)")
else:
    out.append("read MB: what dre says it read (size less bytes_skipped); * bytes the tool's processes read through "
               "read(2) and its kin (/proc rchar), their own repository and temporary files included")
out += notes
open(md_f, "w").write("\n".join(out) + "\n")
if json_f:
    json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine, "versions": versions,
               "command": command, "cold": cold, "notes": notes, "rows": rows}, open(json_f, "w"), indent=1)
EOF
cat "$D/table.md"
[ -z "$markdown" ] || cp "$D/table.md" "$markdown"
