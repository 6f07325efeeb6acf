#!/usr/bin/env python3
"""A hostile host's edit of a pod's initdata disk (Kata's format: b"initdata", the gzip
stream's length as u64 little-endian, the stream, zero padding to 512 bytes): the TOML inside
gets one more line, so its digest no longer matches what the shim bound to the launch. Used by
test/integration/e2e-attest.sh through a VMM wrapper that runs it on the disk QEMU is about to
attach.

usage: initdata-tamper.py DISK
"""
import gzip
import struct
import sys


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        disk = f.read()
    if disk[:8] != b"initdata":
        sys.exit("not an initdata disk: " + path)
    (n,) = struct.unpack("<Q", disk[8:16])
    toml = gzip.decompress(disk[16:16 + n])
    toml += b"# changed by the host after the digest was taken\n"
    gz = gzip.compress(toml, mtime=0)
    out = b"initdata" + struct.pack("<Q", len(gz)) + gz
    out += b"\0" * (-len(out) % 512)
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
