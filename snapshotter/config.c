/*
 * The snapshotter's configuration (TOML, configs/snapshotter/config.toml) and the mode policy.
 *
 *   root = "/var/lib/containerd/io.containerd.snapshotter.v1.cc-snapshotter"
 *   address = "/run/cc-snapshotter/cc-snapshotter.sock"
 *   log_level = "info"
 *   default_mode = "policy"           # names not listed below: policy | guest | local
 *   mount_type = "fuse.nydus-overlayfs"
 *   [policy]                          # CRI pulls under a "policy" name (containerd 1.6)
 *   default = "guest"                 # guest | local, for images matching no pattern
 *   local_images = ["registry.k8s.io/pause:..."]  # checked first
 *   guest_images = ["registry.example/cc/..."]
 *   [snapshotters.cc-guest]           # one table per proxy name (containerd 1.7+)
 *   mode = "guest"
 *
 * Unknown keys are errors, so a typo never silently changes where an image is pulled.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/toml.h"

#include "snapshotter/snap.h"

#define DEFAULT_ROOT    "/var/lib/containerd/io.containerd.snapshotter.v1.cc-snapshotter"
#define DEFAULT_ADDRESS "/run/cc-snapshotter/cc-snapshotter.sock"

static const char *const mode_names[_SNAP_MODE_MAX] = {
        [SNAP_MODE_POLICY] = "policy",
        [SNAP_MODE_GUEST] = "guest",
        [SNAP_MODE_LOCAL] = "local",
};

int snap_mode_from_string(const char *s, enum snap_mode *ret)
{
        for (int i = 0; i < _SNAP_MODE_MAX; i++) {
                if (strcmp(s, mode_names[i]) == 0) {
                        *ret = (enum snap_mode)i;
                        return 0;
                }
        }
        return -EINVAL;
}

const char *snap_mode_to_string(enum snap_mode m)
{
        return m < _SNAP_MODE_MAX ? mode_names[m] : "unknown";
}

void snap_config_init(struct snap_config *c)
{
        *c = (struct snap_config){0};
        c->root = strdup(DEFAULT_ROOT);
        c->address = strdup(DEFAULT_ADDRESS);
        c->log_level = strdup("info");
        c->mount_type = strdup("fuse.nydus-overlayfs");
        c->default_mode = SNAP_MODE_POLICY;
        c->policy_default_guest = true;
}

void snap_config_clear(struct snap_config *c)
{
        free(c->root);
        free(c->address);
        free(c->log_level);
        free(c->mount_type);
        for (size_t i = 0; i < c->n_names; i++)
                free(c->names[i].name);
        free(c->names);
        cc_strv_free(c->guest_images);
        cc_strv_free(c->local_images);
        *c = (struct snap_config){0};
}

enum snap_mode snap_config_mode(const struct snap_config *c, const char *name)
{
        for (size_t i = 0; i < c->n_names; i++)
                if (strcmp(c->names[i].name, name) == 0)
                        return c->names[i].mode;
        return c->default_mode;
}

static bool matches(char *const *patterns, const char *ref)
{
        for (size_t i = 0; patterns && patterns[i]; i++)
                if (fnmatch(patterns[i], ref, 0) == 0)
                        return true;
        return false;
}

bool snap_config_guest_image(const struct snap_config *c, const char *image_ref)
{
        /* Local patterns win: wrongly pulling on the host only costs bandwidth, wrongly
         * pulling in the guest breaks a runc container. */
        if (matches(c->local_images, image_ref))
                return false;
        if (matches(c->guest_images, image_ref))
                return true;
        return c->policy_default_guest;
}

static int set_string(const struct cc_toml_table *t, const char *key, char **dst,
                      struct cc_error **err)
{
        const char *v;
        int r = cc_toml_get_string(t, key, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        char *n = strdup(v);
        if (!n)
                return cc_error_set(err, ENOMEM, "out of memory");
        free(*dst);
        *dst = n;
        return 0;
}

static int get_mode(const struct cc_toml_table *t, const char *key, enum snap_mode *dst,
                    struct cc_error **err)
{
        const char *v;
        int r = cc_toml_get_string(t, key, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (snap_mode_from_string(v, dst) < 0)
                return cc_error_set(err, EINVAL, "%s: %s must be policy, guest or local, not %s",
                                    cc_toml_table_file(t), key, v);
        return 0;
}

static int string_list(const struct cc_toml_table *t, const char *key, char ***dst,
                       struct cc_error **err)
{
        const struct cc_toml_entry *e = cc_toml_table_get(t, key);
        if (!e)
                return 0;
        if (e->value.type != CC_TOML_ARRAY)
                return cc_error_set(err, EINVAL, "%s:%u: %s must be an array of strings",
                                    cc_toml_table_file(t), e->line, key);
        const struct cc_toml_array *a = &e->value.array;
        char **v = calloc(a->n + 1, sizeof(char *));
        if (!v)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < a->n; i++) {
                if (a->items[i].type != CC_TOML_STRING) {
                        cc_strv_free(v);
                        return cc_error_set(err, EINVAL, "%s:%u: %s must hold strings only",
                                            cc_toml_table_file(t), a->items[i].line, key);
                }
                if (!(v[i] = strdup(a->items[i].string))) {
                        cc_strv_free(v);
                        return cc_error_set(err, ENOMEM, "out of memory");
                }
        }
        cc_strv_free(*dst);
        *dst = v;
        return 0;
}

static int check_keys(const struct cc_toml_table *t, const char *const *allowed, const char *where,
                      struct cc_error **err)
{
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                bool ok = false;
                for (size_t k = 0; allowed[k] && !ok; k++)
                        ok = strcmp(allowed[k], e->key) == 0;
                if (!ok)
                        return cc_error_set(err, EINVAL, "%s:%u: unknown key '%s'%s%s",
                                            cc_toml_table_file(t), e->line, e->key,
                                            where ? " in " : "", where ? where : "");
        }
        return 0;
}

int snap_config_load(struct snap_config *c, const char *path, struct cc_error **err)
{
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        int r = cc_toml_parse_file(path, &doc, err);
        if (r < 0)
                return r;
        static const char *const top[] = {"root",       "address", "log_level",    "default_mode",
                                          "mount_type", "policy",  "snapshotters", NULL};
        if ((r = check_keys(doc, top, NULL, err)) < 0 ||
            (r = set_string(doc, "root", &c->root, err)) < 0 ||
            (r = set_string(doc, "address", &c->address, err)) < 0 ||
            (r = set_string(doc, "log_level", &c->log_level, err)) < 0 ||
            (r = set_string(doc, "mount_type", &c->mount_type, err)) < 0 ||
            (r = get_mode(doc, "default_mode", &c->default_mode, err)) < 0)
                return r;
        if (c->root[0] != '/')
                return cc_error_set(err, EINVAL, "%s: root must be an absolute path", path);

        const struct cc_toml_table *pol;
        r = cc_toml_get_table(doc, "policy", &pol, err);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0) {
                static const char *const keys[] = {"default", "guest_images", "local_images", NULL};
                if ((r = check_keys(pol, keys, "[policy]", err)) < 0 ||
                    (r = string_list(pol, "guest_images", &c->guest_images, err)) < 0 ||
                    (r = string_list(pol, "local_images", &c->local_images, err)) < 0)
                        return r;
                const char *def;
                r = cc_toml_get_string(pol, "default", &def, err);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == 0) {
                        if (strcmp(def, "guest") != 0 && strcmp(def, "local") != 0)
                                return cc_error_set(err, EINVAL,
                                                    "%s: policy.default must be guest or local",
                                                    path);
                        c->policy_default_guest = strcmp(def, "guest") == 0;
                }
        }

        const struct cc_toml_table *names;
        r = cc_toml_get_table(doc, "snapshotters", &names, err);
        if (r < 0 && r != -ENOENT)
                return r;
        for (size_t i = 0; r == 0 && i < cc_toml_table_size(names); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(names, i);
                if (e->value.type != CC_TOML_TABLE)
                        return cc_error_set(err, EINVAL, "%s:%u: snapshotters.%s must be a table",
                                            path, e->line, e->key);
                static const char *const keys[] = {"mode", NULL};
                int k = check_keys(e->value.table, keys, e->key, err);
                if (k < 0)
                        return k;
                enum snap_mode m = c->default_mode;
                if ((k = get_mode(e->value.table, "mode", &m, err)) < 0)
                        return k;
                struct snap_name_config *nv = realloc(c->names, (c->n_names + 1) * sizeof(*nv));
                if (!nv)
                        return cc_error_set(err, ENOMEM, "out of memory");
                c->names = nv;
                if (!(nv[c->n_names].name = strdup(e->key)))
                        return cc_error_set(err, ENOMEM, "out of memory");
                nv[c->n_names++].mode = m;
        }
        return 0;
}
