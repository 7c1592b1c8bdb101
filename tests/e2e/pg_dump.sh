#!/bin/bash
# dre pg-dump on a real PostgreSQL 15 cluster:
#   a. a database of several tables (a partitioned one, names that need quoting, an empty one) dumped while a
#      writer commits rows into three of them: the counts recorded equal what pg_restore of the dump gives,
#      table by table (they are taken in the snapshot pg_dump reads), and the meta says the server version,
#      database size and dump duration;
#   b. the next dump after 1,000 changed rows stores a small fraction (custom format, uncompressed);
#   c. --globals stores pg_dumpall --globals-only beside the archive; restore --globals gives it;
#   d. --count estimate and none;
#   e. bad input: pg_dump options dre sets (exit 2), a pg_dump that fails (exit 6), a database that does not
#      exist (exit 1), a name too long: no snapshot in any case;
#   f. push warns once about a compressed stream (pg_dump -Fc, gzip) and not about -Fc -Z0; a producer that
#      does not exist is named as not found;
#   g. tests/spec_decoder.py (format-spec.md alone) verifies the repository, pg-dumps (§10.5) included.
# Local repository only.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

PGC=$DRE_SRC/tests/pg/pgcluster
BIN=/usr/lib/postgresql/15/bin

if ! "$PGC" install; then
	not_ok "PostgreSQL 15 could not be installed ($PGC install failed)"
	finish
fi
C1=$T/c1
writer_pid=
cleanup() {
	[ -z "$writer_pid" ] || kill "$writer_pid" 2>/dev/null
	"$PGC" stop "$C1" 2>/dev/null
}
trap cleanup EXIT
chmod o+x "$T"
"$PGC" init "$C1" >/dev/null || { not_ok "initdb"; finish; }
start "$C1" "the cluster starts"
set -a
. "$C1/env"
set +a
export PGDATABASE=app

check "init" "$DRE" init
q "$C1" -d postgres "CREATE DATABASE app" "CREATE ROLE app_owner LOGIN" >/dev/null
q "$C1" -d app "CREATE TABLE big (id int PRIMARY KEY, pad text)" \
	"INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g" \
	"CREATE SCHEMA \"odd schema\"" "CREATE TABLE \"odd schema\".\"T b\" (x int)" \
	"INSERT INTO \"odd schema\".\"T b\" SELECT generate_series(1, 123)" \
	"CREATE TABLE empty (x int)" \
	"CREATE TABLE events (at date, v int) PARTITION BY RANGE (at)" \
	"CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')" \
	"CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')" \
	"INSERT INTO events SELECT '2026-06-01'::date + (g % 200), g FROM generate_series(1, 5000) g" \
	"CREATE TABLE log (id bigserial, at timestamptz DEFAULT now())" >/dev/null

# a writer committing one row at a time into three tables until stopped
(
	i=300001
	while :; do
		"$PGC" psql "$C1" -d app "INSERT INTO big VALUES ($i, 'w'); INSERT INTO log DEFAULT VALUES;
			INSERT INTO events VALUES ('2027-02-01', $i)" >/dev/null 2>&1 || exit 0
		i=$((i + 1))
	done
) &
writer_pid=$!
sleep 1
expect_rc 0 "a. pg-dump while a writer commits" "$DRE" pg-dump app --pg-bindir "$BIN" --json
cp "$T/cmd.out" "$T/dump1.json"
# the writer commits at least once more after the dump (a fixed pause is not enough on a loaded machine)
after_dump=$(q "$C1" -d app "SELECT count(*) FROM log")
for _ in $(seq 600); do
	[ "$(q "$C1" -d app "SELECT count(*) FROM log")" -gt "${after_dump:-0}" ] && break
	sleep 0.1
done
kill "$writer_pid" 2>/dev/null
wait "$writer_pid" 2>/dev/null
writer_pid=

check "a. the summary names the database and counts 6 tables" \
	test "$(json "d['database'], d['count'], d['tables']" <"$T/dump1.json")" = "app exact 6"
"$DRE" cat snapshot app >"$T/snap.json"
check "a. kind pg-dump" test "$(json "d['kind']" <"$T/snap.json")" = pg-dump
check "a. meta: server version, database size, dump seconds" \
	"$PY" -c "import json,sys; m=json.load(open('$T/snap.json'))['meta']; \
sys.exit(not (m['pg-dump.server-version'].startswith('15') and int(m['pg-dump.database-size']) > 10**6 \
and float(m['pg-dump.seconds']) > 0 and m['pg-dump.database'] == 'app'))"

# restore the archive into a new database and count every table there
q "$C1" -d postgres "CREATE DATABASE app_copy" >/dev/null
"$DRE" restore app 2>/dev/null >"$T/app.dump"
check "a. the archive restores with pg_restore" "$BIN/pg_restore" -d app_copy "$T/app.dump"
"$PY" - "$T/snap.json" >"$T/recorded" <<'EOF'
import json, sys
for s, t, n in json.loads(json.load(open(sys.argv[1]))['meta']['pg-dump.tables']):
    print(f'{s}|{t}|{n}')
EOF
: >"$T/restored"
while IFS='|' read -r s t n; do
	echo "$s|$t|$(q "$C1" -d app_copy "SELECT count(*) FROM ONLY \"$s\".\"$t\"")" >>"$T/restored"
done <"$T/recorded"
if cmp -s "$T/recorded" "$T/restored"; then
	ok "a. every recorded count equals the restored table's"
else
	not_ok "a. every recorded count equals the restored table's"
	diff "$T/recorded" "$T/restored" | sed 's/^/    /'
fi
check "a. the partitions and the quoted names are counted, the parent is not" \
	test "$(grep -c -e '^public|events_2026|5000$' -e '^public|events_2027|' -e '^odd schema|T b|123$' -e '^public|empty|0$' \
		"$T/recorded")|$(grep -c '^public|events|' "$T/recorded")" = "4|0"
live=$(q "$C1" -d app "SELECT count(*) FROM log")
check "a. the writer committed rows after the dump's snapshot" \
	test "$live" -gt "$(grep '^public|log|' "$T/recorded" | cut -d'|' -f3)"

# b. a day's changes store little
q "$C1" -d app "UPDATE big SET pad = 'changed' || id WHERE id BETWEEN 100000 AND 100999" >/dev/null
expect_rc 0 "b. a second dump" "$DRE" pg-dump app --pg-bindir "$BIN" --json
size=$(json "d['size']" <"$T/cmd.out")
stored=$(json "d['stored_new']" <"$T/cmd.out")
check "b. 1,000 changed rows store under 10% of the dump ($stored of $size bytes)" test "$((stored * 10))" -lt "$size"

# c. globals
expect_rc 0 "c. pg-dump --globals --dbname with a plain name (pg_dumpall takes connection strings only)" \
	"$DRE" pg-dump appg --globals --dbname app --pg-bindir "$BIN" -q
expect_rc 0 "c. pg-dump --globals --dbname with a URI" \
	"$DRE" pg-dump appg --globals --dbname "postgresql:///app?host=$PGHOST&port=$PGPORT" --pg-bindir "$BIN" -q
"$DRE" restore appg --globals >"$T/globals.sql" 2>/dev/null
check "c. restore --globals gives the roles" grep -q 'CREATE ROLE app_owner' "$T/globals.sql"
"$DRE" restore appg 2>/dev/null | "$BIN/pg_restore" -l >"$T/toc"
check "c. restore gives the archive alone" grep -q 'TABLE DATA public big' "$T/toc"
mkdir "$T/both"
"$DRE" restore appg --target "$T/both" 2>/dev/null
check "c. --target gives both files" test -s "$T/both/appg" -a -s "$T/both/appg.globals.sql"
expect_rc 3 "c. restore --globals of a dump without them" "$DRE" restore app --globals
check "c. ... names what is missing" err_has "app.globals.sql"

# c. a password in --dbname reaches pg_dump in PGPASSWORD, never on its command line (which /proc shows to all)
mkdir -p "$T/spy"
for prog in pg_dump pg_dumpall; do
	printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"%s/spy.args"\nprintf "%%s\\n" "${PGPASSWORD-}" >"%s/spy.env"\nexec "%s/%s" "$@"\n' \
		"$T" "$T" "$BIN" "$prog" >"$T/spy/$prog"
	chmod +x "$T/spy/$prog"
done
spw=pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
expect_rc 0 "c. pg-dump --dbname 'dbname=app password=...'" "$DRE" pg-dump apppw --dbname "dbname=app password=$spw" \
	--pg-bindir "$T/spy" -q
check "c. ... pg_dump's arguments hold no password" sh -c "grep -q '^--dbname\$' '$T/spy.args' && ! grep -q -e '$spw' -e password '$T/spy.args'"
check "c. ... pg_dump got it in PGPASSWORD" test "$(cat "$T/spy.env")" = "$spw"
expect_rc 0 "c. pg-dump --globals --dbname URI with ...&password=..." "$DRE" pg-dump apppw --globals \
	--dbname "postgresql:///app?host=$PGHOST&port=$PGPORT&password=$spw" --pg-bindir "$T/spy" -q
check "c. ... pg_dumpall's arguments hold no password" sh -c "grep -q 'dbname=' '$T/spy.args' && ! grep -q -e '$spw' -e password '$T/spy.args'"
check "c. ... pg_dumpall got it in PGPASSWORD" test "$(cat "$T/spy.env")" = "$spw"

# d. estimates and none
q "$C1" -d app "ANALYZE" >/dev/null
expect_rc 0 "d. --count estimate" "$DRE" pg-dump appe --count estimate --pg-bindir "$BIN" -q
est=$("$DRE" cat snapshot appe | json "[r for r in json.loads(d['meta']['pg-dump.tables']) if r[1] == 'T b'][0][2]")
check "d. an estimate from pg_class after ANALYZE ($est)" test "$est" = 123
expect_rc 0 "d. --count none" "$DRE" pg-dump appn --count none --pg-bindir "$BIN" -q
check "d. none records no table counts" \
	test "$("$DRE" cat snapshot appn | json "d['meta']['pg-dump.count'], 'pg-dump.tables' in d['meta']")" = "none False"
expect_rc 2 "d. --count other" "$DRE" pg-dump appx --count maybe

# e. bad input, nothing recorded
before=$("$DRE" snapshots --json | json "len(d)")
expect_rc 2 "e. pg_dump's -Fp is refused" "$DRE" pg-dump bad -- -Fp
check "e. ... naming the option" err_has "option -Fp"
expect_rc 2 "e. pg_dump's --compress=9 is refused" "$DRE" pg-dump bad -- --compress=9
expect_rc 2 "e. pg_dump's --file is refused" "$DRE" pg-dump bad -- --file=/tmp/x
expect_rc 2 "e. arguments without --" "$DRE" pg-dump bad extra
expect_rc 6 "e. a pg_dump that fails exits 6" "$DRE" pg-dump bad --pg-bindir "$BIN" -- --no-such-option
check "e. ... saying pg_dump failed" err_has "exited with status 1: no snapshot recorded"
expect_rc 6 "e. a pg_dump that is not there exits 6" "$DRE" pg-dump bad --pg-bindir "$T/nowhere"
check "e. ... naming it as not found" err_has "command not found"
expect_rc 1 "e. a database that does not exist" "$DRE" pg-dump bad --dbname nosuchdb
check "e. ... named" err_has 'database "nosuchdb" does not exist'
expect_rc 2 "e. a name too long" "$DRE" pg-dump "$(printf 'n%.0s' {1..300})"
check "e. no snapshot was recorded" test "$("$DRE" snapshots --json | json "len(d)")" = "$before"

# f. push warns about compressed streams
expect_rc 0 "f. push of pg_dump -Fc" "$DRE" push fc -- "$BIN/pg_dump" -Fc -d app
check "f. ... warns once, with the fix" test "$(grep -c 'compressed with zlib.*dre pg-dump' "$T/cmd.err")" = 1
expect_rc 0 "f. push of pg_dump -Fc -Z0" "$DRE" push fc0 -- "$BIN/pg_dump" -Fc -Z0 -d app
check "f. ... does not warn" test ! -s "$T/cmd.err"
"$BIN/pg_dump" -d app | gzip -1 >"$T/app.sql.gz"
expect_rc 0 "f. push of a gzip stream" "$DRE" push gz <"$T/app.sql.gz"
check "f. ... warns" err_has "gzip-compressed"
expect_rc 6 "f. push -- a command that does not exist" "$DRE" push nope -- "$T/no-such-command"
check "f. ... says so" err_has "no-such-command.*command not found"

check "check" "$DRE" check --read-data
# the independent reader, written from format-spec.md alone, reads the pg-dumps as §10.5 says
if "$PY" -c 'import cryptography, zstandard, xxhash' 2>/dev/null; then
	expect_rc 0 "g. the spec's independent reader verifies every snapshot" \
		"$PY" "$DRE_SRC/tests/spec_decoder.py" "$DRE_REPOSITORY" "$DRE_PASSWORD_FILE" verify
	"$PY" "$DRE_SRC/tests/spec_decoder.py" "$DRE_REPOSITORY" "$DRE_PASSWORD_FILE" list >"$T/list" 2>&1
	check "g. ... and lists the pg-dumps as kind 5" test "$(grep -c ' app[gen]* pgdump ' "$T/list")" -ge 5
else
	not_ok "g. python modules missing for tests/spec_decoder.py (python3-cryptography, python3-zstandard, python3-xxhash)"
fi
finish
