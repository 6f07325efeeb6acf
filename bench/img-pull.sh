#!/usr/bin/env bash
# Image pull + unpack, side by side, from the same local registry (Debian's docker-registry on
# loopback), same image: six gzip layers, each 20 MiB of random data plus 2,000 small files
# (about 120 MiB compressed).
#   cc-image-pull          libccimage: streamed, verified, unpacked to per-layer dirs
#   ctr image pull         containerd 1.6 started by this script, pull + unpack (overlayfs)
#   skopeo copy + umoci    copy to an OCI layout, then umoci unpack
# Each is run RUNS times (default 3) after one warm-up; the median wall time, the ratios and
# the peak RSS are printed, plus where cc-image-pull's layer time goes.
# All three unpack into the same filesystem: a tmpfs (BENCH_FS=tmpfs, the default; the guest's
# layer store is guest memory), or the disk under /tmp (BENCH_FS=disk). On a disk shared with
# busy neighbours, ext4's inode allocator dominates everyone's time (openat ~1 ms each).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
. "$HERE/../test/integration/img-lib.sh"
for tool in containerd ctr /usr/bin/time; do
        command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
done
img_setup

echo "building the image (6 x (20 MiB random + 2,000 small files))..."
python3 "$HERE/img-pull-image.py" "$T/oci" || fail "image"
img_push_raw "$T/oci" v1 bench/img:v1
rm -rf "$T/oci"
IMG=$REG/bench/img:v1
W=$T/fs
mkdir -p "$W"
if [ "${BENCH_FS:-tmpfs}" = tmpfs ]; then
        mount -t tmpfs -o size=4g,mode=0755 bench "$W" || fail "mount tmpfs"
        MOUNTS+=("$W")
fi

# run NAME CMD...: wall seconds into $WALL, max RSS (KiB) of the command into $RSS.
run() {
        local s e
        s=$(date +%s%N)
        /usr/bin/time -f %M -o "$T/rss" "$@" >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "$*"; }
        e=$(date +%s%N)
        WALL=$(python3 -c "print(($e - $s) / 1e9)")
        RSS=$(tail -n1 "$T/rss")
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

# ---- cc-image-pull ----
ours=() ours_rss=0
for i in $(seq 0 "$RUNS"); do
        rm -rf "$W/ours" && mkdir -p "$W/ours"
        run "$PULL" --insecure "$IMG" "$W/ours"
        cp "$T/run.log" "$T/ours.log"
        [ "$i" -eq 0 ] && continue # warm-up
        ours+=("$WALL")
        [ "$RSS" -gt "$ours_rss" ] && ours_rss=$RSS
done
stages=$(grep '^layer time' "$T/ours.log")
rm -rf "$W/ours"

# ---- containerd 1.6: ctr image pull (pull + unpack into the overlayfs snapshotter) ----
ctrd_start() {
        rm -rf "$W/ctrd" && mkdir -p "$W/ctrd"
        cat >"$W/ctrd/config.toml" <<EOF
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/ctrd/sock"
[ttrpc]
  address = "$W/ctrd/sock.ttrpc"
EOF
        containerd --config "$W/ctrd/config.toml" >"$W/ctrd/log" 2>&1 &
        CTRD=$!
        PIDS+=($CTRD)
        for _ in $(seq 1 100); do
                ctr -a "$W/ctrd/sock" version >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        cat "$W/ctrd/log"
        fail "containerd did not start"
}
ctrd_stop() {
        kill "$CTRD"
        wait "$CTRD" 2>/dev/null
        umount -R "$W/ctrd/root" 2>/dev/null
        rm -rf "$W/ctrd"
}
theirs=() theirs_rss=0
for i in $(seq 0 "$RUNS"); do
        ctrd_start
        run ctr -a "$W/ctrd/sock" -n bench image pull --plain-http "$IMG"
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$CTRD/status")
        ctrd_stop
        [ "$i" -eq 0 ] && continue
        theirs+=("$WALL")
        [ "$hwm" -gt "$theirs_rss" ] && theirs_rss=$hwm
done

# ---- skopeo copy + umoci unpack ----
sk=() sk_rss=0
for i in $(seq 0 "$RUNS"); do
        rm -rf "$W/sk" && mkdir -p "$W/sk"
        s=$(date +%s%N)
        run skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$IMG" "oci:$W/sk/oci:v1"
        r1=$RSS
        run umoci unpack --image "$W/sk/oci:v1" "$W/sk/bundle"
        e=$(date +%s%N)
        rm -rf "$W/sk"
        [ "$i" -eq 0 ] && continue
        sk+=("$(python3 -c "print(($e - $s) / 1e9)")")
        for r in $r1 $RSS; do [ "$r" -gt "$sk_rss" ] && sk_rss=$r; done
done

# Peak RSS does not grow with the image: one 512 MiB layer (zeros, gzip).
python3 "$HERE/img-pull-big-image.py" "$T/big" || fail "big image"
img_push_raw "$T/big" v1 bench/big:v1
rm -rf "$W/ours" && mkdir -p "$W/ours"
run "$PULL" --insecure "$REG/bench/big:v1" "$W/ours"
big_wall=$WALL big_rss=$RSS
rm -rf "$W/ours" "$T/big"

mo=$(median "${ours[@]}")
mc=$(median "${theirs[@]}")
ms=$(median "${sk[@]}")
echo
echo "image pull + unpack, 6 x 20 MiB layers + 12,000 files, median of $RUNS runs (s)"
printf '  %-28s %8.3f s   peak RSS %6d KiB\n' "cc-image-pull" "$mo" "$ours_rss"
printf '  %-28s %8.3f s   peak RSS %6d KiB (containerd VmHWM)\n' "ctr image pull (containerd)" "$mc" "$theirs_rss"
printf '  %-28s %8.3f s   peak RSS %6d KiB\n' "skopeo copy + umoci unpack" "$ms" "$sk_rss"
python3 -c "print('  ratio vs containerd: %.2fx   ratio vs skopeo+umoci: %.2fx' % ($mc / $mo, $ms / $mo))"
echo "  cc-image-pull $stages"
printf '  cc-image-pull, one 512 MiB layer: %.3f s, peak RSS %d KiB\n' "$big_wall" "$big_rss"
echo "  runs: ours ${ours[*]} | containerd ${theirs[*]} | skopeo+umoci ${sk[*]}"
