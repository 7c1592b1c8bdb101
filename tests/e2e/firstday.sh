#!/bin/bash
# firstday: what a new user meets on the first day. A producer that cannot be run says why (not found, not
# executable, a directory, a missing #! interpreter) and records nothing; --time copied from the snapshots table
# (whole seconds), a minute or a date alone finds the snapshot taken during it; snapshots, restore and forget
# select by --tag, --host and --path (restic's meaning), and the table and JSON show tags and paths; init refuses
# a location that holds other files; ls keeps one line per entry whatever its name holds and shows owners; and
# `make demo`'s script works in a repository of its own, leaving the user's default one to their own init.
# stores: local s3
. "$(dirname "$0")/lib.bash"

"$DRE" init >/dev/null || exit 1
count() { "$DRE" snapshots --json | json "len(d)"; }
# ids_of ARGS...: the IDs `snapshots ARGS --json` lists, sorted, on one line
ids_of() { "$DRE" snapshots "$@" --json | json "' '.join(sorted(s['id'] for s in d))"; }
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
newest_id() { "$DRE" snapshots --json | json "d[-1]['id']"; }

# ---- a producer that cannot be run ----
expect_rc 6 "push -- a missing command exits 6" "$DRE" push p -- /nonexistent/cmd
check "  ... and says the command was not found" \
	err_has "producer '/nonexistent/cmd': command not found: no snapshot recorded"
expect_rc 6 "push -- a command not on PATH exits 6" "$DRE" push p -- dre-no-such-command-$$
check "  ... naming it as not found" err_has "producer 'dre-no-such-command-$$': command not found"
printf '#!/bin/sh\necho hello\n' >"$T/noexec.sh"
chmod 644 "$T/noexec.sh"
expect_rc 6 "push -- a file that is not executable exits 6" "$DRE" push p -- "$T/noexec.sh"
check "  ... saying so" err_has "noexec.sh': not executable"
expect_rc 6 "push -- a directory exits 6" "$DRE" push p -- "$T"
check "  ... saying it is a directory" err_has "is a directory, not a command"
printf '#!/nonexistent/interpreter\n' >"$T/badint.sh"
chmod 755 "$T/badint.sh"
expect_rc 6 "push -- a script whose interpreter is missing exits 6" "$DRE" push p -- "$T/badint.sh"
check "  ... naming the interpreter, not the script, as missing" err_has "its interpreter (the #! line) was not found"
check "no snapshot was recorded by any of them" test "$(count)" = 0

# ---- --time as the snapshots table shows it ----
seq 1 50000 >"$T/t1"
"$DRE" push t <"$T/t1" >/dev/null || exit 1
T1=$(newest_id)
when=$("$DRE" snapshots t | awk 'NR == 2 {print $2 " " $3}')
check "the snapshots table shows a time to the second ($when)" \
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' <<<"$when"
secs=$(date -d "$when" +%s)
earlier=$(date -d "@$((secs - 1))" "+%F %T")
day_before=$(date -d "${when% *} 12:00 1 day ago" +%F)
expect_rc 0 "restore --time with the time copied from the table finds it" "$DRE" restore t --time "$when"
check "  ... byte for byte" cmp -s "$T/t1" "$T/cmd.out"
expect_rc 0 "restore --time with its minute finds it" "$DRE" restore t --time "${when:0:16}"
expect_rc 0 "restore --time with its date alone finds it (the end of that day)" "$DRE" restore t --time "${when% *}"
expect_rc 3 "restore --time one second earlier finds nothing" "$DRE" restore t --time "$earlier"
check "  ... saying none was taken at or before it" err_has "at or before the time given"
expect_rc 3 "restore --time with the day before finds nothing" "$DRE" restore t --time "$day_before"
expect_rc 3 "restore --time with a fraction is exact: .000 of that second finds nothing" \
	"$DRE" restore t --time "$when.000"
expect_rc 2 "restore --time of something that is not a time is a usage error" "$DRE" restore t --time "noonish"
check "  ... naming it" err_has "cannot read time 'noonish'"

# ---- selection by tag, host and path ----
mkdir -p "$T/src/models" "$T/src/etc"
echo v1 >"$T/src/models/a"
echo conf >"$T/src/etc/x"
"$DRE" push models --tag prod,big --host gpu1 "$T/src/models/" >/dev/null || exit 1
M1=$(newest_id)
echo v2 >"$T/src/models/a"
"$DRE" push models --tag prod --host gpu2 "$T/src/models" >/dev/null || exit 1
M2=$(newest_id)
echo v3 >"$T/src/models/a"
"$DRE" push models --host gpu1 "$T/src/models" "$T/src/etc" >/dev/null || exit 1
M3=$(newest_id)
"$DRE" push db --tag prod <"$T/t1" >/dev/null || exit 1
D1=$(newest_id)

check "snapshots --tag prod: every snapshot tagged prod" test "$(ids_of --tag prod)" = "$(sorted "$M1" "$M2" "$D1")"
check "snapshots --tag prod,big: those with both tags" test "$(ids_of --tag prod,big)" = "$M1"
check "snapshots --tag big --tag '': with big, or without tags" \
	test "$(ids_of --tag big --tag '')" = "$(sorted "$M1" "$M3" "$T1")"
check "snapshots --host gpu1" test "$(ids_of --host gpu1)" = "$(sorted "$M1" "$M3")"
check "snapshots --host gpu1 --host gpu2: any of them" test "$(ids_of --host gpu1 --host gpu2)" = \
	"$(sorted "$M1" "$M2" "$M3")"
check "snapshots --path (a trailing slash on either side does not matter)" \
	test "$(ids_of --path "$T/src/models")" = "$(sorted "$M1" "$M2" "$M3")"
check "snapshots --path twice: snapshots given both paths" \
	test "$(ids_of --path "$T/src/models/" --path "$T/src/etc")" = "$M3"
check "snapshots NAME --tag: both apply" test "$(ids_of models --tag prod)" = "$(sorted "$M1" "$M2")"
expect_rc 0 "snapshots (table)" "$DRE" snapshots
check "  ... has a TAGS column with the tags as --tag takes them" sh -c "
	head -1 '$T/cmd.out' | grep -q ' TAGS\$' && grep '^${M1:0:8} ' '$T/cmd.out' | grep -q ' prod,big\$'"
expect_rc 0 "snapshots --json" "$DRE" snapshots --json
check "  ... shows paths and tags as arrays" "$PY" -c "
import json
d = {s['id']: s for s in json.load(open('$T/cmd.out'))}
assert d['$M1']['tags'] == ['prod', 'big'] and d['$M1']['paths'] == ['$T/src/models/'], d['$M1']
assert d['$M3']['tags'] == [] and d['$M3']['paths'] == ['$T/src/models', '$T/src/etc'], d['$M3']
assert d['$D1']['tags'] == ['prod'] and d['$D1']['paths'] == [], d['$D1']
assert d['$M2']['host'] == 'gpu2'
"
expect_rc 0 "snapshots --tag that matches nothing" "$DRE" snapshots --tag nosuch
check "  ... says so" err_has "no snapshots match --tag nosuch"

restored_id() { "$DRE" --json restore models "$@" --target "$T/r.$RANDOM" | json "d['id']"; }
check "restore NAME --tag big: the newest of the name with that tag" test "$(restored_id --tag big)" = "$M1"
check "restore NAME --host gpu2" test "$(restored_id --host gpu2)" = "$M2"
check "restore NAME --path" test "$(restored_id --path "$T/src/etc/")" = "$M3"
expect_rc 3 "restore NAME --tag that matches nothing" "$DRE" restore models --tag nosuch --target "$T/rx"
check "  ... names the name and the filter" err_has "no snapshot named models matches --tag nosuch"
expect_rc 3 "restore ID --tag that the snapshot lacks" "$DRE" restore "${M3:0:8}" --tag big --target "$T/rx"
check "  ... says it does not match" err_has "does not match --tag big"

expect_rc 2 "snapshots --tag 'a,,b' is a usage error" "$DRE" snapshots --tag a,,b
check "  ... naming the option and what is wrong" err_has "--tag: tag list 'a,,b' has an empty tag"
expect_rc 2 "snapshots --host '' is a usage error" "$DRE" snapshots --host ''
check "  ... naming the option" err_has "--host: the host name is empty"
expect_rc 2 "snapshots --path '' is a usage error" "$DRE" snapshots --path ''
check "  ... naming the option" err_has "--path: the path is empty"
expect_rc 2 "restore --tag with a control character is a usage error" \
	"$DRE" restore models --tag "$(printf 'a\tb')" --target "$T/rx"
check "  ... saying why" err_has "control character"
expect_rc 2 "forget --tag 'a,,b' is a usage error" "$DRE" forget --tag a,,b --keep-last 1
expect_rc 2 "forget ID --tag is a usage error: an ID names exactly what to remove" "$DRE" forget "$M1" --tag prod
check "  ... saying so" err_has "snapshot IDs name exactly what to remove"

expect_rc 0 "forget --tag prod --group-by name --keep-last 1" \
	"$DRE" forget --tag prod --group-by name --keep-last 1 --json
check "  ... considers only the snapshots tagged prod: M1 goes, M2 stays though M3 (untagged) is newer" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
got = {s['id']: s['action'] for g in d['groups'] for s in g['snapshots']}
assert got == {'$M1': 'remove', '$M2': 'keep', '$D1': 'keep'}, got
"
check "  ... and M3 is still there" test "$(ids_of models)" = "$(sorted "$M2" "$M3")"

# ---- init where it must not write ----
mkdir -p "$T/home/project"
echo mine >"$T/home/project/README"
expect_rc 1 "init into a directory of other files is refused" "$DRE" -r "$T/home/project" init
check "  ... naming it and saying it is not empty and not a repository" \
	err_has "$T/home/project is not empty and is not a repository (it holds README)"
check "  ... writing nothing there" test "$(ls -A "$T/home/project")" = README
mkdir -p "$T/emptydir"
expect_rc 0 "init into an existing empty directory works" "$DRE" -r "$T/emptydir" init
expect_rc 1 "init into an existing repository says it exists" "$DRE" -r "$T/emptydir" init
check "  ... as before" err_has "already exists"
# the same on the store under test: a repository one level down makes its parent "not empty"
if on_s3; then
	outer=$DRE_REPOSITORY-outer
else
	outer=$T/outer
fi
"$DRE" -r "$outer/inner" init >/dev/null || exit 1
expect_rc 1 "init where another repository lies below is refused" "$DRE" -r "$outer" init
check "  ... naming what it holds" err_has "not empty and is not a repository (it holds inner/"

# ---- ls: one line per entry, owners ----
w=$T/weird
mkdir -p "$w"
printf 'x' >"$w/new
line"
printf 'x' >"$w/tab	here"
printf 'x' >"$w/esc$(printf '\033')[31m"
printf 'x' >"$w/back\\slash"
ln -s "tar
get" "$w/link"
owners=0
if [ "$(id -u)" -eq 0 ]; then
	owners=1
	printf 'x' >"$w/nobodys" && chown 65534:65534 "$w/nobodys"
	printf 'x' >"$w/unknown" && chown 54321:54321 "$w/unknown"
fi
"$DRE" push weird "$w" >/dev/null || exit 1
expect_rc 0 "ls of names with control characters" "$DRE" ls weird
nodes=$("$DRE" --json ls weird | json "len(d['nodes'])")
check "  ... one line per entry" test "$(wc -l <"$T/cmd.out")" = "$nodes"
check "  ... a newline as \\n" grep -qF 'new\nline' "$T/cmd.out"
check "  ... a tab as \\t" grep -qF 'tab\there' "$T/cmd.out"
check "  ... an escape as \\x1b" grep -qF 'esc\x1b[31m' "$T/cmd.out"
check "  ... a backslash as \\\\" grep -qF 'back\\slash' "$T/cmd.out"
check "  ... a symlink's target escaped the same way" grep -qF 'link -> tar\nget' "$T/cmd.out"
check "  ... owners as names this machine knows" grep -Eq "^drwx[-rwxsStT]{6} +$(id -un) +$(id -gn) " "$T/cmd.out"
if [ "$owners" = 1 ]; then
	check "  ... nobody's file as nobody and its group" \
		grep -Eq "^-[-rwx]{9} +$(getent passwd 65534 | cut -d: -f1) +$(getent group 65534 | cut -d: -f1) .*nobodys\$" \
		"$T/cmd.out"
	check "  ... an owner this machine does not know as its number" \
		grep -Eq '^-[-rwx]{9} +54321 +54321 .*unknown$' "$T/cmd.out"
fi
expect_rc 0 "ls --json keeps names as they are" "$DRE" --json ls weird
check "  ... raw in the JSON strings" "$PY" -c "
import json
d = json.load(open('$T/cmd.out'))
paths = [n['path'] for n in d['nodes']]
assert any(p.endswith('/new\nline') for p in paths) and any(p.endswith('/back\\\\slash') for p in paths), paths
assert [n['link'] for n in d['nodes'] if n.get('link')] == ['tar\nget']
"
"$DRE" push s <"$T/t1" >/dev/null || exit 1
expect_rc 0 "ls of a stream" "$DRE" ls s
check "  ... shows no owner for it" grep -Eq '^s[-rwx]{9} +- +- ' "$T/cmd.out"

# ---- the demo in a repository of its own ----
if ! on_s3; then
	home=$T/demo-home
	mkdir -p "$home"
	# the user's own settings, which the demo must not use
	expect_rc 0 "the demo runs" env DRE_REPOSITORY="$home/mine" DRE_PASSWORD=mine HOME="$home" XDG_CACHE_HOME= \
		XDG_CONFIG_HOME= DEMO_SIZE_MB=4 DEMO_DRE="$DRE" DEMO_GENDUMP="$GENDUMP" "$DRE_SRC/bench/demo"
	check "  ... says where its repository and password are" sh -c "
		grep -q 'repository     $home/.cache/dre/demo/repo' '$T/cmd.out' &&
		grep -q 'password file  $home/.cache/dre/demo/password' '$T/cmd.out'"
	check "  ... and leaves the user's repositories alone" test ! -e "$home/.local/share/dre" -a ! -e "$home/mine"
	check "  ... its repository opens with its password" \
		env DRE_REPOSITORY="$home/.cache/dre/demo/repo" DRE_PASSWORD_FILE="$home/.cache/dre/demo/password" \
		"$DRE" snapshots demo-db
	expect_rc 0 "the user's own init afterwards works" env -u DRE_REPOSITORY HOME="$home" "$DRE" init
	expect_rc 0 "  ... and opens with the user's password" env -u DRE_REPOSITORY HOME="$home" "$DRE" snapshots
	expect_rc 0 "the demo runs again in the same repository" env -u DRE_REPOSITORY -u DRE_PASSWORD_FILE \
		HOME="$home" XDG_CACHE_HOME= XDG_CONFIG_HOME= DEMO_SIZE_MB=4 DEMO_DRE="$DRE" DEMO_GENDUMP="$GENDUMP" \
		"$DRE_SRC/bench/demo"
	check "  ... which now holds four snapshots" test "$(env DRE_REPOSITORY="$home/.cache/dre/demo/repo" \
		DRE_PASSWORD_FILE="$home/.cache/dre/demo/password" "$DRE" snapshots --json | json 'len(d)')" = 4
fi

finish
