#!/usr/bin/python3
# Each runtime entry's pod_annotations is what its edited configuration honours.
# Used by test/integration/deploy-installer.sh: deploy-check-annotations.py MERGED HANDLER=VARIANT...
import sys, tomllib
rts = tomllib.load(open(sys.argv[1], "rb"))["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
hv = "io.katacontainers.config.hypervisor."
want = {"qemu": [hv + "default_vcpus", hv + "kernel_params", "io.katacontainers.config_path"],
        "qemu-tdx": [hv + "*"]}
for h in sys.argv[2:]:
    name, variant = h.split("=")
    got = rts[name]["pod_annotations"]
    if got != want.get(variant, []):
        sys.exit("FAIL: %s (configuration-%s.toml) forwards %r, want %r" % (name, variant, got, want.get(variant, [])))
    print("  %-14s pod_annotations = %r" % (name, got))
