#!/usr/bin/python3
# Writes an OCI image layout for the image-pull tests (see img_mkimage in test/integration/img-lib.sh).
# img-mkimage.py ROOT TAG [options]
import gzip, hashlib, json, os, subprocess, sys
args = sys.argv[1:]
root, tag = args[0], args[1]
bad_diff = "--bad-diff-id" in args
annotate = 0
if "--annotate" in args:
    annotate = int(args[args.index("--annotate") + 1])
layers = [a for a in args[2:] if ":" in a]
os.makedirs(root + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (root, d), "wb").write(data)
    return "sha256:" + d, len(data)
def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE, check=True).stdout
diff_ids, descs = [], []
for spec in layers:
    comp, path = spec.split(":", 1)
    tar = open(path, "rb").read()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    half = len(tar) // 2
    mt = "application/vnd.oci.image.layer.v1.tar"
    if comp == "none": data = tar
    elif comp == "gzip": data = gzip.compress(tar); mt += "+gzip"
    elif comp == "gzip2": data = gzip.compress(tar[:half]) + gzip.compress(tar[half:]); mt += "+gzip"
    elif comp == "zstd": data = zstd(tar); mt += "+zstd"
    elif comp == "zstd2": data = zstd(tar[:half]) + zstd(tar[half:]); mt += "+zstd"
    d, s = blob(data)
    descs.append({"mediaType": mt, "digest": d, "size": s})
if bad_diff:
    diff_ids[-1] = "sha256:" + "0" * 64
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = blob(cfg)
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
       "layers": descs}
if annotate:
    man["annotations"] = {"padding": "x" * annotate}
md, ms = blob(json.dumps(man).encode())
idx_path = root + "/index.json"
idx = json.load(open(idx_path)) if os.path.exists(idx_path) else {"schemaVersion": 2, "manifests": []}
idx["manifests"] = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
idx["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                         "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(idx, open(idx_path, "w"))
open(root + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
