/*
 * The offline_fs key broker: keys that ship inside the (measured, encrypted) guest image, as
 * CoCo's offline_fs_kbc. Private keys for JWE recipients come from PEM files; KEKs for
 * key-provider annotation packets come from a JSON file {"repo/type/tag": "base64 key"} and
 * are looked up by the path of a `kbs:///repo/type/tag` resource URI.
 *
 * A KBS-protocol broker (attestation, then GET /kbs/v0/resource/...) fills the same
 * struct img_key_broker with its own callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"

#define MAX_KEY_FILE (1 << 20)

struct offline_fs {
        size_t n;
        char **ids;
        char **pems;
        size_t *lens;
        struct json_object *keys; /* parsed keys JSON or NULL */
};

static int read_file(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size > MAX_KEY_FILE)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t off = 0;
        while (off < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                off += (size_t)n;
        }
        buf[off] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = off;
        return 0;
}

static int ofs_private_key(void *data, size_t n, const char **ret_pem, size_t *ret_len,
                           const char **ret_id)
{
        struct offline_fs *o = data;
        if (n >= o->n)
                return -ENOENT;
        *ret_pem = o->pems[n];
        *ret_len = o->lens[n];
        *ret_id = o->ids[n];
        return 0;
}

static int ofs_resource(void *data, const char *uri, uint8_t **ret, size_t *ret_len,
                        struct cc_error **err)
{
        struct offline_fs *o = data;
        /* kbs://<host>/<repo>/<type>/<tag>: the host is ignored, as CoCo's brokers do. */
        const char *path = uri;
        if (!strncmp(uri, "kbs://", 6)) {
                path = strchr(uri + 6, '/');
                path = path ? path + 1 : "";
        }
        struct json_object *v;
        if (!o->keys || !json_object_object_get_ex(o->keys, path, &v) ||
            !json_object_is_type(v, json_type_string))
                return cc_error_set(err, ENOENT, "offline_fs: no key '%s'", uri);
        const char *s = json_object_get_string(v);
        if (img__b64_decode(s, strlen(s), false, ret, ret_len) < 0)
                return cc_error_set(err, EINVAL, "offline_fs: key '%s' is not base64", uri);
        return 0;
}

static void ofs_free(void *data)
{
        struct offline_fs *o = data;
        if (!o)
                return;
        for (size_t i = 0; i < o->n; i++) {
                free(o->ids[i]);
                if (o->pems[i])
                        OPENSSL_cleanse(o->pems[i], o->lens[i]);
                free(o->pems[i]);
        }
        free(o->ids);
        free(o->pems);
        free(o->lens);
        json_object_put(o->keys);
        free(o);
}

int img_key_broker_offline_fs(const char *const *key_files, const char *keys_json,
                              struct img_key_broker **ret, struct cc_error **err)
{
        struct offline_fs *o = calloc(1, sizeof(*o));
        struct img_key_broker *b = calloc(1, sizeof(*b));
        size_t n = 0;
        while (key_files && key_files[n])
                n++;
        if (o) {
                o->ids = calloc(n + 1, sizeof(char *));
                o->pems = calloc(n + 1, sizeof(char *));
                o->lens = calloc(n + 1, sizeof(size_t));
        }
        if (!o || !b || !o->ids || !o->pems || !o->lens) {
                ofs_free(o);
                free(b);
                return -ENOMEM;
        }
        *b = (struct img_key_broker){.name = "offline_fs",
                                     .data = o,
                                     .private_key = ofs_private_key,
                                     .resource = ofs_resource,
                                     .free = ofs_free};
        for (size_t i = 0; i < n; i++) {
                int r = read_file(key_files[i], &o->pems[i], &o->lens[i]);
                if (r < 0 || !(o->ids[i] = strdup(key_files[i]))) {
                        o->n = i + 1;
                        img_key_broker_free(b);
                        return cc_error_set(err, r < 0 ? -r : ENOMEM, "key file '%s'",
                                            key_files[i]);
                }
                o->n = i + 1;
        }
        if (keys_json) {
                _cleanup_free_ char *buf = NULL;
                size_t len;
                int r = read_file(keys_json, &buf, &len);
                if (r == 0 && !(o->keys = img__json_parse(buf, len, NULL)))
                        r = -EINVAL;
                if (buf)
                        OPENSSL_cleanse(buf, len);
                if (r < 0) {
                        img_key_broker_free(b);
                        /* Contents are never echoed: a parse error could leak key bytes. */
                        return cc_error_set(err, -r, "keys file '%s' unreadable", keys_json);
                }
        }
        *ret = b;
        return 0;
}

struct img_key_broker *img_key_broker_free(struct img_key_broker *b)
{
        if (!b)
                return NULL;
        if (b->free)
                b->free(b->data);
        free(b);
        return NULL;
}
