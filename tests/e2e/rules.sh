#!/bin/bash
# The Prometheus rules of contrib/prometheus (docs/monitoring.md):
#   a. `promtool check rules` accepts dre-rules.yml and `promtool test rules` passes every case of
#      dre-rules.test.yml;
#   b. those cases cover each alert firing and not firing, and each threshold; the rules read only metrics that
#      `dre help stats` documents (and the thresholds); docs/monitoring.md names every alert and threshold;
#   c. mutants: rules changed in ways that matter (a default, an override ignored, a case dropped, a comparison
#      turned) each make the cases fail, so the cases can fail;
#   d. with the metrics file dre writes (--metrics) after real pushes, a failed push and a check, as scraped
#      twice: exactly the alerts that should fire do (a failed backup, a backup whose size changed), with the
#      labels dre writes, and the thresholds exist for the backups.
. "$(dirname "$0")/lib.bash"

RULES=$DRE_SRC/contrib/prometheus
if ! command -v promtool >/dev/null 2>&1; then
	not_ok "promtool is not installed (Debian's package prometheus; 'make deps' installs it)"
	finish
fi
"$PY" -c 'import yaml' 2>/dev/null || { not_ok "python3's yaml is not installed (Debian package python3-yaml)"; finish; }
# promtool resolves rule_files beside the test file: run everything on copies in $T
mkdir -p "$T/p"
cp "$RULES/dre-rules.yml" "$RULES/dre-rules.test.yml" "$T/p/"

# expect_show CODE NAME CMD...: as expect_rc, and on failure shows what CMD printed (promtool's diagnostics)
expect_show() {
	local want=$1 name=$2 rc
	shift 2
	"$@" >"$T/cmd.out" 2>"$T/cmd.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name"
	else
		not_ok "$name (exit $rc, wanted $want)"
		cat "$T/cmd.out" "$T/cmd.err" | head -60 | sed 's/^/    | /'
	fi
}

# a. the rules and their cases
expect_show 0 "a. promtool check rules dre-rules.yml" promtool check rules "$T/p/dre-rules.yml"
check "a. ... finds every rule" grep -q "SUCCESS: [1-9][0-9]* rules found" "$T/cmd.out"
expect_show 0 "a. promtool test rules dre-rules.test.yml: every case passes" \
	promtool test rules "$T/p/dre-rules.test.yml"

# b. coverage: each alert fires in some case and is silent in another; each threshold has a case
"$PY" - "$T/p/dre-rules.yml" "$T/p/dre-rules.test.yml" >"$T/coverage" <<'EOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))['tests']
alerts = [r['alert'] for g in rules['groups'] for r in g['rules'] if 'alert' in r]
records = [r['record'] for g in rules['groups'] for r in g['rules'] if 'record' in r]
fires, silent, queried = set(), set(), set()
for t in tests:
    for a in t.get('alert_rule_test', []):
        (fires if a.get('exp_alerts') else silent).add(a['alertname'])
    for q in t.get('promql_expr_test', []):
        queried.add(q['expr'].split('{')[0].strip())
for a in alerts:
    print(('ok' if a in fires else 'missing'), 'fires', a)
    print(('ok' if a in silent else 'missing'), 'silent', a)
for r in records:
    print(('ok' if r in queried else 'missing'), 'queried', r)
EOF
check "b. the rules have alerts and recording rules" test "$(grep -c ' fires ' "$T/coverage")" -ge 10
if grep -q '^missing' "$T/coverage"; then
	not_ok "b. a case for each alert firing and not firing, and for each recording rule"
	grep '^missing' "$T/coverage" | sed 's/^/    /'
else
	ok "b. a case for each alert firing and not firing, and for each recording rule"
fi

# the metrics the rules read: dre's own families, and the thresholds an operator may set
THRESHOLDS="dre_backup_max_age_seconds dre_backup_size_max_change_ratio dre_wal_max_age_seconds
dre_drill_max_age_seconds dre_drill_rto_objective_seconds dre_check_max_age_seconds"
# Proposed to dre, not yet written by it: remove a name from here once `dre help stats` documents it (none now).
PROPOSED=""
"$DRE" help stats >"$T/stats.help"
check "b. dre help stats lists the metric families" grep -q '^  dre_backup_last_success_timestamp_seconds' "$T/stats.help"
"$PY" - "$T/p/dre-rules.yml" >"$T/used" <<'EOF'
import re, sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
names = set()
for g in rules['groups']:
    for r in g['rules']:
        names |= set(re.findall(r'\bdre_[a-z0-9_]+', r['expr']))
print('\n'.join(sorted(names)))
EOF
unknown=
while read -r m; do
	case " $(echo $THRESHOLDS $PROPOSED) " in *" $m "*) continue ;; esac
	grep -q "^  $m{" "$T/stats.help" || unknown="$unknown $m"
done <"$T/used"
check "b. the rules read only metrics dre documents (unknown:${unknown:- none})" test -z "$unknown"
for m in $PROPOSED; do
	check "b. $m is used by the rules" grep -qx "$m" "$T/used"
	if grep -q "^  $m{" "$T/stats.help"; then
		not_ok "b. $m is documented by dre now: take it off PROPOSED in tests/e2e/rules.sh"
	fi
done
missing_docs=
for a in $(grep -oE '^ *- alert: [A-Za-z]+' "$T/p/dre-rules.yml" | awk '{print $3}') $THRESHOLDS $PROPOSED; do
	grep -q "$a" "$DRE_SRC/docs/monitoring.md" || missing_docs="$missing_docs $a"
done
check "b. docs/monitoring.md names every alert, threshold and proposed metric (missing:${missing_docs:- none})" \
	test -z "$missing_docs"

# c. mutants: each must make the cases of the named test groups fail. They do not depend on how dre is built: the
# sanitizer build's run of the suite does not try them again.
case $DRE in
*/build-asan/*) ok "c. the mutants were tried in the run of the plain build (they do not depend on the build)" ;;
*)
"$PY" - "$T/p" "$T/mut" <<'EOF' >"$T/mutants"
import os, sys, yaml
src, out = sys.argv[1], sys.argv[2]
rules = open(os.path.join(src, 'dre-rules.yml')).read()
tests = yaml.safe_load(open(os.path.join(src, 'dre-rules.test.yml')))
LATE, FAILING, ODD = 'DreBackupLate', 'DreBackupFailing', 'DreBackupSizeOdd'
T1 = 'thresholds (defaults and per-name overrides)'
T2 = 'thresholds (an override for all, and a per-name override winning over it)'
mutants = [
    ('the default backup age 13h made 14h', '(dre_backup_last_success_timestamp_seconds * 0 + 13 * 3600)',
     '(dre_backup_last_success_timestamp_seconds * 0 + 14 * 3600)', [LATE]),
    ('a per-name override ignored', 'max by (name) (dre_backup_max_age_seconds{name!=""})',
     'max by (name) (dre_backup_max_age_seconds{name="-"})', [LATE, T1]),
    ('the WAL override for all ignored', 'max (dre_wal_max_age_seconds{repository=""})',
     'max (dre_wal_max_age_seconds{repository="-"})', [T2]),
    ('a backup that never succeeded not reported', '(dre_backup_last_failure_timestamp_seconds unless dre_backup_last_success_timestamp_seconds)',
     '(dre_backup_last_failure_timestamp_seconds unless dre_backup_last_failure_timestamp_seconds)', [FAILING]),
    ('size odd in one direction only', 'abs(dre_backup_size_bytes - dre:backup_size_bytes:previous)',
     '(dre_backup_size_bytes - dre:backup_size_bytes:previous)', [ODD]),
    ('the previous size without the look-back', 'last_over_time((dre_backup_size_bytes offset 5m != dre_backup_size_bytes)[2d:5m])',
     '(dre_backup_size_bytes offset 5m != dre_backup_size_bytes)', [ODD]),
    ('the metrics-missing look-back shortened', 'last_over_time(dre_backup_last_success_timestamp_seconds[7d])',
     'last_over_time(dre_backup_last_success_timestamp_seconds[1m])', ['DreMetricsMissing']),
    ('the WAL stall limit doubled', '(time() - dre_wal_last_archived_timestamp_seconds) > dre:wal_max_age_seconds',
     '(time() - dre_wal_last_archived_timestamp_seconds) > 2 * dre:wal_max_age_seconds', ['DreWalArchivingStalled']),
    ('wal-push failures alert at once', 'increase(dre_wal_archive_failures_total[10m]) > 0\n        for: 15m',
     'increase(dre_wal_archive_failures_total[10m]) > 0\n        for: 0m', ['DreWalArchiveFailing']),
    ('a WAL gap needs 4 segments', 'dre_wal_missing_segments > 0', 'dre_wal_missing_segments > 3', ['DreWalGap']),
    ('a drill failed before its success alerts', 'dre_drill_last_failure_timestamp_seconds > dre_drill_last_success_timestamp_seconds',
     'dre_drill_last_failure_timestamp_seconds < dre_drill_last_success_timestamp_seconds', ['DreDrillFailed']),
    ('mismatches not counted (-1) alert', 'dre_drill_row_mismatches > 0', 'dre_drill_row_mismatches != 0', ['DreDrillRowMismatches']),
    ('the default RTO objective 1h made 2h', '(dre_drill_rto_seconds * 0 + 3600)', '(dre_drill_rto_seconds * 0 + 7200)', ['DreDrillOverRTO']),
    ('the default check age 8d made 9d', '(dre_check_last_success_timestamp_seconds * 0 + 8 * 86400)',
     '(dre_check_last_success_timestamp_seconds * 0 + 9 * 86400)', ['DreCheckFailed and DreCheckLate']),
    ('prune failures labelled forget', '"command", "prune", "", "")', '"command", "forget", "", "")', ['DreRetentionFailing']),
]
names = {t['name'] for t in tests['tests']}
for i, (what, old, new, groups) in enumerate(mutants):
    if rules.count(old) != 1:
        print(f'stale\t{what}\tthe text to change occurs {rules.count(old)} times in dre-rules.yml')
        continue
    if not set(groups) <= names:
        print(f'stale\t{what}\tno test group {sorted(set(groups) - names)}')
        continue
    d = os.path.join(out, str(i))
    os.makedirs(d)
    open(os.path.join(d, 'dre-rules.yml'), 'w').write(rules.replace(old, new))
    t = dict(tests, tests=[t for t in tests['tests'] if t['name'] in groups])
    yaml.safe_dump(t, open(os.path.join(d, 'dre-rules.test.yml'), 'w'), sort_keys=False)
    print(f'run\t{what}\t{d}')
EOF
check "c. the mutants are made" test "$(grep -c '^run' "$T/mutants")" -ge 15
while IFS=$'\t' read -r kind what where; do
	if [ "$kind" = stale ]; then
		not_ok "c. mutant '$what' no longer applies: $where (update it in tests/e2e/rules.sh)"
		continue
	fi
	# each mutant's own rules must still be valid, and its cases must fail
	if ! promtool check rules "$where/dre-rules.yml" >/dev/null 2>&1; then
		not_ok "c. mutant '$what' is not a valid rule file"
	elif promtool test rules "$where/dre-rules.test.yml" >"$T/mut.out" 2>&1; then
		not_ok "c. the cases catch the mutant '$what' (they passed)"
	elif grep -q "FAILED" "$T/mut.out"; then
		ok "c. the cases catch the mutant '$what'"
	else
		not_ok "c. the cases catch the mutant '$what' (promtool failed otherwise)"
		sed 's/^/    | /' "$T/mut.out" | head -20
	fi
done <"$T/mutants"
;;
esac

# d. the rules on the metrics dre writes: scraped once after a push (A), then after a failed push, a second
# push of the same name at a tenth of the size and a check (B)
M=$T/metrics/dre.prom
mkdir -p "$T/metrics"
check "d. init" "$DRE" init -q
head -c 1000000 /dev/urandom >"$T/big"
head -c 100000 /dev/urandom >"$T/small"
expect_rc 0 "d. push web (1 MB) --metrics" "$DRE" --metrics "$M" push web "$T/big"
cp "$M" "$T/A.prom"
expect_rc 6 "d. a push whose producer fails --metrics" "$DRE" --metrics "$M" push db -- false
expect_rc 0 "d. push web again (100 kB) --metrics" "$DRE" --metrics "$M" push web "$T/small"
expect_rc 0 "d. check --metrics" "$DRE" --metrics "$M" check
cp "$M" "$T/B.prom"
check "d. promtool check metrics accepts the file" promtool check metrics <"$T/B.prom"
REPO_LABEL=$(grep -o 'repository="[^"]*"' "$T/B.prom" | head -1)
check "d. the series carry the repository label ($REPO_LABEL)" test -n "$REPO_LABEL"
"$PY" - "$T/A.prom" "$T/B.prom" "$T/p/dre-rules.yml" >"$T/p/real.test.yml" <<'EOF'
import re, sys, yaml
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
def read(path):
    out = {}
    for line in open(path):
        line = line.rstrip('\n')
        if not line or line.startswith('#'):
            continue
        m = sample.match(line)
        if not m:
            sys.exit(f'cannot read the sample line {line!r} of {path}')
        labels = (m.group(2) or '{}')[1:-1]
        out[m.group(1) + '{' + (labels + ',' if labels else '') + 'instance="db1:9100",job="node"}'] = m.group(3)
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
# A for the first hour (0..1h), B from 1h05m on
series = [{'series': s, 'values': ' '.join(([a[s]] if s in a else ['_']) * 13 + [b.get(s, '_')] * 24)}
          for s in sorted(set(a) | set(b))]
repo = re.search(r'repository="((?:[^"\\]|\\.)*)"', open(sys.argv[2]).read()).group(1)
def labels(**kw):
    kw.update(repository=repo, instance='db1:9100', job='node')
    return '{' + ','.join(f'{k}="{v}"' for k, v in sorted(kw.items())) + '}'
test = {
    'rule_files': [sys.argv[3]],
    'evaluation_interval': '5m',
    'tests': [{
        'name': 'the metrics dre wrote',
        'interval': '5m',
        'input_series': series,
        'promql_expr_test': [
            {'expr': 'ALERTS{alertstate="firing"}', 'eval_time': '1h', 'exp_samples': []},
            {'expr': 'ALERTS{alertstate="firing"}', 'eval_time': '1h30m', 'exp_samples': [
                {'labels': 'ALERTS' + labels(alertname='DreBackupFailing', alertstate='firing', name='db',
                                             severity='warning'), 'value': 1},
                {'labels': 'ALERTS' + labels(alertname='DreBackupSizeOdd', alertstate='firing', name='web',
                                             severity='warning'), 'value': 1}]},
            {'expr': 'dre:backup_max_age_seconds', 'eval_time': '1h30m', 'exp_samples': [
                {'labels': 'dre:backup_max_age_seconds' + labels(name='web'), 'value': 46800}]},
            {'expr': 'dre:backup_size_bytes:previous', 'eval_time': '1h30m', 'exp_samples': [
                {'labels': 'dre:backup_size_bytes:previous' + labels(name='web'), 'value': 1000000}]},
            {'expr': 'dre:check_max_age_seconds', 'eval_time': '1h30m', 'exp_samples': [
                {'labels': 'dre:check_max_age_seconds' + labels(), 'value': 691200}]},
        ],
    }],
}
yaml.safe_dump(test, sys.stdout, sort_keys=False, width=1000)
EOF
expect_show 0 "d. on dre's own metrics, exactly the failed backup and the size change alert" \
	promtool test rules "$T/p/real.test.yml"
finish
