#!/usr/bin/env bash
# The registry client against an unfriendly front: a small proxy (python, loopback) in front of
# the real registry that adds token auth (anonymous and with credentials), Basic auth, blob
# redirects to another port (which must not receive our Authorization header), a 429 with
# Retry-After, a blob transfer that breaks half-way (resumed with Range) and one that stalls
# (stall timeout, then Range). Then the real registry in token-auth mode (`auth: token`) with a
# small token server signing RS256 JWTs: a pull without and with credentials.
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup


# A two-layer image with incompressible 3 MiB layers.
img_tar "$T/a.tar" 'import os; add("a", os.urandom(3 << 20))'
img_tar "$T/b.tar" 'import os; add("b", os.urandom(3 << 20)); add("c", b"small")'
img_mkimage "$T/oci" v1 gzip:"$T/a.tar" gzip:"$T/b.tar"
img_push_raw "$T/oci" v1 faults/img:v1
umoci_rootfs "$T/oci" v1 "$T/ref"

PROXY_PID=
proxy() { # modes
        [ -n "$PROXY_PID" ] && { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null; }
        FRONT=$(free_port)
        OBJ=$(free_port)
        : >"$T/proxy.log"
        python3 test/tools/registry-fault-proxy.py "$REG" "$FRONT" "$OBJ" "$T/proxy.log" "$1" 2>>"$T/proxy.err" &
        PROXY_PID=$!
        PIDS+=($PROXY_PID)
        for _ in $(seq 1 50); do
                curl -s -o /dev/null "http://127.0.0.1:$FRONT/v2/" && return 0
                sleep 0.1
        done
        cat "$T/proxy.err"; fail "proxy did not start"
}

pull() { # desc [options]
        local desc=$1 out=$T/pull-$RANDOM
        shift
        mkdir -p "$out"
        "$PULL" --insecure "$@" "127.0.0.1:$FRONT/faults/img:v1" "$out" >"$T/log" 2>&1 ||
                { cat "$T/log" "$T/proxy.log"; fail "$desc"; }
        img_compare "$out" "$T/ref/rootfs" >/dev/null
        echo "ok  $desc"
}

proxy bearer
mkdir -p "$T/pull-x"
pull "anonymous bearer token"
grep -q 'TOKEN /token?service=test-registry&scope=repository%3Afaults%2Fimg%3Apull auth=False' "$T/proxy.log" ||
        { cat "$T/proxy.log"; fail "token request not as expected"; }

proxy bearer-creds
expect_fail "token server refuses anonymous" "token server .*: HTTP 401, it wants credentials and the pull has none" \
        "$PULL" --insecure "127.0.0.1:$FRONT/faults/img:v1" "$T/pull-x"
pull "bearer token with credentials" --creds user:pass
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}' "$FRONT" "$(printf user:pass | base64)" >"$T/auth.json"
pull "bearer token with credentials from an auth file" --authfile "$T/auth.json"

proxy basic
expect_fail "Basic auth without credentials" "requires credentials \(Basic\)" \
        "$PULL" --insecure "127.0.0.1:$FRONT/faults/img:v1" "$T/pull-x"
pull "Basic auth" --creds user:pass

proxy bearer-creds,redirect
pull "blobs redirected to another host:port" --creds user:pass
grep -q '^OBJ' "$T/proxy.log" || fail "no request reached the redirect target"
grep -q '^OBJ auth=True' "$T/proxy.log" && fail "Authorization header leaked to the redirect target"
echo "ok  no Authorization header sent across the redirect"

proxy baddigest
expect_fail "Docker-Content-Digest differs from the body" "Docker-Content-Digest sha256:0{64}, body is" \
        "$PULL" --insecure "127.0.0.1:$FRONT/faults/img:v1" "$T/pull-x"

proxy 429
start=$(date +%s%N)
pull "429 with Retry-After"
el=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q '^429' "$T/proxy.log" || fail "no 429 served"
[ "$el" -ge 1000 ] || fail "Retry-After: 1 not honoured (${el} ms)"
echo "ok  Retry-After honoured (${el} ms)"

proxy break
pull "blob transfer broken half-way"
grep -q '^CUT break' "$T/proxy.log" && grep -Eq '^RANGE bytes=[1-9][0-9]*-' "$T/proxy.log" ||
        { cat "$T/proxy.log"; fail "no Range resume after a broken transfer"; }
echo "ok  resumed with $(grep -m1 '^RANGE' "$T/proxy.log")"

proxy stall
start=$(date +%s%N)
pull "blob transfer stalls" --stall-timeout 1000
el=$(( ($(date +%s%N) - start) / 1000000 ))
grep -Eq '^RANGE bytes=[1-9][0-9]*-' "$T/proxy.log" || { cat "$T/proxy.log"; fail "no Range resume after a stall"; }
[ "$el" -lt 5500 ] || fail "stall timeout did not fire (${el} ms)"
echo "ok  stall detected and resumed in ${el} ms"
# ---- the real registry in token-auth mode, with a tiny token server signing RS256 JWTs ----
# (distribution verifies issuer, audience, expiry and the x5c certificate against its bundle)
command -v openssl >/dev/null || { echo "openssl not installed"; exit 77; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=token-signer \
        -keyout "$T/tok.key" -out "$T/tok.pem" 2>/dev/null
TOKPORT=$(free_port)
: >"$T/token.log"
python3 test/tools/registry-token-server.py "$TOKPORT" "$T/tok.key" "$T/tok.pem" "$T/token.log" 2>"$T/token.err" &
PIDS+=($!)
img_registry tokreg "auth:
  token:
    realm: http://127.0.0.1:$TOKPORT/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $T/tok.pem"
TOKREG=127.0.0.1:$REG_PORT
wait_port "$TOKPORT" /token
# The token server grants pull only: seed the registry's storage from the open registry's.
cp -a "$T/registry/data/." "$T/tokreg/data/"
mkdir -p "$T/pull-tok"
expect_fail "token-auth registry, no credentials" "token server .*: HTTP 401, it wants credentials and the pull has none" \
        "$PULL" --insecure "$TOKREG/faults/img:v1" "$T/pull-tok"
pull_at() { # desc host [options]
        local desc=$1 host=$2 out=$T/pull-$RANDOM
        shift 2
        mkdir -p "$out"
        "$PULL" --insecure "$@" "$host/faults/img:v1" "$out" >"$T/log" 2>&1 ||
                { cat "$T/log" "$T/token.log" "$T/tokreg/log"; fail "$desc"; }
        img_compare "$out" "$T/ref/rootfs" >/dev/null
        echo "ok  $desc"
}
pull_at "real registry with token auth, credentials" "$TOKREG" --creds user:pass
grep -q "TOKEN scope=\['repository:faults/img:pull'\] auth=True" "$T/token.log" ||
        { cat "$T/token.log"; fail "token request not as expected"; }
echo "all registry fault checks passed"
