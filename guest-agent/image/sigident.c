/*
 * Docker references as policies and signatures name them, and the signedIdentity rules of
 * containers-policy.json(5) with containers/image's semantics: both sides are normalised with
 * Docker's rules (docker.io, library/, no default tag on the signed side) before comparing.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/json.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

const char *const img__identity_names[] = {
        [IMG_ID_REPO_DIGEST_OR_EXACT] = "matchRepoDigestOrExact",
        [IMG_ID_MATCH_REPOSITORY] = "matchRepository",
        [IMG_ID_MATCH_EXACT] = "matchExact",
        [IMG_ID_EXACT_REFERENCE] = "exactReference",
        [IMG_ID_EXACT_REPOSITORY] = "exactRepository",
        [IMG_ID_REMAP] = "remapIdentity",
        NULL,
};

void img__dref_done(struct img_dref *r)
{
        free(r->name);
        free(r->tag);
        free(r->digest);
        *r = (struct img_dref){0};
}

int img__dref_parse(const char *s, bool default_tag, struct img_dref *ret, struct cc_error **err)
{
        struct img_ref r;
        int q = img__ref_parse(s, &r, err);
        if (q < 0)
                return q;
        /* img__ref_parse adds ":latest" to a name-only reference; undo that unless wanted. */
        bool had_tag = true;
        if (r.tag && !r.digest && !strcmp(r.tag, "latest")) {
                const char *last = strrchr(s, '/');
                had_tag = strchr(last ? last : s, ':') != NULL;
        }
        struct img_dref d = {0};
        /* The API host of Docker Hub is not its name in references, scopes and signatures. */
        const char *host = strcmp(r.registry, "registry-1.docker.io") ? r.registry : "docker.io";
        if (asprintf(&d.name, "%s/%s", host, r.repo) < 0)
                d.name = NULL;
        if (r.tag && (had_tag || default_tag))
                d.tag = strdup(r.tag);
        if (r.digest)
                d.digest = strdup(r.digest);
        bool oom =
                !d.name || (r.tag && (had_tag || default_tag) && !d.tag) || (r.digest && !d.digest);
        img__ref_done(&r);
        if (oom) {
                img__dref_done(&d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

char *img__dref_string(const struct img_dref *r)
{
        char *s;
        if (asprintf(&s, "%s%s%s%s%s", r->name, r->tag ? ":" : "", r->tag ? r->tag : "",
                     r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
                return NULL;
        return s;
}

static bool dref_name_only(const struct img_dref *r)
{
        return !r->tag && !r->digest;
}

/* Both parse and their full strings are equal. */
static bool dref_equal(const struct img_dref *a, const struct img_dref *b)
{
        _cleanup_free_ char *x = img__dref_string(a), *y = img__dref_string(b);
        return x && y && !strcmp(x, y);
}

/* matchRepoDigestOrExact: the signature names a tag or digest; an intended tag must match the
 * full string, an intended digest-only reference only the repository (the digest itself is
 * checked against the manifest separately). */
static bool match_repo_digest_or_exact(const struct img_dref *img, const struct img_dref *sig)
{
        if (dref_name_only(sig))
                return false;
        if (img->tag)
                return dref_equal(img, sig);
        if (img->digest)
                return !strcmp(img->name, sig->name);
        return false;
}

bool img__identity_matches(const struct img_sig_identity *id, const struct img_dref *img,
                           const char *signed_ref)
{
        struct img_dref sig;
        if (img__dref_parse(signed_ref, false, &sig, NULL) < 0)
                return false;
        /* A reference with both a tag and a digest (how the shim names a CRI image: the tag the
         * pod asked for, pinned to the digest containerd resolved) is identified by its tag; the
         * digest is the manifest's, which the signature's digest is checked against anyway.
         * containers/image never evaluates such a reference (its docker transport refuses it). */
        struct img_dref tagged = *img;
        if (img->tag && img->digest) {
                tagged.digest = NULL;
                img = &tagged;
        }
        bool ok = false;
        switch (id->type) {
        case IMG_ID_REPO_DIGEST_OR_EXACT:
                ok = match_repo_digest_or_exact(img, &sig);
                break;
        case IMG_ID_MATCH_EXACT:
                ok = !dref_name_only(img) && !dref_name_only(&sig) && dref_equal(img, &sig);
                break;
        case IMG_ID_MATCH_REPOSITORY:
                ok = !strcmp(img->name, sig.name);
                break;
        case IMG_ID_EXACT_REFERENCE: {
                struct img_dref want;
                if (img__dref_parse(id->ref, false, &want, NULL) == 0) {
                        ok = !dref_name_only(&want) && !dref_name_only(&sig) &&
                             dref_equal(&want, &sig);
                        img__dref_done(&want);
                }
                break;
        }
        case IMG_ID_EXACT_REPOSITORY: {
                struct img_dref want;
                if (img__dref_parse(id->ref, false, &want, NULL) == 0) {
                        ok = !strcmp(want.name, sig.name);
                        img__dref_done(&want);
                }
                break;
        }
        case IMG_ID_REMAP: {
                size_t pl = strlen(id->prefix);
                const struct img_dref *use = img;
                struct img_dref remapped = {0};
                if (!strncmp(img->name, id->prefix, pl) &&
                    (img->name[pl] == 0 || img->name[pl] == '/')) {
                        /* Replace the first occurrence of prefix in the full string (it is the
                         * name's start), then read the result again. */
                        _cleanup_free_ char *full = img__dref_string(img), *s = NULL;
                        if (full && asprintf(&s, "%s%s", id->signed_prefix, full + pl) >= 0 &&
                            img__dref_parse(s, false, &remapped, NULL) == 0)
                                use = &remapped;
                        else
                                use = NULL;
                }
                ok = use && match_repo_digest_or_exact(use, &sig);
                img__dref_done(&remapped);
                break;
        }
        }
        img__dref_done(&sig);
        return ok;
}

void img__identity_done(struct img_sig_identity *id)
{
        free(id->ref);
        free(id->prefix);
        free(id->signed_prefix);
}

/* remapIdentity prefixes: host[:port], namespace or repository, fully spelled, no tag/digest. */
static bool prefix_valid(const char *s)
{
        if (!*s || strchr(s, '@'))
                return false;
        if (!strchr(s, '/')) {
                for (const char *p = s; *p; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                              (*p >= '0' && *p <= '9') || strchr(".-:", *p)))
                                return false;
                return true;
        }
        struct img_dref d;
        if (img__dref_parse(s, false, &d, NULL) < 0)
                return false;
        bool ok = dref_name_only(&d) && !strcmp(d.name, s);
        img__dref_done(&d);
        return ok;
}

int img__identity_parse(struct json_object *o, struct img_sig_identity *id, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "signedIdentity is not an object");
        struct json_object *t = img__jget(o, "type");
        if (!json_object_is_type(t, json_type_string))
                return cc_error_set(err, EINVAL,
                                    "signedIdentity: \"type\" missing or not a string");
        const char *ts = json_object_get_string(t);
        size_t i = 0;
        while (i < (CC_ARRAY_SIZE(img__identity_names) - 1) && strcmp(img__identity_names[i], ts))
                i++;
        if (i == (CC_ARRAY_SIZE(img__identity_names) - 1))
                return cc_error_set(err, EINVAL, "signedIdentity: unknown type \"%s\"", ts);
        id->type = (enum img_id_type)i;
        int r;
        switch (id->type) {
        case IMG_ID_EXACT_REFERENCE: {
                static const char *const allowed[] = {"type", "dockerReference", NULL};
                if ((r = img__json_only_members(o, "exactReference", allowed, err)) < 0 ||
                    (r = img__json_get_string(o, "dockerReference", "exactReference", true,
                                              &id->ref, err)) < 0)
                        return r;
                struct img_dref d;
                if (img__dref_parse(id->ref, false, &d, NULL) < 0)
                        return cc_error_set(err, EINVAL, "exactReference: invalid reference \"%s\"",
                                            id->ref);
                bool name_only = dref_name_only(&d);
                img__dref_done(&d);
                if (name_only)
                        return cc_error_set(err, EINVAL,
                                            "exactReference: \"%s\" has no tag or digest", id->ref);
                return 0;
        }
        case IMG_ID_EXACT_REPOSITORY: {
                static const char *const allowed[] = {"type", "dockerRepository", NULL};
                if ((r = img__json_only_members(o, "exactRepository", allowed, err)) < 0 ||
                    (r = img__json_get_string(o, "dockerRepository", "exactRepository", true,
                                              &id->ref, err)) < 0)
                        return r;
                struct img_dref d;
                if (img__dref_parse(id->ref, false, &d, NULL) < 0)
                        return cc_error_set(err, EINVAL,
                                            "exactRepository: invalid repository \"%s\"", id->ref);
                img__dref_done(&d);
                return 0;
        }
        case IMG_ID_REMAP: {
                static const char *const allowed[] = {"type", "prefix", "signedPrefix", NULL};
                if ((r = img__json_only_members(o, "remapIdentity", allowed, err)) < 0 ||
                    (r = img__json_get_string(o, "prefix", "remapIdentity", true, &id->prefix,
                                              err)) < 0 ||
                    (r = img__json_get_string(o, "signedPrefix", "remapIdentity", true,
                                              &id->signed_prefix, err)) < 0)
                        return r;
                if (!prefix_valid(id->prefix))
                        return cc_error_set(err, EINVAL,
                                            "remapIdentity: prefix \"%s\" is not valid",
                                            id->prefix);
                if (!prefix_valid(id->signed_prefix))
                        return cc_error_set(err, EINVAL,
                                            "remapIdentity: signedPrefix \"%s\" is not valid",
                                            id->signed_prefix);
                return 0;
        }
        default: {
                static const char *const allowed[] = {"type", NULL};
                return img__json_only_members(o, ts, allowed, err);
        }
        }
}

int img__policy_identity_test(const char *rule_json, const char *image_ref, const char *signed_ref,
                              bool *ret_match, struct cc_error **err)
{
        _cleanup_(json_object_putp) struct json_object *o =
                img__json_parse_strict(rule_json, strlen(rule_json), err);
        if (!o)
                return -EINVAL;
        struct img_sig_identity id = {0};
        int r = img__identity_parse(o, &id, err);
        if (r >= 0) {
                struct img_dref img;
                r = img__dref_parse(image_ref, true, &img, err);
                if (r >= 0) {
                        *ret_match = img__identity_matches(&id, &img, signed_ref);
                        img__dref_done(&img);
                }
        }
        img__identity_done(&id);
        return r;
}
