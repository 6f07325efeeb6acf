#!/usr/bin/python3
# The OCI layout bench/img-pull.sh pulls: img-pull-image.py ROOT
import gzip, hashlib, io, json, os, sys, tarfile, zlib
root = sys.argv[1]
os.makedirs(root + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (root, d), "wb").write(data)
    return "sha256:" + d, len(data)
diff_ids, layers = [], []
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
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = c.compress(tar) + c.flush()
    d, s = blob(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": layers}).encode()
md, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(root + "/index.json", "w"))
open(root + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print("compressed MiB: %.1f" % (sum(l["size"] for l in layers) / 1048576))
