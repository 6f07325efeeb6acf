#!/usr/bin/env bash
# Signed images: cc-image-pull --policy/--registries-d against the real docker-registry.
#
# Simple signing: images signed by Debian's skopeo (`copy --sign-by`, throwaway GPG keys in a
# GNUPGHOME under $T, signatures written to a file:// lookaside through a registries.d file).
# Every case is decided twice, by cc-image-pull and by `skopeo copy --policy` on the host, and
# the verdicts must agree: signed accepted; unsigned refused by signedBy; a signature for
# another digest; identity mismatch (same manifest under another tag); a valid signature by an
# untrusted key; a tampered signature; a key revoked in its keyring; a reject default with an
# insecureAcceptAnything scope; several signatures where one is valid; two signedBy
# requirements; keyPaths trusting both keys; remapIdentity;
# signatures served by the registry API extension (through test/tools/xrss-proxy.py); an
# http:// lookaside, and one answering HTTP 500 (an error, not "unsigned"); an index whose
# platform manifest, or only itself, is signed.
# Sigstore attachments (Debian's skopeo cannot sign or check them): built with OpenSSL by
# test/tools/cosign-attach.py and pushed with HTTP: signed (one foreign and one trusted
# layer) accepted; unsigned, foreign key only, wrong digest and identity mismatch refused.
# A refused image leaves nothing in the layer store. gpg-agent is stopped by PID at the end.
set -u
. "$(dirname "$0")/img-lib.sh"
img_setup
for tool in gpg gpg-connect-agent openssl; do
        command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
done
ATTACH=$(realpath "$(dirname "$0")/../tools/cosign-attach.py")

export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
AGENT_PID=
sig_cleanup() {
        [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
        img_cleanup
}
trap sig_cleanup EXIT

gen_key() { # uid algo -> prints the fingerprint
        gpg --batch --passphrase '' --quick-gen-key "$1" "$2" sign never >/dev/null 2>&1 ||
                fail "gpg key $1"
        gpg --list-keys --with-colons "$1" 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}'
}
FPR_A=$(gen_key 'Image Signer A <a@example.test>' rsa3072)
FPR_B=$(gen_key 'Untrusted Signer B <b@example.test>' ed25519)
AGENT_PID=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | awk '/^D / {print $2}')
gpg --export "$FPR_A" >"$T/keyA.gpg"
gpg --export --armor "$FPR_B" >"$T/keyB.asc"
[ -s "$T/keyA.gpg" ] && [ -s "$T/keyB.asc" ] || fail "key export"

mkdir -p "$T/regd" "$T/regd-sig" "$T/lookaside"
cat >"$T/regd/lab.yaml" <<EOF
docker:
  $REG:
    lookaside: file://$T/lookaside
EOF
cat >"$T/regd-sig/lab.yaml" <<EOF
docker:
  $REG:
    use-sigstore-attachments: true
EOF
echo '{"default":[{"type":"insecureAcceptAnything"}],"transports":{}}' >"$T/insecure.json"

# Three images with different digests.
for x in a b c; do
        mkdir -p "$T/src-$x/etc"
        echo "payload $x" >"$T/src-$x/etc/hello"
        img_build "$T/oci" "$x" "$T/src-$x"
done

push() { # src-tag repo:tag [skopeo copy args]
        local src=$1 dst=$2
        shift 2
        skopeo --policy "$T/insecure.json" --registries.d "${PUSH_REGD:-$T/regd}" copy -q \
                --dest-tls-verify=false "$@" "oci:$T/oci:$src" "docker://$REG/$dst" >"$T/skopeo.log" 2>&1 ||
                { cat "$T/skopeo.log"; fail "push $dst"; }
}
digest_of() { # repo:tag
        skopeo inspect --raw --tls-verify=false "docker://$REG/$1" | sha256sum | awk '{print "sha256:" $1}'
}
lookaside_dir() { # repo digest
        echo "$T/lookaside/$1@${2/:/=}"
}

push a test/app:v1 --sign-by "$FPR_A"
push a test/app:v2
push b test/unsigned:v1
push b test/wrongdigest:v1
push c test/otherkey:v1 --sign-by "$FPR_B"
push c test/multi:v1 --sign-by "$FPR_B"
skopeo --policy "$T/insecure.json" --registries.d "$T/regd" copy -q --src-tls-verify=false \
        --dest-tls-verify=false --sign-by "$FPR_A" "docker://$REG/test/multi:v1" \
        "docker://$REG/test/multi:v1" >"$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "re-sign"; }
push b other/thing:v1
push b test/public:v1
push a test/mirror:1.0 --sign-by "$FPR_A" --sign-identity "$REG/vendor/product:1.0"

DA=$(digest_of test/app:v1)
DB=$(digest_of test/unsigned:v1)
DC=$(digest_of test/multi:v1)
[ -f "$(lookaside_dir test/app "$DA")/signature-1" ] || fail "skopeo wrote no signature"
[ -f "$(lookaside_dir test/multi "$DC")/signature-2" ] || fail "no second signature on test/multi"
# The app's signature (for digest A) placed where the lookaside serves image B's.
mkdir -p "$(lookaside_dir test/wrongdigest "$DB")"
cp "$(lookaside_dir test/app "$DA")/signature-1" "$(lookaside_dir test/wrongdigest "$DB")/"

policy() { # file scope-requirements-json
        cat >"$1" <<EOF
{"default":[{"type":"reject"}],
 "transports":{"docker":{
   "$REG/test":[$2],
   "$REG/test/public":[{"type":"insecureAcceptAnything"}]}}}
EOF
}
SIGNED_A='{"type":"signedBy","keyType":"GPGKeys","keyPath":"'$T/keyA.gpg'"}'
SIGNED_B='{"type":"signedBy","keyType":"GPGKeys","keyPath":"'$T/keyB.asc'"}'
policy "$T/p-a.json" "$SIGNED_A"
policy "$T/p-ab.json" "$SIGNED_A,$SIGNED_B"
policy "$T/p-keypaths.json" '{"type":"signedBy","keyType":"GPGKeys","keyPaths":["'$T/keyA.gpg'","'$T/keyB.asc'"]}'
policy "$T/p-remap.json" '{"type":"signedBy","keyType":"GPGKeys","keyPath":"'$T/keyA.gpg'",
 "signedIdentity":{"type":"remapIdentity","prefix":"'$REG/test/mirror'","signedPrefix":"'$REG/vendor/product'"}}'

n=0
# ours POLICY REGD REF -> "accept" or "reject", the error in $T/ours.err; a refused pull must
# leave the store empty (nothing fetched or unpacked). Each pull gets a new store ($n is
# advanced by the callers: this runs in a subshell).
ours() {
        local out=$T/ours-$n
        mkdir -p "$out"
        if "$PULL" --insecure --policy "$1" --registries-d "$2" "${HOST:-$REG}/$3" "$out" >"$T/ours.out" \
                2>"$T/ours.err"; then
                echo accept
        else
                ! grep -q Sanitizer "$T/ours.err" || { cat "$T/ours.err" >&2; fail "sanitizer"; }
                assert_clean_store "$out/store"
                echo reject
        fi
}
skopeo_verdict() { # policy regd ref
        rm -rf "$T/sk"
        if skopeo --policy "$1" --registries.d "$2" copy -q --src-tls-verify=false \
                "docker://${HOST:-$REG}/$3" "dir:$T/sk" >"$T/sk.out" 2>"$T/sk.err"; then
                echo accept
        else
                echo reject
        fi
}
# case DESC POLICY REF EXPECTED [REGEX]: cc-image-pull and skopeo must both give EXPECTED;
# on a refusal our message must match REGEX.
case_simple() {
        local desc=$1 pol=$2 ref=$3 want=$4 re=${5:-}
        local o s
        n=$((n + 1))
        o=$(ours "$pol" "${REGD:-$T/regd}" "$ref")
        s=$(skopeo_verdict "$pol" "${REGD:-$T/regd}" "$ref")
        [ "$o" = "$s" ] || { cat "$T/ours.err" "$T/sk.err"; fail "$desc: cc-image-pull $o, skopeo $s"; }
        [ "$o" = "$want" ] || { cat "$T/ours.err"; fail "$desc: $o, expected $want"; }
        if [ "$o" = reject ]; then
                grep -Eq "$re" "$T/ours.err" || { cat "$T/ours.err"; fail "$desc: error does not match /$re/"; }
                echo "ok  $desc: both reject; ours: $(tail -n1 "$T/ours.err" | cut -c1-240)"
        else
                echo "ok  $desc: both accept"
        fi
}

case_simple "signed image" "$T/p-a.json" test/app:v1 accept
case_simple "pull by digest, signature names the tag" "$T/p-a.json" "test/app@$DA" accept
case_simple "unsigned image, signedBy" "$T/p-a.json" test/unsigned:v1 reject \
        "scope $REG/test, requirement 1 \(signedBy\): no signature"
case_simple "signature for another digest" "$T/p-a.json" test/wrongdigest:v1 reject \
        "signature-1: digest mismatch: signature is for $DA, manifest is $DB"
case_simple "identity mismatch (same manifest, other tag)" "$T/p-a.json" test/app:v2 reject \
        "signature-1: identity mismatch: signed identity $REG/test/app:v1"
case_simple "valid signature by an untrusted key" "$T/p-a.json" test/otherkey:v1 reject \
        "signature-1: unknown key: signed by key $FPR_B"
case_simple "reject default" "$T/p-a.json" other/thing:v1 reject \
        "scope default, requirement 1 \(reject\)"
case_simple "insecureAcceptAnything scope within a signedBy one" "$T/p-a.json" test/public:v1 accept
case_simple "two signatures, only the second valid" "$T/p-a.json" test/multi:v1 accept
case_simple "two signedBy requirements, both met" "$T/p-ab.json" test/multi:v1 accept
case_simple "two signedBy requirements, second unmet" "$T/p-ab.json" test/app:v1 reject \
        "requirement 2 \(signedBy\): signature-1: unknown key: signed by key $FPR_A"
case_simple "keyPaths trusting both keys" "$T/p-keypaths.json" test/otherkey:v1 accept
case_simple "remapIdentity" "$T/p-remap.json" test/mirror:1.0 accept
# A signature whose value is changed inside its well-formed OpenPGP message (a flipped byte of
# the compressed bytes alone may land in deflate's padding and change nothing).
push a test/tampered:v1 --sign-by "$FPR_A"
python3 test/tools/openpgp-tamper.py "$(lookaside_dir test/tampered "$DA")/signature-1"
case_simple "tampered signature" "$T/p-a.json" test/tampered:v1 reject \
        "signature-1: bad signature"

# A key revoked after signing (its revocation certificate imported into the exported keyring).
FPR_C=$(gen_key 'Revoked Signer C <c@example.test>' ed25519)
push b test/revoked:v1 --sign-by "$FPR_C"
sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$FPR_C.rev" >"$T/revC.asc"
gpg --batch --import "$T/revC.asc" >/dev/null 2>&1 || fail "import revocation"
gpg --export "$FPR_C" >"$T/keyC.gpg"
policy "$T/p-c.json" '{"type":"signedBy","keyType":"GPGKeys","keyPath":"'$T/keyC.gpg'"}'
case_simple "signature by a revoked key" "$T/p-c.json" test/revoked:v1 reject \
        "signature-1: key $FPR_C is revoked"

# Without --policy: today's behaviour, and no verification.
out=$T/nopolicy && mkdir -p "$out"
"$PULL" --insecure "$REG/test/unsigned:v1" "$out" >"$T/log" 2>&1 || { cat "$T/log"; fail "pull without policy"; }
echo "ok  no policy: unsigned image pulled"

# An index (made here, one linux/amd64 entry: image a). Pulling one platform, skopeo checks the
# platform manifest's signatures, not the index's (measured here: "copying system image from
# manifest list: Source image rejected"), and so does cc-image-pull: platform manifest signed
# -> both accept; only the index signed -> both refuse; nothing signed -> both refuse.
skopeo inspect --raw --tls-verify=false "docker://$REG/test/app:v1" >"$T/plat.json"
cat >"$T/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$DA","size":$(stat -c %s "$T/plat.json"),"platform":{"architecture":"amd64","os":"linux"}}]}
EOF
DI=sha256:$(sha256sum <"$T/index.json" | awk '{print $1}')
for r in idx-signed idx-plat idx-none; do
        push a "test/$r:plat"
        curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
                --data-binary @"$T/index.json" "http://$REG/v2/test/$r/manifests/v1" >/dev/null ||
                fail "push index test/$r"
done
standalone() { # manifest-file repo digest
        mkdir -p "$(lookaside_dir "$2" "$3")"
        skopeo standalone-sign "$1" "$REG/$2:v1" "$FPR_A" -o "$(lookaside_dir "$2" "$3")/signature-1" ||
                fail "standalone-sign $2"
}
standalone "$T/index.json" test/idx-signed "$DI"
standalone "$T/plat.json" test/idx-plat "$DA"
if [ "$(uname -m)" = x86_64 ]; then
        case_simple "index, platform manifest signed" "$T/p-a.json" test/idx-plat:v1 accept
        case_simple "index, only the index signed" "$T/p-a.json" test/idx-signed:v1 reject \
                "no signature"
        case_simple "index, nothing signed" "$T/p-a.json" test/idx-none:v1 reject "no signature"
fi

# The policy and its key as kbs:/// resources through the key broker (offline_fs, CoCo's
# aa-offline_fs_kbc-resources.json layout), as a guest gets them after attestation.
printf '{"default/security-policy/test":"%s","default/gpg-public-key/test":"%s"}\n' \
        "$(sed "s|$T/keyA.gpg|kbs:///default/gpg-public-key/test|" "$T/p-a.json" | base64 -w0)" \
        "$(base64 -w0 "$T/keyA.gpg")" >"$T/resources.json"
kbs_pull() { # repo:tag
        n=$((n + 1))
        mkdir -p "$T/ours-$n"
        "$PULL" --insecure --keys-json "$T/resources.json" --policy kbs:///default/security-policy/test \
                --registries-d "$T/regd" "$REG/$1" "$T/ours-$n" >"$T/ours.out" 2>"$T/ours.err"
}
kbs_pull test/app:v1 || { cat "$T/ours.err"; fail "policy and key from kbs:/// resources"; }
! kbs_pull test/unsigned:v1 && grep -q "no signature" "$T/ours.err" ||
        { cat "$T/ours.err"; fail "kbs:/// policy: unsigned image"; }
echo "ok  policy and key as kbs:/// resources: signed accepted, unsigned refused"

# ---- the registry's signature API extension (X-Registry-Supports-Signatures) ----
# docker-registry lacks it: test/tools/xrss-proxy.py fronts the registry, announces it on /v2/
# and serves $T/xsigs through it. registries.d gives the proxy's name an empty lookaside, so an
# accepted image proves the signatures came through the extension (for skopeo as for us).
XPORT=$(free_port)
python3 "$(dirname "$ATTACH")/xrss-proxy.py" "$XPORT" "$REG" "$T/xsigs" >"$T/xrss.log" 2>&1 &
PIDS+=($!)
wait_port "$XPORT"
XREG=127.0.0.1:$XPORT
mkdir -p "$T/xsigs" "$T/empty" "$T/regd-x"
cat >"$T/regd-x/lab.yaml" <<EOF
docker:
  $REG:
    lookaside: file://$T/xsigs
  $XREG:
    lookaside: file://$T/empty
EOF
PUSH_REGD=$T/regd-x push a test/xsigned:v1 --sign-by "$FPR_A" --sign-identity "$XREG/test/xsigned:v1"
[ -s "$T/xsigs/test/xsigned@${DA/:/=}/signature-1" ] || fail "no signature behind the extension"
cat >"$T/p-x.json" <<EOF
{"default":[{"type":"reject"}],"transports":{"docker":{"$XREG/test":[$SIGNED_A]}}}
EOF
HOST=$XREG REGD=$T/regd-x case_simple "signature API extension: signed" "$T/p-x.json" test/xsigned:v1 accept
HOST=$XREG REGD=$T/regd-x case_simple "signature API extension: unsigned" "$T/p-x.json" \
        test/unsigned:v1 reject "no signature"
# With an http lookaside as well (read at the same time as the registry is asked), the
# extension's answer still decides: this lookaside only answers HTTP 500.
mkdir -p "$T/regd-xb"
printf 'docker:\n  %s:\n    lookaside: http://%s/broken\n' "$XREG" "$XREG" >"$T/regd-xb/lab.yaml"
HOST=$XREG REGD=$T/regd-xb case_simple "signature API extension, a failing http lookaside too: signed" \
        "$T/p-x.json" test/xsigned:v1 accept

# An http:// lookaside (the proxy serves $T/lookaside's copy, $T/xsigs, at /lookaside/), and a
# lookaside answering HTTP 500: an error naming the store, not "no signature".
mkdir -p "$T/regd-http" "$T/regd-500"
printf 'docker:\n  %s:\n    lookaside: http://%s/lookaside\n' "$REG" "$XREG" >"$T/regd-http/lab.yaml"
printf 'docker:\n  %s:\n    lookaside: http://%s/broken\n' "$REG" "$XREG" >"$T/regd-500/lab.yaml"
cp -r "$T/lookaside/test/app@${DA/:/=}" "$T/xsigs/test/"
REGD=$T/regd-http case_simple "http lookaside: signed" "$T/p-a.json" test/app:v1 accept
REGD=$T/regd-http case_simple "http lookaside: unsigned" "$T/p-a.json" test/unsigned:v1 reject "no signature"
REGD=$T/regd-500 case_simple "http lookaside answering 500" "$T/p-a.json" test/app:v1 reject \
        "requirement 1 \(signedBy\): reading simple signatures: lookaside http://$XREG/broken/test/app@sha256=[0-9a-f]+/signature-1: HTTP 500"

# ---- sigstore attachments ----
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k1.pem"
openssl pkey -in "$T/k1.pem" -pubout -out "$T/k1.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k2.pem"
push a sig/cosigned:v1
push a sig/cosigned:v2
push b sig/unsigned:v1
push a sig/foreign:v1
push a sig/wrongdigest:v1
attach() { python3 "$ATTACH" "$REG" "$@" >"$T/attach.log" 2>&1 || { cat "$T/attach.log"; fail "attach $1"; }; }
attach sig/cosigned "$DA" "$REG/sig/cosigned:v1" "$T/k2.pem" "$T/k1.pem"
attach sig/foreign "$DA" "$REG/sig/foreign:v1" "$T/k2.pem"
attach sig/wrongdigest "$DA" "$REG/sig/wrongdigest:v1" "$T/k1.pem" --payload-digest "$DB"
cat >"$T/p-sig.json" <<EOF
{"default":[{"type":"reject"}],
 "transports":{"docker":{"$REG/sig":[{"type":"sigstoreSigned","keyPath":"$T/k1.pub"}]}}}
EOF
case_sigstore() { # desc ref expected [regex]
        local o
        n=$((n + 1))
        o=$(ours "$T/p-sig.json" "$T/regd-sig" "$2")
        [ "$o" = "$3" ] || { cat "$T/ours.err"; fail "$1: $o, expected $3"; }
        if [ "$o" = reject ]; then
                grep -Eq "$4" "$T/ours.err" || { cat "$T/ours.err"; fail "$1: error does not match /$4/"; }
                echo "ok  $1: reject: $(tail -n1 "$T/ours.err" | cut -c1-240)"
        else
                echo "ok  $1: accept"
        fi
}
case_sigstore "sigstore: foreign layer then trusted layer" sig/cosigned:v1 accept
case_sigstore "sigstore: unsigned image" sig/unsigned:v1 reject "requirement 1 \(sigstoreSigned\): no signature"
case_sigstore "sigstore: foreign key only" sig/foreign:v1 reject "layer 1: bad signature or unknown key"
case_sigstore "sigstore: payload for another digest" sig/wrongdigest:v1 reject "layer 1: digest mismatch"
case_sigstore "sigstore: identity mismatch" sig/cosigned:v2 reject \
        "None of the signatures were accepted.*layer 2: identity mismatch: signed identity $REG/sig/cosigned:v1"
# Without use-sigstore-attachments in registries.d, as for skopeo, attachments are not read.
n=$((n + 1))
o=$(ours "$T/p-sig.json" "$T/regd" sig/cosigned:v1)
[ "$o" = reject ] && grep -q "no signature" "$T/ours.err" || fail "attachments read without use-sigstore-attachments"
echo "ok  sigstore: registries.d without use-sigstore-attachments: no signature"
# Keyless policies are refused with a clear message.
echo '{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/x"},"rekorPublicKeyPath":"/y"}]}' >"$T/p-keyless.json"
mkdir -p "$T/ours-keyless"
expect_fail "keyless sigstore policy" "keyless \(Fulcio/Rekor\) signatures are not supported" \
        "$PULL" --insecure --policy "$T/p-keyless.json" "$REG/sig/cosigned:v1" "$T/ours-keyless"
echo "PASS img-signatures"
