#!/usr/bin/env bash
# Builds the guest initramfs: the agent as /init, the image pull helper it starts
# (/usr/libexec/cc-agent/cc-agent-pull, when given), the shared libraries they need, the kernel
# modules it loads (virtio PCI + console, virtio-net, vsock, overlay; in dependency order in
# /etc/cc-agent/modules), and a manifest with the SHA-256 of everything (what a verifier
# measures). Reproducible: files are copied in sorted order with a fixed mtime, owner 0:0,
# cpio --reproducible, gzip -n; the same inputs give the same initrd bytes.
#
#   build-guest-image.sh --agent BIN [--pull-helper BIN] --kernel-dir DIR --out DIR [--policy FILE]
# DIR from tools/fetch-guest-kernel.sh: DIR/vmlinuz, DIR/modules/<version>/, DIR/package.
set -euo pipefail
agent="" helper="" kdir="" out="" policy=""
while [ $# -gt 0 ]; do
        case "$1" in
        --agent) agent=$2; shift 2 ;;
        --pull-helper) helper=$2; shift 2 ;;
        --kernel-dir) kdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --policy) policy=$2; shift 2 ;;
        *) echo "build-guest-image: unknown option $1" >&2; exit 2 ;;
        esac
done
[ -x "$agent" ] && [ -f "$kdir/vmlinuz" ] && [ -n "$out" ] && { [ -z "$helper" ] || [ -x "$helper" ]; } || {
        echo "usage: build-guest-image.sh --agent BIN [--pull-helper BIN] --kernel-dir DIR --out DIR [--policy FILE]" >&2
        exit 2
}
kver=$(cat "$kdir/version")
epoch=${SOURCE_DATE_EPOCH:-0}
# The modules the agent loads; modprobe --show-depends adds what they need, in order.
# virtio_net: the pod's NICs (tap + virtio-net-pci, or QEMU's user-mode NIC in development),
# configured by the host through UpdateInterface/UpdateRoutes; it brings net_failover/failover.
modules=(virtio_pci virtio_console virtio_net vmw_vsock_virtio_transport overlay)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{dev,proc,sys,run,tmp,etc/cc-agent,lib/modules/"$kver",usr,root}

# The agent, stripped (debug info is not part of what runs), as /init.
cp "$agent" "$root/init"
strip --strip-unneeded "$root/init"
chmod 0755 "$root/init"

# The pull helper, stripped, where the agent looks for it (guest-agent/image-pull.h).
if [ -n "$helper" ]; then
        mkdir -p "$root/usr/libexec/cc-agent"
        cp "$helper" "$root/usr/libexec/cc-agent/cc-agent-pull"
        strip --strip-unneeded "$root/usr/libexec/cc-agent/cc-agent-pull"
        chmod 0755 "$root/usr/libexec/cc-agent/cc-agent-pull"
fi

# The CA bundle the registry client trusts (libcurl's default path; an image.json ca_file
# replaces it): Debian's ca-certificates of the build machine, measured with the rest. Without
# it the guest can pull from plain-HTTP development registries only.
bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$bundle" ]; then
        mkdir -p "$root/etc/ssl/certs"
        cp "$bundle" "$root$bundle"
else
        echo "build-guest-image: no $bundle (package ca-certificates): the guest will trust no registry's TLS certificate" >&2
fi

# Their shared libraries and the dynamic loader, at the paths ldd reports.
# (A static agent has none: ldd then prints "not a dynamic executable".)
for bin in "$agent" $helper; do ldd "$bin" 2>/dev/null || true; done | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | sort -u | while read -r lib; do
        real=$(readlink -f "$lib")
        mkdir -p "$root$(dirname "$lib")"
        cp "$real" "$root$lib"
        strip --strip-unneeded "$root$lib" 2>/dev/null || true
done

# Kernel modules in dependency order (depmod on a private copy of the tree).
mkdir -p "$tmp/kmod/lib/modules"
cp -a "$kdir/modules/$kver" "$tmp/kmod/lib/modules/"
depmod -b "$tmp/kmod" "$kver"
: >"$root/etc/cc-agent/modules"
for m in "${modules[@]}"; do
        modprobe -d "$tmp/kmod" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
        rel=${ko#"$tmp/kmod/lib/modules/$kver/"}
        mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
        case "$ko" in
        *.xz) xz -dc "$ko" >"$root/lib/modules/$kver/${rel%.xz}"; rel=${rel%.xz} ;;
        *.zst) zstd -qdc "$ko" >"$root/lib/modules/$kver/${rel%.zst}"; rel=${rel%.zst} ;;
        *) cp "$ko" "$root/lib/modules/$kver/$rel" ;;
        esac
        echo "$rel" >>"$root/etc/cc-agent/modules"
done
if [ -n "$policy" ]; then
        cp "$policy" "$root/etc/cc-agent/policy.json"
fi

# /dev/console so that the kernel gives /init a console before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1

# Reproducible archive: sorted names, fixed times, root ownership, renumbered inodes.
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "$out"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible \
        --owner=0:0) | gzip -n -9 >"$out/initrd.img.new"
mv "$out/initrd.img.new" "$out/initrd.img"
cp "$kdir/vmlinuz" "$out/vmlinuz"

# Manifest: what the image is made of and the digests a verifier would check.
{
        echo "# cc-agent guest image manifest"
        echo "kernel-package $(cat "$kdir/package")"
        echo "kernel-version $kver"
        echo "source-date-epoch $epoch"
        echo "cmdline console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0"
        echo "sha256 $(sha256sum "$out/vmlinuz" | cut -d' ' -f1) vmlinuz"
        echo "sha256 $(sha256sum "$out/initrd.img" | cut -d' ' -f1) initrd.img"
        echo "# initrd contents (sha256, mode, size, path)"
        (cd "$root" && find . -mindepth 1 -type f | LC_ALL=C sort | while read -r f; do
                printf 'file %s %s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" \
                        "$(stat -c %a "$f")" "$(stat -c %s "$f")" "${f#.}"
        done)
        (cd "$root" && find . -mindepth 1 ! -type f ! -type d | LC_ALL=C sort | while read -r f; do
                printf 'node %s %s\n' "$(stat -c %F "$f" | tr ' ' '-')" "${f#.}"
        done)
} >"$out/manifest.txt"
echo "guest image ($(file -b "$agent" | grep -q 'static' && echo static || echo dynamic) agent${helper:+, pull helper}): $out/vmlinuz $out/initrd.img ($(stat -c %s "$out/initrd.img") bytes), manifest $out/manifest.txt"
