#!/usr/bin/python3
# The third layer of test/integration/img-pull.sh's image: img-pull-layer3.py OUT.tar
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None, mode=0o644, kind=tarfile.REGTYPE):
        ti = tarfile.TarInfo(name); ti.mode = mode; ti.type = kind; ti.mtime = 1700000000
        if data is not None: ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    add("opt/replaced", mode=0o755, kind=tarfile.DIRTYPE)
    add("opt/replaced/sub2", mode=0o700, kind=tarfile.DIRTYPE)
    add("opt/replaced/sub2/fresh", b"fresh\n")
    add("opt/replaced/.wh..wh..opq", b"")
    add("usr/share/doc/.wh.blob", b"")
