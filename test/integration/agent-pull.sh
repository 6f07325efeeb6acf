#!/usr/bin/env bash
# grpc.Image/PullImage in cc-agent, on the host: the agent (a process on a unix socket) pulls an
# image from the real distribution registry on loopback into its layer store, mounts the
# container's rootfs (overlay of the layers + a writable upper) where CreateContainer expects
# it, runs a container from it, shares layers between containers, refuses bad requests, and
# RemoveContainer leaves no mount and no directory behind.
# Two passes: cc-agent pulls in its own process; cc-agent-static (the guest image's agent)
# starts the helper cc-agent-pull per pull. The second pass also checks the agent's side of
# the helper protocol with stand-in helpers: credentials arrive on the channel, a helper's
# error reaches the caller with its errno, a helper that dies or is missing gives a clear
# error and leaves nothing.
set -u
. "$(dirname "$0")/img-lib.sh"
CTL=$(realpath "$BUILD/cc-agent-ctl")
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "needs busybox-static"; exit 77; }
img_setup
cg=cc-agent-pull-$$
containers=$T/containers
agent_pid=""
cleanup_agent() {
        [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
        for m in $(grep -o " $T/[^ ]*" /proc/self/mountinfo | sort -r); do umount -l "$m"; done
        rmdir /sys/fs/cgroup/$cg/* /sys/fs/cgroup/$cg 2>/dev/null
        img_cleanup
}
trap cleanup_agent EXIT
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$T/agent.sock" "$@"; }

# A two-layer image: busybox, then a file the container prints.
img_demo_image "pulled in the guest"

cat >"$T/image.json" <<JSON
{"store_dir": "$T/store", "insecure_registries": ["$REG"]}
JSON

start_agent() { # BINARY [HELPER]   ($SPARE: CC_AGENT_PULL_SPARE_SECONDS)
        rm -f "$T/agent.sock"
        CC_AGENT_IMAGE_CONFIG=$T/image.json CC_AGENT_PULL_HELPER=${2:-} \
                CC_AGENT_PULL_SPARE_SECONDS=${SPARE:-} "$1" \
                --server-addr "unix://$T/agent.sock" --containers-dir "$containers" \
                --cgroup-root "$cg" --policy "$T/no-policy.json" --log-level debug \
                >>"$T/agent.log" 2>&1 &
        agent_pid=$!
        PIDS+=("$agent_pid")
        ctl check --wait 10 >/dev/null || fail "agent did not answer"
}
stop_agent() {
        kill "$agent_pid" && wait "$agent_pid" 2>/dev/null
        agent_pid=""
}

pull_pass() { # AGENT_BINARY [HELPER]
echo "--- $(basename "$1")${2:+ with $(basename "$2")}"
rm -rf "$T/store" "$containers"
mkdir -p "$containers"
start_agent "$@"

ref=$(ctl pull-image --id c1 -- "$IMAGE") || fail "PullImage: $ref"
[ "$ref" = "$IMAGE" ] || fail "PullImage answered '$ref'"
mountpoint -q "$containers/c1/rootfs" || fail "no rootfs mounted for c1"
out=$(ctl run --id c1 --rootfs "$containers/c1/rootfs" -- sh -c 'cat /etc/demo; echo x > /new') ||
        fail "container from the pulled image: $out"
[ "$out" = "pulled in the guest" ] || fail "container printed '$out'"
echo "ok: a container runs from the image pulled by the agent"

# A second container of the pod shares the layers; its writes are its own.
ctl pull-image --id c2 -- "$IMAGE" >/dev/null || fail "second PullImage"
[ "$(ls "$T/store/layers/sha256" | wc -l)" -eq 2 ] || fail "layers not shared: $(ls "$T/store/layers/sha256")"
[ ! -e "$containers/c2/rootfs/new" ] || fail "c1's write is visible in c2"
echo "ok: layers shared, uppers separate"

# Bad requests: clear errors, nothing made.
out=$(ctl pull-image --id c2 -- "$IMAGE" 2>&1) && fail "a second rootfs for c2 was accepted"
echo "$out" | grep -q "already has a rootfs" || fail "duplicate pull: $out"
out=$(ctl pull-image --id ../x -- "$IMAGE" 2>&1) && fail "container id ../x accepted"
echo "ok: bad id refused: $out"
out=$(ctl pull-image --id c3 -- "$REG/demo:missing" 2>&1) && fail "missing tag pulled"
echo "$out" | grep -q "pull image $REG/demo:missing" || fail "missing tag: $out"
[ ! -e "$containers/c3" ] || fail "a failed pull left $containers/c3"
echo "ok: failed pull leaves nothing: $out"

# Kata >= 3.3's form: CreateContainer with an image_guest_pull Storage pulls the image itself.
ctl create --id c4 --guest-pull "$IMAGE" --rootfs "$containers/c4/rootfs" -- cat /etc/demo ||
        fail "CreateContainer with an image_guest_pull storage"
ctl start --id c4
[ "$(ctl wait --id c4)" = "0" ] || fail "c4 exit status"
out=$(ctl read-stdout --id c4)
[ "$out" = "pulled in the guest" ] || fail "c4 printed '$out'"
ctl remove --id c4 || fail "remove c4"
[ ! -e "$containers/c4" ] || fail "c4's rootfs left after remove"
out=$(ctl create --id c5 --guest-pull "$REG/demo:missing" --rootfs "$containers/c5/rootfs" -- true 2>&1) &&
        fail "a storage with a missing image was accepted"
[ ! -e "$containers/c5" ] || fail "a failed storage pull left $containers/c5"
echo "ok: image_guest_pull storage: $out"

# `run` removed c1 when it exited, and with it the rootfs; RemoveContainer releases the rootfs
# of a container that never ran (c2) too.
mountpoint -q "$containers/c1/rootfs" 2>/dev/null && fail "c1 rootfs still mounted"
ctl remove --id c2 2>/dev/null
[ ! -e "$containers/c1" ] && [ ! -e "$containers/c2" ] || fail "container dirs left: $(ls "$containers")"
grep -q " $T/" /proc/self/mountinfo && fail "mounts left: $(grep " $T/" /proc/self/mountinfo)"
stop_agent
}

pull_pass "$(realpath "$BUILD/cc-agent")"

# A signature policy named by the guest image's image.json applies to PullImage: a reject-all
# policy refuses the image before anything is fetched (img-signatures.sh tests the policies).
echo '{"default":[{"type":"reject"}]}' >"$T/reject.json"
cp "$T/image.json" "$T/image.json.orig"
cat >"$T/image.json" <<JSON
{"store_dir": "$T/store", "insecure_registries": ["$REG"], "signature_policy": "$T/reject.json"}
JSON
rm -rf "$T/store" "$containers" && mkdir -p "$containers"
start_agent "$(realpath "$BUILD/cc-agent")"
out=$(ctl pull-image --id p1 -- "$IMAGE" 2>&1) && fail "an image was pulled against a reject policy"
echo "$out" | grep -q "Image policy rejected: Denied by policy: image $IMAGE" || fail "policy: $out"
[ ! -e "$containers/p1" ] && [ -z "$(ls -A "$T/store/layers/sha256" 2>/dev/null)" ] ||
        fail "a refused image left files behind"
stop_agent
mv "$T/image.json.orig" "$T/image.json"
echo "ok: image.json signature_policy refuses the image: $out"
if [ ! -x "$BUILD/cc-agent-static" ]; then
        echo "PASS: PullImage in the agent (no cc-agent-static in a sanitizer build: one pass)"
        exit 0
fi
helper=$(realpath "$BUILD/cc-agent-pull")
pull_pass "$(realpath "$BUILD/cc-agent-static")" "$helper"
static=$(realpath "$BUILD/cc-agent-static")
grep -q "component=cc-agent-pull" "$T/agent.log" || fail "the helper's log lines are not in the agent's log"
echo "ok: the helper logs into the agent's log"

# Stand-in helpers: the agent's side of the protocol.
fake=$T/fake-helper
cat >"$fake" <<'SH'
#!/bin/bash
# Records the request (argv, then the channel's image, container id and credentials), then
# acts per fake.mode.
field() { local n; read -r n <&3; head -c "$n" <&3; }
image=$(field) id=$(field) creds=$(field)
printf '%s\n' "$*" "$image" "$id" "${#creds}:$creds" >"${0%/*}/fake.req"
case $(cat "${0%/*}/fake.mode") in
answer) printf '13 registry said no to %s\n' "$creds" >&3 ;;
die) mkdir -p "$2/$id/upper" "$2/$id/rootfs"; kill -9 $$ ;;
garbage) printf 'not a result' >&3 ;;
die-once) # the first helper (the spare) dies, the next one answers
        if [ -e "${0%/*}/fake.died" ]; then printf '13 second helper\n' >&3; else : >"${0%/*}/fake.died"; kill -9 $$; fi ;;
esac
SH
chmod +x "$fake"
mkdir -p "$containers"
start_agent "$static" "$fake"
echo answer >"$T/fake.mode"
out=$(ctl pull-image --id f1 --user "alice:s3cret pw" -- "$IMAGE" 2>&1) && fail "the fake helper's error was not passed on"
[ "$(tail -n1 "$T/fake.req")" = "15:alice:s3cret pw" ] ||
        fail "credentials on the channel: '$(tail -n1 "$T/fake.req")'"
[ "$(sed -n 2,3p "$T/fake.req" | tr '\n' ' ')" = "$IMAGE f1 " ] || fail "request on the channel: $(cat "$T/fake.req")"
grep -q -- "^--containers-dir $containers " "$T/fake.req" || fail "helper argv: $(head -n1 "$T/fake.req")"
head -n1 "$T/fake.req" | grep -q s3cret && fail "credentials on the helper's command line"
echo "$out" | grep -q "registry said no to alice:s3cret pw" || fail "helper error: $out"
echo "ok: credentials on the channel, the helper's error reaches the caller: $out"
echo die >"$T/fake.mode"
out=$(ctl pull-image --id f2 -- "$IMAGE" 2>&1) && fail "a killed helper counted as a pull"
echo "$out" | grep -q "ended without a result" || fail "killed helper: $out"
[ ! -e "$containers/f2" ] || fail "a killed helper's half-made rootfs was left: $(ls "$containers/f2")"
echo "ok: a helper that dies leaves nothing: $out"
echo garbage >"$T/fake.mode"
out=$(ctl pull-image --id f3 -- "$IMAGE" 2>&1) && fail "a garbled answer counted as a pull"
echo "$out" | grep -q "ended without a result" || fail "garbled answer: $out"
echo "ok: a garbled answer is an error"
stop_agent
echo die-once >"$T/fake.mode"
SPARE=60 start_agent "$static" "$fake"
ctl create-sandbox --id sbf >/dev/null || fail "CreateSandbox"
out=$(ctl pull-image --id f5 -- "$IMAGE" 2>&1) && fail "the fake helper's error was not passed on"
echo "$out" | grep -q "second helper" || fail "after the spare died: $out"
grep -q "the prestarted image pull helper (pid [0-9]*) gave no result; starting another" "$T/agent.log" ||
        fail "no retry after the spare died"
echo "ok: a spare that dies is replaced by a fresh helper once: $out"
stop_agent
start_agent "$static" "$T/no-such-helper"
out=$(ctl pull-image --id f4 -- "$IMAGE" 2>&1) && fail "a missing helper counted as a pull"
echo "$out" | grep -q "Internal: .*start the image pull helper $T/no-such-helper: No such file" || fail "missing helper: $out"
[ ! -e "$containers/f4" ] || fail "a missing helper left $containers/f4"
echo "ok: a missing helper: $out"
out=$(ctl check 2>&1) || fail "the agent did not survive the helper failures: $out"
stop_agent

# CreateSandbox starts a helper ahead; it serves the pod's first pull, and goes with it.
helpers() { pgrep -f -- "^$helper " || true; }
start_agent "$static" "$helper"
ctl create-sandbox --id sb1 --hostname sb1 >/dev/null || fail "CreateSandbox"
# (started by a thread of the agent: CreateSandbox does not wait for it)
for _ in $(seq 50); do [ -n "$(helpers)" ] && break; sleep 0.1; done
spare=$(helpers)
[ -n "$spare" ] && [ "$(ps -o ppid= -p "$spare" | tr -d ' ')" = "$agent_pid" ] ||
        fail "no helper waiting after CreateSandbox: '$spare'"
# It is confined before it reads anything: no_new_privs, a seccomp filter, and only the
# capabilities an unpack and a mount need (CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID
# SYS_ADMIN MKNOD SETFCAP: bits 0-4, 21, 27, 31).
st=/proc/$spare/status
for _ in $(seq 50); do grep -q "^Seccomp:[[:space:]]*2" "$st" && break; sleep 0.1; done
grep -q "^NoNewPrivs:[[:space:]]*1" "$st" && grep -q "^Seccomp:[[:space:]]*2" "$st" &&
        grep -q "^CapEff:[[:space:]]*000000008820001f" "$st" && grep -q "^CapBnd:[[:space:]]*000000008820001f" "$st" &&
        grep -q "^CapPrm:[[:space:]]*000000008820001f" "$st" ||
        fail "the helper is not confined: $(grep -E '^(NoNewPrivs|Seccomp|Cap)' "$st" | tr '\n' ' ')"
echo "ok: the helper runs with no_new_privs, a seccomp filter and 8 capabilities"
ref=$(ctl pull-image --id s1 -- "$IMAGE") || fail "PullImage with the spare: $ref"
grep -q "the prestarted helper (pid $spare)" "$T/agent.log" || fail "the spare did not serve the pull"
mountpoint -q "$containers/s1/rootfs" || fail "no rootfs from the spare's pull"
ref=$(ctl pull-image --id s2 -- "$IMAGE") || fail "the second PullImage: $ref"
for _ in $(seq 50); do [ -z "$(helpers)" ] && break; sleep 0.1; done
[ -z "$(helpers)" ] || fail "helpers left after the pulls: $(helpers)"
echo "ok: a spare started at CreateSandbox (pid $spare) served the first pull; none is left"
stop_agent
SPARE=1 start_agent "$static" "$helper"
ctl create-sandbox --id sb3 >/dev/null || fail "CreateSandbox"
for _ in $(seq 50); do [ -z "$(helpers)" ] && break; sleep 0.1; done
[ -z "$(helpers)" ] || fail "a spare outlived its 1 s wait: $(helpers)"
ref=$(ctl pull-image --id s3 -- "$IMAGE") || fail "PullImage after the spare left: $ref"
echo "ok: a spare that waited in vain exits; the pull starts its own"
stop_agent
SPARE=60 start_agent "$static" "$helper"
ctl create-sandbox --id sb4 >/dev/null || fail "CreateSandbox"
for _ in $(seq 50); do [ -n "$(helpers)" ] && break; sleep 0.1; done
[ -n "$(helpers)" ] || fail "no spare"
stop_agent
for _ in $(seq 50); do [ -z "$(helpers)" ] && break; sleep 0.1; done
[ -z "$(helpers)" ] || fail "a spare outlived its agent: $(helpers)"
echo "ok: a spare goes with its agent"

# What the confinement must still allow: owners, setuid bits and whiteouts survive the pull.
mkdir -p "$T/psrc/data" "$T/psrc/bin"
echo mine >"$T/psrc/data/owned"
echo old >"$T/psrc/data/gone"
chown 1234:4321 "$T/psrc/data/owned"
install -m 4755 /dev/null "$T/psrc/bin/suid"
img_build "$T/poci" perm "$T/psrc"
rm_gone() { rm data/gone; }
img_layer "$T/poci" perm rm_gone
img_push "oci:$T/poci:perm" perm:1
start_agent "$static" "$helper"
ref=$(ctl pull-image --id p1 -- "$REG/perm:1") || fail "PullImage of the permissions image: $ref"
r=$containers/p1/rootfs
[ "$(stat -c %u:%g "$r/data/owned")" = 1234:4321 ] || fail "owner: $(stat -c %u:%g "$r/data/owned")"
[ "$(stat -c %a "$r/bin/suid")" = 4755 ] || fail "setuid file mode: $(stat -c %a "$r/bin/suid")"
[ ! -e "$r/data/gone" ] || fail "a whited-out file is visible"
echo "ok: the confined helper keeps owners, setuid bits and whiteouts"
stop_agent
echo "PASS: PullImage in the agent, in-process and through the helper"
