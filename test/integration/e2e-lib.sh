# Helpers for the CRI end-to-end tests and the pod benchmark (sourced; brings lib.sh and
# snap-lib.sh unless the script sourced them already). A private containerd 1.6 with CRI, handler `kata` (our shim, a copy on PATH,
# ConfigPath = a test copy of configs/runtime/configuration-qemu.toml pointing at build/guest)
# and handler `runc` (Debian's io.containerd.runc.v2), CNI bridge + host-local + loopback in our
# own conf_dir, VM run dirs under $CC_TMP/run.
#   e2e_start [--built FILE]... [--tool NAME]...  the scripts' start: EXIT trap, e2e_require,
#                                the script's own needs, T0, e2e_setup
#   e2e_require                  skip unless every peer is installed; builds the guest image
#   e2e_setup                    shim copy on PATH, run dir, runtime config $E2E_CFG, bridge name
#   e2e_bridge_precreate         the CNI bridge with its gateway address up before any pod
#                                (so a registry can listen there: $E2E_GW)
#   e2e_cni                      the conflist
#   e2e_busybox_registry         a registry on 127.0.0.1 with busybox:1 ($IMAGE) and pause:1
#   e2e_containerd [SNAPSHOTTER] containerd with CRI on $CTRD_SOCK (more runtime entries in
#                                $E2E_EXTRA_RUNTIMES)
#   e2e_runp NAME [HANDLER]      RunPodSandbox; sets E2E_POD (id), records its netns
#   e2e_create POD NAME IMAGE CMD [EXTRA_JSON]  CreateContainer; prints the container id
#   e2e_cleanup                  EXIT trap: shims, VMs, sockets, netns, bridge, then snap_cleanup
# cri / shims / pod_state: small wrappers used by the scripts (sock_of, qemus: lib.sh).
declare -F cc_cleanup >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
declare -F snap_cleanup >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/snap-lib.sh"
NS=k8s.io
E2E_PODS=()
E2E_NETNS=()

e2e_cleanup() {
        local rc=$?
        local p id
        # A run cut short: remove its pods through CRI first while containerd runs (runc pods'
        # processes, CNI), then force what is left.
        if [ -n "${CTRD_SOCK:-}" ] && [ -S "$CTRD_SOCK" ]; then
                for id in "${E2E_PODS[@]}"; do
                        timeout 30 $CRI --address "$CTRD_SOCK" stopp "$id" >/dev/null 2>&1
                        timeout 30 $CRI --address "$CTRD_SOCK" rmp "$id" >/dev/null 2>&1
                done
        fi
        # Shim daemons outlive containerd: ours (found by our private containerd socket in their
        # argv) and any VM under our run dir; runc pods' shims are containerd-shim-runc-v2.
        cc_kill_shims "${CTRD_SOCK:-/nonexistent}"
        cc_kill9 "[c]ontainerd-shim-runc-v2 .*${CTRD_SOCK:-/nonexistent}"
        for id in "${E2E_PODS[@]}"; do rm -f "$(sock_of "$id")"; done
        # A run cut short before RemovePodSandbox leaves the pods' CNI netns (and veths):
        # remove the ones that appeared during this test, then our bridge.
        for p in "${E2E_NETNS[@]}"; do ip netns del "$p" 2>/dev/null; done
        [ -n "${E2E_BR:-}" ] && ip link del "$E2E_BR" 2>/dev/null
        e2e_uninstall_node
        (exit "$rc")
        snap_cleanup
}

e2e_require() {
        SHIM=$BUILD/containerd-shim-kata-cc-v2
        [ -x "$SHIM" ] || cc_fail "$SHIM not built"
        for t in containerd ctr qemu-system-x86_64 docker-registry skopeo umoci protoc-c busybox ip; do
                command -v "$t" >/dev/null || cc_skip "needs $t"
        done
        /usr/bin/python3 -c 'import grpc' 2>/dev/null || cc_skip "python3-grpcio not installed"
        for p in bridge host-local loopback; do
                [ -x "/usr/lib/cni/$p" ] || cc_skip "needs containernetworking-plugins (/usr/lib/cni/$p)"
        done
        cc_guest_image
}

# e2e_start [--built FILE]... [--tool NAME]...: what every e2e script does first: the EXIT trap,
# e2e_require, then FILE must be built (else fail) and NAME installed (else skip), T0 (the
# start time e2e_finish reports), e2e_setup.
e2e_start() {
        trap e2e_cleanup EXIT
        e2e_require
        local built=() tools=() f
        while [ $# -gt 0 ]; do
                case $1 in
                --built) built+=("$2") ;;
                --tool) tools+=("$2") ;;
                *) cc_fail "e2e_start: unknown argument $1" ;;
                esac
                shift 2
        done
        for f in "${built[@]}"; do [ -x "$f" ] || cc_fail "$f not built"; done
        for f in "${tools[@]}"; do command -v "$f" >/dev/null || cc_skip "needs $f"; done
        T0=$(date +%s)
        e2e_setup
}

# e2e_setup [INITRD]: the runtime configuration is the shipped one, pointed at build/guest (or
# INITRD), TCG, the serial channel, 384 MiB.
e2e_setup() {
        local initrd=${1:-build/guest/initrd.img}
        cc_shim_on_path "$SHIM"
        mkdir -p "$CC_TMP/logs"
        E2E_CFG=$CC_TMP/configuration-qemu.toml
        sed -e "s|^kernel = .*|kernel = \"$(realpath build/guest/vmlinuz)\"|" \
                -e "s|^initrd = .*|initrd = \"$(realpath "$initrd")\"|" \
                -e "s|^path = .*|path = \"$(command -v qemu-system-x86_64)\"|" \
                -e 's|^accel = .*|accel = "tcg"|' \
                -e 's|^agent_channel = .*|agent_channel = "serial"|' \
                -e 's|^default_memory = [0-9]*|default_memory = 384|' \
                configs/runtime/configuration-qemu.toml >"$E2E_CFG"
        E2E_BR=cce2e$$
        E2E_BR=${E2E_BR:0:15}
        E2E_NET=10.$((($$ >> 8) % 50 + 200)).$(($$ % 250 + 2))
        E2E_SUBNET=$E2E_NET.0/24
        E2E_GW=$E2E_NET.1
}

# e2e_cfg_set KEY VALUE: replaces `KEY = ...` in the runtime configuration copy.
e2e_cfg_set() {
        sed -i "s|^$1 = .*|$1 = $2|" "$E2E_CFG"
        grep -q "^$1 = $2\$" "$E2E_CFG" || cc_fail "could not set $1 in $E2E_CFG"
}

e2e_bridge_precreate() {
        ip link add "$E2E_BR" type bridge || cc_fail "cannot create bridge $E2E_BR"
        ip addr add "$E2E_GW/24" dev "$E2E_BR" || cc_fail "cannot address $E2E_BR"
        ip link set "$E2E_BR" up
}

e2e_cni() {
        E2E_CNI_DIR=$CC_TMP/cni
        mkdir -p "$E2E_CNI_DIR"
        cat >"$E2E_CNI_DIR/10-e2e.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "cc-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$E2E_BR", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$E2E_SUBNET", "gateway": "$E2E_GW"}]],
              "dataDir": "$CC_TMP/cni-ipam"}},
    {"type": "loopback"}
  ]
}
JSON
}

# e2e_busybox_registry: snap_registry with busybox (two layers) as busybox:1 and, as CRI's
# sandbox image, pause:1; IMAGE=$REG/busybox:1.
e2e_busybox_registry() {
        snap_registry
        snap_busybox_image "$CC_TMP/bb-layout"
        snap_push "$CC_TMP/bb-layout:latest" busybox:1
        snap_push "$CC_TMP/bb-layout:latest" pause:1
        IMAGE=$REG/busybox:1
}

# e2e_cri_toml_net: the CRI plugin's CNI (our conflist) and registry mirror (plain HTTP) tables.
e2e_cri_toml_net() {
        cat <<TOML
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E2E_CNI_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
TOML
}

# e2e_containerd [SNAPSHOTTER]: with a snapshotter other than overlayfs, the cc-snapshotter
# proxy plugin (snap_start first) and CRI's snapshot annotations on.
e2e_containerd() {
        local snapshotter=${1:-overlayfs} proxy=""
        [ "$snapshotter" = overlayfs ] || proxy="[proxy_plugins.cc-snapshotter]
  type = \"snapshot\"
  address = \"$SNAP_SOCK\""
        cc_containerd_dirs containerd
        cc_containerd_config on <<TOML
$proxy
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$REG/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "$snapshotter"
    disable_snapshot_annotations = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
      runtime_type = "io.containerd.kata-cc.v2"
      privileged_without_host_devices = true
      pod_annotations = ["io.katacontainers.*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]
        ConfigPath = "$E2E_CFG"${E2E_EXTRA_RUNTIMES:-}
$(e2e_cri_toml_net)
TOML
        snap_cri_launch containerd
}

cri() { $CRI --address "$CTRD_SOCK" "$@"; }
shims() { pgrep -f -- "[c]ontainerd-shim-kata-cc-v2 .*$CTRD_SOCK" || true; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
pod_state() { cri inspectp "$1" | jget '["status"]["state"]'; }
ctr_state() { cri inspect "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], s["exit_code"])'; }

# e2e_podjson NAME: writes $CC_TMP/NAME.json, a PodSandboxConfig; E2E_POD_EXTRA, when set, is
# more of its fields ('"dns_config": {...}').
e2e_podjson() {
        cat >"$CC_TMP/$1.json" <<JSON
{"metadata": {"name": "$1", "uid": "$1-uid-$$", "namespace": "default", "attempt": 1},
 "hostname": "$1", "log_directory": "$CC_TMP/logs/$1", "linux_": {}${E2E_POD_EXTRA:+, $E2E_POD_EXTRA}}
JSON
        mkdir -p "$CC_TMP/logs/$1"
}

# e2e_runp NAME [HANDLER]: RunPodSandbox for $CC_TMP/NAME.json; E2E_POD = its id ("" on error,
# the error in $CC_TMP/NAME.runp.err).
e2e_runp() {
        local name=$1 handler=${2:-kata}
        e2e_podjson "$name"
        e2e_netns_mark
        E2E_POD=$(cri runp --runtime "$handler" "$CC_TMP/$name.json" 2>"$CC_TMP/$name.runp.err" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["pod_sandbox_id"])' 2>/dev/null)
        [ -n "$E2E_POD" ] && E2E_PODS+=("$E2E_POD")
        e2e_netns_record "$E2E_POD"
}

# e2e_netns_mark before a RunPodSandbox, e2e_netns_record [POD_ID] after it: the pod's network
# namespace joins E2E_NETNS, which the EXIT trap removes if the run is cut short and the
# leftover check looks for. With a pod id it is exactly the pod's own (CRI's verbose status
# names it), so the pods of other tests running meanwhile are never taken for ours; without one
# (RunPodSandbox failed), the cni- namespaces that appeared since the mark and hold an address
# of our own subnet (CNI's, on our bridge). A namespace of another test's pod created in that
# window is not ours: taking it made a refused RunPodSandbox report it as left behind (and
# the EXIT trap could have removed it under that test).
e2e_netns_mark() { E2E_NETNS_MARK=$(ls /run/netns 2>/dev/null | sort); }
e2e_netns_record() {
        local n path
        if [ -n "${1:-}" ] && path=$(cri netns "$1" 2>/dev/null) && [ -n "$path" ]; then
                E2E_NETNS+=("$(basename "$path")")
                return 0
        fi
        for n in $(comm -13 <(echo "$E2E_NETNS_MARK") <(ls /run/netns 2>/dev/null | sort) | grep '^cni-'); do
                ip -n "$n" -4 -o addr show 2>/dev/null | grep -q " inet ${E2E_NET:-none}\." &&
                        E2E_NETNS+=("$n")
        done
}

# e2e_create POD_ID POD_NAME CNAME IMAGE CMD_JSON: prints the container id ("" on error, the
# error in $CC_TMP/CNAME.create.err).
e2e_create() {
        local pod=$1 podname=$2 name=$3 image=$4 cmd=$5
        cat >"$CC_TMP/$name.ctr.json" <<JSON
{"metadata": {"name": "$name"}, "image": {"image": "$image"},
 "command": $cmd, "log_path": "$name.log", "linux_": {}}
JSON
        cri create "$pod" "$CC_TMP/$name.ctr.json" "$CC_TMP/$podname.json" 2>"$CC_TMP/$name.create.err" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])' 2>/dev/null
}

# e2e_leftovers: prints what a pod left behind (VM, shim, run file, mount, netns, bundle, pod).
e2e_leftovers() {
        local left=""
        cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" ||
                left+="QEMU: $(qemus); "
        cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[c]ontainerd-shim-kata-cc-v2 .*$CTRD_SOCK')\" ]" ||
                left+="shim: $(shims); "
        local id
        for id in "${E2E_PODS[@]}"; do
                [ -e "$(sock_of "$id")" ] && left+="socket $(sock_of "$id"); "
        done
        [ -n "$(ls -A "$CC_SHIM_RUN_DIR")" ] && left+="run files: $(ls -A "$CC_SHIM_RUN_DIR"); "
        grep -q "$CC_TMP" /proc/mounts && left+="mounts: $(grep "$CC_TMP" /proc/mounts); "
        # Our pods' namespaces only: other tests on this machine create their own meanwhile.
        local n
        for n in "${E2E_NETNS[@]}"; do [ -e "/run/netns/$n" ] && left+="netns $n; "; done
        [ -n "$(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS" 2>/dev/null)" ] &&
                left+="bundles: $(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS"); "
        [ "$(cri pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("items", [])))')" = 0 ] ||
                left+="CRI pods: $(cri pods); "
        echo "$left"
}

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

e2e_finish() {
        cc_finish "$1" "shim and CRI errors" 'kata-cc|shim|level=error' " ($(($(date +%s) - T0)) s)"
}

# e2e_registry ADDR: docker-registry on ADDR:<free port> with its access log (who fetched
# which blob) in $CC_TMP/registry.log; sets REG.
e2e_registry() {
        snap_registry_at "$1" "$(snap_free_port "$1")" on || cc_fail "registry did not start on $REG"
}

# e2e_node_check IMAGE: the node holds no layer of IMAGE. Prints the measurements; returns 1
# (after saying why) if a layer blob is in containerd's content store, a file is under the
# snapshotter's snapshots, or containerd's overlayfs snapshotter unpacked anything.
e2e_node_check() {
        local img=$1 digest size bad=0 total=0 blobs=$CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256
        local layers
        layers=$(skopeo inspect --raw --tls-verify=false "docker://$img" |
                python3 -c 'import json,sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]')
        [ -n "$layers" ] || { echo "no layers found for $img"; return 1; }
        while read -r digest size; do
                [ -e "$blobs/${digest#sha256:}" ] && { echo "layer $digest ($size bytes) is in the content store"; bad=1; }
                total=$((total + size))
        done <<<"$layers"
        local content_bytes snap_files snap_bytes ovl_bytes=0
        content_bytes=$(find "$blobs" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
        # The pause image (local by the shipped policy) is one file named pause: anything else
        # under the snapshotter's snapshots is layer data of a guest-pulled image.
        snap_files=$(find "$SNAP_ROOT/snapshots" -type f ! -path '*/fs/pause' 2>/dev/null | wc -l)
        snap_bytes=$(du -sb "$SNAP_ROOT/snapshots" 2>/dev/null | cut -f1)
        [ -d "$CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots" ] &&
                ovl_bytes=$(du -sb "$CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots" | cut -f1)
        echo "  $img: $(wc -l <<<"$layers") layers, $total bytes in the registry"
        echo "  containerd content store: $(find "$blobs" -type f | wc -l) blobs, $content_bytes bytes (manifests, configs, the pause image's layer; none of this image's layers)"
        echo "  cc-snapshotter snapshots: $snap_files files besides the pause image's one, $snap_bytes bytes in all (du -sb)"
        echo "  containerd overlayfs snapshots: $ovl_bytes bytes (du -sb)"
        [ "$snap_files" -eq 0 ] || { echo "files under the snapshotter: $(find "$SNAP_ROOT/snapshots" -type f ! -path '*/fs/pause' | head)"; bad=1; }
        [ "$content_bytes" -lt $((total / 4 + 65536)) ] || { echo "content store holds $content_bytes bytes"; bad=1; }
        [ "$ovl_bytes" -lt 65536 ] || { echo "overlayfs snapshots hold $ovl_bytes bytes"; bad=1; }
        return $bad
}

# e2e_pause_image REPO:TAG: a one-layer image holding one small file /pause, pushed as the CRI
# sandbox image (kata pods never run it: the agent is the pod's pause).
e2e_pause_image() {
        local l=$CC_TMP/pause-layout b=$CC_TMP/pause-bundle
        umoci init --layout "$l"
        umoci new --image "$l:latest"
        umoci unpack --image "$l:latest" "$b" >/dev/null
        echo "sandbox image placeholder" >"$b/rootfs/pause"
        umoci repack --image "$l:latest" "$b" >/dev/null
        rm -rf "$b"
        umoci config --image "$l:latest" --config.entrypoint /pause >/dev/null
        snap_push "$l:latest" "$1"
}

# e2e_installed_node: a node set up by the installer, as a node operator does it. The node's own
# containerd config.toml (CRI with its CNI, its registry mirror and sandbox image) is written to
# $E2E_NODE/etc/containerd/config.toml, then `tools/cc-deploy install --dest-root $E2E_NODE`
# installs the binaries, guest image and runtime configurations under
# $E2E_NODE/opt/confidential-containers, merges the runtime entries and the cc-snapshotter proxy
# plugin into that file and starts the snapshotter (supervised: no systemd here) with the
# installed /etc/cc-snapshotter/config.toml. The private containerd 1.6 then runs that merged
# file, with only the node paths moved under $E2E_NODE (root, state and sockets into $CC_TMP).
# The installed configuration-qemu.toml gets what this machine needs: the agent may use the
# registry over plain HTTP (agent.image_insecure=), host rootfs refused, 384 MiB.
# Needs REG, the CNI conflist (e2e_cni) and the images pushed; $E2E_NODE_EXTRA is more of the
# node's own TOML (e.g. a runtime entry of its own). Sets E2E_CFG, SNAP_ROOT, CTRD_*.
e2e_installed_node() {
        E2E_NODE=$CC_TMP/node
        local prefix=$E2E_NODE/opt/confidential-containers
        mkdir -p "$E2E_NODE/etc/containerd"
        cat >"$E2E_NODE/etc/containerd/config.toml" <<TOML
version = 2
# The node's own settings, kept by the installer.
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$REG/pause:1"
$(e2e_cri_toml_net)${E2E_NODE_EXTRA:-}
TOML
        cp "$E2E_NODE/etc/containerd/config.toml" "$CC_TMP/node-config.orig"
        tools/cc-deploy install --dest-root "$E2E_NODE" --no-restart --build "$BUILD" --guest build/guest --source . \
                --containerd-version 1.6 >"$CC_TMP/cc-deploy.log" 2>&1 ||
                { cat "$CC_TMP/cc-deploy.log"; cc_fail "cc-deploy install"; }
        SNAP_ROOT=$E2E_NODE/var/lib/containerd/io.containerd.snapshotter.v1.cc-snapshotter
        SNAP_SOCK=$E2E_NODE/run/cc-snapshotter/cc-snapshotter.sock
        cc_wait_for 10 test -S "$SNAP_SOCK" || { cat "$CC_TMP/cc-deploy.log"; cc_fail "the installed cc-snapshotter is not serving"; }
        # The installed shim and mount helper on containerd's PATH (on a node: /usr/local/bin).
        export PATH=$prefix/bin:$PATH
        E2E_CFG=$prefix/share/defaults/kata-containers/configuration-qemu.toml
        sed -i "s|\"/opt/confidential-containers/|\"$prefix/|" "$E2E_CFG"
        e2e_cfg_set allow_host_rootfs false
        e2e_cfg_set kernel_params "\"agent.image_insecure=$REG\""
        e2e_cfg_set default_memory 384
        cc_containerd_dirs containerd
        python3 test/tools/e2e-node-config.py "$E2E_NODE/etc/containerd/config.toml" "$CTRD_DIR/config.toml" "$CTRD_DIR" "$E2E_NODE"
        snap_cri_launch containerd
}

# e2e_uninstall_node: `cc-deploy uninstall` (stops the supervised snapshotter, restores the
# node's config.toml); returns its status.
e2e_uninstall_node() {
        [ -n "${E2E_NODE:-}" ] || return 0
        tools/cc-deploy uninstall --dest-root "$E2E_NODE" --no-restart >>"$CC_TMP/cc-deploy.log" 2>&1
        local rc=$?
        E2E_NODE=
        return $rc
}

# e2e_runtime_toml NAME CONFIG: a CRI runtime entry, handler NAME on our shim with CONFIG, the
# initdata annotation passed through (for E2E_NODE_EXTRA or E2E_EXTRA_RUNTIMES).
e2e_runtime_toml() {
        cat <<TOML

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1]
      runtime_type = "io.containerd.kata-cc.v2"
      privileged_without_host_devices = true
      pod_annotations = ["io.katacontainers.config.hypervisor.cc_init_data"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1.options]
        ConfigPath = "$2"
TOML
}

# e2e_sidecar_image REPO:TAG: an image of one layer holding busybox alone (a sidecar that only
# sleeps, e.g. the release notes' trusted store holder: its layers are not the app's).
e2e_sidecar_image() {
        local l=$CC_TMP/sidecar-layout b=$CC_TMP/sidecar-bundle
        umoci init --layout "$l" && umoci new --image "$l:latest"
        umoci unpack --image "$l:latest" "$b" >/dev/null
        mkdir -p "$b/rootfs/bin" && cp /bin/busybox "$b/rootfs/bin/busybox"
        umoci repack --image "$l:latest" "$b" >/dev/null
        rm -rf "${b:?}"
        snap_push "$l:latest" "$1"
}

# e2e_image_add LAYOUT FILE NAME: a new layer on LAYOUT:latest holding FILE as /NAME.
e2e_image_add() {
        local b=$CC_TMP/add-bundle
        umoci unpack --image "$1:latest" "$b" >/dev/null
        cp "$2" "$b/rootfs/$3"
        umoci repack --image "$1:latest" "$b" >/dev/null
        rm -rf "${b:?}"
}
