#!/usr/bin/env bash
# cc-agent in a VM: `make guest-image`, boot it under QEMU TCG with the agent channel on a
# virtio-serial port backed by a unix socket, then with the C test client: Health.Check
# SERVING, logs on a second port (agent.log.0), copy a busybox-static rootfs in with CopyFile, run a container that prints to
# stdout (and one that is OOM-killed under cgroup v2), reconnect many times (every client
# call is a new host connection on the same port), and DestroySandbox powers the VM off.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/cc-agent-ctl
QEMU=$(command -v qemu-system-x86_64 || true)

skip() { echo "$1"; exit 77; }
[ -n "$QEMU" ] || skip "needs qemu-system-x86_64"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || skip "needs busybox-static"

tmp=$(mktemp -d /tmp/agent-vm.XXXXXX)
qemu_pid=""
fails=0
cleanup() {
        if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill "$qemu_pid"
                sleep 0.5
                kill -9 "$qemu_pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# The image (kernel fetched from Debian's archive with apt-get download; skip without it).
# (Not lib.sh's cc_guest_image: this test always runs the make and has no lib.sh.)
if ! make -s guest-image >"$tmp/image.log" 2>&1; then
        if grep -qiE "cannot resolve|Failed to fetch|Temporary failure|Unable to locate" "$tmp/image.log"; then
                skip "cannot fetch the guest kernel from the Debian archive"
        fi
        cat "$tmp/image.log"
        echo "make guest-image failed"
        exit 1
fi
ok "make guest-image ($(stat -c %s build/guest/initrd.img) bytes initrd)"

start=$(date +%s.%N)
"$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
        -kernel build/guest/vmlinuz -initrd build/guest/initrd.img \
        -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0 agent.log=debug agent.log_port=agent.log.0" \
        -serial "file:$tmp/console.log" \
        -device virtio-serial-pci \
        -chardev "socket,id=agent,path=$tmp/agent.sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=agent.channel.0 \
        -chardev "file,id=log,path=$tmp/agent-log.txt" \
        -device virtserialport,chardev=log,name=agent.log.0 &
qemu_pid=$!
for _ in $(seq 100); do [ -S "$tmp/agent.sock" ] && break; sleep 0.1; done
# The client is a short-lived CLI: under SANITIZE=1 its exit-time leak report is noise.
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$tmp/agent.sock" "$@"; }

if [ "$(ctl check --wait 120)" = SERVING ]; then
        ok "Health.Check SERVING after $(echo "$(date +%s.%N) - $start" | bc) s"
else
        fail "Health.Check"
        tail -n 30 "$tmp/console.log"
        exit 1
fi
ctl create-sandbox --id vmpod --hostname vmpod && ok "CreateSandbox" || fail "CreateSandbox"

# A rootfs, copied in through the API (no test content in the measured image).
B=/run/kata-containers/shared/containers/vm1/rootfs
for d in "" /bin /proc /dev /sys /tmp; do
        ctl copy-file --mode 040755 --dst "$B$d" || fail "CopyFile mkdir $B$d"
done
ctl copy-file --src "$BUSYBOX" --mode 0100755 --dst "$B/bin/sh" || fail "CopyFile busybox"
ctl copy-file --src "$BUSYBOX" --mode 0100755 --dst "$B/bin/busybox" || fail "CopyFile busybox"

out=$(ctl run --id vm1 --rootfs "$B" --hostname guestbox -- /bin/sh -c 'echo hello from $(busybox hostname) in the guest')
rc=$?
[ "$out" = "hello from guestbox in the guest" ] && [ $rc -eq 0 ] && ok "container stdout in the guest" ||
        fail "container stdout: '$out' rc=$rc"
out=$(ctl run --id vm1 --rootfs "$B" -- /bin/sh -c 'cat /proc/self/cgroup; exit 4')
[ $? -eq 4 ] && [ "$out" = "0::/cc-agent/vm1" ] && ok "cgroup v2 placement and exit code" ||
        fail "cgroup v2: '$out'"
# The serial channel carries one host connection at a time (QEMU accepts the next client
# only when the current one leaves), so the event is fetched after the run: it waits queued.
ctl run --id vm1 --rootfs "$B" --memory 33554432 -- /bin/sh -c \
        'x=$(busybox head -c 100000000 /dev/zero | busybox tr "\0" a); echo survived'
rc=$?
ctl oom-event --timeout 60 >"$tmp/oom.out"
[ $rc -eq 137 ] && [ "$(cat "$tmp/oom.out")" = vm1 ] && ok "OOM kill under cgroup v2 reported" ||
        fail "OOM: rc=$rc event='$(cat "$tmp/oom.out")'"
for i in $(seq 10); do ctl check >/dev/null || fail "reconnect $i"; done
ok "10 host reconnects on the serial port"
details=$(ctl details)
echo "guest details: $details"
rss=$(echo "$details" | sed -n 's/.*smaps_rss_kib=\([0-9]*\).*/\1/p')
echo "agent resident set in the guest after the tests: ${rss} KiB (smaps_rollup)"
grep -o ' rss_kib=[0-9]*' "$tmp/console.log" | head -1 | sed 's/^ /agent resident set at ready: /'
# The ready line names the kernel the VM booted: the image manifest's kernel-version.
kver=$(sed -n 's/^kernel-version //p' build/guest/manifest.txt)
grep -q "agent ready .* kernel=$kver " "$tmp/console.log" && ok "the ready line names the kernel booted ($kver)" ||
        fail "no kernel=$kver in the ready line: $(grep -m1 'agent ready' "$tmp/console.log")"

grep -q 'msg="container created id=vm1"' "$tmp/agent-log.txt" 2>/dev/null &&
        ok "agent logs on the log port (agent.log.0)" || fail "no logs on the log port"
ctl destroy-sandbox && ok "DestroySandbox" || fail "DestroySandbox"
for _ in $(seq 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
        fail "the VM did not power off"
else
        wait "$qemu_pid"
        ok "VM powered off (qemu exit $?)"
        qemu_pid=""
fi
grep -q "reboot: Power down" "$tmp/console.log" && ok "guest kernel powered down" || fail "no power-down"
if [ "$fails" -ne 0 ]; then
        tail -n 40 "$tmp/console.log"
        echo "$fails check(s) failed"
        exit 1
fi
echo "agent-vm: all checks passed"
