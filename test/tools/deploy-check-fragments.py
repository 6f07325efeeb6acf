#!/usr/bin/python3
# cc-deploy's config for an absent file is exactly configs/containerd/{runtimes,cc-snapshotter}-<ver>.toml
# for the handlers given (plus runc). Used by test/integration/deploy-installer.sh:
# deploy-check-fragments.py MERGED RUNTIMES SNAPSHOTTER HANDLER=VARIANT...
import sys, tomllib
merged, runtimes, snap = (tomllib.load(open(p, "rb")) for p in sys.argv[1:4])
handlers = {h.split("=")[0] for h in sys.argv[4:]}
def deep(a, b):  # b merged into a
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            deep(a[k], v)
        else:
            a[k] = v
    return a
want = deep(deep({}, snap), runtimes)
rts = want["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
for h in list(rts):
    if h not in handlers:
        del rts[h]
rts["runc"] = {"runtime_type": "io.containerd.runc.v2"}
if merged != want:
    sys.exit("FAIL: cc-deploy's %s config differs from configs/containerd/*-%s.toml:\n%r\n%r"
             % (sys.argv[2][-8:-5], sys.argv[2][-8:-5], merged, want))
