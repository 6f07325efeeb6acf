#!/usr/bin/env bash
# Pod annotations through containerd 1.6's CRI, as a pod author uses them (issue 19). Every
# runtime entry here forwards io.katacontainers.* (pod_annotations), so what is tested is the
# shim's own rule, not containerd's filter: an annotation is honoured only where the handler's
# runtime configuration enables it (enable_annotations, valid_*_paths, valid_config_paths).
#   1. TEE downgrade: handler kata-qemu-tdx whose configuration allows the pod's file, the pod
#      naming configuration-qemu.toml (no TEE): refused by name (tdx -> none) before any host
#      capability check; with the shipped (empty) valid_config_paths refused by that key; a TDX
#      file it allows is taken (and then stops at the host check, this host has no TDX).
#   2. An arbitrary configuration whose `path` is a script: refused, the script never runs.
#   3. A root-only secret file: refused unopened by the shipped rule; where a handler allows its
#      directory, refused as "not a valid runtime configuration": its content appears in neither
#      the CRI error nor containerd's log (which holds the shim's log).
#   4. A FIFO: RunPodSandbox answers with the error instead of blocking (the file is never
#      written to); the time is printed, not asserted.
#   5. Hypervisor annotations enabled (default_vcpus, default_memory, kernel_params): the pod is
#      READY, QEMU's command line has -smp 2, -m 512M and the parameter, the shim logged each,
#      and a container in the pod sees 2 CPUs, the parameter in /proc/cmdline and more memory
#      than the configured 384 MiB.
#      Out of range, and a path annotation with an empty valid list: refused with the limit/key.
#   6. Not enabled (the shipped configuration): refused, naming enable_annotations; an annotation
#      this runtime does not implement: refused as such.
# After each refusal: the error the pod author sees, and nothing left (VM, shim, socket, run
# file, netns, bundle, pod).
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start

# --- configurations ------------------------------------------------------------------------------
CFGS=$CC_TMP/cfg
mkdir -p "$CFGS" "$CC_TMP/secret"
cp "$E2E_CFG" "$CFGS/configuration-qemu.toml"
# The TDX handler's file as shipped (firmware and kernel paths do not exist here; the TEE rule
# comes before any check of them), once with valid_config_paths naming $CFGS.
TDX_SHIPPED=$CC_TMP/configuration-qemu-tdx.toml
cp configs/runtime/configuration-qemu-tdx.toml "$TDX_SHIPPED"
TDX_OPEN=$CC_TMP/configuration-qemu-tdx-open.toml
sed "s|^valid_config_paths = .*|valid_config_paths = [\"$CFGS/*.toml\"]|" "$TDX_SHIPPED" >"$TDX_OPEN"
cp "$TDX_SHIPPED" "$CFGS/configuration-qemu-tdx.toml"
# A handler that lets pods choose files in $CC_TMP/secret (where an operator went too far).
OPEN=$CC_TMP/configuration-qemu-open.toml
sed "s|^valid_config_paths = .*|valid_config_paths = [\"$CC_TMP/secret/*\"]|" "$E2E_CFG" >"$OPEN"
# A handler enabling the size and kernel parameter annotations (at most 2 vCPUs, 512 MiB).
ANNO=$CC_TMP/configuration-qemu-anno.toml
sed -e 's|^enable_annotations = .*|enable_annotations = ["default_vcpus", "default_memory", "kernel_params", "kernel"]|' \
        -e 's|^default_maxvcpus = .*|default_maxvcpus = 2|' \
        -e 's|^default_maxmemory = .*|default_maxmemory = 512|' "$E2E_CFG" >"$ANNO"
grep -q "^valid_config_paths = \[\"$CFGS/\*.toml\"\]$" "$TDX_OPEN" &&
        grep -q "^valid_config_paths = \[\"$CC_TMP/secret/\*\"\]$" "$OPEN" &&
        grep -q '^enable_annotations = \["default_vcpus"' "$ANNO" && grep -q '^default_maxvcpus = 2$' "$ANNO" &&
        grep -q '^default_maxmemory = 512$' "$ANNO" || cc_fail "could not edit the configurations"

# --- cc-runtime check: what each handler honours ---------------------------------------------------
honours() { # FILE WANT: the annotations line cc-runtime prints under FILE's handler
        local got
        got=$("$BUILD/cc-runtime" check --config "$1" 2>/dev/null | sed -n 's/^      annotations: //p')
        [ "$got" = "$2" ] && ok "cc-runtime check: $(basename "$1") honours: $got" ||
                fail "cc-runtime check: $(basename "$1") honours '$got', want '$2'"
}
honours "$E2E_CFG" none
honours "$TDX_SHIPPED" none
honours "$ANNO" "default_vcpus (1-2), default_memory (64-512 MiB), kernel_params; enabled but refused: kernel (valid_kernel_paths is empty)"
honours "$OPEN" "config_path ($CC_TMP/secret/*)"

# --- containerd ----------------------------------------------------------------------------------
e2e_busybox_registry
e2e_cni
extra=""
for hv in "kata-qemu-tdx=$TDX_SHIPPED" "kata-qemu-tdx-open=$TDX_OPEN" "kata-open=$OPEN" "kata-anno=$ANNO"; do
        h=${hv%%=*}
        extra+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$h]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.*\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$h.options]
        ConfigPath = \"${hv#*=}\""
done
E2E_EXTRA_RUNTIMES=$extra
e2e_containerd

# refused NAME HANDLER ANNOTATIONS_JSON MESSAGE...: RunPodSandbox fails, the CRI error holds every
# MESSAGE, and nothing is left.
refused() {
        local name=$1 handler=$2 annos=$3 m t0 t1 err left
        shift 3
        t0=$(date +%s%N)
        E2E_POD_EXTRA="\"annotations\": {$annos}" e2e_runp "$name" "$handler"
        t1=$(date +%s%N)
        err=$(cat "$CC_TMP/$name.runp.err")
        if [ -n "$E2E_POD" ]; then
                fail "$name: RunPodSandbox succeeded"
                cri stopp "$E2E_POD" >/dev/null 2>&1
                cri rmp "$E2E_POD" >/dev/null 2>&1
                return
        fi
        for m in "$@"; do
                [[ "$err" == *"$m"* ]] || { fail "$name: the error lacks '$m': $err"; return; }
        done
        ok "$name ($(((t1 - t0) / 1000000)) ms): ...${err#*create shim task: }"
        left=$(e2e_leftovers)
        [ -z "$left" ] && ok "$name: nothing left" || fail "$name: left $left"
}
no_host_check() { # NAME: the error came before libhv's host capability check
        local err
        err=$(cat "$CC_TMP/$1.runp.err")
        [[ "$err" != *"cannot start"* && "$err" != *"host cannot run"* ]] &&
                ok "$1: refused before any host capability check" ||
                fail "$1: the host check ran: $err"
}
A_PATH=io.katacontainers.config_path
A_HV=io.katacontainers.config.hypervisor

# --- 1. TEE downgrade ------------------------------------------------------------------------------
refused tdx-to-none kata-qemu-tdx-open "\"$A_PATH\": \"$CFGS/configuration-qemu.toml\"" \
        "annotation $A_PATH refused: $CFGS/configuration-qemu.toml has TEE none, weaker than this handler's TEE tdx ($TDX_OPEN)"
no_host_check tdx-to-none
refused tdx-shipped kata-qemu-tdx "\"$A_PATH\": \"$CFGS/configuration-qemu.toml\"" \
        "annotation $A_PATH refused: '$CFGS/configuration-qemu.toml' is not an absolute clean path matched by [runtime] valid_config_paths of $TDX_SHIPPED (empty: a pod may not choose its configuration)"
no_host_check tdx-shipped
# The same TEE is allowed: the pod gets the file it named, up to this host's missing TDX.
refused tdx-to-tdx kata-qemu-tdx-open "\"$A_PATH\": \"$CFGS/configuration-qemu-tdx.toml\"" \
        "$CFGS/configuration-qemu-tdx.toml: key '"

# --- 2. an arbitrary configuration whose VMM is a script ----------------------------------------
cat >"$CC_TMP/evil.sh" <<EOF
#!/bin/sh
touch "$CC_TMP/evil-ran"
EOF
chmod +x "$CC_TMP/evil.sh"
sed "s|^path = .*|path = \"$CC_TMP/evil.sh\"|" "$E2E_CFG" >"$CC_TMP/evil.toml"
refused arbitrary kata "\"$A_PATH\": \"$CC_TMP/evil.toml\"" \
        "annotation $A_PATH refused: '$CC_TMP/evil.toml' is not an absolute clean path matched by [runtime] valid_config_paths of $E2E_CFG"
[ ! -e "$CC_TMP/evil-ran" ] && ok "arbitrary: the file's path never ran" || fail "arbitrary: $CC_TMP/evil.sh ran"
refused escape kata-open "\"$A_PATH\": \"$CC_TMP/secret/../evil.toml\"" \
        "'$CC_TMP/secret/../evil.toml' is not an absolute clean path matched by [runtime] valid_config_paths of $OPEN"

# --- 3. a root-only secret -------------------------------------------------------------------------
SECRET=s3cr3t-$$-$RANDOM
printf 'API_KEY=%s\n' "$SECRET" >"$CC_TMP/secret/secret.env"
chmod 0400 "$CC_TMP/secret/secret.env"
refused secret-shipped kata "\"$A_PATH\": \"$CC_TMP/secret/secret.env\"" \
        "annotation $A_PATH refused: '$CC_TMP/secret/secret.env' is not an absolute clean path"
refused secret-allowed kata-open "\"$A_PATH\": \"$CC_TMP/secret/secret.env\"" \
        "annotation $A_PATH: $CC_TMP/secret/secret.env: not a valid runtime configuration (the reason is not shown because a pod annotation named the file"
for n in secret-shipped secret-allowed; do
        grep -q "$SECRET" "$CC_TMP/$n.runp.err" && fail "$n: the CRI error quotes the secret" ||
                ok "$n: the secret is not in the CRI error"
done
grep -q "$SECRET" "$CC_TMP/containerd.log" && fail "containerd's log (with the shim's) quotes the secret" ||
        ok "the secret is not in containerd's log (the shim's log included)"

# --- 4. a FIFO -------------------------------------------------------------------------------------
mkfifo "$CC_TMP/secret/fifo.toml"
refused fifo-shipped kata "\"$A_PATH\": \"$CC_TMP/secret/fifo.toml\"" \
        "annotation $A_PATH refused: '$CC_TMP/secret/fifo.toml' is not an absolute clean path"
refused fifo-allowed kata-open "\"$A_PATH\": \"$CC_TMP/secret/fifo.toml\"" \
        "annotation $A_PATH: $CC_TMP/secret/fifo.toml: not a regular file"
rm -f "$CC_TMP/secret/fifo.toml"

# --- 5. hypervisor annotations enabled --------------------------------------------------------------
E2E_POD_EXTRA="\"annotations\": {\"$A_HV.default_vcpus\": \"2\", \"$A_HV.default_memory\": \"512\", \"$A_HV.kernel_params\": \"cc.e2e=anno$$\"}" \
        e2e_runp sized kata-anno
if [ -n "$E2E_POD" ] && [ "$(pod_state "$E2E_POD")" = SANDBOX_READY ]; then
        ok "sized: pod READY with default_vcpus=2, default_memory=512, kernel_params"
        pid=$(qemus | head -1)
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
        for want in "-smp 2 " "-m 512M " "cc.e2e=anno$$"; do
                [[ "$cmd" == *"$want"* ]] && ok "sized: QEMU's command line has '$want'" ||
                        fail "sized: QEMU's command line lacks '$want': $cmd"
        done
        for want in "default_vcpus: vCPUs 1 -> 2" "default_memory: memory 384 -> 512 MiB" \
                "kernel_params: kernel parameters 'cc.e2e=anno$$' appended"; do
                grep -q "annotation $A_HV.$want" "$CC_TMP/containerd.log" && ok "sized: the shim logged '$want'" ||
                        fail "sized: the shim did not log '$want'"
        done
        # The guest's own view, from a container of the pod (the rootfs is copied in: the
        # configuration allows a host rootfs for this non-TEE handler).
        cri pull "$IMAGE" >/dev/null || fail "PullImage $IMAGE"
        cid=$(e2e_create "$E2E_POD" sized guest "$IMAGE" \
                '["/bin/sh", "-c", "echo cpus=$(busybox nproc) $(busybox grep MemTotal /proc/meminfo) $(busybox cat /proc/cmdline); trap \"exit 0\" TERM; while true; do busybox sleep 1; done"]')
        if [ -n "$cid" ] && cri start "$cid" >/dev/null 2>"$CC_TMP/guest.start.err" &&
                cc_wait_for 60 grep -q "cpus=" "$CC_TMP/logs/sized/guest.log"; then
                line=$(grep -m1 "cpus=" "$CC_TMP/logs/sized/guest.log")
                [[ "$line" == *"cpus=2 "* ]] && ok "sized: the guest has 2 CPUs" || fail "sized: guest CPUs: $line"
                [[ "$line" == *"cc.e2e=anno$$"* ]] && ok "sized: the guest's /proc/cmdline has the parameter" ||
                        fail "sized: guest cmdline: $line"
                kb=$(sed -n 's/.*MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$line")
                # MemTotal is below the VM's RAM (the kernel keeps some): above 384 MiB only if the
                # VM has more than the configured 384 MiB.
                [ -n "$kb" ] && [ "$kb" -gt $((384 * 1024)) ] && [ "$kb" -le $((512 * 1024)) ] &&
                        ok "sized: the guest's MemTotal is $kb kB (more than the configured 384 MiB, at most 512 MiB)" ||
                        fail "sized: guest memory: $line"
        else
                fail "sized: container: $(cat "$CC_TMP/guest.create.err" "$CC_TMP/guest.start.err" 2>/dev/null) $(cat "$CC_TMP/logs/sized/guest.log" 2>/dev/null)"
        fi
        cri stopp "$E2E_POD" >/dev/null || fail "StopPodSandbox"
        cri rmp "$E2E_POD" >/dev/null || fail "RemovePodSandbox"
        left=$(e2e_leftovers)
        [ -z "$left" ] && ok "sized: nothing left after removal" || fail "sized: left $left"
else
        fail "sized: $(cat "$CC_TMP/sized.runp.err")"
fi
refused vcpus-range kata-anno "\"$A_HV.default_vcpus\": \"3\"" \
        "annotation $A_HV.default_vcpus: '3' is not a number of vCPUs from 1 to 2 ([hypervisor.qemu] default_maxvcpus"
refused memory-range kata-anno "\"$A_HV.default_memory\": \"100000\"" \
        "annotation $A_HV.default_memory: '100000' is not a memory size from 64 to 512 MiB"
refused kernel-path kata-anno "\"$A_HV.kernel\": \"/boot/vmlinuz\"" \
        "annotation $A_HV.kernel refused: '/boot/vmlinuz' is not an absolute clean path matched by [hypervisor.qemu] valid_kernel_paths of $ANNO (empty: no value is allowed)"

# --- 6. not enabled, not implemented ---------------------------------------------------------------
refused not-enabled kata "\"$A_HV.default_vcpus\": \"2\"" \
        "annotation $A_HV.default_vcpus refused: not enabled for this handler (\"default_vcpus\" in [hypervisor.qemu] enable_annotations of $E2E_CFG would allow it)"
refused vmm-not-enabled kata-qemu-tdx "\"$A_HV.path\": \"$CC_TMP/evil.sh\"" \
        "annotation $A_HV.path refused: not enabled for this handler (\"path\" in [hypervisor.qemu] enable_annotations of $TDX_SHIPPED would allow it, with the value in valid_hypervisor_paths)"
refused not-implemented kata-anno "\"$A_HV.virtio_fs_daemon\": \"$CC_TMP/evil.sh\"" \
        "annotation $A_HV.virtio_fs_daemon refused: not supported by containerd-shim-kata-cc-v2"
[ ! -e "$CC_TMP/evil-ran" ] || fail "the script ran"
e2e_finish e2e-annotations
