/*
 * Unit tests: the pod's volumes (issue 15). The shim side: emptyDir host paths become guest
 * volume paths (ephemeral/ on a host tmpfs, local/ otherwise), the translated spec's mounts
 * point at them and name one Storage per volume; other host bind mounts are still dropped. The
 * agent side: a local/ephemeral Storage's mount point and options are checked.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "kata/agent.pb-c.h"
#include "shim/shim.h"

#define ED "/volumes/kubernetes.io~empty-dir/"

static char *mkvol(const char *base, const char *name)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s/pods/uid1%s%s", base, ED, name) > 0);
        assert_int_equal(cc_mkdir_p(p, 0755), 0);
        return p;
}

static void rm_base(const char *base)
{
        char *dir = strdup(base), *slash = strrchr(dir, '/');
        *slash = '\0';
        int fd = open(dir, O_PATH | O_DIRECTORY);
        assert_true(fd >= 0);
        assert_int_equal(cc_rm_rf_at(fd, slash + 1), 0);
        close(fd);
        free(dir);
}

static void test_emptydir_paths(void **state)
{
        (void)state;
        char disk[] = "/var/tmp/test-storage.XXXXXX";
        assert_non_null(mkdtemp(disk));
        char *v = mkvol(disk, "cache"), *g = NULL;
        assert_int_equal(shim_emptydir_guest_path(v, &g), 1);
        /* /var/tmp is not a tmpfs here (the default medium), unless the host mounts one. */
        assert_string_equal(g, SHIM_GUEST_SANDBOX_DIR "/local/cache");
        free(g);
        free(v);
        /* /dev/shm is a tmpfs: medium Memory. */
        char shm[] = "/dev/shm/test-storage.XXXXXX";
        assert_non_null(mkdtemp(shm));
        v = mkvol(shm, "mem-1");
        assert_int_equal(shim_emptydir_guest_path(v, &g), 1);
        assert_string_equal(g, SHIM_GUEST_SANDBOX_DIR "/ephemeral/mem-1");
        free(g);
        free(v);
        /* A trailing slash names the same volume. */
        assert_int_equal(shim_emptydir_guest_path("/x" ED "a/", &g), 1);
        assert_string_equal(g, SHIM_GUEST_SANDBOX_DIR "/local/a");
        free(g);
        /* Not the volume itself: none. */
        static const char *const nots[] = {"/x" ED "a/b",
                                           "/x" ED "..",
                                           "/x" ED "",
                                           "/x" ED "a b",
                                           "/x/volumes/kubernetes.io~secret/a",
                                           "/tmp",
                                           NULL};
        for (size_t i = 0; i < sizeof(nots) / sizeof(nots[0]); i++) {
                assert_int_equal(shim_emptydir_guest_path(nots[i], &g), 0);
                assert_null(g);
        }
        rm_base(disk);
        rm_base(shm);
}

static void test_spec_volumes(void **state)
{
        (void)state;
        char shm[] = "/dev/shm/test-storage.XXXXXX";
        assert_non_null(mkdtemp(shm));
        char *mem = mkvol(shm, "m");
        char *json = NULL;
        assert_true(asprintf(&json,
                             "{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
                             "\"mounts\":["
                             "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":"
                             "\"/var/lib/kubelet/pods/u" ED
                             "data\",\"options\":[\"rbind\",\"rw\"]},"
                             "{\"destination\":\"/data2\",\"type\":\"bind\",\"source\":"
                             "\"/var/lib/kubelet/pods/u" ED "data\",\"options\":[\"rbind\"]},"
                             "{\"destination\":\"/mem\",\"type\":\"bind\",\"source\":\"%s\","
                             "\"options\":[\"rbind\"]},"
                             "{\"destination\":\"/host\",\"type\":\"bind\",\"source\":\"/srv\"},"
                             "{\"destination\":\"/o\",\"type\":\"overlay\",\"source\":\"x\"}]}",
                             mem) > 0);
        struct json_object *o = NULL;
        assert_int_equal(cc_json_parse("spec", json, strlen(json), 0, &o, NULL), 0);
        Grpc__Spec *s = NULL;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        cc_log_set_level(CC_LOG_ERROR); /* the dropped mounts warn */
        assert_int_equal(shim_spec_from_oci(o, "c1", "/r", &s, &files, &n_files, NULL), 0);
        /* The three volume mounts stay (the host dir and the overlay are dropped), in the guest. */
        assert_int_equal(s->n_mounts, 3);
        assert_int_equal(n_files, 0);
        assert_string_equal(s->mounts[0]->source, SHIM_GUEST_SANDBOX_DIR "/local/data");
        assert_string_equal(s->mounts[0]->type, "bind");
        assert_string_equal(s->mounts[1]->source, SHIM_GUEST_SANDBOX_DIR "/local/data");
        assert_string_equal(s->mounts[2]->source, SHIM_GUEST_SANDBOX_DIR "/ephemeral/m");
        Grpc__Storage **st = NULL;
        size_t n = 0;
        assert_int_equal(shim_storages_for(s, &st, &n), 0);
        assert_int_equal(n, 2); /* "data" once */
        assert_string_equal(st[0]->driver, "local");
        assert_string_equal(st[0]->mount_point, SHIM_GUEST_SANDBOX_DIR "/local/data");
        assert_string_equal(st[1]->driver, "ephemeral");
        assert_string_equal(st[1]->fstype, "tmpfs");
        /* What the shim sends, the agent accepts. */
        for (size_t i = 0; i < n; i++) {
                bool tmpfs;
                mode_t mode;
                char *size = NULL;
                assert_int_equal(agent_storage_volume_check(st[i], &tmpfs, &mode, &size, NULL), 0);
                assert_int_equal(tmpfs, i == 1);
                assert_int_equal(mode, 0777);
                assert_null(size);
        }
        /* The request encodes with them. */
        Grpc__CreateContainerRequest creq = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        creq.container_id = "c1";
        creq.oci = s;
        creq.storages = st;
        creq.n_storages = n;
        assert_true(protobuf_c_message_get_packed_size(&creq.base) > 0);
        shim_storages_free(st, n);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        shim_file_copies_free(files, n_files);
        json_object_put(o);
        free(json);
        free(mem);
        rm_base(shm);

        /* No volume: no storages. */
        const char *j2 = "{\"process\":{\"args\":[\"sh\"]}}";
        assert_int_equal(cc_json_parse("spec", j2, strlen(j2), 0, &o, NULL), 0);
        assert_int_equal(shim_spec_from_oci(o, "c1", "/r", &s, &files, &n_files, NULL), 0);
        assert_int_equal(shim_storages_for(s, &st, &n), 0);
        assert_int_equal(n, 0);
        assert_null(st);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        shim_file_copies_free(files, n_files);
        json_object_put(o);
}

static int check(const char *driver, const char *mp, const char *opt, bool *tmpfs, mode_t *mode,
                 char **size, struct cc_error **err)
{
        Grpc__Storage st = GRPC__STORAGE__INIT;
        char *opts[1] = {(char *)opt};
        st.driver = (char *)driver;
        st.mount_point = (char *)mp;
        st.options = opts;
        st.n_options = opt ? 1 : 0;
        return agent_storage_volume_check(&st, tmpfs, mode, size, err);
}

static void test_agent_volume_check(void **state)
{
        (void)state;
        bool tmpfs;
        mode_t mode;
        char *size = NULL;
        struct cc_error *err = NULL;
        assert_int_equal(check("ephemeral", AGENT_SANDBOX_DIR "/ephemeral/v", "size=64m", &tmpfs,
                               &mode, &size, NULL),
                         0);
        assert_true(tmpfs);
        assert_string_equal(size, "size=64m");
        free(size);
        assert_int_equal(check("local", AGENT_SANDBOX_DIR "/local/v", "mode=0750", &tmpfs, &mode,
                               &size, NULL),
                         0);
        assert_false(tmpfs);
        assert_int_equal(mode, 0750);
        assert_null(size);
        /* The host does not choose guest paths. */
        static const char *const bad_mps[] = {
                "/etc",
                AGENT_SANDBOX_DIR "/local/",
                AGENT_SANDBOX_DIR "/local/..",
                AGENT_SANDBOX_DIR "/local/a/../../../etc",
                AGENT_SANDBOX_DIR "/ephemeral/v", /* a local volume in the tmpfs area */
                "",
        };
        for (size_t i = 0; i < sizeof(bad_mps) / sizeof(bad_mps[0]); i++) {
                assert_int_equal(check("local", bad_mps[i], NULL, &tmpfs, &mode, &size, &err),
                                 -EPERM);
                assert_non_null(strstr(cc_error_message(err), "refused"));
                cc_error_free(err);
                err = NULL;
        }
        assert_int_equal(check("local", NULL, NULL, &tmpfs, &mode, &size, &err), -EPERM);
        cc_error_free(err);
        err = NULL;
        /* Options: named when refused. */
        static const char *const bad_opts[] = {"mode=9", "mode=", "mode=077777", "size=1t",
                                               "size=",  "exec",  "uid=0"};
        for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
                assert_int_equal(check("ephemeral", AGENT_SANDBOX_DIR "/ephemeral/v", bad_opts[i],
                                       &tmpfs, &mode, &size, &err),
                                 -EINVAL);
                assert_non_null(strstr(cc_error_message(err), bad_opts[i]));
                assert_null(size);
                cc_error_free(err);
                err = NULL;
        }
        /* size= is a tmpfs option only. */
        assert_int_equal(
                check("local", AGENT_SANDBOX_DIR "/local/v", "size=1m", &tmpfs, &mode, &size, &err),
                -EINVAL);
        cc_error_free(err);
}

/* agent.trusted_storage=: the option's syntax, and the disk found by its serial, not its order. */
static void test_trusted_storage_lookup(void **state)
{
        (void)state;
        char serial[32];
        bool integrity;
        struct cc_error *err = NULL;
        assert_int_equal(agent_trusted_storage_parse("cc-trusted-store", serial, sizeof(serial),
                                                     &integrity, NULL),
                         0);
        assert_string_equal(serial, "cc-trusted-store");
        assert_false(integrity);
        assert_int_equal(agent_trusted_storage_parse("d1,integrity", serial, sizeof(serial),
                                                     &integrity, NULL),
                         0);
        assert_string_equal(serial, "d1");
        assert_true(integrity);
        static const char *const bad[] = {
                "", ",integrity", "a,b", "x/../y", "123456789012345678901", "a b"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(agent_trusted_storage_parse(bad[i], serial, sizeof(serial),
                                                             &integrity, &err),
                                 -EINVAL);
                assert_non_null(strstr(cc_error_message(err), "agent.trusted_storage"));
                cc_error_free(err);
                err = NULL;
        }
        char dir[] = "/tmp/test-storage-sys.XXXXXX";
        assert_non_null(mkdtemp(dir));
        static const char *const devs[][2] = {{"vda", "initdata"},
                                              {"vdb", "other\n"},
                                              {"vdc", "cc-trusted-store\n"},
                                              {"loop0", NULL}};
        for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
                char p[256];
                snprintf(p, sizeof(p), "%s/%s", dir, devs[i][0]);
                assert_int_equal(mkdir(p, 0755), 0);
                if (!devs[i][1])
                        continue;
                strcat(p, "/serial");
                FILE *f = fopen(p, "w");
                assert_non_null(f);
                fputs(devs[i][1], f);
                fclose(f);
        }
        char name[64];
        assert_int_equal(agent_block_by_serial(dir, "cc-trusted-store", name, sizeof(name)), 0);
        assert_string_equal(name, "vdc");
        assert_int_equal(agent_block_by_serial(dir, "cc-trusted", name, sizeof(name)), -ENOENT);
        assert_int_equal(agent_block_by_serial("/nonexistent", "x", name, sizeof(name)), -ENOENT);
        rm_base(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_emptydir_paths),
                cmocka_unit_test(test_spec_volumes),
                cmocka_unit_test(test_agent_volume_check),
                cmocka_unit_test(test_trusted_storage_lookup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
