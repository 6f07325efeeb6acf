/* Unit tests: the TOML reader (every value form, tables, errors with positions, limits). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/toml.h"

static struct cc_toml_table *parse_ok(const char *text)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct cc_toml_table *t = NULL;
        int r = cc_toml_parse_string("t.toml", text, strlen(text), &t, &err);
        if (r < 0)
                fail_msg("unexpected error: %s\ninput:\n%s", cc_error_message(err), text);
        assert_int_equal(r, 0);
        assert_null(err);
        return t;
}

/* Parsing `text` fails with exactly `msg` (after "t.toml:"). */
static void parse_fails(const char *text, size_t len, const char *msg)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct cc_toml_table *t = NULL;
        int r = cc_toml_parse_string("t.toml", text, len, &t, &err);
        if (r == 0)
                fail_msg("expected error '%s' for:\n%s", msg, text);
        assert_int_equal(r, -EINVAL);
        assert_null(t);
        char want[512];
        snprintf(want, sizeof(want), "t.toml:%s", msg);
        assert_string_equal(cc_error_message(err), want);
}

#define FAILS(text, msg) parse_fails(text, strlen(text), msg)

static const char *str(const struct cc_toml_table *t, const char *key)
{
        const char *s = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_toml_get_string(t, key, &s, &err), 0);
        return s;
}

static int64_t num(const struct cc_toml_table *t, const char *key)
{
        int64_t v = 0;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_toml_get_int64(t, key, &v, &err), 0);
        return v;
}

static double flt(const struct cc_toml_table *t, const char *key)
{
        double v = 0;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_toml_get_double(t, key, &v, &err), 0);
        return v;
}

static bool boolean(const struct cc_toml_table *t, const char *key)
{
        bool v = false;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_toml_get_bool(t, key, &v, &err), 0);
        return v;
}

static void test_basic_strings(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("a = \"plain\"\n"
                         "b = \"tab\\there \\\"q\\\" back\\\\slash\"\n"
                         "c = \"\\b\\t\\n\\f\\r\"\n"
                         "d = \"\\u00e9\\u20AC\\U0001F600\"\n"
                         "e = \"\"\n"
                         "f = \"caf\xc3\xa9 # not a comment\" # a comment\n"
                         "g = \"a\tliteral tab\"\n");
        assert_string_equal(str(t, "a"), "plain");
        assert_string_equal(str(t, "b"), "tab\there \"q\" back\\slash");
        assert_string_equal(str(t, "c"), "\b\t\n\f\r");
        assert_string_equal(str(t, "d"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        assert_string_equal(str(t, "e"), "");
        assert_string_equal(str(t, "f"), "caf\xc3\xa9 # not a comment");
        assert_string_equal(str(t, "g"), "a\tliteral tab");
}

static void test_literal_strings(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("win = 'C:\\Users\\nodejs'\n"
                                                          "quoted = 'Tom \"Dubs\" Preston'\n"
                                                          "regex = '<\\i\\c*\\s*>'\n"
                                                          "empty = ''\n");
        assert_string_equal(str(t, "win"), "C:\\Users\\nodejs");
        assert_string_equal(str(t, "quoted"), "Tom \"Dubs\" Preston");
        assert_string_equal(str(t, "regex"), "<\\i\\c*\\s*>");
        assert_string_equal(str(t, "empty"), "");
}

static void test_multiline_strings(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("a = \"\"\"\nRoses\nViolets\"\"\"\n"
                         "b = \"\"\"\\\n  The quick \\\n\n   brown fox.\\\n  \"\"\"\n"
                         "c = \"\"\"Here are two quotes: \"\". Simple.\"\"\"\n"
                         "d = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
                         "e = \"\"\"ends with two quotes\"\"\"\"\"\n"
                         "f = \"\"\"crlf\r\nline\\ttab\"\"\"\n"
                         "g = '''\nThe first newline is\ntrimmed in raw strings.\n   \\n stays'''\n"
                         "h = ''''That,' she said, 'is still pointless.''''\n"
                         "i = \"\"\"\"\"\"\n");
        assert_string_equal(str(t, "a"), "Roses\nViolets");
        assert_string_equal(str(t, "b"), "The quick brown fox.");
        assert_string_equal(str(t, "c"), "Here are two quotes: \"\". Simple.");
        assert_string_equal(str(t, "d"), "\"This,\" she said, \"is just a pointless statement.\"");
        assert_string_equal(str(t, "e"), "ends with two quotes\"\"");
        assert_string_equal(str(t, "f"), "crlf\nline\ttab");
        assert_string_equal(str(t, "g"),
                            "The first newline is\ntrimmed in raw strings.\n   \\n stays");
        assert_string_equal(str(t, "h"), "'That,' she said, 'is still pointless.'");
        assert_string_equal(str(t, "i"), "");
        /* Lines after a multi-line string are counted right. */
        const struct cc_toml_entry *e = cc_toml_table_get(t, "i");
        assert_non_null(e);
        assert_int_equal(e->line, 19);
}

static void test_integers(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("a = 99\nb = +42\nc = 0\nd = -17\ne = 1_000_000\nf = 5_349_221\n"
                         "g = 0xDEADBEEF\nh = 0xdead_beef\ni = 0o755\nj = 0b11010110\n"
                         "max = 9223372036854775807\nmin = -9223372036854775808\n"
                         "hexmax = 0x7FFFFFFFFFFFFFFF\nz = -0\nk = +0\nl = 0x00ff\n");
        assert_int_equal(num(t, "a"), 99);
        assert_int_equal(num(t, "b"), 42);
        assert_int_equal(num(t, "c"), 0);
        assert_int_equal(num(t, "d"), -17);
        assert_int_equal(num(t, "e"), 1000000);
        assert_int_equal(num(t, "f"), 5349221);
        assert_int_equal(num(t, "g"), 0xDEADBEEF);
        assert_int_equal(num(t, "h"), 0xDEADBEEF);
        assert_int_equal(num(t, "i"), 0755);
        assert_int_equal(num(t, "j"), 0xD6);
        assert_true(num(t, "max") == INT64_MAX);
        assert_true(num(t, "min") == INT64_MIN);
        assert_true(num(t, "hexmax") == INT64_MAX);
        assert_int_equal(num(t, "z"), 0);
        assert_int_equal(num(t, "k"), 0);
        assert_int_equal(num(t, "l"), 255);
}

static void test_floats(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("a = +1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\nf = -2E-2\n"
                         "g = 6.626e-34\nh = 224_617.445_991_228\ni = inf\nj = +inf\nk = -inf\n"
                         "l = nan\nm = -nan\nn = 0.0\no = 1e-400\nint = 7\n");
        assert_true(flt(t, "a") == 1.0);
        assert_true(flt(t, "b") == 3.1415);
        assert_true(flt(t, "c") == -0.01);
        assert_true(flt(t, "d") == 5e22);
        assert_true(flt(t, "e") == 1e6);
        assert_true(flt(t, "f") == -2e-2);
        assert_true(flt(t, "g") == 6.626e-34);
        assert_true(flt(t, "h") == 224617.445991228);
        assert_true(isinf(flt(t, "i")) && flt(t, "i") > 0);
        assert_true(isinf(flt(t, "j")) && flt(t, "j") > 0);
        assert_true(isinf(flt(t, "k")) && flt(t, "k") < 0);
        assert_true(isnan(flt(t, "l")));
        assert_true(isnan(flt(t, "m")));
        assert_true(flt(t, "n") == 0.0);
        assert_true(flt(t, "o") == 0.0); /* underflow rounds to zero */
        /* The double getter reads integers too. */
        assert_true(flt(t, "int") == 7.0);
        assert_int_equal(cc_toml_table_get(t, "a")->value.type, CC_TOML_FLOAT);
}

static void test_booleans_and_comments(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("# full-line comment\n"
                                                          "\t  # indented comment\n"
                                                          "yes = true # trailing\n"
                                                          "no = false\n"
                                                          "\n\n"
                                                          "   spaced   =   true   \n"
                                                          "crlf = true\r\n"
                                                          "last = false # no newline at end");
        assert_true(boolean(t, "yes"));
        assert_false(boolean(t, "no"));
        assert_true(boolean(t, "spaced"));
        assert_true(boolean(t, "crlf"));
        assert_false(boolean(t, "last"));
        assert_int_equal(cc_toml_table_get(t, "spaced")->col, 4);
}

static void test_keys(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("bare_key-1 = 1\n"
                                                          "1234 = 2\n"
                                                          "\"127.0.0.1\" = 3\n"
                                                          "\"character encoding\" = 4\n"
                                                          "'key2' = 5\n"
                                                          "\"\" = 6\n"
                                                          "\"\\u00e9\" = 7\n"
                                                          "physical.color = \"orange\"\n"
                                                          "physical.shape = \"round\"\n"
                                                          "site.\"google.com\" = true\n"
                                                          "fruit . flavor = \"banana\"\n");
        assert_int_equal(num(t, "bare_key-1"), 1);
        assert_int_equal(num(t, "1234"), 2);
        assert_int_equal(cc_toml_table_get(t, "127.0.0.1")->value.integer, 3);
        assert_int_equal(num(t, "character encoding"), 4);
        assert_int_equal(num(t, "key2"), 5);
        assert_int_equal(cc_toml_table_get(t, "")->value.integer, 6);
        assert_int_equal(num(t, "\xc3\xa9"), 7);
        assert_string_equal(str(t, "physical.color"), "orange");
        assert_string_equal(str(t, "physical.shape"), "round");
        assert_string_equal(str(t, "fruit.flavor"), "banana");
        const struct cc_toml_table *site = NULL;
        assert_int_equal(cc_toml_get_table(t, "site", &site, NULL), 0);
        assert_true(cc_toml_table_get(site, "google.com")->value.boolean);
        /* A key containing a dot cannot be reached by a dotted path. */
        assert_int_equal(cc_toml_get_bool(t, "site.google.com", &(bool){0}, NULL), -ENOENT);
}

static void test_arrays(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("ints = [ 1, 2, 3 ]\n"
                         "mixed = [ 0.1, \"x\", true, [1, [2]], { a = 1 } ]\n"
                         "multi = [\n"
                         "  \"a\", # first\n"
                         "  # a comment line\n"
                         "  'b',\n"
                         "\n"
                         "  \"\"\"c\"\"\",\n"
                         "]\n"
                         "empty = [ ]\n"
                         "nested_empty = [[], [[]]]\n");
        const struct cc_toml_value *a = NULL;
        assert_int_equal(cc_toml_get_array(t, "ints", &a, NULL), 0);
        assert_int_equal(a->array.n, 3);
        assert_int_equal(a->array.items[2].integer, 3);
        assert_int_equal(cc_toml_get_array(t, "mixed", &a, NULL), 0);
        assert_int_equal(a->array.n, 5);
        assert_int_equal(a->array.items[0].type, CC_TOML_FLOAT);
        assert_string_equal(a->array.items[1].string, "x");
        assert_true(a->array.items[2].boolean);
        assert_int_equal(a->array.items[3].type, CC_TOML_ARRAY);
        assert_int_equal(a->array.items[3].array.items[1].array.items[0].integer, 2);
        assert_int_equal(a->array.items[4].type, CC_TOML_TABLE);
        assert_int_equal(num(a->array.items[4].table, "a"), 1);
        /* Positions of elements. */
        assert_int_equal(a->array.items[1].line, 2);
        assert_int_equal(a->array.items[1].col, 16);

        _cleanup_strv_ char **v = NULL;
        assert_int_equal(cc_toml_get_strv(t, "multi", &v, NULL), 0);
        assert_string_equal(v[0], "a");
        assert_string_equal(v[1], "b");
        assert_string_equal(v[2], "c");
        assert_null(v[3]);
        _cleanup_strv_ char **e = NULL;
        assert_int_equal(cc_toml_get_strv(t, "empty", &e, NULL), 0);
        assert_null(e[0]);
        assert_int_equal(cc_toml_get_array(t, "nested_empty", &a, NULL), 0);
        assert_int_equal(a->array.items[1].array.n, 1);
}

static void test_inline_tables(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t =
                parse_ok("name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
                         "point = {x=1,y=2}\n"
                         "animal = { type.name = \"pug\", \"q.k\" = { deep = [1] } }\n"
                         "empty = {}\n");
        assert_string_equal(str(t, "name.first"), "Tom");
        assert_string_equal(str(t, "name.last"), "Preston-Werner");
        assert_int_equal(num(t, "point.y"), 2);
        assert_string_equal(str(t, "animal.type.name"), "pug");
        const struct cc_toml_table *animal = NULL;
        assert_int_equal(cc_toml_get_table(t, "animal", &animal, NULL), 0);
        assert_non_null(cc_toml_table_get(animal, "q.k"));
        const struct cc_toml_table *empty = NULL;
        assert_int_equal(cc_toml_get_table(t, "empty", &empty, NULL), 0);
        assert_int_equal(cc_toml_table_size(empty), 0);
}

static void test_tables(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("top = 0\n"
                                                          "[table-1]\n"
                                                          "key1 = \"some string\"\n"
                                                          "[ dog . \"tater.man\" ]\n"
                                                          "type.name = \"pug\"\n"
                                                          "[x.y.z.w] # implicit x, x.y, x.y.z\n"
                                                          "[x] # defining a super-table later\n"
                                                          "k = 1\n"
                                                          "[fruit]\n"
                                                          "apple.color = \"red\"\n"
                                                          "apple.taste.sweet = true\n"
                                                          "[fruit.apple.texture]\n"
                                                          "smooth = true\n"
                                                          "[empty]\n");
        assert_int_equal(num(t, "top"), 0);
        assert_string_equal(str(t, "table-1.key1"), "some string");
        const struct cc_toml_table *dog = NULL;
        assert_int_equal(cc_toml_get_table(t, "dog", &dog, NULL), 0);
        const struct cc_toml_entry *tater = cc_toml_table_get(dog, "tater.man");
        assert_non_null(tater);
        assert_string_equal(str(tater->value.table, "type.name"), "pug");
        assert_int_equal(num(t, "x.k"), 1);
        const struct cc_toml_table *w = NULL;
        assert_int_equal(cc_toml_get_table(t, "x.y.z.w", &w, NULL), 0);
        unsigned line, col;
        cc_toml_table_position(w, &line, &col);
        assert_int_equal(line, 6);
        assert_int_equal(col, 1);
        assert_true(boolean(t, "fruit.apple.taste.sweet"));
        assert_true(boolean(t, "fruit.apple.texture.smooth"));
        /* Iteration is in file order, with positions. */
        const char *order[] = {"top", "table-1", "dog", "x", "fruit", "empty"};
        assert_int_equal(cc_toml_table_size(t), CC_ARRAY_SIZE(order));
        for (size_t i = 0; i < CC_ARRAY_SIZE(order); i++)
                assert_string_equal(cc_toml_table_entry(t, i)->key, order[i]);
        assert_null(cc_toml_table_entry(t, CC_ARRAY_SIZE(order)));
        const struct cc_toml_entry *e = cc_toml_table_entry(t, 2);
        assert_int_equal(e->line, 4);
        assert_int_equal(e->col, 3);
        assert_string_equal(cc_toml_table_file(w), "t.toml");
}

static void test_array_of_tables(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("[[products]]\n"
                                                          "name = \"Hammer\"\n"
                                                          "sku = 738594937\n"
                                                          "[[products]]  # empty table\n"
                                                          "[[products]]\n"
                                                          "name = \"Nail\"\n"
                                                          "color = \"gray\"\n"
                                                          "[[fruits]]\n"
                                                          "name = \"apple\"\n"
                                                          "[fruits.physical]\n"
                                                          "color = \"red\"\n"
                                                          "[[fruits.varieties]]\n"
                                                          "name = \"red delicious\"\n"
                                                          "[[fruits.varieties]]\n"
                                                          "name = \"granny smith\"\n"
                                                          "[[fruits]]\n"
                                                          "name = \"banana\"\n"
                                                          "[[fruits.varieties]]\n"
                                                          "name = \"plantain\"\n");
        const struct cc_toml_value *a = NULL;
        assert_int_equal(cc_toml_get_array(t, "products", &a, NULL), 0);
        assert_int_equal(a->array.n, 3);
        assert_string_equal(str(a->array.items[0].table, "name"), "Hammer");
        assert_int_equal(cc_toml_table_size(a->array.items[1].table), 0);
        assert_string_equal(str(a->array.items[2].table, "color"), "gray");
        assert_int_equal(a->array.items[2].line, 5);
        assert_int_equal(cc_toml_get_array(t, "fruits", &a, NULL), 0);
        assert_int_equal(a->array.n, 2);
        const struct cc_toml_table *apple = a->array.items[0].table;
        assert_string_equal(str(apple, "physical.color"), "red");
        const struct cc_toml_value *v = NULL;
        assert_int_equal(cc_toml_get_array(apple, "varieties", &v, NULL), 0);
        assert_int_equal(v->array.n, 2);
        assert_string_equal(str(v->array.items[1].table, "name"), "granny smith");
        assert_int_equal(cc_toml_get_array(a->array.items[1].table, "varieties", &v, NULL), 0);
        assert_int_equal(v->array.n, 1);
        /* An array of tables is not an array of strings. */
        _cleanup_error_ struct cc_error *err = NULL;
        char **strv = NULL;
        assert_int_equal(cc_toml_get_strv(t, "products", &strv, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "t.toml:1:1: key 'products' must be an array "
                                                   "of strings, element 0 is a table");
}

/* An excerpt of Kata's configuration-qemu-tdx.toml (keys of hypervisor-agent.md 4.2). */
static const char kata_config[] =
        "# Copyright (c) 2017-2019 Intel Corporation\n"
        "#\n"
        "# SPDX-License-Identifier: Apache-2.0\n"
        "\n"
        "[hypervisor.qemu]\n"
        "path = \"/opt/confidential-containers/bin/qemu-system-x86_64\"\n"
        "kernel = \"/opt/confidential-containers/share/kata-containers/vmlinuz-confidential."
        "container\"\n"
        "image = \"/opt/confidential-containers/share/kata-containers/"
        "kata-containers-confidential.img\"\n"
        "machine_type = \"q35\"\n"
        "\n"
        "# Enable confidential guest support.\n"
        "confidential_guest = true\n"
        "tdx_quote_generation_service_socket_port = 0\n"
        "firmware = \"/opt/confidential-containers/share/ovmf/OVMF.inteltdx.fd\"\n"
        "firmware_volume = \"\"\n"
        "machine_accelerators=\"\"\n"
        "kernel_params = \"cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1\"\n"
        "kernel_verity_params = \"\"\n"
        "cpu_features=\"pmu=off\"\n"
        "default_vcpus = 1\n"
        "default_maxvcpus = 0\n"
        "default_memory = 2048\n"
        "default_maxmemory = 0\n"
        "shared_fs = \"none\"\n"
        "disable_block_device_use = true\n"
        "block_device_driver = \"virtio-scsi\"\n"
        "disable_image_nvdimm = true\n"
        "enable_debug = false\n"
        "rootless = false\n"
        "disable_nesting_checks = false\n"
        "valid_hypervisor_paths = [\"/opt/confidential-containers/bin/qemu-system-x86_64\"]\n"
        "\n"
        "[agent.kata]\n"
        "enable_debug = false\n"
        "enable_tracing = false\n"
        "kernel_modules=[]\n"
        "debug_console_enabled = false\n"
        "dial_timeout = 60\n"
        "launch_process_timeout = 6\n"
        "\n"
        "[runtime]\n"
        "enable_debug = false\n"
        "internetworking_model=\"tcfilter\"\n"
        "disable_guest_seccomp=true\n"
        "sandbox_cgroup_only=false\n"
        "static_sandbox_resource_mgmt=true\n"
        "disable_guest_empty_dir = true\n"
        "emptydir_mode = \"block-encrypted\"\n"
        "create_container_timeout = 60\n"
        "experimental_force_guest_pull = false\n"
        "kubelet_root_dir = \"/var/lib/kubelet\"\n"
        "dan_conf = \"/run/kata-containers/dans\"\n"
        "pod_resource_api_sock = \"\"\n"
        "enable_pprof = false\n"
        "vfio_mode = \"guest-kernel\"\n"
        "experimental=[]\n"
        "\n"
        "[image]\n"
        "service_offload = true\n"
        "image_request_timeout = 60\n";

static void test_kata_config(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok(kata_config);
        const struct cc_toml_table *qemu = NULL;
        assert_int_equal(cc_toml_get_table(t, "hypervisor.qemu", &qemu, NULL), 0);
        assert_string_equal(str(qemu, "path"),
                            "/opt/confidential-containers/bin/qemu-system-x86_64");
        assert_string_equal(str(qemu, "machine_type"), "q35");
        assert_true(boolean(qemu, "confidential_guest"));
        assert_int_equal(num(qemu, "tdx_quote_generation_service_socket_port"), 0);
        assert_string_equal(str(qemu, "firmware"),
                            "/opt/confidential-containers/share/ovmf/OVMF.inteltdx.fd");
        assert_string_equal(str(qemu, "firmware_volume"), "");
        assert_string_equal(str(qemu, "kernel_params"),
                            "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1");
        assert_string_equal(str(qemu, "cpu_features"), "pmu=off");
        assert_int_equal(num(qemu, "default_vcpus"), 1);
        assert_int_equal(num(qemu, "default_maxvcpus"), 0);
        assert_int_equal(num(qemu, "default_memory"), 2048);
        assert_string_equal(str(qemu, "shared_fs"), "none");
        assert_true(boolean(qemu, "disable_block_device_use"));
        assert_string_equal(str(qemu, "block_device_driver"), "virtio-scsi");
        assert_true(boolean(qemu, "disable_image_nvdimm"));
        assert_false(boolean(qemu, "disable_nesting_checks"));
        /* Absent keys are -ENOENT with no error, so callers apply defaults. */
        _cleanup_error_ struct cc_error *err = NULL;
        bool sev = true;
        assert_int_equal(cc_toml_get_bool(qemu, "sev_snp_guest", &sev, &err), -ENOENT);
        assert_true(sev);
        assert_null(err);
        assert_int_equal(cc_toml_get_table(t, "hypervisor.clh", &qemu, &err), -ENOENT);
        assert_null(err);

        assert_false(boolean(t, "agent.kata.enable_tracing"));
        assert_int_equal(num(t, "agent.kata.dial_timeout"), 60);
        assert_int_equal(num(t, "agent.kata.launch_process_timeout"), 6);
        _cleanup_strv_ char **mods = NULL;
        assert_int_equal(cc_toml_get_strv(t, "agent.kata.kernel_modules", &mods, NULL), 0);
        assert_null(mods[0]);

        assert_string_equal(str(t, "runtime.internetworking_model"), "tcfilter");
        assert_true(boolean(t, "runtime.static_sandbox_resource_mgmt"));
        assert_true(boolean(t, "runtime.disable_guest_seccomp"));
        assert_string_equal(str(t, "runtime.emptydir_mode"), "block-encrypted");
        assert_int_equal(num(t, "runtime.create_container_timeout"), 60);
        assert_false(boolean(t, "runtime.experimental_force_guest_pull"));
        assert_true(boolean(t, "image.service_offload"));

        int64_t vcpus = 0;
        assert_int_equal(cc_toml_get_int64_range(qemu, "default_vcpus", 1, 512, &vcpus, NULL), 0);
        assert_int_equal(vcpus, 1);
        assert_int_equal(cc_toml_get_int64_range(qemu, "default_maxvcpus", 1, 512, &vcpus, &err),
                         -ERANGE);
        assert_string_equal(cc_error_message(err),
                            "t.toml:21:1: key 'default_maxvcpus' must be between 1 and 512, got 0");

        /* What the shim does with unknown keys: iterate and name file:line. */
        const struct cc_toml_table *agent = NULL;
        assert_int_equal(cc_toml_get_table(t, "agent.kata", &agent, NULL), 0);
        assert_int_equal(cc_toml_table_size(agent), 6);
        const struct cc_toml_entry *e = cc_toml_table_entry(agent, 2);
        assert_string_equal(e->key, "kernel_modules");
        assert_int_equal(e->line, 36);
        assert_int_equal(e->col, 1);
}

static void test_getter_errors(void **state)
{
        _cleanup_toml_ struct cc_toml_table *t = parse_ok("[hypervisor.qemu]\n"
                                                          "default_vcpus = \"one\"\n"
                                                          "path = 12\n"
                                                          "flag = 1\n"
                                                          "ratio = true\n"
                                                          "  mods = [\"a\", 2]\n"
                                                          "sub = 1.5\n");
        const struct cc_toml_table *q = NULL;
        assert_int_equal(cc_toml_get_table(t, "hypervisor.qemu", &q, NULL), 0);
        _cleanup_error_ struct cc_error *err = NULL;
        int64_t i;
        assert_int_equal(cc_toml_get_int64(q, "default_vcpus", &i, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:2:1: key 'default_vcpus' must be an integer, got string");
        const char *s;
        assert_int_equal(cc_toml_get_string(t, "hypervisor.qemu.path", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:3:1: key 'hypervisor.qemu.path' must be a string, got integer");
        bool b;
        assert_int_equal(cc_toml_get_bool(q, "flag", &b, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:4:1: key 'flag' must be a boolean, got integer");
        double d;
        assert_int_equal(cc_toml_get_double(q, "ratio", &d, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:5:1: key 'ratio' must be a float, got boolean");
        char **v = NULL;
        assert_int_equal(cc_toml_get_strv(q, "mods", &v, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "t.toml:6:16: key 'mods' must be an array of "
                                                   "strings, element 1 is an integer");
        assert_null(v);
        const struct cc_toml_value *a;
        assert_int_equal(cc_toml_get_array(q, "sub", &a, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:7:1: key 'sub' must be an array, got float");
        const struct cc_toml_table *sub;
        assert_int_equal(cc_toml_get_table(q, "sub", &sub, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:7:1: key 'sub' must be a table, got float");
        /* A path through a non-table names the part that is not a table. */
        assert_int_equal(cc_toml_get_int64(q, "path.x", &i, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "t.toml:3:1: key 'path' must be a table, got integer");
        assert_int_equal(cc_toml_get_int64(t, "hypervisor.clh.x", &i, &err), -ENOENT);
        assert_int_equal(cc_toml_get_int64(q, "nope", &i, NULL), -ENOENT);
        assert_string_equal(cc_toml_type_name(CC_TOML_FLOAT), "float");
}

static void test_errors(void **state)
{
        /* Keys, '=' and line ends. */
        FAILS("a = 1\nb 2\n", "2:3: expected '=' after key");
        FAILS("a = 1\n= 2\n", "2:1: expected a key");
        FAILS("key\n", "1:4: expected '=' after key");
        FAILS("a = \n", "1:5: expected a value");
        FAILS("a = 1 b = 2\n", "1:7: expected newline after value");
        FAILS("a.  = 1\n", "1:5: expected a key");
        FAILS("\"\"\"k\"\"\" = 1\n", "1:1: a multi-line string cannot be a key");
        FAILS("a = 1\rb = 2\n", "1:6: carriage return must be followed by a newline");
        FAILS("a = hello\n", "1:5: invalid value 'hello' (strings must be quoted)");
        FAILS("a = 1 # bad \x01 comment\n", "1:13: control character U+0001 in comment");
        FAILS("a = \"caf\xc3\xa9\" \xff\n", "1:12: invalid UTF-8");
        FAILS("a = \"\xed\xa0\x80\"\n", "1:6: invalid UTF-8"); /* an encoded surrogate */
        FAILS("a = \"\xc0\xaf\"\n", "1:6: invalid UTF-8");     /* overlong */
        /* Strings. */
        FAILS("a = \"abc\n", "1:5: unterminated string");
        FAILS("a = 'abc\n", "1:5: unterminated string");
        FAILS("a = \"abc", "1:5: unterminated string");
        FAILS("x = 1\na = \"\"\"abc\n\n", "2:5: unterminated multi-line string");
        FAILS("a = '''abc''''''\n", "1:16: too many quotes after a multi-line string");
        FAILS("a = \"bad \\x41\"\n", "1:10: invalid escape sequence '\\x'");
        FAILS("a = \"bad \\\x01\"\n", "1:10: invalid escape sequence");
        FAILS("a = \"\\u12G4\"\n", "1:6: invalid escape: \\u needs 4 hex digits");
        FAILS("a = \"\\U0000123\"\n", "1:6: invalid escape: \\U needs 8 hex digits");
        FAILS("a = \"\\uD800\"\n", "1:6: escape \\uD800 is not a Unicode scalar value");
        FAILS("a = \"\\U00110000\"\n", "1:6: escape \\U00110000 is not a Unicode scalar value");
        FAILS("a = \"\\u0000\"\n", "1:6: NUL characters are not supported in strings");
        FAILS("a = \"x\x01\"\n", "1:7: control character U+0001 in string");
        FAILS("a = '\x7f'\n", "1:6: control character U+007F in string");
        FAILS("a = \"\"\"x\x1b\"\"\"\n", "1:9: control character U+001B in string");
        FAILS("a = '''x\ry'''\n", "1:9: carriage return must be followed by a newline");
        parse_fails("a = \"x\0\"\n", 9, "1:7: NUL characters are not supported in strings");
        /* Numbers. */
        FAILS("a = 9223372036854775808\n", "1:5: integer out of range");
        FAILS("a = -9223372036854775809\n", "1:5: integer out of range");
        FAILS("a = 0x8000000000000000\n", "1:5: integer out of range");
        FAILS("a = 0xFFFFFFFFFFFFFFFFFF\n", "1:5: integer out of range");
        FAILS("a = 012\n", "1:5: leading zeros are not allowed");
        FAILS("a = 00.5\n", "1:5: leading zeros are not allowed");
        FAILS("a = 1__0\n", "1:5: '_' must be between digits");
        FAILS("a = 10_\n", "1:5: '_' must be between digits");
        FAILS("a = 0x_1\n", "1:5: invalid number: expected a digit");
        FAILS("a = 0x\n", "1:5: invalid number: expected a digit");
        FAILS("a = 0b102\n", "1:5: invalid character '2' in integer");
        FAILS("a = -0x10\n", "1:5: hexadecimal, octal and binary integers take no sign");
        FAILS("a = 12a\n", "1:5: invalid character 'a' in integer");
        FAILS("a = 1.\n", "1:5: invalid float: expected digits after '.'");
        FAILS("a = 1._5\n", "1:5: invalid float: expected digits after '.'");
        FAILS("a = 1e\n", "1:5: invalid float: expected digits in the exponent");
        FAILS("a = 1.5.3\n", "1:5: invalid float");
        FAILS("a = .5\n", "1:5: invalid value '.5' (strings must be quoted)");
        FAILS("a = 1e400\n", "1:5: float out of range");
        FAILS("a = -1.8e308\n", "1:5: float out of range");
        FAILS("a = True\n", "1:5: invalid value 'True' (strings must be quoted)");
        /* Datetimes are not supported, in every form. */
        FAILS("a = 1979-05-27T07:32:00Z\n", "1:5: datetime values are not supported");
        FAILS("a = 1979-05-27 07:32:00\n", "1:5: datetime values are not supported");
        FAILS("a = 1979-05-27\n", "1:5: datetime values are not supported");
        FAILS("a = 07:32:00\n", "1:5: datetime values are not supported");
        FAILS("a = [1979-05-27]\n", "1:6: datetime values are not supported");
        /* Arrays and inline tables. */
        FAILS("a = [1 2]\n", "1:8: expected ',' or ']' after array element");
        FAILS("a = [1,,2]\n", "1:8: expected a value");
        FAILS("a = [,]\n", "1:6: expected a value");
        FAILS("a = [1,\n2\n", "1:5: unterminated array");
        FAILS("a = {x = 1\n", "1:11: an inline table must be on one line");
        FAILS("a = {\nx = 1}\n", "1:6: an inline table must be on one line");
        FAILS("a = {x = 1,}\n", "1:12: trailing comma in inline table");
        FAILS("a = {x = 1 y = 2}\n", "1:12: expected ',' or '}' in inline table");
        FAILS("a = {x = 1", "1:5: unterminated inline table");
        FAILS("a = {x = 1, x = 2}\n", "1:13: duplicate key 'x' (first defined at line 1)");
        /* Headers. */
        FAILS("[a\nb = 1\n", "1:3: expected ']' after table name");
        FAILS("[[a]\n", "1:4: expected ']]' after array-of-tables name");
        FAILS("[[a] ]\n", "1:4: expected ']]' after array-of-tables name");
        FAILS("[]\n", "1:2: expected a key");
        FAILS("[a] b = 1\n", "1:5: expected newline after table header");
        FAILS("[a]\n[b]\n[a]\n", "3:1: table 'a' is already defined at line 1");
        FAILS("[a.b]\n[a]\n[a]\n", "3:1: table 'a' is already defined at line 2");
        FAILS("[a]\nb = 1\n[a.b]\n", "3:1: table 'a.b' is already defined at line 2");
        FAILS("[a]\nb = 1\n[a.b.c]\n", "3:4: 'a.b' is an integer, not a table (defined at line 2)");
        FAILS("a = [1]\n[a.b]\n", "2:2: 'a' is an array, not a table (defined at line 1)");
        FAILS("a = {}\n[a.b]\n", "2:2: cannot extend inline table 'a' (defined at line 1)");
        FAILS("a = {}\n[a]\n", "2:1: table 'a' is already defined at line 1");
        FAILS("a = []\n[[a]]\n", "2:1: 'a' is already defined at line 1 as a static array");
        FAILS("[a]\n[[a]]\n", "2:1: 'a' is already defined at line 1 as a table");
        FAILS("[[a]]\n[a]\n", "2:1: table 'a' is already defined at line 1");
        FAILS("[fruit]\napple.color = 'red'\n[fruit.apple]\n",
              "3:1: table 'fruit.apple' is already defined at line 2");
        FAILS("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]\n",
              "3:1: table 'fruit.apple.taste' is already defined at line 2");
        /* Duplicate keys and dotted keys over other definitions. */
        FAILS("a = 1\na = 2\n", "2:1: duplicate key 'a' (first defined at line 1)");
        FAILS("a = 1\n\"a\" = 2\n", "2:1: duplicate key 'a' (first defined at line 1)");
        FAILS("a.b = 1\na.b = 2\n", "2:3: duplicate key 'a.b' (first defined at line 1)");
        FAILS("a = 1\na.b = 2\n",
              "2:1: cannot add keys to 'a' with a dotted key: defined at line 1");
        FAILS("[a.b]\n[a]\nb.c = 1\n",
              "3:1: cannot add keys to 'b' with a dotted key: defined at line 1");
        FAILS("a = {x = 1}\na.y = 2\n",
              "2:1: cannot add keys to 'a' with a dotted key: defined at line 1");
        FAILS("[a]\nb = {}\n[a]\n", "3:1: table 'a' is already defined at line 1");
        FAILS("[t]\nx = 1\n[u]\n[t]\n", "4:1: table 't' is already defined at line 1");
        FAILS("[a.b]\nc = 1\n[a]\nb = 2\n", "4:1: duplicate key 'b' (first defined at line 1)");
        /* The error names a file given by the caller. */
        _cleanup_error_ struct cc_error *err = NULL;
        struct cc_toml_table *t = NULL;
        assert_int_equal(cc_toml_parse_string("/etc/kata/configuration.toml", "x=", 2, &t, &err),
                         -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "/etc/kata/configuration.toml:1:3: expected a value");
}

static void test_columns_count_characters(void **state)
{
        /* Three two-byte characters and a tab before the error: column 9, not 12. */
        FAILS("\"\xc3\xa9\xc3\xa9\xc3\xa9\"\t= x\n",
              "1:9: invalid value 'x' (strings must be quoted)");
        /* A long line keeps exact columns. */
        char line[5000];
        memset(line, ' ', sizeof(line));
        memcpy(line, "a = [", 5);
        size_t n = 5;
        for (int i = 0; i < 800; i++, n += 5)
                memcpy(line + n, "1,  ", 5 - 1), line[n + 4] = ' ';
        memcpy(line + n, "?]\n", 4);
        char want[64];
        snprintf(want, sizeof(want), "1:%zu: expected a value", n + 1);
        parse_fails(line, n + 3, want);
}

static void test_limits(void **state)
{
        /* 64 levels of arrays are fine, 65 are not. */
        char buf[512];
        int n = snprintf(buf, sizeof(buf), "a = ");
        for (int i = 0; i < CC_TOML_MAX_DEPTH; i++)
                buf[n++] = '[';
        buf[n++] = '1';
        for (int i = 0; i < CC_TOML_MAX_DEPTH; i++)
                buf[n++] = ']';
        buf[n] = 0;
        cc_toml_free(parse_ok(buf));
        n = snprintf(buf, sizeof(buf), "a = ");
        for (int i = 0; i <= CC_TOML_MAX_DEPTH; i++)
                buf[n++] = '[';
        buf[n] = 0;
        FAILS(buf, "1:69: nesting deeper than 64 levels");
        /* Inline tables nest too. */
        n = snprintf(buf, sizeof(buf), "a = ");
        for (int i = 0; i <= CC_TOML_MAX_DEPTH; i++)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "{b=");
        FAILS(buf, "1:197: nesting deeper than 64 levels");
        /* So do dotted keys and headers. */
        n = 0;
        buf[n++] = '[';
        for (int i = 0; i < CC_TOML_MAX_DEPTH; i++)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k.");
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k]\n");
        FAILS(buf, "1:130: nesting deeper than 64 levels");
        n = 0;
        for (int i = 0; i < CC_TOML_MAX_DEPTH - 1; i++)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k.");
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k = [1]\n");
        cc_toml_free(parse_ok(buf)); /* 63 dotted tables and an array: 64 levels */
        n = 0;
        for (int i = 0; i < CC_TOML_MAX_DEPTH - 1; i++)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k.");
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "k = [[1]]\n");
        FAILS(buf, "1:132: nesting deeper than 64 levels");
        /* A deep header plus a deep value adds up. */
        FAILS("[a.b]\nc = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]",
              "2:67: nesting deeper than 64 levels");

        /* Size. */
        size_t big = CC_TOML_MAX_SIZE + 1;
        _cleanup_free_ char *text = malloc(big);
        assert_non_null(text);
        memset(text, '\n', big);
        _cleanup_error_ struct cc_error *err = NULL;
        struct cc_toml_table *t = NULL;
        assert_int_equal(cc_toml_parse_string("big.toml", text, big, &t, &err), -EFBIG);
        assert_string_equal(cc_error_message(err), "big.toml: larger than 4194304 bytes");
        /* Exactly the limit is fine. */
        t = parse_ok("");
        cc_toml_free(t);
        assert_int_equal(cc_toml_parse_string("max.toml", text, big - 1, &t, NULL), 0);
        cc_toml_free(t);
}

static void test_many_keys(void **state)
{
        /* 100000 keys in one table (and a duplicate at the end) parse in linear time. */
        size_t cap = 100000 * 16;
        _cleanup_free_ char *text = malloc(cap);
        assert_non_null(text);
        size_t n = 0;
        for (int i = 0; i < 100000; i++)
                n += (size_t)snprintf(text + n, cap - n, "k%d = %d\n", i, i);
        _cleanup_toml_ struct cc_toml_table *t = NULL;
        assert_int_equal(cc_toml_parse_string("many.toml", text, n, &t, NULL), 0);
        assert_int_equal(cc_toml_table_size(t), 100000);
        assert_int_equal(num(t, "k99999"), 99999);
        assert_int_equal(num(t, "k4242"), 4242);
        assert_string_equal(cc_toml_table_entry(t, 777)->key, "k777");
        n += (size_t)snprintf(text + n, cap - n, "k5 = 1\n");
        _cleanup_error_ struct cc_error *err = NULL;
        struct cc_toml_table *t2 = NULL;
        assert_int_equal(cc_toml_parse_string("many.toml", text, n, &t2, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "many.toml:100001:1: duplicate key 'k5' (first defined at line 6)");
}

static void test_parse_file(void **state)
{
        char path[] = "/tmp/test-toml-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, kata_config, sizeof(kata_config) - 1),
                         (ssize_t)sizeof(kata_config) - 1);
        close(fd);
        _cleanup_toml_ struct cc_toml_table *t = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_toml_parse_file(path, &t, &err), 0);
        assert_int_equal(num(t, "hypervisor.qemu.default_memory"), 2048);
        assert_string_equal(cc_toml_table_file(t), path);
        /* Wrong types name the file. */
        int64_t i;
        assert_int_equal(cc_toml_get_int64(t, "hypervisor.qemu.path", &i, &err), -EINVAL);
        char want[256];
        snprintf(want, sizeof(want),
                 "%s:6:1: key 'hypervisor.qemu.path' must be an integer, got string", path);
        assert_string_equal(cc_error_message(err), want);
        /* Parse errors too. */
        fd = open(path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "[runtime]\n", 10), 10);
        close(fd);
        struct cc_toml_table *t2 = NULL;
        assert_int_equal(cc_toml_parse_file(path, &t2, &err), -EINVAL);
        snprintf(want, sizeof(want), "%s:61:1: table 'runtime' is already defined at line 41",
                 path);
        assert_string_equal(cc_error_message(err), want);
        unlink(path);
        assert_int_equal(cc_toml_parse_file(path, &t2, &err), -ENOENT);
        snprintf(want, sizeof(want), "open %s: No such file or directory", path);
        assert_string_equal(cc_error_message(err), want);
        assert_int_equal(cc_toml_parse_file("/tmp", &t2, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "/tmp: not a regular file");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_basic_strings),
                cmocka_unit_test(test_literal_strings),
                cmocka_unit_test(test_multiline_strings),
                cmocka_unit_test(test_integers),
                cmocka_unit_test(test_floats),
                cmocka_unit_test(test_booleans_and_comments),
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_arrays),
                cmocka_unit_test(test_inline_tables),
                cmocka_unit_test(test_tables),
                cmocka_unit_test(test_array_of_tables),
                cmocka_unit_test(test_kata_config),
                cmocka_unit_test(test_getter_errors),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_columns_count_characters),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_many_keys),
                cmocka_unit_test(test_parse_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
