#!/usr/bin/env bash
# cc-snapshotter, guest-pull mode, with containerd 1.6's CRI (the policy name, default guest):
#  1. a CRI PullImage of an image in the local registry completes and the image is listed;
#  2. the host holds only the manifest and config: no layer blob in containerd's content
#     store, no file under the snapshotter's root (bytes measured);
#  3. Mounts of a container rootfs prepared on the image is the guest-pull mount
#     (fuse.nydus-overlayfs, io.katacontainers.volume = base64 JSON naming the image), and
#     our mount helper mounts it harmlessly on the host;
#  4. removing the image lets containerd's GC remove every snapshot and directory.
set -u
cd "$(dirname "$0")/../.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
snap_require "needs root (mounts)" containerd ctr docker-registry skopeo umoci protoc-c
/usr/bin/python3 -c 'import grpc' 2>/dev/null || cc_skip "python3-grpcio not installed"
[ -x "$SNAP_BIN" ] || cc_fail "$SNAP_BIN not built"

snap_registry
snap_busybox_image "$CC_TMP/oci"
# A third layer of 4 MiB of incompressible data makes a download impossible to miss.
b=$CC_TMP/bundle
umoci unpack --image "$CC_TMP/oci:latest" "$b" >/dev/null
head -c $((4 << 20)) /dev/urandom >"$b/rootfs/big.bin"
umoci repack --image "$CC_TMP/oci:latest" "$b" >/dev/null
rm -rf "$b"
snap_push "$CC_TMP/oci:latest" cc/app:1
IMG=$REG/cc/app:1

# The configuration path end to end: policy mode, CRI pulls guest unless local_images says.
snap_start 'default_mode = "policy"
[policy]
default = "guest"
local_images = ["*/pause:*"]
[snapshotters.cc-local]
mode = "local"'
snap_containerd_cri cc-snapshotter
C="ctr --address $CTRD_SOCK -n k8s.io"

t0=$(date +%s%N)
$CRI --address "$CTRD_SOCK" pull "$IMG" >"$CC_TMP/pull.json" || cc_fail "CRI PullImage failed"
t1=$(date +%s%N)
echo "CRI PullImage through guest pull: $(((t1 - t0) / 1000000)) ms"
$CRI --address "$CTRD_SOCK" images >"$CC_TMP/images.json" || cc_fail "CRI ListImages"
grep -q "\"$IMG\"" "$CC_TMP/images.json" || cc_fail "image not listed by CRI"

# What the registry holds for the image: its layer digests and sizes.
layers=$(skopeo inspect --raw --tls-verify=false "docker://$IMG" |
        /usr/bin/python3 -c 'import json,sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]')
[ "$(echo "$layers" | wc -l)" -eq 3 ] || cc_fail "expected 3 layers, got: $layers"
blobs=$CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256
total=0
while read -r digest size; do
        [ -e "$blobs/${digest#sha256:}" ] && cc_fail "layer $digest ($size bytes) is in the host content store"
        total=$((total + size))
done <<<"$layers"
content_bytes=$(find "$blobs" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
snap_files=$(find "$SNAP_ROOT/snapshots" -type f | wc -l)
snap_bytes=$(du -sb "$SNAP_ROOT/snapshots" | cut -f1)
echo "layers in registry: $total bytes; host content store: $content_bytes bytes (manifest + config); snapshotter: $snap_files files, $snap_bytes bytes of directories"
[ "$content_bytes" -lt 16384 ] || cc_fail "content store holds $content_bytes bytes"
[ "$snap_files" -eq 0 ] || cc_fail "snapshotter root holds files"
ls "$CTRD_ROOT" | grep -q overlayfs && [ -n "$(ls "$CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots" 2>/dev/null)" ] &&
        cc_fail "something was unpacked with overlayfs"

# The placeholders: committed, labelled, no data.
$C snapshots --snapshotter cc-snapshotter ls >"$CC_TMP/ls"
[ "$(grep -c Committed "$CC_TMP/ls")" -eq 3 ] || { cat "$CC_TMP/ls"; cc_fail "expected 3 committed placeholders"; }
# The top of the chain: the committed snapshot nobody has as parent.
top=$(awk 'NR > 1 && $NF == "Committed" { k[$1] = 1; if (NF == 3) p[$2] = 1 }
        END { for (x in k) if (!(x in p)) print x }' "$CC_TMP/ls")
[ -n "$top" ] || cc_fail "no top layer found"
$C snapshots --snapshotter cc-snapshotter info "$top" | grep -q '"containerd.io/snapshot/cc.guest": "true"' ||
        cc_fail "placeholder lacks the guest label"

# A container rootfs on it gets the guest-pull mount.
$C snapshots --snapshotter cc-snapshotter prepare ctr-rootfs "$top" >/dev/null || cc_fail "prepare rootfs"
mkdir -p "$CC_TMP/mnt"
mline=$($C snapshots --snapshotter cc-snapshotter mounts "$CC_TMP/mnt" ctr-rootfs)
echo "$mline" | grep -q '^mount -t fuse.nydus-overlayfs overlay ' || cc_fail "not a guest-pull mount: $mline"
vol=$(echo "$mline" | tr ',' '\n' | sed -n 's/^io.katacontainers.volume=//p')
json=$(echo "$vol" | base64 -d) || cc_fail "volume is not base64"
echo "$json" | /usr/bin/python3 -c "
import json, sys
v = json.load(sys.stdin)
assert v['volume_type'] == 'image_guest_pull', v
assert v['source'] == '$IMG', v
assert isinstance(v['image_pull']['metadata'], dict), v
assert v['image_pull']['metadata']['containerd.io/snapshot/cri.image-ref'] == '$IMG', v
" || cc_fail "bad io.katacontainers.volume: $json"
echo "container rootfs mount: fuse.nydus-overlayfs, volume $json"
# A host-side mount of it succeeds harmlessly: the way containerd mounts a fuse.X type
# (mount.fuse SOURCE TARGET -o OPT ... -t X, which runs our nydus-overlayfs helper from PATH),
# or the helper alone where fuse3's mount.fuse is not installed.
opts=$(echo "$mline" | sed 's/.* -o //')
if [ -x /sbin/mount.fuse ]; then
        args=()
        IFS=, read -ra o <<<"$opts"
        for x in "${o[@]}"; do args+=(-o "$x"); done
        PATH="$(cd "$BUILD" && pwd):$PATH" /sbin/mount.fuse overlay "$CC_TMP/mnt" "${args[@]}" \
                -t nydus-overlayfs || cc_fail "mount.fuse of the guest rootfs failed"
        echo "host mount through mount.fuse -> nydus-overlayfs: ok"
else
        "$BUILD/nydus-overlayfs" overlay "$CC_TMP/mnt" -o "$opts" || cc_fail "mount helper failed"
        echo "host mount through nydus-overlayfs: ok (no mount.fuse here)"
fi
[ -z "$(ls -A "$CC_TMP/mnt")" ] || cc_fail "host view of a guest rootfs is not empty"
umount "$CC_TMP/mnt"
$C snapshots --snapshotter cc-snapshotter rm ctr-rootfs || cc_fail "rm rootfs"

# The containerd 1.6 shared-base-layer hazard: an image that extends the guest-pulled one by a
# layer, pulled for the host (ctr: no CRI labels, so local), would stack a real layer on
# empty placeholders. It must fail with FailedPrecondition and say why, not unpack.
b=$CC_TMP/bundle
umoci unpack --image "$CC_TMP/oci:latest" "$b" >/dev/null
echo local >"$b/rootfs/local.txt"
umoci repack --image "$CC_TMP/oci:latest" "$b" >/dev/null
rm -rf "$b"
snap_push "$CC_TMP/oci:latest" cc/app:2
if $C images pull --plain-http --snapshotter cc-snapshotter "$REG/cc/app:2" >"$CC_TMP/hazard.log" 2>&1; then
        cat "$CC_TMP/hazard.log"
        cc_fail "a local pull on guest placeholders succeeded"
fi
grep -q "guest-pulled" "$CC_TMP/hazard.log" || { cat "$CC_TMP/hazard.log"; cc_fail "hazard not explained"; }
echo "local pull over guest layers refused: $(grep -o 'failed precondition' "$CC_TMP/hazard.log" | head -1)"
$C images rm "$REG/cc/app:2" >/dev/null 2>&1

# Removing the image: containerd's GC removes the placeholders from us.
$CRI --address "$CTRD_SOCK" rmi "$IMG" >/dev/null || cc_fail "CRI RemoveImage"
cc_wait_for 30 bash -c "[ -z \"\$(ls '$SNAP_ROOT/snapshots')\" ]" ||
        cc_fail "snapshot directories left after GC: $(ls "$SNAP_ROOT/snapshots")"
[ "$($C snapshots --snapshotter cc-snapshotter ls | tail -n +2 | wc -l)" -eq 0 ] ||
        cc_fail "snapshots left after GC"
echo "PASS: snap-guest-pull"
