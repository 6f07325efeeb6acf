#!/usr/bin/python3
# Pushes an OCI layout's tag to a registry as it is, without skopeo's checks (img_push_raw in
# test/integration/img-lib.sh): img-push-raw.py REGISTRY ROOT TAG REPO:TAG
import json, sys, urllib.request
reg, root, tag, dst = sys.argv[1:5]
repo, rtag = dst.rsplit(":", 1)
idx = json.load(open(root + "/index.json"))
m = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag][0]
def read(d): return open("%s/blobs/sha256/%s" % (root, d.split(":")[1]), "rb").read()
man = read(m["digest"])
mj = json.loads(man)
for d in [mj["config"]] + mj["layers"]:
    r = urllib.request.urlopen(urllib.request.Request("http://%s/v2/%s/blobs/uploads/" % (reg, repo), method="POST"))
    loc = r.headers["Location"]
    loc = (loc if loc.startswith("http") else "http://" + reg + loc)
    loc += ("&" if "?" in loc else "?") + "digest=" + d["digest"]
    urllib.request.urlopen(urllib.request.Request(loc, data=read(d["digest"]), method="PUT",
                           headers={"Content-Type": "application/octet-stream"}))
urllib.request.urlopen(urllib.request.Request("http://%s/v2/%s/manifests/%s" % (reg, repo, rtag), data=man,
                       method="PUT", headers={"Content-Type": m["mediaType"]}))
