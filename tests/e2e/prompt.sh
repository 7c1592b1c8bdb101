#!/bin/bash
# The password prompt, on a real pseudo-terminal (python3's pty): `dre init` asks for a new password twice
# with echo off, so what is typed never appears on the terminal; the repository opens with that password typed
# at the next prompt; a second entry that differs is refused (exit 2) and creates nothing; a wrong password
# typed at the prompt is refused (exit 4). The password is only ever typed, never on a command line or in this
# log.
. "$(dirname "$0")/lib.bash"

unset DRE_PASSWORD_FILE DRE_PASSWORD DRE_PASSWORD_COMMAND
repo=$T/tty-repo
export DRE_REPOSITORY=$repo

# The typed password: random, so that finding it anywhere in the output can only mean it was echoed.
typed=tty-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$typed" >"$T/typed"
printf '%s\n' "$typed-but-not-the-same" >"$T/typed-other"

# onpty OUT ANSWERS... -- CMD...: runs CMD on a new pseudo-terminal (its controlling terminal); at each prompt
# ("...: " after the last answer) types the next line of the file ANSWERS; the terminal's whole output goes to
# OUT; returns CMD's exit status (124 when it did not finish in 60 s).
cat >"$T/onpty.py" <<'EOF'
import os, pty, select, sys, time

out_path = sys.argv[1]
sep = sys.argv.index("--")
answers = [open(p).read().rstrip("\n") for p in sys.argv[2:sep]]
cmd = sys.argv[sep + 1:]
pid, master = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
seen = 0  # output already answered
deadline = time.monotonic() + 60
status = None
while time.monotonic() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            b = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            b = b""
        if not b:
            break
        out += b
        # a prompt ends with ": " and is not yet answered
        if answers and out.rstrip(b" ").endswith(b":") and out.endswith(b": ") and len(out) > seen:
            os.write(master, answers.pop(0).encode() + b"\n")
            seen = len(out)
    else:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
if status is None:
    try:
        _, status = os.waitpid(pid, os.WNOHANG if time.monotonic() >= deadline else 0)
    except ChildProcessError:
        status = 0
    if time.monotonic() >= deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = None
with open(out_path, "wb") as f:
    f.write(out)
sys.exit(124 if status is None else os.waitstatus_to_exitcode(status))
EOF
onpty() { "$PY" "$T/onpty.py" "$@"; }

# expect_pty CODE NAME OUT ANSWERS... -- CMD...: onpty, one check of its exit status
expect_pty() {
	local want=$1 name=$2 rc
	shift 2
	onpty "$@"
	rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$name"; else not_ok "$name (exit $rc, wanted $want)"; sed 's/^/    tty: /' "$1" | head -20; fi
}

# no_echo OUT: the terminal output of a run does not show the typed password
no_echo() { ! grep -qF "$typed" "$1"; }

expect_pty 0 "init on a terminal, the new password typed twice" "$T/init.tty" "$T/typed" "$T/typed" -- "$DRE" init
check "... it asked for the new password" grep -q "new password for $repo: " "$T/init.tty"
check "... and for it again" grep -q "enter it again: " "$T/init.tty"
check "... and the typed password never appeared on the terminal" no_echo "$T/init.tty"
check "... the repository exists" test -f "$repo/config"

echo "typed at a prompt" >"$T/in"
expect_pty 0 "push asks for the password on the terminal and opens the repository" "$T/push.tty" "$T/typed" -- \
	"$DRE" push tty "$T/in"
check "... it asked once" test "$(grep -o "password for $repo: " "$T/push.tty" | wc -l)" -eq 1
check "... without echoing what was typed" no_echo "$T/push.tty"
expect_pty 0 "restore with the typed password" "$T/restore.tty" "$T/typed" -- "$DRE" restore tty --target "$T/out"
check "... gives back what was pushed" cmp -s "$T/in" "$T/out$T/in"

expect_pty 4 "a wrong password typed at the prompt is refused (exit 4)" "$T/wrong.tty" "$T/typed-other" -- \
	"$DRE" snapshots
check "... saying the password is wrong" grep -qi "wrong password" "$T/wrong.tty"
check "... without echoing it" sh -c "! grep -qF '$(cat "$T/typed-other")' '$T/wrong.tty'"

expect_pty 2 "init with a second entry that differs is refused (exit 2)" "$T/mismatch.tty" "$T/typed" \
	"$T/typed-other" -- "$DRE" -r "$T/tty-repo2" init
check "... saying the two do not match" grep -q "do not match" "$T/mismatch.tty"
check "... and creates no repository" test ! -e "$T/tty-repo2/config"
check "... without echoing either" sh -c "! grep -qF '$typed' '$T/mismatch.tty'"

# without a terminal there is no prompt: a clear usage error instead of a hang
expect_rc 2 "without a terminal or a password source: exit 2" setsid -w "$DRE" snapshots
check "... naming the sources" err_has "DRE_PASSWORD_FILE"
finish
