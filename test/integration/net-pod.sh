#!/usr/bin/env bash
# Pod networking through the shim (issue 8), with a real containerd 1.6 + ctr and QEMU TCG.
# The test makes a "pod" network namespace with a veth (eth0, an address, a default route) whose
# peer is in a second "node" namespace; `ctr run --with-ns network:/var/run/netns/<pod>` gives
# the sandbox spec that namespace, and the shim (network_model tcfilter, the default) puts a tap
# there, mirrors it with eth0 through tc and hands it to QEMU.
#   1. a container in the VM runs a TCP echo server: a client in the node namespace connects to
#      the pod's address and gets its bytes back; a process in the VM connects out to a server in
#      the node namespace. After the pod: the pod namespace holds only lo and eth0, eth0 has no
#      filter or ingress qdisc, and no QEMU, shim, socket or run file is left.
#   2. kill -9 of the shim: containerd's `shim delete` removes the filters left on eth0.
#   3. network_model = none: the guest has no NIC but lo; network_model = user: QEMU's slirp,
#      the guest's eth0 configured as 10.0.2.15/24 and reaching the host's loopback at 10.0.2.2.
#   4. refusals: host networking (ctr --net-host, and the host's own namespace) for a TEE
#      profile, and a bad network_model value (file:line in ctr's error); a start that fails
#      after the network was set up (agent too slow) leaves nothing in the pod namespace.
#   5. guest pull through the pod network: containerd, cc-snapshotter and a docker-registry
#      run in the node namespace; the image is pulled by the agent over veth -> tc -> tap, and
#      no layer blob reaches the host.
# All traffic stays between the two namespaces the test made (and loopback).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snap-lib.sh"
NS=nettest
POD=ccpod$$
NODE=ccnode$$
N=$(($$ % 200 + 20))
POD_IP=10.199.$N.2
NODE_IP=10.199.$N.1

net_cleanup() {
        local rc=$?
        local id sock
        # Two containerds (the second one for the guest pull) have their sockets in $CC_TMP.
        cc_kill_shims "-address $CC_TMP/"
        for id in srv crash none user badhost badhostns badmodel badlate pull; do
                for sock in "$CC_TMP/containerd/containerd.sock:$NS" "$CC_TMP/containerd-node/containerd.sock:k8s.io"; do
                        rm -f "$(CTRD_SOCK=${sock%:*} NS=${sock##*:} sock_of "$id")"
                done
        done
        # A namespace whose name is removed lives on until its last process (the daemons are
        # stopped by pid here), then goes with its veth.
        umount "$CC_TMP/hostnet" 2>/dev/null
        snap_stop_unmount
        ip netns del "$POD" 2>/dev/null
        ip netns del "$NODE" 2>/dev/null
        (exit "$rc")
        cc_cleanup
}
trap net_cleanup EXIT
SHIM=$BUILD/containerd-shim-kata-cc-v2
[ -x "$SHIM" ] || cc_fail "$SHIM not built"
SHIM=$(realpath "$SHIM")
command -v qemu-system-x86_64 >/dev/null || cc_skip "needs qemu-system-x86_64"
command -v socat >/dev/null || cc_skip "needs socat"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || cc_skip "needs busybox-static"
# Not cc_guest_image: this test does not build the image, it skips without it.
[ -f build/guest/vmlinuz ] && [ -f build/guest/initrd.img ] || cc_skip "needs the guest image (make guest-image)"
KERNEL=$(realpath build/guest/vmlinuz)
INITRD=$(realpath build/guest/initrd.img)

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# --- the namespaces: pod (eth0 10.199.N.2/24, default via .1) <-> node (10.199.N.1/24) ---------
cc_pod_node_netns

cc_shim_on_path "$SHIM"
ROOTFS=$CC_TMP/rootfs
cc_busybox_rootfs "$ROOTFS" busybox sh cat

# $1: extra [runtime] lines.
write_cfg() {
        cc_qemu_toml 384 "path = \"$(command -v qemu-system-x86_64)\"
machine_type = \"q35\"
default_vcpus = 1
kernel_params = \"quiet ${EXTRA_KPARAMS:-}\"" "$1"
}
CFG=$CC_TMP/configuration-qemu.toml
write_cfg "" >"$CFG"

cc_start_containerd
cc_ctr_wrapper
RT=(--runtime io.containerd.kata-cc.v2 --runtime-config-path "$CFG")

# The pod namespace holds only what the test made; nothing of pod $1 is left.
check_clean() {
        local id=$1 what=$2
        cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" ||
                fail "$what: QEMU still runs: $(qemus)"
        cc_pod_left_nothing "$id" "$what"
}

# --- 1. echo server in the VM, a client in the node namespace; the VM connects out ------------
cc_bg node-sink ip netns exec "$NODE" socat -u "TCP-LISTEN:8888,bind=$NODE_IP,reuseaddr,fork" \
        "OPEN:$CC_TMP/sink.out,creat,append"
ctr_ run -d "${RT[@]}" --with-ns "network:/var/run/netns/$POD" --rootfs "$ROOTFS" srv \
        /bin/sh -c 'busybox nc -ll -p 7777 -e /bin/cat' || fail "run -d srv"
cc_wait_for 120 bash -c "ctr_ task ls | grep -q 'srv .*RUNNING'" || fail "srv not RUNNING: $(ctr_ task ls)"
links=$(ip -n "$POD" -o link)
filters=$(tc -n "$POD" filter show dev eth0 ingress)
[[ "$links" == *tap0_cc* ]] && [[ "$filters" == *mirred* ]] && [[ "$filters" == *tap0_cc* ]] &&
        ok "tap0_cc in the pod namespace, eth0 ingress redirected to it" ||
        fail "pod namespace while running: $links / $filters"
guest_rt=$(ctr_ task exec --exec-id ip3 srv /bin/busybox ip route 2>&1)
[[ "$guest_rt" == *"default via $NODE_IP"* ]] && ok "the guest has the pod's default route" ||
        fail "guest routes: $guest_rt"
cc_pod_traffic srv pod
ctr_ task kill -s SIGKILL srv
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'srv .*STOPPED'" || fail "srv did not stop"
ctr_ task delete srv >/dev/null || fail "task delete srv"
ctr_ container rm srv || fail "container rm srv"
check_clean srv "after the pod"

# --- 2. kill -9 of the shim: `shim delete` removes the filters it left ----------------------------
ctr_ run -d "${RT[@]}" --with-ns "network:/var/run/netns/$POD" --rootfs "$ROOTFS" crash \
        /bin/sh -c 'while true; do busybox sleep 1; done' || fail "run -d crash"
cc_wait_for 120 bash -c "ctr_ task ls | grep -q 'crash .*RUNNING'" || fail "crash not RUNNING"
filters=$(tc -n "$POD" filter show dev eth0 ingress)
[[ "$filters" == *mirred* ]] || fail "no filter on eth0 while crash runs"
spid=$(pgrep -f -- "[c]ontainerd-shim-kata-cc-v2 -namespace $NS -address $CTRD_SOCK .*-id crash\$" | head -n1)
[ -n "$spid" ] && kill -9 "$spid"
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'crash .*STOPPED' || ! ctr_ task ls | grep -q crash" ||
        fail "crash after shim kill: $(ctr_ task ls)"
ctr_ task delete crash >/dev/null 2>&1
ctr_ container rm crash || fail "container rm crash"
check_clean crash "after kill -9 of the shim"

# --- 3. network_model = none: no NIC ----------------------------------------------------------------
write_cfg 'network_model = "none"' >"$CC_TMP/none.toml"
out=$(timeout 180 ctr_ run --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/none.toml" \
        --with-ns "network:/var/run/netns/$POD" --rootfs "$ROOTFS" none /bin/busybox ls /sys/class/net 2>&1)
[ "$(echo "$out" | tr -s ' \n' ' ' | sed 's/ $//')" = "lo" ] && ok "network_model = none: the guest has only lo" ||
        fail "network_model none: /sys/class/net is '$out'"
ctr_ task delete none >/dev/null 2>&1
ctr_ container rm none || fail "container rm none"
check_clean none "network_model none"

# network_model = user (development): QEMU's slirp, the guest NIC configured by the shim as
# slirp expects; the guest reaches the host's loopback as 10.0.2.2.
LPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cc_bg loop-sink socat -u "TCP-LISTEN:$LPORT,bind=127.0.0.1,reuseaddr,fork" "OPEN:$CC_TMP/loop.out,creat,append"
write_cfg 'network_model = "user"' >"$CC_TMP/user.toml"
out=$(timeout 180 ctr_ run --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/user.toml" \
        --rootfs "$ROOTFS" user /bin/sh -c "busybox ip -o addr show eth0; busybox ip route; echo hello-loopback-$$ | busybox nc 10.0.2.2 $LPORT" 2>&1)
[[ "$out" == *"10.0.2.15/24"* ]] && [[ "$out" == *"default via 10.0.2.2"* ]] &&
        ok "network_model = user: the guest's eth0 is 10.0.2.15/24, default via 10.0.2.2" ||
        fail "network_model user: $out"
cc_wait_for 10 grep -q "hello-loopback-$$" "$CC_TMP/loop.out" && ok "network_model = user: the guest reached the host's loopback" ||
        fail "loopback sink has '$(cat "$CC_TMP/loop.out" 2>/dev/null)'"
ctr_ task delete user >/dev/null 2>&1
ctr_ container rm user || fail "container rm user"
check_clean user "network_model user"

# --- 4. refusals: the Create error names the file and the reason ------------------------------------
bad_case() { cc_bad_config bad 260 "$@"; }
# The mock backend runs on any host, so the TEE profile reaches the network check here.
TEE_MOCK="[hypervisor.qemu]
backend = \"mock\"
kernel = \"$KERNEL\"
confidential_guest = true
tee = \"tdx\""
bad_case host "host networking is not supported for confidential pods \(TEE profile tdx\)" --net-host <<<"$TEE_MOCK"
# The host's namespace by a path of its own (PID 1's /proc entry may be closed to us).
touch "$CC_TMP/hostnet"
mount --bind /proc/self/ns/net "$CC_TMP/hostnet" || fail "bind mount of the host netns"
bad_case hostns "host networking is not supported for confidential pods: $CC_TMP/hostnet is the host's" \
        --with-ns "network:$CC_TMP/hostnet" <<<"$TEE_MOCK"
bad_case model ":[0-9]+: key 'network_model': unknown network model 'bridge' \(tcfilter, none, user\)" \
        --with-ns "network:/var/run/netns/$POD" <<TOML
[hypervisor.qemu]
kernel = "$KERNEL"
initrd = "$INITRD"
[runtime]
network_model = "bridge"
TOML
umount "$CC_TMP/hostnet"
# A start that fails after the pod network was set up (a guest that boots but never runs an
# agent, so the wait ends at dial_timeout on any machine): the tap, the filters and the qdiscs
# go with the VM.
cc_hang_initrd "$CC_TMP/hang.img"
bad_case late "did not answer Health.Check within 1 s" --with-ns "network:/var/run/netns/$POD" <<TOML
[hypervisor.qemu]
path = "$(command -v qemu-system-x86_64)"
kernel = "$KERNEL"
initrd = "$CC_TMP/hang.img"
default_memory = 384
accel = "tcg"
agent_channel = "serial"
[agent.kata]
dial_timeout = 1
[runtime]
allow_host_rootfs = true
TOML

# --- 5. guest pull through the pod network ----------------------------------------------------------
# containerd (with CRI), the registry and the shim's VMM run in the node namespace (unix sockets
# are not namespaced; cc-snapshotter needs no network): the image reference names the node's
# address, containerd fetches only the manifest and config from there, and the agent in the VM
# pulls the layers over eth0 -> tc -> tap, the only NIC it has.
pull_section() {
        local t
        for t in docker-registry skopeo umoci; do
                command -v $t >/dev/null || { echo "SKIP guest pull: $t not installed"; return 0; }
        done
        /usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "SKIP guest pull: python3-grpcio not installed"; return 0; }
        [ -x "$SNAP_BIN" ] && [ -x "$BUILD/nydus-overlayfs" ] || { fail "cc-snapshotter or nydus-overlayfs not built"; return 0; }
        cp "$BUILD/nydus-overlayfs" "$CC_TMP/bin/"
        mkdir -p "$CC_TMP/nodebin"
        snap_registry_at "$NODE_IP" 5000 off "$NODE" || { fail "registry did not start on $REG"; return 0; }
        snap_busybox_image "$CC_TMP/oci" >/dev/null
        # 4 MiB of incompressible data: the tap's counters cannot miss it.
        local b=$CC_TMP/bundle
        umoci unpack --image "$CC_TMP/oci:latest" "$b" >/dev/null
        head -c $((4 << 20)) /dev/urandom >"$b/rootfs/big.bin"
        umoci repack --image "$CC_TMP/oci:latest" "$b" >/dev/null
        rm -rf "$b"
        ip netns exec "$NODE" skopeo copy -q --insecure-policy --dest-tls-verify=false \
                "oci:$CC_TMP/oci:latest" "docker://$REG/cc/app:1" >"$CC_TMP/skopeo.log" 2>&1 ||
                { fail "push: $(cat "$CC_TMP/skopeo.log")"; return 0; }
        local IMG=$REG/cc/app:1
        snap_start
        printf '#!/bin/sh\nexec ip netns exec "%s" /usr/bin/containerd "$@"\n' "$NODE" >"$CC_TMP/nodebin/containerd"
        chmod +x "$CC_TMP/nodebin/containerd"
        PATH=$CC_TMP/nodebin:$PATH snap_containerd_cri cc-snapshotter containerd-node
        local C="ctr --address $CTRD_SOCK -n k8s.io"
        $CRI --address "$CTRD_SOCK" pull "$IMG" >"$CC_TMP/pull.json" || { fail "CRI PullImage $IMG"; return 0; }
        EXTRA_KPARAMS="agent.image_insecure=$REG" write_cfg '' >"$CC_TMP/pull.toml"
        $C run -d --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/pull.toml" \
                --snapshotter cc-snapshotter --with-ns "network:/var/run/netns/$POD" "$IMG" pull \
                /bin/sh -c 'while true; do busybox sleep 1; done' >"$CC_TMP/pull-run.log" 2>&1 ||
                fail "ctr run of the guest-pulled image: $(cat "$CC_TMP/pull-run.log")"
        cc_wait_for 180 bash -c "$C task ls | grep -q 'pull .*RUNNING'" || fail "pull not RUNNING: $($C task ls)"
        local hello size tx
        hello=$($C task exec --exec-id h pull /bin/cat /hello.txt 2>&1)
        size=$($C task exec --exec-id s pull /bin/busybox wc -c /big.bin 2>&1)
        [ "$hello" = "hello from layer 2" ] && [[ "$size" == "4194304 /big.bin"* ]] &&
                ok "the guest pulled $IMG through the pod network (layer 2: '$hello'; $size)" ||
                fail "guest-pulled rootfs: '$hello' '$size'"
        # Bytes the tap carried to the guest: at least the 4 MiB layer.
        tx=$(ip -n "$POD" -s -j link show tap0_cc | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["bytes"])')
        [ "${tx:-0}" -ge $((4 << 20)) ] && ok "tap0_cc carried $tx bytes to the guest (registry -> node -> veth -> tc -> tap -> VM)" ||
                fail "tap0_cc tx bytes ${tx:-none}"
        $C task kill -s SIGKILL pull
        cc_wait_for 30 bash -c "$C task ls | grep -q 'pull .*STOPPED'" || fail "pull did not stop"
        $C task delete pull >/dev/null || fail "task delete pull"
        $C container rm pull || fail "container rm pull"
        NS=k8s.io check_clean pull "after the guest pull"
        # The node never held a layer: only the manifest and config are in containerd's store.
        local layers digest lsize blobs=$CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256 bad=0
        layers=$(ip netns exec "$NODE" skopeo inspect --raw --tls-verify=false "docker://$IMG" |
                /usr/bin/python3 -c 'import json,sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]')
        [ "$(wc -l <<<"$layers")" -eq 3 ] || fail "expected 3 layers: $layers"
        while read -r digest lsize; do
                [ -e "$blobs/${digest#sha256:}" ] && { fail "layer $digest ($lsize bytes) is on the host"; bad=1; }
        done <<<"$layers"
        [ "$bad" = 0 ] && ok "no layer blob on the host ($(find "$blobs" -type f | wc -l) blobs, $(find "$blobs" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}') bytes: manifest and config)"
}
pull_section

cc_finish net-pod "shim lines" 'kata-cc|shim'
