#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages. Idempotent; run as root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: run as root (apt-get install)" >&2
        exit 1
fi
pkgs=(
        # toolchain and build
        build-essential pkg-config clang llvm libclang-rt-14-dev clang-format
        protobuf-c-compiler libprotobuf-c-dev
        # libraries
        libjson-c-dev libseccomp-dev libcap-dev libvirt-dev libnghttp2-dev libcurl4-openssl-dev
        libarchive-dev libssl-dev libsqlite3-dev libcryptsetup-dev libzstd-dev libisal-dev
        # cc-kbs: its HTTP(S) server
        libmicrohttpd-dev
        # image signature verification: registries.d YAML, compressed OpenPGP messages
        libyaml-dev zlib1g-dev libbz2-dev
        # unit tests
        libcmocka-dev
        # the guest image: the CA bundle the guest's registry client trusts by default
        ca-certificates
        # the project's guest kernel (tools/build-guest-kernel.sh): Debian's kernel source and
        # what building it needs (lz4: the bzImage's compressor)
        linux-source-6.1 flex bison bc libelf-dev lz4 xz-utils
        # the guest image's mke2fs for trusted storage (guest-agent/storage/)
        e2fsprogs
        # real peers for integration tests
        containerd runc qemu-system-x86 qemu-utils ovmf libvirt-daemon-system docker-registry skopeo umoci
        python3-grpcio python3-protobuf python3-websocket python3-jwcrypto python3-cryptography busybox-static iproute2 cpio squashfs-tools zstd kmod socat openssl curl fuse3
        # cc-genpolicy (tools/): Kubernetes pod YAML
        python3-yaml
        # signing test images (skopeo --sign-by uses gpg through gpgme)
        gnupg
        # CNI plugins for CRI pods in the e2e test (bin_dir /usr/lib/cni)
        containernetworking-plugins
        # the debug console test's terminal (e2e-console.sh drives cc-runtime exec in a pane)
        tmux
        # registry credentials tests: htpasswd -B (bcrypt) for docker-registry's htpasswd auth
        apache2-utils
)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        echo "install-deps: all ${#pkgs[@]} packages present"
        exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
