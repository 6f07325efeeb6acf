#!/usr/bin/env bash
# In-guest image pull, in the agent's process versus in the pull helper, side by side in one
# run: two guest images that differ only in the agent (GUEST_AGENT_LINK=dynamic: cc-agent
# pulls in-process; default: cc-agent-static starts /usr/libexec/cc-agent/cc-agent-pull per
# pull), the same kernel, registry and image. Each boots under QEMU TCG with a user-mode NIC
# (the host's loopback registry is 10.0.2.2 there), then PullImage for PULL_N+1 containers:
# the first fetches the layers (cold), the others find them in the store (warm: manifest,
# config, rootfs mount, and for the helper its exec and library loading). Reported: the
# agent's resident set at ready and idle after the pulls (smaps_rollup, GetGuestDetails),
# pull wall times seen by the host, and helper/in-process ratios.
# A third image has the helper with its libraries unpacked in the initrd (--libs-in-initrd, the
# layout before the squashfs image): boot to agent ready and the pulls, side by side.
# Usage: BUILD=build [PULL_N=9] bash bench/agent-pull.sh   (root; results: bench/agent-results.md)
set -uo pipefail
BUILD=${BUILD:-build}
PULL_N=${PULL_N:-9}
. "$(dirname "$0")/../test/integration/img-lib.sh"
QEMU=$(command -v qemu-system-x86_64) || { echo "agent-pull: no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "agent-pull: needs busybox-static"; exit 0; }
CTL=$(realpath "$BUILD/cc-agent-ctl")
MAC=52:54:00:12:34:56
img_setup
trap img_cleanup EXIT

make -s guest-image >"$T/image.log" 2>&1 || { cat "$T/image.log"; fail "make guest-image"; }
make -s BUILD=build build/cc-agent build/cc-agent-static build/cc-agent-pull >/dev/null
kdir=$(make -s --no-print-directory guest-kernel-dir | tail -n 1) # the kernel of build/guest (GUEST_KERNEL)
bash guest-agent/build-guest-image.sh --agent build/cc-agent --kernel-dir "$kdir" \
        --out "$T/inproc" >/dev/null
bash guest-agent/build-guest-image.sh --agent build/cc-agent-static \
        --pull-helper build/cc-agent-pull --kernel-dir "$kdir" --out "$T/helper" >/dev/null
bash guest-agent/build-guest-image.sh --agent build/cc-agent-static --libs-in-initrd \
        --pull-helper build/cc-agent-pull --kernel-dir "$kdir" --out "$T/unpacked" >/dev/null
img_demo_image "pulled for the benchmark"
GUEST_REG=10.0.2.2:$PORT

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

run() { # NAME -> $T/NAME.result: "initrd_bytes ready_kib idle_kib cold_ms warm_median_ms boot_ms"
        local name=$1 dir=$T/$1 sock=$T/$1.sock qpid t0 cold warm=() i details idle ready boot
        t0=$(date +%s%N)
        "$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
                -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
                -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0 agent.image_insecure=$GUEST_REG" \
                -serial "file:$T/$name.console" -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=agent.channel.0 \
                -netdev user,id=net0 -device "virtio-net-pci,netdev=net0,mac=$MAC" &
        qpid=$!
        PIDS+=("$qpid")
        for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
        ctl() { "$CTL" --addr "unix://$sock" "$@"; }
        ctl check --wait 180 >/dev/null || fail "$name: the agent did not answer"
        boot=$(ms_since "$t0")
        # The agent logs its ready line on the serial console, which may reach the file after the
        # check is answered: wait for it (a missing value would shift the result's fields).
        for _ in $(seq 50); do grep -q ' rss_kib=[0-9]' "$T/$name.console" && break; sleep 0.1; done
        ready=$(grep -o ' rss_kib=[0-9]*' "$T/$name.console" | head -1 | cut -d= -f2)
        ready=${ready:-n/a}
        ctl create-sandbox --id bench --hostname bench >/dev/null
        ctl update-interface -- "$MAC" eth0 0 10.0.2.15/24 >/dev/null || fail "$name: UpdateInterface"
        ctl update-routes -- default,10.0.2.2,eth0 >/dev/null || fail "$name: UpdateRoutes"
        for i in $(seq 0 "$PULL_N"); do
                t0=$(date +%s%N)
                ctl pull-image --id "p$i" -- "$GUEST_REG/demo:1" >/dev/null || fail "$name: PullImage p$i"
                if [ "$i" = 0 ]; then cold=$(ms_since "$t0"); else warm+=("$(ms_since "$t0")"); fi
        done
        sleep 1
        details=$(ctl details)
        idle=$(echo "$details" | sed -n 's/.*smaps_rss_kib=\([0-9]*\).*/\1/p')
        ctl destroy-sandbox >/dev/null
        wait "$qpid" 2>/dev/null
        echo "$(stat -c %s "$dir/initrd.img") $ready $idle $cold $(printf '%s\n' "${warm[@]}" | median) $boot" >"$T/$name.result"
}
run inproc
run helper
run unpacked
read -r isz ir ii ic iw ib <"$T/inproc.result"
read -r hsz hr hi hc hw hb <"$T/helper.result"
read -r usz ur ui uc uw ub <"$T/unpacked.result"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
row() { printf '%-40s %11s %11s %11s %8s %8s\n' "$@"; }
printf '\n'
row "in-guest pull, PULL_N=$PULL_N warm pulls" "in-process" "helper" "helper," "helper/" "squashfs/"
row "" "" "(squashfs)" "unpacked" "in-proc" "unpacked"
row "initrd bytes" "$isz" "$hsz" "$usz" "$(ratio "$hsz" "$isz")" "$(ratio "$hsz" "$usz")"
row "QEMU start -> agent ready (ms)" "$ib" "$hb" "$ub" "$(ratio "$hb" "$ib")" "$(ratio "$hb" "$ub")"
row "agent RSS at ready (KiB)" "$ir" "$hr" "$ur" "$(ratio "$hr" "$ir")" "$(ratio "$hr" "$ur")"
row "agent RSS idle after the pulls (KiB)" "$ii" "$hi" "$ui" "$(ratio "$hi" "$ii")" "$(ratio "$hi" "$ui")"
row "cold pull, layers fetched (ms)" "$ic" "$hc" "$uc" "$(ratio "$hc" "$ic")" "$(ratio "$hc" "$uc")"
row "warm pull, median (ms)" "$iw" "$hw" "$uw" "$(ratio "$hw" "$iw")" "$(ratio "$hw" "$uw")"
