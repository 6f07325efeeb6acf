#!/usr/bin/env bash
# The project's guest kernel is reproducible: a second build from the same source package and
# config fragment, in another directory (a fresh unpack of the source under /tmp, so a path
# that leaked into the image would differ), gives a byte-identical bzImage and .config.
# A full kernel build (minutes on two cores): `make guest-kernel-repro`, not part of `make test`.
set -u
cd "$(dirname "$0")/../.."
dpkg-query -W linux-source-6.1 >/dev/null 2>&1 || { echo "SKIP: linux-source-6.1 not installed (make deps)"; exit 77; }
tmp=$(mktemp -d /tmp/guest-kernel-repro.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make -s guest-kernel || { echo "FAIL: make guest-kernel"; exit 1; }
a=build/guest/kernel-project
t0=$(date +%s)
bash tools/build-guest-kernel.sh --out "$tmp/b" --work "$tmp/elsewhere/w" || { echo "FAIL: second build"; exit 1; }
echo "second build in $tmp/elsewhere: $(($(date +%s) - t0)) s"
fails=0
for f in vmlinuz config version package; do
        if cmp -s "$a/$f" "$tmp/b/$f"; then
                echo "ok: $f identical ($(sha256sum "$a/$f" | cut -c1-16)...)"
        else
                echo "FAIL: $f differs: $(sha256sum "$a/$f" "$tmp/b/$f" | cut -c1-16 | tr '\n' ' ')"
                fails=$((fails + 1))
        fi
done
[ $fails -eq 0 ] || exit 1
echo "PASS: guest-kernel-repro"
