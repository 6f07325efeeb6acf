#!/usr/bin/python3
# Raw ttrpc requests to the agent over the VM's serial channel (a unix socket that never closes) that
# ctl cannot send. Used by test/integration/agent-hostile-vm.sh: agent-raw-ttrpc-serial.py SOCKET MODE
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
def rvarint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i
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
def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data
def request(stream, service, method, payload):
    body = field(1, service.encode()) + field(2, method.encode()) + field(3, payload)
    return struct.pack(">IIBB", len(body), stream, 1, 0) + body
def status(body):
    st = fields(fields(body).get(1, b""))
    return st.get(1, 0), st.get(2, b"").decode(errors="replace")
s = socket.socket(socket.AF_UNIX)
s.connect(path)
def frames(quiet):
    # The serial channel does not close: read until `quiet` seconds pass without a byte.
    s.settimeout(quiet)
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    out = []
    while len(buf) >= 10:
        n, sid, t, _ = struct.unpack(">IIBB", buf[:10])
        out.append((sid, buf[10:10 + n]))
        buf = buf[10 + n:]
    return out
if mode == "nul-id":
    s.sendall(request(1, "grpc.AgentService", "CreateContainer", field(1, b"c1\x00x")))
    for sid, body in frames(20):
        print(sid, *status(body))
        break
elif mode == "big-frame":
    fake = request(7, "grpc.Health", "Check", b"") * 4
    payload = (fake * (5 * 1024 * 1024 // len(fake) + 1))[:5 * 1024 * 1024]
    s.sendall(struct.pack(">IIBB", len(payload), 1, 1, 0) + payload)
    got = frames(10)
    print("frames", len(got), "streams", ",".join(str(sid) for sid, _ in got),
          *(status(got[0][1]) if got else ()))
