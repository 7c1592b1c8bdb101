#!/bin/bash
# PostgreSQL 15 end to end, on real private clusters (tests/pg/pgcluster): archive_command = 'dre wal-push %p',
# an online base backup (pg-backup), point-in-time recovery (pg-restore --time) twice in a row (timeline 1 → 2
# → 3), the archive's refusals and exit codes (wal-push of different bytes under an archived name, wal-fetch of
# files that never existed), a segment missing from the archive (wal-show and pg-restore name it), and a
# pg_dump pushed through a producer command and restored into pg_restore. On a local repository the independent
# reader tests/spec_decoder.py (written from format-spec.md alone) verifies it and restores base backups (kind 4)
# to the same files pg-restore writes.
# Every dre command runs as the cluster's owner (postgres) with no DRE_* or AWS_* variables, exactly as
# archive_command and restore_command do: the settings come from the config file $T/pg/pg.conf only.
# stores: local s3
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

PGC=$DRE_SRC/tests/pg/pgcluster
PGBIN=/usr/lib/postgresql/15/bin

pg_prereqs
if [ "$(id -u)" -eq 0 ]; then OWNER=postgres; else OWNER=$(id -un); fi

C1=$T/c1 # the cluster of scenarios a, b, c, e
C2=$T/c2 # the cluster of scenario d (its own repository)
cleanup() {
	"$PGC" stop "$C1" 2>/dev/null
	"$PGC" stop "$C2" 2>/dev/null
}
trap cleanup EXIT

# $T/pg: what the owner needs to read and write (config, password, a TMPDIR); the local repository is the
# owner's too.
chmod o+x "$T"
PGT=$T/pg
mkdir -p "$PGT/tmp" "$PGT/work"
cp "$DRE_PASSWORD_FILE" "$PGT/password"
chmod 600 "$PGT/password"
# write_cfg FILE REPOSITORY
write_cfg() {
	{
		echo "# dre settings for archive_command / restore_command (tests/e2e/pg.sh)"
		echo "repository = $2"
		echo "password-file = $PGT/password"
		if on_s3; then
			echo "s3-endpoint = $DRE_S3_ENDPOINT"
			echo "s3-access-key-id = $AWS_ACCESS_KEY_ID"
			echo "s3-secret-access-key = $AWS_SECRET_ACCESS_KEY"
			echo "s3-region = ${AWS_REGION:-us-east-1}"
		fi
	} >"$1"
	chmod 600 "$1"
}
CFG=$PGT/pg.conf
write_cfg "$CFG" "$DRE_REPOSITORY"
if ! on_s3; then mkdir -p "$DRE_REPOSITORY"; fi
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$PGT" "$(on_s3 || echo "$DRE_REPOSITORY")"

# what archive_command sees: no DRE_* or AWS_* variables, a HOME and TMPDIR of the owner's
BARE=(env -u DRE_REPOSITORY -u DRE_PASSWORD_FILE -u DRE_PASSWORD -u DRE_PASSWORD_COMMAND -u DRE_S3_ENDPOINT
	-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION -u AWS_SESSION_TOKEN -u AWS_PROFILE
	-u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA HOME="$PGT/work" TMPDIR="$PGT/tmp")
# dre2 ARGS...: dre1 on the second repository (scenario d)
dre2() { (cd "$PGT/work" && asowner "${BARE[@]}" "$DRE" --config "$CFG2" "$@"); }

qdb() { local dir=$1 db=$2; shift 2; "$PGC" psql "$dir" -d "$db" "$@"; }



# create_t DIR: the table the batches go into
create_t() {
	q "$1" "CREATE TABLE t (id int PRIMARY KEY, batch int NOT NULL, ts timestamptz DEFAULT clock_timestamp(), pad text)" ||
		not_ok "create table t in $1"
}

# batch DIR N: 2000 rows of batch N (ids from (N-1)*2000+1), committed
batch() {
	q "$1" "INSERT INTO t (id, batch, pad) SELECT g, $2, repeat(md5(g::text), 4)
		FROM generate_series(($2 - 1) * 2000 + 1, $2 * 2000) g" ||
		not_ok "insert batch $2"
}

# now_after DIR: the server's now() (a time after everything committed so far), then a second's pause so that the
# next commit is distinctly later
now_after() {
	local t
	t=$(q "$1" "SELECT now()")
	sleep 1
	echo "$t"
}
# now_iso DIR: the same in ISO 8601 form, UTC with T and Z (the other time format pg-restore accepts)
now_iso() {
	local t
	t=$(q "$1" "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
	sleep 1
	echo "$t"
}


# wait_archived DIR SEGMENT NAME: until pg_stat_archiver's last_archived_wal is SEGMENT (60 s at most), one check
wait_archived() {
	local i last
	for ((i = 0; i < 600; i++)); do
		last=$(q "$1" "SELECT last_archived_wal FROM pg_stat_archiver")
		[ "$last" = "$2" ] && { ok "$3"; return 0; }
		sleep 0.1
	done
	not_ok "$3 (last archived: '$last', wanted $2)"
	q "$1" "SELECT 'archiver: archived ' || archived_count || ', failed ' || failed_count ||
		', last failed ' || coalesce(last_failed_wal, '-') FROM pg_stat_archiver" | sed 's/^/    /'
	log_tail "$1"
	return 1
}


# expect_fail NAME CMD...: like expect_rc, passes when CMD exits with any status but 0
expect_fail() {
	local name=$1 rc
	shift
	"$@" >"$T/cmd.out" 2>"$T/cmd.err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		ok "$name (exit $rc)"
	else
		not_ok "$name (exit 0)"
	fi
}

# expect_query DIR[:DB] NAME WANT SQL: the query's result (in database DB, default postgres) is WANT
expect_query() {
	local got dir=${1%%:*} db=postgres
	[ "$dir" = "$1" ] || db=${1#*:}
	got=$(qdb "$dir" "$db" "$4" 2>&1)
	if [ "$got" = "$3" ]; then
		ok "$2"
	else
		not_ok "$2"
		echo "    query: $4"
		echo "    wanted: $3"
		echo "$got" | sed 's/^/    got: /'
	fi
}


archive_cmd() { echo "archive_command = '\"$DRE\" --config \"$1\" wal-push %p'"; }

# spec_decoder ARGS...: the independent reader tests/spec_decoder.py (written from format-spec.md alone) on the
# local repository, output in $T/dec.out and $T/dec.err (shown on failure); true on success
spec_decoder() {
	if "$PY" "$DRE_SRC/tests/spec_decoder.py" "$DRE_REPOSITORY" "$PGT/password" "$@" >"$T/dec.out" 2>"$T/dec.err"; then
		return 0
	fi
	sed 's/^/    decoder: /' "$T/dec.err" | head -5
	return 1
}

# ---------------------------------------------------------------------------------------------------------------
# a. base backup, WAL archive, point-in-time recovery to a time between two batches

expect_rc 0 "init the repository (as $OWNER, from the config file only)" dre1 init
if ! "$PGC" init "$C1" "archive_mode = on" "$(archive_cmd "$CFG")" >"$T/init.out" 2>&1; then
	not_ok "initdb of the first cluster"
	sed 's/^/    /' "$T/init.out"
	finish
fi
start "$C1" "the cluster with archive_command = dre wal-push starts"
eval "$(sed 's/^/C1_/' "$C1/env")" # C1_PGPORT, C1_PGHOST
CONNINFO="host=$C1_PGHOST port=$C1_PGPORT user=postgres dbname=postgres"

create_t "$C1"
batch "$C1" 1
switch "$C1" >/dev/null
expect_rc 0 "pg-backup --fast (libpq via --dbname, the data directory from the server)" \
	dre1 pg-backup --fast --dbname "$CONNINFO"
batch "$C1" 2
T2=$(now_after "$C1")
switch "$C1" >/dev/null
batch "$C1" 3
now_after "$C1" >/dev/null
switch "$C1" >/dev/null
batch "$C1" 4
seg=$(switch "$C1")
wait_archived "$C1" "$seg" "a: every segment up to batch 4 ($seg) is archived"
expect_query "$C1" "a: the archiver never failed" 0 "SELECT failed_count FROM pg_stat_archiver"
expect_rc 0 "a: wal-show: no gaps" dre1 wal-show
stop_wipe "$C1"

expect_rc 0 "a: pg-restore --time after batch 2 ($T2)" dre1 pg-restore --pgdata "$C1/data" --time "$T2"
check "a: pg-restore wrote recovery.signal" asowner test -f "$C1/data/recovery.signal"
check "a: postgresql.auto.conf names the target time" grep -q "recovery_target_time" "$C1/data/postgresql.auto.conf"
# the base backup (kind 4) as the independent reader sees it: against the files pg-restore just wrote
if ! on_s3; then
	check "a: the spec decoder verifies the repository (the base backup's lists and files, the WAL archive)" \
		spec_decoder verify
	check "a: ... one snapshot, of format 3, and archived WAL files" \
		sh -c "grep -qE '^snapshots: 1 \(1 of format 3\)' '$T/dec.out' && grep -qE '^wal: [1-9][0-9]* archived' '$T/dec.out'"
	check "a: the spec decoder lists the base backup as pgbase" spec_decoder list
	base=$(awk '$3 == "pgbase" { print $1 }' "$T/dec.out")
	check "a: the spec decoder restores the base backup ${base:0:8}" spec_decoder restore "${base:-none}" "$T/dec-base"
	for f in PG_VERSION global/pg_control; do
		check "a: ... $f is the one pg-restore wrote" cmp -s "$T/dec-base/$f" "$C1/data/$f"
	done
	check "a: ... and so is every file and directory but pg-restore's own postgresql.auto.conf and recovery.signal" \
		diff -r --no-dereference -x postgresql.auto.conf -x recovery.signal "$T/dec-base" "$C1/data"
	check "a: ... backup_label included, the text pg_backup_stop returned" \
		grep -q "^START WAL LOCATION: " "$T/dec-base/backup_label"
fi
start "$C1" "a: PostgreSQL starts on the restored data directory"
wait_promoted "$C1" "a: recovery reaches the target and promotes"
expect_query "$C1" "a: exactly batches 1 and 2 are back (4000 rows)" "4000|2|1,2" \
	"SELECT count(*), max(batch), string_agg(DISTINCT batch::text, ',') FROM t"
expect_query "$C1" "a: the restored cluster runs on timeline 2" 2 "CHECKPOINT; SELECT timeline_id FROM pg_control_checkpoint()"

# ---------------------------------------------------------------------------------------------------------------
# b. a second point-in-time recovery, from the same base backup (timeline 1) along timeline 2's history

batch "$C1" 5
T5=$(now_after "$C1")
switch "$C1" >/dev/null
batch "$C1" 6
seg_b=$(switch "$C1")
wait_archived "$C1" "$seg_b" "b: every segment up to batch 6 on timeline 2 ($seg_b) is archived"
expect_query "$C1" "b: the archiver never failed (the .history and .partial files included)" 0 \
	"SELECT failed_count FROM pg_stat_archiver"
expect_rc 0 "b: wal-show --json" dre1 wal-show --json
check "b: wal-show lists timeline 2 with its history file" \
	test "$(json "any(t['timeline'] == 2 and t['history'] for s in d['systems'] for t in s['timelines'])" <"$T/cmd.out" 2>&1)" = True
check "b: wal-show lists timeline 1 up to at least batch 4's segment" \
	test "$(json "any(t['timeline'] == 1 and t['last'] >= '$seg' and not t['gaps'] for s in d['systems'] for t in s['timelines'])" <"$T/cmd.out" 2>&1)" = True
expect_rc 0 "b: wal-fetch 00000002.history" dre1 wal-fetch 00000002.history "$PGT/tmp/h2"
check "b: ... which names the fork from timeline 1" grep -qE '^1[[:space:]]+[0-9A-F]+/[0-9A-F]+' "$PGT/tmp/h2"
stop_wipe "$C1"

# this restore runs as root (when the test does): the files must get their owner, postgres, back
if [ "$(id -u)" -eq 0 ]; then
	expect_rc 0 "b: pg-restore --time after batch 5 ($T5), run as root" \
		"${BARE[@]}" "$DRE" --config "$CFG" pg-restore --pgdata "$C1/data" --time "$T5"
	check "b: the restored files belong to postgres" \
		test -z "$(find "$C1/data" ! -user postgres -print -quit 2>/dev/null)"
	check "b: the restored data directory belongs to postgres" test "$(stat -c %U "$C1/data")" = postgres
else
	expect_rc 0 "b: pg-restore --time after batch 5 ($T5)" dre1 pg-restore --pgdata "$C1/data" --time "$T5"
fi
start "$C1" "b: PostgreSQL starts on the second restore"
wait_promoted "$C1" "b: the second recovery promotes"
expect_query "$C1" "b: exactly batches 1, 2 and 5 are back (6000 rows)" "6000|1,2,5" \
	"SELECT count(*), string_agg(DISTINCT batch::text, ',') FROM t"
expect_query "$C1" "b: the cluster is now on timeline 3" 3 "CHECKPOINT; SELECT timeline_id FROM pg_control_checkpoint()"

# ---------------------------------------------------------------------------------------------------------------
# c. what the archive refuses, and what wal-fetch says about files that never existed

W=$PGT/tmp
expect_rc 0 "c: wal-fetch $seg_b" dre1 wal-fetch --pgdata "$C1/data" "$seg_b" "$W/orig"
check "c: the fetched segment is 16 MiB" test "$(stat -c %s "$W/orig" 2>/dev/null)" = 16777216
# the same header (system identifier, timeline, address), other bytes after it
mkdir -p "$W/other"
cp "$W/orig" "$W/other/$seg_b" && head -c 1048576 /dev/urandom |
	dd of="$W/other/$seg_b" bs=1M seek=8 conv=notrunc status=none
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$W"
expect_rc 1 "c: wal-push of other bytes under the archived name $seg_b is refused" dre1 wal-push "$W/other/$seg_b"
check "c: the refusal names the file" err_has "$seg_b"
expect_rc 0 "c: wal-fetch after the refusal" dre1 wal-fetch --pgdata "$C1/data" "$seg_b" "$W/again"
check "c: the archived segment is still the original" cmp -s "$W/orig" "$W/again"
mkdir -p "$W/same"
cp "$W/orig" "$W/same/$seg_b"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$W"
expect_rc 0 "c: wal-push of the identical file again succeeds" dre1 wal-push "$W/same/$seg_b"
expect_rc 1 "c: wal-fetch of a segment that never existed exits 1" \
	dre1 wal-fetch --pgdata "$C1/data" 0000000100000099000000FF "$W/none"
check "c: ... silently" test ! -s "$T/cmd.err"
check "c: ... and writes nothing" test ! -e "$W/none"
expect_rc 1 "c: wal-fetch of 00000009.history exits 1" dre1 wal-fetch --pgdata "$C1/data" 00000009.history "$W/none"
check "c: ... silently" test ! -s "$T/cmd.err"

# ---------------------------------------------------------------------------------------------------------------
# d. a segment missing from the archive (local repository only: the test removes one object by hand)

if on_s3; then
	ok "d: skipped on S3 (the test deletes a segment's object as a file of the local repository)"
else
	REPO2=$T/repo2
	CFG2=$PGT/pg2.conf
	write_cfg "$CFG2" "$REPO2"
	mkdir -p "$REPO2"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$REPO2" "$CFG2"
	expect_rc 0 "d: init a second repository" dre2 init
	if ! "$PGC" init "$C2" "archive_mode = on" "$(archive_cmd "$CFG2")" >"$T/init.out" 2>&1; then
		not_ok "initdb of the second cluster"
		sed 's/^/    /' "$T/init.out"
	fi
	start "$C2" "d: a second cluster, archiving into the second repository"
	eval "$(sed 's/^/C2_/' "$C2/env")"
	create_t "$C2"
	batch "$C2" 10
	switch "$C2" >/dev/null
	expect_rc 0 "d: pg-backup of the second cluster" \
		dre2 pg-backup --fast --dbname "host=$C2_PGHOST port=$C2_PGPORT user=postgres dbname=postgres"
	batch "$C2" 11
	TA=$(now_iso "$C2")
	switch "$C2" >/dev/null
	batch "$C2" 12
	switch "$C2" >/dev/null
	batch "$C2" 13
	TC=$(now_iso "$C2")
	s13=$(switch "$C2")
	batch "$C2" 14
	TD=$(now_iso "$C2")
	switch "$C2" >/dev/null
	batch "$C2" 15
	s15=$(switch "$C2")
	wait_archived "$C2" "$s15" "d: every segment up to batch 15 ($s15) is archived"
	stop_wipe "$C2"
	expect_rc 0 "d: wal-show: no gaps before the damage" dre2 wal-show
	# Batch 13 commits in s13: recovery to TC (just after that commit) stops at batch 14's commit, in the
	# segment after s13, so it needs s13; so does TD (after batch 14). Recovery to TA stops at batch 12's
	# commit, in s12. (TC comes right after s12's switch, possibly before the archiver has even pushed s12: a
	# check that compares the target with the time the segment before the gap was pushed is fooled by it.)
	mapfile -t found < <(find "$REPO2/wal" -type f -name "$s13*")
	if [ ${#found[@]} -eq 1 ]; then
		rm -f "${found[0]}"
		ok "d: removed segment $s13 from the repository (${found[0]#"$REPO2"/})"
	else
		not_ok "d: segment $s13 as one file under $REPO2/wal (found ${#found[@]}: ${found[*]})"
	fi
	expect_rc 5 "d: wal-show exits 5 when a segment is missing" dre2 wal-show
	check "d: wal-show names the missing segment $s13" grep -q "$s13" "$T/cmd.out" "$T/cmd.err"
	expect_rc 5 "d: wal-show --json exits 5 too" dre2 wal-show --json
	check "d: wal-show --json reports the gap at $s13" \
		test "$(json "any(g['from'] <= '$s13' <= g['to'] for s in d['systems'] for t in s['timelines'] for g in t['gaps'])" <"$T/cmd.out" 2>&1)" = True
	expect_fail "d: pg-restore --time after batch 14, after the gap ($TD), fails" \
		dre2 pg-restore --pgdata "$C2/data" --time "$TD"
	check "d: ... naming the missing segment $s13" err_has "$s13"
	rm -rf "$C2/data"
	expect_fail "d: pg-restore --time just after batch 13's commit, in the missing segment ($TC), fails" \
		dre2 pg-restore --pgdata "$C2/data" --time "$TC"
	check "d: ... naming the missing segment $s13" err_has "$s13"
	rm -rf "$C2/data"
	expect_rc 0 "d: pg-restore --time before the gap ($TA, ISO 8601) succeeds" dre2 pg-restore --pgdata "$C2/data" --time "$TA"
	start "$C2" "d: PostgreSQL starts on the restore before the gap"
	wait_promoted "$C2" "d: the recovery before the gap promotes"
	expect_query "$C2" "d: exactly batches 10 and 11 are back" "4000|10,11" \
		"SELECT count(*), string_agg(DISTINCT batch::text, ',') FROM t"
	"$PGC" stop "$C2"
fi

# ---------------------------------------------------------------------------------------------------------------
# e. pg_dump -Fc through a producer command, back through pg_restore

q "$C1" "CREATE DATABASE src" "CREATE DATABASE dst" || not_ok "create databases src and dst"
qdb "$C1" src "CREATE TABLE a AS SELECT g, md5(g::text) FROM generate_series(1, 50000) g" \
	"CREATE TABLE b AS SELECT g AS id, timestamptz '2026-01-01 00:00:00+00' - g * interval '1 minute' AS ts,
		repeat(chr(65 + g % 26), g % 300) AS txt FROM generate_series(1, 20000) g" \
	"CREATE INDEX ON b (ts)" || not_ok "fill database src"
expect_rc 0 "e: push dump1 -- pg_dump -Fc src" \
	dre1 push dump1 -- "$PGBIN/pg_dump" -Fc -h "$C1_PGHOST" -p "$C1_PGPORT" -U postgres src
restore_dump() {
	(
		set -o pipefail
		cd "$PGT/work" &&
			asowner "${BARE[@]}" "$DRE" --config "$CFG" restore dump1 |
			asowner "$PGBIN/pg_restore" -h "$C1_PGHOST" -p "$C1_PGPORT" -U postgres -d dst --exit-on-error
	)
}
expect_rc 0 "e: restore dump1 | pg_restore -d dst" restore_dump
sums="SELECT (SELECT count(*) FROM a) || ' ' || (SELECT count(*) FROM b) || ' ' ||
	(SELECT md5(string_agg(md5::text, ',' ORDER BY g)) FROM a) || ' ' ||
	(SELECT md5(string_agg(id || ':' || ts || ':' || txt, ',' ORDER BY id)) FROM b)"
src_sum=$(qdb "$C1" src "$sums")
dst_sum=$(qdb "$C1" dst "$sums" 2>&1)
check "e: src has what was put in" test "${src_sum%% *}" = 50000
if [ -n "$src_sum" ] && [ "$src_sum" = "$dst_sum" ]; then
	ok "e: dst has the same rows and checksums as src"
else
	not_ok "e: dst has the same rows and checksums as src"
	echo "    src: $src_sum"
	echo "    dst: $dst_sum"
fi
expect_query "$C1:dst" "e: the index came back too" 1 \
	"SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'b'"
# ---------------------------------------------------------------------------------------------------------------
# f. a second base backup dedups; tablespaces; what pg-backup, pg-restore and wal-fetch refuse, and how

q "$C1" "CHECKPOINT" >/dev/null
expect_rc 0 "f: pg-backup --json" dre1 --json pg-backup --fast --dbname "$CONNINFO"
size1=$(json "d['size']" <"$T/cmd.out" 2>/dev/null)
expect_rc 0 "f: pg-backup again, nothing changed in between" dre1 --json pg-backup --fast --dbname "$CONNINFO"
size2=$(json "d['size']" <"$T/cmd.out" 2>/dev/null)
new2=$(json "d['stored_new']" <"$T/cmd.out" 2>/dev/null)
check "f: the second backup ($size2 bytes) stores under 1 % new ($new2 bytes)" \
	test -n "$new2" -a "${new2:-1}" -lt "$(( ${size2:-0} / 100 ))"
check "f: both backups read the same data directory (${size1:-?} and ${size2:-?} bytes)" test -n "$size1" -a -n "$size2"
skipped2=$(json "d['files_skipped']" <"$T/cmd.out" 2>/dev/null)
check "f: the second takes the files unchanged since the first from it, unread (${skipped2:-?} of them)" \
	test "${skipped2:-0}" -gt 0 -a "$(json "d['parent'] is not None" <"$T/cmd.out" 2>/dev/null)" = True
expect_rc 0 "f: pg-backup --force-read" dre1 --json pg-backup --fast --force-read --dbname "$CONNINFO"
check "f: reads every file" test "$(json "(d['files_skipped'], d['parent'])" <"$T/cmd.out" 2>/dev/null)" = "(0, None)"
expect_rc 0 "f: check --read-data, with the WAL archive" dre1 --json check --read-data
check "f: check read the archived WAL files" test "$(json "d['wal_files'] > 10 and d['errors'] == 0" <"$T/cmd.out" 2>&1)" = True

# a tablespace outside the data directory, restored elsewhere with --tablespace-map
TS=$T/ts && mkdir -p "$TS" && chmod 700 "$TS"
[ "$(id -u)" -ne 0 ] || chown postgres: "$TS"
q "$C1" "CREATE TABLESPACE ts LOCATION '$TS'" || not_ok "create tablespace"
q "$C1" "CREATE TABLE in_ts TABLESPACE ts AS SELECT g FROM generate_series(1, 12345) g" || not_ok "table in ts"
ts_oid=$(q "$C1" "SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
seg_f=$(switch "$C1")
expect_rc 0 "f: pg-backup with a tablespace" dre1 pg-backup --fast --dbname "$CONNINFO"
# something to switch away from (a switch right after pg_backup_stop's own would name the segment before it)
q "$C1" "CREATE TABLE f_mark (i int)" || not_ok "create table f_mark"
seg_f=$(switch "$C1")
wait_archived "$C1" "$seg_f" "f: the WAL after the tablespace backup is archived"
expect_fail "f: pg-backup with a connection string that reaches nothing" \
	dre1 pg-backup --dbname "host=$PGT/nosuchdir port=1 user=postgres connect_timeout=2"
check "f: ... says it cannot connect" err_has "cannot connect"
expect_fail "f: pg-restore into a non-empty directory is refused" dre1 pg-restore --pgdata "$PGT/work" --latest
check "f: ... saying the directory is not empty" err_has "is not empty"
stop_wipe "$C1"
expect_fail "f: pg-restore refuses to put the tablespace over its old, non-empty directory" \
	dre1 pg-restore --pgdata "$C1/data" --latest
check "f: ... naming the tablespace directory" err_has "$TS"
rm -rf "$C1/data"
mkdir -p "$T/ts2" # an empty directory of the owner's (the restore runs as the owner, who cannot create it in $T)
[ "$(id -u)" -ne 0 ] || chown postgres: "$T/ts2"
expect_rc 0 "f: pg-restore --latest --tablespace-map $ts_oid=$T/ts2" \
	dre1 pg-restore --pgdata "$C1/data" --latest --tablespace-map "$ts_oid=$T/ts2"
check "f: pg_tblspc/$ts_oid links to the new directory" test "$(readlink "$C1/data/pg_tblspc/$ts_oid")" = "$T/ts2"
if ! on_s3; then
	check "f: the spec decoder verifies the repository (every base backup, the pg_dump stream, the WAL archive)" \
		spec_decoder verify
	check "f: the spec decoder lists the base backups" spec_decoder list
	base=$(awk '$3 == "pgbase" { b = $1 } END { print b }' "$T/dec.out") # by start time: the last is the latest
	check "f: the spec decoder restores the base backup with the tablespace" \
		spec_decoder restore "${base:-none}" "$T/dec-ts"
	check "f: ... whose tablespace holds the files pg-restore put in ts2" diff -r "$T/dec-ts/pg_tblspc/$ts_oid" "$T/ts2"
fi
start "$C1" "f: PostgreSQL starts with the relocated tablespace"
wait_promoted "$C1" "f: the recovery to the end of the archive promotes"
expect_query "$C1" "f: the table in the tablespace is back" 12345 "SELECT count(*) FROM in_ts"

# recovery to an LSN: batch 20 before it, batch 21 after it
batch "$C1" 20
lsn=$(q "$C1" "SELECT pg_current_wal_lsn()")
batch "$C1" 21
seg_l=$(switch "$C1")
wait_archived "$C1" "$seg_l" "f: the WAL of batches 20 and 21 is archived"
stop_wipe "$C1"
expect_fail "f: pg-restore --lsn before the backup's end is refused" \
	dre1 pg-restore --pgdata "$C1/data" --lsn 0/1000 --tablespace-map "$ts_oid=$T/ts3"
check "f: ... saying no backup ended before it" err_has "no base backup finished before the target"
rm -rf "$C1/data"
mkdir -p "$T/ts3"
[ "$(id -u)" -ne 0 ] || chown postgres: "$T/ts3"
expect_rc 0 "f: pg-restore --lsn $lsn" dre1 pg-restore --pgdata "$C1/data" --lsn "$lsn" --tablespace-map "$ts_oid=$T/ts3"
check "f: postgresql.auto.conf names the target LSN" grep -q "recovery_target_lsn = '$lsn'" "$C1/data/postgresql.auto.conf"
start "$C1" "f: PostgreSQL starts on the restore to an LSN"
wait_promoted "$C1" "f: the recovery to the LSN promotes"
expect_query "$C1" "f: batch 20 is back, batch 21 is not" "2000|0" \
	"SELECT count(*) FILTER (WHERE batch = 20), count(*) FILTER (WHERE batch = 21) FROM t"

# wal-fetch: a real error is not "not in the archive" (exit 1), so that recovery stops instead of promoting
printf 'not the password\n' >"$PGT/wrong"
chmod 600 "$PGT/wrong"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PGT/wrong"
sed "s|^password-file = .*|password-file = $PGT/wrong|" "$CFG" >"$PGT/wrong.conf"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PGT/wrong.conf"
fetch_wrong() { (cd "$PGT/work" && asowner "${BARE[@]}" "$DRE" --config "$PGT/wrong.conf" wal-fetch "$@"); }
expect_rc 132 "f: wal-fetch with a wrong password exits 132 (128 + 4)" fetch_wrong --pgdata "$C1/data" "$seg_b" "$W/x"
check "f: ... saying so" err_has "wrong password"
if ! on_s3; then
	sed "s|^repository = .*|repository = $T/no-such-repository|" "$CFG" >"$PGT/gone.conf"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$PGT/gone.conf"
	fetch_gone() { (cd "$PGT/work" && asowner "${BARE[@]}" "$DRE" --config "$PGT/gone.conf" wal-fetch "$@"); }
	expect_rc 131 "f: wal-fetch from a repository that is not there exits 131 (128 + 3)" \
		fetch_gone --pgdata "$C1/data" "$seg_b" "$W/x"
	sys=$(ls "$DRE_REPOSITORY/wal")
	obj=$DRE_REPOSITORY/wal/$sys/$(echo "${seg_b:0:8}" | tr A-F a-f)/$(echo "$seg_b" | tr A-F a-f)
	flip "$obj" $(($(stat -c %s "$obj") / 2))
	expect_rc 133 "f: wal-fetch of a damaged object exits 133 (128 + 5)" dre1 wal-fetch --pgdata "$C1/data" "$seg_b" "$W/x"
	check "f: ... naming the object" err_has "$(basename "$obj")"
	check "f: ... and writes nothing" test ! -e "$W/x"
	expect_rc 5 "f: check --read-data finds the damaged WAL object" dre1 check --read-data
	# the independent reader (written from format-spec.md) reads the WAL archive too
	"$PY" "$DRE_SRC/tests/spec_decoder.py" "$DRE_REPOSITORY" "$PGT/password" wal "$sys" "$seg" "$T/dec.seg" 2>"$T/dec.err"
	expect_rc 0 "f: wal-fetch $seg" dre1 wal-fetch --pgdata "$C1/data" "$seg" "$W/fetched"
	check "f: the spec decoder decodes $seg to the same bytes" cmp -s "$T/dec.seg" "$W/fetched"
fi

finish
