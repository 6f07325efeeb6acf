#!/usr/bin/env bash
# Signed images through containerd 1.6's CRI (issue 14, "How it is shown"): a kata pod whose
# signature policy comes from its initdata (the io.katacontainers.config.hypervisor.cc_init_data
# annotation; cdh.toml [image] image_security_policy_uri names a policy file of the guest image)
# and images signed by Debian's skopeo (`copy --sign-by`, throwaway GPG keys), the signatures in
# an http:// lookaside on the pod network's gateway that the guest reads through its
# registries.d. The guest image is the installed one plus an initrd segment with the policy,
# the trusted key and the registries.d file (as a guest image is built with them); its own
# image.json names no policy, so only the initdata's applies. The node is set up by
# `cc-deploy install` (as e2e-encrypted.sh), guest pull through cc-snapshotter.
#   - policy from initdata: default reject, signedBy the trusted key for $REG/sig;
#   - a signed image runs (its CRI log shows its file);
#   - an image signed by an untrusted key, and then an unsigned image pushed under the signed
#     image's own name and tag (re-tagged): StartContainer fails, its error and ContainerStatus
#     naming the image, the policy scope, the requirement (signedBy) and why (unknown key; no
#     signature); no layer of those images was fetched from the registry (its access log), so
#     nothing was unpacked in the guest, and none is on the host;
#   - the same guest image without initdata: no policy, the unsigned image runs;
#   - nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod).
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$SNAP_BIN" --built "$BUILD/cc-kbs" --built "$BUILD/cc-kbc" --tool gpg --tool gpg-connect-agent \
        --tool cpio --tool gzip --tool openssl
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni

# Throwaway GPG keys; the agent gpg starts is stopped by its PID when the test ends.
export GNUPGHOME=$CC_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
gen_key() { # UID -> prints the fingerprint
        gpg --batch --passphrase '' --quick-gen-key "$1" rsa3072 sign never >/dev/null 2>&1 || cc_fail "gpg key $1"
        gpg --list-keys --with-colons "$1" 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}'
}
FPR_OK=$(gen_key 'Image Signer <signer@example.test>')
FPR_BAD=$(gen_key 'Someone Else <else@example.test>')
GPG_AGENT=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | awk '/^D / {print $2}')
[ -n "$GPG_AGENT" ] && CC_PIDS+=("$GPG_AGENT")

# The lookaside: written by skopeo through a file:// registries.d, served to the guest by a
# plain HTTP server on the gateway.
L=$CC_TMP/lookaside
mkdir -p "$L" "$CC_TMP/regd-push"
printf 'docker:\n  %s:\n    lookaside: file://%s\n' "$REG" "$L" >"$CC_TMP/regd-push/push.yaml"
LPORT=$(snap_free_port "$E2E_GW")
cc_bg lookaside python3 -m http.server "$LPORT" --bind "$E2E_GW" --directory "$L"
cc_wait_for 10 bash -c "exec 3<>/dev/tcp/$E2E_GW/$LPORT" || cc_fail "lookaside server: $(cat "$CC_TMP/lookaside.log")"

# Images: busybox plus a marker file each (so every image has a layer of its own).
snap_busybox_image "$CC_TMP/bb"
mark_image() { # TAG TEXT: busybox + /marker.txt into $CC_TMP/bb:TAG
        local b=$CC_TMP/bundle-$1
        umoci unpack --image "$CC_TMP/bb:latest" "$b" >/dev/null
        echo "$2" >"$b/rootfs/marker.txt"
        umoci repack --image "$CC_TMP/bb:$1" "$b" >/dev/null
        rm -rf "$b"
}
mark_image signed "signed image"
mark_image bad "signed by an untrusted key"
mark_image unsigned "not signed"
echo '{"default":[{"type":"insecureAcceptAnything"}],"transports":{}}' >"$CC_TMP/insecure.json"
push() { # TAG REPO:TAG [skopeo copy args]
        local src=$1 dst=$2
        shift 2
        skopeo --policy "$CC_TMP/insecure.json" --registries.d "$CC_TMP/regd-push" copy -q --dest-tls-verify=false \
                "$@" "oci:$CC_TMP/bb:$src" "docker://$REG/$dst" >"$CC_TMP/skopeo.log" 2>&1 ||
                { cat "$CC_TMP/skopeo.log"; cc_fail "skopeo copy $dst"; }
}
top_layer() { skopeo inspect --raw --tls-verify=false "docker://$REG/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["digest"])'; }
push signed sig/app:1 --sign-by "$FPR_OK"
push bad sig/other:1 --sign-by "$FPR_BAD"
n_sigs=$(find "$L" -name 'signature-*' | wc -l)
[ "$n_sigs" -eq 2 ] && ok "skopeo signed two images (lookaside: $n_sigs signatures)" || cc_fail "lookaside holds $n_sigs signatures"
SIGNED=$REG/sig/app:1
LAYER_SIGNED=$(top_layer sig/app:1)
OTHER=$REG/sig/other:1
LAYER_OTHER=$(top_layer sig/other:1)

# The host's own verdicts, with the policy the guest gets (skopeo copy --policy).
mkdir -p "$CC_TMP/regd-host"
printf 'docker:\n  %s:\n    lookaside: http://%s:%s\n' "$REG" "$E2E_GW" "$LPORT" >"$CC_TMP/regd-host/host.yaml"
gpg --export "$FPR_OK" >"$CC_TMP/trusted.gpg"
policy() { # KEYPATH
        printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/sig":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]}}}\n' "$REG" "$1"
}
policy "$CC_TMP/trusted.gpg" >"$CC_TMP/host-policy.json"
skopeo_verdict() { skopeo --policy "$CC_TMP/host-policy.json" --registries.d "$CC_TMP/regd-host" copy -q --src-tls-verify=false "docker://$1" "dir:$CC_TMP/skopeo-dir-$RANDOM" >/dev/null 2>&1 && echo accept || echo reject; }

# The guest image's extra segment: the policy and key under /etc/cc-agent/sig, registries.d.
x=$CC_TMP/initrd-extra
mkdir -p "$x/etc/cc-agent/sig" "$x/etc/cc-agent/registries.d"
cp "$CC_TMP/trusted.gpg" "$x/etc/cc-agent/sig/trusted.gpg"
policy /etc/cc-agent/sig/trusted.gpg >"$x/etc/cc-agent/sig/policy.json"
cp "$CC_TMP/regd-host/host.yaml" "$x/etc/cc-agent/registries.d/lookaside.yaml"
echo '{"registries_d": "/etc/cc-agent/registries.d"}' >"$x/etc/cc-agent/image.json"
(cd "$x" && find etc | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9n) >"$x.cpio.gz" || cc_fail "cpio"
cat build/guest/initrd.img "$x.cpio.gz" >"$CC_TMP/initrd-sig.img"

# The development KBS (HTTPS on the gateway, sample evidence: no TEE here) holds the policy and
# the key, released only to the initdata of the pod that names them.
K=$CC_TMP/kbs
mkdir -p "$K"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=$E2E_GW" \
        -addext "subjectAltName=IP:$E2E_GW" -keyout "$K/tls.key" -out "$K/tls.crt" 2>/dev/null &&
        openssl genpkey -algorithm ed25519 -out "$K/admin.key" 2>/dev/null &&
        openssl pkey -in "$K/admin.key" -pubout -out "$K/admin.pub" 2>/dev/null || cc_fail "KBS keys"
KURL=https://$E2E_GW:$(snap_free_port "$E2E_GW")
printf '[http]\nlisten = "%s"\ntls_cert = "%s"\ntls_key = "%s"\n[store]\npath = "%s"\n[verifier.sample]\nenabled = true\n[admin]\npublic_key = "%s"\n' \
        "${KURL#https://}" "$K/tls.crt" "$K/tls.key" "$K/kbs.db" "$K/admin.pub" >"$K/kbs.toml"
cc_bg kbs "$BUILD/cc-kbs" serve --config "$K/kbs.toml"
cc_wait_for 10 grep -q "msg=listening" "$CC_TMP/kbs.log" || cc_fail "cc-kbs did not start: $(cat "$CC_TMP/kbs.log")"
kadmin() { "$BUILD/cc-kbs" --url "$KURL" --cacert "$K/tls.crt" --admin-key "$K/admin.key" "$@" >/dev/null; }
policy kbs:///default/gpg-public-key/sig >"$K/policy.json"
kadmin resource set default/security-policy/sig "$K/policy.json" &&
        kadmin resource set default/gpg-public-key/sig "$CC_TMP/trusted.gpg" || cc_fail "KBS resource set"

# The pod owners' initdata: the policy from the KBS (two pods, one the KBS's policy does not
# name), or the guest image's file.
initdata() { # OUT POLICY-URI [KBS-URL] [COMMENT]
        {
                printf 'version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"cdh.toml" = '"'''"'\n'
                [ -z "${3:-}" ] || printf '[kbc]\nname = "cc_kbc"\nurl = "%s"\nkbs_cert = """\n%s\n"""\n' "$3" "$(cat "$K/tls.crt")"
                printf '[image]\nimage_security_policy_uri = "%s"\n# %s\n' "$2" "${4:-}"
                printf "'''\n"
        } >"$1"
}
anno() { gzip -9n <"$1" | base64 -w0; }
initdata "$CC_TMP/initdata-file.toml" /etc/cc-agent/sig/policy.json
initdata "$CC_TMP/initdata-kbs.toml" kbs:///default/security-policy/sig "$KURL"
initdata "$CC_TMP/initdata-deny.toml" kbs:///default/security-policy/sig "$KURL" "not the pod the KBS knows"
ANNO=$(anno "$CC_TMP/initdata-file.toml")
ANNO_KBS=$(anno "$CC_TMP/initdata-kbs.toml")
ANNO_DENY=$(anno "$CC_TMP/initdata-deny.toml")
DIGEST_KBS=$("$BUILD/cc-kbc" initdata "$CC_TMP/initdata-kbs.toml" | sed -n 's/^digest //p')
[ -n "$DIGEST_KBS" ] || cc_fail "initdata digest"
printf 'version = 1\ndefault = "deny"\n[[rule]]\nresources = ["default/security-policy/*", "default/gpg-public-key/*"]\ntee = ["sample"]\ninit_data = ["%s"]\nallow = true\n' \
        "$DIGEST_KBS" >"$K/kbs-policy.toml"
kadmin policy set "$K/kbs-policy.toml" || cc_fail "KBS policy set"

E2E_NODE_EXTRA=$(e2e_runtime_toml kata-sig "$CC_TMP/configuration-qemu-sig.toml")
e2e_pause_image pause:1
e2e_installed_node
sed -e "s|^initrd = .*|initrd = \"$CC_TMP/initrd-sig.img\"|" \
        -e 's|^enable_annotations = .*|enable_annotations = ["cc_init_data"]|' "$E2E_CFG" >"$CC_TMP/configuration-qemu-sig.toml"
grep -q '^enable_annotations = \["cc_init_data"\]' "$CC_TMP/configuration-qemu-sig.toml" || cc_fail "enable_annotations"

cri_pull() { # IMAGE
        local ref
        ref=$(cri pull "$1" 2>"$CC_TMP/pull.err" | jget '["image_ref"]')
        case "$ref" in sha256:*) ;; *) cc_fail "CRI PullImage $1: $(cat "$CC_TMP/pull.err")" ;; esac
}
CMD="[\"/bin/sh\", \"-c\", \"cat /marker.txt; trap 'exit 0' TERM; while true; do busybox sleep 1; done\"]"
status_of() { cri inspect "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], "|", s.get("reason", ""), "|", s.get("message", ""))'; }
# start CNAME IMAGE in pod $P: the container id in C; returns StartContainer's status.
start() {
        C=$(e2e_create "$P" "$PNAME" "$1" "$2" "$CMD")
        [ -n "$C" ] || cc_fail "CreateContainer $1: $(cat "$CC_TMP/$1.create.err")"
        CTRS+=("$C")
        cri start "$C" >/dev/null 2>"$CC_TMP/$1.start.err"
}
# refused CNAME IMAGE WHY: StartContainer fails naming the image, scope, requirement and WHY.
refused() {
        local err st scope="scope $REG/sig, requirement 1 (signedBy)"
        if start "$1" "$2"; then
                fail "$1: StartContainer of $2 succeeded against the initdata's policy"
                return
        fi
        err=$(cat "$CC_TMP/$1.start.err")
        [[ "$err" == *"Image policy rejected: Denied by policy: image $2@sha256:"*", $scope: $3"* ]] &&
                ok "$1: StartContainer fails: ...${err#*in the guest: }" || fail "$1: StartContainer error: $err"
        st=$(status_of "$C")
        [[ "$st" == "CONTAINER_EXITED | StartError | "*"$scope: $3"* ]] &&
                ok "$1: ContainerStatus ${st%%|*}| StartError | (the same message)" || fail "$1: ContainerStatus: $st"
        grep -q "stdout F" "$CC_TMP/logs/$PNAME/$1.log" 2>/dev/null && fail "$1: the refused container ran"
}
CTRS=()
PODS=()

# pod NAME ANNOTATION: RunPodSandbox with that initdata; its id in P.
pod() {
        PNAME=$1
        E2E_POD_EXTRA="\"annotations\": {\"io.katacontainers.config.hypervisor.cc_init_data\": \"$2\"}"
        e2e_runp "$PNAME" kata-sig
        E2E_POD_EXTRA=""
        P=$E2E_POD
        [ -n "$P" ] || cc_fail "RunPodSandbox $PNAME: $(cat "$CC_TMP/$PNAME.runp.err")"
        PODS+=("$P")
}

# --- the pod whose policy and key are KBS resources ---------------------------------------------
cri_pull "$SIGNED"
cri_pull "$OTHER"
pod sig-pod "$ANNO_KBS"
ok "RunPodSandbox $P (initdata names the KBS and kbs:///default/security-policy/sig)"
[ "$(skopeo_verdict "$SIGNED")" = accept ] && ok "skopeo copy --policy on the host: $SIGNED accepted" || fail "skopeo refuses $SIGNED"
start c1 "$SIGNED" && ok "c1: StartContainer of the signed image $SIGNED" || fail "c1: StartContainer: $(cat "$CC_TMP/c1.start.err")"
cc_wait_for 30 grep -q "stdout F signed image" "$CC_TMP/logs/$PNAME/c1.log" &&
        ok "c1: CRI log shows the signed image's file" || fail "c1 log: $(cat "$CC_TMP/logs/$PNAME/c1.log" 2>&1)"
POD_IP=$(cri inspectp "$P" | jget '["status"]["network"]["ip"]' 2>/dev/null)
for r in security-policy gpg-public-key; do
        grep -q "method=GET path=/kbs/v0/resource/default/$r/sig status=200 .*remote=$POD_IP" "$CC_TMP/kbs.log" &&
                ok "KBS log: default/$r/sig released to the pod ($POD_IP)" || fail "KBS log lacks default/$r/sig for $POD_IP"
done
# The guest's log (the VM's console; this is the only pod running).
src=$(find "$CC_SHIM_RUN_DIR" -name console.log -exec grep -a -h -o "signature policy kbs:///default/security-policy/sig ([^)]*)\(; loaded ahead\)\?" {} + | head -1)
[[ "$src" == *"(a KBS resource, named by the pod's initdata)"* ]] && ok "the guest logged the source: $src" ||
        fail "no source line in the guest's console log: '$src'"

[ "$(skopeo_verdict "$OTHER")" = reject ] && ok "skopeo copy --policy on the host: $OTHER refused" || fail "skopeo accepts $OTHER"
refused c2 "$OTHER" "signature-1: unknown key: signed by key $FPR_BAD, which is not a trusted key"

# Re-tagged: an unsigned image pushed over the signed one's name and tag.
push unsigned sig/app:1
LAYER_UNSIGNED=$(top_layer sig/app:1)
cri_pull "$SIGNED"
[ "$(skopeo_verdict "$SIGNED")" = reject ] && ok "skopeo copy --policy on the host: the re-tagged $SIGNED refused" ||
        fail "skopeo accepts the re-tagged image"
refused c3 "$SIGNED" "no signature: A signature was required, but no signature exists"

# --- the re-tagged image, the policy a file of the guest image ----------------------------------
pod file-pod "$ANNO"
ok "RunPodSandbox $P (initdata names /etc/cc-agent/sig/policy.json)"
refused c5 "$SIGNED" "no signature: A signature was required, but no signature exists"

# --- a pod the KBS's policy does not name: the policy resource is refused -------------------------
pod deny-pod "$ANNO_DENY"
if start c6 "$SIGNED"; then
        fail "c6: StartContainer succeeded although the KBS refuses the policy"
else
        st=$(status_of "$C")
        [[ "$st" == "CONTAINER_EXITED | StartError | "*"policy kbs:///default/security-policy/sig: KBS $KURL: resource default/security-policy/sig: HTTP 401 PolicyDeny"* ]] &&
                ok "c6: ContainerStatus ${st%%|*}| StartError | ...${st#*in the guest: }" || fail "c6: $st / $(cat "$CC_TMP/c6.start.err")"
fi

for l in "$LAYER_OTHER" "$LAYER_UNSIGNED"; do
        grep -q "GET /v2/sig/[a-z]*/blobs/$l" "$CC_TMP/registry.log" && fail "layer $l of a refused image was fetched"
done
grep -q "GET /v2/sig/app/blobs/$LAYER_SIGNED" "$CC_TMP/registry.log" || fail "the registry log lacks the signed image's layer fetch"
ok "the refused images' own layers were never fetched (registry access log): nothing unpacked in the guest"
out=$(e2e_node_check "$SIGNED") && ok "the host holds no layer of the re-tagged image" || fail "node check: $out"

# --- the same guest image without initdata: no policy, the unsigned image runs ------------------
PNAME=plain-pod
e2e_runp "$PNAME" kata-sig
P=$E2E_POD
[ -n "$P" ] || cc_fail "RunPodSandbox without initdata: $(cat "$CC_TMP/$PNAME.runp.err")"
PODS+=("$P")
start c4 "$SIGNED" && ok "c4: without initdata, the unsigned image runs (no policy in the guest image)" ||
        fail "c4: StartContainer: $(cat "$CC_TMP/c4.start.err")"
cc_wait_for 30 grep -q "stdout F not signed" "$CC_TMP/logs/$PNAME/c4.log" &&
        ok "c4: CRI log shows the unsigned image's file" || fail "c4 log: $(cat "$CC_TMP/logs/$PNAME/c4.log" 2>&1)"

for c in "${CTRS[@]}"; do
        cri stop --timeout 10 "$c" >/dev/null 2>&1
        cri rm "$c" >/dev/null || fail "RemoveContainer $c"
done
for p in "${PODS[@]}"; do
        cri stopp "$p" >/dev/null 2>"$CC_TMP/stopp.err" || fail "StopPodSandbox $p: $(cat "$CC_TMP/stopp.err")"
        cri rmp "$p" >/dev/null || fail "RemovePodSandbox $p"
done
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod)" || fail "left: $left"
e2e_finish e2e-img-signatures
