/*
 * Unit tests: pod annotations under the node's rules (shim/annotations.c). Every rule has a
 * case that is honoured and one that is refused: enable_annotations (Kata's regular
 * expressions, anchored), the valid_*_paths globs (absolute, clean, one component per '*'),
 * the range of each value, annotations this runtime does not implement, and
 * io.katacontainers.config_path: allowed paths only, never opened when refused, never a weaker
 * or another TEE, a FIFO fails at once, and no message quotes the content of the file a pod
 * named.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/log.h"
#include "cc/toml.h"

#include "shim/shim.h"

static char tmp[64];

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* Writes tmp/NAME with TEXT; returns the path (malloc'ed). */
static char *file(const char *name, const char *text)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", tmp, name) > 0);
        write_file(p, text);
        return p;
}

static int setup(void **state)
{
        snprintf(tmp, sizeof(tmp), "/tmp/test-shim-anno.XXXXXX");
        assert_non_null(mkdtemp(tmp));
        return 0;
}

static int teardown(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static struct json_object *spec_with(const char *annotations_json)
{
        char buf[4096];
        snprintf(buf, sizeof(buf), "{\"annotations\": {%s}}", annotations_json);
        struct json_object *o = json_tokener_parse(buf);
        assert_non_null(o);
        return o;
}

/* A mock-backend configuration (no host files needed) with EXTRA_HV in [hypervisor.qemu] and
 * EXTRA_RT in [runtime]. */
static char *config(const char *name, const char *extra_hv, const char *extra_rt)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/k\"\n"
                 "default_vcpus = 1\ndefault_memory = 256\nkernel_params = \"quiet\"\n%s"
                 "[runtime]\n%s",
                 extra_hv, extra_rt);
        return file(name, text);
}

/* Log capture: messages go to a temporary file until log_read() returns them. */
static int log_fd = -1;
static char log_path[64];

static void log_capture(enum cc_log_level level)
{
        snprintf(log_path, sizeof(log_path), "/tmp/test-shim-anno-log.XXXXXX");
        log_fd = mkstemp(log_path);
        assert_true(log_fd >= 0);
        cc_log_set_fd(log_fd);
        cc_log_set_level(level);
}

static char *log_read(void)
{
        cc_log_set_fd(2);
        cc_log_set_level(CC_LOG_WARN);
        static char buf[16384];
        ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        close(log_fd);
        unlink(log_path);
        return buf;
}

static void expect_error(int r, int want, struct cc_error **err, const char *const *parts)
{
        if (r != want)
                fail_msg("got %d (%s), want %d", r, cc_error_message(*err), want);
        for (const char *const *p = parts; *p; p++)
                if (!strstr(cc_error_message(*err), *p))
                        fail_msg("'%s' lacks '%s'", cc_error_message(*err), *p);
        cc_error_free(*err);
        *err = NULL;
}

/* ---- the policy ------------------------------------------------------------------------------ */

static void test_policy_load(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        /* Kata's default: nothing. */
        char *p = config("none.toml", "", "");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), 0);
        assert_null(c.anno.enable);
        assert_null(c.anno.valid_config_paths);
        assert_string_equal(c.section, "hypervisor.qemu");
        char *d = shim_anno_policy_describe(&c.anno);
        assert_string_equal(d, "none");
        free(d);
        shim_config_done(&c);
        free(p);

        /* Everything, with limits; an enabled path whose list is empty and a name this runtime
         * does not implement are named as refused. */
        p = config("all.toml",
                   "enable_annotations = [\"default_(vcpus|memory)\", \"kernel_params\", "
                   "\"kernel\", \"initrd\", \"enable_iommu\"]\n"
                   "valid_kernel_paths = [\"/opt/k/*\", \"/srv/vmlinuz\"]\n"
                   "default_maxvcpus = 4\ndefault_maxmemory = 4096\n",
                   "valid_config_paths = [\"/etc/kata/*.toml\"]\n");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), 0);
        d = shim_anno_policy_describe(&c.anno);
        assert_string_equal(d, "default_vcpus (1-4), default_memory (64-4096 MiB), kernel_params, "
                               "kernel (/opt/k/* /srv/vmlinuz), config_path (/etc/kata/*.toml); "
                               "enabled but refused: initrd (valid_initrd_paths is empty), "
                               "enable_iommu (not implemented)");
        free(d);
        shim_config_done(&c);
        free(p);

        /* Bad keys: file, line, key. */
        static const struct {
                const char *hv, *rt, *want;
                int errnum;
        } bad[] = {
                {"enable_annotations = [\"default_(vcpus\"]\n", "",
                 ":7: key 'enable_annotations': 'default_(vcpus' is not a valid regular "
                 "expression"},
                {"enable_annotations = \"kernel\"\n", "", "enable_annotations"},
                {"valid_kernel_paths = [\"vmlinuz\"]\n", "",
                 ":7: key 'valid_kernel_paths': 'vmlinuz' is not an absolute path glob"},
                {"", "valid_config_paths = [\"*.toml\"]\n",
                 ":8: key 'valid_config_paths': '*.toml' is not an absolute path glob"},
                {"default_maxvcpus = 300\n", "", "key 'default_maxvcpus' must be between 0 and 256",
                 ERANGE},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
                p = config("bad.toml", bad[i].hv, bad[i].rt);
                shim_config_init(&c);
                const char *parts[] = {p, bad[i].want, NULL};
                expect_error(shim_config_load(p, &c, &err), -(bad[i].errnum ?: EINVAL), &err,
                             parts);
                shim_config_done(&c);
                free(p);
        }
}

static void test_enabled(void **state)
{
        char *enable[] = {"default_vcpus", "kernel_.*", "initrd|firmware", NULL};
        struct shim_anno_policy p = {.enable = enable};
        assert_true(shim_anno_enabled(&p, "default_vcpus"));
        assert_true(shim_anno_enabled(&p, "kernel_params"));
        assert_true(shim_anno_enabled(&p, "initrd"));
        assert_true(shim_anno_enabled(&p, "firmware"));
        /* Anchored at both ends: the whole name must match. */
        assert_false(shim_anno_enabled(&p, "default_vcpus_x"));
        assert_false(shim_anno_enabled(&p, "x_default_vcpus"));
        assert_false(shim_anno_enabled(&p, "kernel"));
        assert_false(shim_anno_enabled(&p, "initrdx"));
        assert_false(shim_anno_enabled(&p, "default_memory"));
        struct shim_anno_policy none = {0};
        assert_false(shim_anno_enabled(&none, "default_vcpus"));
}

static void test_path_allowed(void **state)
{
        char *globs[] = {"/opt/k/*", "/srv/vmlinuz", NULL};
        assert_true(shim_anno_path_allowed(globs, "/opt/k/vmlinuz"));
        assert_true(shim_anno_path_allowed(globs, "/srv/vmlinuz"));
        static const char *const refused[] = {
                "/opt/k/a/b",     /* '*' stays within one component */
                "/opt/k/.hidden", /* and does not match a leading dot */
                "/opt/k/../../etc/shadow",
                "/opt/k/./vmlinuz",
                "/opt/k//vmlinuz",
                "opt/k/vmlinuz", /* relative */
                "/opt/k/",       /* empty last component */
                "/srv/vmlinuz2",
                "",
                NULL,
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(refused); i++)
                if (shim_anno_path_allowed(globs, refused[i]))
                        fail_msg("'%s' allowed", refused[i] ? refused[i] : "(null)");
        assert_false(shim_anno_path_allowed(NULL, "/opt/k/vmlinuz"));
}

/* ---- hypervisor annotations ------------------------------------------------------------------ */

static void load(struct shim_config *c, const char *hv, const char *rt)
{
        struct cc_error *err = NULL;
        char *p = config("c.toml", hv, rt);
        shim_config_init(c);
        if (shim_config_load(p, c, &err) < 0)
                fail_msg("%s", cc_error_message(err));
        free(p);
}

static int apply(struct shim_config *c, const char *annos, struct cc_error **err)
{
        struct json_object *s = spec_with(annos);
        int r = shim_annotations_apply(c, s, err);
        json_object_put(s);
        return r;
}

static void test_not_enabled(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        load(&c, "", "");
        /* Not for io.katacontainers.*: other annotations are not ours to judge. */
        assert_int_equal(apply(&c,
                               "\"io.kubernetes.cri.sandbox-memory\": \"1\", "
                               "\"example.com/x\": \"y\"",
                               &err),
                         0);
        static const struct {
                const char *anno, *name, *extra;
        } cases[] = {
                {"\"io.katacontainers.config.hypervisor.default_vcpus\": \"2\"", "default_vcpus",
                 ")"},
                {"\"io.katacontainers.config.hypervisor.default_memory\": \"512\"",
                 "default_memory", ")"},
                {"\"io.katacontainers.config.hypervisor.kernel_params\": \"x=1\"", "kernel_params",
                 ")"},
                {"\"io.katacontainers.config.hypervisor.path\": \"/bin/sh\"", "path",
                 ", with the value in valid_hypervisor_paths)"},
                {"\"io.katacontainers.config.hypervisor.kernel\": \"/k\"", "kernel",
                 ", with the value in valid_kernel_paths)"},
                {"\"io.katacontainers.config.hypervisor.initrd\": \"/i\"", "initrd",
                 ", with the value in valid_initrd_paths)"},
                {"\"io.katacontainers.config.hypervisor.firmware\": \"/f\"", "firmware",
                 ", with the value in valid_firmware_paths)"},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
                char want[512];
                snprintf(want, sizeof(want),
                         "annotation io.katacontainers.config.hypervisor.%s refused: not enabled "
                         "for this handler (\"%s\" in [hypervisor.qemu] enable_annotations of "
                         "%s/c.toml would allow it%s",
                         cases[i].name, cases[i].name, tmp, cases[i].extra);
                const char *parts[] = {want, NULL};
                expect_error(apply(&c, cases[i].anno, &err), -EINVAL, &err, parts);
        }
        /* Nothing changed. */
        assert_int_equal(c.vcpus, 1);
        assert_int_equal(c.memory_mib, 256);
        assert_string_equal(c.kernel_params, "quiet");
        assert_string_equal(c.kernel, "/boot/k");
        shim_config_done(&c);
}

static void test_unsupported(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        /* Enabled or not, a name this runtime does not implement is refused, never dropped. */
        load(&c, "enable_annotations = [\".*\"]\n", "");
        static const char *const keys[] = {
                "io.katacontainers.config.hypervisor.enable_iommu",
                "io.katacontainers.config.hypervisor.virtio_fs_daemon",
                "io.katacontainers.config.runtime.disable_guest_seccomp",
                "io.katacontainers.config.agent.kernel_modules",
                "io.katacontainers.pkg.oci.container_type",
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(keys); i++) {
                char anno[256], want[256];
                snprintf(anno, sizeof(anno), "\"%s\": \"1\"", keys[i]);
                snprintf(want, sizeof(want),
                         "annotation %s refused: not supported by "
                         "containerd-shim-kata-cc-v2 (it honours io.katacontainers.config_path",
                         keys[i]);
                const char *parts[] = {want, "default_vcpus, default_memory, kernel_params, path",
                                       NULL};
                expect_error(apply(&c, anno, &err), -EINVAL, &err, parts);
        }
        /* A value that is not a string. */
        const char *parts[] = {"not a string", NULL};
        expect_error(apply(&c, "\"io.katacontainers.config.hypervisor.default_vcpus\": 2", &err),
                     -EINVAL, &err, parts);
        shim_config_done(&c);
}

static void test_values(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        load(&c,
             "enable_annotations = [\"default_vcpus\", \"default_memory\", \"kernel_params\"]\n"
             "default_maxvcpus = 4\ndefault_maxmemory = 4096\n",
             "");
        log_capture(CC_LOG_INFO);
        assert_int_equal(apply(&c,
                               "\"io.katacontainers.config.hypervisor.default_vcpus\": \"4\", "
                               "\"io.katacontainers.config.hypervisor.default_memory\": \"64\", "
                               "\"io.katacontainers.config.hypervisor.kernel_params\": "
                               "\"agent.log=debug x=\\\"a b\\\"\"",
                               &err),
                         0);
        /* Each honoured one is logged with the value it replaces. */
        const char *log = log_read();
        static const char *const logged[] = {
                "annotation io.katacontainers.config.hypervisor.default_vcpus: vCPUs 1 -> 4",
                "annotation io.katacontainers.config.hypervisor.default_memory: memory 256 -> 64 "
                "MiB",
                "annotation io.katacontainers.config.hypervisor.kernel_params: kernel parameters",
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(logged); i++)
                if (!strstr(log, logged[i]))
                        fail_msg("the log lacks '%s': %s", logged[i], log);
        assert_int_equal(c.vcpus, 4);
        assert_int_equal(c.memory_mib, 64);
        /* Appended to the configuration's own parameters, as in Kata. */
        assert_string_equal(c.kernel_params, "quiet agent.log=debug x=\"a b\"");
        assert_int_equal(
                apply(&c, "\"io.katacontainers.config.hypervisor.default_memory\": \"4096\"", &err),
                0);
        assert_int_equal(c.memory_mib, 4096);

        static const struct {
                const char *name, *value, *want;
        } bad[] = {
                {"default_vcpus", "0", "'0' is not a number of vCPUs from 1 to 4"},
                {"default_vcpus", "5", "'5' is not a number of vCPUs from 1 to 4"},
                {"default_vcpus", "-1", "from 1 to 4 ([hypervisor.qemu] default_maxvcpus"},
                {"default_vcpus", "2.5", "not a number of vCPUs"},
                {"default_vcpus", "", "not a number of vCPUs"},
                {"default_vcpus", " 2", "not a number of vCPUs"},
                {"default_vcpus", "99999999999999999999", "not a number of vCPUs"},
                {"default_memory", "63", "'63' is not a memory size from 64 to 4096 MiB"},
                {"default_memory", "4097", "from 64 to 4096 MiB"},
                {"default_memory", "1G", "not a memory size"},
                {"kernel_params", "a\\nb", "printable ASCII of at most 1024 bytes"},
                {"kernel_params", "\\u00e9", "printable ASCII"},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
                char anno[256], key[128];
                snprintf(key, sizeof(key), "io.katacontainers.config.hypervisor.%s", bad[i].name);
                snprintf(anno, sizeof(anno), "\"%s\": \"%s\"", key, bad[i].value);
                const char *parts[] = {key, bad[i].want, NULL};
                expect_error(apply(&c, anno, &err), -EINVAL, &err, parts);
        }
        char *long_params = malloc(1100 + 80);
        assert_non_null(long_params);
        int n = sprintf(long_params, "\"io.katacontainers.config.hypervisor.kernel_params\": \"");
        memset(long_params + n, 'a', 1025);
        strcpy(long_params + n + 1025, "\"");
        const char *parts[] = {"at most 1024 bytes", NULL};
        expect_error(apply(&c, long_params, &err), -EINVAL, &err, parts);
        free(long_params);
        /* The debug console is the handler's decision only (debug_console_enabled). */
        const char *dparts[] = {"io.katacontainers.config.hypervisor.kernel_params",
                                "agent.debug_console is refused: only the handler's "
                                "configuration (debug_console_enabled) enables the debug console",
                                NULL};
        expect_error(apply(&c,
                           "\"io.katacontainers.config.hypervisor.kernel_params\": "
                           "\"quiet agent.debug_console_vport=1026 agent.debug_console\"",
                           &err),
                     -EPERM, &err, dparts);
        /* The refused values left the configuration as it was. */
        assert_int_equal(c.vcpus, 4);
        assert_int_equal(c.memory_mib, 4096);
        assert_string_equal(c.kernel_params, "quiet agent.log=debug x=\"a b\"");
        shim_config_done(&c);
}

static void test_paths(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        load(&c,
             "enable_annotations = [\"path\", \"kernel\", \"initrd\", \"firmware\"]\n"
             "valid_hypervisor_paths = [\"/usr/bin/qemu-system-*\"]\n"
             "valid_kernel_paths = [\"/opt/k/*\"]\nvalid_firmware_paths = [\"/opt/fw/OVMF*.fd\"]\n",
             "");
        assert_int_equal(
                apply(&c,
                      "\"io.katacontainers.config.hypervisor.path\": "
                      "\"/usr/bin/qemu-system-x86_64\", "
                      "\"io.katacontainers.config.hypervisor.kernel\": \"/opt/k/vmlinuz\", "
                      "\"io.katacontainers.config.hypervisor.firmware\": \"/opt/fw/OVMF.fd\"",
                      &err),
                0);
        assert_string_equal(c.vmm_path, "/usr/bin/qemu-system-x86_64");
        assert_string_equal(c.kernel, "/opt/k/vmlinuz");
        assert_string_equal(c.firmware, "/opt/fw/OVMF.fd");
        static const struct {
                const char *name, *value, *want;
        } bad[] = {
                {"path", "/bin/sh",
                 "'/bin/sh' is not an absolute clean path matched by "
                 "[hypervisor.qemu] valid_hypervisor_paths of"},
                {"kernel", "/opt/k/../../etc/shadow", "valid_kernel_paths"},
                {"kernel", "/opt/k/sub/vmlinuz", "valid_kernel_paths"},
                {"firmware", "/opt/fw/evil.fd", "valid_firmware_paths"},
                /* Enabled, but its list is empty: nothing can be allowed. */
                {"initrd", "/opt/k/initrd.img", "valid_initrd_paths of " /* file */},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
                char anno[256], key[128];
                snprintf(key, sizeof(key), "io.katacontainers.config.hypervisor.%s", bad[i].name);
                snprintf(anno, sizeof(anno), "\"%s\": \"%s\"", key, bad[i].value);
                const char *parts[] = {key, bad[i].want, NULL};
                expect_error(apply(&c, anno, &err), -EINVAL, &err, parts);
        }
        const char *empty[] = {"(empty: no value is allowed)", NULL};
        expect_error(apply(&c, "\"io.katacontainers.config.hypervisor.initrd\": \"/i\"", &err),
                     -EINVAL, &err, empty);
        assert_string_equal(c.kernel, "/opt/k/vmlinuz");
        shim_config_done(&c);
}

/* ---- io.katacontainers.config_path ----------------------------------------------------------- */

static int resolve(const char *handler, const char *annos, struct shim_config *c,
                   struct cc_error **err)
{
        struct json_object *s = spec_with(annos);
        shim_config_init(c);
        int r = shim_config_resolve(handler, s, c, err);
        json_object_put(s);
        return r;
}

static char *anno_path(const char *path)
{
        char *a = NULL;
        assert_true(asprintf(&a, "\"io.katacontainers.config_path\": \"%s\"", path) > 0);
        return a;
}

static void test_config_path_refused(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        /* Kata's default: no valid_config_paths, no choice. The named path does not exist:
         * the error is the refusal, not ENOENT, because a refused path is never opened. */
        char *h = config("handler.toml", "", "");
        char *a = anno_path("/nonexistent/configuration-qemu.toml");
        const char *parts[] = {"annotation io.katacontainers.config_path refused: "
                               "'/nonexistent/configuration-qemu.toml' is not an absolute clean "
                               "path matched by [runtime] valid_config_paths of",
                               "handler.toml (empty: a pod may not choose its configuration)",
                               NULL};
        expect_error(resolve(h, a, &c, &err), -EINVAL, &err, parts);
        shim_config_done(&c);
        free(a);
        free(h);
        /* A list that does not match, and a path escaping it. */
        char rt[256];
        snprintf(rt, sizeof(rt), "valid_config_paths = [\"%s/allowed/*.toml\"]\n", tmp);
        h = config("handler.toml", "", rt);
        char p[256];
        snprintf(p, sizeof(p), "%s/allowed/../handler.toml", tmp);
        const char *escape[] = {"refused", "valid_config_paths", NULL};
        a = anno_path(p);
        expect_error(resolve(h, a, &c, &err), -EINVAL, &err, escape);
        shim_config_done(&c);
        free(a);
        a = anno_path("/etc/shadow");
        expect_error(resolve(h, a, &c, &err), -EINVAL, &err, escape);
        shim_config_done(&c);
        free(a);
        /* An empty value is no annotation (the handler's own configuration). */
        assert_int_equal(resolve(h, "\"io.katacontainers.config_path\": \"\"", &c, &err), 0);
        assert_string_equal(c.path, h);
        shim_config_done(&c);
        free(h);
}

static void test_config_path_tee(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        char rt[256];
        snprintf(rt, sizeof(rt), "valid_config_paths = [\"%s/*.toml\"]\n", tmp);
        static const struct {
                const char *name, *hv;
        } files[] = {
                {"none.toml", ""},
                {"tdx.toml", "confidential_guest = true\ntee = \"tdx\"\n"},
                {"sev.toml", "confidential_guest = true\ntee = \"sev\"\n"},
                {"sev-es.toml", "confidential_guest = true\ntee = \"sev-es\"\n"},
                {"snp.toml", "confidential_guest = true\nsev_snp_guest = true\n"},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(files); i++)
                free(config(files[i].name, files[i].hv, rt));
        static const struct {
                const char *handler, *chosen, *refusal; /* NULL: allowed */
        } cases[] = {
                {"tdx.toml", "none.toml", "has TEE none, weaker than this handler's TEE tdx"},
                {"snp.toml", "none.toml", "has TEE none, weaker than this handler's TEE sev-snp"},
                {"sev.toml", "none.toml", "has TEE none, weaker than this handler's TEE sev"},
                {"snp.toml", "sev.toml", "has TEE sev, weaker than this handler's TEE sev-snp"},
                {"snp.toml", "sev-es.toml",
                 "has TEE sev-es, weaker than this handler's TEE sev-snp"},
                {"tdx.toml", "snp.toml", "has TEE sev-snp, not this handler's TEE tdx"},
                {"snp.toml", "tdx.toml", "has TEE tdx, not this handler's TEE sev-snp"},
                {"tdx.toml", "tdx.toml", NULL},
                {"sev.toml", "snp.toml", NULL},
                {"sev-es.toml", "snp.toml", NULL},
                {"none.toml", "tdx.toml", NULL},
                {"none.toml", "none.toml", NULL},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
                char h[256], p[256];
                snprintf(h, sizeof(h), "%s/%s", tmp, cases[i].handler);
                snprintf(p, sizeof(p), "%s/%s", tmp, cases[i].chosen);
                char *a = anno_path(p);
                int r = resolve(h, a, &c, &err);
                if (cases[i].refusal) {
                        char want[1024];
                        snprintf(want, sizeof(want),
                                 "annotation io.katacontainers.config_path refused: %s %s (%s); a "
                                 "pod annotation never weakens or changes the TEE",
                                 p, cases[i].refusal, h);
                        const char *parts[] = {want, NULL};
                        expect_error(r, -EINVAL, &err, parts);
                        /* The handler's own configuration stays in c. */
                        assert_string_equal(c.path, h);
                } else {
                        if (r < 0)
                                fail_msg("case %zu: %s", i, cc_error_message(err));
                        assert_string_equal(c.path, p);
                }
                shim_config_done(&c);
                free(a);
        }
}

/* The chosen file's own policy then decides the hypervisor annotations (it is the configuration
 * in use); the handler's does not carry over. */
static void test_config_path_policy(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        char rt[256];
        snprintf(rt, sizeof(rt), "valid_config_paths = [\"%s/big.toml\"]\n", tmp);
        char *h = config("handler.toml", "", rt);
        char *big = config("big.toml",
                           "enable_annotations = [\"default_vcpus\"]\ndefault_maxvcpus = 8\n", "");
        char annos[512];
        snprintf(annos, sizeof(annos),
                 "\"io.katacontainers.config_path\": \"%s\", "
                 "\"io.katacontainers.config.hypervisor.default_vcpus\": \"8\"",
                 big);
        assert_int_equal(resolve(h, annos, &c, &err), 0);
        assert_int_equal(c.vcpus, 8);
        shim_config_done(&c);
        /* Without the file, the handler's policy refuses the same annotation. */
        const char *parts[] = {"default_vcpus refused: not enabled", "handler.toml", NULL};
        expect_error(resolve(h, "\"io.katacontainers.config.hypervisor.default_vcpus\": \"8\"", &c,
                             &err),
                     -EINVAL, &err, parts);
        shim_config_done(&c);
        free(big);
        free(h);
}

/* Files a pod names: a FIFO fails at once, a directory or a big file is named as such, and a
 * file that is not a configuration is refused without a byte of its content in the error or
 * the log. */
static void test_config_path_files(void **state)
{
        struct cc_error *err = NULL;
        struct shim_config c;
        char rt[256], dir[200];
        snprintf(dir, sizeof(dir), "%s/pod", tmp);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(rt, sizeof(rt), "valid_config_paths = [\"%s/*\"]\n", dir);
        char *h = config("handler.toml", "", rt);

        char p[256];
        snprintf(p, sizeof(p), "%s/fifo", dir);
        assert_int_equal(mkfifo(p, 0600), 0);
        char *a = anno_path(p);
        char want[1024];
        snprintf(want, sizeof(want),
                 "annotation io.katacontainers.config_path: %s: not a regular file", p);
        const char *fifo[] = {want, NULL};
        expect_error(resolve(h, a, &c, &err), -EINVAL, &err, fifo);
        shim_config_done(&c);
        free(a);

        snprintf(p, sizeof(p), "%s/sub", dir);
        assert_int_equal(mkdir(p, 0700), 0);
        a = anno_path(p);
        const char *isdir[] = {"not a regular file", NULL};
        expect_error(resolve(h, a, &c, &err), -EINVAL, &err, isdir);
        shim_config_done(&c);
        free(a);

        snprintf(p, sizeof(p), "%s/big", dir);
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, CC_TOML_MAX_SIZE + 1), 0);
        close(fd);
        a = anno_path(p);
        const char *big[] = {"larger than", NULL};
        expect_error(resolve(h, a, &c, &err), -EFBIG, &err, big);
        shim_config_done(&c);
        free(a);

        /* A root-only secret (not TOML), a TOML file with a secret value where a known key
         * is, and one with secret key names: none of it appears anywhere. */
        static const char *const secrets[] = {
                "API_KEY=s3cr3t-0123456789\n",
                "[hypervisor.qemu]\nkernel = \"/k\"\ntee = \"s3cr3t-0123456789\"\n"
                "confidential_guest = true\n",
                "[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/k\"\n"
                "s3cr3t_0123456789 = 1\n[s3cr3t-table]\nx = 1\n",
        };
        log_capture(CC_LOG_INFO);
        for (size_t i = 0; i < CC_ARRAY_SIZE(secrets); i++) {
                snprintf(p, sizeof(p), "%s/secret%zu.env", dir, i);
                write_file(p, secrets[i]);
                assert_int_equal(chmod(p, 0400), 0);
                a = anno_path(p);
                int r = resolve(h, a, &c, &err);
                if (i < 2) {
                        snprintf(want, sizeof(want),
                                 "annotation io.katacontainers.config_path: %s: not a valid "
                                 "runtime configuration (the reason is not shown",
                                 p);
                        assert_int_equal(r, -EINVAL);
                        assert_non_null(strstr(cc_error_message(err), want));
                        assert_null(strstr(cc_error_message(err), "s3cr3t"));
                        cc_error_free(err);
                        err = NULL;
                } else {
                        /* Loads (unknown keys are warned about), counted, not named. */
                        if (r < 0)
                                fail_msg("%s", cc_error_message(err));
                }
                shim_config_done(&c);
                free(a);
        }
        const char *log = log_read();
        if (strstr(log, "s3cr3t"))
                fail_msg("the log quotes the file: %s", log);
        assert_non_null(strstr(log, "1 unknown key(s) in [hypervisor.qemu] ignored (not named"));
        assert_non_null(strstr(log, "1 unknown key(s) in [top level] ignored (not named"));

        /* The handler's own file (the operator's) keeps its detailed messages. */
        char *bad = file("bad-handler.toml", "[hypervisor.qemu]\nkernel = \"/k\"\n"
                                             "tee = \"sgx\"\nconfidential_guest = true\n");
        const char *detail[] = {":3: key 'tee': unknown TEE 'sgx'", NULL};
        expect_error(resolve(bad, "", &c, &err), -EINVAL, &err, detail);
        shim_config_done(&c);
        free(bad);
        free(h);
}

/* The shipped configurations honour nothing. */
static void test_shipped(void **state)
{
        static const char *const names[] = {"qemu",     "qemu-tdx", "qemu-sev",
                                            "qemu-snp", "clh",      "clh-tdx"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(names); i++) {
                char p[128];
                snprintf(p, sizeof(p), "configs/runtime/configuration-%s.toml", names[i]);
                if (access(p, R_OK) < 0)
                        skip();
                struct shim_config c;
                struct cc_error *err = NULL;
                shim_config_init(&c);
                if (shim_config_load(p, &c, &err) < 0)
                        fail_msg("%s: %s", p, cc_error_message(err));
                char *d = shim_anno_policy_describe(&c.anno);
                if (strcmp(d, "none") != 0)
                        fail_msg("%s honours %s", p, d);
                free(d);
                shim_config_done(&c);
        }
}

int main(void)
{
        cc_log_set_level(CC_LOG_WARN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_load),
                cmocka_unit_test(test_enabled),
                cmocka_unit_test(test_path_allowed),
                cmocka_unit_test(test_not_enabled),
                cmocka_unit_test(test_unsupported),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_config_path_refused),
                cmocka_unit_test(test_config_path_tee),
                cmocka_unit_test(test_config_path_policy),
                cmocka_unit_test(test_config_path_files),
                cmocka_unit_test(test_shipped),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
