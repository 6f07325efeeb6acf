#!/usr/bin/python3
# The OCI layout bench/snap-pull.sh pulls: snap-pull-image.py ROOT
import io, os, sys, tarfile
from oci_layout import Layout
out = Layout(sys.argv[1])
for n in range(6):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def put(name, data=None, dir=False):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if dir:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
        put("l%d" % n, dir=True)
        put("l%d/blob" % n, os.urandom(20 << 20))
        for d in range(10):
            put("l%d/d%d" % (n, d), dir=True)
            for f in range(100):
                put("l%d/d%d/f%d" % (n, d, f), os.urandom(200) + b"y" * f)
    out.add_tar(buf.getvalue())
out.finish({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]}})
print("compressed MiB: %.1f" % (sum(l["size"] for l in out.layers) / 1048576.0))
