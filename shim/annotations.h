#pragma once
/*
 * Which pod annotations a runtime configuration honours (annotations.c). Pod authors are a
 * party of their own on the node (DESIGN.md, Trust): their io.katacontainers.* annotations are
 * honoured only as far as the handler's configuration enables them, with Kata's keys and
 * Kata's default, nothing:
 *
 *   [hypervisor.<name>] enable_annotations      Kata: the hypervisor annotations accepted, each
 *                                               a regular expression (POSIX ERE here) matched
 *                                               against the whole name after
 *                                               io.katacontainers.config.hypervisor.
 *   [hypervisor.<name>] valid_hypervisor_paths  Kata: globs a `path` annotation must match
 *   [hypervisor.<name>] valid_kernel_paths      ours, in Kata's spirit: the same for `kernel`,
 *                       valid_initrd_paths      `initrd` and `firmware` (Kata gates those by
 *                       valid_firmware_paths    enable_annotations alone)
 *   [runtime] valid_config_paths                ours: globs io.katacontainers.config_path must
 *                                               match (Kata honours that annotation always)
 *   [hypervisor.<name>] default_maxvcpus,       Kata: the upper bound of default_vcpus and
 *                       default_maxmemory       default_memory annotations (0 or absent: the
 *                                               host's CPUs, the host's memory)
 *
 * This header is self-contained so that cc-runtime (hypervisor/main.c) can describe a
 * configuration's policy without the rest of the shim.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cc/error.h"
#include "cc/toml.h"

#define SHIM_ANNO_PREFIX      "io.katacontainers."
#define SHIM_ANNO_HV_PREFIX   "io.katacontainers.config.hypervisor."
#define SHIM_ANNO_CONFIG_PATH "io.katacontainers.config_path"

struct shim_anno_policy {
        char **enable; /* enable_annotations, as written */
        char **valid_hypervisor_paths, **valid_kernel_paths, **valid_initrd_paths,
                **valid_firmware_paths;
        char **valid_config_paths;
        unsigned max_vcpus;      /* default_maxvcpus; 0: the host's online CPUs */
        unsigned max_memory_mib; /* default_maxmemory; 0: the host's memory */
};

void shim_anno_policy_done(struct shim_anno_policy *p);
/*
 * Reads the policy keys of one configuration: hv is its [hypervisor.<name>] table, rt its
 * [runtime] table (NULL when absent). A regular expression that does not compile, or a glob
 * that is not an absolute path, is an error naming file, line and key.
 */
int shim_anno_policy_load(const struct cc_toml_table *hv, const struct cc_toml_table *rt,
                          struct shim_anno_policy *p, struct cc_error **err);
/*
 * One line for people (cc-runtime check): every annotation the policy honours with its limits,
 * e.g. "default_vcpus (1-4), kernel_params, config_path (/etc/kata/x.toml)" or "none", and what is
 * enabled but refused all the same (an empty valid_* list, a name this runtime does not implement).
 * Malloc'ed; NULL on ENOMEM.
 */
char *shim_anno_policy_describe(const struct shim_anno_policy *p);
/* Whether enable_annotations accepts io.katacontainers.config.hypervisor.<name>. */
bool shim_anno_enabled(const struct shim_anno_policy *p, const char *name);
/*
 * Whether an annotation's path value is allowed by globs: it must be absolute and clean (no
 * empty, "." or ".." component) and match one glob with fnmatch(FNM_PATHNAME | FNM_PERIOD),
 * so that '*' stays inside one component and never matches a leading dot.
 */
bool shim_anno_path_allowed(char *const *globs, const char *path);
