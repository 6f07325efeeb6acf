#!/usr/bin/env bash
# Every shipped runtime configuration (configs/runtime/*.toml) loaded by the shim's own parser,
# the way a node runs it (issue 9: "TEE ones checked up to the host capability check, which
# fails here with its clear message"). The unit test test-shim-core (test_shipped_configs)
# parses each file; here each one is used for real:
#   1. `cc-runtime check` (the shim's parser + libhv's host check) over the six files, kernel and
#      initrd pointed at build/guest: kata-qemu can run; every other handler says "no" and
#      names what this host lacks (hardware KVM, TDX/SEV/SNP in KVM, the firmware file, the
#      Cloud Hypervisor binary, QEMU too old for the TEE object);
#   2. containerd 1.6's CRI with one runtime handler per file (ConfigPath = the file):
#      RunPodSandbox for kata-qemu gives a READY pod; for every TEE handler and for kata-clh it
#      fails, the CRI error carries the shim's message (the file's path, the backend and TEE,
#      the missing capability), and no VM, shim, socket, run file, netns or bundle is left.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$BUILD/cc-runtime"

# The six files with the guest kernel of this build (everything else as shipped).
CFGS=$CC_TMP/configs
mkdir -p "$CFGS"
n=0
for f in configs/runtime/configuration-*.toml; do
        sed -e "s|^kernel = .*|kernel = \"$(realpath build/guest/vmlinuz)\"|" \
                -e "s|^initrd = .*|initrd = \"$(realpath build/guest/initrd.img)\"|" \
                -e 's|^default_memory = [0-9]*|default_memory = 384|' "$f" >"$CFGS/$(basename "$f")"
        n=$((n + 1))
done
[ "$n" -eq 6 ] || cc_fail "expected 6 runtime configurations, found $n"
# The TEE firmware (TDVF, TD-Shim, OVMF for SEV) is not on this host: a placeholder file lets the
# configuration load so that the host capability check is reached. The shipped path, kept in a
# copy of the TDX file, shows the loader's own error.
cp "$CFGS/configuration-qemu-tdx.toml" "$CC_TMP/configuration-qemu-tdx-shipped-fw.toml"
mkdir -p "$CC_TMP/fw"
for f in "$CFGS"/configuration-*.toml; do
        fwp=$(sed -n 's/^firmware = "\(.*\)"/\1/p' "$f")
        [ -n "$fwp" ] || continue
        echo "placeholder, not firmware" >"$CC_TMP/fw/$(basename "$fwp")"
        sed -i "s|^firmware = .*|firmware = \"$CC_TMP/fw/$(basename "$fwp")\"|" "$f"
done
# configuration-qemu.toml runs here only on TCG with the serial channel (no vhost-vsock).
sed -i -e 's|^accel = .*|accel = "tcg"|' -e 's|^agent_channel = .*|agent_channel = "serial"|' \
        "$CFGS/configuration-qemu.toml"

# --- 1. cc-runtime check -------------------------------------------------------------------------
rc=0
CC_CONFIG_DIR=$CFGS "$BUILD/cc-runtime" check >"$CC_TMP/check.out" 2>&1 || rc=$?
cat "$CC_TMP/check.out"
[ "$rc" -eq 1 ] && ok "cc-runtime check exits 1 (some handlers cannot run here)" || fail "check exit $rc"
line() { grep -E "^  $1 " "$CC_TMP/check.out"; }
[[ "$(line kata-qemu)" =~ ^\ \ kata-qemu\ +qemu\ +none\ +yes$ ]] && ok "kata-qemu: yes" || fail "kata-qemu: '$(line kata-qemu)'"
hwkvm=0
[ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ] && hwkvm=1
expect() { # HANDLER BACKEND TEE MESSAGE...: the handler says no and names each MESSAGE
        local h=$1 be=$2 tee=$3 l m msgs=()
        shift 3
        for m in "$@"; do [ -n "$m" ] && msgs+=("$m"); done
        set -- "${msgs[@]}"
        l=$(line "$h")
        [[ "$l" =~ ^\ \ $h\ +$be\ +$tee\ +no:\  ]] || { fail "$h: '$l'"; return; }
        for m in "$@"; do
                [[ "$l" == *"$m"* ]] || { fail "$h does not say '$m': $l"; return; }
        done
        ok "$h: no, naming: $(printf '%s; ' "$@")"
}
kvm_msg=()
[ "$hwkvm" -eq 0 ] && kvm_msg=("needs hardware KVM")
qemu_ver=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1\2/p' | head -1)
tdx_qemu=() snp_qemu=()
[ "${qemu_ver:-0}" -lt 101 ] && tdx_qemu=("has no usable tdx-guest object: tdx needs QEMU >= 10.1.0")
[ "${qemu_ver:-0}" -lt 91 ] && snp_qemu=("has no usable sev-snp-guest object: sev-snp needs QEMU >= 9.1.0")
fw() { sed -n 's/^firmware = "\(.*\)"/\1/p' "$CFGS/configuration-$1.toml"; }
fwmsg() { [ -e "$(fw "$1")" ] || echo "firmware $(fw "$1"): No such file or directory"; }
clhmsg=()
command -v cloud-hypervisor >/dev/null || [ -x /usr/bin/cloud-hypervisor ] || clhmsg=("/usr/bin/cloud-hypervisor not found")
if [ "$(cat /sys/module/kvm_intel/parameters/tdx 2>/dev/null)" != Y ]; then
        expect kata-qemu-tdx qemu tdx "${kvm_msg[@]}" "/sys/module/kvm_intel/parameters/tdx is not Y" \
                ${tdx_qemu[@]+"${tdx_qemu[@]}"} "$(fwmsg qemu-tdx)"
        expect kata-clh-tdx clh tdx "/sys/module/kvm_intel/parameters/tdx is not Y" "$(fwmsg clh-tdx)" \
                ${clhmsg[@]+"${clhmsg[@]}"}
fi
if [ "$(cat /sys/module/kvm_amd/parameters/sev 2>/dev/null)" != Y ] && [ "$(cat /sys/module/kvm_amd/parameters/sev 2>/dev/null)" != 1 ]; then
        expect kata-qemu-sev qemu sev "/sys/module/kvm_amd/parameters/sev is not Y" "$(fwmsg qemu-sev)"
fi
if [ "$(cat /sys/module/kvm_amd/parameters/sev_snp 2>/dev/null)" != Y ]; then
        expect kata-qemu-snp qemu sev-snp "/sys/module/kvm_amd/parameters/sev_snp is not Y" \
                ${snp_qemu[@]+"${snp_qemu[@]}"}
fi
[ ${#clhmsg[@]} -gt 0 ] && expect kata-clh clh none "${clhmsg[@]}"

# --- 2. the same files through CRI -----------------------------------------------------------------
snap_registry
snap_busybox_image "$CC_TMP/bb-layout"
snap_push "$CC_TMP/bb-layout:latest" pause:1
e2e_cni
# One runtime entry per shipped file, handler names as in configs/k8s/runtimeclasses.yaml.
handlers="kata-qemu=qemu kata-qemu-tdx=qemu-tdx kata-qemu-sev=qemu-sev kata-qemu-snp=qemu-snp kata-clh=clh kata-clh-tdx=clh-tdx"
extra=""
for hv in $handlers; do
        h=${hv%=*}
        grep -q "handler: $h\$" configs/k8s/runtimeclasses.yaml || fail "$h is not a RuntimeClass handler in configs/k8s"
        extra+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$h]
      runtime_type = \"io.containerd.kata-cc.v2\"
      privileged_without_host_devices = true
      pod_annotations = [\"io.katacontainers.*\"]
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$h.options]
        ConfigPath = \"$CFGS/configuration-${hv#*=}.toml\""
done
extra+="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-qemu-tdx-shipped-fw]
      runtime_type = \"io.containerd.kata-cc.v2\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-qemu-tdx-shipped-fw.options]
        ConfigPath = \"$CC_TMP/configuration-qemu-tdx-shipped-fw.toml\""
E2E_EXTRA_RUNTIMES=$extra
e2e_containerd

e2e_runp pod-qemu kata-qemu
if [ -n "$E2E_POD" ] && [ "$(pod_state "$E2E_POD")" = SANDBOX_READY ]; then
        ok "kata-qemu (configuration-qemu.toml as shipped, TCG): pod READY"
        [ "$(qemus | wc -l)" -eq 1 ] || fail "VMs: $(qemus | wc -l)"
        cri stopp "$E2E_POD" >/dev/null || fail "StopPodSandbox"
        cri rmp "$E2E_POD" >/dev/null || fail "RemovePodSandbox"
else
        fail "kata-qemu: $(cat "$CC_TMP/pod-qemu.runp.err")"
fi
for hv in $handlers; do
        h=${hv%=*}
        [ "$h" = kata-qemu ] && continue
        file=$CFGS/configuration-${hv#*=}.toml
        l=$(line "$h")
        e2e_runp "pod-$h" "$h"
        err=$(cat "$CC_TMP/pod-$h.runp.err")
        if [ -n "$E2E_POD" ]; then
                fail "$h: RunPodSandbox succeeded on a host that cannot run it"
                continue
        fi
        case "$h" in *tdx) tee=tdx ;; *snp) tee=sev-snp ;; *sev) tee=sev ;; *) tee=none ;; esac
        case "$h" in *clh*) be=clh ;; *) be=qemu ;; esac
        # The shim's error: the file, the section, backend and TEE, then libhv's host check,
        # which names the same missing pieces as `cc-runtime check` (its first reason here).
        first=${l#*no: }
        first=${first%%;*}
        if [[ "$err" == *"$file: [hypervisor.$be] (backend $be, tee $tee) cannot start"* ]] &&
                [[ "$err" == *"$first"* ]]; then
                ok "$h: RunPodSandbox fails: ...${err#*"$file"}" | cut -c1-400
        else
                fail "$h: RunPodSandbox error lacks the host check ('$first'): $err"
        fi
        left=$(e2e_leftovers)
        [ -z "$left" ] && ok "$h: nothing left (VM, shim, socket, run file, mount, netns, bundle, pod)" ||
                fail "$h: left $left"
done
# The shipped firmware path, absent here: the loader names the key and the file.
e2e_runp pod-fw kata-qemu-tdx-shipped-fw
err=$(cat "$CC_TMP/pod-fw.runp.err")
fwp=$(sed -n 's/^firmware = "\(.*\)"/\1/p' configs/runtime/configuration-qemu-tdx.toml)
if [ -z "$E2E_POD" ] && [[ "$err" == *"configuration-qemu-tdx-shipped-fw.toml: key 'firmware': $fwp: No such file or directory"* ]]; then
        ok "shipped TDVF path absent: RunPodSandbox fails: ...${err#*shipped-fw.toml: }"
else
        fail "missing firmware: pod '$E2E_POD', error: $err"
fi
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left" || fail "left $left"
e2e_finish e2e-configs
