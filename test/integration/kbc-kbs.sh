#!/usr/bin/env bash
# The guest's KBS client (guest-agent/attest, through cc-kbc) against the development KBS
# (kbs/, cc-kbs) on loopback, both written from ../shared/reference/attestation-kbs.md by
# different hands (cc-kbs is also checked against an independent Python client in kbs-rcar.sh):
#   - sample attestation over HTTPS with the KBS's certificate, EC P-256 and RSA-OAEP-256 TEE
#     keys: the resource arrives decrypted, byte for byte;
#   - one attestation serves several resources while the session lasts; after the KBS's
#     session expired the client attests again by itself;
#   - initdata sent with the attestation: a policy rule on its digest allows, another digest
#     is refused, and the refusal names the KBS, the step, PolicyDeny and its detail;
#   - a missing resource, a wrong CA, a KBS that is down, plain HTTP to an HTTPS KBS: clear
#     errors, bounded in time.
set -u
. "$(dirname "$0")/lib.sh"
trap cc_cleanup EXIT
KBS=$BUILD/cc-kbs
KBC=$BUILD/cc-kbc
for b in "$KBS" "$KBC"; do [ -x "$b" ] || cc_fail "$b not built"; done
command -v openssl >/dev/null || cc_skip "needs openssl"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

d=$CC_TMP
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$d/tls.key" -out "$d/tls.crt" 2>/dev/null || cc_fail "openssl req"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$d/other.key" -out "$d/other.crt" 2>/dev/null || cc_fail "openssl req"
openssl genpkey -algorithm ed25519 -out "$d/admin.key" 2>/dev/null
openssl pkey -in "$d/admin.key" -pubout -out "$d/admin.pub" 2>/dev/null

# The initdata the pod owner wrote (the reference's V12) and its sha384.
cat >"$d/initdata.toml" <<'TOML'
version = "0.1.0"
algorithm = "sha384"

[data]
"aa.toml" = '''
[token_configs]
[token_configs.kbs]
url = "http://10.0.2.2:8080"
'''

"cdh.toml" = '''
socket = "unix:///run/confidential-containers/cdh.sock"
[kbc]
name = "cc_kbc"
url = "http://10.0.2.2:8080"
'''
TOML
DIGEST=$("$KBC" initdata "$d/initdata.toml" | sed -n 's/^digest //p')
[ "$DIGEST" = ee8a5bcc957baba82b806bdf5070baa38682389e7d008207b45c7ce50ab8999be244c2129710a460959f902e2f9bea75 ] &&
        ok "initdata digest (V12): $DIGEST" || fail "initdata digest '$DIGEST'"

cat >"$d/kbs.toml" <<TOML
[http]
listen = "127.0.0.1:0"
tls_cert = "$d/tls.crt"
tls_key = "$d/tls.key"
[session]
timeout_s = 3
[token]
lifetime_s = 3
[store]
path = "$d/kbs.db"
[verifier.sample]
enabled = true
[admin]
public_key = "$d/admin.pub"
TOML
cc_bg kbs "$KBS" serve --config "$d/kbs.toml"
URL=""
for _ in $(seq 100); do
        URL=$(sed -n 's/.*msg=listening.*address=\([0-9.:]*\) scheme=\([a-z]*\).*/\2:\/\/\1/p' "$CC_TMP/kbs.log")
        [ -n "$URL" ] && break
        sleep 0.1
done
[ -n "$URL" ] || cc_fail "cc-kbs did not start: $(cat "$CC_TMP/kbs.log")"
admin() { "$KBS" --url "$URL" --cacert "$d/tls.crt" --admin-key "$d/admin.key" "$@"; }
head -c 32 /dev/urandom >"$d/kek"
printf 'registry credentials %s' "$RANDOM" >"$d/auth"
admin resource set default/image-kek/test1 "$d/kek" >/dev/null || cc_fail "resource set"
admin resource set default/credential/auth "$d/auth" >/dev/null || cc_fail "resource set"
cat >"$d/policy.toml" <<TOML
version = 1
default = "deny"
[[rule]]
resources = ["default/credential/*"]
tee = ["sample"]
init_data = ["$DIGEST"]
allow = true
[[rule]]
resources = ["default/image-kek/*"]
tee = ["sample"]
allow = true
TOML
admin policy set "$d/policy.toml" >/dev/null || cc_fail "policy set"

kbc() { "$KBC" --url "$URL" --cert "$d/tls.crt" --sample-in-tee "$@"; }

# 1. EC and RSA TEE keys: the bytes arrive.
for key in ec rsa; do
        extra=()
        [ $key = rsa ] && extra=(--rsa)
        if kbc "${extra[@]}" get kbs:///default/image-kek/test1 "$d/got-$key" 2>"$d/err-$key" &&
                cmp -s "$d/kek" "$d/got-$key"; then
                ok "$key TEE key: the 32-byte KEK arrived over HTTPS ($(tail -n1 "$d/err-$key"))"
        else
                fail "$key: $(cat "$d/err-$key")"
        fi
done

# 2. One attestation for several resources; a new one after the session expired (3 s).
kbc --repeat 3 get kbs:///default/image-kek/test1 "$d/got" 2>"$d/rep" >/dev/null
n=$(grep -c 'attestations=1 ' "$d/rep")
[ "$n" = 3 ] && ok "three fetches, one attestation" || fail "repeat: $(cat "$d/rep")"
# Attesting ahead (the spare pull helper's way, then kbc_jwe_warm): the fetch after it finds the
# session and attests no more; the bytes still arrive.
if kbc --early get kbs:///default/image-kek/test1 "$d/got-early" 2>"$d/early" &&
        cmp -s "$d/kek" "$d/got-early" && grep -q '^early: auth_ms=' "$d/early" &&
        tail -n1 "$d/early" | grep -q 'attestations=1 auth_ms=0.0 attest_ms=0.0 '; then
        ok "attested ahead, then fetched without attesting: $(tr '\n' ' ' <"$d/early")"
else
        fail "early: $(cat "$d/early")"
fi
kbc --repeat 2 --pause-ms 3500 get kbs:///default/image-kek/test1 "$d/got" 2>"$d/exp" >/dev/null
if [ $? -eq 0 ] && tail -n1 "$d/exp" | grep -q 'attestations=2 '; then
        ok "after the KBS's session expired the client attested again: $(tail -n1 "$d/exp")"
else
        fail "expiry: $(cat "$d/exp")"
fi

# 3. initdata: the policy allows the credential only to the pod whose initdata digest it names.
if kbc --initdata "$d/initdata.toml" get kbs:///default/credential/auth "$d/got-auth" 2>"$d/err" &&
        cmp -s "$d/auth" "$d/got-auth"; then
        ok "initdata sent with the attestation: the credential released"
else
        fail "initdata: $(cat "$d/err")"
fi
sed 's|8080"|8081"|' "$d/initdata.toml" >"$d/initdata-other.toml"
if kbc --initdata "$d/initdata-other.toml" get kbs:///default/credential/auth "$d/x" 2>"$d/err"; then
        fail "another initdata got the credential"
elif grep -q "KBS $URL: resource default/credential/auth: HTTP 401 PolicyDeny: Access denied by policy" "$d/err"; then
        ok "other initdata refused: $(cat "$d/err")"
else
        fail "other initdata: $(cat "$d/err")"
fi
kbc get kbs:///default/credential/auth "$d/x" 2>"$d/err" && fail "no initdata got the credential" ||
        ok "no initdata refused: $(cut -c1-160 "$d/err")"

# 4. Errors: a missing resource, a bad URI, the wrong CA, HTTP to HTTPS, a KBS that is down.
kbc get kbs:///default/image-kek/nosuch "$d/x" 2>"$d/err" && fail "missing resource" ||
        { grep -q "HTTP 401 PluginInternalError" "$d/err" && ok "missing resource: $(cat "$d/err")" || fail "missing: $(cat "$d/err")"; }
kbc get kbs:///default/../x "$d/x" 2>"$d/err" && fail "bad URI accepted" ||
        { grep -q "is not kbs:///<repo>/<type>/<tag>" "$d/err" && ok "bad URI: $(cat "$d/err")" || fail "bad URI: $(cat "$d/err")"; }
"$KBC" --url "$URL" --cert "$d/other.crt" --sample-in-tee get kbs:///default/image-kek/test1 "$d/x" 2>"$d/err" &&
        fail "wrong CA accepted" || { grep -q "KBS $URL: auth:" "$d/err" && ok "wrong CA: $(cut -c1-200 "$d/err")" || fail "wrong CA: $(cat "$d/err")"; }
kbc2=("$KBC" --url "${URL/https/http}" --sample-in-tee)
"${kbc2[@]}" get kbs:///default/image-kek/test1 "$d/x" 2>"$d/err" && fail "plain HTTP to HTTPS" ||
        ok "plain HTTP to the HTTPS KBS: $(cut -c1-200 "$d/err")"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s%N)
"$KBC" --url "https://127.0.0.1:$port" --sample-in-tee get kbs:///default/image-kek/test1 "$d/x" 2>"$d/err" &&
        fail "KBS down: succeeded"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "KBS https://127.0.0.1:$port: auth: POST auth: .*Connection refused\|Could not connect\|Failed to connect" "$d/err" &&
        ok "KBS down: after $ms ms (3 tries): $(cat "$d/err")" || fail "KBS down: $(cat "$d/err")"
# No secret in the KBS's log.
grep -qF "$(cat "$d/auth")" "$CC_TMP/kbs.log" && fail "the KBS logged a resource" || ok "no resource bytes in the KBS log"

[ "$fails" -eq 0 ] || { echo "--- cc-kbs log"; tail -n 30 "$CC_TMP/kbs.log"; echo "$fails check(s) failed"; exit 1; }
echo "kbc-kbs: all checks passed"
