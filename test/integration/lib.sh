# Shared helpers for the integration tests (sourced). Every service a test starts is tracked
# by pid and stopped by cc_cleanup, which the test installs as its EXIT trap.
BUILD=${BUILD:-build}
CC_PIDS=()
CC_TMP=$(mktemp -d /tmp/cc-it.XXXXXX)

cc_skip() { echo "SKIP: $*"; exit 77; }
cc_fail() { echo "FAIL: $*"; exit 1; }

# cc_bg NAME CMD...: starts CMD in the background, logging to $CC_TMP/NAME.log.
cc_bg() {
        local name=$1; shift
        "$@" >"$CC_TMP/$name.log" 2>&1 &
        CC_PIDS+=($!)
        eval "PID_${name//-/_}=$!"
}

cc_stop_pid() {
        local pid=$1
        kill -0 "$pid" 2>/dev/null || return 0
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}

cc_cleanup() {
        local rc=$?
        for ((i = ${#CC_PIDS[@]} - 1; i >= 0; i--)); do cc_stop_pid "${CC_PIDS[$i]}"; done
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
                for f in "$CC_TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
        fi
        # CC_KEEP_LOGS=DIR: the run's logs (containerd's, with the shims' lines) are kept there,
        # for a flake seen once in many runs.
        [ -n "${CC_KEEP_LOGS:-}" ] && mkdir -p "$CC_KEEP_LOGS" && cp -a "$CC_TMP"/*.log "$CC_KEEP_LOGS"/ 2>/dev/null
        rm -rf "$CC_TMP"
        exit "$rc"
}

# cc_wait_for TIMEOUT_SECONDS CMD...: polls CMD until it succeeds.
cc_wait_for() {
        local t=$1; shift
        for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
        return 1
}

# cc_containerd_dirs NAME: CTRD_DIR=$CC_TMP/NAME (created), CTRD_SOCK, CTRD_ROOT below it.
cc_containerd_dirs() {
        CTRD_DIR=$CC_TMP/$1
        CTRD_SOCK=$CTRD_DIR/containerd.sock
        CTRD_ROOT=$CTRD_DIR/root
        mkdir -p "$CTRD_DIR"
}

# cc_containerd_config CRI <BODY: $CTRD_DIR/config.toml with our own root, state and sockets
# and the snapshotters this host cannot run disabled, then BODY (stdin) as is; CRI "off"
# disables the CRI plugin too.
cc_containerd_config() {
        local cri=""
        [ "$1" = off ] && cri='"io.containerd.grpc.v1.cri", '
        {
                cat <<TOML
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_DIR/state"
disabled_plugins = [${cri}"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
TOML
                cat
        } >"$CTRD_DIR/config.toml"
}

# cc_containerd_launch NAME: runs containerd on $CTRD_DIR/config.toml (log $CC_TMP/NAME.log)
# and waits until it answers on $CTRD_SOCK.
cc_containerd_launch() {
        cc_bg "$1" containerd --config "$CTRD_DIR/config.toml"
        cc_wait_for 30 ctr --address "$CTRD_SOCK" version || cc_fail "containerd did not start"
}

# cc_start_containerd [EXTRA_TOML]: a private containerd (own root, state and sockets).
# Sets CTRD_SOCK and CTRD_ROOT; CRI is disabled unless EXTRA_TOML enables it.
cc_start_containerd() {
        cc_containerd_dirs containerd
        printf '%s\n' "${1:-}" | cc_containerd_config off
        cc_containerd_launch containerd
}

# cc_kill9 PATTERN...: kill -9 of every process whose command line matches a pattern (pgrep -f).
# Write the pattern's first letter as [x] so that it does not match the shell running pgrep.
cc_kill9() {
        local pat p
        for pat in "$@"; do
                for p in $(pgrep -f -- "$pat" || true); do kill -9 "$p" 2>/dev/null; done
        done
}

# cc_kill_shims ADDR [SHIM_RE [RUN_DIR]]: kill -9 of our shim daemons (SHIM_RE, default our
# shim's name, followed in argv by ADDR: our containerd's socket) and of the QEMUs under RUN_DIR
# (default $CC_SHIM_RUN_DIR). Shim daemons run in their own session and outlive containerd.
cc_kill_shims() {
        cc_kill9 "${2:-[c]ontainerd-shim-kata-cc-v2 }.*$1" "[q]emu-system.*${3:-${CC_SHIM_RUN_DIR:-/nonexistent}}"
}

# sock_of ID: the shim socket containerd uses for task ID of namespace $NS on $CTRD_SOCK.
sock_of() { echo "/run/containerd/s/$(printf '%s' "$CTRD_SOCK/$NS/$1" | sha256sum | cut -d' ' -f1)"; }
# qemus: pids of the VMs under our run dir.
qemus() { pgrep -f -- "[q]emu-system.*$CC_SHIM_RUN_DIR" || true; }

# cc_guest_image: builds build/guest (make guest-image) unless it is there; skips the test when
# the guest kernel cannot be fetched from Debian's archive.
cc_guest_image() {
        [ -f build/guest/vmlinuz ] && [ -f build/guest/initrd.img ] && return 0
        if ! make -s guest-image >"$CC_TMP/image.log" 2>&1; then
                grep -qiE "cannot resolve|Failed to fetch|Temporary failure|Unable to locate" \
                        "$CC_TMP/image.log" && cc_skip "cannot fetch the guest kernel"
                cat "$CC_TMP/image.log"
                cc_fail "make guest-image failed"
        fi
}

# cc_hang_initrd OUT: an initramfs whose /init (busybox-static, $BUSYBOX) sleeps forever: a guest
# that boots and never answers, whatever the machine's speed (for dial_timeout cases).
cc_hang_initrd() {
        local d=$CC_TMP/hang-root
        mkdir -p "$d/bin" "$d/dev"
        cp "$BUSYBOX" "$d/bin/busybox"
        printf '#!/bin/busybox sh\necho cc-test: this guest never answers\nexec /bin/busybox sleep 2147483647\n' >"$d/init"
        chmod 0755 "$d/init"
        (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$1"
}

# cc_shim_on_path SHIM: a copy of SHIM as containerd-shim-kata-cc-v2 first on PATH (a copy: a
# rebuild of build/ during the test must not swap the binary under containerd), VM run dirs
# under $CC_TMP/run, no KATA_CONF_FILE from the caller's environment.
cc_shim_on_path() {
        mkdir -p "$CC_TMP/bin" "$CC_TMP/run"
        cp "$1" "$CC_TMP/bin/containerd-shim-kata-cc-v2"
        export PATH=$CC_TMP/bin:$PATH
        export CC_SHIM_RUN_DIR=$CC_TMP/run
        unset KATA_CONF_FILE
}

# cc_busybox_rootfs DIR NAME...: a container rootfs with busybox-static ($BUSYBOX) copied to
# /bin/NAME for each NAME, and root in /etc/passwd.
cc_busybox_rootfs() {
        local dir=$1 b
        shift
        mkdir -p "$dir"/{bin,proc,dev,sys,tmp,etc,run}
        for b in "$@"; do cp "$BUSYBOX" "$dir/bin/$b"; done
        echo "root:x:0:0:root:/:/bin/sh" >"$dir/etc/passwd"
}

# cc_ctr_wrapper: $CC_TMP/bin/ctr_, ctr on our containerd and namespace $NS.
cc_ctr_wrapper() {
        printf '#!/bin/sh\nexec ctr --address "%s" --namespace "%s" "$@"\n' "$CTRD_SOCK" "$NS" >"$CC_TMP/bin/ctr_"
        chmod +x "$CC_TMP/bin/ctr_"
}

# cc_bad_config LABEL WIDTH NAME EXPECT [CTR_RUN_ARGS...] <CONFIG: `ctr_ run` of container
# badNAME on $ROOTFS with CONFIG (stdin, kept as $CC_TMP/bad-NAME.toml) as its runtime
# configuration must fail with an error naming that file and matching the regex EXPECT. Reports
# through the script's ok/fail ("LABEL 'NAME': " and WIDTH characters of the error's last
# line), then removes the container and runs the script's check_clean badNAME "LABEL NAME".
cc_bad_config() {
        local label=$1 width=$2 name=$3 expect=$4
        shift 4
        local cfg=$CC_TMP/bad-$name.toml
        cat >"$cfg"
        out=$(timeout 120 ctr_ run --runtime io.containerd.kata-cc.v2 --runtime-config-path "$cfg" \
                "$@" --rootfs "$ROOTFS" "bad$name" /bin/sh -c true 2>&1)
        if [ $? -ne 0 ] && echo "$out" | grep -q -- "$cfg" && echo "$out" | grep -qE -- "$expect"; then
                ok "$label '$name': $(echo "$out" | tail -n1 | cut -c1-"$width")"
        else
                fail "$label '$name': $out"
        fi
        ctr_ container rm "bad$name" >/dev/null 2>&1
        check_clean "bad$name" "$label $name"
}

# cc_finish NAME WHAT REGEX [SUFFIX]: the end of a test that counts its failed checks in $fails:
# with any, the lines of $CC_TMP/containerd.log matching REGEX (headed "containerd log (WHAT)")
# and exit 1; else "NAME: all checks passed" and SUFFIX.
cc_finish() {
        if [ "$fails" -ne 0 ]; then
                echo "--- containerd log ($2)"
                grep -E "$3" "$CC_TMP/containerd.log" | tail -n 60
                echo "$fails check(s) failed"
                exit 1
        fi
        echo "$1: all checks passed${4:-}"
}

# cc_qemu_toml MEMORY [QEMU_LINES [RUNTIME_LINES]]: a runtime configuration for QEMU TCG with
# the serial agent channel, build/guest's kernel and initrd and the host rootfs allowed, on stdout.
cc_qemu_toml() {
        cat <<TOML
[hypervisor.qemu]
kernel = "$(realpath build/guest/vmlinuz)"
initrd = "$(realpath build/guest/initrd.img)"
default_memory = $1
accel = "tcg"
agent_channel = "serial"
${2:-}
[agent.kata]
dial_timeout = 120
[runtime]
allow_host_rootfs = true
${3:-}
TOML
}

# cc_pod_node_netns: what CNI would make, by hand: namespaces $POD and $NODE joined by a veth
# pair, eth0 ($POD_IP/24, default route via $NODE_IP) in the pod, vnode ($NODE_IP/24) in the
# node; sets POD_LINKS_BEFORE (the pod's links, to compare after teardown) and POD_MAC.
cc_pod_node_netns() {
        ip netns add "$POD" || cc_fail "ip netns add"
        ip netns add "$NODE" || cc_fail "ip netns add"
        ip -n "$POD" link add eth0 type veth peer name vnode netns "$NODE" || cc_fail "veth"
        ip -n "$POD" addr add "$POD_IP/24" dev eth0
        ip -n "$NODE" addr add "$NODE_IP/24" dev vnode
        ip -n "$POD" link set lo up
        ip -n "$POD" link set eth0 up
        ip -n "$NODE" link set lo up
        ip -n "$NODE" link set vnode up
        ip -n "$POD" route add default via "$NODE_IP"
        POD_LINKS_BEFORE=$(ip -n "$POD" -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
        POD_MAC=$(ip -n "$POD" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
}

# cc_pod_left_nothing ID WHAT: after pod ID ($NS on $CTRD_SOCK) is gone, its shim has exited,
# its socket is removed (after a crash containerd runs `shim delete` on its own time, so both
# are waited for), $CC_SHIM_RUN_DIR is empty, and the pod namespace $POD holds the links it had
# before ($POD_LINKS_BEFORE) with no filter or ingress qdisc on eth0. Reports with ok/fail.
cc_pod_left_nothing() {
        local id=$1 what=$2 links filters qdiscs
        cc_wait_for 30 bash -c "! pgrep -f -- '[c]ontainerd-shim-kata-cc-v2 -namespace $NS -address $CTRD_SOCK .*-id $id\$' >/dev/null" ||
                fail "$what: shim daemon still runs"
        cc_wait_for 30 test ! -e "$(sock_of "$id")" || fail "$what: socket $(sock_of "$id") left"
        [ -z "$(ls -A "$CC_SHIM_RUN_DIR")" ] || fail "$what: run files left: $(ls -A "$CC_SHIM_RUN_DIR")"
        links=$(ip -n "$POD" -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
        filters=$(tc -n "$POD" filter show dev eth0 ingress 2>&1)
        qdiscs=$(tc -n "$POD" qdisc show dev eth0 2>&1)
        if [ "$links" = "$POD_LINKS_BEFORE" ] && [ -z "$filters" ] && [[ "$qdiscs" != *ingress* ]]; then
                ok "$what: the pod namespace has only lo and eth0, no filter or ingress qdisc"
        else
                fail "$what: pod namespace: links '$links' (before '$POD_LINKS_BEFORE'), filters '$filters', qdiscs '$qdiscs'"
        fi
}

cc__echo_once() {
        CC_ECHO_GOT=$(printf '%s\n' "$CC_ECHO_MSG" | timeout 20 ip netns exec "$NODE" \
                socat -t 10 - "TCP:$POD_IP:7777,connect-timeout=5" 2>/dev/null)
        [ "$CC_ECHO_GOT" = "$CC_ECHO_MSG" ]
}

# cc_pod_traffic CONTAINER TAG: through a running container of the pod whose process echoes TCP
# on port 7777 (busybox nc -ll -e /bin/cat), with a sink on $NODE_IP:8888 writing
# $CC_TMP/sink.out: the guest's eth0 has $POD_IP/24 and $POD_MAC, the node's bytes come back
# from the VM, and the VM's bytes reach the node. Uses the test's ok/fail.
cc_pod_traffic() {
        local c=$1 tag=$2 guest_if guest_link out_msg
        guest_if=$(ctr_ task exec --exec-id ip1 "$c" /bin/busybox ip -o addr show eth0 2>&1)
        guest_link=$(ctr_ task exec --exec-id ip2 "$c" /bin/busybox ip -o link show eth0 2>&1)
        [[ "$guest_if" == *"$POD_IP/24"* ]] && [[ "$guest_link" == *"$POD_MAC"* ]] &&
                ok "the guest's eth0 has the pod's address and MAC ($POD_IP, $POD_MAC)" ||
                fail "guest eth0: '$guest_if' '$guest_link' (want $POD_IP, $POD_MAC)"
        CC_ECHO_MSG="echo-$tag-$$-$RANDOM"
        cc_wait_for 60 cc__echo_once && ok "node -> pod $POD_IP:7777: the bytes came back from the VM" ||
                fail "echo from the node: got '${CC_ECHO_GOT:-}'"
        out_msg="hello-from-the-$tag-vm-$$"
        ctr_ task exec --exec-id out "$c" /bin/sh -c "echo $out_msg | busybox nc $NODE_IP 8888" ||
                fail "exec nc to the node"
        cc_wait_for 10 grep -q "$out_msg" "$CC_TMP/sink.out" &&
                ok "VM -> node $NODE_IP:8888: the node got the bytes" ||
                fail "node sink has '$(cat "$CC_TMP/sink.out" 2>/dev/null)'"
}
