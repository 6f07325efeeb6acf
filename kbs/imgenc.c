/*
 * cc-image-encrypt's core: layers encrypted the way CoCo's key provider and ocicrypt do it
 * (ref 6.1, 6.2), so that CoCo's guest-components and our guest decrypt them:
 *   - AES-256-CTR over the stored (compressed) blob with a random 32-byte key and 16-byte
 *     initial counter block; HMAC-SHA256 (same key) over the ciphertext;
 *   - annotation org.opencontainers.image.enc.pubopts = b64 of
 *     {"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"<b64>","cipheroptions":{}};
 *   - the private options (PLBCO) {"symkey","digest" (of the plaintext),"cipheroptions":{"nonce"}}
 *     wrapped with AES-256-GCM (no AAD) under the key-encryption key, in CoCo's annotation packet
 *     {"kid":"kbs:///repo/type/tag","wrapped_data","iv","wrap_type":"A256GCM"}, b64 in
 *     org.opencontainers.image.enc.keys.provider.attestation-agent;
 *   - the layer's media type gains "+encrypted", its digest and size are the ciphertext's.
 * Images are read from and written to OCI layouts (a directory with index.json).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/fileio.h"
#include "cc/json.h"

#include "kbs/kbs.h"

#define ANN_PUBOPTS     "org.opencontainers.image.enc.pubopts"
#define ANN_PROVIDER    "org.opencontainers.image.enc.keys.provider.attestation-agent"
#define ANN_JWE         "org.opencontainers.image.enc.keys.jwe"
#define ANN_REF         "org.opencontainers.image.ref.name"
#define OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MAX_JSON        (4u << 20)

int kbs_layer_crypt_init(struct kbs_layer_crypt *c, const uint8_t symkey[32],
                         const uint8_t nonce[16])
{
        memset(c, 0, sizeof(*c));
        c->ctr = EVP_CIPHER_CTX_new();
        c->plain = EVP_MD_CTX_new();
        c->enc = EVP_MD_CTX_new();
        EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        c->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
        EVP_MAC_free(hmac);
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        if (!c->ctr || !c->plain || !c->enc || !c->mac ||
            !EVP_EncryptInit_ex(c->ctr, EVP_aes_256_ctr(), NULL, symkey, nonce) ||
            !EVP_DigestInit_ex(c->plain, EVP_sha256(), NULL) ||
            !EVP_DigestInit_ex(c->enc, EVP_sha256(), NULL) ||
            !EVP_MAC_init(c->mac, symkey, 32, params)) {
                kbs_layer_crypt_done(c);
                return -EIO;
        }
        return 0;
}

void kbs_layer_crypt_done(struct kbs_layer_crypt *c)
{
        EVP_CIPHER_CTX_free(c->ctr);
        EVP_MD_CTX_free(c->plain);
        EVP_MD_CTX_free(c->enc);
        EVP_MAC_CTX_free(c->mac);
        memset(c, 0, sizeof(*c));
}

int kbs_layer_crypt_update(struct kbs_layer_crypt *c, const uint8_t *in, size_t n, uint8_t *out)
{
        int l = 0;
        if (n > INT32_MAX)
                return -EINVAL;
        if (!EVP_DigestUpdate(c->plain, in, n) || !EVP_EncryptUpdate(c->ctr, out, &l, in, (int)n) ||
            (size_t)l != n || !EVP_DigestUpdate(c->enc, out, n) || !EVP_MAC_update(c->mac, out, n))
                return -EIO;
        c->size += n;
        return 0;
}

static void digest_str(EVP_MD_CTX *md, char out[72])
{
        uint8_t d[32];
        EVP_DigestFinal_ex(md, d, NULL);
        _cleanup_free_ char *h = cc_hex(d, 32);
        snprintf(out, 72, "sha256:%s", h ? h : "");
}

int kbs_layer_crypt_final(struct kbs_layer_crypt *c, char plain_digest[72], char enc_digest[72],
                          uint8_t hmac[32])
{
        size_t n = 0;
        if (!EVP_MAC_final(c->mac, hmac, &n, 32) || n != 32)
                return -EIO;
        digest_str(c->plain, plain_digest);
        digest_str(c->enc, enc_digest);
        return 0;
}

/* The private layer options as Go's encoding/json writes them (ref 6.1). */
static int plbco_json(const uint8_t symkey[32], const uint8_t nonce[16], const char *plain_digest,
                      char **ret)
{
        _cleanup_free_ char *k64 = cc_b64_encode(symkey, 32, false);
        _cleanup_free_ char *n64 = cc_b64_encode(nonce, 16, false);
        if (!k64 || !n64 ||
            asprintf(ret,
                     "{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"%s\"}}",
                     k64, plain_digest, n64) < 0)
                return -ENOMEM;
        if (k64)
                OPENSSL_cleanse(k64, strlen(k64));
        return 0;
}

/* Go's encoding/json escapes <, > and & in strings; none occur in b64 or sha256:hex. */
int kbs_ocicrypt_annotations(const uint8_t symkey[32], const uint8_t nonce[16],
                             const char *plain_digest, const uint8_t hmac[32],
                             const uint8_t kek[32], const char *kid, const uint8_t iv[12],
                             char **ret_pubopts, char **ret_packet, struct cc_error **err)
{
        _cleanup_free_ char *h64 = cc_b64_encode(hmac, 32, false);
        _cleanup_free_ char *plbco = NULL, *pubopts = NULL, *packet = NULL;
        if (!h64)
                return -ENOMEM;
        if (strchr(kid, '"') || strchr(kid, '\\'))
                return cc_error_set(err, EINVAL, "kid '%s' must not contain quotes", kid);
        if (plbco_json(symkey, nonce, plain_digest, &plbco) < 0)
                return -ENOMEM;
        if (asprintf(
                    &pubopts,
                    "{\"cipher\":\"AES_256_CTR_HMAC_SHA256\",\"hmac\":\"%s\",\"cipheroptions\":{}}",
                    h64) < 0)
                return -ENOMEM;
        size_t pl = strlen(plbco);
        _cleanup_free_ uint8_t *wrapped = malloc(pl + 16);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int l = 0, l2 = 0;
        bool ok = wrapped && c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, iv) &&
                  EVP_EncryptUpdate(c, wrapped, &l, (const uint8_t *)plbco, (int)pl) &&
                  EVP_EncryptFinal_ex(c, wrapped + l, &l2) &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, wrapped + pl);
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(plbco, pl);
        if (!ok)
                return cc_error_set(err, EIO, "AES-256-GCM wrap failed");
        _cleanup_free_ char *w64 = cc_b64_encode(wrapped, pl + 16, false);
        _cleanup_free_ char *iv64 = cc_b64_encode(iv, 12, false);
        if (!w64 || !iv64 ||
            asprintf(&packet,
                     "{\"kid\":\"%s\",\"wrapped_data\":\"%s\",\"iv\":\"%s\",\"wrap_type\":"
                     "\"A256GCM\"}",
                     kid, w64, iv64) < 0)
                return -ENOMEM;
        *ret_pubopts = cc_b64_encode((const uint8_t *)pubopts, strlen(pubopts), false);
        *ret_packet = cc_b64_encode((const uint8_t *)packet, strlen(packet), false);
        if (!*ret_pubopts || !*ret_packet) {
                free(*ret_pubopts);
                free(*ret_packet);
                return -ENOMEM;
        }
        return 0;
}

/* ---- OCI layouts ---- */

static bool digest_ok(const char *d)
{
        if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
                return false;
        for (const char *p = d + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static char *blob_path(const char *layout, const char *digest)
{
        char *p = NULL;
        if (asprintf(&p, "%s/blobs/sha256/%s", layout, digest + 7) < 0)
                return NULL;
        return p;
}

/* Copies a blob between layouts (nothing to do within one), checking its digest. */
static int copy_blob(const char *src, const char *dst, const char *digest, struct cc_error **err)
{
        if (strcmp(src, dst) == 0)
                return 0;
        _cleanup_free_ char *sp = blob_path(src, digest), *dp = blob_path(dst, digest);
        _cleanup_free_ char *tmp = NULL;
        if (!sp || !dp || asprintf(&tmp, "%s.tmp", dp) < 0)
                return -ENOMEM;
        _cleanup_close_ int in = open(sp, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return cc_error_set(err, errno, "blob %s: %m", sp);
        _cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0)
                return cc_error_set(err, errno, "%s: %m", tmp);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        uint8_t buf[65536];
        ssize_t n;
        int r = 0;
        while ((n = read(in, buf, sizeof(buf))) > 0) {
                EVP_DigestUpdate(md, buf, (size_t)n);
                r = cc_write_all(out, buf, (size_t)n);
                if (r < 0)
                        break;
        }
        char got[72];
        digest_str(md, got);
        EVP_MD_CTX_free(md);
        if (n < 0 || r < 0)
                return cc_error_set(err, n < 0 ? errno : -r, "copying %s: %m", sp);
        if (strcmp(got, digest) != 0) {
                unlink(tmp);
                return cc_error_set(err, EBADMSG, "blob %s has digest %s", digest, got);
        }
        if (rename(tmp, dp) < 0)
                return cc_error_set(err, errno, "%s: %m", dp);
        return 0;
}

static int write_blob(const char *layout, const char *data, size_t len, char digest[72],
                      struct cc_error **err)
{
        uint8_t d[32];
        EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL);
        _cleanup_free_ char *h = cc_hex(d, 32), *path = NULL;
        if (!h)
                return -ENOMEM;
        snprintf(digest, 72, "sha256:%s", h);
        path = blob_path(layout, digest);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || cc_write_all(fd, data, len) < 0)
                return cc_error_set(err, errno, "%s: %m", path);
        return 0;
}

/* Encrypts one layer blob of `src` into `dst`; fills the descriptor's new fields. */
static int encrypt_layer(const char *src, const char *dst, struct json_object *desc,
                         const uint8_t kek[32], const char *kid, EVP_PKEY *const *rcpts,
                         size_t nrcpts, struct cc_error **err)
{
        const char *digest, *mt;
        int64_t size;
        int r = cc_json_get_string(desc, "digest", &digest, err);
        if (r == 0)
                r = cc_json_get_string(desc, "mediaType", &mt, err);
        if (r == 0)
                r = cc_json_get_int64(desc, "size", &size, err);
        if (r < 0)
                return r == -ENOENT ? cc_error_set(err, EINVAL, "layer descriptor incomplete") : r;
        if (!digest_ok(digest))
                return cc_error_set(err, EINVAL, "layer digest '%.80s' is not sha256:<hex>",
                                    digest);
        if (strstr(mt, "+encrypted"))
                return cc_error_set(err, EINVAL, "layer %s is already encrypted", digest);
        uint8_t symkey[32], nonce[16], iv[12], hmac[32];
        if (RAND_bytes(symkey, 32) != 1 || RAND_bytes(nonce, 16) != 1 || RAND_bytes(iv, 12) != 1)
                return cc_error_set(err, EIO, "no random bytes");
        _cleanup_free_ char *sp = blob_path(src, digest), *tmp = NULL;
        if (!sp || asprintf(&tmp, "%s/blobs/sha256/.enc-%d-%ld", dst, getpid(), random()) < 0)
                return -ENOMEM;
        _cleanup_close_ int in = open(sp, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return cc_error_set(err, errno, "blob %s: %m", sp);
        _cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0)
                return cc_error_set(err, errno, "%s: %m", tmp);
        struct kbs_layer_crypt c;
        if (kbs_layer_crypt_init(&c, symkey, nonce) < 0)
                return cc_error_set(err, EIO, "cipher setup failed");
        static uint8_t buf[65536], enc[65536];
        ssize_t n;
        r = 0;
        while ((n = read(in, buf, sizeof(buf))) > 0) {
                r = kbs_layer_crypt_update(&c, buf, (size_t)n, enc);
                if (r == 0)
                        r = cc_write_all(out, enc, (size_t)n);
                if (r < 0)
                        break;
        }
        char plain[72], cipher[72];
        uint64_t total = c.size;
        if (n >= 0 && r == 0)
                r = kbs_layer_crypt_final(&c, plain, cipher, hmac);
        kbs_layer_crypt_done(&c);
        if (n < 0 || r < 0) {
                unlink(tmp);
                return cc_error_set(err, n < 0 ? errno : -r, "encrypting %s failed", digest);
        }
        if (strcmp(plain, digest) != 0 || (int64_t)total != size) {
                unlink(tmp);
                return cc_error_set(err, EBADMSG,
                                    "layer %s: blob has digest %s and %llu bytes "
                                    "(descriptor: %lld)",
                                    digest, plain, (unsigned long long)total, (long long)size);
        }
        _cleanup_free_ char *dp = NULL, *pubopts = NULL, *packet = NULL, *newmt = NULL;
        dp = blob_path(dst, cipher);
        if (!dp || rename(tmp, dp) < 0) {
                unlink(tmp);
                return cc_error_set(err, errno ?: ENOMEM, "%s: %m", dp ? dp : tmp);
        }
        r = kbs_ocicrypt_annotations(symkey, nonce, plain, hmac, kek, kid, iv, &pubopts, &packet,
                                     err);
        _cleanup_free_ char *jwe64 = NULL;
        if (r == 0 && nrcpts) {
                /* ocicrypt's JWE key wrapper: the same options, one JWE for every recipient. */
                _cleanup_free_ char *plbco = NULL, *jwe = NULL;
                r = plbco_json(symkey, nonce, plain, &plbco);
                if (r == 0)
                        r = kbs_jwe_encrypt_recipients(rcpts, nrcpts, (const uint8_t *)plbco,
                                                       strlen(plbco), &jwe, err);
                if (plbco)
                        OPENSSL_cleanse(plbco, strlen(plbco));
                if (r == 0 && !(jwe64 = cc_b64_encode((const uint8_t *)jwe, strlen(jwe), false)))
                        r = -ENOMEM;
        }
        OPENSSL_cleanse(symkey, sizeof(symkey));
        if (r < 0)
                return r;
        if (asprintf(&newmt, "%s+encrypted", mt) < 0)
                return -ENOMEM;
        json_object_object_add(desc, "mediaType", json_object_new_string(newmt));
        json_object_object_add(desc, "digest", json_object_new_string(cipher));
        json_object_object_add(desc, "size", json_object_new_int64((int64_t)total));
        struct json_object *ann;
        if (!json_object_object_get_ex(desc, "annotations", &ann) ||
            !json_object_is_type(ann, json_type_object)) {
                ann = json_object_new_object();
                json_object_object_add(desc, "annotations", ann);
        }
        json_object_object_add(ann, ANN_PROVIDER, json_object_new_string(packet));
        if (jwe64)
                json_object_object_add(ann, ANN_JWE, json_object_new_string(jwe64));
        json_object_object_add(ann, ANN_PUBOPTS, json_object_new_string(pubopts));
        return 0;
}

static int read_json(const char *path, struct json_object **ret, struct cc_error **err)
{
        return cc_json_parse_file(path, MAX_JSON, 0, ret, err);
}

/* The manifest descriptor of `tag` in an index (or the only one when tag is NULL). */
static int find_manifest(struct json_object *index, const char *tag, struct json_object **ret,
                         struct cc_error **err)
{
        struct json_object *ms;
        int r = cc_json_get_array(index, "manifests", &ms, err);
        if (r < 0)
                return r == -ENOENT ? cc_error_set(err, EINVAL, "index.json has no manifests") : r;
        size_t n = json_object_array_length(ms);
        if (!tag && n == 1) {
                *ret = json_object_array_get_idx(ms, 0);
                return 0;
        }
        for (size_t i = 0; tag && i < n; i++) {
                struct json_object *d = json_object_array_get_idx(ms, i);
                const char *name;
                if (cc_json_get_string(d, "/annotations/" ANN_REF, &name, NULL) == 0 &&
                    strcmp(name, tag) == 0) {
                        *ret = d;
                        return 0;
                }
        }
        return cc_error_set(err, ENOENT, "no image tagged '%s' in the layout",
                            tag ? tag : "(none)");
}

static int prepare_dst(const char *dst, struct cc_error **err)
{
        _cleanup_free_ char *blobs = NULL, *layout = NULL;
        if (asprintf(&blobs, "%s/blobs/sha256", dst) < 0 ||
            asprintf(&layout, "%s/oci-layout", dst) < 0)
                return -ENOMEM;
        int r = cc_mkdir_p(blobs, 0755);
        if (r < 0)
                return cc_error_set(err, -r, "%s: %s", blobs, strerror(-r));
        if (access(layout, F_OK) == 0)
                return 0;
        static const char text[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        _cleanup_close_ int fd = open(layout, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || cc_write_all(fd, text, sizeof(text) - 1) < 0)
                return cc_error_set(err, errno, "%s: %m", layout);
        return 0;
}

/* Adds (or replaces) `tag` -> manifest in dst/index.json, written atomically. */
static int index_put(const char *dst, const char *tag, const char *media_type, const char *digest,
                     size_t size, struct cc_error **err)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_json_ struct json_object *index = NULL;
        if (asprintf(&path, "%s/index.json", dst) < 0 || asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        if (access(path, F_OK) == 0) {
                int r = read_json(path, &index, err);
                if (r < 0)
                        return r;
        } else {
                index = json_object_new_object();
                json_object_object_add(index, "schemaVersion", json_object_new_int(2));
        }
        struct json_object *ms;
        if (cc_json_get_array(index, "manifests", &ms, NULL) < 0) {
                ms = json_object_new_array();
                json_object_object_add(index, "manifests", ms);
        }
        for (size_t i = json_object_array_length(ms); i-- > 0;) {
                const char *name;
                if (cc_json_get_string(json_object_array_get_idx(ms, i), "/annotations/" ANN_REF,
                                       &name, NULL) == 0 &&
                    strcmp(name, tag) == 0)
                        json_object_array_del_idx(ms, i, 1);
        }
        struct json_object *d = json_object_new_object(), *ann = json_object_new_object();
        json_object_object_add(d, "mediaType", json_object_new_string(media_type));
        json_object_object_add(d, "digest", json_object_new_string(digest));
        json_object_object_add(d, "size", json_object_new_int64((int64_t)size));
        json_object_object_add(ann, ANN_REF, json_object_new_string(tag));
        json_object_object_add(d, "annotations", ann);
        json_object_array_add(ms, d);
        const char *text = json_object_to_json_string_ext(
                index, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || cc_write_all(fd, text, strlen(text)) < 0 || rename(tmp, path) < 0)
                return cc_error_set(err, errno, "%s: %m", path);
        return 0;
}

int kbs_image_encrypt(const char *src, const char *src_tag, const char *dst, const char *dst_tag,
                      const uint8_t kek[32], const char *kid, EVP_PKEY *const *rcpts, size_t nrcpts,
                      unsigned *ret_layers, struct cc_error **err)
{
        _cleanup_free_ char *ipath = NULL, *mpath = NULL;
        _cleanup_json_ struct json_object *index = NULL, *manifest = NULL;
        struct json_object *desc = NULL, *layers = NULL, *config = NULL;
        const char *mdigest, *mt;
        int r;
        if (strncmp(kid, "kbs:///", 7) != 0 || !kbs_resource_path_valid(kid + 7))
                return cc_error_set(err, EINVAL, "key id '%s' is not kbs:///repo/type/tag", kid);
        if (asprintf(&ipath, "%s/index.json", src) < 0)
                return -ENOMEM;
        r = read_json(ipath, &index, err);
        if (r == 0)
                r = find_manifest(index, src_tag, &desc, err);
        if (r == 0)
                r = cc_json_get_string(desc, "digest", &mdigest, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "%s", src);
        if (!digest_ok(mdigest))
                return cc_error_set(err, EINVAL, "%s: manifest digest '%.80s'", src, mdigest);
        if (cc_json_get_string(desc, "mediaType", &mt, NULL) < 0)
                mt = OCI_MANIFEST;
        if (strcmp(mt, OCI_MANIFEST) != 0 && strcmp(mt, DOCKER_MANIFEST) != 0)
                return cc_error_set(err, EOPNOTSUPP,
                                    "%s: '%s' is not an OCI image manifest (indexes "
                                    "are not supported)",
                                    src, mt);
        mpath = blob_path(src, mdigest);
        if (!mpath)
                return -ENOMEM;
        r = read_json(mpath, &manifest, err);
        if (r == 0)
                r = cc_json_get_array(manifest, "layers", &layers, err);
        if (r == 0)
                r = cc_json_get_object(manifest, "config", &config, err);
        if (r < 0)
                return r == -ENOENT ? cc_error_set(err, EINVAL, "manifest %s: no layers or config",
                                                   mdigest)
                                    : r;
        /* Refuse before anything is written to dst. */
        for (size_t i = 0; i < json_object_array_length(layers); i++) {
                const char *lmt;
                if (cc_json_get_string(json_object_array_get_idx(layers, i), "mediaType", &lmt,
                                       NULL) == 0 &&
                    strstr(lmt, "+encrypted"))
                        return cc_error_set(err, EINVAL, "layer %zu is already encrypted (%s)", i,
                                            lmt);
        }
        r = prepare_dst(dst, err);
        if (r < 0)
                return r;
        const char *cdigest;
        r = cc_json_get_string(config, "digest", &cdigest, err);
        if (r < 0 || !digest_ok(cdigest))
                return cc_error_set(err, EINVAL, "manifest %s: bad config digest", mdigest);
        r = copy_blob(src, dst, cdigest, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(layers); i++) {
                r = encrypt_layer(src, dst, json_object_array_get_idx(layers, i), kek, kid, rcpts,
                                  nrcpts, err);
                if (r < 0)
                        return cc_error_wrap(err, EINVAL, "layer %zu", i);
        }
        const char *text = json_object_to_json_string_ext(
                manifest, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char ndigest[72];
        r = write_blob(dst, text, strlen(text), ndigest, err);
        if (r == 0)
                r = index_put(dst, dst_tag, mt, ndigest, strlen(text), err);
        if (r == 0 && ret_layers)
                *ret_layers = (unsigned)json_object_array_length(layers);
        return r;
}

int kbs__layout_add(const char *layout, const char *tag, const char *media_type, const char *buf,
                    size_t len, struct cc_error **err)
{
        char digest[72];
        int r = prepare_dst(layout, err);
        if (r == 0)
                r = write_blob(layout, buf, len, digest, err);
        if (r == 0)
                r = index_put(layout, tag, media_type, digest, len, err);
        return r;
}

int kbs__layout_manifest(const char *layout, const char *tag, char **ret, size_t *ret_len,
                         char **ret_type, struct cc_error **err)
{
        _cleanup_free_ char *ipath = NULL, *mpath = NULL;
        _cleanup_json_ struct json_object *index = NULL;
        struct json_object *desc = NULL;
        const char *digest, *mt;
        if (asprintf(&ipath, "%s/index.json", layout) < 0)
                return -ENOMEM;
        int r = read_json(ipath, &index, err);
        if (r == 0)
                r = find_manifest(index, tag, &desc, err);
        if (r == 0)
                r = cc_json_get_string(desc, "digest", &digest, err);
        if (r < 0)
                return r;
        if (!digest_ok(digest))
                return cc_error_set(err, EINVAL, "%s: manifest digest '%.80s'", layout, digest);
        if (cc_json_get_string(desc, "mediaType", &mt, NULL) < 0)
                mt = OCI_MANIFEST;
        mpath = blob_path(layout, digest);
        if (!mpath)
                return -ENOMEM;
        r = cc_read_file(mpath, MAX_JSON, ret, ret_len, err);
        if (r < 0)
                return r;
        *ret_type = strdup(mt);
        return *ret_type ? 0 : -ENOMEM;
}
