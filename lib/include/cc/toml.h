#pragma once
/*
 * A strict TOML 1.0 reader for our configuration files (Kata's configuration-*.toml, the
 * snapshotter's config). Debian 12 packages no C TOML library, so this is our own.
 *
 * Supported: tables [a.b], arrays of tables [[x]], bare/quoted/dotted keys, basic and literal
 * strings (single- and multi-line, all TOML 1.0 escapes), integers (decimal with '_', 0x/0o/0b,
 * overflow detected), floats (incl. inf/nan), booleans, arrays (nested, mixed types), inline
 * tables, comments. Not supported: datetime values (rejected with "datetime values are not
 * supported") and strings containing U+0000 (rejected, our strings are NUL-terminated).
 *
 * Every error names the place: "file:line:col: expected '=' after key". Lines and columns are
 * 1-based; columns count characters (UTF-8 code points), a tab counts as one.
 *
 * Hostile input is bounded: CC_TOML_MAX_SIZE bytes of text and CC_TOML_MAX_DEPTH levels of
 * nesting (tables, arrays and inline tables together), so neither the parser's nor the
 * destructor's recursion can grow past a few kilobytes of stack.
 *
 * A parsed document is read-only. Keys keep the order they have in the file; each key and value
 * remembers where it was written, so callers can say "file:line: unknown key 'x'".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#define CC_TOML_MAX_SIZE  (4u << 20) /* bytes of text */
#define CC_TOML_MAX_DEPTH 64         /* nested tables/arrays */

enum cc_toml_type {
        CC_TOML_STRING,
        CC_TOML_INTEGER,
        CC_TOML_FLOAT,
        CC_TOML_BOOL,
        CC_TOML_ARRAY, /* a value array, or an array of tables made with [[x]] */
        CC_TOML_TABLE,
        _CC_TOML_TYPE_MAX,
};

struct cc_toml_table; /* opaque */

struct cc_toml_value;

struct cc_toml_array {
        struct cc_toml_value *items;
        size_t n;
};

/* Read-only view of a value; `line`/`col` is where the value starts. */
struct cc_toml_value {
        enum cc_toml_type type;
        unsigned line;
        unsigned col;
        unsigned flags; /* internal */
        union {
                char *string; /* UTF-8, no NUL inside */
                int64_t integer;
                double floating;
                bool boolean;
                struct cc_toml_array array;
                struct cc_toml_table *table;
        };
};

/* One key of a table; `line`/`col` is where the key (or its table header) is written. */
struct cc_toml_entry {
        const char *key;
        unsigned line;
        unsigned col;
        struct cc_toml_value value;
};

/* Parses a whole file (at most CC_TOML_MAX_SIZE bytes); errors are prefixed with `path`. */
int cc_toml_parse_file(const char *path, struct cc_toml_table **ret, struct cc_error **err);

/* Parses `len` bytes of `text` (need not be NUL-terminated); `name` prefixes errors. */
int cc_toml_parse_string(const char *name, const char *text, size_t len, struct cc_toml_table **ret,
                         struct cc_error **err);

/* Frees a document returned by a parse function (never a sub-table). NULL is fine. */
void cc_toml_free(struct cc_toml_table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cc_toml_table *, cc_toml_free)
#define _cleanup_toml_ _cleanup_(cc_toml_freep)

/* "string", "integer", "float", "boolean", "array", "table". */
const char *cc_toml_type_name(enum cc_toml_type type);

/* The name the document was parsed under (for messages about its values). */
const char *cc_toml_table_file(const struct cc_toml_table *t);
/* Where the table was defined: its header, its key, or 1:1 for the document itself. */
void cc_toml_table_position(const struct cc_toml_table *t, unsigned *line, unsigned *col);

/* Iteration in file order: entries 0 .. cc_toml_table_size()-1; NULL past the end. */
size_t cc_toml_table_size(const struct cc_toml_table *t);
const struct cc_toml_entry *cc_toml_table_entry(const struct cc_toml_table *t, size_t i);

/* The entry of exactly `key` (a single key, which may contain dots), or NULL. */
const struct cc_toml_entry *cc_toml_table_get(const struct cc_toml_table *t, const char *key);

/*
 * Typed getters. `path` is one key or a dotted path of keys ("hypervisor.qemu.path"); each
 * component is matched exactly (use cc_toml_table_get() for a key that itself contains a dot).
 * Return 0 and store the result; -ENOENT when a component is absent (no error set, *ret
 * untouched); -EINVAL when a value has the wrong type, with an error such as
 * "file:line:col: key 'default_vcpus' must be an integer, got string".
 * Returned pointers are borrowed from the document.
 */
int cc_toml_get_table(const struct cc_toml_table *t, const char *path,
                      const struct cc_toml_table **ret, struct cc_error **err);
int cc_toml_get_string(const struct cc_toml_table *t, const char *path, const char **ret,
                       struct cc_error **err);
int cc_toml_get_int64(const struct cc_toml_table *t, const char *path, int64_t *ret,
                      struct cc_error **err);
/* Like cc_toml_get_int64(), and -ERANGE with an error when outside [min, max]. */
int cc_toml_get_int64_range(const struct cc_toml_table *t, const char *path, int64_t min,
                            int64_t max, int64_t *ret, struct cc_error **err);
int cc_toml_get_bool(const struct cc_toml_table *t, const char *path, bool *ret,
                     struct cc_error **err);
/* Accepts floats and integers (`default_memory = 2048` reads as 2048.0). */
int cc_toml_get_double(const struct cc_toml_table *t, const char *path, double *ret,
                       struct cc_error **err);
/* Any array (value array or array of tables); the value has type CC_TOML_ARRAY. */
int cc_toml_get_array(const struct cc_toml_table *t, const char *path,
                      const struct cc_toml_value **ret, struct cc_error **err);
/* An array of strings, copied into a new NULL-terminated vector (free with cc_strv_free). */
int cc_toml_get_strv(const struct cc_toml_table *t, const char *path, char ***ret,
                     struct cc_error **err);
