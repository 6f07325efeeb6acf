/*
 * Fuzz target: a pod's io.katacontainers.* annotations applied under a configuration that
 * enables every hypervisor annotation (shim_annotations_apply). The annotations are the pod
 * author's bytes (config.json from containerd): each must be applied within its limits or
 * refused with an error, whatever its shape, and the configuration must stay usable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/json.h"
#include "cc/log.h"

#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cc_log_set_level(CC_LOG_FATAL);
        struct json_object *o = NULL;
        if (cc_json_parse("fuzz", (const char *)data, size, 0, &o, NULL) < 0)
                return 0;
        char *enable[] = {".*", NULL};
        char *paths[] = {"/opt/*", "/usr/bin/qemu-system-*", NULL};
        struct shim_config c;
        shim_config_init(&c);
        c.kernel_params = strdup("quiet");
        c.kernel = strdup("/k");
        c.anno = (struct shim_anno_policy){.enable = enable,
                                           .valid_hypervisor_paths = paths,
                                           .valid_kernel_paths = paths,
                                           .valid_initrd_paths = paths,
                                           .valid_firmware_paths = paths,
                                           .max_vcpus = 8,
                                           .max_memory_mib = 8192};
        struct cc_error *err = NULL;
        if (shim_annotations_apply(&c, o, &err) == 0) {
                if (c.vcpus < 1 || c.vcpus > 8 || c.memory_mib < 64 || c.memory_mib > 8192)
                        abort();
                if (c.kernel && !shim_anno_path_allowed(paths, c.kernel) && strcmp(c.kernel, "/k"))
                        abort();
        }
        cc_error_free(err);
        char *d = shim_anno_policy_describe(&c.anno);
        free(d);
        /* The vectors are this function's own: not the configuration's to free. */
        c.anno = (struct shim_anno_policy){0};
        shim_config_done(&c);
        json_object_put(o);
        return 0;
}
