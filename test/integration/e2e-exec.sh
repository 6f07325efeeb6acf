#!/usr/bin/env bash
# CRI's streaming exec and attach through containerd 1.6 and our shim (issue 21): what `kubectl
# exec -it`, `kubectl exec -i`, `kubectl attach` and `kubectl cp` do, driven by our own client of
# kubelet's streaming protocol (test/tools/cri-stream.py: SPDY/3.1 and websocket,
# v4.channel.k8s.io) against containerd's streaming server, with a kata pod (QEMU TCG) behind:
#   a terminal exec whose `stty size` follows resize events; `echo hi | cat` over a piped stdin
#   that is then closed (hi, exit 0); exit 3 reported as 3; an exec over websocket; attach to a
#   running container reads what it prints after attaching, and its stdin; a tar stream into and
#   out of the container through exec (kubectl cp); 50 sequential and 20 parallel execs (10 with
#   a terminal), then the shim's fds, pipes and threads and the container's processes are
#   counted against the numbers before; a refused exec answers at once.
# Policy: a pod whose initdata carries an agent policy denying ExecProcess: ExecSync, streaming
# and terminal exec get the agent's error naming the rule, the pod and its container keep
# running and logging. Then both pods go away and nothing is left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start
# Handler kata-noexec: the same configuration with the cc_init_data annotation enabled, so a pod's
# initdata can carry its agent policy (policy.json).
sed -e 's|^enable_annotations = .*|enable_annotations = ["cc_init_data"]|' "$E2E_CFG" >"$CC_TMP/configuration-noexec.toml"
grep -q '^enable_annotations = \["cc_init_data"\]' "$CC_TMP/configuration-noexec.toml" || cc_fail "enable_annotations"
E2E_EXTRA_RUNTIMES="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-noexec]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.config.hypervisor.cc_init_data\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-noexec.options]
        ConfigPath = \"$CC_TMP/configuration-noexec.toml\""
STREAM="/usr/bin/python3 test/tools/cri-stream.py"
e2e_busybox_registry
e2e_cni
e2e_containerd

stream() { $STREAM --address "$CTRD_SOCK" "$@"; }

e2e_runp exec-pod
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/exec-pod.runp.err")"
ok "RunPodSandbox $POD"
cri pull "$IMAGE" >/dev/null || cc_fail "PullImage $IMAGE"

# c1: a long-running container; its stdin is open (for attach) and it echoes what it reads.
cat >"$CC_TMP/c1.json" <<JSON
{"metadata": {"name": "c1"}, "image": {"image": "$IMAGE"}, "stdin": true,
 "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; i=0; while read -r line; do echo got:\$line; done; while true; do busybox sleep 1; done"],
 "log_path": "c1.log", "linux_": {}}
JSON
C1=$(cri create "$POD" "$CC_TMP/c1.json" "$CC_TMP/exec-pod.json" 2>"$CC_TMP/c1.err" | jget '["container_id"]')
[ -n "$C1" ] || cc_fail "CreateContainer c1: $(cat "$CC_TMP/c1.err")"
cri start "$C1" >/dev/null || cc_fail "StartContainer c1"
SHIM_PID=$(shims | head -1)
[ -n "$SHIM_PID" ] || cc_fail "no shim"

# --- a terminal: stty size follows resize events ---------------------------------------------
# The resize events (containerd -> ResizePty -> the agent's TtyWinResize) and the process run
# concurrently, so the guest side waits (at most 10 s each) for the size it expects and then
# prints what stty says; a resize that never arrives prints 24 80 or the old size.
SIZES='w() { i=0; until [ "$(stty size)" = "$1" ] || [ $i -ge 100 ]; do busybox sleep 0.1; i=$((i+1)); done; }; w "31 97"; echo "size1 $(stty size)"; w "45 132"; echo "size2 $(stty size)"; exit 5'
out=$(stream exec --tty --step resize=31x97 --step 'wait=size1' --step resize=45x132 --step 'wait=size2' \
        "$C1" /bin/sh -c "$SIZES" 2>"$CC_TMP/tty.err")
rc=$?
out=$(tr -d '\r' <<<"$out")
grep -qx 'size1 31 97' <<<"$out" && grep -qx 'size2 45 132' <<<"$out" && ok "terminal exec: stty size 31 97, then 45 132 after a resize" ||
        fail "terminal exec: '$out' $(cat "$CC_TMP/tty.err")"
[ $rc -eq 5 ] && ok "terminal exec: exit 5 reported" || fail "terminal exec rc=$rc"
# Interactive: what we type comes back (the guest's tty echoes it, cat repeats it), ^D on the
# terminal ends cat with exit 0.
out=$(stream exec --tty --stdin --step 'send=typed-line\r' --step 'wait=typed-line\r\ntyped-line' \
        --step 'send=\x04' "$C1" cat 2>"$CC_TMP/cat-tty.err")
rc=$?
[ "$(tr -d '\r' <<<"$out" | grep -cx typed-line)" -eq 2 ] && [ $rc -eq 0 ] &&
        ok "interactive terminal: a typed line echoed and repeated by cat, ^D ends it (exit 0)" ||
        fail "interactive terminal: '$out' rc=$rc $(cat "$CC_TMP/cat-tty.err")"
out=$(stream exec --tty "$C1" /bin/sh -c '[ -t 0 ] && [ -t 1 ] && echo tty-yes' 2>&1 | tr -d '\r')
[ "$out" = tty-yes ] && ok "terminal exec: stdin and stdout are a terminal" || fail "tty: '$out'"

# --- no terminal: stdin piped, then closed -----------------------------------------------------
out=$(echo hi | stream exec --stdin "$C1" cat 2>"$CC_TMP/cat.err")
rc=$?
[ "$out" = hi ] && [ $rc -eq 0 ] && ok "echo hi | exec cat: hi, exit 0" || fail "cat: '$out' rc=$rc $(cat "$CC_TMP/cat.err")"
out=$(stream exec --stdin --no-stderr "$C1" /bin/sh -c 'wc -c' </dev/null 2>&1)
[ "$out" = 0 ] && ok "empty stdin closed at once: wc -c says 0" || fail "wc: '$out'"
head -c 300000 /dev/urandom >"$CC_TMP/rand"
sum=$(stream exec --stdin "$C1" busybox md5sum <"$CC_TMP/rand" 2>&1 | cut -d' ' -f1)
[ "$sum" = "$(md5sum <"$CC_TMP/rand" | cut -d' ' -f1)" ] && ok "300 kB through stdin, intact" || fail "md5 '$sum'"
out=$(stream exec "$C1" /bin/sh -c 'echo out; echo err >&2' 2>"$CC_TMP/se.err")
[ "$out" = out ] && [ "$(cat "$CC_TMP/se.err")" = err ] && ok "stdout and stderr apart" ||
        fail "stdout '$out' stderr '$(cat "$CC_TMP/se.err")'"

# --- exit codes --------------------------------------------------------------------------------
stream exec "$C1" /bin/sh -c 'exit 3' >/dev/null 2>&1
rc=$?
[ $rc -eq 3 ] && ok "exec exit 3 reported as 3" || fail "exit 3 -> $rc"
stream exec "$C1" /bin/sh -c 'kill -9 $$' >/dev/null 2>&1
rc=$?
[ $rc -eq 137 ] && ok "exec killed by SIGKILL reported as 137" || fail "kill -9 -> $rc"
t=$(date +%s.%N)
stream exec "$C1" /no/such/binary >/dev/null 2>"$CC_TMP/nobin.err"
rc=$?
echo "  a refused exec answered in $(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s"
[ $rc -ne 0 ] && grep -q "error\|no such\|not found" "$CC_TMP/nobin.err" && ok "a missing binary: rc $rc, $(head -c 160 "$CC_TMP/nobin.err")" ||
        fail "missing binary rc=$rc: $(cat "$CC_TMP/nobin.err")"

# --- websocket ---------------------------------------------------------------------------------
if /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
        out=$(stream --transport ws exec "$C1" /bin/sh -c 'echo over websocket; exit 4' 2>"$CC_TMP/ws.err")
        rc=$?
        [ "$out" = "over websocket" ] && [ $rc -eq 4 ] && ok "websocket exec: output and exit 4" ||
                fail "websocket: '$out' rc=$rc $(cat "$CC_TMP/ws.err")"
        out=$(stream --transport ws exec --tty --stdin --step resize=20x60 --step wait=size1 --step resize=45x132 \
                "$C1" /bin/sh -c "${SIZES/31 97/20 60}" 2>&1 | tr -d '\r')
        grep -qx 'size1 20 60' <<<"$out" && grep -qx 'size2 45 132' <<<"$out" &&
                ok "websocket terminal exec: stty size 20 60, then 45 132" || fail "ws tty: '$out'"
else
        echo "skip: websocket (python3-websocket not installed)"
fi

# --- attach: what the container prints after attaching, and its stdin -------------------------
out=$(stream attach --stdin --step 'send=first\n' --step 'wait=got:first' --step 'send=second\n' \
        --step 'wait=got:second' --step detach "$C1" 2>"$CC_TMP/attach.err")
grep -qx 'got:first' <<<"$out" && grep -qx 'got:second' <<<"$out" &&
        ok "attach: the container read our stdin and we read what it printed after" ||
        fail "attach: '$out' $(cat "$CC_TMP/attach.err")"
[ "$(ctr_state "$C1")" = "CONTAINER_RUNNING 0" ] && ok "c1 still runs after the attach detached" || fail "c1: $(ctr_state "$C1")"

# --- kubectl cp: tar through exec, both ways ---------------------------------------------------
mkdir -p "$CC_TMP/cp-src/sub"
head -c 200000 /dev/urandom >"$CC_TMP/cp-src/sub/blob"
echo "small file" >"$CC_TMP/cp-src/a.txt"
tar -C "$CC_TMP/cp-src" -cf - . | stream exec --stdin "$C1" /bin/sh -c 'busybox mkdir -p /cp && exec busybox tar -xf - -C /cp' 2>"$CC_TMP/cp-in.err"
rc=$?
[ $rc -eq 0 ] && ok "tar into the container (kubectl cp host -> pod)" || fail "tar in rc=$rc $(cat "$CC_TMP/cp-in.err")"
mkdir -p "$CC_TMP/cp-back"
stream exec --no-stderr "$C1" busybox tar -cf - -C /cp sub a.txt 2>"$CC_TMP/cp-out.err" | tar -xf - -C "$CC_TMP/cp-back"
cmp -s "$CC_TMP/cp-src/sub/blob" "$CC_TMP/cp-back/sub/blob" && cmp -s "$CC_TMP/cp-src/a.txt" "$CC_TMP/cp-back/a.txt" &&
        ok "tar out of the container (pod -> host): both files identical" || fail "tar out: $(cat "$CC_TMP/cp-out.err")"

# --- leaks: 50 sequential and 10 parallel execs ------------------------------------------------
# What an exec could leave: the shim's fds (FIFOs, pipes, sockets) and threads, and processes in
# the container's pid namespace, where every exec runs.
count() {
        local fds thr gp
        fds=$(ls /proc/"$SHIM_PID"/fd | wc -l)
        thr=$(ls /proc/"$SHIM_PID"/task | wc -l)
        # In one shell with builtins only, c1's `busybox sleep 1` not counted: a pipeline's
        # second process and the sleep between two of its iterations came and went, so the
        # count moved by one without any leak (4 before, 3 after, seen once).
        gp=$(cri exec-sync "$C1" /bin/sh -c 'n=0; for p in /proc/[0-9]*; do read -r c <"$p/comm" || continue; [ "$c" = sleep ] || n=$((n + 1)); done; echo $n' 2>/dev/null)
        echo "$fds $thr $gp"
}
before=$(count)
for i in $(seq 50); do
        out=$(echo "n$i" | stream exec --stdin "$C1" cat 2>&1)
        [ "$out" = "n$i" ] || { fail "sequential exec $i: '$out'"; break; }
done
pids=()
for i in $(seq 10); do
        (out=$(stream exec --tty --stdin --step "send=p$i\\r" --step "wait=p$i\r\np$i" --step 'send=\x04' "$C1" cat 2>&1)
         [ "$(tr -d '\r' <<<"$out" | grep -cx "p$i")" -eq 2 ]) &
        pids+=($!)
done
for i in $(seq 10); do
        (out=$(echo "q$i" | stream exec --stdin "$C1" cat 2>&1); [ "$out" = "q$i" ]) &
        pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ $bad -eq 0 ] && ok "50 sequential execs and 20 parallel ones (10 with a terminal) gave their output" || fail "$bad parallel execs failed"
# The ttrpc server's idle workers end after 10 s and the last exec's threads with its Delete:
# wait for the shim to be back to its numbers (at most 30 s), then compare everything.
peak=$(ls /proc/"$SHIM_PID"/task | wc -l)
b_fds=$(cut -d' ' -f1 <<<"$before") b_thr=$(cut -d' ' -f2 <<<"$before")
cc_wait_for 30 bash -c "[ \$(ls /proc/$SHIM_PID/fd | wc -l) -le $b_fds ] && [ \$(ls /proc/$SHIM_PID/task | wc -l) -le $b_thr ]"
after=$(count)
echo "  shim fds, shim threads, container processes: before $before, after $after (shim threads right after the execs: $peak)"
read -r a_fds a_thr a_gp <<<"$after"
read -r b_fds b_thr b_gp <<<"$before"
[ "$a_fds" -eq "$b_fds" ] && [ "$a_thr" -le "$b_thr" ] && [ "$a_gp" -eq "$b_gp" ] &&
        ok "nothing left behind: shim fds $a_fds, threads $a_thr (<= $b_thr), container processes $a_gp as before" ||
        fail "left behind: before '$before' after '$after'"
[ "$(ls -l /proc/"$SHIM_PID"/fd | grep -c pipe:)" -eq 0 ] && ok "no pipe held by the shim" ||
        fail "shim pipes: $(ls -l /proc/"$SHIM_PID"/fd | grep pipe:)"

# --- teardown ----------------------------------------------------------------------------------
t=$(date +%s.%N)
cri stop --timeout 10 "$C1" >/dev/null || fail "StopContainer c1"
echo "  StopContainer c1 took $(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s"
[ "$(ctr_state "$C1")" = "CONTAINER_EXITED 0" ] && ok "c1 stopped by its TERM trap (exit 0)" || fail "c1 after stop: $(ctr_state "$C1")"
cri rm "$C1" >/dev/null
cri stopp "$POD" >/dev/null || fail "StopPodSandbox"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox"
# --- policy: a pod whose agent policy (from its initdata) denies ExecProcess -----------------
cat >"$CC_TMP/initdata-noexec.toml" <<'TOML'
version = "0.1.0"
algorithm = "sha384"

[data]
"policy.json" = '''
{"version": 2, "default": "allow", "set_policy": "deny",
 "rules": [{"name": "no-exec", "requests": ["ExecProcess"], "action": "deny"}]}
'''
TOML
E2E_POD_EXTRA="\"annotations\": {\"io.katacontainers.config.hypervisor.cc_init_data\": \"$(gzip -9n <"$CC_TMP/initdata-noexec.toml" | base64 -w0)\"}"
e2e_runp noexec-pod kata-noexec
E2E_POD_EXTRA=""
P2=$E2E_POD
[ -n "$P2" ] || cc_fail "RunPodSandbox noexec-pod: $(cat "$CC_TMP/noexec-pod.runp.err")"
C3=$(e2e_create "$P2" noexec-pod c3 "$IMAGE" '["/bin/sh", "-c", "trap \"exit 0\" TERM; while true; do echo tick; busybox sleep 1; done"]')
[ -n "$C3" ] || cc_fail "CreateContainer c3: $(cat "$CC_TMP/c3.create.err")"
cri start "$C3" >/dev/null || cc_fail "StartContainer c3"
cri exec-sync "$C3" /bin/echo should-not-run >"$CC_TMP/deny.out" 2>"$CC_TMP/deny.err"
rc=$?
if [ $rc -ne 0 ] && grep -q "ExecProcess denied by agent policy rule 'no-exec'" "$CC_TMP/deny.err" &&
        ! grep -q should-not-run "$CC_TMP/deny.out"; then
        ok "ExecSync denied by the pod's policy: $(grep -o 'error: [A-Za-z]*' "$CC_TMP/deny.err") ... $(grep -o "ExecProcess denied by agent policy rule 'no-exec'" "$CC_TMP/deny.err")"
else
        fail "ExecSync under a no-exec policy: rc=$rc out '$(cat "$CC_TMP/deny.out")' err '$(cat "$CC_TMP/deny.err")'"
fi
stream exec "$C3" /bin/echo should-not-run >"$CC_TMP/sdeny.out" 2>"$CC_TMP/sdeny.err"
rc=$?
if [ $rc -eq 126 ] && grep -q "ExecProcess denied by agent policy rule 'no-exec'" "$CC_TMP/sdeny.err"; then
        ok "streaming exec denied: $(head -c 300 "$CC_TMP/sdeny.err")"
else
        fail "streaming exec under a no-exec policy: rc=$rc out '$(cat "$CC_TMP/sdeny.out")' err '$(cat "$CC_TMP/sdeny.err")'"
fi
stream exec --tty --stdin --step 'send=echo x\r' "$C3" /bin/sh >/dev/null 2>"$CC_TMP/tdeny.err"
rc=$?
[ $rc -ne 0 ] && grep -q "ExecProcess denied by agent policy rule 'no-exec'" "$CC_TMP/tdeny.err" &&
        ok "terminal exec denied too (rc $rc)" || fail "terminal exec under no-exec: rc=$rc $(cat "$CC_TMP/tdeny.err")"
[ "$(pod_state "$P2")" = SANDBOX_READY ] && [ "$(ctr_state "$C3")" = "CONTAINER_RUNNING 0" ] &&
        ok "the pod is still SANDBOX_READY and its container RUNNING" || fail "after the denials: $(pod_state "$P2") / $(ctr_state "$C3")"
n1=$(grep -c "stdout F tick" "$CC_TMP/logs/noexec-pod/c3.log")
cc_wait_for 20 bash -c "[ \$(grep -c 'stdout F tick' $CC_TMP/logs/noexec-pod/c3.log) -gt $n1 ]" &&
        ok "its output still reaches the CRI log after the denials" || fail "c3 log stopped at $n1 lines"
cri stop --timeout 10 "$C3" >/dev/null
cri rm "$C3" >/dev/null
cri stopp "$P2" >/dev/null || fail "StopPodSandbox noexec-pod"
cri rmp "$P2" >/dev/null || fail "RemovePodSandbox noexec-pod"

left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, pod)" || fail "left: $left"
e2e_finish e2e-exec
