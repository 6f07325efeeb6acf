#!/usr/bin/env bash
# Pod networking, tcfilter model (shim/network): a "node" and a "pod" namespace joined by a veth
# pair, the pod end with an address and a default route, as a CNI bridge plugin leaves it. The
# test tool runs shim_net_setup() on the pod namespace, answers ARP and ICMP echo on the tap fd
# as the guest would, while the node pings the pod's address; then it tears down, and the pod
# namespace must look exactly as before. All traffic stays in the two namespaces created here.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
TOOL=$BUILD/test/tools/net-tcfilter
POD=cc-nt-$$-pod
NODE=cc-nt-$$-node
HOSTNS=cc-nt-$$-host
net_cleanup() {
        local rc=$?
        ip netns del "$HOSTNS" 2>/dev/null || true
        ip netns del "$POD" 2>/dev/null || true
        ip netns del "$NODE" 2>/dev/null || true
        return $rc
}
trap 'net_cleanup; cc_cleanup' EXIT
[ "$(id -u)" -eq 0 ] || cc_skip "needs root (network namespaces)"
{ command -v ip && command -v tc; } >/dev/null || cc_skip "iproute2 is not installed"
[ -c /dev/net/tun ] || cc_skip "no /dev/net/tun"
[ -x "$TOOL" ] || cc_fail "$TOOL not built"
# With QEMU installed, the tap fd is also handed to a paused QEMU (-netdev tap,fd=).
QEMU=$(command -v qemu-system-x86_64 || true)

ip netns add "$POD"
ip netns add "$NODE"
ip -n "$NODE" link add name ccn$$ type veth peer name eth0 netns "$POD"
ip -n "$NODE" addr add 10.88.77.1/24 dev ccn$$
ip -n "$NODE" link set ccn$$ up
ip -n "$POD" link set lo up
ip -n "$POD" link set eth0 mtu 1400
ip -n "$POD" addr add 10.88.77.2/24 dev eth0
ip -n "$POD" addr add fd00:88::2/64 dev eth0 nodad
ip -n "$POD" link set eth0 up
ip -n "$POD" route add default via 10.88.77.1
# A static neighbour, as some CNI plugins add; it must reach the agent description.
pod_eth0_up() { [[ $(ip -n "$POD" -br link show eth0) == *" UP "* ]]; }
cc_wait_for 10 pod_eth0_up || cc_fail "the pod's eth0 did not come up"
ip -n "$POD" neigh add 10.88.77.9 lladdr 02:00:00:00:00:09 dev eth0 nud permanent

state() {
        ip -n "$POD" -br link
        ip -n "$POD" -br addr
        ip -n "$POD" route
        tc -n "$POD" qdisc show
        for dev in $(ip -n "$POD" -br link | awk '{print $1}' | cut -d@ -f1); do
                echo "filters of $dev:"
                tc -n "$POD" filter show dev "$dev" ingress
        done
}
run_pass() {
        local before after out
        # The node must resolve the pod again, so the guest sees (and answers) ARP.
        ip -n "$NODE" neigh flush all
        before=$(state)
        echo "--- pod namespace before"
        echo "$before"

        echo "--- net-tcfilter"
        ${IN_HOST:-} env NET_TCFILTER_QEMU=$QEMU NET_TCFILTER_VNET_HDR=${VNET_HDR:-0} \
                NET_TCFILTER_HOST_TAP=${HOST_TAP:-0} "$TOOL" "$POD" "$NODE" |
                tee "$CC_TMP/tool.out"
        out=$(cat "$CC_TMP/tool.out")
        grep -q "refusal (no netns path): -1 host networking is not supported for confidential" <<<"$out" ||
                cc_fail "no clear refusal of host networking"
        grep -q "interface eth0 mac .* mtu 1400 kind veth tap ${POD_TAP:-tap0_cc}" <<<"$out" || cc_fail "eth0 not read"
        grep -q "address 10.88.77.2/24" <<<"$out" || cc_fail "address not read"
        grep -q "address fd00:88::2/64" <<<"$out" || cc_fail "IPv6 address not read"
        grep -q "address fe80:" <<<"$out" && cc_fail "IPv6 link-local address passed on"
        grep -q "agent Route: dest='fd00:88::/64' gateway='' device=eth0" <<<"$out" ||
                cc_fail "no IPv6 device route in the Routes message"
        grep -q "agent Interface: name=eth0 hwAddr=.* mtu=1400 type=veth ip=10.88.77.2/24" <<<"$out" ||
                cc_fail "no Interface message"
        grep -q "agent Route: dest='' gateway='10.88.77.1' device=eth0" <<<"$out" ||
                cc_fail "no default route in the Routes message"
        grep -q "agent Route: dest='10.88.77.0/24' gateway='' device=eth0" <<<"$out" ||
                cc_fail "no device route in the Routes message"
        grep -q "agent ARPNeighbor: 10.88.77.9 lladdr 02:00:00:00:00:09 dev eth0" <<<"$out" ||
                cc_fail "no static neighbour"
        grep -q "mirred (Egress Redirect to device ${POD_TAP:-tap0_cc})" <<<"$out" || cc_fail "no veth -> tap filter"
        if [ -n "$QEMU" ] && [ -z "${HOST_TAP:-}" ]; then
                grep -q "n0: index=0,type=tap,fd=3" <<<"$out" || cc_fail "QEMU did not take the tap fd"
                grep -q "macaddr=$(grep -o 'interface eth0 mac [0-9a-f:]*' <<<"$out" | awk '{print $4}')" <<<"$out" ||
                        cc_fail "the guest NIC does not have the veth's MAC"
        fi
        grep -q "net-tcfilter: OK" <<<"$out" || cc_fail "net-tcfilter failed"

        after=$(state)
        echo "--- pod namespace after teardown"
        echo "$after"
        [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") || true; cc_fail "teardown left changes"; }
}

echo "=== pass 1: one veth, nothing else in the pod namespace"
run_pass

# Pass 2: a second interface, a tap of someone else's named like ours, and an ingress qdisc with a filter of someone else's on eth0 (a
# bandwidth or policy plugin's). Setup shares the qdisc; teardown leaves both in place.
echo "=== pass 2: two interfaces, a foreign tap, a foreign ingress qdisc and filter on eth0"
ip -n "$NODE" link add name ccm$$ type veth peer name eth1 netns "$POD"
ip -n "$NODE" link set ccm$$ up
ip -n "$POD" addr add 10.88.78.2/24 dev eth1
ip -n "$POD" link set eth1 up
pod_eth1_up() { [[ $(ip -n "$POD" -br link show eth1) == *" UP "* ]]; }
cc_wait_for 10 pod_eth1_up || cc_fail "the pod's eth1 did not come up"
tc -n "$POD" qdisc add dev eth0 ingress
# Someone else's persistent tap holding the name eth1's tap would get: it must be left alone.
ip -n "$POD" tuntap add tap1_cc mode tap
tc -n "$POD" filter add dev eth0 parent ffff: prio 1 protocol ip u32 match ip dst 192.0.2.1/32 flowid 1:1
# This pass opens the taps with IFF_VNET_HDR (the guest side then reads and writes a virtio-net
# header before each frame), as the shim does for QEMU.
VNET_HDR=1 run_pass
grep -q "taps with a vnet header: yes" "$CC_TMP/tool.out" || cc_fail "pass 2 without vnet header"
grep -q "interface eth1 mac .* tap tap2_cc" "$CC_TMP/tool.out" || cc_fail "eth1 not mirrored"
grep -q "VMM NIC 1: " "$CC_TMP/tool.out" || cc_fail "no second NIC for the VMM"
# (Output captured first: with pipefail, grep -q closing the pipe early would fail tc.)
foreign=$(tc -n "$POD" filter show dev eth0 ingress)
grep -q "pref 1 u32" <<<"$foreign" || cc_fail "foreign filter removed"

# Pass 3, libvirt's mode (SHIM_NET_HOST_TAP): the tool runs in a third namespace standing for
# the host (libvirtd's); setup makes a persistent tap there and a veth pair joining it to the
# pod, the guest is played on that tap attached by name, and teardown must leave both the pod
# and the "host" namespace as they were.
echo "=== pass 3: host tap (libvirt), the guest on a persistent tap in the host namespace"
ip netns add "$HOSTNS"
ip -n "$HOSTNS" link set lo up
host_state() { ip -n "$HOSTNS" -br link; tc -n "$HOSTNS" qdisc show; }
host_before=$(host_state)
HOST_TAP=1 POD_TAP='ccp[0-9a-f]\{8\}' IN_HOST="ip netns exec $HOSTNS" run_pass
out=$(cat "$CC_TMP/tool.out")
grep -q "interface eth0 .* host veth cch[0-9a-f]\{8\} host tap cct[0-9a-f]\{8\}" <<<"$out" ||
        cc_fail "no host tap for eth0"
grep -q "VMM NIC 0: tap name cct[0-9a-f]\{8\} fd [0-9]" <<<"$out" || cc_fail "no tap name for the VMM"
grep -q "guest: .* 3 echo replies written; node pinger exit 0" <<<"$out" ||
        cc_fail "no traffic through the host tap"
host_after=$(host_state)
[ "$host_before" = "$host_after" ] || { diff <(echo "$host_before") <(echo "$host_after") || true; cc_fail "teardown left changes in the host namespace"; }
echo "PASS: node <-> tap through tc mirred both ways (pod tap, and host tap via a veth pair); teardown restored both namespaces"
