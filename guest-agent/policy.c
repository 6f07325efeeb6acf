/*
 * JSON policy engine; the format is described in policy.h.
 */
#include "guest-agent/policy.h"

#include <fnmatch.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#define POLICY_MAX_BYTES (1u << 20)
#define POLICY_MAX_RULES 1024

struct policy_rule {
        char *name;
        char **requests;   /* NULL-terminated */
        char **containers; /* NULL-terminated, or NULL: any */
        bool allow;
};

struct agent_policy {
        bool default_allow;
        struct policy_rule *rules;
        unsigned n_rules;
};

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

static int parse_strv(json_object *o, const char *where, char ***ret, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_array))
                return cc_error_set(err, EINVAL, "policy: %s must be an array of strings", where);
        size_t n = json_object_array_length(o);
        if (n == 0 || n > POLICY_MAX_RULES)
                return cc_error_set(err, EINVAL, "policy: %s must hold 1..%d strings", where,
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
                } else if (strcmp(key, "version") == 0 || strcmp(key, "description") == 0) {
                        /* Informational keys, ignored. */
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
