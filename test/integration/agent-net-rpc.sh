#!/usr/bin/env bash
# The agent's network requests over ttrpc, on the host: cc-agent runs in a network namespace of
# its own (unshare -n) holding one veth NIC, and cc-agent-ctl configures it the way a shim
# configures the guest's eth0: UpdateInterface (rename by MAC, MTU, address), UpdateRoutes
# (default route via a gateway), AddARPNeighbors, ListInterfaces, ListRoutes; each result is
# read back from the kernel with ip(8). Bad requests are refused with the right status, a
# policy denial answers PermissionDenied, and nothing is left behind.
set -u
BUILD=${BUILD:-build}
AGENT=$(realpath "$BUILD/cc-agent")
CTL=$(realpath "$BUILD/cc-agent-ctl")

skip() { echo "$1"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "needs ip (iproute2)"
unshare -n true 2>/dev/null || skip "cannot create network namespaces here"

tmp=$(mktemp -d /tmp/agent-net-rpc.XXXXXX)
cg=cc-agent-net-$$
agent_pid=""
fails=0
stop_agent() {
        if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
                kill "$agent_pid"
                for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$agent_pid" 2>/dev/null
        fi
        [ -n "$agent_pid" ] && wait "$agent_pid" 2>/dev/null
        agent_pid=""
}
cleanup() {
        stop_agent
        rmdir /sys/fs/cgroup/$cg/* /sys/fs/cgroup/$cg 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$tmp/agent.sock" "$@"; }
MAC=02:00:00:00:c0:09

# The agent in a new network namespace with a veth NIC named as the kernel would name it.
start_agent() { # policy
        rm -f "$tmp/agent.sock"
        unshare -n sh -c "ip link add ens9 type veth peer name ens9p && ip link set ens9 address $MAC && ip link set ens9p up &&
                exec '$AGENT' --server-addr 'unix://$tmp/agent.sock' --containers-dir '$tmp/c' \
                --cgroup-root '$cg' --policy '$1' --log-level debug" >>"$tmp/agent.log" 2>&1 &
        agent_pid=$!
        ctl check --wait 10 >/dev/null || { cat "$tmp/agent.log"; fail "agent did not answer"; exit 1; }
}
in_ns() { nsenter -t "$agent_pid" -n "$@"; }

mkdir -p "$tmp/c"
start_agent "$tmp/no-policy.json"

out=$(ctl update-interface -- "$MAC" eth0 1400 10.0.2.15/24 2>&1)
# (An up veth with a carrier also gets its IPv6 link-local address, which the agent keeps.)
echo "$out" | grep -q "^eth0 $MAC mtu=1400 10.0.2.15/24\( fe80::[0-9a-f:]*/64\)\?$" && ok "UpdateInterface: $out" ||
        fail "UpdateInterface answered '$out'"
in_ns ip -4 -o addr show dev eth0 | grep -q "inet 10.0.2.15/24" && ok "eth0 has 10.0.2.15/24" ||
        fail "address not set: $(in_ns ip -o addr)"
in_ns ip -o link show dev eth0 | grep -q "UP.*mtu 1400" &&
        ok "eth0 is up with MTU 1400" || fail "link: $(in_ns ip -o link show dev eth0)"

out=$(ctl update-routes -- default,10.0.2.2,eth0 2>&1) || fail "UpdateRoutes: $out"
echo "$out" | grep -q "via 10.0.2.2 dev eth0" && ok "UpdateRoutes answered the default route" ||
        fail "UpdateRoutes answered '$out'"
[ "$(in_ns ip -4 route show default)" = "default via 10.0.2.2 dev eth0 " ] ||
        [ "$(in_ns ip -4 route show default)" = "default via 10.0.2.2 dev eth0" ] &&
        ok "kernel: $(in_ns ip -4 route show default)" || fail "route: $(in_ns ip -4 route)"

out=$(ctl list-interfaces 2>&1)
echo "$out" | grep -q "^eth0 $MAC mtu=1400 10.0.2.15/24" && ok "ListInterfaces lists eth0" ||
        fail "ListInterfaces: $out"
out=$(ctl list-routes 2>&1)
echo "$out" | grep -q "via 10.0.2.2 dev eth0" && ok "ListRoutes lists the default route" ||
        fail "ListRoutes: $out"

ctl add-arp -- 10.0.2.3,02:00:00:00:00:03,eth0 || fail "AddARPNeighbors"
in_ns ip neigh show dev eth0 | grep -q "10.0.2.3 lladdr 02:00:00:00:00:03 PERMANENT" &&
        ok "AddARPNeighbors: permanent entry" || fail "neighbours: $(in_ns ip neigh)"

# Bad requests: a clear status each, nothing changed.
out=$(ctl update-interface -- 02:00:00:00:00:99 eth1 0 10.0.3.15/24 2>&1) && fail "unknown MAC accepted"
echo "$out" | grep -q "NotFound" && ok "unknown MAC: $out" || fail "unknown MAC: $out"
out=$(ctl update-interface -- "$MAC" eth0 0 10.0.2.15/33 2>&1) && fail "/33 accepted"
echo "$out" | grep -q "InvalidArgument" && ok "bad prefix: $out" || fail "bad prefix: $out"
out=$(ctl update-routes -- default,10.0.2.2,nosuchdev 2>&1) && fail "route on a missing device accepted"
echo "$out" | grep -q "error: UpdateRoutes" && ok "missing device: $out" || fail "missing device: $out"
in_ns ip -4 route show default | grep -q "via 10.0.2.2 dev eth0" || fail "a refused request changed the routes"

# Policy: the network requests are admitted like every other request.
stop_agent
cat >"$tmp/policy.json" <<'JSON'
{"default": "allow", "rules": [{"name": "no-net", "requests": ["UpdateInterface", "UpdateRoutes", "AddARPNeighbors"], "action": "deny"}]}
JSON
start_agent "$tmp/policy.json"
out=$(ctl update-interface -- "$MAC" eth0 0 10.0.2.15/24 2>&1) && fail "policy did not deny UpdateInterface"
echo "$out" | grep -q "PermissionDenied.*no-net" && ok "policy denies UpdateInterface: $out" ||
        fail "policy: $out"
out=$(ctl update-routes -- default,10.0.2.2,ens9 2>&1) && fail "policy did not deny UpdateRoutes"
echo "$out" | grep -q "PermissionDenied" || fail "policy: $out"
ctl list-interfaces | grep -q "^ens9 $MAC" && ok "ListInterfaces still allowed" || fail "ListInterfaces under policy"
stop_agent

if [ "$fails" -ne 0 ]; then
        tail -n 30 "$tmp/agent.log"
        echo "$fails check(s) failed"
        exit 1
fi
echo "PASS: agent network requests"
