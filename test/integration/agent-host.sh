#!/usr/bin/env bash
# cc-agent on the host: the agent runs as a process listening on a unix socket and the C test
# client (cc-agent-ctl) drives real containers over a busybox-static rootfs built here:
# create/start, stdout and exit codes, stdin, exec, tty, signals, rlimits, capabilities,
# seccomp, OOM kill + event, pause/resume, stats, policy denials, request validation, and
# nothing left behind (processes, mounts, cgroups).
set -u
BUILD=${BUILD:-build}
AGENT=$BUILD/cc-agent
CTL=$BUILD/cc-agent-ctl

skip() { echo "$1"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, mounts, cgroups)"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || [ -x /bin/busybox ] ||
        skip "needs busybox-static"
unshare -m -p -f true 2>/dev/null || skip "cannot create mount/pid namespaces here"

tmp=$(mktemp -d /tmp/agent-host.XXXXXX)
cgname=cc-agent-it-$$
agent_pid=""
fails=0

cleanup() {
        if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
                kill "$agent_pid"
                for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$agent_pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
expect_eq() { # what got want
        if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
expect_match() { # what text regex
        if printf '%s' "$2" | grep -Eq -- "$3"; then ok "$1"; else fail "$1: '$2' !~ /$3/"; fi
}

# A container area with a busybox-static rootfs: <containers>/<id>/rootfs.
containers=$tmp/containers
mkrootfs() {
        local r=$containers/$1/rootfs
        mkdir -p "$r"/{bin,proc,sys,dev,tmp,etc,root}
        cp "$BUSYBOX" "$r/bin/busybox"
        for a in sh echo cat ls id sleep head tail tr grep mkdir tty stty hostname true wc kill mknod; do
                ln -s busybox "$r/bin/$a"
        done
        echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
}

start_agent() { # [policy file]
        local policy=${1:-$tmp/no-policy.json}
        "$AGENT" --server-addr "unix://$tmp/agent.sock" --containers-dir "$containers" \
                --cgroup-root "$cgname" --policy "$policy" --log-level debug \
                >>"$tmp/agent.log" 2>&1 &
        agent_pid=$!
        # The socket file appears at bind(), a moment before listen(): wait for an answer.
        for _ in $(seq 100); do
                "$CTL" --addr "unix://$tmp/agent.sock" check >/dev/null 2>&1 && break
                sleep 0.1
        done
}

stop_agent() {
        kill "$agent_pid"
        for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$agent_pid" 2>/dev/null && echo "FAIL: agent ignored SIGTERM" && fails=$((fails + 1))
        wait "$agent_pid" 2>/dev/null
        agent_pid=""
        rm -f "$tmp/agent.sock"
}

# The client is a short-lived CLI: under SANITIZE=1 its exit-time leak report is noise.
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$tmp/agent.sock" "$@"; }

mkdir -p "$containers"
for c in c1 c2 c3 sec pod; do mkrootfs $c; done
R() { echo "--rootfs $containers/$1/rootfs"; }
start_agent

# --- health and sandbox
expect_eq "Health.Check" "$(ctl check --wait 5)" "SERVING"
expect_match "Health.Version" "$(ctl version)" "agent_version=0\.1\.0"
expect_match "GetGuestDetails" "$(ctl details)" "supports_seccomp=1 .*vmrss_kib=[0-9]+"
ctl create-sandbox --id pod1 --hostname pod1 && ok "CreateSandbox" || fail "CreateSandbox"
ctl create --id pod --sandbox --rootfs "" -- /pause && ctl start --id pod &&
        ok "sandbox container (agent's pause)" || fail "sandbox container"

# --- stdout, exit code, hostname, pid namespace
out=$(ctl run --id c1 $(R c1) --hostname box -- sh -c 'echo hello from $(hostname) pid $$; exit 3')
rc=$?
expect_eq "stdout" "$out" "hello from box pid 1"
expect_eq "exit code" "$rc" "3"

# --- the pod's namespaces (CreateSandbox): uts (the pod's hostname) and ipc shared, each
# container its own pid namespace (the pod does not share it)
NS='echo $(hostname) $(busybox readlink /proc/self/ns/uts) $(busybox readlink /proc/self/ns/ipc) pid $$'
ns1=$(ctl run --id c1 $(R c1) -- sh -c "$NS")
ns3=$(ctl run --id c3 $(R c3) -- sh -c "$NS")
expect_eq "two containers share the pod's uts and ipc namespaces" "$ns3" "$ns1"
expect_match "... with the pod's hostname, each in a pid namespace of its own" "$ns1" \
        '^pod1 uts:\[[0-9]+\] ipc:\[[0-9]+\] pid 1$'

# --- stdin
expect_eq "stdin" "$(ctl run --id c1 $(R c1) --stdin $'line-one\n' -- sh -c 'read x; echo got:$x')" \
        "got:line-one"

# --- tty
out=$(ctl run --id c1 $(R c1) --tty --rows 30 --cols 99 -- sh -c 'tty; stty size' | tr -d '\r')
expect_eq "tty" "$out" $'/dev/pts/0\n30 99'

# --- exec joins the namespaces; signals; 128+n
ctl create --id c2 $(R c2) --hostname two -- sh -c \
        'trap "echo got-term; exit 7" TERM; echo started; while true; do sleep 0.1; done'
ctl start --id c2
out=$(ctl exec --id c2 --exec-id e1 -- sh -c 'echo $(hostname) $(cat /proc/1/cmdline | tr "\0" " ")')
expect_match "exec joins uts+pid+mnt namespaces" "$out" "^two sh -c trap"
ctl exec --id c2 --exec-id e2 -- sh -c 'exit 5'
expect_eq "exec exit code" "$?" "5"
ctl exec --id c2 --exec-id e3 -- sleep 30 &
sleep 0.5
ctl signal --id c2 --exec-id e3 --signal 9
wait $!
expect_eq "exec killed by SIGKILL -> 137" "$?" "137"

# --- pause / resume (cgroup freezer)
ctl pause --id c2
frozen=$(grep -h '^frozen' /sys/fs/cgroup/unified/$cgname/c2/cgroup.events \
        /sys/fs/cgroup/$cgname/c2/cgroup.events 2>/dev/null | head -1)
expect_eq "paused (frozen)" "$frozen" "frozen 1"
ctl resume --id c2
frozen=$(grep -h '^frozen' /sys/fs/cgroup/unified/$cgname/c2/cgroup.events \
        /sys/fs/cgroup/$cgname/c2/cgroup.events 2>/dev/null | head -1)
expect_eq "resumed" "$frozen" "frozen 0"
expect_match "stats" "$(ctl stats --id c2)" "pids_current=[1-9]"
ctl signal --id c2 --signal 15
expect_eq "SIGTERM handled by the container -> its exit code" "$(ctl wait --id c2)" "7"
expect_match "output after exit" "$(ctl read-stdout --id c2)" "started.*got-term|started"
ctl remove --id c2 && ok "remove" || fail "remove"

# --- rlimits, capabilities, seccomp, no_new_privs
expect_match "rlimit NOFILE" \
        "$(ctl run --id c1 $(R c1) --rlimit RLIMIT_NOFILE:42:43 -- sh -c 'grep "open files" /proc/self/limits')" \
        "Max open files +42 +43"
out=$(ctl run --id c1 $(R c1) --cap CAP_CHOWN --cap CAP_KILL -- grep -E '^Cap(Bnd|Eff)' /proc/self/status)
expect_eq "capabilities dropped (CHOWN+KILL only)" "$(echo $out)" "CapEff: 0000000000000021 CapBnd: 0000000000000021"
expect_match "capabilities for a non-root user" \
        "$(echo $(ctl run --id c1 $(R c1) --user 1000:1000:10,11 --cap CAP_KILL -- sh -c 'id; grep CapEff /proc/self/status'))" \
        "uid=1000 gid=1000 groups=10,11.*CapEff:.0000000000000000"
expect_eq "seccomp: mkdir fails with EPERM" \
        "$(ctl run --id c1 $(R c1) --seccomp-errno mkdir --seccomp-errno mkdirat -- sh -c 'mkdir /tmp/x 2>&1; echo rc=$?')" \
        "mkdir: can't create directory '/tmp/x': Operation not permitted
rc=1"
expect_match "no_new_privs" "$(ctl run --id c1 $(R c1) --no-new-privs -- grep NoNewPrivs /proc/self/status)" \
        "NoNewPrivs:.1"
expect_eq "masked path /sys/firmware (empty)" "$(ctl run --id c1 $(R c1) -- sh -c 'ls /sys/firmware | wc -l')" "0"
expect_eq "masked path /proc/keys (/dev/null)" "$(ctl run --id c1 $(R c1) -- sh -c 'wc -c < /proc/keys')" "0"
expect_match "readonly path /proc/sys" \
        "$(ctl run --id c1 $(R c1) -- sh -c '(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; echo rc=$?')" \
        "Read-only file system"

# --- device isolation: nodes made with mknod cannot be opened; the standard devices work
out=$(ctl run --id c1 $(R c1) --cap CAP_MKNOD --cap CAP_DAC_OVERRIDE -- sh -c \
        'mknod /tmp/disk b 8 0 && mknod /dev/disk2 b 8 0 && mknod /dev/shm/mem c 1 1 &&
         for d in /tmp/disk /dev/disk2 /dev/shm/mem; do (head -c1 $d >/dev/null) 2>&1; done;
         head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo null-ok')
expect_eq "mknod'ed nodes unusable, standard devices fine" "$out" \
        "head: /tmp/disk: Permission denied
head: /dev/disk2: Permission denied
head: /dev/shm/mem: Permission denied
3
null-ok"

# --- env, cwd, read-only rootfs, pids limit, UpdateContainer
expect_eq "env and cwd" "$(ctl run --id c1 $(R c1) --env FOO=bar --cwd /tmp -- sh -c 'echo $FOO $(pwd)')" \
        "bar /tmp"
expect_match "read-only rootfs" "$(ctl run --id c1 $(R c1) --readonly -- sh -c '(echo x > /x) 2>&1')" \
        "Read-only file system"
expect_match "pids limit" \
        "$(ctl run --id c1 $(R c1) --pids 4 -- sh -c 'for i in 1 2 3 4 5 6; do sleep 1 & done 2>&1; wait' 2>&1)" \
        "can't fork|Resource temporarily unavailable"
ctl create --id c2 $(R c2) -- sleep 30
ctl start --id c2
ctl update --id c2 --memory 50331648 --pids 20
st=$(ctl stats --id c2)
expect_match "UpdateContainer applied (stats)" "$(echo $st)" "memory_limit=50331648 .*pids_limit=20"
ctl remove --id c2

# --- memory limit: OOM kill reported by exit code and GetOOMEvent
expect_match "GetOOMEvent honours the caller's deadline" "$(ctl oom-event --timeout 1 2>&1)" \
        "DeadlineExceeded"
ctl oom-event --timeout 30 >"$tmp/oom.out" &
oom_pid=$!
ctl run --id c3 $(R c3) --memory 33554432 -- sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived'
expect_eq "OOM-killed init -> 137" "$?" "137"
wait $oom_pid
expect_eq "GetOOMEvent names the container" "$(cat "$tmp/oom.out")" "c3"

# --- validation: the host is hostile
expect_match "bad container id" "$(ctl create --id ../x $(R c1) -- true 2>&1)" "InvalidArgument"
expect_match "rootfs of another container" "$(ctl create --id c3 $(R c1) -- true 2>&1)" \
        "PermissionDenied.*not in the area of container 'c3'"
expect_match "rootfs outside the containers area" \
        "$(ctl create --id c3 --rootfs / -- true 2>&1)" "PermissionDenied.*outside the containers area"
ln -s ../c1 "$containers/c3/evil"
expect_match "symlink out of the area" \
        "$(ctl create --id c3 --rootfs "$containers/c3/evil/rootfs" -- true 2>&1)" \
        "PermissionDenied"
expect_match "bind mount of a guest path" \
        "$(ctl create --id c3 $(R c3) --mount /mnt:/etc:bind:rbind,ro -- true 2>&1)" \
        "PermissionDenied.*outside the containers area"
mkdir -p "$containers/c3-shared"
echo shared-data >"$containers/c3-shared/file"
expect_eq "bind mount from the container's own shared area" \
        "$(ctl run --id c3 $(R c3) --mount /mnt:$containers/c3-shared:bind:rbind,ro -- cat /mnt/file)" \
        "shared-data"
echo copied >"$tmp/src"
ctl copy-file --src "$tmp/src" --dst "$containers/c1-copy/hosts" && [ "$(cat "$containers/c1-copy/hosts")" = copied ] &&
        ok "CopyFile into the containers area" || fail "CopyFile"
expect_match "CopyFile outside" "$(ctl copy-file --src "$tmp/src" --dst /etc/evil 2>&1)" "PermissionDenied"
[ ! -e /etc/evil ] || { rm -f /etc/evil; fail "CopyFile wrote /etc/evil"; }
# A guest-pulled image (an upper next to its rootfs) is the guest's: no CopyFile into its rootfs,
# its upper or its work directory; nor outside a shared-files area (<id>-*).
mkdir -p "$containers/pulled/upper" "$containers/pulled/rootfs/etc"
expect_match "CopyFile into a pulled rootfs" \
        "$(ctl copy-file --src "$tmp/src" --dst "$containers/pulled/rootfs/etc/x" 2>&1)" \
        "PermissionDenied: CopyFile into the rootfs of pulled refused: its image was pulled in the guest"
expect_match "CopyFile into an upper" \
        "$(ctl copy-file --src "$tmp/src" --dst "$containers/pulled/upper/etc/x" 2>&1)" \
        "PermissionDenied: CopyFile into 'pulled/upper' refused"
expect_match "CopyFile outside a shared-files area" \
        "$(ctl copy-file --src "$tmp/src" --dst "$containers/c1/notes" 2>&1)" "PermissionDenied"
[ ! -e "$containers/pulled/rootfs/etc/x" ] && [ ! -e "$containers/pulled/upper/etc" ] &&
        [ ! -e "$containers/c1/notes" ] && ok "nothing written by the refused CopyFiles" ||
        fail "a refused CopyFile wrote"
expect_match "unknown container" "$(ctl start --id nope 2>&1)" "NotFound"
expect_eq "agent still serving after errors" "$(ctl check)" "SERVING"

# --- DestroySandbox removes everything; then the policy
ctl destroy-sandbox && ok "DestroySandbox" || fail "DestroySandbox"
expect_eq "containers still run after DestroySandbox (host mode)" \
        "$(ctl run --id c1 $(R c1) -- echo again)" "again"
stop_agent
cat >"$tmp/policy.json" <<'JSON'
{
  "default": "allow",
  "rules": [
    { "name": "no-exec", "requests": ["ExecProcess"], "action": "deny" },
    { "name": "hide-secret-output", "requests": ["ReadStdout", "ReadStderr"],
      "containers": ["sec*"], "action": "deny" },
    { "name": "no-copy", "requests": ["CopyFile"], "action": "deny" }
  ]
}
JSON
start_agent "$tmp/policy.json"
expect_match "policy loaded" "$(grep 'policy loaded' "$tmp/agent.log")" "3 rules"
ctl create --id sec $(R sec) -- sh -c 'echo secret; sleep 30'
ctl start --id sec
expect_match "policy denies ExecProcess" "$(ctl exec --id sec --exec-id e1 -- true 2>&1)" \
        "PermissionDenied: ExecProcess denied by agent policy rule 'no-exec'"
expect_match "policy denies ReadStdout of sec* (rule named)" "$(ctl read-stdout --id sec 2>&1)" \
        "PermissionDenied: ReadStdout denied by agent policy rule 'hide-secret-output'"
expect_match "policy denies CopyFile" "$(ctl copy-file --src "$tmp/src" --dst "$containers/sec-x/f" 2>&1)" \
        "PermissionDenied: CopyFile denied by agent policy rule 'no-copy'"
expect_eq "allowed requests still work" "$(ctl run --id c1 $(R c1) -- echo fine)" "fine"
ctl remove --id sec
# SIGTERM with calls blocked on a running container still ends the agent promptly.
ctl create --id c2 $(R c2) -- sleep 60
ctl start --id c2
ctl wait --id c2 >/dev/null 2>&1 &
ctl read-stdout --id c2 >/dev/null 2>&1 &
ctl oom-event --timeout 60 >/dev/null 2>&1 &
sleep 0.3
t0=$(date +%s)
stop_agent
expect_eq "SIGTERM with blocked calls: agent exits within 5 s" "$(( $(date +%s) - t0 < 5 ))" "1"
wait

# --- nothing left behind
sleep 0.2
left=$(grep -c "$tmp" /proc/self/mountinfo)
expect_eq "no mounts left" "$left" "0"
procs=$(for p in /proc/[0-9]*; do r=$(readlink "$p/root" 2>/dev/null) || continue; case $r in "$containers"*) echo "${p#/proc/}";; esac; done)
expect_eq "no container processes left" "$procs" ""
cgs=$(ls -d /sys/fs/cgroup/$cgname /sys/fs/cgroup/*/$cgname 2>/dev/null)
expect_eq "no cgroups left" "$cgs" ""

if [ "$fails" -ne 0 ]; then
        echo "--- agent log (tail)"
        tail -n 40 "$tmp/agent.log"
        echo "$fails check(s) failed"
        exit 1
fi
echo "agent-host: all checks passed"
