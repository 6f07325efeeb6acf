#!/usr/bin/env python3
"""Tampers with a simple-signing signature as skopeo writes it (an OpenPGP message: one
compressed-data packet holding the one-pass signature, the literal data and the signature
packets) so that it stays well-formed and only the signature value is wrong: the compressed
body is inflated, the last byte (the end of the signature packet's value) flipped, and the body
deflated again. Flipping a byte of the compressed bytes themselves is not enough: deflate's
last byte may hold padding bits and gpg may end the stream with an empty block, so such a change
is sometimes invisible to a verifier.

usage: openpgp-tamper.py SIGNATURE-FILE   (rewritten in place)
"""
import sys
import zlib


def packet_body(b):
    """The tag and the body of the single outer packet (old or new format header)."""
    h = b[0]
    if not h & 0x80:
        sys.exit("openpgp-tamper: not an OpenPGP packet")
    if h & 0x40:  # new format: one-octet tag, then a length (RFC 4880 4.2.2)
        tag, o = h & 0x3F, 1
        l0 = b[o]
        if l0 < 192:
            n, o = l0, o + 1
        elif l0 < 224:
            n, o = ((l0 - 192) << 8) + b[o + 1] + 192, o + 2
        elif l0 == 255:
            n, o = int.from_bytes(b[o + 1:o + 5], "big"), o + 5
        else:
            sys.exit("openpgp-tamper: partial body lengths are not handled")
        return tag, b[o:o + n]
    tag, lt = (h >> 2) & 0x0F, h & 3  # old format
    if lt == 3:
        return tag, b[1:]
    n_len = (1, 2, 4)[lt]
    n = int.from_bytes(b[1:1 + n_len], "big")
    return tag, b[1 + n_len:1 + n_len + n]


def main():
    path = sys.argv[1]
    b = open(path, "rb").read()
    tag, body = packet_body(b)
    if tag != 8:
        sys.exit(f"openpgp-tamper: outer packet tag {tag}, expected 8 (compressed data)")
    algo = body[0]
    wbits = {1: -15, 2: 15}.get(algo)
    if wbits is None:
        sys.exit(f"openpgp-tamper: compression algorithm {algo} is not ZIP or ZLIB")
    inner = bytearray(zlib.decompressobj(wbits).decompress(body[1:]))
    inner[-1] ^= 0x01
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = bytes([algo]) + c.compress(bytes(inner)) + c.flush()
    # Old-format header, indeterminate length, as gpg writes compressed packets.
    open(path, "wb").write(bytes([0x80 | (8 << 2) | 3]) + packed)


if __name__ == "__main__":
    main()
