#!/usr/bin/env bash
# Two kata pods at once, and a pod with two containers sharing its VM, through containerd 1.6's
# CRI (issue 9, "Two pods at once, and a pod with two containers sharing the VM"):
#   - pod A and pod B run at the same time: two QEMU VMs, two shim daemons, two pod IPs;
#   - A's containers a1 and a2 run at the same time in A's VM: the same guest kernel (one
#     /proc/sys/kernel/random/boot_id), A's hostname; B's container sees another kernel;
#   - each container's output is in its own CRI log file; ExecSync reaches each one;
#   - a pod's dns_config (cluster DNS) is its containers' /etc/resolv.conf in the VM;
#   - stopping and removing pod A leaves pod B running (its VM, its container, ExecSync);
#   - after both are removed no VM, shim, socket, run file, mount, netns or bundle is left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start
e2e_busybox_registry
e2e_cni
e2e_containerd
cri pull "$IMAGE" >/dev/null || cc_fail "PullImage $IMAGE"

# A long-running container that says who it is, then waits for TERM.
LOOP="trap 'exit 0' TERM; while true; do busybox sleep 1; done"
run_ctr() { # POD_ID POD_NAME CNAME
        local id
        id=$(e2e_create "$1" "$2" "$3" "$IMAGE" \
                "[\"/bin/sh\", \"-c\", \"echo $3 in \$(busybox hostname) boot \$(busybox cat /proc/sys/kernel/random/boot_id); $LOOP\"]")
        [ -n "$id" ] || { fail "CreateContainer $3: $(cat "$CC_TMP/$3.create.err")"; return; }
        cri start "$id" >/dev/null 2>"$CC_TMP/$3.start.err" || fail "StartContainer $3: $(cat "$CC_TMP/$3.start.err")"
        echo "$id"
}

# --- two pods at once ---------------------------------------------------------------------------
e2e_runp pod-a
A=$E2E_POD
[ -n "$A" ] || cc_fail "RunPodSandbox pod-a: $(cat "$CC_TMP/pod-a.runp.err")"
# Pod B has the cluster DNS settings a kubelet passes (dns_config): containerd writes them into
# the pod's resolv.conf, and its containers in the VM must see exactly those.
E2E_POD_EXTRA='"dns_config": {"servers": ["10.96.0.10"], "searches": ["default.svc.cluster.local", "svc.cluster.local"], "options": ["ndots:5"]}' \
        e2e_runp pod-b
B=$E2E_POD
[ -n "$B" ] || cc_fail "RunPodSandbox pod-b: $(cat "$CC_TMP/pod-b.runp.err")"
[ "$(pod_state "$A")" = SANDBOX_READY ] && [ "$(pod_state "$B")" = SANDBOX_READY ] &&
        ok "pods A and B both SANDBOX_READY" || fail "pod states: $(pod_state "$A") $(pod_state "$B")"
[ "$(qemus | wc -l)" -eq 2 ] && ok "two QEMU VMs, one per pod" || fail "VMs: $(qemus | wc -l)"
[ "$(shims | wc -l)" -eq 2 ] && ok "two shim daemons" || fail "shims: $(shims | wc -l)"
ipa=$(cri inspectp "$A" | jget '["status"]["network"]["ip"]')
ipb=$(cri inspectp "$B" | jget '["status"]["network"]["ip"]')
case "$ipa,$ipb" in
$E2E_NET.*,$E2E_NET.*) [ "$ipa" != "$ipb" ] && ok "pod IPs $ipa and $ipb" || fail "same pod IP $ipa" ;;
*) fail "pod IPs '$ipa' '$ipb'" ;;
esac

# --- pod A: two containers in its VM; pod B: one -----------------------------------------------
A1=$(run_ctr "$A" pod-a a1)
A2=$(run_ctr "$A" pod-a a2)
B1=$(run_ctr "$B" pod-b b1)
[ "$(qemus | wc -l)" -eq 2 ] && ok "three containers, still two VMs" || fail "VMs: $(qemus | wc -l)"
running=0
for c in "$A1" "$A2" "$B1"; do
        st=$(ctr_state "$c")
        [ "$st" = "CONTAINER_RUNNING 0" ] && running=$((running + 1)) || fail "container $c: $st"
done
[ "$running" -eq 3 ] && ok "a1, a2 and b1 RUNNING at the same time"
logline() { # POD_NAME CNAME: the container's first stdout line, once it is there
        local f=$CC_TMP/logs/$1/$2.log
        cc_wait_for 30 grep -q "stdout F $2 in" "$f" || { echo ""; return; }
        grep -m1 "stdout F $2 in" "$f" | sed 's/.* stdout F //'
}
la1=$(logline pod-a a1)
la2=$(logline pod-a a2)
lb1=$(logline pod-b b1)
echo "  a1: $la1"
echo "  a2: $la2"
echo "  b1: $lb1"
boot() { awk '{print $NF}' <<<"$1"; }
case "$la1|$la2|$lb1" in
"a1 in pod-a boot "*"|a2 in pod-a boot "*"|b1 in pod-b boot "*) ok "each container's output in its own CRI log, its pod's hostname" ;;
*) fail "logs: '$la1' '$la2' '$lb1'" ;;
esac
[ -n "$(boot "$la1")" ] && [ "$(boot "$la1")" = "$(boot "$la2")" ] &&
        ok "a1 and a2 share one guest kernel (boot_id $(boot "$la1"))" || fail "a1/a2 boot ids differ"
[ "$(boot "$lb1")" != "$(boot "$la1")" ] && ok "b1 runs in another VM (boot_id $(boot "$lb1"))" ||
        fail "b1 shares A's kernel"
host_boot=$(cat /proc/sys/kernel/random/boot_id)
[ "$(boot "$la1")" != "$host_boot" ] && [ "$(boot "$lb1")" != "$host_boot" ] && ok "neither is the host's kernel" ||
        fail "a container sees the host's boot_id"
out=$(cri exec-sync "$A2" /bin/sh -c 'busybox cat /proc/sys/kernel/random/boot_id')
[ "$out" = "$(boot "$la1")" ] && ok "ExecSync in a2 reaches pod A's VM" || fail "exec a2: '$out'"
out=$(cri exec-sync "$B1" /bin/sh -c 'busybox hostname')
[ "$out" = pod-b ] && ok "ExecSync in b1 reaches pod B" || fail "exec b1: '$out'"
out=$(cri exec-sync "$B1" /bin/sh -c 'busybox cat /etc/resolv.conf' | tr '\n' '|')
[ "$out" = "search default.svc.cluster.local svc.cluster.local|nameserver 10.96.0.10|options ndots:5|" ] &&
        ok "b1's /etc/resolv.conf is pod B's dns_config" || fail "b1's resolv.conf: '$out'"

# --- pod A goes away, pod B keeps running --------------------------------------------------------
cri stopp "$A" >/dev/null 2>"$CC_TMP/stopp.err" && ok "StopPodSandbox A" || fail "StopPodSandbox A: $(cat "$CC_TMP/stopp.err")"
st=$(ctr_state "$A1")
case "$st" in CONTAINER_EXITED*) ok "a1 EXITED with its pod ($st)" ;; *) fail "a1 after StopPodSandbox: $st" ;; esac
cri rmp "$A" >/dev/null 2>"$CC_TMP/rmp.err" && ok "RemovePodSandbox A" || fail "RemovePodSandbox A: $(cat "$CC_TMP/rmp.err")"
cc_wait_for 15 bash -c "[ \$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR' | wc -l) -eq 1 ]" &&
        ok "A's VM is gone, B's runs" || fail "VMs after removing A: $(qemus | wc -l)"
[ "$(ctr_state "$B1")" = "CONTAINER_RUNNING 0" ] && ok "b1 still RUNNING" || fail "b1: $(ctr_state "$B1")"
out=$(cri exec-sync "$B1" /bin/sh -c 'echo still here')
[ "$out" = "still here" ] && ok "ExecSync in b1 after A's removal" || fail "exec b1: '$out'"

cri stop --timeout 20 "$B1" >/dev/null || fail "StopContainer b1"
[ "$(ctr_state "$B1")" = "CONTAINER_EXITED 0" ] && ok "b1 EXITED 0 (its TERM trap ran)" || fail "b1: $(ctr_state "$B1")"
cri rm "$B1" >/dev/null || fail "RemoveContainer b1"
cri stopp "$B" >/dev/null || fail "StopPodSandbox B"
cri rmp "$B" >/dev/null || fail "RemovePodSandbox B"
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod)" || fail "left: $left"
e2e_finish e2e-pods
