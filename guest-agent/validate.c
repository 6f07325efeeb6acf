/*
 * Identifier and path validation for host-supplied request fields; see validate.h.
 */
#include "guest-agent/validate.h"

#include <limits.h>
#include <string.h>

#include "cc/error.h"

int agent_validate_id(const char *id, const char *what, struct cc_error **err)
{
        if (cc_isempty(id))
                return cc_error_set(err, EINVAL, "%s is empty", what);
        size_t n = strnlen(id, AGENT_ID_MAX + 1);
        if (n > AGENT_ID_MAX)
                return cc_error_set(err, EINVAL, "%s is longer than %d characters", what,
                                    AGENT_ID_MAX);
        if (id[0] == '.' || id[0] == '-')
                return cc_error_set(err, EINVAL, "%s must not start with '%c'", what, id[0]);
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                if (!ok)
                        return cc_error_set(err, EINVAL,
                                            "%s has byte 0x%02x at offset %zu, outside "
                                            "[A-Za-z0-9_.-]",
                                            what, (unsigned char)c, i);
        }
        return 0;
}

/* Checks every component of p (which may start with '/') for "." / ".." / control chars. */
static int check_components(const char *p, const char *what, struct cc_error **err)
{
        size_t n = strnlen(p, PATH_MAX);
        if (n >= PATH_MAX)
                return cc_error_set(err, ENAMETOOLONG, "%s is too long", what);
        const char *s = p;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = s;
                while (*e && *e != '/') {
                        if ((unsigned char)*e < 0x20 || *e == 0x7f)
                                return cc_error_set(err, EINVAL, "%s contains a control character",
                                                    what);
                        e++;
                }
                size_t len = (size_t)(e - s);
                if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
                        return cc_error_set(err, EINVAL, "%s '%s' contains a '%.*s' component",
                                            what, p, (int)len, s);
                s = e;
        }
        return 0;
}

int agent_validate_abs_path(const char *path, const char *what, struct cc_error **err)
{
        if (cc_isempty(path))
                return cc_error_set(err, EINVAL, "%s is empty", what);
        if (path[0] != '/')
                return cc_error_set(err, EINVAL, "%s '%s' is not absolute", what, path);
        return check_components(path, what, err);
}

int agent_validate_rel_path(const char *path, const char *what, struct cc_error **err)
{
        if (cc_isempty(path))
                return cc_error_set(err, EINVAL, "%s is empty", what);
        return check_components(path, what, err);
}

bool agent_path_is_under(const char *path, const char *dir)
{
        if (!path || !dir)
                return false;
        const char *p = path, *d = dir;
        for (;;) {
                while (*p == '/')
                        p++;
                while (*d == '/')
                        d++;
                if (!*d)
                        return true; /* every component of dir matched */
                if (!*p)
                        return false;
                const char *pe = strchrnul(p, '/'), *de = strchrnul(d, '/');
                if (pe - p != de - d || memcmp(p, d, (size_t)(pe - p)) != 0)
                        return false;
                p = pe;
                d = de;
        }
}

int agent_validate_size(size_t size, size_t max, const char *what, struct cc_error **err)
{
        if (size > max)
                return cc_error_set(err, EINVAL, "%s is too large (%zu > %zu)", what, size, max);
        return 0;
}
