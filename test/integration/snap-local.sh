#!/usr/bin/env bash
# cc-snapshotter, local mode, against a private containerd 1.6 (proxy plugin):
#  1. the same `ctr snapshots` sequence (prepare, mounts + writes through the mounts, commit,
#     view, usage, label, info, ls, rm, error cases) on containerd's overlayfs and on
#     cc-snapshotter gives the same output once root paths and times are normalised;
#  2. `ctr run --snapshotter cc-snapshotter` runs a two-layer busybox image pulled from a
#     local registry with runc;
#  3. removing the image lets containerd's GC remove every snapshot, and Cleanup leaves no
#     directory behind.
set -u
cd "$(dirname "$0")/../.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
snap_require "needs root (mounts)" containerd ctr runc docker-registry skopeo umoci python3
[ -x "$SNAP_BIN" ] || cc_fail "$SNAP_BIN not built"

# The shipped configuration parses.
mkdir -p "$CC_TMP/cfgcheck"
out=$("$SNAP_BIN" --config configs/snapshotter/config.toml --root "$CC_TMP/cfgcheck" \
        --address "$CC_TMP/cfgcheck.sock" --check 2>&1)
case "$out" in
ok) echo "configs/snapshotter/config.toml: ok" ;;
*) cc_fail "configs/snapshotter/config.toml: $out" ;;
esac
containerd --config configs/containerd/cc-snapshotter-1.6.toml config dump >/dev/null 2>&1 ||
        cc_fail "configs/containerd/cc-snapshotter-1.6.toml rejected by containerd"

snap_start
# A second proxy name on the same socket (as on containerd 1.7+, cc-guest + cc-local).
snap_containerd "[proxy_plugins.cc-other]
  type = \"snapshot\"
  address = \"$SNAP_SOCK\""
C="ctr --address $CTRD_SOCK -n snaptest"

# One run of the command sequence on snapshotter $1 whose root is $2.
sequence() {
        local s=$1 m=$CC_TMP/mnt
        mkdir -p "$m"
        cs() { echo "\$ $*"; $C snapshots --snapshotter "$s" "$@" 2>&1; echo "rc=$?"; }
        mnt() { eval "$($C snapshots --snapshotter "$s" mounts "$m" "$1")" || echo "mount $1 failed"; }
        cs prepare base
        cs mounts "$m" base
        mnt base
        mkdir -p "$m/etc" "$m/data"
        head -c 10000 /dev/zero >"$m/data/a"
        echo base >"$m/etc/name"
        umount "$m"
        cs usage base
        cs commit base-c base
        cs prepare l2 base-c
        cs mounts "$m" l2
        mnt l2
        echo layer2 >"$m/etc/name"
        rm "$m/data/a"
        head -c 5000 /dev/zero >"$m/data/b"
        umount "$m"
        cs usage l2
        cs commit l2-c l2
        cs prepare top l2-c
        cs mounts "$m" top
        mnt top
        echo "top sees: $(cat "$m/etc/name") $(ls "$m/data")"
        umount "$m"
        # `ctr snapshots view` sets no gc.root label: without one, the GC that the first
        # removal below triggers may collect the views first (a race in the reference too).
        cs view v-base base-c
        $C snapshots --snapshotter "$s" label v-base containerd.io/gc.root=keep >/dev/null
        cs mounts "$m" v-base
        cs view v-l2 l2-c
        $C snapshots --snapshotter "$s" label v-l2 containerd.io/gc.root=keep >/dev/null
        cs mounts "$m" v-l2
        cs usage
        cs ls
        cs info l2-c
        # ctr prints labels in Go map order: sort them.
        cs label l2-c containerd.io/snapshot/x=1 other=2 | tr , '\n' | sort
        cs info l2-c
        cs label l2-c containerd.io/snapshot/x= | tr , '\n' | sort
        cs info l2-c
        # Error cases.
        cs prepare base
        cs prepare orphan missing-parent
        cs view v2 top
        cs commit base-c top
        cs rm base-c
        cs rm missing
        cs rm v-base
        cs rm v-l2
        cs rm top
        cs rm l2-c
        cs rm base-c
        cs rm base
        cs ls
}

norm() { # root
        sed -e "s#$1#ROOT#g" \
                -e 's/"\(Created\|Updated\)": "[^"]*"/"\1": "T"/' \
                -e 's#"containerd.io/gc.root": "[^"]*"#"containerd.io/gc.root": "T"#' \
                -e 's#containerd.io/gc.root=[^,]*#containerd.io/gc.root=T#'
}

sequence overlayfs | norm "$CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs" >"$CC_TMP/out-overlayfs"
sequence cc-snapshotter | norm "$SNAP_ROOT" >"$CC_TMP/out-cc"
if ! diff -u "$CC_TMP/out-overlayfs" "$CC_TMP/out-cc"; then
        cc_fail "ctr snapshots output differs between overlayfs and cc-snapshotter"
fi
grep -q "top sees: layer2 b" "$CC_TMP/out-cc" || { cat "$CC_TMP/out-cc"; cc_fail "overlay content wrong"; }
echo "ctr snapshots: $(grep -c '^\$ ' "$CC_TMP/out-cc") commands, identical output on both snapshotters"

# Two names on one socket are separate keyspaces: containerd's GC for one name removes every
# backend snapshot that name's List returns and its metadata does not reference, so a
# shared keyspace would lose the other name's snapshots here.
$C snapshots --snapshotter cc-snapshotter prepare iso-a >/dev/null || cc_fail "prepare iso-a"
$C snapshots --snapshotter cc-other prepare iso-b >/dev/null || cc_fail "prepare iso-b"
$C snapshots --snapshotter cc-other rm iso-b || cc_fail "rm iso-b"
sleep 2 # the GC pass for cc-other (List, Remove, Cleanup) runs right after a removal
$C snapshots --snapshotter cc-snapshotter mounts /tmp/x iso-a >/dev/null ||
        cc_fail "GC of another snapshotter name removed our snapshot"
$C snapshots --snapshotter cc-snapshotter rm iso-a || cc_fail "rm iso-a"
echo "two proxy names on one socket: isolated keyspaces"

# A container from a registry image, with runc (its own namespace).
C="ctr --address $CTRD_SOCK -n snaprun"
snap_registry
snap_busybox_image "$CC_TMP/oci"
snap_push "$CC_TMP/oci:latest" busybox:latest
$C images pull --plain-http --snapshotter cc-snapshotter "$REG/busybox:latest" >"$CC_TMP/pull.log" 2>&1 ||
        { cat "$CC_TMP/pull.log"; cc_fail "ctr images pull"; }
out=$($C run --rm --snapshotter cc-snapshotter "$REG/busybox:latest" snapbb1 \
        /bin/sh -c 'cat /hello.txt; echo written >/new; cat /new' 2>&1) ||
        cc_fail "ctr run: $out"
[ "$out" = "hello from layer 2
written" ] || cc_fail "unexpected container output: $out"
echo "ctr run on cc-snapshotter: ok"
n=$($C snapshots --snapshotter cc-snapshotter ls | tail -n +2 | wc -l)
[ "$n" -eq 2 ] || cc_fail "expected the 2 layer snapshots after the run, got $n"

# Garbage collection: the image goes, its snapshots go (containerd's GC calls List, Remove
# and Cleanup on us), and no directory is left under our root.
$C images rm --sync "$REG/busybox:latest" >/dev/null || cc_fail "ctr images rm"
cc_wait_for 20 bash -c "[ -z \"\$(ls '$SNAP_ROOT/snapshots')\" ]" ||
        cc_fail "snapshot directories left after GC: $(ls "$SNAP_ROOT/snapshots")"
n=$($C snapshots --snapshotter cc-snapshotter ls | tail -n +2 | wc -l)
[ "$n" -eq 0 ] || cc_fail "snapshots left after GC: $n"
grep -q 'Cleanup\|cleanup' "$CC_TMP/snap.log" || true
"$SNAP_BIN" --check --root "$SNAP_ROOT" --address "$CC_TMP/unused.sock" 2>/dev/null | grep -qx ok ||
        cc_fail "state integrity check failed"
echo "PASS: snap-local"
