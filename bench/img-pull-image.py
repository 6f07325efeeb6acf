#!/usr/bin/python3
# The OCI layout bench/img-pull.sh pulls: img-pull-image.py ROOT
import io, os, sys, tarfile
from oci_layout import Layout
out = Layout(sys.argv[1])
for n in range(6):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data=None, kind=tarfile.REGTYPE, mode=0o644):
            ti = tarfile.TarInfo(name); ti.type = kind; ti.mode = mode; ti.mtime = 1700000000
            if data is not None: ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
        add("layer%d" % n, kind=tarfile.DIRTYPE, mode=0o755)
        add("layer%d/big" % n, os.urandom(20 << 20))
        for d in range(20):
            add("layer%d/d%02d" % (n, d), kind=tarfile.DIRTYPE, mode=0o755)
            for f in range(100):
                add("layer%d/d%02d/f%03d" % (n, d, f), os.urandom(256) + b"x" * (f * 10))
    out.add_tar(buf.getvalue())
out.finish({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]}})
print("compressed MiB: %.1f" % (sum(l["size"] for l in out.layers) / 1048576))
