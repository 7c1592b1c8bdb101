#!/bin/bash
# make install and make uninstall into a DESTDIR, and the manual page contrib/man/mkman makes from dre's help:
#   a. make install DESTDIR=D PREFIX=/usr/local puts D/usr/local/bin/dre (0755, the binary under test),
#      share/man/man1/dre.1 (0644) and every file of contrib/ under share/doc/dre/contrib (0755 where the source
#      is executable, else 0644); the installed systemd units name PREFIX/bin/dre, everything else is copied as
#      it is; a second install changes nothing; PREFIX=/opt/dre puts everything there;
#   b. the page renders with man -l and groff -ww without a warning; it has the sections NAME, SYNOPSIS,
#      DESCRIPTION, OPTIONS, COMMANDS, EXIT STATUS, ENVIRONMENT, FILES, SEE ALSO; a subsection for every command
#      `dre help` lists, in its order; every word of `dre help` and of each `dre help COMMAND` is in the page
#      as often (each command's in its own subsection); every exit status is listed; the FILES paths are dre's;
#   c. the installed units pass systemd-analyze verify pointed at the DESTDIR's dre;
#   d. make uninstall removes every file install put there (nothing is left but empty standard directories);
#   e. mkman: no argument (exit 2); a dre whose help fails, lists no command, has no exit status, names a
#      command oddly or whose `help COMMAND` fails (exit 1, saying which); backslashes, leading dots and quotes,
#      dashes and UTF-8 in help text come out as they went in.
. "$(dirname "$0")/lib.bash"

for tool in man:man-db groff:groff-base systemd-analyze:systemd; do
	command -v "${tool%:*}" >/dev/null 2>&1 || { not_ok "${tool%:*} is not installed (Debian package ${tool#*:})"; finish; }
done
BUILD=$(cd "$(dirname "$DRE")" && pwd)
DRE=$BUILD/$(basename "$DRE")
# make with the binary under test as it is: never rebuilt here (-o), whatever changed in the sources
mk() { make -s -C "$DRE_SRC" BUILD="$BUILD" -o "$BUILD/dre" "$@"; }
D=$T/dest
P=/usr/local
rm -f "$BUILD/dre.1"

# a. install
expect_rc 0 "a. make install DESTDIR PREFIX=/usr/local" mk install DESTDIR="$D" PREFIX="$P"
check "a. bin/dre is the binary under test, mode 0755" \
	test "$(stat -c %a "$D$P/bin/dre")" = 755 -a "$(cmp -s "$DRE" "$D$P/bin/dre" && echo same)" = same
check "a. share/man/man1/dre.1, mode 0644" test "$(stat -c %a "$D$P/share/man/man1/dre.1" 2>/dev/null)" = 644
bad=
n=0
for f in "$DRE_SRC"/contrib/*/*; do
	rel=${f#"$DRE_SRC"/}
	dst=$D$P/share/doc/dre/$rel
	n=$((n + 1))
	want=644
	[ ! -x "$f" ] || want=755
	if [ "$(stat -c %a "$dst" 2>/dev/null)" != "$want" ]; then
		bad="$bad $rel(mode)"
	elif [[ $rel == contrib/systemd/*.service || $rel == contrib/systemd/*.timer || $rel == contrib/systemd/*.example ]]; then
		sed "s|/usr/local/bin/dre|$P/bin/dre|g" "$f" | cmp -s - "$dst" || bad="$bad $rel(content)"
	else
		cmp -s "$f" "$dst" || bad="$bad $rel(content)"
	fi
done
check "a. the $n files of contrib/ in share/doc/dre/contrib, modes and contents (wrong:${bad:- none})" \
	test "$n" -ge 15 -a -z "$bad"
check "a. nothing else was installed" test "$(find "$D" -type f | wc -l)" = $((n + 2))
find "$D" -printf '%p %m %s %T@\n' | sort >"$T/first"
expect_rc 0 "a. make install again" mk install DESTDIR="$D" PREFIX="$P"
find "$D" -printf '%p %m %s %T@\n' | sort | cut -d' ' -f1-3 >"$T/second"
check "a. ... installs the same files" test "$(cut -d' ' -f1-3 "$T/first")" = "$(cat "$T/second")"
expect_rc 0 "a. make install PREFIX=/opt/dre" mk install DESTDIR="$T/opt" PREFIX=/opt/dre
check "a. ... puts the binary, the page and contrib/ under /opt/dre" \
	test -x "$T/opt/opt/dre/bin/dre" -a -f "$T/opt/opt/dre/share/man/man1/dre.1" -a -d "$T/opt/opt/dre/share/doc/dre/contrib/systemd"
check "a. ... and its units name /opt/dre/bin/dre" \
	test "$(grep -h 'bin/dre' "$T/opt/opt/dre/share/doc/dre/contrib/systemd/"*.service | grep -vc '/opt/dre/bin/dre')" = 0
check "a. ... while the Kubernetes manifests keep the image's /usr/local/bin/dre" \
	grep -q '"/usr/local/bin/dre"' "$T/opt/opt/dre/share/doc/dre/contrib/kubernetes/dre-pg-dump.yaml"

# b. the manual page
PAGE=$D$P/share/man/man1/dre.1
MANWIDTH=80 man --warnings -l "$PAGE" >"$T/man.txt" 2>"$T/man.err"
check "b. man -l renders it without a warning" test -s "$T/man.txt" -a ! -s "$T/man.err"
sed 's/^/    man: /' "$T/man.err" | head -10
groff -man -Tutf8 -ww -z "$PAGE" 2>"$T/groff.err"
check "b. groff -ww: no warning" test ! -s "$T/groff.err"
sed 's/^/    groff: /' "$T/groff.err" | head -10
check "b. plain ASCII (UTF-8 written as groff's escapes)" test -z "$(LC_ALL=C grep -n '[^ -~]' "$PAGE")"
check "b. the sections" test "$(sed -n 's/^\.SH //p' "$PAGE" | tr -d '"' | tr '\n' '|')" = \
	"NAME|SYNOPSIS|DESCRIPTION|OPTIONS|COMMANDS|EXIT STATUS|ENVIRONMENT|FILES|SEE ALSO|"
"$DRE" help >"$T/help"
commands=$(awk '/^Commands:$/ { f = 1; next } f && /^$/ { exit } f { print $1 }' "$T/help")
check "b. dre help lists the commands (drill, stats, pg-dump among them)" \
	test "$(echo "$commands" | grep -cxE 'init|push|drill|stats|pg-dump|help')" = 6
check "b. a subsection for each command dre help lists, in its order" \
	test "$(sed -n 's/^\.SS //p' "$PAGE")" = "$commands"
# every word of the help, in the page rendered wide and without hyphenation (dashes and quotes as ASCII)
render() { groff -man -Tutf8 -P-cbou -rHY=0 -rLL=1000n "$PAGE" | sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g; s/\xe2\x80\x99/'"'"'/g; s/\xe2\x80\x98/'"'"'/g'; }
render >"$T/page.txt"
"$PY" - "$T/page.txt" "$T/help" "$DRE" $commands >"$T/words" <<'EOF'
import collections, re, subprocess, sys
page, mainhelp, dre, commands = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3], sys.argv[4:]
# the page's subsections: "   NAME" lines under COMMANDS, up to EXIT STATUS
body = page[page.index('\nCOMMANDS\n'):page.index('\nEXIT STATUS\n')]
parts = re.split(r'\n   ([a-z0-9-]+)\n', body)
sections = dict(zip(parts[1::2], parts[2::2]))
# each word as many times as the help has it
def missing(text, have):
    need = collections.Counter(w for w in text.split() if w != 'usage:')
    have = collections.Counter(have.split())
    return [w for w, n in need.items() if have[w] < n]
blocks = mainhelp.split('\n\n')
lost = missing('\n'.join(b for b in blocks if not b.startswith('Commands:')), page)
print('main', len(lost), ' '.join(lost[:10]))
for c in commands:
    text = subprocess.run([dre, 'help', c], capture_output=True, text=True).stdout
    lost = missing(text, sections.get(c, ''))
    print(c, len(lost), ' '.join(lost[:10]))
EOF
check "b. every word of dre help is in the page ($(awk '$1 == "main" { $1 = ""; print }' "$T/words"))" \
	test "$(awk '$1 == "main" { print $2 }' "$T/words")" = 0
missing=$(awk '$1 != "main" && $2 != 0' "$T/words")
check "b. every word of each dre help COMMAND is in its subsection ($(echo $commands | wc -w) commands${missing:+; missing: $missing})" \
	test -z "$missing" -a "$(wc -l <"$T/words")" -gt 20
codes=$(sed -n '/^Exit status:$/,/^$/p' "$T/help" | grep -oE '^  [0-9]+' | tr -d ' ' | tr '\n' ' ')
page_codes=$(sed -n '/^EXIT STATUS$/,/^ENVIRONMENT$/p' "$T/page.txt" | grep -oE '^ +[0-9]+ ' | tr -d ' ' | tr '\n' ' ')
check "b. EXIT STATUS lists the codes of dre help ($codes)" test -n "$codes" -a "$codes" = "$page_codes"
check "b. ENVIRONMENT names the password variables and the others dre help mentions" \
	test "$(sed -n '/^ENVIRONMENT$/,/^FILES$/p' "$T/page.txt" | grep -cE '^ +(DRE_PASSWORD_FILE|DRE_PASSWORD_COMMAND|DRE_REPOSITORY|AWS_PROFILE|PGHOST)')" = 5
notdre=
for f in $(sed -n '/^FILES$/,/^SEE ALSO$/p' "$T/page.txt" | grep -oE '^ +~/[^ ]+'); do
	grep -qF -- "$f" "$T/help" || notdre="$notdre $f"
done
check "b. the FILES paths under ~ are the ones dre help names (not:${notdre:- none})" test -z "$notdre"

# c. the installed units, pointed at the installed binary
mkdir -p "$T/vu"
for f in "$D$P"/share/doc/dre/contrib/systemd/*.service "$D$P"/share/doc/dre/contrib/systemd/*.timer; do
	sed "s|$P/bin/dre|$D$P/bin/dre|g" "$f" >"$T/vu/$(basename "$f")"
done
(cd "$T/vu" && systemd-analyze verify --man=no ./dre-pg-dump@app.service ./dre-pg-dump@app.timer ./dre-drill@app.service \
	./dre-drill@app.timer ./dre-check.service ./dre-check.timer ./dre-forget-prune.service ./dre-forget-prune.timer) \
	>"$T/verify.out" 2>&1
check "c. systemd-analyze verify of the installed units, with the installed dre" test "$?" = 0 -a ! -s "$T/verify.out"
sed 's/^/    | /' "$T/verify.out" | head -10

# d. uninstall
expect_rc 0 "d. make uninstall" mk uninstall DESTDIR="$D" PREFIX="$P"
check "d. no file is left" test -z "$(find "$D" ! -type d)"
check "d. the doc directory is gone" test ! -e "$D$P/share/doc/dre"
expect_rc 0 "d. make uninstall PREFIX=/opt/dre" mk uninstall DESTDIR="$T/opt" PREFIX=/opt/dre
check "d. ... leaves no file" test -z "$(find "$T/opt" ! -type d)"
expect_rc 0 "d. make uninstall of nothing installed succeeds" mk uninstall DESTDIR="$D" PREFIX="$P"

# e. mkman
MKMAN=$DRE_SRC/contrib/man/mkman
expect_rc 2 "e. mkman without an argument" "$MKMAN"
check "e. ... says how to call it" err_has "usage: contrib/man/mkman DRE"
# fake NAME: a dre in $T/fake/NAME whose help is the text that follows (a here-document), per argument
fake() {
	mkdir -p "$T/fake/$1"
	cat >"$T/fake/$1/dre"
	chmod +x "$T/fake/$1/dre"
}
fake broken <<'EOF'
#!/bin/sh
echo "dre: something is wrong" >&2
exit 1
EOF
expect_rc 1 "e. a dre whose help fails" "$MKMAN" "$T/fake/broken/dre"
check "e. ... names it and its message" err_has "help' failed: dre: something is wrong"
fake nocommands <<'EOF'
#!/bin/sh
case "$*" in --version) echo "dre 9.9";; *) printf 'usage: dre COMMAND\n\nExit status:\n  0  ok\n';; esac
EOF
expect_rc 1 "e. a dre that lists no command" "$MKMAN" "$T/fake/nocommands/dre"
check "e. ... says so" err_has "lists no commands"
fake noexit <<'EOF'
#!/bin/sh
case "$*" in --version) echo "dre 9.9";; help) printf 'usage: dre COMMAND\n\nCommands:\n  a  the a\n';; *) echo "usage: dre a";; esac
EOF
expect_rc 1 "e. a dre without an exit status" "$MKMAN" "$T/fake/noexit/dre"
check "e. ... says so" err_has "no 'Exit status:' block"
fake oddname <<'EOF'
#!/bin/sh
case "$*" in --version) echo "dre 9.9";; help) printf 'usage: dre COMMAND\n\nCommands:\n  a;rm  the a\n\nExit status:\n  0  ok\n';; *) echo "usage: dre a";; esac
EOF
expect_rc 1 "e. a command named a;rm" "$MKMAN" "$T/fake/oddname/dre"
check "e. ... is refused by name" err_has "a command named 'a;rm'"
fake cmdfails <<'EOF'
#!/bin/sh
case "$*" in --version) echo "dre 9.9";; help) printf 'usage: dre COMMAND\n\nCommands:\n  a  the a\n  b  the b\n\nExit status:\n  0  ok\n';;
"help a") echo "usage: dre a";; *) echo "no such thing" >&2; exit 2;; esac
EOF
expect_rc 1 "e. a dre whose help of a command fails" "$MKMAN" "$T/fake/cmdfails/dre"
check "e. ... names the command" err_has "help b' failed: no such thing"
fake odd <<'EOF'
#!/bin/sh
case "$*" in
--version) echo "dre 9.9 (repository format 1)";;
help) cat <<'HELP'
usage: dre [global options] COMMAND

Odd, but well-formed text.

Commands:
  alpha      the first

Global options:
  --dash-dash-option  it has -- dashes -- and a back\slash

Exit status:
  0  fine
  9  not fine
HELP
;;
"help alpha") cat <<'HELP'
usage: dre alpha [--x N] PATH\n

.TH looks like a request
'quoted starts like a request too
A \fBbold\fR that must stay literal, C:\dir\file and \\ twice.
Section sign \302\247 and an ellipsis \342\200\246 in UTF-8.
  --x N   a number -- with "quotes" and 'apostrophes'
HELP
;;
esac
EOF
# the octal escapes above are bytes: write them as such
"$PY" -c 'import sys; p = sys.argv[1]; s = open(p, "rb").read(); open(p, "wb").write(s.replace(b"\\302\\247", "\u00a7".encode()).replace(b"\\342\\200\\246", "\u2026".encode()))' "$T/fake/odd/dre"
expect_rc 0 "e. mkman of help text with troff's special characters" "$MKMAN" "$T/fake/odd/dre"
cp "$T/cmd.out" "$T/odd.1"
groff -man -Tutf8 -ww -z "$T/odd.1" 2>"$T/odd.err"
check "e. ... renders without a warning" test ! -s "$T/odd.err"
sed 's/^/    groff: /' "$T/odd.err" | head
groff -man -Tutf8 -P-cbou -rHY=0 -rLL=1000n "$T/odd.1" | sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g; s/\xe2\x80\x99/'"'"'/g; s/\xe2\x80\x98/'"'"'/g' >"$T/odd.txt"
for line in '.TH looks like a request' "'quoted starts like a request too" \
	'A \fBbold\fR that must stay literal, C:\dir\file and \\ twice.' 'Section sign § and an ellipsis … in UTF-8.' \
	"a number -- with \"quotes\" and 'apostrophes'" 'it has -- dashes -- and a back\slash' 'dre alpha [--x N] PATH\n'; do
	check "e. ... keeps: $line" grep -qF -- "$line" "$T/odd.txt"
done
check "e. ... has the exit statuses 0 and 9" test "$(sed -n '/^EXIT STATUS$/,/^ENVIRONMENT$/p' "$T/odd.txt" | grep -cE '^ +(0 +fine|9 +not fine)$')" = 2
finish
