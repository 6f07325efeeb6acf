#!/usr/bin/env bash
# Hostile registry content, served by the real registry: each pull must fail with a clear error,
# write nothing outside the store, and leave no staging directory and no published layer.
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup
outside=$T/outside
mkdir -p "$outside"

hostile() { # desc regex tag-in-layout [cc-image-pull options]
        local desc=$1 re=$2 tag=$3
        shift 3
        img_push "oci:$T/oci:$tag" "hostile/$tag:v1"
        rm -rf "$T/pull" && mkdir -p "$T/pull"
        expect_fail "$desc" "$re" "$PULL" --insecure --retries 1 "$@" "$REG/hostile/$tag:v1" "$T/pull"
        assert_clean_store "$T/pull/store"
        [ -z "$(ls -A "$outside")" ] || fail "$desc: wrote outside: $(ls -A "$outside")"
        [ ! -e "$T/escaped" ] || fail "$desc: wrote $T/escaped"
}

# Paths that leave the layer: refused outright.
img_tar "$T/dotdot.tar" 'add("ok"); add("a/../../escaped", b"x")'
img_mkimage "$T/oci" dotdot gzip:"$T/dotdot.tar"
hostile "tar entry with ../" "path escapes the layer" dotdot

img_tar "$T/abs.tar" "add('$T/escaped', b'x')"
img_mkimage "$T/oci" abs gzip:"$T/abs.tar"
hostile "tar entry with an absolute path" "path escapes the layer" abs

# A symlink to a directory outside, then a file through it.
img_tar "$T/symlink.tar" "add('evil', kind='l', link='$outside'); add('evil/pwned', b'x')"
img_mkimage "$T/oci" symlink gzip:"$T/symlink.tar"
hostile "symlink then a file through it" "parent is a symlink" symlink

# Same with a relative symlink climbing out.
img_tar "$T/symlink2.tar" "add('d', kind='d', mode=0o755); add('d/up', kind='l', link='../../../../../../../../$outside'); add('d/up/pwned', b'x')"
img_mkimage "$T/oci" symlink2 gzip:"$T/symlink2.tar"
hostile "relative symlink then a file through it" "parent is a symlink" symlink2

# Hardlinks to files outside the layer.
echo secret >"$T/target-file"
img_tar "$T/hardlink.tar" "add('hl', kind='h', link='../../../../../../../$T/target-file')"
img_mkimage "$T/oci" hardlink gzip:"$T/hardlink.tar"
hostile "hardlink with ../ to outside" "target escapes the layer" hardlink

img_tar "$T/hardlink2.tar" "add('hl', kind='h', link='$T/target-file')"
img_mkimage "$T/oci" hardlink2 gzip:"$T/hardlink2.tar"
hostile "hardlink to an absolute path" "target escapes the layer" hardlink2

img_tar "$T/hardlink3.tar" "add('evil', kind='l', link='$T'); add('hl', kind='h', link='evil/target-file')"
img_mkimage "$T/oci" hardlink3 gzip:"$T/hardlink3.tar"
hostile "hardlink through a symlink" "parent is a symlink" hardlink3

# Decompression bomb: 256 MiB of zeros, a few hundred KiB compressed, 32 MiB allowed.
python3 -c "
import tarfile, sys
class Z:
    def read(self, n): return b'\0' * n
with tarfile.open('$T/bomb.tar', 'w') as t:
    ti = tarfile.TarInfo('zeros'); ti.size = 256 << 20
    t.addfile(ti, open('/dev/zero', 'rb'))
"
img_mkimage "$T/oci" bomb gzip:"$T/bomb.tar"
rm -f "$T/bomb.tar"
hostile "decompression bomb" "uncompressed layer exceeds the 33554432-byte limit" bomb --max-layer-bytes 33554432

# A store too small for the unpacked layer: a clear ENOSPC before the file system is full.
mkdir -p "$T/small"
mount -t tmpfs -o size=48m img-small "$T/small" || fail "mount tmpfs"
MOUNTS+=("$T/small")
python3 -c "
import tarfile
with tarfile.open('$T/fill.tar', 'w') as t:
    ti = tarfile.TarInfo('zeros'); ti.size = 64 << 20
    t.addfile(ti, open('/dev/zero', 'rb'))
"
img_mkimage "$T/oci" fill gzip:"$T/fill.tar"
rm -f "$T/fill.tar"
img_push "oci:$T/oci:fill" hostile/fill:v1
mkdir -p "$T/pull-fill"
expect_fail "store too small" "layer store nearly full" \
        "$PULL" --insecure --store "$T/small" "$REG/hostile/fill:v1" "$T/pull-fill"
assert_clean_store "$T/small"
[ "$(df --output=avail -B1M "$T/small" | tail -1)" -gt 40 ] || fail "store not freed"
umount "$T/small"

# Too many entries for the image's inode budget.
img_tar "$T/many.tar" 'for i in range(50): add("f%d" % i, b"x")'
img_mkimage "$T/oci" many gzip:"$T/many.tar"
hostile "inode limit" "more than 20 entries.*\(Disk quota exceeded\)" many --max-inodes 20

# A manifest larger than the client's limit.
img_tar "$T/small.tar" 'add("f", b"x")'
img_mkimage "$T/oci" bigmanifest --annotate 200000 gzip:"$T/small.tar"
hostile "oversized manifest" "larger than the 65536-byte limit" bigmanifest --max-manifest-bytes 65536

# The config's diff_id does not match the layer.
img_mkimage "$T/oci" baddiff --bad-diff-id gzip:"$T/small.tar"
hostile "diff_id mismatch" "diff_id mismatch" baddiff

# Blob content altered in the registry's storage (same length): digest mismatch.
img_tar "$T/big.tar" 'import os; add("data", os.urandom(3 << 20))'
# An uncompressed layer, so that only the blob digest can notice (gzip would see its CRC).
img_mkimage "$T/oci" tampered none:"$T/big.tar"
img_push_raw "$T/oci" tampered hostile/tampered:v1
dg=$(layer_digest hostile/tampered v1 0)
f=$(reg_blob "$dg")
python3 -c "
f = open('$f', 'r+b'); f.seek(1 << 20); b = f.read(1); f.seek(1 << 20); f.write(bytes([b[0] ^ 1]))"
rm -rf "$T/pull" && mkdir -p "$T/pull"
expect_fail "blob digest mismatch" "digest mismatch" "$PULL" --insecure --retries 1 "$REG/hostile/tampered:v1" "$T/pull"
assert_clean_store "$T/pull/store"

# Truncated blob: the registry serves fewer bytes than the descriptor says.
img_tar "$T/big2.tar" 'import os; add("data2", os.urandom(3 << 20))'
img_mkimage "$T/oci" truncated gzip:"$T/big2.tar"
img_push "oci:$T/oci:truncated" hostile/truncated:v1
f=$(reg_blob "$(layer_digest hostile/truncated v1 0)")
truncate -s 1000000 "$f"
rm -rf "$T/pull" && mkdir -p "$T/pull"
expect_fail "truncated blob" "truncated" "$PULL" --insecure --retries 1 "$REG/hostile/truncated:v1" "$T/pull"
assert_clean_store "$T/pull/store"

# Decoder edge cases that must work: multi-member gzip, multi-frame zstd, plain tar.
img_tar "$T/l1.tar" 'import os; add("d", kind="d", mode=0o755); add("d/a", os.urandom(700000)); add("d/b", b"b" * 100000)'
img_tar "$T/l2.tar" 'import os; add("e", kind="d", mode=0o755); add("e/z", os.urandom(300000)); add("d/.wh.b", b"")'
img_tar "$T/l3.tar" 'add("f", b"plain")'
img_mkimage "$T/oci" decoders gzip2:"$T/l1.tar" zstd2:"$T/l2.tar" none:"$T/l3.tar"
img_push_raw "$T/oci" decoders hostile/decoders:v1
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/hostile/decoders/manifests/v1" |
        grep -q 'tar+zstd' || fail "zstd layer not in the registry"
mkdir -p "$T/pull-dec"
"$PULL" --insecure "$REG/hostile/decoders:v1" "$T/pull-dec" >/dev/null || fail "decoders"
# umoci cannot unpack zstd: the reference is the same tars, gzip-compressed.
img_mkimage "$T/oci" decoders-ref gzip:"$T/l1.tar" gzip:"$T/l2.tar" gzip:"$T/l3.tar"
umoci_rootfs "$T/oci" decoders-ref "$T/ref-dec"
img_compare "$T/pull-dec" "$T/ref-dec/rootfs"
echo "ok  multi-member gzip, multi-frame zstd and plain tar layers match umoci"
echo "all hostile-input checks passed"
