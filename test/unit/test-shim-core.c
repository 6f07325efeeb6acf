/*
 * Unit tests: the shim's pure parts — socket naming (containerd's SocketAddress), path
 * cleaning, pod roles from annotations, rootfs classification (guest-pull volumes), the OCI
 * config.json -> grpc.Spec translation, and the Kata-style configuration reader.
 */
#include <errno.h>
#include <glob.h>
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

#include "cc/json.h"
#include "cc/log.h"

#include "shim/shim.h"

static void test_path_clean(void **state)
{
        static const char *const cases[][2] = {
                {"/run/containerd/containerd.sock/k8s.io/abc",
                 "/run/containerd/containerd.sock/k8s.io/abc"},
                {"/run//containerd/./x/../y/", "/run/containerd/y"},
                {"unix:///run/c.sock/ns/id", "unix:/run/c.sock/ns/id"},
                {"/../a", "/a"},
                {"/", "/"},
                {"", "."},
                {"a/b/../../..", ".."},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *c = shim_path_clean(cases[i][0]);
                assert_non_null(c);
                assert_string_equal(c, cases[i][1]);
                free(c);
        }
}

static void test_socket_address(void **state)
{
        char *a = NULL;
        /* sha256 of "/run/containerd/containerd.sock/k8s.io/abc" (checked with sha256sum). */
        assert_int_equal(
                shim_socket_address("/run/containerd/containerd.sock", "k8s.io", "abc", &a), 0);
        assert_string_equal(a, "unix:///run/containerd/s/"
                               "a99a1752d3a0fadfb1f869026f16760475df03a572e20f4ccea9e6c1e5470b72");
        free(a);
        /* filepath.Join cleans: a trailing slash or a doubled one changes nothing. */
        assert_int_equal(
                shim_socket_address("/run/containerd//containerd.sock/", "k8s.io", "abc", &a), 0);
        assert_string_equal(a, "unix:///run/containerd/s/"
                               "a99a1752d3a0fadfb1f869026f16760475df03a572e20f4ccea9e6c1e5470b72");
        free(a);
        setenv("CC_SHIM_RUN_DIR", "/tmp/x", 1);
        assert_int_equal(shim_vm_run_dir("k8s.io", "abc", &a), 0);
        assert_int_equal(strncmp(a, "/tmp/x/", 7), 0);
        assert_int_equal(strlen(a), 7 + 24);
        free(a);
        unsetenv("CC_SHIM_RUN_DIR");
        /* The debug console's address: the agent's vsock with port 1026, as kata-runtime exec
         * dials it; the console's own socket when the agent is on virtio-serial. */
        assert_int_equal(shim_debug_console_address("vsock:7:1024", "/r", &a), 0);
        assert_string_equal(a, "vsock:7:1026");
        free(a);
        assert_int_equal(shim_debug_console_address("hvsock:/r/vsock.sock:1024", "/r", &a), 0);
        assert_string_equal(a, "hvsock:/r/vsock.sock:1026");
        free(a);
        assert_int_equal(shim_debug_console_address("unix:/r/agent.sock", "/r", &a), 0);
        assert_string_equal(a, "unix:/r/console.sock");
        free(a);
        assert_int_equal(shim_debug_console_address("tcp:1:2", "/r", &a), -EINVAL);
}

static struct json_object *parse(const char *s)
{
        struct json_object *o = NULL;
        assert_int_equal(cc_json_parse("t", s, strlen(s), 0, &o, NULL), 0);
        return o;
}

static void test_roles(void **state)
{
        const char *sb = NULL;
        struct json_object *o = parse("{}");
        assert_int_equal(shim_spec_role(o, "c1", &sb), SHIM_ROLE_SINGLE);
        assert_string_equal(sb, "c1");
        json_object_put(o);
        o = parse("{\"annotations\":{\"io.kubernetes.cri.container-type\":\"sandbox\","
                  "\"io.kubernetes.cri.sandbox-id\":\"p1\"}}");
        assert_int_equal(shim_spec_role(o, "p1", &sb), SHIM_ROLE_SANDBOX);
        assert_string_equal(sb, "p1");
        json_object_put(o);
        o = parse("{\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
                  "\"io.kubernetes.cri.sandbox-id\":\"p1\"}}");
        assert_int_equal(shim_spec_role(o, "c2", &sb), SHIM_ROLE_CONTAINER);
        assert_string_equal(sb, "p1");
        json_object_put(o);
        o = parse("{\"annotations\":{\"io.kubernetes.cri-o.ContainerType\":\"container\","
                  "\"io.kubernetes.cri-o.SandboxID\":\"p9\"}}");
        assert_int_equal(shim_spec_role(o, "c3", &sb), SHIM_ROLE_CONTAINER);
        assert_string_equal(sb, "p9");
        json_object_put(o);
}

static void test_rootfs_classify(void **state)
{
        enum shim_rootfs_kind k;
        char *image = NULL;
        struct cc_error *err = NULL;
        assert_int_equal(shim_rootfs_classify(NULL, 0, &k, &image, &err), 0);
        assert_int_equal(k, SHIM_ROOTFS_NONE);
        /* {"volume_type":"image_guest_pull","source":"docker.io/library/busybox:latest",
         *  "image_pull":{"metadata":{}}} */
        char *opts[] = {"workdir=/x/work", "upperdir=/x/fs",
                        "io.katacontainers.volume="
                        "eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwiLCJzb3VyY2UiOiJkb2NrZXIuaW8vbG"
                        "licmFyeS9idXN5Ym94OmxhdGVzdCIsImltYWdlX3B1bGwiOnsibWV0YWRhdGEiOnt9fX0="};
        struct shim_mount m = {"fuse.nydus-overlayfs", "overlay", opts, 3};
        assert_int_equal(shim_rootfs_classify(&m, 1, &k, &image, &err), 0);
        assert_int_equal(k, SHIM_ROOTFS_GUEST_PULL);
        assert_string_equal(image, "docker.io/library/busybox:latest");
        free(image);
        char *plain[] = {"lowerdir=/a:/b", "upperdir=/c", "workdir=/d"};
        struct shim_mount o = {"overlay", "overlay", plain, 3};
        assert_int_equal(shim_rootfs_classify(&o, 1, &k, &image, &err), 0);
        assert_int_equal(k, SHIM_ROOTFS_HOST);
        /* {"volume_type":"direct_block"} is another volume type: refused, not mounted. */
        char *blk[] = {"io.katacontainers.volume=eyJ2b2x1bWVfdHlwZSI6ImRpcmVjdF9ibG9jayJ9"};
        struct shim_mount b = {"fuse.nydus-overlayfs", "overlay", blk, 1};
        assert_int_equal(shim_rootfs_classify(&b, 1, &k, &image, &err), -EOPNOTSUPP);
        assert_non_null(strstr(cc_error_message(err), "direct_block"));
        cc_error_free(err);
        err = NULL;
        /* Pinned to the digest containerd resolved (the CRI label in image_pull.metadata). */
        char *pin[] = {"io.katacontainers.volume="
                       "eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwiLCJzb3VyY2UiOiJyZWdpc3RyeS5leGF"
                       "tcGxlL2FwcDoxIiwiaW1hZ2VfcHVsbCI6eyJtZXRhZGF0YSI6eyJjb250YWluZXJkLmlvL3NuYX"
                       "BzaG90L2NyaS5tYW5pZmVzdC1kaWdlc3QiOiJzaGEyNTY6YWJhYmFiYWJhYmFiYWJhYmFiYWJhY"
                       "mFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYiJ9fX0="};
        struct shim_mount pm = {"fuse.nydus-overlayfs", "overlay", pin, 1};
        assert_int_equal(shim_rootfs_classify(&pm, 1, &k, &image, &err), 0);
        assert_string_equal(
                image,
                "registry.example/"
                "app:1@sha256:abababababababababababababababababababababababababababababababab");
        free(image);
        /* A reference that names a digest (maybe an index's) stays as it is. */
        char *mis[] = {
                "io.katacontainers.volume="
                "eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwiLCJzb3VyY2UiOiJyZWdpc3RyeS5leGFtcGxlL2"
                "FwcEBzaGEyNTY6Y2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2Rj"
                "ZGNkY2RjZGNkY2RjZCIsImltYWdlX3B1bGwiOnsibWV0YWRhdGEiOnsiY29udGFpbmVyZC5pby9zbmFwc2"
                "hvdC9jcmkubWFuaWZlc3QtZGlnZXN0Ijoic2hhMjU2OmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh"
                "YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWIifX19"};
        struct shim_mount mm = {"fuse.nydus-overlayfs", "overlay", mis, 1};
        assert_int_equal(shim_rootfs_classify(&mm, 1, &k, &image, &err), 0);
        assert_string_equal(
                image,
                "registry.example/"
                "app@sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
        free(image);
        char *bad[] = {"io.katacontainers.volume=***"};
        struct shim_mount x = {"fuse.nydus-overlayfs", "overlay", bad, 1};
        assert_int_equal(shim_rootfs_classify(&x, 1, &k, &image, &err), -EINVAL);
        cc_error_free(err);
}

static const char oci_spec[] =
        "{\"ociVersion\":\"1.0.2\",\"hostname\":\"h1\","
        "\"process\":{\"terminal\":false,\"user\":{\"uid\":1000,\"gid\":1000,\"additionalGids\":[5]"
        "},"
        "\"args\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"env\":[\"PATH=/bin\"],\"cwd\":\"/\","
        "\"capabilities\":{\"bounding\":[\"CAP_KILL\"],\"effective\":[\"CAP_KILL\"]},"
        "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
        "\"noNewPrivileges\":true,\"apparmorProfile\":\"cri-containerd.apparmor.d\"},"
        "\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
        "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
        "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/etc/"
        "hosts\",\"options\":[\"rbind\",\"ro\"]},"
        "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"/var/lib/"
        "data\",\"options\":[\"rbind\"]},"
        "{\"destination\":\"/x\",\"type\":\"overlay\",\"source\":\"overlay\"}],"
        "\"hooks\":{\"prestart\":[{\"path\":\"/usr/bin/evil\"}]},"
        "\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\"},"
        "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/proc/1/ns/"
        "net\"},"
        "{\"type\":\"ipc\",\"path\":\"/proc/1/ns/ipc\"},{\"type\":\"mount\"}],"
        "\"cgroupsPath\":\"/kubepods/x\",\"devices\":[{\"path\":\"/dev/kmsg\",\"type\":\"c\"}],"
        "\"resources\":{\"memory\":{\"limit\":67108864},\"cpu\":{\"quota\":50000,\"period\":100000}"
        ","
        "\"pids\":{\"limit\":100}},"
        "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_X86_64\"]"
        ","
        "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
        "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1,"
        "\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]},"
        "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
        "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}}}";

static void test_spec_translation(void **state)
{
        struct json_object *o = parse(oci_spec);
        Grpc__Spec *s = NULL;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        struct cc_error *err = NULL;
        cc_log_set_level(CC_LOG_ERROR); /* the dropped mounts warn */
        assert_int_equal(shim_spec_from_oci(o, "c1",
                                            "/run/kata-containers/shared/containers/c1/rootfs", &s,
                                            &files, &n_files, &err),
                         0);
        assert_string_equal(s->version, "1.0.2");
        assert_string_equal(s->hostname, "h1");
        assert_string_equal(s->root->path, "/run/kata-containers/shared/containers/c1/rootfs");
        assert_true(s->root->readonly);
        assert_int_equal(s->process->n_args, 3);
        assert_int_equal(s->process->user->uid, 1000);
        assert_int_equal(s->process->user->n_additionalgids, 1);
        assert_true(s->process->nonewprivileges);
        assert_int_equal(s->process->n_rlimits, 1);
        assert_string_equal(s->process->capabilities->bounding[0], "CAP_KILL");
        assert_string_equal(s->process->apparmorprofile, ""); /* a host policy: dropped */
        assert_null(s->hooks);
        /* /proc kept, /etc/hosts copied (new source in the guest), host dir and overlay dropped. */
        assert_int_equal(s->n_mounts, 2);
        assert_string_equal(s->mounts[0]->destination, "/proc");
        assert_string_equal(s->mounts[1]->destination, "/etc/hosts");
        assert_string_equal(s->mounts[1]->source,
                            "/run/kata-containers/shared/containers/c1-files/0");
        assert_int_equal(n_files, 1);
        assert_string_equal(files[0].host_path, "/etc/hosts");
        assert_string_equal(files[0].guest_path, s->mounts[1]->source);
        /* Namespaces: network gone; a path (containerd's "the sandbox's") becomes the marker
         * "sandbox", the host path never crosses. */
        assert_int_equal(s->linux_->n_namespaces, 3);
        for (size_t i = 0; i < s->linux_->n_namespaces; i++)
                assert_string_not_equal(s->linux_->namespaces[i]->type, "network");
        assert_string_equal(s->linux_->namespaces[0]->path, "");
        assert_string_equal(s->linux_->namespaces[1]->type, "ipc");
        assert_string_equal(s->linux_->namespaces[1]->path, "sandbox");
        assert_string_equal(s->linux_->cgroupspath, "");
        /* A character device is the host's (devices.c refuses it; block ones cross). */
        assert_int_equal(s->linux_->n_devices, 0);
        assert_int_equal(s->linux_->resources->memory->limit, 67108864);
        assert_int_equal(s->linux_->resources->cpu->quota, 50000);
        assert_int_equal(s->linux_->resources->pids->limit, 100);
        assert_int_equal(s->linux_->seccomp->n_syscalls, 2);
        assert_int_equal(s->linux_->seccomp->syscalls[1]->errnoret, 1);
        assert_int_equal(s->linux_->seccomp->syscalls[1]->n_args, 1);
        assert_int_equal(s->linux_->n_sysctl, 1);
        assert_int_equal(s->n_annotations, 1);
        /* The spec encodes (every pointer is valid) and frees as one tree. */
        size_t len = protobuf_c_message_get_packed_size(&s->base);
        assert_true(len > 100);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        shim_file_copies_free(files, n_files);
        json_object_put(o);

        o = parse("{\"process\":{\"args\":[]}}");
        assert_int_equal(shim_spec_from_oci(o, "c1", "/r", &s, &files, &n_files, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "process.args is empty");
        cc_error_free(err);
        json_object_put(o);
}

static char *write_tmp(const char *text)
{
        char *path = strdup("/tmp/test-shim-config.XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void test_config(void **state)
{
        struct shim_config c;
        struct cc_error *err = NULL;
        char *p = write_tmp("[hypervisor.qemu]\n"
                            "path = \"/usr/bin/qemu-system-x86_64\"\n"
                            "kernel = \"/k\"\ninitrd = \"/i\"\nmachine_type = \"q35\"\n"
                            "default_vcpus = 2\ndefault_memory = 512\n"
                            "kernel_params = \"quiet\"\nshared_fs = \"none\"\n"
                            "accel = \"tcg\"\nagent_channel = \"serial\"\n"
                            "[agent.kata]\ndial_timeout = 30\n"
                            "[runtime]\nallow_host_rootfs = true\nsandbox_cgroup_only = false\n");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), 0);
        assert_string_equal(c.backend, "qemu");
        assert_string_equal(c.kernel, "/k");
        assert_int_equal(c.vcpus, 2);
        assert_int_equal(c.memory_mib, 512);
        assert_int_equal(c.accel, HV_ACCEL_TCG);
        assert_int_equal(c.channel, HV_CHANNEL_SERIAL);
        assert_int_equal(c.dial_timeout_s, 30);
        assert_false(c.debug_console); /* off by default */
        assert_true(c.allow_host_rootfs);
        assert_int_equal(c.tee, HV_TEE_NONE);
        /* A missing kernel file is named with its key. */
        assert_int_equal(shim_config_check(&c, &err), -ENOENT);
        char want[512];
        snprintf(want, sizeof(want), "%s: key 'kernel': /k: No such file or directory", p);
        assert_string_equal(cc_error_message(err), want);
        cc_error_free(err);
        err = NULL;
        shim_config_done(&c);
        unlink(p);
        free(p);

        /* Kata's debug_console_enabled; a TEE handler may set it too (its own decision, which
         * then shows on the measured kernel command line). */
        p = write_tmp("[hypervisor.qemu]\nkernel = \"/k\"\nconfidential_guest = true\n"
                      "sev_snp_guest = true\n[agent.kata]\ndebug_console_enabled = true\n");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), 0);
        assert_true(c.debug_console);
        assert_int_equal(c.tee, HV_TEE_SEV_SNP);
        shim_config_done(&c);
        unlink(p);
        free(p);

        /* Wrong type: file, line, column and key. */
        p = write_tmp("[hypervisor.qemu]\nkernel = \"/k\"\ndefault_vcpus = \"two\"\n");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), p));
        assert_non_null(strstr(cc_error_message(err), ":3:"));
        assert_non_null(strstr(cc_error_message(err), "default_vcpus"));
        cc_error_free(err);
        err = NULL;
        shim_config_done(&c);
        unlink(p);
        free(p);

        /* Bad values. */
        static const char *const bad[][2] = {
                {"[hypervisor.qemu]\nkernel = \"/k\"\ntee = \"sgx\"\nconfidential_guest = true\n",
                 ":3: key 'tee': unknown TEE 'sgx'"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\ndefault_vcpus = 0\n", "default_vcpus"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\nmachine_type = \"pc\"\n",
                 ":3: key 'machine_type': machine type 'pc' is not supported"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\nconfidential_guest = true\nsev_snp_guest = "
                 "true\n"
                 "[runtime]\nallow_host_rootfs = true\n",
                 ":6: key 'allow_host_rootfs': sharing the host rootfs is refused for the sev-snp"},
                {"[hypervisor.qemu]\ninitrd = \"/i\"\n", "has no 'kernel'"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\n[agent.kata]\ndebug_console_enabled = 1\n",
                 ":4:1: key 'debug_console_enabled'"},
                {"[hypervisor.firecracker]\nkernel = \"/k\"\n",
                 "hypervisor 'firecracker' is not supported"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\nbackend = \"vbox\"\n",
                 "unknown hypervisor backend 'vbox'"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\n[runtime]\nnetwork_model = \"bridged\"\n",
                 ":4: key 'network_model': unknown network model 'bridged' (tcfilter, none, user)"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\n[runtime]\ninternetworking_model = "
                 "\"macvtap\"\n",
                 ":4: key 'internetworking_model': unknown network model 'macvtap'"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\n[runtime]\nnetwork_model = \"none\"\n"
                 "internetworking_model = \"tcfilter\"\n",
                 ":5: key 'internetworking_model': 'tcfilter' disagrees with network_model = "
                 "'none'"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\nconfidential_guest = true\ntee = \"tdx\"\n"
                 "[runtime]\nnetwork_model = \"user\"\n",
                 ":6: key 'network_model': the user-mode network is for development only and is "
                 "refused for the tdx profile"},
                {"[hypervisor.clh]\nkernel = \"/k\"\n[runtime]\ninternetworking_model = \"user\"\n",
                 ":4: key 'internetworking_model': the user-mode network exists only with the "
                 "qemu"},
                {"[hypervisor.qemu]\nkernel = \"/k\"\n[runtime]\nnetwork_model = 3\n",
                 "network_model"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = write_tmp(bad[i][0]);
                shim_config_init(&c);
                assert_true(shim_config_load(p, &c, &err) < 0);
                if (!strstr(cc_error_message(err), bad[i][1]))
                        fail_msg("case %zu: '%s' lacks '%s'", i, cc_error_message(err), bad[i][1]);
                assert_non_null(strstr(cc_error_message(err), p));
                cc_error_free(err);
                err = NULL;
                shim_config_done(&c);
                unlink(p);
                free(p);
        }

        /* The network model: ours, Kata's key, both when they agree; tcfilter by default. */
        static const struct {
                const char *runtime;
                enum shim_net_model want;
        } models[] = {
                {"", SHIM_NET_MODEL_TCFILTER},
                {"network_model = \"none\"\n", SHIM_NET_MODEL_NONE},
                {"network_model = \"user\"\n", SHIM_NET_MODEL_USER},
                {"internetworking_model = \"none\"\n", SHIM_NET_MODEL_NONE},
                {"internetworking_model = \"tcfilter\"\nnetwork_model = \"tcfilter\"\n",
                 SHIM_NET_MODEL_TCFILTER},
        };
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
                char text[256];
                snprintf(text, sizeof(text), "[hypervisor.qemu]\nkernel = \"/k\"\n[runtime]\n%s",
                         models[i].runtime);
                p = write_tmp(text);
                shim_config_init(&c);
                c.network_model = _SHIM_NET_MODEL_MAX;
                if (shim_config_load(p, &c, &err) < 0)
                        fail_msg("model case %zu: %s", i, cc_error_message(err));
                assert_int_equal(c.network_model, models[i].want);
                shim_config_done(&c);
                unlink(p);
                free(p);
        }

        /* SNP from Kata's keys. */
        p = write_tmp("[hypervisor.qemu]\nkernel = \"/k\"\nconfidential_guest = "
                      "true\nsev_snp_guest = true\n");
        shim_config_init(&c);
        assert_int_equal(shim_config_load(p, &c, &err), 0);
        assert_int_equal(c.tee, HV_TEE_SEV_SNP);
        shim_config_done(&c);
        unlink(p);
        free(p);
}

/* Every shipped runtime configuration loads, with no unknown-key warning, and the TEE ones
 * refuse a host rootfs. */
static void test_shipped_configs(void **state)
{
        glob_t g;
        if (glob("configs/runtime/configuration-*.toml", 0, NULL, &g) != 0)
                skip();
        char logpath[] = "/tmp/test-shim-log.XXXXXX";
        int logfd = mkstemp(logpath);
        assert_true(logfd >= 0);
        cc_log_set_fd(logfd);
        cc_log_set_level(CC_LOG_WARN);
        for (size_t i = 0; i < g.gl_pathc; i++) {
                struct shim_config c;
                struct cc_error *err = NULL;
                shim_config_init(&c);
                if (shim_config_load(g.gl_pathv[i], &c, &err) < 0)
                        fail_msg("%s: %s", g.gl_pathv[i], cc_error_message(err));
                bool tee = strstr(g.gl_pathv[i], "tdx") || strstr(g.gl_pathv[i], "sev") ||
                           strstr(g.gl_pathv[i], "snp");
                assert_int_equal(c.tee != HV_TEE_NONE, tee);
                assert_int_equal(c.allow_host_rootfs, !tee);
                if (tee)
                        assert_non_null(c.firmware);
                shim_config_done(&c);
        }
        cc_log_set_fd(2);
        struct stat st;
        assert_int_equal(fstat(logfd, &st), 0);
        if (st.st_size > 0) {
                char buf[512] = "";
                assert_true(pread(logfd, buf, sizeof(buf) - 1, 0) > 0);
                fail_msg("warnings: %s", buf);
        }
        close(logfd);
        unlink(logpath);
        assert_true(g.gl_pathc >= 6);
        globfree(&g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_path_clean),
                cmocka_unit_test(test_socket_address),
                cmocka_unit_test(test_roles),
                cmocka_unit_test(test_rootfs_classify),
                cmocka_unit_test(test_spec_translation),
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_shipped_configs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
