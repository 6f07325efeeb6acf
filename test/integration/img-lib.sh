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
        local m p
        for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
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
        echo "ok  $desc: $(tail -n1 "$T/err")"
}

# Nothing may remain in a store's staging area after a failed pull, and no layer published.
assert_clean_store() { # store
        [ -z "$(ls -A "$1/staging" 2>/dev/null)" ] || fail "staging not empty: $(ls "$1/staging")"
        [ -z "$(ls -A "$1/layers/sha256" 2>/dev/null)" ] || fail "a layer was published"
}
