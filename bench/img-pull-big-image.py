#!/usr/bin/python3
# The large OCI layout of bench/img-pull.sh: img-pull-big-image.py ROOT
import hashlib, sys, tarfile, zlib
from oci_layout import Layout
out = Layout(sys.argv[1])
class Zeros:
    def read(self, n): return bytes(n)
h, c, gz = hashlib.sha256(), zlib.compressobj(1, zlib.DEFLATED, 31), []
class Sink:
    def write(self, b): h.update(b); gz.append(c.compress(b)); return len(b)
with tarfile.open(fileobj=Sink(), mode="w|") as t:
    ti = tarfile.TarInfo("zeros"); ti.size = 512 << 20
    t.addfile(ti, Zeros())
gz.append(c.flush())
out.add_layer("sha256:" + h.hexdigest(), b"".join(gz))
out.finish({"architecture": "amd64", "os": "linux"}, oci_layout=False)
