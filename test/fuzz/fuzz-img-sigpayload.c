/*
 * Fuzz target: the JSON of signatures. The input is parsed as a simple-signing and as a cosign
 * payload (strict JSON, duplicate keys), as a sigstore attachment manifest, as the registry
 * signature extension's answer, and used as the
 * base64 signature annotation of a cosign layer checked against a P-256 key, and as that
 * public key (PEM).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

#define K1                                                                   \
        "-----BEGIN PUBLIC KEY-----\n"                                       \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETTp+ULNtrILUWrAzn1NDkvG++dGq\n" \
        "bC7DcLS5JObf6q5LIJqU1LR0WMPgSqYa8fp8P/6c+jw/vDoJx404tAVZAA==\n"     \
        "-----END PUBLIC KEY-----\n"

#define SIG                                                                                \
        "MEQCICoKo1nyvZ28KHGu68n52Gx49tIep4SejzsnBldOIJV5AiBbM9mZbucAkoe2agVwPZbG2D73geo/" \
        "dByzx5PBUsP1mg=="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cc_error *err = NULL;
        struct img_sig_payload pl;
        if (img__sig_payload_parse(data, size, IMG_PAYLOAD_SIMPLE, &pl, &err) == 0)
                img__sig_payload_done(&pl);
        if (img__sig_payload_parse(data, size, IMG_PAYLOAD_COSIGN, &pl, &err) == 0)
                img__sig_payload_done(&pl);
        struct img_sigstore_layer *l;
        size_t n, other;
        if (img__sigstore_manifest_parse(NULL, data, size, &l, &n, &other, &err) == 0)
                img__sigstore_layers_free(l, n);
        struct img_sig_blob *b;
        if (img__xrss_parse(data, size, &b, &n, &err) == 0)
                img__sig_blobs_free(b, n);
        if (size < 4096) {
                char *s = strndup((const char *)data, size);
                if (s)
                        img__sigstore_verify((const uint8_t *)K1, strlen(K1), data, size, s, &err);
                free(s);
                /* The input as the public key (PEM; the SPKI fast path and OpenSSL's reader). */
                img__sigstore_verify(data, size, (const uint8_t *)"payload", 7, SIG, &err);
        }
        cc_error_free(err);
        return 0;
}
