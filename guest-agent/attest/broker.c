/*
 * The `kbs` key broker for the image pull (struct img_key_broker, guest-agent/image/image.h):
 * a layer whose key-provider annotation names `kbs:///repo/type/tag` gets that KEK from the
 * KBS after attestation (attestation-kbs.md 6.3), one attestation for all the layers of the
 * pull. Private keys for JWE recipients, and resources it holds, still come from the
 * offline_fs broker when one is configured too, so an image encrypted for both opens either
 * way. Keys stay in this process's memory, which is the guest's.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "guest-agent/attest/kbc.h"
#include "guest-agent/image/image.h"

struct kbs_broker {
        struct kbc_client *client;
        struct img_key_broker *local; /* offline_fs, or NULL */
        char *url;
};

static int kb_private_key(void *data, size_t n, const char **ret_pem, size_t *ret_len,
                          const char **ret_id)
{
        struct kbs_broker *b = data;
        if (!b->local || !b->local->private_key)
                return -ENOENT;
        return b->local->private_key(b->local->data, n, ret_pem, ret_len, ret_id);
}

static int kb_resource(void *data, const char *uri, uint8_t **ret, size_t *ret_len,
                       struct cc_error **err)
{
        struct kbs_broker *b = data;
        if (b->local && b->local->resource) {
                _cleanup_error_ struct cc_error *e = NULL;
                if (b->local->resource(b->local->data, uri, ret, ret_len, &e) == 0)
                        return 0;
        }
        int r = kbc_client_get_resource(b->client, uri, ret, ret_len, err);
        if (r < 0)
                return r;
        struct kbc_timings t;
        kbc_client_timings(b->client, &t);
        cc_log_info("key %s from the KBS %s: %zu bytes auth_ms=%.1f attest_ms=%.1f "
                    "resource_ms=%.1f decrypt_ms=%.1f attestations=%u",
                    uri, b->url, *ret_len, t.auth_ms, t.attest_ms, t.resource_ms, t.decrypt_ms,
                    t.attestations);
        return 0;
}

static void kb_free(void *data)
{
        struct kbs_broker *b = data;
        if (!b)
                return;
        kbc_client_free(b->client);
        img_key_broker_free(b->local);
        free(b->url);
        free(b);
}

int kbc_key_broker(const struct kbc_client_config *cfg, struct img_key_broker *local,
                   struct img_key_broker **ret, struct cc_error **err)
{
        struct kbs_broker *b = calloc(1, sizeof(*b));
        struct img_key_broker *kb = calloc(1, sizeof(*kb));
        if (!b || !kb || !(b->url = strdup(cfg->url))) {
                free(b);
                free(kb);
                return -ENOMEM;
        }
        int r = kbc_client_new(cfg, &b->client, err);
        if (r < 0) {
                kb_free(b);
                free(kb);
                return r;
        }
        b->local = local;
        *kb = (struct img_key_broker){
                .name = "kbs",
                .data = b,
                .private_key = kb_private_key,
                .resource = kb_resource,
                .free = kb_free,
        };
        *ret = kb;
        return 0;
}
