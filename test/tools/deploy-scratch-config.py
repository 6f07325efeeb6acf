#!/usr/bin/python3
# A private copy of a merged containerd config: root, state, sockets and the snapshotter address
# moved under PRIV. Used by test/integration/deploy-installer.sh: deploy-scratch-config.py SRC DST PRIV SNAPSOCK
import re, sys, tomllib
src, dst, priv, snapsock = sys.argv[1:5]
lines = open(src).read().splitlines(keepends=True)
if lines and not lines[-1].endswith("\n"):
    lines[-1] += "\n"
def is_header(l):
    return re.match(r"\s*\[", l) is not None
def set_key(table, key, val):
    hdr = re.compile(r"\s*\[\s*%s\s*\]\s*(#.*)?$" % re.escape(table))
    for i, l in enumerate(lines):
        if hdr.match(l):
            j = i + 1
            while j < len(lines) and not is_header(lines[j]):
                if re.match(r"\s*%s\s*=" % key, lines[j]):
                    lines[j] = "#" + lines[j]
                j += 1
            lines.insert(i + 1, "%s = %s\n" % (key, val))
            return
    lines.extend(["[%s]\n" % table, "%s = %s\n" % (key, val)])
first = next((i for i, l in enumerate(lines) if is_header(l)), len(lines))
for i in range(first):
    if re.match(r"(root|state)\s*=", lines[i]):
        lines[i] = "#" + lines[i]
lines[0:0] = ['root = "%s/root"\n' % priv, 'state = "%s/state"\n' % priv]
for t in ("grpc", "ttrpc", "debug"):
    set_key(t, "address", '"%s/%s.sock"' % (priv, t))
text = "".join(lines).replace("/run/cc-snapshotter/cc-snapshotter.sock", snapsock)
text = text.replace('"/opt/containerd"', '"%s/opt"' % priv)
d = tomllib.loads(text)
assert d["root"].startswith(priv) and d["state"].startswith(priv), "scratch paths"
for t in ("grpc", "ttrpc", "debug"):
    assert d[t]["address"].startswith(priv), t
open(dst, "w").write(text)
