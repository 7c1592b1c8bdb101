#!/usr/bin/python3
"""An independent reader of the dre repository format (versions 1 to 5).

Written from format-spec.md alone, without looking at dre's C sources: if it reads what dre writes, the spec is
enough to write a compatible reader. Section numbers (§n) below refer to format-spec.md. It reads format 1
snapshots (repository versions 1 and 2, and old snapshots of a migrated repository: §10.4) and format 2
snapshots (version 3: a header with two list references, the content lists kept as trees of list blobs: §10.2).
It reads version 4's lock objects (§16.1) and prune plans (§16.2), and like every reader of §16.3 W1 it prefers a
blob's location outside the packs the plans name.

    spec_decoder.py REPO_DIR PASSWORD_FILE list
    spec_decoder.py REPO_DIR PASSWORD_FILE restore SNAPSHOT_ID OUTDIR
    spec_decoder.py REPO_DIR PASSWORD_FILE chunks SNAPSHOT_ID
    spec_decoder.py REPO_DIR PASSWORD_FILE verify
    spec_decoder.py REPO_DIR PASSWORD_FILE wal SYSTEM_ID WAL_FILE_NAME OUTFILE
    spec_decoder.py REPO_DIR PASSWORD_FILE blobs
    spec_decoder.py REPO_DIR PASSWORD_FILE locks
    spec_decoder.py REPO_DIR PASSWORD_FILE plans

list: one line per snapshot: ID, name, kind, size. restore: every node of a snapshot into OUTDIR (checking each
file's size and XXH3-128). chunks: re-chunks each stream and file with the spec's chunker (§11) and compares the
cuts with the snapshot's chunks. verify: every key, index, pack, blob (chunks and list blobs), snapshot (its
lists, every node's size and XXH3-128), WAL, lock and plan object. wal: one archived WAL file. blobs: every
indexed blob as "chunk|list PACK_KEY OFFSET SEALED_LENGTH RAW_LENGTH ID" (a test's way to find the bytes of a list
blob). locks: one line per lock object (§16.1), "ID write|delete COMMAND HOST USER PID live|stale" ("-" for an
empty host, user or command; the command is shown as dre wrote it, and nothing here depends on it). plans: per prune
plan (§16.2) a line "plan ID N packs", then "  pack PACK_ID REASON present|gone" per pack. A lock or plan that
disappears between the listing and the read (its holder ended, its prune finished) is skipped: it is no longer there
to be read.

Any decoding or verification failure prints a message and exits with status 1.
Needs Debian's python3-cryptography, python3-zstandard and python3-xxhash (run with /usr/bin/python3).
"""

import hmac
import hashlib
import itertools
import json
import os
import socket
import struct
import sys
import time

import xxhash
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

ZERO_NONCE = bytes(12)
ENTRY = struct.Struct("<32sIIIB")  # blob ID, offset, stored length, raw length, flags (§8)
KINDS = {1: "stream", 2: "files", 3: "wal", 4: "pgbase", 5: "pgdump"}
PGDUMP_COUNTS = ("exact", "estimate", "none")  # pg-dump.count (§10.5)
STREAM, FILE, DIR, SYMLINK, CHARDEV, BLOCKDEV = 1, 2, 3, 4, 5, 6
ZSTD, LIST = 1, 2  # blob flag bits (§8)
CHUNK_LIST, NODE_LIST = 1, 2  # list blob kinds (§10.2)
LIST_BLOB_MAX = 81920  # plaintext bytes of a list blob
LIST_LEVELS = 8  # a list has at most 8 levels: 0..7
NODE_RECORD_MAX = 16384
PATH_MAX = 4095  # paths and symlink targets of format 2 node records (§10.3)
EMPTY_XXH3 = bytes.fromhex("99aa06d3014798d86001c324468d497f")
LOCK_KINDS = {1: "write", 2: "delete"}  # §16.1
LOCK_STALE_NS = 30 * 60 * 10**9  # a lock refreshed longer ago than this is stale (§16.1)
REASONS = {1: "dead", 2: "repacked", 3: "orphan"}  # why a prune plan names a pack (§16.2)
PLAN_FIXED = 16  # a plan's fixed fields: format, zero, u16 zero, n, created
PLAN_ENTRY = 33  # a pack ID and its reason


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


# §10.3, §10.4: node records

def read_node(c, fmt):
    """One node record from cursor c: the §10.3 layout (formats 2 and 3) or a §10.4 node table entry (format 1,
    whose chunk IDs follow inline and are read here too)."""
    node = {"type": c.u("B"), "path": c.str16()}
    node["mode"], node["uid"], node["gid"], node["mtime"], node["size"] = c.unpack("IIIqQ")
    node["xxh3"], node["target"] = c.take(16), c.str16()
    node["nchunks"] = c.u("I" if fmt == 1 else "Q")
    if fmt == 1:
        node["chunks"] = [c.take(32) for _ in range(node["nchunks"])]
    node["xattrs"] = []
    if fmt == 3:
        node["ctime"], node["dev"], node["ino"], node["nlink"], node["rdev"] = c.unpack("qQQIQ")
        for _ in range(c.u("H")):
            name = c.take(c.u("H"))
            node["xattrs"].append((name, c.take(c.u("I"))))
    check_node(node, c.what, fmt)
    return node


def check_node(node, where, fmt):
    t, path, target = node["type"], node["path"], node["target"]
    check(t in ((STREAM, FILE, DIR, SYMLINK, CHARDEV, BLOCKDEV) if fmt == 3 else (STREAM, FILE, DIR, SYMLINK)),
          f"{where}: unknown node type {t}")
    if fmt == 3:
        names = [n for n, _ in node["xattrs"]]
        check(all(1 <= len(n) <= 255 and b"\0" not in n for n in names), f"{where}: a bad attribute name")
        check(names == sorted(set(names)), f"{where}: attribute names not in strictly increasing order")
        check(all(len(v) <= 65536 for _, v in node["xattrs"]), f"{where}: an attribute value over 64 KiB")
        check(node["rdev"] == 0 or t in (CHARDEV, BLOCKDEV), f"{where}: a device number on a {t} node")
        if t not in (STREAM, FILE):
            check(node["size"] == 0, f"{where}: a node without content has a size")
        if t == STREAM:
            check(not node["xattrs"], f"{where}: a stream with attributes")
    check_path(path, where, t)
    where = f"{where}: {path}"
    if fmt >= 2:
        check(len(path.encode()) <= PATH_MAX, f"{where}: path longer than {PATH_MAX} bytes")
        check(len(target.encode()) <= PATH_MAX, f"{where}: symlink target longer than {PATH_MAX} bytes")
    if t not in (STREAM, FILE):
        check(node["nchunks"] == 0, f"{where}: a node of type {t} with chunks")
    if t == SYMLINK:
        check(target != "", f"{where}: symlink with an empty target")
    else:
        check(target == "", f"{where}: only a symlink has a target")
    if t in (STREAM, FILE) and node["size"] == 0:
        check(node["nchunks"] == 0, f"{where}: a 0-byte {'stream' if t == STREAM else 'file'} with chunks")
        check(node["xxh3"] == EMPTY_XXH3, f"{where}: a 0-byte node whose XXH3-128 is not that of empty input")


def check_path(path, where, node_type=None):
    """§10.3: relative, '/'-separated, no empty, '.' or '..' components; the one path '.' is a directory."""
    if path == ".":
        check(node_type == DIR, f"{where}: path '.' on a node that is not a directory")
        return
    parts = path.split("/")
    check(path and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts),
          f"{where}: unsafe path {path!r}")


def check_stream_node(where, n):
    """§10.5 by way of §10.3: a stream node of a format 2 snapshot has mode 0600, owner 0:0 and mtime 0."""
    check(n["type"] == STREAM, f"{where}: node {n['path']!r} is not a stream")
    check(n["mode"] == 0o600 and n["uid"] == 0 and n["gid"] == 0 and n["mtime"] == 0,
          f"{where}: stream node {n['path']!r} has mode {n['mode']:o}, owner {n['uid']}:{n['gid']}, mtime {n['mtime']}")


def check_pgdump_snapshot(snap, nodes):
    """§10.5: the archive under the snapshot's name, then with --globals `<name>.globals.sql` (named by the meta
    key pg-dump.globals); the meta keys a reader needs, decimal numbers where the table says so, and the table
    counts as a sorted JSON array of [schema, table, rows]."""
    where, name, meta = f"snapshot {snap['id']}", snap["name"], snap["meta"]
    check(len(nodes) in (1, 2), f"{where}: a pg-dump with {len(nodes)} nodes")
    for n in nodes:
        check_stream_node(where, n)
    check(nodes[0]["path"] == name, f"{where}: the archive node {nodes[0]['path']!r} is not named {name!r}")
    globals_node = meta.get("pg-dump.globals")
    if len(nodes) == 2:
        check(nodes[1]["path"] == name + ".globals.sql" and globals_node == nodes[1]["path"],
              f"{where}: globals node {nodes[1]['path']!r}, pg-dump.globals {globals_node!r}")
    else:
        check(globals_node is None, f"{where}: pg-dump.globals names {globals_node!r}, which is not there")
    for key in ("pg-dump.database", "pg-dump.server-version", "pg-dump.database-size", "pg-dump.seconds",
                "pg-dump.count"):
        check(key in meta, f"{where}: no {key}")
    for key in ("pg-dump.server-version", "pg-dump.database-size"):
        check(meta[key].isdigit(), f"{where}: {key} is {meta[key]!r}, not a decimal number")
    try:
        seconds = float(meta["pg-dump.seconds"])
    except ValueError:
        seconds = -1
    check(seconds >= 0, f"{where}: pg-dump.seconds is {meta['pg-dump.seconds']!r}")
    count = meta["pg-dump.count"]
    check(count in PGDUMP_COUNTS, f"{where}: pg-dump.count is {count!r}")
    if count == "none":
        return
    check("pg-dump.tables" in meta, f"{where}: counted ({count}) but no pg-dump.tables")
    try:
        tables = json.loads(meta["pg-dump.tables"])
    except ValueError as e:
        raise FormatError(f"{where}: pg-dump.tables is not JSON: {e}")
    check(isinstance(tables, list) and all(
        isinstance(t, list) and len(t) == 3 and isinstance(t[0], str) and isinstance(t[1], str)
        and isinstance(t[2], int) and not isinstance(t[2], bool) for t in tables),
        f"{where}: pg-dump.tables is not an array of [schema, table, rows]")
    check(all(t[2] >= 0 if count == "exact" else t[2] >= -1 for t in tables),
          f"{where}: pg-dump.tables has a row count below what {count} allows")
    names = [(t[0].encode(), t[1].encode()) for t in tables]
    check(names == sorted(names) and len(set(names)) == len(names),
          f"{where}: pg-dump.tables is not sorted bytewise by schema, then table, once each")


def check_stream_snapshot(snap, nodes):
    """§10.3: a stream snapshot has one stream node named after the snapshot, mode 0600, owned by 0:0, and mtime
    0 (format 2: a restore gives it the snapshot's start time) or the push start time (format 1)."""
    where = f"snapshot {snap['id']}"
    check(len(nodes) == 1 and nodes[0]["type"] == STREAM, f"{where}: a stream snapshot without exactly one stream node")
    n, name = nodes[0], snap["name"]
    check(n["path"] == name, f"{where}: stream node {n['path']!r} is not named after the snapshot {name!r}")
    check(1 <= len(name.encode()) <= 255 and "/" not in name and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name),
          f"{where}: bad stream name {name!r}")
    check(n["mode"] == 0o600, f"{where}: stream node mode {n['mode']:o}, not 600")
    if snap["format"] >= 2:
        check(n["mtime"] == 0, f"{where}: stream node mtime {n['mtime']}, not 0")
        check(n["uid"] == 0 and n["gid"] == 0, f"{where}: stream node owned by {n['uid']}:{n['gid']}, not 0:0")
    else:
        check(n["mtime"] == snap["start"], f"{where}: stream node mtime is not the push start time")


def lock_is_stale(lock):
    """§16.1: refreshed more than 30 minutes ago by this clock, or naming this host and a pid that does not run."""
    if time.time_ns() - lock["refreshed"] > LOCK_STALE_NS:
        return True
    if lock["host"] != socket.gethostname():
        return False
    try:
        os.kill(lock["pid"], 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        pass
    return False


class Repo:
    def __init__(self, root, password):
        self.root, self.password = root, password
        self.master = self.unlock(password)
        self.enc_key = hkdf(self.master, b"", b"dre v1 encryption")  # §3
        self.id_key = hkdf(self.master, b"", b"dre v1 chunk id")
        self.list_key = hkdf(self.master, b"", b"dre v3 list id")  # version 3: list blob IDs (§4)
        self.config = self.read_config()
        self.index = {}  # blob ID -> (pack ID, offset, stored length, raw length, flags)
        self.pack_entries = {}  # pack ID -> entries as the index objects list them
        self.files = {}  # pack key -> open file, for ranged reads
        self.deepest = -1  # the highest list level read so far
        # version 4 (§16.3 W1): every prune plan is read before the index, and a blob is located outside the packs
        # the plans name whenever an index object places it elsewhere
        self.plans = [p for p in (self.plan(k) for k in self.object_keys("prune")) if p]
        self.named = {pack_id for p in self.plans for pack_id, _ in p["packs"]}
        for key in self.keys("index"):
            self.read_index(key)

    # -- the store (§2)

    def get(self, key):
        try:
            with open(os.path.join(self.root, key), "rb") as f:
                return f.read()
        except OSError as e:
            raise FormatError(f"{key}: {e.strerror}") from None

    def get_range(self, key, off, n):
        """n bytes of object key from offset off: a ranged read, as a reader of object storage would do."""
        try:
            f = self.files.get(key)
            if f is None:
                if len(self.files) >= 64:
                    for old in self.files.values():
                        old.close()
                    self.files.clear()
                f = self.files[key] = open(os.path.join(self.root, key), "rb")
            f.seek(off)
            return f.read(n)
        except OSError as e:
            raise FormatError(f"{key}: {e.strerror}") from None

    def keys(self, prefix):
        d = os.path.join(self.root, prefix)
        if not os.path.isdir(d):
            return []
        return sorted(f"{prefix}/{n}" for n in os.listdir(d) if not n.startswith("."))

    def pack_keys(self):
        return [k for sub in self.keys("packs") for k in self.keys(sub)]

    def object_keys(self, prefix):
        """The keys PREFIX/<hex ID> (§2): 64 lowercase hex digits; anything else under the prefix is no object."""
        return [k for k in self.keys(prefix)
                if len(k) == len(prefix) + 65 and all(ch in "0123456789abcdef" for ch in k[len(prefix) + 1:])]

    def gone(self, key):
        """True when key no longer exists: a lock whose holder ended, a plan whose prune finished."""
        return not os.path.lexists(os.path.join(self.root, key))

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
        check(version in (1, 2, 3, 4, 5), f"config: unknown repository format version {version}")
        check(avg & (avg - 1) == 0 and 1024 <= lo < avg < hi <= 64 << 20, f"config: bad chunker sizes {lo}/{avg}/{hi}")
        check(1 << 20 <= pack_size <= 1 << 30 and pack_size >= hi, f"config: bad pack size {pack_size}")
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
                old = self.index.get(cid)  # any location will do, but one outside the named packs first
                if old is None or (old[0] in self.named and pack_id not in self.named):
                    self.index[cid] = (pack_id, off, stored, raw, flags)
        c.end()

    # -- locks (§16.1) and prune plans (§16.2): version 4

    def version4_object(self, key, typ):
        """The plaintext of a lock or prune plan, None when it vanished before it could be read."""
        check(self.config["version"] >= 4,
              f"{key}: a {'lock' if typ == b'L' else 'prune plan'} object in a version {self.config['version']}"
              " repository (they exist from version 4)")
        try:
            return self.envelope(key, typ)
        except FormatError:
            if self.gone(key):
                return None
            raise

    def lock(self, key):
        """A lock object (§16.1). Its command is an open set of names: it is read and shown, never checked."""
        pt = self.version4_object(key, b"L")
        if pt is None:
            return None
        c = Cursor(pt, key)
        fmt, kind, zero, pid = c.unpack("BBHI")
        check(fmt == 1, f"{key}: unknown lock format {fmt}")
        check(kind in LOCK_KINDS, f"{key}: unknown lock kind {kind}")
        check(zero == 0, f"{key}: reserved bytes not zero")
        lock = {"id": key.split("/")[1], "kind": LOCK_KINDS[kind], "pid": pid}
        lock["created"], lock["refreshed"] = c.unpack("qq")
        lock["host"], lock["user"], lock["command"] = c.str16(), c.str16(), c.str16()
        c.end()
        lock["stale"] = lock_is_stale(lock)
        return lock

    def locks(self):
        return [lk for lk in (self.lock(k) for k in self.object_keys("locks")) if lk]

    def plan(self, key):
        """A prune plan (§16.2), None when it vanished before it could be read (its prune finished)."""
        pt = self.version4_object(key, b"P")
        if pt is None:
            return None
        check(len(pt) >= PLAN_FIXED, f"{key}: truncated ({len(pt)} bytes, the fixed fields take {PLAN_FIXED})")
        fmt, zero1, zero2, n, created = struct.unpack_from("<BBHIq", pt)
        check(fmt == 1, f"{key}: unknown prune plan format {fmt}")
        check(zero1 == 0, f"{key}: byte 1 is {zero1:#x}, not zero")
        check(zero2 == 0, f"{key}: reserved bytes not zero")
        want = PLAN_FIXED + PLAN_ENTRY * n
        check(len(pt) == want, f"{key}: {n} packs make {want} bytes, the plaintext has {len(pt)}")
        packs = []
        for i in range(n):
            pack_id, reason = struct.unpack_from("<32sB", pt, PLAN_FIXED + PLAN_ENTRY * i)
            check(reason in REASONS, f"{key}: pack {pack_id.hex()}: unknown reason {reason}")
            packs.append((pack_id, REASONS[reason]))
        return {"id": key.split("/")[1], "created": created, "packs": packs}

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
        check(n >= 1, f"{key}: a pack without blobs")
        end = 4 + n * ENTRY.size
        check(end <= len(header), f"{key}: header truncated")
        entries = [ENTRY.unpack_from(header, 4 + i * ENTRY.size) for i in range(n)]
        padding = header[end:]
        check(padding == bytes(len(padding)), f"{key}: header padding not zero")
        check(padme(len(data) - len(padding)) == len(data),
              f"{key}: size {len(data)} is not padme({len(data) - len(padding)})")
        pos = 0  # blob_0 || blob_1 || ...: the blobs tile the bytes before the header, in the header's order
        for cid, off, stored, raw, flags in entries:
            check(off == pos, f"{key}: blob at {off}, expected {pos}")
            pos += stored + 16
        check(pos == body, f"{key}: blobs end at {pos}, header starts at {body}")
        return entries

    def open_blob(self, pack_id, subkey, sealed, entry):
        """The plaintext of one blob (a chunk, or a list blob when flag bit 1 is set), from its sealed bytes
        (stored length + 16), after its authentication, length and ID checks."""
        cid, off, stored, raw, flags = entry
        is_list = bool(flags & LIST)
        where = f"{'list blob' if is_list else 'chunk'} {cid.hex()} in pack {pack_id.hex()}"
        check(len(sealed) == stored + 16, f"{where}: blob truncated")
        known = ZSTD | LIST if self.config["version"] >= 3 else ZSTD  # bit 1 is version 3's
        check(flags & ~known == 0, f"{where}: unknown flags {flags:#x}")
        limit = LIST_BLOB_MAX if is_list else self.config["chunker"][2]
        check(raw <= limit, f"{where}: raw length {raw} over the limit {limit}")
        nonce = struct.pack("<Q", off) + bytes(4)
        aad = cid + bytes([flags]) + struct.pack("<I", raw)
        plain = gcm_open(subkey, nonce, sealed, aad, where)
        if flags & ZSTD:
            try:
                plain = zstandard.ZstdDecompressor().decompress(plain, max_output_size=raw)
            except zstandard.ZstdError as e:
                raise FormatError(f"{where}: zstd: {e}") from None
        check(len(plain) == raw, f"{where}: {len(plain)} bytes, index says {raw}")
        key = self.list_key if is_list else self.id_key
        check(hmac.compare_digest(hmac.new(key, plain, hashlib.sha256).digest(), cid),
              f"{where}: content does not match its ID")
        return plain

    def blob(self, bid, is_list):
        """The plaintext of the indexed blob bid, which must be a list blob (is_list) or a chunk of data."""
        what = "list blob" if is_list else "chunk"
        check(bid in self.index, f"{what} {bid.hex()} is in no index object")
        pack_id, off, stored, raw, flags = loc = self.index[bid]
        check(bool(flags & LIST) == is_list,
              f"{what} {bid.hex()} is indexed as a {'list blob' if flags & LIST else 'chunk'} (flags {flags:#x})")
        sealed = self.get_range(self.pack_key(pack_id), off, stored + 16)
        return self.open_blob(pack_id, self.pack_subkey(pack_id), sealed, (bid,) + loc[1:])

    def chunk(self, cid):
        return self.blob(cid, False)

    # -- content lists (§10.2)

    def read_list(self, ref, kind, where):
        """Yields the level-0 entries of the list that ref = (level, count, root ID) names, depth first, checking
        every rule of §10.2 on each blob before yielding any of its entries; one blob per level in memory."""
        level, count, root = ref
        what = f"{where}: {'chunk' if kind == CHUNK_LIST else 'node'} list"
        check(level < LIST_LEVELS, f"{what}: {level + 1} levels, more than {LIST_LEVELS}")
        if count == 0:
            check(level == 0 and root == bytes(32), f"{what}: an empty list with level {level} or a root ID")
            return
        yield from self.read_list_blob(root, kind, level, count, what)

    def read_list_blob(self, bid, kind, level, count, what):
        plain = self.blob(bid, True)
        c = Cursor(plain, f"{what}: list blob {bid.hex()}")
        got_kind, got_level, zero, n = c.unpack("BBHI")
        check(got_kind == kind, f"{c.what}: kind {got_kind}, expected {kind}")
        check(got_level == level, f"{c.what}: level {got_level}, expected {level}")
        check(zero == 0, f"{c.what}: reserved bytes not zero")
        check(n >= 1, f"{c.what}: no entries")
        self.deepest = max(self.deepest, level)
        if level == 0:
            check(n == count, f"{c.what}: {n} entries, its reference says {count}")
            if kind == CHUNK_LIST:
                entries = [c.take(32) for _ in range(n)]
            else:
                entries = []
                for _ in range(n):
                    length = c.u("H")
                    check(1 <= length <= NODE_RECORD_MAX, f"{c.what}: node record of {length} bytes")
                    entries.append(c.take(length))
            c.end()
            yield from entries
            return
        refs = [c.unpack("32sQ") for _ in range(n)]
        c.end()
        check(all(cnt >= 1 for _, cnt in refs), f"{c.what}: a reference with count 0")
        total = sum(cnt for _, cnt in refs)
        check(total == count, f"{c.what}: its references count {total} entries, its own reference says {count}")
        for child, cnt in refs:
            yield from self.read_list_blob(child, kind, level - 1, cnt, what)

    # -- snapshots (§10)

    def snapshot(self, key):
        """The header of a snapshot; a format 1 snapshot (§10.4) also has its nodes, with their chunk IDs."""
        c = Cursor(self.envelope(key, b"S"), key)
        fmt, kind, zero, start, end = c.unpack("BBHqq")
        check(fmt in (1, 2, 3), f"{key}: unknown snapshot format {fmt}")
        check(fmt != 3 or self.config["version"] >= 5, f"{key}: snapshot format 3 in a version "
              f"{self.config['version']} repository")
        check(fmt == 1 or self.config["version"] >= 3,
              f"{key}: snapshot format {fmt} in a version {self.config['version']} repository")
        check(zero == 0, f"{key}: reserved bytes not zero")
        snap = {"id": key.split("/")[1], "format": fmt, "kind": kind, "start": start, "end": end,
                "name": c.str16(), "host": c.str16()}
        if fmt == 1:
            snap["size"], snap["stored_new"], snap["chunks"], snap["chunks_new"] = c.unpack("4Q")
        else:
            snap["size"], snap["stored_new"], snap["chunks"], snap["chunks_new"], snap["nnodes"] = c.unpack("5Q")
        snap["meta"] = {}
        for _ in range(c.u("I")):
            k = c.str16()
            snap["meta"][k] = c.take(c.u("I")).decode("utf-8", "replace")
        if fmt == 1:
            snap["nodes"] = [read_node(c, 1) for _ in range(c.u("I"))]
            snap["nnodes"] = len(snap["nodes"])
        else:
            snap["node_list"] = c.unpack("BQ32s")
            snap["chunk_list"] = c.unpack("BQ32s")
            check(snap["node_list"][1] == snap["nnodes"],
                  f"{key}: node list holds {snap['node_list'][1]} entries, the header says {snap['nnodes']} nodes")
            check(snap["chunk_list"][1] == snap["chunks"],
                  f"{key}: chunk list holds {snap['chunk_list'][1]} entries, the header says {snap['chunks']} chunks")
        c.end()
        if fmt == 1:
            check(snap["size"] == sum(n["size"] for n in snap["nodes"]), f"{key}: size is not the sum of node sizes")
        return snap

    def nodes(self, snap):
        """Yields the nodes of a snapshot in order, each with its chunk IDs ("chunks"). For a format 2 snapshot it
        reads the node list and the chunk list side by side: a node's chunks are the next nchunks entries."""
        where = f"snapshot {snap['id']}"
        if snap["format"] == 1:
            yield from snap["nodes"]
            return
        chunk_ids = self.read_list(snap["chunk_list"], CHUNK_LIST, where)
        size = 0
        for i, record in enumerate(self.read_list(snap["node_list"], NODE_LIST, where)):
            c = Cursor(record, f"{where}: node record {i}")
            node = read_node(c, snap["format"])
            c.end()
            node["chunks"] = list(itertools.islice(chunk_ids, node["nchunks"]))
            check(len(node["chunks"]) == node["nchunks"],
                  f"{where}: {node['path']}: the nodes' nchunks add up to more than the chunk list's {snap['chunks']}")
            size += node["size"]
            yield node
        check(next(chunk_ids, None) is None,
              f"{where}: the nodes' nchunks add up to less than the chunk list's {snap['chunks']}")
        check(size == snap["size"], f"{where}: node sizes add up to {size}, the header says {snap['size']}")

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


# -- commands

def cmd_list(repo):
    for s in repo.snapshots():
        print(s["id"], s["name"], KINDS.get(s["kind"], f"kind{s['kind']}"), s["size"])


def cmd_restore(repo, snap_id, outdir):
    snap = repo.find_snapshot(snap_id)
    os.makedirs(outdir, exist_ok=True)
    top, dirs, links, count = os.path.realpath(outdir), [], set(), 0
    for node in repo.nodes(snap):
        count += 1
        path = node["path"]
        parts = [] if path == "." else path.split("/")
        # never write through a symlink this restore created (§10.3), nor outside outdir
        for i in range(1, len(parts) + 1):
            check("/".join(parts[:i]) not in links, f"{path}: below (or at) a symlink this restore wrote")
        dest = os.path.join(outdir, *parts) if parts else outdir
        parent = os.path.dirname(dest) if parts else outdir
        os.makedirs(parent, exist_ok=True)
        check(os.path.commonpath([os.path.realpath(parent), top]) == top, f"{path}: escapes {outdir}")
        if node["type"] == DIR:
            os.makedirs(dest, exist_ok=True)
            dirs.append((dest, node))
        elif node["type"] == SYMLINK:
            os.symlink(node["target"], dest)
            links.add(path)
            try:
                os.utime(dest, ns=(node["mtime"], node["mtime"]), follow_symlinks=False)
            except OSError:
                pass
        elif node["type"] in (CHARDEV, BLOCKDEV):  # needs root: this reader leaves them out
            print(f"{path}: a device node, not restored by this reader")
        else:  # a stream or a file (a path pushed twice is written again)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                for plain in repo.node_data(node):
                    f.write(plain)
            # a format 2 stream node has mtime 0: it gets the snapshot's start time
            mtime = snap["start"] if node["type"] == STREAM and snap["format"] >= 2 else node["mtime"]
            os.chmod(dest, node["mode"] & 0o7777)
            os.utime(dest, ns=(mtime, mtime))
    for dest, node in reversed(dirs):  # after their contents, which change mtimes
        os.chmod(dest, node["mode"] & 0o7777)
        os.utime(dest, ns=(node["mtime"], node["mtime"]))
    print(f"restored {snap['id']}: {count} nodes, {snap['size']} bytes, all verified")


def cmd_chunks(repo, snap_id):
    snap = repo.find_snapshot(snap_id)
    gear, params = gear_table(repo.master), repo.config["chunker"]
    nchunks = 0
    for node in repo.nodes(snap):
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


def verify_snapshot(repo, s, checked):
    """Every node of snapshot s: its lists (format 2, §10.2), its chunks indexed as data, and each stream's and
    file's size and XXH3-128 over its chunks' plaintext. checked holds the (size, XXH3-128, chunks) already
    verified in another node, whose data is not read again."""
    where = f"snapshot {s['id']}"
    nodes, nchunks, size = [], 0, 0
    for node in repo.nodes(s):
        nodes.append({k: v for k, v in node.items() if k != "chunks"})
        nchunks += len(node["chunks"])
        size += node["size"]
        for cid in node["chunks"]:
            check(cid in repo.index, f"{where}: {node['path']}: chunk {cid.hex()} not indexed")
            check(not repo.index[cid][4] & LIST, f"{where}: {node['path']}: chunk {cid.hex()} is a list blob")
        if node["type"] in (STREAM, FILE):
            sig = (node["size"], node["xxh3"], tuple(node["chunks"]))
            if sig not in checked:
                for _ in repo.node_data(node):  # checks size and XXH3-128
                    pass
                checked.add(sig)
    check(len(nodes) == s["nnodes"], f"{where}: {len(nodes)} nodes, the header says {s['nnodes']}")
    check(nchunks == s["chunks"], f"{where}: the nodes have {nchunks} chunks, the header says {s['chunks']}")
    check(size == s["size"], f"{where}: the nodes hold {size} bytes, the header says {s['size']}")
    if s["kind"] == 1:
        check_stream_snapshot(s, nodes)
    elif s["kind"] == 5:
        check_pgdump_snapshot(s, nodes)
    return len(nodes)


def cmd_verify(repo):
    key_objects, opened = repo.keys("keys"), 0  # each must be intact; those the password opens hold one master
    for key in key_objects:
        master = repo.try_key(key, repo.get(key), repo.password)
        check(master in (None, repo.master), f"{key}: wraps a different master key")
        opened += master is not None
    nchunks = nlists = nbytes = 0
    packs = repo.pack_keys()
    for key in packs:
        pack_id = bytes.fromhex(key.rsplit("/", 1)[1])
        check(key == repo.pack_key(pack_id), f"{key}: misplaced pack")
        data = repo.get(key)
        entries = repo.read_pack_header(key, data)
        if pack_id in repo.pack_entries:
            check(repo.pack_entries[pack_id] == set(entries), f"{key}: header and index disagree")
        subkey = repo.pack_subkey(pack_id)
        for e in entries:  # every blob, chunk or list blob (flag bit 1: its ID keyed with list_key)
            repo.open_blob(pack_id, subkey, data[e[1]:e[1] + e[2] + 16], e)
            nlists += bool(e[4] & LIST)
            nchunks += not e[4] & LIST
        nbytes += len(data)
    present = {bytes.fromhex(k.rsplit("/", 1)[1]) for k in packs}
    # a pack that a plan names may be gone while an index object still names it (a prune between its deletions and
    # its index rewrite, or killed there): no reader uses it (§16.3 W1); any other is missing
    missing = [p.hex() for p in repo.pack_entries if p not in present and p not in repo.named]
    check(not missing, f"index names missing packs: {', '.join(missing)}")
    indexed_gone = sum(p not in present for p in repo.pack_entries)
    locks = repo.locks()
    snaps = repo.snapshots()
    checked, nnodes = set(), 0
    for s in snaps:
        nnodes += verify_snapshot(repo, s, checked)
    wal_files = 0
    for key in repo.wal_keys():
        kind, _ = repo.read_wal(key)
        wal_files += kind == "file"
    orphans = len(present - set(repo.pack_entries))
    formats = ", ".join(f"{sum(s['format'] == f for s in snaps)} of format {f}" for f in (1, 2, 3)
                        if any(s["format"] == f for s in snaps))
    print(f"keys: {len(key_objects)} intact, {opened} opened by this password")
    print(f"config: version {repo.config['version']}, chunker min/avg/max {repo.config['chunker']}, zstd level {repo.config['level']}")
    print(f"index: {len(repo.keys('index'))} objects, {len(repo.index)} blobs")
    print(f"packs: {len(packs)} ({orphans} not indexed), {nchunks} chunks and {nlists} list blobs, {nbytes} bytes,"
          " all authenticated")
    lists = f"lists up to level {repo.deepest}" if repo.deepest >= 0 else "no lists"
    print(f"snapshots: {len(snaps)}{' (' + formats + ')' if formats else ''}, {nnodes} nodes, {lists}, every list"
          " checked, every chunk indexed, every node's size and XXH3-128 match")
    print(f"wal: {wal_files} archived files, all authenticated and checksummed")
    kinds = [lk["kind"] for lk in locks]
    print(f"locks: {len(locks)} ({kinds.count('write')} write, {kinds.count('delete')} delete,"
          f" {sum(lk['stale'] for lk in locks)} stale), all authenticated")
    reasons = [r for p in repo.plans for _, r in p["packs"]]
    print(f"prune: {len(repo.plans)} plans, naming {len(repo.named)} packs"
          f" ({', '.join(f'{reasons.count(r)} {r}' for r in REASONS.values())};"
          f" {len(repo.named & present)} present, {indexed_gone} gone but still indexed), all authenticated")
    print("verify: OK")


def cmd_wal(repo, system, name, out):
    """Writes archived WAL file NAME of SYSTEM to OUT."""
    kind, f = repo.read_wal(f"wal/{system}/{name[:8].lower()}/{name.lower()}")
    check(kind == "file", f"{name}: not a WAL file")
    with open(out, "wb") as fh:
        fh.write(f["bytes"])


def cmd_blobs(repo):
    for bid, (pack_id, off, stored, raw, flags) in sorted(repo.index.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        print("list" if flags & LIST else "chunk", repo.pack_key(pack_id), off, stored + 16, raw, bid.hex())


def cmd_locks(repo):
    for lk in sorted(repo.locks(), key=lambda lk: (lk["created"], lk["id"])):
        print(lk["id"], lk["kind"], lk["command"] or "-", lk["host"] or "-", lk["user"] or "-", lk["pid"],
              "stale" if lk["stale"] else "live")


def cmd_plans(repo):
    present = {bytes.fromhex(k.rsplit("/", 1)[1]) for k in repo.pack_keys()}
    for p in sorted(repo.plans, key=lambda p: (p["created"], p["id"])):
        print("plan", p["id"], f"{len(p['packs'])} packs")
        for pack_id, reason in p["packs"]:
            print("  pack", pack_id.hex(), reason, "present" if pack_id in present else "gone")


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    root, pwfile, cmd, args = argv[1], argv[2], argv[3], argv[4:]
    with open(pwfile, "rb") as f:
        password = f.read()
    if password.endswith(b"\n"):  # dre's password files: one trailing newline is ignored
        password = password[:-1]
    commands = {"list": (cmd_list, 0), "restore": (cmd_restore, 2), "chunks": (cmd_chunks, 1),
                "verify": (cmd_verify, 0), "wal": (cmd_wal, 3), "blobs": (cmd_blobs, 0),
                "locks": (cmd_locks, 0), "plans": (cmd_plans, 0)}
    if cmd not in commands or len(args) != commands[cmd][1]:
        sys.exit(__doc__)
    try:
        commands[cmd][0](Repo(root, password), *args)
    except (FormatError, OSError) as e:
        sys.exit(f"spec_decoder: {e}")


if __name__ == "__main__":
    main(sys.argv)
