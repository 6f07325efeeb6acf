#!/usr/bin/env bash
# Attestation and key brokering through containerd 1.6's CRI (issue 13): a kata pod whose
# initdata (the io.katacontainers.config.hypervisor.cc_init_data annotation, enabled for the
# handler by enable_annotations = ["cc_init_data"]) names the development KBS (cc-kbs, HTTPS on
# the pod network's gateway) and its certificate; an image encrypted by cc-image-encrypt in
# CoCo's key-provider format, its KEK only in the KBS. The node is set up by `cc-deploy install`
# (as e2e-encrypted.sh).
#   - the guest reads its initdata disk and checks it against the digest bound to the launch;
#     the pull helper attests (sample: no TEE here), fetches the KEK, decrypts, the container
#     prints the secret; the KBS saw auth, attest and resource from the pod's address;
#   - the KBS's policy releases the KEK only to that initdata's digest: a pod with other
#     initdata fails at StartContainer, ContainerStatus naming the KBS and its PolicyDeny;
#   - the KBS down: StartContainer fails with the KBS and the step named, within
#     create_container_timeout; the next pod works once the KBS is back;
#   - the initdata disk changed by the host after the shim took its digest (a VMM wrapper edits
#     it): RunPodSandbox fails with both digests named, in seconds;
#   - registry credentials from the KBS (cdh.toml [image] authenticated_registry_credentials_uri,
#     or Kata's kernel parameter agent.image_registry_auth= in a handler's kernel_params,
#     an auth.json resource released after attestation): a registry with htpasswd (bcrypt) Basic
#     auth, the pod's user known to the guest only (the node's containerd pulls the metadata as
#     another user, as a kubelet's pull secret would); with them the image runs, without them or
#     with a wrong password the container fails naming the registry and its 401; the pod's
#     password is in no file or log of the host but the KBS's store;
#   - no plaintext layer, no secret and no KEK under containerd's, the snapshotter's or the
#     shim's directories; nothing left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$SNAP_BIN" --built "$BUILD/cc-kbs" --built "$BUILD/cc-image-encrypt" --built "$BUILD/cc-kbc" \
        --tool openssl --tool htpasswd
e2e_bridge_precreate
e2e_registry "$E2E_GW"
# The private registry: htpasswd (bcrypt) Basic auth. `node` is what the host's containerd pulls
# the manifest and config with; the pod's user and password reach the guest from the KBS only.
RUSER=pod-$RANDOM RPASS=pod-pw-$$-$RANDOM$RANDOM NPASS=node-pw-$RANDOM
mkdir -p "$CC_TMP/registry2"
htpasswd -cbB "$CC_TMP/registry2/htpasswd" node "$NPASS" 2>/dev/null &&
        htpasswd -bB "$CC_TMP/registry2/htpasswd" "$RUSER" "$RPASS" 2>/dev/null || cc_fail "htpasswd"
REG2=$E2E_GW:$(snap_free_port "$E2E_GW")
cat >"$CC_TMP/registry2/config.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $CC_TMP/registry2/data
http:
  addr: $REG2
auth:
  htpasswd:
    realm: cc-e2e
    path: $CC_TMP/registry2/htpasswd
YML
cc_bg registry2 docker-registry serve "$CC_TMP/registry2/config.yml"
cc_wait_for 20 /usr/bin/python3 -c "import socket; socket.create_connection(('${REG2%:*}', ${REG2#*:}))" || cc_fail "registry2"
e2e_cni
KBS=$(realpath "$BUILD/cc-kbs")
D=$CC_TMP/kbs
mkdir -p "$D"

# The KBS: HTTPS with a certificate for the gateway's address, sample evidence accepted (no TEE
# here), a fixed port so that the initdata can name it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=$E2E_GW" \
        -addext "subjectAltName=IP:$E2E_GW" -keyout "$D/tls.key" -out "$D/tls.crt" 2>/dev/null || cc_fail "openssl req"
openssl genpkey -algorithm ed25519 -out "$D/admin.key" 2>/dev/null
openssl pkey -in "$D/admin.key" -pubout -out "$D/admin.pub" 2>/dev/null
PORT=$(snap_free_port "$E2E_GW")
URL=https://$E2E_GW:$PORT
cat >"$D/kbs.toml" <<TOML
[http]
listen = "$E2E_GW:$PORT"
tls_cert = "$D/tls.crt"
tls_key = "$D/tls.key"
[store]
path = "$D/kbs.db"
[verifier.sample]
enabled = true
[admin]
public_key = "$D/admin.pub"
TOML
kbs_start() {
        cc_bg kbs "$KBS" serve --config "$D/kbs.toml"
        cc_wait_for 10 grep -q "msg=listening" "$CC_TMP/kbs.log" || cc_fail "cc-kbs did not start: $(cat "$CC_TMP/kbs.log")"
}
kbs_start

# The pod owner's initdata: cdh.toml names the KBS and its certificate.
initdata() { # OUT EXTRA-LINE
        {
                printf 'version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"cdh.toml" = '"'''"'\n'
                printf '[kbc]\nname = "cc_kbc"\nurl = "%s"\nkbs_cert = """\n%s\n"""\n' "$URL" "$(cat "$D/tls.crt")"
                printf '%s\n' "$2"
                printf "'''\n"
        } >"$1"
}
initdata "$D/initdata.toml" "# pod A"
initdata "$D/initdata-other.toml" "# pod B"
DIGEST=$("$BUILD/cc-kbc" initdata "$D/initdata.toml" | sed -n 's/^digest //p')
[ -n "$DIGEST" ] || cc_fail "initdata digest"
anno() { gzip -9n <"$1" | base64 -w0; }
ANNO_A=$(anno "$D/initdata.toml")
ANNO_B=$(anno "$D/initdata-other.toml")

admin() { "$KBS" --url "$URL" --cacert "$D/tls.crt" --admin-key "$D/admin.key" "$@"; }
cat >"$D/policy.toml" <<TOML
version = 1
default = "deny"
[[rule]]
resources = ["default/image-kek/*"]
tee = ["sample"]
init_data = ["$DIGEST"]
allow = true
TOML
admin policy set "$D/policy.toml" >/dev/null || cc_fail "policy set"

# The image: busybox plus a secret with a marker, every layer encrypted in CoCo's format; the
# KEK goes into the KBS in the same step.
MARK="cc-e2e-kbs-secret-$$-$RANDOM"
snap_busybox_image "$CC_TMP/app"
b=$CC_TMP/bundle
umoci unpack --image "$CC_TMP/app:latest" "$b" >/dev/null
echo "$MARK" >"$b/rootfs/secret.txt"
umoci repack --image "$CC_TMP/app:latest" "$b" >/dev/null
rm -rf "$b"
"$BUILD/cc-image-encrypt" --kek "$D/kek" --new-kek --kid kbs:///default/image-kek/e2e --kbs "$URL" \
        --cacert "$D/tls.crt" --admin-key "$D/admin.key" "oci:$CC_TMP/app:latest" "oci:$CC_TMP/enc:v1" \
        >"$CC_TMP/enc.log" 2>&1 || { cat "$CC_TMP/enc.log"; cc_fail "cc-image-encrypt"; }
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$CC_TMP/enc:v1" "docker://$REG/kbs/app:1" \
        >"$CC_TMP/skopeo.log" 2>&1 || { cat "$CC_TMP/skopeo.log"; cc_fail "skopeo copy"; }
IMAGE=$REG/kbs/app:1
n_enc=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | grep -o '+encrypted' | wc -l)
[ "$n_enc" -ge 2 ] && ok "cc-image-encrypt: $n_enc layers encrypted, KEK stored in the KBS only" || cc_fail "encrypted layers: $n_enc"

# The private image (busybox and its own marker) in the authenticated registry; the pod's
# auth.json in the KBS, and one with a wrong password.
MARK2="cc-e2e-private-$$-$RANDOM"
umoci unpack --image "$CC_TMP/app:latest" "$CC_TMP/bundle2" >/dev/null
echo "$MARK2" >"$CC_TMP/bundle2/rootfs/secret.txt"
umoci repack --image "$CC_TMP/app:priv" "$CC_TMP/bundle2" >/dev/null
rm -rf "$CC_TMP/bundle2"
skopeo copy -q --insecure-policy --dest-tls-verify=false --dest-creds "node:$NPASS" "oci:$CC_TMP/app:priv" \
        "docker://$REG2/private/app:1" >"$CC_TMP/skopeo2.log" 2>&1 || { cat "$CC_TMP/skopeo2.log"; cc_fail "skopeo copy to $REG2"; }
authjson() { printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG2" "$(printf %s "$1" | base64 -w0)"; }
authjson "$RUSER:$RPASS" >"$D/auth.json"
authjson "$RUSER:not-$RPASS" >"$D/auth-wrong.json"
admin resource set default/credential/reg "$D/auth.json" >/dev/null &&
        admin resource set default/credential/wrong "$D/auth-wrong.json" >/dev/null || cc_fail "resource set"
REGLINE='[image]
authenticated_registry_credentials_uri = "kbs:///default/credential'
initdata "$D/initdata-reg.toml" "$REGLINE/reg\""
initdata "$D/initdata-wrong.toml" "$REGLINE/wrong\""
ANNO_REG=$(anno "$D/initdata-reg.toml")
ANNO_WRONG=$(anno "$D/initdata-wrong.toml")
DIGEST_REG=$("$BUILD/cc-kbc" initdata "$D/initdata-reg.toml" | sed -n 's/^digest //p')
DIGEST_WRONG=$("$BUILD/cc-kbc" initdata "$D/initdata-wrong.toml" | sed -n 's/^digest //p')
cat >>"$D/policy.toml" <<TOML
[[rule]]
resources = ["default/credential/*"]
tee = ["sample"]
init_data = ["$DIGEST_REG", "$DIGEST_WRONG", "$DIGEST"]
allow = true
TOML
admin policy set "$D/policy.toml" >/dev/null || cc_fail "policy set (credentials)"

# Handlers: kata-attest (the installed configuration, cc_init_data enabled) and kata-tamper (the
# same with a VMM wrapper that changes the initdata disk before QEMU starts).
cat >"$CC_TMP/qemu-tamper" <<SH
#!/bin/sh
for a in "\$@"; do
        case "\$a" in file=*initdata.img,*) d=\${a#file=}; /usr/bin/python3 $(realpath test/tools/initdata-tamper.py) "\${d%%,*}" || exit 1 ;; esac
done
exec $(command -v qemu-system-x86_64) "\$@"
SH
chmod +x "$CC_TMP/qemu-tamper"
E2E_NODE_EXTRA="
  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"$REG2\"]
    endpoint = [\"http://$REG2\"]
  [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"$REG2\".auth]
    username = \"node\"
    password = \"$NPASS\""
for h in attest tamper regparam; do
        E2E_NODE_EXTRA+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$h]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.config.hypervisor.cc_init_data\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-$h.options]
        ConfigPath = \"$CC_TMP/configuration-qemu-$h.toml\""
done
e2e_pause_image pause:1
e2e_installed_node
sed -e 's|^enable_annotations = .*|enable_annotations = ["cc_init_data"]|' \
        -e 's|^create_container_timeout = .*|create_container_timeout = 60|' \
        -e "s|agent.image_insecure=$REG|agent.image_insecure=$REG,$REG2|" "$E2E_CFG" >"$CC_TMP/configuration-qemu-attest.toml"
grep -q '^enable_annotations = \["cc_init_data"\]' "$CC_TMP/configuration-qemu-attest.toml" || cc_fail "enable_annotations"
sed -e "s|^path = .*|path = \"$CC_TMP/qemu-tamper\"|" -e 's|^valid_hypervisor_paths = .*||' \
        "$CC_TMP/configuration-qemu-attest.toml" >"$CC_TMP/configuration-qemu-tamper.toml"
# kata-regparam: the handler's kernel command line names the credentials, Kata's way.
sed -e "s|agent.image_insecure=$REG,$REG2|& agent.image_registry_auth=kbs:///default/credential/reg|" \
        "$CC_TMP/configuration-qemu-attest.toml" >"$CC_TMP/configuration-qemu-regparam.toml"
grep -q 'agent.image_registry_auth=kbs:///default/credential/reg' "$CC_TMP/configuration-qemu-regparam.toml" ||
        cc_fail "kernel_params of kata-regparam"

ref=$(cri pull "$IMAGE" 2>"$CC_TMP/pull.err" | jget '["image_ref"]')
case "$ref" in sha256:*) ok "CRI PullImage of the encrypted image (metadata only)" ;; *) cc_fail "PullImage: $(cat "$CC_TMP/pull.err")" ;; esac

CMD="[\"/bin/sh\", \"-c\", \"cat /secret.txt; trap 'exit 0' TERM; while true; do busybox sleep 1; done\"]"
# kbs_pod POD HANDLER ANNOTATION CNAME: RunPodSandbox with the initdata annotation, then
# CreateContainer and StartContainer; ids in P and C, StartContainer's status returned.
kbs_pod() {
        E2E_POD_EXTRA="\"annotations\": {\"io.katacontainers.config.hypervisor.cc_init_data\": \"$3\"}"
        e2e_runp "$1" "$2"
        E2E_POD_EXTRA=""
        P=$E2E_POD C=""
        [ -n "$P" ] || return 2
        C=$(e2e_create "$P" "$1" "$4" "$IMAGE" "$CMD")
        [ -n "$C" ] || cc_fail "CreateContainer $4: $(cat "$CC_TMP/$4.create.err")"
        cri start "$C" >/dev/null 2>"$CC_TMP/$4.start.err"
}
status_of() { cri inspect "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], "|", s.get("reason", ""), "|", s.get("message", ""))'; }
PODS=()
CTRS=()

# --- 1. the pod whose initdata the policy names: attested, key released, image decrypted -------
t0=$(date +%s%N)
if kbs_pod attest-pod kata-attest "$ANNO_A" c1; then
        ok "StartContainer: the guest attested to the KBS, got the KEK, pulled and decrypted ($((($(date +%s%N) - t0) / 1000000)) ms from RunPodSandbox)"
else
        fail "StartContainer with the KBS: $(cat "$CC_TMP/c1.start.err" "$CC_TMP/attest-pod.runp.err" 2>/dev/null)"
fi
PODS+=("$P") CTRS+=("$C")
cc_wait_for 30 grep -q "stdout F $MARK" "$CC_TMP/logs/attest-pod/c1.log" &&
        ok "CRI log: the decrypted file's content" || fail "log: $(cat "$CC_TMP/logs/attest-pod/c1.log" 2>&1)"
POD_IP=$(cri inspectp "$P" | jget '["status"]["network"]["ip"]' 2>/dev/null)
for step in "POST path=/kbs/v0/auth status=200" "POST path=/kbs/v0/attest status=200" \
        "GET path=/kbs/v0/resource/default/image-kek/e2e status=200"; do
        grep -q "method=$step .*remote=$POD_IP" "$CC_TMP/kbs.log" && ok "KBS log: $step from the pod ($POD_IP)" ||
                fail "KBS log lacks '$step' from $POD_IP: $(grep msg=request "$CC_TMP/kbs.log" | tail -n 5)"
done

# --- 2. other initdata: the KBS's policy refuses, the container says why -------------------------
if kbs_pod other-pod kata-attest "$ANNO_B" c2; then
        fail "StartContainer with initdata the policy does not name succeeded"
else
        st=$(status_of "$C")
        case "$st" in
        *"KBS $URL: resource default/image-kek/e2e: HTTP 401 PolicyDeny: Access denied by policy"*)
                ok "other initdata: ContainerStatus ${st%%|*}| ...${st#*in the guest: }" ;;
        *) fail "other initdata: $st / $(cat "$CC_TMP/c2.start.err")" ;;
        esac
fi
PODS+=("$P") CTRS+=("$C")
grep -q "stdout F $MARK" "$CC_TMP/logs/other-pod/c2.log" 2>/dev/null && fail "c2 printed the secret"

# --- 3. the KBS down, then back ---------------------------------------------------------------------
cc_stop_pid "$PID_kbs"
t0=$(date +%s)
if kbs_pod down-pod kata-attest "$ANNO_A" c3; then
        fail "StartContainer with the KBS down succeeded"
else
        took=$(($(date +%s) - t0))
        err=$(cat "$CC_TMP/c3.start.err")
        [[ "$err" == *"KBS $URL: auth: POST auth: "* ]] && [ "$took" -lt 70 ] &&
                ok "KBS down: StartContainer fails after $took s: ...${err#*in the guest: }" || fail "KBS down ($took s): $err"
fi
PODS+=("$P") CTRS+=("$C")
mv "$CC_TMP/kbs.log" "$CC_TMP/kbs-1.log"
kbs_start
if kbs_pod back-pod kata-attest "$ANNO_A" c4; then
        ok "the KBS back: the next pod runs"
else
        fail "KBS back: $(cat "$CC_TMP/c4.start.err")"
fi
PODS+=("$P") CTRS+=("$C")

# --- 4. initdata changed by the host after the digest was bound ---------------------------------
t0=$(date +%s%N)
E2E_POD_EXTRA="\"annotations\": {\"io.katacontainers.config.hypervisor.cc_init_data\": \"$ANNO_A\"}"
e2e_runp tamper-pod kata-tamper
E2E_POD_EXTRA=""
took=$((($(date +%s%N) - t0) / 1000000))
err=$(tr -d '\r' <"$CC_TMP/tamper-pod.runp.err")
if [ -n "$E2E_POD" ]; then
        fail "a pod with tampered initdata started"
        PODS+=("$E2E_POD")
elif [[ "$err" == *"initdata was changed after launch: the disk's digest is sha384:"*", the launch bound sha384:$DIGEST"* ]]; then
        ok "tampered initdata: RunPodSandbox failed after $took ms: $(grep -o 'initdata was changed.\{0,220\}' <<<"$err" | head -n1)"
else
        fail "tampered initdata: $err"
fi

# --- 5. registry credentials from the KBS ------------------------------------------------------------
ref=$(cri pull "$REG2/private/app:1" 2>"$CC_TMP/pull2.err" | jget '["image_ref"]')
case "$ref" in sha256:*) ok "CRI PullImage from the private registry (metadata, as the node's user)" ;; *) cc_fail "PullImage $REG2: $(cat "$CC_TMP/pull2.err")" ;; esac
IMAGE_ENC=$IMAGE IMAGE=$REG2/private/app:1
# private_pod POD HANDLER ANNOTATION CONTAINER WHAT: the private image runs and prints its marker.
private_pod() {
        if kbs_pod "$1" "$2" "$3" "$4"; then
                ok "StartContainer: $5"
        else
                fail "StartContainer ($5): $(cat "$CC_TMP/$4.start.err" "$CC_TMP/$1.runp.err" 2>/dev/null)"
        fi
        PODS+=("$P") CTRS+=("$C")
        cc_wait_for 30 grep -q "stdout F $MARK2" "$CC_TMP/logs/$1/$4.log" &&
                ok "CRI log ($1): the private image's marker" || fail "log: $(cat "$CC_TMP/logs/$1/$4.log" 2>&1)"
}
private_pod reg-pod kata-attest "$ANNO_REG" c6 "the guest pulled from $REG2 with the auth.json the KBS released"
grep -q "GET path=/kbs/v0/resource/default/credential/reg status=200" "$CC_TMP/kbs.log" &&
        ok "KBS log: the credentials resource released" || fail "KBS log lacks the credentials GET"
# The same credentials named by Kata's kernel parameter agent.image_registry_auth= (initdata A
# names the KBS only).
private_pod regparam-pod kata-regparam "$ANNO_A" c9 \
        "agent.image_registry_auth= on the kernel command line named the auth.json the KBS released"
# Without credentials (initdata A names none) and with a wrong password.
for t in "nocreds-pod|$ANNO_A|c7|HTTP 401, it requires credentials \\(Basic\\) and the pull has none for this registry" \
        "wrong-pod|$ANNO_WRONG|c8|HTTP 401 on GET http://$REG2/v2/private/app/manifests/sha256:[0-9a-f]{64}: UNAUTHORIZED: authentication required \\(the credentials were refused\\)"; do
        IFS='|' read -r pod anno cn want <<<"$t"
        if kbs_pod "$pod" kata-attest "$anno" "$cn"; then
                fail "$pod: StartContainer succeeded"
        else
                st=$(status_of "$C")
                grep -qE "registry $REG2: $want" <<<"$st" && ok "$pod: ContainerStatus ...registry ${st#*registry }" ||
                        fail "$pod: $st / $(cat "$CC_TMP/$cn.start.err")"
        fi
        PODS+=("$P") CTRS+=("$C")
done
IMAGE=$IMAGE_ENC
hits=$(grep -rlF -e "$RPASS" -e "$(printf %s "$RUSER:$RPASS" | base64 -w0)" "$CTRD_ROOT" "$SNAP_ROOT" "$CTRD_DIR/state" \
        "$CC_SHIM_RUN_DIR" "$E2E_NODE" "$CC_TMP"/*.log "$CC_TMP/logs" 2>/dev/null | grep -v "/kbs\(-1\)\?.log$" | head -3)
[ -z "$hits" ] && ok "the pod's registry password is in no file or log of containerd, the snapshotter, the shim or the node" ||
        fail "the pod's registry password on the host: $hits"

# --- the host holds nothing decrypted, no KEK --------------------------------------------------------
out=$(e2e_node_check "$IMAGE") && ok "the host holds no layer of the encrypted image:" || fail "node check:"
echo "$out"
hits=$(grep -rlF "$MARK" "$CTRD_ROOT" "$SNAP_ROOT" "$CTRD_DIR/state" "$CC_SHIM_RUN_DIR" 2>/dev/null | head -3)
[ -z "$hits" ] && ok "the secret is nowhere under containerd's, the snapshotter's or the shim's directories" ||
        fail "decrypted data on the host: $hits"
kek_hex=$(od -An -tx1 "$D/kek" | tr -d ' \n')
khits=$(find "$CTRD_ROOT" "$SNAP_ROOT" "$CTRD_DIR/state" "$CC_SHIM_RUN_DIR" -type f -size -10M 2>/dev/null |
        while read -r f; do od -An -tx1 "$f" | tr -d ' \n' | grep -q "$kek_hex" && echo "$f"; done | head -3)
[ -z "$khits" ] && ok "the KEK's bytes are in no file under those directories" || fail "KEK on the host: $khits"

for c in "${CTRS[@]}"; do [ -n "$c" ] && { cri stop --timeout 10 "$c" >/dev/null 2>&1; cri rm "$c" >/dev/null || fail "RemoveContainer $c"; }; done
for p in "${PODS[@]}"; do
        [ -n "$p" ] || continue
        cri stopp "$p" >/dev/null 2>"$CC_TMP/stopp.err" || fail "StopPodSandbox $p: $(cat "$CC_TMP/stopp.err")"
        cri rmp "$p" >/dev/null || fail "RemovePodSandbox $p"
done
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, socket, run file, mount, netns, bundle, CRI pod)" || fail "left: $left"
e2e_finish e2e-attest
