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

cat >"$T/proxy.py" <<'PY'
import base64, http.server, json, socketserver, sys, threading, time, urllib.request, urllib.error
up, front, obj, log, modes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].split(",")
TOKEN = "tok-123"
CREDS = "Basic " + base64.b64encode(b"user:pass").decode()
state = {"429": 0, "broken": set()}
lock = threading.Lock()
def note(s):
    with lock:
        open(log, "a").write(s + "\n")

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body=b"", headers={}):
        self.send_response(code)
        for k, v in headers.items(): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def upstream(self):
        h = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        try:
            return urllib.request.urlopen(urllib.request.Request("http://" + up + self.path, headers=h))
        except urllib.error.HTTPError as e:
            return e
    def relay(self, r, cut=None):
        body = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k in ("Content-Type", "Docker-Content-Digest", "Content-Range", "Accept-Ranges"):
            v = r.headers.get(k)
            if v and k == "Docker-Content-Digest" and "baddigest" in modes: v = "sha256:" + "0" * 64
            if v: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:len(body) // 2]); self.wfile.flush()
        if cut == "stall": time.sleep(6)
        self.close_connection = True
        self.connection.shutdown(2)

class Front(H):
    def do_GET(self):
        auth = self.headers.get("Authorization")
        if self.path.startswith("/token"):
            note("TOKEN " + self.path + " auth=" + str(auth is not None))
            if "bearer-creds" in modes and auth != CREDS:
                return self.send(401, b'{"details":"bad credentials"}')
            return self.send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                             {"Content-Type": "application/json"})
        if "bearer" in modes or "bearer-creds" in modes:
            if auth != "Bearer " + TOKEN:
                repo = "/".join(self.path.split("/")[2:4])
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}', {
                    "WWW-Authenticate": 'Bearer realm="http://127.0.0.1:%d/token",service="test-registry",scope="repository:%s:pull"' % (front, repo)})
        if "basic" in modes and auth != CREDS:
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"basic"}]}',
                             {"WWW-Authenticate": 'Basic realm="test"'})
        if "/manifests/" in self.path and "429" in modes:
            with lock:
                state["429"] += 1
                first = state["429"] == 1
            if first:
                note("429")
                return self.send(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', {"Retry-After": "1"})
        if "/blobs/" in self.path and "redirect" in modes:
            return self.send(307, b"", {"Location": "http://127.0.0.1:%d%s" % (obj, self.path)})
        self.blob_or_relay()
    def blob_or_relay(self):
        if self.headers.get("Range"): note("RANGE " + self.headers["Range"])
        cut = None
        if "/blobs/" in self.path:
            for m in ("break", "stall"):
                if m in modes and self.path not in state["broken"]:
                    r = self.upstream()
                    if int(r.headers.get("Content-Length", "0")) > 100000:
                        with lock: state["broken"].add(self.path)
                        note("CUT " + m)
                        return self.relay(r, m)
                    return self.relay(r)
        self.relay(self.upstream())

class Obj(Front):
    def do_GET(self):
        note("OBJ auth=" + str(self.headers.get("Authorization") is not None))
        self.blob_or_relay()

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
s1 = S(("127.0.0.1", front), Front)
s2 = S(("127.0.0.1", obj), Obj)
threading.Thread(target=s2.serve_forever, daemon=True).start()
s1.serve_forever()
PY

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
        python3 "$T/proxy.py" "$REG" "$FRONT" "$OBJ" "$T/proxy.log" "$1" 2>>"$T/proxy.err" &
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
cat >"$T/token.py" <<'PY'
import base64, http.server, json, subprocess, sys, time, urllib.parse
port, key, cert, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], stdout=subprocess.PIPE, check=True).stdout
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=")
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization")
        open(log, "a").write("TOKEN scope=%s auth=%s\n" % (q.get("scope"), auth is not None))
        if auth != "Basic " + base64.b64encode(b"user:pass").decode():
            self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
        access = []
        for sc in q.get("scope", []):
            t, name, actions = sc.split(":")
            access.append({"type": t, "name": name, "actions": [a for a in actions.split(",") if a == "pull"]})
        now = int(time.time())
        hdr = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "test-issuer", "sub": "user", "aud": q["service"][0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(now), "access": access}
        signing = b64u(json.dumps(hdr).encode()) + b"." + b64u(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                             stdout=subprocess.PIPE, check=True).stdout
        body = json.dumps({"token": (signing + b"." + b64u(sig)).decode(), "expires_in": 300}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
: >"$T/token.log"
python3 "$T/token.py" "$TOKPORT" "$T/tok.key" "$T/tok.pem" "$T/token.log" 2>"$T/token.err" &
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
