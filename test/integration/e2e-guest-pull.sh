#!/usr/bin/env bash
# Guest pull through containerd 1.6's CRI (issue 9, the user's first check): a kata pod whose
# container image is pulled inside the VM, and the node keeps no trace of its layers.
#   0. the node is set up by the installer: `cc-deploy install --dest-root` over the node's own
#      containerd config.toml (CNI, registry mirror, sandbox image), and containerd 1.6 runs the
#      merged file; cc-snapshotter is the one the installer started, with its installed config;
#   1. CRI PullImage through cc-snapshotter (policy guest) fetches only the manifest and config
#      on the host; then the registry moves the tag to another image B (issue 18);
#   2. RunPodSandbox (handler kata, host rootfs refused: allow_host_rootfs = false),
#      CreateContainer, StartContainer: the container runs, its rootfs pulled by the agent from
#      the registry through the pod's network (the registry listens on the CNI bridge's gateway,
#      so one image reference serves the host and the guest; its access log shows the layer
#      blobs fetched from the pod's IP); it prints the image's file and the 4 MiB layer's
#      checksum, equal to the host's; ExecSync shows image A's marker, never B's (the guest
#      fetched the manifest by the digest containerd resolved); a second container on the same image in the
#      same VM exits 3 and ContainerStatus reports it;
#   3. the node check after the pod ran: CRI ListImages shows the image, containerd's content
#      store holds no layer blob of it, the snapshotter's root holds no layer data, nothing
#      under containerd's or the snapshotter's root holds the image's marker file (bytes
#      measured with du);
#   4. stop and remove: nothing left; `cc-deploy uninstall` restores the node's config.toml
#      byte for byte and stops the snapshotter.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$SNAP_BIN"
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni

# The application image: busybox, a file, a marker, 4 MiB of random data (three layers).
MARK="cc-e2e-guest-pull-marker-$$-$RANDOM"
snap_busybox_image "$CC_TMP/app"
b=$CC_TMP/bundle
umoci unpack --image "$CC_TMP/app:latest" "$b" >/dev/null
head -c $((4 << 20)) /dev/urandom >"$b/rootfs/big.bin"
echo "$MARK" >"$b/rootfs/marker.txt"
umoci repack --image "$CC_TMP/app:latest" "$b" >/dev/null
BIG_MD5=$(md5sum "$b/rootfs/big.bin" | cut -d' ' -f1)
rm -rf "$b"
# Image B: A with another marker, pushed under A's tag after CRI has pulled A (issue 18: the
# registry moves the tag between PullImage and StartContainer).
cp -a "$CC_TMP/app" "$CC_TMP/appB"
umoci unpack --image "$CC_TMP/appB:latest" "$b" >/dev/null
echo "tag-moved-to-image-B" >"$b/rootfs/marker.txt"
umoci repack --image "$CC_TMP/appB:latest" "$b" >/dev/null
rm -rf "$b"
snap_push "$CC_TMP/app:latest" cc/app:1
e2e_pause_image pause:1
IMAGE=$REG/cc/app:1
# The node: the installer's work on the node's own config.toml, then containerd on it.
e2e_installed_node
ok "cc-deploy install: $(grep -c 'runtime_type = "io.containerd.kata-cc.v2"' "$CTRD_DIR/config.toml") kata-cc runtime entries and the cc-snapshotter proxy merged; snapshotter running"

# --- 1. CRI PullImage: metadata only on the host --------------------------------------------------
ref=$(cri pull "$IMAGE" | jget '["image_ref"]')
case "$ref" in sha256:*) ok "CRI PullImage $IMAGE -> ${ref:0:19} (through cc-snapshotter)" ;; *) cc_fail "PullImage: '$ref'" ;; esac
out=$(e2e_node_check "$IMAGE") && ok "after PullImage the host holds no layer:" || fail "after PullImage:"
echo "$out"
digest_a=$(skopeo inspect --tls-verify=false "docker://$IMAGE" | jget '["Digest"]')
snap_push "$CC_TMP/appB:latest" cc/app:1
digest_b=$(skopeo inspect --tls-verify=false "docker://$IMAGE" | jget '["Digest"]')
[ "$digest_a" != "$digest_b" ] && ok "the registry moved $IMAGE from ${digest_a:0:19} (pulled by CRI) to ${digest_b:0:19}" ||
        fail "the tag did not move: $digest_a"

# --- 2. the pod: the container's rootfs pulled in the guest ---------------------------------------
e2e_runp gp-pod
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/gp-pod.runp.err")"
pod_ip=$(cri inspectp "$POD" | jget '["status"]["network"]["ip"]')
ok "RunPodSandbox $POD (pod IP $pod_ip)"
vm=$(qemus)
[ "$(wc -w <<<"$vm")" -eq 1 ] && ok "the pod's VM: QEMU pid $vm, $(tr '\0' ' ' </proc/$vm/cmdline | grep -o -- '-accel [^ ]*\|-machine [^ ]*\|-m [^ ]*' | tr '\n' ' ')" ||
        fail "VMs: $vm"
C1=$(e2e_create "$POD" gp-pod c1 "$IMAGE" \
        "[\"/bin/sh\", \"-c\", \"cat /hello.txt; echo md5 \$(busybox md5sum /big.bin); trap 'exit 0' TERM; while true; do busybox sleep 1; done\"]")
[ -n "$C1" ] && ok "CreateContainer $C1" || cc_fail "CreateContainer: $(cat "$CC_TMP/c1.create.err")"
if cri start "$C1" >/dev/null 2>"$CC_TMP/start.err"; then
        ok "StartContainer: the agent pulled $IMAGE in the guest"
else
        fail "StartContainer: $(cat "$CC_TMP/start.err")"
fi
st=$(ctr_state "$C1")
[ "$st" = "CONTAINER_RUNNING 0" ] && ok "container RUNNING" || fail "container: $st"
LOG=$CC_TMP/logs/gp-pod/c1.log
cc_wait_for 30 grep -q "stdout F md5" "$LOG"
grep -q "stdout F hello from layer 2" "$LOG" && ok "CRI log: the image's file (hello from layer 2)" || fail "log: $(cat "$LOG" 2>&1)"
grep -q "stdout F md5 $BIG_MD5 " "$LOG" && ok "CRI log: the 4 MiB layer's md5 in the guest = the host's ($BIG_MD5)" ||
        fail "md5 in the guest: $(grep md5 "$LOG")"
out=$(cri exec-sync "$C1" /bin/sh -c 'echo $(busybox cat /sys/class/dmi/id/sys_vendor) $(busybox uname -r)')
[[ "$out" == QEMU* ]] && ok "ExecSync: the container runs on the VM's kernel ($out; host: $(uname -r))" || fail "exec: '$out'"
out=$(cri exec-sync "$C1" /bin/sh -c 'cat /marker.txt')
[ "$out" = "$MARK" ] && ok "ExecSync: the marker file is in the guest's rootfs: image A, the one CRI pulled, not B the tag now names" || fail "exec: '$out'"
# A second container in the same VM, on the same guest-pulled image, exits 3: ContainerStatus
# reports the code, its log has its output.
C2=$(e2e_create "$POD" gp-pod c2 "$IMAGE" '["/bin/sh", "-c", "echo c2 sees $(cat /hello.txt); exit 3"]')
[ -n "$C2" ] || fail "CreateContainer c2: $(cat "$CC_TMP/c2.create.err")"
cri start "$C2" >/dev/null 2>"$CC_TMP/c2.start.err" || fail "StartContainer c2: $(cat "$CC_TMP/c2.start.err")"
cc_wait_for 60 bash -c "$CRI --address $CTRD_SOCK inspect $C2 | grep -q CONTAINER_EXITED"
st=$(ctr_state "$C2")
[ "$st" = "CONTAINER_EXITED 3" ] && ok "ContainerStatus: c2 (same VM, same image) EXITED with exit code 3" || fail "c2: '$st'"
grep -q "stdout F c2 sees hello from layer 2" "$CC_TMP/logs/gp-pod/c2.log" && ok "c2's CRI log" ||
        fail "c2 log: $(cat "$CC_TMP/logs/gp-pod/c2.log" 2>&1)"
[ "$(qemus | wc -l)" -eq 1 ] && ok "two containers, one VM" || fail "VMs: $(qemus | wc -l)"
# Who fetched the layers: the registry's access log. The host fetched manifest and config; the
# big layer's blob was fetched by the guest, through the pod's interface.
big=$(skopeo inspect --raw --tls-verify=false "docker://${IMAGE%:*}@$digest_a" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["digest"])')
# (The access log is in Apache's combined format: the client's address first.)
fetchers=$(grep -F "\"GET /v2/cc/app/blobs/$big " "$CC_TMP/registry.log" | awk '{print $1}' | sort -u | tr '\n' ' ')
[ -n "$fetchers" ] && [[ " $fetchers" != *" 127.0.0.1 "* ]] && ok "the big layer was fetched from $fetchers(pod IP $pod_ip), never by the host's pull" ||
        fail "big layer fetched by: '$fetchers' ($(grep -F "$big" "$CC_TMP/registry.log" | tail -3))"
[[ " $fetchers" == *" $pod_ip "* ]] && ok "... from the pod's own IP: the guest's traffic left through the pod's interface" ||
        echo "note: fetched from $fetchers, not the pod IP (user-mode network?)"
# Pull by digest (issue 18): the guest fetched the manifest by the digest containerd resolved
# (the shim pins the reference to it), not by the tag a registry could move in between.
mdig=sha256:$(skopeo inspect --raw --tls-verify=false "docker://${IMAGE%:*}@$digest_a" | sha256sum | cut -d' ' -f1)
by_digest=$(grep -F "\"GET /v2/cc/app/manifests/$mdig " "$CC_TMP/registry.log" | awk '{print $1}' |
        grep -vx '127.0.0.1' | sort -u | tr '\n' ' ')
[[ " $by_digest" == *" $pod_ip "* ]] && ok "the guest (pod IP $pod_ip) pulled the manifest by the resolved digest $mdig" ||
        fail "no guest GET of manifests/$mdig: $(grep -F 'manifests/' "$CC_TMP/registry.log" | tail -4)"

# --- 3. the node check after the pod ran ------------------------------------------------------------
imgs=$(cri images)
grep -q "\"$IMAGE\"" <<<"$imgs" && ok "CRI ListImages (crictl images) shows $IMAGE" || fail "ListImages: $imgs"
python3 -c '
import json, sys
for i in json.load(sys.stdin)["images"]:
    print("  %-50s %s  size %s" % (i["repo_tags"][0], i["id"][:19], i.get("size", "0")))' <<<"$imgs"
echo "  ctr -n k8s.io content ls:"
ctr --address "$CTRD_SOCK" -n k8s.io content ls | sed 's/^/    /' | cut -c1-140
out=$(e2e_node_check "$IMAGE") && ok "after the pod ran the host holds no layer of it:" || fail "after the pod ran:"
echo "$out"
hits=$(grep -rlF "$MARK" "$CTRD_ROOT" "$SNAP_ROOT" "$CTRD_DIR/state" 2>/dev/null | head -3)
[ -z "$hits" ] && ok "the image's marker file is nowhere under containerd's or the snapshotter's root" ||
        fail "marker found on the host: $hits"

# --- 4. teardown ---------------------------------------------------------------------------------------
cri stop --timeout 20 "$C1" >/dev/null || fail "StopContainer"
cri rm "$C1" >/dev/null || fail "RemoveContainer"
cri rm "$C2" >/dev/null || fail "RemoveContainer c2"
cri stopp "$POD" >/dev/null 2>"$CC_TMP/stopp.err" || fail "StopPodSandbox: $(cat "$CC_TMP/stopp.err")"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox"
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod)" || fail "left: $left"
snap_pid=$(cat "$E2E_NODE/var/lib/cc-deploy/cc-snapshotter.pid" 2>/dev/null)
e2e_uninstall_node && ok "cc-deploy uninstall" || fail "cc-deploy uninstall: $(tail -3 "$CC_TMP/cc-deploy.log")"
cmp -s "$CC_TMP/node-config.orig" "$CC_TMP/node/etc/containerd/config.toml" &&
        ok "the node's config.toml is back byte for byte" || fail "config.toml differs after uninstall"
# (Gone, or a zombie until init reaps it: the supervisor was detached by cc-deploy.)
[ -n "$snap_pid" ] && cc_wait_for 10 bash -c "s=\$(ps -o stat= -p $snap_pid); [ -z \"\$s\" ] || [[ \$s == Z* ]]" && ok "the supervised snapshotter is stopped" ||
        fail "snapshotter supervisor '$snap_pid' still runs"
e2e_finish e2e-guest-pull
