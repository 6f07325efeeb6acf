#!/usr/bin/env bash
# Fetches the guest kernel from Debian's archive without installing it on the host:
# `apt-get download` of the kernel image package behind the metapackage, unpacked into OUT.
#   tools/fetch-guest-kernel.sh OUT [METAPACKAGE]
# METAPACKAGE is linux-image-cloud-amd64 (default; small, virtio drivers built in or as modules)
# or linux-image-amd64 (has the TDX and SEV guest drivers). Result:
#   OUT/vmlinuz, OUT/modules/<version>/..., OUT/version, OUT/package (name=version of the .deb)
# Idempotent: does nothing when OUT/package already names the candidate version.
set -euo pipefail
out=${1:?usage: fetch-guest-kernel.sh OUT [METAPACKAGE]}
meta=${2:-linux-image-cloud-amd64}
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
        apt-get update -qq
        pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "fetch-guest-kernel: cannot resolve $meta" >&2; exit 1; }
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
if [ -f "$out/package" ] && [ "$(cat "$out/package")" = "$pkg=$ver" ] && [ -f "$out/vmlinuz" ]; then
        exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt-get download runs as _apt
(cd "$tmp" && apt-get download -q "$pkg=$ver" >/dev/null)
dpkg-deb -x "$tmp"/*.deb "$tmp/root"
kver=${pkg#linux-image-}
rm -rf "$out.new"
mkdir -p "$out.new/modules"
cp "$tmp/root/boot/vmlinuz-$kver" "$out.new/vmlinuz"
cp -a "$tmp/root/lib/modules/$kver" "$out.new/modules/"
echo "$kver" >"$out.new/version"
echo "$pkg=$ver" >"$out.new/package"
rm -rf "$out"
mv "$out.new" "$out"
echo "fetch-guest-kernel: $pkg $ver -> $out"
