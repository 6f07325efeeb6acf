/*
 * The OpenPGP (RFC 4880) subset that simple signing needs: public keyrings (binary or ASCII
 * armored) and binary signed messages (one-pass signature, literal data, signature), with the
 * signature checked by OpenSSL.
 *
 * Why hand-written and not a library (measurements in the team's image-signatures reference):
 *   - librnp 0.16 (Debian 12) reports success for an expired signature and for a message with
 *     no signature at all, accepts cleartext signatures and writes the payload out even when
 *     verification fails: every one of those is a way to get it wrong, and it adds Botan
 *     (about 8 MB) to the guest image;
 *   - gpgme forks the gpg binary per call and starts a gpg-agent unless told not to: a process
 *     tree and a GNUPGHOME in the guest for one check;
 *   - what is needed is small: packet headers, one signature packet, v4 key fingerprints, and
 *     a hash + RSA/EdDSA/ECDSA verification that OpenSSL (already in the image) does.
 * The parser is strict: exactly one one-pass/literal/signature sequence (optionally inside one
 * compressed packet), v4 signatures of class 0x00 over SHA-2 only. Trusted identities are the
 * primary keys' fingerprints, as in the containers/image that Debian's skopeo is built from: a
 * signature by a subkey is refused like one by an unknown key.
 * Keys: a verified revocation or key expiration in the keyring's self-signatures is honoured.
 * Not implemented: signature subpackets other than creation time, expiration times, issuer and
 * issuer fingerprint (a critical unknown one is refused); SHA-1 self-signatures are ignored.
 *
 * RSA and ECDSA keys, and the hashes, use OpenSSL's low-level functions (RSA_verify,
 * ECDSA_do_verify, SHA256_Init...), deprecated in OpenSSL 3 but not going away in 3.x, rather
 * than EVP: each pull is a new helper process, and under TCG a process pays for translating
 * every code path it runs once. EVP's key and signature fetches (provider method stores, name
 * maps, parameter builders) more than double the code one verification runs: measured on the
 * host with valgrind, a first RSA-3072 verification touches 1,710 new basic blocks through EVP
 * and 727 through RSA_verify, a first P-256 one 2,522 and 1,605 (bench/README.md has the
 * guest's numbers). Ed25519 has no low-level API and stays on EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <bzlib.h>
#include <errno.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

enum {
        TAG_SIG = 2,
        TAG_ONEPASS = 4,
        TAG_PUBKEY = 6,
        TAG_COMPRESSED = 8,
        TAG_LITERAL = 11,
        TAG_PUBSUBKEY = 14,
};
enum { PK_RSA = 1, PK_RSA_S = 3, PK_ECDSA = 19, PK_EDDSA = 22 };

struct img_pgp_key {
        char fpr[41];
        uint8_t keyid[8];
        int algo;
        RSA *rsa;     /* PK_RSA, PK_RSA_S */
        EC_KEY *ec;   /* PK_ECDSA */
        EVP_PKEY *ed; /* PK_EDDSA (Ed25519) */
        int64_t created;
        int64_t expires;      /* from the newest verified self-signature; 0 = never */
        int64_t selfsig_time; /* creation time of that self-signature */
        bool revoked;         /* a verified key revocation signature is in the keyring */
};

const char *img__pgp_key_fpr(const struct img_pgp_keyring *kr, size_t n)
{
        return n < kr->n ? kr->keys[n].fpr : NULL;
}

int img__pgp_key_algo(const struct img_pgp_keyring *kr, size_t n, size_t *ret_rsa_bytes)
{
        if (n >= kr->n)
                return -ENOENT;
        *ret_rsa_bytes = kr->keys[n].rsa ? (size_t)RSA_size(kr->keys[n].rsa) : 0;
        return kr->keys[n].algo;
}

static void key_free(struct img_pgp_key *k)
{
        RSA_free(k->rsa);
        EC_KEY_free(k->ec);
        EVP_PKEY_free(k->ed);
        k->rsa = NULL;
        k->ec = NULL;
        k->ed = NULL;
}

void img__pgp_keyring_done(struct img_pgp_keyring *kr)
{
        for (size_t i = 0; i < kr->n; i++)
                key_free(&kr->keys[i]);
        free(kr->keys);
        *kr = (struct img_pgp_keyring){0};
}

/* ---- packets ---- */

struct pkt {
        int tag;
        const uint8_t *body;
        size_t len;
        uint8_t *owned; /* body reassembled from partial lengths */
};

/* Reads one packet at *pos; 0 at the end of the buffer (ret->tag = 0). */
static int pkt_next(const uint8_t *buf, size_t len, size_t *pos, struct pkt *ret)
{
        *ret = (struct pkt){0};
        size_t p = *pos;
        if (p >= len)
                return 0;
        uint8_t ctb = buf[p++];
        if (!(ctb & 0x80))
                return -EBADMSG;
        size_t blen;
        if (!(ctb & 0x40)) { /* old format */
                ret->tag = (ctb >> 2) & 0xf;
                if (ret->tag == 0)
                        return -EBADMSG;
                int lt = ctb & 3;
                if (lt == 3) {
                        blen = len - p;
                } else {
                        size_t nb = lt == 0 ? 1 : lt == 1 ? 2 : 4;
                        if (len - p < nb)
                                return -EBADMSG;
                        blen = 0;
                        for (size_t i = 0; i < nb; i++)
                                blen = (blen << 8) | buf[p++];
                }
                if (blen > len - p)
                        return -EBADMSG;
                ret->body = buf + p;
                ret->len = blen;
                *pos = p + blen;
                return 0;
        }
        ret->tag = ctb & 0x3f;
        if (ret->tag == 0) /* reserved; and 0 means "end of the buffer" to the callers */
                return -EBADMSG;
        uint8_t *acc = NULL;
        size_t acc_len = 0;
        for (;;) {
                if (p >= len)
                        goto bad;
                uint8_t o = buf[p++];
                bool partial = false;
                if (o < 192) {
                        blen = o;
                } else if (o < 224) {
                        if (p >= len)
                                goto bad;
                        blen = ((size_t)(o - 192) << 8) + buf[p++] + 192;
                } else if (o == 255) {
                        if (len - p < 4)
                                goto bad;
                        blen = (size_t)buf[p] << 24 | (size_t)buf[p + 1] << 16 |
                               (size_t)buf[p + 2] << 8 | buf[p + 3];
                        p += 4;
                } else {
                        blen = (size_t)1 << (o & 0x1f);
                        partial = true;
                }
                if (blen > len - p)
                        goto bad;
                if (!partial && !acc) {
                        ret->body = buf + p;
                        ret->len = blen;
                        *pos = p + blen;
                        return 0;
                }
                uint8_t *n = realloc(acc, acc_len + blen + 1);
                if (!n) {
                        free(acc);
                        return -ENOMEM;
                }
                acc = n;
                memcpy(acc + acc_len, buf + p, blen);
                acc_len += blen;
                p += blen;
                if (!partial) {
                        ret->body = ret->owned = acc;
                        ret->len = acc_len;
                        *pos = p;
                        return 0;
                }
        }
bad:
        free(acc);
        return -EBADMSG;
}

/* An MPI at *p: returns its bytes (leading zeros dropped by the encoding) and advances. */
static int mpi_read(const uint8_t *b, size_t len, size_t *p, const uint8_t **ret, size_t *ret_len)
{
        if (len - *p < 2 || *p > len)
                return -EBADMSG;
        size_t bits = (size_t)b[*p] << 8 | b[*p + 1];
        size_t n = (bits + 7) / 8;
        *p += 2;
        if (len - *p < n)
                return -EBADMSG;
        *ret = b + *p;
        *ret_len = n;
        *p += n;
        return 0;
}

/* ---- keys ---- */

static const uint8_t OID_ED25519[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_P521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};

/* An EC public key on curve `nid` from an uncompressed or compressed point; NULL when the
 * point is not on the curve. */
static EC_KEY *ec_key(int nid, const uint8_t *point, size_t len)
{
        EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
        if (ec && EC_KEY_oct2key(ec, point, len, NULL) != 1) {
                EC_KEY_free(ec);
                ec = NULL;
        }
        return ec;
}

/* A v4 public key packet body into an OpenSSL key; unsupported algorithms give -ENOTSUP. */
static int key_parse(const uint8_t *b, size_t len, struct img_pgp_key *k)
{
        if (len < 6 || b[0] != 4)
                return -ENOTSUP;
        k->algo = b[5];
        size_t p = 6;
        const uint8_t *m1, *m2;
        size_t l1, l2;
        if (k->algo == PK_RSA || k->algo == PK_RSA_S) {
                if (mpi_read(b, len, &p, &m1, &l1) < 0 || mpi_read(b, len, &p, &m2, &l2) < 0)
                        return -EBADMSG;
                RSA *rsa = RSA_new();
                BIGNUM *n = BN_bin2bn(m1, (int)l1, NULL), *e = BN_bin2bn(m2, (int)l2, NULL);
                if (rsa && n && e && RSA_set0_key(rsa, n, e, NULL) == 1) {
                        k->rsa = TAKE_PTR(rsa);
                        n = e = NULL;
                }
                RSA_free(rsa);
                BN_free(n);
                BN_free(e);
        } else if (k->algo == PK_EDDSA || k->algo == PK_ECDSA) {
                if (p >= len || b[p] == 0 || b[p] == 0xff || len - p - 1 < b[p])
                        return -EBADMSG;
                const uint8_t *oid = b + p + 1;
                size_t oid_len = b[p];
                p += 1 + oid_len;
                if (mpi_read(b, len, &p, &m1, &l1) < 0)
                        return -EBADMSG;
#define OID_IS(x) (oid_len == sizeof(x) && !memcmp(oid, x, sizeof(x)))
                if (k->algo == PK_EDDSA) {
                        /* Legacy EdDSA: the point is 0x40 || 32-byte key. */
                        if (!OID_IS(OID_ED25519) || l1 != 33 || m1[0] != 0x40)
                                return -ENOTSUP;
                        k->ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, m1 + 1, 32);
                } else {
                        int nid = OID_IS(OID_P256)   ? NID_X9_62_prime256v1
                                  : OID_IS(OID_P384) ? NID_secp384r1
                                  : OID_IS(OID_P521) ? NID_secp521r1
                                                     : NID_undef;
                        if (nid == NID_undef)
                                return -ENOTSUP;
                        k->ec = ec_key(nid, m1, l1);
                }
#undef OID_IS
        } else {
                return -ENOTSUP;
        }
        /* v4 fingerprint: SHA-1 over 0x99, a 2-byte length and the packet body. */
        uint8_t hdr[3] = {0x99, (uint8_t)(len >> 8), (uint8_t)len}, md[20];
        SHA_CTX c;
        if ((!k->rsa && !k->ec && !k->ed) || len > 0xffff || !SHA1_Init(&c) ||
            !SHA1_Update(&c, hdr, 3) || !SHA1_Update(&c, b, len) || !SHA1_Final(md, &c)) {
                key_free(k);
                return -EBADMSG;
        }
        for (int i = 0; i < 20; i++)
                sprintf(k->fpr + 2 * i, "%02X", md[i]);
        memcpy(k->keyid, md + 12, 8);
        k->created =
                (int64_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
        return 0;
}

static void key_self_sig(struct img_pgp_key *k, const uint8_t *kbody, size_t klen,
                         const uint8_t *uid, size_t uid_len, const uint8_t *sb, size_t sl);

/* Adds the primary keys of binary packets; the signatures that follow a primary key before its
 * first subkey are its self-signatures (revocation, expiry), checked by key_self_sig(). */
static int keyring_add_binary(struct img_pgp_keyring *kr, const uint8_t *b, size_t len)
{
        size_t pos = 0;
        int found = 0, r = 0;
        ssize_t cur = -1; /* the primary key whose packets follow, or -1 */
        _cleanup_free_ uint8_t *kbody = NULL, *uid = NULL;
        size_t klen = 0, uid_len = 0;
        for (;;) {
                struct pkt pk;
                if ((r = pkt_next(b, len, &pos, &pk)) < 0 || pk.tag == 0)
                        break;
                if (pk.tag == TAG_PUBKEY) {
                        struct img_pgp_key k = {0};
                        cur = -1;
                        free(TAKE_PTR(uid));
                        if (key_parse(pk.body, pk.len, &k) == 0) {
                                struct img_pgp_key *n =
                                        realloc(kr->keys, (kr->n + 1) * sizeof(*kr->keys));
                                free(kbody);
                                kbody = malloc(pk.len + 1);
                                if (!n || !kbody) {
                                        if (n)
                                                kr->keys = n;
                                        key_free(&k);
                                        free(pk.owned);
                                        return -ENOMEM;
                                }
                                memcpy(kbody, pk.body, pk.len);
                                klen = pk.len;
                                kr->keys = n;
                                cur = (ssize_t)kr->n;
                                kr->keys[kr->n++] = k;
                                found++;
                        }
                } else if (pk.tag == TAG_PUBSUBKEY) {
                        cur = -1;
                } else if (pk.tag == 13 && cur >= 0) { /* user ID */
                        free(uid);
                        if (!(uid = malloc(pk.len + 1))) {
                                free(pk.owned);
                                return -ENOMEM;
                        }
                        memcpy(uid, pk.body, pk.len);
                        uid_len = pk.len;
                } else if (pk.tag == 17) { /* user attribute: its certifications are not ours */
                        free(TAKE_PTR(uid));
                } else if (pk.tag == TAG_SIG && cur >= 0) {
                        key_self_sig(&kr->keys[cur], kbody, klen, uid, uid_len, pk.body, pk.len);
                }
                free(pk.owned);
        }
        return r < 0 ? r : found;
}

/* ASCII armor: header lines, a blank line, base64 lines, an optional "=" CRC line, END. */
static int dearmor(const char *s, size_t len, const char **next, uint8_t **ret, size_t *ret_len)
{
        const char *end = s + len;
        const char *begin = memmem(s, len, "-----BEGIN PGP ", 15);
        if (!begin)
                return -ENOENT;
        const char *p = memchr(begin, '\n', (size_t)(end - begin));
        if (!p)
                return -EBADMSG;
        p++;
        /* Armor headers ("Version: ...") up to the first empty line, if any are present. */
        const char *q = p;
        while (q < end) {
                const char *eol = memchr(q, '\n', (size_t)(end - q));
                size_t ll = (size_t)((eol ? eol : end) - q);
                if (ll && q[ll - 1] == '\r')
                        ll--;
                if (ll == 0) {
                        p = eol ? eol + 1 : end;
                        break;
                }
                if (!memchr(q, ':', ll))
                        break;
                q = eol ? eol + 1 : end;
        }
        size_t cap = (size_t)(end - p);
        _cleanup_free_ char *b64 = malloc(cap + 1);
        if (!b64)
                return -ENOMEM;
        size_t n = 0;
        bool done = false;
        while (p < end && !done) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                size_t ll = (size_t)((eol ? eol : end) - p);
                if (!strncmp(p, "-----END", CC_MIN(ll, 8)) && ll >= 8)
                        done = true;
                else if (ll && p[0] == '=' && (ll == 5 || (ll == 6 && p[5] == '\r')))
                        ; /* CRC-24 line: the signature check covers integrity */
                else
                        for (size_t i = 0; i < ll; i++)
                                if (!strchr(" \t\r", p[i]))
                                        b64[n++] = p[i];
                p = eol ? eol + 1 : end;
        }
        if (!done)
                return -EBADMSG;
        *next = p;
        return img__b64_decode(b64, n, false, ret, ret_len) < 0 ? -EBADMSG : 0;
}

int img__pgp_keyring_add(struct img_pgp_keyring *kr, const uint8_t *buf, size_t len,
                         struct cc_error **err)
{
        int found = 0, r;
        if (len && !(buf[0] & 0x80)) {
                const char *s = (const char *)buf, *end = s + len;
                for (;;) {
                        _cleanup_free_ uint8_t *bin = NULL;
                        size_t bl;
                        const char *next;
                        r = dearmor(s, (size_t)(end - s), &next, &bin, &bl);
                        if (r == -ENOENT)
                                break;
                        if (r < 0)
                                return cc_error_set(err, -r, "invalid ASCII-armored OpenPGP key");
                        r = keyring_add_binary(kr, bin, bl);
                        if (r < 0)
                                return cc_error_set(err, -r, "invalid OpenPGP key packets");
                        found += r;
                        s = next;
                }
        } else {
                r = keyring_add_binary(kr, buf, len);
                if (r < 0)
                        return cc_error_set(err, -r, "invalid OpenPGP key packets");
                found = r;
        }
        if (!found)
                return cc_error_set(err, ENOKEY, "No public keys imported");
        return 0;
}

/* ---- signed messages ---- */

/* Room for one more byte of output at `n`: doubles the buffer up to IMG_SIG_MAX_BYTES (-EFBIG
 * past it, which ends the loop: the stream is then incomplete and refused as such). */
static int out_room(uint8_t **out, size_t *cap, size_t n)
{
        if (n < *cap)
                return 0;
        if (*cap >= IMG_SIG_MAX_BYTES)
                return -EFBIG;
        uint8_t *x = realloc(*out, *cap * 2);
        if (!x)
                return -ENOMEM;
        *out = x;
        *cap *= 2;
        return 0;
}

static int inflate_bzip2(const uint8_t *in, size_t len, uint8_t **out, size_t *cap, size_t *n)
{
        bz_stream s = {0};
        if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
                return -ENOMEM;
        s.next_in = (char *)in;
        s.avail_in = (unsigned)CC_MIN(len, (size_t)UINT32_MAX);
        int r = BZ_OK, g = 0;
        while (r == BZ_OK && (g = out_room(out, cap, *n)) == 0) {
                s.next_out = (char *)*out + *n;
                s.avail_out = (unsigned)(*cap - *n);
                r = BZ2_bzDecompress(&s);
                *n = *cap - s.avail_out;
                if (r == BZ_OK && s.avail_in == 0 && s.avail_out > 0)
                        break; /* input ended before the stream did */
        }
        BZ2_bzDecompressEnd(&s);
        if (g == -ENOMEM)
                return g;
        return r == BZ_STREAM_END ? 0 : -EBADMSG;
}

/* algo 1 = ZIP (raw deflate), 2 = ZLIB. */
static int inflate_zlib(const uint8_t *in, size_t len, int algo, uint8_t **out, size_t *cap,
                        size_t *n)
{
        z_stream s = {0};
        if (inflateInit2(&s, algo == 1 ? -15 : 15) != Z_OK)
                return -ENOMEM;
        s.next_in = (uint8_t *)in;
        s.avail_in = (uInt)CC_MIN(len, (size_t)UINT32_MAX);
        int r = Z_OK, g = 0;
        while (r == Z_OK && (g = out_room(out, cap, *n)) == 0) {
                s.next_out = *out + *n;
                s.avail_out = (uInt)(*cap - *n);
                r = inflate(&s, Z_NO_FLUSH);
                *n = *cap - s.avail_out;
                if (r == Z_BUF_ERROR && s.avail_in == 0)
                        break;
        }
        inflateEnd(&s);
        if (g == -ENOMEM)
                return g;
        return r == Z_STREAM_END ? 0 : -EBADMSG;
}

static int inflate_buf(const uint8_t *in, size_t len, int algo, uint8_t **ret, size_t *ret_len)
{
        size_t cap = 64 * 1024, n = 0;
        _cleanup_free_ uint8_t *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        int r = algo == 3 ? inflate_bzip2(in, len, &out, &cap, &n)
                          : inflate_zlib(in, len, algo, &out, &cap, &n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* A signature's hash (RFC 4880 9.4 ids), SHA-2 only: MD5 (1), SHA-1 (2), RIPEMD-160 (3) and
 * unknown ids are refused. */
struct md {
        int nid;
        size_t len;
        union {
                SHA256_CTX s256; /* SHA-224, SHA-256 */
                SHA512_CTX s512; /* SHA-384, SHA-512 */
        } u;
};

static bool md_known(int h)
{
        return h >= 8 && h <= 11;
}

static bool md_init(struct md *m, int h)
{
        switch (h) {
        case 8:
                *m = (struct md){.nid = NID_sha256, .len = 32};
                return SHA256_Init(&m->u.s256);
        case 9:
                *m = (struct md){.nid = NID_sha384, .len = 48};
                return SHA384_Init(&m->u.s512);
        case 10:
                *m = (struct md){.nid = NID_sha512, .len = 64};
                return SHA512_Init(&m->u.s512);
        case 11:
                *m = (struct md){.nid = NID_sha224, .len = 28};
                return SHA224_Init(&m->u.s256);
        default:
                return false;
        }
}

static void md_update(struct md *m, const void *d, size_t n)
{
        if (m->len <= 32)
                SHA256_Update(&m->u.s256, d, n);
        else
                SHA512_Update(&m->u.s512, d, n);
}

/* SHA-224's and SHA-384's Final are SHA-256's and SHA-512's: the length is in the context. */
static void md_final(struct md *m, uint8_t out[64])
{
        if (m->len <= 32)
                SHA256_Final(out, &m->u.s256);
        else
                SHA512_Final(out, &m->u.s512);
}

struct sig {
        int sigclass, pk, hash;
        const uint8_t *hashed; /* version octet .. end of hashed subpackets */
        size_t hashed_len;
        uint8_t left16[2];
        const uint8_t *mpis;
        size_t mpis_len;
        int64_t created, expires; /* expires: seconds after creation, 0 = never */
        int64_t key_expires;      /* key expiration: seconds after the key's creation */
        bool has_keyid, has_fpr;
        uint8_t keyid[8];
        char fpr[41];
};

/* A 4-byte time subpacket (RFC 4880 5.2.3.4, 5.2.3.10, 5.2.3.6), kept only when hashed. */
static int subpacket_time(const uint8_t *d, size_t dl, bool hashed, int64_t *out)
{
        if (dl != 4)
                return -EBADMSG;
        if (hashed)
                *out = (int64_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 |
                                 d[3]);
        return 0;
}

static int subpackets(const uint8_t *b, size_t len, bool hashed, struct sig *s)
{
        size_t p = 0;
        while (p < len) {
                size_t l = b[p++];
                if (l >= 192 && l < 255) {
                        if (p >= len)
                                return -EBADMSG;
                        l = ((l - 192) << 8) + b[p++] + 192;
                } else if (l == 255) {
                        if (len - p < 4)
                                return -EBADMSG;
                        l = (size_t)b[p] << 24 | (size_t)b[p + 1] << 16 | (size_t)b[p + 2] << 8 |
                            b[p + 3];
                        p += 4;
                }
                if (l == 0 || l > len - p)
                        return -EBADMSG;
                int type = b[p] & 0x7f;
                bool critical = b[p] & 0x80;
                const uint8_t *d = b + p + 1;
                size_t dl = l - 1;
                p += l;
                switch (type) {
                case 2: /* signature creation time */
                        if (subpacket_time(d, dl, hashed, &s->created) < 0)
                                return -EBADMSG;
                        break;
                case 3: /* signature expiration time */
                        if (subpacket_time(d, dl, hashed, &s->expires) < 0)
                                return -EBADMSG;
                        break;
                case 9: /* key expiration time (self-signatures) */
                        if (subpacket_time(d, dl, hashed, &s->key_expires) < 0)
                                return -EBADMSG;
                        break;
                case 16: /* issuer key ID: a hint, never trusted by itself */
                        if (dl != 8)
                                return -EBADMSG;
                        memcpy(s->keyid, d, 8);
                        s->has_keyid = true;
                        break;
                case 33: /* issuer fingerprint: version 4 + 20 bytes */
                        if (dl == 21 && d[0] == 4) {
                                for (int i = 0; i < 20; i++)
                                        sprintf(s->fpr + 2 * i, "%02X", d[1 + i]);
                                s->has_fpr = true;
                        }
                        break;
                default:
                        if (critical && hashed)
                                return -EPROTONOSUPPORT;
                }
        }
        return 0;
}

static int sig_parse(const uint8_t *b, size_t len, struct sig *s)
{
        *s = (struct sig){0};
        if (len < 6)
                return -EBADMSG;
        if (b[0] != 4)
                return -EPROTONOSUPPORT;
        s->sigclass = b[1];
        s->pk = b[2];
        s->hash = b[3];
        size_t hl = (size_t)b[4] << 8 | b[5];
        if (len < 6 + hl + 2)
                return -EBADMSG;
        s->hashed = b;
        s->hashed_len = 6 + hl;
        int r = subpackets(b + 6, hl, true, s);
        if (r < 0)
                return r;
        size_t p = 6 + hl;
        size_t ul = (size_t)b[p] << 8 | b[p + 1];
        p += 2;
        if (len - p < ul + 2)
                return -EBADMSG;
        if ((r = subpackets(b + p, ul, false, s)) < 0)
                return r;
        p += ul;
        memcpy(s->left16, b + p, 2);
        s->mpis = b + p + 2;
        s->mpis_len = len - p - 2;
        return 0;
}

/* Verifies the public-key part over `digest` (the message hash, of type `nid`) with key k. */
static int sig_check(const struct sig *s, const struct img_pgp_key *k, int nid,
                     const uint8_t *digest, size_t dl)
{
        size_t p = 0;
        const uint8_t *m1, *m2;
        size_t l1, l2;
        if (mpi_read(s->mpis, s->mpis_len, &p, &m1, &l1) < 0)
                return -EBADMSG;
        int ok = 0;
        if (k->algo == PK_RSA || k->algo == PK_RSA_S) {
                if (s->pk != PK_RSA && s->pk != PK_RSA_S)
                        return -EBADMSG;
                /* PKCS#1 v1.5 with the hash's DigestInfo; the MPI lost its leading zeros. */
                size_t klen = (size_t)RSA_size(k->rsa);
                if (l1 > klen)
                        return -EBADMSG;
                _cleanup_free_ uint8_t *sig = calloc(1, klen);
                if (!sig)
                        return -ENOMEM;
                memcpy(sig + klen - l1, m1, l1);
                ok = RSA_verify(nid, digest, (unsigned)dl, sig, (unsigned)klen, k->rsa) == 1;
        } else if (k->algo == PK_EDDSA) {
                /* Ed25519 over the hash value; R and S left-padded to 32 bytes each. */
                if (s->pk != PK_EDDSA || mpi_read(s->mpis, s->mpis_len, &p, &m2, &l2) < 0 ||
                    l1 > 32 || l2 > 32)
                        return -EBADMSG;
                uint8_t sig[64] = {0};
                memcpy(sig + 32 - l1, m1, l1);
                memcpy(sig + 64 - l2, m2, l2);
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->ed) > 0 &&
                     EVP_DigestVerify(c, sig, 64, digest, dl) == 1;
                EVP_MD_CTX_free(c);
        } else if (k->algo == PK_ECDSA) {
                if (s->pk != PK_ECDSA || mpi_read(s->mpis, s->mpis_len, &p, &m2, &l2) < 0)
                        return -EBADMSG;
                ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *r = BN_bin2bn(m1, (int)l1, NULL), *sv = BN_bin2bn(m2, (int)l2, NULL);
                if (es && r && sv && ECDSA_SIG_set0(es, r, sv)) {
                        r = sv = NULL;
                        ok = ECDSA_do_verify(digest, (int)dl, es, k->ec) == 1;
                }
                BN_free(r);
                BN_free(sv);
                ECDSA_SIG_free(es);
        }
        return ok ? 0 : -EBADMSG;
}

/*
 * One signature following primary key k in a keyring. Only self-signatures verified with k
 * count: a key revocation (0x20) marks k revoked; the newest certification of a user ID
 * (0x10-0x13) or direct-key signature (0x1f) sets k's expiry from its key expiration time.
 * Anything else (certifications by others, unverifiable or SHA-1 self-signatures) is ignored:
 * the keyring is the policy's and trusted as it is, this only honours what it says itself.
 */
static void key_self_sig(struct img_pgp_key *k, const uint8_t *kbody, size_t klen,
                         const uint8_t *uid, size_t uid_len, const uint8_t *sb, size_t sl)
{
        struct sig s;
        if (sig_parse(sb, sl, &s) < 0)
                return;
        bool cert = s.sigclass >= 0x10 && s.sigclass <= 0x13;
        if (s.sigclass != 0x20 && s.sigclass != 0x1f && !(cert && uid))
                return;
        if (s.has_fpr ? strcmp(s.fpr, k->fpr) != 0
                      : s.has_keyid && memcmp(s.keyid, k->keyid, 8) != 0)
                return;
        struct md md;
        if (klen > 0xffff || !md_init(&md, s.hash))
                return;
        uint8_t khdr[3] = {0x99, (uint8_t)(klen >> 8), (uint8_t)klen};
        uint8_t uhdr[5] = {0xb4, (uint8_t)(uid_len >> 24), (uint8_t)(uid_len >> 16),
                           (uint8_t)(uid_len >> 8), (uint8_t)uid_len};
        uint8_t trailer[6] = {4,
                              0xff,
                              (uint8_t)(s.hashed_len >> 24),
                              (uint8_t)(s.hashed_len >> 16),
                              (uint8_t)(s.hashed_len >> 8),
                              (uint8_t)s.hashed_len};
        uint8_t digest[64];
        md_update(&md, khdr, 3);
        md_update(&md, kbody, klen);
        if (cert) {
                md_update(&md, uhdr, 5);
                md_update(&md, uid, uid_len);
        }
        md_update(&md, s.hashed, s.hashed_len);
        md_update(&md, trailer, 6);
        md_final(&md, digest);
        if (memcmp(digest, s.left16, 2) || sig_check(&s, k, md.nid, digest, md.len) < 0)
                return;
        if (s.sigclass == 0x20) {
                k->revoked = true;
        } else if (s.created >= k->selfsig_time) {
                k->selfsig_time = s.created;
                k->expires = s.key_expires ? k->created + s.key_expires : 0;
        }
}

struct msg {
        int n_onepass, n_literal, n_sig, other_tag;
        int op_hash, op_pk;
        const uint8_t *literal; /* literal data body (after its header) */
        size_t literal_len;
        const uint8_t *sig;
        size_t sig_len;
        uint8_t *owned[8]; /* buffers the pointers above may point into */
        size_t n_owned;
};

static void msg_done(struct msg *m)
{
        for (size_t i = 0; i < m->n_owned; i++)
                free(m->owned[i]);
}

static int msg_keep(struct msg *m, uint8_t *p)
{
        if (!p)
                return 0;
        if (m->n_owned == CC_ARRAY_SIZE(m->owned)) {
                free(p);
                return -EBADMSG;
        }
        m->owned[m->n_owned++] = p;
        return 0;
}

static int msg_walk(const uint8_t *b, size_t len, int depth, struct msg *m)
{
        size_t pos = 0;
        for (;;) {
                struct pkt pk;
                int r = pkt_next(b, len, &pos, &pk);
                if (r < 0)
                        return r;
                if (pk.tag == 0)
                        return 0;
                if ((r = msg_keep(m, pk.owned)) < 0)
                        return r;
                switch (pk.tag) {
                case TAG_COMPRESSED: {
                        /* One level: a compressed packet inside another is not what signers
                         * make, and nesting is how decompression bombs multiply. */
                        if (depth > 0 || pk.len < 1 || pk.body[0] > 3)
                                return -EBADMSG;
                        uint8_t *plain = NULL;
                        size_t pl = 0;
                        if (pk.body[0] == 0) {
                                r = msg_walk(pk.body + 1, pk.len - 1, depth + 1, m);
                        } else if ((r = inflate_buf(pk.body + 1, pk.len - 1, pk.body[0], &plain,
                                                    &pl)) == 0 &&
                                   (r = msg_keep(m, plain)) == 0) {
                                r = msg_walk(plain, pl, depth + 1, m);
                        }
                        if (r < 0)
                                return r;
                        break;
                }
                case TAG_ONEPASS:
                        if (pk.len != 13 || pk.body[0] != 3 || m->n_literal || m->n_sig)
                                return -EBADMSG;
                        m->n_onepass++;
                        m->op_hash = pk.body[2];
                        m->op_pk = pk.body[3];
                        break;
                case TAG_LITERAL: {
                        if (pk.len < 6 || (size_t)pk.body[1] + 6 > pk.len || !m->n_onepass)
                                return -EBADMSG;
                        size_t hdr = 2 + pk.body[1] + 4;
                        m->n_literal++;
                        m->literal = pk.body + hdr;
                        m->literal_len = pk.len - hdr;
                        break;
                }
                case TAG_SIG:
                        m->n_sig++;
                        m->sig = pk.body;
                        m->sig_len = pk.len;
                        break;
                case 10: /* marker packet: ignored by every implementation */
                        break;
                default:
                        m->other_tag = pk.tag;
                        return -EBADMSG;
                }
        }
}

int img__pgp_verify(const struct img_pgp_keyring *kr, const uint8_t *msg, size_t len, int64_t now,
                    uint8_t **ret_payload, size_t *ret_len, char ret_fpr[41], struct cc_error **err)
{
        struct msg m = {0};
        int r = msg_walk(msg, len, 0, &m);
        if (r < 0 || m.n_onepass != 1 || m.n_literal != 1 || m.n_sig != 1) {
                msg_done(&m);
                if (r == -ENOMEM)
                        return r;
                if (m.other_tag)
                        return cc_error_set(err, EBADMSG,
                                            "bad signature: unexpected OpenPGP packet type %d "
                                            "(encrypted or not a signed message)",
                                            m.other_tag);
                return cc_error_set(err, EBADMSG,
                                    "bad signature: not an OpenPGP signed message (%d one-pass, "
                                    "%d literal, %d signature packets%s)",
                                    m.n_onepass, m.n_literal, m.n_sig,
                                    r < 0 ? ", malformed packets" : "");
        }
        struct sig s;
        r = sig_parse(m.sig, m.sig_len, &s);
        int e = 0;
        if (r < 0)
                e = cc_error_set(err, -r, "bad signature: %s signature packet",
                                 r == -EPROTONOSUPPORT ? "unsupported (not v4, or a critical "
                                                         "unknown subpacket)"
                                                       : "malformed");
        else if (s.sigclass != 0x00)
                e = cc_error_set(err, EPROTONOSUPPORT,
                                 "bad signature: signature class 0x%02x, only binary (0x00)",
                                 s.sigclass);
        else if (s.hash != m.op_hash || s.pk != m.op_pk)
                e = cc_error_set(err, EBADMSG,
                                 "bad signature: one-pass and signature packets "
                                 "disagree");
        else if (!md_known(s.hash))
                e = cc_error_set(err, EPROTONOSUPPORT,
                                 "bad signature: hash algorithm %d refused (SHA-2 only)", s.hash);
        if (e < 0) {
                msg_done(&m);
                return e;
        }
        /* The signer: issuer fingerprint, else issuer key ID. Only primary keys are here. */
        const struct img_pgp_key *k = NULL;
        for (size_t i = 0; i < kr->n && !k; i++)
                if (s.has_fpr ? !strcmp(s.fpr, kr->keys[i].fpr)
                              : s.has_keyid && !memcmp(s.keyid, kr->keys[i].keyid, 8))
                        k = &kr->keys[i];
        if (!k) {
                char id[41] = "none";
                if (s.has_fpr)
                        memcpy(id, s.fpr, 41);
                else if (s.has_keyid)
                        for (int i = 0; i < 8; i++)
                                sprintf(id + 2 * i, "%02X", s.keyid[i]);
                msg_done(&m);
                return cc_error_set(err, ENOKEY,
                                    "unknown key: signed by key %s, which is not a trusted key",
                                    id);
        }
        /* hash(literal body || hashed part of the signature || 0x04 0xff || be32(its length)) */
        uint8_t trailer[6] = {4,
                              0xff,
                              (uint8_t)(s.hashed_len >> 24),
                              (uint8_t)(s.hashed_len >> 16),
                              (uint8_t)(s.hashed_len >> 8),
                              (uint8_t)s.hashed_len};
        uint8_t digest[64];
        struct md md;
        if (!md_init(&md, s.hash)) {
                msg_done(&m);
                return -ENOMEM;
        }
        md_update(&md, m.literal, m.literal_len);
        md_update(&md, s.hashed, s.hashed_len);
        md_update(&md, trailer, 6);
        md_final(&md, digest);
        if (memcmp(digest, s.left16, 2) || sig_check(&s, k, md.nid, digest, md.len) < 0) {
                msg_done(&m);
                return cc_error_set(err, EBADMSG,
                                    "bad signature: the signature by key %s does not verify",
                                    k->fpr);
        }
        if (k->revoked) {
                msg_done(&m);
                return cc_error_set(err, EKEYREVOKED, "key %s is revoked (its keyring says so)",
                                    k->fpr);
        }
        if (k->expires && k->expires <= now) {
                msg_done(&m);
                return cc_error_set(err, EKEYEXPIRED, "key %s expired at %lld", k->fpr,
                                    (long long)k->expires);
        }
        if (s.expires && s.created + s.expires <= now) {
                msg_done(&m);
                return cc_error_set(err, EKEYEXPIRED, "signature by key %s expired at %lld", k->fpr,
                                    (long long)(s.created + s.expires));
        }
        uint8_t *out = malloc(m.literal_len + 1);
        if (!out) {
                msg_done(&m);
                return -ENOMEM;
        }
        memcpy(out, m.literal, m.literal_len);
        out[m.literal_len] = 0;
        *ret_payload = out;
        *ret_len = m.literal_len;
        memcpy(ret_fpr, k->fpr, 41);
        msg_done(&m);
        return 0;
}
