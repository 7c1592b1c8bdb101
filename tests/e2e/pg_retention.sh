#!/bin/bash
# WAL expiry (format-spec.md §16.5) on a real PostgreSQL 15 cluster: archive_command = 'dre wal-push %p', three
# base backups with writes and pg_switch_wal() between them, then
#   a. forget --dry-run of the oldest backup removes nothing, and counts what the real run removes;
#   b. forget of the oldest backup removes exactly the WAL below the next one's start (the anchor), wal-show
#      shows the new window and exits 0, check passes, and pg-restore --time T (after the second backup, one row
#      committed just before T and one just after) gives exactly the state at T;
#   c. on the restored cluster (timeline 2) a fourth backup, then forget --pitr-window 0h: the fourth anchors,
#      the second and third keep only their own ranges (the third lies on timeline 1 after the branch point and
#      never anchors), wal-show reads the stretches in between as expired (exit 0), and the second backup still
#      restores to its end point on real PostgreSQL (pg-restore --backup ID --lsn its stop LSN).
# Local repository only: the test lists the repository's wal/ directory as files.
# Every dre command runs as the cluster's owner (postgres) with no DRE_* variables, as archive_command does.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

PGC=$DRE_SRC/tests/pg/pgcluster

pg_prereqs

C1=$T/c1
cleanup() { "$PGC" stop "$C1" 2>/dev/null; }
trap cleanup EXIT

chmod o+x "$T"
PGT=$T/pg
mkdir -p "$PGT/tmp" "$PGT/work" "$DRE_REPOSITORY"
cp "$DRE_PASSWORD_FILE" "$PGT/password"
chmod 600 "$PGT/password"
CFG=$PGT/pg.conf
printf 'repository = %s\npassword-file = %s\n' "$DRE_REPOSITORY" "$PGT/password" >"$CFG"
chmod 600 "$CFG"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$PGT" "$DRE_REPOSITORY"

BARE=(env -u DRE_REPOSITORY -u DRE_PASSWORD_FILE -u DRE_PASSWORD -u DRE_PASSWORD_COMMAND
	-u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA HOME="$PGT/work" TMPDIR="$PGT/tmp")

# batch DIR N: 2000 rows of batch N, committed
batch() {
	q "$1" "INSERT INTO t (id, batch, pad) SELECT g, $2, repeat(md5(g::text), 4)
		FROM generate_series(($2 - 1) * 2000 + 1, $2 * 2000) g" || not_ok "insert batch $2"
}
wait_archived() {
	local i last
	for ((i = 0; i < 600; i++)); do
		last=$(q "$1" "SELECT last_archived_wal FROM pg_stat_archiver")
		[ "$last" = "$2" ] && { ok "$3"; return 0; }
		sleep 0.1
	done
	not_ok "$3 (last archived: '$last', wanted $2)"
	log_tail "$1"
	return 1
}
expect_query() {
	local got
	got=$(q "$1" "$4" 2>&1)
	if [ "$got" = "$3" ]; then
		ok "$2"
	else
		not_ok "$2"
		echo "    query: $4"
		echo "    wanted: $3"
		echo "$got" | sed 's/^/    got: /'
	fi
}

# backup NAME: pg-backup --json on the cluster in C1; sets B_ID, B_START, B_STOP (WAL names), B_STOP_LSN
backup() {
	expect_rc 0 "$1" dre1 --json pg-backup --fast --dbname "$CONNINFO"
	B_ID=$(json "d['id']" <"$T/cmd.out" 2>/dev/null)
	B_START=$(json "d['start_wal']" <"$T/cmd.out" 2>/dev/null)
	B_STOP=$(json "d['stop_wal']" <"$T/cmd.out" 2>/dev/null)
	B_STOP_LSN=$(json "d['stop_lsn']" <"$T/cmd.out" 2>/dev/null)
}

# wal_files FILE: the names of every archived WAL file (system records left out), sorted, into FILE
wal_files() { find "$DRE_REPOSITORY/wal" -type f ! -name system -printf '%f\n' | sort >"$1"; }

# expect_fail NAME CMD...: passes when CMD exits with any status but 0 (output in $T/cmd.out, $T/cmd.err)
expect_fail() {
	local name=$1 rc
	shift
	"$@" >"$T/cmd.out" 2>"$T/cmd.err"
	rc=$?
	if [ "$rc" -ne 0 ]; then ok "$name (exit $rc)"; else not_ok "$name (exit 0)"; fi
}

# expiry_ok BEFORE AFTER ANCHOR RANGES...: the files gone from BEFORE to AFTER are exactly those §16.5
# removes: segments, .partial and .backup files whose segment number (compared across timelines) is below the
# anchor segment and outside every FIRST-LAST range; history files stay. ANCHOR and RANGES are segment names.
expiry_ok() {
	"$PY" - "$@" <<'EOF'
import sys
def segno(name):  # 16 MiB segments: 256 per "log"
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)
before = set(open(sys.argv[1]).read().split())
after = set(open(sys.argv[2]).read().split())
anchor = segno(sys.argv[3])
ranges = [tuple(segno(x) for x in r.split('-')) for r in sys.argv[4:]]
def needed(n):
    if n.endswith('.history'):
        return True
    s = segno(n)
    return s >= anchor or any(a <= s <= b for a, b in ranges)
want_gone = {n for n in before if not needed(n)}
gone = before - after
bad = False
for n in sorted(want_gone - gone):
    print("    should have been removed: %s" % n); bad = True
for n in sorted(gone - want_gone):
    print("    should have been kept: %s" % n); bad = True
print("    %d of %d files removed" % (len(gone), len(before)))
sys.exit(1 if bad or not want_gone else 0)
EOF
}
# count_gone BEFORE ANCHOR RANGES...: how many files of BEFORE expiry removes
count_gone() {
	"$PY" - "$@" <<'EOF'
import sys
def segno(name):
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)
anchor = segno(sys.argv[2])
ranges = [tuple(segno(x) for x in r.split('-')) for r in sys.argv[3:]]
print(sum(1 for n in open(sys.argv[1]).read().split() if not n.endswith('.history') and
          segno(n) < anchor and not any(a <= segno(n) <= b for a, b in ranges)))
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# three base backups with writes between them

expect_rc 0 "init the repository (as the cluster's owner)" dre1 init
archiving_cluster "$C1"
eval "$(sed 's/^/C1_/' "$C1/env")"
CONNINFO="host=$C1_PGHOST port=$C1_PGPORT user=postgres dbname=postgres"
q "$C1" "CREATE TABLE t (id int PRIMARY KEY, batch int NOT NULL, pad text)" || not_ok "create table t"

batch "$C1" 1
switch "$C1" >/dev/null
backup "pg-backup 1"
B1=$B_ID B1_START=$B_START B1_STOP=$B_STOP
batch "$C1" 2
switch "$C1" >/dev/null
q "$C1" "CHECKPOINT" >/dev/null
backup "pg-backup 2"
B2=$B_ID B2_START=$B_START B2_STOP=$B_STOP B2_STOP_LSN=$B_STOP_LSN
batch "$C1" 3
q "$C1" "INSERT INTO t VALUES (-1, 0, 'before T')" || not_ok "insert the row before T"
T_PITR=$(q "$C1" "SELECT now()")
sleep 1
q "$C1" "INSERT INTO t VALUES (-2, 0, 'after T')" || not_ok "insert the row after T"
batch "$C1" 4
switch "$C1" >/dev/null
backup "pg-backup 3"
B3=$B_ID B3_START=$B_START B3_STOP=$B_STOP
batch "$C1" 5
seg=$(switch "$C1")
wait_archived "$C1" "$seg" "every segment up to batch 5 ($seg) is archived"
check "the three backups have IDs and WAL ranges ($B1_START, $B2_START, $B3_START)" \
	test -n "$B1" -a -n "$B2" -a -n "$B3" -a -n "$B3_STOP" -a "$B1_START" \< "$B2_START" -a "$B2_STOP" \< "$B3_START"
expect_rc 0 "wal-show before any forget: no gaps" dre1 wal-show

# ---------------------------------------------------------------------------------------------------------------
# a. a dry run removes nothing

wal_files "$T/wal0"
check "WAL older than the second backup is archived (the first backup's)" \
	test "$(count_gone "$T/wal0" "$B2_START")" -gt 0
expect_rc 0 "a: forget --dry-run of the oldest backup" dre1 --json forget --dry-run "$B1"
wal_files "$T/wal1"
check "a: the dry run removed no WAL file" cmp -s "$T/wal0" "$T/wal1"
want=$(count_gone "$T/wal0" "$B2_START")
check "a: ... and says it would remove the $want below the second backup's start" \
	test "$(json "d['wal']['removed']" <"$T/cmd.out" 2>&1)" = "$want"
expect_rc 0 "a: snapshots after the dry run" dre1 --json snapshots
check "a: ... all three backups are still there" test "$(json "len(d)" <"$T/cmd.out" 2>&1)" = 3

# ---------------------------------------------------------------------------------------------------------------
# b. forget the oldest backup: its WAL goes, the second anchors, PITR after the second backup still works

expect_rc 0 "b: forget the oldest backup" dre1 --json forget "$B1"
check "b: ... which reports the WAL it removed" test "$(json "d['wal']['removed']" <"$T/cmd.out" 2>&1)" = "$want"
wal_files "$T/wal2"
check "b: exactly the WAL below the second backup's start ($B2_START) is gone" \
	expiry_ok "$T/wal0" "$T/wal2" "$B2_START"
check "b: the first backup's .backup file is gone" sh -c "! grep -qi '^${B1_START}\..*\.backup\$' '$T/wal2'"
check "b: the second backup's .backup file is kept" grep -qi "^${B2_START}\..*\.backup\$" "$T/wal2"
expect_rc 0 "b: wal-show after the forget exits 0" dre1 --json wal-show
cp "$T/cmd.out" "$T/show.json"
check "b: wal-show: no gap, nothing expired in between, two backups" \
	test "$(json "(d['gaps'], d['expired_gaps'], len(d['systems'][0]['backups']))" <"$T/show.json" 2>&1)" = "(0, 0, 2)"
B2_END=$(json "[b['restorable_from'] for b in d['systems'][0]['backups'] if b['id'] == '$B2'][0]" <"$T/show.json" 2>/dev/null)
check "b: wal-show: the window starts at the second backup's end ($B2_END)" \
	test "$(json "(d['systems'][0]['recoverable']['backup'], d['systems'][0]['recoverable']['from'])" \
		<"$T/show.json" 2>&1)" = "('$B2', '$B2_END')"
check "b: wal-show: the first archived segment is the second backup's start" \
	test "$(json "d['systems'][0]['timelines'][0]['first']" <"$T/show.json" 2>&1)" = "$B2_START"
expect_rc 0 "b: wal-show (text)" dre1 wal-show
sed 's/^/    | /' "$T/cmd.out" # for the log
check "b: ... names the point-in-time window from the second backup" \
	grep -q "point-in-time recovery: from $B2_END (base backup ${B2:0:8})" "$T/cmd.out"
expect_rc 0 "b: check passes after the forget" dre1 check
expect_rc 0 "b: prune frees the first backup's data" dre1 --json prune --grace 0
check "b: ... deleting packs" test "$(json "d['packs_deleted'] > 0" <"$T/cmd.out" 2>&1)" = True
expect_rc 0 "b: check --read-data passes after the prune" dre1 check --read-data

stop_wipe "$C1"
expect_rc 0 "b: pg-restore --time T ($T_PITR), after the second backup" \
	dre1 pg-restore --pgdata "$C1/data" --time "$T_PITR"
check "b: ... from the second backup" grep -q "${B2:0:8}" "$T/cmd.out"
start "$C1" "b: PostgreSQL starts on the restore"
wait_promoted "$C1" "b: recovery reaches T and promotes"
expect_query "$C1" "b: the row committed before T is back, the one after T is not" "before T|" \
	"SELECT string_agg(pad, ',' ORDER BY id) FILTER (WHERE id < 0), NULL FROM t"
expect_query "$C1" "b: exactly batches 1 to 3 are back" "6000|1,2,3" \
	"SELECT count(*) FILTER (WHERE batch > 0), string_agg(DISTINCT batch::text, ',') FILTER (WHERE batch > 0) FROM t"

# ---------------------------------------------------------------------------------------------------------------
# c. timeline 2: a fourth backup, then a PITR window of 0: the fourth anchors

for i in 6 7 8 9 10; do
	batch "$C1" "$i"
	switch "$C1" >/dev/null
done
backup "c: pg-backup 4, on timeline 2"
B4=$B_ID B4_START=$B_START
check "c: the fourth backup is on timeline 2, after the third's range ($B4_START)" \
	test "${B4_START:0:8}" = 00000002 -a "${B4_START:8}" \> "${B3_STOP:8}"
batch "$C1" 11
seg=$(switch "$C1")
wait_archived "$C1" "$seg" "c: every segment up to batch 11 ($seg) is archived"
wal_files "$T/wal3"
expect_rc 0 "c: forget --keep-last 100 --pitr-window 0h (no snapshot removed, WAL expired)" \
	dre1 --json forget --keep-last 100 --pitr-window 0h
check "c: ... no snapshot removed" test "$(json "d['totals']['removed']" <"$T/cmd.out" 2>&1)" = 0
wal_files "$T/wal4"
check "c: the WAL below the fourth backup's start goes, but the second's and third's ranges stay" \
	expiry_ok "$T/wal3" "$T/wal4" "$B4_START" "$B2_START-$B2_STOP" "$B3_START-$B3_STOP"
check "c: the history file stays" grep -qx 00000002.history "$T/wal4"
expect_rc 0 "c: wal-show exits 0: the stretches expiry removed are not missing WAL" dre1 --json wal-show
cp "$T/cmd.out" "$T/show.json"
check "c: wal-show: expired stretches, no gap" \
	test "$(json "d['gaps'] == 0 and d['expired_gaps'] > 0 and d['backups_missing_wal'] == 0" <"$T/show.json" 2>&1)" = True
check "c: wal-show: the window starts at the fourth backup's end" \
	test "$(json "d['systems'][0]['recoverable']['backup']" <"$T/show.json" 2>&1)" = "$B4"
check "c: wal-show: the second and third backups restore to their ends only, the fourth to any time after" \
	test "$(json "[b['pitr'] for b in d['systems'][0]['backups']]" <"$T/show.json" 2>&1)" = "[False, False, True]"
expect_rc 0 "c: wal-show (text)" dre1 wal-show
sed 's/^/    | /' "$T/cmd.out" # for the log
check "c: ... shows the expired stretches as such" grep -q "expired: " "$T/cmd.out"
expect_rc 0 "c: check passes" dre1 check
# T is after the second backup's end, before the window: the WAL from the second backup on is gone
expect_fail "c: pg-restore --time T fails now: the WAL after the second backup was expired" \
	dre1 pg-restore --pgdata "$PGT/nowhere" --time "$T_PITR"
check "c: ... naming a missing segment" err_has "is missing from the archive"
check "c: ... and writes nothing" test ! -e "$PGT/nowhere"

# the second backup still reaches consistency: its own range is all it needs
stop_wipe "$C1"
expect_rc 0 "c: pg-restore --backup (second) --lsn its stop LSN $B2_STOP_LSN" \
	dre1 pg-restore --pgdata "$C1/data" --backup "$B2" --lsn "$B2_STOP_LSN"
start "$C1" "c: PostgreSQL starts on the second backup"
wait_promoted "$C1" "c: recovery to the second backup's end promotes"
expect_query "$C1" "c: exactly batches 1 and 2 are there (what the second backup holds)" "4000|1,2" \
	"SELECT count(*), string_agg(DISTINCT batch::text, ',') FROM t"
finish
