/*
 * Labels, filters, mounts and the guest-pull volume: the parts of the snapshotter that read
 * what containerd (or anyone on its socket) sends, kept free of I/O so they can be fuzzed.
 */
#include <errno.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "snapshotter/snap.h"

/* ---- labels -----------------------------------------------------------------------------------
 */

void snap_labels_clear(struct snap_labels *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].key);
                free(l->v[i].value);
        }
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

const char *snap_labels_get(const struct snap_labels *l, const char *key)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].key, key) == 0)
                        return l->v[i].value;
        return NULL;
}

int snap_labels_set(struct snap_labels *l, const char *key, const char *value)
{
        for (size_t i = 0; i < l->n; i++) {
                if (strcmp(l->v[i].key, key) != 0)
                        continue;
                if (!value) {
                        free(l->v[i].key);
                        free(l->v[i].value);
                        l->v[i] = l->v[--l->n];
                        return 0;
                }
                char *v = strdup(value);
                if (!v)
                        return -ENOMEM;
                free(l->v[i].value);
                l->v[i].value = v;
                return 0;
        }
        if (!value)
                return 0;
        struct snap_label *n = realloc(l->v, (l->n + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        l->v = n;
        char *k = strdup(key), *v = strdup(value);
        if (!k || !v) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        l->v[l->n++] = (struct snap_label){k, v};
        return 0;
}

int snap_labels_copy(struct snap_labels *dst, const struct snap_labels *src)
{
        for (size_t i = 0; i < src->n; i++) {
                int r = snap_labels_set(dst, src->v[i].key, src->v[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool utf8_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                int n;
                if (*p < 0x80)
                        n = 0;
                else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
                        n = 1;
                else if ((*p & 0xf0) == 0xe0)
                        n = 2;
                else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
                        n = 3;
                else
                        return false;
                p++;
                for (int i = 0; i < n; i++, p++)
                        if ((*p & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

int snap_labels_validate(const struct snap_labels *l, struct cc_error **err)
{
        for (size_t i = 0; i < l->n; i++) {
                const char *k = l->v[i].key, *v = l->v[i].value;
                if (!*k)
                        return cc_error_set(err, EINVAL, "label key must not be empty");
                if (strlen(k) + strlen(v) > SNAP_LABEL_MAX)
                        return cc_error_set(err, EINVAL,
                                            "label key and value length (%zu bytes) greater "
                                            "than maximum size (%d bytes), key: %.40s",
                                            strlen(k) + strlen(v), SNAP_LABEL_MAX, k);
                if (!utf8_valid(k) || !utf8_valid(v))
                        return cc_error_set(err, EINVAL, "label %.40s is not valid UTF-8", k);
        }
        return 0;
}

void snap_info_clear(struct snap_info *i)
{
        free(i->name);
        free(i->parent);
        snap_labels_clear(&i->labels);
        *i = (struct snap_info){0};
}

void snap_mounts_clear(struct snap_mounts *m)
{
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].type);
                free(m->v[i].source);
                cc_strv_free(m->v[i].options);
        }
        free(m->v);
        m->v = NULL;
        m->n = 0;
}

int snap_mounts_add(struct snap_mounts *m, const char *type, const char *source,
                    const char *const *options)
{
        struct snap_mount *n = realloc(m->v, (m->n + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        m->v = n;
        size_t k = 0;
        while (options && options[k])
                k++;
        struct snap_mount mt = {strdup(type), strdup(source), calloc(k + 1, sizeof(char *))};
        bool ok = mt.type && mt.source && mt.options;
        for (size_t i = 0; ok && i < k; i++)
                ok = (mt.options[i] = strdup(options[i])) != NULL;
        if (!ok) {
                free(mt.type);
                free(mt.source);
                cc_strv_free(mt.options);
                return -ENOMEM;
        }
        m->v[m->n++] = mt;
        return 0;
}

/* ---- filters ----------------------------------------------------------------------------------
 */

/*
 * containerd's filter language, as much as snapshotters see: a filter is selectors joined by
 * ',' (all must match); a selector is a field path (segments joined by '.', each bare
 * [A-Za-z0-9_] or a "quoted" string) optionally followed by an operator (==, !=, ~=) and a
 * value (bare up to the next ',', or "quoted" with backslash escapes). Without an operator
 * the selector asks for the field to be present. Fields: name, parent, kind, labels.<key>.
 */
enum op { OP_PRESENT, OP_EQ, OP_NE, OP_MATCH };

struct selector {
        char **path; /* NULL-terminated */
        enum op op;
        char *value;
        regex_t re;
        bool has_re;
};

struct snap_filter {
        struct selector *v;
        size_t n;
};

void snap_filter_free(struct snap_filter *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++) {
                cc_strv_free(f->v[i].path);
                free(f->v[i].value);
                if (f->v[i].has_re)
                        regfree(&f->v[i].re);
        }
        free(f->v);
        free(f);
}

static void skip_ws(const char **p)
{
        while (**p == ' ' || **p == '\t')
                (*p)++;
}

/* A "quoted" string with Go-like escapes; *p at the opening quote. */
static int parse_quoted(const char **p, char **ret)
{
        char q = **p;
        const char *s = *p + 1;
        size_t cap = strlen(s) + 1;
        _cleanup_free_ char *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        for (;;) {
                char c = *s++;
                if (c == '\0')
                        return -EINVAL;
                if (c == q)
                        break;
                if (c == '\\') {
                        c = *s++;
                        switch (c) {
                        case 'n':
                                c = '\n';
                                break;
                        case 't':
                                c = '\t';
                                break;
                        case 'r':
                                c = '\r';
                                break;
                        case '\\':
                        case '"':
                        case '/':
                                break;
                        default:
                                return -EINVAL;
                        }
                }
                out[n++] = c;
        }
        out[n] = '\0';
        *p = s;
        *ret = TAKE_PTR(out);
        return 0;
}

static bool field_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
}

/*
 * glibc's regcomp expands repetitions by copying subtrees ("a+" becomes "aa*", "a{n}" n
 * copies), so stacked or nested quantifiers take memory exponential in the pattern (found by
 * fuzzing: 1 GiB from 120 bytes). Go's regexp, which containerd's clients use, is linear. We
 * accept what snapshot filters need: at most 256 bytes, at most 6 quantifiers (so at most
 * 64 copies), none stacked, and no bounded repeats.
 */
static bool regex_tame(const char *re)
{
        size_t quantifiers = 0;
        bool prev_quant = false;
        if (strlen(re) > 256)
                return false;
        for (const char *p = re; *p; p++) {
                if (*p == '\\' && p[1]) {
                        p++;
                        prev_quant = false;
                        continue;
                }
                if (*p == '{')
                        return false;
                bool quant = *p == '*' || *p == '+' || *p == '?';
                if (quant && (prev_quant || ++quantifiers > 6))
                        return false;
                prev_quant = quant;
        }
        return true;
}

static int parse_selector(const char **p, struct selector *sel, struct cc_error **err,
                          const char *whole)
{
        size_t n = 0;
        for (;;) {
                skip_ws(p);
                char *seg = NULL;
                if (**p == '"') {
                        if (parse_quoted(p, &seg) < 0)
                                return cc_error_set(err, EINVAL, "filters: bad quoted field in %s",
                                                    whole);
                } else {
                        const char *s = *p;
                        while (field_char(**p))
                                (*p)++;
                        if (*p == s)
                                return cc_error_set(err, EINVAL,
                                                    "filters: expected a field name at offset "
                                                    "%zu of %s",
                                                    (size_t)(s - whole), whole);
                        seg = strndup(s, (size_t)(*p - s));
                        if (!seg)
                                return cc_error_set(err, ENOMEM, "out of memory");
                }
                char **np = realloc(sel->path, (n + 2) * sizeof(char *));
                if (!np) {
                        free(seg);
                        return cc_error_set(err, ENOMEM, "out of memory");
                }
                sel->path = np;
                sel->path[n++] = seg;
                sel->path[n] = NULL;
                if (n > 16)
                        return cc_error_set(err, EINVAL, "filters: field path too long");
                skip_ws(p);
                if (**p != '.')
                        break;
                (*p)++;
        }
        skip_ws(p);
        if (**p == ',' || **p == '\0') {
                sel->op = OP_PRESENT;
                return 0;
        }
        if (strncmp(*p, "==", 2) == 0)
                sel->op = OP_EQ;
        else if (strncmp(*p, "!=", 2) == 0)
                sel->op = OP_NE;
        else if (strncmp(*p, "~=", 2) == 0)
                sel->op = OP_MATCH;
        else
                return cc_error_set(err, EINVAL,
                                    "filters: expected an operator at offset %zu of %s",
                                    (size_t)(*p - whole), whole);
        *p += 2;
        skip_ws(p);
        if (**p == '"' || **p == '/') {
                if (parse_quoted(p, &sel->value) < 0)
                        return cc_error_set(err, EINVAL, "filters: bad quoted value in %s", whole);
        } else {
                const char *s = *p;
                while (**p && **p != ',')
                        (*p)++;
                const char *e = *p;
                while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                sel->value = strndup(s, (size_t)(e - s));
                if (!sel->value)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        if (sel->op == OP_MATCH) {
                if (!regex_tame(sel->value))
                        return cc_error_set(err, EINVAL,
                                            "filters: regular expression too long or with "
                                            "stacked repetitions: %.64s",
                                            sel->value);
                if (regcomp(&sel->re, sel->value, REG_EXTENDED | REG_NOSUB) != 0)
                        return cc_error_set(err, EINVAL, "filters: bad regular expression %s",
                                            sel->value);
                sel->has_re = true;
        }
        skip_ws(p);
        return 0;
}

int snap_filter_parse(const char *s, struct snap_filter **ret, struct cc_error **err)
{
        struct snap_filter *f = calloc(1, sizeof(*f));
        if (!f)
                return cc_error_set(err, ENOMEM, "out of memory");
        const char *p = s;
        for (;;) {
                struct selector *nv = realloc(f->v, (f->n + 1) * sizeof(*nv));
                if (!nv) {
                        snap_filter_free(f);
                        return cc_error_set(err, ENOMEM, "out of memory");
                }
                f->v = nv;
                f->v[f->n] = (struct selector){0};
                f->n++;
                int r = parse_selector(&p, &f->v[f->n - 1], err, s);
                if (r < 0) {
                        snap_filter_free(f);
                        return r == -ENOMEM ? cc_error_set(err, ENOMEM, "filters: out of memory")
                                            : r;
                }
                if (*p == '\0')
                        break;
                if (*p != ',') {
                        snap_filter_free(f);
                        return cc_error_set(err, EINVAL,
                                            "filters: unexpected '%c' at offset %zu of %s", *p,
                                            (size_t)(p - s), s);
                }
                p++;
        }
        *ret = f;
        return 0;
}

static const char *kind_name(enum snap_kind k)
{
        switch (k) {
        case SNAP_KIND_VIEW:
                return "view";
        case SNAP_KIND_ACTIVE:
                return "active";
        case SNAP_KIND_COMMITTED:
                return "committed";
        default:
                return "unknown";
        }
}

/* The adaptor: field path -> value, and whether the field is present. */
static const char *field(const struct snap_info *info, char *const *path, bool *present)
{
        *present = true;
        if (strcmp(path[0], "name") == 0 && !path[1])
                return info->name;
        if (strcmp(path[0], "parent") == 0 && !path[1])
                return info->parent ? info->parent : "";
        if (strcmp(path[0], "kind") == 0 && !path[1])
                return kind_name(info->kind);
        if (strcmp(path[0], "labels") == 0 && path[1] && !path[2]) {
                const char *v = snap_labels_get(&info->labels, path[1]);
                *present = v != NULL;
                return v ? v : "";
        }
        *present = false;
        return "";
}

bool snap_filter_match(const struct snap_filter *f, const struct snap_info *info)
{
        for (size_t i = 0; i < f->n; i++) {
                const struct selector *sel = &f->v[i];
                bool present;
                const char *v = field(info, sel->path, &present);
                bool ok;
                switch (sel->op) {
                case OP_PRESENT:
                        ok = present;
                        break;
                case OP_EQ:
                        ok = present && strcmp(v, sel->value) == 0;
                        break;
                case OP_NE:
                        ok = strcmp(v, sel->value) != 0;
                        break;
                default:
                        ok = present && regexec(&sel->re, v, 0, NULL, 0) == 0;
                        break;
                }
                if (!ok)
                        return false;
        }
        return true;
}

/* ---- the guest-pull volume ----------------------------------------------------------------------
 */

char *snap_base64(const uint8_t *data, size_t len)
{
        static const char tbl[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        char *o = out;
        size_t i = 0;
        for (; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
                *o++ = tbl[v >> 18];
                *o++ = tbl[(v >> 12) & 63];
                *o++ = tbl[(v >> 6) & 63];
                *o++ = tbl[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)data[i] << 16;
                *o++ = tbl[v >> 18];
                *o++ = tbl[(v >> 12) & 63];
                *o++ = '=';
                *o++ = '=';
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
                *o++ = tbl[v >> 18];
                *o++ = tbl[(v >> 12) & 63];
                *o++ = tbl[(v >> 6) & 63];
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

int snap_guest_volume_json(const char *image_ref, const struct snap_labels *metadata, char **ret,
                           struct cc_error **err)
{
        /* Kata's KataVirtualVolume: volume_type must be set, and image_pull.metadata must be
         * a non-null object (Kata writes into it unconditionally). */
        _cleanup_(json_object_putp) json_object *root = json_object_new_object();
        json_object *pull = json_object_new_object();
        json_object *md = json_object_new_object();
        json_object *opts = json_object_new_array();
        if (!root || !pull || !md || !opts) {
                json_object_put(pull);
                json_object_put(md);
                json_object_put(opts);
                return cc_error_set(err, ENOMEM, "guest volume: out of memory");
        }
        json_object_object_add(root, "volume_type", json_object_new_string("image_guest_pull"));
        json_object_object_add(root, "source",
                               json_object_new_string(cc_isempty(image_ref)
                                                              ? "dummy-image-reference"
                                                              : image_ref));
        json_object_object_add(root, "fs_type", json_object_new_string("overlay"));
        json_object_object_add(root, "options", opts);
        for (size_t i = 0; metadata && i < metadata->n; i++)
                json_object_object_add(md, metadata->v[i].key,
                                       json_object_new_string(metadata->v[i].value));
        json_object_object_add(pull, "metadata", md);
        json_object_object_add(root, "image_pull", pull);
        const char *s = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || !(*ret = strdup(s)))
                return cc_error_set(err, ENOMEM, "guest volume: out of memory");
        return 0;
}
