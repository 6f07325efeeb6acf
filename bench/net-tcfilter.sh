#!/usr/bin/env bash
# Pod networking (shim/network, tcfilter model) without a VM: the latency shim_net_setup() and
# shim_net_teardown() add to pod start and stop, and the node -> pod ICMP round trip answered by
# the pod namespace's kernel (plain namespaces) against the same round trip mirrored through tc
# to the tap and answered in user space by the test tool playing the guest. The ratio bounds
# what the tc + tap hop costs before any VM is involved. Traffic stays in two namespaces made
# here; COUNT pings each (default 1000).
set -euo pipefail
BUILD=${BUILD:-build}
COUNT=${COUNT:-1000}
TOOL=$BUILD/test/tools/net-tcfilter
POD=cc-nt-$$-bpod
NODE=cc-nt-$$-bnode
cleanup() {
        ip netns del "$POD" 2>/dev/null || true
        ip netns del "$NODE" 2>/dev/null || true
}
trap cleanup EXIT
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
        echo "net-tcfilter: skipped (needs root and iproute2)"
        exit 0
fi
[ -x "$TOOL" ] || { echo "net-tcfilter: $TOOL not built" >&2; exit 1; }
ip netns add "$POD"
ip netns add "$NODE"
ip -n "$NODE" link add name ccb$$ type veth peer name eth0 netns "$POD"
ip -n "$NODE" addr add 10.88.79.1/24 dev ccb$$
ip -n "$NODE" link set ccb$$ up
ip -n "$POD" addr add 10.88.79.2/24 dev eth0
ip -n "$POD" link set eth0 up
ip -n "$POD" route add default via 10.88.79.1
for _ in $(seq 50); do [[ $(ip -n "$POD" -br link show eth0) == *" UP "* ]] && break; sleep 0.1; done
out=$("$TOOL" --bench "$COUNT" "$POD" "$NODE")
echo "$out"
median() { grep "$1" <<<"$out" | grep -o 'median=[0-9.]*' | cut -d= -f2; }
base=$(median "pod kernel")
tap=$(median "user space")
awk -v b="$base" -v t="$tap" 'BEGIN { if (b > 0) printf "ratio tap path / plain namespaces (median RTT): %.2f\n", t / b }'
