#!/usr/bin/env bash
# containerd-shim-kata-cc-v2 under a real containerd 1.6 with ctr: every container runs in a
# QEMU (TCG) VM booted from `make guest-image`, its rootfs (busybox-static, given to ctr with
# --rootfs) copied into the guest with the agent's CopyFile, the configuration passed as the
# runtime options' ConfigPath (ctr --runtime-config-path).
#   1. ctr run: stdout reaches ctr, the exit code is returned; VM, socket and run files gone.
#   2. a long-running task: exec, ps, metrics, pause/resume, kill, delete; nothing left.
#   3. kill -9 of QEMU: the task exits 255 and Wait returns; kill -9 of the shim: containerd
#      runs `delete`, the VM is gone.
#   4. bad configurations (wrong type, missing kernel, a TEE the host lacks, host rootfs for a
#      TEE): ctr's Create error names file, key and reason; nothing is left behind.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
# Shim daemons run in their own session and outlive containerd: stop ours (and any VM) by pid
# before the shared cleanup; then say what had to be removed by force.
shim_cleanup() {
        local rc=$?
        cc_kill_shims "${CTRD_SOCK:-/nonexistent}"
        for id in c1 t1 c2 c5 c3 c4 pod1 badtype badkernel badtee badhostrootfs; do
                [ -n "${CTRD_SOCK:-}" ] && rm -f "$(sock_of "$id")"
        done
        (exit "$rc")
        cc_cleanup
}
NS=shimtest
trap shim_cleanup EXIT
SHIM=$BUILD/containerd-shim-kata-cc-v2
[ -x "$SHIM" ] || cc_fail "$SHIM not built"
SHIM=$(realpath "$SHIM")
command -v qemu-system-x86_64 >/dev/null || cc_skip "needs qemu-system-x86_64"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || cc_skip "needs busybox-static"
cc_guest_image
KERNEL=$(realpath build/guest/vmlinuz)
INITRD=$(realpath build/guest/initrd.img)

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# Command-like flags and `delete` without a daemon: -v, -info (prompt, no daemon), and a
# delete whose stdout is exactly one DeleteResponse{exit_status = 137, exited_at = now}.
out=$("$SHIM" -v)
grep -q "Version:" <<<"$out" && ok "-v" || fail "-v"
# Output captured first: `od | grep -q` under pipefail fails when grep exits before od's last write.
out=$(timeout 5 "$SHIM" -info </dev/null | od -An -c)
grep -q "c   o   n   t   a   i   n   e   r   d" <<<"$out" && ok "-info" || fail "-info"
mkdir -p "$CC_TMP/delbundle"
hex=$(cd "$CC_TMP/delbundle" && "$SHIM" -namespace x -address /nonexistent.sock -id gone \
        -bundle "$CC_TMP/delbundle" delete 2>/dev/null | od -An -tx1 | tr -d ' \n')
case "$hex" in 1089011a*) ok "delete prints a DeleteResponse (137, now): $hex" ;; *) fail "delete output '$hex'" ;; esac

# The shim is found on containerd's PATH; its VM run dirs go under our temp dir.
cc_shim_on_path "$SHIM"
ROOTFS=$CC_TMP/rootfs
cc_busybox_rootfs "$ROOTFS" busybox sh

CFG=$CC_TMP/configuration-qemu.toml
cat >"$CFG" <<TOML
[hypervisor.qemu]
path = "$(command -v qemu-system-x86_64)"
kernel = "$KERNEL"
initrd = "$INITRD"
machine_type = "q35"
confidential_guest = false
default_vcpus = 1
default_memory = 384
kernel_params = "quiet"
accel = "tcg"
agent_channel = "serial"
virtio_fs_daemon = "/usr/libexec/virtiofsd"   # a Kata key the shim accepts and ignores
no_such_key = 1                               # unknown: warned about with file:line

[agent.kata]
dial_timeout = 120

[runtime]
allow_host_rootfs = true
TOML

cc_start_containerd
cc_ctr_wrapper
RT=(--runtime io.containerd.kata-cc.v2 --runtime-config-path "$CFG")

# Nothing of pod $1 left: no QEMU, no socket, no run dir content, no mount, no shim.
check_clean() {
        local id=$1 what=$2
        cc_wait_for 15 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" ||
                fail "$what: QEMU still runs: $(qemus)"
        # The shim removes its socket and run files on its way out, after the VM is gone: wait
        # for it to have exited, then look at what it left (no race with its last steps).
        cc_wait_for 30 bash -c "! pgrep -f -- '[c]ontainerd-shim-kata-cc-v2 -namespace $NS -address $CTRD_SOCK .*-id $id\$' >/dev/null" ||
                fail "$what: shim daemon still runs"
        [ ! -e "$(sock_of "$id")" ] || fail "$what: socket $(sock_of "$id") left"
        [ -z "$(ls -A "$CC_SHIM_RUN_DIR")" ] || fail "$what: run files left: $(ls -A "$CC_SHIM_RUN_DIR")"
        ! grep -q "$CC_TMP" /proc/mounts || fail "$what: mounts left: $(grep "$CC_TMP" /proc/mounts)"
}

# --- 1. run: stdout and exit code --------------------------------------------------------
t0=$(date +%s.%N)
out=$(timeout 180 ctr_ run "${RT[@]}" --rootfs "$ROOTFS" c1 /bin/sh -c 'echo hello from $(busybox cat /sys/class/dmi/id/sys_vendor); exit 3' 2>"$CC_TMP/c1.err")
rc=$?
echo "ctr run took $(echo "$(date +%s.%N) - $t0" | bc) s"
[ "$out" = "hello from QEMU" ] && ok "container stdout reached ctr (from inside the VM)" ||
        fail "stdout '$out' (stderr: $(cat "$CC_TMP/c1.err"))"
[ $rc -eq 3 ] && ok "exit code 3 returned" || fail "exit code $rc"
ctr_ task delete c1 >/dev/null 2>&1
ctr_ container rm c1 || fail "container rm c1"
check_clean c1 "after run"
grep -q "no_such_key" "$CC_TMP/containerd.log" && grep -q "configuration-qemu.toml:[0-9]*: unknown key 'no_such_key'" "$CC_TMP/containerd.log" &&
        ok "unknown key warned about with file:line" || fail "no warning for the unknown key"

# --- 1b. a terminal: ctr run -t (ctr needs a console: test/tools/pty-run gives it one) -------
# Not script(1): what script prints depends on the caller's $SHELL and fd 0 (see pty-run.c).
t_term=$(date +%s)
timeout 150 "$BUILD/test/tools/pty-run" -- timeout 120 ctr_ run -t "${RT[@]}" --rootfs "$ROOTFS" t1 \
        /bin/sh -c 'busybox tty; exit 5' >"$CC_TMP/t1.out" 2>&1
rc=$?
out=$(tr -d '\r' <"$CC_TMP/t1.out")
echo "$out" | grep -q "/dev/pts/[0-9]" && ok "terminal: the process has a pty ($(echo "$out" | grep -o '/dev/pts/[0-9]*'))" ||
        { fail "terminal: '$out' (rc $rc, after $(($(date +%s) - t_term)) s)"
          grep -E "t1|tty|terminal|console" "$CC_TMP/containerd.log" | tail -n 20; }
[ "$rc" = 5 ] && ok "terminal: ctr run -t returns the exit code" || fail "terminal: ctr run -t rc $rc, want 5"
ctr_ task delete t1 >/dev/null 2>&1
ctr_ container rm t1 || fail "container rm t1"
check_clean t1 "after the terminal run"

# --- 2. long-running task: exec, ps, metrics, pause/resume, kill, delete --------------------
cc_bg events ctr_ events
echo "10.9.8.7 shim-test-host" >"$CC_TMP/hosts"
ctr_ run -d "${RT[@]}" --mount "type=bind,src=$CC_TMP/hosts,dst=/etc/hosts,options=rbind:ro" \
        --rootfs "$ROOTFS" c2 /bin/sh -c 'while true; do busybox sleep 1; done' ||
        fail "run -d c2"
cc_wait_for 120 bash -c "ctr_ task ls | grep -q 'c2 .*RUNNING'" ||
        fail "c2 not RUNNING: $(ctr_ task ls)"
out=$(timeout 60 ctr_ task exec --exec-id e1 c2 /bin/busybox echo exec works)
rc=$?
[ "$out" = "exec works" ] && [ $rc -eq 0 ] && ok "task exec output" || fail "exec: '$out' rc=$rc"
out=$(timeout 60 ctr_ task exec --exec-id e0 c2 /bin/busybox cat /etc/hosts)
[ "$out" = "10.9.8.7 shim-test-host" ] && ok "bind-mounted /etc/hosts copied into the guest" ||
        fail "/etc/hosts in the container: '$out'"
timeout 60 ctr_ task exec --exec-id e2 c2 /bin/sh -c 'exit 7'
rc=$?
[ $rc -eq 7 ] && ok "exec exit code" || fail "exec exit code $rc"
out=$(echo piped-stdin | timeout 60 ctr_ task exec --exec-id e3 c2 /bin/busybox cat)
[ "$out" = "piped-stdin" ] && ok "exec stdin relayed" || fail "exec stdin: '$out'"
ps_out=$(ctr_ task ps c2) && echo "$ps_out" | grep -qE '^[0-9]+' && ok "task ps" || fail "task ps: $ps_out"
m=$(ctr_ task metrics c2 2>&1) && echo "$m" | grep -qi "memory\|pids\|cpu" && ok "task metrics" ||
        fail "task metrics: $m"
ctr_ task pause c2 && grep -q 'c2 .*PAUSED' <<<"$(ctr_ task ls)" && ok "pause" || fail "pause: $(ctr_ task ls)"
ctr_ task resume c2 && grep -q 'c2 .*RUNNING' <<<"$(ctr_ task ls)" && ok "resume" || fail "resume: $(ctr_ task ls)"
ctr_ task kill -s SIGKILL c2 || fail "kill"
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'c2 .*STOPPED'" &&
        ok "kill stops the task" || fail "after kill: $(ctr_ task ls)"
ctr_ task delete c2 >/dev/null || fail "task delete c2"
ctr_ container rm c2 || fail "container rm c2"
check_clean c2 "after delete"
# The events containerd received for c2, in order (ctr events prints "time ns topic {...}").
sleep 1
topics=$(grep -E '"container_id":"c2"|"container_id": "c2"|c2' "$CC_TMP/events.log" | awk '{print $6}' | grep '^/tasks/' | tr '\n' ' ')
want="/tasks/create /tasks/start /tasks/exec-added /tasks/exec-started /tasks/exit"
case "$topics" in
"$want"*) ok "events: ${topics:0:160}..." ;;
*) fail "events for c2: '$topics'" ;;
esac
for t in /tasks/paused /tasks/resumed /tasks/delete; do
        echo "$topics" | grep -q "$t" || fail "event $t missing"
done
last=$(echo "$topics" | awk '{print $NF}')
[ "$last" = /tasks/delete ] && ok "delete is the last event" || fail "last event $last"

# An OOM kill in the guest: exit 137 and a /tasks/oom event (from the agent's GetOOMEvent).
timeout 180 ctr_ run "${RT[@]}" --memory-limit 33554432 --rootfs "$ROOTFS" c5 /bin/sh -c \
        'x=$(busybox head -c 100000000 /dev/zero | busybox tr "\0" a); echo survived'
rc=$?
[ $rc -eq 137 ] && ok "OOM-killed container exits 137" || fail "OOM rc=$rc"
cc_wait_for 10 grep -q '/tasks/oom {"container_id":"c5"}' "$CC_TMP/events.log" && ok "/tasks/oom published" ||
        fail "no /tasks/oom: $(grep c5 "$CC_TMP/events.log" | awk '{print $6}' | tr '\n' ' ')"
ctr_ task delete c5 >/dev/null 2>&1
ctr_ container rm c5 || fail "container rm c5"
check_clean c5 "after the OOM"

# --- 2b. a pod: sandbox task + app container in one shim and one VM; containerd restart -------
POD=(--annotation io.kubernetes.cri.sandbox-id=pod1)
ctr_ run -d "${RT[@]}" "${POD[@]}" --annotation io.kubernetes.cri.container-type=sandbox \
        --rootfs "$ROOTFS" pod1 /bin/sh || fail "run -d pod1 (sandbox)"
ctr_ run -d "${RT[@]}" "${POD[@]}" --annotation io.kubernetes.cri.container-type=container \
        --rootfs "$ROOTFS" app1 /bin/sh -c 'while true; do busybox sleep 1; done' || fail "run -d app1"
[ "$(qemus | wc -l)" -eq 1 ] && ok "sandbox and container share one VM" || fail "VMs: $(qemus | wc -l)"
[ "$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS/app1/address")" = "unix://$(sock_of pod1)" ] &&
        ok "the container got the sandbox's shim address" || fail "app1 address"
out=$(timeout 60 ctr_ task exec --exec-id p1 app1 /bin/busybox echo in-pod)
[ "$out" = in-pod ] && ok "exec in the pod's container" || fail "pod exec: '$out'"
# containerd restarts; the pod keeps running and containerd reconnects (Connect).
cc_stop_pid "$PID_containerd"
cc_bg containerd containerd --config "$CTRD_DIR/config.toml"
cc_wait_for 30 ctr --address "$CTRD_SOCK" version || fail "containerd did not restart"
cc_bg events2 ctr_ events
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'app1 .*RUNNING'" && ok "after a containerd restart app1 still RUNNING" ||
        fail "after restart: $(ctr_ task ls)"
out=$(timeout 60 ctr_ task exec --exec-id p2 app1 /bin/busybox echo still-here)
[ "$out" = still-here ] && ok "exec after the containerd restart" || fail "exec after restart: '$out'"
ctr_ task kill -s SIGKILL app1
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'app1 .*STOPPED'" || fail "app1 not stopped"
ctr_ task delete app1 >/dev/null || fail "delete app1"
[ "$(qemus | wc -l)" -eq 1 ] && ok "Shutdown ignored while the sandbox remains" || fail "VM gone too early"
ctr_ task kill -s SIGKILL pod1
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'pod1 .*STOPPED'" && ok "killing the sandbox stops the pod" ||
        fail "pod1: $(ctr_ task ls)"
ctr_ task delete pod1 >/dev/null || fail "delete pod1"
ctr_ container rm app1 pod1 || fail "container rm pod"
check_clean pod1 "after the pod"

# --- 3. faults ---------------------------------------------------------------------------------
ctr_ run -d "${RT[@]}" --rootfs "$ROOTFS" c3 /bin/sh -c 'while true; do busybox sleep 1; done' ||
        fail "run -d c3"
cc_wait_for 120 bash -c "ctr_ task ls | grep -q 'c3 .*RUNNING'" ||
        fail "c3 not RUNNING"
qpid=$(qemus | head -n1)
timeout 60 ctr_ task exec --exec-id w c3 /bin/busybox sleep 600 &
execpid=$!
sleep 2
kill -9 "$qpid"
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'c3 .*STOPPED'" &&
        ok "kill -9 of QEMU: the task stopped" || fail "after QEMU kill: $(ctr_ task ls)"
wait "$execpid"
rc=$?
[ $rc -eq 255 ] && ok "the exec's Wait returned 255" || fail "exec after QEMU kill rc=$rc"
ctr_ task delete c3 >/dev/null || fail "task delete c3"
ctr_ container rm c3 || fail "container rm c3"
check_clean c3 "after QEMU kill"

ctr_ run -d "${RT[@]}" --rootfs "$ROOTFS" c4 /bin/sh -c 'while true; do busybox sleep 1; done' ||
        fail "run -d c4"
cc_wait_for 120 bash -c "ctr_ task ls | grep -q 'c4 .*RUNNING'" ||
        fail "c4 not RUNNING"
spid=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS/c4/shim.pid")
kill -9 "$spid"
cc_wait_for 30 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" &&
        ok "kill -9 of the shim: containerd ran delete, the VM is gone" || fail "VM left after shim kill"
cc_wait_for 15 grep -q '/tasks/exit {"container_id":"c4"' "$CC_TMP/events2.log" &&
        ok "an exit event for c4 was published after the shim's death" ||
        fail "no /tasks/exit for c4: $(grep c4 "$CC_TMP/events2.log" | awk '{print $6}' | tr '\n' ' ')"
cc_wait_for 30 bash -c "ctr_ task ls | grep -q 'c4 .*STOPPED' || ! ctr_ task ls | grep -q c4" ||
        fail "c4 after shim kill: $(ctr_ task ls)"
ctr_ task delete c4 >/dev/null 2>&1
ctr_ container rm c4 || fail "container rm c4"
check_clean c4 "after shim kill"

# --- 4. bad configurations: the Create error names file, key and reason -------------------------
bad_case() { cc_bad_config "bad config" 220 "$@"; }
bad_case type "default_vcpus' must be an integer" <<TOML
[hypervisor.qemu]
kernel = "$KERNEL"
initrd = "$INITRD"
default_vcpus = "two"
TOML
bad_case kernel "key 'kernel': /nonexistent/vmlinuz: No such file" <<TOML
[hypervisor.qemu]
kernel = "/nonexistent/vmlinuz"
initrd = "$INITRD"
TOML
bad_case tee "tdx|TDX|KVM|kvm" <<TOML
[hypervisor.qemu]
kernel = "$KERNEL"
initrd = "$INITRD"
firmware = "$KERNEL"
confidential_guest = true
tee = "tdx"
TOML
bad_case hostrootfs "allow_host_rootfs.*refused for the sev-snp profile" <<TOML
[hypervisor.qemu]
kernel = "$KERNEL"
confidential_guest = true
sev_snp_guest = true
[runtime]
allow_host_rootfs = true
TOML

[ -z "$(ls -A /run/containerd/s 2>/dev/null | while read -r s; do [ "/run/containerd/s/$s" = "$(sock_of c1)" ] && echo "$s"; done)" ] || fail "socket left"
cc_finish shim-ctr "shim lines" 'kata-cc|shim'
