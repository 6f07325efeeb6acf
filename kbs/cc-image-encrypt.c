/*
 * cc-image-encrypt: encrypts an image's layers the way CoCo's key provider does (ocicrypt
 * layers, the key-provider annotation packet with a kbs:/// key id, AES-256-GCM key wrap), from
 * OCI layouts or registries (the image library's registry client) to OCI layouts or registries,
 * and can register the key-encryption key in cc-kbs (or any KBS with Trustee's admin API) in the
 * same step. No skopeo key provider is needed: Debian 12's skopeo cannot call one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cc/fileio.h"

#include "kbs/kbs.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: cc-image-encrypt --kek FILE [--new-kek] --kid kbs:///REPO/TYPE/TAG\n"
                   "         [--recipient jwe:PUB.pem]...\n"
                   "         [--kbs URL [--admin-key ED25519.pem] [--cacert CA.pem] [--insecure]]\n"
                   "         [--registry-insecure] [--registry-ca CA.pem] [--registry-creds "
                   "USER:PASS]\n"
                   "         SOURCE DESTINATION\n"
                   "  SOURCE, DESTINATION: oci:DIR[:TAG] (an OCI layout; a tag is needed to write) "
                   "or\n"
                   "                 docker://HOST/REPO:TAG (a registry, through cc-image-pull's "
                   "client;\n"
                   "                 an index is resolved to linux/this machine's architecture)\n"
                   "  --kek FILE     the 32-byte key-encryption key (raw bytes)\n"
                   "  --new-kek      create FILE with 32 random bytes (mode 0600) first\n"
                   "  --kid URI      the KEK's resource URI in the KBS, e.g. "
                   "kbs:///default/image-kek/1\n"
                   "  --kbs URL      also store the KEK in the KBS at that resource (admin API)\n"
                   "  --recipient jwe:PUB.pem   also wrap the layer keys to this RSA or EC public "
                   "key\n"
                   "                 (ocicrypt's JWE recipients; repeatable)\n");
}

/* An image location: an OCI layout (oci:DIR[:TAG]) or a registry (docker://HOST/REPO:TAG). */
struct loc {
        char *dir; /* layout, or NULL for a registry */
        char *tag;
        const char *ref; /* registry reference */
};

static int parse_loc(char *s, struct loc *l)
{
        *l = (struct loc){};
        if (strncmp(s, "docker://", 9) == 0 && s[9]) {
                l->ref = s + 9;
                return 0;
        }
        if (strncmp(s, "oci:", 4) != 0 || !s[4])
                return -EINVAL;
        l->dir = s + 4;
        char *colon = strrchr(l->dir, ':');
        if (colon) {
                *colon = 0;
                l->tag = colon + 1;
                if (!*l->tag || !*l->dir)
                        return -EINVAL;
        }
        return 0;
}

static int load_kek(const char *path, bool create, uint8_t kek[32], struct cc_error **err)
{
        if (create) {
                if (RAND_bytes(kek, 32) != 1)
                        return cc_error_set(err, EIO, "no random bytes");
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return cc_error_set(err, errno, "--new-kek %s: %m", path);
                int r = cc_write_all(fd, kek, 32);
                return r < 0 ? cc_error_set(err, -r, "%s: %s", path, strerror(-r)) : 0;
        }
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = cc_read_file(path, 4096, &buf, &len, err);
        if (r < 0)
                return r;
        if (len != 32) {
                OPENSSL_cleanse(buf, len);
                return cc_error_set(err, EINVAL, "%s: a KEK is 32 raw bytes, this file has %zu",
                                    path, len);
        }
        memcpy(kek, buf, 32);
        OPENSSL_cleanse(buf, len);
        return 0;
}

struct recipients {
        EVP_PKEY *keys[16];
        size_t n;
};

static void recipients_free(struct recipients *r)
{
        for (size_t i = 0; i < r->n; i++)
                EVP_PKEY_free(r->keys[i]);
}

/* "jwe:FILE": a PEM public key (or certificate) for a JWE recipient. */
static int load_recipient(const char *arg, EVP_PKEY **ret)
{
        if (strncmp(arg, "jwe:", 4) != 0) {
                fprintf(stderr, "cc-image-encrypt: --recipient '%s': only jwe:FILE is supported\n",
                        arg);
                return -EINVAL;
        }
        _cleanup_fclose_ FILE *f = fopen(arg + 4, "re");
        if (!f) {
                fprintf(stderr, "cc-image-encrypt: %s: %m\n", arg + 4);
                return -errno;
        }
        *ret = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        if (!*ret) {
                rewind(f);
                X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
                *ret = x ? X509_get_pubkey(x) : NULL;
                X509_free(x);
        }
        if (!*ret) {
                fprintf(stderr, "cc-image-encrypt: %s: not a PEM public key or certificate\n",
                        arg + 4);
                return -EINVAL;
        }
        return 0;
}

/* Source to layout, encryption, layout to destination; registries go through a scratch layout. */
static int run(const struct loc *src, const struct loc *dst, const struct kbs_registry_opts *ro,
               const uint8_t kek[32], const char *kid, const struct recipients *rc,
               struct cc_error **err)
{
        char scratch[] = "/var/tmp/cc-image-encrypt.XXXXXX";
        char src_dir[64], dst_dir[64];
        const char *sdir = src->dir, *stag = src->tag, *ddir = dst->dir, *dtag = dst->tag;
        unsigned layers = 0;
        int r = 0;
        if (src->ref || dst->ref) {
                if (!mkdtemp(scratch))
                        return cc_error_set(err, errno, "%s: %m", scratch);
                snprintf(src_dir, sizeof(src_dir), "%s/src", scratch);
                snprintf(dst_dir, sizeof(dst_dir), "%s/dst", scratch);
        }
        if (src->ref) {
                sdir = src_dir;
                stag = "src";
                r = kbs_image_fetch(src->ref, ro, sdir, stag, err);
        }
        if (dst->ref) {
                ddir = dst_dir;
                dtag = "encrypted";
        }
        if (r == 0)
                r = kbs_image_encrypt(sdir, stag, ddir, dtag, kek, kid, rc->keys, rc->n, &layers,
                                      err);
        if (r == 0 && dst->ref)
                r = kbs_image_push(ddir, dtag, dst->ref, ro, err);
        if (r == 0)
                printf("encrypted %u layer(s) of %s%s%s into %s%s%s, key %s\n", layers,
                       src->ref ? src->ref : src->dir, src->tag ? ":" : "",
                       src->tag ? src->tag : "", dst->ref ? dst->ref : dst->dir,
                       dst->tag ? ":" : "", dst->tag ? dst->tag : "", kid);
        if (src->ref || dst->ref) {
                _cleanup_close_ int fd = open("/var/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0)
                        cc_rm_rf_at(fd, scratch + strlen("/var/tmp/"));
        }
        return r;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"kek", required_argument, NULL, 'k'},
                {"new-kek", no_argument, NULL, 'n'},
                {"kid", required_argument, NULL, 'i'},
                {"kbs", required_argument, NULL, 'u'},
                {"admin-key", required_argument, NULL, 'a'},
                {"cacert", required_argument, NULL, 'c'},
                {"insecure", no_argument, NULL, 'I'},
                {"help", no_argument, NULL, 'h'},
                {"recipient", required_argument, NULL, 'r'},
                {"registry-insecure", no_argument, NULL, 'R'},
                {"registry-ca", required_argument, NULL, 'C'},
                {"registry-creds", required_argument, NULL, 'P'},
                {},
        };
        const char *kek_path = NULL, *kid = NULL;
        bool new_kek = false;
        struct kbs_admin_client kbs = {};
        _cleanup_(recipients_free) struct recipients rc = {};
        struct kbs_registry_opts ro = {};
        int o;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (o) {
                case 'k':
                        kek_path = optarg;
                        break;
                case 'n':
                        new_kek = true;
                        break;
                case 'i':
                        kid = optarg;
                        break;
                case 'u':
                        kbs.url = optarg;
                        break;
                case 'a':
                        kbs.admin_key = optarg;
                        break;
                case 'c':
                        kbs.cacert = optarg;
                        break;
                case 'I':
                        kbs.insecure = true;
                        break;
                case 'r':
                        if (rc.n == 16 || load_recipient(optarg, &rc.keys[rc.n]) < 0)
                                return 2;
                        rc.n++;
                        break;
                case 'R':
                        ro.insecure = true;
                        break;
                case 'C':
                        ro.ca_file = optarg;
                        break;
                case 'P':
                        ro.creds = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        struct loc src, dst;
        if (argc - optind != 2 || !kek_path || !kid || parse_loc(argv[optind], &src) < 0 ||
            parse_loc(argv[optind + 1], &dst) < 0 || (dst.dir && !dst.tag)) {
                usage(stderr);
                return 2;
        }
        _cleanup_error_ struct cc_error *err = NULL;
        uint8_t kek[32];
        if (load_kek(kek_path, new_kek, kek, &err) < 0 ||
            run(&src, &dst, &ro, kek, kid, &rc, &err) < 0) {
                OPENSSL_cleanse(kek, sizeof(kek));
                fprintf(stderr, "cc-image-encrypt: %s\n", cc_error_message(err));
                return 1;
        }
        if (kbs.url) {
                char path[300];
                snprintf(path, sizeof(path), "resource/%s", kid + 7);
                int r = kbs_admin_call(&kbs, "POST", path, kek, 32, "application/octet-stream",
                                       NULL, &err);
                OPENSSL_cleanse(kek, sizeof(kek));
                if (r < 0) {
                        fprintf(stderr, "cc-image-encrypt: registering the KEK: %s\n",
                                cc_error_message(err));
                        return 1;
                }
                printf("KEK stored in the KBS at %s\n", kid);
        }
        OPENSSL_cleanse(kek, sizeof(kek));
        return 0;
}
