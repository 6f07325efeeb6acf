#!/usr/bin/env bash
# An encrypted image through containerd 1.6's CRI (issue 9, the user's second check): an image
# encrypted by `skopeo copy --encryption-key jwe:pub.pem`, pulled in the guest; the private key
# reaches the guest only through the offline_fs key broker: a second cpio appended to the test's
# copy of the initrd holds /etc/cc-agent/image.json ({"key_files": [...]}) and the key, the way
# a guest image is built with its keys (the host never sends a key: guest-agent/rpc/rpc-image.c).
# The node is set up by `cc-deploy install` (see e2e-guest-pull.sh), plus one handler of the
# node's own, kata-keys, whose configuration is the installed one with that initrd.
#   - handler kata-keys (that initrd): the pod runs, the container prints the decrypted file;
#   - handler kata (the plain initrd, no key): StartContainer fails with an error that names the
#     missing key, and ContainerStatus says so too;
#   - handler kata-otherkey (an initrd with another key): the error names the keys it tried;
#   - nothing decrypted reaches the host: no layer blob in containerd's content store, no layer
#     data under the snapshotter's root, the image's marker text nowhere under containerd's or
#     the snapshotter's directories; nothing left after removal.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$SNAP_BIN" --tool openssl --tool cpio --tool gzip
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni

# The key pair; the initrd with the private key appended (the kernel unpacks concatenated
# archives in order, so these files are added to the guest image's own).
K=$CC_TMP/keys
mkdir -p "$K"
openssl genrsa -out "$K/key.pem" 2048 2>/dev/null
openssl rsa -in "$K/key.pem" -pubout -out "$K/pub.pem" 2>/dev/null
openssl genrsa -out "$K/other.pem" 2048 2>/dev/null
key_initrd() { # KEY OUT: the guest image plus /etc/cc-agent/image.json naming KEY
        local x=$CC_TMP/initrd-extra-$RANDOM
        mkdir -p "$x/etc/cc-agent/keys"
        cp "$1" "$x/etc/cc-agent/keys/key.pem"
        chmod 600 "$x/etc/cc-agent/keys/key.pem"
        echo '{"key_files": ["/etc/cc-agent/keys/key.pem"]}' >"$x/etc/cc-agent/image.json"
        (cd "$x" && find etc | cpio -o -H newc --quiet | gzip -9) >"$x.cpio.gz" || cc_fail "cpio"
        cat build/guest/initrd.img "$x.cpio.gz" >"$2"
}
key_initrd "$K/key.pem" "$CC_TMP/initrd-keys.img"
key_initrd "$K/other.pem" "$CC_TMP/initrd-other.img"
# The node's own extra handlers kata-keys and kata-otherkey: the installed
# configuration-qemu.toml with those initrds (written once the installer has put it in place).
E2E_NODE_EXTRA=""
for h in keys otherkey; do
        E2E_NODE_EXTRA+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$h]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.*\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$h.options]
        ConfigPath = \"$CC_TMP/configuration-qemu-$h.toml\""
done

# The image: busybox plus a secret file with a marker, every layer encrypted for pub.pem.
MARK="cc-e2e-encrypted-secret-$$-$RANDOM"
snap_busybox_image "$CC_TMP/app"
b=$CC_TMP/bundle
umoci unpack --image "$CC_TMP/app:latest" "$b" >/dev/null
echo "$MARK" >"$b/rootfs/secret.txt"
umoci repack --image "$CC_TMP/app:latest" "$b" >/dev/null
rm -rf "$b"
skopeo copy -q --insecure-policy --dest-tls-verify=false --encryption-key "jwe:$K/pub.pem" \
        "oci:$CC_TMP/app:latest" "docker://$REG/enc/app:1" >"$CC_TMP/skopeo.log" 2>&1 ||
        { cat "$CC_TMP/skopeo.log"; cc_fail "skopeo copy --encryption-key"; }
IMAGE=$REG/enc/app:1
manifest=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE")
n_enc=$(grep -o 'tar+gzip+encrypted' <<<"$manifest" | wc -l)
[ "$n_enc" -eq 3 ] && ok "skopeo encrypted all 3 layers (JWE, RSA-OAEP)" || cc_fail "encrypted layers: $n_enc"
e2e_pause_image pause:1
e2e_installed_node
sed "s|^initrd = .*|initrd = \"$CC_TMP/initrd-keys.img\"|" "$E2E_CFG" >"$CC_TMP/configuration-qemu-keys.toml"
sed "s|^initrd = .*|initrd = \"$CC_TMP/initrd-other.img\"|" "$E2E_CFG" >"$CC_TMP/configuration-qemu-otherkey.toml"

ref=$(cri pull "$IMAGE" 2>"$CC_TMP/pull.err" | jget '["image_ref"]')
case "$ref" in sha256:*) ok "CRI PullImage of the encrypted image (metadata only)" ;; *) cc_fail "PullImage: $(cat "$CC_TMP/pull.err")" ;; esac

CMD="[\"/bin/sh\", \"-c\", \"cat /secret.txt; trap 'exit 0' TERM; while true; do busybox sleep 1; done\"]"
# enc_pod POD HANDLER CNAME WHAT: RunPodSandbox POD with HANDLER and CreateContainer CNAME (CMD
# on IMAGE; WHAT qualifies its error) in it, ids in P and C; returns StartContainer's status,
# its error in $CC_TMP/CNAME.start.err.
enc_pod() {
        e2e_runp "$1" "$2"
        P=$E2E_POD
        [ -n "$P" ] || cc_fail "RunPodSandbox $2: $(cat "$CC_TMP/$1.runp.err")"
        C=$(e2e_create "$P" "$1" "$3" "$IMAGE" "$CMD")
        [ -n "$C" ] || cc_fail "CreateContainer$4: $(cat "$CC_TMP/$3.create.err")"
        cri start "$C" >/dev/null 2>"$CC_TMP/$3.start.err"
}

# --- with the key in the guest: the pod runs ----------------------------------------------------
enc_pod enc-pod kata-keys c1 "" && ok "StartContainer: the guest pulled and decrypted the image" ||
        fail "StartContainer with the key: $(cat "$CC_TMP/c1.start.err")"
P1=$P C1=$C
[ "$(ctr_state "$C1")" = "CONTAINER_RUNNING 0" ] && ok "container RUNNING" || fail "c1: $(ctr_state "$C1")"
cc_wait_for 30 grep -q "stdout F $MARK" "$CC_TMP/logs/enc-pod/c1.log" &&
        ok "CRI log: the decrypted file's content" || fail "log: $(cat "$CC_TMP/logs/enc-pod/c1.log" 2>&1)"

# --- without the key: the container fails with a clear error ----------------------------------------
if enc_pod nokey-pod kata c2 " (no key)"; then
        fail "StartContainer without the key succeeded"
else
        err=$(cat "$CC_TMP/c2.start.err")
        if [[ "$err" == *"pull image $IMAGE@sha256:"*" in the guest"* ]] && [[ "$err" == *"encrypted layer sha256:"*"key"* ]]; then
                ok "StartContainer without the key fails: ${err#error: }"
        else
                fail "no-key error does not name the key: $err"
        fi
fi
P2=$P C2=$C
st=$(cri inspect "$C2" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], "|", s.get("reason", ""), "|", s.get("message", ""))')
echo "  ContainerStatus: $st"
case "$st" in
"CONTAINER_EXITED | StartError | "*"encrypted layer"*"key"*) ok "ContainerStatus: StartError naming the encrypted layer and the key" ;;
*) fail "c2 status without its key: $st" ;;
esac
grep -q "stdout F $MARK" "$CC_TMP/logs/nokey-pod/c2.log" 2>/dev/null && fail "c2 printed the secret without a key"

# --- with a key that is not the image's: the error names the keys it tried ----------------------------
if enc_pod other-pod kata-otherkey c3 " (other key)"; then
        fail "StartContainer with another key succeeded"
else
        err=$(cat "$CC_TMP/c3.start.err")
        [[ "$err" == *"encrypted layer sha256:"*"no usable key (tried: /etc/cc-agent/keys/key.pem)"* ]] &&
                ok "StartContainer with the wrong key fails: ...${err#*in the guest: }" ||
                fail "wrong-key error: $err"
fi
P3=$P C3=$C
grep -q "stdout F $MARK" "$CC_TMP/logs/other-pod/c3.log" 2>/dev/null && fail "c3 printed the secret with the wrong key"

# --- nothing decrypted on the host -------------------------------------------------------------------
out=$(e2e_node_check "$IMAGE") && ok "the host holds no layer of the encrypted image:" || fail "node check:"
echo "$out"
hits=$(grep -rlF "$MARK" "$CTRD_ROOT" "$SNAP_ROOT" "$CTRD_DIR/state" "$CC_SHIM_RUN_DIR" 2>/dev/null | head -3)
[ -z "$hits" ] && ok "the decrypted secret is nowhere under containerd's, the snapshotter's or the shim's directories" ||
        fail "decrypted data on the host: $hits"

for c in "$C1" "$C2" "$C3"; do cri stop --timeout 10 "$c" >/dev/null 2>&1; cri rm "$c" >/dev/null || fail "RemoveContainer $c"; done
for p in "$P1" "$P2" "$P3"; do
        cri stopp "$p" >/dev/null 2>"$CC_TMP/stopp.err" || fail "StopPodSandbox $p: $(cat "$CC_TMP/stopp.err")"
        cri rmp "$p" >/dev/null || fail "RemovePodSandbox $p"
done
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod)" || fail "left: $left"
e2e_finish e2e-encrypted
