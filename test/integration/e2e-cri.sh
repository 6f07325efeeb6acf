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
# network namespace. The shim ignores the pod network for now; the container rootfs is
# containerd's overlay snapshot, copied into the guest (allow_host_rootfs = true), since guest
# networking for in-guest pulls is not wired in the shim yet.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snap-lib.sh"
NS=k8s.io
BR=cce2e$$
BR=${BR:0:15}
SUBNET=10.244.$(($$ % 200 + 20)).0/24

e2e_cleanup() {
        local rc=$?
        local p
        # Shim daemons run in their own session and outlive containerd: ours (found by our
        # private containerd socket in their argv) and any VM under our run dir, by pid.
        for p in $(pgrep -f -- "[c]ontainerd-shim-kata-cc-v2 .*${CTRD_SOCK:-/nonexistent}" || true); do
                kill -9 "$p" 2>/dev/null
        done
        for p in $(pgrep -f -- "[q]emu-system.*${CC_SHIM_RUN_DIR:-/nonexistent}" || true); do
                kill -9 "$p" 2>/dev/null
        done
        for id in ${POD_ID:-}; do
                rm -f "/run/containerd/s/$(printf '%s' "$CTRD_SOCK/$NS/$id" | sha256sum | cut -d' ' -f1)"
        done
        # A run cut short before RemovePodSandbox leaves the pod's CNI netns (and its veth):
        # remove the ones that appeared during this test, then our bridge.
        for p in ${POD_NETNS:-}; do ip netns del "$p" 2>/dev/null; done
        ip link del "$BR" 2>/dev/null
        (exit "$rc")
        snap_cleanup
}
trap e2e_cleanup EXIT

SHIM=$BUILD/containerd-shim-kata-cc-v2
[ -x "$SHIM" ] || cc_fail "$SHIM not built"
for t in containerd ctr qemu-system-x86_64 docker-registry skopeo umoci protoc-c busybox ip; do
        command -v "$t" >/dev/null || cc_skip "needs $t"
done
for p in bridge host-local loopback; do
        [ -x "/usr/lib/cni/$p" ] || cc_skip "needs containernetworking-plugins (/usr/lib/cni/$p)"
done
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initrd.img ]; then
        if ! make -s guest-image >"$CC_TMP/image.log" 2>&1; then
                grep -qiE "cannot resolve|Failed to fetch|Temporary failure|Unable to locate" \
                        "$CC_TMP/image.log" && cc_skip "cannot fetch the guest kernel"
                cat "$CC_TMP/image.log"
                cc_fail "make guest-image failed"
        fi
fi

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
T0=$(date +%s)

# The shim on containerd's PATH (a copy: a rebuild during the test must not swap it), VM run
# dirs under our temp dir.
mkdir -p "$CC_TMP/bin" "$CC_TMP/run" "$CC_TMP/logs"
cp "$SHIM" "$CC_TMP/bin/containerd-shim-kata-cc-v2"
export PATH=$CC_TMP/bin:$PATH
export CC_SHIM_RUN_DIR=$CC_TMP/run
unset KATA_CONF_FILE

# The runtime configuration: the shipped one, pointed at build/guest, TCG, the serial channel.
CFG=$CC_TMP/configuration-qemu.toml
sed -e "s|^kernel = .*|kernel = \"$(realpath build/guest/vmlinuz)\"|" \
        -e "s|^initrd = .*|initrd = \"$(realpath build/guest/initrd.img)\"|" \
        -e "s|^path = .*|path = \"$(command -v qemu-system-x86_64)\"|" \
        -e 's|^accel = .*|accel = "tcg"|' \
        -e 's|^agent_channel = .*|agent_channel = "serial"|' \
        -e 's|^default_memory = [0-9]*|default_memory = 384|' \
        -e 's|^allow_host_rootfs = .*|allow_host_rootfs = true|' \
        configs/runtime/configuration-qemu.toml >"$CFG"
grep -q '^allow_host_rootfs = true' "$CFG" || cc_fail "allow_host_rootfs not set in $CFG"

# The registry with busybox (two layers) as busybox:1 and, as CRI's sandbox image, pause:1.
snap_registry
snap_busybox_image "$CC_TMP/bb-layout"
snap_push "$CC_TMP/bb-layout:latest" busybox:1
snap_push "$CC_TMP/bb-layout:latest" pause:1
IMAGE=$REG/busybox:1

# CNI: bridge + host-local + loopback in our own conf_dir.
CNI_DIR=$CC_TMP/cni
mkdir -p "$CNI_DIR"
cat >"$CNI_DIR/10-e2e.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "cc-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET"}]],
              "dataDir": "$CC_TMP/cni-ipam"}},
    {"type": "loopback"}
  ]
}
JSON

# containerd with CRI and the `kata` handler.
CTRD_DIR=$CC_TMP/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock
CTRD_ROOT=$CTRD_DIR/root
mkdir -p "$CTRD_DIR"
cat >"$CTRD_DIR/config.toml" <<TOML
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$REG/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
      runtime_type = "io.containerd.kata-cc.v2"
      privileged_without_host_devices = true
      pod_annotations = ["io.katacontainers.*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]
        ConfigPath = "$CFG"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
TOML
cc_bg containerd containerd --config "$CTRD_DIR/config.toml"
cc_wait_for 30 ctr --address "$CTRD_SOCK" version || cc_fail "containerd did not start"
cc_wait_for 30 $CRI --address "$CTRD_SOCK" version || cc_fail "CRI did not come up"
cri() { $CRI --address "$CTRD_SOCK" "$@"; }
sock_of() { echo "/run/containerd/s/$(printf '%s' "$CTRD_SOCK/$NS/$1" | sha256sum | cut -d' ' -f1)"; }
qemus() { pgrep -f -- "[q]emu-system.*$CC_SHIM_RUN_DIR" || true; }
shims() { pgrep -f -- "[c]ontainerd-shim-kata-cc-v2 .*$CTRD_SOCK" || true; }
netns_before=$(ls /run/netns 2>/dev/null | sort)

# --- RunPodSandbox: a VM boots --------------------------------------------------------------
cat >"$CC_TMP/pod.json" <<JSON
{"metadata": {"name": "e2e-pod", "uid": "e2e-uid-$$", "namespace": "default", "attempt": 1},
 "hostname": "e2e-pod", "log_directory": "$CC_TMP/logs", "linux_": {}}
JSON
t=$(date +%s.%N)
POD_ID=$(cri runp --runtime kata "$CC_TMP/pod.json" 2>"$CC_TMP/runp.err" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["pod_sandbox_id"])')
POD_NETNS=$(comm -13 <(echo "$netns_before") <(ls /run/netns 2>/dev/null | sort))
[ -n "$POD_ID" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/runp.err")"
ok "RunPodSandbox $POD_ID ($(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s)"
[ "$(qemus | wc -l)" -eq 1 ] && ok "one QEMU VM runs for the pod" || fail "VMs: $(qemus | wc -l)"
[ "$(shims | wc -l)" -eq 1 ] && ok "one shim daemon" || fail "shims: $(shims | wc -l)"
[ "$(cri inspectp "$POD_ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])')" = SANDBOX_READY ] &&
        ok "pod SANDBOX_READY" || fail "pod status: $(cri inspectp "$POD_ID" | head -c 400)"
pod_ip=$(cri inspectp "$POD_ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["network"]["ip"])' 2>/dev/null)
case "$pod_ip" in 10.244.*) ok "pod network namespace with IP $pod_ip (bridge $BR)" ;; *) fail "pod IP '$pod_ip'" ;; esac

# --- PullImage --------------------------------------------------------------------------------
ref=$(cri pull "$IMAGE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image_ref"])')
case "$ref" in sha256:*) ok "PullImage $IMAGE -> ${ref:0:19}" ;; *) fail "PullImage: '$ref'" ;; esac

# --- CreateContainer / StartContainer / logs / ExecSync -----------------------------------------
cat >"$CC_TMP/c1.json" <<JSON
{"metadata": {"name": "c1"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "echo hello from \$(busybox cat /sys/class/dmi/id/sys_vendor); cat /hello.txt; echo to-stderr >&2; trap 'exit 0' TERM; while true; do busybox sleep 1; done"],
 "log_path": "c1.log", "linux_": {}}
JSON
C1=$(cri create "$POD_ID" "$CC_TMP/c1.json" "$CC_TMP/pod.json" 2>"$CC_TMP/create.err" |
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
[ "$LOG" = "$CC_TMP/logs/c1.log" ] && ok "log path $LOG" || fail "log path '$LOG'"
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
C2=$(cri create "$POD_ID" "$CC_TMP/c2.json" "$CC_TMP/pod.json" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])')
cri start "$C2" >/dev/null || fail "StartContainer c2"
cc_wait_for 60 bash -c "$CRI --address $CTRD_SOCK inspect $C2 | grep -q CONTAINER_EXITED" || fail "c2 did not exit"
code=$(cri inspect "$C2" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], s["exit_code"])')
[ "$code" = "CONTAINER_EXITED 3" ] && ok "ContainerStatus: c2 EXITED with exit code 3" || fail "c2 exit code '$code'"
grep -q "stdout F c2 ran" "$CC_TMP/logs/c2.log" && ok "c2's log" || fail "c2 log: $(cat "$CC_TMP/logs/c2.log" 2>&1)"
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
[ "$(ls /run/netns 2>/dev/null | sort)" = "$netns_before" ] && ok "no network namespace left" ||
        fail "netns: $(ls /run/netns)"
[ -z "$(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS" 2>/dev/null)" ] && ok "no task bundle left" ||
        fail "bundles left: $(ls -A "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS")"
[ "$(cri pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("items", [])))')" = 0 ] &&
        ok "CRI lists no pod" || fail "pods: $(cri pods)"

if [ "$fails" -ne 0 ]; then
        echo "--- containerd log (shim and CRI errors)"
        grep -E 'kata-cc|shim|level=error' "$CC_TMP/containerd.log" | tail -n 60
        echo "$fails check(s) failed"
        exit 1
fi
echo "e2e-cri: all checks passed ($(($(date +%s) - T0)) s)"
