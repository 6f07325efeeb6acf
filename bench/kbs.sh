#!/usr/bin/env bash
# cc-kbs under load on loopback (HTTPS, sample TEE, EC P-256 keys): KBS_N sequential
# attest+resource rounds from one client, then KBS_N rounds spread over KBS_C concurrent clients
# (threads of test/tools/kbs-client.py, each round a fresh auth + attest + GET + JWE decrypt,
# one TLS connection per request as the reference client's pool may do). Prints latency
# percentiles and errors; there is no peer to compare with on this machine (no Trustee).
set -eu
BUILD=${BUILD:-build}
N=${KBS_N:-500}
C=${KBS_C:-50}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/cc-kbs-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
cat >"$T/kbs.toml" <<TOML
[http]
listen = "127.0.0.1:0"
tls_cert = "$T/tls.crt"
tls_key = "$T/tls.key"
max_connections = 1024
[store]
path = "$T/kbs.db"
[verifier.sample]
enabled = true
[admin]
insecure_allow_all = true
[log]
level = "warn"
TOML
"$BUILD/cc-kbs" serve --config "$T/kbs.toml" 2>"$T/kbs.log" &
pid=$!
# The "listening" line is info, below the warn level: read the port from the socket table.
url=
for _ in $(seq 100); do
        port=$(ss -Htlnp 2>/dev/null | awk -v p="pid=$pid," '$0 ~ p {split($4, a, ":"); print a[2]; exit}')
        [ -n "$port" ] && url=https://127.0.0.1:$port && break
        sleep 0.1
done
[ -n "$url" ] || { echo "cc-kbs did not start"; cat "$T/kbs.log"; exit 1; }
head -c 32 /dev/urandom >"$T/kek"
"$BUILD/cc-kbs" --url "$url" --cacert "$T/tls.crt" resource set default/key/1 "$T/kek" >/dev/null
printf 'version = 1\n[[rule]]\nresources = ["*/*/*"]\nallow = true\n' >"$T/allow.toml"
"$BUILD/cc-kbs" --url "$url" --cacert "$T/tls.crt" policy set "$T/allow.toml" >/dev/null
echo "sequential: $($PY test/tools/kbs-client.py rounds --url "$url" --cacert "$T/tls.crt" -n "$N" -c 1)"
echo "concurrent: $($PY test/tools/kbs-client.py rounds --url "$url" --cacert "$T/tls.crt" -n "$N" -c "$C")"
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "cc-kbs peak RSS: ${rss} kB; warnings logged: $(grep -c 'level=warn' "$T/kbs.log" || true)"
