#!/usr/bin/env bash
# Pod networking with the libvirt backend (issue 8), through the shim, a real containerd 1.6 +
# ctr, libvirtd (qemu:///system) and QEMU TCG. libvirtd takes no tap fds and opens taps by name
# in its own (the host's) namespace, so the shim runs shim_net_setup with SHIM_NET_HOST_TAP: a
# persistent tap cct<hex> in the host namespace, which the domain XML names
# (<interface type='ethernet'>, <target managed='no'/>), joined to the pod's eth0 by a veth pair
# (ccp<hex> in the pod namespace, cch<hex> in the host's) and tc mirred on both sides.
#   1. a container in the VM runs a TCP echo server: a client in the "node" namespace connects
#      to the pod's address and gets its bytes back; the VM connects out to the node. While it
#      runs, libvirt's domain has the host tap as its interface. After the pod: the pod namespace
#      holds only lo and eth0 without filters or ingress qdisc, the host namespace no cct/cch
#      link, libvirt no domain, and no shim or run file is left.
#   2. kill -9 of the shim: containerd's `shim delete` removes the filters on eth0, the pair and
#      the persistent host tap (from the state file); the domain goes with the shim's connection.
# The default static shim has no libvirt backend: the test links a dynamic one from the tree.
# All traffic stays between the two namespaces the test made; the only host-namespace devices
# are the test pods' own cct/cch links, and the test checks they are gone.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hv-guest.sh"
NS=netlibvirt
POD=cclvpod$$
NODE=cclvnode$$
N=$(($$ % 200 + 20))
POD_IP=10.198.$N.2
NODE_IP=10.198.$N.1
VIRSH=(virsh -c qemu:///system)

host_links() { ip -o link | grep -oE 'cc[th][0-9a-f]{8}' | sort | tr '\n' ' ' || true; }

net_cleanup() {
        local rc=$?
        local id
        cc_kill_shims "-address $CC_TMP/"
        for id in srv crash; do
                "${VIRSH[@]}" destroy "$id" >/dev/null 2>&1
                rm -f "$(sock_of "$id")"
        done
        # Our pods' host devices, if a failed run left any (names made by this test only).
        for id in ${HOST_NEW:-}; do ip link del "$id" 2>/dev/null; done
        ip netns del "$POD" 2>/dev/null
        ip netns del "$NODE" 2>/dev/null
        hv_libvirtd_stop
        (exit "$rc")
        cc_cleanup
}
trap net_cleanup EXIT
[ "$(id -u)" -eq 0 ] || cc_skip "needs root"
[ -x /usr/sbin/libvirtd ] && [ -x /usr/sbin/virtlogd ] || cc_skip "libvirt-daemon-system not installed"
command -v virsh >/dev/null || cc_skip "needs virsh"
command -v qemu-system-x86_64 >/dev/null || cc_skip "needs qemu-system-x86_64"
command -v socat >/dev/null || cc_skip "needs socat"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || cc_skip "needs busybox-static"
[ -f build/guest/vmlinuz ] && [ -f build/guest/initrd.img ] || cc_skip "needs the guest image (make guest-image)"
SHIM=$BUILD/containerd-shim-kata-cc-v2
[ -x "$SHIM" ] || cc_fail "$SHIM not built"
SHIM=$(realpath "$SHIM")
# The default static shim has no libvirt backend (shim/module.mk): link a dynamic one from the
# same tree for this test.
if ! ldd "$SHIM" 2>/dev/null | grep -q libvirt; then
        make -s -j2 SHIM_LINK=dynamic BUILD="$CC_TMP/dyn" "$CC_TMP/dyn/containerd-shim-kata-cc-v2" >"$CC_TMP/dyn-build.log" 2>&1 ||
                { cat "$CC_TMP/dyn-build.log"; cc_fail "cannot build a dynamic shim"; }
        SHIM=$CC_TMP/dyn/containerd-shim-kata-cc-v2
fi

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

hv_libvirtd_start "$CC_TMP"
[ -S /run/libvirt/libvirt-sock ] || cc_fail "libvirtd did not come up"
HOST_BEFORE=$(host_links)

cc_pod_node_netns

cc_shim_on_path "$SHIM"
ROOTFS=$CC_TMP/rootfs
cc_busybox_rootfs "$ROOTFS" busybox sh cat
CFG=$CC_TMP/configuration-libvirt.toml
cc_qemu_toml 384 "backend = \"libvirt\"
path = \"$(command -v qemu-system-x86_64)\"
default_vcpus = 1
kernel_params = \"quiet\"" >"$CFG"
cc_start_containerd
cc_ctr_wrapper
RT=(--runtime io.containerd.kata-cc.v2 --runtime-config-path "$CFG")

check_clean() {
        local id=$1 what=$2 host
        cc_pod_left_nothing "$id" "$what"
        host=$(host_links)
        [ "$host" = "$HOST_BEFORE" ] && ok "$what: no cct/cch link left in the host namespace" ||
                fail "$what: host namespace links '$host' (before '$HOST_BEFORE')"
}

# --- 1. echo server in the VM, a client in the node namespace; the VM connects out ------------
cc_bg node-sink ip netns exec "$NODE" socat -u "TCP-LISTEN:8888,bind=$NODE_IP,reuseaddr,fork" \
        "OPEN:$CC_TMP/sink.out,creat,append"
ctr_ run -d "${RT[@]}" --with-ns "network:/var/run/netns/$POD" --rootfs "$ROOTFS" srv \
        /bin/sh -c 'busybox nc -ll -p 7777 -e /bin/cat' || cc_fail "run -d srv"
cc_wait_for 180 bash -c "ctr_ task ls | grep -q 'srv .*RUNNING'" || cc_fail "srv not RUNNING: $(ctr_ task ls)"
HOST_NEW=$(host_links)
tap=$(grep -oE 'cct[0-9a-f]{8}' <<<"$HOST_NEW" | head -n1)
iflist=$("${VIRSH[@]}" domiflist srv 2>&1)
echo "$iflist"
[ -n "$tap" ] && [[ "$iflist" == *"$tap"*ethernet*virtio*"$POD_MAC"* ]] &&
        ok "libvirt's domain srv has the host tap $tap (ethernet, virtio, the pod's MAC)" ||
        fail "domiflist srv: '$iflist' (host links '$HOST_NEW')"
dumpxml=$("${VIRSH[@]}" dumpxml srv 2>&1)
[[ "$dumpxml" == *"<target dev='$tap' managed='no'/>"* ]] && ok "the tap is unmanaged (managed='no')" ||
        fail "no <target dev='$tap' managed='no'/> in the domain XML"
pod_links=$(ip -n "$POD" -o link)
filters=$(tc -n "$POD" filter show dev eth0 ingress)
[[ "$pod_links" =~ ccp[0-9a-f]{8} ]] && [[ "$filters" =~ "Egress Redirect to device ccp" ]] &&
        ok "the pair's end ccp in the pod namespace, eth0 ingress redirected to it" ||
        fail "pod namespace while running: $pod_links / $filters"
tap_state=$(ip -o link show "$tap" 2>&1)
[[ "$tap_state" == *LOWER_UP* ]] && ok "the host tap has a carrier (QEMU holds it)" ||
        fail "host tap: $tap_state"
cc_pod_traffic srv libvirt
ping_out=$(ip netns exec "$NODE" "$BUSYBOX" ping -c 3 -W 5 "$POD_IP" 2>&1)
[[ "$ping_out" == *" 0% packet loss"* ]] && ok "node -> pod ping: 3 of 3 answered by the guest" ||
        fail "ping: $ping_out"
ctr_ task kill -s SIGKILL srv
cc_wait_for 60 bash -c "ctr_ task ls | grep -q 'srv .*STOPPED'" || fail "srv did not stop"
ctr_ task delete srv >/dev/null || fail "task delete srv"
ctr_ container rm srv || fail "container rm srv"
doms=$("${VIRSH[@]}" list --all --name 2>&1)
[[ "$doms" != *srv* ]] && ok "no libvirt domain srv left" || fail "domains: $doms"
check_clean srv "after the pod"

# --- 2. kill -9 of the shim: `shim delete` removes the pair and the persistent host tap ---------
ctr_ run -d "${RT[@]}" --with-ns "network:/var/run/netns/$POD" --rootfs "$ROOTFS" crash \
        /bin/sh -c 'while true; do busybox sleep 1; done' || cc_fail "run -d crash"
cc_wait_for 180 bash -c "ctr_ task ls | grep -q 'crash .*RUNNING'" || cc_fail "crash not RUNNING"
HOST_NEW=$(host_links)
[[ "$HOST_NEW" =~ cct[0-9a-f]{8} ]] || fail "no host tap while crash runs: '$HOST_NEW'"
spid=$(pgrep -f -- "[c]ontainerd-shim-kata-cc-v2 -namespace $NS -address $CTRD_SOCK .*-id crash\$" | head -n1)
[ -n "$spid" ] && kill -9 "$spid"
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'crash .*STOPPED' || ! ctr_ task ls | grep -q crash" ||
        fail "crash after shim kill: $(ctr_ task ls)"
ctr_ task delete crash >/dev/null 2>&1
ctr_ container rm crash || fail "container rm crash"
# The transient domain is AUTODESTROY: it goes when the dead shim's libvirt connection does.
doms=$("${VIRSH[@]}" list --all --name 2>&1)
[[ "$doms" != *crash* ]] && ok "no libvirt domain crash left after the shim's death" || fail "domains: $doms"
check_clean crash "after kill -9 of the shim"

[ "$fails" -eq 0 ] || cc_fail "$fails check(s) failed"
echo "PASS: net-libvirt"
