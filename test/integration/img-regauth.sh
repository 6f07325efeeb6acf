#!/usr/bin/env bash
# Registry credentials (issue 13): the real registry (Debian's docker-registry) with htpasswd
# (bcrypt) Basic auth on loopback, pulled by cc-image-pull with a containers-auth.json, the
# document a KBS releases to the guest (the guest's own run is e2e-attest.sh):
#   - the right credentials: the image pulls;
#   - wrong credentials, and none: the pull fails naming the registry, the 401 and which of
#     the two it was; nothing is published to the store.
# The Bearer token flow with credentials is img-faults.sh's (a token server in front).
set -u
. "$(dirname "$0")/img-lib.sh"
command -v htpasswd >/dev/null || { echo "htpasswd not installed (apache2-utils)"; exit 77; }
img_setup

user=pod-$RANDOM pass=pw-$RANDOM-$RANDOM
htpasswd -cbB "$T/htpasswd" "$user" "$pass" 2>/dev/null || fail "htpasswd"
img_registry authreg "auth:
  htpasswd:
    realm: cc-test
    path: $T/htpasswd"
AREG=127.0.0.1:$REG_PORT
src=$T/src
mkdir -p "$src/etc"
echo "behind basic auth" >"$src/etc/motd"
img_build "$T/oci" v1 "$src"
skopeo copy -q --insecure-policy --dest-tls-verify=false --dest-creds "$user:$pass" "oci:$T/oci:v1" \
        "docker://$AREG/private/app:1" >"$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo copy"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$AREG/v2/private/app/manifests/1")
[ "$code" = 401 ] && echo "ok  the registry refuses an anonymous manifest GET (HTTP $code)" || fail "anonymous GET: $code"

authjson() { printf '{"auths":{"%s":{"auth":"%s"}}}' "$AREG" "$(printf %s "$1" | base64 -w0)" >"$2"; }
mkdir -p "$T/good" "$T/wrong" "$T/none" "$T/other" "$T/bad"
authjson "$user:$pass" "$T/good.json"
authjson "$user:wrong" "$T/wrong.json"
authjson "other:$pass" "$T/other-host.json"
sed -i "s/$AREG/127.0.0.1:1/" "$T/other-host.json"

"$PULL" --insecure --no-owners --authfile "$T/good.json" "$AREG/private/app:1" "$T/good" >"$T/out" 2>"$T/err" ||
        { cat "$T/err"; fail "pull with the right credentials"; }
[ "$(cat "$T/good/rootfs/etc/motd" 2>/dev/null || find "$T/good" -name motd -exec cat {} \; | head -n1)" = "behind basic auth" ] &&
        echo "ok  pull with the auth.json's credentials" || fail "pulled content: $(find "$T/good" | head)"

expect_fail "wrong credentials" "registry $AREG: HTTP 401 on GET http://$AREG/v2/private/app/manifests/1.*the credentials were refused" \
        "$PULL" --insecure --no-owners --authfile "$T/wrong.json" "$AREG/private/app:1" "$T/wrong"
assert_clean_store "$T/wrong/store"
expect_fail "no credentials" "registry $AREG: HTTP 401, it requires credentials \(Basic\) and the pull has none for this registry" \
        "$PULL" --insecure --no-owners "$AREG/private/app:1" "$T/none"
expect_fail "credentials for another registry only" "registry $AREG: HTTP 401.*has none" \
        "$PULL" --insecure --no-owners --authfile "$T/other-host.json" "$AREG/private/app:1" "$T/other"
echo '{"auths":{"'"$AREG"'":{"auth":"bm9jb2xvbg=="}}}' >"$T/bad.json"
expect_fail "an auth.json entry that is no user:password" "auth file '$T/bad.json': not a valid containers-auth.json document" \
        "$PULL" --insecure --no-owners --authfile "$T/bad.json" "$AREG/private/app:1" "$T/bad"
# A mirror is another host: it must not be sent the origin's credentials (neither auth.json's
# entry for the origin nor --creds, which belong to the image's registry). The fake mirror asks
# for Basic auth on every request and records any Authorization header; the pull falls back to
# the origin and succeeds there.
python3 - "$T/mirror.port" "$T/mirror.log" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            f.write("%s auth=%s\n" % (self.path, self.headers.get("Authorization", "-")))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_HEAD = do_GET
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
mirror_pid=$!
for _ in $(seq 100); do [ -s "$T/mirror.port" ] && break; sleep 0.1; done
MIRROR=127.0.0.1:$(cat "$T/mirror.port")
mkdir -p "$T/via-mirror" "$T/via-mirror-creds"
"$PULL" --insecure --no-owners --retries 1 --mirror "$MIRROR" --authfile "$T/good.json" "$AREG/private/app:1" \
        "$T/via-mirror" >"$T/out" 2>"$T/err" || { cat "$T/err"; kill "$mirror_pid"; fail "pull with a mirror that refuses"; }
"$PULL" --insecure --no-owners --retries 1 --mirror "$MIRROR" --creds "$user:$pass" "$AREG/private/app:1" \
        "$T/via-mirror-creds" >"$T/out" 2>"$T/err" || { cat "$T/err"; kill "$mirror_pid"; fail "pull with --creds and a mirror"; }
kill "$mirror_pid"; wait "$mirror_pid" 2>/dev/null
[ -s "$T/mirror.log" ] || fail "the pull never asked the mirror"
grep -v "auth=-$" "$T/mirror.log" && fail "the mirror was sent credentials (above)"
echo "ok  the mirror was asked $(wc -l <"$T/mirror.log") times and sent no credentials; the origin served the pull"
grep -rqF "$pass" "$T/good/store" "$T/none" "$T/other" 2>/dev/null && fail "the password is in a store"
echo "PASS img-regauth"
