#!/usr/bin/env bash
# The agent against a hostile host in a real guest (QEMU TCG, the agent as PID 1 on the serial
# channel, `make guest-image`), issue 18. Two boots:
#  1. TEE defaults (agent.tee_defaults=1 on the command line: can only add them, as the image
#     marker would): each hostile request refused with its code and message, the agent still
#     serving: the pid namespace left out, all capabilities without masked paths, writable
#     sysfs, kernel.core_pattern, the guest clock, SetPolicy, CopyFile into a rootfs and an
#     image's upper, a NUL inside a container id, a 5 MiB frame, joining the pod's namespaces
#     without a sandbox;
#  2. no TEE, no policy: a busybox rootfs copied in, the attacks shown to work (a container
#     without its own pid namespace reads a sibling's environment; with all capabilities and no
#     masked paths it reads /proc/1/root, /proc/kcore and rewrites kernel.core_pattern); the
#     pod's namespaces (two containers share the sandbox's uts and ipc; a sibling's
#     /proc/<pid>/environ is out of sight unless the pod shares its pid namespace); then
#     SetPolicy (allowed: no policy, no TEE) with the cc-genpolicy policy of a two-container
#     pod (its containers join the pod sandbox's ipc and uts), after which the same attacks are refused, the pod's containers run as declared and
#     nothing else does, and SetPolicy is refused.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/cc-agent-ctl
QEMU=$(command -v qemu-system-x86_64 || true)
HERE=$(cd "$(dirname "$0")" && pwd)

skip() { echo "$1"; exit 77; }
[ -n "$QEMU" ] || skip "needs qemu-system-x86_64"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || skip "needs busybox-static"
python3 -c 'import yaml' 2>/dev/null || skip "needs python3-yaml (cc-genpolicy)"

tmp=$(mktemp -d /tmp/agent-hostile-vm.XXXXXX)
qemu_pid=""
fails=0
cleanup() {
        if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill "$qemu_pid"
                sleep 0.5
                kill -9 "$qemu_pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi; }
expect_match() { if printf '%s' "$2" | grep -Fq -- "$3"; then ok "$1"; else fail "$1: '$2' lacks '$3'"; fi; }
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$tmp/agent.sock" "$@"; }
serving() { [ "$(ctl check)" = SERVING ] && kill -0 "$qemu_pid"; }
refused() { # what, output, expected text: the refusal, and the agent still serving
        expect_match "$1" "$2" "$3"
        serving || fail "$1: the agent stopped serving"
}

if ! make -s guest-image >"$tmp/image.log" 2>&1; then
        if grep -qiE "cannot resolve|Failed to fetch|Temporary failure|Unable to locate" "$tmp/image.log"; then
                skip "cannot fetch the guest kernel from the Debian archive"
        fi
        cat "$tmp/image.log"
        exit 1
fi

boot() { # extra kernel command line
        rm -f "$tmp/agent.sock"
        "$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
                -kernel build/guest/vmlinuz -initrd build/guest/initrd.img \
                -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0 agent.log=debug agent.log_port=agent.log.0 $1" \
                -serial "file:$tmp/console.log" \
                -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$tmp/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=agent.channel.0 \
                -chardev "file,id=log,path=$tmp/agent-log.txt" \
                -device virtserialport,chardev=log,name=agent.log.0 &
        qemu_pid=$!
        for _ in $(seq 100); do [ -S "$tmp/agent.sock" ] && break; sleep 0.1; done
        [ "$(ctl check --wait 120)" = SERVING ] || { fail "boot: agent not serving"; tail -n 30 "$tmp/console.log"; exit 1; }
}
power_off() {
        ctl destroy-sandbox >/dev/null 2>&1
        for _ in $(seq 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$qemu_pid" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
        qemu_pid=""
}

# Raw ttrpc on the serial channel (ctl cannot send a NUL inside an id, nor a broken frame).
raw() { # mode [args]
        python3 "$HERE/../tools/agent-raw-ttrpc-serial.py" "$tmp/agent.sock" "$@"
}

OCI_CAPS="--cap CAP_CHOWN --cap CAP_DAC_OVERRIDE --cap CAP_FSETID --cap CAP_FOWNER --cap CAP_MKNOD
--cap CAP_NET_RAW --cap CAP_SETGID --cap CAP_SETUID --cap CAP_SETFCAP --cap CAP_SETPCAP
--cap CAP_NET_BIND_SERVICE --cap CAP_SYS_CHROOT --cap CAP_KILL --cap CAP_AUDIT_WRITE"
ALL_CAPS="$OCI_CAPS --cap CAP_SYS_ADMIN --cap CAP_SYS_PTRACE --cap CAP_DAC_READ_SEARCH --cap CAP_SYS_RAWIO"
A=/run/kata-containers/shared/containers
R() { echo "--rootfs $A/$1/rootfs"; }

# --- boot 1: TEE defaults
boot "agent.tee_defaults=1"
expect_match "TEE defaults in the guest" "$(ctl details)" "tee-default-policy"
refused "joining the pod's pid namespace before CreateSandbox" \
        "$(raw create spy "$A/spy/rootfs" pid,ipc,uts PATH=/bin /bin/sh)" \
        "the container joins the pod's pid namespace, but the pod has no namespaces (no CreateSandbox)"
ctl create-sandbox --id hostile --hostname hostile >/dev/null
refused "pid namespace left out" "$(ctl create --id spy $(R spy) --no-pidns $OCI_CAPS -- true 2>&1)" \
        "PermissionDenied: CreateContainer spy (container '') refused by agent policy: it must have its own pid namespace"
refused "all capabilities, no masked paths" \
        "$(ctl create --id spy $(R spy) $ALL_CAPS --no-masked -- cat /proc/1/root/init 2>&1)" \
        "PermissionDenied: CreateContainer spy (container '') refused by agent policy: capability CAP_DAC_READ_SEARCH is not allowed (beyond the OCI defaults)"
refused "no masked paths (/proc/kcore)" "$(ctl create --id spy $(R spy) $OCI_CAPS --no-masked -- true 2>&1)" \
        "refused by agent policy: masked path /proc/kcore is missing"
refused "kernel.core_pattern" \
        "$(ctl create --id spy $(R spy) $OCI_CAPS --sysctl 'kernel.core_pattern=|/bin/sh' -- true 2>&1)" \
        "refused by agent policy: sysctl kernel.core_pattern is not allowed"
refused "writable sysfs" "$(ctl create --id spy $(R spy) $OCI_CAPS --rw-sys -- true 2>&1)" \
        "refused by agent policy: sysfs at /sys is writable"
refused "SetGuestDateTime" "$(ctl set-time 2>&1)" \
        "PermissionDenied: SetGuestDateTime denied by agent policy rule 'tee-default-guest-clock'"
echo '{"default": "allow"}' >"$tmp/open.json"
refused "SetPolicy" "$(ctl set-policy --src "$tmp/open.json" 2>&1)" \
        "PermissionDenied: SetPolicy refused: the policy in force does not allow replacing it"
echo hostile >"$tmp/src"
refused "CopyFile into a rootfs" "$(ctl copy-file --src "$tmp/src" --dst "$A/app/rootfs/bin/sh" 2>&1)" \
        "PermissionDenied: CopyFile into the rootfs of app refused: this guest does not take a rootfs from the host"
refused "CopyFile into an upper" "$(ctl copy-file --src "$tmp/src" --dst "$A/app/upper/bin/sh" 2>&1)" \
        "PermissionDenied: CopyFile into 'app/upper' refused: that is the writable layer"
refused "container id with a NUL byte" "$(raw nul-id)" \
        "1 3 CreateContainer: field 'container_id' contains a NUL byte"
refused "5 MiB frame: ResourceExhausted on its own stream only" "$(raw big-frame)" \
        "frames 1 streams 1 8 message length 5242880 exceed maximum message size"
power_off
grep -q "TEE guest: asked for" "$tmp/agent-log.txt" && ok "agent log: TEE decided from the command line" ||
        fail "agent log lacks the TEE decision"

# --- boot 2: no TEE, no policy, then SetPolicy with a generated pod policy
: >"$tmp/agent-log.txt"
boot ""
expect_match "no TEE, no policy" "$(ctl details)" "no-policy"
ctl create-sandbox --id pod --hostname pod >/dev/null
# Each area gets the binaries its commands need (busybox applets by name; no symlinks over
# CopyFile), so the serial channel carries a few copies of busybox, not dozens.
copy_rootfs() { # id applet...
        local c=$1 d a
        shift
        for d in "" /bin /proc /dev /sys /tmp /etc; do
                ctl copy-file --mode 040755 --dst "$A/$c/rootfs$d" || fail "mkdir $c$d"
        done
        for a in busybox "$@"; do
                ctl copy-file --src "$BUSYBOX" --mode 0100755 --dst "$A/$c/rootfs/bin/$a" || fail "$a in $c"
        done
        ctl copy-file --src "$tmp/passwd" --dst "$A/$c/rootfs/etc/passwd" || fail "passwd in $c"
}
echo "root:x:0:0:root:/root:/bin/sh" >"$tmp/passwd"
copy_rootfs victim sleep
copy_rootfs spy sh
copy_rootfs app sh
copy_rootfs sidecar sleep cat sh
ok "busybox rootfs copied into four container areas"
ctl create --id victim $(R victim) --env SECRET=topsecret-42 $OCI_CAPS -- /bin/sleep 300 && ctl start --id victim
expect_eq "no policy: a container without its pid namespace reads a sibling's env" \
        "$(ctl run --id spy $(R spy) --no-pidns $ALL_CAPS --no-masked -- \
                /bin/sh -c 'busybox cat /proc/[0-9]*/environ 2>/dev/null | busybox tr "\0" "\n" | busybox grep -m1 topsecret')" \
        "SECRET=topsecret-42"
# The guest image's own digest list: in every image, whichever kernel it boots.
expect_match "no policy: all caps and no masks read the guest root through /proc/1/root" \
        "$(ctl run --id spy $(R spy) --no-pidns $ALL_CAPS --no-masked -- /bin/sh -c 'busybox cat /proc/1/root/etc/cc-agent/image.sha256' 2>&1)" \
        "cc-agent-pull"
kcore=$(ctl run --id spy $(R spy) $ALL_CAPS --no-masked -- /bin/sh -c 'busybox head -c 4 /proc/kcore | busybox od -c' 2>&1)
if [[ "$kcore" == *"No such file"* ]]; then
        # The project's guest kernel has no /proc/kcore (CONFIG_PROC_KCORE off): nothing to read.
        ok "no policy: /proc/kcore: this guest kernel has none"
else
        expect_match "no policy: /proc/kcore is readable" "$kcore" "E   L   F"
fi
expect_eq "no policy: kernel.core_pattern rewritten" \
        "$(ctl run --id spy $(R spy) $ALL_CAPS --no-masked -- /bin/sh -c 'echo hostile-core > /proc/sys/kernel/core_pattern; busybox cat /proc/sys/kernel/core_pattern' 2>&1)" \
        "hostile-core"
ctl remove --id victim

# The pod's namespaces: since CreateSandbox the agent's pause holds the pod's uts (with its
# hostname), ipc and pid namespaces; containers join uts and ipc (Kata's rule), and the pid
# namespace only when the pod shares it (containerd's namespace path, as the shim passes it).
NS_CMD='echo $(busybox hostname) $(busybox readlink /proc/self/ns/uts) $(busybox readlink /proc/self/ns/ipc)'
ns_app=$(ctl run --id app $(R app) $OCI_CAPS -- /bin/sh -c "$NS_CMD")
ns_side=$(ctl run --id sidecar $(R sidecar) $OCI_CAPS -- /bin/sh -c "$NS_CMD")
expect_eq "two containers of the pod: the same hostname, uts and ipc namespaces" "$ns_side" "$ns_app"
expect_match "... the pod's hostname" "$ns_app" "pod uts:["
ns_own=$(ctl run --id app $(R app) --hostname own $OCI_CAPS -- /bin/sh -c "$NS_CMD")
expect_match "a container naming its own hostname keeps its own uts" "$ns_own" "own uts:["
[ "${ns_own#own }" != "${ns_app#pod }" ] && ok "... a different uts namespace" ||
        fail "own hostname, same uts: '$ns_own' vs '$ns_app'"
ENV_CMD='echo "env:$(busybox cat /proc/[0-9]*/environ 2>/dev/null | busybox tr "\0" "\n" | busybox grep -m1 topsecret)"'
ctl create --id victim $(R victim) --env SECRET=topsecret-42 $OCI_CAPS -- /bin/sleep 300 && ctl start --id victim
expect_eq "the pod does not share its pid namespace: no sibling's /proc/<pid>/environ" \
        "$(ctl run --id spy $(R spy) $OCI_CAPS -- /bin/sh -c "$ENV_CMD")" "env:"
ctl remove --id victim
expect_eq "victim in the pod's pid namespace" \
        "$(raw create victim "$A/victim/rootfs" pid,ipc,uts SECRET=topsecret-42 /bin/sleep 300)" "0 "
ctl start --id victim
expect_eq "a container outside the pod's pid namespace still sees nothing" \
        "$(ctl run --id spy $(R spy) $OCI_CAPS -- /bin/sh -c "$ENV_CMD")" "env:"
expect_eq "spy in the pod's pid namespace" \
        "$(raw create spy "$A/spy/rootfs" pid,ipc,uts PATH=/bin /bin/sh -c "$ENV_CMD")" "0 "
ctl start --id spy
ctl wait --id spy >/dev/null
expect_eq "the pod shares its pid namespace: the sibling's environment is visible" \
        "$(ctl read-stdout --id spy 2>/dev/null)" "env:SECRET=topsecret-42"
ctl remove --id spy
ctl remove --id victim
# A policy that names the pod's namespaces (sandbox_namespaces): exactly those are joined.
cat >"$tmp/ns-policy.json" <<'JSON'
{"version": 2, "default": "allow", "set_policy": "allow",
 "containers": [{"name": "*", "sandbox_namespaces": ["ipc", "uts"]}]}
JSON
ctl set-policy --src "$tmp/ns-policy.json" && ok "SetPolicy: sandbox_namespaces ipc, uts" || fail "SetPolicy ns-policy"
refused "policy: joining the pod's pid namespace it does not share" \
        "$(raw create spy "$A/spy/rootfs" pid,ipc,uts PATH=/bin /bin/sh)" \
        "it must not join the pod's pid namespace"
refused "policy: a uts namespace of its own" \
        "$(ctl create --id app $(R app) --hostname own $OCI_CAPS -- /bin/sh -c true 2>&1)" \
        "it must join the pod's uts namespace"
expect_eq "policy: the pod's ipc and uts, its own pid namespace" \
        "$(ctl run --id app $(R app) $OCI_CAPS -- /bin/sh -c 'echo $(busybox hostname)')" "pod"

"$HERE/../../tools/cc-genpolicy" "$HERE/data/two-container-pod.yaml" -o "$tmp/pod-policy.json" 2>/dev/null
ctl set-policy --src "$tmp/pod-policy.json" && ok "SetPolicy with the generated pod policy (no policy, no TEE)" ||
        fail "SetPolicy"
expect_match "GetGuestDetails: a policy" "$(ctl details)" " policy"
N="--annotation io.kubernetes.cri.container-name"
I="--annotation io.kubernetes.cri.image-name"
APP_IMG=registry.example/app@sha256:1111111111111111111111111111111111111111111111111111111111111111
SIDE_IMG=registry.example/sidecar@sha256:2222222222222222222222222222222222222222222222222222222222222222
SIDE_CAPS=$(echo "$OCI_CAPS" | sed 's/--cap CAP_NET_RAW//')
expect_eq "app as declared runs" \
        "$(ctl run --id app $(R app) $N=app $I=$APP_IMG --env MODE=prod $OCI_CAPS -- /bin/sh -c 'echo app-ok $MODE')" \
        "app-ok prod"
ctl create --id sidecar $(R sidecar) $N=sidecar $I=$SIDE_IMG $SIDE_CAPS -- /bin/sleep 30 && ctl start --id sidecar &&
        ok "sidecar as declared runs" || fail "sidecar as declared"
refused "policy: a sibling without its pid namespace" \
        "$(ctl create --id spy $(R spy) $N=app $I=$APP_IMG --env MODE=prod --no-pidns $OCI_CAPS -- /bin/sh -c 'echo app-ok $MODE' 2>&1)" \
        "it must have its own pid namespace"
refused "policy: a uts namespace of its own (the generated sandbox_namespaces)" \
        "$(ctl create --id spy $(R spy) $N=app $I=$APP_IMG --env MODE=prod --hostname own $OCI_CAPS -- /bin/sh -c 'echo app-ok $MODE' 2>&1)" \
        "it must join the pod's uts namespace"
refused "policy: all caps, no masks" \
        "$(ctl create --id spy $(R spy) $N=app $I=$APP_IMG --env MODE=prod $ALL_CAPS --no-masked -- /bin/sh -c 'echo app-ok $MODE' 2>&1)" \
        "capability CAP_DAC_READ_SEARCH is not allowed"
refused "policy: another command" \
        "$(ctl create --id spy $(R spy) $N=app $I=$APP_IMG --env MODE=prod $OCI_CAPS -- /bin/sh -c 'cat /proc/1/root/init' 2>&1)" \
        "process.args '/bin/sh ...' are not the policy's"
refused "policy: a container the pod does not declare" \
        "$(ctl create --id spy $(R spy) $N=miner $I=$APP_IMG $OCI_CAPS -- /bin/sh 2>&1)" \
        "no entry of \"containers\" matches the name 'miner'"
refused "policy: another image" \
        "$(ctl create --id spy $(R spy) $N=app $I=registry.example/app:1 --env MODE=prod $OCI_CAPS -- /bin/sh -c 'echo app-ok $MODE' 2>&1)" \
        "image 'registry.example/app:1' does not match"
expect_match "policy: the probe command is exec'ed" \
        "$(ctl exec --id sidecar --exec-id p1 $SIDE_CAPS -- /bin/cat /etc/passwd 2>&1)" "root:x:0:0"
refused "policy: exec of a shell" "$(ctl exec --id sidecar --exec-id e1 $SIDE_CAPS -- /bin/sh 2>&1)" \
        "is not in the policy's exec list"
refused "policy: SetGuestDateTime" "$(ctl set-time 2>&1)" "rule 'no-guest-clock'"
refused "policy: SetPolicy again" "$(ctl set-policy --src "$tmp/open.json" 2>&1)" "SetPolicy refused"
refused "policy: CopyFile into a rootfs" \
        "$(ctl copy-file --src "$tmp/src" --dst "$A/app/rootfs/bin/sh" 2>&1)" "matches no pattern of copy_file"
power_off

if [ "$fails" -ne 0 ]; then
        tail -n 30 "$tmp/console.log"
        tail -n 30 "$tmp/agent-log.txt"
        echo "$fails check(s) failed"
        exit 1
fi
echo "agent-hostile-vm: all checks passed"
