/*
 * Fuzz target: signature policy configuration. The input is loaded as a policy.json (then
 * scopes are chosen and the policy is evaluated for a few references against a source with
 * one garbage simple signature and no sigstore attachment), and parsed as a registries.d YAML
 * file (then lookaside locations are resolved).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/sig-internal.h"

#define DIGEST "sha256:82d1529f1ae3ecc9c31bd37c376090bd007f397a43f1c21b07e71df4b4f53035"

static int one_blob(void *data, const char *digest, struct img_sig_blob **ret, size_t *ret_n,
                    struct cc_error **err)
{
        struct img_sig_blob *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->data = (uint8_t *)strdup("\xa3\x01garbage");
        b->len = b->data ? 9 : 0;
        b->name = strdup("signature-1");
        *ret = b;
        *ret_n = 1;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const refs[] = {"127.0.0.1:5000/test/app:v1", "busybox",
                                           ("quay.io/a/b@" DIGEST), "registry.example.com/x/y:z"};
        struct cc_error *err = NULL;
        struct img_policy *p = NULL;
        if (img__policy_load(data, size, "/nonexistent", &p, &err) == 0) {
                struct img_sig_source src = {.simple = one_blob};
                for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
                        img__policy_scope_for(p, refs[i]);
                        img__policy_check(p, refs[i], DIGEST, i % 2 ? DIGEST : NULL, &src, 0, &err);
                }
                img__policy_free(p);
        }
        struct img_regsd *rd = NULL;
        if (img__regsd_load(NULL, &rd, &err) == 0) {
                if (img__regsd_add(rd, "fuzz.yaml", data, size, &err) == 0)
                        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
                                free(img__lookaside_url(img__regsd_lookaside(rd, refs[i]),
                                                        "127.0.0.1:5000/test/app", DIGEST, 1));
                                img__regsd_use_attachments(rd, refs[i]);
                        }
                img__regsd_free(rd);
        }
        cc_error_free(err);
        return 0;
}
