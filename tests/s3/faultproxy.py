#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 reverse proxy for loopback tests of dre's S3 client.

    faultproxy.py --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] [--port-file FILE] [--every N | --rate P]
                  [--faults KINDS] [--match REGEX] [--match-header NAME] [--max-faults K]
                  [--delay-ms MS] [--rate-mb MB] [--seed S] [--stall-seconds SEC] [--timeout SEC]
                  [--log FILE] [--stats FILE]

Listens on a loopback address only (127.x), writes the bound port to --port-file (atomically, once listening) and
runs until SIGTERM or SIGINT, then exits 0. Each client connection gets its own thread and its own upstream
connection (opened at the first forwarded request, reopened when the upstream closed it); keep-alive works on both
sides. Requests and responses are forwarded byte for byte: the proxy only parses the framing (request line and
headers, a body by Content-Length or chunked encoding, Expect: 100-continue passed through; responses by
Content-Length, chunked, none for HEAD, 1xx, 204 and 304, otherwise until the upstream closes, after which the client
connection is closed too). Host and every other header are left alone, so AWS SigV4 signatures stay valid.

Fault injection: requests are numbered 1, 2, ... across all connections; when --every N is given (N > 0), every N-th
request gets a fault, up to --max-faults K in all (default: no limit); with --rate P instead, each request gets one
with probability P (0..1), drawn from the generator seeded with --seed S (default: seeded at random). The kind comes
from the comma list --faults (default 503), in rotation, or picked at random by a generator seeded with --seed S. With --match REGEX only
requests whose "METHOD TARGET" (TARGET as in the request line, query included) matches are counted for faults,
and with --match-header NAME only requests that carry that header:

  503           the request is read (body too) but not forwarded; the answer is 503 Service Unavailable with the S3
                error XML (Code SlowDown); the connection stays open.
  500           the same with 500 Internal Server Error and Code InternalError.
  501           the same with 501 Not Implemented and Code NotImplemented (what OpenStack Swift answers to
                If-None-Match: *).
  reset         the request is read but not forwarded; the client connection is closed with a TCP RST
                (curl: error 56, "Recv failure: Connection reset by peer").
  truncate      the request is forwarded; the status line, the headers and about half of the body go back to the
                client, then its connection is closed with a FIN (curl: error 18, "transfer closed with N bytes
                remaining to read"). A response without a body (HEAD, 204, 304, Content-Length: 0) loses the second
                half of its header block instead, and the connection gets a TCP RST (a client may take a header
                block cut short by a FIN for a whole answer: curl does). A chunked or close-delimited body is read
                whole (up to 256 MiB) to find its half; a close-delimited body cut short cannot be told from a
                whole one.
  truncate-rst  as truncate, but the client connection is closed with a TCP RST (curl: error 56).
  corrupt       the request is forwarded with the middle byte of its body inverted (a body damaged on the way;
                a request without a Content-Length body goes through unharmed).
  stall         the request is read but not forwarded; the proxy waits --stall-seconds (default 30), then closes the
                connection (a client without a timeout sees an empty reply, curl error 52).

When a client that sent Expect: 100-continue gets a 503, 500, reset or stall fault, the proxy itself answers
100 Continue so that it can read the body first.

A wide-area link, for measurements: --delay-ms holds each answer that long, --rate-mb paces every connection to
that many MB/s in each direction.

Log (--log FILE, appended; default stderr), one line per request:
    N METHOD TARGET -> STATUS
    N METHOD TARGET -> FAULT KIND
    N METHOD TARGET -> ERROR [after STATUS: ]REASON       (a connection broke off or timed out)
(when the upstream cannot be reached, the client gets 502 Bad Gateway, logged as "-> 502").
--stats FILE is rewritten (atomically) after every request and at exit:
    {"requests": R, "faults": F, "by_kind": {"503": 1, ...}}

No socket waits longer than --timeout seconds (default 120, 0 = forever): a connection that is idle or stuck that
long is closed, and a peer that closes its side ends the connection thread.
"""

import argparse
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

BUFSIZE = 1 << 20  # socket reads
FLUSH_AT = 64 << 10  # small writes are gathered up to this size
MAX_LINE = 64 << 10
MAX_HEAD = 256 << 10
COLLECT_MAX = 256 << 20  # truncate: the most of a chunked or close-delimited body read to find its half
KINDS = ("503", "500", "501", "reset", "truncate", "truncate-rst", "stall", "corrupt")
ERROR_BODY = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message>'
              '<RequestId>faultproxy</RequestId></Error>')
ERRORS = {
    "503": ("503 Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "500": ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
    "501": ("501 Not Implemented", "NotImplemented",
            "A header you provided implies functionality that is not implemented."),
}


class ShortRead(Exception):
    """The peer closed its side in the middle of a message."""


class BadMessage(Exception):
    """A message the proxy cannot frame."""


class Reader:
    """Buffered reads from a socket; bodies are copied with large recv_into calls."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.scratch = None

    def fill(self, out=None):
        if out is not None:
            out.flush()  # never sit on gathered output while waiting for input
        data = self.sock.recv(BUFSIZE)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self, out=None):
        """One line with its end, b"" at a clean end of stream."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise BadMessage("line too long")
            start = len(self.buf)
            if not self.fill(out):
                if self.buf:
                    raise ShortRead("end of stream inside a line")
                return b""

    def read_head(self):
        """The lines of a start line and header block (the last one empty); None at a clean end of stream."""
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                if lines:
                    raise ShortRead("end of stream inside a header block")
                return None
            if not lines and line in (b"\r\n", b"\n"):
                continue  # stray empty lines between messages are allowed (RFC 9112 2.2)
            lines.append(line)
            total += len(line)
            if total > MAX_HEAD:
                raise BadMessage("header block too long")
            if line in (b"\r\n", b"\n"):
                return lines

    def copy(self, dst, n):
        """Copies exactly n bytes to dst."""
        if self.buf:
            k = min(n, len(self.buf))
            dst.write(self.buf[:k])
            del self.buf[:k]
            n -= k
        if n <= 0:
            return
        if self.scratch is None:
            self.scratch = memoryview(bytearray(BUFSIZE))
        mv = self.scratch
        while n > 0:
            dst.flush()
            k = self.sock.recv_into(mv, min(n, BUFSIZE))
            if k == 0:
                raise ShortRead("end of stream with %d body bytes missing" % n)
            dst.write(mv[:k])
            n -= k

    def copy_until_close(self, dst):
        if self.buf:
            dst.write(self.buf)
            self.buf.clear()
        if self.scratch is None:
            self.scratch = memoryview(bytearray(BUFSIZE))
        mv = self.scratch
        while True:
            dst.flush()
            k = self.sock.recv_into(mv, BUFSIZE)
            if k == 0:
                return
            dst.write(mv[:k])

    def copy_chunked(self, dst):
        """Copies a chunked body verbatim: chunks, the last (0-size) chunk and the trailers."""
        while True:
            line = self.readline(dst)
            if not line:
                raise ShortRead("end of stream inside a chunked body")
            dst.write(line)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadMessage("bad chunk size line %r" % line[:40]) from None
            if size < 0:
                raise BadMessage("bad chunk size")
            if size == 0:
                while True:
                    line = self.readline(dst)
                    if not line:
                        raise ShortRead("end of stream inside chunked trailers")
                    dst.write(line)
                    if line in (b"\r\n", b"\n"):
                        return
            self.copy(dst, size)
            line = self.readline(dst)  # the CRLF after the chunk data
            if not line:
                raise ShortRead("end of stream after chunk data")
            dst.write(line)


class Writer:
    """Writes to a socket, gathering small pieces (lines, headers) into one send; with rate (bytes per second),
    no faster than that (a wide-area link's bandwidth per connection)."""

    def __init__(self, sock, rate=0.0):
        self.sock = sock
        self.pending = bytearray()
        self.rate = rate
        self.t0 = self.sent = 0.0

    def send(self, data):
        self.sock.sendall(data)
        if self.rate <= 0:
            return
        now = time.monotonic()
        if now - (self.t0 + self.sent / self.rate) > 1.0:  # idle for a while: a new burst
            self.t0, self.sent = now, 0.0
        self.sent += len(data)
        wait = self.t0 + self.sent / self.rate - now
        if wait > 0:
            time.sleep(wait)

    def write(self, data):
        if len(data) >= FLUSH_AT:
            self.flush()
            self.send(data)
        else:
            self.pending += data
            if len(self.pending) >= FLUSH_AT:
                self.flush()

    def flush(self):
        if self.pending:
            self.send(self.pending)
            self.pending.clear()


class NullSink:
    def write(self, data):
        pass

    def flush(self):
        pass


class FlipSink:
    """Passes bytes on to dst with the one at position pos inverted (a body damaged on the way)."""

    def __init__(self, dst, pos):
        self.dst, self.pos, self.seen = dst, pos, 0

    def write(self, data):
        end = self.seen + len(data)
        if self.seen <= self.pos < end:
            data = bytearray(data)
            data[self.pos - self.seen] ^= 0xFF
        self.seen = end
        self.dst.write(data)

    def flush(self):
        self.dst.flush()


class Collector:
    def __init__(self, limit):
        self.data = bytearray()
        self.limit = limit

    def write(self, data):
        self.data += data
        if len(self.data) > self.limit:
            raise BadMessage("body too long to truncate")

    def flush(self):
        pass


def parse_headers(lines):
    """{lowercase name: [values]} from header lines (continuation lines are ignored)."""
    h = {}
    for raw in lines:
        if raw[:1] in (b" ", b"\t"):
            continue
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise BadMessage("header line without a colon")
        h.setdefault(name.strip().lower(), []).append(value.strip())
    return h


def tokens(h, name):
    return [t.strip().lower() for v in h.get(name, ()) for t in v.split(",") if t.strip()]


def content_length(h):
    values = {v.strip() for v in h.get("content-length", ()) for v in v.split(",")}
    if not values:
        return None
    if len(values) != 1 or not values.copy().pop().isdigit():
        raise BadMessage("bad Content-Length")
    return int(values.pop())


def persistent(version, h):
    conn = tokens(h, "connection")
    if version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


def rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class State:
    """What all connections share: options, the request and fault counters, the log and the stats file."""

    def __init__(self, args, log):
        self.args = args
        self.upstream = args.upstream
        self.timeout = args.timeout or None
        self.log_file = log
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.requests = 0
        self.matched = 0
        self.faults = 0
        self.by_kind = {k: 0 for k in args.faults}
        self.rng = random.Random(args.seed) if args.seed is not None else None
        if args.rate > 0 and self.rng is None:
            self.rng = random.Random()

    def next_request(self, line="", headers=()):
        """(request number, fault kind or None) for the request whose "METHOD TARGET" is line."""
        a = self.args
        with self.lock:
            self.requests += 1
            n = self.requests
            kind = None
            if a.match is not None or a.match_header is not None:
                if (a.match is not None and not a.match.search(line)) or \
                        (a.match_header is not None and a.match_header not in headers):
                    return n, None
                self.matched += 1
                counted = self.matched
            else:
                counted = n
            if a.rate > 0:
                hit = self.rng.random() < a.rate
            else:
                hit = a.every > 0 and counted % a.every == 0
            if hit and (a.max_faults is None or self.faults < a.max_faults):
                if self.rng is not None:
                    kind = self.rng.choice(a.faults)
                else:
                    kind = a.faults[self.faults % len(a.faults)]
                self.faults += 1
                self.by_kind[kind] += 1
        return n, kind

    def log(self, line):
        with self.log_lock:
            try:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            except (OSError, ValueError):
                pass

    def write_stats(self):
        path = self.args.stats
        if not path:
            return
        with self.stats_lock:
            with self.lock:
                data = {"requests": self.requests, "faults": self.faults, "by_kind": dict(self.by_kind)}
            tmp = "%s.%d.tmp" % (path, os.getpid())
            try:
                with open(tmp, "w") as f:
                    json.dump(data, f)
                    f.write("\n")
                os.replace(tmp, path)
            except OSError as e:
                self.log("faultproxy: cannot write %s: %s" % (path, e))


class Connection:
    """One client connection and the upstream connection that serves it."""

    def __init__(self, state, sock):
        self.st = state
        self.client = sock
        self.cr = Reader(sock)
        self.cw = Writer(sock, state.args.rate_mb * 1e6)
        self.up = self.ur = self.uw = None
        self.status = None

    def run(self):
        try:
            self.client.settimeout(self.st.timeout)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while self.one_request():
                pass
        except (OSError, ShortRead, BadMessage):
            try:
                self.cw.flush()  # what came from the upstream before it broke off still reaches the client
            except OSError:
                pass
        finally:
            self.close_upstream()
            try:
                self.client.close()
            except OSError:
                pass

    def close_upstream(self):
        if self.up is not None:
            try:
                self.up.close()
            except OSError:
                pass
            self.up = self.ur = self.uw = None

    def connect_upstream(self):
        if self.up is not None:
            # An idle keep-alive connection that is readable was closed by the upstream (or is out of step).
            try:
                readable = select.select([self.up], [], [], 0)[0]
            except (OSError, ValueError):
                readable = True
            if readable or self.ur.buf:
                self.close_upstream()
        if self.up is None:
            s = socket.create_connection(self.st.upstream, timeout=self.st.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.up, self.ur, self.uw = s, Reader(s), Writer(s, self.st.args.rate_mb * 1e6)

    def simple_response(self, status, body, ctype, keep, method=None):
        body = body.encode()
        head = "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nx-amz-request-id: faultproxy\r\n" % (
            status, ctype, len(body))
        if not keep:
            head += "Connection: close\r\n"
        self.cw.write(head.encode() + b"\r\n" + (b"" if method == "HEAD" else body))
        self.cw.flush()

    def one_request(self):
        """Serves one request; False when the client connection is to be closed."""
        lines = self.cr.read_head()
        if lines is None:
            return False
        parts = lines[0].decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.simple_response("400 Bad Request", "bad request line\n", "text/plain", False)
            return False
        method, target, version = parts
        try:
            h = parse_headers(lines[1:-1])
            te = tokens(h, "transfer-encoding")
            if te and te[-1] != "chunked":
                raise BadMessage("request Transfer-Encoding without chunked")
            body = "chunked" if te else (content_length(h) or 0)
        except BadMessage as e:
            self.simple_response("400 Bad Request", "%s\n" % e, "text/plain", False)
            return False
        keep = persistent(version, h)
        expect = "100-continue" in tokens(h, "expect") and body != 0
        n, kind = self.st.next_request("%s %s" % (method, target), h)
        label = "%d %s %s" % (n, method, target)
        self.status = None
        try:
            if kind is None:
                keep = self.forward(lines, method, body, expect, keep)
                self.st.log("%s -> %s" % (label, self.status))
            else:
                self.st.log("%s -> FAULT %s" % (label, kind))
                keep = self.fault(kind, lines, method, body, expect, keep)
            return keep
        except (OSError, ShortRead, BadMessage) as e:
            reason = str(e) or type(e).__name__
            if isinstance(e, OSError) and not isinstance(e, TimeoutError) and e.strerror:
                reason = e.strerror
            self.st.log("%s -> ERROR %s%s" % (label, "after %s: " % self.status if self.status else "", reason))
            raise
        finally:
            self.st.write_stats()

    def read_body(self, body, dst):
        if body == "chunked":
            self.cr.copy_chunked(dst)
        elif body:
            self.cr.copy(dst, body)
        dst.flush()

    def fault(self, kind, lines, method, body, expect, keep):
        if kind.startswith("truncate"):
            return self.forward(lines, method, body, expect, keep, truncate=kind)
        if kind == "corrupt":
            return self.forward(lines, method, body, expect, keep, corrupt=True)
        if expect:
            self.cw.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.cw.flush()
        self.read_body(body, NullSink())
        if kind in ERRORS:
            status, code, message = ERRORS[kind]
            self.status = status.split()[0]
            self.simple_response(status, ERROR_BODY % (code, message), "application/xml", keep, method)
            return keep
        if kind == "reset":
            rst_close(self.client)
            return False
        if kind == "stall":
            time.sleep(self.st.args.stall_seconds)
            return False
        raise AssertionError(kind)

    def wait_continue(self):
        """After a head with Expect: 100-continue: waits for the client's body or the upstream's answer.
        Returns None when the body is to be sent, or the head of a final response that came first."""
        while not self.cr.buf:
            r = select.select([self.client, self.up], [], [], self.st.timeout)[0]
            if not r:
                raise TimeoutError("timed out waiting for 100-continue")
            if self.up in r:
                rlines, status, interim = self.next_head()
                if interim:
                    if status == 100:
                        return None
                    continue
                return rlines
            if self.client in r and not self.cr.fill():
                raise ShortRead("client closed before sending the body")
        return None

    def next_head(self):
        """The upstream's next response head, its status, and whether it was an interim (1xx, not 101) one,
        which is relayed to the client at once."""
        rlines = self.ur.read_head()
        if rlines is None:
            raise ShortRead("upstream closed without a response")
        status = self.response_status(rlines)
        interim = 100 <= status < 200 and status != 101
        if interim:
            self.cw.write(b"".join(rlines))
            self.cw.flush()
        return rlines, status, interim

    @staticmethod
    def response_status(rlines):
        parts = rlines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise BadMessage("bad status line %r" % rlines[0][:60])
        return int(parts[1])

    def forward(self, lines, method, body, expect, keep, truncate=None, corrupt=False):
        try:
            self.connect_upstream()
        except OSError as e:
            if expect:
                # Without an interim 100 the client may or may not send the body: do not wait for it.
                keep = False
            else:
                self.read_body(body, NullSink())
            self.status = "502"
            self.simple_response("502 Bad Gateway", "faultproxy: upstream %s:%d: %s\n" % (
                self.st.upstream + (e.strerror or e,)), "text/plain", keep, method)
            return keep
        self.uw.write(b"".join(lines))
        early = None
        if body:
            if expect:
                self.uw.flush()
                early = self.wait_continue()
            if early is None:
                flip = corrupt and isinstance(body, int) and body > 0
                self.read_body(body, FlipSink(self.uw, body // 2) if flip else self.uw)
            else:
                keep = False  # the client may or may not send the body now: end the connection after this answer
        self.uw.flush()
        if early is not None:
            rlines, status = early, self.response_status(early)
        else:
            interim = True
            while interim:
                rlines, status, interim = self.next_head()
        self.status = str(status)
        if self.st.args.delay_ms > 0:  # a wide-area round trip before the answer
            time.sleep(self.st.args.delay_ms / 1000.0)
        version = rlines[0].split(None, 1)[0].decode("latin-1")
        rh = parse_headers(rlines[1:-1])
        head = b"".join(rlines)
        te = tokens(rh, "transfer-encoding")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            mode, length = "none", 0
        elif te:
            mode, length = ("chunked" if te[-1] == "chunked" else "close"), None
        else:
            length = content_length(rh)
            mode = "close" if length is None else "length"
        keep = keep and persistent(version, rh) and mode != "close"

        if status == 101:
            self.cw.write(head)
            self.cw.flush()
            self.tunnel()
            return False
        if truncate:
            self.truncate(truncate, head, mode, length)
            return False

        self.cw.write(head)
        if mode == "length":
            self.ur.copy(self.cw, length)
        elif mode == "chunked":
            self.ur.copy_chunked(self.cw)
        elif mode == "close":
            self.ur.copy_until_close(self.cw)
        self.cw.flush()
        if not keep:
            self.close_upstream()
        return keep

    def truncate(self, kind, head, mode, length):
        if mode == "length" and length > 0:
            self.cw.write(head)
            self.ur.copy(self.cw, length // 2)
        elif mode in ("chunked", "close"):
            body = Collector(COLLECT_MAX)
            if mode == "chunked":
                self.ur.copy_chunked(body)
            else:
                self.ur.copy_until_close(body)
            self.cw.write(head)
            if body.data:
                self.cw.write(body.data[:max(1, len(body.data) // 2)])
        else:
            # A client may take a header block cut short by a FIN for a complete bodyless answer (curl does).
            self.cw.write(head[:len(head) // 2])
            kind = "truncate-rst"
        self.cw.flush()
        self.close_upstream()
        if kind == "truncate-rst":
            rst_close(self.client)
        else:
            self.client.close()

    def tunnel(self):
        """After 101 Switching Protocols: copies both ways until either side closes."""
        if self.cr.buf:
            self.up.sendall(self.cr.buf)
            self.cr.buf.clear()
        if self.ur.buf:
            self.client.sendall(self.ur.buf)
            self.ur.buf.clear()

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(BUFSIZE)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=pump, args=(self.up, self.client), daemon=True)
        t.start()
        pump(self.client, self.up)
        t.join()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            Connection(self.server.state, self.request).run()
        except Exception as e:  # never let a connection thread print a traceback into a test's output
            self.server.state.log("faultproxy: internal error: %r" % (e,))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128


def host_port(text, what):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("%s must be HOST:PORT, not %r" % (what, text))
    return host, int(port)


def write_atomically(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 reverse proxy for loopback tests.")
    p.add_argument("--upstream", required=True, type=lambda s: host_port(s, "--upstream"), help="HOST:PORT")
    p.add_argument("--listen", default=("127.0.0.1", 0), type=lambda s: host_port(s, "--listen"),
                   help="127.x.x.x:PORT (default 127.0.0.1:0, any free port)")
    p.add_argument("--port-file", help="written with the bound port once listening")
    p.add_argument("--every", type=int, default=0, metavar="N", help="fault every N-th request (0: never)")
    p.add_argument("--rate", type=float, default=0.0, metavar="P",
                   help="fault each request with probability P (0..1) instead of --every")
    p.add_argument("--faults", default="503", metavar="KINDS", help="comma list of: " + ", ".join(KINDS))
    p.add_argument("--match", type=re.compile, default=None, metavar="REGEX",
                   help='fault only requests whose "METHOD TARGET" matches')
    p.add_argument("--delay-ms", type=float, default=0.0, metavar="MS",
                   help="hold each answer this long (a wide-area round trip)")
    p.add_argument("--rate-mb", type=float, default=0.0, metavar="MB",
                   help="at most this many MB/s each way per connection (a wide-area link)")
    p.add_argument("--match-header", type=str.lower, default=None, metavar="NAME",
                   help="fault only requests that carry this header")
    p.add_argument("--max-faults", type=int, default=None, metavar="K", help="at most K faults in all")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="pick fault kinds at random, seeded")
    p.add_argument("--stall-seconds", type=float, default=30.0, metavar="SEC")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SEC",
                   help="longest wait on any socket (0: no limit; default 120)")
    p.add_argument("--log", metavar="FILE", help="request log (appended; default stderr)")
    p.add_argument("--stats", metavar="FILE", help="JSON counts, rewritten after every request and at exit")
    args = p.parse_args()

    faults = [k.strip() for k in args.faults.split(",") if k.strip()]
    bad = [k for k in faults if k not in KINDS]
    if not faults or bad:
        p.error("--faults: unknown kind %s (choose among %s)" % (", ".join(bad) or "(none)", ", ".join(KINDS)))
    args.faults = faults
    if not 0.0 <= args.rate <= 1.0:
        p.error("--rate must be from 0 to 1")
    if args.rate > 0 and args.every > 0:
        p.error("--rate and --every exclude each other")
    if args.every < 0 or (args.max_faults is not None and args.max_faults < 0) or args.timeout < 0:
        p.error("--every, --max-faults and --timeout must not be negative")
    try:
        if not ipaddress.IPv4Address(args.listen[0]) in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError
    except ValueError:
        p.error("--listen must be a 127.x.x.x address, not %r" % args.listen[0])

    log = open(args.log, "a", encoding="utf-8", errors="replace") if args.log else sys.stderr
    state = State(args, log)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        server = Server(args.listen, Handler)
    except OSError as e:
        print("faultproxy: cannot listen on %s:%d: %s" % (args.listen + (e.strerror or e,)), file=sys.stderr)
        sys.exit(1)
    server.state = state
    port = server.server_address[1]
    state.write_stats()
    if args.port_file:
        write_atomically(args.port_file, "%d\n" % port)
    state.log("faultproxy: listening on %s:%d, upstream %s:%d" % ((server.server_address[0], port) + args.upstream))

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    state.write_stats()
    with state.lock:
        state.log("faultproxy: exiting after %d requests, %d faults" % (state.requests, state.faults))
    try:
        log.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(0)  # connection threads may be blocked in a socket call: do not wait for them


if __name__ == "__main__":
    main()
