/*
 * The runtime configuration: a Kata configuration file (TOML) with Kata's section and key
 * names, so that a Kata user's configuration-qemu*.toml works, plus a few keys of our own
 * (documented in the files under configs/runtime/). Reference: hypervisor-agent.md section 4.
 *
 * Rules: a key we do not know at all is warned about with file:line (a typo must not pass
 * silently, but a newer Kata file must still load); a Kata key we know and do not use is
 * accepted quietly; a known key with the wrong type or a bad value is an error that names the
 * file, line, key and reason.
 *
 * The pod's configuration (shim_config_resolve): the handler's file, or the one a pod names
 * with io.katacontainers.config_path where the handler's rules allow it (annotations.c checks
 * the path, never a weaker TEE), then the hypervisor annotations applied (annotations.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"
#include "cc/toml.h"

#include "shim/shim.h"

void shim_config_init(struct shim_config *c)
{
        *c = (struct shim_config){
                .tee = HV_TEE_NONE,
                .accel = HV_ACCEL_AUTO,
                .channel = HV_CHANNEL_AUTO,
                .vcpus = 1,
                .memory_mib = 2048,
                .dial_timeout_s = 60,
                .host_rootfs_max_bytes = 256ull << 20,
                .create_container_timeout_s = 60,
                .hotplug_slots = SHIM_HOTPLUG_SLOTS_DEFAULT,
        };
}

void shim_config_done(struct shim_config *c)
{
        free(c->path);
        free(c->section);
        free(c->backend);
        free(c->vmm_path);
        free(c->kernel);
        free(c->initrd);
        free(c->firmware);
        free(c->machine_type);
        free(c->kernel_params);
        free(c->initdata_file);
        free(c->initdata_annotation);
        shim_anno_policy_done(&c->anno);
        *c = (struct shim_config){0};
}

/* Kata keys accepted and not used (yet); from Kata's configuration-qemu*.toml files. */
static const char *const kata_hv_ignored[] = {"image",
                                              "firmware_volume",
                                              "snp_id_block",
                                              "snp_id_auth",
                                              "snp_guest_policy",
                                              "sev_guest_policy",
                                              "sev_cert_chain",
                                              "tdx_quote_generation_service_socket_port",
                                              "kernel_verity_params",
                                              "cpu_features",
                                              "default_bridges",
                                              "shared_fs",
                                              "virtio_fs_daemon",
                                              "virtio_fs_cache",
                                              "virtio_fs_cache_size",
                                              "virtio_fs_extra_args",
                                              "valid_virtio_fs_daemon_paths",
                                              "disable_block_device_use",
                                              "block_device_driver",
                                              "block_device_aio",
                                              "block_device_cache_set",
                                              "block_device_cache_direct",
                                              "block_device_cache_noflush",
                                              "disable_image_nvdimm",
                                              "rootless",
                                              "disable_nesting_checks",
                                              "hypervisor_params",
                                              "memory_slots",
                                              "memory_offset",
                                              "enable_virtio_mem",
                                              "disable_selinux",
                                              "disable_guest_selinux",
                                              "file_mem_backend",
                                              "valid_file_mem_backends",
                                              "pflashes",
                                              "msize_9p",
                                              "disable_vhost_net",
                                              "entropy_source",
                                              "valid_entropy_sources",
                                              "hotplug_vfio_on_root_bus",
                                              "hot_plug_vfio",
                                              "cold_plug_vfio",
                                              "pcie_switch_port",
                                              "enable_iommu",
                                              "enable_iommu_platform",
                                              "guest_hook_path",
                                              "rx_rate_limiter_max_rate",
                                              "tx_rate_limiter_max_rate",
                                              "guest_memory_dump_path",
                                              "guest_memory_dump_paging",
                                              "enable_guest_swap",
                                              "use_legacy_serial",
                                              "seccompsandbox",
                                              "indep_iothreads",
                                              "reclaim_guest_freed_memory",
                                              "guest_pre_attestation",
                                              "guest_pre_attestation_kbs_uri",
                                              "guest_pre_attestation_kbs_mode",
                                              "guest_pre_attestation_keyset",
                                              "ctlpath",
                                              "jailer_path",
                                              "valid_jailer_paths",
                                              "contextswitch",
                                              "vhost_user_store_path",
                                              "valid_vhost_user_store_paths",
                                              "enable_vhost_user_store",
                                              "machine_accelerators",
                                              "enable_hugepages",
                                              "mem_prealloc",
                                              "enable_mem_prealloc",
                                              "confidential_guest_mode",
                                              "initrd_confidential",
                                              "kernel_confidential"};
static const char *const kata_agent_ignored[] = {"enable_tracing",         "kernel_modules",
                                                 "launch_process_timeout", "container_pipe_size",
                                                 "mem_agent_enable",       "cdh_api_timeout"};
static const char *const kata_runtime_ignored[] = {"sandbox_cgroup_only",
                                                   "static_sandbox_resource_mgmt",
                                                   "disable_guest_seccomp",
                                                   "disable_guest_empty_dir",
                                                   "emptydir_mode",
                                                   "dan_conf",
                                                   "experimental_force_guest_pull",
                                                   "kubelet_root_dir",
                                                   "pod_resource_api_sock",
                                                   "enable_pprof",
                                                   "vfio_mode",
                                                   "experimental",
                                                   "enable_debug",
                                                   "enable_tracing",
                                                   "disable_new_netns",
                                                   "sandbox_bind_mounts",
                                                   "jaeger_endpoint",
                                                   "jaeger_user",
                                                   "jaeger_password",
                                                   "sealed_secret_enabled",
                                                   "enable_vcpus_pinning",
                                                   "disable_selinux",
                                                   "disable_guest_selinux",
                                                   "guest_selinux_label",
                                                   "static_sandbox_workload_defaults",
                                                   "name",
                                                   "hypervisor_name",
                                                   "agent_name"};

static bool in_list(const char *k, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(k, list[i]) == 0)
                        return true;
        return false;
}

/* quiet: the file was named by a pod (SHIM_CONFIG_POD_NAMED): a key is content of that file,
 * so it is counted, not named. */
static void warn_unknown(const struct cc_toml_table *t, const char *section,
                         const char *const *used, size_t n_used, const char *const *ignored,
                         size_t n_ignored, bool quiet)
{
        unsigned n = 0;
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                if (in_list(e->key, used, n_used) || in_list(e->key, ignored, n_ignored))
                        continue;
                n++;
                if (!quiet)
                        cc_log_warn("%s:%u: unknown key '%s' in [%s] ignored",
                                    cc_toml_table_file(t), e->line, e->key, section);
        }
        if (quiet && n)
                cc_log_warn("%s: %u unknown key(s) in [%s] ignored (not named: the file was named "
                            "by a pod annotation)",
                            cc_toml_table_file(t), n, section);
}

/* Copies an optional string key. */
static int get_str(const struct cc_toml_table *t, const char *key, char **dst,
                   struct cc_error **err)
{
        const char *v = NULL;
        int r = cc_toml_get_string(t, key, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        free(*dst);
        *dst = copy;
        return 0;
}

static int get_bool(const struct cc_toml_table *t, const char *key, bool *dst,
                    struct cc_error **err)
{
        int r = cc_toml_get_bool(t, key, dst, err);
        return r == -ENOENT ? 0 : r;
}

static int get_uint(const struct cc_toml_table *t, const char *key, int64_t min, int64_t max,
                    unsigned *dst, struct cc_error **err)
{
        int64_t v;
        int r = cc_toml_get_int64_range(t, key, min, max, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *dst = (unsigned)v;
        return 0;
}

/* "file:line: key 'k': reason" for a key that exists; the key's own position. */
static _printf_(4, 5) int bad_value(const struct cc_toml_table *t, const char *key,
                                    struct cc_error **err, const char *fmt, ...)
{
        const struct cc_toml_entry *e = cc_toml_table_get(t, key);
        char reason[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        return cc_error_set(err, EINVAL, "%s:%u: key '%s': %s", cc_toml_table_file(t),
                            e ? e->line : 0, key, reason);
}

/* Confidential guest without an explicit TEE: the host's CPU vendor decides, as in Kata. */
static enum hv_tee host_tee_guess(void)
{
        if (access("/sys/module/kvm_intel/parameters/tdx", F_OK) == 0)
                return HV_TEE_TDX;
        if (access("/sys/module/kvm_amd/parameters/sev", F_OK) == 0)
                return HV_TEE_SEV;
        _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
        char line[256];
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "vendor_id", 9) == 0)
                        return strstr(line, "AuthenticAMD") ? HV_TEE_SEV : HV_TEE_TDX;
        return HV_TEE_TDX;
}

static int load_hypervisor(const struct cc_toml_table *hv, const char *name, struct shim_config *c,
                           bool quiet, struct cc_error **err)
{
        static const char *const used[] = {
                "path", "kernel", "initrd", "firmware", "machine_type", "confidential_guest",
                "sev_snp_guest", "default_vcpus", "default_memory", "kernel_params", "enable_debug",
                "backend", "accel", "agent_channel", "tee",
                /* annotations.c: which pod annotations are honoured */
                "enable_annotations", "valid_hypervisor_paths", "valid_kernel_paths",
                "valid_initrd_paths", "valid_firmware_paths", "default_maxvcpus",
                "default_maxmemory",
                /* initdata.c: the pod owner's initdata (ours: Kata takes it from the annotation) */
                "initdata", "initdata_required",
                /* devices.c: hot-plug slots for block devices (Kata's key) */
                "pcie_root_port"};
        int r;
        warn_unknown(hv, name, used, CC_ARRAY_SIZE(used), kata_hv_ignored,
                     CC_ARRAY_SIZE(kata_hv_ignored), quiet);
        free(c->backend);
        if (!(c->backend = strdup(strcmp(name, "hypervisor.clh") == 0 ? "clh" : "qemu")))
                return -ENOMEM;
        if ((r = get_str(hv, "path", &c->vmm_path, err)) < 0 ||
            (r = get_str(hv, "kernel", &c->kernel, err)) < 0 ||
            (r = get_str(hv, "initrd", &c->initrd, err)) < 0 ||
            (r = get_str(hv, "firmware", &c->firmware, err)) < 0 ||
            (r = get_str(hv, "machine_type", &c->machine_type, err)) < 0 ||
            (r = get_str(hv, "kernel_params", &c->kernel_params, err)) < 0 ||
            (r = get_str(hv, "backend", &c->backend, err)) < 0 ||
            (r = get_uint(hv, "default_vcpus", 1, 256, &c->vcpus, err)) < 0 ||
            (r = get_uint(hv, "default_memory", 64, 1 << 20, &c->memory_mib, err)) < 0 ||
            (r = get_bool(hv, "enable_debug", &c->debug, err)) < 0 ||
            (r = get_str(hv, "initdata", &c->initdata_file, err)) < 0 ||
            (r = get_bool(hv, "initdata_required", &c->initdata_required, err)) < 0 ||
            (r = get_uint(hv, "pcie_root_port", 0, SHIM_HOTPLUG_SLOTS_MAX, &c->hotplug_slots,
                          err)) < 0)
                return r;
        bool confidential = false, snp = false;
        if ((r = get_bool(hv, "confidential_guest", &confidential, err)) < 0 ||
            (r = get_bool(hv, "sev_snp_guest", &snp, err)) < 0)
                return r;
        const char *s = NULL;
        if ((r = cc_toml_get_string(hv, "tee", &s, err)) == 0) {
                if (hv_tee_from_string(s, &c->tee) < 0)
                        return bad_value(hv, "tee", err,
                                         "unknown TEE '%s' (none, tdx, sev, sev-es, sev-snp)", s);
                if (c->tee != HV_TEE_NONE && !confidential)
                        return bad_value(hv, "tee", err, "TEE '%s' needs confidential_guest = true",
                                         s);
        } else if (r != -ENOENT) {
                return r;
        } else if (confidential) {
                c->tee = snp ? HV_TEE_SEV_SNP : host_tee_guess();
        }
        if (snp && !confidential)
                return bad_value(hv, "sev_snp_guest", err, "%s needs confidential_guest = true",
                                 "sev_snp_guest");
        if ((r = cc_toml_get_string(hv, "accel", &s, err)) == 0) {
                if (hv_accel_from_string(s, &c->accel) < 0)
                        return bad_value(hv, "accel", err,
                                         "unknown accelerator '%s' (auto, kvm, tcg)", s);
        } else if (r != -ENOENT) {
                return r;
        }
        if ((r = cc_toml_get_string(hv, "agent_channel", &s, err)) == 0) {
                if (hv_channel_from_string(s, &c->channel) < 0)
                        return bad_value(hv, "agent_channel", err,
                                         "unknown agent channel '%s' (auto, vsock, serial)", s);
        } else if (r != -ENOENT) {
                return r;
        }
        bool known = false;
        for (const char *const *b = hv_backend_names(); *b; b++)
                known = known || strcmp(*b, c->backend) == 0;
        if (!known)
                return bad_value(hv, cc_toml_table_get(hv, "backend") ? "backend" : "path", err,
                                 "unknown hypervisor backend '%s'", c->backend);
        if (c->machine_type && strcmp(c->machine_type, "q35") != 0 &&
            strncmp(c->machine_type, "pc-q35", 6) != 0)
                return bad_value(hv, "machine_type", err,
                                 "machine type '%s' is not supported (q35)", c->machine_type);
        return 0;
}

/* One of the two network model keys into *ret; *found says whether the key is there. */
static int get_network_model(const struct cc_toml_table *rt, const char *key,
                             enum shim_net_model *ret, bool *found, struct cc_error **err)
{
        const char *s = NULL;
        int r = cc_toml_get_string(rt, key, &s, err);
        *found = r == 0;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (shim_net_model_from_string(s, ret, NULL) < 0)
                return bad_value(rt, key, err, "unknown network model '%s' (tcfilter, none, user)",
                                 s);
        return 0;
}

/*
 * [runtime] network_model, or Kata's own key internetworking_model with the same values (both
 * may be set if they agree). user is QEMU's slirp: development only, so QEMU only and never for
 * a TEE profile (a confidential guest's traffic goes through the pod's own interfaces).
 */
static int load_network_model(const struct cc_toml_table *rt, struct shim_config *c,
                              struct cc_error **err)
{
        enum shim_net_model ours = SHIM_NET_MODEL_TCFILTER, kata = SHIM_NET_MODEL_TCFILTER;
        bool has_ours = false, has_kata = false;
        int r;
        if ((r = get_network_model(rt, "network_model", &ours, &has_ours, err)) < 0 ||
            (r = get_network_model(rt, "internetworking_model", &kata, &has_kata, err)) < 0)
                return r;
        if (has_ours && has_kata && ours != kata)
                return bad_value(rt, "internetworking_model", err,
                                 "'%s' disagrees with network_model = '%s'; set one of them",
                                 shim_net_model_to_string(kata), shim_net_model_to_string(ours));
        c->network_model = has_ours ? ours : kata;
        const char *key = has_ours ? "network_model" : "internetworking_model";
        if (c->network_model == SHIM_NET_MODEL_USER && c->tee != HV_TEE_NONE)
                return bad_value(rt, key, err,
                                 "the user-mode network is for development only and is refused "
                                 "for the %s profile (use tcfilter)",
                                 hv_tee_to_string(c->tee));
        if (c->network_model == SHIM_NET_MODEL_USER && strcmp(c->backend, "qemu") != 0 &&
            strcmp(c->backend, "mock") != 0)
                return bad_value(rt, key, err,
                                 "the user-mode network exists only with the qemu backend, not %s",
                                 c->backend);
        return 0;
}

/* The document's configuration into c; every message may quote the file (see the caller). */
static int load_doc(const char *path, const struct cc_toml_table *doc, struct shim_config *c,
                    bool quiet, struct cc_error **err)
{
        int r;
        static const char *const top[] = {"hypervisor", "agent",   "runtime",
                                          "image",      "factory", "netmon"};
        warn_unknown(doc, "top level", top, CC_ARRAY_SIZE(top), NULL, 0, quiet);

        const struct cc_toml_table *hvs = NULL;
        if ((r = cc_toml_get_table(doc, "hypervisor", &hvs, err)) < 0 && r != -ENOENT)
                return r;
        size_t n_hv = hvs ? cc_toml_table_size(hvs) : 0;
        if (n_hv == 0)
                return cc_error_set(err, EINVAL, "%s: no [hypervisor.<name>] section", path);
        if (n_hv > 1)
                return cc_error_set(err, EINVAL,
                                    "%s: more than one [hypervisor.<name>] section; keep one",
                                    path);
        const struct cc_toml_entry *he = cc_toml_table_entry(hvs, 0);
        if (he->value.type != CC_TOML_TABLE)
                return cc_error_set(err, EINVAL, "%s:%u: 'hypervisor.%s' must be a table", path,
                                    he->line, he->key);
        if (strcmp(he->key, "qemu") != 0 && strcmp(he->key, "clh") != 0)
                return cc_error_set(err, EINVAL,
                                    "%s:%u: hypervisor '%s' is not supported (qemu, clh)", path,
                                    he->line, he->key);
        char section[64];
        snprintf(section, sizeof(section), "hypervisor.%s", he->key);
        free(c->section);
        if (!(c->section = strdup(section)))
                return -ENOMEM;
        if ((r = load_hypervisor(he->value.table, section, c, quiet, err)) < 0)
                return r;

        const struct cc_toml_table *agents = NULL, *ak = NULL;
        if ((r = cc_toml_get_table(doc, "agent", &agents, err)) < 0 && r != -ENOENT)
                return r;
        if (agents && (r = cc_toml_get_table(agents, "kata", &ak, err)) < 0 && r != -ENOENT)
                return r;
        if (ak) {
                static const char *const used[] = {"enable_debug", "dial_timeout",
                                                   "debug_console_enabled"};
                warn_unknown(ak, "agent.kata", used, CC_ARRAY_SIZE(used), kata_agent_ignored,
                             CC_ARRAY_SIZE(kata_agent_ignored), quiet);
                bool dbg = false;
                if ((r = get_bool(ak, "enable_debug", &dbg, err)) < 0 ||
                    (r = get_uint(ak, "dial_timeout", 1, 3600, &c->dial_timeout_s, err)) < 0 ||
                    (r = get_bool(ak, "debug_console_enabled", &c->debug_console, err)) < 0)
                        return r;
                c->debug = c->debug || dbg;
                /* A shell in a confidential guest is a hole in it: a TEE handler gets one only
                 * because its own file says so, and it is then on the measured kernel command
                 * line (agent.debug_console), so a verifier sees it. Said at every load. */
                if (c->debug_console && c->tee != HV_TEE_NONE && !quiet)
                        cc_log_warn("%s: debug_console_enabled = true for the %s profile: the "
                                    "guest has a root shell (agent.debug_console is on the "
                                    "measured kernel command line)",
                                    c->path ? c->path : "configuration", hv_tee_to_string(c->tee));
        }

        const struct cc_toml_table *rt = NULL;
        if ((r = cc_toml_get_table(doc, "runtime", &rt, err)) < 0 && r != -ENOENT)
                return r;
        if (rt) {
                static const char *const used[] = {
                        "allow_host_rootfs",        "host_rootfs_max_mib",
                        "create_container_timeout", "network_model",
                        "internetworking_model",    "valid_config_paths",
                        "trusted_storage_mib",      "trusted_storage_integrity"};
                warn_unknown(rt, "runtime", used, CC_ARRAY_SIZE(used), kata_runtime_ignored,
                             CC_ARRAY_SIZE(kata_runtime_ignored), quiet);
                unsigned mib = (unsigned)(c->host_rootfs_max_bytes >> 20);
                if ((r = get_bool(rt, "allow_host_rootfs", &c->allow_host_rootfs, err)) < 0 ||
                    (r = get_uint(rt, "host_rootfs_max_mib", 1, 65536, &mib, err)) < 0 ||
                    (r = get_uint(rt, "create_container_timeout", 1, 3600,
                                  &c->create_container_timeout_s, err)) < 0 ||
                    (r = get_uint(rt, "trusted_storage_mib", 0, 1u << 22, &c->trusted_storage_mib,
                                  err)) < 0 ||
                    (r = get_bool(rt, "trusted_storage_integrity", &c->trusted_storage_integrity,
                                  err)) < 0)
                        return r;
                /* LUKS2's header takes 16 MiB; below 64 MiB nothing useful is left. */
                if (c->trusted_storage_mib && c->trusted_storage_mib < 64)
                        return bad_value(rt, "trusted_storage_mib", err,
                                         "%u MiB is too small for trusted storage (0 for none, "
                                         "at least 64)",
                                         c->trusted_storage_mib);
                c->host_rootfs_max_bytes = (uint64_t)mib << 20;
                if (c->allow_host_rootfs && c->tee != HV_TEE_NONE)
                        return bad_value(rt, "allow_host_rootfs", err,
                                         "sharing the host rootfs is refused for the %s profile: "
                                         "a confidential guest must pull its images itself",
                                         hv_tee_to_string(c->tee));
                if ((r = load_network_model(rt, c, err)) < 0)
                        return r;
        }
        shim_anno_policy_done(&c->anno);
        if ((r = shim_anno_policy_load(he->value.table, rt, &c->anno, err)) < 0)
                return r;
        if (!c->kernel)
                return cc_error_set(err, EINVAL, "%s: [%s] has no 'kernel'", path, section);
        return 0;
}

int shim_config_load_flags(const char *path, unsigned flags, struct shim_config *c,
                           struct cc_error **err)
{
        bool pod_named = flags & SHIM_CONFIG_POD_NAMED;
        /* cc_read_file: opened O_NONBLOCK (a FIFO fails at once), regular files only, at most
         * CC_TOML_MAX_SIZE bytes; its messages hold the path and errno text, nothing read. */
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = cc_read_file(path, CC_TOML_MAX_SIZE, &text, &len, err);
        if (r < 0)
                return r;
        free(c->path);
        if (!(c->path = strdup(path)))
                return -ENOMEM;
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        _cleanup_error_ struct cc_error *detail = NULL;
        struct cc_error **e = pod_named ? &detail : err;
        if ((r = cc_toml_parse_string(path, text, len, &doc, e)) == 0)
                r = load_doc(path, doc, c, pod_named, e);
        if (r < 0 && pod_named && r != -ENOMEM)
                /* The parser and the loader quote what they read ("invalid value '...'"): not
                 * for the pod author, who may have named a file they cannot read. */
                return cc_error_set(err, EINVAL,
                                    "%s: not a valid runtime configuration (the reason is not "
                                    "shown because a pod annotation named the file; "
                                    "`cc-runtime check --config %s` on the node shows it)",
                                    path, path);
        return r;
}

int shim_config_load(const char *path, struct shim_config *c, struct cc_error **err)
{
        return shim_config_load_flags(path, 0, c, err);
}

/* The position of `key` in the file for messages of shim_config_check(). */
int shim_config_check(const struct shim_config *c, struct cc_error **err)
{
        const char *file = c->path ? c->path : "built-in configuration";
        struct {
                const char *key, *path;
        } files[] = {{"kernel", c->kernel}, {"initrd", c->initrd}, {"firmware", c->firmware}};
        for (size_t i = 0; i < CC_ARRAY_SIZE(files); i++) {
                if (cc_isempty(files[i].path) || strcmp(c->backend, "mock") == 0)
                        continue;
                if (access(files[i].path, R_OK) < 0)
                        return cc_error_set(err, errno, "%s: key '%s': %s: %m", file, files[i].key,
                                            files[i].path);
        }
        return 0;
}

/* ---- the pod's configuration ----------------------------------------------------------------- */

static const char *config_name(const struct shim_config *c)
{
        return c->path ? c->path : "the built-in configuration";
}

/* Whether a configuration with TEE `to` keeps at least the protection of `from`: no TEE asked
 * for, the same TEE, or a later SEV generation (SEV < SEV-ES < SEV-SNP). */
static bool tee_keeps(enum hv_tee from, enum hv_tee to)
{
        if (from == HV_TEE_NONE || from == to)
                return true;
        static const int sev_rank[_HV_TEE_MAX] = {
                [HV_TEE_SEV] = 1, [HV_TEE_SEV_ES] = 2, [HV_TEE_SEV_SNP] = 3};
        return sev_rank[from] && sev_rank[to] >= sev_rank[from];
}

/* The file io.katacontainers.config_path names, if the handler's configuration (c) allows it:
 * c is replaced by that file's configuration. */
static int select_config(struct shim_config *c, const char *path, struct cc_error **err)
{
        const char *key = SHIM_ANNO_CONFIG_PATH;
        char *const *globs = c->anno.valid_config_paths;
        /* Checked before anything touches the path: a refused one is never opened. */
        if (!shim_anno_path_allowed(globs, path))
                return cc_error_set(err, EINVAL,
                                    "annotation %s refused: '%.256s' is not an absolute "
                                    "clean path matched by [runtime] valid_config_paths of "
                                    "%s%s",
                                    key, path, config_name(c),
                                    globs && *globs ? ""
                                                    : " (empty: a pod may not choose "
                                                      "its configuration)");
        struct shim_config chosen;
        shim_config_init(&chosen);
        int r = shim_config_load_flags(path, SHIM_CONFIG_POD_NAMED, &chosen, err);
        if (r < 0) {
                shim_config_done(&chosen);
                return cc_error_wrap(err, -r, "annotation %s", key);
        }
        if (!tee_keeps(c->tee, chosen.tee)) {
                bool weaker = chosen.tee == HV_TEE_NONE ||
                              (chosen.tee >= HV_TEE_SEV && c->tee >= HV_TEE_SEV);
                r = cc_error_set(err, EINVAL,
                                 "annotation %s refused: %s has TEE %s, %s this handler's "
                                 "TEE %s (%s); a pod annotation never weakens or changes "
                                 "the TEE of its runtime handler",
                                 key, path, hv_tee_to_string(chosen.tee),
                                 weaker ? "weaker than" : "not", hv_tee_to_string(c->tee),
                                 config_name(c));
                shim_config_done(&chosen);
                return r;
        }
        cc_log_info("annotation %s: configuration %s (TEE %s) instead of %s", key, path,
                    hv_tee_to_string(chosen.tee), config_name(c));
        shim_config_done(c);
        *c = chosen;
        return 0;
}

int shim_config_resolve(const char *handler_path, struct json_object *spec, struct shim_config *c,
                        struct cc_error **err)
{
        cc_log_info("configuration %s", handler_path);
        int r = shim_config_load(handler_path, c, err);
        if (r < 0)
                return r;
        const char *chosen = shim_spec_annotation(spec, SHIM_ANNO_CONFIG_PATH);
        if (!cc_isempty(chosen) && (r = select_config(c, chosen, err)) < 0)
                return r;
        if ((r = shim_annotations_apply(c, spec, err)) < 0)
                return r;
        return shim_config_check(c, err);
}
