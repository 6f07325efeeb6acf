#!/usr/bin/env bash
# Builds the guest initramfs: the agent as /init, the image pull helper it starts
# (/usr/libexec/cc-agent/cc-agent-pull, when given), the shared libraries they need, the kernel
# modules it loads (virtio PCI + console, virtio-net, vsock, overlay; in dependency order in
# /etc/cc-agent/modules), and a manifest with the SHA-256 of everything (what a verifier
# measures). Reproducible: files are copied in sorted order with a fixed mtime, owner 0:0,
# cpio --reproducible, gzip -n, mksquashfs with fixed times; the same inputs give the same
# initrd bytes.
#
# With a static agent, only the helper needs shared libraries (19 MB, libcurl's chain and
# OpenSSL), and the kernel would unpack them at every boot. They go into a squashfs image
# instead, /usr/lib/cc-agent/pull-libs.squashfs, in an uncompressed cpio segment ahead of the
# gzip one (the kernel copies it as it is); the agent mounts it read-only on
# /lib/x86_64-linux-gnu when it first starts the helper (guest-agent/variants/pull-libs.c),
# after loading loop and squashfs (/etc/cc-agent/modules.pull). The image is part of the
# measured initrd; its files are listed in the manifest too.
#
#   build-guest-image.sh --agent BIN [--pull-helper BIN] [--storage-helper BIN] --kernel-dir DIR --out DIR [--policy FILE]
#                        [--libs-in-initrd]   (no squashfs image: for bench/agent-pull.sh)
#                        [--tee-defaults]     (/etc/cc-agent/tee-defaults: the agent's TEE
#                                             defaults without TEE hardware, see tee.c)
#                        [--debug-shell]      (Debian's busybox-static as /bin/busybox and
#                                             /bin/sh: the shell of the agent's debug console,
#                                             for development images only)
# DIR from tools/fetch-guest-kernel.sh (Debian's kernel: DIR/vmlinuz, DIR/modules/<version>/,
# DIR/package) or tools/build-guest-kernel.sh (the project's: everything built in, no modules/
# directory, so no module goes in and no module list is written; DIR/config, the full .config,
# is copied beside the image as kernel.config).
set -euo pipefail
agent="" helper="" storage="" kdir="" out="" policy="" libs_in_initrd="" tee_defaults="" debug_shell=""
while [ $# -gt 0 ]; do
        case "$1" in
        --agent) agent=$2; shift 2 ;;
        --pull-helper) helper=$2; shift 2 ;;
        --storage-helper) storage=$2; shift 2 ;;
        --kernel-dir) kdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --policy) policy=$2; shift 2 ;;
        --libs-in-initrd) libs_in_initrd=1; shift ;;
        --tee-defaults) tee_defaults=1; shift ;;
        --debug-shell) debug_shell=1; shift ;;
        *) echo "build-guest-image: unknown option $1" >&2; exit 2 ;;
        esac
done
[ -x "$agent" ] && [ -f "$kdir/vmlinuz" ] && [ -n "$out" ] && { [ -z "$helper" ] || [ -x "$helper" ]; } || {
        echo "usage: build-guest-image.sh --agent BIN [--pull-helper BIN] [--storage-helper BIN] --kernel-dir DIR --out DIR [--policy FILE]" >&2
        exit 2
}
kver=$(cat "$kdir/version")
epoch=${SOURCE_DATE_EPOCH:-0}
# The modules the agent loads; modprobe --show-depends adds what they need, in order.
# virtio_net: the pod's NICs (tap + virtio-net-pci, or QEMU's user-mode NIC in development),
# configured by the host through UpdateInterface/UpdateRoutes; it brings net_failover/failover.
# virtio_blk: the pod's initdata disk (and block volumes).
modules=(virtio_pci virtio_console virtio_net virtio_blk vmw_vsock_virtio_transport overlay)
# Loaded by the agent before it mounts the helper's library image.
pull_modules=(loop squashfs)

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

# The trusted storage helper (guest-agent/storage/) and the mke2fs it runs (e2fsprogs, the
# build machine's: ext4 through libext2fs would mean re-implementing mke2fs), stripped, where
# the helper looks for them; their libraries join the pull helper's below.
storage_bins=""
if [ -n "$storage" ]; then
        mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)
        [ -x "$mke2fs" ] || { echo "build-guest-image: mke2fs not found (package e2fsprogs)" >&2; exit 1; }
        mkdir -p "$root/usr/libexec/cc-agent"
        cp "$storage" "$root/usr/libexec/cc-agent/cc-agent-storage"
        cp "$mke2fs" "$root/usr/libexec/cc-agent/mke2fs"
        for b in cc-agent-storage mke2fs; do
                strip --strip-unneeded "$root/usr/libexec/cc-agent/$b"
                chmod 0755 "$root/usr/libexec/cc-agent/$b"
        done
        storage_bins="$storage $mke2fs"
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

# Their shared libraries and the dynamic loader, at the paths ldd reports. (A static agent has
# none: ldd then prints "not a dynamic executable".) With a static agent and a helper, the
# libraries under /lib/x86_64-linux-gnu go to the squashfs image and the loader stays.
libsdir=/lib/x86_64-linux-gnu
sqfs_libs=""
if [ -n "$helper" ] && [ -z "$libs_in_initrd" ] && ! ldd "$agent" 2>/dev/null | grep -q '=> /'; then
        command -v mksquashfs >/dev/null || {
                echo "build-guest-image: mksquashfs not found (package squashfs-tools; make deps installs it)" >&2
                exit 1
        }
        sqfs_libs=$tmp/pull-libs
        mkdir -p "$sqfs_libs" "$root$libsdir"
fi
for bin in "$agent" $helper $storage_bins; do ldd "$bin" 2>/dev/null || true; done | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | sort -u | while read -r lib; do
        real=$(readlink -f "$lib")
        if [ -n "$sqfs_libs" ] && [ "$(dirname "$lib")" = "$libsdir" ]; then
                dst=$sqfs_libs/$(basename "$lib")
        else
                dst=$root$lib
                mkdir -p "$(dirname "$dst")"
        fi
        cp "$real" "$dst"
        strip --strip-unneeded "$dst" 2>/dev/null || true
done

# Kernel modules in dependency order (depmod on a private copy of the tree). A kernel without
# modules/ has what the agent needs built in.
kmods=""
if [ -d "$kdir/modules/$kver" ]; then
        kmods=1
        mkdir -p "$tmp/kmod/lib/modules"
        cp -a "$kdir/modules/$kver" "$tmp/kmod/lib/modules/"
        depmod -b "$tmp/kmod" "$kver"
else
        rmdir "$root/lib/modules/$kver" "$root/lib/modules"
fi
# add_modules LIST MODULE...: the modules and what they need, uncompressed, named in LIST.
add_modules() {
        local list=$1
        shift
        : >"$list"
        for m in "$@"; do
                modprobe -d "$tmp/kmod" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
        done | awk '!seen[$0]++' | while read -r ko; do
                rel=${ko#"$tmp/kmod/lib/modules/$kver/"}
                mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
                case "$ko" in
                *.xz) xz -dc "$ko" >"$root/lib/modules/$kver/${rel%.xz}"; rel=${rel%.xz} ;;
                *.zst) zstd -qdc "$ko" >"$root/lib/modules/$kver/${rel%.zst}"; rel=${rel%.zst} ;;
                *) cp "$ko" "$root/lib/modules/$kver/$rel" ;;
                esac
                echo "$rel" >>"$list"
        done
}
if [ -n "$kmods" ]; then
        add_modules "$root/etc/cc-agent/modules" "${modules[@]}"
        [ -z "$sqfs_libs" ] || add_modules "$root/etc/cc-agent/modules.pull" "${pull_modules[@]}"
fi
if [ -n "$policy" ]; then
        cp "$policy" "$root/etc/cc-agent/policy.json"
fi
# The debug console's shell (agent.debug_console): only in images built for it, so a
# production image has no shell at all, whatever its kernel command line says.
if [ -n "$debug_shell" ]; then
        bb=$(command -v busybox)
        file -L "$bb" | grep -q 'statically linked' || { echo "build-guest-image: --debug-shell needs busybox-static ($bb is not static)" >&2; exit 2; }
        mkdir -p "$root/bin"
        cp "$bb" "$root/bin/busybox"
        chmod 0755 "$root/bin/busybox"
        ln -s busybox "$root/bin/sh"
fi
if [ -n "$tee_defaults" ]; then
        echo "The agent applies its TEE defaults in this image (guest-agent/policy/tee.c)." \
                >"$root/etc/cc-agent/tee-defaults"
fi

# /dev/console so that the kernel gives /init a console before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1

# Reproducible archive: sorted names, fixed times, root ownership, renumbered inodes.
# cpio_of DIR: DIR's tree as a newc archive on stdout.
cpio_of() {
        find "$1" -exec touch -h -d "@$epoch" {} +
        (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible --owner=0:0)
}
mkdir -p "$out"
: >"$out/initrd.img.new"
if [ -n "$sqfs_libs" ]; then
        # zstd: decompressed in the guest when the helper first maps a page, so a fast decoder
        # under TCG matters more than the last megabyte (bench/agent-results.md).
        # PULL_LIBS_COMP="-comp ..." (mksquashfs options) overrides it, for benchmarks.
        seg=$tmp/seg-pull-libs
        mkdir -p "$seg/usr/lib/cc-agent"
        find "$sqfs_libs" -exec touch -h -d "@$epoch" {} +
        mksquashfs "$sqfs_libs" "$seg/usr/lib/cc-agent/pull-libs.squashfs" -quiet -noappend \
                -no-xattrs -all-root ${PULL_LIBS_COMP:--comp zstd -Xcompression-level 19} -mkfs-time "$epoch" \
                -all-time "$epoch" >/dev/null
        cpio_of "$seg" >>"$out/initrd.img.new"
fi
# The digests the agent checks at boot before it reports ready (guest-agent/init/selfcheck.c): every
# file of the image but /init (running already) and the list itself, in sha256sum's format.
{
        (cd "$root" && find . -mindepth 1 -type f ! -path ./init ! -path ./etc/cc-agent/image.sha256)
        [ -z "$sqfs_libs" ] || (cd "$seg" && find . -mindepth 1 -type f)
} | LC_ALL=C sort | while read -r f; do
        if [ -f "$root/$f" ]; then d=$root; else d=$seg; fi
        printf '%s  %s\n' "$(sha256sum "$d/$f" | cut -d' ' -f1)" "${f#.}"
done >"$root/etc/cc-agent/image.sha256"
cpio_of "$root" | gzip -n -9 >>"$out/initrd.img.new"
mv "$out/initrd.img.new" "$out/initrd.img"
cp "$kdir/vmlinuz" "$out/vmlinuz"
rm -f "$out/kernel.config"
[ ! -f "$kdir/config" ] || cp "$kdir/config" "$out/kernel.config"

# Manifest: what the image is made of and the digests a verifier would check.
{
        echo "# cc-agent guest image manifest"
        echo "kernel-package $(cat "$kdir/package")"
        # The project's kernel: the source package it was built from, and its full config.
        case "$(cat "$kdir/package")" in
        linux-source-*=*) pkg=$(cat "$kdir/package"); echo "kernel-source ${pkg%%=*} ${pkg#*=}" ;;
        esac
        echo "kernel-version $kver"
        echo "source-date-epoch $epoch"
        echo "cmdline console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0"
        echo "sha256 $(sha256sum "$out/vmlinuz" | cut -d' ' -f1) vmlinuz"
        [ ! -f "$out/kernel.config" ] || echo "sha256 $(sha256sum "$out/kernel.config" | cut -d' ' -f1) kernel.config"
        echo "sha256 $(sha256sum "$out/initrd.img" | cut -d' ' -f1) initrd.img"
        echo "# initrd contents (sha256, mode, size, path)"
        # list_files DIR [PREFIX]: "file" lines for DIR's regular files, named PREFIX/path.
        list_files() {
                (cd "$1" && find . -mindepth 1 -type f | LC_ALL=C sort | while read -r f; do
                        printf 'file %s %s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" \
                                "$(stat -c %a "$f")" "$(stat -c %s "$f")" "${2:-}${f#.}"
                done)
        }
        list_files "$root"
        if [ -n "$sqfs_libs" ]; then
                list_files "$seg"
                echo "# /usr/lib/cc-agent/pull-libs.squashfs contents, mounted on $libsdir"
                list_files "$sqfs_libs" "$libsdir"
        fi
        (cd "$root" && find . -mindepth 1 ! -type f ! -type d | LC_ALL=C sort | while read -r f; do
                printf 'node %s %s\n' "$(stat -c %F "$f" | tr ' ' '-')" "${f#.}"
        done)
} >"$out/manifest.txt"
echo "guest image ($(file -b "$agent" | grep -q 'static' && echo static || echo dynamic) agent${helper:+, pull helper}): $out/vmlinuz $out/initrd.img ($(stat -c %s "$out/initrd.img") bytes), manifest $out/manifest.txt"
