# Shared by the end-to-end tests (sourced, not run). The runner sets DRE (the binary under test), DRE_SRC (the
# checkout) and TMPDIR (a fresh directory removed afterwards). Each check prints "ok - name" or "not ok - name".
set -u
: "${DRE:?DRE must name the dre binary}" "${DRE_SRC:?DRE_SRC must name the checkout}"
T=${TMPDIR:?}
GENDUMP=$(dirname "$DRE")/dre-gendump
# Tests run dre as other users too (postgres for archive_command and the drills, uid 65534 for a read-only
# repository and a pod): when the checkout lies under a directory those users cannot search (a CI runner's
# private work directory), they run copies of the binaries in T, which the runner made searchable.
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$DRE" 2>/dev/null; then
	mkdir -p "$T/bin" && cp "$DRE" "$T/bin/dre" && { [ ! -f "$GENDUMP" ] || cp "$GENDUMP" "$T/bin/"; } &&
		chmod 755 "$T/bin" "$T"/bin/* || exit 2
	DRE=$T/bin/dre
	GENDUMP=$T/bin/dre-gendump
fi
PY=/usr/bin/python3
# DRE_TEST_STORE=s3 (set by tests/run, which started a gateway and exported its endpoint and credentials):
# the repository is a fresh bucket of its own, which `dre init` creates.
if [ "${DRE_TEST_STORE:-local}" = s3 ]; then
	: "${DRE_S3_ENDPOINT:?DRE_TEST_STORE=s3 needs the gateway that tests/run starts}"
	export DRE_REPOSITORY="s3://dre-e2e-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')/$(basename "$0" .sh)"
else
	export DRE_REPOSITORY=$T/repo
fi
on_s3() { [ "${DRE_TEST_STORE:-local}" = s3 ]; }
export DRE_PASSWORD_FILE=$T/password
unset DRE_PASSWORD DRE_PASSWORD_COMMAND
printf 'correct horse battery staple\n' >"$DRE_PASSWORD_FILE"
failed=0

ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1"
	failed=1
}

# check NAME CMD...: passes when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# expect_rc CODE NAME CMD...: runs CMD with output in $T/cmd.out and $T/cmd.err, passes when it exits with CODE.
expect_rc() {
	local want=$1 name=$2 rc
	shift 2
	"$@" >"$T/cmd.out" 2>"$T/cmd.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name"
	else
		not_ok "$name (exit $rc, wanted $want)"
		sed 's/^/    stderr: /' "$T/cmd.err" | head -20
	fi
}

# err_has TEXT: the last expect_rc's stderr mentions TEXT.
err_has() { grep -qi -- "$1" "$T/cmd.err"; }

# json EXPR: evaluates a Python expression over the JSON on stdin (as d).
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# stored_new NAME: bytes the newest snapshot NAME added to the store.
stored_new() { "$DRE" snapshots --json | json "[s for s in d if s['name']=='$1'][-1]['stored_new']"; }

# flip FILE OFFSET: flips one bit of the byte at OFFSET (from the end when negative), keeping the file's size.
# Damage must change the byte: writing a fixed value leaves 1 object in 256 as it was.
flip() {
	"$PY" - "$1" "$2" <<'PYEOF'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[off if off >= 0 else len(b) + off] ^= 0x04
open(p, 'wb').write(b)
PYEOF
}

finish() { exit "$failed"; }
