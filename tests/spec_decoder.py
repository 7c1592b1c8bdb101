#!/usr/bin/python3
"""An independent reader of the dre repository format (versions 1 and 2).

Written from format-spec.md alone, without looking at dre's C sources: if it reads what dre writes, the spec is
enough to write a compatible reader. Section numbers (§n) below refer to format-spec.md.

    spec_decoder.py REPO_DIR PASSWORD_FILE list
    spec_decoder.py REPO_DIR PASSWORD_FILE restore SNAPSHOT_ID OUTDIR
    spec_decoder.py REPO_DIR PASSWORD_FILE chunks SNAPSHOT_ID
    spec_decoder.py REPO_DIR PASSWORD_FILE verify
    spec_decoder.py REPO_DIR PASSWORD_FILE wal SYSTEM_ID WAL_FILE_NAME OUTFILE

Any decoding or verification failure prints a message and exits with status 1.
Needs Debian's python3-cryptography, python3-zstandard and python3-xxhash (run with /usr/bin/python3).
"""

import hmac
import hashlib
import os
import struct
import sys

import xxhash
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

ZERO_NONCE = bytes(12)
ENTRY = struct.Struct("<32sIIIB")  # chunk ID, offset, stored length, raw length, flags (§8)
KINDS = {1: "stream", 2: "files", 3: "wal", 4: "pgbase"}
STREAM, FILE, DIR, SYMLINK = 1, 2, 3, 4


class FormatError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise FormatError(msg)


def hkdf(ikm, salt, info, length=32):  # §1: HKDF-SHA-256, extract then expand
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def gcm_open(key, nonce, ct, aad, what):
    try:
        return AESGCM(key).decrypt(nonce, ct, aad)
    except InvalidTag:
        raise FormatError(f"{what}: authentication failed") from None


def padme(n):  # §8.1
    if n < 2:
        return n
    e = n.bit_length() - 1
    s = e.bit_length()  # floor(log2 e) + 1
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


class Cursor:
    """Reads the little-endian fields of §1 from a byte string, failing cleanly on truncation."""

    def __init__(self, data, what):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n):
        check(self.pos + n <= len(self.data), f"{self.what}: truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u(self, fmt):
        return self.unpack(fmt)[0]

    def str16(self):
        raw = self.take(self.u("H"))
        check(b"\0" not in raw, f"{self.what}: NUL inside a string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{self.what}: string is not UTF-8") from None

    def end(self):
        check(self.pos == len(self.data), f"{self.what}: {len(self.data) - self.pos} trailing bytes")


# §11: the chunker

def gear_table(master_key):
    raw = hkdf(master_key, b"", b"dre v1 gear table", 2048)
    return list(struct.unpack("<256Q", raw))


def mask(n):
    return ((1 << n) - 1) << (63 - n)


def cut_points(data, params, gear):
    """End offsets of the chunks of data, by the reference loop of §11 (one byte per step)."""
    lo, avg, hi = params
    b = avg.bit_length() - 1
    mask_s, mask_l = mask(b + 2), mask(b - 2)
    cuts, p, n = [], 0, len(data)
    while p < n:
        if n - p <= lo:
            cuts.append(n)
            break
        limit = min(n - p, hi)  # a chunk that reaches max bytes ends there; the stream's end ends it too
        length, h = limit, 0
        for i in range(lo, limit):
            h = ((h << 1) + gear[data[p + i]]) & 0xFFFFFFFFFFFFFFFF
            if h & (mask_s if i < avg else mask_l) == 0:
                length = i + 1
                break
        p += length
        cuts.append(p)
    return cuts


class Repo:
    def __init__(self, root, password):
        self.root, self.password = root, password
        self.master = self.unlock(password)
        self.enc_key = hkdf(self.master, b"", b"dre v1 encryption")  # §3
        self.id_key = hkdf(self.master, b"", b"dre v1 chunk id")
        self.config = self.read_config()
        self.index = {}  # chunk ID -> (pack ID, offset, stored length, raw length, flags)
        self.pack_entries = {}  # pack ID -> entries as the index objects list them
        for key in self.keys("index"):
            self.read_index(key)

    # -- the store (§2)

    def get(self, key):
        try:
            with open(os.path.join(self.root, key), "rb") as f:
                return f.read()
        except OSError as e:
            raise FormatError(f"{key}: {e.strerror}") from None

    def keys(self, prefix):
        d = os.path.join(self.root, prefix)
        if not os.path.isdir(d):
            return []
        return sorted(f"{prefix}/{n}" for n in os.listdir(d) if not n.startswith("."))

    def pack_keys(self):
        return [k for sub in self.keys("packs") for k in self.keys(sub)]

    # -- keys (§5), envelopes (§6), config (§7)

    def unlock(self, password):
        keys = self.keys("keys")
        check(keys, "no key objects: not a dre repository")
        for key in keys:
            master = self.try_key(key, self.get(key), password)
            if master is not None:
                return master
        raise FormatError("wrong password: no key object opens with it")

    @staticmethod
    def try_key(key, data, password):
        """The master key if the password opens this key object, None if it does not; FormatError if damaged."""
        check(len(data) == 104, f"{key}: {len(data)} bytes, not 104")
        check(xxhash.xxh3_64_intdigest(data[:96]) == struct.unpack("<Q", data[96:])[0], f"{key}: checksum mismatch")
        magic, kdf, log_n, r, p = struct.unpack("<4s4B", data[:8])
        check(magic == b"DRK1", f"{key}: bad magic {magic!r}")
        if kdf == 2:  # a generated key (format version 2): HKDF, no parameters
            check(log_n == r == p == 0, f"{key}: KDF parameters on a generated key")
            kek = hkdf(password, data[8:40], b"dre v1 generated key")
        else:
            check(kdf == 1 and 10 <= log_n <= 24 and 1 <= r <= 32 and 1 <= p <= 16, f"{key}: bad KDF parameters")
            kek = Scrypt(salt=data[8:40], length=32, n=1 << log_n, r=r, p=p).derive(password)
        try:
            return AESGCM(kek).decrypt(ZERO_NONCE, data[48:96], data[:48] + key.encode())
        except InvalidTag:
            return None

    def envelope(self, key, typ):
        data = self.get(key)
        check(len(data) >= 56, f"{key}: truncated envelope")
        check(data[:4] == b"DRE1", f"{key}: bad magic {data[:4]!r}")
        check(data[4:5] == typ, f"{key}: type {data[4:5]!r}, expected {typ!r}")
        check(data[5:8] == bytes(3), f"{key}: reserved bytes not zero")
        subkey = hkdf(self.enc_key, data[8:40], b"dre v1 object")
        return gcm_open(subkey, ZERO_NONCE, data[40:], data[:40] + key.encode(), key)

    def read_config(self):
        pt = self.envelope("config", b"C")
        check(len(pt) == 64, f"config: {len(pt)} bytes, not 64")
        version, repo_id, lo, avg, hi, pack_size, comp, level, zero, ctime = struct.unpack("<I32s4I2BHq", pt)
        check(version in (1, 2), f"config: unknown repository format version {version}")
        check(avg & (avg - 1) == 0 and 0 < lo <= avg <= hi, f"config: bad chunker sizes {lo}/{avg}/{hi}")
        check(comp == 1 and 1 <= level <= 19 and zero == 0, "config: bad compression fields")
        return {"version": version, "id": repo_id, "chunker": (lo, avg, hi), "pack_size": pack_size, "level": level, "time": ctime}

    # -- WAL archive (§15)

    def wal_keys(self):
        """Every wal/<system>/<timeline>/<name> key, and every wal/<system>/system key."""
        out = []
        for sysdir in self.keys("wal"):
            for k in self.keys(sysdir):
                out.extend(self.keys(k) if os.path.isdir(os.path.join(self.root, k)) else [k])
        return out

    def read_wal(self, key):
        """(kind, fields): the system record, or a file's bytes after its checks."""
        pt = self.envelope(key, b"W")
        check(len(pt) >= 2 and pt[0] == 1, f"{key}: unknown WAL object format")
        if pt[1] == 2:
            check(key.endswith("/system") and len(pt) == 24, f"{key}: bad system record")
            magic, seg_size, sysid, created = struct.unpack("<HIQq", pt[2:24])
            check(seg_size & (seg_size - 1) == 0 and (1 << 20) <= seg_size <= (1 << 30), f"{key}: segment size")
            check(key == f"wal/{sysid}/system", f"{key}: names system {sysid}")
            return "system", {"seg_size": seg_size, "system_id": sysid}
        check(pt[1] == 1 and len(pt) >= 48, f"{key}: not a WAL file object")
        flags, size, digest = pt[2], struct.unpack("<Q", pt[8:16])[0], pt[16:32]
        pushed, last_xact = struct.unpack("<qq", pt[32:48])
        check(flags & ~1 == 0 and pt[3:8] == bytes(5), f"{key}: reserved bits set")
        body = pt[48:]
        if flags & 1:
            body = zstandard.ZstdDecompressor().decompress(body, max_output_size=size)
        check(len(body) == size, f"{key}: {len(body)} bytes, header says {size}")
        check(xxhash.xxh3_128_digest(body) == digest, f"{key}: XXH3-128 mismatch")
        parts = key.split("/")
        check(len(parts) == 4 and parts[2] == parts[3][:8] and parts[3] == parts[3].lower(), f"{key}: misplaced")
        return "file", {"bytes": body, "pushed": pushed, "last_xact": last_xact}

    # -- index (§9)

    def read_index(self, key):
        c = Cursor(self.envelope(key, b"I"), key)
        for _ in range(c.u("I")):
            pack_id, n = c.take(32), c.u("I")
            entries = [ENTRY.unpack(c.take(ENTRY.size)) for _ in range(n)]
            self.pack_entries.setdefault(pack_id, set()).update(entries)
            for cid, off, stored, raw, flags in entries:
                self.index.setdefault(cid, (pack_id, off, stored, raw, flags))
        c.end()

    # -- packs (§8)

    @staticmethod
    def pack_key(pack_id):
        return f"packs/{pack_id.hex()[:2]}/{pack_id.hex()}"

    def pack_subkey(self, pack_id):
        return hkdf(self.enc_key, pack_id, b"dre v1 pack")

    def read_pack_header(self, key, data):
        """The entries of a whole pack object, after checking its trailer, header, padding and size."""
        pack_id = bytes.fromhex(key.rsplit("/", 1)[1])
        check(len(data) >= 8 and data[-4:] == b"DRP1", f"{key}: bad pack trailer")
        hlen = struct.unpack("<I", data[-8:-4])[0]
        body = len(data) - 8 - hlen
        check(hlen >= 20 and body >= 0, f"{key}: bad header length {hlen}")
        header = gcm_open(self.pack_subkey(pack_id), b"\xff" * 12, data[body:-8], data[-8:], f"{key} header")
        n = struct.unpack("<I", header[:4])[0]
        end = 4 + n * ENTRY.size
        check(end <= len(header), f"{key}: header truncated")
        entries = [ENTRY.unpack_from(header, 4 + i * ENTRY.size) for i in range(n)]
        padding = header[end:]
        check(padding == bytes(len(padding)), f"{key}: header padding not zero")
        check(padme(len(data) - len(padding)) == len(data),
              f"{key}: size {len(data)} is not padme({len(data) - len(padding)})")
        pos = 0  # blob_0 || blob_1 || ...: the blobs tile the bytes before the header
        for cid, off, stored, raw, flags in sorted(entries, key=lambda e: e[1]):
            check(off == pos, f"{key}: blob at {off}, expected {pos}")
            pos += stored + 16
        check(pos == body, f"{key}: blobs end at {pos}, header starts at {body}")
        return entries

    def open_blob(self, pack_id, subkey, sealed, entry):
        """The plaintext of one chunk, from its sealed blob (stored length + 16 bytes)."""
        cid, off, stored, raw, flags = entry
        where = f"chunk {cid.hex()} in pack {pack_id.hex()}"
        check(len(sealed) == stored + 16, f"{where}: blob truncated")
        check(flags & ~1 == 0, f"{where}: unknown flags {flags:#x}")
        nonce = struct.pack("<Q", off) + bytes(4)
        aad = cid + bytes([flags]) + struct.pack("<I", raw)
        plain = gcm_open(subkey, nonce, sealed, aad, where)
        if flags & 1:
            try:
                plain = zstandard.ZstdDecompressor().decompress(plain, max_output_size=raw)
            except zstandard.ZstdError as e:
                raise FormatError(f"{where}: zstd: {e}") from None
        check(len(plain) == raw, f"{where}: {len(plain)} bytes, index says {raw}")
        check(hmac.compare_digest(hmac.new(self.id_key, plain, hashlib.sha256).digest(), cid),
              f"{where}: content does not match its ID")
        return plain

    def chunk(self, cid):
        check(cid in self.index, f"chunk {cid.hex()} is in no index object")
        pack_id, off, stored, raw, flags = loc = self.index[cid]
        try:  # a ranged read, as a reader of object storage would do
            with open(os.path.join(self.root, self.pack_key(pack_id)), "rb") as f:
                f.seek(off)
                sealed = f.read(stored + 16)
        except OSError as e:
            raise FormatError(f"{self.pack_key(pack_id)}: {e.strerror}") from None
        return self.open_blob(pack_id, self.pack_subkey(pack_id), sealed, (cid,) + loc[1:])

    # -- snapshots (§10)

    def snapshot(self, key):
        c = Cursor(self.envelope(key, b"S"), key)
        fmt, kind, zero, start, end = c.unpack("BBHqq")
        check(fmt == 1, f"{key}: unknown snapshot format {fmt}")
        check(zero == 0, f"{key}: reserved bytes not zero")
        snap = {"id": key.split("/")[1], "kind": kind, "start": start, "end": end, "name": c.str16(),
                "host": c.str16()}
        snap["size"], snap["stored_new"], snap["chunks"], snap["chunks_new"] = c.unpack("4Q")
        snap["meta"] = {}
        for _ in range(c.u("I")):
            k = c.str16()
            snap["meta"][k] = c.take(c.u("I")).decode("utf-8", "replace")
        snap["nodes"] = []
        for _ in range(c.u("I")):
            node = {"type": c.u("B"), "path": c.str16()}
            node["mode"], node["uid"], node["gid"], node["mtime"], node["size"] = c.unpack("IIIqQ")
            node["xxh3"], node["target"] = c.take(16), c.str16()
            node["chunks"] = [c.take(32) for _ in range(c.u("I"))]
            check(node["type"] in (STREAM, FILE, DIR, SYMLINK), f"{key}: unknown node type {node['type']}")
            check_path(node["path"], key)
            snap["nodes"].append(node)
        c.end()
        check(snap["size"] == sum(n["size"] for n in snap["nodes"]), f"{key}: size is not the sum of node sizes")
        return snap

    def snapshots(self):
        return sorted((self.snapshot(k) for k in self.keys("snapshots")), key=lambda s: (s["start"], s["id"]))

    def find_snapshot(self, prefix):
        keys = [k for k in self.keys("snapshots") if k.split("/")[1].startswith(prefix.lower())]
        check(len(keys) == 1, f"snapshot {prefix}: {'ambiguous' if keys else 'not found'}")
        return self.snapshot(keys[0])

    def node_data(self, node):
        """Yields the plaintexts of a node's chunks, then checks its size and XXH3-128."""
        h, size = xxhash.xxh3_128(), 0
        for cid in node["chunks"]:
            plain = self.chunk(cid)
            h.update(plain)
            size += len(plain)
            yield plain
        check(size == node["size"], f"{node['path']}: {size} bytes, snapshot says {node['size']}")
        check(h.digest() == node["xxh3"], f"{node['path']}: XXH3-128 mismatch")


def check_path(path, where):
    parts = path.split("/")
    check(path and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts),
          f"{where}: unsafe path {path!r}")


# -- commands

def cmd_list(repo):
    for s in repo.snapshots():
        print(s["id"], s["name"], KINDS.get(s["kind"], f"kind{s['kind']}"), s["size"])


def cmd_restore(repo, snap_id, outdir):
    snap = repo.find_snapshot(snap_id)
    os.makedirs(outdir, exist_ok=True)
    top, dirs = os.path.realpath(outdir), []
    for node in snap["nodes"]:
        dest = os.path.join(outdir, node["path"])
        parent = os.path.dirname(dest)  # refuse to write through a symlink restored earlier
        check(os.path.commonpath([os.path.realpath(parent), top]) == top, f"{node['path']}: escapes {outdir}")
        os.makedirs(parent, exist_ok=True)
        if node["type"] == DIR:
            os.makedirs(dest, exist_ok=True)
            dirs.append((dest, node))
        elif node["type"] == SYMLINK:
            os.symlink(node["target"], dest)
        else:
            with open(dest, "xb") as f:
                for plain in repo.node_data(node):
                    f.write(plain)
            os.chmod(dest, node["mode"] & 0o7777)
            os.utime(dest, ns=(node["mtime"], node["mtime"]))
    for dest, node in reversed(dirs):  # after their contents, which change mtimes
        os.chmod(dest, node["mode"] & 0o7777)
        os.utime(dest, ns=(node["mtime"], node["mtime"]))
    print(f"restored {snap['id']}: {len(snap['nodes'])} nodes, {snap['size']} bytes, all verified")


def cmd_chunks(repo, snap_id):
    snap = repo.find_snapshot(snap_id)
    gear, params = gear_table(repo.master), repo.config["chunker"]
    nchunks = 0
    for node in snap["nodes"]:
        if node["type"] not in (STREAM, FILE):
            continue
        data = b"".join(repo.node_data(node))
        want = [repo.index[cid][3] for cid in node["chunks"]]
        cuts = cut_points(data, params, gear)
        got = [b - a for a, b in zip([0] + cuts, cuts)]
        if got != want:
            i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            raise FormatError(f"{node['path']}: spec chunker gives {len(got)} chunks, snapshot has {len(want)};"
                              f" they differ from chunk {i} (at byte {sum(want[:i])})")
        nchunks += len(want)
    print(f"chunker matches spec: {nchunks} chunks of snapshot {snap['id']}")


def cmd_verify(repo):
    key_objects, opened = repo.keys("keys"), 0  # each must be intact; those the password opens hold one master
    for key in key_objects:
        master = repo.try_key(key, repo.get(key), repo.password)
        check(master in (None, repo.master), f"{key}: wraps a different master key")
        opened += master is not None
    nblobs = nbytes = 0
    packs = repo.pack_keys()
    for key in packs:
        pack_id = bytes.fromhex(key.rsplit("/", 1)[1])
        check(key == repo.pack_key(pack_id), f"{key}: misplaced pack")
        data = repo.get(key)
        entries = repo.read_pack_header(key, data)
        if pack_id in repo.pack_entries:
            check(repo.pack_entries[pack_id] == set(entries), f"{key}: header and index disagree")
        subkey = repo.pack_subkey(pack_id)
        for e in entries:
            repo.open_blob(pack_id, subkey, data[e[1]:e[1] + e[2] + 16], e)
        nblobs += len(entries)
        nbytes += len(data)
    present = {bytes.fromhex(k.rsplit("/", 1)[1]) for k in packs}
    missing = [p.hex() for p in repo.pack_entries if p not in present]
    check(not missing, f"index names missing packs: {', '.join(missing)}")
    snaps = repo.snapshots()
    for s in snaps:
        for node in s["nodes"]:
            for cid in node["chunks"]:
                check(cid in repo.index, f"snapshot {s['id']}: {node['path']}: chunk {cid.hex()} not indexed")
            size = sum(repo.index[cid][3] for cid in node["chunks"])
            check(size == node["size"], f"snapshot {s['id']}: {node['path']}: chunks sum to {size}")
    wal_files = 0
    for key in repo.wal_keys():
        kind, _ = repo.read_wal(key)
        wal_files += kind == "file"
    orphans = len(present - set(repo.pack_entries))
    print(f"keys: {len(key_objects)} intact, {opened} opened by this password")
    print(f"config: version {repo.config.get('version', 1)}, chunker min/avg/max {repo.config['chunker']}, zstd level {repo.config['level']}")
    print(f"index: {len(repo.keys('index'))} objects, {len(repo.index)} chunks")
    print(f"packs: {len(packs)} ({orphans} not indexed), {nblobs} blobs, {nbytes} bytes, all authenticated")
    print(f"snapshots: {len(snaps)}, {sum(len(s['nodes']) for s in snaps)} nodes, every chunk indexed")
    print(f"wal: {wal_files} archived files, all authenticated and checksummed")
    print("verify: OK")


def cmd_wal(repo, system, name, out):
    """Writes archived WAL file NAME of SYSTEM to OUT."""
    kind, f = repo.read_wal(f"wal/{system}/{name[:8].lower()}/{name.lower()}")
    check(kind == "file", f"{name}: not a WAL file")
    with open(out, "wb") as fh:
        fh.write(f["bytes"])


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    root, pwfile, cmd, args = argv[1], argv[2], argv[3], argv[4:]
    with open(pwfile, "rb") as f:
        password = f.read()
    if password.endswith(b"\n"):  # dre's password files: one trailing newline is ignored
        password = password[:-1]
    commands = {"list": (cmd_list, 0), "restore": (cmd_restore, 2), "chunks": (cmd_chunks, 1),
                "verify": (cmd_verify, 0), "wal": (cmd_wal, 3)}
    if cmd not in commands or len(args) != commands[cmd][1]:
        sys.exit(__doc__)
    try:
        commands[cmd][0](Repo(root, password), *args)
    except (FormatError, OSError) as e:
        sys.exit(f"spec_decoder: {e}")


if __name__ == "__main__":
    main(sys.argv)
