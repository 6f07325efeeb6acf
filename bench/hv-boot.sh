#!/usr/bin/env bash
# Boot latency of libhv vs QEMU run by hand with the same argv (and, with HV_BENCH_LIBVIRT=1
# and a running libvirtd, libvirt through libhv vs virDomainCreateXML by hand). Builds the test
# guest (Debian cloud kernel + busybox initramfs from test/integration/hv-guest.sh), then runs
# build/bench/hv-boot for HV_BENCH_ROUNDS rounds (default 7) and prints medians and the
# differences. Results: bench/hv-results.md.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
. test/integration/hv-guest.sh
make -s "$BUILD/bench/hv-boot"
tmp=$(mktemp -d /tmp/hv-bench.XXXXXX)
HV_LIBVIRTD_STARTED=()
trap 'hv_libvirtd_stop; rm -rf "$tmp"' EXIT
hv_guest_kernel "$tmp"
hv_test_initrd "$tmp/initrd.img"
mkdir -p "$tmp/vm"
chmod 755 "$tmp" "$tmp/vm"
uri=()
if [ "${HV_BENCH_LIBVIRT:-0}" = 1 ]; then
        hv_libvirtd_start "$tmp"
        uri=(qemu:///system)
fi
"$BUILD/bench/hv-boot" "$(realpath "$HV_KERNEL")" "$tmp/initrd.img" "$tmp/vm" "${HV_BENCH_ROUNDS:-7}" "${uri[@]}"
