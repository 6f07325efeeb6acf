#!/usr/bin/env bash
# Pod start through containerd 1.6's CRI: RunPodSandbox -> PullImage -> CreateContainer ->
# StartContainer (container running), for handler `kata` (our shim, a QEMU TCG VM per pod) and
# for the same pod with handler `runc` (runtime_type io.containerd.runc.v2, Debian's Go runc
# shim), alternating, N pods each, in one run on one containerd. Each pod is removed (and the
# image with it, so every PullImage really pulls) before the next. Times are the RPCs' own wall
# times (test/cri/cri.py --timing: the client's start-up is not counted).
#
# The kata breakdown, per pod:
#   before VM    RunPodSandbox start -> the shim starts QEMU (containerd, CNI, shim start,
#                configuration): the shim's "agent ready after M ms" line, stamped by containerd,
#                minus M
#   VM boot      QEMU start -> the guest kernel's clock starts (firmware, kernel load):
#                derived from the guest's /proc/uptime read by ExecSync (host time - uptime)
#   agent ready  guest kernel start -> the agent answers the shim's health check
#   sandbox      agent ready -> RunPodSandbox returns (CreateSandbox in the guest, containerd)
#   pull         PullImage (on the host here: guest pull needs the pod network in the VM)
#   create       CreateContainer (containerd's metadata only: the shim is not called yet)
#   task create  the shim's Create inside StartContainer ("create ID took X ms"): the rootfs
#                copied into the guest (allow_host_rootfs), the agent's CreateContainer
#   start        the rest of StartContainer (the agent's StartContainer, containerd)
# Usage: BUILD=build [POD_N=5] bash bench/pod-start.sh   (root; results: bench/pod-results.md)
set -uo pipefail
cd "$(dirname "$0")/.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
. test/integration/e2e-lib.sh
trap e2e_cleanup EXIT
N=${POD_N:-5}
e2e_require
command -v containerd-shim-runc-v2 >/dev/null && command -v runc >/dev/null ||
        cc_skip "needs containerd-shim-runc-v2 and runc"
T0=$(date +%s)
e2e_setup
snap_registry
snap_busybox_image "$CC_TMP/bb-layout"
snap_push "$CC_TMP/bb-layout:latest" busybox:1
# The sandbox image for runc pods must keep running (kata pods use the agent's own pause).
umoci config --image "$CC_TMP/bb-layout:latest" --tag pause \
        --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 2147483 >/dev/null
snap_push "$CC_TMP/bb-layout:pause" pause:1
IMAGE=$REG/busybox:1
e2e_cni
e2e_containerd

# rpc NAME ARGS...: one CRI call with timing; stdout to $CC_TMP/out, "start end ms" to $CC_TMP/t
rpc() {
        cri --timing "$@" >"$CC_TMP/out" 2>"$CC_TMP/err" || { cat "$CC_TMP/err"; return 1; }
        awk '/^rpc_start_ns/ {s=$2} /^rpc_end_ns/ {e=$2} /^rpc_ms/ {m=$2} END {print s, e, m}' "$CC_TMP/err"
}
ROWS=$CC_TMP/rows
: >"$ROWS"
one_pod() { # HANDLER I
        local h=$1 i=$2 name="bench-$1-$2" rp pl cr st pod cid up now tc=0
        e2e_podjson "$name"
        rp=$(rpc runp --runtime "$h" "$CC_TMP/$name.json") || cc_fail "$h RunPodSandbox"
        pod=$(jget '["pod_sandbox_id"]' <"$CC_TMP/out")
        E2E_PODS+=("$pod")
        pl=$(rpc pull "$IMAGE") || cc_fail "$h PullImage"
        cat >"$CC_TMP/$name.ctr.json" <<JSON
{"metadata": {"name": "c"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/busybox", "sleep", "3600"], "log_path": "c.log", "linux_": {}}
JSON
        cr=$(rpc create "$pod" "$CC_TMP/$name.ctr.json" "$CC_TMP/$name.json") || cc_fail "$h CreateContainer"
        cid=$(jget '["container_id"]' <"$CC_TMP/out")
        st=$(rpc start "$cid") || cc_fail "$h StartContainer"
        [ "$(ctr_state "$cid")" = "CONTAINER_RUNNING 0" ] || cc_fail "$h container not running"
        up=0 now=0
        if [ "$h" = kata ]; then
                # The guest's uptime at a known host time (the ExecSync's end, within ~10 ms).
                up=$(cri exec-sync "$cid" /bin/busybox cut -d' ' -f1 /proc/uptime)
                now=$(date +%s%N)
                # The shim's line for this pod, as stamped by containerd.
                grep -F "sandbox $pod: VM" "$CC_TMP/containerd.log" | tail -1 >"$CC_TMP/vmline"
                # The shim's task Create for the container (inside StartContainer).
                tc=$(grep -F "create $cid took" "$CC_TMP/containerd.log" | sed -n 's/.*create [0-9a-f]* took \([0-9.]*\) ms.*/\1/p' | tail -1)
        fi
        echo "$h $i $rp $pl $cr $st $up $now ${tc:-0} $(cat "$CC_TMP/vmline" 2>/dev/null | sed -n 's/^time="\([^"]*\)".*agent ready after \([0-9]*\) ms.*/\1 \2/p')" >>"$ROWS"
        rm -f "$CC_TMP/vmline"
        cri stopp "$pod" >/dev/null || cc_fail "$h StopPodSandbox"
        cri rmp "$pod" >/dev/null || cc_fail "$h RemovePodSandbox"
        cri rmi "$IMAGE" >/dev/null || cc_fail "RemoveImage"
}
# One warm-up pod each (first-use costs: page cache, CNI plugin binaries), not counted.
one_pod kata 0
one_pod runc 0
: >"$ROWS"
for i in $(seq "$N"); do
        one_pod kata "$i"
        one_pod runc "$i"
done
left=$(e2e_leftovers)
[ -z "$left" ] || cc_fail "left after the benchmark: $left"

python3 - "$ROWS" "$N" <<'EOF'
import datetime, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
N = int(sys.argv[2])
def ts(s):  # containerd's RFC 3339 with nanoseconds, UTC
    base, frac = s.rstrip("Z").split(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10**9 + int(frac.ljust(9, "0")[:9])
res = {"kata": [], "runc": []}
for r in rows:
    h = r[0]
    rp_s, rp_e, rp_ms = int(r[2]), int(r[3]), int(r[4])
    pl_ms, cr_ms, st_ms = int(r[7]), int(r[10]), int(r[13])
    wall = (int(r[12]) - rp_s) / 1e6  # RunPodSandbox start -> StartContainer end
    d = {"runp": rp_ms, "pull": pl_ms, "create": cr_ms, "start": st_ms, "wall": wall,
         "total": rp_ms + pl_ms + cr_ms + st_ms}
    if h == "kata" and len(r) >= 19:
        up_s, now_ns, line_ts, agent_ms = float(r[14]), int(r[15]), ts(r[17]), int(r[18])
        d["task_create"] = float(r[16])
        d["task_start"] = st_ms - float(r[16])
        kernel0 = now_ns - int(up_s * 1e9)
        vm0 = line_ts - agent_ms * 10**6
        d["before_vm"] = (vm0 - rp_s) / 1e6
        d["vm_boot"] = (kernel0 - vm0) / 1e6
        d["agent_ready"] = (line_ts - kernel0) / 1e6
        d["sandbox"] = (rp_e - line_ts) / 1e6
    res[h].append(d)
med = lambda h, k: statistics.median(x[k] for x in res[h])
print("pods: %d each, alternating kata/runc (after one warm-up pod each)" % N)
print("%-28s %10s %10s %8s" % ("median (ms)", "kata", "runc", "ratio"))
for k, label in (("runp", "RunPodSandbox"), ("pull", "PullImage"), ("create", "CreateContainer"),
                 ("start", "StartContainer"), ("total", "pod start (sum of the 4 RPCs)"),
                 ("wall", "wall, with the client's gaps")):
    print("%-28s %10.0f %10.0f %7.2fx" % (label, med("kata", k), med("runc", k), med("kata", k) / max(med("runc", k), 1)))
print("kata breakdown (median ms):")
for k, label in (("before_vm", "before VM (containerd, CNI, shim start)"),
                 ("vm_boot", "VM boot (QEMU start -> guest kernel clock)"),
                 ("agent_ready", "guest kernel -> agent ready"),
                 ("sandbox", "agent ready -> RunPodSandbox returns"),
                 ("pull", "pull (host, CRI PullImage)"),
                 ("create", "CreateContainer (containerd metadata)"),
                 ("task_create", "container create in the shim (rootfs into guest)"),
                 ("task_start", "container start (rest of StartContainer)")):
    if all(k in x for x in res["kata"]):
        print("  %-46s %8.0f" % (label, med("kata", k)))
print("per pod (ms): handler runp pull create start sum wall")
for h in ("kata", "runc"):
    for x in res[h]:
        print("  %s %d %d %d %d %d %.0f" % (h, x["runp"], x["pull"], x["create"], x["start"], x["total"], x["wall"]))
EOF
echo "pod-start: $(($(date +%s) - T0)) s"
