# Helpers for the cc-snapshotter integration tests (sourced after lib.sh).
#   snap_require ROOT_REASON TOOL...  EXIT trap; skip unless root and every TOOL installed
#   snap_start [CONFIG_BODY]     cc-snapshotter on $SNAP_SOCK with root $SNAP_ROOT
#   snap_containerd [EXTRA_TOML] containerd with the proxy plugin cc-snapshotter
#   snap_registry                docker-registry on 127.0.0.1:$REG_PORT ($REG)
#   snap_registry_at ADDR PORT ACCESS_LOG [NETNS]   the same on ADDR:PORT
#   snap_containerd_cri SNAPSHOTTER [NAME]  containerd with CRI (snap_cri_launch: start it)
#   snap_busybox_image LAYOUT    a two-layer busybox OCI image at LAYOUT:latest
#   snap_push LAYOUT REPO:TAG    copy it into the registry
#   snap_cleanup                 EXIT trap: unmount what is left under $CC_TMP, then cc_cleanup
SNAP_ROOT=$CC_TMP/snap
SNAP_SOCK=$CC_TMP/snap.sock
SNAP_BIN=$BUILD/cc-snapshotter

# snap_require ROOT_REASON TOOL...: installs snap_cleanup as the EXIT trap, then skips unless
# running as root (ROOT_REASON is the skip message; "" when root is not needed) and every TOOL
# is installed.
snap_require() {
        trap snap_cleanup EXIT
        [ -z "$1" ] || [ "$(id -u)" = 0 ] || cc_skip "$1"
        shift
        local t
        for t in "$@"; do command -v "$t" >/dev/null || cc_skip "$t not installed"; done
}

snap_cleanup() {
        local rc=$?
        snap_stop_unmount
        (exit "$rc")
        cc_cleanup
}

# snap_stop_unmount: stops the daemons first (containerd holds the mounts), then unmounts
# anything left below our temp dir, deepest first, so rm -rf never walks into a mount.
snap_stop_unmount() {
        for ((i = ${#CC_PIDS[@]} - 1; i >= 0; i--)); do cc_stop_pid "${CC_PIDS[$i]}"; done
        CC_PIDS=()
        awk -v d="$CC_TMP" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
                while read -r m; do umount -l "$m" 2>/dev/null; done
}

# With no CONFIG_BODY no --config is passed: the built-in defaults are policy mode with
# CRI pulls guest by default.
snap_start() {
        local body=${1:-} cfg=()
        if [ -n "$body" ]; then
                printf '%s\n' "$body" >"$CC_TMP/snap.toml"
                cfg=(--config "$CC_TMP/snap.toml")
        fi
        cc_bg snap "$SNAP_BIN" "${cfg[@]}" --root "$SNAP_ROOT" \
                --address "$SNAP_SOCK" --log-level debug
        cc_wait_for 10 test -S "$SNAP_SOCK" || cc_fail "cc-snapshotter did not start"
}

snap_containerd() {
        cc_start_containerd "[proxy_plugins.cc-snapshotter]
  type = \"snapshot\"
  address = \"$SNAP_SOCK\"
${1:-}"
}

# snap_free_port [ADDR]: a TCP port free on ADDR (default 127.0.0.1).
snap_free_port() {
        python3 -c "import socket; s=socket.socket(); s.bind(('${1:-127.0.0.1}',0)); print(s.getsockname()[1])"
}

# snap_registry_at ADDR PORT ACCESS_LOG [NETNS]: docker-registry on ADDR:PORT, config and data
# under $CC_TMP/registry, run in network namespace NETNS if given; sets REG. ACCESS_LOG "on":
# level info with the access log (who fetched which blob) in $CC_TMP/registry.log; otherwise
# errors only. Returns 1 if nothing accepts connections there within 20 s.
snap_registry_at() {
        local addr=$1 port=$2 log=$'  level: error\n  accesslog:\n    disabled: true' pre=()
        [ "$3" = on ] && log="  level: info"
        [ -n "${4:-}" ] && pre=(ip netns exec "$4")
        REG=$addr:$port
        mkdir -p "$CC_TMP/registry"
        cat >"$CC_TMP/registry/config.yml" <<YML
version: 0.1
log:
$log
storage:
  filesystem:
    rootdirectory: $CC_TMP/registry/data
http:
  addr: $REG
YML
        cc_bg registry "${pre[@]}" docker-registry serve "$CC_TMP/registry/config.yml"
        cc_wait_for 20 "${pre[@]}" /usr/bin/python3 -c "import socket; socket.create_connection(('$addr', $port))"
}

snap_registry() {
        REG_PORT=$(snap_free_port)
        snap_registry_at 127.0.0.1 "$REG_PORT" off || cc_fail "registry did not start"
}

# A busybox image in two layers (busybox + applets, then a file), so containers get a real
# overlay with two lower directories.
snap_busybox_image() {
        local layout=$1 b=$CC_TMP/bundle
        umoci init --layout "$layout"
        umoci new --image "$layout:latest"
        umoci unpack --image "$layout:latest" "$b" >/dev/null
        mkdir -p "$b/rootfs/bin"
        cp /bin/busybox "$b/rootfs/bin/busybox"
        for a in sh echo cat ls; do ln -s busybox "$b/rootfs/bin/$a"; done
        umoci repack --image "$layout:latest" "$b" >/dev/null
        rm -rf "$b"
        umoci unpack --image "$layout:latest" "$b" >/dev/null
        echo "hello from layer 2" >"$b/rootfs/hello.txt"
        umoci repack --image "$layout:latest" "$b" >/dev/null
        rm -rf "$b"
        umoci config --image "$layout:latest" --config.cmd /bin/sh >/dev/null
}

snap_push() {
        skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$1" "docker://$REG/$2" \
                >"$CC_TMP/skopeo.log" 2>&1 || { cat "$CC_TMP/skopeo.log"; cc_fail "push $2"; }
}

# snap_containerd_cri SNAPSHOTTER: a private containerd with CRI on, pulling through
# SNAPSHOTTER with the snapshot annotations on, and the local registry over plain HTTP.
# (lib.sh's starter always disables CRI.) Sets CTRD_SOCK, CTRD_ROOT.
snap_containerd_cri() {
        local snapshotter=$1 name=${2:-containerd}
        cc_containerd_dirs "$name"
        cc_containerd_config on <<TOML
[proxy_plugins.cc-snapshotter]
  type = "snapshot"
  address = "$SNAP_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  stats_collect_period = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
    disable_snapshot_annotations = false
    discard_unpacked_layers = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$CTRD_DIR/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
TOML
        snap_cri_launch "$name"
}

# snap_cri_launch NAME: containerd (with CRI) on $CTRD_DIR/config.toml, up when CRI answers.
snap_cri_launch() {
        cc_containerd_launch "$1"
        cc_wait_for 30 $CRI --address "$CTRD_SOCK" version || cc_fail "CRI did not come up"
}

CRI="/usr/bin/python3 test/cri/cri.py"
