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
        rm -rf "$CC_TMP"
        exit "$rc"
}

# cc_wait_for TIMEOUT_SECONDS CMD...: polls CMD until it succeeds.
cc_wait_for() {
        local t=$1; shift
        for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
        return 1
}

# cc_start_containerd [EXTRA_TOML]: a private containerd (own root, state and sockets).
# Sets CTRD_SOCK and CTRD_ROOT; CRI is disabled unless EXTRA_TOML enables it.
cc_start_containerd() {
        local extra=${1:-}
        CTRD_DIR=$CC_TMP/containerd
        CTRD_SOCK=$CTRD_DIR/containerd.sock
        CTRD_ROOT=$CTRD_DIR/root
        mkdir -p "$CTRD_DIR"
        cat >"$CTRD_DIR/config.toml" <<TOML
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
$extra
TOML
        cc_bg containerd containerd --config "$CTRD_DIR/config.toml"
        cc_wait_for 30 ctr --address "$CTRD_SOCK" version || cc_fail "containerd did not start"
}
