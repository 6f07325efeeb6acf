#!/usr/bin/env bash
# Pod networking through the VM (issue 8, "Performance"): TCP round-trip latency and bulk
# throughput from the node namespace to a pod, (a) through the shim's tcfilter path into a QEMU
# (TCG) VM started by containerd 1.6 + ctr (veth -> tc mirred -> tap -> virtio-net -> guest
# kernel -> busybox in a container), and (b) in the same run between two plain namespaces (veth
# -> the pod namespace's kernel -> the same busybox servers on the host). Both sides serve with
# busybox: `nc -ll -e /bin/cat` (echo) and `nc -ll -e /bin/sink` (cat >/dev/null); the client
# is one Python process in the node namespace: COUNT sequential 64-byte round trips on one
# connection (median, p90), then BULK_MIB MiB sent on a fresh connection, timed until the
# server has read everything and closed (best of 3). Prints the ratios (VM / plain).
# Under TCG the absolute VM numbers say little about KVM; the ratio is what is recorded.
set -uo pipefail
BUILD=${BUILD:-build}
COUNT=${COUNT:-2000}
BULK_MIB=${BULK_MIB:-32}
. "$(dirname "$0")/../test/integration/lib.sh"
SHIM=$BUILD/containerd-shim-kata-cc-v2
[ "$(id -u)" -eq 0 ] || { echo "net-pod: skipped (needs root)"; exit 0; }
command -v qemu-system-x86_64 >/dev/null || { echo "net-pod: skipped (no qemu-system-x86_64)"; exit 0; }
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "net-pod: skipped (no busybox)"; exit 0; }
[ -x "$SHIM" ] || { echo "net-pod: $SHIM not built" >&2; exit 1; }
[ -f build/guest/vmlinuz ] || make -s guest-image >/dev/null
POD=ccbpod$$
NODE=ccbnode$$
N=$(($$ % 200 + 20))
POD_IP=10.198.$N.2
NODE_IP=10.198.$N.1
NS=netbench
bench_cleanup() {
        local rc=$?
        cc_kill_shims "-address $CC_TMP/" "" "$CC_TMP/run"
        [ -n "${CTRD_SOCK:-}" ] && rm -f "$(sock_of vm1)"
        ip netns del "$POD" 2>/dev/null
        ip netns del "$NODE" 2>/dev/null
        (exit "$rc")
        cc_cleanup
}
trap bench_cleanup EXIT

cc_pod_node_netns

# The servers' files: the same busybox for the plain namespace and for the container.
R=$CC_TMP/rootfs
cc_busybox_rootfs "$R" busybox sh cat
printf '#!/bin/sh\nexec /bin/busybox cat >/dev/null\n' >"$R/bin/sink"
chmod +x "$R/bin/sink"

client() { ip netns exec "$NODE" /usr/bin/python3 "$(dirname "$0")/net-pod-client.py" "$POD_IP" "$@"; }
val() { grep -o "$1=[0-9.]*" <<<"$2" | cut -d= -f2; }

# (b) plain namespaces: the servers run in the pod namespace on the host.
cc_bg plain-echo ip netns exec "$POD" "$R/bin/busybox" nc -ll -p 7777 -e "$R/bin/cat"
cc_bg plain-sink ip netns exec "$POD" "$R/bin/busybox" nc -ll -p 7778 -e "$R/bin/sink"
client wait || { echo "net-pod: the plain echo server did not answer" >&2; exit 1; }
plain_rtt=$(client rtt "$COUNT")
plain_bulk=$(client bulk "$BULK_MIB")
cc_stop_pid "$PID_plain_echo"
cc_stop_pid "$PID_plain_sink"

# (a) through the VM: the same servers in a container of a pod whose VM joined the namespace.
cc_shim_on_path "$SHIM"
cc_qemu_toml 512 "default_vcpus = 1" >"$CC_TMP/cfg.toml"
cc_start_containerd
c() { ctr --address "$CTRD_SOCK" -n $NS "$@"; }
c run -d --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/cfg.toml" \
        --with-ns "network:/var/run/netns/$POD" --rootfs "$R" vm1 \
        /bin/sh -c '/bin/busybox nc -ll -p 7778 -e /bin/sink & exec /bin/busybox nc -ll -p 7777 -e /bin/cat' ||
        { echo "net-pod: ctr run failed" >&2; exit 1; }
client wait || { echo "net-pod: the echo server in the VM did not answer" >&2; exit 1; }
vm_rtt=$(client rtt "$COUNT")
vm_bulk=$(client bulk "$BULK_MIB")
c task kill -s SIGKILL vm1 >/dev/null 2>&1
cc_wait_for 30 bash -c "ctr --address $CTRD_SOCK -n $NS task ls | grep -q 'vm1 .*STOPPED'"
c task delete vm1 >/dev/null 2>&1
c container rm vm1 >/dev/null 2>&1

pr=$(val median "$plain_rtt"); vr=$(val median "$vm_rtt")
pb=$(val best "$plain_bulk"); vb=$(val best "$vm_bulk")
printf '%-58s %12s %12s\n' "node -> pod, TCP" "plain netns" "through VM"
printf '%-58s %12s %12s\n' "round trip, 64 B, median (us), n=$COUNT" "$pr" "$vr"
printf '%-58s %12s %12s\n' "round trip, 64 B, p90 (us)" "$(val p90 "$plain_rtt")" "$(val p90 "$vm_rtt")"
printf '%-58s %12s %12s\n' "bulk, $BULK_MIB MiB, best of 3 (MiB/s)" "$pb" "$vb"
awk -v p="$pr" -v v="$vr" 'BEGIN { printf "ratio RTT VM / plain: %.1fx\n", v / p }'
awk -v p="$pb" -v v="$vb" 'BEGIN { printf "ratio throughput VM / plain: %.3f (plain is %.1fx faster)\n", v / p, p / v }'
