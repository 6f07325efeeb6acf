#!/usr/bin/env python3
"""A registry front that speaks the simple-signing API extension, for tests.

docker-registry 2.8 does not implement X-Registry-Supports-Signatures (the OpenShift registry
does). This forwards GET/HEAD requests to a real registry, adds
`X-Registry-Supports-Signatures: 1` to its /v2/ answer, and answers
GET /extensions/v2/<repo>/signatures/<algo>:<hex> from a lookaside-style directory
(<dir>/<repo>@<algo>=<hex>/signature-<n>) as
{"signatures":[{"schemaVersion":2,"name":"<digest>@<n>","type":"atomic","content":"<b64>"}]}.
The same directory is also an HTTP lookaside at /lookaside/... (404 for a missing file), and
/broken/... answers 500 (a failing signature store).

usage: xrss-proxy.py LISTEN_PORT UPSTREAM_HOST:PORT SIGNATURE_DIR
Prints "ready" once listening; runs until killed.
"""
import base64
import http.server
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

EXT = re.compile(r"^/extensions/v2/(.+)/signatures/([a-z0-9]+):([a-f0-9]+)$")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def signatures(self, repo, algo, hexd):
        d = os.path.join(self.server.sigdir, f"{repo}@{algo}={hexd}")
        out, n = [], 1
        while os.path.exists(os.path.join(d, f"signature-{n}")):
            with open(os.path.join(d, f"signature-{n}"), "rb") as f:
                out.append({"schemaVersion": 2, "name": f"{algo}:{hexd}@{n:032x}",
                            "type": "atomic", "content": base64.b64encode(f.read()).decode()})
            n += 1
        body = json.dumps({"signatures": out}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, head):
        m = EXT.match(self.path)
        if m and not head:
            return self.signatures(*m.groups())
        if self.path.startswith("/broken/"):
            self.send_error(500)
            return
        if self.path.startswith("/lookaside/"):
            rel = urllib.parse.unquote(self.path[len("/lookaside/"):])
            p = os.path.normpath(os.path.join(self.server.sigdir, rel))
            if not p.startswith(self.server.sigdir + "/") or not os.path.isfile(p):
                self.send_error(404)
                return
            with open(p, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        hdrs = {k: ", ".join(self.headers.get_all(k)) for k in ("Accept", "Authorization")
                if self.headers.get_all(k)}
        req = urllib.request.Request(f"http://{self.server.upstream}{self.path}", headers=hdrs,
                                     method="HEAD" if head else "GET")
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k, v in r.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/v2/":
            self.send_header("X-Registry-Supports-Signatures", "1")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self):
        self.forward(False)

    def do_HEAD(self):
        self.forward(True)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.upstream, srv.sigdir = sys.argv[2], os.path.realpath(sys.argv[3])
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
