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

img_setup() {
        [ "$(id -u)" -eq 0 ] || { echo "needs root (overlay mounts, whiteout device nodes, chown)"; exit 77; }
        for tool in docker-registry skopeo umoci curl python3; do
                command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
        done
        [ -x "$PULL" ] || fail "$PULL not built"
        T=$(mktemp -d /tmp/img-test.XXXXXX)
        trap img_cleanup EXIT
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
        python3 test/tools/img-tree.py "$dir/m" "$ref" || { umount "$dir/m"; fail "rootfs differs from umoci unpack"; }
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
        python3 test/tools/img-mkimage.py "$@" || fail "mkimage $*"
}

# img_tar OUT 'python statements using add(name, data=None, mode=0o644, kind="f", link=None)'
img_tar() {
        python3 test/tools/img-tar.py "$1" "$2" || fail "tar $1"
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
        python3 test/tools/img-push-raw.py "$REG" "$@" || fail "push_raw $*"
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
