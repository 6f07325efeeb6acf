/*
 * Evidence JSON for the KBS's `tee-evidence.primary_evidence` (attestation-kbs.md 3.1, 4.1,
 * 4.2) and the parsers of the reports it is made from. These bytes come from the TEE's
 * firmware through the guest kernel; they are still checked for size and version before any
 * offset is read, and fuzzed (test/fuzz/fuzz-kbc-evidence.c).
 *
 * SNP evidence is not the report's bytes but the serde form of the Rust `sev` crate's
 * AttestationReport, which Trustee re-encodes into the 1184-byte layout to check the
 * signature: every field must decode exactly (byte arrays as arrays of numbers, TCBs by
 * processor generation, versions as build/minor/major bytes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "guest-agent/attest/kbc.h"

static void json_putp(struct json_object **p)
{
        json_object_put(*p);
}

const char *kbc_tee_name(enum kbc_tee t)
{
        return t == KBC_TEE_SNP ? "snp" : t == KBC_TEE_TDX ? "tdx" : "sample";
}

struct json_object *kbc_evidence_sample(const uint8_t *digest, size_t len)
{
        _cleanup_free_ char *rd = cc_b64_encode(digest, len, false);
        _cleanup_(json_putp) struct json_object *o = json_object_new_object();
        if (!rd || !o)
                return NULL;
        if (json_object_object_add(o, "svn", json_object_new_string("1")) < 0 ||
            json_object_object_add(o, "report_data", json_object_new_string(rd)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ---- SNP (4.2) -------------------------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
        return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int add(struct json_object *o, const char *k, struct json_object *v)
{
        if (!v)
                return -ENOMEM;
        return json_object_object_add(o, k, v) == 0 ? 0 : -ENOMEM;
}

static struct json_object *bytes_array(const uint8_t *p, size_t n)
{
        struct json_object *a = json_object_new_array_ext((int)n);
        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_object_array_add(a, json_object_new_int(p[i])) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

enum snp_gen { SNP_LEGACY, SNP_TURIN };

/* The sev crate's identify_cpu, reduced to what decides the TCB layout. */
static enum snp_gen snp_generation(const uint8_t *r, uint32_t version)
{
        if (version < 3)
                return SNP_LEGACY;
        uint8_t fam = r[0x188], mod = r[0x189];
        return fam == 0x1A && mod <= 0x11 ? SNP_TURIN : SNP_LEGACY;
}

static struct json_object *snp_tcb(const uint8_t *p, enum snp_gen g)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        int r = 0;
        if (g == SNP_TURIN) {
                r |= add(o, "fmc", json_object_new_int(p[0]));
                r |= add(o, "bootloader", json_object_new_int(p[1]));
                r |= add(o, "tee", json_object_new_int(p[2]));
                r |= add(o, "snp", json_object_new_int(p[3]));
        } else {
                r |= json_object_object_add(o, "fmc", NULL);
                r |= add(o, "bootloader", json_object_new_int(p[0]));
                r |= add(o, "tee", json_object_new_int(p[1]));
                r |= add(o, "snp", json_object_new_int(p[6]));
        }
        r |= add(o, "microcode", json_object_new_int(p[7]));
        if (r) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Bytes build, minor, major -> {"major","minor","build"}. */
static struct json_object *snp_version(const uint8_t *p)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        if (add(o, "major", json_object_new_int(p[2])) < 0 ||
            add(o, "minor", json_object_new_int(p[1])) < 0 ||
            add(o, "build", json_object_new_int(p[0])) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* GHCB certificate table GUIDs, in the byte order the table stores (the UUID's string order;
 * the sev crate reads them with Uuid::from_bytes). Not exercised on hardware here. */
static const struct {
        const char *name;
        uint8_t guid[16];
} cert_guids[] = {
        {"ARK",
         {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
          0xae}},
        {"ASK",
         {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
          0x82}},
        {"VCEK",
         {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
          0xcd}},
        {"VLEK",
         {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
          0xa1}},
        {"CRL",
         {0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67,
          0xea}},
};

static int snp_cert_chain(const uint8_t *t, size_t len, struct json_object **ret,
                          struct cc_error **err)
{
        _cleanup_(json_putp) struct json_object *a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        for (size_t off = 0;; off += 24) {
                if (off + 24 > len)
                        return cc_error_set(err, EBADMSG,
                                            "SNP certificate table: no terminating entry");
                const uint8_t *e = t + off;
                static const uint8_t zero[24];
                if (!memcmp(e, zero, 24))
                        break;
                uint32_t o = le32(e + 16), l = le32(e + 20);
                if (o > len || l > len - o)
                        return cc_error_set(err, EBADMSG,
                                            "SNP certificate table: entry %zu points outside the "
                                            "table (%u+%u > %zu)",
                                            off / 24, o, l, len);
                _cleanup_(json_putp) struct json_object *c = json_object_new_object();
                if (!c)
                        return -ENOMEM;
                const char *type = NULL;
                for (size_t i = 0; i < sizeof(cert_guids) / sizeof(cert_guids[0]); i++)
                        if (!memcmp(e, cert_guids[i].guid, 16))
                                type = cert_guids[i].name;
                if (type) {
                        if (add(c, "cert_type", json_object_new_string(type)) < 0)
                                return -ENOMEM;
                } else {
                        char u[40];
                        snprintf(u, sizeof(u),
                                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%"
                                 "02x",
                                 e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10],
                                 e[11], e[12], e[13], e[14], e[15]);
                        struct json_object *other = json_object_new_object();
                        if (add(other, "OTHER", json_object_new_string(u)) < 0 ||
                            add(c, "cert_type", other) < 0)
                                return -ENOMEM;
                }
                if (add(c, "data", bytes_array(t + o, l)) < 0 ||
                    json_object_array_add(a, TAKE_PTR(c)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int kbc_evidence_snp(const uint8_t *r, size_t len, const uint8_t *certs, size_t certs_len,
                     struct json_object **ret, struct cc_error **err)
{
        if (len != KBC_SNP_REPORT_SIZE)
                return cc_error_set(err, EBADMSG, "SNP report is %zu bytes, not %d", len,
                                    KBC_SNP_REPORT_SIZE);
        uint32_t version = le32(r);
        if (version < 2 || version > 5)
                return cc_error_set(err, EBADMSG, "SNP report version %u (2..5 known)", version);
        enum snp_gen g = snp_generation(r, version);
        _cleanup_(json_putp) struct json_object *rep = json_object_new_object();
        if (!rep)
                return -ENOMEM;
        int e = 0;
        e |= add(rep, "version", json_object_new_int64(version));
        e |= add(rep, "guest_svn", json_object_new_int64(le32(r + 0x4)));
        e |= add(rep, "policy", json_object_new_uint64(le64(r + 0x8)));
        e |= add(rep, "family_id", bytes_array(r + 0x10, 16));
        e |= add(rep, "image_id", bytes_array(r + 0x20, 16));
        e |= add(rep, "vmpl", json_object_new_int64(le32(r + 0x30)));
        e |= add(rep, "sig_algo", json_object_new_int64(le32(r + 0x34)));
        e |= add(rep, "current_tcb", snp_tcb(r + 0x38, g));
        e |= add(rep, "plat_info", json_object_new_uint64(le64(r + 0x40)));
        e |= add(rep, "key_info", json_object_new_int64(le32(r + 0x48)));
        e |= add(rep, "report_data", bytes_array(r + KBC_SNP_REPORT_DATA, 64));
        e |= add(rep, "measurement", bytes_array(r + KBC_SNP_MEASUREMENT, 48));
        e |= add(rep, "host_data", bytes_array(r + KBC_SNP_HOST_DATA, 32));
        e |= add(rep, "id_key_digest", bytes_array(r + 0xE0, 48));
        e |= add(rep, "author_key_digest", bytes_array(r + 0x110, 48));
        e |= add(rep, "report_id", bytes_array(r + 0x140, 32));
        e |= add(rep, "report_id_ma", bytes_array(r + 0x160, 32));
        e |= add(rep, "reported_tcb", snp_tcb(r + 0x180, g));
        if (version >= 3) {
                e |= add(rep, "cpuid_fam_id", json_object_new_int(r[0x188]));
                e |= add(rep, "cpuid_mod_id", json_object_new_int(r[0x189]));
                e |= add(rep, "cpuid_step", json_object_new_int(r[0x18A]));
        } else {
                e |= json_object_object_add(rep, "cpuid_fam_id", NULL);
                e |= json_object_object_add(rep, "cpuid_mod_id", NULL);
                e |= json_object_object_add(rep, "cpuid_step", NULL);
        }
        e |= add(rep, "chip_id", bytes_array(r + 0x1A0, 64));
        e |= add(rep, "committed_tcb", snp_tcb(r + 0x1E0, g));
        e |= add(rep, "current", snp_version(r + 0x1E8));
        e |= add(rep, "committed", snp_version(r + 0x1EC));
        e |= add(rep, "launch_tcb", snp_tcb(r + 0x1F0, g));
        if (version >= 5) {
                e |= add(rep, "launch_mit_vector", json_object_new_uint64(le64(r + 0x1F8)));
                e |= add(rep, "current_mit_vector", json_object_new_uint64(le64(r + 0x200)));
        } else {
                e |= json_object_object_add(rep, "launch_mit_vector", NULL);
                e |= json_object_object_add(rep, "current_mit_vector", NULL);
        }
        struct json_object *sig = json_object_new_object();
        e |= add(rep, "signature", sig);
        if (sig) {
                e |= add(sig, "r", bytes_array(r + 0x2A0, 72));
                e |= add(sig, "s", bytes_array(r + 0x2E8, 72));
        }
        if (e)
                return -ENOMEM;
        _cleanup_(json_putp) struct json_object *ev = json_object_new_object();
        if (!ev || add(ev, "attestation_report", TAKE_PTR(rep)) < 0)
                return -ENOMEM;
        struct json_object *chain = NULL;
        if (certs && certs_len) {
                int k = snp_cert_chain(certs, certs_len, &chain, err);
                if (k < 0)
                        return k;
        }
        if (json_object_object_add(ev, "cert_chain", chain) < 0) {
                json_object_put(chain);
                return -ENOMEM;
        }
        *ret = TAKE_PTR(ev);
        return 0;
}

/* ---- TDX (4.1) -------------------------------------------------------------------------- */

int kbc_tdx_quote_fields(const uint8_t *q, size_t len, const uint8_t **report_data,
                         const uint8_t **mrconfigid, struct cc_error **err)
{
        if (len < 48)
                return cc_error_set(err, EBADMSG, "TD quote is %zu bytes, shorter than its header",
                                    len);
        unsigned version = q[0] | q[1] << 8, key_type = q[2] | q[3] << 8;
        uint32_t tee = le32(q + 4);
        if (version != 4 && version != 5)
                return cc_error_set(err, EBADMSG, "TD quote version %u (4 or 5 known)", version);
        if (key_type != 2)
                return cc_error_set(err, EBADMSG,
                                    "TD quote attestation key type %u is not ECDSA-P256 (2)",
                                    key_type);
        if (tee != 0x81)
                return cc_error_set(err, EBADMSG, "TD quote TEE type 0x%x is not TDX (0x81)", tee);
        size_t body = 48, body_size = 584;
        if (version == 5) {
                if (len < 54)
                        return cc_error_set(err, EBADMSG,
                                            "TD quote v5 shorter than its body header");
                unsigned body_type = q[48] | q[49] << 8;
                if (body_type != 2 && body_type != 3)
                        return cc_error_set(err, EBADMSG, "TD quote v5 body type %u (2 or 3 known)",
                                            body_type);
                body = 54;
                body_size = body_type == 3 ? 648 : 584;
        }
        if (len < body + body_size)
                return cc_error_set(err, EBADMSG, "TD quote of %zu bytes is shorter than its body",
                                    len);
        if (report_data)
                *report_data = q + body + 520;
        if (mrconfigid)
                *mrconfigid = q + body + 184;
        return 0;
}

int kbc_evidence_tdx(const uint8_t *quote, size_t len, struct json_object **ret,
                     struct cc_error **err)
{
        int r = kbc_tdx_quote_fields(quote, len, NULL, NULL, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *b = cc_b64_encode(quote, len, false);
        _cleanup_(json_putp) struct json_object *o = json_object_new_object();
        if (!b || !o || json_object_object_add(o, "cc_eventlog", NULL) < 0 ||
            add(o, "quote", json_object_new_string(b)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}
