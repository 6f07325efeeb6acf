#!/usr/bin/python3
# Raw ttrpc requests to the agent's unix socket that ctl cannot send (a NUL inside an id, broken frames).
# Used by test/integration/agent-hostile.sh: agent-raw-ttrpc.py SOCKET MODE
import socket, struct, sys
from ttrpc_wire import field, fields, request, read_frames, rvarint, status, varint
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.settimeout(10)
def frames():
    return read_frames(s, (ConnectionResetError, socket.timeout))
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
