#!/usr/bin/python3
# Raw ttrpc requests to the agent over the VM's serial channel (a unix socket that never closes) that
# ctl cannot send. Used by test/integration/agent-hostile-vm.sh: agent-raw-ttrpc-serial.py SOCKET MODE [ARGS]
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
elif mode == "create":
    # CreateContainer as the shim sends containerd's spec: the namespaces given a path
    # ("sandbox", the shim's marker for containerd's /proc/<sandbox>/ns/<type>) are the pod's.
    # args: id rootfs shared-namespaces (comma-separated) env cmd...
    cid, root, shared, env, *argv = sys.argv[3:]
    proc = b"".join(field(4, a.encode()) for a in argv) + field(5, env.encode()) + field(6, b"/")
    nss = b"".join(field(6, field(1, t.encode()) +
                         (field(2, b"sandbox") if t in shared.split(",") else b""))
                   for t in ("pid", "ipc", "uts", "mount"))
    procfs = field(1, b"/proc") + field(2, b"proc") + field(3, b"proc")
    spec = field(2, proc) + field(3, field(1, root.encode())) + field(5, procfs) + field(8, nss)
    s.sendall(request(1, "grpc.AgentService", "CreateContainer",
                      field(1, cid.encode()) + field(2, cid.encode()) + field(6, spec)))
    s.settimeout(120)
    buf = b""
    while len(buf) < 10 or len(buf) < 10 + struct.unpack(">I", buf[:4])[0]:
        buf += s.recv(65536)
    code, msg = status(buf[10:])
    print(code, msg)
elif mode == "big-frame":
    fake = request(7, "grpc.Health", "Check", b"") * 4
    payload = (fake * (5 * 1024 * 1024 // len(fake) + 1))[:5 * 1024 * 1024]
    s.sendall(struct.pack(">IIBB", len(payload), 1, 1, 0) + payload)
    got = frames(10)
    print("frames", len(got), "streams", ",".join(str(sid) for sid, _ in got),
          *(status(got[0][1]) if got else ()))
