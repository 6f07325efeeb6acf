/*
 * Fuzz target: evidence through the verifiers. The first byte picks the TEE (sample, snp with
 * a configured VCEK, snp with the VCEK taken from the evidence's cert_chain, tdx), the rest is
 * the evidence JSON. The SNP chain is one self-signed P-384 certificate made at start, standing
 * for ARK, ASK and VCEK, so the chain check passes and the parsers behind it are reached.
 */
#include <openssl/x509.h>
#include <stdint.h>

#include "cc/json.h"

#include "kbs/kbs.h"

static struct kbs_verifiers with_vcek, from_chain;

static X509 *self_signed(void)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ARK", -1, -1, 0);
        X509_set_subject_name(x, n);
        X509_set_issuer_name(x, n);
        X509_set_pubkey(x, k);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_sign(x, k, EVP_sha384());
        X509_NAME_free(n);
        EVP_PKEY_free(k);
        return x;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        X509 *c = self_signed();
        X509_up_ref(c);
        X509_up_ref(c);
        X509_up_ref(c);
        X509_up_ref(c);
        with_vcek = (struct kbs_verifiers){.sample_enabled = true,
                                           .snp_enabled = true,
                                           .snp_ark = c,
                                           .snp_ask = c,
                                           .snp_vcek = c};
        from_chain = (struct kbs_verifiers){.snp_enabled = true, .snp_ark = c, .snp_ask = c};
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t digest[48];
        struct json_object *o = NULL, *claims = NULL;
        struct cc_error *err = NULL;
        if (size < 1)
                return 0;
        if (!with_vcek.snp_ark)
                LLVMFuzzerInitialize(NULL, NULL);
        static const enum kbs_tee tees[] = {KBS_TEE_SAMPLE, KBS_TEE_SNP, KBS_TEE_SNP, KBS_TEE_TDX};
        unsigned pick = data[0] % 4;
        if (cc_json_parse("evidence", (const char *)data + 1, size - 1, 16, &o, &err) == 0) {
                struct kbs_evidence_in in = {.tee = tees[pick],
                                             .evidence = o,
                                             .report_data = digest,
                                             .report_data_len = 48};
                if (kbs_verify_evidence(pick == 2 ? &from_chain : &with_vcek, &in, &claims, &err) ==
                    0)
                        json_object_put(claims);
                json_object_put(o);
        }
        cc_error_free(err);
        return 0;
}
