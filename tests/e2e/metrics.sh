#!/bin/bash
# --metrics FILE (and the config key metrics-file): the Prometheus textfile that push, wal-push, check, forget and
# prune update, merged under a lock and replaced atomically; `dre stats` (table, --json, --prometheus) from the
# repository alone; wal-show --json's last archived segment and its time. Every file is checked by promtool and
# by a strict parser of this test's own (HELP and TYPE before every family, the HELP and TYPE that
# `dre help stats` documents, sorted families, sorted labels, valid escapes, numbers, no timestamps, no
# duplicates); 24 concurrent writers must not lose a line or a count; a malformed file is written afresh; a
# file that cannot be written is a warning that leaves the exit status alone. Local repository only: nothing here
# depends on the store but the repository label and size, which tests/e2e/s3.sh checks on S3.
. "$(dirname "$0")/lib.bash"

REPO=$DRE_REPOSITORY # the repository label: the URL, or a local path made absolute
on_s3 || REPO=$(realpath -m "$DRE_REPOSITORY")
TF=$T/textfile
M=$TF/dre.prom
mkdir -p "$TF" "$T/wal"
dre() { "$DRE" "$@"; }

# --- the strict parser, and the documentation it checks against ---
cat >"$T/strict.py" <<'EOF'
# strict.py FILE DOC: exits 1 naming every problem; prints "families: N, series: M" when the file is right.
import math, re, sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
doc = {}
# `dre help stats`: "  dre_x{name,repository} gauge" then "      HELP text"
lines = open(sys.argv[2], encoding='utf-8').read().split('\n')
for i, l in enumerate(lines):
    m = re.fullmatch(r'  (dre_[a-z_]+)\{([a-z,]+)\} (gauge|counter)', l)
    if m:
        doc[m.group(1)] = (m.group(2).split(','), m.group(3), lines[i + 1].strip())
if len(doc) < 12:
    sys.exit('dre help stats documents only %d families' % len(doc))

text = open(sys.argv[1], encoding='utf-8').read()
problems = []
def bad(n, msg):
    problems.append('line %d: %s' % (n, msg))
if not text.endswith('\n'):
    problems.append('no newline at the end')
fams, help_, type_, series, cur = [], {}, {}, set(), None
for n, line in enumerate(text[:-1].split('\n'), 1):
    if line.startswith('#'):
        m = re.fullmatch(r'# (HELP|TYPE) (%s) (.*)' % NAME, line)
        if not m:
            bad(n, 'a comment that is not HELP or TYPE: %r' % line)
            continue
        kind, fam, rest = m.groups()
        if kind == 'HELP':
            if fam in help_ or fam in fams:
                bad(n, 'a second HELP, or HELP after samples, for ' + fam)
            if re.search(r'\\(?![\\n])', rest):
                bad(n, 'bad escape in HELP')
            help_[fam] = rest
            cur = fam
        else:
            if fam != cur or fam not in help_:
                bad(n, 'TYPE of %s not right after its HELP' % fam)
            if rest not in ('counter', 'gauge'):
                bad(n, 'type %r' % rest)
            type_[fam] = rest
        continue
    m = re.fullmatch(r'(%s)(?:\{(.*)\})? (\S+)' % NAME, line)
    if not m:
        bad(n, 'not a sample (or a timestamp): %r' % line)
        continue
    name, labels, value = m.groups()
    if name != cur or name not in type_:
        bad(n, '%s: a sample without HELP and TYPE just before its group' % name)
    if not fams or fams[-1] != name:
        if name in fams:
            bad(n, '%s: its samples are not one group' % name)
        fams.append(name)
    pairs = re.findall(LABEL, labels or '')
    if ','.join('%s="%s"' % p for p in pairs) != (labels or ''):
        bad(n, 'labels do not parse: %r' % labels)
    keys = [k for k, _ in pairs]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        bad(n, 'labels not sorted or repeated: %r' % keys)
    if value not in ('NaN', '+Inf', '-Inf'):
        try:
            v = float(value)
            if math.isnan(v) or math.isinf(v) or re.search(r'[xXnNiI]', value):
                raise ValueError
        except ValueError:
            bad(n, 'value %r is not a number' % value)
    if (name, labels) in series:
        bad(n, 'duplicate series')
    series.add((name, labels))
    d = doc.get(name)
    if d is None:
        bad(n, '%s is not documented in dre help stats' % name)
    else:
        if keys != d[0]:
            bad(n, '%s has labels %s, documented %s' % (name, keys, d[0]))
        if help_.get(name) != d[2] or type_.get(name) != d[1]:
            bad(n, '%s: HELP or TYPE differs from dre help stats' % name)
if fams != sorted(fams):
    problems.append('families not sorted: %s' % fams)
if problems:
    print('\n'.join(problems))
    sys.exit(1)
print('families: %d, series: %d' % (len(fams), len(series)))
EOF
dre help stats >"$T/help-stats"
# valid FILE WHAT: promtool and the strict parser both accept FILE.
valid() {
	local out
	if ! out=$(promtool check metrics <"$1" 2>&1); then
		not_ok "$2: promtool check metrics accepts it"
		echo "$out" | sed 's/^/    promtool: /' | head -20
	else
		ok "$2: promtool check metrics accepts it"
	fi
	if ! out=$("$PY" "$T/strict.py" "$1" "$T/help-stats" 2>&1); then
		not_ok "$2: the strict parser accepts it"
		echo "$out" | sed 's/^/    strict: /' | head -20
		sed 's/^/    file: /' "$1" | head -40
	else
		ok "$2: the strict parser accepts it ($out)"
	fi
}
# value FILE SERIES: the value of the series written exactly as given (name{labels}); empty when absent.
value() { awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print substr($0, length(s) + 2) }' "$1"; }
lbl() { printf 'name="%s",repository="%s"' "$1" "$REPO"; }
R="repository=\"$REPO\""
now() { date +%s.%N; }
# jtrue EXPR: the Python expression over the JSON on stdin (as d) is true.
jtrue() { "$PY" -c "import json,sys; d=json.load(sys.stdin); sys.exit(not ($1))"; }
# between LO X HI: LO <= X <= HI as numbers (timestamps recorded while the command ran)
between() { "$PY" -c "import sys; lo, x, hi = map(float, sys.argv[1:]); sys.exit(not (lo - 0.002 <= x <= hi + 0.002))" "$@"; }

# mkseg TLI SEGNO SEED: a 1 MiB WAL segment as PostgreSQL writes one (long page header) in $T/wal; prints its path
mkseg() {
	"$PY" - "$@" "$T/wal" <<'EOF'
import struct, sys
tli, segno, seed, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
SEG = 1 << 20
b = bytearray((b"INSERT INTO t VALUES (42, 'row');" * (SEG // 33 + 1))[:SEG])
b[0:40] = bytes(40)
struct.pack_into('<HHIQ', b, 0, 0xD110, 0x0006, tli, segno * SEG)
struct.pack_into('<QII', b, 24, 7312345678901234567, SEG, 8192)
struct.pack_into('<Q', b, 8192 + 100, seed)
per = (1 << 32) // SEG
path = '%s/%08X%08X%08X' % (d, tli, segno // per, segno % per)
open(path, 'wb').write(b)
print(path)
EOF
}

expect_rc 0 "init" dre init
head -c 300000 /dev/urandom >"$T/data1"

# --- a push, then a failing push of the same name ---
t0=$(now)
expect_rc 0 "push with --metrics" dre --metrics "$M" push db1 "$T/data1"
t1=$(now)
valid "$M" "after a push"
s=$(value "$M" "dre_backup_last_success_timestamp_seconds{$(lbl db1)}")
check "push: last success time is when it ran ($s)" between "$t0" "${s:-0}" "$t1"
check "push: size is the bytes read" test "$(value "$M" "dre_backup_size_bytes{$(lbl db1)}")" = "$(dre snapshots --json | json "d[-1]['size']")"
check "push: stored is the snapshot's new bytes" test "$(value "$M" "dre_backup_stored_bytes{$(lbl db1)}")" = "$(stored_new db1)"
d=$(value "$M" "dre_backup_duration_seconds{$(lbl db1)}")
check "push: duration is within its run ($d)" "$PY" -c "import sys; sys.exit(not 0 <= $d <= $t1 - $t0)"
check "push: no failure time yet" test -z "$(value "$M" "dre_backup_last_failure_timestamp_seconds{$(lbl db1)}")"
check "the file is mode 0644 (node_exporter reads it)" test "$(stat -c %a "$M")" = 644
check "no temporary file is left beside it" test "$(find "$TF" -name '*.tmp.*' | wc -l)" = 0

t0=$(now)
expect_rc 6 "a push whose producer fails exits 6" dre --metrics "$M" push db1 -- sh -c 'echo partial; exit 3'
t1=$(now)
valid "$M" "after a failed push"
f=$(value "$M" "dre_backup_last_failure_timestamp_seconds{$(lbl db1)}")
check "failed push: its failure time is recorded ($f)" between "$t0" "${f:-0}" "$t1"
check "failed push: the last success time is unchanged" \
	test "$(value "$M" "dre_backup_last_success_timestamp_seconds{$(lbl db1)}")" = "$s"
expect_rc 3 "a push into a repository that does not exist fails" dre -r "$T/nothing" --metrics "$M" push db2 "$T/data1"
check "... and records a failure for its name and repository" \
	test -n "$(value "$M" "dre_backup_last_failure_timestamp_seconds{name=\"db2\",repository=\"$T/nothing\"}")"

# a name with the characters a label value escapes
odd='we"ird\name'
expect_rc 0 "push of a name with a quote and a backslash" dre --metrics "$M" push "$odd" "$T/data1"
check "its label value is escaped" grep -qF 'name="we\"ird\\name"' "$M"
valid "$M" "with escaped label values"

# --- wal-push: success sets the last archived time, failure counts ---
seg1=$(mkseg 1 1 1)
seg2=$(mkseg 1 2 2)
t0=$(now)
expect_rc 0 "wal-push of a segment" dre --metrics "$M" wal-push "$seg1"
expect_rc 0 "wal-push of the next segment" dre --metrics "$M" wal-push "$seg2"
t1=$(now)
w=$(value "$M" "dre_wal_last_archived_timestamp_seconds{$R}")
check "wal-push: last archived time is when it ran ($w)" between "$t0" "${w:-0}" "$t1"
expect_rc 3 "wal-push of a missing file fails (not found)" dre --metrics "$M" wal-push "$T/wal/000000010000000000000099"
check "wal-push failure: the counter is 1" test "$(value "$M" "dre_wal_archive_failures_total{$R}")" = 1
mkseg 1 2 99 >/dev/null # the same name with other contents
expect_rc 1 "wal-push of different contents under an archived name fails" dre --metrics "$M" wal-push "$seg2"
check "wal-push failure: the counter is 2 (read, added, written)" test "$(value "$M" "dre_wal_archive_failures_total{$R}")" = 2
check "wal-push failure: the last archived time is unchanged" test "$(value "$M" "dre_wal_last_archived_timestamp_seconds{$R}")" = "$w"
valid "$M" "after wal-push"

# --- wal-show --json: the last archived segment and when ---
expect_rc 0 "wal-show --json" dre wal-show --json
cp "$T/cmd.out" "$T/walshow.json"
last_wal=$(basename "$seg2")
check "wal-show --json: last_archived is the newest segment" \
	test "$(json "d['last_archived']['wal']" <"$T/walshow.json")" = "$last_wal"
check "wal-show --json: ... per system too" \
	test "$(json "d['systems'][0]['last_archived']['wal']" <"$T/walshow.json")" = "$last_wal"
a=$(json "d['last_archived']['archived_ns'] / 1e9" <"$T/walshow.json")
check "wal-show --json: its archive time is when wal-push ran ($a)" between "$t0" "$a" "$t1"
check "wal-show --json: with its age and the time as text" \
	jtrue "d['last_archived']['age_seconds'] >= 0 and d['last_archived']['archived'].endswith('+00')" <"$T/walshow.json"
expect_rc 0 "wal-show names the last archived segment" dre wal-show
check "... in its text output" grep -q "last archived segment: $last_wal" "$T/cmd.out"

# --- check, forget, prune ---
# reposize: the bytes of every object, counted apart from dre (locally; on S3 what dre stats says)
reposize() {
	if on_s3; then
		"$DRE" stats --json | json "d['size_bytes']"
	else
		"$PY" -c "
import os, sys
print(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[1]) for f in fs if not f.startswith('.')))" "$REPO"
	fi
}
t0=$(now)
expect_rc 0 "check with --metrics" dre --metrics "$M" check
t1=$(now)
c=$(value "$M" "dre_check_last_success_timestamp_seconds{$R}")
check "check: last success time ($c)" between "$t0" "${c:-0}" "$t1"
check "check: the repository size is every object's bytes" test "$(value "$M" "dre_repository_size_bytes{$R}")" = "$(reposize)"
# a damaged repository: check fails and says so in the file (local: the test damages a pack file by hand)
if on_s3; then
	ok "check of a damaged pack: local repository only"
else
	pack=$(find "$REPO/packs" -type f | head -1)
	cp "$pack" "$T/pack.bak"
	printf 'XXXX' | dd of="$pack" bs=1 seek=100 conv=notrunc status=none
	expect_rc 5 "check --read-data of a damaged pack exits 5" dre --metrics "$M" check --read-data
	check "check: the failure time is recorded" test -n "$(value "$M" "dre_check_last_failure_timestamp_seconds{$R}")"
	check "check: the success time is unchanged" test "$(value "$M" "dre_check_last_success_timestamp_seconds{$R}")" = "$c"
	cp "$T/pack.bak" "$pack"
fi

expect_rc 0 "forget --dry-run" dre --metrics "$M" forget --keep-last 1 --dry-run
check "forget --dry-run records nothing" test -z "$(value "$M" "dre_forget_last_success_timestamp_seconds{$R}")"
expect_rc 0 "push db1 again" dre push db1 "$T/data1"
expect_rc 0 "forget --keep-last 1" dre --metrics "$M" forget --keep-last 1
check "forget: last success recorded" test -n "$(value "$M" "dre_forget_last_success_timestamp_seconds{$R}")"
expect_rc 0 "prune --dry-run" dre --metrics "$M" prune --dry-run
check "prune --dry-run records nothing" test -z "$(value "$M" "dre_prune_last_success_timestamp_seconds{$R}")"
expect_rc 0 "prune" dre --metrics "$M" prune
check "prune: last success recorded" test -n "$(value "$M" "dre_prune_last_success_timestamp_seconds{$R}")"
check "prune: the repository size after it" test "$(value "$M" "dre_repository_size_bytes{$R}")" = "$(reposize)"
expect_rc 2 "prune with a bad option fails" dre --metrics "$M" prune --max-unused lots
check "prune: a failure that ran is recorded" test -n "$(value "$M" "dre_prune_last_failure_timestamp_seconds{$R}")"
valid "$M" "after check, forget and prune"
expect_rc 0 "snapshots is not a command with metrics" dre --metrics "$T/none.prom" snapshots
check "... and writes no file" test ! -e "$T/none.prom"

# --- the config key, and bad names ---
printf 'metrics-file = %s\n' "$TF/fromconfig.prom" >"$T/m.conf"
expect_rc 0 "push with metrics-file in the config file" dre --config "$T/m.conf" push cfg "$T/data1"
check "the config's metrics-file is written" test -n "$(value "$TF/fromconfig.prom" "dre_backup_last_success_timestamp_seconds{$(lbl cfg)}")"
expect_rc 0 "--metrics wins over the config's metrics-file" dre --config "$T/m.conf" --metrics "$TF/option.prom" push cfg2 "$T/data1"
check "... the option's file has it" test -n "$(value "$TF/option.prom" "dre_backup_last_success_timestamp_seconds{$(lbl cfg2)}")"
check "... the config's file does not" test -z "$(value "$TF/fromconfig.prom" "dre_backup_last_success_timestamp_seconds{$(lbl cfg2)}")"
expect_rc 2 "--metrics with an empty name is a usage error" dre --metrics "" push x "$T/data1"
printf 'metrics-file =\n' >"$T/empty.conf"
expect_rc 2 "an empty metrics-file in the config is a usage error" dre --config "$T/empty.conf" push x "$T/data1"
check "... naming the file and the key" err_has "empty.conf: metrics-file is empty"

# --- a file it cannot write: a warning, the exit status stays ---
expect_rc 0 "push with --metrics in a missing directory succeeds" dre --metrics "$T/no/such/dir/dre.prom" push db3 "$T/data1"
check "... with a warning naming the file" err_has "warning: metrics file $T/no/such/dir/dre.prom not updated"
expect_rc 6 "a failing push keeps its own exit status too" dre --metrics "$T/no/such/dir/dre.prom" push db3 -- false
check "... and its own error message" err_has "exited with status 1"

# --- a malformed file is written afresh; another writer's family is kept ---
printf 'this is { not a metrics file\n' >"$TF/bad.prom"
expect_rc 0 "push over a malformed metrics file" dre --metrics "$TF/bad.prom" push db1 "$T/data1"
check "... warns that it writes it afresh, naming the line" err_has "bad.prom: line 1: .*writing it afresh"
valid "$TF/bad.prom" "a malformed file written afresh"
printf '# HELP dre_backup_size_bytes x\n# TYPE dre_backup_size_bytes gauge\ndre_backup_size_bytes{name="x",repository="y"} 1 1700000000000\n' >"$TF/ts.prom"
expect_rc 0 "push over a file with a sample timestamp" dre --metrics "$TF/ts.prom" push db1 "$T/data1"
check "... refused: node_exporter refuses timestamps" err_has "timestamp"
# each kind of damage the reader refuses: named in the warning, the file written afresh and valid
H='# HELP a x\n# TYPE a gauge\n'
malformed=(
	"${H}a{l=\"\\\\q\"} 1\n|a backslash that is not"
	"${H}a{l=\"x} 1\n|without its closing quote"
	"${H}a{l=\"1\",l=\"2\"} 1\n|a label given twice"
	"${H}a{l=\"1\" 1\n|labels not closed"
	"${H}a 1\na 2\n|a series given twice"
	"${H}a abc\n|not a number"
	"${H}a 1|no newline"
	"${H}a 1\n# HELP b y\n# TYPE b gauge\nb 1\na 2\n|not in one group"
	"# TYPE a gauge\na 1\n# HELP a x\n|after the family's samples"
	"# TYPE a gauge2\n|TYPE is not one of"
	"${H}# TYPE a counter\n|a second TYPE line"
	"a\0 1\n|NUL byte"
)
n=0
for m in "${malformed[@]}"; do
	n=$((n + 1))
	printf "${m%|*}" >"$TF/bad$n.prom"
	expect_rc 0 "malformed file $n: the push succeeds" dre --metrics "$TF/bad$n.prom" push db1 "$T/data1"
	check "malformed file $n: the warning says '${m##*|}'" err_has "bad$n.prom: line [0-9]*: ${m##*|}.*writing it afresh\|bad$n.prom: .*${m##*|}.*writing it afresh"
	check "malformed file $n: written afresh" sh -c "promtool check metrics <'$TF/bad$n.prom' && grep -q '^dre_backup_size_bytes{' '$TF/bad$n.prom' && ! grep -q '^a' '$TF/bad$n.prom'"
done
head -c 5000000 /dev/zero | tr '\0' '#' >"$TF/huge.prom"
expect_rc 0 "a metrics file over 4 MiB: the push succeeds" dre --metrics "$TF/huge.prom" push db1 "$T/data1"
check "... and says the file is too large" err_has "huge.prom: larger than 4 MiB; writing it afresh"
valid "$TF/huge.prom" "a file over 4 MiB written afresh"
mkdir "$TF/dir.prom"
expect_rc 0 "a directory where the metrics file should be: the push succeeds" dre --metrics "$TF/dir.prom" push db1 "$T/data1"
check "... with a warning that it is not a regular file" err_has "dir.prom not updated: .*not a regular file"
# what the reader accepts of another writer: comments, blank lines, a histogram's three kinds of line
printf '# a comment\n\n# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\nlat_seconds_bucket{le="1"} 2\nlat_seconds_bucket{le="+Inf"} 3\nlat_seconds_sum 4.5\nlat_seconds_count 3\n' >"$TF/hist.prom"
expect_rc 0 "push into a file with another writer's histogram" dre --metrics "$TF/hist.prom" push db1 "$T/data1"
check "... no warning" test ! -s "$T/cmd.err"
check "... its samples are kept" sh -c "grep -qx 'lat_seconds_bucket{le=\"+Inf\"} 3' '$TF/hist.prom' && grep -qx 'lat_seconds_sum 4.5' '$TF/hist.prom' && grep -qx 'lat_seconds_count 3' '$TF/hist.prom'"
check "... promtool accepts the result" sh -c "promtool check metrics <'$TF/hist.prom'"
printf '# HELP other_thing_total Something else.\n# TYPE other_thing_total counter\nother_thing_total{a="1"} 7\n' >"$TF/other.prom"
expect_rc 0 "push into a file with another family" dre --metrics "$TF/other.prom" push db1 "$T/data1"
check "the other family is kept" grep -qx 'other_thing_total{a="1"} 7' "$TF/other.prom"
check "... with its HELP and TYPE" grep -qx '# TYPE other_thing_total counter' "$TF/other.prom"
check "promtool accepts the merged file" sh -c "promtool check metrics <'$TF/other.prom'"

# --- PostgreSQL's umask 0077, and another user writing into the same file ---
SH=$T/shared
mkdir -m 0777 "$SH"
(umask 077 && dre --metrics "$SH/dre.prom" push db1 "$T/data1" >/dev/null 2>&1)
check "under umask 0077 the file is still mode 0644" test "$(stat -c %a "$SH/dre.prom")" = 644
check "... and its lock file too (another user must open it)" test "$(stat -c %a "$SH/dre.prom.lock")" = 644
expect_rc 3 "another user (nobody) runs a push that fails, into root's file" \
	runuser -u nobody -- env DRE_PASSWORD=x "$DRE" -r "$T/nothing" --metrics "$SH/dre.prom" push db9 "$T/data1"
check "... without a warning" sh -c "! grep -q warning '$T/cmd.err'"
check "... its line is there" test -n "$(value "$SH/dre.prom" "dre_backup_last_failure_timestamp_seconds{name=\"db9\",repository=\"$T/nothing\"}")"
check "... and root's are kept" test -n "$(value "$SH/dre.prom" "dre_backup_last_success_timestamp_seconds{$(lbl db1)}")"

# --- 24 concurrent writers: every line present, every failure counted ---
cp "$M" "$T/before.prom"
fails_before=$(value "$M" "dre_wal_archive_failures_total{$R}")
segs=()
for i in $(seq 10 17); do segs+=("$(mkseg 1 "$i" "$i")"); done
pids=()
tpar0=$(now)
for i in $(seq 1 8); do dre --metrics "$M" -q push "par$i" "$T/data1" 2>"$T/par$i.err" & pids+=($!); done
for s in "${segs[@]}"; do dre --metrics "$M" -q wal-push "$s" 2>"$T/$(basename "$s").err" & pids+=($!); done
for i in $(seq 1 8); do dre --metrics "$M" -q wal-push "$T/wal/00000001000000000000FF0$i" 2>/dev/null & pids+=($!); done
bad=0
for p in "${pids[@]:0:16}"; do wait "$p" || bad=$((bad + 1)); done
for p in "${pids[@]:16}"; do wait "$p" && bad=$((bad + 1)); done
tpar1=$(now)
check "24 concurrent writers: pushes and wal-pushes succeeded, the failing ones failed" test "$bad" = 0
missing=0
for i in $(seq 1 8); do
	for fam in last_success_timestamp_seconds size_bytes stored_bytes duration_seconds; do
		[ -n "$(value "$M" "dre_backup_${fam}{$(lbl "par$i")}")" ] || { missing=$((missing + 1)); echo "    missing: par$i $fam"; }
	done
done
check "every concurrent push's four lines are there" test "$missing" = 0
check "every failed wal-push is counted ($fails_before + 8)" \
	test "$(value "$M" "dre_wal_archive_failures_total{$R}")" = $((fails_before + 8))
check "the lines from before are all still there (or newer)" "$PY" - "$T/before.prom" "$M" <<'EOF'
import sys
def series(p):
    return {l.rsplit(' ', 1)[0] for l in open(p) if not l.startswith('#')}
sys.exit(not series(sys.argv[1]) <= series(sys.argv[2]))
EOF
check "no warning from any concurrent writer" sh -c "! cat '$T'/par*.err '$T'/0000*.err | grep -q ."
valid "$M" "after 24 concurrent writers"
check "only the file and its lock file are left" \
	test "$(find "$TF" -name 'dre.prom*' | sort | tr '\n' ' ')" = "$M $M.lock "

# --- wal-show --metrics: the gap between segments 2 and 10 (3..9) ---
expect_rc 5 "wal-show --metrics with a gap in the archive exits 5" dre --metrics "$M" wal-show
check "wal-show --metrics: dre_wal_missing_segments is 7" test "$(value "$M" "dre_wal_missing_segments{$R}")" = 7
check "wal-show --json: missing_segments 7" test "$(dre wal-show --json 2>/dev/null | json "d['missing_segments']")" = 7
valid "$M" "after wal-show"

# --- dre stats: from the repository alone ---
expect_rc 0 "stats --prometheus" dre stats --prometheus
cp "$T/cmd.out" "$T/stats.prom"
valid "$T/stats.prom" "stats --prometheus"

ls_ok=$(value "$T/stats.prom" "dre_backup_last_success_timestamp_seconds{$(lbl par3)}")
check "stats: a name's last success is its newest snapshot's end ($ls_ok)" test -n "$ls_ok"
check "stats: the same size as the file says" \
	test "$(value "$T/stats.prom" "dre_backup_size_bytes{$(lbl par3)}")" = "$(value "$M" "dre_backup_size_bytes{$(lbl par3)}")"
check "stats: the same stored bytes as the file says" \
	test "$(value "$T/stats.prom" "dre_backup_stored_bytes{$(lbl par3)}")" = "$(value "$M" "dre_backup_stored_bytes{$(lbl par3)}")"
# the repository's times (a snapshot's end, a WAL object's) and the file's (each command's end, the last of 8
# concurrent writers to take the lock) differ by as long as a loaded machine takes: both lie within the run
check "stats: the last success lies within the concurrent pushes' run ($ls_ok)" between "$tpar0" "${ls_ok:-0}" "$tpar1"
check "  ... as the file's does" between "$tpar0" "$(value "$M" "dre_backup_last_success_timestamp_seconds{$(lbl par3)}")" "$tpar1"
check "stats: the repository size is every object's bytes" test "$(value "$T/stats.prom" "dre_repository_size_bytes{$R}")" = "$(reposize)"
sw=$(value "$T/stats.prom" "dre_wal_last_archived_timestamp_seconds{$R}")
fw=$(value "$M" "dre_wal_last_archived_timestamp_seconds{$R}")
check "stats: the last WAL archive time lies within the concurrent wal-pushes' run ($sw)" between "$tpar0" "${sw:-0}" "$tpar1"
check "  ... as the file's does ($fw)" between "$tpar0" "${fw:-0}" "$tpar1"
check "stats: the same missing WAL segments as wal-show" test "$(value "$T/stats.prom" "dre_wal_missing_segments{$R}")" = 7
expect_rc 0 "stats --json" dre stats --json
check "stats --json: every name, the WAL, the size" jtrue \
	"len(d['names']) >= 10 and d['wal']['last_archived']['wal'] == '000000010000000000000011' and d['size_bytes'] == $(reposize)" <"$T/cmd.out"
expect_rc 0 "stats" dre stats
check "stats: a table row per name" grep -q "^par5 .* files " "$T/cmd.out"
check "stats: the WAL line" grep -q "^WAL: last segment 000000010000000000000011 archived" "$T/cmd.out"
check "stats: the missing segments" grep -q "^WAL: 7 segments missing" "$T/cmd.out"
expect_rc 2 "stats --json --prometheus is a usage error" dre stats --json --prometheus
check "dre help documents --metrics" sh -c "'$DRE' help | grep -q -- '--metrics FILE'"

finish
