#!/bin/bash
# Everything a file has, after a round trip through push and restore (issue 16 §2): hard links, extended
# attributes, POSIX ACLs, device nodes, sparse files, modes, owners, times, symlinks. A tree with each of them is
# pushed and restored as root, and compared entry by entry with the original; then restored as another user,
# who gets what a user can make (device nodes and trusted.* attributes are warnings, not errors). The log ends
# with a table of what was checked.
. "$(dirname "$0")/lib.bash"

if [ "$(id -u)" -ne 0 ]; then
	not_ok "fidelity needs root (owners, device nodes, trusted.* attributes): run the suite as root"
	finish
fi
for tool in setfacl getfacl mknod; do
	command -v "$tool" >/dev/null || not_ok "$tool is missing: tests/install-deps installs it (Debian package acl)"
done
[ "$failed" = 0 ] || finish

"$DRE" init >/dev/null
src=$T/src
rel=${src#/}
mkdir -p "$src"/{hard,other,xattr/dir,acl/dir,dev,sparse,modes/ro,modes/setgid,modes/sticky,owners/dir,times/dir}

# hard links: three names of one file (in two directories), a pair, and a file whose other name is outside the
# tree (one name in the snapshot: restored as a file of its own)
head -c 200000 /dev/urandom >"$src/hard/a"
ln "$src/hard/a" "$src/hard/b"
ln "$src/hard/a" "$src/other/c"
echo pair >"$src/hard/p1"
ln "$src/hard/p1" "$src/hard/p2"
echo outside >"$src/hard/half"
ln "$src/hard/half" "$T/half-outside"
setfattr_py() { "$PY" -c 'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)' "$@"; }

# extended attributes: text, binary, empty; on a directory; on a hard-linked file; a trusted.* one (root's)
echo x >"$src/xattr/f"
setfattr_py "$src/xattr/f" user.text "$(printf 'blue' | od -An -tx1 | tr -d ' \n')"
setfattr_py "$src/xattr/f" user.binary "$("$PY" -c 'print(bytes(range(256)).hex())')"
setfattr_py "$src/xattr/f" user.empty ""
setfattr_py "$src/xattr/f" trusted.admin "$(printf 'root only' | od -An -tx1 | tr -d ' \n')"
setfattr_py "$src/xattr/dir" user.dir "$(printf 'on a directory' | od -An -tx1 | tr -d ' \n')"
setfattr_py "$src/hard/p1" user.linked "$(printf 'shared' | od -An -tx1 | tr -d ' \n')"
ln -s f "$src/xattr/link"

# POSIX ACLs: an access ACL on a file, access and default ACLs on a directory
echo acl >"$src/acl/f"
setfacl -m u:65534:rw,g:65534:r "$src/acl/f"
setfacl -m u:65534:rwx "$src/acl/dir"
setfacl -d -m u:65534:rx,g::r-x "$src/acl/dir"

# device nodes
mknod "$src/dev/null2" c 1 3
mknod "$src/dev/loop200" b 7 200
chmod 0600 "$src/dev/loop200"
mkfifo "$src/dev/fifo" # not backed up: push warns

# a sparse file: 64 MiB, 2 blocks of data
truncate -s 64M "$src/sparse/img"
printf head | dd of="$src/sparse/img" conv=notrunc status=none
printf middle | dd of="$src/sparse/img" bs=1M seek=40 conv=notrunc status=none

# modes
for m in 4755 2711 0444 0600 0000 0777; do
	echo "$m" >"$src/modes/f$m"
	chmod "$m" "$src/modes/f$m"
done
echo inside >"$src/modes/ro/f"
chmod 0555 "$src/modes/ro"
chmod 2775 "$src/modes/setgid"
chmod 1777 "$src/modes/sticky"

# owners: a file, a directory, a symlink (its own owner), a device node
echo owned >"$src/owners/f"
chown 65534:65534 "$src/owners/f"
chown 65534:100 "$src/owners/dir"
ln -s f "$src/owners/link"
chown -h 123:456 "$src/owners/link"
chown 65534:65534 "$src/dev/loop200"

# times, to the nanosecond: files, directories, symlinks
echo t >"$src/times/f"
touch -d '2020-02-29 12:34:56.123456789' "$src/times/f"
ln -s f "$src/times/link"
touch -h -d '2019-01-01 00:00:01.000000007' "$src/times/link"
touch -d '2018-06-15 08:00:00.5' "$src/times/dir"
touch -d '2017-03-03 03:03:03.333333333' "$src/times"

expect_rc 0 "push the tree" "$DRE" push fid "$src"
check "  ... the FIFO is left out with a warning naming it" err_has "$src/dev/fifo"

# compare SRC DST ROWS: every entry of SRC and DST (types, modes, owners, times, contents, symlinks, devices,
# attributes, hard-link groups, holes); one row per property in ROWS ("property|entries checked|problems"), and
# each problem on standard output
compare() {
	"$PY" - "$@" <<'PYEOF'
import hashlib, os, stat, sys
src, dst, rows_path = sys.argv[1], sys.argv[2], sys.argv[3]
owners = len(sys.argv) < 5 or sys.argv[4] != 'no-owners'
skip = set(sys.argv[5].split(',')) if len(sys.argv) > 5 and sys.argv[5] else set()

def walk(top):
    out = {}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, top)] = p
    return out

def xattrs(p):
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(p, n, follow_symlinks=False) for n in names}

def digest(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()

a, b = walk(src), walk(dst)
rows = {}
def tally(prop, problem=None, count=True):
    r = rows.setdefault(prop, [0, []])
    if count:
        r[0] += 1
    if problem:
        r[1].append(problem)

tally('entries', None, False)
for rel in sorted(set(a) - set(b)):
    if rel not in skip:
        tally('entries', 'missing: ' + rel)
for rel in sorted(set(b) - set(a)):
    tally('entries', 'extra: ' + rel)
groups_a, groups_b = {}, {}
for rel in sorted(set(a) & set(b)):
    sa, sb = os.lstat(a[rel]), os.lstat(b[rel])
    tally('entries')
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        tally('entries', 'type differs: ' + rel)
        continue
    link = stat.S_ISLNK(sa.st_mode)
    if not link:
        tally('modes', None if stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode) else
              '%s: %o, restored %o' % (rel, stat.S_IMODE(sa.st_mode), stat.S_IMODE(sb.st_mode)))
    if owners:
        tally('owners', None if (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid) else
              '%s: %d:%d, restored %d:%d' % (rel, sa.st_uid, sa.st_gid, sb.st_uid, sb.st_gid))
    tally('times (mtime, ns)', None if sa.st_mtime_ns == sb.st_mtime_ns else
          '%s: %d, restored %d' % (rel, sa.st_mtime_ns, sb.st_mtime_ns))
    xa, xb = xattrs(a[rel]), xattrs(b[rel])
    acl = {k: v for k, v in xa.items() if k.startswith('system.posix_acl_')}
    other = {k: v for k, v in xa.items() if not k.startswith('system.posix_acl_') and k not in skip}
    if acl:
        tally('POSIX ACLs', None if all(xb.get(k) == v for k, v in acl.items()) else rel + ': ACL differs')
    if other:
        tally('extended attributes', None if all(xb.get(k) == v for k, v in other.items()) else
              '%s: %s, restored %s' % (rel, sorted(other), sorted(xb)))
    if link:
        tally('symlinks', None if os.readlink(a[rel]) == os.readlink(b[rel]) else rel + ': target differs')
    elif stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
        tally('device nodes', None if sa.st_rdev == sb.st_rdev else rel + ': device number differs')
    elif stat.S_ISREG(sa.st_mode):
        tally('file contents', None if sa.st_size == sb.st_size and digest(a[rel]) == digest(b[rel]) else
              rel + ': content differs')
        groups_a.setdefault((sa.st_dev, sa.st_ino), []).append(rel)
        groups_b.setdefault((sb.st_dev, sb.st_ino), []).append(rel)
        if sa.st_blocks * 512 < sa.st_size // 2:
            tally('sparse files', None if sb.st_blocks * 512 < sb.st_size // 2 else
                  '%s: %d of %d bytes allocated' % (rel, sb.st_blocks * 512, sb.st_size))
# hard links: the same partition of the files into inodes, tree for tree
ga = sorted(sorted(g) for g in groups_a.values())
gb = sorted(sorted(g) for g in groups_b.values())
for g in ga:
    if len(g) > 1:
        tally('hard links', None if g in gb else 'not one file after the restore: ' + ' '.join(g))
for g in gb:
    if len(g) > 1 and g not in ga:
        tally('hard links', 'linked after the restore but not before: ' + ' '.join(g), False)
with open(rows_path, 'w') as f:
    for prop, (n, problems) in rows.items():
        f.write('%s|%d|%d\n' % (prop, n, len(problems)))
        for p in problems[:10]:
            print('    %s: %s' % (prop, p))
PYEOF
}

# rows_check WHO ROWS: one check per property
rows_check() {
	local prop n bad
	while IFS='|' read -r prop n bad; do
		if [ "$bad" = 0 ] && [ "$n" -gt 0 ]; then ok "$1: $prop ($n checked)"; else not_ok "$1: $prop ($n checked, $bad wrong)"; fi
	done <"$2"
}

expect_rc 0 "restore as root" "$DRE" restore fid --target "$T/out"
compare "$src" "$T/out/$rel" "$T/root.rows" owners dev/fifo
rows_check "root" "$T/root.rows"
for prop in 'hard links' 'extended attributes' 'POSIX ACLs' 'device nodes' 'sparse files' modes owners \
	'times (mtime, ns)' symlinks; do
	check "root: $prop were compared" grep -q "^$prop|" "$T/root.rows"
done
check "root: the file with a name outside the tree is a file of its own" \
	test "$(stat -c %h "$T/out/$rel/hard/half")" = 1
check "root: the summary counts the links made (2 + 1)" grep -q "3 hard links" "$T/cmd.err"

# as another user: what a user can make, and a warning for each of the rest
nr=$T/nonroot
mkdir -p "$nr"
cp -a "$DRE_REPOSITORY" "$nr/repo"
cp "$DRE_PASSWORD_FILE" "$nr/password"
chown -R 65534:65534 "$nr"
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups env DRE_REPOSITORY="$nr/repo" \
		DRE_PASSWORD_FILE="$nr/password" HOME="$nr" "$DRE" --no-cache "$@"
}
expect_rc 0 "restore as another user" as_nobody restore fid --target "$nr/out"
check "  ... a warning for each device node" \
	sh -c "grep -q 'device node .*null2 (1:3) not restored' '$T/cmd.err' && grep -q 'loop200 (7:200)' '$T/cmd.err'"
check "  ... a warning for the trusted.* attribute, naming it and the file" \
	grep -q "extended attribute trusted.admin of .*xattr/f not restored" "$T/cmd.err"
check "  ... counted in the summary" grep -q "3 attributes or device nodes not restored" "$T/cmd.err"
compare "$src" "$nr/out/$rel" "$T/user.rows" no-owners "dev/fifo,dev/null2,dev/loop200,trusted.admin"
rows_check "user" "$T/user.rows"

# a hard link whose first name is not restored (--include) is written as a file
expect_rc 0 "restore one name of a hard-linked file alone (--include)" \
	"$DRE" restore fid --target "$T/one" --include "$src/hard/b"
check "  ... its content, written" cmp -s "$src/hard/a" "$T/one/$rel/hard/b"

# the table for the closing note
{
	echo
	echo "Fidelity after a round trip (push, then restore; tests/e2e/fidelity.sh):"
	printf '  %-22s %-26s %s\n' property "as root" "as another user"
	while IFS='|' read -r prop n bad; do
		u=$(grep "^$prop|" "$T/user.rows" | cut -d'|' -f2,3)
		case $prop:$u in
		owners:) u="the user's own (not compared)" ;;
		*:) u="not restored: a warning each" ;;
		*) u="${u%|*} checked, ${u#*|} wrong" ;;
		esac
		printf '  %-22s %-26s %s\n' "$prop" "$n checked, $bad wrong" "$u"
	done <"$T/root.rows"
	echo "  (entries: every file, directory, symlink and device node but the FIFO, which push leaves out with a"
	echo "  warning; as another user the trusted.* attribute is a warning too, and not compared)"
}
finish
