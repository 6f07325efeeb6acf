#!/usr/bin/env bash
# Through containerd's CRI (issue 18, "How it is shown"): a pod whose guest image carries an
# agent policy that denies ExecProcess. CRI ExecSync gets a clear error naming the policy rule,
# the container keeps running (its log goes on, ContainerStatus RUNNING), and the pod stops and
# is removed as usual. The guest image is the standard one rebuilt into a scratch directory
# with the policy baked in (build-guest-image.sh --policy); the flow is e2e-cri.sh's (busybox
# from a local registry, host rootfs copied in, no TEE).
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start
# The guest image's own kernel (the project's by default, GUEST_KERNEL=debian for Debian's):
# `make guest-kernel-dir` builds or fetches it if needed and names its directory last.
kdir=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory guest-kernel-dir 2>/dev/null | tail -n1)
[ -n "$kdir" ] && [ -f "$kdir/vmlinuz" ] || cc_fail "no guest kernel in '$kdir' (make guest-kernel-dir)"
cat >"$CC_TMP/policy.json" <<'JSON'
{ "version": 2, "default": "allow",
  "rules": [ { "name": "pod-owner-no-exec", "requests": ["ExecProcess"], "action": "deny" } ] }
JSON
bash guest-agent/build-guest-image.sh --agent build/cc-agent-static --pull-helper build/cc-agent-pull \
        --kernel-dir "$kdir" --out "$CC_TMP/guest" --policy "$CC_TMP/policy.json" >"$CC_TMP/image.log" 2>&1 ||
        cc_fail "guest image with the policy: $(tail -5 "$CC_TMP/image.log")"
e2e_setup "$CC_TMP/guest/initrd.img"
ok "guest image with the policy baked in ($(stat -c %s "$CC_TMP/guest/initrd.img") bytes)"

e2e_busybox_registry
e2e_cni
e2e_containerd

e2e_runp policy-pod
POD_ID=$E2E_POD
[ -n "$POD_ID" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/policy-pod.runp.err")"
ok "RunPodSandbox $POD_ID"
cri pull "$IMAGE" >/dev/null || fail "PullImage $IMAGE"
cat >"$CC_TMP/c1.json" <<JSON
{"metadata": {"name": "c1"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "i=0; trap 'exit 0' TERM; while true; do echo tick \$i; i=\$((i+1)); busybox sleep 1; done"],
 "log_path": "c1.log", "linux_": {}}
JSON
C1=$(cri create "$POD_ID" "$CC_TMP/c1.json" "$CC_TMP/policy-pod.json" 2>"$CC_TMP/create.err" | jget '["container_id"]')
[ -n "$C1" ] && ok "CreateContainer $C1" || cc_fail "CreateContainer: $(cat "$CC_TMP/create.err")"
cri start "$C1" >/dev/null 2>"$CC_TMP/start.err" && ok "StartContainer" || fail "StartContainer: $(cat "$CC_TMP/start.err")"
LOG=$(cri logs-path "$C1")
cc_wait_for 30 grep -q "stdout F tick 1" "$LOG" && ok "the container runs (CRI log)" || fail "log: $(cat "$LOG" 2>&1)"

out=$(cri exec-sync "$C1" /bin/sh -c 'cat /proc/self/environ' 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "ExecProcess denied by agent policy rule 'pod-owner-no-exec'" <<<"$out" &&
        ok "ExecSync refused, naming the rule: $(grep -o "[^:]*denied by agent policy rule '[^']*'" <<<"$out" | head -1)" ||
        fail "ExecSync: rc=$rc '$out'"
n=$(grep -c "stdout F tick" "$LOG")
cc_wait_for 15 bash -c "[ \$(grep -c 'stdout F tick' '$LOG') -gt $((n + 1)) ]" && ok "the container keeps running after the refusal" ||
        fail "no more output after the refused exec"
st=$(cri inspect "$C1" | jget '["status"]["state"]')
[ "$st" = CONTAINER_RUNNING ] && ok "ContainerStatus RUNNING" || fail "status $st"
[ "$(pod_state "$POD_ID")" = SANDBOX_READY ] && ok "pod SANDBOX_READY" || fail "pod: $(pod_state "$POD_ID")"

cri stop --timeout 20 "$C1" >/dev/null || fail "StopContainer"
cri rm "$C1" >/dev/null || fail "RemoveContainer"
cri stopp "$POD_ID" >/dev/null 2>"$CC_TMP/stopp.err" && ok "StopPodSandbox" || fail "StopPodSandbox: $(cat "$CC_TMP/stopp.err")"
cri rmp "$POD_ID" >/dev/null 2>"$CC_TMP/rmp.err" && ok "RemovePodSandbox" || fail "RemovePodSandbox: $(cat "$CC_TMP/rmp.err")"
cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" && ok "no VM left" ||
        fail "QEMU still runs: $(qemus)"
e2e_finish e2e-cri-policy
