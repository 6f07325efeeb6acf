/* Unit tests: where CopyFile may write (agent_copy_target_check(), guest-agent/rpc/rpc-copy.c). */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
// clang-format on

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/agent.h"

static char area[] = "/tmp/test-copyfile.XXXXXX";

static int setup(void **state)
{
        (void)state;
        assert_non_null(mkdtemp(area));
        char p[256];
        /* pulled: a guest-pulled image (upper next to rootfs); hostfs: a host rootfs copy. */
        const char *dirs[] = {"pulled",        "pulled/upper", "pulled/work",
                              "pulled/rootfs", "hostfs",       "hostfs/rootfs"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(dirs); i++) {
                snprintf(p, sizeof(p), "%s/%s", area, dirs[i]);
                assert_int_equal(mkdir(p, 0755), 0);
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", area);
        return system(cmd) == 0 ? 0 : -1;
}

static int check(const char *rel, bool allow_rootfs, const char *want_msg)
{
        _cleanup_close_ int fd = open(area, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        _cleanup_error_ struct cc_error *err = NULL;
        int r = agent_copy_target_check(fd, rel, allow_rootfs, &err);
        if (want_msg) {
                assert_non_null(err);
                if (!strstr(cc_error_message(err), want_msg))
                        fail_msg("'%s': message '%s' lacks '%s'", rel, cc_error_message(err),
                                 want_msg);
        }
        return r;
}

static void test_shared_files(void **state)
{
        (void)state;
        assert_int_equal(check("c1-files/0", false, NULL), 0);
        assert_int_equal(check("c1-files/3/key", false, NULL), 0);
        assert_int_equal(check("c1-0123abcd-hosts", false, NULL), 0);
        assert_int_equal(check("sec-x/f", true, NULL), 0);
}

static void test_refused(void **state)
{
        (void)state;
        /* The guest-pulled image's writable layer and work dir, and its rootfs. */
        assert_int_equal(check("pulled/upper/etc/passwd", true, "writable layer"), -EPERM);
        assert_int_equal(check("pulled/work/x", true, "writable layer"), -EPERM);
        assert_int_equal(check("pulled/rootfs/bin/sh", true, "pulled in the guest"), -EPERM);
        assert_int_equal(check("pulled/rootfs", true, "pulled in the guest"), -EPERM);
        /* Not a shared-files area. */
        assert_int_equal(check("vm1/hosts", true, "shared-files area"), -EPERM);
        assert_int_equal(check("image/blobs/sha256/x", true, "shared-files area"), -EPERM);
        assert_int_equal(check("", true, "below the containers area"), -EPERM);
        /* A first component that is no id. */
        assert_int_equal(check("..", true, "CopyFile area"), -EINVAL);
        assert_int_equal(check("a\x01-b/f", true, "CopyFile area"), -EINVAL);
}

static void test_host_rootfs(void **state)
{
        (void)state;
        assert_int_equal(check("hostfs/rootfs/bin/sh", true, NULL), 0);
        assert_int_equal(check("newc/rootfs", true, NULL), 0);
        /* Not in a TEE guest. */
        assert_int_equal(check("hostfs/rootfs/bin/sh", false, "does not take a rootfs"), -EPERM);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shared_files),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_host_rootfs),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
