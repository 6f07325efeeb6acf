#!/usr/bin/python3
# Raw ttrpc requests to the agent's unix socket that ctl cannot send (a NUL inside an id, broken frames).
# Used by test/integration/agent-hostile.sh: agent-raw-ttrpc.py SOCKET MODE
import socket, struct, sys
path, mode = sys.argv[1], sys.argv[2]
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data
def request(stream, service, method, payload):
    body = field(1, service.encode()) + field(2, method.encode()) + field(3, payload)
    return struct.pack(">IIBB", len(body), stream, 1, 0) + body
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.settimeout(10)
def frames():
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            break
        buf += d
    out = []
    while len(buf) >= 10:
        n, sid, t, _ = struct.unpack(">IIBB", buf[:10])
        out.append((sid, buf[10:10 + n]))
        buf = buf[10 + n:]
    return out
def fields(b):
    i, out = 0, {}
    while i < len(b):
        tag, i = rvarint(b, i)
        if tag & 7 == 0:
            v, i = rvarint(b, i)
        elif tag & 7 == 2:
            n, i = rvarint(b, i)
            v, i = b[i:i + n], i + n
        else:
            break
        out.setdefault(tag >> 3, v)
    return out
def rvarint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i
def status(body):
    # Response.status (field 1) -> Status.code (field 1) and message (field 2).
    st = fields(fields(body).get(1, b""))
    return st.get(1, 0), st.get(2, b"").decode(errors="replace")
if mode == "nul-id":
    s.sendall(request(1, "grpc.AgentService", "CreateContainer", field(1, b"c1\x00x")))
    s.shutdown(socket.SHUT_WR)
    for sid, body in frames():
        print(sid, *status(body))
elif mode == "bad-id":
    s.sendall(request(1, "grpc.AgentService", "StartContainer", field(1, b"c1/../x")))
    s.shutdown(socket.SHUT_WR)
    for sid, body in frames():
        print(sid, *status(body))
elif mode == "big-frame":
    fake = request(7, "grpc.Health", "Check", b"") * 4
    payload = (fake * (5 * 1024 * 1024 // len(fake) + 1))[:5 * 1024 * 1024]
    try:
        s.sendall(struct.pack(">IIBB", len(payload), 5, 1, 0) + payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = frames()
    print("frames", len(got), "streams", ",".join(str(sid) for sid, _ in got),
          *(status(got[0][1]) if got else ()))
