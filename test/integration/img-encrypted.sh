#!/usr/bin/env bash
# Encrypted images (ocicrypt) made by `skopeo copy --encryption-key jwe:...`, pulled by
# cc-image-pull with the offline_fs key broker: RSA-OAEP and ECDH-ES+A256KW recipients, two
# recipients, partially encrypted images; each rootfs compared with umoci unpack of the plain
# image. Then the failures: no key, a wrong key (the error names the layer and the keys tried),
# and a manifest whose HMAC was altered (nothing may be published).
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup
command -v openssl >/dev/null || { echo "openssl not installed"; exit 77; }

k=$T/keys && mkdir -p "$k"
openssl genrsa -out "$k/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$k/rsa.pem" -pubout -out "$k/rsa-pub.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$k/ec.pem"
openssl ec -in "$k/ec.pem" -pubout -out "$k/ec-pub.pem" 2>/dev/null
openssl genrsa -out "$k/other.pem" 2048 2>/dev/null

src=$T/src
mkdir -p "$src/etc" "$src/data"
echo confidential >"$src/etc/secret"
head -c 2000000 /dev/urandom >"$src/data/blob"
ln -s secret "$src/etc/link"
img_build "$T/oci" v1 "$src"
more() { echo more >etc/more; rm -f data/blob; }
img_layer "$T/oci" v1 more
umoci_rootfs "$T/oci" v1 "$T/ref"

enc_push() { # repo keys...
        local repo=$1 a=()
        shift
        for key in "$@"; do a+=(--encryption-key "jwe:$key"); done
        img_push "oci:$T/oci:v1" "$repo" "${a[@]}"
}

pull_ok() { # desc repo keys...
        local desc=$1 repo=$2 a=() out
        shift 2
        for key in "$@"; do a+=(--key "$key"); done
        out=$T/pull-$RANDOM && mkdir -p "$out"
        "$PULL" --insecure "${a[@]}" "$REG/$repo" "$out" >"$T/log" 2>&1 || { cat "$T/log"; fail "$desc"; }
        img_compare "$out" "$T/ref/rootfs"
        echo "ok  $desc"
}

enc_push enc/rsa:v1 "$k/rsa-pub.pem"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/enc/rsa/manifests/v1" |
        grep -q 'tar+gzip+encrypted' || fail "skopeo did not encrypt the layers"
pull_ok "RSA-OAEP (JWE) encrypted image" enc/rsa:v1 "$k/rsa.pem"

enc_push enc/ec:v1 "$k/ec-pub.pem"
pull_ok "ECDH-ES+A256KW (JWE) encrypted image" enc/ec:v1 "$k/ec.pem"

enc_push enc/both:v1 "$k/rsa-pub.pem" "$k/ec-pub.pem"
pull_ok "two recipients, EC key only" enc/both:v1 "$k/ec.pem"
pull_ok "two recipients, a useless key first" enc/both:v1 "$k/other.pem" "$k/rsa.pem"

img_push "oci:$T/oci:v1" enc/partial:v1 --encryption-key "jwe:$k/rsa-pub.pem" --encrypt-layer -1
[ "$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/enc/partial/manifests/v1" |
        grep -o 'encrypted"' | wc -l)" -eq 1 ] || fail "expected one encrypted layer"
pull_ok "partially encrypted image" enc/partial:v1 "$k/rsa.pem"

mkdir -p "$T/fail"
expect_fail "encrypted image, no key" "no key broker configured" \
        "$PULL" --insecure "$REG/enc/rsa:v1" "$T/fail"
assert_clean_store "$T/fail/store"
expect_fail "encrypted image, wrong key" "encrypted layer sha256:[0-9a-f]{64}: no usable key \(tried: $k/other.pem\)" \
        "$PULL" --insecure --key "$k/other.pem" "$REG/enc/rsa:v1" "$T/fail"
assert_clean_store "$T/fail/store"

# Altered HMAC in pubopts (re-pushed manifest): decryption runs, the layer is never published.
python3 test/tools/img-tamper-hmac.py "$REG" || fail "tamper"
rm -rf "$T/fail" && mkdir -p "$T/fail"
expect_fail "encrypted layer with a wrong HMAC" "HMAC mismatch" \
        "$PULL" --insecure --key "$k/rsa.pem" "$REG/enc/rsa:badhmac" "$T/fail"
assert_clean_store "$T/fail/store"
echo "all encrypted-image checks passed"
