#!/usr/bin/python3
# The token server of test/integration/img-faults.sh (RS256 JWTs for the registry's `auth: token`):
# registry-token-server.py PORT KEY CERT LOG
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
