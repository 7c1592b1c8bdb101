#!/bin/bash
# The systemd units of contrib/systemd:
#   a. `systemd-analyze verify` accepts every service and timer (templates as instances), on copies whose
#      ExecStart names the dre under test (verify checks that the program exists); and it does report a broken
#      unit here, so its silence means something;
#   b. the timers: Persistent, RandomizedDelaySec, and calendars that elapse every 6 hours (pg-dump), every day
#      (forget-prune), every week (check) and on the 1st of every month (drill); each service has its timer, runs
#      as postgres, oneshot, with the hardening the README promises;
#   c. each service's command lines as systemd builds them (specifiers, Environment=, EnvironmentFile=, $VAR and
#      ${VAR}, $$ and %%): exactly the dre arguments expected, the check's slice changing with the week;
#   d. each service run for real, as systemd would run it (clean environment, as the user postgres, state and
#      cache directories made), on a PostgreSQL 15 cluster: pg-dump of a database, its drill, the check,
#      forget and prune, with the example config; each exits 0 and leaves its metrics.
# Not emulated: the sandboxing itself (ProtectSystem=, PrivateTmp=...), which needs systemd as PID 1; /var/tmp
# and the other paths outside the test directory are mapped into it instead.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

UNITS=$DRE_SRC/contrib/systemd
PGC=$DRE_SRC/tests/pg/pgcluster
BIN=/usr/lib/postgresql/15/bin
DRE=$(readlink -f "$DRE")
command -v systemd-analyze >/dev/null 2>&1 || { not_ok "systemd-analyze is not installed (Debian package systemd)"; finish; }

# a. verify
mkdir -p "$T/u"
for f in "$UNITS"/*.service "$UNITS"/*.timer; do
	sed "s|/usr/local/bin/dre|$DRE|g" "$f" >"$T/u/$(basename "$f")"
done
instances=()
for f in "$T"/u/*.service "$T"/u/*.timer; do
	b=$(basename "$f")
	case $b in *@.*) instances+=("$T/u/${b/@./@app.}") ;; *) instances+=("$f") ;; esac
done
check "a. there are services and timers" test "${#instances[@]}" -ge 8
(cd "$T/u" && systemd-analyze verify --man=no "${instances[@]}") >"$T/verify.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$T/verify.out" ]; then
	ok "a. systemd-analyze verify: no error and no warning in ${#instances[@]} units"
else
	not_ok "a. systemd-analyze verify: no error and no warning (exit $rc)"
	sed 's/^/    | /' "$T/verify.out" | head -30
fi
mkdir -p "$T/bad"
sed 's|^Type=oneshot|Type=oneshot\nNoSuchSetting=1|' "$T/u/dre-check.service" >"$T/bad/dre-check.service"
sed "s|$DRE|$T/no/such/dre|" "$T/u/dre-forget-prune.service" >"$T/bad/dre-forget-prune.service"
(cd "$T/bad" && systemd-analyze verify --man=no ./dre-check.service ./dre-forget-prune.service) >"$T/verify.bad" 2>&1
check "a. ... which reports an unknown setting here" grep -q "NoSuchSetting" "$T/verify.bad"
check "a. ... and a program that is not there" grep -q "no/such/dre" "$T/verify.bad"

# b. timers and services
# key UNITFILE KEY: the values of KEY= in the file, one a line
key() { sed -n "s/^$2=//p" "$1"; }
for t in "$UNITS"/*.timer; do
	s=${t%.timer}.service
	b=$(basename "$t")
	check "b. $b starts a service of its own" test -f "$s"
	check "b. $b is Persistent and spread by RandomizedDelaySec" \
		test "$(key "$t" Persistent)" = true -a -n "$(key "$t" RandomizedDelaySec)"
	check "b. $b is wanted by timers.target" test "$(key "$t" WantedBy)" = timers.target
done
for s in "$UNITS"/*.service; do
	b=$(basename "$s")
	check "b. $b has a timer" test -f "${s%.service}.timer"
	check "b. $b: oneshot, as postgres" test "$(key "$s" Type) $(key "$s" User)" = "oneshot postgres"
	missing=
	for kv in NoNewPrivileges=true PrivateTmp=true ProtectSystem=strict ProtectHome=true PrivateDevices=true \
		CapabilityBoundingSet= RestrictSUIDSGID=true UMask=0077 StateDirectory=dre CacheDirectory=dre; do
		grep -qx "$kv" "$s" || missing="$missing $kv"
	done
	check "b. $b is hardened (missing:${missing:- none})" test -z "$missing"
done
# every: the seconds between the next elapses of the timer's calendar (UTC), one a line
every() {
	TZ=UTC systemd-analyze calendar --iterations=4 "$(key "$UNITS/$1" OnCalendar)" |
		sed -n 's/.*\(Next elapse\|Iter\. #[0-9]*\): *\(.*\)/\2/p' |
		while read -r when; do date -u -d "${when% UTC}" +%s; done | awk 'NR > 1 { print $1 - prev } { prev = $1 }'
}
check "b. pg-dump every 6 hours" test "$(every dre-pg-dump@.timer | sort -u)" = 21600
check "b. forget-prune every day" test "$(every dre-forget-prune.timer | sort -u)" = 86400
check "b. check every week" test "$(every dre-check.timer | sort -u)" = 604800
TZ=UTC systemd-analyze calendar --iterations=3 "$(key "$UNITS/dre-drill@.timer" OnCalendar)" >"$T/drill.cal"
check "b. drill on the 1st of every month" test "$(grep -cE '(Next elapse|Iter\. #[0-9]+): .*-01 04:00:00 UTC' "$T/drill.cal")" = 3

# the systemd emulator: runs a unit's ExecStart= lines as systemd would build and run them
cat >"$T/sdrun.py" <<'EOF'
"""sdrun.py UNITDIR UNIT MAPFILE [--dry]: builds each ExecStart= of UNIT (an instance of a template too) as systemd
does: specifiers (%i %I %C %S %%), Environment= then EnvironmentFile= (which wins), words split with quotes, $VAR
as whole words split on white space (none when empty), ${VAR} inside words, $$. Every path in MAPFILE (FROM TO, one
pair a line) is mapped in the words and the values. Makes StateDirectory=/CacheDirectory= for User=, then runs the
commands in order with a clean environment as User= (runuser, when root), stopping at the first failure. --dry
prints each command as JSON instead."""
import json, os, pwd, re, shlex, subprocess, sys

unitdir, unit, mapfile = sys.argv[1:4]
dry = '--dry' in sys.argv[4:]
maps = dict(l.rstrip('\n').split(' ', 1) for l in open(mapfile) if l.strip())
pattern = re.compile('|'.join(re.escape(a) for a in sorted(maps, key=len, reverse=True)))
def mapped(s):
    return pattern.sub(lambda m: maps[m.group(0)], s)
m = re.fullmatch(r'([^@]+)@([^.]*)\.(service)', unit)
inst = m.group(2) if m else ''
path = os.path.join(unitdir, f'{m.group(1)}@.{m.group(3)}' if m else unit)
cache_root, state_root = mapped('/var/cache'), mapped('/var/lib')

def specifiers(s):
    out, i = '', 0
    while i < len(s):
        if s[i] != '%':
            out += s[i]
            i += 1
            continue
        table = {'%': '%', 'i': inst, 'I': inst, 'C': cache_root, 'S': state_root}
        c = s[i + 1]
        if c not in table:
            sys.exit(f'{path}: specifier %{c} unknown to the test')
        out += table[c]
        i += 2
    return out

service = []
section = None
for raw in open(path):
    line = raw.strip()
    if not line or line[0] in '#;':
        continue
    if line.startswith('['):
        section = line.strip('[]')
        continue
    k, v = line.split('=', 1)
    if section == 'Service':
        service.append((k, specifiers(v)))

env = {}
for k, v in service:
    if k == 'Environment':
        for a in shlex.split(v):
            n, val = a.split('=', 1)
            env[n] = val
for k, v in service:
    if k == 'EnvironmentFile':
        optional = v.startswith('-')
        f = mapped(v.lstrip('-'))
        if not os.path.exists(f):
            if optional:
                continue
            sys.exit(f'{path}: EnvironmentFile {f} is missing')
        for l in open(f):
            l = l.strip()
            if l and not l.startswith('#'):
                n, val = l.split('=', 1)
                env[n] = ' '.join(shlex.split(val))
env = {n: mapped(v) for n, v in env.items()}

def expand(word):
    whole = re.fullmatch(r'\$([A-Za-z_][A-Za-z0-9_]*)', word)
    if whole:
        return env.get(whole.group(1), '').split()
    out, i = '', 0
    while i < len(word):
        if word.startswith('$$', i):
            out, i = out + '$', i + 2
        elif word.startswith('${', i):
            j = word.index('}', i)
            out, i = out + env.get(word[i + 2:j], ''), j + 1
        else:
            out, i = out + word[i], i + 1
    return [out]

user = dict(service).get('User')
commands = []
for k, v in service:
    if k == 'ExecStart':
        if v[0] in '-@+!:':
            sys.exit(f'{path}: ExecStart prefix {v[0]} unknown to the test')
        words = [w for word in shlex.split(v) for w in expand(word)]
        commands.append([mapped(w) for w in words])
if dry:
    for c in commands:
        print(json.dumps(c))
    sys.exit(0)
pw = pwd.getpwnam(user) if user and os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
base = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8',
        'USER': pw.pw_name, 'LOGNAME': pw.pw_name, 'HOME': pw.pw_dir, 'SHELL': pw.pw_shell}
for k, v in service:
    if k in ('StateDirectory', 'CacheDirectory'):
        d = os.path.join(state_root if k == 'StateDirectory' else cache_root, v)
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        base[k.replace('Directory', '_DIRECTORY').upper()] = d
base.update(env)
for c in commands:
    prefix = ['runuser', '-u', user, '--'] if user and os.geteuid() == 0 else []
    print('sdrun: ' + ' '.join(shlex.quote(w) for w in c), file=sys.stderr, flush=True)
    rc = subprocess.call(prefix + ['env', '-i'] + [f'{n}={v}' for n, v in base.items()] + c)
    if rc != 0:
        print(f'sdrun: exit status {rc}', file=sys.stderr)
        sys.exit(rc)
EOF

# the test's world: what the units name outside the test directory lives in $T/root
R=$T/root
mkdir -p "$R/etc" "$R/vartmp" "$R/var/cache" "$R/var/lib" "$R/metrics"
chmod o+x "$T"
cat >"$T/map" <<EOF
/usr/local/bin/dre $DRE
/etc/dre/ $R/etc/
/var/tmp $R/vartmp
/var/cache $R/var/cache
/var/lib/prometheus/node-exporter $R/metrics
/var/lib $R/var/lib
EOF

# c. the command lines, with a config and the environment files the units' comments describe
CFG=$R/etc/dre.conf
sed -e "s|^repository = .*|repository = $DRE_REPOSITORY|" -e "s|^password-file = .*|password-file = $R/etc/password|" \
	-e "s|^metrics-file = .*|metrics-file = $R/metrics/dre.prom|" "$UNITS/dre.conf.example" >"$CFG"
check "c. the example config sets repository, password-file, metrics-file and dbname" \
	test "$(grep -cE '^(repository|password-file|metrics-file|dbname) = ' "$CFG")" = 4
cp "$DRE_PASSWORD_FILE" "$R/etc/password"
printf '# written by the test\nDRE_PG_DUMP_OPTIONS=--count exact --pg-bindir %s\n' "$BIN" >"$R/etc/pg-dump-app.env"
# dry UNIT: the unit's commands, one JSON array a line
dry() { "$PY" "$T/sdrun.py" "$T/u" "$1" "$T/map" --dry; }
# argv JSON...: the JSON array of the arguments
argv() { "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
check "c. dre-pg-dump@app: pg-dump app of the database app, with the options of its environment file" \
	test "$(dry dre-pg-dump@app.service)" = \
	"$(argv "$DRE" --config "$CFG" pg-dump app --dbname dbname=app --count exact --pg-bindir "$BIN")"
rm "$R/etc/pg-dump-app.env"
printf 'DRE_DBNAME="host=/elsewhere dbname=sales"\n' >"$R/etc/pg-dump-shop.env"
check "c. dre-pg-dump@shop: DRE_DBNAME from its environment file, one argument; no options" \
	test "$(dry dre-pg-dump@shop.service)" = \
	"$(argv "$DRE" --config "$CFG" pg-dump shop --dbname "host=/elsewhere dbname=sales")"
check "c. dre-drill@app: drill app" test "$(dry dre-drill@app.service)" = "$(argv "$DRE" --config "$CFG" drill app)"
check "c. dre-forget-prune: forget with the policy, then prune" \
	test "$(dry dre-forget-prune.service | tr '\n' ' ')" = "$(argv "$DRE" --config "$CFG" forget --keep-last 4 \
	--keep-daily 7 --keep-weekly 4 --keep-monthly 6 --pitr-window 7d) $(argv "$DRE" --config "$CFG" prune) "
printf 'DRE_FORGET_POLICY=--keep-daily 14 --pitr-window 14d\n' >"$R/etc/forget.env"
check "c. dre-forget-prune: the policy of /etc/dre/forget.env" \
	test "$(dry dre-forget-prune.service | head -1)" = \
	"$(argv "$DRE" --config "$CFG" forget --keep-daily 14 --pitr-window 14d)"
rm "$R/etc/forget.env"
dry dre-check.service >"$T/check.argv"
check "c. dre-check: a shell that runs dre check" \
	"$PY" -c 'import json, sys; c = json.loads(open(sys.argv[1]).read()); sys.exit(c[:2] != ["/bin/sh", "-c"])' "$T/check.argv"
# the slice, computed by the unit's own shell line at three times a week apart
script=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).read())[2])' "$T/check.argv")
mkdir -p "$T/fake"
printf '#!/bin/sh\necho "$@"\n' >"$T/fake/dre"
NOW=$(date +%s)
printf '#!/bin/sh\nexec /bin/date -d "@$((%s + $WEEKS * 604800))" "$@"\n' "$NOW" >"$T/fake/date"
chmod +x "$T/fake/dre" "$T/fake/date"
slices=
for w in 0 1 2 3 4 5 6 7; do
	out=$(WEEKS=$w PATH="$T/fake:$PATH" sh -c "${script//$DRE/$T/fake/dre}")
	slices="$slices ${out##* }"
	[ "$w" = 0 ] && first=$out
done
check "c. dre-check: check --read-data-subset K/7 with the config ($first)" \
	test "$first" = "--config $CFG check --read-data-subset $((NOW / 604800 % 7 + 1))/7"
check "c. dre-check: eight weeks read slices 1..7 in turn and start again ($slices)" \
	test "$(echo $slices | tr ' ' '\n' | head -7 | sort -u | wc -l) $(echo $slices | awk '{print ($1 == $8)}')" = "7 1"

# d. the units run for real, on a cluster with a database app
if ! "$PGC" install; then
	not_ok "PostgreSQL 15 could not be installed ($PGC install failed)"
	finish
fi
if ! asowner test -x "$DRE"; then
	not_ok "the dre binary $DRE cannot be run by postgres: make its directories searchable (chmod o+x)"
	finish
fi
C1=$T/c1
cleanup() { "$PGC" stop "$C1" 2>/dev/null; }
trap cleanup EXIT
"$PGC" init "$C1" >/dev/null || { not_ok "initdb"; finish; }
start "$C1" "d. the cluster starts"
q "$C1" -d postgres "CREATE DATABASE app" >/dev/null
q "$C1" -d app "CREATE TABLE orders (id int PRIMARY KEY, note text)" \
	"INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 20000) g" \
	"CREATE TABLE customers (id int, name text)" "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g" \
	>/dev/null
(set -a && . "$C1/env" && printf 'PGHOST=%s\nPGPORT=%s\n' "$PGHOST" "$PGPORT") >"$R/etc/pg-dump-app.env"
mkdir -p "$DRE_REPOSITORY"
chmod 640 "$CFG" "$R/etc/password"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$R" "$DRE_REPOSITORY"
# run UNIT NAME: the unit run as systemd would, one check; its output in $T/UNIT.log
run() {
	if "$PY" "$T/sdrun.py" "$T/u" "$1" "$T/map" >"$T/$1.log" 2>&1; then
		ok "$2"
	else
		not_ok "$2"
		sed 's/^/    | /' "$T/$1.log" | tail -25
	fi
}
check "d. init with the example config, as postgres" asowner env -i PATH="$PATH" "$DRE" --config "$CFG" init -q
run dre-pg-dump@app.service "d. dre-pg-dump@app.service"
"$DRE" --config "$CFG" snapshots --json >"$T/snaps.json"
check "d. ... saved pg-dump snapshot app" test "$(json "[s['kind'] for s in d if s['name'] == 'app']" <"$T/snaps.json")" = "['pg-dump']"
run dre-drill@app.service "d. dre-drill@app.service"
check "d. ... compared the two tables" grep -qiE "2 tables|tables[^0-9]*2" "$T/dre-drill@app.service.log"
check "d. ... and left nothing in its /var/tmp" test -z "$(ls -A "$R/vartmp")"
run dre-check.service "d. dre-check.service"
run dre-forget-prune.service "d. dre-forget-prune.service"
check "d. the state and cache directories were made for postgres" \
	test "$(stat -c %U "$R/var/lib/dre") $(stat -c %U "$R/var/cache/dre")" = "postgres postgres"
M=$R/metrics/dre.prom
check "d. the metrics file is valid" promtool check metrics <"$M"
for series in 'dre_backup_last_success_timestamp_seconds{name="app"' 'dre_drill_last_success_timestamp_seconds{name="app"' \
	'dre_check_last_success_timestamp_seconds{' 'dre_forget_last_success_timestamp_seconds{' \
	'dre_prune_last_success_timestamp_seconds{'; do
	check "d. the metrics record $series...}" grep -qF "$series" "$M"
done
check "d. and no failure" test -z "$(grep '_last_failure_' "$M" | grep -v '^#')"
finish
