#!/usr/bin/env bash
# `cc-runtime check` on this host: a handler that can run (QEMU, no TEE, an existing kernel)
# says "yes"; a TDX handler says "no" and names every missing piece (hardware KVM, TDX in KVM,
# QEMU too old for tdx-guest when it is older than 10.1); a broken file says where it is broken.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed"; exit 77; }
tmp=$(mktemp -d /tmp/hv-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
kernel=$tmp/vmlinuz
echo "not a real kernel; check only looks for the file" >"$kernel"
cat >"$tmp/configuration-qemu.toml" <<EOT
[hypervisor.qemu]
path = "qemu-system-x86_64"
kernel = "$kernel"
EOT
cat >"$tmp/configuration-qemu-tdx.toml" <<EOT
[hypervisor.qemu]
path = "qemu-system-x86_64"
kernel = "$kernel"
firmware = "$tmp/missing-tdvf.fd"
EOT
printf 'broken = [\n' >"$tmp/configuration-bad.toml"

rc=0
CC_CONFIG_DIR=$tmp "$BUILD/cc-runtime" check >"$tmp/out" || rc=$?
cat "$tmp/out"
[ "$rc" -eq 1 ] || { echo "expected exit 1 (one handler cannot run), got $rc"; exit 1; }
grep -Eq '^  kata-qemu +qemu +none +yes$' "$tmp/out" || { echo "kata-qemu should be runnable"; exit 1; }
line=$(grep -E '^  kata-qemu-tdx ' "$tmp/out")
case "$line" in *"no: "*) ;; *) echo "kata-qemu-tdx should not be runnable"; exit 1 ;; esac
case "$line" in *"missing-tdvf.fd: No such file or directory"*) ;; *) echo "firmware not named"; exit 1 ;; esac
if [ ! -e /sys/module/kvm_intel/parameters/tdx ]; then
        case "$line" in *"/sys/module/kvm_intel/parameters/tdx is not Y"*) ;; *) echo "TDX-in-KVM not named"; exit 1 ;; esac
fi
ver=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1\2/p' | head -1)
if [ "${ver:-0}" -lt 101 ]; then
        case "$line" in *"has no usable tdx-guest object: tdx needs QEMU >= 10.1.0"*) ;; *) echo "QEMU version not named"; exit 1 ;; esac
fi
grep -Eq '^  kata-bad .*configuration-bad.toml:2:1: ' "$tmp/out" || { echo "broken config not located"; exit 1; }
# Which kernel each handler boots: a file that is no kernel is named as such; the guest image's
# kernel, when built, by its version string and the manifest beside it.
grep -q "^    kernel: $kernel: not a bzImage (no HdrS boot header)$" "$tmp/out" || { echo "the fake kernel is not named as no bzImage"; exit 1; }
if [ -f build/guest/vmlinuz ] && [ -f build/guest/manifest.txt ]; then
        kver=$(sed -n 's/^kernel-version //p' build/guest/manifest.txt)
        CC_CONFIG_DIR=$tmp "$BUILD/cc-runtime" check --kernel "$PWD/build/guest/vmlinuz" >"$tmp/out2" || true
        grep -q "^    kernel: $PWD/build/guest/vmlinuz: $kver (" "$tmp/out2" || { echo "the guest image's kernel $kver not named"; cat "$tmp/out2"; exit 1; }
        grep -q "^    kernel: sha256 $(sha256sum build/guest/vmlinuz | cut -d' ' -f1) vmlinuz (" "$tmp/out2" ||
                { echo "the manifest's kernel SHA-256 not shown"; exit 1; }
        echo "ok: the guest image's kernel: $(grep -m1 "^    kernel: $PWD" "$tmp/out2")"
fi
echo "PASS: hv-check"
