/*
 * Fuzz target for the TOML reader: parse arbitrary bytes, then read every key of the result
 * through each typed getter (so the lookup, type errors and strv copies run on whatever the
 * parser accepted), then free. Errors are expected; crashes, leaks and UB are not.
 */
#include <stdint.h>
#include <string.h>

#include "cc/toml.h"

static void visit(const struct cc_toml_table *t, unsigned depth);

static void visit_value(const struct cc_toml_value *v, unsigned depth)
{
        if (v->type == CC_TOML_TABLE)
                visit(v->table, depth + 1);
        else if (v->type == CC_TOML_ARRAY)
                for (size_t i = 0; i < v->array.n; i++)
                        visit_value(&v->array.items[i], depth + 1);
}

/* Recursion follows the document, whose depth the parser bounds; the guard is belt and braces. */
static void visit(const struct cc_toml_table *t, unsigned depth)
{
        if (depth > 2 * CC_TOML_MAX_DEPTH + 2)
                __builtin_trap();
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                struct cc_error *err = NULL;
                const char *s;
                int64_t n;
                bool b;
                double d;
                const struct cc_toml_value *a;
                const struct cc_toml_table *sub;
                char **strv = NULL;
                if (cc_toml_table_get(t, e->key) != e)
                        __builtin_trap();
                (void)cc_toml_get_string(t, e->key, &s, &err);
                (void)cc_toml_get_int64(t, e->key, &n, &err);
                (void)cc_toml_get_int64_range(t, e->key, -1, 1, &n, &err);
                (void)cc_toml_get_bool(t, e->key, &b, &err);
                (void)cc_toml_get_double(t, e->key, &d, &err);
                (void)cc_toml_get_array(t, e->key, &a, &err);
                (void)cc_toml_get_table(t, e->key, &sub, &err);
                if (cc_toml_get_strv(t, e->key, &strv, &err) == 0)
                        cc_strv_free(strv);
                cc_error_free(err);
                visit_value(&e->value, depth);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cc_error *err = NULL;
        struct cc_toml_table *t = NULL;
        if (cc_toml_parse_string("fuzz.toml", (const char *)data, size, &t, &err) == 0) {
                visit(t, 0);
                cc_toml_free(t);
        } else if (!err || strncmp(cc_error_message(err), "fuzz.toml", 9) != 0) {
                /* Every parse error names the file. */
                __builtin_trap();
        }
        cc_error_free(err);
        return 0;
}
