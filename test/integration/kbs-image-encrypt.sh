#!/usr/bin/env bash
# cc-image-encrypt round trip: a two-layer image (umoci) encrypted into a new OCI layout in
# CoCo's key-provider format, its KEK registered in cc-kbs in the same step; the layout pushed
# with plain `skopeo copy` (no key provider), pulled and decrypted by cc-image-pull with the KEK
# (offline_fs keys file); the rootfs equals `umoci unpack` of the plain image. The same from a
# registry straight to a registry (cc-image-encrypt's own registry client, no skopeo). The independent
# client then follows the guest's flow (ref 6.3): attest, fetch each packet's kid from cc-kbs
# with the token, unwrap the layer options, whose digests must be the plain layers'. Errors:
# JWE recipients (RSA, EC) decrypted by Debian's skopeo and by cc-image-pull. Errors: wrong KEK,
# bad key id, short KEK file, re-encrypting an encrypted image.
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup
PY=/usr/bin/python3
KBS=$(realpath "$BUILD/cc-kbs")
ENC=$(realpath "$BUILD/cc-image-encrypt")
CLIENT=$(realpath test/tools/kbs-client.py)
$PY -c 'import jwcrypto' 2>/dev/null || { echo "needs python3-jwcrypto"; exit 77; }
command -v openssl >/dev/null || { echo "needs openssl"; exit 77; }

src=$T/src
mkdir -p "$src/etc" "$src/data"
echo "confidential payload" >"$src/etc/secret"
head -c 300000 /dev/urandom >"$src/data/blob"
img_build "$T/oci" v1 "$src"
more() { echo more >etc/more; rm -f data/blob; mkdir -p opt && echo x >opt/y; }
img_layer "$T/oci" v1 more
umoci_rootfs "$T/oci" v1 "$T/ref"

# cc-kbs over HTTPS with an admin key; the sample TEE may read image keys.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
cat >"$T/kbs.toml" <<TOML
[http]
listen = "127.0.0.1:0"
tls_cert = "$T/tls.crt"
tls_key = "$T/tls.key"
[store]
path = "$T/kbs.db"
[verifier.sample]
enabled = true
[admin]
public_key = "$T/admin.pub"
TOML
"$KBS" serve --config "$T/kbs.toml" 2>"$T/kbs.log" &
PIDS+=($!)
url=
for _ in $(seq 100); do
        url=$(sed -n 's/.*msg=listening.*address=\([0-9.:]*\) scheme=https.*/https:\/\/\1/p' "$T/kbs.log")
        [ -n "$url" ] && break
        sleep 0.1
done
[ -n "$url" ] || fail "cc-kbs did not start: $(cat "$T/kbs.log")"
printf 'version = 1\n[[rule]]\nresources = ["default/image-kek/*"]\ntee = ["sample"]\nallow = true\n' >"$T/policy.toml"
"$KBS" --url "$url" --cacert "$T/tls.crt" --admin-key "$T/admin.key" policy set "$T/policy.toml" || fail "policy set"

"$ENC" --kek "$T/kek" --new-kek --kid kbs:///default/image-kek/1 --kbs "$url" --cacert "$T/tls.crt" \
        --admin-key "$T/admin.key" "oci:$T/oci:v1" "oci:$T/enc:v1" || fail "cc-image-encrypt"
[ "$(stat -c %s "$T/kek")" -eq 32 ] && [ "$(stat -c %a "$T/kek")" = 600 ] || fail "KEK file"
echo "ok  encrypted, KEK registered in cc-kbs"

# The manifest: every layer +encrypted with both annotations, no plain layer blob in the output.
mdigest=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$T/enc/index.json")
manifest=$T/enc/blobs/sha256/$mdigest
$PY test/tools/kbs-check-encrypted-manifest.py "$manifest" "$T/oci" "$T/enc" || fail "manifest check"
echo "ok  manifest: 2 layers +encrypted with the provider packet and pubopts; no plaintext blob"

img_push "oci:$T/enc:v1" coco/enc:v1
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/coco/enc/manifests/v1" |
        grep -q 'provider.attestation-agent' || fail "the pushed manifest lost the annotations"

printf '{"default/image-kek/1":"%s"}' "$(base64 -w0 "$T/kek")" >"$T/keys.json"
mkdir -p "$T/pull"
"$PULL" --insecure --keys-json "$T/keys.json" "$REG/coco/enc:v1" "$T/pull" >"$T/pull.log" 2>&1 ||
        { cat "$T/pull.log"; fail "cc-image-pull of the encrypted image"; }
img_compare "$T/pull" "$T/ref/rootfs"
echo "ok  pulled and decrypted by cc-image-pull: rootfs equals umoci unpack of the plain image"

# Registry to registry, no layout in between on our side and no skopeo for the encrypted image:
# the plain image pushed by skopeo, read and re-pushed encrypted by cc-image-encrypt through the
# image library's registry client (an index is resolved to this machine's platform).
img_push "oci:$T/oci:v1" plain/app:v1
"$ENC" --kek "$T/kek" --kid kbs:///default/image-kek/1 --registry-insecure \
        "docker://$REG/plain/app:v1" "docker://$REG/coco/enc3:v1" || fail "cc-image-encrypt registry to registry"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/coco/enc3/manifests/v1" |
        grep -q 'provider.attestation-agent' || fail "the registry's manifest is not encrypted"
mkdir -p "$T/pull3"
"$PULL" --insecure --keys-json "$T/keys.json" "$REG/coco/enc3:v1" "$T/pull3" >"$T/pull.log" 2>&1 ||
        { cat "$T/pull.log"; fail "cc-image-pull of the registry-to-registry image"; }
img_compare "$T/pull3" "$T/ref/rootfs"
echo "ok  registry to registry: pulled and decrypted by cc-image-pull, rootfs equals umoci's"
expect_fail "registry source that does not exist" "HTTP 404" \
        "$ENC" --kek "$T/kek" --kid kbs:///default/image-kek/1 --registry-insecure \
        "docker://$REG/plain/none:v1" "oci:$T/none:v1"

# The guest's flow with the independent client: attestation, KEK from cc-kbs, unwrap.
$PY "$CLIENT" image-keys --url "$url" --cacert "$T/tls.crt" --manifest "$manifest" >"$T/keys.out" ||
        fail "unwrapping with the KEK from cc-kbs"
plain_digests=$($PY -c 'import json,sys; m=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]+"/blobs/sha256/"+m["manifests"][0]["digest"][7:])); print(" ".join(l["digest"] for l in d["layers"]))' "$T/oci/index.json" "$T/oci")
[ "$(awk '{print $2}' "$T/keys.out" | tr '\n' ' ' | sed 's/ $//')" = "$plain_digests" ] ||
        fail "unwrapped digests $(cat "$T/keys.out") != $plain_digests"
echo "ok  KEK fetched from cc-kbs after attestation unwraps every layer's options"
if grep -qF "$(base64 -w0 "$T/kek")" "$T/kbs.log"; then fail "the KEK appears in the KBS log"; fi

# JWE recipients as well (ocicrypt's jwe key wrapper): Debian's skopeo (ocicrypt 1.0.3, an outside
# implementation) decrypts with either private key to the plain layers byte for byte, and
# cc-image-pull decrypts with the RSA key alone (no KEK).
openssl genrsa -out "$T/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$T/rsa.pem" -pubout -out "$T/rsa-pub.pem" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out "$T/ec.pem" 2>/dev/null # PKCS#8: ocicrypt 1.0.3 reads no SEC1 EC key
openssl pkey -in "$T/ec.pem" -pubout -out "$T/ec-pub.pem" 2>/dev/null
"$ENC" --kek "$T/kek" --kid kbs:///default/image-kek/1 --recipient "jwe:$T/rsa-pub.pem" \
        --recipient "jwe:$T/ec-pub.pem" "oci:$T/oci:v1" "oci:$T/enc2:v1" >/dev/null || fail "cc-image-encrypt with recipients"
layer_digests() { # layout tag
        $PY -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); d=[m for m in i["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")==sys.argv[2]][0]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d["digest"][7:])); print(" ".join(l["digest"] for l in m["layers"]))' "$1" "$2"
}
for key in rsa ec; do
        skopeo copy -q --decryption-key "$T/$key.pem" "oci:$T/enc2:v1" "oci:$T/dec-$key:v1" >"$T/skopeo.log" 2>&1 ||
                { cat "$T/skopeo.log"; fail "skopeo could not decrypt with the $key key"; }
        [ "$(layer_digests "$T/dec-$key" v1)" = "$plain_digests" ] || fail "skopeo's decryption ($key) differs from the plain layers"
done
echo "ok  JWE recipients (RSA-OAEP, ECDH-ES+A256KW): skopeo/ocicrypt decrypts to the plain layers with either key"
img_push "oci:$T/enc2:v1" coco/enc2:v1
mkdir -p "$T/pull2"
"$PULL" --insecure --key "$T/rsa.pem" "$REG/coco/enc2:v1" "$T/pull2" >"$T/pull.log" 2>&1 ||
        { cat "$T/pull.log"; fail "cc-image-pull with the RSA recipient key"; }
img_compare "$T/pull2" "$T/ref/rootfs"
echo "ok  cc-image-pull decrypts the JWE recipient with the RSA key"

head -c 32 /dev/urandom >"$T/other"
printf '{"default/image-kek/1":"%s"}' "$(base64 -w0 "$T/other")" >"$T/wrong.json"
mkdir -p "$T/fail"
expect_fail "wrong KEK" "encrypted layer sha256:[0-9a-f]{64}: no usable key \(tried: kbs:///default/image-kek/1\)" \
        "$PULL" --insecure --keys-json "$T/wrong.json" "$REG/coco/enc:v1" "$T/fail"
assert_clean_store "$T/fail/store"
expect_fail "bad key id" "key id 'kbs://default/k/1' is not kbs:///repo/type/tag" \
        "$ENC" --kek "$T/kek" --kid kbs://default/k/1 "oci:$T/oci:v1" "oci:$T/x:v1"
head -c 16 /dev/urandom >"$T/short"
expect_fail "short KEK file" "a KEK is 32 raw bytes, this file has 16" \
        "$ENC" --kek "$T/short" --kid kbs:///default/k/1 "oci:$T/oci:v1" "oci:$T/x:v1"
expect_fail "encrypting an encrypted image" "is already encrypted" \
        "$ENC" --kek "$T/kek" --kid kbs:///default/k/1 "oci:$T/enc:v1" "oci:$T/x:v1"
expect_fail "no such tag" "no image tagged 'v9'" \
        "$ENC" --kek "$T/kek" --kid kbs:///default/k/1 "oci:$T/oci:v9" "oci:$T/x:v1"
echo "kbs-image-encrypt: all passed"
