#!/usr/bin/python3
# Adds the multi-platform index to test/integration/img-pull.sh's layout: img-pull-index.py LAYOUT
import hashlib, json, sys
root = sys.argv[1]
idx = json.load(open(root + "/index.json"))
def ref(tag):
    return [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag][0]
ents = []
# An attestation-style entry first: must never be selected.
for tag, arch in [("arm", "unknown"), ("arm", "arm64"), ("amd", "amd64")]:
    m = dict(ref(tag)); m.pop("annotations")
    m["platform"] = {"architecture": arch, "os": "unknown" if arch == "unknown" else "linux"}
    ents.append(m)
data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": ents}).encode()
d = hashlib.sha256(data).hexdigest()
open("%s/blobs/sha256/%s" % (root, d), "wb").write(data)
idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
    "digest": "sha256:" + d, "size": len(data),
    "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(idx, open(root + "/index.json", "w"))
