#!/usr/bin/python3
# Writes the tar OUT from Python statements calling add(name, data=None, mode=0o644, kind="f", link=None).
# Used by img_tar in test/integration/img-lib.sh: img-tar.py OUT STATEMENTS
import io, sys, tarfile
kinds = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None, mode=0o644, kind="f", link=None):
        ti = tarfile.TarInfo(name); ti.mode = mode; ti.type = kinds[kind]; ti.mtime = 1700000000
        if link: ti.linkname = link
        if data is not None: ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    exec(sys.argv[2])
