#!/usr/bin/python3
# cc-deploy's merged containerd config holds its entries and every other setting of the original.
# Used by test/integration/deploy-installer.sh: deploy-check-merged.py ORIG|"" MERGED 1.6|1.7 CRI_ID HANDLER=VARIANT...
import sys, tomllib, copy
orig_path, merged_path, ver, cri = sys.argv[1:5]
handlers = [h.split("=") for h in sys.argv[5:]]
orig = tomllib.load(open(orig_path, "rb")) if orig_path else {}
m = tomllib.load(open(merged_path, "rb"))
def fail(msg):
    sys.exit("FAIL: %s: %s" % (merged_path, msg))
ctrd = m["plugins"][cri]["containerd"]
sock = "/run/cc-snapshotter/cc-snapshotter.sock"
names = ["cc-snapshotter"] if ver == "1.6" else ["cc-guest", "cc-local"]
for n in names:
    if m["proxy_plugins"].get(n) != {"type": "snapshot", "address": sock}:
        fail("proxy_plugins.%s is %r" % (n, m["proxy_plugins"].get(n)))
want = {"snapshotter": "cc-snapshotter" if ver == "1.6" else "cc-local",
        "disable_snapshot_annotations": False, "discard_unpacked_layers": False}
for k, v in want.items():
    if ctrd.get(k) != v:
        fail("CRI containerd.%s = %r, want %r" % (k, ctrd.get(k), v))
for h, variant in handlers:
    r = ctrd["runtimes"].get(h) or fail("no runtime %s" % h)
    # The shipped configurations honour no annotation: containerd forwards none.
    exp = {"runtime_type": "io.containerd.kata-cc.v2", "privileged_without_host_devices": True,
           "pod_annotations": [],
           "options": {"ConfigPath": "/opt/confidential-containers/share/defaults/kata-containers/configuration-%s.toml" % variant}}
    if ver != "1.6":
        exp["snapshotter"] = "cc-guest"
    if r != exp:
        fail("runtime %s is %r" % (h, r))
# Unrelated settings kept: remove ours from the merged file and the keys we set from the
# original; the rest must be equal.
for n in names:
    del m["proxy_plugins"][n]
for h, _ in handlers:
    del ctrd["runtimes"][h]
# cc-deploy declares runc when the file had no runtimes.runc (containerd's built-in default).
if "runc" not in orig.get("plugins", {}).get(cri, {}).get("containerd", {}).get("runtimes", {}):
    if ctrd["runtimes"].pop("runc", None) != {"runtime_type": "io.containerd.runc.v2"}:
        fail("runc entry missing or different")
o = copy.deepcopy(orig)
oc = o.get("plugins", {}).get(cri, {}).get("containerd", {})
for k in want:
    ctrd.pop(k, None)
    oc.pop(k, None)
def prune(d):
    for k in list(d):
        if isinstance(d[k], dict):
            prune(d[k])
            if not d[k]:
                del d[k]
    return d
if not orig:
    m.pop("version", None)
if prune(m) != prune(o):
    fail("settings other than cc-deploy's differ:\n%r\n%r" % (m, o))
