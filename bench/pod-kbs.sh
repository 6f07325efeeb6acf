#!/usr/bin/env bash
# Pod start with a KBS-keyed encrypted image against the same image keyed by offline_fs, side by
# side in one run (issue 13's performance target: at most +100 ms under TCG).
#
# One image, encrypted by cc-image-encrypt in CoCo's key-provider format (kid
# kbs:///default/image-kek/bench). Two handlers on one node set up by `cc-deploy install`:
#   kata-kbs  the pod's initdata names cc-kbs (HTTPS on the pod network's gateway): the pull
#             helper attests (sample), fetches the KEK, unwraps
#   kata-late the same as kata-kbs with the early attestation off (an initrd with
#             /etc/cc-agent/image.json {"kbs_attest_early": false}): the helper attests at the
#             first key request, as before the early attestation
#   kata-ofs  the guest image carries the KEK in offline_fs's keys file (an initrd with
#             /etc/cc-agent/image.json {"keys_json": ...}): no attestation
# N pods each, alternating; a pod is RunPodSandbox + CreateContainer + StartContainer (the
# container running), timed around the CRI calls, and the guest pull as the shim logs it (its
# guest_pull_ms= field). For kata-kbs the guest's split (auth, attest, resource, unwrap) is read
# from the pull helper's line on the guest console; with the early attestation, auth and attest
# are 0 there and early_attest_ms is what the attestation took ahead of the key request.
# Usage: BUILD=build [POD_N=5] [BENCH_TRACE=1] [BENCH_CONSOLES=DIR] bash bench/pod-kbs.sh   (root; results: bench/README.md)
set -uo pipefail
cd "$(dirname "$0")/.."
. test/integration/e2e-lib.sh
. bench/logfmt.sh
trap e2e_cleanup EXIT
N=${POD_N:-5}
e2e_start --built "$SNAP_BIN" --built "$BUILD/cc-kbs" --built "$BUILD/cc-image-encrypt" --built "$BUILD/cc-kbc" \
        --tool openssl
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni
KBS=$(realpath "$BUILD/cc-kbs")
D=$CC_TMP/kbs
mkdir -p "$D"
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
cc_bg kbs "$KBS" serve --config "$D/kbs.toml"
cc_wait_for 10 grep -q "msg=listening" "$CC_TMP/kbs.log" || cc_fail "cc-kbs did not start"
printf 'version = 1\n[[rule]]\nresources = ["default/image-kek/*"]\ntee = ["sample"]\nallow = true\n' >"$D/policy.toml"
"$KBS" --url "$URL" --cacert "$D/tls.crt" --admin-key "$D/admin.key" policy set "$D/policy.toml" >/dev/null ||
        cc_fail "policy set"
{
        printf 'version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"cdh.toml" = '"'''"'\n'
        printf '[kbc]\nname = "cc_kbc"\nurl = "%s"\nkbs_cert = """\n%s\n"""\n' "$URL" "$(cat "$D/tls.crt")"
        printf "'''\n"
} >"$D/initdata.toml"
ANNO=$(gzip -9n <"$D/initdata.toml" | base64 -w0)

snap_busybox_image "$CC_TMP/app"
"$BUILD/cc-image-encrypt" --kek "$D/kek" --new-kek --kid kbs:///default/image-kek/bench --kbs "$URL" \
        --cacert "$D/tls.crt" --admin-key "$D/admin.key" "oci:$CC_TMP/app:latest" "oci:$CC_TMP/enc:v1" \
        >"$CC_TMP/enc.log" 2>&1 || { cat "$CC_TMP/enc.log"; cc_fail "cc-image-encrypt"; }
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$CC_TMP/enc:v1" "docker://$REG/kbs/app:1" \
        >/dev/null 2>&1 || cc_fail "skopeo copy"
IMAGE=$REG/kbs/app:1

# The offline_fs guest image: the same KEK in the keys file (CoCo's offline_fs format).
x=$CC_TMP/initrd-extra
mkdir -p "$x/etc/cc-agent"
printf '{"default/image-kek/bench": "%s"}\n' "$(base64 -w0 <"$D/kek")" >"$x/etc/cc-agent/keys.json"
chmod 600 "$x/etc/cc-agent/keys.json"
echo '{"keys_json": "/etc/cc-agent/keys.json"}' >"$x/etc/cc-agent/image.json"
(cd "$x" && find etc | cpio -o -H newc --quiet | gzip -9) >"$x.cpio.gz" || cc_fail "cpio"
cat build/guest/initrd.img "$x.cpio.gz" >"$CC_TMP/initrd-ofs.img"
y=$CC_TMP/initrd-late
mkdir -p "$y/etc/cc-agent"
echo '{"kbs_attest_early": false}' >"$y/etc/cc-agent/image.json"
(cd "$y" && find etc | cpio -o -H newc --quiet | gzip -9) >"$y.cpio.gz" || cc_fail "cpio"
cat build/guest/initrd.img "$y.cpio.gz" >"$CC_TMP/initrd-late.img"

E2E_NODE_EXTRA=""
for h in kbs late ofs; do
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
sed -e 's|^enable_annotations = .*|enable_annotations = ["cc_init_data"]|' "$E2E_CFG" >"$CC_TMP/configuration-qemu-kbs.toml"
sed -e "s|^initrd = .*|initrd = \"$CC_TMP/initrd-ofs.img\"|" "$E2E_CFG" >"$CC_TMP/configuration-qemu-ofs.toml"
sed -e "s|^initrd = .*|initrd = \"$CC_TMP/initrd-late.img\"|" "$CC_TMP/configuration-qemu-kbs.toml" >"$CC_TMP/configuration-qemu-late.toml"
cri pull "$IMAGE" >/dev/null 2>&1 || cc_fail "PullImage"

CMD='["/bin/sh", "-c", "trap \"exit 0\" TERM; while true; do busybox sleep 1; done"]'
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# one MODE I: a pod, timed; appends "total pull runp create start ready [auth attest resource decrypt early tls]" to $CC_TMP/MODE.times
one() {
        local mode=$1 i=$2 t0 t1 t2 t3 p c pull ready split=""
        E2E_POD_EXTRA=""
        [ "$mode" != ofs ] && E2E_POD_EXTRA="\"annotations\": {\"io.katacontainers.config.hypervisor.cc_init_data\": \"$ANNO\"}"
        t0=$(now_ms)
        e2e_runp "p-$mode-$i" "kata-$mode"
        t1=$(now_ms)
        p=$E2E_POD
        [ -n "$p" ] || cc_fail "RunPodSandbox $mode: $(cat "$CC_TMP/p-$mode-$i.runp.err")"
        c=$(e2e_create "$p" "p-$mode-$i" "c-$mode-$i" "$IMAGE" "$CMD")
        t2=$(now_ms)
        cri start "$c" >/dev/null 2>"$CC_TMP/start.err" || cc_fail "StartContainer $mode: $(cat "$CC_TMP/start.err")"
        t3=$(now_ms)
        pull=$(logfmt_field "$CC_TMP/containerd.log" guest_pull_ms "container=$c")
        ready=$(logfmt_field "$CC_TMP/containerd.log" agent_ready_ms "sandbox=$p")
        if [ "$mode" != ofs ]; then
                split=$(grep -h "from the KBS" "$CC_SHIM_RUN_DIR"/*/console.log 2>/dev/null | tail -n1 |
                        sed -n 's/.*auth_ms=\([0-9.]*\) attest_ms=\([0-9.]*\) resource_ms=\([0-9.]*\) decrypt_ms=\([0-9.]*\).*early_attest_ms=\([0-9.]*\).*/\1 \2 \3 \4 \5/p')
                # The TLS handshake inside auth, wherever the auth ran (early or in the pull).
                tls=$(grep -ah "tls_ms=" "$CC_SHIM_RUN_DIR"/*/console.log 2>/dev/null |
                        sed -n 's/.*tls_ms=\([0-9.]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
                [ -n "$split" ] && split="$split $tls"
        fi
        echo "$((t3 - t0)) ${pull:-0} $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) ${ready:-0} $split" >>"$CC_TMP/$mode.times"
        # When the guest attested against when the pull asked for the key (BENCH_TRACE=1).
        [ -n "${BENCH_TRACE:-}" ] && grep -ahE "sandbox created|libraries: |attested ahead|from the KBS|spare helper: pulling|pulled image" \
                "$CC_SHIM_RUN_DIR"/*/console.log 2>/dev/null | sed -n "s/^time=\"[0-9-]*T\([0-9:.]*\)Z\" level=[a-z]* msg=\"\(.\{0,120\}\).*/  $mode $i \1 \2/p" >>"$CC_TMP/trace"
        # The whole guest console of each pod, to read the boot and the helper's timeline.
        [ -n "${BENCH_CONSOLES:-}" ] && mkdir -p "$BENCH_CONSOLES" &&
                cat "$CC_SHIM_RUN_DIR"/*/console.log >"$BENCH_CONSOLES/$mode-$i.log" 2>/dev/null
        cri stop --timeout 5 "$c" >/dev/null 2>&1
        cri rm "$c" >/dev/null 2>&1
        cri stopp "$p" >/dev/null 2>&1
        cri rmp "$p" >/dev/null 2>&1
}
one kbs 0 && one late 0 && one ofs 0 && rm -f "$CC_TMP"/*.times # warm-up, not counted
for i in $(seq 1 "$N"); do one kbs "$i"; one late "$i"; one ofs "$i"; done
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$CC_TMP/$1.times" | med; }
kt=$(col kbs 1) ot=$(col ofs 1) kp=$(col kbs 2) op=$(col ofs 2) lt=$(col late 1) lp=$(col late 2)
echo "pod start, median of $N (RunPodSandbox + CreateContainer + StartContainer), $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg):"
echo "  kata-kbs (attest + KEK from cc-kbs): ${kt} ms, guest pull ${kp} ms"
echo "  kata-late (the same, attesting at the first key request): ${lt} ms, guest pull ${lp} ms"
echo "  kata-ofs (KEK in the guest image):   ${ot} ms, guest pull ${op} ms"
diffs() { echo "$(awk -v a="$1" -v b="$ot" 'BEGIN{printf "%+d ms (%.3fx)", a-b, a/b}') in pod start, $(awk -v a="$2" -v b="$op" 'BEGIN{printf "%+d ms", a-b}') in the guest pull"; }
echo "  kata-kbs - kata-ofs: $(diffs "$kt" "$kp")"
echo "  kata-late - kata-ofs: $(diffs "$lt" "$lp")"
for m in kbs late; do
        [ "$(awk 'NF>=11' "$CC_TMP/$m.times" 2>/dev/null | wc -l)" -gt 0 ] &&
                echo "  kata-$m guest split (median): auth $(col $m 7) ms, attest $(col $m 8) ms, resource $(col $m 9) ms, unwrap $(col $m 10) ms, early attestation $(col $m 11) ms (TLS handshake in auth $(col $m 12) ms)"
done
for m in kbs late ofs; do
        echo "  kata-$m CRI calls (median): RunPodSandbox $(col $m 3) ms, CreateContainer $(col $m 4) ms, StartContainer $(col $m 5) ms (agent ready $(col $m 6) ms after the VMM started)"
done
echo "  raw (total pull runp create start ready [auth attest resource decrypt early tls]):"
for m in kbs late ofs; do sed "s/^/    $m /" "$CC_TMP/$m.times"; done
[ -s "$CC_TMP/trace" ] && { echo "  guest console (UTC time, message):"; cat "$CC_TMP/trace"; }
