#!/usr/bin/env bash
# deploy-installer: tools/cc-deploy against scratch containerd configs under throw-away
# --dest-root trees: a config that is absent, empty, version 1 (no `version` line, no final
# newline), a hand-written realistic version 2 config with other runtimes and plugins, and the
# output of `containerd config default`. For each: install; the merged file parses (tomllib),
# has our entries, and keeps every other setting; a second install changes nothing (tree and
# mtimes compared); a private containerd 1.6 started on a scratch copy (own root, state and
# sockets) loads the runtime entries and the proxy snapshotter; uninstall restores the file
# byte for byte (cmp) and leaves nothing else under the dest root. Then the refusals: an
# existing runtime table, another CRI snapshotter, a version 3 config, broken TOML, a foreign
# file where the shim link goes: each fails with its message and changes nothing. Each runtime
# entry's pod_annotations lists only what its configuration honours: nothing for the shipped
# ones; for configurations that enable annotations, exactly those (a regular expression as the
# hypervisor prefix's wildcard, config_path when valid_config_paths lists files).
# Runs alone: BUILD=build bash test/integration/deploy-installer.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/integration/lib.sh

PY=/usr/bin/python3
DEPLOY=(bash tools/cc-deploy)
DESTS=()

# On any exit: uninstall what an interrupted run left (it stops the supervised snapshotter by
# its pid file), then the shared cleanup.
deploy_cleanup() {
	local rc=$?
	set +e
	for d in "${DESTS[@]}"; do
		[ -f "$d/var/lib/cc-deploy/manifest" ] &&
			"${DEPLOY[@]}" uninstall --dest-root "$d" --purge >/dev/null 2>&1 || true
	done
	(exit "$rc")
	cc_cleanup
}
trap deploy_cleanup EXIT
trap "exit 143" TERM INT  # so a timeout still runs the cleanup

[ "$(id -u)" = 0 ] || cc_skip "needs root (a private containerd)"
command -v containerd >/dev/null && command -v ctr >/dev/null || cc_skip "containerd/ctr not installed"
"$PY" -c 'import tomllib' 2>/dev/null || cc_skip "$PY has no tomllib (Python 3.11+)"
# The guest image is built once, in build/guest; a sanitizer build (BUILD=build/san) shares it.
GUEST=$BUILD/guest
[ -f "$GUEST/vmlinuz" ] || GUEST=build/guest
for f in "$BUILD/containerd-shim-kata-cc-v2" "$BUILD/cc-snapshotter" "$BUILD/nydus-overlayfs" \
	"$GUEST/vmlinuz" "$GUEST/initrd.img"; do
	[ -f "$f" ] || cc_skip "$f is not built (make; make guest-image)"
done
# A private copy of the inputs: other work in the same tree may rebuild build/guest or edit
# configs/ while this runs, and "a second install changes nothing" needs fixed inputs.
SRC=$CC_TMP/src
mkdir -p "$SRC/build/guest" "$SRC/tools"
cp -r configs "$SRC/"
cp tools/cc-deploy tools/cc_deploy_toml.py "$SRC/tools/"
cp "$BUILD/containerd-shim-kata-cc-v2" "$BUILD/cc-snapshotter" "$BUILD/nydus-overlayfs" "$SRC/build/"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$SRC/build/guest/"
DEPLOY=(env -u BUILD bash "$SRC/tools/cc-deploy")
HANDLERS=()
for h in kata=qemu kata-qemu=qemu kata-clh=clh kata-qemu-tdx=qemu-tdx kata-clh-tdx=clh-tdx \
	kata-qemu-sev=qemu-sev kata-qemu-snp=qemu-snp; do
	[ -f "$SRC/configs/runtime/configuration-${h#*=}.toml" ] && HANDLERS+=("$h")
done
echo "handlers with a runtime configuration: ${HANDLERS[*]}"

# ---- scratch configs -----------------------------------------------------------------------------
mkcase() { # NAME: a dest root with its config.toml written from stdin ("absent": none)
	local d=$CC_TMP/$1/root
	mkdir -p "$d"
	DESTS+=("$d")
	if [ "$1" != absent ]; then
		mkdir -p "$d/etc/containerd"
		cat >"$d/etc/containerd/config.toml"
	fi
}
mkcase absent </dev/null
mkcase empty </dev/null
mkcase v1 < <(printf '# version 1: plugins are named by short id\nroot = "/var/lib/containerd"\noom_score = -999\n\n[plugins.cri]\n  sandbox_image = "registry.k8s.io/pause:3.6"\n  restrict_oom_score_adj = true\n[plugins.cri.containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n[plugins.cri.containerd.runtimes.runc.options]\n  SystemdCgroup = false')

mkcase v2 <<'TOML'
# /etc/containerd/config.toml of a node that already runs runc and gVisor pods.
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "/run/containerd/containerd.sock"
  max_recv_message_size = 16777216

[debug]
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    restrict_oom_score_adj = true
    enable_unprivileged_ports = true

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"   # the stock one
      disable_snapshot_annotations = true

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
        runtime_type = "io.containerd.runsc.v1"

    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
      endpoint = ["https://mirror.example.com", "https://registry-1.docker.io"]

  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt/containerd"

[proxy_plugins]
  [proxy_plugins.stargz]
    type = "snapshot"
    address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"
TOML
mkcase default < <(containerd config default)

# ---- checks --------------------------------------------------------------------------------------
# check_merged ORIG|"" MERGED VERSION CRI_ID: our entries are there, everything else is the same.
check_merged() {
	"$PY" test/tools/deploy-check-merged.py "$@" "${HANDLERS[@]}"
}

# tree DIR: every path with size, mode, mtime and link target, except the running
# snapshotter's database and log (they change by themselves).
tree() {
	find "$1" \( -path '*/io.containerd.snapshotter.v1.cc-snapshotter/*' -o -name cc-snapshotter.log \) -prune \
		-o -printf '%p %s %m %T@ %l\n' | sort
}

# scratch COPY: the merged config with containerd's root, state, sockets and the snapshotter
# address moved under $2 (a private containerd never touches the system's paths).
scratch() {
	"$PY" test/tools/deploy-scratch-config.py "$1" "$2" "$3" "$4"
}

# containerd_check NAME CONFIG CRI: a private containerd on a scratch copy loads everything.
containerd_check() {
	local name=$1 dest=$CC_TMP/$1/root priv=$CC_TMP/$1/ctrd pid
	mkdir -p "$priv"
	scratch "$dest/etc/containerd/config.toml" "$priv/config.toml" "$priv" \
		"$dest/run/cc-snapshotter/cc-snapshotter.sock"
	containerd --config "$priv/config.toml" >"$CC_TMP/$name-containerd.log" 2>&1 &
	pid=$!
	CC_PIDS+=("$pid")
	cc_wait_for 30 ctr --address "$priv/grpc.sock" version ||
		cc_fail "$name: containerd did not start on the merged config"
	ctr --address "$priv/grpc.sock" plugins ls >"$priv/plugins"
	grep -Eq '^io\.containerd\.snapshotter\.v1[[:space:]]+cc-snapshotter[[:space:]].*ok' "$priv/plugins" ||
		cc_fail "$name: proxy snapshotter cc-snapshotter not loaded: $(grep snapshotter "$priv/plugins")"
	grep -Eq '^io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]].*ok' "$priv/plugins" ||
		cc_fail "$name: CRI plugin not ok: $(grep cri "$priv/plugins")"
	# CRI logs the configuration it runs with: every handler, its type and ConfigPath.
	cc_wait_for 10 grep -q 'Start cri plugin with config' "$CC_TMP/$name-containerd.log" ||
		cc_fail "$name: no CRI config in the containerd log"
	local cfgline h
	cfgline=$(grep -m1 'Start cri plugin with config' "$CC_TMP/$name-containerd.log")
	grep -q 'Snapshotter:cc-snapshotter' <<<"$cfgline" || cc_fail "$name: CRI snapshotter is not cc-snapshotter"
	grep -q 'DisableSnapshotAnnotations:false' <<<"$cfgline" || cc_fail "$name: CRI snapshot annotations disabled"
	for h in "${HANDLERS[@]}"; do
		grep -q " ${h%%=*}:{Type:io.containerd.kata-cc.v2 " <<<"$cfgline" ||
			grep -q "\[${h%%=*}:{Type:io.containerd.kata-cc.v2 " <<<"$cfgline" ||
			cc_fail "$name: CRI has no runtime ${h%%=*} of type io.containerd.kata-cc.v2"
	done
	grep -q "PrivilegedWithoutHostDevices:true" <<<"$cfgline" || cc_fail "$name: privileged_without_host_devices lost"
	# The runtime options as CRI will send them (ConfigPath) and the pod annotations filter.
	containerd --config "$priv/config.toml" config dump >"$priv/dump.toml" 2>/dev/null
	for h in "${HANDLERS[@]}"; do
		grep -qF "ConfigPath = \"/opt/confidential-containers/share/defaults/kata-containers/configuration-${h#*=}.toml\"" "$priv/dump.toml" ||
			cc_fail "$name: config dump lacks ConfigPath of ${h%%=*}"
	done
	cc_stop_pid "$pid"
	echo "  $name: containerd 1.6 loaded cri + proxy snapshotter cc-snapshotter and ${#HANDLERS[@]} runtime entries"
}

# ---- install, install again, containerd, uninstall -----------------------------------------------
for name in absent empty v1 v2 default; do
	dest=$CC_TMP/$name/root
	cfg=$dest/etc/containerd/config.toml
	orig=""
	if [ -f "$cfg" ]; then cp -p "$cfg" "$CC_TMP/$name/orig.toml"; orig=$CC_TMP/$name/orig.toml; fi
	tree "$dest" >"$CC_TMP/$name/tree0"
	"${DEPLOY[@]}" install --dest-root "$dest" >"$CC_TMP/$name-install1.log" 2>&1 ||
		{ cat "$CC_TMP/$name-install1.log"; cc_fail "$name: install failed"; }
	"$PY" -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$cfg" ||
		cc_fail "$name: merged config does not parse"
	cri=io.containerd.grpc.v1.cri
	[ "$name" = v1 ] && cri=cri
	check_merged "$orig" "$cfg" 1.6 "$cri"
	[ -S "$dest/run/cc-snapshotter/cc-snapshotter.sock" ] || cc_fail "$name: snapshotter socket missing"
	pid=$(cat "$dest/var/lib/cc-deploy/cc-snapshotter.pid")
	kill -0 "$pid" || cc_fail "$name: supervisor $pid not running"
	for l in usr/local/bin/containerd-shim-kata-cc-v2 usr/local/bin/nydus-overlayfs; do
		[ -L "$dest/$l" ] || cc_fail "$name: $l is not a symlink"
	done
	[ "$(readlink "$dest/usr/local/bin/containerd-shim-kata-cc-v2")" = /opt/confidential-containers/bin/containerd-shim-kata-cc-v2 ] ||
		cc_fail "$name: shim link points at $(readlink "$dest/usr/local/bin/containerd-shim-kata-cc-v2")"
	cmp -s "$SRC/build/containerd-shim-kata-cc-v2" "$dest/opt/confidential-containers/bin/containerd-shim-kata-cc-v2" ||
		cc_fail "$name: installed shim differs from the build"
	for h in "${HANDLERS[@]}"; do
		[ -f "$dest/opt/confidential-containers/share/defaults/kata-containers/configuration-${h#*=}.toml" ] ||
			cc_fail "$name: configuration-${h#*=}.toml not installed"
	done
	cp "$cfg" "$CC_TMP/$name/merged1.toml"
	tree "$dest" >"$CC_TMP/$name/tree1"

	"${DEPLOY[@]}" install --dest-root "$dest" >"$CC_TMP/$name-install2.log" 2>&1 ||
		{ cat "$CC_TMP/$name-install2.log"; cc_fail "$name: second install failed"; }
	grep -q 'nothing changed: already installed' "$CC_TMP/$name-install2.log" ||
		{ cat "$CC_TMP/$name-install2.log"; cc_fail "$name: second install reported changes"; }
	tree "$dest" >"$CC_TMP/$name/tree2"
	diff "$CC_TMP/$name/tree1" "$CC_TMP/$name/tree2" || cc_fail "$name: second install changed the tree"
	[ "$(cat "$dest/var/lib/cc-deploy/cc-snapshotter.pid")" = "$pid" ] || cc_fail "$name: snapshotter restarted"

	containerd_check "$name"

	"${DEPLOY[@]}" uninstall --dest-root "$dest" --purge >"$CC_TMP/$name-uninstall.log" 2>&1 ||
		{ cat "$CC_TMP/$name-uninstall.log"; cc_fail "$name: uninstall failed"; }
	# Gone, or a zombie that PID 1 has not reaped yet.
	cc_wait_for 5 bash -c "! kill -0 $pid 2>/dev/null || grep -q '^State:[[:space:]]*Z' /proc/$pid/status" ||
		cc_fail "$name: supervisor $pid still runs after uninstall"
	if [ -n "$orig" ]; then
		cmp "$orig" "$cfg" || cc_fail "$name: config not restored byte for byte"
		[ "$(stat -c %a "$orig")" = "$(stat -c %a "$cfg")" ] || cc_fail "$name: config mode changed"
	else
		[ ! -e "$cfg" ] || cc_fail "$name: config left behind"
	fi
	tree "$dest" | sed 's/ [0-9.]* \([^ ]*\)$/ \1/' >"$CC_TMP/$name/tree3"
	sed 's/ [0-9.]* \([^ ]*\)$/ \1/' "$CC_TMP/$name/tree0" | diff - "$CC_TMP/$name/tree3" ||
		cc_fail "$name: uninstall left files behind"
	echo "PASS $name: install, idempotent reinstall, containerd load, byte-for-byte uninstall"
done

# ---- the fragments in configs/containerd/ are what cc-deploy writes --------------------------------
# An absent config gets exactly runtimes-1.6.toml + cc-snapshotter-1.6.toml (for the handlers that
# have a runtime configuration; plus runc, containerd's default, which any runtimes table replaces).
frag=$CC_TMP/frag/root
mkdir -p "$frag"; DESTS+=("$frag")
for ver in 1.6 1.7; do
	"${DEPLOY[@]}" install --dest-root "$frag" --containerd-version "$ver" >"$CC_TMP/frag-$ver.log" 2>&1 ||
		{ cat "$CC_TMP/frag-$ver.log"; cc_fail "fragments $ver: install failed"; }
	"$PY" test/tools/deploy-check-fragments.py "$frag/etc/containerd/config.toml" "$SRC/configs/containerd/runtimes-$ver.toml" \
		"$SRC/configs/containerd/cc-snapshotter-$ver.toml" "${HANDLERS[@]}"
	"${DEPLOY[@]}" uninstall --dest-root "$frag" --purge >/dev/null 2>&1 || cc_fail "fragments $ver: uninstall failed"
done
[ -z "$(ls -A "$frag")" ] || cc_fail "fragments: uninstall left $(ls -A "$frag")"
echo "PASS fragments: cc-deploy writes configs/containerd/{runtimes,cc-snapshotter}-{1.6,1.7}.toml"

# ---- pod_annotations follow each configuration ---------------------------------------------------
# A source tree whose configurations enable annotations: names, a regular expression, a config
# path list. Each entry forwards exactly what its file honours.
SRC2=$CC_TMP/src2
cp -r "$SRC" "$SRC2"
rt2=$SRC2/configs/runtime
sed -i -e 's|^enable_annotations = .*|enable_annotations = ["default_vcpus", "kernel_params"]|' \
	-e 's|^valid_config_paths = .*|valid_config_paths = ["/etc/kata-cc/*.toml"]|' "$rt2/configuration-qemu.toml"
sed -i 's|^enable_annotations = .*|enable_annotations = ["default_(vcpus\|memory)"]|' "$rt2/configuration-qemu-tdx.toml"
grep -q '^enable_annotations = \["default_vcpus", "kernel_params"\]$' "$rt2/configuration-qemu.toml" &&
	grep -q '^valid_config_paths = \["/etc/kata-cc/\*.toml"\]$' "$rt2/configuration-qemu.toml" &&
	grep -q '^enable_annotations = \["default_(vcpus|memory)"\]$' "$rt2/configuration-qemu-tdx.toml" ||
	cc_fail "annotations: could not edit the configurations of $SRC2"
ann=$CC_TMP/annotations/root
mkdir -p "$ann"; DESTS+=("$ann")
env -u BUILD bash "$SRC2/tools/cc-deploy" install --dest-root "$ann" --containerd-version 1.6 \
	>"$CC_TMP/annotations.log" 2>&1 || { cat "$CC_TMP/annotations.log"; cc_fail "annotations: install failed"; }
"$PY" test/tools/deploy-check-annotations.py "$ann/etc/containerd/config.toml" "${HANDLERS[@]}"
env -u BUILD bash "$SRC2/tools/cc-deploy" uninstall --dest-root "$ann" --purge >/dev/null 2>&1 ||
	cc_fail "annotations: uninstall failed"
[ -z "$(ls -A "$ann")" ] || cc_fail "annotations: uninstall left $(ls -A "$ann")"
echo "PASS pod_annotations: each runtime entry forwards only what its configuration honours"

# ---- the 1.7 layout on a realistic config, and a config edited after install ---------------------
dest=$CC_TMP/v2/root
cfg=$dest/etc/containerd/config.toml
"${DEPLOY[@]}" install --dest-root "$dest" --containerd-version 1.7 >"$CC_TMP/v2-17.log" 2>&1 ||
	{ cat "$CC_TMP/v2-17.log"; cc_fail "v2 (1.7 layout): install failed"; }
check_merged "$CC_TMP/v2/orig.toml" "$cfg" 1.7 io.containerd.grpc.v1.cri
printf '\n# added by the operator after install\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n' >>"$cfg"
"${DEPLOY[@]}" uninstall --dest-root "$dest" --purge >"$CC_TMP/v2-17u.log" 2>&1 ||
	{ cat "$CC_TMP/v2-17u.log"; cc_fail "v2 (1.7 layout): uninstall failed"; }
grep -q 'was edited after install' "$CC_TMP/v2-17u.log" || cc_fail "edited config: no message"
{ cat "$CC_TMP/v2/orig.toml"; printf '\n# added by the operator after install\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n'; } |
	cmp - "$cfg" || cc_fail "edited config: cc-deploy's lines not removed exactly"
cmp "$CC_TMP/v2/orig.toml" "$cfg.cc-deploy.bak" || cc_fail "edited config: backup is not the original"
rm -f "$cfg.cc-deploy.bak" "$cfg.cc-deploy.edited"
cp -p "$CC_TMP/v2/orig.toml" "$cfg"
# Edited between two installs: the second install takes the edit into the backup, so uninstall
# gives back the file with the edit (the state just before that install), byte for byte.
"${DEPLOY[@]}" install --dest-root "$dest" >/dev/null 2>&1 || cc_fail "reinstall after edit: first install failed"
printf '# an operator edit between installs\n' >>"$cfg"
"${DEPLOY[@]}" install --dest-root "$dest" >"$CC_TMP/v2-reinst.log" 2>&1 ||
	{ cat "$CC_TMP/v2-reinst.log"; cc_fail "reinstall after edit failed"; }
"${DEPLOY[@]}" uninstall --dest-root "$dest" --purge >/dev/null 2>&1 || cc_fail "reinstall after edit: uninstall failed"
{ cat "$CC_TMP/v2/orig.toml"; printf '# an operator edit between installs\n'; } | cmp - "$cfg" ||
	cc_fail "reinstall after edit: uninstall did not give back the edited file"
[ "$(ls "$dest/etc/containerd")" = config.toml ] || cc_fail "reinstall after edit: left $(ls "$dest/etc/containerd")"
cp -p "$CC_TMP/v2/orig.toml" "$cfg"
echo "PASS v2 with the 1.7 layout; a config edited after install keeps the edit and loses only cc-deploy's lines; an edit between two installs survives uninstall"

# ---- refusals: a clear message, and nothing changes ----------------------------------------------
refuse() { # NAME EXPECTED-MESSAGE [SETUP-CMD]: config from stdin
	local name=$1 msg=$2 d=$CC_TMP/refuse-$1/root
	mkdir -p "$d/etc/containerd"; DESTS+=("$d")
	cat >"$d/etc/containerd/config.toml"
	[ $# -lt 3 ] || (cd "$d" && eval "$3")
	local before after
	before=$(tree "$d"; cat "$d/etc/containerd/config.toml")
	if "${DEPLOY[@]}" install --dest-root "$d" >"$CC_TMP/refuse-$name.log" 2>&1; then
		cc_fail "refuse $name: install succeeded"
	fi
	grep -qF -- "$msg" "$CC_TMP/refuse-$name.log" ||
		{ cat "$CC_TMP/refuse-$name.log"; cc_fail "refuse $name: message lacks '$msg'"; }
	after=$(tree "$d"; cat "$d/etc/containerd/config.toml")
	[ "$before" = "$after" ] || cc_fail "refuse $name: something changed under $d"
	echo "PASS refuses $name: $(grep -m1 -F -- "$msg" "$CC_TMP/refuse-$name.log")"
}
refuse runtime 'config.toml:3: [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata] is already defined' <<'TOML'
version = 2
# a Kata installed by someone else
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
TOML
refuse snapshotter 'another snapshotter is configured for CRI' <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "stargz"
TOML
refuse version3 'version = 3 is not supported' <<'TOML'
version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"
TOML
refuse broken 'config.toml: not valid TOML' <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri"
TOML
refuse dotted 'cannot merge by text edits' <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  containerd.snapshotter = "overlayfs"
TOML
refuse foreign-shim 'usr/local/bin/containerd-shim-kata-cc-v2 already exists and was not installed by cc-deploy' \
	'mkdir -p usr/local/bin && echo "#!/bin/sh" >usr/local/bin/containerd-shim-kata-cc-v2' </dev/null

# ---- the Kubernetes manifests agree with the installer -------------------------------------------
if "$PY" -c 'import yaml' 2>/dev/null; then
	"$PY" test/tools/deploy-check-manifests.py
else
	echo "manifests not checked: $PY has no yaml module (python3-yaml)"
fi

# ---- another prefix, and the systemd path (systemctl replaced by a recorder) -----------------------
sd=$CC_TMP/systemd/root
mkdir -p "$sd" "$CC_TMP/systemd/bin"; DESTS+=("$sd")
cat >"$CC_TMP/systemd/bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$CC_TMP/systemd/calls"
EOF
chmod +x "$CC_TMP/systemd/bin/systemctl"
CC_DEPLOY_SYSTEMD=1 CC_DEPLOY_SYSTEMCTL=$CC_TMP/systemd/bin/systemctl \
	"${DEPLOY[@]}" install --dest-root "$sd" --prefix /opt/cc-test >"$CC_TMP/systemd-install.log" 2>&1 ||
	{ cat "$CC_TMP/systemd-install.log"; cc_fail "systemd: install failed"; }
unit=$sd/etc/systemd/system/cc-snapshotter.service
grep -q '^ExecStart=/opt/cc-test/bin/cc-snapshotter --config /etc/cc-snapshotter/config.toml' "$unit" ||
	cc_fail "systemd: unit ExecStart not rewritten to the prefix: $(grep ExecStart "$unit")"
grep -q 'kernel = "/opt/cc-test/share/kata-containers/vmlinuz"' \
	"$sd/opt/cc-test/share/defaults/kata-containers/configuration-qemu.toml" || cc_fail "prefix: configuration paths not rewritten"
grep -q 'ConfigPath = "/opt/cc-test/share/defaults/kata-containers/configuration-qemu.toml"' \
	"$sd/etc/containerd/config.toml" || cc_fail "prefix: ConfigPath not under the prefix"
[ "$(readlink "$sd/usr/local/bin/containerd-shim-kata-cc-v2")" = /opt/cc-test/bin/containerd-shim-kata-cc-v2 ] ||
	cc_fail "prefix: shim link"
[ ! -e "$sd/var/lib/cc-deploy/cc-snapshotter.pid" ] || cc_fail "systemd: a supervised process was started too"
CC_DEPLOY_SYSTEMD=1 CC_DEPLOY_SYSTEMCTL=$CC_TMP/systemd/bin/systemctl \
	"${DEPLOY[@]}" uninstall --dest-root "$sd" --prefix /opt/cc-test >"$CC_TMP/systemd-uninstall.log" 2>&1 ||
	{ cat "$CC_TMP/systemd-uninstall.log"; cc_fail "systemd: uninstall failed"; }
printf 'daemon-reload\nenable --now cc-snapshotter.service\ndisable --now cc-snapshotter.service\ndaemon-reload\n' |
	cmp - "$CC_TMP/systemd/calls" || cc_fail "systemd: systemctl calls were: $(cat "$CC_TMP/systemd/calls")"
[ -z "$(ls -A "$sd")" ] || cc_fail "systemd: uninstall left $(find "$sd" | head)"
echo "PASS --prefix /opt/cc-test and the systemd unit path (daemon-reload, enable --now, disable --now)"
