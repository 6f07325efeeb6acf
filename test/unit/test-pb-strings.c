/* Unit tests: cc_pb_find_nul_string() (lib/ttrpc/pb-strings.c), the check behind the ttrpc
 * server's reject_nul_strings option. */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
// clang-format on

#include "cc/ttrpc.h"

#include "kata/agent.pb-c.h"
#include "kata/oci.pb-c.h"

/* Packs `m`, then turns every 'X' of the bytes into a NUL (the strings hold one 'X' each). */
static uint8_t *pack_with_nul(const ProtobufCMessage *m, size_t *len)
{
        *len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(*len);
        assert_non_null(buf);
        protobuf_c_message_pack(m, buf);
        for (size_t i = 0; i < *len; i++)
                if (buf[i] == 'X')
                        buf[i] = 0;
        return buf;
}

static void test_top_level(void **state)
{
        (void)state;
        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = "c1Xx";
        req.exec_id = "e1";
        size_t len;
        uint8_t *buf = pack_with_nul(&req.base, &len);
        char path[64];
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, buf,
                                               len, path, sizeof(path)),
                         1);
        assert_string_equal(path, "container_id");
        /* Decoded, the id would have been silently cut to "c1". */
        Grpc__CreateContainerRequest *d = grpc__create_container_request__unpack(NULL, len, buf);
        assert_non_null(d);
        assert_string_equal(d->container_id, "c1");
        grpc__create_container_request__free_unpacked(d, NULL);
        free(buf);
}

static void test_nested_and_clean(void **state)
{
        (void)state;
        char *args[] = {"sh", "-cX"};
        Grpc__Process proc = GRPC__PROCESS__INIT;
        proc.n_args = 2;
        proc.args = args;
        Grpc__Spec spec = GRPC__SPEC__INIT;
        spec.process = &proc;
        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = "c1";
        req.oci = &spec;
        size_t len;
        uint8_t *buf = pack_with_nul(&req.base, &len);
        char path[64];
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, buf,
                                               len, path, sizeof(path)),
                         1);
        assert_string_equal(path, "OCI.Process.Args");
        free(buf);

        /* No NUL: 0 and an empty path; bytes fields may hold NULs. */
        Grpc__CopyFileRequest cf = GRPC__COPY_FILE_REQUEST__INIT;
        uint8_t data[] = {0, 'X', 0};
        cf.path = "/run/a";
        cf.data.data = data;
        cf.data.len = sizeof(data);
        len = protobuf_c_message_get_packed_size(&cf.base);
        buf = malloc(len);
        protobuf_c_message_pack(&cf.base, buf);
        assert_int_equal(cc_pb_find_nul_string(&grpc__copy_file_request__descriptor, buf, len, path,
                                               sizeof(path)),
                         0);
        assert_string_equal(path, "");
        free(buf);
}

static void test_malformed(void **state)
{
        (void)state;
        char path[16];
        /* A length past the end, a truncated varint, a group: left to the decoder. */
        const uint8_t a[] = {0x0a, 0x7f, 'a', 0}, b[] = {0x0a, 0x80}, c[] = {0x0b, 0x0c};
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, a,
                                               sizeof(a), path, sizeof(path)),
                         0);
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, b,
                                               sizeof(b), path, sizeof(path)),
                         0);
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, c,
                                               sizeof(c), path, sizeof(path)),
                         0);
        assert_int_equal(cc_pb_find_nul_string(&grpc__create_container_request__descriptor, NULL, 0,
                                               path, sizeof(path)),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_top_level),
                cmocka_unit_test(test_nested_and_clean),
                cmocka_unit_test(test_malformed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
