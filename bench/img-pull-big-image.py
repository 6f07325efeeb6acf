#!/usr/bin/python3
# The large OCI layout of bench/img-pull.sh: img-pull-big-image.py ROOT
import hashlib, json, os, sys, tarfile, zlib
root = sys.argv[1]
os.makedirs(root + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (root, d), "wb").write(data)
    return "sha256:" + d, len(data)
class Zeros:
    def read(self, n): return bytes(n)
h, c, gz = hashlib.sha256(), zlib.compressobj(1, zlib.DEFLATED, 31), []
class Sink:
    def write(self, b): h.update(b); gz.append(c.compress(b)); return len(b)
with tarfile.open(fileobj=Sink(), mode="w|") as t:
    ti = tarfile.TarInfo("zeros"); ti.size = 512 << 20
    t.addfile(ti, Zeros())
gz.append(c.flush())
d, s = blob(b"".join(gz))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                  "diff_ids": ["sha256:" + h.hexdigest()]}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}]}).encode()
md, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(root + "/index.json", "w"))
