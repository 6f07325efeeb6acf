#!/usr/bin/env bash
# The agent's network requests (guest-agent/network): in a namespace created here, an Ethernet
# interface (one end of a veth pair) with a known MAC and a stale address plays the guest's virtio NIC. The test
# tool sends hostile requests (all refused), then UpdateInterface, UpdateRoutes,
# AddARPNeighbors and the sandbox DNS; `ip -n` must show the result. No traffic is sent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
TOOL=$BUILD/test/tools/net-agent
NS=cc-nt-$$-guest
MAC=02:cc:00:00:00:42
net_cleanup() {
        local rc=$?
        ip netns del "$NS" 2>/dev/null || true
        return $rc
}
trap 'net_cleanup; cc_cleanup' EXIT
[ "$(id -u)" -eq 0 ] || cc_skip "needs root (network namespaces)"
command -v ip >/dev/null || cc_skip "iproute2 is not installed"
[ -x "$TOOL" ] || cc_fail "$TOOL not built"

ip netns add "$NS"
ip -n "$NS" link add name nic0 address "$MAC" type veth peer name peer0
ip -n "$NS" link set peer0 up
ip -n "$NS" addr add 10.1.1.1/8 dev nic0
ip -n "$NS" link set lo up

"$TOOL" "$NS" "$MAC" "$CC_TMP/resolv.conf" | tee "$CC_TMP/tool.out"
grep -q "net-agent: OK" "$CC_TMP/tool.out" || cc_fail "net-agent failed"

link=$(ip -n "$NS" link show eth0) || cc_fail "no eth0 after UpdateInterface"
echo "$link"
grep -q "mtu 1300" <<<"$link" || cc_fail "MTU not set"
grep -q "link/ether $MAC" <<<"$link" || cc_fail "wrong NIC renamed"
grep -q "[<,]UP[,>]" <<<"$link" || cc_fail "eth0 not up"
ip -n "$NS" link show nic0 >/dev/null 2>&1 && cc_fail "nic0 still exists"
addrs=$(ip -n "$NS" addr show dev eth0)
echo "$addrs"
grep -q "inet 10.99.0.2/24" <<<"$addrs" || cc_fail "IPv4 address missing"
grep -q "inet6 fd00:99::2/64" <<<"$addrs" || cc_fail "IPv6 address missing"
grep -q "10.1.1.1" <<<"$addrs" && cc_fail "stale address kept"
routes=$(ip -n "$NS" route; ip -n "$NS" -6 route)
echo "$routes"
grep -q "^default via 10.99.0.1 dev eth0" <<<"$routes" || cc_fail "no IPv4 default route"
grep -q "^10.100.0.0/16 via 10.99.0.254 dev eth0" <<<"$routes" || cc_fail "no gateway route"
grep -q "^10.99.0.0/24 dev eth0" <<<"$routes" || cc_fail "no device route"
grep -q "^default via fd00:99::1 dev eth0" <<<"$routes" || cc_fail "no IPv6 default route"
[ "$(grep -c "^default via 10.99.0.1" <<<"$routes")" -eq 1 ] || cc_fail "duplicate default route"
neigh=$(ip -n "$NS" neigh show dev eth0)
echo "$neigh"
grep -q "10.99.0.1 lladdr 02:00:00:00:99:01 PERMANENT" <<<"$neigh" || cc_fail "no neighbour"
printf 'nameserver 10.99.0.1\nsearch svc.cluster.local cluster.local\noptions ndots:5\n' |
        cmp - "$CC_TMP/resolv.conf" || cc_fail "resolv.conf differs"
[ "$(stat -c %a "$CC_TMP/resolv.conf")" = 644 ] || cc_fail "resolv.conf mode"
echo "PASS: UpdateInterface, UpdateRoutes, AddARPNeighbors and DNS applied; hostile requests refused"
