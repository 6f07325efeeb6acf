#!/usr/bin/python3
# The OCI layout bench/snap-pull.sh pulls: snap-pull-image.py ROOT
import hashlib, io, json, os, sys, tarfile, zlib
root = sys.argv[1]
os.makedirs(root + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open("%s/blobs/sha256/%s" % (root, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
diff_ids, layers = [], []
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
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    d, s = blob(z.compress(tar) + z.flush())
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
print("compressed MiB: %.1f" % (sum(l["size"] for l in layers) / 1048576.0))
