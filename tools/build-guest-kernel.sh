#!/usr/bin/env bash
# Builds the project's guest kernel from Debian 12's linux-source-6.1 package: allnoconfig plus
# the commented fragment guest-kernel/config-fragment (scripts/kconfig/merge_config.sh -n),
# everything built in, no modules.
#   tools/build-guest-kernel.sh --out DIR [--fragment FILE] [--work DIR] [--force]
# Result, in the layout of tools/fetch-guest-kernel.sh (no modules/ directory: none to load):
#   DIR/vmlinuz (the bzImage), DIR/config (the full .config), DIR/version (uname -r),
#   DIR/package ("linux-source-6.1=<version>"), DIR/cache-key.
#
# Cached: DIR/cache-key is the SHA-256 of (source package version, fragment, this script); when
# it matches, nothing is done. The tree is unpacked under WORK (default DIR.work) and kept for
# the next incremental build while the source version stays the same.
#
# Reproducible: the build timestamp is the source package's changelog date, user, host and
# build number are fixed, and the tree's path is not embedded (the kernel builds with
# -fmacro-prefix-map and no debug info), so the same package and fragment give the same bytes
# in any directory (test/integration/guest-kernel-repro.sh checks it).
# The build runs under nice with -j KERNEL_JOBS (default 2).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="" fragment=$here/guest-kernel/config-fragment work="" force=""
while [ $# -gt 0 ]; do
        case "$1" in
        --out) out=$2; shift 2 ;;
        --fragment) fragment=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --force) force=1; shift ;;
        *) echo "build-guest-kernel: unknown option $1" >&2; exit 2 ;;
        esac
done
[ -n "$out" ] || { echo "usage: build-guest-kernel.sh --out DIR [--fragment FILE] [--work DIR] [--force]" >&2; exit 2; }
[ -f "$fragment" ] || { echo "build-guest-kernel: no config fragment $fragment" >&2; exit 1; }
srcpkg=linux-source-6.1
tarball=/usr/src/$srcpkg.tar.xz
srcver=$(dpkg-query -W -f='${Version}' "$srcpkg" 2>/dev/null || true)
[ -n "$srcver" ] && [ -f "$tarball" ] || {
        echo "build-guest-kernel: package $srcpkg is not installed ($tarball; make deps installs it)" >&2
        exit 1
}
for tool in flex bison bc; do
        command -v "$tool" >/dev/null || { echo "build-guest-kernel: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ -f /usr/include/libelf.h ] || { echo "build-guest-kernel: libelf.h not found (package libelf-dev; make deps installs it)" >&2; exit 1; }

out=$(mkdir -p "$out" && cd "$out" && pwd)
work=${work:-$out.work}
mkdir -p "$work"
work=$(cd "$work" && pwd) # absolute: the steps below run inside the tree
key=$( { echo "$srcpkg=$srcver"; sha256sum <"$fragment"; sha256sum <"$0"; } | sha256sum | cut -d' ' -f1)
if [ -z "$force" ] && [ -f "$out/vmlinuz" ] && [ "$(cat "$out/cache-key" 2>/dev/null)" = "$key" ]; then
        exit 0
fi

# The source tree, unpacked once per source version.
tree=$work/$srcpkg
if [ "$(cat "$work/source" 2>/dev/null)" != "$srcpkg=$srcver" ]; then
        rm -rf "$tree" "$work/source"
        tar -C "$work" -xf "$tarball"
        echo "$srcpkg=$srcver" >"$work/source"
fi

# Pinned build identity: the changelog's date of this source version (what Debian's own
# kernel builds use), a fixed user, host and build number.
stamp=$(zcat "/usr/share/doc/$srcpkg/changelog.Debian.gz" | sed -n '0,/^ -- / s/^ -- .*>  //p')
[ -n "$stamp" ] || { echo "build-guest-kernel: no date in $srcpkg's changelog" >&2; exit 1; }
export KBUILD_BUILD_TIMESTAMP="$stamp" KBUILD_BUILD_USER=cc KBUILD_BUILD_HOST=cc-guest-kernel \
        KBUILD_BUILD_VERSION=1 ARCH=x86_64 LC_ALL=C TZ=UTC
# A make of its own with -j$KERNEL_JOBS: not a sub-make of whatever ran this script (a parent's
# jobserver fds are not passed down, and its flags are not the kernel's).
unset KCONFIG_CONFIG CROSS_COMPILE MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

# allnoconfig + fragment. merge_config.sh only warns when a requested value did not survive
# (a missing dependency): here that fails the build, naming the option.
(cd "$tree" && scripts/kconfig/merge_config.sh -n "$fragment" >"$work/merge.log" 2>&1) || {
        cat "$work/merge.log" >&2
        echo "build-guest-kernel: merge_config.sh failed" >&2
        exit 1
}
bad=0
while IFS= read -r line; do
        case "$line" in
        CONFIG_*=*) want=$line; name=${line%%=*} ;;
        "# CONFIG_"*" is not set") want=$line; name=${line#\# }; name=${name%% *} ;;
        *) continue ;;
        esac
        have=$(grep -E "^(# )?$name[= ]" "$tree/.config" || true)
        if [ "$want" != "$have" ] && ! { [ -z "$have" ] && [ "${want#\# }" != "$want" ]; }; then
                echo "build-guest-kernel: $fragment asks for '$want', the config has '${have:-nothing}' (a dependency is missing)" >&2
                bad=1
        fi
done <"$fragment"
[ "$bad" -eq 0 ] || exit 1

jobs=${KERNEL_JOBS:-2}
echo "build-guest-kernel: $srcpkg $srcver, $(grep -c '=y' "$tree/.config") options, make -j$jobs bzImage" >&2
t0=$(date +%s)
nice -n 10 make -C "$tree" -s -j"$jobs" bzImage >"$work/build.log" 2>&1 || {
        tail -40 "$work/build.log" >&2
        echo "build-guest-kernel: the kernel build failed (log: $work/build.log)" >&2
        exit 1
}
release=$(make -C "$tree" -s kernelrelease)

rm -rf "$out.new"
mkdir -p "$out.new"
cp "$tree/arch/x86/boot/bzImage" "$out.new/vmlinuz"
cp "$tree/.config" "$out.new/config"
echo "$release" >"$out.new/version"
echo "$srcpkg=$srcver" >"$out.new/package"
echo "$key" >"$out.new/cache-key"
rm -rf "$out"
mv "$out.new" "$out"
echo "build-guest-kernel: $release ($srcpkg $srcver) in $(($(date +%s) - t0)) s: $out/vmlinuz ($(stat -c %s "$out/vmlinuz") bytes, sha256 $(sha256sum "$out/vmlinuz" | cut -d' ' -f1))" >&2
