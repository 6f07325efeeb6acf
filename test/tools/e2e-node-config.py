#!/usr/bin/python3
# The private containerd's config from the installed node's: node paths under NODE, root, state
# and sockets under DIR. Used by test/integration/e2e-lib.sh: e2e-node-config.py SRC DST DIR NODE
import sys, tomllib
src, dst, d, node = sys.argv[1:5]
text = open(src).read()
text = text.replace('"/opt/confidential-containers/', '"%s/opt/confidential-containers/' % node)
text = text.replace('"/run/cc-snapshotter/', '"%s/run/cc-snapshotter/' % node)
head = ('root = "%s/root"\nstate = "%s/state"\n'
        'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
        '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]\n'
        '[grpc]\n  address = "%s/containerd.sock"\n[ttrpc]\n  address = "%s/containerd.sock.ttrpc"\n') % (d, d, d, d)
assert text.startswith("version = 2\n")
text = "version = 2\n" + head + text[len("version = 2\n"):]
tomllib.loads(text)
open(dst, "w").write(text)
