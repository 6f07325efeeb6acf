/* Unit tests of libccimage's confined tar applier (img__unpack_fd) and path cleaning. Tars are
 * written in memory with libarchive and fed through a pipe. */
/* cmocka.h needs the standard headers before it. */
/* clang-format off */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include <archive.h>
#include <archive_entry.h>

#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

struct ent {
        const char *name;
        char type;        /* f d l h c */
        const char *data; /* content, or link target */
        int mode;
        int uid, gid;
};

/* Writes a ustar/pax tar of ents to a memfd and returns it rewound. */
static int make_tar(const struct ent *e, size_t n)
{
        static char buf[1 << 20];
        size_t used = 0;
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_set_bytes_in_last_block(a, 1);
        assert_int_equal(archive_write_open_memory(a, buf, sizeof(buf), &used), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *ae = archive_entry_new();
                archive_entry_set_pathname(ae, e[i].name);
                archive_entry_set_mode(ae, (e[i].mode ? e[i].mode : 0644) |
                                                   (e[i].type == 'd'   ? AE_IFDIR
                                                    : e[i].type == 'l' ? AE_IFLNK
                                                    : e[i].type == 'c' ? AE_IFCHR
                                                                       : AE_IFREG));
                if (e[i].type == 'c')
                        archive_entry_set_rdev(ae, makedev(1, 3));
                archive_entry_set_uid(ae, e[i].uid);
                archive_entry_set_gid(ae, e[i].gid);
                if (e[i].type == 'l')
                        archive_entry_set_symlink(ae, e[i].data);
                if (e[i].type == 'h')
                        archive_entry_set_hardlink(ae, e[i].data);
                size_t len = e[i].type == 'f' && e[i].data ? strlen(e[i].data) : 0;
                archive_entry_set_size(ae, (la_int64_t)len);
                archive_entry_set_mtime(ae, 1700000000, 0);
                assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
                if (len)
                        archive_write_data(a, e[i].data, len);
                archive_entry_free(ae);
        }
        archive_write_close(a);
        archive_write_free(a);
        int fd = memfd_create("tar", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, used), (ssize_t)used);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static char root[] = "/tmp/img-unit.XXXXXX";
static int rootfd = -1;

static int setup(void **state)
{
        strcpy(root, "/tmp/img-unit.XXXXXX");
        assert_non_null(mkdtemp(root));
        rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return rootfd < 0;
}

static int teardown(void **state)
{
        close(rootfd);
        char *slash = strrchr(root, '/');
        *slash = 0;
        int p = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cc_rm_rf_at(p, slash + 1);
        close(p);
        *slash = '/';
        return 0;
}

static int unpack_flags(const struct ent *e, size_t n, unsigned flags, struct cc_error **err)
{
        int fd = make_tar(e, n);
        int r = img__unpack_fd(fd, rootfd, IMG_COMP_NONE, flags, err);
        close(fd);
        return r;
}

static int unpack(const struct ent *e, size_t n, struct cc_error **err)
{
        int fd = make_tar(e, n);
        int r = img__unpack_fd(fd, rootfd, IMG_COMP_NONE, 0, err);
        close(fd);
        return r;
}

static bool exists(const char *p)
{
        struct stat st;
        return fstatat(rootfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_path_clean(void **state)
{
        char out[PATH_MAX];
        assert_int_equal(img__path_clean("./a//b/./c/", out, sizeof(out)), 0);
        assert_string_equal(out, "a/b/c");
        assert_int_equal(img__path_clean("./", out, sizeof(out)), 0);
        assert_string_equal(out, "");
        assert_int_equal(img__path_clean("a/../b", out, sizeof(out)), -EINVAL);
        assert_int_equal(img__path_clean("..", out, sizeof(out)), -EINVAL);
        assert_int_equal(img__path_clean("/etc/passwd", out, sizeof(out)), -EINVAL);
        assert_int_equal(img__path_clean("", out, sizeof(out)), -EINVAL);
        assert_int_equal(img__path_clean("a/..b/c..", out, sizeof(out)), 0);
        assert_string_equal(out, "a/..b/c..");
        char small[4];
        assert_int_equal(img__path_clean("abcdef", small, sizeof(small)), -ENAMETOOLONG);
}

static void test_basic_tree(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const struct ent e[] = {
                {"./", 'd', NULL, 0755},
                {"etc/", 'd', NULL, 0755},
                {"etc/motd", 'f', "hello\n", 0644},
                {"etc/motd.hard", 'h', "etc/motd", 0},
                {"etc/link", 'l', "/etc/motd", 0},
                {"deep/a/b/c/file", 'f', "x", 0600},   /* parents created implicitly */
                {"etc/motd", 'f', "replaced\n", 0640}, /* a later entry replaces */
                {"bin/", 'd', NULL, 0700},
                {"bin", 'd', NULL, 0755}, /* dir over dir: attributes only */
        };
        assert_int_equal(unpack(e, CC_ARRAY_SIZE(e), &err), 0);
        struct stat st;
        assert_int_equal(fstatat(rootfd, "etc/motd", &st, 0), 0);
        assert_int_equal(st.st_size, 9);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(fstatat(rootfd, "deep/a/b/c/file", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        char target[64] = {0};
        assert_int_equal(readlinkat(rootfd, "etc/link", target, sizeof(target) - 1), 9);
        assert_string_equal(target, "/etc/motd");
        assert_int_equal(fstatat(rootfd, "bin", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(st.st_mtime, 1700000000);
}

static void test_whiteouts(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const struct ent e[] = {
                {"dir/keep", 'f', "k", 0},
                {"dir/.wh.gone", 'f', "", 0},
                {"opq/new", 'f', "n", 0},
                {"opq/.wh..wh..opq", 'f', "", 0}, /* after its siblings, still applies */
                {"dir/keep2", 'f', "k", 0},
                {"dir/.wh.keep2", 'f', "", 0}, /* the layer's own entry wins */
        };
        assert_int_equal(unpack(e, CC_ARRAY_SIZE(e), &err), 0);
        struct stat st;
        assert_int_equal(fstatat(rootfd, "dir/gone", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, 0);
        assert_false(exists("dir/.wh.gone"));
        assert_int_equal(fstatat(rootfd, "dir/keep2", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        char path[PATH_MAX], v[4] = {0};
        snprintf(path, sizeof(path), "%s/opq", root);
        assert_int_equal(getxattr(path, "trusted.overlay.opaque", v, sizeof(v)), 1);
        assert_string_equal(v, "y");
        assert_true(exists("opq/new"));
        assert_false(exists("opq/.wh..wh..opq"));

        const struct ent bare[] = {{"x/.wh.", 'f', "", 0}};
        assert_int_equal(unpack(bare, 1, &err), -EINVAL);
}

static void test_escapes(void **state)
{
        struct {
                struct ent e[2];
                size_t n;
                const char *msg;
        } cases[] = {
                {{{"../x", 'f', "x", 0}}, 1, "escapes"},
                {{{"a/../../x", 'f', "x", 0}}, 1, "escapes"},
                {{{"/abs", 'f', "x", 0}}, 1, "escapes"},
                {{{"s", 'l', "/tmp", 0}, {"s/x", 'f', "x", 0}}, 2, "symlink"},
                {{{"s2", 'l', ".", 0}, {"s2/x", 'f', "x", 0}}, 2, "symlink"},
                {{{"h", 'h', "../../etc/passwd", 0}}, 1, "escapes"},
                {{{"h", 'h', "/etc/passwd", 0}}, 1, "escapes"},
                {{{"h", 'h', "etc/none", 0}}, 1, "not in this layer"},
                {{{"s3", 'l', "/etc", 0}, {"h", 'h', "s3/passwd", 0}}, 2, "symlink"},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                assert_true(unpack(cases[i].e, cases[i].n, &err) < 0);
                if (!strstr(cc_error_message(err), cases[i].msg))
                        fail_msg("case %zu: '%s' lacks '%s'", i, cc_error_message(err),
                                 cases[i].msg);
        }
        /* A symlink replaced by a file: the file is created in place, not through it. */
        _cleanup_error_ struct cc_error *err = NULL;
        const struct ent e[] = {{"t", 'l', "/tmp/img-unit-should-not-exist", 0},
                                {"t", 'f', "data", 0}};
        assert_int_equal(unpack(e, 2, &err), 0);
        struct stat st;
        assert_int_equal(fstatat(rootfd, "t", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(access("/tmp/img-unit-should-not-exist", F_OK), -1);
}

static void test_truncated(void **state)
{
        /* A tar cut in the middle of a file's data is an error, never a short file. */
        const struct ent e[] = {{"big", 'f',
                                 "0123456789012345678901234567890123456789012345678901234567890123"
                                 "456789",
                                 0}};
        int fd = make_tar(e, 1);
        assert_int_equal(ftruncate(fd, 512 + 20), 0);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_true(img__unpack_fd(fd, rootfd, IMG_COMP_NONE, 0, &err) < 0);
        close(fd);
}

/* Device nodes, setuid bits and ownership follow the IMG_PULL_* flags. */
static void test_policy_flags(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const struct ent e[] = {
                {"dev/null", 'c', NULL, 0666, 0, 0},
                {"bin/su", 'f', "su", 04755, 0, 0},
                {"home/u/file", 'f', "x", 0644, 1234, 5678},
        };
        struct stat st;
        /* Defaults: no devices, setuid kept, owner not applied. */
        assert_int_equal(unpack_flags(e, CC_ARRAY_SIZE(e), 0, &err), 0);
        assert_false(exists("dev/null"));
        assert_int_equal(fstatat(rootfd, "bin/su", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 04755);
        assert_int_equal(fstatat(rootfd, "home/u/file", &st, 0), 0);
        assert_int_equal(st.st_uid, geteuid());

        if (geteuid() != 0) {
                skip(); /* devices and chown need root */
                return;
        }
        assert_int_equal(
                unpack_flags(e, CC_ARRAY_SIZE(e),
                             IMG_PULL_ALLOW_DEVICES | IMG_PULL_NO_SETID | IMG_PULL_KEEP_OWNERS,
                             &err),
                0);
        assert_int_equal(fstatat(rootfd, "dev/null", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
        assert_int_equal(st.st_mode & 07777, 0666);
        assert_int_equal(fstatat(rootfd, "bin/su", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(fstatat(rootfd, "home/u/file", &st, 0), 0);
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 5678);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_path_clean),
                cmocka_unit_test_setup_teardown(test_basic_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_whiteouts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_flags, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
