/*
 * cc-image-encrypt's registry side, through the image library's registry client (the same
 * TLS, credentials and token handling as cc-image-pull): an image is fetched into an OCI layout
 * (one platform: an index is resolved to linux/<this machine's arch>), and an image of a layout
 * is pushed (blobs, then the manifest under a tag).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cc/fileio.h"
#include "cc/json.h"

#include "guest-agent/image/image-internal.h"
#include "kbs/kbs.h"

#define MAX_MANIFEST (4u << 20)
#define ACCEPT                                                                \
        IMG_MT_OCI_MANIFEST ", " IMG_MT_OCI_INDEX ", " IMG_MT_DOCKER_MANIFEST \
                            ", " IMG_MT_DOCKER_LIST

DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_registry *, img__registry_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_manifest *, img__manifest_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_blob *, img__blob_free)

static int registry_open(const char *ref_s, const struct kbs_registry_opts *o, struct img_ref *ref,
                         struct img_registry **ret, struct cc_error **err)
{
        int r = img__ref_parse(ref_s, ref, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *user = NULL;
        const char *password = NULL;
        if (o->creds) {
                user = strdup(o->creds);
                if (!user)
                        return -ENOMEM;
                char *colon = strchr(user, ':');
                if (colon) {
                        *colon = 0;
                        password = colon + 1;
                }
        }
        struct img_registry_conf c = {
                .host = ref->registry,
                .repo = ref->repo,
                .insecure = o->insecure,
                .ca_file = o->ca_file,
                .user = user,
                .password = password,
                .retries = 3,
                .stall_timeout_ms = 60000,
                .connect_timeout_ms = 10000,
        };
        return img__registry_new(&c, ret, err);
}

static int blob_to_file(struct img_registry *reg, const char *layout, const char *digest,
                        int64_t size, struct cc_error **err)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        if (asprintf(&path, "%s/blobs/sha256/%s", layout, digest + 7) < 0 ||
            asprintf(&tmp, "%s.part", path) < 0)
                return -ENOMEM;
        _cleanup_(img__blob_freep) struct img_blob *b = NULL;
        int r = img__blob_open(reg, digest, size, &b, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return cc_error_set(err, errno, "%s: %m", tmp);
        for (;;) {
                const uint8_t *chunk;
                size_t n;
                r = img__blob_next(b, &chunk, &n, err); /* digest and size checked at EOF */
                if (r < 0 || n == 0)
                        break;
                r = cc_write_all(fd, chunk, n);
                if (r < 0) {
                        cc_error_set(err, -r, "%s: %s", tmp, strerror(-r));
                        break;
                }
        }
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return rename(tmp, path) < 0 ? cc_error_set(err, errno, "%s: %m", path) : 0;
}

int kbs_image_fetch(const char *ref_s, const struct kbs_registry_opts *o, const char *layout,
                    const char *tag, struct cc_error **err)
{
        struct img_ref ref = {};
        _cleanup_(img__registry_freep) struct img_registry *reg = NULL;
        int r = registry_open(ref_s, o, &ref, &reg, err);
        if (r < 0) {
                img__ref_done(&ref);
                return r;
        }
        _cleanup_free_ char *buf = NULL, *ctype = NULL, *blobs = NULL;
        size_t len = 0;
        r = img__registry_get(reg, "manifests", ref.digest ? ref.digest : ref.tag, ACCEPT,
                              MAX_MANIFEST, &buf, &len, &ctype, err);
        _cleanup_(img__manifest_freep) struct img_manifest *m = NULL;
        if (r == 0)
                r = img__manifest_parse(ctype, buf, len, &m, err);
        if (r == 0 && m->is_index) {
                struct utsname u;
                const struct img_descriptor *d = NULL;
                uname(&u);
                r = img__index_select(m, "linux", img__arch_normalise(u.machine), NULL, &d, err);
                _cleanup_free_ char *digest = r == 0 ? strdup(d->digest) : NULL;
                if (r == 0) {
                        free(TAKE_PTR(buf));
                        free(TAKE_PTR(ctype));
                        img__manifest_free(TAKE_PTR(m));
                        r = img__registry_get(reg, "manifests", digest, ACCEPT, MAX_MANIFEST, &buf,
                                              &len, &ctype, err);
                }
                if (r == 0)
                        r = img__manifest_parse(ctype, buf, len, &m, err);
                if (r == 0 && m->is_index)
                        r = cc_error_set(err, EINVAL, "%s: an index inside an index", ref_s);
        }
        img__ref_done(&ref);
        if (r < 0)
                return r;
        if (asprintf(&blobs, "%s/blobs/sha256", layout) < 0)
                return -ENOMEM;
        r = cc_mkdir_p(blobs, 0755);
        if (r < 0)
                return cc_error_set(err, -r, "%s: %s", blobs, strerror(-r));
        r = blob_to_file(reg, layout, m->config.digest, m->config.size, err);
        for (size_t i = 0; r == 0 && i < m->n_layers; i++)
                r = blob_to_file(reg, layout, m->layers[i].digest, m->layers[i].size, err);
        if (r < 0)
                return r;
        return kbs__layout_add(layout, tag, m->media_type ? m->media_type : IMG_MT_OCI_MANIFEST,
                               buf, len, err);
}

int kbs_image_push(const char *layout, const char *tag, const char *ref_s,
                   const struct kbs_registry_opts *o, struct cc_error **err)
{
        struct img_ref ref = {};
        _cleanup_(img__registry_freep) struct img_registry *reg = NULL;
        int r = registry_open(ref_s, o, &ref, &reg, err);
        _cleanup_free_ char *rtag = ref.tag ? strdup(ref.tag) : NULL;
        img__ref_done(&ref);
        if (r < 0)
                return r;
        if (!rtag)
                return cc_error_set(err, EINVAL, "%s: pushing needs a tag", ref_s);
        _cleanup_free_ char *mbuf = NULL, *mtype = NULL;
        size_t mlen = 0;
        r = kbs__layout_manifest(layout, tag, &mbuf, &mlen, &mtype, err);
        _cleanup_(img__manifest_freep) struct img_manifest *m = NULL;
        if (r == 0)
                r = img__manifest_parse(mtype, mbuf, mlen, &m, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= m->n_layers; i++) {
                const struct img_descriptor *d = i < m->n_layers ? &m->layers[i] : &m->config;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/blobs/sha256/%s", layout, d->digest + 7) < 0)
                        return -ENOMEM;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        return cc_error_set(err, errno, "%s: %m", path);
                r = img__registry_push_blob(reg, d->digest, fd, (uint64_t)st.st_size, err);
                if (r < 0)
                        return r;
        }
        return img__registry_push_manifest(reg, rtag, mtype, mbuf, mlen, err);
}
