#!/usr/bin/env bash
# Signature verification in the guest under QEMU TCG, side by side: the guest image (static
# agent + pull helper, `make guest-image`) with an extra initrd segment holding
# /etc/cc-agent/image.json, a policy.json, a GPG key, a cosign public key and a registries.d
# file; then PullImage, alternating, of images with the same layer:
#   none       the same pull in a guest whose image.json names no policy (nothing loaded)
#   unsigned   scope insecureAcceptAnything (the policy is loaded, nothing to verify)
#   simple     signedBy: GPG RSA-3072 signature by skopeo, read from an http lookaside on the
#              host (test/tools/xrss-proxy.py serves it at 10.0.2.2)
#   sigstore   sigstoreSigned: ECDSA P-256 attachment (two layers: foreign, valid)
# The layer is in the guest's store already (MODE=spare: placed by the initrd; MODE=helper:
# fetched by a first, cold round), so a pull is the manifest, the policy check, the config and
# the rootfs mount: the check's share is visible.
#   MODE=spare (default)  what a pod's first pull is through CRI: one VM per pull, whose pull
#                         helper was started ahead at CreateSandbox and had SPARE_WAIT seconds to
#                         set up (and load the policy, read and parse its keys, run their code);
#   MODE=helper           one VM, ROUNDS rounds, every pull in a new helper (a pod's later pulls).
# Reported: median wall time per variant seen by the host, its difference and ratio to the pull
# without a policy, and the check as the helper logs it.
# Usage: BUILD=build [MODE=spare|helper] [REF=pinned|tag] [ROUNDS=9] [CONSOLE=FILE [AGENT_LOG=debug]]
#        bash bench/img-signatures-guest.sh   (root)
set -uo pipefail
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-9}
MODE=${MODE:-spare}
SPARE_WAIT=${SPARE_WAIT:-6}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../test/integration/img-lib.sh"
QEMU=$(command -v qemu-system-x86_64) || { echo "img-signatures-guest: no qemu-system-x86_64"; exit 0; }
for tool in gpg gpg-connect-agent openssl cpio; do
        command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
done
CTL=$(realpath "$BUILD/cc-agent-ctl")
MAC=52:54:00:12:34:56
img_setup
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
AGENT_PID=
trap '[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; img_cleanup' EXIT

make -s guest-image >"$T/image.log" 2>&1 || { cat "$T/image.log"; fail "make guest-image"; }
GUEST_REG=10.0.2.2:$PORT

# Keys, images, signatures (identities as the guest names the images).
gpg --batch --passphrase '' --quick-gen-key 'Bench <bench@example.test>' rsa3072 sign never >/dev/null 2>&1
FPR=$(gpg --list-keys --with-colons 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
AGENT_PID=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | awk '/^D / {print $2}')
mkdir -p "$T/src/files" "$T/regd" "$T/lookaside"
head -c $((4 << 20)) /dev/urandom >"$T/src/big"
for i in $(seq 1 200); do head -c 512 /dev/urandom >"$T/src/files/f$i"; done
img_build "$T/oci" v1 "$T/src"
printf 'docker:\n  %s:\n    lookaside: file://%s/lookaside\n' "$REG" "$T" >"$T/regd/push.yaml"
echo '{"default":[{"type":"insecureAcceptAnything"}],"transports":{}}' >"$T/insecure.json"
push() { # repo [skopeo args]
        local dst=$1
        shift
        skopeo --policy "$T/insecure.json" --registries.d "$T/regd" copy -q --dest-tls-verify=false \
                "$@" "oci:$T/oci:v1" "docker://$REG/$dst" >"$T/skopeo.log" 2>&1 ||
                { cat "$T/skopeo.log"; fail "push $dst"; }
}
push bench/unsigned:v1
push bench/none:v1
push bench/simple:v1 --sign-by "$FPR" --sign-identity "$GUEST_REG/bench/simple:v1"
push bench/sigstore:v1
D=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/sigstore:v1" | sha256sum | awk '{print "sha256:" $1}')
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k1.pem"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k2.pem"
python3 "$HERE/../test/tools/cosign-attach.py" "$REG" bench/sigstore "$D" \
        "$GUEST_REG/bench/sigstore:v1" "$T/k2.pem" "$T/k1.pem" >/dev/null || fail "attachment"
XPORT=$(free_port)
python3 "$HERE/../test/tools/xrss-proxy.py" "$XPORT" "$REG" "$T/lookaside" >"$T/proxy.log" 2>&1 &
PIDS+=($!)
wait_port "$XPORT"

# The extra initrd segments: the agent's image settings, policy and keys (with and without a
# policy); for MODE=spare the layer's store directory too (the pull then finds it, as a warm one).
STORE=/var/lib/cc-bench-store
LAYER=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/unsigned:v1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"].split(":")[1])')
e=$T/extra/etc/cc-agent
mkdir -p "$e/registries.d" "$T/extra/etc/containers" "$T/plain/etc/cc-agent"
gpg --export "$FPR" >"$e/key.gpg"
openssl pkey -in "$T/k1.pem" -pubout -out "$e/cosign.pub" 2>/dev/null
store=
[ "$MODE" = spare ] && store=",\"store_dir\":\"$STORE\""
echo "{\"signature_policy\":\"/etc/containers/policy.json\",\"registries_d\":\"/etc/cc-agent/registries.d\"$store}" >"$e/image.json"
echo "{\"registries_d\":\"/etc/cc-agent/registries.d\"$store}" >"$T/plain/etc/cc-agent/image.json"
cat >"$T/extra/etc/containers/policy.json" <<EOF
{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{
 "$GUEST_REG/bench/simple":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/etc/cc-agent/key.gpg"}],
 "$GUEST_REG/bench/sigstore":[{"type":"sigstoreSigned","keyPath":"/etc/cc-agent/cosign.pub"}]}}}
EOF
# LOOKASIDE=file: the signatures travel in the initrd (file:// lookaside), to tell the network's
# share of the check from the rest.
lookaside=http://10.0.2.2:$XPORT/lookaside
if [ "${LOOKASIDE:-http}" = file ]; then
        cp -r "$T/lookaside" "$e/lookaside"
        lookaside=file:///etc/cc-agent/lookaside
fi
printf 'docker:\n  %s:\n    lookaside: %s\n    use-sigstore-attachments: true\n' \
        "$GUEST_REG" "$lookaside" >"$e/registries.d/bench.yaml"
cp -r "$e/registries.d" "$T/plain/etc/cc-agent/"
for x in extra plain; do
        [ "$MODE" = spare ] && mkdir -p "$T/$x$STORE/layers/sha256/$LAYER"
        (cd "$T/$x" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) >"$T/$x.cpio.gz"
        cat build/guest/initrd.img "$T/$x.cpio.gz" >"$T/initrd-$x.img"
done

# REF=pinned (default): tag@digest, how the shim names a CRI image (the images share one
# manifest, digest $D); REF=tag: the tag alone (signatures then read after the manifest GET).
PIN=@$D
[ "${REF:-pinned}" = tag ] && PIN=
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
ctl() { "$CTL" --addr "unix://$T/agent.sock" "$@"; }
VM=
# boot INITRD: a VM with that initrd, its sandbox (the spare helper starts) and its network.
boot() {
        rm -f "$T/agent.sock"
        "$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
                -kernel build/guest/vmlinuz -initrd "$1" \
                -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0 agent.image_insecure=$GUEST_REG agent.log=${AGENT_LOG:-info}" \
                -serial "file:$T/console.new" -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$T/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=agent.channel.0 \
                -netdev user,id=net0 -device "virtio-net-pci,netdev=net0,mac=$MAC" &
        VM=$!
        PIDS+=("$VM")
        for _ in $(seq 200); do [ -S "$T/agent.sock" ] && break; sleep 0.05; done
        ctl check --wait 180 >/dev/null || { cat "$T/console.new"; fail "the agent did not answer"; }
        ctl create-sandbox --id bench --hostname bench >/dev/null
        ctl update-interface -- "$MAC" eth0 0 10.0.2.15/24 >/dev/null || fail "UpdateInterface"
        ctl update-routes -- default,10.0.2.2,eth0 >/dev/null || fail "UpdateRoutes"
}
halt() { # DestroySandbox powers the VM off
        ctl destroy-sandbox >/dev/null 2>&1
        for _ in $(seq 100); do kill -0 "$VM" 2>/dev/null || break; sleep 0.1; done
        kill "$VM" 2>/dev/null
        wait "$VM" 2>/dev/null
        cat "$T/console.new" >>"$T/console"
}
pull() { # VARIANT ID: one PullImage, its wall time into $T/results
        local t0 out
        t0=$(date +%s%N)
        out=$(ctl pull-image --id "$2" -- "$GUEST_REG/bench/$1:v1$PIN" 2>&1) ||
                { echo "$out"; tail -20 "$T/console.new"; fail "PullImage $1"; }
        echo "$1 $(ms_since "$t0")" >>"$T/results"
}

: >"$T/results"
: >"$T/console"
if [ "$MODE" = spare ]; then
        VARIANTS="none unsigned simple sigstore"
        for round in $(seq 1 "$ROUNDS"); do
                for v in $VARIANTS; do
                        initrd=$T/initrd-extra.img
                        [ "$v" = none ] && initrd=$T/initrd-plain.img
                        boot "$initrd"
                        sleep "$SPARE_WAIT" # the spare helper sets up (and prepares the policy)
                        pull "$v" "c$round"
                        halt
                done
        done
        boot "$T/initrd-extra.img"
else
        VARIANTS="unsigned simple sigstore"
        boot "$T/initrd-extra.img"
        n=0
        for round in $(seq 0 "$ROUNDS"); do
                for v in $VARIANTS; do
                        n=$((n + 1))
                        pull "$v" "c$n"
                done
        done
        # The first round fetched the layer (cold): left out.
        awk 'NR > 3' "$T/results" >"$T/results.warm" && mv "$T/results.warm" "$T/results"
fi
# A refusal, to show the policy is in force: the signed repository's scope, an unsigned image.
push bench/simple:unsigned
out=$(ctl pull-image --id refused -- "$GUEST_REG/bench/simple:unsigned" 2>&1) &&
        fail "the guest pulled an unsigned image against its policy"
echo "$out" | grep -q "Image policy rejected" || fail "refusal: $out"
halt

first=${VARIANTS%% *}
base=$(awk -v v="$first" '$1 == v {print $2}' "$T/results" | median)
printf '%-10s %14s %12s %8s\n' variant "pull ms (med)" "vs $first" ratio
for v in $VARIANTS; do
        m=$(awk -v v=$v '$1 == v {print $2}' "$T/results" | median)
        printf '%-10s %14s %+12d %8s\n' "$v" "$m" $((m - base)) "$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.3f", a / b}')"
done
# The check itself, as the pull helper logs it in the guest (median per variant).
# Every value too, sorted: on a loaded machine the low ones say more than the median.
mid() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
for v in simple sigstore; do
        grep -o "scope $GUEST_REG/bench/$v) in [0-9.]* ms (reading signatures [0-9.]* ms" "$T/console" |
                awk '{print $(NF-5), $(NF-1)}' >"$T/check-$v"
        printf 'in-guest check, %-9s median %s ms, of which reading signatures %s ms\n' "$v" \
                "$(awk '{print $1}' "$T/check-$v" | mid)" "$(awk '{print $2}' "$T/check-$v" | mid)"
        echo "  all (ms): $(awk '{print $1}' "$T/check-$v" | sort -n | tr '\n' ' ')"
        echo "  reading (ms): $(awk '{print $2}' "$T/check-$v" | sort -n | tr '\n' ' ')"
done
for v in $VARIANTS; do
        echo "pulls $v (ms): $(awk -v v=$v '$1 == v {print $2}' "$T/results" | sort -n | tr '\n' ' ')"
done
# The pull as the helper times it in the guest (request to rootfs mounted): without the host's
# side (ctl's start, the serial channel), which the load of this machine makes noisy.
echo "in-guest pull, min / median (ms), and vs $first:"
for v in $VARIANTS; do
        grep -o "pulled image $GUEST_REG/bench/$v:v1[^ ]* for container [^ ]* [^\"]* in [0-9.]* ms" "$T/console" |
                awk '{print $(NF-1)}' | sort -n >"$T/guest-$v"
done
gb=$(mid <"$T/guest-$first")
gm=$(head -1 "$T/guest-$first")
for v in $VARIANTS; do
        m=$(mid <"$T/guest-$v")
        printf '  %-10s %7s / %7s   %+8.1f / %+8.1f   ratio %s   all: %s\n' "$v" "$(head -1 "$T/guest-$v")" "$m" \
                "$(awk -v a="$(head -1 "$T/guest-$v")" -v b="$gm" 'BEGIN {print a - b}')" \
                "$(awk -v a="$m" -v b="$gb" 'BEGIN {print a - b}')" \
                "$(awk -v a="$m" -v b="$gb" 'BEGIN {printf "%.3f", a / b}')" "$(tr '\n' ' ' <"$T/guest-$v")"
done
echo "pulls whose policy the spare helper had loaded ahead: $(grep -c 'loaded ahead' "$T/console")"
[ -z "${CONSOLE:-}" ] || cp "$T/console" "$CONSOLE" # the guests' logs (AGENT_LOG=debug: more)
echo "(QEMU TCG, 1 vCPU, MODE=$MODE, ROUNDS=$ROUNDS, REF=${REF:-pinned}, lookaside ${LOOKASIDE:-http}; load $(cut -d' ' -f1-3 /proc/loadavg);" \
        "refused as expected: $(echo "$out" | grep -o 'requirement 1 (signedBy): [a-z ]*' | head -1))"
