#!/usr/bin/env bash
# The agent's debug console (issue 21), driven by a terminal (tmux): a kata pod through CRI whose
# handler's configuration sets [agent.kata] debug_console_enabled = true, with a guest image
# built with --debug-shell (busybox-static as /bin/sh); `cc-runtime exec <pod id>` in a tmux
# pane: `uname -a` runs in the guest and shows the guest kernel (not the host's), `stty size` in
# the guest follows the terminal's size before and after a resize, a background
# process started in the session is gone in the next one, `exit` ends cc-runtime exec (exit 0)
# and restores the terminal. Refusals: a pod of a handler without the key (cc-runtime exec names
# the key), `cc-runtime check` (off; a TEE handler with the key is flagged), a pod annotation
# adding agent.debug_console to the kernel command line. Then nothing is left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --tool tmux --built "$BUILD/cc-runtime"
[ -x build/cc-agent-static ] || cc_fail "build/cc-agent-static not built"
file -L "$(command -v busybox)" | grep -q 'statically linked' || cc_skip "needs busybox-static"

# A guest image with the console's shell, next to the default one (same kernel).
DBG=$CC_TMP/guest-dbg
bash guest-agent/build-guest-image.sh --agent build/cc-agent-static \
        $([ -x build/cc-agent-pull ] && echo --pull-helper build/cc-agent-pull) \
        --kernel-dir build/guest/kernel-project --out "$DBG" --debug-shell >"$CC_TMP/image-dbg.log" 2>&1 ||
        { cat "$CC_TMP/image-dbg.log"; cc_fail "build-guest-image --debug-shell"; }
grep -q ' bin/busybox$\| /bin/busybox$\|bin/busybox' "$DBG/manifest.txt" && ok "--debug-shell image: busybox listed in its manifest" ||
        fail "manifest: $(grep -c . "$DBG/manifest.txt") lines, no busybox"
! grep -q 'bin/busybox' build/guest/manifest.txt && ok "the default image has no shell" || fail "the default image has busybox"
GUEST_KVER=$(cat build/guest/kernel-project/version)

# kata: debug console on, the --debug-shell image. kata-nocon: the shipped configuration (no
# key), kernel_params annotations enabled (for the refusal).
sed -i -e "s|^initrd = .*|initrd = \"$DBG/initrd.img\"|" -e 's|^\[agent.kata\]$|[agent.kata]\ndebug_console_enabled = true|' "$E2E_CFG"
grep -q '^debug_console_enabled = true' "$E2E_CFG" || cc_fail "could not enable the console in $E2E_CFG"
sed -e '/^debug_console_enabled = true$/d' -e "s|^enable_annotations = .*|enable_annotations = [\"kernel_params\"]|" \
        "$E2E_CFG" >"$CC_TMP/configuration-nocon.toml"
E2E_EXTRA_RUNTIMES="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-nocon]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.*\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-nocon.options]
        ConfigPath = \"$CC_TMP/configuration-nocon.toml\""

# --- cc-runtime check -------------------------------------------------------------------------
chk=$("$BUILD/cc-runtime" check --config "$E2E_CFG" --config "$CC_TMP/configuration-nocon.toml" 2>&1)
grep -q "debug console: enabled (cc-runtime exec SANDBOX_ID; development only)" <<<"$chk" &&
        grep -q "debug console: off (cc-runtime exec is refused)" <<<"$chk" &&
        ok "cc-runtime check: enabled for the console handler, off for the other" || fail "check: $chk"
mkdir -p "$CC_TMP/tee"
sed -e 's|^\[agent.kata\]$|[agent.kata]\ndebug_console_enabled = true|' configs/runtime/configuration-qemu-snp.toml >"$CC_TMP/tee/configuration-qemu-snp.toml"
chk=$("$BUILD/cc-runtime" check --config "$CC_TMP/tee/configuration-qemu-snp.toml" --config configs/runtime/configuration-qemu-snp.toml 2>&1)
grep -q "debug console: ENABLED in a TEE handler: the guest has a root shell; agent.debug_console is on the measured kernel command line" <<<"$chk" &&
        [ "$(grep -c 'debug console: off' <<<"$chk")" -eq 1 ] &&
        ok "cc-runtime check: the shipped SNP handler off, an SNP handler with the key flagged" || fail "TEE check: $chk"

e2e_busybox_registry
e2e_cni
e2e_containerd

# --- a pod with the console ---------------------------------------------------------------------
e2e_runp con-pod
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/con-pod.runp.err")"
ok "RunPodSandbox $POD (debug console handler)"
# Where the shim says the console is: the e2e handlers use the serial channel (e2e_setup), so
# the console's own virtio-serial port and socket (vsock port 1026 with the vsock channel:
# test-agent-debug-console and test-shim-core; this machine has no vhost-vsock).
RUNDIR=$CC_SHIM_RUN_DIR/$(printf 'k8s.io/%s' "$POD" | sha256sum | cut -c1-24)
addr=$(cat "$RUNDIR/debug-console" 2>&1)
[ "$addr" = "unix:$RUNDIR/console.sock" ] && ok "the console's address from the shim: $addr" || fail "address: $addr"
ps -o args= -C qemu-system-x86_64 | grep "$POD" | grep -q "name=agent.debug_console" && ok "QEMU has the console port" ||
        fail "no console port in QEMU's command line"

TMUX_SOCK=$CC_TMP/tmux.sock
# tmux runs a session's command with $SHELL -c: under a runner whose SHELL is not a shell
# (SHELL=/bin/false, as seen in CI) nothing would run. Its own server, no config file, a known
# shell and terminal type, whatever the caller's environment.
tm() { SHELL=/bin/sh TERM=xterm tmux -f /dev/null -S "$TMUX_SOCK" "$@"; }
pane() { tm capture-pane -p -t con -S -200; }
# session N: cc-runtime exec in a fresh tmux session; its exit status is printed after it.
session() {
        tm new-session -d -s con -x 150 -y 40 \
                "CC_SHIM_RUN_DIR=$CC_SHIM_RUN_DIR $(realpath "$BUILD/cc-runtime") exec $POD; echo RC=\$?; stty -a | grep -o -- '-\\?icanon' | head -1; sleep 600"
}
session
cc_wait_for 60 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q 'cc-debug#'" && ok "a shell prompt from the guest" ||
        fail "no prompt: $(pane)"
tm send-keys -t con 'uname -a; echo marker-$((6*7))' Enter
cc_wait_for 30 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q '^marker-42'" || fail "no answer: $(pane)"
if pane | grep -q "^Linux .* $GUEST_KVER "; then
        ok "uname -a in the guest: $(pane | grep -m1 "^Linux ")"
else
        fail "uname: $(pane | grep -m1 '^Linux' || pane)"
fi
pane | grep -q "$(uname -r)" && fail "the host's kernel $(uname -r) shows" || ok "not the host's kernel ($(uname -r))"
# The window size: the pane's at the start, the new one after the tmux window is resized
# (SIGWINCH to cc-runtime exec, its size to the guest's pty). A resize races what is typed
# right after it, so the question is asked again until the answer settles (at most 30 s).
psize() { tm display-message -p -t con '#{pane_height} #{pane_width}'; }
# guest_size N WANT: `stty size` in the guest as sizeN=..., until it says WANT.
guest_size() {
        local i
        for i in $(seq 30); do
                tm send-keys -t con "echo size$1=\$(stty size | tr ' ' x)" Enter
                cc_wait_for 5 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con -S -200 | grep -q '^size$1=[0-9]'" || continue
                pane | grep "^size$1=[0-9]" | tail -1 | grep -qx "size$1=${2/ /x}" && return 0
                sleep 1
        done
        return 1
}
want=$(psize)
guest_size 1 "$want" && ok "stty size in the guest: $want, the terminal's" || fail "size at start: $(pane | grep '^size1=' | tail -1), the pane is $want"
tm resize-window -t con -x 100 -y 30
want2=$(psize)
[ "$want2" != "$want" ] || fail "tmux did not resize the pane ($want2)"
guest_size 2 "$want2" && ok "after a resize of the terminal: $want2 in the guest too" || fail "size after the resize: $(pane | grep '^size2=' | tail -1), the pane is $want2"
tm send-keys -t con 'busybox sleep 4242 &' Enter
tm send-keys -t con 'exit' Enter
cc_wait_for 30 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q '^RC='" || fail "exit did not end cc-runtime exec: $(pane)"
pane | grep -q '^RC=0' && ok "exit ends cc-runtime exec with status 0" || fail "rc: $(pane | grep '^RC=')"
pane | grep -q '^icanon' && ok "the terminal is restored (canonical mode again)" || fail "tty after: $(pane | tail -3)"
tm kill-session -t con
# The next session: the first one's background process is gone.
session
cc_wait_for 60 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q 'cc-debug#'" || fail "no prompt (2): $(pane)"
tm send-keys -t con 'echo n=$(ps | grep -c "[s]leep 4242")' Enter
cc_wait_for 30 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q '^n='" || fail "no ps answer: $(pane)"
pane | grep -q '^n=0' && ok "nothing left in the guest after a session (its background sleep was killed)" ||
        fail "left in the guest: $(pane | grep '^n=')"
tm send-keys -t con 'exit' Enter
cc_wait_for 30 bash -c "tmux -S $TMUX_SOCK capture-pane -p -t con | grep -q '^RC=0'" || fail "second exit: $(pane)"
tm kill-server
# Only cc-runtime itself (the pane's sh -c names it too, and goes with the tmux server).
cc_wait_for 10 bash -c "[ -z \"\$(pgrep -f '^$(realpath "$BUILD/cc-runtime") exec $POD')\" ]" && ok "no cc-runtime exec left" ||
        fail "cc-runtime exec still runs: $(pgrep -af "cc-runtime exec $POD")"

# --- refusals -----------------------------------------------------------------------------------
e2e_runp nocon-pod kata-nocon
P2=$E2E_POD
[ -n "$P2" ] || cc_fail "RunPodSandbox nocon: $(cat "$CC_TMP/nocon-pod.runp.err")"
out=$(CC_SHIM_RUN_DIR=$CC_SHIM_RUN_DIR timeout 20 "$BUILD/cc-runtime" exec "$P2" </dev/null 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q "has no debug console: its handler's configuration does not set debug_console_enabled = true" <<<"$out" &&
        ok "a pod of a handler without the key: refused ($out)" || fail "nocon exec rc=$rc: $out"
out=$(timeout 20 "$BUILD/cc-runtime" exec no-such-pod </dev/null 2>&1)
[ $? -eq 1 ] && grep -q "no sandbox no-such-pod" <<<"$out" && ok "an unknown sandbox: refused" || fail "unknown: $out"
E2E_POD_EXTRA='"annotations": {"io.katacontainers.config.hypervisor.kernel_params": "agent.debug_console"}'
e2e_runp anno-pod kata-nocon
E2E_POD_EXTRA=""
[ -z "$E2E_POD" ] && grep -q "agent.debug_console is refused: only the handler's configuration" "$CC_TMP/anno-pod.runp.err" &&
        ok "a pod annotation adding agent.debug_console: RunPodSandbox refused" || fail "annotation: pod '$E2E_POD' $(cat "$CC_TMP/anno-pod.runp.err")"

for p in "$POD" "$P2"; do
        cri stopp "$p" >/dev/null || fail "StopPodSandbox $p"
        cri rmp "$p" >/dev/null || fail "RemovePodSandbox $p"
done
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, console socket and run files, mount, netns, pod)" || fail "left: $left"
e2e_finish e2e-console
