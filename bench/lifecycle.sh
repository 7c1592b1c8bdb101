#!/usr/bin/env bash
# bench/lifecycle.sh — `make bench-lifecycle`: what forget, prune and copy cost on local repositories, in one run
# on this machine (bench/README.md, "Lifecycle: forget, prune, copy").
#
#   bench/lifecycle.sh [--build DIR] [--bulk-snapshots N] [--bulk-mb MB] [--days N] [--dump-mb MB]
#                      [--markdown FILE]
#
# 1. Prune at scale. A repository made with small chunks (dre init --chunk-min 1K --chunk-avg 2K --chunk-max 8K)
#    gets N (12) snapshots of MB (256) MiB of incompressible data each, generated deterministically (SHAKE-128 of
#    the snapshot and piece number, 1 MiB pieces). Snapshot i is its own data, except that in the first half of its
#    stream every fourth piece is one that snapshot i-1 wrote: 12 × 256 MiB pushes store about 2.7 GB in some
#    1.18 million chunks. Every other snapshot (the 1st, 3rd, ...) is forgotten by ID, so the packs of the second
#    half of a forgotten snapshot are dead and those of its first half still hold the pieces the next snapshot
#    shares: prune deletes the first and repacks the second. Then `dre prune --dry-run` and `dre prune --grace 0`,
#    each under /usr/bin/time -v, each after a sync and (as root) with the page cache dropped; then `dre check`
#    and a restore of the newest snapshot, compared with the generator's output.
# 2. A month of daily dumps. dre-gendump MB (1024) 1 is split into its 301 parts (header, 300 COPY blocks); each
#    day from the second on edits 9 of the 300 tables (3 %; day d: tables (11 d + 33 j) mod 300, j = 0..8) the way
#    the generator's --next-day edits a table: of every 500 rows one is deleted, one updated and one inserted,
#    spread through the table. Edits accumulate from day to day. Each day's dump is pushed under one name ("db")
#    with faketime, one day apart from 2026-11-01 02:00 UTC (TZ=UTC). Then `dre forget --keep-daily 7
#    --keep-weekly 4` and `dre prune --grace 0` (page cache dropped as above), `dre check`, and a restore of the
#    last day compared with its input.
#    The same forget and `dre prune --grace 0 --max-unused 20%` run on a copy of the repository made before it.
# 3. Copy. Before the forget of 2, `dre copy --to` a fresh second local repository copies the 30 days; a second
#    identical copy follows. After the prune of 2, one more day (day N+1) is pushed and copied.
#
# Figures: wall and CPU time, peak RSS (Maximum resident set size) of each dre command; sizes from the commands'
# --json output and from `du -sb` of the repository directories. Everything lives in one directory under
# ${TMPDIR:-/tmp}, removed at the end (also on failure or interrupt). Installs faketime (and time) from Debian
# when missing. The whole run takes about 4 minutes on a 2-core VM and needs about 4.5 GB of free space there.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build=build bulk_n=12 bulk_mb=256 days=30 dump_mb=1024 markdown=
usage() {
	echo "usage: bench/lifecycle.sh [--build DIR] [--bulk-snapshots N] [--bulk-mb MB] [--days N] [--dump-mb MB] [--markdown FILE]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--bulk-snapshots) bulk_n=$2; shift 2 ;;
	--bulk-mb) bulk_mb=$2; shift 2 ;;
	--days) days=$2; shift 2 ;;
	--dump-mb) dump_mb=$2; shift 2 ;;
	--markdown) markdown=$2; shift 2 ;;
	*) usage ;;
	esac
done
[ "$bulk_n" -ge 2 ] && [ "$days" -ge 2 ] && [ "$bulk_mb" -ge 8 ] && [ "$dump_mb" -ge 16 ] || usage
say() { echo "lifecycle: $*" >&2; }
die() { say "$*"; exit 1; }

DRE=$src/$build/dre
GENDUMP=$src/$build/dre-gendump
[ -x "$DRE" ] && [ -x "$GENDUMP" ] || die "$DRE or $GENDUMP missing: run make BUILD=$build all"

sudo=()
[ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo=(sudo); }
missing=()
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		>/dev/null 2>&1 || { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" env \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
		die "apt-get install ${missing[*]} failed"
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/dre-lifecycle.XXXXXX")
trap 'rm -rf "$D"' EXIT
trap 'exit 130' INT TERM HUP
export DRE_PASSWORD=bench-password DRE_TO_PASSWORD=bench-password DRE_CACHE_DIR=$D/cache TZ=UTC LC_ALL=C
unset DRE_PASSWORD_FILE DRE_PASSWORD_COMMAND DRE_TO_PASSWORD_FILE DRE_REPOSITORY
cold=no
[ -w /proc/sys/vm/drop_caches ] && cold=yes
start_s=$SECONDS

# timed NAME [--cold] CMD...: runs CMD under /usr/bin/time -v, stdout to $D/NAME.out, the timing to $D/NAME.time;
# a failure prints dre's error and the command, and ends the run
timed() {
	local name=$1
	shift
	sync
	if [ "$1" = --cold ]; then
		shift
		if [ "$cold" = yes ]; then echo 3 >/proc/sys/vm/drop_caches; fi
	fi
	if ! /usr/bin/time -v -o "$D/$name.time" "$@" >"$D/$name.out" 2>"$D/$name.err"; then
		cat "$D/$name.err" >&2
		tail -n 25 "$D/$name.time" >&2 || true
		die "failed ($name): $*"
	fi
	grep -v '^dre: warning: index cache not used' "$D/$name.err" >&2 || true
}
# tv NAME: "wall_s cpu_s rss_kib" of a timed command
tv() {
	python3 - "$D/$1.time" <<'EOF'
import sys
t = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().rpartition(": ")
    t[k] = v
w = [float(x) for x in t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
wall = w[-1] + 60 * w[-2] + (3600 * w[-3] if len(w) > 2 else 0)
print("%.2f %.2f %s" % (wall, float(t["User time (seconds)"]) + float(t["System time (seconds)"]),
                        t["Maximum resident set size (kbytes)"]))
EOF
}
# js FILE EXPR: a Python expression over d, the JSON document in FILE
js() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
dub() { du -sb "$1" | cut -f1; }
# results: one "key value..." line per figure, formatted at the end
R=$D/results
rec() { echo "$*" >>"$R"; }

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
rec machine "$(nproc) cores, $cpu, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
rec date "$(date -u '+%Y-%m-%d %H:%M UTC')"
rec command "bench/lifecycle.sh --build $build --bulk-snapshots $bulk_n --bulk-mb $bulk_mb --days $days --dump-mb $dump_mb"
rec cold "$cold"

# ---------------------------------------------------------------------------------------------------------------
# 1. prune at scale
cat >"$D/gen.py" <<'EOF'
# gen.py I PIECES: snapshot I of part 1, PIECES MiB of incompressible data (see the header of lifecycle.sh)
import hashlib, sys
i, n = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
piece = lambda i, k: hashlib.shake_128(b"dre-lifecycle %d %d" % (i, k)).digest(1 << 20)
for k in range(n):
    out.write(piece(i - 1, k + 1) if i > 1 and k < n // 2 and k % 4 == 0 else piece(i, k))
EOF
B=$D/bulk
say "1. prune at scale: $bulk_n snapshots of $bulk_mb MiB at 2 KiB chunks"
"$DRE" -r "$B" -q init --chunk-min 1K --chunk-avg 2K --chunk-max 8K
push_wall=0 push_cpu=0 push_rss=0
for i in $(seq "$bulk_n"); do
	timed bulk-push-$i "$DRE" -r "$B" --json push bulk -- python3 "$D/gen.py" "$i" "$bulk_mb"
	read -r w c m < <(tv bulk-push-$i)
	push_wall=$(python3 -c "print(round($push_wall + $w, 2))") push_cpu=$(python3 -c "print(round($push_cpu + $c, 2))")
	[ "$m" -gt "$push_rss" ] && push_rss=$m
	js "$D/bulk-push-$i.out" 'd["id"]' >>"$D/bulk-ids"
done
rec bulk_push "$push_wall $push_cpu $push_rss $((bulk_n * bulk_mb)) $(dub "$B")"
# forget every other snapshot: the 1st, 3rd, ...
mapfile -t forget_ids < <(awk 'NR % 2 == 1' "$D/bulk-ids")
timed bulk-forget "$DRE" -r "$B" --json forget "${forget_ids[@]}"
rec bulk_forget "$(tv bulk-forget) $(js "$D/bulk-forget.out" 'd["totals"]["removed"]') $(js "$D/bulk-forget.out" 'd["totals"]["kept"]')"
timed bulk-dry --cold "$DRE" -r "$B" --json prune --dry-run --grace 0
rec bulk_dry "$(tv bulk-dry)"
size_before=$(dub "$B")
timed bulk-prune --cold "$DRE" -r "$B" --json prune --grace 0
size_after=$(dub "$B")
P=$D/bulk-prune.out
rec bulk_prune "$(tv bulk-prune) $size_before $size_after"
rec bulk_prune_json "$(js "$P" '" ".join(str(d[k]) for k in ("chunks", "chunks_referenced", "packs", "packs_dead", "packs_repacked", "packs_deleted", "packs_written", "index_objects", "index_deleted", "index_rewritten", "bytes_total", "bytes_deleted", "bytes_written", "bytes_freed", "seconds"))')"
[ "$(js "$D/bulk-dry.out" '(d["packs_dead"], d["packs_repacked"], d["chunks"])')" = \
	"$(js "$P" '(d["packs_dead"], d["packs_repacked"], d["chunks"])')" ] ||
	say "WARNING: the dry run and the prune disagree on what to delete"
timed bulk-check "$DRE" -r "$B" check
rec bulk_check "$(tv bulk-check)" "$(tail -n 1 "$D/bulk-check.out")"
last=$(tail -n 1 "$D/bulk-ids")
if ! cmp -s <("$DRE" -r "$B" -q restore "$last") <(python3 "$D/gen.py" "$bulk_n" "$bulk_mb"); then
	die "part 1: the newest snapshot does not restore to its input after the prune"
fi
rec bulk_restore ok
rm -rf "$B" "$D/cache"

# ---------------------------------------------------------------------------------------------------------------
# 2. a month of daily dumps, 3. copy
M=$D/month C=$D/copy TB=$D/tables
say "2. $days daily dumps of $dump_mb MiB"
mkdir -p "$TB"
"$GENDUMP" "$dump_mb" 1 | awk -v dir="$TB" 'BEGIN { f = dir "/000" }
	/^COPY public\.table_/ { close(f); f = sprintf("%s/t%03d", dir, n++) } { print > f }'
[ "$(find "$TB" -type f -name 't*' | wc -l)" -eq 300 ] || die "the generated dump did not split into 300 tables"
# edit_day D: the day's edits, in place
edit_day() {
	local d=$1 j t
	for j in 0 1 2 3 4 5 6 7 8; do
		t=$(printf '%s/t%03d' "$TB" $(((11 * d + 33 * j) % 300)))
		awk -F '\t' -v OFS='\t' -v d="$d" '
			FNR == 1 || $0 == "\\." || $0 == "" { print; next }
			{ h = (FNR * 40503 + d * 7919) % 500 }
			h == 0 { next }                                     # deleted
			h == 1 { $NF = $NF "-" d }                          # updated
			{ print }
			h == 2 { $1 = $1 "0" d; $NF = "inserted on day " d; print }   # inserted' "$t" >"$t.new"
		mv "$t.new" "$t"
	done
}
day_time() { date -u -d "@$(($(date -u -d '2026-11-01 02:00:00' +%s) + ($1 - 1) * 86400))" '+%Y-%m-%d %H:%M:%S'; }
push_day() { # push_day D
	[ "$1" -eq 1 ] || edit_day "$1"
	timed month-push-$1 env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$(day_time "$1")" \
		"$DRE" -r "$M" --json push db -- sh -c 'cat "$0"/*' "$TB"
}
"$DRE" -r "$M" -q init
push_wall=0 push_rss=0 first_new=0 later_new=()
for d in $(seq "$days"); do
	push_day "$d"
	read -r w c m < <(tv month-push-$d)
	push_wall=$(python3 -c "print(round($push_wall + $w, 2))")
	[ "$m" -gt "$push_rss" ] && push_rss=$m
	if [ "$d" -eq 1 ]; then first_new=$(js "$D/month-push-$d.out" 'd["stored_new"]')
	else later_new+=("$(js "$D/month-push-$d.out" 'd["stored_new"]')"); fi
done
dump_bytes=$(cat "$TB"/* | wc -c)
rec month_push "$push_wall $push_rss $dump_bytes $first_new $(IFS=,; python3 -c "import statistics as s; v=[${later_new[*]}]; print(min(v), round(s.median(v)), max(v))") $(dub "$M")"
"$DRE" -r "$M" snapshots --json >"$D/month-snapshots.json"
[ "$(js "$D/month-snapshots.json" 'len(set(s["time"][:10] for s in d))')" -eq "$days" ] ||
	die "part 2: the $days snapshots are not on $days different days (faketime)"
cp "$D/month-snapshots.json" "$D/month-snapshots-before.json"

say "3. copy of the $days days into a second repository"
"$DRE" -r "$C" -q init
for n in 1 2; do
	cb=$(dub "$C")
	timed copy-$n "$DRE" -r "$M" --json copy --to "$C"
	rec copy_$n "$(tv copy-$n) $(js "$D/copy-$n.out" '" ".join(str(d[k]) for k in ("copied", "already_there", "bytes_read", "bytes_fetched", "stored_new"))') $(($(dub "$C") - cb))"
done
timed copy-check "$DRE" -r "$C" check
rec copy_check "$(tv copy-check)" "$(tail -n 1 "$D/copy-check.out")"
cmp -s <("$DRE" -r "$C" -q restore db) <(cat "$TB"/*) || die "part 3: the copied last day does not restore to its input"

say "2. forget --keep-daily 7 --keep-weekly 4, prune"
cp -a "$M" "$D/month-b" # the same forget, then prune --max-unused 20%, on this copy
mb=$(dub "$M")
timed month-forget "$DRE" -r "$M" --json forget --keep-daily 7 --keep-weekly 4
kept_days=$(js "$D/month-forget.out" '" ".join(s["time"][5:10] for g in d["groups"] for s in g["snapshots"] if s["action"] == "keep")')
rec month_forget "$(tv month-forget) $(js "$D/month-forget.out" 'd["totals"]["kept"]') $(js "$D/month-forget.out" 'd["totals"]["removed"]') $kept_days"
timed month-prune --cold "$DRE" -r "$M" --json prune --grace 0
P=$D/month-prune.out
rec month_prune "$(tv month-prune) $mb $(dub "$M") $(js "$P" '" ".join(str(d[k]) for k in ("chunks", "chunks_referenced", "packs", "packs_dead", "packs_repacked", "packs_deleted", "packs_written", "bytes_total", "bytes_freed", "bytes_written"))')"
timed month-check "$DRE" -r "$M" check
rec month_check "$(tv month-check)" "$(tail -n 1 "$D/month-check.out")"
cmp -s <("$DRE" -r "$M" -q restore db) <(cat "$TB"/*) || die "part 2: the last day does not restore to its input after the prune"
"$DRE" -r "$D/month-b" --no-cache -q forget --keep-daily 7 --keep-weekly 4
mb=$(dub "$D/month-b")
timed month-prune-b --cold "$DRE" -r "$D/month-b" --no-cache --json prune --grace 0 --max-unused 20%
P=$D/month-prune-b.out
rec month_prune_b "$(tv month-prune-b) $mb $(dub "$D/month-b") $(js "$P" '" ".join(str(d[k]) for k in ("chunks", "chunks_referenced", "packs", "packs_dead", "packs_repacked", "packs_deleted", "packs_written", "bytes_total", "bytes_freed", "bytes_written"))')"
"$DRE" -r "$D/month-b" --no-cache -q check >/dev/null || die "part 2: check failed after prune --max-unused 20%"
rm -rf "$D/month-b"

say "3. one more day, copied"
push_day $((days + 1))
rec month_push_next "$(tv month-push-$((days + 1))) $(js "$D/month-push-$((days + 1)).out" 'd["stored_new"]')"
cb=$(dub "$C")
timed copy-3 "$DRE" -r "$M" --json copy --to "$C"
rec copy_3 "$(tv copy-3) $(js "$D/copy-3.out" '" ".join(str(d[k]) for k in ("copied", "already_there", "bytes_read", "bytes_fetched", "stored_new"))') $(($(dub "$C") - cb))"
cmp -s <("$DRE" -r "$C" -q restore db) <(cat "$TB"/*) || die "part 3: the copied day $((days + 1)) does not restore to its input"
rec total_s $((SECONDS - start_s))

# ---------------------------------------------------------------------------------------------------------------
python3 - "$R" <<'EOF' | tee "$D/table.md"
import sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition(" ")
    r[k] = v
f = lambda k: r[k].split()
MiB, GB = 1 << 20, 1e9
mib = lambda kib: "%d MiB" % round(int(kib) / 1024)
gb = lambda b: ("%.2f GB" % (int(b) / GB) if int(b) >= GB else "%.1f MB" % (int(b) / 1e6) if int(b) >= 1e6 else
              "%.1f kB" % (int(b) / 1e3) if int(b) >= 1000 else "%d B" % int(b))

print("machine: " + r["machine"])
print("date: " + r["date"] + "; command: " + r["command"])
print("prune steps: " + ("after a sync, page cache dropped" if r["cold"] == "yes" else
      "after a sync, page cache NOT dropped (not root)") + "\n")

pw, pc, prss, pmb, psize = f("bulk_push")
fw, fc, frss, fremoved, fkept = f("bulk_forget")
dw, dc, drss = f("bulk_dry")
w, c, rss, sb, sa = f("bulk_prune")
(chunks, chunks_ref, packs, dead, repacked, deleted, written, iobj, idel, irew, btot, bdel, bwri, bfreed,
 secs) = f("bulk_prune_json")
chunks = int(chunks)
target = 128 * MiB + 40 * chunks
rssb = int(rss) * 1024
cw, cc, crss = f("bulk_check")[:3]
print("**1. Prune at scale** (2 KiB chunks)\n")
print("| step | wall s | CPU s | peak RSS | figures |")
print("|---|---|---|---|---|")
nbulk = r["command"].split("--bulk-snapshots ")[1].split()[0]
print("| %s pushes, %d MiB in all (CPU: the generator's too) | %s | %s | %s (largest) | repository %s |" % (
    nbulk, int(pmb), pw, pc, mib(prss), gb(psize)))
print("| forget %s of %s snapshots by ID | %s | %s | %s | |" % (fremoved, nbulk, fw, fc, mib(frss)))
print("| prune --dry-run | %s | %s | %s | same plan as the prune |" % (dw, dc, mib(drss)))
print("| **prune --grace 0** | **%s** | %s | **%s** | %s chunks (list blobs included) in %s packs, %s referenced; "
      "%s packs deleted (%s dead, %s repacked into %s new), %s of %s index objects deleted, %s rewritten; "
      "%s freed (%s deleted, %s written); repository %s → %s |" % (
    w, c, mib(rss), f"{chunks:,}", packs, f"{int(chunks_ref):,}", deleted, dead, repacked, written, idel, iobj, irew,
    gb(bfreed), gb(bdel), gb(bwri), gb(sb), gb(sa)))
print("| peak RSS against the target | | | | %.1f bytes per chunk in all; %s against 128 MiB + 40 B × %s = %s (%.0f %%) |" % (
    rssb / chunks, mib(rss), f"{chunks:,}", "%d MiB" % round(target / MiB), 100.0 * rssb / target))
print("| check after the prune | %s | %s | %s | %s |" % (cw, cc, mib(crss), " ".join(f("bulk_check")[3:])))
print("| restore of the newest snapshot | | | | identical to its input |\n")

(pw, prss, dbytes, first, lmin, lmed, lmax, msize) = f("month_push")
days = int(r["command"].split("--days ")[1].split()[0])
fw, fc, frss, kept, removed = f("month_forget")[:5]
kept_days = f("month_forget")[5:]
(w, c, rss, sb, sa, chunks, chunks_ref, packs, dead, repacked, deleted, written, btot, bfreed, bwri) = f("month_prune")
cw, cc, crss = f("month_check")[:3]
print("**2. A month of daily dumps** (default chunks; %s-byte dumps, 9 of 300 tables edited a day)\n" % f"{int(dbytes):,}")
print("| step | wall s | CPU s | peak RSS | figures |")
print("|---|---|---|---|---|")
print("| %d daily pushes (faketime, one day apart) | %s in all | | %s (largest) | day 1 stored %s; days 2–%d %s – %s, median %s; repository %s |" % (
    days, pw, mib(prss), gb(first), days, gb(lmin), gb(lmax), gb(lmed), gb(msize)))
print("| forget --keep-daily 7 --keep-weekly 4 | %s | %s | %s | %s kept (%s), %s removed |" % (
    fw, fc, mib(frss), kept, ", ".join(sorted(kept_days)), removed))
print("| **prune --grace 0** | **%s** | %s | **%s** | %s packs deleted (%s dead, %s repacked into %s new); %s freed (%s written); "
      "repository %s → %s |" % (w, c, mib(rss), deleted, dead, repacked, written, gb(bfreed), gb(bwri), gb(sb), gb(sa)))
print("| check after the prune | %s | %s | %s | %s |" % (cw, cc, mib(crss), " ".join(f("month_check")[3:])))
(w, c, rss, sb, sa, chunks, chunks_ref, packs, dead, repacked, deleted, written, btot, bfreed, bwri) = f("month_prune_b")
print("| the same forget, then prune --grace 0 --max-unused 20%% (on a copy made before the forget) | %s | %s | %s | "
      "%s packs deleted (%s dead, %s repacked into %s new); %s freed (%s written); repository %s → %s |\n" % (
      w, c, mib(rss), deleted, dead, repacked, written, gb(bfreed), gb(bwri), gb(sb), gb(sa)))

print("**3. Copy** of the month into a second local repository\n")
print("| step | wall s | CPU s | peak RSS | snapshots copied | read (logical) | fetched | stored new (JSON) | target grew (du) |")
print("|---|---|---|---|---|---|---|---|---|")
for k, what in (("copy_1", "first copy, %d days" % days), ("copy_2", "second copy, the same"),
                ("copy_3", "after the prune and one more day")):
    w, c, rss, copied, there, bread, bfetch, snew, grew = f(k)
    print("| %s | %s | %s | %s | %s (%s already there) | %s | %s | %s | %s |" % (
        what, w, c, mib(rss), copied, there, gb(bread), gb(bfetch), gb(snew), gb(grew)))
cw, cc, crss = f("copy_check")[:3]
print("\ncheck of the target after the second copy: %s s, %s; %s" % (cw, mib(crss), " ".join(f("copy_check")[3:])))
print("whole run: %s s" % r["total_s"])
EOF
[ -z "$markdown" ] || cp "$D/table.md" "$markdown"
