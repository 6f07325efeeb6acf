#!/usr/bin/python3
# The unfriendly registry front of test/integration/img-faults.sh (token and Basic auth, redirects,
# 429, broken and stalled transfers): registry-fault-proxy.py UPSTREAM FRONT_PORT OBJ_PORT LOG MODES
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
