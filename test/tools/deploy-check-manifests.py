#!/usr/bin/python3
# The Kubernetes manifests of configs/k8s/ agree with tools/cc-deploy's handlers (run from the
# repository's root). Used by test/integration/deploy-installer.sh: deploy-check-manifests.py
import re, yaml
def docs(p):
    return [d for d in yaml.safe_load_all(open(p)) if d]
deploy = open("tools/cc-deploy").read()
handlers = re.search(r"HANDLERS=\(([^)]*)\)", deploy).group(1).split()
names = [h.split("=")[0] for h in handlers]
rcs = {d["metadata"]["name"]: d for d in docs("configs/k8s/runtimeclasses.yaml")}
assert sorted(rcs) == sorted(names), ("RuntimeClasses vs cc-deploy handlers", sorted(rcs), names)
for n, d in rcs.items():
    assert d["apiVersion"] == "node.k8s.io/v1" and d["kind"] == "RuntimeClass", n
    assert d["handler"] == n, (n, d["handler"])
    assert set(d["overhead"]["podFixed"]) == {"memory", "cpu"}, n
    assert d["scheduling"]["nodeSelector"] == {"katacontainers.io/kata-runtime": "true"}, n
ds = [d for d in docs("configs/k8s/installer-daemonset.yaml") if d["kind"] == "DaemonSet"][0]
spec = ds["spec"]["template"]["spec"]
assert spec["nodeSelector"] == {"confidentialcontainers.org/preinstall": "true"}
script = spec["containers"][0]["args"][0]
assert "cc-deploy install" in script and "katacontainers.io/kata-runtime=true" in script
mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
for p in ("/etc/containerd", "/opt/confidential-containers", "/usr/local/bin", "/var/lib/cc-deploy",
          "/etc/cc-snapshotter", "/etc/systemd/system", "/run/cc-snapshotter"):
    assert "/host" + p in mounts, p
for p in ("configs/k8s/examples/nginx.yaml", "configs/k8s/examples/encrypted-image.yaml"):
    for d in docs(p):
        rc = d["spec"]["runtimeClassName"]
        assert rc in rcs, (p, rc)
        assert d["metadata"]["annotations"]["io.containerd.cri.runtime-handler"] == rc, p
print("PASS manifests: %d RuntimeClasses (handler = name) match cc-deploy's handlers; DaemonSet and examples consistent" % len(rcs))
