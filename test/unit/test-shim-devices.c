/*
 * Unit tests: a container's devices (shim/devices.c): block devices found by major:minor
 * through a sysfs tree, read-only from the device cgroup rules, host character devices refused
 * with one message (the standard ones every guest has are left to it), the trusted store's
 * rules; the translated spec keeps only the block entries; pcie_root_port in the configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/json.h"

#include "shim/shim.h"

struct fixture {
        char root[64];
        char sys[96], dev[96];
        bool have_node; /* mknod worked: the block device tests run */
};

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* <root>/sys/dev/block/7:42/uevent naming loop42, <root>/dev/loop42 a node 7:42, and 7:43
 * whose node has other numbers. */
static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        snprintf(fx->root, sizeof(fx->root), "/tmp/test-shim-devices.XXXXXX");
        if (!mkdtemp(fx->root))
                return -1;
        char p[256];
        snprintf(fx->sys, sizeof(fx->sys), "%s/sys", fx->root);
        snprintf(fx->dev, sizeof(fx->dev), "%s/dev", fx->root);
        const char *dirs[] = {
                "sys", "sys/dev", "sys/dev/block", "sys/dev/block/7:42", "sys/dev/block/7:43",
                "dev"};
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", fx->root, dirs[i]);
                mkdir(p, 0755);
        }
        snprintf(p, sizeof(p), "%s/dev/block/7:42/uevent", fx->sys);
        write_file(p, "MAJOR=7\nMINOR=42\nDEVNAME=loop42\nDEVTYPE=disk\n");
        snprintf(p, sizeof(p), "%s/dev/block/7:43/uevent", fx->sys);
        write_file(p, "MAJOR=7\nMINOR=43\nDEVNAME=loop43\nDEVTYPE=disk\n");
        snprintf(p, sizeof(p), "%s/loop42", fx->dev);
        fx->have_node = mknod(p, S_IFBLK | 0600, makedev(7, 42)) == 0;
        snprintf(p, sizeof(p), "%s/loop43", fx->dev);
        if (fx->have_node)
                fx->have_node = mknod(p, S_IFBLK | 0600, makedev(7, 44)) == 0;
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
        if (strncmp(fx->root, "/tmp/test-shim-devices.", 23) == 0 && system(cmd) != 0)
                return -1;
        free(fx);
        return 0;
}

static struct json_object *spec_of(const char *devices, const char *rules)
{
        char buf[4096];
        snprintf(buf, sizeof(buf),
                 "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
                 "\"root\":{\"path\":\"rootfs\"},\"linux\":{\"devices\":%s,"
                 "\"resources\":{\"devices\":%s}}}",
                 devices, rules);
        struct json_object *o = NULL;
        assert_int_equal(cc_json_parse("spec", buf, strlen(buf), 0, &o, NULL), 0);
        return o;
}

#define DENY_ALL "{\"allow\":false,\"access\":\"rwm\"}"

static void test_host_path(void **state)
{
        struct fixture *fx = *state;
        if (!fx->have_node)
                skip();
        char *path = NULL;
        struct cc_error *err = NULL;
        assert_int_equal(shim_blockdev_host_path(fx->sys, fx->dev, 7, 42, &path, &err), 0);
        char want[160];
        snprintf(want, sizeof(want), "%s/loop42", fx->dev);
        assert_string_equal(path, want);
        free(path);
        /* Not on this host. */
        assert_int_equal(shim_blockdev_host_path(fx->sys, fx->dev, 7, 99, &path, &err), -ENOENT);
        assert_null(path);
        assert_non_null(strstr(cc_error_message(err), "7:99 is not on this host"));
        cc_error_free(err);
        err = NULL;
        /* DEVNAME names a node of other numbers: not guessed to be the device. */
        assert_int_equal(shim_blockdev_host_path(fx->sys, fx->dev, 7, 43, &path, &err), -ENODEV);
        assert_non_null(strstr(cc_error_message(err), "is not that device (7:44)"));
        cc_error_free(err);
}

static void test_block_readonly(void **state)
{
        struct fixture *fx = *state;
        if (!fx->have_node)
                skip();
        static const char dev[] =
                "[{\"path\":\"/dev/xvda\",\"type\":\"b\",\"major\":7,\"minor\":42}]";
        static const struct {
                const char *rules;
                bool ro;
        } cases[] = {
                {"[" DENY_ALL ",{\"allow\":true,\"type\":\"b\",\"major\":7,\"minor\":42,"
                 "\"access\":\"r\"}]",
                 true},
                {"[" DENY_ALL ",{\"allow\":true,\"type\":\"b\",\"major\":7,\"minor\":42,"
                 "\"access\":\"rwm\"}]",
                 false},
                /* A later deny of 'w' wins over the allow. */
                {"[{\"allow\":true,\"type\":\"b\",\"major\":7,\"minor\":42,\"access\":\"rw\"},"
                 "{\"allow\":false,\"type\":\"b\",\"major\":7,\"access\":\"w\"}]",
                 true},
                {"[]", false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct json_object *spec = spec_of(dev, cases[i].rules);
                struct shim_blockdev *bd = NULL;
                size_t n = 0;
                struct cc_error *err = NULL;
                assert_int_equal(
                        shim_blockdevs_from_spec(spec, "c1", fx->sys, fx->dev, &bd, &n, &err), 0);
                assert_int_equal(n, 1);
                assert_string_equal(bd[0].container_path, "/dev/xvda");
                assert_int_equal(bd[0].major, 7);
                assert_int_equal(bd[0].minor, 42);
                assert_int_equal(bd[0].readonly, cases[i].ro);
                shim_blockdevs_free(bd, n);
                json_object_put(spec);
        }
}

static void test_char_refused(void **state)
{
        struct fixture *fx = *state;
        /* What a privileged container brings: standard nodes, host disks and char devices. */
        struct json_object *spec =
                spec_of("[{\"path\":\"/dev/null\",\"type\":\"c\",\"major\":1,\"minor\":3},"
                        "{\"path\":\"/dev/sda\",\"type\":\"b\",\"major\":8,\"minor\":0},"
                        "{\"path\":\"/dev/kmsg\",\"type\":\"c\",\"major\":1,\"minor\":11},"
                        "{\"path\":\"/dev/mem\",\"type\":\"c\",\"major\":1,\"minor\":1}]",
                        "[]");
        struct shim_blockdev *bd = NULL;
        size_t n = 0;
        struct cc_error *err = NULL;
        assert_int_equal(shim_blockdevs_from_spec(spec, "priv", fx->sys, fx->dev, &bd, &n, &err),
                         -EINVAL);
        assert_null(bd);
        const char *m = cc_error_message(err);
        assert_non_null(strstr(m, "container priv: 2 host character devices"));
        assert_non_null(strstr(m, "/dev/kmsg (c 1:11), /dev/mem (c 1:1)"));
        assert_non_null(strstr(m, "privileged_without_host_devices = true"));
        assert_null(strstr(m, "/dev/null"));
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INVALID_ARGUMENT);
        cc_error_free(err);
        json_object_put(spec);
        /* The standard ones alone pass and attach nothing. */
        spec = spec_of("[{\"path\":\"/dev/null\",\"type\":\"c\",\"major\":1,\"minor\":3},"
                       "{\"path\":\"/dev/ptmx\",\"type\":\"c\",\"major\":5,\"minor\":2}]",
                       "[]");
        err = NULL;
        assert_int_equal(shim_blockdevs_from_spec(spec, "c1", fx->sys, fx->dev, &bd, &n, &err), 0);
        assert_int_equal(n, 0);
        assert_null(bd);
        json_object_put(spec);
}

static void test_block_errors(void **state)
{
        struct fixture *fx = *state;
        struct shim_blockdev *bd = NULL;
        size_t n = 0;
        struct cc_error *err = NULL;
        /* A device the host does not have names the container, the path and the numbers. */
        struct json_object *spec =
                spec_of("[{\"path\":\"/dev/xvdb\",\"type\":\"b\",\"major\":7,\"minor\":99}]", "[]");
        assert_int_equal(shim_blockdevs_from_spec(spec, "c2", fx->sys, fx->dev, &bd, &n, &err),
                         -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "container c2: device /dev/xvdb"));
        assert_non_null(strstr(cc_error_message(err), "7:99 is not on this host"));
        cc_error_free(err);
        json_object_put(spec);
        /* The trusted store must be writable: the guest formats it. */
        err = NULL;
        spec = spec_of("[{\"path\":\"/dev/trusted_store\",\"type\":\"b\",\"major\":7,"
                       "\"minor\":42}]",
                       "[" DENY_ALL ",{\"allow\":true,\"type\":\"b\",\"major\":7,\"minor\":42,"
                       "\"access\":\"r\"}]");
        assert_int_equal(shim_blockdevs_from_spec(spec, "c3", fx->sys, fx->dev, &bd, &n, &err),
                         -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "/dev/trusted_store must be writable"));
        cc_error_free(err);
        json_object_put(spec);
        /* No numbers. */
        err = NULL;
        spec = spec_of("[{\"path\":\"/dev/xvdc\",\"type\":\"b\"}]", "[]");
        assert_int_equal(shim_blockdevs_from_spec(spec, "c4", fx->sys, fx->dev, &bd, &n, &err),
                         -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "valid major and minor"));
        cc_error_free(err);
        json_object_put(spec);
}

/* The translated spec keeps the block entries (host numbers: the agent rewrites them) and
 * nothing else of linux.devices. */
static void test_spec_keeps_block(void **state)
{
        (void)state;
        struct json_object *spec =
                spec_of("[{\"path\":\"/dev/null\",\"type\":\"c\",\"major\":1,\"minor\":3},"
                        "{\"path\":\"/dev/xvda\",\"type\":\"b\",\"major\":7,\"minor\":42,"
                        "\"fileMode\":432,\"uid\":0,\"gid\":6}]",
                        "[]");
        Grpc__Spec *g = NULL;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        struct cc_error *err = NULL;
        assert_int_equal(shim_spec_from_oci(spec, "c1", "/guest/root", &g, &files, &n_files, &err),
                         0);
        assert_non_null(g->linux_);
        assert_int_equal(g->linux_->n_devices, 1);
        Grpc__LinuxDevice *d = g->linux_->devices[0];
        assert_string_equal(d->path, "/dev/xvda");
        assert_string_equal(d->type, "b");
        assert_int_equal(d->major, 7);
        assert_int_equal(d->minor, 42);
        assert_int_equal(d->filemode, 432);
        assert_int_equal(d->gid, 6);
        protobuf_c_message_free_unpacked(&g->base, NULL);
        shim_file_copies_free(files, n_files);
        json_object_put(spec);
}

static void test_config_slots(void **state)
{
        struct fixture *fx = *state;
        char path[160];
        snprintf(path, sizeof(path), "%s/c.toml", fx->root);
        struct shim_config c;
        shim_config_init(&c);
        assert_int_equal(c.hotplug_slots, SHIM_HOTPLUG_SLOTS_DEFAULT);
        write_file(path, "[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/k\"\n"
                         "pcie_root_port = 5\n");
        assert_int_equal(shim_config_load(path, &c, NULL), 0);
        assert_int_equal(c.hotplug_slots, 5);
        shim_config_done(&c);
        shim_config_init(&c);
        write_file(path, "[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/k\"\n"
                         "pcie_root_port = 99\n");
        struct cc_error *err = NULL;
        assert_int_equal(shim_config_load(path, &c, &err), -ERANGE);
        assert_non_null(strstr(cc_error_message(err), "pcie_root_port"));
        cc_error_free(err);
        shim_config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_host_path),        cmocka_unit_test(test_block_readonly),
                cmocka_unit_test(test_char_refused),     cmocka_unit_test(test_block_errors),
                cmocka_unit_test(test_spec_keeps_block), cmocka_unit_test(test_config_slots),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
