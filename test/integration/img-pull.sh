#!/usr/bin/env bash
# cc-image-pull against the real distribution registry (Debian's docker-registry on loopback),
# with images built by umoci and pushed by skopeo: a multi-layer image with whiteouts, opaque
# dirs, symlinks, hardlinks, owners and modes, as an OCI manifest (gzip), a Docker v2 manifest,
# with zstd layers, and in a two-platform index. Each pulled image, mounted as the container
# will see it (overlayfs of the layer dirs), must match `umoci unpack` of the same image file
# by file. Then the cache (second pull fetches nothing) and the config returned.
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup

# ---- the image: three layers ----
src=$T/src
mkdir -p "$src"/{bin,etc/conf.d,srv,usr/share/doc,var/cache/old,opt/replaced/sub}
printf '#!/bin/sh\necho app\n' >"$src/bin/app"
chmod 0755 "$src/bin/app"
head -c 300000 /dev/urandom >"$src/usr/share/doc/blob"
echo hello >"$src/etc/motd"
ln "$src/etc/motd" "$src/etc/motd.hard"
ln -s ../etc/motd "$src/srv/motd.rel"
ln -s /etc/motd "$src/srv/motd.abs"
ln -s /nonexistent/target "$src/srv/dangling"
: >"$src/etc/empty"
echo a >"$src/etc/conf.d/a.conf"
echo b >"$src/etc/conf.d/b.conf"
echo old >"$src/var/cache/old/file"
echo gone >"$src/opt/replaced/sub/gone"
echo secret >"$src/etc/shadowish"
chmod 0600 "$src/etc/shadowish"
chmod 4755 "$src/bin/app"
chown 1234:5678 "$src/srv/motd.rel" "$src/etc/conf.d/a.conf"
chown -h 42:43 "$src/srv/dangling"
mkfifo "$src/srv/fifo"
chmod 1777 "$src/var/cache"

layout=$T/oci
img_build "$layout" v1 "$src"

layer2() {
        rm -f etc/conf.d/b.conf      # whiteout of a file
        rm -rf var/cache/old         # whiteout of a directory
        echo new >etc/motd           # replace a hardlinked file
        mkdir -p usr/local/bin && echo tool >usr/local/bin/tool
        ln -sf tool usr/local/bin/tool-link
}
img_layer "$layout" v1 layer2
# Layer 3 by hand (umoci 0.4.7 `insert --opaque` writes a tar without its end padding): an
# opaque marker placed after the directory's new children, as the image-spec example does.
python3 test/tools/img-pull-layer3.py "$T/layer3.tar" || fail "layer3"
umoci raw add-layer --image "$layout:v1" "$T/layer3.tar" >/dev/null || fail "add-layer"
umoci_rootfs "$layout" v1 "$T/ref-v1"

# ---- OCI manifest, gzip layers ----
img_push "oci:$layout:v1" test/app:v1
out=$T/pull-oci && mkdir -p "$out"
"$PULL" --insecure "$REG/test/app:v1" "$out" >"$T/pull.log" || { cat "$T/pull.log"; fail "pull OCI"; }
cat "$T/pull.log"
[ "$(wc -l <"$out/layers")" -eq 3 ] || fail "expected 3 layers, got $(wc -l <"$out/layers")"
img_compare "$out" "$T/ref-v1/rootfs"
echo "ok  OCI manifest, gzip: rootfs matches umoci unpack"

# The image config comes back verbatim and carries what the agent needs.
python3 test/tools/img-pull-check-config.py "$out/config.json" || fail "config.json"
echo "ok  image config"

# Overlay whiteout representation in the layer dirs themselves.
l2=$(sed -n 2p "$out/layers")
[ -c "$l2/etc/conf.d/b.conf" ] || fail "whiteout of a file is not a char device in layer 2"
l3=$(sed -n 3p "$out/layers")
python3 -c "import os,sys; assert os.getxattr(sys.argv[1],'trusted.overlay.opaque')==b'y'" \
        "$l3/opt/replaced" || fail "opaque dir without trusted.overlay.opaque"
echo "ok  whiteouts stored as overlay char 0/0 and opaque xattr"

# Second pull with the same store: every layer reused, nothing fetched.
"$PULL" --insecure --store "$out/store" "$REG/test/app:v1" "$out" >"$T/pull2.log" || fail "re-pull"
grep -q ' 0.0 MiB fetched' "$T/pull2.log" || { cat "$T/pull2.log"; fail "re-pull fetched layers"; }
echo "ok  layer store reused"

# Two pulls of the same image into one store at once: both succeed, each layer is published
# once, the loser of a publish race leaves nothing in staging.
shared=$T/shared && mkdir -p "$shared/a" "$shared/b"
"$PULL" --insecure --store "$shared/store" "$REG/test/app:v1" "$shared/a" >/dev/null &
p1=$!
"$PULL" --insecure --store "$shared/store" "$REG/test/app:v1" "$shared/b" >/dev/null || fail "concurrent pull b"
wait $p1 || fail "concurrent pull a"
[ "$(ls "$shared/store/layers/sha256" | wc -l)" -eq 3 ] || fail "expected 3 published layers"
[ -z "$(ls -A "$shared/store/staging")" ] || fail "staging not empty after concurrent pulls"
img_compare "$shared/a" "$T/ref-v1/rootfs" >/dev/null
echo "ok  concurrent pulls into one store"

# The agent's view: overlay rootfs with a writable upper.
mnt=$T/pull-mount && mkdir -p "$mnt"
"$PULL" --insecure --store "$out/store" --mount "$REG/test/app:v1" "$mnt" >/dev/null || fail "--mount"
MOUNTS+=("$mnt/rootfs")
[ "$(cat "$mnt/rootfs/etc/motd")" = new ] || fail "mounted rootfs content"
echo write >"$mnt/rootfs/srv/written" && [ -f "$mnt/upper/srv/written" ] || fail "upper not writable"
umount "$mnt/rootfs"
echo "ok  img_rootfs_mount"

# ---- Docker v2 schema 2 manifest ----
img_push "oci:$layout:v1" test/docker:v1 --format v2s2
out=$T/pull-docker && mkdir -p "$out"
"$PULL" --insecure "$REG/test/docker:v1" "$out" >/dev/null || fail "pull Docker v2"
curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REG/v2/test/docker/manifests/v1" | grep -q 'application/vnd.docker.image.rootfs.diff.tar.gzip' ||
        fail "registry does not hold a Docker v2 manifest"
img_compare "$out" "$T/ref-v1/rootfs"
echo "ok  Docker v2 manifest: rootfs matches"

# ---- zstd layers (skopeo recompresses on push) ----
if skopeo copy -q --insecure-policy --dest-tls-verify=false --dest-compress-format zstd \
        --dest-compress "oci:$layout:v1" "docker://$REG/test/zstd:v1" >"$T/zstd.log" 2>&1 &&
        curl -s -H "Accept: application/vnd.oci.image.manifest.v1+json" \
                "http://$REG/v2/test/zstd/manifests/v1" | grep -q 'tar+zstd'; then
        out=$T/pull-zstd && mkdir -p "$out"
        "$PULL" --insecure "$REG/test/zstd:v1" "$out" >/dev/null || fail "pull zstd"
        img_compare "$out" "$T/ref-v1/rootfs"
        echo "ok  zstd layers: rootfs matches"
else
        echo "note: skopeo 1.9 cannot push zstd layers here; zstd is pushed verbatim below"
fi

# ---- uncompressed and zstd layers, pushed verbatim with the registry API ----
img_tar "$T/plain.tar" 'add("plain", kind="d", mode=0o755); add("plain/a", b"A" * 1000); add("plain/b", b"")'
img_tar "$T/z.tar" 'add("plain/.wh.b", b""); add("plain/z", b"zstd" * 1000)'
img_mkimage "$T/plain" v1 none:"$T/plain.tar" zstd:"$T/z.tar"
img_mkimage "$T/plain" ref none:"$T/plain.tar" gzip:"$T/z.tar"
img_push_raw "$T/plain" v1 test/plain:v1
out=$T/pull-plain && mkdir -p "$out"
"$PULL" --insecure "$REG/test/plain:v1" "$out" >/dev/null || fail "pull uncompressed + zstd"
umoci_rootfs "$T/plain" ref "$T/ref-plain"
img_compare "$out" "$T/ref-plain/rootfs"
echo "ok  uncompressed tar and zstd layers: rootfs matches"

# ---- multi-arch index: amd64 and arm64 images under one tag ----
mkdir -p "$T/arm"
echo arm64 >"$T/arm/which"
img_build "$layout" arm "$T/arm"
umoci config --image "$layout:arm" --architecture arm64 >/dev/null
mkdir -p "$T/amd"
echo amd64 >"$T/amd/which"
img_build "$layout" amd "$T/amd"
python3 test/tools/img-pull-index.py "$layout" || fail "index"
img_push "oci:$layout:multi" test/multi:latest --all
for arch in amd64 arm64; do
        out=$T/pull-$arch && mkdir -p "$out"
        "$PULL" --insecure --platform "linux/$arch" "$REG/test/multi" "$out" >/dev/null ||
                fail "pull index for $arch"
        [ "$(cat "$(sed -n 1p "$out/layers")/which")" = $arch ] || fail "index gave the wrong platform for $arch"
done
umoci_rootfs "$layout" arm "$T/ref-arm"
img_compare "$T/pull-arm64" "$T/ref-arm/rootfs"
expect_fail "index without the platform" "no manifest for platform linux/s390x" \
        "$PULL" --insecure --platform linux/s390x "$REG/test/multi" "$T/pull-amd64"
# Pull by digest of the index.
dig=$(curl -s -o /dev/null -D - -H 'Accept: application/vnd.oci.image.index.v1+json' \
        "http://$REG/v2/test/multi/manifests/latest" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
"$PULL" --insecure --platform linux/arm64 "$REG/test/multi@$dig" "$T/pull-arm64" >/dev/null ||
        fail "pull by digest"
echo "ok  multi-arch index: platform selection, attestation entry skipped, pull by digest"

# The same index as a Docker manifest list (skopeo converts on push).
img_push "oci:$layout:multi" test/multilist:latest --all --format v2s2
curl -s -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "http://$REG/v2/test/multilist/manifests/latest" | grep -q 'manifest.list.v2+json' ||
        fail "registry does not hold a Docker manifest list"
out=$T/pull-list && mkdir -p "$out"
"$PULL" --insecure --platform linux/arm64 "$REG/test/multilist" "$out" >/dev/null || fail "pull list"
[ "$(cat "$(sed -n 1p "$out/layers")/which")" = arm64 ] || fail "manifest list gave the wrong platform"
echo "ok  Docker manifest list: platform selection"

# ---- TLS registry with a private CA (--ca), and the same without the CA ----
mkdir -p "$T/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout "$T/tls/ca.key" \
        -out "$T/tls/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$T/tls/server.key" \
        -out "$T/tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/tls/ext"
openssl x509 -req -in "$T/tls/server.csr" -CA "$T/tls/ca.pem" -CAkey "$T/tls/ca.key" \
        -CAcreateserial -days 2 -extfile "$T/tls/ext" -out "$T/tls/server.pem" 2>/dev/null
img_registry tls "  tls:
    certificate: $T/tls/server.pem
    key: $T/tls/server.key"
TLSREG=127.0.0.1:$REG_PORT
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$layout:v1" "docker://$TLSREG/test/app:v1" ||
        fail "push to the TLS registry"
out=$T/pull-tls && mkdir -p "$out"
expect_fail "TLS registry, CA unknown" "certificate" "$PULL" --retries 1 "$TLSREG/test/app:v1" "$out"
"$PULL" --ca "$T/tls/ca.pem" "$TLSREG/test/app:v1" "$out" >/dev/null || fail "pull with --ca"
img_compare "$out" "$T/ref-v1/rootfs"
echo "ok  TLS registry with an extra CA: rootfs matches"

# ---- mirrors: a mirror that has the image, and a dead one (falls back to the origin) ----
out=$T/pull-mirror && mkdir -p "$out"
"$PULL" --insecure --retries 1 --mirror "$REG" "127.0.0.1:1/test/app:v1" "$out" >/dev/null ||
        fail "pull through a mirror"
rm -rf "$out" && mkdir -p "$out"
"$PULL" --insecure --retries 1 --mirror 127.0.0.1:1 "$REG/test/app:v1" "$out" >/dev/null ||
        fail "fallback from a dead mirror"
img_compare "$out" "$T/ref-v1/rootfs"
echo "ok  mirror used, dead mirror skipped"

# ---- errors that must be clear ----
expect_fail "unknown tag" "MANIFEST_UNKNOWN" "$PULL" --insecure "$REG/test/app:nope" "$T/pull-oci"
expect_fail "unknown repository" "HTTP 404" "$PULL" --insecure "$REG/test/nothing:v1" "$T/pull-oci"
expect_fail "TLS to a plain-HTTP registry" "GET https://" "$PULL" --retries 1 "$REG/test/app:v1" "$T/pull-oci"
echo "all image pull checks passed"
