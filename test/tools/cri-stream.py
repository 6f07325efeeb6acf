#!/usr/bin/python3
"""A client for CRI's streaming calls (what `kubectl exec/attach/cp` reach through kubelet).

CRI's Exec and Attach answer with a URL on the runtime's streaming server (containerd 1.6:
k8s.io/kubelet's cri/streaming package). This client asks for the URL over CRI (the messages
come from test/cri/cri.py's loader), then speaks kubelet's remotecommand protocol there,
version v4.channel.k8s.io, over one of its two transports:

  spdy  HTTP/1.1 Upgrade: SPDY/3.1; one SPDY stream per channel, opened by the client with a
        `streamtype` header (error, stdin, stdout, stderr, resize). Stdin is half-closed with a
        FIN data frame, so `echo hi | cat` ends. Protocol facts (SPDY/3 framing): control
        frames 0x8003 TYPE FLAGS LEN24, data frames STREAMID FLAGS LEN24; SYN_STREAM carries a
        zlib-compressed name/value block (the stream may be compressed without the SPDY
        dictionary: a reader primed with it reads plain deflate too). The server's header
        blocks are not read (only their stream ids).
  ws    websocket (python3-websocket) with subprotocol v4.channel.k8s.io: every message starts
        with its channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize). This protocol
        version has no way to close stdin alone, so --stdin without steps is refused here.

The error channel carries a JSON metav1.Status when the command ends: Success, or Failure with
reason NonZeroExitCode and the exit code as cause message, or another failure (the runtime's
error). The client exits with the command's exit code; a failure that is not an exit code is
printed ("error: <message>") and gives 126; a protocol or connection error 125.

    cri-stream.py --address SOCK [--transport spdy|ws] exec [--tty] [--stdin] [--no-stderr]
                  [--step STEP]... ID CMD...
    cri-stream.py --address SOCK [--transport ...] attach [--tty] [--stdin] [--step STEP]... ID
Steps, run in order once the streams are open:
    resize=ROWSxCOLS   a resize event (needs --tty)
    wait=TEXT          until stdout (so far) contains TEXT (escapes as send), at most 60 s
                       (else exit 124)
    send=TEXT          TEXT to stdin (\\n, \\r, \\x03, \\x04 escapes)
    close              half-close stdin (spdy)
    detach             leave: close the connection without waiting for the end (attach)
Without steps and with --stdin, this process's stdin is copied to the command's, then closed.
Stdout/stderr go to this process's stdout/stderr as they arrive.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cri"))

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
NAMES = {STDIN: "stdin", STDOUT: "stdout", STDERR: "stderr", ERROR: "error", RESIZE: "resize"}


class ProtocolError(Exception):
    pass


class Session:
    """What both transports share: output collection, the end, the wait step."""

    def __init__(self):
        self.cond = threading.Condition()
        self.out = bytearray()
        self.err_json = bytearray()
        self.closed = False
        self.fail = None

    def deliver(self, ch, data):
        with self.cond:
            if ch == STDOUT:
                self.out += data
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            elif ch == STDERR:
                sys.stderr.buffer.write(data)
                sys.stderr.flush()
            elif ch == ERROR:
                self.err_json += data
            self.cond.notify_all()

    def finish(self, fail=None):
        with self.cond:
            self.closed = True
            if fail and not self.fail:
                self.fail = fail
            self.cond.notify_all()

    def wait_text(self, text, timeout=60):
        end = time.monotonic() + timeout
        with self.cond:
            while text not in self.out:
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    return False
                self.cond.wait(left)
        return True

    def wait_end(self, timeout=None):
        with self.cond:
            return self.cond.wait_for(lambda: self.closed, timeout)


class Spdy:
    """SPDY/3.1 client side of kubelet's streaming protocol."""

    def __init__(self, url, session, channels):
        self.s = session
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            raise ProtocolError("only http:// streaming URLs are supported (got %s)" % url)
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=30)
        req = ("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               "X-Stream-Protocol-Version: %s\r\nContent-Length: 0\r\n\r\n" %
               (u.path + ("?" + u.query if u.query else ""), u.netloc, PROTOCOL))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.sock.recv(1)
            if not b:
                raise ProtocolError("connection closed during the upgrade: %r" % head)
            head += b
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            body = self.sock.recv(4096)
            raise ProtocolError("upgrade refused: %s %s" % (status.decode(errors="replace"),
                                                            body.decode(errors="replace")))
        self.sock.settimeout(None)
        self.wlock = threading.Lock()
        self.zc = zlib.compressobj()
        self.ids = {}
        self.chan_of = {}
        self.replied = set()
        sid = 1
        for ch in channels:
            self.ids[ch] = sid
            self.chan_of[sid] = ch
            sid += 2
        self.reader = threading.Thread(target=self.read_loop, daemon=True)
        self.reader.start()
        for ch in channels:
            self.syn_stream(self.ids[ch], NAMES[ch])
        with self.s.cond:
            if not self.s.cond.wait_for(lambda: len(self.replied) == len(channels) or self.s.closed, 30):
                raise ProtocolError("the server did not accept the streams")

    def control(self, ftype, flags, payload):
        hdr = struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload))
        with self.wlock:
            self.sock.sendall(hdr + payload)

    def syn_stream(self, sid, streamtype):
        pairs = [(b"streamtype", streamtype.encode())]
        block = struct.pack(">I", len(pairs))
        for k, v in pairs:
            block += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        z = self.zc.compress(block) + self.zc.flush(zlib.Z_SYNC_FLUSH)
        self.control(1, 0, struct.pack(">IIH", sid, 0, 0) + z)

    def data(self, ch, data, fin=False):
        sid = self.ids[ch]
        view = memoryview(data)
        while True:
            chunk = view[:32768]
            view = view[32768:]
            last = fin and not len(view)
            hdr = struct.pack(">II", sid, ((1 if last else 0) << 24) | len(chunk))
            with self.wlock:
                self.sock.sendall(hdr + bytes(chunk))
            if not len(view):
                break

    def send(self, ch, data):
        self.data(ch, data)

    def close_stdin(self):
        self.data(STDIN, b"", fin=True)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            b = self.sock.recv(n - len(buf))
            if not b:
                return None
            buf += b
        return bytes(buf)

    def read_loop(self):
        try:
            while True:
                h = self.recv_exact(8)
                if h is None:
                    break
                w0, w1 = struct.unpack(">II", h)
                flags, length = w1 >> 24, w1 & 0xFFFFFF
                payload = self.recv_exact(length) if length else b""
                if payload is None:
                    break
                if w0 & 0x80000000:
                    ftype = w0 & 0xFFFF
                    if ftype == 2:  # SYN_REPLY
                        sid = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                        with self.s.cond:
                            self.replied.add(sid)
                            self.s.cond.notify_all()
                    elif ftype == 3:  # RST_STREAM
                        sid, code = struct.unpack(">II", payload[:8])
                        ch = self.chan_of.get(sid & 0x7FFFFFFF)
                        if ch in (ERROR, STDOUT):
                            self.s.finish("stream %s reset (status %d)" % (NAMES[ch], code))
                    elif ftype == 6:  # PING: echo it
                        self.control(6, 0, payload)
                    elif ftype == 7:  # GOAWAY
                        break
                else:
                    ch = self.chan_of.get(w0 & 0x7FFFFFFF)
                    if ch is not None and payload:
                        self.s.deliver(ch, payload)
        except OSError as e:
            self.s.finish("connection: %s" % e)
        self.s.finish()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Ws:
    """Websocket client side (subprotocol v4.channel.k8s.io)."""

    def __init__(self, url, session, channels):
        import websocket  # python3-websocket
        self.s = session
        u = url.replace("http://", "ws://", 1)
        self.ws = websocket.create_connection(u, subprotocols=[PROTOCOL], timeout=30)
        self.ws.settimeout(None)
        self.reader = threading.Thread(target=self.read_loop, daemon=True)
        self.reader.start()

    def send(self, ch, data):
        import websocket
        self.ws.send(bytes([ch]) + data, opcode=websocket.ABNF.OPCODE_BINARY)

    def close_stdin(self):
        raise ProtocolError("v4.channel.k8s.io over websocket cannot close stdin alone")

    def read_loop(self):
        try:
            while True:
                op, data = self.ws.recv_data()
                if op == 8 or not data:  # close
                    if op == 8:
                        break
                    continue
                # The server's first message on each channel is empty (a channel "open"): the
                # channel byte alone.
                if len(data) > 1:
                    self.s.deliver(data[0], data[1:])
        except Exception as e:  # websocket-client raises its own classes
            if not self.s.closed:
                self.s.finish(None if "closed" in str(e).lower() else "connection: %s" % e)
        self.s.finish()

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def unescape(t):
    return t.encode().decode("unicode_escape").encode("latin-1")


def result(session):
    """The command's exit code from the error channel's Status (0 without one)."""
    if not session.err_json.strip():
        if session.fail:
            print("error: %s" % session.fail, file=sys.stderr)
            return 125
        return 0
    try:
        st = json.loads(bytes(session.err_json))
    except ValueError:
        print("error: %s" % bytes(session.err_json).decode(errors="replace"), file=sys.stderr)
        return 126
    if st.get("status") == "Success":
        return 0
    if st.get("reason") == "NonZeroExitCode":
        for c in (st.get("details") or {}).get("causes") or []:
            if c.get("reason") == "ExitCode" or c.get("type") == "ExitCode":
                return int(c.get("message", "126"))
    print("error: %s" % st.get("message", st), file=sys.stderr)
    return 126


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--transport", choices=("spdy", "ws"), default="spdy")
    p.add_argument("--print-url", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("exec", "attach"):
        sp = sub.add_parser(name)
        sp.add_argument("--tty", action="store_true")
        sp.add_argument("--stdin", action="store_true")
        sp.add_argument("--no-stderr", action="store_true")
        sp.add_argument("--step", action="append", default=[])
        sp.add_argument("id")
        if name == "exec":
            sp.add_argument("argv", nargs=argparse.REMAINDER)
    a = p.parse_args()

    import grpc
    import cri
    msgs = cri.load_messages()
    channel = grpc.insecure_channel("unix://" + a.address)
    M = lambda n: msgs["runtime.v1." + n]()
    stderr = not a.tty and not a.no_stderr
    try:
        if a.cmd == "exec":
            req = M("ExecRequest")
            req.container_id = a.id
            req.cmd.extend(a.argv[1:] if a.argv[:1] == ["--"] else a.argv)
            req.tty, req.stdin, req.stdout, req.stderr = a.tty, a.stdin, True, stderr
            resp = cri.call(channel, msgs, "RuntimeService", "Exec", req)
        else:
            req = M("AttachRequest")
            req.container_id = a.id
            req.tty, req.stdin, req.stdout, req.stderr = a.tty, a.stdin, True, stderr
            resp = cri.call(channel, msgs, "RuntimeService", "Attach", req)
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    if a.print_url:
        print("url %s" % resp.url, file=sys.stderr)

    channels = [ERROR] + ([STDIN] if a.stdin else []) + [STDOUT] + \
        ([STDERR] if stderr else []) + ([RESIZE] if a.tty else [])
    s = Session()
    try:
        t = (Spdy if a.transport == "spdy" else Ws)(resp.url, s, channels)
        if a.stdin and not a.step:
            if a.transport == "ws":
                raise ProtocolError("--stdin without steps needs spdy (stdin must be closed)")
            while True:
                b = os.read(0, 65536)
                if not b:
                    break
                t.send(STDIN, b)
            t.close_stdin()
        for st in a.step:
            k, _, v = st.partition("=")
            if k == "resize":
                rows, cols = (int(x) for x in v.split("x"))
                t.send(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())
            elif k == "wait":
                if not s.wait_text(unescape(v)):
                    print("error: timed out waiting for %r in the output" % v, file=sys.stderr)
                    t.close()
                    return 124
            elif k == "send":
                t.send(STDIN, unescape(v))
            elif k == "close":
                t.close_stdin()
            elif k == "detach":
                t.close()
                return 0
            else:
                raise ProtocolError("unknown step %r" % st)
    except (ProtocolError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 125
    s.wait_end()
    t.close()
    return result(s)


if __name__ == "__main__":
    sys.exit(main())
