#!/usr/bin/env bash
# Boot to agent-ready under QEMU TCG: cc-agent as /init (time until Health.Check answers
# SERVING over the virtio-serial agent channel) against a minimal /init that only loads the
# same kernel modules and writes one byte to the same port (time until the host reads it).
# Same kernel, same modules, same QEMU command line; runs alternate; medians compared.
# Target: agent at most 5% slower. AGENT_BOOT_RUNS (default 5) runs of each.
set -euo pipefail
BUILD=${BUILD:-build}
runs=${AGENT_BOOT_RUNS:-5}
QEMU=$(command -v qemu-system-x86_64) || { echo "agent-boot: no qemu-system-x86_64"; exit 0; }
tmp=$(mktemp -d /tmp/agent-boot.XXXXXX)
qpid=""
cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

make -s guest-image >/dev/null
# The baseline /init: modules, find the port, write one byte, then wait.
cat >"$tmp/min-init.c" <<'C'
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void)
{
        mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
        mount("sysfs", "/sys", "sysfs", 0, NULL);
        struct utsname u;
        uname(&u);
        FILE *f = fopen("/etc/cc-agent/modules", "r");
        char line[512], path[800];
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(path, sizeof(path), "/lib/modules/%s/%s", u.release, line);
                int fd = open(path, O_RDONLY);
                syscall(SYS_finit_module, fd, "", 0);
                close(fd);
        }
        for (;;) {
                DIR *d = opendir("/sys/class/virtio-ports");
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        char p[300], name[64] = "";
                        snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", de->d_name);
                        FILE *nf = fopen(p, "r");
                        if (!nf)
                                continue;
                        fgets(name, sizeof(name), nf);
                        fclose(nf);
                        if (strncmp(name, "agent.channel.0", 15) == 0) {
                                snprintf(p, sizeof(p), "/dev/%s", de->d_name);
                                int fd = open(p, O_RDWR);
                                write(fd, "!", 1); /* blocks until the host side is attached */
                                for (;;)
                                        pause();
                        }
                }
                if (d)
                        closedir(d);
                usleep(10000);
        }
}
C
cc -static -Os -o "$tmp/min-init" "$tmp/min-init.c"
kdir=build/guest/kernel-${GUEST_KERNEL_PKG:-linux-image-cloud-amd64}
bash guest-agent/build-guest-image.sh --agent "$tmp/min-init" --kernel-dir "$kdir" \
        --out "$tmp/base" >/dev/null

boot() { # initrd kind -> prints seconds to ready
        local initrd=$1 kind=$2 sock=$tmp/agent.sock
        rm -f "$sock"
        local t0
        t0=$(date +%s%N)
        "$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
                -kernel build/guest/vmlinuz -initrd "$initrd" \
                -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0" \
                -serial null -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=agent.channel.0 &
        qpid=$!
        while [ ! -S "$sock" ]; do sleep 0.01; done
        if [ "$kind" = agent ]; then
                "$BUILD/cc-agent-ctl" --addr "unix://$sock" check --wait 120 >/dev/null
        else
                # Process substitution: bash does not wait for socat, which lives on until
                # QEMU goes away.
                IFS= read -r -n 1 -d '' -t 120 _ < <(exec socat -u "UNIX-CONNECT:$sock" -) || true
        fi
        local t1
        t1=$(date +%s%N)
        kill "$qpid"
        wait "$qpid" 2>/dev/null || true
        qpid=""
        echo "scale=3; ($t1 - $t0) / 1000000000" | bc
}

agent=() base=()
for i in $(seq "$runs"); do
        base+=("$(boot "$tmp/base/initrd.img" base)")
        agent+=("$(boot build/guest/initrd.img agent)")
        echo "run $i: minimal-init ${base[-1]} s, cc-agent ${agent[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mb=$(median "${base[@]}")
ma=$(median "${agent[@]}")
ratio=$(echo "scale=3; $ma / $mb" | bc)
printf '\n%-36s %10s\n' "boot to ready under TCG (median of $runs)" "seconds"
printf '%-36s %10s\n' "minimal /init (one byte on the port)" "$mb"
printf '%-36s %10s\n' "cc-agent (Health.Check SERVING)" "$ma"
printf '%-36s %10s   (target <= 1.05)\n' "ratio cc-agent / minimal" "$ratio"
