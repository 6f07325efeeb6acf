#!/usr/bin/env bash
# cc-kbs against an independent client (test/tools/kbs-client.py, written from the wire
# reference; JWE decrypted with Debian's python3-jwcrypto): every endpoint over HTTPS, cookie
# and token lifetimes, each error body, JWE for EC P-256/P-521 and RSA-OAEP-256, policy
# decisions, admin authentication, SNP evidence from a test-made EC P-384 chain, hostile
# requests. The admin CLI (`cc-kbs resource set`, `cc-kbs policy set`) stores the first secret.
# Then a second instance over plain HTTP (sample disabled, VCEK configured), configuration
# errors, and a check that no log line holds a resource's bytes.
set -u
. "$(dirname "$0")/lib.sh"
trap cc_cleanup EXIT
PY=/usr/bin/python3
CLIENT=test/tools/kbs-client.py
KBS=$BUILD/cc-kbs
[ -x "$KBS" ] || cc_fail "$KBS not built"
$PY -c 'import jwcrypto, cryptography' 2>/dev/null || cc_skip "needs python3-jwcrypto and python3-cryptography (make deps)"
command -v openssl >/dev/null || cc_skip "needs openssl"

d=$CC_TMP
SECRET="kbs-secret-$RANDOM-$RANDOM-value"
printf '%s' "$SECRET" >"$d/secret"
# The server's TLS certificate, for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$d/tls.key" -out "$d/tls.crt" 2>/dev/null || cc_fail "openssl req"
# Admin keys: the configured one and a stranger's.
openssl genpkey -algorithm ed25519 -out "$d/admin.key" 2>/dev/null
openssl pkey -in "$d/admin.key" -pubout -out "$d/admin.pub" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$d/other.key" 2>/dev/null
$PY $CLIENT snp-chain "$d/snp" || cc_fail "making the SNP test chain"

# start NAME CONFIG: runs cc-kbs, waits for its "listening" line, sets URL_<NAME>.
start() {
        local name=$1 conf=$2 addr
        cc_bg "$name" "$KBS" serve --config "$conf"
        for _ in $(seq 100); do
                addr=$(sed -n 's/.*msg=listening.*address=\([0-9.:]*\) scheme=\([a-z]*\).*/\2:\/\/\1/p' "$CC_TMP/$name.log")
                [ -n "$addr" ] && break
                sleep 0.1
        done
        [ -n "$addr" ] || cc_fail "$name did not start: $(cat "$CC_TMP/$name.log")"
        eval "URL_$name=$addr"
}

SESSION=3 TOKEN=3
cat >"$d/kbs.toml" <<TOML
[http]
listen = "127.0.0.1:0"
tls_cert = "$d/tls.crt"
tls_key = "$d/tls.key"
max_body_bytes = 2097152
timeout_s = 4

[session]
timeout_s = $SESSION

[token]
lifetime_s = $TOKEN

[store]
path = "$d/kbs.db"

[verifier.sample]
enabled = true

[verifier.snp]
ark = "$d/snp/ark.pem"
ask = "$d/snp/ask.pem"

[admin]
public_key = "$d/admin.pub"

[log]
level = "debug"
TOML
start main "$d/kbs.toml"
echo "cc-kbs at $URL_main"

# The admin CLI stores the secret used by the suite; a wrong key is refused with the error body.
"$KBS" --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/admin.key" \
        resource set default/key/1 "$d/secret" || cc_fail "cc-kbs resource set"
if "$KBS" --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/other.key" \
        resource set default/key/1 "$d/secret" 2>"$d/cli.err"; then
        cc_fail "resource set with a stranger's key succeeded"
fi
grep -q 'AdminAuthInitialization' "$d/cli.err" || cc_fail "CLI error does not show the body: $(cat "$d/cli.err")"
printf 'version = 1\n[[rule]]\nresources = ["nope/*/*"]\nallow = true\n' >"$d/p.toml"
"$KBS" --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/admin.key" policy set "$d/p.toml" \
        || cc_fail "cc-kbs policy set"
printf 'version = 1\ndefault = "maybe"\n' >"$d/bad.toml"
if "$KBS" --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/admin.key" policy set "$d/bad.toml" 2>"$d/cli.err"; then
        cc_fail "a bad policy was accepted by the CLI"
fi
grep -q 'default must be' "$d/cli.err" || cc_fail "bad policy error unclear: $(cat "$d/cli.err")"
# Put the built-in default back for the suite (sample denied), through the same API.
printf 'version = 1\n[[rule]]\nresources = ["*/*/*"]\ntee = ["sample"]\nallow = false\n[[rule]]\nresources = ["*/*/*"]\nallow = true\n' >"$d/default.toml"
"$KBS" --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/admin.key" policy set "$d/default.toml" \
        || cc_fail "cc-kbs policy set (default)"

$PY $CLIENT suite --url "$URL_main" --cacert "$d/tls.crt" --admin-key "$d/admin.key" \
        --other-key "$d/other.key" --snp-dir "$d/snp" --secret "$SECRET" \
        --session-timeout $SESSION --token-lifetime $TOKEN --idle-timeout 4 | tee "$d/suite.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || cc_fail "suite: $(grep -c '^not ok' "$d/suite.out") checks failed"
kill -0 "$PID_main" || cc_fail "cc-kbs died during the suite"
# Refusals are explained in the log (never to the client): a few of the suite's.
for why in "reported TCB microcode 115, the VCEK's 100" "snp report: signature does not verify with the VCEK" \
        "VCEK by ASK: issuer name does not match" "snp report: VMPL is not 0" \
        "nonce does not match the session's challenge" "tdx: quote verification is not implemented"; do
        grep -qF "$why" "$CC_TMP/main.log" || cc_fail "no log line explains: $why"
done
echo "ok - refusal reasons logged"

# Plain HTTP answers nothing on the HTTPS port.
host_port=${URL_main#https://}
if curl -s -m 5 "http://$host_port/kbs/v0/auth" -d '{}' >/dev/null 2>&1 && \
   curl -s -m 5 "http://$host_port/kbs/v0/auth" -d '{}' | grep -q nonce; then
        cc_fail "the HTTPS listener answered plain HTTP"
fi

# Second instance: plain HTTP only because configured; sample off; SNP with a configured VCEK.
cat >"$d/plain.toml" <<TOML
[http]
listen = "127.0.0.1:0"
insecure_http = true
[store]
path = "$d/plain.db"
[verifier.snp]
ark = "$d/snp/ark.pem"
ask = "$d/snp/ask.pem"
vcek = "$d/snp/vcek.pem"
[admin]
insecure_allow_all = true
TOML
start plain "$d/plain.toml"
"$KBS" --url "$URL_plain" resource set default/key/1 "$d/secret" || cc_fail "resource set (plain)"
got=$($PY $CLIENT snp-round --url "$URL_plain" --snp-dir "$d/snp") || cc_fail "snp round over HTTP: $got"
[ "$got" = "$SECRET" ] || cc_fail "snp round over HTTP returned '$got'"
echo "ok - plain HTTP instance: SNP round with a configured VCEK"
out=$(curl -s "$URL_plain/kbs/v0/auth" -d '{"version":"0.4.0","tee":"sample","extra-params":""}' -c "$d/jar")
nonce=$(printf '%s' "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["nonce"])')
body=$(curl -s -b "$d/jar" "$URL_plain/kbs/v0/attest" -d "{\"runtime-data\":{\"nonce\":\"$nonce\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":\"a\",\"y\":\"b\"}},\"tee-evidence\":{\"primary_evidence\":{\"svn\":\"1\",\"report_data\":\"\"},\"additional_evidence\":\"\"}}")
[ "$body" = '{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: RCAR handshake Attest failed"}' ] \
        || cc_fail "sample accepted although disabled: $body"
grep -q 'sample verifier is disabled' "$CC_TMP/plain.log" || cc_fail "the refusal's reason is not logged"
echo "ok - sample verifier off unless enabled"

# Configuration errors are named.
bad_config() { # expect-substring toml
        printf '%s\n' "$2" >"$d/badconf.toml"
        if "$KBS" serve --config "$d/badconf.toml" >"$d/badconf.log" 2>&1; then cc_fail "bad config accepted: $2"; fi
        grep -q -- "$1" "$d/badconf.log" || cc_fail "config error for '$2' unclear: $(cat "$d/badconf.log")"
}
bad_config "HTTPS needs http.tls_cert" '[store]
path = "/nonexistent/x.db"'
bad_config "unknown key 'http.listn'" '[http]
listn = "1"'
bad_config "TDX quote verification is not implemented" "[http]
insecure_http = true
[verifier.tdx]
enabled = true"
bad_config "ASK by ARK" "[http]
insecure_http = true
[store]
path = \"$d/x.db\"
[verifier.snp]
ark = \"$d/snp/ark.pem\"
ask = \"$d/snp/rogue/ask.pem\""
echo "ok - configuration errors named"

# No log line holds the secret (nor its base64).
b64=$(printf '%s' "$SECRET" | base64 -w0)
if grep -F -e "$SECRET" -e "$b64" "$CC_TMP"/main.log "$CC_TMP"/plain.log; then
        cc_fail "a resource's bytes appear in the log"
fi
echo "ok - logs never contain the resource"
grep -q 'msg=request method=GET path="/kbs/v0/resource/default/key/1" status=200' "$CC_TMP/main.log" \
        || grep -q 'msg=request.*status=200' "$CC_TMP/main.log" || cc_fail "no logfmt request lines"
# A clean stop, and nothing from the sanitizers (under SANITIZE=1) in either log.
cc_stop_pid "$PID_main"
cc_stop_pid "$PID_plain"
if grep -E 'Sanitizer|runtime error' "$CC_TMP"/main.log "$CC_TMP"/plain.log; then
        cc_fail "sanitizer reports in the cc-kbs logs"
fi
echo "kbs-rcar: all passed"
