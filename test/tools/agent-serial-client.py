#!/usr/bin/python3
# The checks of test/integration/agent-serial.sh: a raw ttrpc client on the agent's pty transport
# (BUILD and TMPDIR from the environment).
import os, struct, subprocess, sys, time, select
from ttrpc_wire import field, request, varint

build = os.environ["BUILD"]
tmp = os.environ["TMPDIR"]

def read_exact(fd, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("no answer")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            buf += os.read(fd, n - len(buf))
    return buf

def response(fd):
    hdr = read_exact(fd, 10, time.time() + 10)
    length, stream, typ, _ = struct.unpack(">IIBB", hdr)
    body = read_exact(fd, length, time.time() + 10)
    return stream, typ, body

master, slave = os.openpty()
slave_path = os.ttyname(slave)
os.close(slave)
agent = subprocess.Popen([f"{build}/cc-agent", "--server-addr", "serial://" + slave_path,
                          "--containers-dir", f"{tmp}/c", "--cgroup-root", f"cc-agent-serial-{os.getpid()}",
                          "--policy", "/nonexistent", "--log-level", "debug"],
                         stdout=open(f"{tmp}/agent.log", "w"), stderr=subprocess.STDOUT)
fails = 0
def check(what, cond):
    global fails
    print(("ok: " if cond else "FAIL: ") + what)
    fails += 0 if cond else 1
try:
    # Write only once the agent has the pty open in raw mode (before that the line
    # discipline would cook the bytes).
    for _ in range(200):
        if "serving " + slave_path in open(f"{tmp}/agent.log").read():
            break
        time.sleep(0.05)
    # SERVING is field 1 varint 1 in HealthCheckResponse, inside Response.payload (field 2).
    serving = field(2, b"\x08\x01")
    os.write(master, request(1, "grpc.Health", "Check"))
    s, t, body = response(master)
    check("first client answered", (s, t) == (1, 2) and serving in body)
    os.write(master, request(3, "grpc.Health", "Check"))
    s, t, body = response(master)
    check("first client, second call", s == 3 and serving in body)
    # A new client on the same stream: starts over at stream id 1. Without the agent's
    # session restart, the ttrpc server would refuse a reused stream id.
    os.write(master, request(1, "grpc.Health", "Version"))
    s, t, body = response(master)
    check("second client (stream id 1 again) answered", s == 1 and b"0.1.0" in body)
    # Pipelined burst in one write.
    burst = b"".join(request(2 * i + 3, "grpc.Health", "Check") for i in range(20))
    os.write(master, burst)
    got = sorted(response(master)[0] for _ in range(20))
    check("20 pipelined calls answered", got == [2 * i + 3 for i in range(20)])
    # An unknown method is an error status, and the stream goes on.
    os.write(master, request(1, "grpc.AgentService", "NoSuchMethod"))
    s, t, body = response(master)
    check("unknown method -> error status, new session", s == 1 and t == 2 and b"NoSuchMethod" in body)
    os.write(master, request(3, "grpc.Health", "Check"))
    check("still serving", response(master)[0] == 3)

    # A container id with a NUL byte ("c1\0x" would decode to "c1"): InvalidArgument (3),
    # naming the field.
    os.write(master, request(5, "grpc.AgentService", "CreateContainer", field(1, b"c1\x00x")))
    s, t, body = response(master)
    check("container id with a NUL -> InvalidArgument naming the field",
          s == 5 and b"\x08\x03" in body and b"field 'container_id' contains a NUL byte" in body)
    os.write(master, request(7, "grpc.AgentService", "SignalProcess",
                             field(1, b"c1") + field(2, b"e\x001")))
    s, t, body = response(master)
    check("exec id with a NUL -> InvalidArgument", s == 7 and b"field 'exec_id'" in body)

    def write_all(data):
        while data:
            data = data[os.write(master, data):]

    def quiet(seconds):
        r, _, _ = select.select([master], [], [], seconds)
        return not r

    # An oversized frame (5 MiB, above the 4 MiB limit) whose payload is made of what look like
    # requests: the answer is ResourceExhausted on the header's stream id, and nothing is
    # answered on a stream id taken from the payload.
    fake = request(7, "grpc.Health", "Check") + request(1, "grpc.Health", "Check")
    payload = (fake * (5 * 1024 * 1024 // len(fake) + 1))[: 5 * 1024 * 1024]
    write_all(struct.pack(">IIBB", len(payload), 5, 1, 0) + payload)
    s, t, body = response(master)
    check("oversized frame -> ResourceExhausted (8) on its own stream id",
          s == 5 and t == 2 and b"\x08\x08" in body and b"exceed maximum" in body)
    check("nothing answered from the oversized frame's payload", quiet(1.0))
    os.write(master, request(1, "grpc.Health", "Version"))
    s, t, body = response(master)
    check("next client served after the oversized frame", s == 1 and b"0.1.0" in body)

    # A client that leaves in the middle of a frame, with no hangup the agent can see (a pty
    # has none): the next client's request, after a pause, is a new client's, not the rest of
    # that frame.
    os.write(master, request(1, "grpc.Health", "Check")[:15])
    time.sleep(0.3)
    os.write(master, request(1, "grpc.Health", "Version"))
    s, t, body = response(master)
    check("client after a half-written frame served", s == 1 and b"0.1.0" in body)
    # The same with a longer silence: the half frame is dropped when it stalls.
    os.write(master, request(1, "grpc.Health", "Check")[:4])
    time.sleep(1.5)
    os.write(master, request(1, "grpc.Health", "Check"))
    s, t, body = response(master)
    check("client after a stalled half header served", s == 1 and serving in body)
finally:
    agent.terminate()
    agent.wait(timeout=10)
    os.close(master)
log = open(f"{tmp}/agent.log").read()
check("agent saw the new clients", log.count("session ends (new client)") >= 2)
check("agent saw the stalled frames", "new client after a stalled frame" in log
      and "frame stalled" in log)
if fails:
    print(log[-3000:])
    sys.exit(1)
print("agent-serial: all checks passed")
