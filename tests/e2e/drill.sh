#!/bin/bash
# dre drill on a real PostgreSQL 15 cluster (tests/pg/pgcluster) with archive_command = 'dre wal-push %p':
#   a. pg-dump (with globals) of a database of several tables while another session writes into them, then a
#      drill on a private instance: every table's count equals the dump's; --sql checks pass and fail; a broken
#      check file is a usage error naming its line; --rto 1s fails a drill that sleeps 2 s (exit 8); the same
#      drill on the cluster itself (--dbname) leaves no scratch database behind;
#   b. a drill of a base backup to a time: the rows committed before the time and none after, the production
#      archive unchanged by the drill's new timeline; pg-restore --archive-mode off and preserve write and say
#      what they should;
#   c. files: a drill with --exec, failing and passing; --keep keeps the scratch directory;
#   d. SIGTERM in the middle of a drill: no scratch directory, no postgres left;
#   e. a damaged snapshot (its packs bit-flipped): exit 5 naming the corrupt object, scratch removed.
# The drills run as root when the tests do (PostgreSQL's programs then run as postgres: the privilege drop is
# tested); everything that writes the repository runs as the cluster's owner, as archive_command does.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

PGC=$DRE_SRC/tests/pg/pgcluster
PGBIN=/usr/lib/postgresql/15/bin

pg_prereqs

C1=$T/c1
SCR=$T/scratch
cleanup() {
	"$PGC" stop "$C1" 2>/dev/null
	[ -z "${WRITER:-}" ] || kill "$WRITER" 2>/dev/null
}
trap cleanup EXIT

chmod o+x "$T"
PGT=$T/pg
mkdir -p "$PGT/tmp" "$PGT/work" "$DRE_REPOSITORY" "$SCR"
cp "$DRE_PASSWORD_FILE" "$PGT/password"
chmod 600 "$PGT/password"
CFG=$PGT/pg.conf
printf 'repository = %s\npassword-file = %s\n' "$DRE_REPOSITORY" "$PGT/password" >"$CFG"
chmod 600 "$CFG"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$PGT" "$DRE_REPOSITORY"
BARE=(env -u DRE_REPOSITORY -u DRE_PASSWORD_FILE -u DRE_PASSWORD -u DRE_PASSWORD_COMMAND
	-u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA HOME="$PGT/work" TMPDIR="$PGT/tmp")

# drill ARGS...: dre drill with its scratch directories in $SCR (so that the test can look for leftovers)
drill() { "$DRE" drill --scratch "$SCR" "$@"; }
# scratch_empty: nothing left in $SCR, and no process that was started in it
scratch_empty() {
	local left
	left=$(ls -A "$SCR")
	[ -z "$left" ] || { echo "    left in $SCR: $left"; return 1; }
	! pgrep -f -- "$SCR/" >/dev/null || { echo "    still running:"; pgrep -af -- "$SCR/" | sed 's/^/    /'; return 1; }
}
jq_out() { json "$1" <"$T/cmd.out" 2>&1; }

expect_rc 0 "init the repository (as the cluster's owner)" dre1 init
archiving_cluster "$C1"
eval "$(sed 's/^/C1_/' "$C1/env")"
CONNINFO="host=$C1_PGHOST port=$C1_PGPORT user=postgres dbname=postgres"
APP="host=$C1_PGHOST port=$C1_PGPORT user=postgres dbname=app"
qa() { q "$C1" -d app "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# a. a dump under concurrent writes, drilled

q "$C1" "CREATE ROLE app_owner" "CREATE DATABASE app OWNER app_owner" || not_ok "create the role and database"
qa "CREATE TABLE customers (id int PRIMARY KEY, name text)" \
	"CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, amount numeric, pad text)" \
	"CREATE TABLE events (id bigserial PRIMARY KEY, kind text, at timestamptz DEFAULT clock_timestamp())" \
	"CREATE SCHEMA \"Audit\"" "CREATE TABLE \"Audit\".\"Log Lines\" (line text)" \
	"CREATE TABLE measures (day date NOT NULL, v int) PARTITION BY RANGE (day)" \
	"CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')" \
	"CREATE TABLE measures_2026 PARTITION OF measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')" \
	"INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g" \
	"INSERT INTO orders (customer, amount, pad) SELECT g % 50 + 1, g, repeat(md5(g::text), 8) FROM generate_series(1, 150000) g" \
	"INSERT INTO events (kind) SELECT 'seed' FROM generate_series(1, 20000)" \
	"INSERT INTO \"Audit\".\"Log Lines\" SELECT 'line ' || g FROM generate_series(1, 777) g" \
	"INSERT INTO measures SELECT date '2025-06-01' + g % 400, g FROM generate_series(1, 30000) g" \
	"ALTER TABLE orders OWNER TO app_owner" || not_ok "create and fill the tables"
total_rows() { qa "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM events) +
	(SELECT count(*) FROM \"Audit\".\"Log Lines\") + (SELECT count(*) FROM measures)"; }

# another session writes into three of the tables, one transaction after the other, all through the dump
writer() {
	local i=0
	while [ ! -e "$T/stop-writer" ]; do
		i=$((i + 1))
		qa "BEGIN; INSERT INTO orders (customer, amount, pad) VALUES ($i % 50 + 1, $i, 'w');
			INSERT INTO events (kind) VALUES ('write $i'); INSERT INTO measures VALUES (date '2026-03-01', $i); COMMIT" \
			>/dev/null 2>&1
	done
}
writer &
WRITER=$!
sleep 1
before=$(total_rows)
expect_rc 0 "a: pg-dump --globals while another session writes" \
	dre1 --json pg-dump app --globals --dbname "$APP" --pg-bindir "$PGBIN"
recorded=$(jq_out "d['rows']")
for ((i = 0; i < 600; i++)); do # until the writer has committed after the dump's snapshot too
	after=$(total_rows)
	[ "$after" -gt "${recorded:-0}" ] && break
	sleep 0.1
done
touch "$T/stop-writer"
wait "$WRITER"
WRITER=
check "a: the writes went on through the dump ($before rows before it, $recorded in it, $after after it)" \
	test "$before" -le "$recorded" -a "$recorded" -lt "$after"
check "a: ... and it counted the six tables" test "$(jq_out "d['tables']")" = 6

expect_rc 0 "a: drill of the dump on a private instance passes" drill --json app
check "a: ... six tables compared, none differs" test "$(jq_out "(d['tables']['compared'], d['tables']['mismatched'])")" = "(6, 0)"
check "a: ... the roles of the globals were restored" test "$(jq_out "d['globals_restored']")" = True
check "a: ... phases fetch, setup, restore, verify with their seconds, an RTO, bytes restored" \
	test "$(jq_out "[p['name'] for p in d['phases']] == ['fetch', 'setup', 'restore', 'verify'] and d['rto_seconds'] > 0 and d['bytes_restored'] > 1000000")" = True
check "a: ... and its scratch directory and instance are gone" scratch_empty

# pg_dump's own options leave a table's data out: the drill compares what the archive holds (its TOC)
expect_rc 0 "a: pg-dump -- --exclude-table-data=events" \
	dre1 -q pg-dump app_noevents --dbname "$APP" --pg-bindir "$PGBIN" -- --exclude-table-data=events
expect_rc 0 "a: its drill passes" drill --json app_noevents
check "a: ... five tables compared, events left out as not in the dump" \
	test "$(jq_out "(d['tables']['compared'], d['tables']['not_in_dump'], d['tables']['mismatched'])")" = "(5, 1, 0)"

cat >"$T/pass.sql" <<EOF
-- a comment, then a blank line

-- expect: = 999
SELECT count(*)
  FROM orders WHERE amount < 1000 AND pad <> 'w';
-- expect: >= 150000
SELECT count(*) FROM orders;
-- expect: = 'app_owner'
SELECT tableowner FROM pg_tables WHERE tablename = 'orders';
SELECT 1 FROM "Audit"."Log Lines" LIMIT 1;
EOF
expect_rc 0 "a: drill with --sql checks that hold" drill --json app --sql "$T/pass.sql"
check "a: ... all four ran and passed" test "$(jq_out "[c['passed'] for c in d['checks']]")" = "[True, True, True, True]"
check "a: ... the text report says so" sh -c "\"$DRE\" drill --scratch '$SCR' app --sql '$T/pass.sql' | grep -q '4 of 4 SQL checks passed'"

printf -- '-- expect: = 1\nSELECT count(*) FROM customers;\n-- expect: = 42\nSELECT count(*) FROM customers WHERE id <= 42;\n' >"$T/fail.sql"
expect_rc 5 "a: drill with a --sql check that does not hold fails (exit 5)" drill app --sql "$T/fail.sql"
check "a: ... naming the file, the line and what it got" err_has "fail.sql line 2: expected = 1, got 50"
check "a: ... the report lists the failed check" grep -q "CHECK FAILED .*fail.sql line 2" "$T/cmd.out"
check "a: ... scratch removed" scratch_empty

printf 'SELECT 1;\n-- expect: >= many\nSELECT 2;\n' >"$T/bad.sql"
expect_rc 2 "a: a check file with a bad expectation is a usage error" drill app --sql "$T/bad.sql"
check "a: ... naming its line" err_has "bad.sql:2:"
printf 'SELECT 1;\nSELECT 2\n' >"$T/bad.sql"
expect_rc 2 "a: a statement without its ';' is a usage error" drill app --sql "$T/bad.sql"
check "a: ... naming the statement's line" err_has "bad.sql:2: the statement does not end"

printf 'SELECT pg_sleep(2);\n' >"$T/sleep.sql"
expect_rc 8 "a: --rto 1s fails a drill whose check sleeps 2 s (exit 8)" drill --json app --sql "$T/sleep.sql" --rto 1s
check "a: ... everything else passed, the RTO is over 2 s and marked exceeded" \
	test "$(jq_out "(d['checks'][0]['passed'], d['rto_seconds'] > 2, d['rto_exceeded'], d['rto_limit_seconds'])")" = "(True, True, True, 1.0)"
check "a: ... the message says so" err_has "exceeded --rto"
expect_rc 0 "a: the same drill with --rto 10m passes" drill app --sql "$T/sleep.sql" --rto 10m

expect_rc 5 "a: drill on the cluster itself (--dbname): the owner check fails" drill --json app --dbname "$CONNINFO" --sql "$T/pass.sql"
check "a: ... since no roles are made on a shared server (they would be real); counts and the rest hold" \
	test "$(jq_out "([c['passed'] for c in d['checks']], d['globals_restored'], d['tables']['compared'], d['tables']['mismatched'])")" = "([True, True, False, True], False, 6, 0)"
check "a: ... into a database dre_drill_<random>" sh -c "echo '$(jq_out "d['database']")' | grep -Eq '^dre_drill_[0-9a-f]{12}$'"
check "a: ... the scratch database is dropped" test "$(q "$C1" "SELECT count(*) FROM pg_database WHERE datname LIKE 'dre_drill%'")" = 0
check "a: ... scratch removed" scratch_empty
expect_rc 0 "a: --dbname with a plain database name (the server from PGHOST, PGPORT)" \
	env PGHOST="$C1_PGHOST" PGPORT="$C1_PGPORT" PGUSER=postgres "$DRE" drill --scratch "$SCR" app --dbname postgres
check "a: ... the scratch database is dropped" test "$(q "$C1" "SELECT count(*) FROM pg_database WHERE datname LIKE 'dre_drill%'")" = 0

# ---------------------------------------------------------------------------------------------------------------
# b. a base backup and its WAL, drilled to a time

# a tablespace: pg-restore would put it back where it was; a drill must keep it inside its scratch directory
mkdir -p "$PGT/ts"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PGT/ts"
q "$C1" "CREATE TABLESPACE drillts LOCATION '$PGT/ts'" \
	"CREATE TABLE pitr (id int PRIMARY KEY, batch int) TABLESPACE drillts" \
	"INSERT INTO pitr SELECT g, 1 FROM generate_series(1, 1000) g" || not_ok "b: fill pitr, in a tablespace"
switch "$C1" >/dev/null
expect_rc 0 "b: pg-backup" dre1 pg-backup --fast --dbname "$CONNINFO"
q "$C1" "INSERT INTO pitr SELECT g, 2 FROM generate_series(1001, 2000) g" || not_ok "b: batch 2"
T_PITR=$(q "$C1" "SELECT now()")
sleep 1
q "$C1" "INSERT INTO pitr SELECT g, 3 FROM generate_series(2001, 3000) g" || not_ok "b: batch 3"
seg=$(switch "$C1")
for ((i = 0; i < 600; i++)); do
	[ "$(q "$C1" "SELECT last_archived_wal FROM pg_stat_archiver")" = "$seg" ] && break
	sleep 0.1
done
check "b: the WAL up to batch 3 ($seg) is archived" test "$(q "$C1" "SELECT last_archived_wal FROM pg_stat_archiver")" = "$seg"
TS_OID=$(q "$C1" "SELECT oid FROM pg_tablespace WHERE spcname = 'drillts'")
"$PGC" stop "$C1" # the tablespace stays still while the drill runs (and the drill needs no server)
find "$DRE_REPOSITORY/wal" -type f | sort >"$T/wal-before"
ts_state() { find "$PGT/ts" -printf '%p %s %T@ %u\n' | sort; }
ts_state >"$T/ts-before"

printf -- '-- expect: = 2000\nSELECT count(*) FROM pitr;\n-- expect: = 0\nSELECT count(*) FROM pitr WHERE batch = 3;\n' >"$T/pitr.sql"
expect_rc 0 "b: drill --pg --time T: restores, replays to T, promotes, verifies" \
	drill --json --pg --time "$T_PITR" --sql "$T/pitr.sql"
check "b: ... the rows before T and none after (the checks)" test "$(jq_out "[c['passed'] for c in d['checks']]")" = "[True, True]"
check "b: ... it reports the time recovered to, the WAL replayed and fetched, a new timeline" \
	test "$(jq_out "d['recovery']['recovered_to'] is not None and d['recovery']['wal_replayed_bytes'] > 0 and d['recovery']['wal_segments_fetched'] >= 1 and d['recovery']['timeline'] == 2")" = True
check "b: ... phases fetch, replay, verify, checks" \
	test "$(jq_out "[p['name'] for p in d['phases']]")" = "['fetch', 'replay', 'verify', 'checks']"
check "b: ... verified with pg_amcheck" test "$(jq_out "d['verify']['method']")" = pg_amcheck
check "b: ... scratch removed, its postgres stopped" scratch_empty
find "$DRE_REPOSITORY/wal" -type f | sort >"$T/wal-after"
check "b: the production archive got nothing from the drill's timeline 2" cmp -s "$T/wal-before" "$T/wal-after"
ts_state >"$T/ts-after"
check "b: the tablespace's own directory was not touched (the drill's copy went into its scratch directory)" \
	cmp -s "$T/ts-before" "$T/ts-after"
printf -- '-- expect: = 3000\nSELECT count(*) FROM pitr;\n' >"$T/latest.sql"
expect_rc 0 "b: drill --pg --latest: every row" drill --pg --latest --sql "$T/latest.sql"
printf -- '-- expect: >= 50\nSELECT count(*) FROM customers;\n-- expect: = 1\nSELECT count(*) FROM customers;\n' >"$T/wrong.sql"
expect_rc 5 "b: drill --pg --sql-db app with a check that fails" drill --json --pg --latest --sql "$T/wrong.sql" --sql-db app
check "b: ... the checks ran in database app: the first held, the second not" \
	test "$(jq_out "[(c['passed'], c['got']) for c in d['checks']]")" = "[(True, '50'), (False, '50')]"
check "b: ... scratch removed" scratch_empty

# pg-restore writes and says which archive mode
mkdir -p "$PGT/r-off" "$PGT/r-keep"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PGT/r-off" "$PGT/r-keep"
expect_rc 0 "b: pg-restore --archive-mode off" \
	dre1 pg-restore --pgdata "$PGT/r-off/data" --latest --archive-mode off --tablespace-map "$TS_OID=$PGT/r-off/ts"
check "b: ... says archive mode off" grep -q "archive mode: off" "$T/cmd.out"
check "b: ... and postgresql.auto.conf ends with archive_mode = 'off'" \
	test "$(grep archive_mode "$PGT/r-off/data/postgresql.auto.conf" | tail -1)" = "archive_mode = 'off'"
expect_rc 0 "b: pg-restore (default: preserve)" \
	dre1 --json pg-restore --pgdata "$PGT/r-keep/data" --latest --tablespace-map "$TS_OID=$PGT/r-keep/ts"
check "b: ... says it preserved archive_mode on and the archive_command that points at this repository" \
	test "$(jq_out "(d['archive_mode_written'], d['archive_mode'], 'wal-push' in d['archive_command'])")" = "('preserve', 'on', True)"
check "b: ... and wrote no archive_mode line" sh -c "! grep -q archive_mode '$PGT/r-keep/data/postgresql.auto.conf'"
expect_rc 0 "b: pg-restore --archive-mode preserve, text" dre1 pg-restore --pgdata "$PGT/r-keep/data2" --latest \
	--archive-mode preserve --tablespace-map "$TS_OID=$PGT/r-keep/ts2"
check "b: ... names the preserved archive_command" grep -q "archive mode: preserved (archive_mode = 'on', archive_command = '.*wal-push" "$T/cmd.out"
expect_rc 2 "b: pg-restore --archive-mode on is a usage error" dre1 pg-restore --pgdata "$PGT/r-x" --latest --archive-mode on
rm -rf "$PGT/r-off" "$PGT/r-keep" "$PGT/r-x"
start "$C1" "b: the cluster starts again"

# ---------------------------------------------------------------------------------------------------------------
# c. files

mkdir -p "$T/site/img"
head -c 300000 /dev/urandom >"$T/site/img/a.bin"
echo "hello" >"$T/site/index.html"
expect_rc 0 "c: push a files snapshot" dre1 push site "$T/site"
( cd "$T" && sha256sum site/index.html site/img/a.bin ) >"$T/site.sums"
expect_rc 0 "c: drill with --exec checking the restored tree" \
	drill site --exec "cd \"\$DRE_DRILL_DIR\"/${T#/} && sha256sum -c --quiet '$T/site.sums' && test \"\$PWD\" != '$T'"
expect_rc 5 "c: drill with an --exec that fails (exit 5)" drill site --exec "test -e no-such-file"
check "c: ... the message says the command failed" err_has "the --exec command failed (exit status 1)"
check "c: ... scratch removed" scratch_empty
expect_rc 0 "c: --keep keeps the scratch directory" drill --json site --keep
kept=$(jq_out "d['scratch']")
check "c: ... which holds the restored tree" test -f "$kept/files/${T#/}/site/img/a.bin"
rm -rf "$kept"
expect_rc 2 "c: --sql on a files snapshot is a usage error" drill site --sql "$T/pass.sql"

# ---------------------------------------------------------------------------------------------------------------
# d. SIGTERM in the middle

printf 'SELECT pg_sleep(120);\n' >"$T/long.sql"
"$DRE" drill --scratch "$SCR" app --sql "$T/long.sql" >"$T/term.out" 2>"$T/term.err" &
pid=$!
# sleeping: the check's query is active on the drill's private instance (its socket is in the scratch directory)
sleeping() {
	local dir
	for dir in "$SCR"/dre-drill-*; do
		[ "$("$PGBIN/psql" -X -At -h "$dir" -p 5432 -U postgres -d postgres -c "SELECT count(*) FROM pg_stat_activity
			WHERE query = 'SELECT pg_sleep(120)' AND state = 'active'" 2>/dev/null)" = 1 ] && return 0
	done
	return 1
}
for ((i = 0; i < 1200; i++)); do
	sleeping && break
	sleep 0.1
done
check "d: the drill reached its check (a backend runs pg_sleep)" sleeping
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$i" -ge 1200 ]; then
	sed 's/^/    stdout: /' "$T/term.out"
	sed 's/^/    stderr: /' "$T/term.err"
fi
check "d: SIGTERM fails the drill (exit $rc)" test "$rc" -eq 1
check "d: ... saying it was interrupted" grep -q "interrupted by signal 15" "$T/term.err"
check "d: ... no scratch directory, no postgres left" scratch_empty

# ---------------------------------------------------------------------------------------------------------------
# e. a damaged snapshot

qa "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 20000) g" ||
	not_ok "e: a table of fresh data"
touch "$T/mark"
sleep 1
expect_rc 0 "e: pg-dump of it" dre1 pg-dump damaged --dbname "$APP" --pg-bindir "$PGBIN"
n=0
for f in $(find "$DRE_REPOSITORY/packs" -type f -newer "$T/mark"); do
	"$PY" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=4; open(p,'wb').write(b)" "$f"
	n=$((n + 1))
done
check "e: its $n new packs are damaged" test "$n" -ge 1
expect_rc 5 "e: drill of the damaged dump fails (exit 5)" drill damaged
check "e: ... naming the corrupt pack" err_has "corrupt pack"
check "e: ... the report says the fetch failed" grep -q "fetch .*FAILED" "$T/cmd.out"
check "e: ... scratch removed" scratch_empty

finish
