/*
 * cc-kbs verifiers: what a TEE's evidence must show before a token is issued.
 *   sample  off unless enabled (Trustee denies it by default too): report_data == digest;
 *   snp     report signature by the VCEK, the VCEK chained to the configured ASK and ARK,
 *           the VCEK's TCB equal to the reported TCB, VMPL 0, REPORT_DATA == digest || zeros,
 * HOST_DATA == initdata digest (if sent); tdx     a stub that refuses: quote verification needs
 * Intel's collateral (PCS/PCCS) and is left to a later issue, so no TDX evidence is ever accepted.
 */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "kbs/kbs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)

static int add_bytes_hex(struct json_object *o, const char *key, const uint8_t *b, size_t n)
{
        _cleanup_free_ char *h = cc_hex(b, n);
        if (!h)
                return -ENOMEM;
        json_object_object_add(o, key, json_object_new_string(h));
        return 0;
}

static int verify_sample(const struct kbs_verifiers *v, const struct kbs_evidence_in *in,
                         struct json_object **claims, struct cc_error **err)
{
        struct json_object *svn, *rd = NULL;
        if (!v->sample_enabled)
                return cc_error_set(err, EPERM, "the sample verifier is disabled");
        if (!json_object_is_type(in->evidence, json_type_object) ||
            !json_object_object_get_ex(in->evidence, "svn", &svn) ||
            !json_object_is_type(svn, json_type_string))
                return cc_error_set(err, EINVAL, "sample evidence: 'svn' must be a string");
        const char *rd_s = "";
        if (json_object_object_get_ex(in->evidence, "report_data", &rd)) {
                if (!json_object_is_type(rd, json_type_string))
                        return cc_error_set(err, EINVAL,
                                            "sample evidence: 'report_data' must be a string");
                rd_s = json_object_get_string(rd);
        }
        _cleanup_free_ uint8_t *got = NULL;
        size_t got_len = 0;
        if (cc_b64_decode(rd_s, strlen(rd_s), false, &got, &got_len) < 0)
                return cc_error_set(err, EINVAL, "sample evidence: report_data is not base64");
        /* Exactly the digest, not padded (ref 2.2). */
        if (got_len != in->report_data_len || memcmp(got, in->report_data, got_len) != 0)
                return cc_error_set(err, EPERM,
                                    "sample evidence: report_data does not match "
                                    "the runtime data");
        struct json_object *c = json_object_new_object();
        if (!c)
                return -ENOMEM;
        json_object_object_add(c, "svn", json_object_new_string(json_object_get_string(svn)));
        json_object_object_add(c, "report_data", json_object_new_string(rd_s));
        json_object_object_add(c, "launch_digest", json_object_new_string("abcde"));
        struct json_object *pv = json_object_new_object();
        json_object_object_add(pv, "major", json_object_new_int(1));
        json_object_object_add(pv, "minor", json_object_new_int(4));
        json_object_object_add(c, "platform_version", pv);
        json_object_object_add(c, "debug", json_object_new_boolean(false));
        if (in->init_data) {
                _cleanup_free_ char *b =
                        cc_b64_encode(in->init_data->digest, in->init_data->digest_len, false);
                json_object_object_add(c, "init_data", json_object_new_string(b ? b : ""));
        }
        *claims = c;
        return 0;
}

static X509 *cert_load(const char *path, struct cc_error **err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                cc_error_set(err, errno, "%s: %m", path);
                return NULL;
        }
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        if (!x) {
                rewind(f);
                x = d2i_X509_fp(f, NULL);
        }
        if (!x)
                cc_error_set(err, EINVAL, "%s: not a PEM or DER certificate", path);
        return x;
}

int kbs_verifiers_load_snp(struct kbs_verifiers *v, const char *ark, const char *ask,
                           const char *vcek, struct cc_error **err)
{
        if (!ark || !ask)
                return cc_error_set(err, EINVAL, "verifier.snp needs 'ark' and 'ask'");
        v->snp_ark = cert_load(ark, err);
        if (!v->snp_ark)
                return -EINVAL;
        v->snp_ask = cert_load(ask, err);
        if (!v->snp_ask)
                return -EINVAL;
        if (vcek) {
                v->snp_vcek = cert_load(vcek, err);
                if (!v->snp_vcek)
                        return -EINVAL;
        }
        /* A chain that does not verify is a configuration error, found at start. */
        int r = kbs_snp_check_chain(v, v->snp_vcek, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "verifier.snp");
        v->snp_enabled = true;
        return 0;
}

void kbs_verifiers_done(struct kbs_verifiers *v)
{
        X509_free(v->snp_ark);
        X509_free(v->snp_ask);
        X509_free(v->snp_vcek);
        memset(v, 0, sizeof(*v));
}

/* `child` is signed by `parent` and names it as issuer. */
static int signed_by(X509 *child, X509 *parent, const char *what, struct cc_error **err)
{
        EVP_PKEY *pk = X509_get0_pubkey(parent);
        if (!pk)
                return cc_error_set(err, EINVAL, "%s: issuer key unreadable", what);
        if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0)
                return cc_error_set(err, EPERM, "%s: issuer name does not match", what);
        if (X509_verify(child, pk) != 1)
                return cc_error_set(err, EPERM, "%s: signature does not verify", what);
        return 0;
}

int kbs_snp_check_chain(const struct kbs_verifiers *v, void *leaf, struct cc_error **err)
{
        int r = signed_by(v->snp_ark, v->snp_ark, "ARK (self-signed)", err);
        if (r == 0)
                r = signed_by(v->snp_ask, v->snp_ark, "ASK by ARK", err);
        if (r == 0 && leaf)
                r = signed_by(leaf, v->snp_ask, "VCEK by ASK", err);
        return r;
}

/* The VCEK from the evidence's cert_chain ({"cert_type":"VCEK","data":[DER bytes]}). */
static int chain_vcek(struct json_object *chain, X509 **ret, struct cc_error **err)
{
        if (!chain || !json_object_is_type(chain, json_type_array))
                return cc_error_set(err, EPERM, "snp: no VCEK configured and none in cert_chain");
        for (size_t i = 0; i < json_object_array_length(chain); i++) {
                struct json_object *e = json_object_array_get_idx(chain, i), *t, *d;
                if (!json_object_is_type(e, json_type_object) ||
                    !json_object_object_get_ex(e, "cert_type", &t) ||
                    !json_object_is_type(t, json_type_string) ||
                    strcmp(json_object_get_string(t), "VCEK") != 0)
                        continue;
                if (!json_object_object_get_ex(e, "data", &d) ||
                    !json_object_is_type(d, json_type_array) || json_object_array_length(d) > 16384)
                        return cc_error_set(err, EINVAL, "snp: cert_chain VCEK has no data");
                size_t n = json_object_array_length(d);
                _cleanup_free_ uint8_t *der = malloc(n ? n : 1);
                if (!der)
                        return -ENOMEM;
                for (size_t j = 0; j < n; j++) {
                        struct json_object *b = json_object_array_get_idx(d, j);
                        int64_t x = json_object_get_int64(b);
                        if (!json_object_is_type(b, json_type_int) || x < 0 || x > 255)
                                return cc_error_set(err, EINVAL,
                                                    "snp: cert_chain data is not bytes");
                        der[j] = (uint8_t)x;
                }
                const uint8_t *p = der;
                *ret = d2i_X509(NULL, &p, (long)n);
                if (!*ret)
                        return cc_error_set(err, EINVAL, "snp: cert_chain VCEK is not DER");
                return 0;
        }
        return cc_error_set(err, EPERM, "snp: no VCEK configured and none in cert_chain");
}

/*
 * The VCEK is specific to a chip and a TCB: its extensions carry the TCB's security patch
 * levels (AMD's VCEK specification: blSPL 1.3.6.1.4.1.3704.1.3.1, teeSPL .2, snpSPL .3,
 * ucodeSPL .8, each a DER INTEGER), which must equal the report's REPORTED_TCB, as Trustee
 * checks. A VCEK without them is refused.
 */
static int vcek_tcb_matches(X509 *vcek, const uint8_t report[KBS_SNP_REPORT_SIZE],
                            struct cc_error **err)
{
        static const struct {
                const char *oid, *name;
                size_t legacy, turin; /* byte of REPORTED_TCB (0x180) per generation */
        } spl[] = {
                {"1.3.6.1.4.1.3704.1.3.1", "bootloader", 0, 1},
                {"1.3.6.1.4.1.3704.1.3.2", "tee", 1, 2},
                {"1.3.6.1.4.1.3704.1.3.3", "snp", 6, 3},
                {"1.3.6.1.4.1.3704.1.3.8", "microcode", 7, 7},
        };
        bool turin = report[0x188] == 0x1A;
        for (size_t i = 0; i < sizeof(spl) / sizeof(spl[0]); i++) {
                ASN1_OBJECT *obj = OBJ_txt2obj(spl[i].oid, 1);
                int idx = obj ? X509_get_ext_by_OBJ(vcek, obj, -1) : -1;
                ASN1_OBJECT_free(obj);
                if (idx < 0)
                        return cc_error_set(err, EPERM, "snp: the VCEK has no %s SPL extension",
                                            spl[i].name);
                ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(vcek, idx));
                const uint8_t *p = ASN1_STRING_get0_data(data);
                ASN1_INTEGER *v = d2i_ASN1_INTEGER(NULL, &p, ASN1_STRING_length(data));
                long got = v ? ASN1_INTEGER_get(v) : -1;
                ASN1_INTEGER_free(v);
                uint8_t want = report[0x180 + (turin ? spl[i].turin : spl[i].legacy)];
                if (got != want)
                        return cc_error_set(err, EPERM, "snp: reported TCB %s %u, the VCEK's %ld",
                                            spl[i].name, want, got);
        }
        return 0;
}

static int verify_snp(const struct kbs_verifiers *v, const struct kbs_evidence_in *in,
                      struct json_object **claims, struct cc_error **err)
{
        struct json_object *rep, *chain = NULL;
        uint8_t report[KBS_SNP_REPORT_SIZE];
        if (!v->snp_enabled)
                return cc_error_set(err, EPERM, "the snp verifier is not configured");
        if (!json_object_is_type(in->evidence, json_type_object) ||
            !json_object_object_get_ex(in->evidence, "attestation_report", &rep))
                return cc_error_set(err, EINVAL, "snp evidence: missing 'attestation_report'");
        json_object_object_get_ex(in->evidence, "cert_chain", &chain);
        int r = kbs_snp_report_from_json(rep, report, err);
        if (r < 0)
                return r;
        uint32_t version = report[0] | report[1] << 8 | report[2] << 16 | (uint32_t)report[3] << 24;
        if (version < 3 || version > 5)
                return cc_error_set(err, EINVAL, "snp report: version %u (3..5)", version);

        _cleanup_(X509_freep) X509 *own = NULL;
        X509 *vcek = v->snp_vcek;
        if (!vcek) {
                r = chain_vcek(chain, &own, err);
                if (r < 0)
                        return r;
                r = kbs_snp_check_chain(v, own, err);
                if (r < 0)
                        return r;
                vcek = own;
        }
        r = kbs_snp_verify_signature(report, X509_get0_pubkey(vcek), err);
        if (r == 0)
                r = vcek_tcb_matches(vcek, report, err);
        if (r < 0)
                return r;
        if (report[0x30] | report[0x31] | report[0x32] | report[0x33])
                return cc_error_set(err, EPERM, "snp report: VMPL is not 0");
        uint8_t want[64];
        kbs_regularize(in->report_data, in->report_data_len, want, 64);
        if (memcmp(report + 0x50, want, 64) != 0)
                return cc_error_set(err, EPERM,
                                    "snp report: REPORT_DATA does not match the "
                                    "runtime data");
        if (in->init_data) {
                uint8_t host[32];
                kbs_regularize(in->init_data->digest, in->init_data->digest_len, host, 32);
                if (memcmp(report + 0xC0, host, 32) != 0)
                        return cc_error_set(err, EPERM,
                                            "snp report: HOST_DATA does not match "
                                            "the init-data digest");
        }
        struct json_object *c = json_object_new_object();
        if (!c)
                return -ENOMEM;
        add_bytes_hex(c, "measurement", report + 0x90, 48);
        add_bytes_hex(c, "report_data", report + 0x50, 64);
        add_bytes_hex(c, "init_data", report + 0xC0, 32);
        add_bytes_hex(c, "chip_id", report + 0x1A0, 64);
        uint64_t policy = 0;
        for (int i = 7; i >= 0; i--)
                policy = policy << 8 | report[0x08 + i];
        json_object_object_add(c, "policy_debug_allowed",
                               json_object_new_boolean((policy >> 19) & 1));
        json_object_object_add(c, "policy_abi_major", json_object_new_int((policy >> 8) & 0xff));
        json_object_object_add(c, "policy_abi_minor", json_object_new_int(policy & 0xff));
        json_object_object_add(c, "reported_tcb_bootloader", json_object_new_int(report[0x180]));
        json_object_object_add(c, "reported_tcb_microcode", json_object_new_int(report[0x187]));
        json_object_object_add(c, "platform_smt_enabled",
                               json_object_new_boolean(report[0x40] & 1));
        *claims = c;
        return 0;
}

int kbs_verify_evidence(const struct kbs_verifiers *v, const struct kbs_evidence_in *in,
                        struct json_object **claims, struct cc_error **err)
{
        switch (in->tee) {
        case KBS_TEE_SAMPLE:
                return verify_sample(v, in, claims, err);
        case KBS_TEE_SNP:
                return verify_snp(v, in, claims, err);
        case KBS_TEE_TDX:
                return cc_error_set(err, ENOTSUP,
                                    "tdx: quote verification is not implemented "
                                    "(a documented stub that refuses)");
        default:
                return cc_error_set(err, ENOTSUP, "no verifier for tee '%s'",
                                    kbs_tee_to_string(in->tee));
        }
}
