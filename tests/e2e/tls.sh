#!/bin/bash
# TLS verification is on by default: an S3 endpoint on https whose certificate no known CA signed (a fresh
# self-signed one) is refused with an error naming the endpoint and the certificate problem, without a retry,
# and --s3-ca-file, DRE_S3_CA_FILE or the config key s3-ca-file naming that certificate makes it work. A
# certificate that does not name the host is refused even when its CA is given. The request trace
# (DRE_S3_TRACE=1) shows no credentials.
#
# The server is a small TLS-terminating forwarder on 127.0.0.1 in front of the gateway tests/run started
# ($DRE_S3_ENDPOINT): init, push and restore go through it. Without a gateway (DRE_TEST_S3=0) it answers every
# request itself with 403 AccessDenied, which still shows the refusal and that the CA file lets the connection
# through to an HTTP answer.
. "$(dirname "$0")/lib.bash"

gateway=${DRE_S3_ENDPOINT:-}
if [ -z "$gateway" ]; then
	# dre asks for credentials before it connects; these are no secret: nothing checks them
	export AWS_ACCESS_KEY_ID=tls-test AWS_SECRET_ACCESS_KEY=tls-test-not-a-secret
fi
unset DRE_S3_CA_FILE AWS_CA_BUNDLE DRE_S3_ENDPOINT
export DRE_S3_RETRIES=2 # a refusal must come without retries; the rest must not wait long on a mistake

# a certificate for 127.0.0.1, valid for a day, signed by nobody but itself
if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 1 \
	-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >"$T/openssl.out" 2>&1; then
	not_ok "openssl makes a self-signed certificate"
	sed 's/^/    /' "$T/openssl.out"
	finish
fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" -out "$T/other.crt" -days 1 \
	-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
# and one for another name: given as the CA it is trusted, but it does not name 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/name.key" -out "$T/name.crt" -days 1 \
	-subj "/CN=backup.example" -addext "subjectAltName=DNS:backup.example" >/dev/null 2>&1

cat >"$T/tlsproxy.py" <<'EOF'
"""tlsproxy.py CERT KEY PORT_FILE [UPSTREAM_HOST:PORT]: TLS on 127.0.0.1 (port written to PORT_FILE), each
connection forwarded as plain TCP to UPSTREAM, or without one answered 403 AccessDenied."""
import os, socket, ssl, sys, threading

cert, key, port_file = sys.argv[1:4]
upstream = sys.argv[4] if len(sys.argv) > 4 else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(lsock.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)

DENIED = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
          b"<Message>tls test server</Message></Error>")

def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def answer(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                b = conn.recv(65536)
                if not b:
                    return
                buf += b
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buf) < length:
                b = conn.recv(65536)
                if not b:
                    return
                buf += b
            buf = buf[length:]
            body = b"" if head.startswith(b"HEAD ") else DENIED
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                         % len(DENIED) + body)
    except OSError:
        pass
    finally:
        conn.close()

def serve(raw):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()  # the client refused our certificate: what the test wants to see
        return
    if upstream is None:
        answer(conn)
        return
    host, port = upstream.rsplit(":", 1)
    try:
        up = socket.create_connection((host, int(port)))
    except OSError:
        conn.close()
        return
    threading.Thread(target=pump, args=(up, conn), daemon=True).start()
    pump(conn, up)

while True:
    raw, _ = lsock.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
EOF

upstream=
if [ -n "$gateway" ]; then
	upstream=${gateway#http://}
	upstream=${upstream%%/*}
fi
"$PY" "$T/tlsproxy.py" "$T/tls.crt" "$T/tls.key" "$T/port" $upstream 2>"$T/proxy.err" &
proxy=$!
"$PY" "$T/tlsproxy.py" "$T/name.crt" "$T/name.key" "$T/name-port" 2>"$T/name-proxy.err" &
name_proxy=$!
trap 'kill "$proxy" "$name_proxy" 2>/dev/null; wait "$proxy" "$name_proxy" 2>/dev/null' EXIT
for ((i = 0; i < 300; i++)); do [ -s "$T/port" ] && [ -s "$T/name-port" ] && break; sleep 0.1; done
if [ ! -s "$T/port" ] || [ ! -s "$T/name-port" ]; then
	not_ok "the TLS forwarders start"
	sed 's/^/    /' "$T/proxy.err" "$T/name-proxy.err"
	finish
fi
endpoint=https://127.0.0.1:$(cat "$T/port")
bucket=dre-tls-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
export DRE_REPOSITORY=s3://$bucket/repo
if [ -n "$upstream" ]; then echo "TLS endpoint $endpoint in front of $upstream"; else echo "TLS endpoint $endpoint (no gateway: it answers 403)"; fi

# refused: no CA given, so the system's CAs, which did not sign this certificate
start=$SECONDS
expect_rc 1 "init on a self-signed https endpoint is refused" "$DRE" --s3-endpoint "$endpoint" init
sed "s/^/    dre said: /" "$T/cmd.err"
check "... with a certificate error" err_has "certificate"
check "... naming the endpoint" err_has "$endpoint"
check "... and a hint at --s3-ca-file" err_has "s3-ca-file"
check "... at once, without retries (no 'gave up after')" sh -c "! grep -q 'gave up after' '$T/cmd.err'"
elapsed=$((SECONDS - start))
echo "the refusal took ${elapsed}s"
echo data >"$T/in"
expect_rc 1 "push is refused the same way" "$DRE" --s3-endpoint "$endpoint" push tls "$T/in"
check "... with a certificate error naming the endpoint" sh -c "grep -qi certificate '$T/cmd.err' && grep -q '$endpoint' '$T/cmd.err'"
expect_rc 1 "a CA file of another certificate is refused too" \
	"$DRE" --s3-endpoint "$endpoint" --s3-ca-file "$T/other.crt" snapshots
check "... with a certificate error" err_has "certificate"
name_endpoint=https://127.0.0.1:$(cat "$T/name-port")
expect_rc 1 "a certificate for another host name is refused even with it as the CA file" \
	"$DRE" --s3-endpoint "$name_endpoint" --s3-ca-file "$T/name.crt" snapshots
sed "s/^/    dre said: /" "$T/cmd.err"
check "... with an error about the certificate's name, naming the endpoint" \
	sh -c "grep -qi 'certificate' '$T/cmd.err' && grep -q '$name_endpoint' '$T/cmd.err'"
check "... and a hint that the name is wrong, not the CA" err_has "another host name"
expect_rc 1 "a CA file that does not exist is an error" \
	"$DRE" --s3-endpoint "$endpoint" --s3-ca-file "$T/nonexistent.crt" snapshots
check "... naming the file" err_has "$T/nonexistent.crt"

if [ -n "$upstream" ]; then
	# through to the gateway: the whole round trip
	expect_rc 0 "init with --s3-ca-file naming the certificate" \
		"$DRE" --s3-endpoint "$endpoint" --s3-ca-file "$T/tls.crt" init
	expect_rc 0 "push with DRE_S3_CA_FILE" env DRE_S3_CA_FILE="$T/tls.crt" "$DRE" --s3-endpoint "$endpoint" push tls "$T/in"
	printf 's3-endpoint = %s\ns3-ca-file = %s\n' "$endpoint" "$T/tls.crt" >"$T/tls.conf"
	expect_rc 0 "restore with the config key s3-ca-file" "$DRE" --config "$T/tls.conf" restore tls --target "$T/out"
	check "... gives back what was pushed" cmp -s "$T/in" "$T/out$T/in"
	expect_rc 1 "snapshots without the CA is still refused" "$DRE" --s3-endpoint "$endpoint" snapshots
	check "... with a certificate error" err_has "certificate"
else
	# the tiny server answers 403 to everything: getting that answer means TLS went through
	expect_rc 1 "with --s3-ca-file the connection goes through (the server's 403 AccessDenied)" \
		"$DRE" --s3-endpoint "$endpoint" --s3-ca-file "$T/tls.crt" snapshots
	check "... the error is the server's answer, not the certificate" \
		sh -c "grep -q AccessDenied '$T/cmd.err' && ! grep -qi certificate '$T/cmd.err'"
	expect_rc 1 "with DRE_S3_CA_FILE too" \
		env DRE_S3_CA_FILE="$T/tls.crt" "$DRE" --s3-endpoint "$endpoint" snapshots
	check "... the server's answer" err_has AccessDenied
	printf 's3-endpoint = %s\ns3-ca-file = %s\n' "$endpoint" "$T/tls.crt" >"$T/tls.conf"
	expect_rc 1 "with the config key s3-ca-file too" "$DRE" --config "$T/tls.conf" snapshots
	check "... the server's answer" err_has AccessDenied
fi

# the request trace (DRE_S3_TRACE=1) names requests, never the credentials that signed them
want=1
[ -z "$upstream" ] || want=0
expect_rc "$want" "DRE_S3_TRACE=1 snapshots over TLS" \
	env DRE_S3_TRACE=1 "$DRE" --s3-endpoint "$endpoint" --s3-ca-file "$T/tls.crt" snapshots
check "... traces the requests" grep -q "^dre: s3: " "$T/cmd.err"
check "... without the secret key, the signature or the Authorization header" \
	sh -c '! grep -q -i -F -e "$0" -e "Signature=" -e "Authorization" "$1"' "$AWS_SECRET_ACCESS_KEY" "$T/cmd.err"
finish
