/*
 * Fuzz target: the shim's OCI config.json -> grpc.Spec translation (shim_spec_from_oci) and the
 * exec Process translation. config.json is written by containerd from client input, so every
 * shape must translate or fail cleanly, and the result must encode (no dangling pointer).
 */
#include <stdint.h>
#include <stdlib.h>

#include "cc/json.h"
#include "cc/log.h"
#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cc_log_set_level(CC_LOG_FATAL);
        struct json_object *o = NULL;
        if (cc_json_parse("fuzz", (const char *)data, size, 0, &o, NULL) < 0)
                return 0;
        Grpc__Spec *s = NULL;
        struct shim_file_copy *files = NULL;
        size_t n = 0;
        struct cc_error *err = NULL;
        if (shim_spec_from_oci(o, "c1", "/run/kata-containers/shared/containers/c1/rootfs", &s,
                               &files, &n, &err) == 0) {
                size_t len = protobuf_c_message_get_packed_size(&s->base);
                uint8_t *buf = malloc(len ? len : 1);
                if (buf)
                        protobuf_c_message_pack(&s->base, buf);
                free(buf);
                protobuf_c_message_free_unpacked(&s->base, NULL);
                shim_file_copies_free(files, n);
        }
        cc_error_free(err);
        err = NULL;
        struct json_object *p = NULL;
        Grpc__Process *gp = NULL;
        if (json_object_object_get_ex(o, "process", &p) &&
            shim_process_from_oci(p, &gp, &err) == 0)
                protobuf_c_message_free_unpacked(&gp->base, NULL);
        cc_error_free(err);
        err = NULL;
        Grpc__LinuxResources *r = NULL;
        if (shim_resources_from_oci(o, &r, &err) == 0)
                protobuf_c_message_free_unpacked(&r->base, NULL);
        cc_error_free(err);
        const char *sb = NULL;
        (void)shim_spec_role(o, "c1", &sb);
        json_object_put(o);
        return 0;
}
