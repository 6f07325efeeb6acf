/*
 * cc-kbs resource policy: a TOML document of ordered rules (format in kbs/README.md). The first
 * rule whose conditions all hold decides; `default` decides when none does. Conditions are
 * lists (any member matches): resource globs, TEE names, SNP measurements, initdata digests.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "cc/toml.h"

#include "kbs/kbs.h"

#define POLICY_MAX_RULES 1024

const char kbs_policy_default[] =
        "# cc-kbs built-in policy, used until one is set: like Trustee's default.rego,\n"
        "# every resource for every TEE except the sample TEE.\n"
        "version = 1\n"
        "default = \"deny\"\n"
        "\n"
        "[[rule]]\n"
        "resources = [\"*/*/*\"]\n"
        "tee = [\"sample\"]\n"
        "allow = false\n"
        "\n"
        "[[rule]]\n"
        "resources = [\"*/*/*\"]\n"
        "allow = true\n";

struct rule {
        char **resources;
        char **tee;         /* NULL: any */
        char **measurement; /* NULL: any */
        char **init_data;   /* NULL: any */
        bool allow;
};

struct kbs_policy {
        bool default_allow;
        size_t n;
        struct rule *rules;
};

void kbs_policy_free(struct kbs_policy *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                cc_strv_free(p->rules[i].resources);
                cc_strv_free(p->rules[i].tee);
                cc_strv_free(p->rules[i].measurement);
                cc_strv_free(p->rules[i].init_data);
        }
        free(p->rules);
        free(p);
}

static int lower_hex_list(char **v, const char *what, unsigned line, struct cc_error **err)
{
        for (char **s = v; s && *s; s++) {
                size_t n = strlen(*s);
                if (n == 0 || n % 2 || n > 128)
                        return cc_error_set(err, EINVAL,
                                            "policy:%u: %s '%.32s' must be hex "
                                            "(even length, at most 64 bytes)",
                                            line, what, *s);
                for (char *c = *s; *c; c++) {
                        if (!isxdigit((unsigned char)*c))
                                return cc_error_set(err, EINVAL,
                                                    "policy:%u: %s '%.32s' must be hex", line, what,
                                                    *s);
                        *c = (char)tolower((unsigned char)*c);
                }
        }
        return 0;
}

static int rule_parse(const struct cc_toml_table *t, struct rule *ru, struct cc_error **err)
{
        static const char *const known[] = {"resources", "tee", "measurement", "init_data",
                                            "allow"};
        unsigned line, col;
        cc_toml_table_position(t, &line, &col);
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                bool ok = false;
                for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                        ok |= strcmp(e->key, known[k]) == 0;
                if (!ok)
                        return cc_error_set(err, EINVAL, "policy:%u: unknown key '%.32s' in rule",
                                            e->line, e->key);
        }
        int r = cc_toml_get_strv(t, "resources", &ru->resources, err);
        if (r == -ENOENT || (r == 0 && !ru->resources[0]))
                return cc_error_set(err, EINVAL, "policy:%u: a rule needs 'resources'", line);
        if (r < 0)
                return r;
        for (char **s = ru->resources; *s; s++)
                if (strlen(*s) > 256 || strchr(*s, '\\'))
                        return cc_error_set(err, EINVAL, "policy:%u: bad resource pattern", line);
        r = cc_toml_get_strv(t, "tee", &ru->tee, err);
        if (r < 0 && r != -ENOENT)
                return r;
        for (char **s = ru->tee; s && *s; s++) {
                enum kbs_tee tee;
                if (kbs_tee_from_string(*s, &tee) < 0)
                        return cc_error_set(err, EINVAL, "policy:%u: unknown tee '%.32s'", line,
                                            *s);
        }
        r = cc_toml_get_strv(t, "measurement", &ru->measurement, err);
        if (r < 0 && r != -ENOENT)
                return r;
        r = lower_hex_list(ru->measurement, "measurement", line, err);
        if (r < 0)
                return r;
        r = cc_toml_get_strv(t, "init_data", &ru->init_data, err);
        if (r < 0 && r != -ENOENT)
                return r;
        r = lower_hex_list(ru->init_data, "init_data", line, err);
        if (r < 0)
                return r;
        r = cc_toml_get_bool(t, "allow", &ru->allow, err);
        if (r == -ENOENT)
                return cc_error_set(err, EINVAL, "policy:%u: a rule needs 'allow'", line);
        return r;
}

int kbs_policy_parse(const char *text, size_t len, struct kbs_policy **ret, struct cc_error **err)
{
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        int64_t version;
        const char *def;
        const struct cc_toml_value *rules = NULL;
        int r = cc_toml_parse_string("policy", text, len, &doc, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < cc_toml_table_size(doc); i++) {
                const char *k = cc_toml_table_entry(doc, i)->key;
                if (strcmp(k, "version") && strcmp(k, "default") && strcmp(k, "rule"))
                        return cc_error_set(err, EINVAL, "policy:%u: unknown key '%.32s'",
                                            cc_toml_table_entry(doc, i)->line, k);
        }
        r = cc_toml_get_int64(doc, "version", &version, err);
        if (r == -ENOENT || (r == 0 && version != 1))
                return cc_error_set(err, EINVAL, "policy: 'version = 1' is required");
        if (r < 0)
                return r;
        r = cc_toml_get_string(doc, "default", &def, err);
        if (r == -ENOENT)
                def = "deny";
        else if (r < 0)
                return r;
        if (strcmp(def, "deny") != 0 && strcmp(def, "allow") != 0)
                return cc_error_set(err, EINVAL, "policy: default must be \"deny\" or \"allow\"");
        r = cc_toml_get_array(doc, "rule", &rules, err);
        if (r < 0 && r != -ENOENT)
                return r;
        size_t n = rules ? rules->array.n : 0;
        if (n > POLICY_MAX_RULES)
                return cc_error_set(err, EINVAL, "policy: more than %d rules", POLICY_MAX_RULES);
        _cleanup_(kbs_policy_freep) struct kbs_policy *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->rules = calloc(n ? n : 1, sizeof(*p->rules));
        if (!p->rules)
                return -ENOMEM;
        p->default_allow = strcmp(def, "allow") == 0;
        for (size_t i = 0; i < n; i++) {
                if (rules->array.items[i].type != CC_TOML_TABLE)
                        return cc_error_set(err, EINVAL, "policy: 'rule' must be [[rule]] tables");
                p->n = i + 1;
                r = rule_parse(rules->array.items[i].table, &p->rules[i], err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static bool any_glob(char **v, const char *s)
{
        for (; *v; v++)
                if (fnmatch(*v, s, FNM_PATHNAME) == 0)
                        return true;
        return false;
}

/* NULL list: no condition; otherwise `s` must equal a member (case-insensitively for hex). */
static bool any_equal(char **v, const char *s)
{
        if (!v)
                return true;
        if (!s)
                return false;
        for (; *v; v++)
                if (strcasecmp(*v, s) == 0)
                        return true;
        return false;
}

bool kbs_policy_allows(const struct kbs_policy *p, const struct kbs_policy_input *in, char *why,
                       size_t why_size)
{
        for (size_t i = 0; i < p->n; i++) {
                const struct rule *ru = &p->rules[i];
                if (any_glob(ru->resources, in->resource) && any_equal(ru->tee, in->tee) &&
                    any_equal(ru->measurement, in->measurement) &&
                    any_equal(ru->init_data, in->init_data)) {
                        snprintf(why, why_size, "rule %zu", i + 1);
                        return ru->allow;
                }
        }
        snprintf(why, why_size, "default");
        return p->default_allow;
}
