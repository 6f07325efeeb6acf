#!/usr/bin/env bash
# End to end through containerd's CRI (issue 9, "How it is shown", first bullet): a CRI client
# (test/cri/cri.py) drives a private containerd 1.6 with the CRI plugin for runtime handler
# `kata` (runtime_type io.containerd.kata-cc.v2, ConfigPath = a test copy of
# configs/runtime/configuration-qemu.toml pointing at build/guest):
#   RunPodSandbox (a QEMU TCG VM boots), PullImage (busybox built with umoci, from a local
#   docker-registry on 127.0.0.1; the sandbox image comes from there too: no network),
#   CreateContainer, StartContainer, the container's output in the CRI log file, ExecSync (output
#   and exit code), a second container whose exit code ContainerStatus reports, StopContainer,
#   StopPodSandbox, RemovePodSandbox; then no VM, shim, mount, netns, socket or run file is left.
# Pod networking: CRI needs CNI for RunPodSandbox; a bridge + host-local + loopback conflist in
# our own conf_dir (Debian's containernetworking-plugins in /usr/lib/cni) gives the pod its own
# network namespace, which the VM joins. Here the container rootfs is containerd's overlay
# snapshot, copied into the guest (allow_host_rootfs = true, development without a TEE); the
# same flow with the image pulled in the guest is e2e-guest-pull.sh. Set-up helpers: e2e-lib.sh.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
# The shipped configuration-qemu.toml pointed at build/guest, TCG, the serial channel; it
# allows the host rootfs (development, no TEE), which this test relies on.
e2e_start
grep -q '^allow_host_rootfs = true' "$E2E_CFG" || cc_fail "allow_host_rootfs not set in $E2E_CFG"

e2e_busybox_registry
e2e_cni
e2e_containerd

# --- RunPodSandbox: a VM boots --------------------------------------------------------------
t=$(date +%s.%N)
e2e_runp e2e-pod
POD_ID=$E2E_POD
[ -n "$POD_ID" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/e2e-pod.runp.err")"
ok "RunPodSandbox $POD_ID ($(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s)"
[ "$(qemus | wc -l)" -eq 1 ] && ok "one QEMU VM runs for the pod" || fail "VMs: $(qemus | wc -l)"
[ "$(shims | wc -l)" -eq 1 ] && ok "one shim daemon" || fail "shims: $(shims | wc -l)"
[ "$(cri inspectp "$POD_ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])')" = SANDBOX_READY ] &&
        ok "pod SANDBOX_READY" || fail "pod status: $(cri inspectp "$POD_ID" | head -c 400)"
pod_ip=$(cri inspectp "$POD_ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["network"]["ip"])' 2>/dev/null)
case "$pod_ip" in $E2E_NET.*) ok "pod network namespace with IP $pod_ip (bridge $E2E_BR)" ;; *) fail "pod IP '$pod_ip'" ;; esac

# --- PullImage --------------------------------------------------------------------------------
ref=$(cri pull "$IMAGE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image_ref"])')
case "$ref" in sha256:*) ok "PullImage $IMAGE -> ${ref:0:19}" ;; *) fail "PullImage: '$ref'" ;; esac

# --- CreateContainer / StartContainer / logs / ExecSync -----------------------------------------
cat >"$CC_TMP/c1.json" <<JSON
{"metadata": {"name": "c1"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "echo hello from \$(busybox cat /sys/class/dmi/id/sys_vendor); cat /hello.txt; echo to-stderr >&2; trap 'exit 0' TERM; while true; do busybox sleep 1; done"],
 "log_path": "c1.log", "linux_": {}}
JSON
C1=$(cri create "$POD_ID" "$CC_TMP/c1.json" "$CC_TMP/e2e-pod.json" 2>"$CC_TMP/create.err" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])')
[ -n "$C1" ] && ok "CreateContainer $C1" || fail "CreateContainer: $(cat "$CC_TMP/create.err")"
cri start "$C1" >/dev/null 2>"$CC_TMP/start.err" && ok "StartContainer" || fail "StartContainer: $(cat "$CC_TMP/start.err")"
[ "$(qemus | wc -l)" -eq 1 ] && ok "the container runs in the pod's VM (still one QEMU)" || fail "VMs: $(qemus | wc -l)"
# Captured first: `cri ... | grep -q` under pipefail fails when grep exits before cri.py has
# written everything (EPIPE).
c1_status=$(cri inspect "$C1")
grep -q '"CONTAINER_RUNNING"' <<<"$c1_status" && ok "ContainerStatus RUNNING" ||
        fail "c1 status: $(cri inspect "$C1" | head -c 400)"
LOG=$(cri logs-path "$C1")
[ "$LOG" = "$CC_TMP/logs/e2e-pod/c1.log" ] && ok "log path $LOG" || fail "log path '$LOG'"
cc_wait_for 30 grep -q "stdout F hello from QEMU" "$LOG" && ok "CRI log: stdout (from inside the VM)" ||
        fail "log: $(cat "$LOG" 2>&1)"
cc_wait_for 10 grep -q "stdout F hello from layer 2" "$LOG" && ok "CRI log: the image's second layer" || fail "log: $(cat "$LOG" 2>&1)"
cc_wait_for 10 grep -q "stderr F to-stderr" "$LOG" && ok "CRI log: stderr" || fail "log: $(cat "$LOG" 2>&1)"
out=$(cri exec-sync "$C1" /bin/sh -c 'echo exec works in $(busybox hostname)')
rc=$?
[ "$out" = "exec works in e2e-pod" ] && [ $rc -eq 0 ] && ok "ExecSync output ($out)" || fail "ExecSync: '$out' rc=$rc"
cri exec-sync "$C1" /bin/sh -c 'exit 7' >/dev/null
rc=$?
[ $rc -eq 7 ] && ok "ExecSync exit code 7" || fail "ExecSync exit code $rc"

# --- a second container in the same VM that exits 3: ContainerStatus reports it --------------
cat >"$CC_TMP/c2.json" <<JSON
{"metadata": {"name": "c2"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "echo c2 ran; exit 3"], "log_path": "c2.log", "linux_": {}}
JSON
C2=$(cri create "$POD_ID" "$CC_TMP/c2.json" "$CC_TMP/e2e-pod.json" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])')
cri start "$C2" >/dev/null || fail "StartContainer c2"
cc_wait_for 60 bash -c "$CRI --address $CTRD_SOCK inspect $C2 | grep -q CONTAINER_EXITED" || fail "c2 did not exit"
code=$(cri inspect "$C2" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], s["exit_code"])')
[ "$code" = "CONTAINER_EXITED 3" ] && ok "ContainerStatus: c2 EXITED with exit code 3" || fail "c2 exit code '$code'"
grep -q "stdout F c2 ran" "$CC_TMP/logs/e2e-pod/c2.log" && ok "c2's log" || fail "c2 log: $(cat "$CC_TMP/logs/e2e-pod/c2.log" 2>&1)"
[ "$(qemus | wc -l)" -eq 1 ] && ok "two containers, one VM" || fail "VMs: $(qemus | wc -l)"

# --- StopContainer: SIGTERM reaches the guest process (its trap exits 0) ----------------------
cri stop --timeout 20 "$C1" >/dev/null || fail "StopContainer"
code=$(cri inspect "$C1" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], s["exit_code"])')
[ "$code" = "CONTAINER_EXITED 0" ] && ok "StopContainer: c1 EXITED 0 (its TERM trap ran)" || fail "c1 after stop: '$code'"
cri rm "$C1" >/dev/null || fail "RemoveContainer c1"
cri rm "$C2" >/dev/null || fail "RemoveContainer c2"

# --- StopPodSandbox / RemovePodSandbox: nothing left ------------------------------------------
cri stopp "$POD_ID" >/dev/null 2>"$CC_TMP/stopp.err" && ok "StopPodSandbox" || fail "StopPodSandbox: $(cat "$CC_TMP/stopp.err")"
cri rmp "$POD_ID" >/dev/null 2>"$CC_TMP/rmp.err" && ok "RemovePodSandbox" || fail "RemovePodSandbox: $(cat "$CC_TMP/rmp.err")"
cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" && ok "no VM left" ||
        fail "QEMU still runs: $(qemus)"
cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[c]ontainerd-shim-kata-cc-v2 .*$CTRD_SOCK')\" ]" && ok "no shim left" ||
        fail "shim still runs: $(shims)"
[ ! -e "$(sock_of "$POD_ID")" ] && ok "no shim socket left" || fail "socket $(sock_of "$POD_ID") left"
[ -z "$(ls -A "$CC_SHIM_RUN_DIR")" ] && ok "no run file left" || fail "run files left: $(ls -A "$CC_SHIM_RUN_DIR")"
! grep -q "$CC_TMP" /proc/mounts && ok "no mount left" || fail "mounts left: $(grep "$CC_TMP" /proc/mounts)"
left=""
for n in "${E2E_NETNS[@]}"; do [ -e "/run/netns/$n" ] && left+=" $n"; done
[ -z "$left" ] && ok "no network namespace left (${E2E_NETNS[*]} removed)" || fail "netns left:$left"
[ -z "$(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS" 2>/dev/null)" ] && ok "no task bundle left" ||
        fail "bundles left: $(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS")"
[ "$(cri pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("items", [])))')" = 0 ] &&
        ok "CRI lists no pod" || fail "pods: $(cri pods)"

e2e_finish e2e-cri
