#!/usr/bin/env bash
# Boot to agent-ready under QEMU TCG: cc-agent as /init (time until Health.Check answers
# SERVING over the virtio-serial agent channel) against a minimal /init that only loads the
# same kernel modules and writes one byte to the same port (time until the host reads it).
# Same kernel, same modules, same QEMU command line; runs alternate; medians compared.
# Target: agent at most 5% slower. AGENT_BOOT_RUNS (default 5) runs of each, twice: plain TCG
# (host wall clock from QEMU's start, and the guest's own clock from the kernel's start to
# ready, which each /init logs on the console as uptime_ms), then with -icount shift=0,sleep=off,
# where the guest clock counts executed instructions and does not move with the host's load.
#
# `bench/agent-boot.sh kernels`: the same cc-agent image on the project's kernel
# (tools/build-guest-kernel.sh) against Debian's cloud kernel, runs alternating, AGENT_BOOT_RUNS
# of each (default 5), both clocks; the kernels' and initramfs' sizes. The kernel command line
# is the one libhv gives a pod (hypervisor/hv-internal.h, HV_GUEST_BASE_PARAMS).
set -euo pipefail
mode=${1:-agent}
BUILD=${BUILD:-build}
runs=${AGENT_BOOT_RUNS:-5}
# AGENT_BOOT_INITRD: another image of the agent to boot (e.g. one built with --libs-in-initrd).
AGENT_INITRD=${AGENT_BOOT_INITRD:-build/guest/initrd.img}
QEMU=$(command -v qemu-system-x86_64) || { echo "agent-boot: no qemu-system-x86_64"; exit 0; }
tmp=$(mktemp -d /tmp/agent-boot.XXXXXX)
qpid=""
cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

[ "$mode" = kernels ] || make -s guest-image >/dev/null
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "scale=3; $1 / $2" | bc; }

# The baseline /init: modules, find the port, write one byte, then wait.
cat >"$tmp/min-init.c" <<'C'
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
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
                                struct timespec up;
                                clock_gettime(CLOCK_BOOTTIME, &up);
                                int con = open("/dev/console", O_WRONLY);
                                dprintf(con, "minimal init ready uptime_ms=%lld\n",
                                        (long long)up.tv_sec * 1000 + up.tv_nsec / 1000000);
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
if [ "$mode" != kernels ]; then
        cc -static -Os -o "$tmp/min-init" "$tmp/min-init.c"
        # The kernel of build/guest's image (GUEST_KERNEL).
        kdir=$(make -s --no-print-directory guest-kernel-dir | tail -n 1)
        bash guest-agent/build-guest-image.sh --agent "$tmp/min-init" --kernel-dir "$kdir" \
                --out "$tmp/base" >/dev/null
fi

boot() { # initrd kind [kernel [cmdline]] -> prints seconds to ready
        local initrd=$1 kind=$2 kernel=${3:-build/guest/vmlinuz} sock=$tmp/agent.sock
        local cmdline=${4:-console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0}
        rm -f "$sock" "$tmp/console.log"
        local t0
        t0=$(date +%s%N)
        "$QEMU" -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nodefaults -nographic -no-reboot \
                -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
                ${BOOT_ICOUNT:+-icount shift=0,sleep=off} -serial "file:$tmp/console.log" -device virtio-serial-pci \
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
        for _ in $(seq 50); do grep -q 'uptime_ms=' "$tmp/console.log" && break; sleep 0.1; done
        grep -o 'uptime_ms=[0-9]*' "$tmp/console.log" | head -1 | cut -d= -f2 >"$tmp/uptime"
        # QEMU's resident set at ready (guest pages touched + TCG's translation cache + QEMU).
        awk '/^VmRSS:/ {print $2}' "/proc/$qpid/status" >"$tmp/rss"
        kill "$qpid"
        wait "$qpid" 2>/dev/null || true
        qpid=""
        echo "scale=3; ($t1 - $t0) / 1000000000" | bc
}

if [ "$mode" = kernels ]; then
        make -s BUILD=build build/cc-agent-static build/cc-agent-pull >/dev/null
        deb=$(make -s --no-print-directory GUEST_KERNEL=debian guest-kernel-dir | tail -n 1)
        prj=$(make -s --no-print-directory GUEST_KERNEL=project guest-kernel-dir | tail -n 1)
        for k in deb prj; do
                bash guest-agent/build-guest-image.sh --agent build/cc-agent-static \
                        --pull-helper build/cc-agent-pull --kernel-dir "${!k}" --out "$tmp/$k" >/dev/null
        done
        # libhv's command line for a pod (HV_QEMU_BASE_PARAMS), plus quiet and the channel.
        base=$(sed -n '/define HV_GUEST_BASE_PARAMS/,/^$/p' hypervisor/hv-internal.h | grep -o '"[^"]*"' | tr -d '"\n' | tr -s ' ')
        cmdline="console=ttyS0 ${base% } quiet agent.server_addr=serial://agent.channel.0"
        wd=() wp=() gd=() gp=() rd=() rp=()
        for i in $(seq "$runs"); do
                wd+=("$(boot "$tmp/deb/initrd.img" agent "$tmp/deb/vmlinuz" "$cmdline")")
                gd+=("$(cat "$tmp/uptime")") rd+=("$(cat "$tmp/rss")")
                wp+=("$(boot "$tmp/prj/initrd.img" agent "$tmp/prj/vmlinuz" "$cmdline")")
                gp+=("$(cat "$tmp/uptime")") rp+=("$(cat "$tmp/rss")")
                echo "run $i: debian ${wd[-1]} s (guest clock ${gd[-1]} ms, QEMU RSS ${rd[-1]} KiB), project ${wp[-1]} s (guest clock ${gp[-1]} ms, QEMU RSS ${rp[-1]} KiB)" >&2
        done
        mwd=$(median "${wd[@]}") mwp=$(median "${wp[@]}") mgd=$(median "${gd[@]}") mgp=$(median "${gp[@]}")
        mrd=$(median "${rd[@]}") mrp=$(median "${rp[@]}")
        kib() { echo $(($(stat -c %s "$1") / 1024)); }
        mib() { echo "scale=1; $1 / 1024" | bc; }
        printf '\n%-52s %12s %12s %7s\n' "cc-agent ready under TCG (median of $runs)" "debian" "project" "ratio"
        printf '%-52s %12s %12s %7s\n' "QEMU start -> ready, host wall clock (s)" "$mwd" "$mwp" "$(ratio "$mwp" "$mwd")"
        printf '%-52s %12s %12s %7s\n' "kernel start -> ready, guest clock (ms)" "$mgd" "$mgp" "$(ratio "$mgp" "$mgd")"
        printf '%-52s %12s %12s\n' "before the guest clock starts (s, wall - guest)" \
                "$(echo "scale=3; $mwd - $mgd / 1000" | bc)" "$(echo "scale=3; $mwp - $mgp / 1000" | bc)"
        printf '%-52s %12s %12s %7s\n' "QEMU resident set at ready, 512 MiB guest (MiB)" "$(mib "$mrd")" "$(mib "$mrp")" \
                "$(ratio "$mrp" "$mrd")"
        printf '%-52s %12s %12s %7s\n' "kernel (vmlinuz, KiB)" "$(kib "$tmp/deb/vmlinuz")" "$(kib "$tmp/prj/vmlinuz")" \
                "$(ratio "$(kib "$tmp/prj/vmlinuz")" "$(kib "$tmp/deb/vmlinuz")")"
        printf '%-52s %12s %12s %7s\n' "initramfs (KiB)" "$(kib "$tmp/deb/initrd.img")" "$(kib "$tmp/prj/initrd.img")" \
                "$(ratio "$(kib "$tmp/prj/initrd.img")" "$(kib "$tmp/deb/initrd.img")")"
        echo "kernels: debian $(cat "$deb/package"), project $(cat "$prj/version") ($(cat "$prj/package"))"
        echo "command line: $cmdline"
        exit 0
fi

# series: RUNS alternating boots of each image; medians of wall seconds and guest-clock ms.
series() {
        local i agent=() base=() gagent=() gbase=()
        for i in $(seq "$runs"); do
                base+=("$(boot "$tmp/base/initrd.img" base)")
                gbase+=("$(cat "$tmp/uptime")")
                agent+=("$(boot "$AGENT_INITRD" agent)")
                gagent+=("$(cat "$tmp/uptime")")
                echo "run $i${BOOT_ICOUNT:+ (icount)}: minimal-init ${base[-1]} s (guest clock ${gbase[-1]} ms), cc-agent ${agent[-1]} s (guest clock ${gagent[-1]} ms)" >&2
        done
        echo "$(median "${base[@]}") $(median "${agent[@]}") $(median "${gbase[@]}") $(median "${gagent[@]}")"
}
read -r mb ma gb ga < <(BOOT_ICOUNT= series)
read -r _ _ ib ia < <(BOOT_ICOUNT=1 series)
printf '\n%-52s %10s %10s %7s\n' "boot to ready under TCG (median of $runs)" "minimal" "cc-agent" "ratio"
printf '%-52s %10s %10s %7s\n' "QEMU start -> ready, host wall clock (s)" "$mb" "$ma" "$(ratio "$ma" "$mb")"
printf '%-52s %10s %10s %7s\n' "kernel start -> ready, guest clock (ms)" "$gb" "$ga" "$(ratio "$ga" "$gb")"
printf '%-52s %10s %10s %7s\n' "the same with -icount shift=0,sleep=off (ms)" "$ib" "$ia" "$(ratio "$ia" "$ib")"
echo "(target: cc-agent at most 1.05x the minimal /init. The host wall clock moves with the"
echo " machine's load; under -icount the guest clock counts instructions and repeats to a few ms.)"
