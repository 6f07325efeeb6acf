/*
 * JSON policy engine; the format is described in policy.h.
 */
#include "guest-agent/policy/policy.h"

#include <fnmatch.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/policy/policy-internal.h"
#include "guest-agent/runtime/spec.h"

static void container_done(struct policy_container *c)
{
        free(c->name);
        free(c->image);
        cc_strv_free(c->args);
        cc_strv_free(c->env);
        free(c->cwd);
        cc_strv_free(c->masked_paths);
        cc_strv_free(c->readonly_paths);
        for (size_t i = 0; i < c->n_mounts; i++) {
                free(c->mounts[i].destination);
                free(c->mounts[i].type);
                free(c->mounts[i].source);
        }
        free(c->mounts);
        cc_strv_free(c->sysctls);
        cc_strv_free(c->devices);
        for (size_t i = 0; i < c->n_exec; i++)
                cc_strv_free(c->exec[i]);
        free(c->exec);
}

void agent_policy_free(struct agent_policy *p)
{
        if (!p)
                return;
        for (unsigned i = 0; i < p->n_rules; i++) {
                free(p->rules[i].name);
                cc_strv_free(p->rules[i].requests);
                cc_strv_free(p->rules[i].containers);
        }
        free(p->rules);
        for (size_t i = 0; i < p->n_containers; i++)
                container_done(&p->containers[i]);
        free(p->containers);
        cc_strv_free(p->copy_file);
        free(p);
}

static int parse_action(json_object *o, const char *where, bool *allow, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_string))
                return cc_error_set(err, EINVAL, "policy: %s must be \"allow\" or \"deny\"", where);
        const char *s = json_object_get_string(o);
        if (strcmp(s, "allow") == 0)
                *allow = true;
        else if (strcmp(s, "deny") == 0)
                *allow = false;
        else
                return cc_error_set(err, EINVAL, "policy: %s is '%s', not \"allow\" or \"deny\"",
                                    where, s);
        return 0;
}

/* An array of strings; `min` is 0 where an empty list means something ("no capabilities"). */
static int parse_strv_n(json_object *o, const char *where, size_t min, char ***ret,
                        struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_array))
                return cc_error_set(err, EINVAL, "policy: %s must be an array of strings", where);
        size_t n = json_object_array_length(o);
        if (n < min || n > POLICY_MAX_RULES)
                return cc_error_set(err, EINVAL, "policy: %s must hold %zu..%d strings", where, min,
                                    POLICY_MAX_RULES);
        _cleanup_strv_ char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(o, i);
                if (!json_object_is_type(e, json_type_string))
                        return cc_error_set(err, EINVAL, "policy: %s[%zu] is not a string", where,
                                            i);
                v[i] = strdup(json_object_get_string(e));
                if (!v[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static int parse_strv(json_object *o, const char *where, char ***ret, struct cc_error **err)
{
        return parse_strv_n(o, where, 1, ret, err);
}

static int parse_string(json_object *o, const char *where, char **ret, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_string))
                return cc_error_set(err, EINVAL, "policy: %s is not a string", where);
        free(*ret);
        *ret = strdup(json_object_get_string(o));
        return *ret ? 0 : -ENOMEM;
}

static int parse_bool(json_object *o, const char *where, bool *ret, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_boolean))
                return cc_error_set(err, EINVAL, "policy: %s is not true or false", where);
        *ret = json_object_get_boolean(o);
        return 0;
}

static int parse_u32(json_object *o, const char *where, uint32_t *ret, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0 ||
            json_object_get_int64(o) > UINT32_MAX)
                return cc_error_set(err, EINVAL, "policy: %s is not an integer 0..2^32-1", where);
        *ret = (uint32_t)json_object_get_int64(o);
        return 0;
}

static int parse_caps(json_object *o, const char *where, uint64_t *ret, struct cc_error **err)
{
        _cleanup_strv_ char **v = NULL;
        int r = parse_strv_n(o, where, 0, &v, err);
        if (r < 0)
                return r;
        uint64_t caps = 0;
        for (char **c = v; *c; c++) {
                int n;
                if (agent_cap_from_name(*c, &n) < 0)
                        return cc_error_set(err, EINVAL, "policy: %s: unknown capability '%s'",
                                            where, *c);
                caps |= 1ULL << n;
        }
        *ret = caps;
        return 0;
}

static int parse_namespaces(json_object *o, const char *where, unsigned *ret, struct cc_error **err)
{
        static const struct {
                const char *name;
                unsigned flag;
        } names[] = {{"pid", AGENT_NS_PID},
                     {"ipc", AGENT_NS_IPC},
                     {"uts", AGENT_NS_UTS},
                     {"mount", AGENT_NS_MOUNT},
                     {"cgroup", AGENT_NS_CGROUP}};
        _cleanup_strv_ char **v = NULL;
        int r = parse_strv_n(o, where, 0, &v, err);
        if (r < 0)
                return r;
        unsigned ns = 0;
        for (char **n = v; *n; n++) {
                size_t i = 0;
                while (i < CC_ARRAY_SIZE(names) && strcmp(names[i].name, *n) != 0)
                        i++;
                if (i == CC_ARRAY_SIZE(names))
                        return cc_error_set(err, EINVAL,
                                            "policy: %s: unknown namespace '%s' (pid, ipc, uts, "
                                            "mount, cgroup)",
                                            where, *n);
                ns |= names[i].flag;
        }
        *ret = ns;
        return 0;
}

static int parse_mounts(json_object *o, const char *where, struct policy_container *c,
                        struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_array) ||
            json_object_array_length(o) > AGENT_MAX_MOUNTS)
                return cc_error_set(err, EINVAL,
                                    "policy: %s must be an array of at most %d "
                                    "mounts",
                                    where, AGENT_MAX_MOUNTS);
        size_t n = json_object_array_length(o);
        c->mounts = calloc(n ? n : 1, sizeof(*c->mounts));
        if (!c->mounts)
                return -ENOMEM;
        c->has_mounts = true;
        char w[96];
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(o, i);
                struct policy_mount *pm = &c->mounts[c->n_mounts++];
                if (!json_object_is_type(m, json_type_object))
                        return cc_error_set(err, EINVAL, "policy: %s[%zu] is not an object", where,
                                            i);
                int r = 0;
                json_object_object_foreach(m, key, val)
                {
                        snprintf(w, sizeof(w), "%s[%zu].%s", where, i, key);
                        if (strcmp(key, "destination") == 0)
                                r = parse_string(val, w, &pm->destination, err);
                        else if (strcmp(key, "type") == 0)
                                r = parse_string(val, w, &pm->type, err);
                        else if (strcmp(key, "source") == 0)
                                r = parse_string(val, w, &pm->source, err);
                        else if (strcmp(key, "readonly") == 0)
                                r = parse_bool(val, w, &pm->readonly, err);
                        else
                                r = cc_error_set(err, EINVAL,
                                                 "policy: %s[%zu] has unknown key "
                                                 "'%s'",
                                                 where, i, key);
                        if (r < 0)
                                return r;
                }
                if (!pm->destination)
                        return cc_error_set(err, EINVAL, "policy: %s[%zu] has no destination",
                                            where, i);
        }
        return 0;
}

static int parse_exec(json_object *o, const char *where, struct policy_container *c,
                      struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_array) ||
            json_object_array_length(o) > POLICY_MAX_RULES)
                return cc_error_set(err, EINVAL, "policy: %s must be an array of argv arrays",
                                    where);
        size_t n = json_object_array_length(o);
        c->exec = calloc(n ? n : 1, sizeof(*c->exec));
        if (!c->exec)
                return -ENOMEM;
        char w[96];
        for (size_t i = 0; i < n; i++) {
                snprintf(w, sizeof(w), "%s[%zu]", where, i);
                int r = parse_strv(json_object_array_get_idx(o, i), w, &c->exec[c->n_exec], err);
                if (r < 0)
                        return r;
                c->n_exec++;
        }
        return 0;
}

static char **strv_copy(const char *const *v)
{
        size_t n = 0;
        while (v[n])
                n++;
        _cleanup_strv_ char **out = calloc(n + 1, sizeof(char *));
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(out[i] = strdup(v[i])))
                        return NULL;
        return TAKE_PTR(out);
}

/* Safe defaults of a container entry (policy.h): see agent_policy_check_create(). */
static int container_defaults(struct policy_container *c)
{
        c->caps = agent_policy_oci_default_caps;
        c->namespaces = AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS;
        c->masked_paths = strv_copy(agent_policy_default_masked);
        c->readonly_paths = strv_copy(agent_policy_default_readonly);
        return c->masked_paths && c->readonly_paths ? 0 : -ENOMEM;
}

static int parse_container(json_object *o, size_t idx, struct policy_container *c,
                           struct cc_error **err)
{
        char w[96];
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "policy: containers[%zu] is not an object", idx);
        int r = container_defaults(c);
        if (r < 0)
                return r;
        json_object_object_foreach(o, key, val)
        {
                snprintf(w, sizeof(w), "containers[%zu].%s", idx, key);
                if (strcmp(key, "name") == 0) {
                        r = parse_string(val, w, &c->name, err);
                } else if (strcmp(key, "image") == 0) {
                        r = parse_string(val, w, &c->image, err);
                } else if (strcmp(key, "args") == 0) {
                        cc_strv_free(TAKE_PTR(c->args));
                        r = parse_strv(val, w, &c->args, err);
                } else if (strcmp(key, "env") == 0) {
                        cc_strv_free(TAKE_PTR(c->env));
                        r = parse_strv_n(val, w, 0, &c->env, err);
                } else if (strcmp(key, "cwd") == 0) {
                        r = parse_string(val, w, &c->cwd, err);
                } else if (strcmp(key, "uid") == 0) {
                        r = parse_u32(val, w, &c->uid, err);
                        c->has_uid = true;
                } else if (strcmp(key, "gid") == 0) {
                        r = parse_u32(val, w, &c->gid, err);
                        c->has_gid = true;
                } else if (strcmp(key, "privileged") == 0) {
                        r = parse_bool(val, w, &c->privileged, err);
                } else if (strcmp(key, "capabilities") == 0) {
                        r = parse_caps(val, w, &c->caps, err);
                } else if (strcmp(key, "namespaces") == 0) {
                        r = parse_namespaces(val, w, &c->namespaces, err);
                } else if (strcmp(key, "sandbox_namespaces") == 0) {
                        r = parse_namespaces(val, w, &c->sandbox_namespaces, err);
                        c->has_sandbox_ns = true;
                        if (r >= 0 &&
                            (c->sandbox_namespaces & ~(AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS)))
                                r = cc_error_set(err, EINVAL,
                                                 "policy: %s: only pid, ipc and uts are the "
                                                 "pod's to share",
                                                 w);
                } else if (strcmp(key, "masked_paths") == 0) {
                        cc_strv_free(TAKE_PTR(c->masked_paths));
                        r = parse_strv_n(val, w, 0, &c->masked_paths, err);
                } else if (strcmp(key, "readonly_paths") == 0) {
                        cc_strv_free(TAKE_PTR(c->readonly_paths));
                        r = parse_strv_n(val, w, 0, &c->readonly_paths, err);
                } else if (strcmp(key, "mounts") == 0) {
                        if (c->has_mounts)
                                return cc_error_set(err, EINVAL, "policy: %s given twice", w);
                        r = parse_mounts(val, w, c, err);
                } else if (strcmp(key, "sysctls") == 0) {
                        cc_strv_free(TAKE_PTR(c->sysctls));
                        r = parse_strv_n(val, w, 0, &c->sysctls, err);
                } else if (strcmp(key, "devices") == 0) {
                        cc_strv_free(TAKE_PTR(c->devices));
                        r = parse_strv_n(val, w, 0, &c->devices, err);
                } else if (strcmp(key, "seccomp") == 0) {
                        r = parse_bool(val, w, &c->seccomp, err);
                } else if (strcmp(key, "readonly_rootfs") == 0) {
                        r = parse_bool(val, w, &c->readonly_rootfs, err);
                } else if (strcmp(key, "writable_sysfs") == 0) {
                        r = parse_bool(val, w, &c->writable_sysfs, err);
                } else if (strcmp(key, "exec") == 0) {
                        if (c->exec)
                                return cc_error_set(err, EINVAL, "policy: %s given twice", w);
                        r = parse_exec(val, w, c, err);
                } else {
                        r = cc_error_set(err, EINVAL,
                                         "policy: containers[%zu] has unknown key "
                                         "'%s'",
                                         idx, key);
                }
                if (r < 0)
                        return r;
        }
        if (!c->name)
                return cc_error_set(err, EINVAL, "policy: containers[%zu] has no \"name\"", idx);
        return 0;
}

static int parse_containers(json_object *o, struct agent_policy *p, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_array))
                return cc_error_set(err, EINVAL, "policy: containers is not an array");
        size_t n = json_object_array_length(o);
        if (n > POLICY_MAX_RULES)
                return cc_error_set(err, EINVAL, "policy: more than %d containers",
                                    POLICY_MAX_RULES);
        free(p->containers);
        p->containers = calloc(n ? n : 1, sizeof(*p->containers));
        if (!p->containers)
                return -ENOMEM;
        p->has_containers = true;
        for (size_t i = 0; i < n; i++) {
                p->n_containers++;
                int r = parse_container(json_object_array_get_idx(o, i), i, &p->containers[i], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_rule(json_object *o, unsigned idx, struct policy_rule *r, struct cc_error **err)
{
        char where[64];
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "policy: rules[%u] is not an object", idx);
        bool have_action = false;
        json_object_object_foreach(o, key, val)
        {
                int k;
                if (strcmp(key, "name") == 0) {
                        if (!json_object_is_type(val, json_type_string))
                                return cc_error_set(err, EINVAL,
                                                    "policy: rules[%u].name is not a string", idx);
                        r->name = strdup(json_object_get_string(val));
                        if (!r->name)
                                return -ENOMEM;
                } else if (strcmp(key, "requests") == 0) {
                        snprintf(where, sizeof(where), "rules[%u].requests", idx);
                        k = parse_strv(val, where, &r->requests, err);
                        if (k < 0)
                                return k;
                } else if (strcmp(key, "containers") == 0) {
                        snprintf(where, sizeof(where), "rules[%u].containers", idx);
                        k = parse_strv(val, where, &r->containers, err);
                        if (k < 0)
                                return k;
                } else if (strcmp(key, "action") == 0) {
                        snprintf(where, sizeof(where), "rules[%u].action", idx);
                        k = parse_action(val, where, &r->allow, err);
                        if (k < 0)
                                return k;
                        have_action = true;
                } else {
                        return cc_error_set(err, EINVAL, "policy: rules[%u] has unknown key '%s'",
                                            idx, key);
                }
        }
        if (!r->requests)
                return cc_error_set(err, EINVAL, "policy: rules[%u] has no \"requests\"", idx);
        if (!have_action)
                return cc_error_set(err, EINVAL, "policy: rules[%u] has no \"action\"", idx);
        if (!r->name && asprintf(&r->name, "rules[%u]", idx) < 0) {
                r->name = NULL;
                return -ENOMEM;
        }
        return 0;
}

int agent_policy_parse(const char *text, struct agent_policy **ret, struct cc_error **err)
{
        size_t len = strnlen(text, POLICY_MAX_BYTES + 1);
        if (len > POLICY_MAX_BYTES)
                return cc_error_set(err, EINVAL, "policy: larger than %u bytes", POLICY_MAX_BYTES);
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = root ? json_tokener_get_parse_end(tok) : 0;
        json_tokener_free(tok);
        /* One JSON value and nothing but white space after it. */
        bool ok = root && jerr == json_tokener_success;
        for (size_t i = end; ok && i < len; i++)
                ok = strchr(" \t\r\n", text[i]) != NULL;
        if (!ok) {
                json_object_put(root);
                return cc_error_set(err, EINVAL, "policy: invalid JSON (%s)",
                                    jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                                 : "trailing data");
        }

        _cleanup_(agent_policy_freep) struct agent_policy *p = calloc(1, sizeof(*p));
        int r = 0;
        if (!p) {
                json_object_put(root);
                return -ENOMEM;
        }
        p->default_allow = true;
        p->version = 1;
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return cc_error_set(err, EINVAL, "policy: top level is not an object");
        }
        json_object_object_foreach(root, key, val)
        {
                if (strcmp(key, "default") == 0) {
                        r = parse_action(val, "default", &p->default_allow, err);
                } else if (strcmp(key, "rules") == 0) {
                        if (!json_object_is_type(val, json_type_array)) {
                                r = cc_error_set(err, EINVAL, "policy: rules is not an array");
                                break;
                        }
                        size_t n = json_object_array_length(val);
                        if (n > POLICY_MAX_RULES) {
                                r = cc_error_set(err, EINVAL, "policy: more than %d rules",
                                                 POLICY_MAX_RULES);
                                break;
                        }
                        p->rules = calloc(n ? n : 1, sizeof(*p->rules));
                        if (!p->rules) {
                                r = -ENOMEM;
                                break;
                        }
                        for (size_t i = 0; i < n && r >= 0; i++) {
                                p->n_rules++;
                                r = parse_rule(json_object_array_get_idx(val, i), (unsigned)i,
                                               &p->rules[i], err);
                        }
                } else if (strcmp(key, "version") == 0) {
                        if (!json_object_is_type(val, json_type_int) ||
                            json_object_get_int(val) < 1 || json_object_get_int(val) > 2)
                                r = cc_error_set(err, EINVAL,
                                                 "policy: version must be 1 or 2 (this agent "
                                                 "knows versions 1 and 2)");
                        else
                                p->version = (unsigned)json_object_get_int(val);
                } else if (strcmp(key, "containers") == 0) {
                        if (p->has_containers)
                                r = cc_error_set(err, EINVAL, "policy: containers given twice");
                        else
                                r = parse_containers(val, p, err);
                } else if (strcmp(key, "copy_file") == 0) {
                        cc_strv_free(TAKE_PTR(p->copy_file));
                        r = parse_strv_n(val, "copy_file", 0, &p->copy_file, err);
                } else if (strcmp(key, "set_policy") == 0) {
                        r = parse_action(val, "set_policy", &p->set_policy, err);
                } else if (strcmp(key, "description") == 0) {
                        /* Informational, ignored. */
                } else {
                        r = cc_error_set(err, EINVAL, "policy: unknown key '%s'", key);
                }
                if (r < 0)
                        break;
        }
        json_object_put(root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int agent_policy_load(const char *path, struct agent_policy **ret, struct cc_error **err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                int e = errno;
                return cc_error_set(err, e, "policy: open '%s': %s", path, strerror(e));
        }
        _cleanup_free_ char *buf = malloc(POLICY_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = fread(buf, 1, POLICY_MAX_BYTES + 1, f);
        if (ferror(f))
                return cc_error_set(err, EIO, "policy: read '%s' failed", path);
        if (n > POLICY_MAX_BYTES)
                return cc_error_set(err, EINVAL, "policy: '%s' is larger than %u bytes", path,
                                    POLICY_MAX_BYTES);
        buf[n] = '\0';
        if (strlen(buf) != n)
                return cc_error_set(err, EINVAL, "policy: '%s' contains a NUL byte", path);
        return agent_policy_parse(buf, ret, err);
}

static bool strv_match(char **patterns, const char *s)
{
        for (char **p = patterns; *p; p++)
                if (fnmatch(*p, s, 0) == 0)
                        return true;
        return false;
}

int agent_policy_check(const struct agent_policy *policy, const char *request,
                       const char *container_id, struct cc_error **err)
{
        if (!policy)
                return 0;
        for (unsigned i = 0; i < policy->n_rules; i++) {
                const struct policy_rule *r = &policy->rules[i];
                if (!strv_match(r->requests, request))
                        continue;
                if (r->containers &&
                    (cc_isempty(container_id) || !strv_match(r->containers, container_id)))
                        continue;
                if (r->allow)
                        return 0;
                cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                  "%s denied by agent policy rule '%s'", request, r->name);
                return -EPERM;
        }
        if (policy->default_allow)
                return 0;
        cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                          "%s denied by agent policy rule 'default'", request);
        return -EPERM;
}

unsigned agent_policy_n_rules(const struct agent_policy *policy)
{
        return policy ? policy->n_rules : 0;
}
