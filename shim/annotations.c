/*
 * Pod annotations under the node's rules (annotations.h for the keys). Kata's semantics:
 * nothing is honoured unless the handler's configuration enables it, and a refused annotation
 * is an error, not silently dropped. Ours on top: the configuration a pod may select with
 * io.katacontainers.config_path is restricted too (valid_config_paths) and may never weaken
 * the handler's TEE (that selection is config.c's shim_config_resolve, which applies the
 * rest here); every value is range-checked and every honoured one logged.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "shim/shim.h"

#define KPARAMS_MAX 1024 /* bytes of a kernel_params annotation (x86's whole line is 2048) */
#define MEMORY_MIN  64   /* MiB, as [hypervisor] default_memory */
#define VCPUS_LIMIT 256  /* as [hypervisor] default_vcpus */

enum anno_kind { ANNO_VCPUS, ANNO_MEMORY, ANNO_KPARAMS, ANNO_PATH, ANNO_INITDATA };

/* The hypervisor annotations this runtime implements (after SHIM_ANNO_HV_PREFIX). */
static const struct hv_anno {
        const char *name;
        enum anno_kind kind;
        const char *valid_key; /* ANNO_PATH: the list its value must match */
} hv_annos[] = {
        {"default_vcpus", ANNO_VCPUS, NULL},
        {"default_memory", ANNO_MEMORY, NULL},
        {"kernel_params", ANNO_KPARAMS, NULL},
        {"path", ANNO_PATH, "valid_hypervisor_paths"},
        {"kernel", ANNO_PATH, "valid_kernel_paths"},
        {"initrd", ANNO_PATH, "valid_initrd_paths"},
        {"firmware", ANNO_PATH, "valid_firmware_paths"},
        /* The pod owner's initdata (shim/initdata.c): checked and bound at sandbox start. */
        {"cc_init_data", ANNO_INITDATA, NULL},
};

static char *const *valid_list(const struct shim_anno_policy *p, const char *key)
{
        if (strcmp(key, "valid_hypervisor_paths") == 0)
                return p->valid_hypervisor_paths;
        if (strcmp(key, "valid_kernel_paths") == 0)
                return p->valid_kernel_paths;
        if (strcmp(key, "valid_initrd_paths") == 0)
                return p->valid_initrd_paths;
        if (strcmp(key, "valid_firmware_paths") == 0)
                return p->valid_firmware_paths;
        return p->valid_config_paths;
}

static char **field_of(struct shim_config *c, const char *name)
{
        if (strcmp(name, "path") == 0)
                return &c->vmm_path;
        if (strcmp(name, "kernel") == 0)
                return &c->kernel;
        if (strcmp(name, "initrd") == 0)
                return &c->initrd;
        return &c->firmware;
}

/* ---- the policy ------------------------------------------------------------------------------ */

void shim_anno_policy_done(struct shim_anno_policy *p)
{
        cc_strv_free(p->enable);
        cc_strv_free(p->valid_hypervisor_paths);
        cc_strv_free(p->valid_kernel_paths);
        cc_strv_free(p->valid_initrd_paths);
        cc_strv_free(p->valid_firmware_paths);
        cc_strv_free(p->valid_config_paths);
        *p = (struct shim_anno_policy){0};
}

/* "^(re)$": Kata matches the prefix plus the expression up to the end of the name. */
static int compile_anchored(const char *re, regex_t *ret)
{
        _cleanup_free_ char *full = NULL;
        if (asprintf(&full, "^(%s)$", re) < 0)
                return -ENOMEM;
        return regcomp(ret, full, REG_EXTENDED | REG_NOSUB) == 0 ? 0 : -EINVAL;
}

static int get_list(const struct cc_toml_table *t, const char *key, bool globs, char ***dst,
                    struct cc_error **err)
{
        if (!t)
                return 0;
        _cleanup_strv_ char **v = NULL;
        int r = cc_toml_get_strv(t, key, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        const struct cc_toml_entry *e = cc_toml_table_get(t, key);
        for (char **i = v; *i; i++) {
                regex_t re;
                if (globs && (*i)[0] != '/')
                        return cc_error_set(err, EINVAL,
                                            "%s:%u: key '%s': '%s' is not an absolute path glob",
                                            cc_toml_table_file(t), e ? e->line : 0, key, *i);
                if (globs)
                        continue;
                if ((r = compile_anchored(*i, &re)) == -ENOMEM)
                        return r;
                if (r < 0)
                        return cc_error_set(err, EINVAL,
                                            "%s:%u: key '%s': '%s' is not a valid regular "
                                            "expression (POSIX extended)",
                                            cc_toml_table_file(t), e ? e->line : 0, key, *i);
                regfree(&re);
        }
        *dst = TAKE_PTR(v);
        return 0;
}

static int get_max(const struct cc_toml_table *t, const char *key, int64_t max, unsigned *dst,
                   struct cc_error **err)
{
        int64_t v;
        int r = cc_toml_get_int64_range(t, key, 0, max, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *dst = (unsigned)v;
        return 0;
}

int shim_anno_policy_load(const struct cc_toml_table *hv, const struct cc_toml_table *rt,
                          struct shim_anno_policy *p, struct cc_error **err)
{
        int r;
        if ((r = get_list(hv, "enable_annotations", false, &p->enable, err)) < 0 ||
            (r = get_list(hv, "valid_hypervisor_paths", true, &p->valid_hypervisor_paths, err)) <
                    0 ||
            (r = get_list(hv, "valid_kernel_paths", true, &p->valid_kernel_paths, err)) < 0 ||
            (r = get_list(hv, "valid_initrd_paths", true, &p->valid_initrd_paths, err)) < 0 ||
            (r = get_list(hv, "valid_firmware_paths", true, &p->valid_firmware_paths, err)) < 0 ||
            (r = get_list(rt, "valid_config_paths", true, &p->valid_config_paths, err)) < 0 ||
            (r = get_max(hv, "default_maxvcpus", VCPUS_LIMIT, &p->max_vcpus, err)) < 0 ||
            (r = get_max(hv, "default_maxmemory", 1 << 30, &p->max_memory_mib, err)) < 0)
                return r;
        return 0;
}

bool shim_anno_enabled(const struct shim_anno_policy *p, const char *name)
{
        for (char **i = p->enable; i && *i; i++) {
                regex_t re;
                if (compile_anchored(*i, &re) < 0)
                        continue;
                bool m = regexec(&re, name, 0, NULL, 0) == 0;
                regfree(&re);
                if (m)
                        return true;
        }
        return false;
}

bool shim_anno_path_allowed(char *const *globs, const char *path)
{
        if (!path || path[0] != '/' || strlen(path) >= PATH_MAX)
                return false;
        /* Clean: every component non-empty and neither "." nor ".." (a glob for the files in /opt/k
         * must not admit /opt/k/../../etc/shadow). */
        for (const char *c = path + 1;;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!c[n])
                        break;
                c += n + 1;
        }
        for (char *const *g = globs; g && *g; g++)
                if (fnmatch(*g, path, FNM_PATHNAME | FNM_PERIOD) == 0)
                        return true;
        return false;
}

/* The effective upper bounds: Kata's default_maxvcpus / default_maxmemory, else the host's. */
static unsigned max_vcpus(const struct shim_anno_policy *p)
{
        if (p->max_vcpus)
                return p->max_vcpus;
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 && n < VCPUS_LIMIT ? (unsigned)n : VCPUS_LIMIT;
}

static unsigned max_memory_mib(const struct shim_anno_policy *p)
{
        if (p->max_memory_mib)
                return p->max_memory_mib;
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        uint64_t mib = pages > 0 && size > 0 ? ((uint64_t)pages * (uint64_t)size) >> 20 : 0;
        return mib > MEMORY_MIN ? (unsigned)CC_MIN(mib, (uint64_t)UINT_MAX) : MEMORY_MIN;
}

static int append(char **buf, size_t *len, const char *fmt, ...) _printf_(3, 4);
static int append(char **buf, size_t *len, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *part = NULL;
        int n = vasprintf(&part, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        char *nb = realloc(*buf, *len + (size_t)n + 3);
        if (!nb)
                return -ENOMEM;
        *buf = nb;
        if (*len) {
                memcpy(*buf + *len, ", ", 2);
                *len += 2;
        }
        memcpy(*buf + *len, part, (size_t)n + 1);
        *len += (size_t)n;
        return 0;
}

static int append_globs(char **buf, size_t *len, const char *name, char *const *globs)
{
        char joined[1024] = "";
        for (char *const *g = globs; g && *g; g++)
                snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
                         g == globs ? "" : " ", *g);
        return append(buf, len, "%s (%s)", name, joined);
}

char *shim_anno_policy_describe(const struct shim_anno_policy *p)
{
        _cleanup_free_ char *out = NULL, *refused = NULL;
        size_t len = 0, rlen = 0;
        int r = 0;
        for (size_t i = 0; i < CC_ARRAY_SIZE(hv_annos) && r >= 0; i++) {
                const struct hv_anno *a = &hv_annos[i];
                if (!shim_anno_enabled(p, a->name))
                        continue;
                switch (a->kind) {
                case ANNO_VCPUS:
                        r = append(&out, &len, "%s (1-%u)", a->name, max_vcpus(p));
                        break;
                case ANNO_MEMORY:
                        r = append(&out, &len, "%s (%u-%u MiB)", a->name, MEMORY_MIN,
                                   max_memory_mib(p));
                        break;
                case ANNO_KPARAMS:
                case ANNO_INITDATA:
                        r = append(&out, &len, "%s", a->name);
                        break;
                case ANNO_PATH: {
                        char *const *globs = valid_list(p, a->valid_key);
                        r = globs && *globs ? append_globs(&out, &len, a->name, globs)
                                            : append(&refused, &rlen, "%s (%s is empty)", a->name,
                                                     a->valid_key);
                        break;
                }
                }
        }
        if (r >= 0 && p->valid_config_paths && *p->valid_config_paths)
                r = append_globs(&out, &len, "config_path", p->valid_config_paths);
        /* Names enabled that match nothing this runtime implements. */
        for (char **e = p->enable; r >= 0 && e && *e; e++) {
                bool any = false;
                for (size_t i = 0; i < CC_ARRAY_SIZE(hv_annos) && !any; i++) {
                        regex_t re;
                        if (compile_anchored(*e, &re) < 0)
                                continue;
                        any = regexec(&re, hv_annos[i].name, 0, NULL, 0) == 0;
                        regfree(&re);
                }
                if (!any)
                        r = append(&refused, &rlen, "%s (not implemented)", *e);
        }
        char *s = NULL;
        if (r < 0 || asprintf(&s, "%s%s%s", out ? out : "none",
                              refused ? "; enabled but refused: " : "", refused ? refused : "") < 0)
                return NULL;
        return s;
}

/* ---- applying a pod's annotations ------------------------------------------------------------ */

/* Where a refusal points: "[hypervisor.qemu] enable_annotations of /etc/.../x.toml". */
static const char *cfg_file(const struct shim_config *c)
{
        return c->path ? c->path : "the built-in configuration";
}

static const char *cfg_section(const struct shim_config *c)
{
        return c->section ? c->section : "hypervisor.qemu";
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
        if (!s || !*s || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        unsigned long v = strtoul(s, NULL, 10);
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int apply_one(struct shim_config *c, const struct hv_anno *a, const char *key,
                     const char *value, struct cc_error **err)
{
        const struct shim_anno_policy *p = &c->anno;
        unsigned long v = 0;
        switch (a->kind) {
        case ANNO_VCPUS: {
                unsigned max = max_vcpus(p);
                if (parse_uint(value, ULONG_MAX, &v) < 0 || v < 1 || v > max)
                        return cc_error_set(err, EINVAL,
                                            "annotation %s: '%.32s' is not a number of vCPUs from "
                                            "1 to %u ([%s] default_maxvcpus, else the host's CPUs)",
                                            key, value, max, cfg_section(c));
                cc_log_info("annotation %s: vCPUs %u -> %lu", key, c->vcpus, v);
                c->vcpus = (unsigned)v;
                return 0;
        }
        case ANNO_MEMORY: {
                unsigned max = max_memory_mib(p);
                if (parse_uint(value, ULONG_MAX, &v) < 0 || v < MEMORY_MIN || v > max)
                        return cc_error_set(err, EINVAL,
                                            "annotation %s: '%.32s' is not a memory size from %u "
                                            "to %u MiB ([%s] default_maxmemory, else the host's "
                                            "memory)",
                                            key, value, MEMORY_MIN, max, cfg_section(c));
                cc_log_info("annotation %s: memory %u -> %lu MiB", key, c->memory_mib, v);
                c->memory_mib = (unsigned)v;
                return 0;
        }
        case ANNO_KPARAMS: {
                size_t n = strlen(value);
                bool printable = true;
                for (size_t i = 0; i < n; i++)
                        printable = printable && value[i] >= 0x20 && value[i] < 0x7f;
                if (n > KPARAMS_MAX || !printable)
                        return cc_error_set(err, EINVAL,
                                            "annotation %s: kernel parameters must be printable "
                                            "ASCII of at most %d bytes",
                                            key, KPARAMS_MAX);
                /* The debug console is the handler's decision (debug_console_enabled), never
                 * the pod author's: a shell in the guest would bypass the agent's policy. */
                if (strstr(value, "agent.debug_console"))
                        return cc_error_set(err, EPERM,
                                            "annotation %s: agent.debug_console is refused: "
                                            "only the handler's configuration "
                                            "(debug_console_enabled) enables the debug console",
                                            key);
                if (n == 0)
                        return 0;
                char *joined = NULL;
                if (asprintf(&joined, "%s%s%s", c->kernel_params ? c->kernel_params : "",
                             cc_isempty(c->kernel_params) ? "" : " ", value) < 0)
                        return -ENOMEM;
                free(c->kernel_params);
                c->kernel_params = joined;
                cc_log_info("annotation %s: kernel parameters '%s' appended", key, value);
                return 0;
        }
        case ANNO_INITDATA: {
                /* Only its size and alphabet here; initdata.c decodes and validates it. */
                size_t n = strlen(value);
                if (n == 0 || n > SHIM_INITDATA_ANNOTATION_MAX ||
                    strspn(value,
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
                            n)
                        return cc_error_set(err, EINVAL,
                                            "annotation %s: not base64 of at most %d characters "
                                            "(base64 of gzip of the initdata TOML)",
                                            key, SHIM_INITDATA_ANNOTATION_MAX);
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                free(c->initdata_annotation);
                c->initdata_annotation = copy;
                cc_log_info("annotation %s: initdata of %zu base64 characters", key, n);
                return 0;
        }
        case ANNO_PATH: {
                char *const *globs = valid_list(p, a->valid_key);
                if (!shim_anno_path_allowed(globs, value))
                        return cc_error_set(
                                err, EINVAL,
                                "annotation %s refused: '%.256s' is not an absolute clean path "
                                "matched by [%s] %s of %s%s",
                                key, value, cfg_section(c), a->valid_key, cfg_file(c),
                                globs && *globs ? "" : " (empty: no value is allowed)");
                char **dst = field_of(c, a->name);
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                cc_log_info("annotation %s: %s %s -> %s", key, a->name, *dst ? *dst : "(none)",
                            value);
                free(*dst);
                *dst = copy;
                return 0;
        }
        }
        return -EINVAL;
}

static int refuse_unsupported(const char *key, struct cc_error **err)
{
        char names[256] = "";
        for (size_t i = 0; i < CC_ARRAY_SIZE(hv_annos); i++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                         i ? ", " : "", hv_annos[i].name);
        return cc_error_set(err, EINVAL,
                            "annotation %s refused: not supported by " SHIM_NAME
                            " (it honours " SHIM_ANNO_CONFIG_PATH " and, where the "
                            "configuration enables them, " SHIM_ANNO_HV_PREFIX "{%s})",
                            key, names);
}

int shim_annotations_apply(struct shim_config *c, struct json_object *spec, struct cc_error **err)
{
        struct json_object *annos = NULL;
        if (!spec || !json_object_object_get_ex(spec, "annotations", &annos) ||
            !json_object_is_type(annos, json_type_object))
                return 0;
        json_object_object_foreach(annos, key, val)
        {
                if (strncmp(key, SHIM_ANNO_PREFIX, strlen(SHIM_ANNO_PREFIX)) != 0 ||
                    strcmp(key, SHIM_ANNO_CONFIG_PATH) == 0)
                        continue;
                if (strncmp(key, SHIM_ANNO_HV_PREFIX, strlen(SHIM_ANNO_HV_PREFIX)) != 0)
                        return refuse_unsupported(key, err);
                const char *name = key + strlen(SHIM_ANNO_HV_PREFIX);
                const struct hv_anno *a = NULL;
                for (size_t i = 0; i < CC_ARRAY_SIZE(hv_annos) && !a; i++)
                        if (strcmp(name, hv_annos[i].name) == 0)
                                a = &hv_annos[i];
                if (!a)
                        return refuse_unsupported(key, err);
                if (!shim_anno_enabled(&c->anno, name))
                        return cc_error_set(
                                err, EINVAL,
                                "annotation %s refused: not enabled for this handler (\"%s\" in "
                                "[%s] enable_annotations of %s would allow it%s%s)",
                                key, name, cfg_section(c), cfg_file(c),
                                a->valid_key ? ", with the value in " : "",
                                a->valid_key ? a->valid_key : "");
                if (!json_object_is_type(val, json_type_string))
                        return cc_error_set(err, EINVAL, "annotation %s: not a string", key);
                int r = apply_one(c, a, key, json_object_get_string(val), err);
                if (r < 0)
                        return r;
        }
        return 0;
}
