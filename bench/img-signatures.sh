#!/usr/bin/env bash
# Cost of signature verification in a pull, side by side: the same image (one layer, 4 MiB of
# random data plus 200 small files) pulled by cc-image-pull from a local docker-registry
#   unsigned      no --policy (today's behaviour)
#   simple        --policy signedBy (GPG RSA-3072 signature by skopeo, file:// lookaside)
#   sigstore      --policy sigstoreSigned (ECDSA P-256 attachment, two layers: foreign, valid)
# Each variant RUNS times (default 9), alternating, after a warm-up; every pull goes into a
# fresh store so that all of them fetch and unpack everything. Prints the median wall time of
# each, the difference to the unsigned pull, and the median of the check itself as
# cc-image-pull measures it (policy load, signature fetch, verification).
# The peer, side by side: Debian's skopeo 1.9 copying the same images to a dir: without a
# policy (--insecure-policy) and with the signedBy policy (gpgme, the same lookaside): the
# difference is what verification costs skopeo (it cannot check sigstore signatures).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
RUNS=${RUNS:-9}
. "$HERE/../test/integration/img-lib.sh"
for tool in gpg gpg-connect-agent openssl; do
        command -v $tool >/dev/null || { echo "$tool not installed"; exit 77; }
done
img_setup
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
AGENT_PID=
trap '[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; img_cleanup' EXIT
gpg --batch --passphrase '' --quick-gen-key 'Bench <bench@example.test>' rsa3072 sign never >/dev/null 2>&1
FPR=$(gpg --list-keys --with-colons 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
AGENT_PID=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | awk '/^D / {print $2}')
gpg --export "$FPR" >"$T/key.gpg"
mkdir -p "$T/regd" "$T/src/files"
printf 'docker:\n  %s:\n    lookaside: file://%s/lookaside\n    use-sigstore-attachments: true\n' \
        "$REG" "$T" >"$T/regd/bench.yaml"
head -c $((4 << 20)) /dev/urandom >"$T/src/big"
for i in $(seq 1 200); do head -c 512 /dev/urandom >"$T/src/files/f$i"; done
img_build "$T/oci" v1 "$T/src"
echo '{"default":[{"type":"insecureAcceptAnything"}],"transports":{}}' >"$T/insecure.json"
push() {
        skopeo --policy "$T/insecure.json" --registries.d "$T/regd" copy -q --dest-tls-verify=false \
                "$@" "oci:$T/oci:v1" "docker://$REG/$dst" >"$T/skopeo.log" 2>&1 ||
                { cat "$T/skopeo.log"; fail "push $dst"; }
}
dst=bench/unsigned:v1 push
dst=bench/simple:v1 push --sign-by "$FPR"
dst=bench/sigstore:v1 push
D=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/sigstore:v1" | sha256sum | awk '{print "sha256:" $1}')
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k1.pem"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/k2.pem"
openssl pkey -in "$T/k1.pem" -pubout -out "$T/k1.pub" 2>/dev/null
python3 "$HERE/../test/tools/cosign-attach.py" "$REG" bench/sigstore "$D" "$REG/bench/sigstore:v1" \
        "$T/k2.pem" "$T/k1.pem" >/dev/null || fail "attachment"
cat >"$T/p-simple.json" <<EOF
{"default":[{"type":"reject"}],"transports":{"docker":{"$REG/bench/simple":[
 {"type":"signedBy","keyType":"GPGKeys","keyPath":"$T/key.gpg"}]}}}
EOF
cat >"$T/p-sigstore.json" <<EOF
{"default":[{"type":"reject"}],"transports":{"docker":{"$REG/bench/sigstore":[
 {"type":"sigstoreSigned","keyPath":"$T/k1.pub"}]}}}
EOF

run() { # variant -> "seconds check_ms"
        local out=$T/run && rm -rf "$out" && mkdir -p "$out"
        local a=() cmd=("$PULL" --insecure)
        case $1 in
        simple) a=(--policy "$T/p-simple.json" --registries-d "$T/regd") ;;
        sigstore) a=(--policy "$T/p-sigstore.json" --registries-d "$T/regd") ;;
        skopeo-*) cmd=(skopeo --registries.d "$T/regd") ;;&
        skopeo-unsigned) cmd+=(--insecure-policy copy -q --src-tls-verify=false) ;;
        skopeo-simple) cmd+=(--policy "$T/p-simple.json" copy -q --src-tls-verify=false) ;;
        esac
        local src=$REG/bench/${1#skopeo-}:v1 dst=$out
        case $1 in skopeo-*) src=docker://$src dst=dir:$out/dir ;; esac
        local t0 t1
        t0=$(date +%s%N)
        "${cmd[@]}" "${a[@]}" "$src" "$dst" >"$T/run.log" 2>&1 ||
                { cat "$T/run.log"; fail "pull $1"; }
        t1=$(date +%s%N)
        local ms
        ms=$(awk '/^signature check:/ {print $3}' "$T/run.log")
        echo "$(((t1 - t0) / 1000)) ${ms:-0}"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

VARIANTS="unsigned simple sigstore skopeo-unsigned skopeo-simple"
for v in $VARIANTS; do run $v >/dev/null; done
: >"$T/results"
for i in $(seq 1 "$RUNS"); do
        for v in $VARIANTS; do echo "$v $(run $v)" >>"$T/results"; done
done
printf '%-16s %12s %12s %16s\n' variant "median ms" "vs unsigned" "check ms (median)"
for v in $VARIANTS; do
        base=$(awk -v u="${v%%-*}" '$1 == (u == "skopeo" ? "skopeo-unsigned" : "unsigned") {print $2}' "$T/results" | median)
        wall=$(awk -v v=$v '$1 == v {print $2}' "$T/results" | median)
        chk=$(awk -v v=$v '$1 == v {print $3}' "$T/results" | median)
        printf '%-16s %12.1f %+11.1f %16.3f\n' "$v" "$(echo "$wall / 1000" | bc -l)" \
                "$(echo "($wall - $base) / 1000" | bc -l)" "$chk"
done
echo "(RUNS=$RUNS, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
