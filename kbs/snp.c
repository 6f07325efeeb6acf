/*
 * cc-kbs: SEV-SNP attestation reports. The guest sends the report as the serde JSON of the Rust
 * `sev` crate's AttestationReport (ref 4.2), not as bytes; the signature covers the 1184-byte
 * layout, so the report is rebuilt byte for byte (reserved areas zero) before it is checked.
 */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <string.h>

#include "kbs/kbs.h"

static int get(struct json_object *o, const char *key, struct json_object **v,
               struct cc_error **err)
{
        if (!json_object_object_get_ex(o, key, v))
                return cc_error_set(err, EINVAL, "snp report: missing '%s'", key);
        return 0;
}

/* An unsigned integer of at most `max`; null allowed (stored as 0) when `nullable`. */
static int uint_at(struct json_object *o, const char *key, uint64_t max, bool nullable,
                   uint64_t *ret, struct cc_error **err)
{
        struct json_object *v;
        int r = get(o, key, &v, err);
        if (r < 0)
                return r;
        if (!v && nullable) {
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
            json_object_get_uint64(v) > max)
                return cc_error_set(err, EINVAL, "snp report: '%s' must be an integer 0..%llu", key,
                                    (unsigned long long)max);
        *ret = json_object_get_uint64(v);
        return 0;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static int put_uint(struct json_object *o, const char *key, uint8_t *out, size_t off, size_t n,
                    bool nullable, struct cc_error **err)
{
        uint64_t v;
        uint64_t max = n == 8 ? UINT64_MAX : (1ull << (8 * n)) - 1;
        int r = uint_at(o, key, max, nullable, &v, err);
        if (r == 0)
                put_le(out + off, v, n);
        return r;
}

/* A byte array: a JSON array of exactly `n` numbers 0..255. */
static int bytes_of(struct json_object *v, const char *key, uint8_t *out, size_t n,
                    struct cc_error **err)
{
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != n)
                return cc_error_set(err, EINVAL, "snp report: '%s' must be an array of %zu bytes",
                                    key, n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *b = json_object_array_get_idx(v, i);
                if (!json_object_is_type(b, json_type_int) || json_object_get_int64(b) < 0 ||
                    json_object_get_int64(b) > 255)
                        return cc_error_set(err, EINVAL, "snp report: '%s'[%zu] is not a byte", key,
                                            i);
                out[i] = (uint8_t)json_object_get_int64(b);
        }
        return 0;
}

static int put_bytes(struct json_object *o, const char *key, uint8_t *out, size_t off, size_t n,
                     struct cc_error **err)
{
        struct json_object *v;
        int r = get(o, key, &v, err);
        return r < 0 ? r : bytes_of(v, key, out + off, n, err);
}

/* A TCB version {fmc, bootloader, tee, snp, microcode}, laid out per generation (ref 4.2). */
static int put_tcb(struct json_object *o, const char *key, bool turin, uint8_t *out, size_t off,
                   struct cc_error **err)
{
        struct json_object *t;
        uint64_t fmc, bl, tee, snp, uc;
        int r = get(o, key, &t, err);
        if (r < 0)
                return r;
        if (!json_object_is_type(t, json_type_object))
                return cc_error_set(err, EINVAL, "snp report: '%s' must be an object", key);
        r = uint_at(t, "fmc", 255, true, &fmc, err);
        if (r == 0)
                r = uint_at(t, "bootloader", 255, false, &bl, err);
        if (r == 0)
                r = uint_at(t, "tee", 255, false, &tee, err);
        if (r == 0)
                r = uint_at(t, "snp", 255, false, &snp, err);
        if (r == 0)
                r = uint_at(t, "microcode", 255, false, &uc, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "snp report: %s", key);
        uint8_t *p = out + off;
        if (turin) {
                p[0] = (uint8_t)fmc;
                p[1] = (uint8_t)bl;
                p[2] = (uint8_t)tee;
                p[3] = (uint8_t)snp;
        } else {
                if (fmc)
                        return cc_error_set(err, EINVAL,
                                            "snp report: %s.fmc is set on a pre-Turin report", key);
                p[0] = (uint8_t)bl;
                p[1] = (uint8_t)tee;
                p[6] = (uint8_t)snp;
        }
        p[7] = (uint8_t)uc;
        return 0;
}

/* {"major","minor","build"} stored as build, minor, major. */
static int put_version(struct json_object *o, const char *key, uint8_t *out, size_t off,
                       struct cc_error **err)
{
        struct json_object *t;
        uint64_t major, minor, build;
        int r = get(o, key, &t, err);
        if (r < 0)
                return r;
        if (!json_object_is_type(t, json_type_object))
                return cc_error_set(err, EINVAL, "snp report: '%s' must be an object", key);
        r = uint_at(t, "major", 255, false, &major, err);
        if (r == 0)
                r = uint_at(t, "minor", 255, false, &minor, err);
        if (r == 0)
                r = uint_at(t, "build", 255, false, &build, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "snp report: %s", key);
        out[off] = (uint8_t)build;
        out[off + 1] = (uint8_t)minor;
        out[off + 2] = (uint8_t)major;
        return 0;
}

int kbs_snp_report_from_json(struct json_object *o, uint8_t out[KBS_SNP_REPORT_SIZE],
                             struct cc_error **err)
{
        static const struct {
                const char *key;
                size_t off, n;
        } arrays[] = {
                {"family_id", 0x10, 16},          {"image_id", 0x20, 16},
                {"report_data", 0x50, 64},        {"measurement", 0x90, 48},
                {"host_data", 0xC0, 32},          {"id_key_digest", 0xE0, 48},
                {"author_key_digest", 0x110, 48}, {"report_id", 0x140, 32},
                {"report_id_ma", 0x160, 32},      {"chip_id", 0x1A0, 64},
        };
        static const struct {
                const char *key;
                size_t off, n;
                bool nullable;
        } ints[] = {
                {"version", 0x0, 4, false},
                {"guest_svn", 0x4, 4, false},
                {"policy", 0x8, 8, false},
                {"vmpl", 0x30, 4, false},
                {"sig_algo", 0x34, 4, false},
                {"plat_info", 0x40, 8, false},
                {"key_info", 0x48, 4, false},
                {"cpuid_fam_id", 0x188, 1, true},
                {"cpuid_mod_id", 0x189, 1, true},
                {"cpuid_step", 0x18A, 1, true},
                {"launch_mit_vector", 0x1F8, 8, true},
                {"current_mit_vector", 0x200, 8, true},
        };
        static const char *const tcbs[] = {"current_tcb", "reported_tcb", "committed_tcb",
                                           "launch_tcb"};
        static const size_t tcb_off[] = {0x38, 0x180, 0x1E0, 0x1F0};
        int r;
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "snp report must be an object");
        memset(out, 0, KBS_SNP_REPORT_SIZE);
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
                r = put_uint(o, ints[i].key, out, ints[i].off, ints[i].n, ints[i].nullable, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
                r = put_bytes(o, arrays[i].key, out, arrays[i].off, arrays[i].n, err);
                if (r < 0)
                        return r;
        }
        /* The generation decides the TCB layout: family 0x1A is Turin (ref 4.2). */
        bool turin = out[0x188] == 0x1A;
        for (size_t i = 0; i < 4; i++) {
                r = put_tcb(o, tcbs[i], turin, out, tcb_off[i], err);
                if (r < 0)
                        return r;
        }
        r = put_version(o, "current", out, 0x1E8, err);
        if (r == 0)
                r = put_version(o, "committed", out, 0x1EC, err);
        if (r < 0)
                return r;
        struct json_object *sig, *v;
        r = get(o, "signature", &sig, err);
        if (r < 0)
                return r;
        if (!json_object_is_type(sig, json_type_object))
                return cc_error_set(err, EINVAL, "snp report: 'signature' must be an object");
        r = get(sig, "r", &v, err);
        if (r == 0)
                r = bytes_of(v, "signature.r", out + 0x2A0, 72, err);
        if (r == 0)
                r = get(sig, "s", &v, err);
        if (r == 0)
                r = bytes_of(v, "signature.s", out + 0x2E8, 72, err);
        return r;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

int kbs_snp_verify_signature(const uint8_t report[KBS_SNP_REPORT_SIZE], EVP_PKEY *vcek,
                             struct cc_error **err)
{
        uint32_t algo = (uint32_t)report[0x34] | (uint32_t)report[0x35] << 8 |
                        (uint32_t)report[0x36] << 16 | (uint32_t)report[0x37] << 24;
        if (algo != 1)
                return cc_error_set(err, EINVAL,
                                    "snp report: signature algorithm %u (want 1, "
                                    "ECDSA P-384 with SHA-384)",
                                    algo);
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = ECDSA_SIG_new();
        BIGNUM *r = BN_lebin2bn(report + 0x2A0, 72, NULL);
        BIGNUM *s = BN_lebin2bn(report + 0x2E8, 72, NULL);
        if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
                BN_free(r);
                BN_free(s);
                return -ENOMEM;
        }
        uint8_t der[256], *p = der;
        if (i2d_ECDSA_SIG(sig, NULL) > (int)sizeof(der))
                return cc_error_set(err, EINVAL, "snp report: malformed signature");
        int der_len = i2d_ECDSA_SIG(sig, &p);
        if (der_len <= 0)
                return cc_error_set(err, EINVAL, "snp report: malformed signature");
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, vcek) != 1)
                return cc_error_set(err, EINVAL, "snp report: the VCEK is not an ECDSA key");
        if (EVP_DigestVerify(md, der, (size_t)der_len, report, KBS_SNP_SIGNED_SIZE) != 1)
                return cc_error_set(err, EPERM,
                                    "snp report: signature does not verify with the VCEK");
        return 0;
}
