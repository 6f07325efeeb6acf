/*
 * Strict TOML 1.0 reader for our configuration files (see cc/toml.h for what it accepts).
 *
 * Debian 12 packages no C TOML library (tomlc99, toml++ and friends are not in the archive), so
 * this is our own: a hand-written single-pass parser over a bounded buffer. It is strict on
 * purpose: a configuration file that another TOML reader would read differently is an error
 * here, never a guess. Datetime values are rejected ("datetime values are not supported"):
 * neither Kata's nor our configuration uses them.
 *
 * Input is hostile as far as this file is concerned (a config file may be written by anyone
 * who can write to the config directory, and it is fuzzed): every read is bounded by the
 * length, the size is capped at CC_TOML_MAX_SIZE, nesting at CC_TOML_MAX_DEPTH (so the bounded
 * recursion of the value parser and of the destructor needs a few kilobytes of stack at most),
 * and tables index their keys with a hash once they grow, so a file with a million keys costs
 * linear time, not quadratic.
 */
#include "cc/fileio.h"
#include "cc/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How a table came to exist; TOML's redefinition rules depend on it. */
enum table_kind {
        TABLE_ROOT,
        TABLE_IMPLICIT,   /* made on the way to a header's table: [a.b] makes 'a' */
        TABLE_HEADER,     /* defined by its own [header] */
        TABLE_DOTTED,     /* made by a dotted key: a.b = 1 makes 'a' */
        TABLE_INLINE,     /* { ... }: complete once written */
        TABLE_ARRAY_ELEM, /* one element of an array of tables [[x]] */
};

#define VALUE_TABLE_ARRAY 1u /* an array made by [[x]] headers (appendable) */

#define INDEX_MIN_ENTRIES 8 /* tables with fewer keys are searched linearly */

struct cc_toml_table {
        struct cc_toml_entry *entries; /* in file order */
        size_t n, cap;
        uint32_t *index;  /* open addressing: entry number + 1, 0 = empty slot */
        size_t index_cap; /* 0, or a power of two >= 2 * n */
        const char *file; /* the document's name (owned by the root) */
        char *owned_file; /* root only */
        unsigned line, col;
        unsigned depth;
        enum table_kind kind;
};

/* ---- tables ------------------------------------------------------------------------------ */

static uint64_t hash_key(const char *k)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (; *k; k++) {
                h ^= (unsigned char)*k;
                h *= 1099511628211ull;
        }
        return h;
}

static void index_put(uint32_t *index, size_t cap, const char *key, uint32_t slot)
{
        size_t mask = cap - 1;
        size_t h = hash_key(key) & mask;
        while (index[h])
                h = (h + 1) & mask;
        index[h] = slot;
}

static int table_reindex(struct cc_toml_table *t, size_t cap)
{
        uint32_t *index = calloc(cap, sizeof(*index));
        if (!index)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++)
                index_put(index, cap, t->entries[i].key, (uint32_t)(i + 1));
        free(t->index);
        t->index = index;
        t->index_cap = cap;
        return 0;
}

static struct cc_toml_entry *table_find(const struct cc_toml_table *t, const char *key)
{
        if (!t->index) {
                for (size_t i = 0; i < t->n; i++)
                        if (strcmp(t->entries[i].key, key) == 0)
                                return &t->entries[i];
                return NULL;
        }
        size_t mask = t->index_cap - 1;
        for (size_t h = hash_key(key) & mask;; h = (h + 1) & mask) {
                uint32_t slot = t->index[h];
                if (!slot)
                        return NULL;
                if (strcmp(t->entries[slot - 1].key, key) == 0)
                        return &t->entries[slot - 1];
        }
}

/* Appends an absent key; on success the table owns `key` and the contents of `v`. */
static int table_add(struct cc_toml_table *t, char *key, unsigned line, unsigned col,
                     const struct cc_toml_value *v)
{
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 4;
                struct cc_toml_entry *e = reallocarray(t->entries, cap, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                t->entries = e;
                t->cap = cap;
        }
        if (t->n + 1 >= INDEX_MIN_ENTRIES && 2 * (t->n + 1) > t->index_cap) {
                size_t cap = t->index_cap ? t->index_cap * 2 : 4 * INDEX_MIN_ENTRIES;
                int r = table_reindex(t, cap);
                if (r < 0)
                        return r;
        }
        t->entries[t->n] = (struct cc_toml_entry){
                .key = key,
                .line = line,
                .col = col,
                .value = *v,
        };
        t->n++;
        if (t->index)
                index_put(t->index, t->index_cap, key, (uint32_t)t->n);
        return 0;
}

static void table_free(struct cc_toml_table *t);

static void value_clear(struct cc_toml_value *v)
{
        switch (v->type) {
        case CC_TOML_STRING:
                free(v->string);
                break;
        case CC_TOML_ARRAY:
                for (size_t i = 0; i < v->array.n; i++)
                        value_clear(&v->array.items[i]);
                free(v->array.items);
                break;
        case CC_TOML_TABLE:
                table_free(v->table);
                break;
        default:
                break;
        }
        *v = (struct cc_toml_value){.type = CC_TOML_BOOL};
}

/* Recursion here is bounded by CC_TOML_MAX_DEPTH, which the parser enforces. */
static void table_free(struct cc_toml_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++) {
                free((char *)t->entries[i].key);
                value_clear(&t->entries[i].value);
        }
        free(t->entries);
        free(t->index);
        free(t->owned_file);
        free(t);
}

void cc_toml_free(struct cc_toml_table *t)
{
        table_free(t);
}

/* ---- parser state, positions and errors ------------------------------------------------- */

struct pos {
        unsigned line, col;
};

struct parser {
        const char *name;
        const char *file; /* the root's copy of name, for tables */
        const char *s;
        size_t len, i;
        unsigned line;     /* 1-based line of s[i] */
        size_t line_start; /* offset of the first byte of that line */
        /* Column cache, so that positions on one very long line cost linear time overall. */
        size_t col_line_start, col_off;
        unsigned col_val;
        struct cc_toml_table *root, *cur;
        struct cc_error **err;
};

/* Position of offset `off`, which must be on the current line; columns count code points. */
static struct pos pos_at(struct parser *p, size_t off)
{
        if (p->col_line_start != p->line_start || off < p->col_off) {
                p->col_line_start = p->line_start;
                p->col_off = p->line_start;
                p->col_val = 1;
        }
        for (; p->col_off < off; p->col_off++)
                if (((unsigned char)p->s[p->col_off] & 0xC0) != 0x80)
                        p->col_val++;
        return (struct pos){p->line, p->col_val};
}

static struct pos here(struct parser *p)
{
        return pos_at(p, p->i);
}

static int fail(struct parser *p, struct pos at, const char *fmt, ...) _printf_(3, 4);
static int fail(struct parser *p, struct pos at, const char *fmt, ...)
{
        char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return cc_error_set(p->err, ENOMEM, "%s: out of memory", p->name);
        int r = cc_error_set(p->err, EINVAL, "%s:%u:%u: %s", p->name, at.line, at.col, msg);
        free(msg);
        return r;
}

static int oom(struct parser *p)
{
        return cc_error_set(p->err, ENOMEM, "%s: out of memory", p->name);
}

static int peek_at(const struct parser *p, size_t k)
{
        return p->i + k < p->len ? (unsigned char)p->s[p->i + k] : -1;
}

static int peek(const struct parser *p)
{
        return peek_at(p, 0);
}

static bool at_newline(const struct parser *p)
{
        return peek(p) == '\n' || (peek(p) == '\r' && peek_at(p, 1) == '\n');
}

/* Consumes "\n" or "\r\n" (the caller checked at_newline()). */
static void eat_newline(struct parser *p)
{
        p->i += peek(p) == '\r' ? 2 : 1;
        p->line++;
        p->line_start = p->i;
}

static void skip_ws(struct parser *p)
{
        while (peek(p) == ' ' || peek(p) == '\t')
                p->i++;
}

/* Control characters TOML allows nowhere but as tab (and as newlines where lines may break). */
static bool is_control(int c)
{
        return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static int lone_cr(struct parser *p)
{
        return fail(p, here(p), "carriage return must be followed by a newline");
}

/* Skips a comment up to (not including) its newline. */
static int skip_comment(struct parser *p)
{
        p->i++; /* '#' */
        while (p->i < p->len && !at_newline(p)) {
                int c = peek(p);
                if (c == '\r')
                        return lone_cr(p);
                if (is_control(c))
                        return fail(p, here(p), "control character U+%04X in comment", c);
                p->i++;
        }
        return 0;
}

/* Skips blanks, comments and newlines (inside arrays). */
static int skip_ws_nl(struct parser *p)
{
        for (;;) {
                skip_ws(p);
                if (peek(p) == '#') {
                        int r = skip_comment(p);
                        if (r < 0)
                                return r;
                } else if (at_newline(p)) {
                        eat_newline(p);
                } else if (peek(p) == '\r') {
                        return lone_cr(p);
                } else {
                        return 0;
                }
        }
}

/* After a key/value pair or a header: blanks, an optional comment, then newline or end. */
static int expect_eol(struct parser *p, const char *after)
{
        skip_ws(p);
        if (peek(p) == '#') {
                int r = skip_comment(p);
                if (r < 0)
                        return r;
        }
        if (peek(p) < 0)
                return 0;
        if (at_newline(p)) {
                eat_newline(p);
                return 0;
        }
        if (peek(p) == '\r')
                return lone_cr(p);
        return fail(p, here(p), "expected newline after %s", after);
}

/* The whole input must be UTF-8 (TOML requires it); checked once, before parsing. */
static int check_utf8(struct parser *p)
{
        const unsigned char *s = (const unsigned char *)p->s;
        unsigned line = 1;
        size_t line_start = 0;
        for (size_t i = 0; i < p->len;) {
                unsigned c = s[i];
                if (c < 0x80) {
                        if (c == '\n') {
                                line++;
                                line_start = i + 1;
                        }
                        i++;
                        continue;
                }
                size_t need;
                uint32_t cp, min;
                if ((c & 0xE0) == 0xC0) {
                        need = 1, cp = c & 0x1F, min = 0x80;
                } else if ((c & 0xF0) == 0xE0) {
                        need = 2, cp = c & 0x0F, min = 0x800;
                } else if ((c & 0xF8) == 0xF0) {
                        need = 3, cp = c & 0x07, min = 0x10000;
                } else {
                        goto bad;
                }
                if (p->len - i <= need)
                        goto bad;
                for (size_t j = 1; j <= need; j++) {
                        if ((s[i + j] & 0xC0) != 0x80)
                                goto bad;
                        cp = cp << 6 | (s[i + j] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        goto bad;
                i += need + 1;
                continue;
        bad:;
                unsigned col = 1;
                for (size_t j = line_start; j < i; j++)
                        if ((s[j] & 0xC0) != 0x80)
                                col++;
                return fail(p, (struct pos){line, col}, "invalid UTF-8");
        }
        return 0;
}

/* ---- strings ----------------------------------------------------------------------------- */

struct buf {
        char *p;
        size_t n, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
        if (b->cap - b->n <= n) {
                size_t cap = b->cap ? b->cap : 32;
                while (cap - b->n <= n)
                        cap *= 2;
                char *q = realloc(b->p, cap);
                if (!q)
                        return -ENOMEM;
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
        return 0;
}


static size_t utf8_encode(uint32_t cp, char out[4])
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xC0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xE0 | cp >> 12);
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
}

/* An escape sequence in a basic string; p->i is at the backslash. */
static int parse_escape(struct parser *p, struct buf *b)
{
        struct pos at = here(p);
        int c = peek_at(p, 1);
        const char *simple = NULL;
        switch (c) {
        case 'b':
                simple = "\b";
                break;
        case 't':
                simple = "\t";
                break;
        case 'n':
                simple = "\n";
                break;
        case 'f':
                simple = "\f";
                break;
        case 'r':
                simple = "\r";
                break;
        case '"':
                simple = "\"";
                break;
        case '\\':
                simple = "\\";
                break;
        case 'u':
        case 'U': {
                int digits = c == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int k = 0; k < digits; k++) {
                        int h = cc_hexval(peek_at(p, 2 + (size_t)k));
                        if (h < 0)
                                return fail(p, at, "invalid escape: \\%c needs %d hex digits", c,
                                            digits);
                        cp = cp << 4 | (uint32_t)h;
                }
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return fail(p, at, "escape \\%c%0*X is not a Unicode scalar value", c,
                                    digits, cp);
                if (cp == 0)
                        return fail(p, at, "NUL characters are not supported in strings");
                char out[4];
                p->i += 2 + (size_t)digits;
                return buf_put(b, out, utf8_encode(cp, out)) < 0 ? oom(p) : 0;
        }
        default:
                if (c > 0x20 && c < 0x7f)
                        return fail(p, at, "invalid escape sequence '\\%c'", c);
                return fail(p, at, "invalid escape sequence");
        }
        p->i += 2;
        return buf_put(b, simple, 1) < 0 ? oom(p) : 0;
}

/*
 * The body of a single-line string up to its closing delimiter `q` (p->i is just after the
 * opening one). Basic strings ('"') take escapes, literal strings ('\'') do not.
 */
static int parse_line_string(struct parser *p, struct pos start, char q, struct buf *b)
{
        for (;;) {
                size_t span = p->i;
                while (span < p->len) {
                        int c = (unsigned char)p->s[span];
                        if (c == q || (c == '\\' && q == '"') || is_control(c))
                                break;
                        span++;
                }
                if (span > p->i && buf_put(b, p->s + p->i, span - p->i) < 0)
                        return oom(p);
                p->i = span;
                int c = peek(p);
                if (c < 0 || c == '\n' || c == '\r')
                        return fail(p, start, "unterminated string");
                if (c == q) {
                        p->i++;
                        return 0;
                }
                if (c == '\\') {
                        int r = parse_escape(p, b);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (c == 0)
                        return fail(p, here(p), "NUL characters are not supported in strings");
                return fail(p, here(p), "control character U+%04X in string", c);
        }
}

/* A multi-line string body up to its closing """ or ''' (p->i is after the opening one). */
static int parse_multiline_string(struct parser *p, struct pos start, char q, struct buf *b)
{
        /* A newline right after the opening delimiter is not part of the string. */
        if (at_newline(p))
                eat_newline(p);
        for (;;) {
                int c = peek(p);
                if (c < 0)
                        return fail(p, start, "unterminated multi-line string");
                if (c == q) {
                        size_t k = 0;
                        while (peek_at(p, k) == q)
                                k++;
                        if (k >= 3) {
                                /* Up to two quotes may end the content just before """. */
                                if (k > 5)
                                        return fail(p, pos_at(p, p->i + 5),
                                                    "too many quotes after a multi-line string");
                                if (buf_put(b, p->s + p->i, k - 3) < 0)
                                        return oom(p);
                                p->i += k;
                                return 0;
                        }
                        if (buf_put(b, p->s + p->i, k) < 0)
                                return oom(p);
                        p->i += k;
                        continue;
                }
                if (c == '\\' && q == '"') {
                        /* A backslash ending a line trims it and the blanks that follow. */
                        size_t k = 1;
                        while (peek_at(p, k) == ' ' || peek_at(p, k) == '\t')
                                k++;
                        if (peek_at(p, k) == '\n' ||
                            (peek_at(p, k) == '\r' && peek_at(p, k + 1) == '\n')) {
                                p->i += k;
                                for (;;) {
                                        skip_ws(p);
                                        if (!at_newline(p))
                                                break;
                                        eat_newline(p);
                                }
                                continue;
                        }
                        int r = parse_escape(p, b);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (at_newline(p)) {
                        /* CRLF reads as LF. */
                        eat_newline(p);
                        if (buf_put(b, "\n", 1) < 0)
                                return oom(p);
                        continue;
                }
                if (c == '\r')
                        return lone_cr(p);
                if (c == 0)
                        return fail(p, here(p), "NUL characters are not supported in strings");
                if (is_control(c))
                        return fail(p, here(p), "control character U+%04X in string", c);
                if (buf_put(b, p->s + p->i, 1) < 0)
                        return oom(p);
                p->i++;
        }
}

/* Any string at p->i; multi-line forms only where `multiline` (values, not keys). */
static int parse_string(struct parser *p, bool multiline, char **ret)
{
        struct pos start = here(p);
        char q = (char)peek(p);
        struct buf b = {0};
        int r;
        if (peek_at(p, 1) == q && peek_at(p, 2) == q) {
                if (!multiline) {
                        return fail(p, start, "a multi-line string cannot be a key");
                }
                p->i += 3;
                r = parse_multiline_string(p, start, q, &b);
        } else {
                p->i++;
                r = parse_line_string(p, start, q, &b);
        }
        if (r < 0) {
                free(b.p);
                return r;
        }
        if (!b.p) {
                b.p = strdup("");
                if (!b.p)
                        return oom(p);
        }
        *ret = b.p;
        return 0;
}

/* ---- keys -------------------------------------------------------------------------------- */

struct key {
        char **parts;
        struct pos *pos;
        size_t n;
};

static void key_done(struct key *k)
{
        for (size_t i = 0; i < k->n; i++)
                free(k->parts[i]);
        free(k->parts);
        free(k->pos);
        *k = (struct key){0};
}

static bool is_bare_key_char(int c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

/* A simple or dotted key; leaves p->i after the trailing blanks. */
static int parse_key(struct parser *p, struct key *k)
{
        for (;;) {
                skip_ws(p);
                struct pos at = here(p);
                int c = peek(p);
                char *part = NULL;
                if (c == '"' || c == '\'') {
                        int r = parse_string(p, false, &part);
                        if (r < 0)
                                return r;
                } else if (is_bare_key_char(c)) {
                        size_t start = p->i;
                        while (is_bare_key_char(peek(p)))
                                p->i++;
                        part = strndup(p->s + start, p->i - start);
                        if (!part)
                                return oom(p);
                } else {
                        return fail(p, at, "expected a key");
                }
                /* Each dotted part but the last makes a table level. */
                if (k->n >= CC_TOML_MAX_DEPTH) {
                        free(part);
                        return fail(p, at, "nesting deeper than %d levels", CC_TOML_MAX_DEPTH);
                }
                char **parts = reallocarray(k->parts, k->n + 1, sizeof(*parts));
                if (parts)
                        k->parts = parts;
                struct pos *pos = reallocarray(k->pos, k->n + 1, sizeof(*pos));
                if (pos)
                        k->pos = pos;
                if (!parts || !pos) {
                        free(part);
                        return oom(p);
                }
                k->parts[k->n] = part;
                k->pos[k->n] = at;
                k->n++;
                skip_ws(p);
                if (peek(p) != '.')
                        return 0;
                p->i++;
        }
}

/* "a.b.c" for parts 0..upto of k, for messages. */
static char *key_name(const struct key *k, size_t upto)
{
        struct buf b = {0};
        for (size_t i = 0; i <= upto && i < k->n; i++) {
                if ((i && buf_put(&b, ".", 1) < 0) ||
                    buf_put(&b, k->parts[i], strlen(k->parts[i])) < 0) {
                        free(b.p);
                        return NULL;
                }
        }
        return b.p;
}

static const char *type_article(enum cc_toml_type t)
{
        static const char *const names[_CC_TOML_TYPE_MAX] = {
                [CC_TOML_STRING] = "a string", [CC_TOML_INTEGER] = "an integer",
                [CC_TOML_FLOAT] = "a float",   [CC_TOML_BOOL] = "a boolean",
                [CC_TOML_ARRAY] = "an array",  [CC_TOML_TABLE] = "a table",
        };
        return t < _CC_TOML_TYPE_MAX ? names[t] : "an unknown value";
}

const char *cc_toml_type_name(enum cc_toml_type type)
{
        static const char *const names[_CC_TOML_TYPE_MAX] = {
                [CC_TOML_STRING] = "string", [CC_TOML_INTEGER] = "integer",
                [CC_TOML_FLOAT] = "float",   [CC_TOML_BOOL] = "boolean",
                [CC_TOML_ARRAY] = "array",   [CC_TOML_TABLE] = "table",
        };
        return type < _CC_TOML_TYPE_MAX ? names[type] : "unknown";
}

/* Line where an entry was first defined (a table's own definition for tables). */
static unsigned defined_line(const struct cc_toml_entry *e)
{
        return e->value.type == CC_TOML_TABLE ? e->value.table->line : e->line;
}

static int new_table(struct parser *p, unsigned depth, enum table_kind kind, struct pos at,
                     struct cc_toml_table **ret)
{
        if (depth > CC_TOML_MAX_DEPTH)
                return fail(p, at, "nesting deeper than %d levels", CC_TOML_MAX_DEPTH);
        struct cc_toml_table *t = calloc(1, sizeof(*t));
        if (!t)
                return oom(p);
        t->file = p->file;
        t->line = at.line;
        t->col = at.col;
        t->depth = depth;
        t->kind = kind;
        *ret = t;
        return 0;
}

/* Creates table `kind` under key part k->parts[j] of `parent` (absent so far). */
static int add_table(struct parser *p, struct cc_toml_table *parent, struct key *k, size_t j,
                     enum table_kind kind, struct pos at, struct cc_toml_table **ret)
{
        struct cc_toml_table *t = NULL;
        int r = new_table(p, parent->depth + 1, kind, at, &t);
        if (r < 0)
                return r;
        struct cc_toml_value v = {
                .type = CC_TOML_TABLE, .line = at.line, .col = at.col, .table = t};
        /* A copy: the key stays whole for later messages. */
        char *name = strdup(k->parts[j]);
        if (!name || table_add(parent, name, k->pos[j].line, k->pos[j].col, &v) < 0) {
                free(name);
                table_free(t);
                return oom(p);
        }
        *ret = t;
        return 0;
}

/* ---- values ------------------------------------------------------------------------------ */

static int parse_value(struct parser *p, unsigned parent_depth, struct cc_toml_value *v);
static int parse_keyval(struct parser *p, struct cc_toml_table *t);

static bool is_bare_value_char(int c)
{
        return is_bare_key_char(c) || c == '+' || c == '.' || c == ':';
}

static bool is_digit(int c, int base)
{
        if (base == 16)
                return cc_hexval(c) >= 0;
        return c >= '0' && c < '0' + base;
}

static bool tok_eq(const char *tok, size_t n, const char *s)
{
        return strlen(s) == n && memcmp(tok, s, n) == 0;
}

/* YYYY-... or HH:... : the start of a TOML date or time, which we do not support. */
static bool looks_like_datetime(const char *tok, size_t n)
{
        if (n >= 5 && is_digit(tok[0], 10) && is_digit(tok[1], 10) && is_digit(tok[2], 10) &&
            is_digit(tok[3], 10) && tok[4] == '-')
                return true;
        return n >= 3 && is_digit(tok[0], 10) && is_digit(tok[1], 10) && tok[2] == ':';
}

/*
 * Digits of `base` with '_' only between two digits; the value must not exceed `limit`.
 * Returns the number of characters that are digits or '_' (the caller checks the rest).
 */
static int parse_digits(struct parser *p, struct pos at, const char *s, size_t n, int base,
                        uint64_t limit, uint64_t *ret)
{
        uint64_t u = 0;
        if (n == 0 || !is_digit(s[0], base))
                return fail(p, at, "invalid number: expected a digit");
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '_') {
                        if (i + 1 == n || !is_digit(s[i + 1], base))
                                return fail(p, at, "'_' must be between digits");
                        continue;
                }
                if (!is_digit(s[i], base))
                        return fail(p, at, "invalid character '%c' in integer", s[i]);
                uint64_t d = (uint64_t)cc_hexval(s[i]);
                if (u > (limit - d) / (uint64_t)base)
                        return fail(p, at, "integer out of range");
                u = u * (uint64_t)base + d;
        }
        *ret = u;
        return 0;
}

/* Length of a run of decimal digits and '_'; *ok tells whether each '_' sits between digits. */
static size_t digit_run(const char *s, size_t n, bool *ok)
{
        size_t i = 0;
        *ok = n > 0 && is_digit(s[0], 10);
        while (i < n && (is_digit(s[i], 10) || s[i] == '_')) {
                if (s[i] == '_' && (i + 1 >= n || !is_digit(s[i + 1], 10)))
                        *ok = false;
                i++;
        }
        return i;
}

static int parse_float(struct parser *p, struct pos at, const char *tok, size_t n, size_t k,
                       struct cc_toml_value *v)
{
        bool ok;
        size_t i = k;
        size_t run = digit_run(tok + i, n - i, &ok);
        if (!ok)
                return fail(p, at, "invalid float");
        if (tok[i] == '0' && run > 1)
                return fail(p, at, "leading zeros are not allowed");
        i += run;
        if (i < n && tok[i] == '.') {
                i++;
                run = digit_run(tok + i, n - i, &ok);
                if (!ok)
                        return fail(p, at, "invalid float: expected digits after '.'");
                i += run;
        }
        if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
                i++;
                if (i < n && (tok[i] == '+' || tok[i] == '-'))
                        i++;
                run = digit_run(tok + i, n - i, &ok);
                if (!ok)
                        return fail(p, at, "invalid float: expected digits in the exponent");
                i += run;
        }
        if (i != n)
                return fail(p, at, "invalid float");

        _cleanup_free_ char *clean = malloc(n + 1);
        if (!clean)
                return oom(p);
        size_t m = 0;
        for (i = 0; i < n; i++)
                if (tok[i] != '_')
                        clean[m++] = tok[i];
        clean[m] = 0;
        /* strtod() follows LC_NUMERIC; TOML's decimal point is always '.'. */
        locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c_locale)
                return oom(p);
        char *end = NULL;
        double d = strtod_l(clean, &end, c_locale);
        freelocale(c_locale);
        if (!end || *end)
                return fail(p, at, "invalid float");
        if (isinf(d))
                return fail(p, at, "float out of range");
        v->type = CC_TOML_FLOAT;
        v->floating = d;
        return 0;
}

static int parse_number(struct parser *p, struct pos at, const char *tok, size_t n,
                        struct cc_toml_value *v)
{
        size_t k = 0;
        bool neg = false;
        if (tok[0] == '+' || tok[0] == '-') {
                neg = tok[0] == '-';
                k = 1;
        }
        if (n - k >= 2 && tok[k] == '0' &&
            (tok[k + 1] == 'x' || tok[k + 1] == 'o' || tok[k + 1] == 'b')) {
                if (k)
                        return fail(p, at, "hexadecimal, octal and binary integers take no sign");
                int base = tok[k + 1] == 'x' ? 16 : tok[k + 1] == 'o' ? 8 : 2;
                uint64_t u;
                int r = parse_digits(p, at, tok + 2, n - 2, base, INT64_MAX, &u);
                if (r < 0)
                        return r;
                v->type = CC_TOML_INTEGER;
                v->integer = (int64_t)u;
                return 0;
        }
        if (memchr(tok + k, '.', n - k) || memchr(tok + k, 'e', n - k) ||
            memchr(tok + k, 'E', n - k))
                return parse_float(p, at, tok, n, k, v);
        if (tok[k] == '0' && n - k > 1)
                return fail(p, at, "leading zeros are not allowed");
        uint64_t u;
        int r = parse_digits(p, at, tok + k, n - k, 10, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX,
                             &u);
        if (r < 0)
                return r;
        v->type = CC_TOML_INTEGER;
        v->integer = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
        return 0;
}

/* Booleans, numbers, inf/nan: a run of bare characters. */
static int parse_scalar(struct parser *p, struct cc_toml_value *v)
{
        struct pos at = here(p);
        size_t start = p->i;
        while (is_bare_value_char(peek(p)))
                p->i++;
        const char *tok = p->s + start;
        size_t n = p->i - start;
        if (n == 0)
                return fail(p, at, "expected a value");
        if (tok_eq(tok, n, "true") || tok_eq(tok, n, "false")) {
                v->type = CC_TOML_BOOL;
                v->boolean = tok[0] == 't';
                return 0;
        }
        const char *t = tok + (tok[0] == '+' || tok[0] == '-');
        size_t tn = n - (size_t)(t - tok);
        if (tok_eq(t, tn, "inf") || tok_eq(t, tn, "nan")) {
                v->type = CC_TOML_FLOAT;
                v->floating = t[0] == 'i' ? INFINITY : NAN;
                if (tok[0] == '-')
                        v->floating = -v->floating;
                return 0;
        }
        if (looks_like_datetime(tok, n))
                return fail(p, at, "datetime values are not supported");
        if (tn > 0 && is_digit(t[0], 10))
                return parse_number(p, at, tok, n, v);
        return fail(p, at, "invalid value '%.*s' (strings must be quoted)", (int)CC_MIN(n, 40),
                    tok);
}

static int parse_array(struct parser *p, unsigned parent_depth, struct cc_toml_value *v)
{
        struct pos start = here(p);
        unsigned depth = parent_depth + 1;
        if (depth > CC_TOML_MAX_DEPTH)
                return fail(p, start, "nesting deeper than %d levels", CC_TOML_MAX_DEPTH);
        v->type = CC_TOML_ARRAY;
        size_t cap = 0;
        p->i++; /* '[' */
        for (;;) {
                int r = skip_ws_nl(p);
                if (r < 0)
                        return r;
                if (peek(p) == ']') {
                        p->i++;
                        return 0;
                }
                if (v->array.n == cap) {
                        cap = cap ? 2 * cap : 4;
                        struct cc_toml_value *items =
                                reallocarray(v->array.items, cap, sizeof(*items));
                        if (!items)
                                return oom(p);
                        v->array.items = items;
                }
                r = parse_value(p, depth, &v->array.items[v->array.n]);
                if (r < 0)
                        return r;
                v->array.n++;
                r = skip_ws_nl(p);
                if (r < 0)
                        return r;
                if (peek(p) == ',') {
                        p->i++;
                        continue;
                }
                if (peek(p) == ']') {
                        p->i++;
                        return 0;
                }
                if (peek(p) < 0)
                        return fail(p, start, "unterminated array");
                return fail(p, here(p), "expected ',' or ']' after array element");
        }
}

static int parse_inline_table(struct parser *p, unsigned parent_depth, struct cc_toml_value *v)
{
        struct pos start = here(p);
        int r = new_table(p, parent_depth + 1, TABLE_INLINE, start, &v->table);
        if (r < 0)
                return r;
        v->type = CC_TOML_TABLE;
        p->i++; /* '{' */
        skip_ws(p);
        if (peek(p) == '}') {
                p->i++;
                return 0;
        }
        for (;;) {
                skip_ws(p);
                if (peek(p) == '\n' || peek(p) == '\r' || peek(p) == '#')
                        return fail(p, here(p), "an inline table must be on one line");
                r = parse_keyval(p, v->table);
                if (r < 0)
                        return r;
                skip_ws(p);
                int c = peek(p);
                if (c == ',') {
                        p->i++;
                        skip_ws(p);
                        if (peek(p) == '}')
                                return fail(p, here(p), "trailing comma in inline table");
                        continue;
                }
                if (c == '}') {
                        p->i++;
                        return 0;
                }
                if (c < 0)
                        return fail(p, start, "unterminated inline table");
                if (c == '\n' || c == '\r' || c == '#')
                        return fail(p, here(p), "an inline table must be on one line");
                return fail(p, here(p), "expected ',' or '}' in inline table");
        }
}

/*
 * Any value at p->i; arrays and inline tables nest one level below `parent_depth`. On failure
 * whatever was built is freed and *v is left empty.
 */
static int parse_value(struct parser *p, unsigned parent_depth, struct cc_toml_value *v)
{
        struct pos at = here(p);
        *v = (struct cc_toml_value){.type = CC_TOML_BOOL, .line = at.line, .col = at.col};
        int r;
        switch (peek(p)) {
        case '"':
        case '\'':
                r = parse_string(p, true, &v->string);
                if (r == 0)
                        v->type = CC_TOML_STRING;
                break;
        case '[':
                r = parse_array(p, parent_depth, v);
                break;
        case '{':
                r = parse_inline_table(p, parent_depth, v);
                break;
        default:
                r = parse_scalar(p, v);
                break;
        }
        if (r < 0)
                value_clear(v);
        return r;
}

/* Walks dotted key part j from *t: it must be absent or a table made by dotted keys. */
static int descend_dotted(struct parser *p, struct cc_toml_table **t, struct key *k, size_t j)
{
        struct cc_toml_entry *e = table_find(*t, k->parts[j]);
        if (!e)
                return add_table(p, *t, k, j, TABLE_DOTTED, k->pos[j], t);
        if (e->value.type == CC_TOML_TABLE && e->value.table->kind == TABLE_DOTTED) {
                *t = e->value.table;
                return 0;
        }
        _cleanup_free_ char *name = key_name(k, j);
        return fail(p, k->pos[j], "cannot add keys to '%s' with a dotted key: defined at line %u",
                    name ? name : k->parts[j], defined_line(e));
}

/* key = value, inserted into t (dotted keys make sub-tables). */
static int parse_keyval(struct parser *p, struct cc_toml_table *t)
{
        _cleanup_(key_done) struct key k = {0};
        int r = parse_key(p, &k);
        if (r < 0)
                return r;
        if (peek(p) != '=')
                return fail(p, here(p), "expected '=' after key");
        p->i++;
        skip_ws(p);
        for (size_t j = 0; j + 1 < k.n; j++) {
                r = descend_dotted(p, &t, &k, j);
                if (r < 0)
                        return r;
        }
        size_t last = k.n - 1;
        const struct cc_toml_entry *e = table_find(t, k.parts[last]);
        if (e) {
                _cleanup_free_ char *name = key_name(&k, last);
                return fail(p, k.pos[last], "duplicate key '%s' (first defined at line %u)",
                            name ? name : k.parts[last], defined_line(e));
        }
        struct cc_toml_value v;
        r = parse_value(p, t->depth, &v);
        if (r < 0)
                return r;
        if (table_add(t, k.parts[last], k.pos[last].line, k.pos[last].col, &v) < 0) {
                value_clear(&v);
                return oom(p);
        }
        k.parts[last] = NULL;
        return 0;
}

/* Walks header key part j from *t: any table but an inline one; [[x]] means its last table. */
static int descend_header(struct parser *p, struct cc_toml_table **t, struct key *k, size_t j)
{
        struct cc_toml_entry *e = table_find(*t, k->parts[j]);
        if (!e)
                return add_table(p, *t, k, j, TABLE_IMPLICIT, k->pos[j], t);
        if (e->value.type == CC_TOML_TABLE && e->value.table->kind != TABLE_INLINE) {
                *t = e->value.table;
                return 0;
        }
        if (e->value.type == CC_TOML_ARRAY && (e->value.flags & VALUE_TABLE_ARRAY)) {
                *t = e->value.array.items[e->value.array.n - 1].table;
                return 0;
        }
        _cleanup_free_ char *name = key_name(k, j);
        if (e->value.type == CC_TOML_TABLE)
                return fail(p, k->pos[j], "cannot extend inline table '%s' (defined at line %u)",
                            name ? name : k->parts[j], defined_line(e));
        return fail(p, k->pos[j], "'%s' is %s, not a table (defined at line %u)",
                    name ? name : k->parts[j], type_article(e->value.type), defined_line(e));
}

/* Appends a new table to the array of tables `arr`. */
static int append_table(struct parser *p, struct cc_toml_value *arr, unsigned depth, struct pos at,
                        struct cc_toml_table **ret)
{
        /* Capacity is the next power of two, so a long run of [[x]] costs linear time. */
        size_t n = arr->array.n;
        struct cc_toml_value *items = arr->array.items;
        if ((n & (n - 1)) == 0) {
                items = reallocarray(items, n ? 2 * n : 1, sizeof(*items));
                if (!items)
                        return oom(p);
                arr->array.items = items;
        }
        struct cc_toml_table *t = NULL;
        int r = new_table(p, depth, TABLE_ARRAY_ELEM, at, &t);
        if (r < 0)
                return r;
        items[arr->array.n++] = (struct cc_toml_value){
                .type = CC_TOML_TABLE, .line = at.line, .col = at.col, .table = t};
        *ret = t;
        return 0;
}

/* [a.b] or [[a.b]]; makes the named table the current one. */
static int parse_header(struct parser *p)
{
        struct pos at = here(p);
        p->i++; /* '[' */
        bool aot = peek(p) == '[';
        if (aot)
                p->i++;
        _cleanup_(key_done) struct key k = {0};
        int r = parse_key(p, &k);
        if (r < 0)
                return r;
        if (aot) {
                if (peek(p) != ']' || peek_at(p, 1) != ']')
                        return fail(p, here(p), "expected ']]' after array-of-tables name");
                p->i += 2;
        } else {
                if (peek(p) != ']')
                        return fail(p, here(p), "expected ']' after table name");
                p->i++;
        }
        struct cc_toml_table *t = p->root;
        for (size_t j = 0; j + 1 < k.n; j++) {
                r = descend_header(p, &t, &k, j);
                if (r < 0)
                        return r;
        }
        size_t last = k.n - 1;
        struct cc_toml_entry *e = table_find(t, k.parts[last]);
        _cleanup_free_ char *name = key_name(&k, last);
        if (aot) {
                if (!e) {
                        struct cc_toml_value v = {.type = CC_TOML_ARRAY,
                                                  .line = at.line,
                                                  .col = at.col,
                                                  .flags = VALUE_TABLE_ARRAY};
                        if (table_add(t, k.parts[last], k.pos[last].line, k.pos[last].col, &v) < 0)
                                return oom(p);
                        k.parts[last] = NULL;
                        e = &t->entries[t->n - 1];
                } else if (e->value.type != CC_TOML_ARRAY ||
                           !(e->value.flags & VALUE_TABLE_ARRAY)) {
                        return fail(p, at, "'%s' is already defined at line %u as %s",
                                    name ? name : "?", defined_line(e),
                                    e->value.type == CC_TOML_ARRAY ? "a static array"
                                                                   : type_article(e->value.type));
                }
                r = append_table(p, &e->value, t->depth + 1, at, &t);
                if (r < 0)
                        return r;
        } else if (!e) {
                r = add_table(p, t, &k, last, TABLE_HEADER, at, &t);
                if (r < 0)
                        return r;
        } else if (e->value.type == CC_TOML_TABLE && e->value.table->kind == TABLE_IMPLICIT) {
                t = e->value.table;
                t->kind = TABLE_HEADER;
                t->line = at.line;
                t->col = at.col;
        } else {
                return fail(p, at, "table '%s' is already defined at line %u", name ? name : "?",
                            defined_line(e));
        }
        p->cur = t;
        return expect_eol(p, "table header");
}

static int parse_document(struct parser *p)
{
        for (;;) {
                skip_ws(p);
                int c = peek(p);
                int r = 0;
                if (c < 0)
                        return 0;
                if (c == '#')
                        r = skip_comment(p);
                else if (at_newline(p))
                        eat_newline(p);
                else if (c == '\r')
                        r = lone_cr(p);
                else if (c == '[')
                        r = parse_header(p);
                else if ((r = parse_keyval(p, p->cur)) == 0)
                        r = expect_eol(p, "value");
                if (r < 0)
                        return r;
        }
}

int cc_toml_parse_string(const char *name, const char *text, size_t len, struct cc_toml_table **ret,
                         struct cc_error **err)
{
        if (!name)
                name = "<string>";
        if (len > CC_TOML_MAX_SIZE)
                return cc_error_set(err, EFBIG, "%s: larger than %u bytes", name, CC_TOML_MAX_SIZE);
        if (!text && len)
                return cc_error_set(err, EINVAL, "%s: no text", name);
        char *file = strdup(name);
        if (!file)
                return cc_error_set(err, ENOMEM, "%s: out of memory", name);
        struct parser p = {
                .name = name,
                .file = file,
                .s = text ? text : "",
                .len = len,
                .line = 1,
                .col_line_start = SIZE_MAX,
                .err = err,
        };
        struct cc_toml_table *root = NULL;
        int r = new_table(&p, 0, TABLE_ROOT, (struct pos){1, 1}, &root);
        if (r < 0) {
                free(file);
                return r;
        }
        root->owned_file = file;
        p.root = p.cur = root;
        r = check_utf8(&p);
        if (r == 0)
                r = parse_document(&p);
        if (r < 0) {
                table_free(root);
                return r;
        }
        *ret = root;
        return 0;
}

int cc_toml_parse_file(const char *path, struct cc_toml_table **ret, struct cc_error **err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = cc_read_file(path, CC_TOML_MAX_SIZE, &buf, &len, err);
        if (r < 0)
                return r;
        return cc_toml_parse_string(path, buf, len, ret, err);
}

/* ---- reading a document ------------------------------------------------------------------ */

const char *cc_toml_table_file(const struct cc_toml_table *t)
{
        return t->file;
}

void cc_toml_table_position(const struct cc_toml_table *t, unsigned *line, unsigned *col)
{
        if (line)
                *line = t->line;
        if (col)
                *col = t->col;
}

size_t cc_toml_table_size(const struct cc_toml_table *t)
{
        return t->n;
}

const struct cc_toml_entry *cc_toml_table_entry(const struct cc_toml_table *t, size_t i)
{
        return i < t->n ? &t->entries[i] : NULL;
}

const struct cc_toml_entry *cc_toml_table_get(const struct cc_toml_table *t, const char *key)
{
        return table_find(t, key);
}

static int type_error(const struct cc_toml_table *t, const char *path, size_t path_len,
                      const struct cc_toml_entry *e, const char *want, struct cc_error **err)
{
        return cc_error_set(err, EINVAL, "%s:%u:%u: key '%.*s' must be %s, got %s", t->file,
                            e->line, e->col, (int)path_len, path, want,
                            cc_toml_type_name(e->value.type));
}

/*
 * Finds the entry at dotted `path`; *ret_table is the table holding it (for its file name).
 * -ENOENT without an error when a part is missing.
 */
static int lookup(const struct cc_toml_table *t, const char *path,
                  const struct cc_toml_table **ret_table, const struct cc_toml_entry **ret,
                  struct cc_error **err)
{
        for (const char *s = path;;) {
                const char *dot = strchr(s, '.');
                _cleanup_free_ char *part = dot ? strndup(s, (size_t)(dot - s)) : NULL;
                if (dot && !part)
                        return cc_error_set(err, ENOMEM, "out of memory");
                const struct cc_toml_entry *e = table_find(t, dot ? part : s);
                if (!e)
                        return -ENOENT;
                if (!dot) {
                        *ret_table = t;
                        *ret = e;
                        return 0;
                }
                if (e->value.type != CC_TOML_TABLE)
                        return type_error(t, path, (size_t)(dot - path), e, "a table", err);
                t = e->value.table;
                s = dot + 1;
        }
}

/* Looks up `path` and checks its type. */
static int get_typed(const struct cc_toml_table *t, const char *path, enum cc_toml_type type,
                     const struct cc_toml_table **ret_table, const struct cc_toml_entry **ret,
                     struct cc_error **err)
{
        const struct cc_toml_table *owner = NULL;
        const struct cc_toml_entry *e = NULL;
        int r = lookup(t, path, &owner, &e, err);
        if (r < 0)
                return r;
        if (e->value.type != type)
                return type_error(owner, path, strlen(path), e, type_article(type), err);
        if (ret_table)
                *ret_table = owner;
        *ret = e;
        return 0;
}

int cc_toml_get_table(const struct cc_toml_table *t, const char *path,
                      const struct cc_toml_table **ret, struct cc_error **err)
{
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_TABLE, NULL, &e, err);
        if (r < 0)
                return r;
        *ret = e->value.table;
        return 0;
}

int cc_toml_get_string(const struct cc_toml_table *t, const char *path, const char **ret,
                       struct cc_error **err)
{
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_STRING, NULL, &e, err);
        if (r < 0)
                return r;
        *ret = e->value.string;
        return 0;
}

int cc_toml_get_int64(const struct cc_toml_table *t, const char *path, int64_t *ret,
                      struct cc_error **err)
{
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_INTEGER, NULL, &e, err);
        if (r < 0)
                return r;
        *ret = e->value.integer;
        return 0;
}

int cc_toml_get_int64_range(const struct cc_toml_table *t, const char *path, int64_t min,
                            int64_t max, int64_t *ret, struct cc_error **err)
{
        const struct cc_toml_table *owner = NULL;
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_INTEGER, &owner, &e, err);
        if (r < 0)
                return r;
        int64_t v = e->value.integer;
        if (v < min || v > max)
                return cc_error_set(err, ERANGE,
                                    "%s:%u:%u: key '%s' must be between %" PRId64 " and %" PRId64
                                    ", got %" PRId64,
                                    owner->file, e->line, e->col, path, min, max, v);
        *ret = v;
        return 0;
}

int cc_toml_get_bool(const struct cc_toml_table *t, const char *path, bool *ret,
                     struct cc_error **err)
{
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_BOOL, NULL, &e, err);
        if (r < 0)
                return r;
        *ret = e->value.boolean;
        return 0;
}

int cc_toml_get_double(const struct cc_toml_table *t, const char *path, double *ret,
                       struct cc_error **err)
{
        const struct cc_toml_table *owner = NULL;
        const struct cc_toml_entry *e = NULL;
        int r = lookup(t, path, &owner, &e, err);
        if (r < 0)
                return r;
        if (e->value.type == CC_TOML_INTEGER)
                *ret = (double)e->value.integer;
        else if (e->value.type == CC_TOML_FLOAT)
                *ret = e->value.floating;
        else
                return type_error(owner, path, strlen(path), e, "a float", err);
        return 0;
}

int cc_toml_get_array(const struct cc_toml_table *t, const char *path,
                      const struct cc_toml_value **ret, struct cc_error **err)
{
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_ARRAY, NULL, &e, err);
        if (r < 0)
                return r;
        *ret = &e->value;
        return 0;
}

int cc_toml_get_strv(const struct cc_toml_table *t, const char *path, char ***ret,
                     struct cc_error **err)
{
        const struct cc_toml_table *owner = NULL;
        const struct cc_toml_entry *e = NULL;
        int r = get_typed(t, path, CC_TOML_ARRAY, &owner, &e, err);
        if (r < 0)
                return r;
        const struct cc_toml_array *a = &e->value.array;
        for (size_t i = 0; i < a->n; i++)
                if (a->items[i].type != CC_TOML_STRING)
                        return cc_error_set(err, EINVAL,
                                            "%s:%u:%u: key '%s' must be an array of strings, "
                                            "element %zu is %s",
                                            owner->file, a->items[i].line, a->items[i].col, path, i,
                                            type_article(a->items[i].type));
        _cleanup_strv_ char **v = calloc(a->n + 1, sizeof(char *));
        if (!v)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < a->n; i++) {
                v[i] = strdup(a->items[i].string);
                if (!v[i])
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(v);
        return 0;
}
