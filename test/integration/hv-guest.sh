#!/usr/bin/env bash
# Helper sourced by the hv-*.sh integration tests (not a test itself): provides
#   hv_guest_kernel OUTDIR   -> sets HV_KERNEL: the guest image's kernel (`make guest-kernel-dir`,
#                               GUEST_KERNEL), else Debian's cloud kernel fetched into OUTDIR
#   hv_test_initrd OUTFILE   -> a minimal busybox initramfs whose /init loads the virtio
#                               modules, finds the virtio-serial port agent.channel.0 and
#                               answers "ping" with "pong:ping" and "poweroff" with "bye" and
#                               a power-off.
#   hv_libvirtd_start TMPDIR / hv_libvirtd_stop
#                            -> virtlogd and libvirtd for qemu:///system, started only when
#                               not already running (and then stopped by pid), with QEMU run
#                               as root while they run (see below)
# Debian's cloud kernel builds virtio_pci and virtio_console as modules, so they are copied
# into the initramfs and loaded in dependency order (reference 1.9).

hv_guest_kernel() {
        local out=$1 dir
        # The guest image's kernel (GUEST_KERNEL: the project's, or Debian's cloud kernel).
        if dir=$(make -s --no-print-directory guest-kernel-dir | tail -n 1) && [ -f "$dir/vmlinuz" ]; then
                HV_KERNEL_DIR=$dir
        else
                bash tools/fetch-guest-kernel.sh "$out/kernel" >&2 || return 1
                HV_KERNEL_DIR=$out/kernel
        fi
        HV_KERNEL=$HV_KERNEL_DIR/vmlinuz
}

hv_test_initrd() {
        local out=$1 root mods kver m
        command -v cpio >/dev/null || { echo "cpio missing"; return 77; }
        [ -x /bin/busybox ] || { echo "busybox-static missing"; return 77; }
        root=$(mktemp -d "$(dirname "$out")/initrd.XXXXXX")
        kver=$(cat "$HV_KERNEL_DIR/version")
        mods=$HV_KERNEL_DIR/modules/$kver/kernel
        mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
        cp /bin/busybox "$root/bin/"
        for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
                drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev \
                drivers/virtio/virtio_pci drivers/char/virtio_console; do
                # Built-in modules have no .ko: nothing to load.
                [ -f "$mods/$m.ko" ] && cp "$mods/$m.ko" "$root/lib/modules/"
        done
        cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console; do
        [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
# The port appears asynchronously after virtio_console loads: look for it for up to 10 s.
port=
for _ in $(seq 100); do
        for p in /sys/class/virtio-ports/*; do
                [ "$(cat $p/name 2>/dev/null)" = agent.channel.0 ] && port=/dev/${p##*/}
        done
        [ -n "$port" ] && [ -e "$port" ] && break
        sleep 0.1
done
echo "TESTINIT: agent port $port"
[ -n "$port" ] || poweroff -f
while read -r line <"$port"; do
        case "$line" in
        poweroff) echo bye >"$port"; poweroff -f ;;
        *) echo "pong:$line" >"$port" ;;
        esac
done
INIT
        chmod 755 "$root/init"
        (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$out"
        rm -rf "$root"
}

hv_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# QEMU as root while the daemons we start run. As libvirt-qemu, libvirt finds /dev/kvm
# (root-only here, kvm_pvm) unusable while its QEMU probe said KVM works, so it discards and
# re-probes its QEMU capabilities on every lookup: about 50 s per domain start.
hv_libvirtd_start() {
        local dir=$1 conf=/etc/libvirt/qemu.conf
        HV_LIBVIRTD_STARTED=() HV_QEMU_CONF_SAVED=
        if ! hv_alive /run/libvirtd.pid && ! grep -Eq '^\s*user\s*=' "$conf"; then
                HV_QEMU_CONF_SAVED=$dir/qemu.conf.orig
                cp "$conf" "$HV_QEMU_CONF_SAVED"
                printf '\n# added by test/integration/hv-guest.sh while its libvirtd runs\nuser = "root"\ngroup = "root"\n' >>"$conf"
        fi
        if ! hv_alive /run/virtlogd.pid; then
                /usr/sbin/virtlogd -d -p "$dir/virtlogd.pid"
                for _ in $(seq 50); do [ -s "$dir/virtlogd.pid" ] && break; sleep 0.1; done
                HV_LIBVIRTD_STARTED+=("$(cat "$dir/virtlogd.pid")")
        fi
        if ! hv_alive /run/libvirtd.pid; then
                LIBVIRT_LOG_OUTPUTS="3:file:$dir/libvirtd.log" /usr/sbin/libvirtd -d -p "$dir/libvirtd.pid"
                for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
                HV_LIBVIRTD_STARTED+=("$(cat "$dir/libvirtd.pid")")
        fi
}

hv_libvirtd_stop() {
        local pid
        for pid in "${HV_LIBVIRTD_STARTED[@]}"; do
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        done
        HV_LIBVIRTD_STARTED=()
        if [ -n "${HV_QEMU_CONF_SAVED:-}" ]; then
                cp "$HV_QEMU_CONF_SAVED" /etc/libvirt/qemu.conf
                HV_QEMU_CONF_SAVED=
        fi
}
HV_LIBVIRTD_STARTED=() HV_QEMU_CONF_SAVED=
