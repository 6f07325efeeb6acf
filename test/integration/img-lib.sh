# Shared helpers of the image-pull integration tests (sourced, not run by the test runner).
#
# img_setup            temp dir $T, a docker-registry on 127.0.0.1:$PORT (no auth), traps that
#                      stop everything this script started and remove $T
# img_registry NAME CONFIG_EXTRA   start another registry (its port in $REG_PORT)
# img_push SRC REPO:TAG [skopeo args]   push an OCI layout ref to the registry
# img_compare DIR ROOTFS           compare a cc-image-pull result (DIR, layers file) with a
#                                  rootfs from `umoci unpack`, file by file
# fail MSG / expect_fail DESC REGEX CMD...  assertions

set -u
BUILD=${BUILD:-build}
PULL=$(realpath "$BUILD/cc-image-pull")
PIDS=()
MOUNTS=()

img_cleanup() {
        local m p i
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
        for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
                m=${MOUNTS[$i]}
                mountpoint -q "$m" 2>/dev/null && { umount -R "$m" 2>/dev/null || umount -l "$m"; }
        done
        [ -n "${T:-}" ] && rm -rf "$T"
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port [path]
        local i
        for i in $(seq 1 100); do
                curl -s -o /dev/null "http://127.0.0.1:$1${2:-/v2/}" && return 0
                sleep 0.1
        done
        fail "nothing listening on 127.0.0.1:$1"
}

# img_registry NAME [extra YAML appended to the config]
# (Not snap_registry_at: these tests run without lib.sh, in $T, and need deletes and extra YAML.)
img_registry() {
        local name=$1 extra=${2:-}
        REG_PORT=$(free_port)
        mkdir -p "$T/$name"
        cat >"$T/$name/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $T/$name/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
$extra
EOF
        docker-registry serve "$T/$name/config.yml" >"$T/$name/log" 2>&1 &
        PIDS+=($!)
        wait_port "$REG_PORT"
}

# Writes the tree comparer: path type mode uid gid content/target, and hardlink groups.
write_tree_py() {
        cat >"$T/tree.py" <<'EOF'
import hashlib, os, stat, sys
def walk(root):
    out = {}
    inodes = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISREG(m):
                h = hashlib.sha256(open(p, 'rb').read()).hexdigest()
                kind = 'f ' + h
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISDIR(m):
                kind = 'd'
            elif stat.S_ISLNK(m):
                kind = 'l ' + os.readlink(p)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                kind = 'c %d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                kind = 'o'
            mode = stat.S_IMODE(m) if not stat.S_ISLNK(m) else 0
            out[rel] = '%s %o %d:%d' % (kind, mode, st.st_uid, st.st_gid)
    links = sorted(' = '.join(sorted(v)) for v in inodes.values() if len(v) > 1)
    return out, links
a, la = walk(sys.argv[1])
b, lb = walk(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print('DIFF %s: ours=%s umoci=%s' % (k, a.get(k), b.get(k)))
        bad += 1
if la != lb:
    print('HARDLINKS ours=%s umoci=%s' % (la, lb))
    bad += 1
print('%d entries compared, %d differences' % (len(set(a) | set(b)), bad))
sys.exit(1 if bad else 0)
EOF
}

img_setup() {
        [ "$(id -u)" -eq 0 ] || { echo "needs root (overlay mounts, whiteout device nodes, chown)"; exit 77; }
        for tool in docker-registry skopeo umoci curl python3; do
                command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
        done
        [ -x "$PULL" ] || fail "$PULL not built"
        T=$(mktemp -d /tmp/img-test.XXXXXX)
        trap img_cleanup EXIT
        write_tree_py
        img_registry registry
        PORT=$REG_PORT
        REG=127.0.0.1:$PORT
        umask 022
}

img_push() { # src dst [skopeo args...]
        local src=$1 dst=$2
        shift 2
        skopeo copy -q --insecure-policy --dest-tls-verify=false "$@" "$src" "docker://$REG/$dst" \
                >"$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo copy $src $dst"; }
}

# A new single-layer OCI image in layout $1 tag $2 from directory $3 (contents copied as root).
img_build() { # layout tag srcdir
        local layout=$1 tag=$2 src=$3
        [ -d "$layout" ] || umoci init --layout "$layout"
        umoci new --image "$layout:$tag"
        rm -rf "$T/bundle"
        umoci unpack --image "$layout:$tag" "$T/bundle" >/dev/null
        cp -a "$src/." "$T/bundle/rootfs/"
        umoci repack --image "$layout:$tag" "$T/bundle" >/dev/null
        umoci config --image "$layout:$tag" --config.entrypoint /bin/app --config.cmd --help \
                --config.env FOO=bar --config.workingdir /srv --config.user 1000:1000
        rm -rf "$T/bundle"
}

# Adds a layer on top of layout:tag with the changes a function makes to the rootfs.
img_layer() { # layout tag function
        local layout=$1 tag=$2 fn=$3
        rm -rf "$T/bundle"
        umoci unpack --image "$layout:$tag" "$T/bundle" >/dev/null
        (cd "$T/bundle/rootfs" && $fn)
        umoci repack --image "$layout:$tag" "$T/bundle" >/dev/null
        rm -rf "$T/bundle"
}

umoci_rootfs() { # layout tag outdir
        rm -rf "$3"
        umoci unpack --image "$1:$2" "$3" >/dev/null
}

# Mounts the pulled layers as the container would see them (overlayfs) and compares with umoci.
img_compare() { # pulldir umoci_rootfs
        local dir=$1 ref=$2 lower="" l
        while read -r l; do lower="$l${lower:+:$lower}"; done <"$dir/layers"
        mkdir -p "$dir/m" "$dir/u" "$dir/w"
        if [ "$(wc -l <"$dir/layers")" -eq 1 ]; then
                mount --bind "$lower" "$dir/m" || fail "bind mount"
        else
                mount -t overlay overlay -o "lowerdir=$lower" "$dir/m" || fail "overlay mount"
        fi
        MOUNTS+=("$dir/m")
        python3 "$T/tree.py" "$dir/m" "$ref" || { umount "$dir/m"; fail "rootfs differs from umoci unpack"; }
        umount "$dir/m"
}

# expect_fail DESC REGEX CMD...: the command must fail and its stderr match REGEX.
expect_fail() {
        local desc=$1 re=$2
        shift 2
        if "$@" >"$T/out" 2>"$T/err"; then
                fail "$desc: succeeded, expected an error"
        fi
        grep -Eq "$re" "$T/err" || { cat "$T/err"; fail "$desc: error does not match /$re/"; }
        ! grep -q 'Sanitizer' "$T/err" || { cat "$T/err"; fail "$desc: sanitizer report"; }
        echo "ok  $desc: $(tail -n1 "$T/err")"
}

# Nothing may remain in a store's staging area after a failed pull, and no layer published.
assert_clean_store() { # store
        [ -z "$(ls -A "$1/staging" 2>/dev/null)" ] || fail "staging not empty: $(ls "$1/staging")"
        [ -z "$(ls -A "$1/layers/sha256" 2>/dev/null)" ] || fail "a layer was published"
}

# img_mkimage LAYOUT TAG [--bad-diff-id] [--annotate BYTES] COMP:TAR... builds an OCI layout by
# hand (config with diff_ids, manifest, index.json). COMP: none | gzip | gzip2 (two gzip
# members) | zstd | zstd2 (two zstd frames).
img_mkimage() {
        python3 - "$@" <<'EOF' || fail "mkimage $*"
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
EOF
}

# img_tar OUT 'python statements using add(name, data=None, mode=0o644, kind="f", link=None)'
img_tar() {
        python3 - "$1" "$2" <<'EOF' || fail "tar $1"
import io, sys, tarfile
kinds = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None, mode=0o644, kind="f", link=None):
        ti = tarfile.TarInfo(name); ti.mode = mode; ti.type = kinds[kind]; ti.mtime = 1700000000
        if link: ti.linkname = link
        if data is not None: ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    exec(sys.argv[2])
EOF
}

# Path of a blob's data file inside registry storage.
reg_blob() { # digest
        local hex=${1#sha256:}
        echo "$T/registry/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

layer_digest() { # repo tag index
        curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
                "http://$REG/v2/$1/manifests/$2" |
                python3 -c "import json,sys; print(json.load(sys.stdin)['layers'][$3]['digest'])"
}

# img_push_raw LAYOUT TAG REPO:TAG pushes an OCI layout's image verbatim with the registry API
# (skopeo would recompress uncompressed layers and cannot write zstd here).
img_push_raw() {
        python3 - "$REG" "$@" <<'EOF' || fail "push_raw $*"
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
EOF
}

# (Not snap_busybox_image: another layout in $T, with /etc, /proc and /dev for the agent's VM.)
# img_demo_image TEXT: pushes demo:1, two layers (busybox-static with sh/echo/cat/ls, then
# /etc/demo holding TEXT), built with umoci. Sets IMAGE=$REG/demo:1.
img_demo_image() {
        local text=$1 layout=$T/demo-layout bb
        bb=$(command -v busybox) || fail "needs busybox-static"
        umoci init --layout "$layout"
        umoci new --image "$layout:1"
        umoci unpack --image "$layout:1" "$T/bundle" >/dev/null
        mkdir -p "$T/bundle/rootfs/bin" "$T/bundle/rootfs/etc" "$T/bundle/rootfs/proc" "$T/bundle/rootfs/dev"
        cp "$bb" "$T/bundle/rootfs/bin/busybox"
        for a in sh echo cat ls; do ln -s busybox "$T/bundle/rootfs/bin/$a"; done
        umoci repack --image "$layout:1" "$T/bundle" >/dev/null
        rm -rf "$T/bundle"
        umoci unpack --image "$layout:1" "$T/bundle" >/dev/null
        echo "$text" >"$T/bundle/rootfs/etc/demo"
        umoci repack --image "$layout:1" "$T/bundle" >/dev/null
        rm -rf "$T/bundle"
        img_push "oci:$layout:1" demo:1
        IMAGE=$REG/demo:1
}
