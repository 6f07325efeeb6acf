#!/usr/bin/env bash
# The main job, the release notes' use cases on one machine: a pod with runtime handler
# `kata` through containerd's CRI whose image is pulled inside the VM, then the node check;
# then a pod with an image encrypted by skopeo, decrypted in the guest with a key only the guest
# holds, and the same pod without the key. Everything is set up the way a node operator does
# it: a local registry with the images, the node's containerd config.toml, `cc-deploy install`
# (binaries, guest image, runtime configurations, snapshotter, the merged config.toml), Debian's
# containerd 1.6.20 on that file. Each "ok:" line is checked, not just printed; everything is
# removed at the end (`cc-deploy uninstall`, config.toml back byte for byte). Then the fourth use
# case: an image encrypted for a key broker, run in a pod that attests to get its key.
# These are the end-to-end tests test/integration/e2e-guest-pull.sh, e2e-encrypted.sh and
# e2e-attest.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
        echo "make demo: run as root (containerd, QEMU, mounts, network namespaces)" >&2
        exit 1
fi
BUILD=${BUILD:-build}
[ -f build/guest/vmlinuz ] && [ -f build/guest/initrd.img ] || make -s guest-image
cat <<'TXT'
== 1. a pod with runtime handler "kata"; its image is pulled inside the VM
   registry (on the CNI bridge's gateway) <- containerd 1.6 CRI PullImage through cc-snapshotter
   (manifest and config only) -> containerd-shim-kata-cc-v2 -> QEMU VM (TCG) on the pod's network
   -> cc-agent pulls the layers itself and runs the container. Then the node check: the image is
   listed, yet no layer of it is on the host.
TXT
BUILD=$BUILD bash test/integration/e2e-guest-pull.sh
cat <<'TXT'

== 2. an encrypted image (skopeo copy --encryption-key jwe:pub.pem); the private key is in the
   guest image only (offline_fs key broker). With the key the pod runs; without it the
   container fails and says why; nothing decrypted reaches the host.
TXT
BUILD=$BUILD bash test/integration/e2e-encrypted.sh
cat <<'TXT'

== 3. building a new encrypted image and deploying it as a confidential workload: cc-kbs (the
   development key broker, Trustee's KBS protocol) starts on the pod network's gateway;
   cc-image-encrypt encrypts the image in CoCo's key-provider format and stores its key in the
   KBS; the pod's initdata (annotation io.katacontainers.config.hypervisor.cc_init_data) names the
   KBS. The guest checks its initdata against the launch, attests (sample evidence: no TEE here),
   gets the key, decrypts, runs. The KBS's log shows auth, attest and resource from the pod. Then
   the refusals a user sees: a pod with other initdata (the KBS's policy denies), the KBS down,
   initdata changed by the host after launch. No plaintext and no key on the host.
TXT
BUILD=$BUILD bash test/integration/e2e-attest.sh
cat <<'TXT'

== more: two pods at once and two containers in one VM (test/integration/e2e-pods.sh), every
   shipped handler's configuration (e2e-configs.sh: TDX, SEV, SNP and Cloud Hypervisor stop at the
   host check here), the full CRI container lifecycle (e2e-cri.sh), pod start time against runc
   (bench/pod-start.sh, bench/pod-results.md).
TXT
