#!/usr/bin/env bash
# The project's guest kernel (make guest-kernel; cached, so this costs nothing after the first
# build): its full .config has every option a pod VM needs (the agent's channels, file systems,
# containers, trusted storage, the SEV-SNP and TDX guests, the EFI stub) and no module support;
# every option of guest-kernel/config-fragment is in it as written; an image built on it
# (GUEST_KERNEL=project) carries no module and no module list, and its manifest names the source
# package and the kernel's SHA-256. Byte-identical rebuilds: test/integration/guest-kernel-repro.sh
# (a second full build, `make guest-kernel-repro`).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
tmp=$(mktemp -d /tmp/guest-kernel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

dpkg-query -W linux-source-6.1 >/dev/null 2>&1 || { echo "SKIP: linux-source-6.1 not installed (make deps)"; exit 77; }
kdir=build/guest/kernel-project
# Outside the caller's make (under `make -j test` a nested make warns about the jobserver,
# which is output, not a rebuild).
t0=$(date +%s)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s guest-kernel >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; echo "FAIL: make guest-kernel"; exit 1; }
ok "make guest-kernel ($(($(date +%s) - t0)) s; $(stat -c %s "$kdir/vmlinuz") bytes bzImage, $(cat "$kdir/version"))"
# Cached: the second make builds nothing (the bzImage's mtime and the cache key stay).
before=$(stat -c %i.%Y.%s "$kdir/vmlinuz")
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s guest-kernel >"$tmp/build2.log" 2>&1 && [ "$(stat -c %i.%Y.%s "$kdir/vmlinuz")" = "$before" ] &&
        ! grep -q '^build-guest-kernel:' "$tmp/build2.log" && ok "a second make guest-kernel is cached" ||
        fail "second make guest-kernel rebuilt: $(cat "$tmp/build2.log")"
cfg=$kdir/config

# has OPTION...: each is =y in the config.
has() {
        local o missing=()
        for o in "$@"; do grep -qx "CONFIG_$o=y" "$cfg" || missing+=("$o"); done
        [ ${#missing[@]} -eq 0 ] && ok "built in: $*" || fail "not built in: ${missing[*]}"
}
has VIRTIO_PCI VIRTIO_BLK VIRTIO_NET VIRTIO_CONSOLE VSOCKETS VIRTIO_VSOCKETS SERIAL_8250_CONSOLE
has OVERLAY_FS SQUASHFS SQUASHFS_ZSTD EXT4_FS TMPFS PROC_FS SYSFS DEVTMPFS UNIX98_PTYS POSIX_MQUEUE
has CGROUPS MEMCG CGROUP_PIDS CPUSETS CGROUP_SCHED BLK_CGROUP
has NAMESPACES UTS_NS IPC_NS PID_NS NET_NS USER_NS SECCOMP SECCOMP_FILTER MULTIUSER
has NET UNIX INET IPV6 BLK_DEV_LOOP BLK_DEV_DM DM_CRYPT DM_INTEGRITY CRYPTO_XTS CRYPTO_AES_NI_INTEL
has AMD_MEM_ENCRYPT SEV_GUEST INTEL_TDX_GUEST EFI EFI_STUB ACPI BLK_DEV_INITRD RD_GZIP
# No module support at all: nothing can be loaded into the measured kernel after boot.
grep -qx '# CONFIG_MODULES is not set' "$cfg" && ! grep -q '^CONFIG_MODULES=' "$cfg" &&
        ok "CONFIG_MODULES is not set" || fail "the config has module support"
grep -q '=m$' "$cfg" && fail "options built as modules: $(grep '=m$' "$cfg" | tr '\n' ' ')" ||
        ok "no option is =m"
# The fragment as written (build-guest-kernel.sh enforces it; checked here against the result).
bad=0
while IFS= read -r line; do
        case "$line" in
        CONFIG_*=*) grep -qxF "$line" "$cfg" || { fail "fragment's '$line' not in the config"; bad=1; } ;;
        "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}
                ! grep -q "^$name=" "$cfg" || { fail "fragment's '$line' but the config sets it"; bad=1; } ;;
        esac
done <guest-kernel/config-fragment
[ $bad -eq 0 ] && ok "every option of guest-kernel/config-fragment is in the config as written"
# Every option line in the fragment has a comment saying why (a comment block before it).
undocumented=$(awk '/^#/ && !/is not set$/ {c=1; next} /^$/ {c=0; next} /^CONFIG_|is not set$/ && !c {print}' guest-kernel/config-fragment)
[ -z "$undocumented" ] && ok "every option in the fragment follows a comment" ||
        fail "options without a comment: $undocumented"

# The version string the boot header carries (what cc-runtime check prints).
banner=$(strings "$kdir/vmlinuz" | grep -m1 "^$(cat "$kdir/version") (cc@cc-guest-kernel) #1 ")
[ -n "$banner" ] && ok "pinned build identity: $banner" || fail "no pinned version string in the bzImage"

# An image on this kernel: no module, no module list, and the manifest names the kernel.
if [ -x "$BUILD/cc-agent-static" ] || make -s BUILD=build build/cc-agent-static >/dev/null 2>&1; then
        agent=build/cc-agent-static
        [ -x "$BUILD/cc-agent-static" ] && agent=$BUILD/cc-agent-static
        bash guest-agent/build-guest-image.sh --agent "$agent" --kernel-dir "$kdir" --out "$tmp/img" >"$tmp/img.log" 2>&1 ||
                { cat "$tmp/img.log"; fail "build-guest-image.sh on the project kernel"; }
        m=$tmp/img/manifest.txt
        grep -qx "kernel-source linux-source-6.1 $(dpkg-query -W -f='${Version}' linux-source-6.1)" "$m" &&
                ok "manifest: $(grep '^kernel-source' "$m")" || fail "manifest has no kernel-source line"
        grep -qx "sha256 $(sha256sum "$kdir/vmlinuz" | cut -d' ' -f1) vmlinuz" "$m" &&
                ok "manifest: the kernel's SHA-256" || fail "manifest: wrong or no kernel SHA-256"
        grep -qx "sha256 $(sha256sum "$kdir/config" | cut -d' ' -f1) kernel.config" "$m" && cmp -s "$tmp/img/kernel.config" "$kdir/config" &&
                ok "the full .config is beside the image (kernel.config) and in the manifest" || fail "kernel.config missing"
        grep -Eq ' /(lib/modules/|etc/cc-agent/modules)' "$m" && fail "the image has modules: $(grep -E ' /(lib/modules|etc/cc-agent/modules)' "$m")" ||
                ok "the image has no kernel module and no module list"
else
        fail "cannot build cc-agent-static"
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "PASS: guest-kernel"
