#!/usr/bin/python3
# Raw ttrpc requests to the agent over the VM's serial channel (a unix socket that never closes) that
# ctl cannot send. Used by test/integration/agent-hostile-vm.sh: agent-raw-ttrpc-serial.py SOCKET MODE
import socket, struct, sys
from ttrpc_wire import field, fields, request, read_frames, rvarint, status, varint
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
def frames(quiet):
    # The serial channel does not close: read until `quiet` seconds pass without a byte.
    s.settimeout(quiet)
    return read_frames(s, (socket.timeout,))
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
