/*
 * Unit tests: CreateContainer's Devices (guest-agent/storage/devices.c, issue 15). The checks
 * made before anything is done (type, serial, container path, the spec's entry, duplicates,
 * the trusted store), the rewrite of the spec's host numbers to the guest's, the wait for a
 * disk by serial in a fake /sys/block, and the policy's "devices" field.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "cc/fileio.h"

#include "guest-agent/agent.h"
#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/spec.h"
#include "kata/agent.pb-c.h"
#include "kata/oci.pb-c.h"

/* A spec with two block entries (host numbers 8:16 and 8:32), a char one, and the rules a
 * containerd CRI spec has for them (plus the deny-all and an all-block-devices rule). */
static Grpc__LinuxDevice ent[3];
static Grpc__LinuxDevice *ents[3];
static Grpc__LinuxDeviceCgroup rules[5];
static Grpc__LinuxDeviceCgroup *rulep[5];
static Grpc__LinuxResources res;
static Grpc__Linux lin;

static void spec_init(void)
{
        static const struct {
                const char *path, *type;
                int64_t major, minor;
        } e[3] = {{"/dev/xvda", "b", 8, 16},
                  {"/dev/trusted_store", "b", 8, 32},
                  {"/dev/fuse", "c", 10, 229}};
        for (size_t i = 0; i < 3; i++) {
                ent[i] = (Grpc__LinuxDevice)GRPC__LINUX_DEVICE__INIT;
                ent[i].path = (char *)e[i].path;
                ent[i].type = (char *)e[i].type;
                ent[i].major = e[i].major;
                ent[i].minor = e[i].minor;
                ents[i] = &ent[i];
        }
        static const struct {
                bool allow;
                const char *type;
                int64_t major, minor;
        } r[5] = {{false, "a", -1, -1},
                  {true, "b", 8, 16},
                  {true, "b", 8, 32},
                  {true, "b", -1, -1},
                  {true, "c", 8, 16}};
        for (size_t i = 0; i < 5; i++) {
                rules[i] = (Grpc__LinuxDeviceCgroup)GRPC__LINUX_DEVICE_CGROUP__INIT;
                rules[i].allow = r[i].allow;
                rules[i].type = (char *)r[i].type;
                rules[i].major = r[i].major;
                rules[i].minor = r[i].minor;
                rules[i].access = "rwm";
                rulep[i] = &rules[i];
        }
        res = (Grpc__LinuxResources)GRPC__LINUX_RESOURCES__INIT;
        res.devices = rulep;
        res.n_devices = 5;
        lin = (Grpc__Linux)GRPC__LINUX__INIT;
        lin.devices = ents;
        lin.n_devices = 3;
        lin.resources = &res;
}

static Grpc__Device dev[3];
static Grpc__Device *devp[3];

static void dev_set(size_t i, const char *type, const char *id, const char *path)
{
        dev[i] = (Grpc__Device)GRPC__DEVICE__INIT;
        dev[i].type = (char *)type;
        dev[i].id = (char *)id;
        dev[i].container_path = (char *)path;
        devp[i] = &dev[i];
}

#define assert_refused(n, text)                                                            \
        do {                                                                               \
                _cleanup_error_ struct cc_error *e_ = NULL;                                \
                assert_int_equal(agent_devices_check(devp, (n), &lin, &e_), -EINVAL);      \
                if (!strstr(cc_error_message(e_), (text)))                                 \
                        fail_msg("message '%s' lacks '%s'", cc_error_message(e_), (text)); \
        } while (0)

static void test_check(void **state)
{
        (void)state;
        spec_init();
        _cleanup_error_ struct cc_error *err = NULL;
        dev_set(0, "blk", "disk-1", "/dev/xvda");
        dev_set(1, "blk", "cc.store_2", "/dev/trusted_store");
        assert_int_equal(agent_devices_check(devp, 2, &lin, &err), 0);
        assert_int_equal(agent_devices_check(devp, 0, &lin, &err), 0);

        dev_set(0, "vfio", "disk-1", "/dev/xvda");
        assert_refused(1, "type 'vfio' is not supported");
        dev_set(0, "blk", "", "/dev/xvda");
        assert_refused(1, "is not a disk serial");
        dev_set(0, "blk", "disk/1", "/dev/xvda");
        assert_refused(1, "'disk/1' is not a disk serial");
        dev_set(0, "blk", "abcdefghijklmnopqrstu", "/dev/xvda"); /* 21 bytes */
        assert_refused(1, "is not a disk serial");
        dev_set(0, "blk", "disk-1", "dev/xvda");
        assert_refused(1, "container_path");
        dev_set(0, "blk", "disk-1", "/dev/xvdb");
        assert_refused(1, "the spec has no linux.devices entry at /dev/xvdb");
        dev_set(0, "blk", "disk-1", "/dev/fuse");
        assert_refused(1, "is not a block device");
        /* Duplicates: the same disk twice, two disks at one path, two trusted stores. */
        dev_set(0, "blk", "disk-1", "/dev/xvda");
        dev_set(1, "blk", "disk-1", "/dev/trusted_store");
        assert_refused(2, "device disk-1 is given twice");
        dev_set(1, "blk", "disk-2", "/dev/xvda");
        assert_refused(2, "two devices at /dev/xvda");
        dev_set(0, "blk", "disk-1", "/dev/trusted_store");
        dev_set(1, "blk", "disk-2", "/dev/trusted_store");
        assert_refused(2, "a second /dev/trusted_store");
        /* Options: "integrity" on the trusted store only. */
        static char *integrity[] = {"integrity"}, *other[] = {"rw"};
        dev_set(0, "blk", "disk-1", "/dev/trusted_store");
        dev[0].options = integrity;
        dev[0].n_options = 1;
        assert_int_equal(agent_devices_check(devp, 1, &lin, &err), 0);
        dev[0].options = other;
        assert_refused(1, "option 'rw' is not supported");
        dev_set(0, "blk", "disk-1", "/dev/xvda");
        dev[0].options = integrity;
        dev[0].n_options = 1;
        assert_refused(1, "option 'integrity' is not supported");
        /* A missing entry of the list. */
        devp[0] = NULL;
        assert_refused(1, "device 0 is missing");
}

static void test_rewrite(void **state)
{
        (void)state;
        spec_init();
        /* The entry and the rule naming 8:16 (block) become 253:0; the deny-all, the
         * all-block-devices rule, the other disk's and a char rule of the same numbers stay. */
        assert_int_equal(agent_devices_rewrite(&lin, "/dev/xvda", 253, 0), 2);
        assert_int_equal(ent[0].major, 253);
        assert_int_equal(ent[0].minor, 0);
        assert_int_equal(rules[1].major, 253);
        assert_int_equal(rules[1].minor, 0);
        assert_int_equal(rules[0].major, -1);
        assert_int_equal(rules[2].major, 8);
        assert_int_equal(rules[2].minor, 32);
        assert_int_equal(rules[3].major, -1);
        assert_int_equal(rules[4].major, 8);
        assert_int_equal(ent[1].major, 8);
        assert_int_equal(agent_devices_rewrite(&lin, "/dev/trusted_store", 253, 16), 2);
        assert_int_equal(rules[2].minor, 16);
        assert_int_equal(agent_devices_rewrite(&lin, "/dev/none", 1, 1), 0);
        /* No resources at all: the entry alone. */
        lin.resources = NULL;
        assert_int_equal(agent_devices_rewrite(&lin, "/dev/fuse", 10, 1), 1);
}

static void put(const char *dir, const char *name, const char *file, const char *text)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_int_equal(cc_mkdir_p(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void test_block_wait(void **state)
{
        (void)state;
        char dir[] = "/tmp/cc-test-devices-XXXXXX";
        assert_non_null(mkdtemp(dir));
        put(dir, "vda", "serial", "root\n");
        put(dir, "vdb", "serial", "disk-1\n");
        put(dir, "vdb", "dev", "254:16\n");
        put(dir, "vdb", "ro", "1\n");
        put(dir, "vdc", "serial", "disk-2");
        put(dir, "vdc", "dev", "garbage\n");
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_block b;
        assert_int_equal(agent_block_wait(dir, "disk-1", 0, &b, &err), 0);
        assert_string_equal(b.name, "vdb");
        assert_int_equal(b.major, 254);
        assert_int_equal(b.minor, 16);
        assert_true(b.readonly);
        assert_false(b.held);
        put(dir, "vdb/holders", "dm-0", "");
        assert_int_equal(agent_block_wait(dir, "disk-1", 0, &b, &err), 0);
        assert_true(b.held);
        /* Not there (no wait): the error names the serial. */
        assert_int_equal(agent_block_wait(dir, "disk-9", 0, &b, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "no disk with serial 'disk-9'"));
        cc_error_free(err);
        err = NULL;
        assert_int_equal(agent_block_wait(dir, "disk-2", 0, &b, &err), -EIO);
        assert_non_null(strstr(cc_error_message(err), "no device number"));
        assert_int_equal(cc_rm_rf_at(AT_FDCWD, dir), 0);
}

static void test_serial(void **state)
{
        (void)state;
        assert_true(agent_serial_valid("a"));
        assert_true(agent_serial_valid("cc-trusted-store"));
        assert_true(agent_serial_valid("A.b_c-09876543210987"));
        assert_false(agent_serial_valid(NULL));
        assert_false(agent_serial_valid(""));
        assert_false(agent_serial_valid("A.b_c-098765432109876"));
        assert_false(agent_serial_valid("a b"));
        assert_false(agent_serial_valid("../vda"));
}

/* A spec without masked or read-only paths passes a policy that asks for none. */
#define ANY_PATHS "\"masked_paths\": [], \"readonly_paths\": []"

/* The policy: devices denied by a "containers" entry unless its "devices" names the path;
 * no policy, or none of "containers", allows them. */
static void test_policy(void **state)
{
        (void)state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_parse("{\"version\": 2, \"containers\": ["
                                            " {\"name\": \"db\", \"privileged\": true,"
                                            "  \"devices\": [\"/dev/xvd?\"]},"
                                            " {\"name\": \"*\", " ANY_PATHS "}]}",
                                            &p, &err),
                         0);
        struct agent_spec s = {.namespaces =
                                       AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS};
        static char *args[] = {"/bin/true", NULL};
        s.process.args = args;
        s.process.has_caps = true;
        const char *devices[] = {"/dev/xvda"};
        struct agent_policy_create c = {.container_id = "c1",
                                        .name = "app",
                                        .spec = &s,
                                        .devices = devices,
                                        .n_devices = 1};
        assert_int_equal(agent_policy_check_create(p, &c, &err), -EPERM);
        if (!strstr(cc_error_message(err), "device /dev/xvda is not allowed"))
                fail_msg("%s", cc_error_message(err));
        assert_int_equal(agent_policy_check_create(NULL, &c, &err), 0);
        _cleanup_(agent_policy_freep) struct agent_policy *q = NULL;
        assert_int_equal(agent_policy_parse("{\"version\": 2, \"containers\": [{\"name\": \"*\","
                                            " \"devices\": [\"/dev/xvd?\"], " ANY_PATHS "}]}",
                                            &q, &err),
                         0);
        cc_error_free(err);
        err = NULL;
        if (agent_policy_check_create(q, &c, &err) < 0)
                fail_msg("denied: %s", cc_error_message(err));
        devices[0] = "/dev/sdb";
        assert_int_equal(agent_policy_check_create(q, &c, &err), -EPERM);
        /* A wrong type is a parse error, not a silent widening. */
        _cleanup_(agent_policy_freep) struct agent_policy *bad = NULL;
        assert_int_equal(agent_policy_parse("{\"version\": 2, \"containers\": [{\"name\": \"*\","
                                            " \"devices\": \"/dev/xvda\"}]}",
                                            &bad, &err),
                         -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check),      cmocka_unit_test(test_rewrite),
                cmocka_unit_test(test_block_wait), cmocka_unit_test(test_serial),
                cmocka_unit_test(test_policy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
