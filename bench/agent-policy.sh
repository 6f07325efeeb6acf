#!/usr/bin/env bash
# Policy evaluation of the agent with a 50-rule policy (bench/agent-policy.c): on the host, and
# inside a QEMU TCG guest (the guest image's kernel, an initramfs whose /init is the benchmark
# linked like cc-agent-static), where the targets apply: under 1 ms per request, and
# what the engine adds to the resident set. Prints both runs.
#   BUILD=build bash bench/agent-policy.sh
set -eu
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/bench/agent-policy" "$BUILD/bench/agent-policy-static"
echo "== host (native, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
"$BUILD/bench/agent-policy" 100000
QEMU=$(command -v qemu-system-x86_64) || { echo "agent-policy: no qemu-system-x86_64"; exit 0; }
[ -f build/guest/vmlinuz ] || make -s guest-image >/dev/null
tmp=$(mktemp -d /tmp/agent-policy.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/root"
cp "$BUILD/bench/agent-policy-static" "$tmp/root/init"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet) >"$tmp/initrd"
echo "== QEMU TCG guest (-cpu max, 1 vCPU, no KVM)"
timeout 300 "$QEMU" -machine q35,accel=tcg -cpu max -m 256 -smp 1 -nodefaults -nographic \
        -no-reboot -kernel build/guest/vmlinuz -initrd "$tmp/initrd" \
        -append "console=ttyS0 panic=-1 quiet rdinit=/init" -serial "file:$tmp/console" ||
        true
grep -o 'policy-bench:.*' "$tmp/console" | tr -d '\r' || { tail -20 "$tmp/console"; exit 1; }
