#!/usr/bin/env bash
# The guest's KBS client (cc-kbc, the library the pull helper links) against a hostile KBS: a
# small HTTP server on loopback that answers each path prefix in one bad way. Every failure
# must name the KBS URL and the step, and end within the client's time bound:
#   - a KBS that accepts and never answers (one bound for the step, retries included);
#   - an answer larger than the client's limit; a challenge without a nonce; a session cookie
#     with bytes a cookie may not hold; an attest answer without a token;
#   - a resource whose JWE was not made for the TEE key (the tag cannot verify); an error body
#     with a huge detail (cut, not echoed whole).
# Binding a wrong nonce is the KBS's check (kbs-rcar.sh, cc-kbs's verifier); the JWE's test
# vectors and a flipped tag are in test/unit/test-kbc.c.
set -u
. "$(dirname "$0")/lib.sh"
trap cc_cleanup EXIT
KBC=$BUILD/cc-kbc
[ -x "$KBC" ] || cc_fail "$KBC not built"
command -v python3 >/dev/null || cc_skip "needs python3"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

cat >"$CC_TMP/hostile.py" <<'PY'
import base64, http.server, json, socketserver, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body, cookie=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cookie: self.send_header("Set-Cookie", "kbs-session-id=%s; Path=/" % cookie)
        self.end_headers()
        self.wfile.write(body)
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        mode, step = self.path.split("/")[1], self.path.split("/kbs/v0/")[-1].split("/")[0]
        nonce = base64.b64encode(bytes(32)).decode()
        chal = json.dumps({"nonce": nonce, "extra-params": ""}).encode()
        token = "e30." + base64.urlsafe_b64encode(b'{"exp":4102444800}').decode().rstrip("=") + ".c2ln"
        if mode == "hang":
            time.sleep(30); return
        if mode == "big" and step == "auth":
            return self.reply(200, b" " * (5 << 20))
        if mode == "nononce" and step == "auth":
            return self.reply(200, b'{"extra-params":""}', "abc")
        if mode == "badcookie" and step == "auth":
            return self.reply(200, chal, "ab%cd")
        if step == "auth":
            return self.reply(200, chal, "0123456789abcdef")
        if mode == "notoken" and step == "attest":
            return self.reply(200, b'{"tok":"x"}', "0123456789abcdef")
        if step == "attest":
            return self.reply(200, json.dumps({"token": token}).encode(), "0123456789abcdef")
        if mode == "badjwe" and step == "resource":
            # A well-formed JWE for some other key: ECDH-ES+A256KW with a foreign epk.
            hdr = base64.urlsafe_b64encode(json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "epk": {"kty": "EC", "crv": "P-256",
                  "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0", "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}}).encode()).decode().rstrip("=")
            b = lambda n: base64.urlsafe_b64encode(bytes(n)).decode().rstrip("=")
            return self.reply(200, json.dumps({"protected": hdr, "encrypted_key": b(40), "iv": b(12), "ciphertext": b(16), "tag": b(16)}).encode())
        if mode == "bigerror" and step == "resource":
            return self.reply(401, json.dumps({"type": "https://github.com/confidential-containers/kbs/errors/PolicyDeny", "detail": "x" * 100000}).encode())
        return self.reply(404, b"{}")
    do_GET = do_POST = handle_one
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$CC_TMP/hostile.py" >"$CC_TMP/port" 2>"$CC_TMP/hostile.err" &
CC_PIDS+=($!)
cc_wait_for 10 test -s "$CC_TMP/port" || cc_fail "hostile KBS did not start"
base=http://127.0.0.1:$(cat "$CC_TMP/port")
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# expect MODE PATTERN [cc-kbc options]: the fetch fails, stderr matches, the time is printed.
expect() {
        local mode=$1 pat=$2 t0 t1
        shift 2
        t0=$(now_ms)
        if "$KBC" --url "$base/$mode" --sample-in-tee "$@" get kbs:///default/key/1 "$CC_TMP/out" 2>"$CC_TMP/err"; then
                fail "$mode: succeeded"
                return
        fi
        t1=$(now_ms)
        if grep -q "KBS $base/$mode: $pat" "$CC_TMP/err"; then
                ok "$mode: after $((t1 - t0)) ms: $(head -c 300 "$CC_TMP/err")"
        else
                fail "$mode: $(head -c 400 "$CC_TMP/err")"
        fi
        grep -q Sanitizer "$CC_TMP/err" && fail "$mode: sanitizer report"
}
expect hang "auth: POST auth: Operation timed out" --timeout-ms 2000
expect big "auth: the answer is larger than 4194304 bytes"
expect nononce "auth: the challenge has no nonce"
expect badcookie "auth: \(no kbs-session-id cookie\|a malformed session cookie\)"
expect notoken "attest: the answer has no token"
expect badjwe "resource default/key/1: .*"
expect bigerror "resource default/key/1: HTTP 401 PolicyDeny: x*"
len=$(wc -c <"$CC_TMP/err")
[ "$len" -lt 2048 ] && ok "a 100 kB error detail is cut: $len bytes of message" || fail "error message of $len bytes"
[ "$fails" -eq 0 ] || exit 1
echo "kbc-hostile: all checks passed"
