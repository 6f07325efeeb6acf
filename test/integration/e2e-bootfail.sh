#!/usr/bin/env bash
# A VM that cannot boot fails RunPodSandbox fast, with the reason, through containerd 1.6's CRI
# (issue 19, boot failures). One runtime handler per broken configuration, dial_timeout left at
# the shipped value (so that a case passing only by timeout would take far longer than 20 s):
#   kata-panic    the kernel cannot find its init (rdinit=/nonexistent): it panics; the shim
#                 reads "Kernel panic - not syncing" on the console and stops waiting
#   kata-trunc    the initramfs cut to half its size: the kernel fails to unpack it
#   kata-corrupt  bytes changed inside the pull helper's library image in the initramfs: the
#                 agent's own check of the image (guest-agent/init/selfcheck.c) finds the file and
#                 logs level=fatal before it is reachable
#   kata-nokernel the kernel file does not exist
#   kata-noqemu   the VMM binary does not exist
# Each: RunPodSandbox fails within 20 s, the CRI error names the reason, and no VM, shim,
# socket, run file, netns or bundle is left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start

snap_registry
snap_busybox_image "$CC_TMP/bb-layout"
snap_push "$CC_TMP/bb-layout:latest" pause:1
e2e_cni

INITRD=$(realpath build/guest/initrd.img)
size=$(stat -c %s "$INITRD")
head -c $((size / 2)) "$INITRD" >"$CC_TMP/initrd-trunc.img"
# The squashfs image sits raw (uncompressed cpio segment) in the initrd: change 64 bytes 1 MiB
# into it, where the cpio framing stays intact and only the agent's digest check can notice.
sq=$(grep -obUaP 'hsqs' "$INITRD" | head -n1 | cut -d: -f1)
[ -n "$sq" ] || cc_fail "no squashfs image in $INITRD"
cp "$INITRD" "$CC_TMP/initrd-corrupt.img"
head -c 64 /dev/urandom | dd of="$CC_TMP/initrd-corrupt.img" bs=1 seek=$((sq + (1 << 20))) conv=notrunc status=none

mkcfg() { # NAME SED-EXPRESSION...: a copy of the kata configuration with the edits
        local name=$1
        shift
        cp "$E2E_CFG" "$CC_TMP/cfg-$name.toml"
        local e
        for e in "$@"; do sed -i "$e" "$CC_TMP/cfg-$name.toml"; done
}
mkcfg panic 's|^kernel_params = .*|kernel_params = "rdinit=/nonexistent"|'
grep -q '^kernel_params = "rdinit=/nonexistent"' "$CC_TMP/cfg-panic.toml" || cc_fail "no kernel_params key to edit"
mkcfg trunc "s|^initrd = .*|initrd = \"$CC_TMP/initrd-trunc.img\"|"
mkcfg corrupt "s|^initrd = .*|initrd = \"$CC_TMP/initrd-corrupt.img\"|"
mkcfg nokernel "s|^kernel = .*|kernel = \"$CC_TMP/nonexistent/vmlinuz\"|"
mkcfg noqemu "s|^path = .*|path = \"$CC_TMP/nonexistent/qemu-system-x86_64\"|"
extra=""
for c in panic trunc corrupt nokernel noqemu; do
        extra+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$c]
      runtime_type = \"io.containerd.kata-cc.v2\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$c.options]
        ConfigPath = \"$CC_TMP/cfg-$c.toml\""
done
E2E_EXTRA_RUNTIMES=$extra
e2e_containerd

# bootfail CASE REGEX: RunPodSandbox with handler kata-CASE fails within 20 s, its error
# matching REGEX; then nothing is left.
bootfail() {
        local c=$1 re=$2 t0 took err left
        t0=$(date +%s%N)
        e2e_runp "pod-$c" "kata-$c"
        took=$((($(date +%s%N) - t0) / 1000000))
        err=$(tr -d '\r' <"$CC_TMP/pod-$c.runp.err")
        if [ -n "$E2E_POD" ]; then
                fail "$c: RunPodSandbox succeeded"
        elif [ "$took" -ge 20000 ]; then
                fail "$c: RunPodSandbox took $took ms (over 20 s): $err"
        elif ! grep -qE -- "$re" <<<"$err"; then
                fail "$c: the error does not match '$re': $err"
        else
                ok "$c: RunPodSandbox failed after $took ms: $(grep -oE -- "$re.{0,120}" <<<"$err" | head -n1)"
        fi
        left=$(e2e_leftovers)
        [ -z "$left" ] && ok "$c: nothing left (VM, shim, socket, run file, mount, netns, bundle, pod)" ||
                fail "$c: left $left"
}
bootfail panic "the guest failed to boot after [0-9]+ ms: .*Kernel panic - not syncing"
bootfail trunc "the guest failed to boot after [0-9]+ ms: .*(Initramfs unpacking failed|Kernel panic - not syncing)"
bootfail corrupt "the guest failed to boot after [0-9]+ ms: .*level=fatal msg=\"guest image: the guest image is corrupt: /usr/lib/cc-agent/pull-libs.squashfs has sha256 [0-9a-f]{64}"
bootfail nokernel "key 'kernel': $CC_TMP/nonexistent/vmlinuz: No such file or directory"
bootfail noqemu "$CC_TMP/nonexistent/qemu-system-x86_64"
e2e_finish e2e-bootfail
