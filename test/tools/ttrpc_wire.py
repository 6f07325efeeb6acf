"""ttrpc framing and the protobuf wire format, by hand: what the raw agent clients
(agent-raw-ttrpc.py, agent-raw-ttrpc-serial.py, agent-serial-client.py) share. They send what
the agent's own client cannot (a NUL inside an id, broken frames, restarted stream ids)."""
import struct


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
    """The first value of each field number of a message (varints and length-delimited)."""
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


def request(stream, service, method, payload=b""):
    """A ttrpc request frame: 10-byte header (length, stream id, type 1, flags 0) and the Request."""
    body = field(1, service.encode()) + field(2, method.encode()) + field(3, payload)
    return struct.pack(">IIBB", len(body), stream, 1, 0) + body


def split_frames(buf):
    """[(stream id, body)] of the whole frames in buf."""
    out = []
    while len(buf) >= 10:
        n, sid, t, _ = struct.unpack(">IIBB", buf[:10])
        out.append((sid, buf[10:10 + n]))
        buf = buf[10 + n:]
    return out


def status(body):
    """Response.status (field 1) -> Status.code (field 1) and message (field 2)."""
    st = fields(fields(body).get(1, b""))
    return st.get(1, 0), st.get(2, b"").decode(errors="replace")


def read_frames(sock, stop):
    """The frames read from sock until it closes or raises one of the exceptions in stop."""
    buf = b""
    while True:
        try:
            d = sock.recv(65536)
        except stop:
            break
        if not d:
            break
        buf += d
    return split_frames(buf)
