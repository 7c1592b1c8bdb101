#!/bin/bash
# S3 only, against the Ceph RADOS Gateway that tests/run started: credentials and buckets that are wrong, the
# gateway stopped in the middle of a push and started again, a push that cannot finish, multipart uploads,
# and injected faults (503, 500, connection resets, truncated bodies) through tests/s3/faultproxy.py.
# needs: s3
# runs: alone
. "$(dirname "$0")/lib.bash"
RGW=$DRE_SRC/tests/s3/rgw
: "${DRE_TEST_RGW_DIR:?tests/run exports the directory of the gateway}"

# the multipart uploads the gateway still holds open in a bucket (radosgw-admin counts their meta objects)
open_uploads() {
	radosgw-admin -c "$DRE_TEST_RGW_DIR/ceph.conf" bucket stats --bucket="$1" 2>/dev/null |
		"$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("usage",{}).get("rgw.multimeta",{}).get("num_objects",0))'
}
bucket_of() { echo "$1" | sed -E 's|^s3://([^/]+).*|\1|'; }
# start_proxy ARGS...: tests/s3/faultproxy.py in front of the gateway; PROXY is its endpoint
start_proxy() {
	rm -f "$T/proxy.port"
	"$PY" "$DRE_SRC/tests/s3/faultproxy.py" --upstream "127.0.0.1:$RGW_PORT" --port-file "$T/proxy.port" \
		--stats "$T/proxy.stats" --log "$T/proxy.log" --timeout 60 "$@" &
	proxy_pid=$!
	for _ in $(seq 1200); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done # 60 s: python is slow to start under load
	PROXY=http://127.0.0.1:$(cat "$T/proxy.port")
}
stop_proxy() {
	kill "$proxy_pid" 2>/dev/null
	wait "$proxy_pid" 2>/dev/null
}
faults() { json "d['faults']" <"$T/proxy.stats"; }
# slow_stream SECONDS_APART N: N pieces of 4 MiB of random data, a pause between them
slow_stream() {
	for _ in $(seq "$2"); do
		head -c 4M /dev/urandom
		sleep "$1"
	done
}

expect_rc 0 "init on s3 creates the bucket" "$DRE" init
check "init names the s3 repository" grep -q "s3://" "$T/cmd.out"
"$GENDUMP" 20 >"$T/base.sql"
expect_rc 0 "push a base snapshot" "$DRE" push base <"$T/base.sql"

# wrong credentials and buckets: clear errors, right exit statuses
expect_rc 1 "a wrong secret fails" env AWS_SECRET_ACCESS_KEY=wrong-wrong-wrong-wrong-wrong-wrong-wrong0 "$DRE" snapshots
check "wrong secret: the error says 403 SignatureDoesNotMatch" err_has "HTTP 403 SignatureDoesNotMatch"
check "wrong secret: the error names the bucket" err_has "$(bucket_of "$DRE_REPOSITORY")"
check "wrong secret: the secret is not printed" sh -c "! grep -q wrong-wrong '$T/cmd.err'"
expect_rc 1 "an unknown access key fails" env AWS_ACCESS_KEY_ID=NOSUCHKEY "$DRE" snapshots
check "unknown access key: InvalidAccessKeyId" err_has "InvalidAccessKeyId"
expect_rc 3 "a missing bucket is not found" "$DRE" -r s3://dre-no-such-bucket-e2e/repo snapshots
check "missing bucket: the error says the bucket does not exist" err_has "bucket dre-no-such-bucket-e2e does not exist"
expect_rc 3 "an empty prefix in an existing bucket is not initialized" "$DRE" -r "$DRE_REPOSITORY-other" snapshots
expect_rc 1 "no credentials is a clear error" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T" "$DRE" snapshots
check "no credentials: the error says where they come from" err_has "AWS_ACCESS_KEY_ID"
expect_rc 1 "a plain-http endpoint that refuses connections fails after retries" \
	env DRE_S3_RETRIES=1 "$DRE" --s3-endpoint http://127.0.0.1:1 snapshots
check "refused connection: the error says it gave up" err_has "gave up after 2 attempts"

# https: the certificate is verified, and --s3-ca-file names a CA to trust
: "${DRE_TEST_S3_HTTPS_ENDPOINT:?}" "${DRE_TEST_S3_CA_FILE:?}"
expect_rc 1 "https to a server whose certificate nobody vouches for fails" \
	"$DRE" --s3-endpoint "$DRE_TEST_S3_HTTPS_ENDPOINT" snapshots
check "untrusted certificate: the error says so, with a hint" err_has "certificate.*HINT: --s3-ca-file"
check "untrusted certificate: not retried" sh -c "! grep -q 'gave up after' '$T/cmd.err'"
expect_rc 0 "https with --s3-ca-file" "$DRE" --s3-endpoint "$DRE_TEST_S3_HTTPS_ENDPOINT" --s3-ca-file "$DRE_TEST_S3_CA_FILE" snapshots
check "https lists the same snapshots" grep -q " base " "$T/cmd.out"
expect_rc 0 "https push with the CA from DRE_S3_CA_FILE" \
	env DRE_S3_ENDPOINT="$DRE_TEST_S3_HTTPS_ENDPOINT" DRE_S3_CA_FILE="$DRE_TEST_S3_CA_FILE" "$DRE" push tls <"$T/base.sql"

# server-side encryption (SSE-KMS with the gateway's test key store) and a storage class, on top of dre's own
expect_rc 0 "push with SSE-KMS" "$DRE" --s3-sse aws:kms --s3-sse-kms-key-id drekey-1 --s3-storage-class STANDARD \
	push sse <"$T/base.sql"
sse_snap=$("$DRE" snapshots --json | json "[s['id'] for s in d if s['name']=='sse'][0]")
check "the gateway stored the snapshot object with SSE-KMS under the key given" sh -c \
	"radosgw-admin -c '$DRE_TEST_RGW_DIR/ceph.conf' object stat --bucket='$(bucket_of "$DRE_REPOSITORY")' \
	 --object='$(basename "$DRE_REPOSITORY")/snapshots/$sse_snap' 2>/dev/null | grep -a -q '\"user.rgw.crypt.keyid\": \"drekey-1\"'"
expect_rc 0 "restore what was stored with SSE-KMS" sh -c "'$DRE' restore sse | cmp -s - '$T/base.sql'"
expect_rc 1 "an unknown SSE-KMS key fails" sh -c "echo x | '$DRE' --s3-sse aws:kms --s3-sse-kms-key-id nosuchkey push sse-bad"
check "unknown SSE-KMS key: the error names the key and hints at the option" err_has "nosuchkey.*HINT: check --s3-sse-kms-key-id"
expect_rc 1 "an SSE-KMS key without aws:kms is refused" "$DRE" --s3-sse-kms-key-id drekey-1 snapshots
check "SSE-KMS key without aws:kms: the error says what is missing" err_has "needs server-side encryption aws:kms"

# credentials from ~/.aws/credentials and a profile
mkdir -p "$T/home/.aws"
printf '[dre]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" \
	>"$T/home/.aws/credentials"
expect_rc 0 "credentials from a profile in ~/.aws/credentials" \
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T/home" AWS_PROFILE=dre "$DRE" snapshots

# the gateway stopped in the middle of a push and started again: the push rides it out on retries
# (20 attempts, 45 s of backoff or more, where the default's 13 s could run out while a loaded machine restarts it)
slow_stream 0.1 40 | tee "$T/live" | DRE_S3_RETRIES=20 "$DRE" push live >"$T/live.out" 2>"$T/live.err" &
pid=$!
sleep 1.5
"$RGW" stop-gateway "$DRE_TEST_RGW_DIR" >/dev/null 2>&1
sleep 3
"$RGW" start-gateway "$DRE_TEST_RGW_DIR" >/dev/null 2>&1
wait $pid
rc=$?
check "a push survives the gateway's restart" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    push: /' "$T/live.err" | tail -5
"$DRE" restore live >"$T/live.back" 2>/dev/null
check "the push across the restart restores byte for byte" cmp -s "$T/live" "$T/live.back"
"$DRE" restore base >"$T/base.back"
check "the earlier snapshot still restores" cmp -s "$T/base.sql" "$T/base.back"

# a push that cannot finish (the gateway stays down): a clear error, no snapshot, nothing earlier lost
n_before=$("$DRE" snapshots --json | json "len(d)")
slow_stream 0.1 30 | env DRE_S3_RETRIES=2 "$DRE" push doomed >"$T/doomed.out" 2>"$T/doomed.err" &
pid=$!
sleep 1
"$RGW" stop-gateway "$DRE_TEST_RGW_DIR" >/dev/null 2>&1
wait $pid
rc=$?
"$RGW" start-gateway "$DRE_TEST_RGW_DIR" >/dev/null 2>&1
check "a push with the gateway gone fails" test $rc -eq 1
check "the failed push says it gave up and why" grep -q "gave up after 3 attempts" "$T/doomed.err"
check "the failed push records no snapshot" test "$("$DRE" snapshots --json | json "len(d)")" = "$n_before"
expect_rc 0 "check passes after the failed push" "$DRE" check --read-data
"$DRE" restore live >"$T/live.back2"
check "earlier snapshots restore after the failed push" cmp -s "$T/live" "$T/live.back2"

# multipart: with a 5 MiB threshold every 16 MiB pack goes up in parts
export DRE_S3_MULTIPART_THRESHOLD=5M DRE_S3_PART_SIZE=5M
head -c 70M /dev/urandom >"$T/big"
expect_rc 0 "push in multipart uploads" env DRE_S3_TRACE=1 "$DRE" push big "$T/big"
check "the packs went up in parts" grep -q "partNumber" "$T/cmd.err"
expect_rc 0 "restore what went up in parts" "$DRE" restore big --target "$T/bigout"
check "multipart round trip" cmp -s "$T/big" "$T/bigout$T/big"


# a multipart upload that fails half-way is aborted: no parts are left behind on the gateway (fresh data, so
# that the push has packs to write)
head -c 40M /dev/urandom >"$T/fresh1"
head -c 40M /dev/urandom >"$T/fresh2"
start_proxy --match 'PUT [^ ]*[?&]partNumber=2&' --every 1 --faults 500
expect_rc 1 "a push whose second part always fails fails" env DRE_S3_RETRIES=1 "$DRE" --s3-endpoint "$PROXY" push mp-fail "$T/fresh1"
check "the failed multipart push names the part's status" err_has "HTTP 500 InternalError"
stop_proxy
check "the failed multipart upload was aborted: none left open" test "$(open_uploads "$(bucket_of "$DRE_REPOSITORY")")" = 0
expect_rc 0 "check finds no unfinished upload" "$DRE" check --json
check "check --json counts 0 unfinished uploads" test "$(json "d['incomplete_uploads']" <"$T/cmd.out")" = 0
# ... and when the abort cannot get through either, check reports what is left
start_proxy --match '(PUT [^ ]*[?&]partNumber=2&|DELETE [^ ]*[?]uploadId=)' --every 1 --faults 500
expect_rc 1 "a push whose part and abort both fail fails" env DRE_S3_RETRIES=0 "$DRE" --s3-endpoint "$PROXY" push mp-orphan "$T/fresh2"
stop_proxy
expect_rc 0 "check runs with an unfinished upload left" "$DRE" check
check "check names the unfinished multipart upload" err_has "multipart upload.* never completed"
expect_rc 0 "prune leaves a young unfinished upload alone" "$DRE" prune --grace 0 --json
check "  ... none aborted" test "$(json "d['uploads_aborted']" <"$T/cmd.out")" = 0
expect_rc 0 "prune aborts an unfinished upload older than the stale age" env DRE_TEST_UPLOAD_AGE_S=0 "$DRE" prune --grace 0 --json
check "  ... one aborted" test "$(json "d['uploads_aborted']" <"$T/cmd.out")" -ge 1
check "  ... none left open on the gateway" test "$(open_uploads "$(bucket_of "$DRE_REPOSITORY")")" = 0
unset DRE_S3_MULTIPART_THRESHOLD DRE_S3_PART_SIZE
check "the failed pushes recorded no snapshot" sh -c "! '$DRE' snapshots | grep -q mp-"

# a body damaged on the way: the gateway refuses it (the signed SHA-256 no longer matches) and dre sends it again
start_proxy --match '^PUT ' --every 2 --faults corrupt
head -c 3M /dev/urandom >"$T/c.bin"
expect_rc 0 "push through a proxy that damages every 2nd upload" env DRE_S3_TRACE=1 "$DRE" --s3-endpoint "$PROXY" push damaged "$T/c.bin"
check "the gateway refused the damaged bodies (XAmzContentSHA256Mismatch) and they were sent again" \
	grep -q "400 XAmzContentSHA256Mismatch" "$T/cmd.err"
stop_proxy
check "the proxy damaged uploads" test "$(faults)" -ge 1
expect_rc 0 "what went up through damage restores" "$DRE" restore damaged --target "$T/cout"
check "restored bytes are the ones pushed" cmp -s "$T/c.bin" "$T/cout$T/c.bin"

# a server without If-None-Match (OpenStack Swift answers 501): create-once puts fall back to HEAD, then PUT
start_proxy --match-header if-none-match --every 1 --faults 501
expect_rc 0 "init where If-None-Match is not implemented" "$DRE" --s3-endpoint "$PROXY" -r "$DRE_REPOSITORY-nocond" init
expect_rc 0 "push where If-None-Match is not implemented" sh -c "'$DRE' --s3-endpoint '$PROXY' -r '$DRE_REPOSITORY-nocond' push nc <'$T/base.sql'"
expect_rc 1 "a second init is still refused without If-None-Match" "$DRE" --s3-endpoint "$PROXY" -r "$DRE_REPOSITORY-nocond" init
check "second init without If-None-Match: already exists" err_has "already exists"
stop_proxy
check "the proxy answered 501 to the conditional puts" test "$(faults)" -ge 1
expect_rc 0 "restore what was written without If-None-Match" sh -c "'$DRE' -r '$DRE_REPOSITORY-nocond' restore nc | cmp -s - '$T/base.sql'"

# faults on every 4th request, of every kind: a whole repository's life completes, and nothing is lost
start_proxy --every 4 --faults 503,500,truncate,reset,truncate-rst,503
export DRE_S3_ENDPOINT_DIRECT=$DRE_S3_ENDPOINT DRE_S3_ENDPOINT=$PROXY
export DRE_REPOSITORY=$DRE_REPOSITORY-faults
"$GENDUMP" 30 3 >"$T/f.sql"
mkdir -p "$T/ftree/sub"
head -c 5M /dev/urandom >"$T/ftree/sub/a.bin"
echo small >"$T/ftree/b.txt"
expect_rc 0 "init through faults" "$DRE" init
expect_rc 0 "push stdin through faults" "$DRE" push fdump <"$T/f.sql"
expect_rc 0 "push files through faults (multipart)" env DRE_S3_MULTIPART_THRESHOLD=5M DRE_S3_PART_SIZE=5M "$DRE" push ftree "$T/ftree" "$T/big"
expect_rc 0 "push the same dump again through faults" "$DRE" push fdump <"$T/f.sql"
expect_rc 0 "snapshots through faults" "$DRE" snapshots
check "all three snapshots are listed" test "$(grep -c -E ' (fdump|ftree) ' "$T/cmd.out")" = 3
expect_rc 0 "restore stdin through faults" sh -c "'$DRE' restore fdump >'$T/f.back'"
check "restored dump is identical" cmp -s "$T/f.sql" "$T/f.back"
expect_rc 0 "restore files through faults" "$DRE" restore ftree --target "$T/fout"
check "restored tree is identical" diff -r "$T/ftree" "$T/fout$T/ftree"
check "restored multipart file is identical" cmp -s "$T/big" "$T/fout$T/big"
expect_rc 0 "check --read-data through faults" "$DRE" check --read-data
check "check through faults found no errors" grep -q "no errors found" "$T/cmd.out"
n_faults=$(faults)
check "the proxy injected faults ($n_faults)" test "$n_faults" -ge 20
stop_proxy
export DRE_S3_ENDPOINT=$DRE_S3_ENDPOINT_DIRECT
expect_rc 0 "the repository written through faults checks clean directly" "$DRE" check --read-data

# --metrics on S3 (tests/e2e/metrics.sh covers the file itself on a local repository): series labelled with the
# repository's URL, its size from the bucket's listing, and stats from the repository alone
expect_rc 0 "push with --metrics" "$DRE" --metrics "$T/dre.prom" push mdump <"$T/f.sql"
check "... its series labelled with the repository's URL" \
	grep -q "^dre_backup_last_success_timestamp_seconds{name=\"mdump\",repository=\"$DRE_REPOSITORY\"} " "$T/dre.prom"
expect_rc 0 "check with --metrics" "$DRE" --metrics "$T/dre.prom" check
check "... records the repository's size" \
	test "$(sed -n 's/^dre_repository_size_bytes{repository="[^"]*"} \([0-9]*\)$/\1/p' "$T/dre.prom")" -gt 0
check "... the file is valid for promtool" sh -c "promtool check metrics <'$T/dre.prom'"
expect_rc 0 "stats --prometheus" "$DRE" stats --prometheus
check "... valid for promtool, with the same backup" \
	sh -c "promtool check metrics <'$T/cmd.out' && grep -q 'name=\"mdump\"' '$T/cmd.out'"

finish
