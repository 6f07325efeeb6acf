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
echo "PASS: hv-check"
