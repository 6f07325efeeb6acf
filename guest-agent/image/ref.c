/*
 * Image references: [registry/]repository[:tag][@sha256:digest], with Docker's defaults
 * (no registry -> docker.io, whose API host is registry-1.docker.io; a one-component
 * repository on docker.io gets "library/"; no tag and no digest -> "latest").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"

/* Repository path grammar of the distribution spec, checked component by component. */
static bool repo_valid(const char *s)
{
        size_t len = strlen(s);
        if (len == 0 || len > 255)
                return false;
        const char *p = s;
        for (;;) {
                /* component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
                bool alnum = false;
                for (;;) {
                        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
                                alnum = true;
                                p++;
                                continue;
                        }
                        if (!alnum)
                                return false;
                        if (*p == '.' || (*p == '_' && p[1] != '_')) {
                                p++;
                        } else if (*p == '_') {
                                p += 2;
                        } else if (*p == '-') {
                                while (*p == '-')
                                        p++;
                        } else {
                                break;
                        }
                        alnum = false;
                }
                if (*p == 0)
                        return true;
                if (*p != '/')
                        return false;
                p++;
        }
}

static bool tag_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 128 || *s == '.' || *s == '-')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

void img__ref_done(struct img_ref *r)
{
        free(r->registry);
        free(r->repo);
        free(r->tag);
        free(r->digest);
        *r = (struct img_ref){0};
}

int img__ref_parse(const char *s, struct img_ref *ret, struct cc_error **err)
{
        if (cc_isempty(s) || strlen(s) > 1024)
                return cc_error_set(err, EINVAL, "invalid image reference");
        _cleanup_free_ char *buf = strdup(s);
        if (!buf)
                return -ENOMEM;
        struct img_ref r = {0};

        char *at = strchr(buf, '@');
        if (at) {
                *at = 0;
                if (!img__digest_valid(at + 1))
                        return cc_error_set(err, EINVAL, "reference '%s': unsupported digest", s);
                r.digest = strdup(at + 1);
        }
        char *name = buf;
        char *slash = strchr(buf, '/');
        const char *host = "docker.io";
        if (slash &&
            (memchr(buf, '.', (size_t)(slash - buf)) || memchr(buf, ':', (size_t)(slash - buf)) ||
             (slash - buf == 9 && !strncmp(buf, "localhost", 9)))) {
                *slash = 0;
                host = buf;
                name = slash + 1;
        }
        char *colon = strrchr(name, ':');
        if (colon) {
                *colon = 0;
                if (!tag_valid(colon + 1)) {
                        free(r.digest);
                        return cc_error_set(err, EINVAL, "reference '%s': invalid tag", s);
                }
                r.tag = strdup(colon + 1);
        } else if (!r.digest) {
                r.tag = strdup("latest");
        }
        if (!repo_valid(name)) {
                img__ref_done(&r);
                return cc_error_set(err, EINVAL, "reference '%s': invalid repository name", s);
        }
        bool docker_hub = !strcmp(host, "docker.io") || !strcmp(host, "index.docker.io");
        r.registry = strdup(docker_hub ? "registry-1.docker.io" : host);
        if (docker_hub && !strchr(name, '/')) {
                if (asprintf(&r.repo, "library/%s", name) < 0)
                        r.repo = NULL;
        } else {
                r.repo = strdup(name);
        }
        if (!r.registry || !r.repo || (colon && !r.tag) || (at && !r.digest)) {
                img__ref_done(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

char *img__ref_string(const struct img_ref *r)
{
        char *s = NULL;
        if (asprintf(&s, "%s/%s%s%s%s%s", r->registry, r->repo, r->tag ? ":" : "",
                     r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
                return NULL;
        return s;
}
