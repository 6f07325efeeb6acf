/*
 * Fuzz target: everything that parses OpenPGP bytes for simple signing. The input is
 * verified as a signature blob (format gate, packets, compression, signature subpackets)
 * against a keyring holding an Ed25519 key (the reference's KAT 1), and imported as a keyring
 * (binary or ASCII armor).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

#define KAT1_KEY                                                                       \
        "mDMEaxbXgBYJKwYBBAHaRw8BAQdAx0gRM2IEXPjRNCbG43ZgHUj5Z1FnRNzDL3vTHg0VJxu0KlVu" \
        "dHJ1c3RlZCBTaWduZXIgQiA8c2lnbmVyLWJAZXhhbXBsZS50ZXN0PoiQBBMWCAA4FiEEP6J7GCJF" \
        "vdjczYXOqJacPVqdF1AFAmsW14ACGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQqJacPVqd" \
        "F1CmFQEAnbNmJLFfic5Ks4d/BImReCB/uTvifBhXKA6mZ2mSwWAA/2KC68aUf9+bZPeRYuLufhiM" \
        "iIRA3YfvMbNH0ZaduGsH"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct img_pgp_keyring kr;
        if (!kr.n) {
                uint8_t *k;
                size_t kl;
                if (img__b64_decode(KAT1_KEY, strlen(KAT1_KEY), false, &k, &kl) < 0 ||
                    img__pgp_keyring_add(&kr, k, kl, NULL) < 0)
                        abort();
                free(k);
        }
        uint8_t *payload = NULL;
        size_t plen;
        char *why = NULL;
        if (img__simple_sig_check(&kr, data, size, 1800000000, &payload, &plen, &why) == 0) {
                struct img_sig_payload pl;
                if (img__sig_payload_parse(payload, plen, IMG_PAYLOAD_SIMPLE, &pl, NULL) == 0)
                        img__sig_payload_done(&pl);
        }
        free(payload);
        free(why);
        struct img_pgp_keyring other = {0};
        struct cc_error *err = NULL;
        img__pgp_keyring_add(&other, data, size, &err);
        for (size_t i = 0; i < other.n; i++)
                img__pgp_key_fpr(&other, i);
        char fpr[41];
        payload = NULL;
        if (other.n && img__pgp_verify(&other, data, size, 0, &payload, &plen, fpr, &err) == 0)
                free(payload);
        img__pgp_keyring_done(&other);
        cc_error_free(err);
        return 0;
}
