#!/bin/bash
# The Kubernetes manifests of contrib/kubernetes (there is no cluster here: python3's yaml reads them, and the
# jobs run as a kubelet would start their containers):
#   a. every document parses and is a batch/v1 CronJob or a v1 ConfigMap with the fields Kubernetes requires:
#      names, a valid schedule, concurrencyPolicy Forbid, a restartPolicy a Job accepts, containers with a name,
#      an image and a command, volume mounts of volumes that exist, the ConfigMap they mount and its key; the
#      password only from a Secret, mounted as the file the config's password-file names, not readable by others;
#      no password in a plain env value; pods that run as non-root on a read-only root file system;
#   b. the schedules fire every 6 hours (pg-dump), daily (forget-prune), weekly (check), on the 1st (drill);
#   c. each CronJob's pod run as a kubelet would: $(VAR) and $$ expanded in command and args, env from values and
#      Secrets (the optional dre-s3 absent), the ConfigMap and the Secret as files, emptyDirs, init containers
#      first, as the pod's user (65534); paths inside the pod mapped into the test directory. On a PostgreSQL 15
#      cluster: pg-dump of mydb, its drill, the check, forget then prune: each exits 0.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg_lib.bash"

K8S=$DRE_SRC/contrib/kubernetes
PGC=$DRE_SRC/tests/pg/pgcluster
DRE=$(readlink -f "$DRE")
"$PY" -c 'import yaml' 2>/dev/null || { not_ok "python3's yaml is not installed (Debian package python3-yaml)"; finish; }

# a. the documents: validate.py DIR prints a summary line, then a line "problem: ..." for each problem
cat >"$T/validate.py" <<'EOF'
import configparser, glob, os, re, sys, yaml
problems, cronjobs, configmaps = [], {}, {}
def bad(where, what):
    problems.append(f'{where}: {what}')
def cron_field(text, lo, hi):
    for part in text.split(','):
        m = re.fullmatch(r'(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?', part)
        if not m:
            return False
        if m.group(2) is not None:
            a = int(m.group(2)); b = int(m.group(3)) if m.group(3) else a
            if not (lo <= a <= b <= hi):
                return False
        if m.group(4) is not None and int(m.group(4)) == 0:
            return False
    return True
dns = re.compile(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?')
files = sorted(glob.glob(os.path.join(sys.argv[1], '*.yaml')) + glob.glob(os.path.join(sys.argv[1], '*.yml')))
for f in files:
    for i, d in enumerate(yaml.safe_load_all(open(f))):
        where = f'{os.path.basename(f)}#{i}'
        if not isinstance(d, dict):
            bad(where, 'not a mapping'); continue
        name = (d.get('metadata') or {}).get('name', '')
        if not dns.fullmatch(name or ''):
            bad(where, f'metadata.name {name!r} is not a DNS label')
        kind, api = d.get('kind'), d.get('apiVersion')
        if kind == 'ConfigMap' and api == 'v1':
            configmaps[name] = d.get('data') or {}
        elif kind == 'CronJob' and api == 'batch/v1':
            if len(name) > 52:
                bad(where, 'a CronJob name longer than 52 characters')
            cronjobs[name] = (where, d)
        else:
            bad(where, f'kind {kind} apiVersion {api}: not a batch/v1 CronJob or a v1 ConfigMap')
for name, (where, d) in cronjobs.items():
    spec = d.get('spec') or {}
    fields = str(spec.get('schedule', '')).split()
    if len(fields) != 5 or not all(cron_field(x, lo, hi) for x, (lo, hi) in
                                   zip(fields, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)])):
        bad(where, f'schedule {spec.get("schedule")!r} is not a cron expression')
    if spec.get('concurrencyPolicy') != 'Forbid':
        bad(where, 'concurrencyPolicy is not Forbid')
    pod = (((spec.get('jobTemplate') or {}).get('spec') or {}).get('template') or {}).get('spec') or {}
    if pod.get('restartPolicy') not in ('Never', 'OnFailure'):
        bad(where, f'restartPolicy {pod.get("restartPolicy")!r}: a Job needs Never or OnFailure')
    psc = pod.get('securityContext') or {}
    if psc.get('runAsNonRoot') is not True or not psc.get('runAsUser'):
        bad(where, 'the pod does not run as a non-root user')
    volumes = {v['name']: v for v in pod.get('volumes') or []}
    containers = (pod.get('initContainers') or []) + (pod.get('containers') or [])
    if not pod.get('containers'):
        bad(where, 'no containers')
    for c in containers:
        cw = f'{where} container {c.get("name")!r}'
        if not c.get('name') or not c.get('image') or not c.get('command'):
            bad(cw, 'needs a name, an image and a command')
        sc = c.get('securityContext') or {}
        if sc.get('allowPrivilegeEscalation') is not False or sc.get('readOnlyRootFilesystem') is not True:
            bad(cw, 'allows privilege escalation or writes its root file system')
        for e in c.get('env') or []:
            if re.search(r'PASSWORD|SECRET', e['name']) and 'value' in e:
                bad(cw, f'env {e["name"]} has a plain value: take it from a Secret')
        mounts = {}
        for m in c.get('volumeMounts') or []:
            v = volumes.get(m['name'])
            if v is None:
                bad(cw, f'mounts volume {m["name"]!r}, which the pod does not have'); continue
            mounts[m['mountPath']] = (m, v)
            if 'configMap' in v:
                cm = configmaps.get(v['configMap']['name'])
                if cm is None:
                    bad(cw, f'ConfigMap {v["configMap"]["name"]!r} is not among the manifests')
                elif m.get('subPath') and m['subPath'] not in cm:
                    bad(cw, f'ConfigMap {v["configMap"]["name"]!r} has no key {m["subPath"]!r}')
            if 'secret' in v and v['secret'].get('defaultMode', 0o644) & 0o007:
                bad(cw, f'secret volume {m["name"]!r} is readable by others')
        args = ' '.join(c.get('command', []) + c.get('args', []))
        conf = re.search(r'--config (\S+)', args)
        if not conf:
            bad(cw, 'runs dre without --config'); continue
        m, v = mounts.get(conf.group(1), (None, None))
        if v is None or 'configMap' not in v:
            bad(cw, f'--config {conf.group(1)} is not a mounted ConfigMap key'); continue
        cp = configparser.ConfigParser()
        cp.read_string('[x]\n' + configmaps[v['configMap']['name']][m['subPath']])
        pwfile = cp['x'].get('password-file')
        holder = [p for p, (mm, vv) in mounts.items() if 'secret' in vv and pwfile and pwfile.startswith(p.rstrip('/') + '/')]
        if not holder:
            bad(cw, f'password-file {pwfile!r} is not in a mounted Secret')
print(f'{len(files)} files, {len(cronjobs)} CronJobs: {" ".join(sorted(cronjobs))}; '
      f'{len(configmaps)} ConfigMaps: {" ".join(sorted(configmaps))}')
for p in problems:
    print('problem:', p)
EOF
"$PY" "$T/validate.py" "$K8S" >"$T/validate" 2>&1
head -1 "$T/validate" | sed 's/^/    /'
check "a. the manifests: 4 CronJobs and the ConfigMap dre-config" \
	grep -q "5 files, 4 CronJobs: dre-check dre-drill-mydb dre-forget-prune dre-pg-dump-mydb; 1 ConfigMaps: dre-config" "$T/validate"
if grep -q '^problem\|Traceback' "$T/validate"; then
	not_ok "a. every manifest has what Kubernetes requires and keeps the password in a Secret"
	grep -v '^[0-9]* files' "$T/validate" | sed 's/^/    /' | head -30
else
	ok "a. every manifest has what Kubernetes requires and keeps the password in a Secret"
fi

# ... and finds what is wrong in broken copies
mkdir -p "$T/broken"
cp "$K8S"/*.yaml "$T/broken/"
"$PY" - "$T/broken" <<'EOF'
import os, sys, yaml
d = sys.argv[1]
def edit(name, fn):
    p = os.path.join(d, name)
    doc = yaml.safe_load(open(p))
    fn(doc)
    yaml.safe_dump(doc, open(p, 'w'))
pod = lambda doc: doc['spec']['jobTemplate']['spec']['template']['spec']
edit('dre-check.yaml', lambda doc: doc['spec'].update(concurrencyPolicy='Allow'))
edit('dre-forget-prune.yaml', lambda doc: doc['spec'].update(schedule='0 */6 * *'))
def plain_password(doc):
    env = pod(doc)['containers'][0]['env']
    [e for e in env if e['name'] == 'PGPASSWORD'][0].update(value='hunter2', valueFrom=None)
edit('dre-pg-dump.yaml', plain_password)
def typo(doc):
    [m for m in pod(doc)['containers'][0]['volumeMounts'] if m['name'] == 'scratch'][0]['name'] = 'scrach'
edit('dre-drill.yaml', typo)
edit('dre-config.yaml', lambda doc: doc['data'].update({'dre.conf': doc['data']['dre.conf'].replace(
    'password-file = /etc/dre/secret/password', 'password-file = /etc/dre/password')}))
EOF
"$PY" "$T/validate.py" "$T/broken" >"$T/validate.broken" 2>&1
for what in "dre-check.yaml#0: concurrencyPolicy is not Forbid" "dre-forget-prune.yaml#0: schedule '0 */6 * *' is not" \
	"env PGPASSWORD has a plain value" "mounts volume 'scrach', which the pod does not have" \
	"password-file '/etc/dre/password' is not in a mounted Secret"; do
	check "a. the check finds: $what" grep -qF "$what" "$T/validate.broken"
done

# b. the schedules: the minutes between the next firings after 2027-01-01 00:00 UTC (a Friday)
cat >"$T/cron.py" <<'EOF'
import datetime, sys, yaml
def field(text, lo, hi):
    out = set()
    for part in text.split(','):
        rng, _, step = part.partition('/')
        a, b = (lo, hi) if rng == '*' else (int(rng.split('-')[0]), int(rng.split('-')[-1]))
        out |= set(range(a, b + 1, int(step or 1)))
    return out
d = yaml.safe_load(open(sys.argv[1]))
mi, ho, dom, mo, dow = d['spec']['schedule'].split()
mi, ho, dom, mo, dow = field(mi, 0, 59), field(ho, 0, 23), field(dom, 1, 31), field(mo, 1, 12), {x % 7 for x in field(dow, 0, 7)}
t, fired = datetime.datetime(2027, 1, 1), []
while len(fired) < 4 and t.year < 2028:
    if t.minute in mi and t.hour in ho and t.month in mo and t.day in dom and t.isoweekday() % 7 in dow:
        fired.append(t)
    t += datetime.timedelta(minutes=1)
print(' '.join(f.strftime('%m-%d@%H:%M') for f in fired))
EOF
fires() { "$PY" "$T/cron.py" "$K8S/$1"; }
check "b. pg-dump every 6 hours ($(fires dre-pg-dump.yaml))" test "$(fires dre-pg-dump.yaml)" = "01-01@00:00 01-01@06:00 01-01@12:00 01-01@18:00"
check "b. forget-prune every day ($(fires dre-forget-prune.yaml))" test "$(fires dre-forget-prune.yaml)" = "01-01@03:30 01-02@03:30 01-03@03:30 01-04@03:30"
check "b. check every Sunday ($(fires dre-check.yaml))" test "$(fires dre-check.yaml)" = "01-03@05:00 01-10@05:00 01-17@05:00 01-24@05:00"
check "b. drill on the 1st of every month ($(fires dre-drill.yaml))" test "$(fires dre-drill.yaml)" = "01-01@04:00 02-01@04:00 03-01@04:00 04-01@04:00"

# c. the pods, run as a kubelet would start them
cat >"$T/kubelet.py" <<'EOF'
"""kubelet.py MANIFEST CONFIGMAPS_DIR WORLD MAPFILE: runs the pod of the CronJob in MANIFEST: its volumes made under
WORLD (ConfigMap keys from the manifests in CONFIGMAPS_DIR, Secrets from WORLD/secrets/NAME/KEY, emptyDirs), then
each init container and the container in turn, as the pod's user, with command and args expanded as a kubelet does
($(VAR) from the container's env, $$ for $). Paths inside the pod become their volume's directory; MAPFILE maps
other values (FROM TO, one pair a line: the image's dre, the database host). Stops at the first failure."""
import glob, os, re, shlex, subprocess, sys, yaml

manifest, cmdir, world, mapfile = sys.argv[1:5]
values = dict(l.rstrip('\n').split(' ', 1) for l in open(mapfile) if l.strip())
cronjob = yaml.safe_load(open(manifest))
pod = cronjob['spec']['jobTemplate']['spec']['template']['spec']
configmaps = {}
for f in glob.glob(os.path.join(cmdir, '*.yaml')):
    for d in yaml.safe_load_all(open(f)):
        if d.get('kind') == 'ConfigMap':
            configmaps[d['metadata']['name']] = d.get('data') or {}
uid = pod.get('securityContext', {}).get('runAsUser')
gid = pod.get('securityContext', {}).get('runAsGroup', uid)
root = os.geteuid() == 0

def secret(name, key=None, optional=False):
    d = os.path.join(world, 'secrets', name)
    if not os.path.isdir(d):
        if optional:
            return None
        sys.exit(f'Secret {name} does not exist')
    if key is None:
        return {k: open(os.path.join(d, k)).read() for k in os.listdir(d)}
    return open(os.path.join(d, key)).read()

def kubelet_expand(s, env):
    out, i = '', 0
    while i < len(s):
        if s[i] == '$' and i + 1 < len(s):
            if s[i + 1] == '$':
                out, i = out + '$', i + 2
                continue
            if s[i + 1] == '(':
                j = s.find(')', i + 2)
                if j >= 0:
                    name = s[i + 2:j]
                    out, i = out + (env[name] if name in env else s[i:j + 1]), j + 1
                    continue
        out, i = out + s[i], i + 1
    return out

voldirs, conffiles = {}, {}
for v in pod.get('volumes', []):
    d = os.path.join(world, 'pod', v['name'])
    os.makedirs(d, exist_ok=True)
    if 'configMap' in v:
        for k, text in configmaps[v['configMap']['name']].items():
            conffiles[os.path.join(d, k)] = text
        os.chmod(d, 0o755)
    elif 'secret' in v:
        for k, text in secret(v['secret']['secretName']).items():
            open(os.path.join(d, k), 'w').write(text)
            os.chmod(os.path.join(d, k), v['secret'].get('defaultMode', 0o644))
            if root:
                os.chown(os.path.join(d, k), 0, pod.get('securityContext', {}).get('fsGroup', 0))
    elif 'emptyDir' in v:
        if root and uid is not None:
            os.chown(d, uid, gid)
    else:
        sys.exit(f'volume {v["name"]}: a kind the test does not know')
    voldirs[v['name']] = d

for c in pod.get('initContainers', []) + pod['containers']:
    paths = {}
    for m in c.get('volumeMounts', []):
        paths[m['mountPath']] = os.path.join(voldirs[m['name']], m.get('subPath', ''))
    pattern = re.compile('|'.join(re.escape(a) for a in sorted(list(paths) + list(values), key=len, reverse=True)))
    def mapped(s):
        return pattern.sub(lambda m: paths.get(m.group(0)) or values[m.group(0)], s)
    env = {}
    for ef in c.get('envFrom', []):
        s = secret(ef['secretRef']['name'], optional=ef['secretRef'].get('optional', False))
        env.update(s or {})
    for e in c.get('env', []):
        if 'value' in e:
            env[e['name']] = kubelet_expand(e['value'], env)
        else:
            ref = e['valueFrom']['secretKeyRef']
            env[e['name']] = secret(ref['name'], ref['key'])
    env = {k: mapped(v) for k, v in env.items()}
    argv = [mapped(kubelet_expand(w, env)) for w in c['command'] + c.get('args', [])]
    # the paths a ConfigMap's files name inside the pod are mapped too
    for p, text in conffiles.items():
        open(p, 'w').write(mapped(text))
    prefix = ['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups', '--'] if root and uid else []
    base = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/'}
    base.update(env)
    print(f'kubelet: {c["name"]}: ' + ' '.join(shlex.quote(w) for w in argv), file=sys.stderr, flush=True)
    rc = subprocess.call(prefix + ['env', '-i'] + [f'{k}={v}' for k, v in base.items()] + argv)
    if rc != 0:
        print(f'kubelet: {c["name"]}: exit status {rc}', file=sys.stderr)
        sys.exit(rc)
EOF

if ! "$PGC" install; then
	not_ok "PostgreSQL 15 could not be installed ($PGC install failed)"
	finish
fi
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$DRE"; then
	not_ok "the dre binary $DRE cannot be run by uid 65534: make its directories searchable (chmod o+x)"
	finish
fi
C1=$T/c1
cleanup() { "$PGC" stop "$C1" 2>/dev/null; }
trap cleanup EXIT
chmod o+x "$T"
"$PGC" init "$C1" >/dev/null || { not_ok "initdb"; finish; }
start "$C1" "c. the cluster starts"
q "$C1" -d postgres "CREATE DATABASE mydb" "CREATE ROLE backup LOGIN" "GRANT pg_read_all_data TO backup" >/dev/null
q "$C1" -d mydb "CREATE TABLE items (id int PRIMARY KEY, v text)" \
	"INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g" >/dev/null
set -a
. "$C1/env"
set +a

# the world: the Secrets, the repository the ConfigMap's s3:// URL stands for, the image's dre, the database
# service (the cluster on 127.0.0.1)
W=$T/world
mkdir -p "$W/secrets/dre-password" "$W/secrets/mydb-postgres" "$W/repo"
cp "$DRE_PASSWORD_FILE" "$W/secrets/dre-password/password"
echo unused-with-trust >"$W/secrets/mydb-postgres/password"
repo_url=$(sed -n 's/^ *repository = //p' "$K8S/dre-config.yaml")
check "c. the ConfigMap names a repository ($repo_url)" test -n "$repo_url"
cat >"$T/map" <<EOF
/usr/local/bin/dre $DRE
$repo_url $W/repo
postgres.default.svc.cluster.local 127.0.0.1
EOF
# the manifest names the server's port; the test cluster listens on its own: a copy with that one value changed
"$PY" - "$K8S/dre-pg-dump.yaml" "$PGPORT" >"$T/dre-pg-dump.yaml" <<'PYEOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
env = d['spec']['jobTemplate']['spec']['template']['spec']['containers'][0]['env']
[e for e in env if e['name'] == 'PGPORT'][0]['value'] = sys.argv[2]
yaml.safe_dump(d, sys.stdout)
PYEOF
[ "$(id -u)" -ne 0 ] || chown -R 65534:65534 "$W/repo"
check "c. init of the repository, as the pods' user" \
	setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/ \
	DRE_PASSWORD_FILE="$W/secrets/dre-password/password" "$DRE" -r "$W/repo" init -q
# pod MANIFEST NAME: the CronJob's pod run, one check; its output in $T/NAME.log
pod() {
	rm -rf "$W/pod"
	if "$PY" "$T/kubelet.py" "$1" "$K8S" "$W" "$T/map" >"$T/$2.log" 2>&1; then
		ok "c. $2"
	else
		not_ok "c. $2"
		sed 's/^/    | /' "$T/$2.log" | tail -25
	fi
}
pod "$T/dre-pg-dump.yaml" "the pg-dump pod"
check "c. ... saved pg-dump snapshot mydb of database mydb" grep -q "pg-dump .* saved: database mydb" "$T/the pg-dump pod.log"
pod "$K8S/dre-drill.yaml" "the drill pod"
check "c. ... passed" grep -q "drill PASSED" "$T/the drill pod.log"
# this week's slice, as the week may turn while the pod runs: K/7 before or after it
k1=$(($(date +%s) / 604800 % 7 + 1))
pod "$K8S/dre-check.yaml" "the check pod"
k2=$(($(date +%s) / 604800 % 7 + 1))
check "c. ... read this week's slice" grep -qE "\(($k1|$k2)/7," "$T/the check pod.log"
pod "$K8S/dre-forget-prune.yaml" "the forget-prune pod"
check "c. ... forget, then prune" test "$(grep -o '^kubelet: [a-z]*' "$T/the forget-prune pod.log" | tr '\n' ' ')" = \
	"kubelet: forget kubelet: prune "
finish
