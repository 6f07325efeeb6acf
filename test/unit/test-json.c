/* Unit tests: JSON helpers (bounded parsing, typed getters, JSON Pointer paths, strv). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/json.h"

static const char spec[] = "{\n"
                           "  \"ociVersion\": \"1.0.2\",\n"
                           "  \"process\": {\n"
                           "    \"terminal\": false,\n"
                           "    \"user\": { \"uid\": 0, \"gid\": 0 },\n"
                           "    \"args\": [ \"sh\", \"-c\", \"echo hi\" ],\n"
                           "    \"env\": [ \"PATH=/usr/bin\", 7 ],\n"
                           "    \"cwd\": \"/\"\n"
                           "  },\n"
                           "  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
                           "  \"annotations\": {\n"
                           "    \"io.kubernetes.cri.sandbox-id\": \"abc\",\n"
                           "    \"a/b~c\": \"escaped\"\n"
                           "  },\n"
                           "  \"mounts\": [ { \"destination\": \"/proc\", \"type\": \"proc\" } ],\n"
                           "  \"size\": 9223372036854775807,\n"
                           "  \"huge\": 9223372036854775808,\n"
                           "  \"neg\": -42,\n"
                           "  \"ratio\": 1.5,\n"
                           "  \"nul\": \"a\\u0000b\",\n"
                           "  \"nothing\": null\n"
                           "}\n";

static struct json_object *parse_spec(void)
{
        struct json_object *o = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_json_parse("config.json", spec, strlen(spec), 0, &o, &err), 0);
        assert_null(err);
        return o;
}

static void test_getters(void **state)
{
        _cleanup_json_ struct json_object *o = parse_spec();
        _cleanup_error_ struct cc_error *err = NULL;
        const char *s = NULL;
        assert_int_equal(cc_json_get_string(o, "ociVersion", &s, &err), 0);
        assert_string_equal(s, "1.0.2");
        assert_int_equal(cc_json_get_string(o, "/process/cwd", &s, &err), 0);
        assert_string_equal(s, "/");
        assert_int_equal(cc_json_get_string(o, "/mounts/0/type", &s, &err), 0);
        assert_string_equal(s, "proc");
        /* A plain key with dots is one member name. */
        struct json_object *ann = NULL;
        assert_int_equal(cc_json_get_object(o, "annotations", &ann, &err), 0);
        assert_int_equal(cc_json_get_string(ann, "io.kubernetes.cri.sandbox-id", &s, &err), 0);
        assert_string_equal(s, "abc");
        assert_int_equal(cc_json_get_string(o, "/annotations/a~1b~0c", &s, &err), 0);
        assert_string_equal(s, "escaped");

        bool b = true;
        assert_int_equal(cc_json_get_bool(o, "/process/terminal", &b, &err), 0);
        assert_false(b);
        assert_int_equal(cc_json_get_bool(o, "/root/readonly", &b, &err), 0);
        assert_true(b);
        int64_t i = 1;
        assert_int_equal(cc_json_get_int64(o, "/process/user/uid", &i, &err), 0);
        assert_int_equal(i, 0);
        assert_int_equal(cc_json_get_int64(o, "neg", &i, &err), 0);
        assert_int_equal(i, -42);
        assert_int_equal(cc_json_get_int64(o, "size", &i, &err), 0);
        assert_true(i == INT64_MAX);
        struct json_object *a = NULL;
        assert_int_equal(cc_json_get_array(o, "mounts", &a, &err), 0);
        assert_int_equal(json_object_array_length(a), 1);
        struct json_object *any = (struct json_object *)1;
        assert_int_equal(cc_json_get(o, "nothing", &any, &err), 0);
        assert_null(any); /* JSON null */
        assert_null(err);
}

static void test_absent(void **state)
{
        _cleanup_json_ struct json_object *o = parse_spec();
        _cleanup_error_ struct cc_error *err = NULL;
        const char *s = "untouched";
        assert_int_equal(cc_json_get_string(o, "hostname", &s, &err), -ENOENT);
        assert_int_equal(cc_json_get_string(o, "/process/nope", &s, &err), -ENOENT);
        assert_int_equal(cc_json_get_string(o, "/nope/deeper", &s, &err), -ENOENT);
        assert_int_equal(cc_json_get_string(o, "/mounts/1/type", &s, &err), -ENOENT);
        assert_string_equal(s, "untouched");
        assert_null(err);
}

static void test_type_errors(void **state)
{
        _cleanup_json_ struct json_object *o = parse_spec();
        _cleanup_error_ struct cc_error *err = NULL;
        const char *s;
        int64_t i;
        bool b;
        struct json_object *x;
        assert_int_equal(cc_json_get_string(o, "/process/terminal", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "key '/process/terminal' must be a string, got boolean");
        assert_int_equal(cc_json_get_int64(o, "ratio", &i, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "key 'ratio' must be an integer, got double");
        assert_int_equal(cc_json_get_int64(o, "ociVersion", &i, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "key 'ociVersion' must be an integer, got string");
        assert_int_equal(cc_json_get_int64(o, "huge", &i, &err), -ERANGE);
        assert_string_equal(cc_error_message(err),
                            "key 'huge' is out of range: 9223372036854775808");
        assert_int_equal(cc_json_get_bool(o, "nothing", &b, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "key 'nothing' must be a boolean, got null");
        assert_int_equal(cc_json_get_object(o, "mounts", &x, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "key 'mounts' must be an object, got array");
        assert_int_equal(cc_json_get_array(o, "root", &x, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "key 'root' must be an array, got object");
        assert_int_equal(cc_json_get_string(o, "/ociVersion/x", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "key '/ociVersion' must be an object, got string");
        assert_int_equal(cc_json_get_string(o, "/mounts/first", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "key '/mounts' is an array: 'first' is not an index");
        assert_int_equal(cc_json_get_string(o, "/mounts/01", &s, &err), -EINVAL);
        assert_int_equal(cc_json_get_string(o, "/annotations/bad~2", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "invalid JSON pointer '/annotations/bad~2'");
        assert_int_equal(cc_json_get_string(o, "nul", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "key 'nul' contains a NUL character");
        struct json_object *arr = NULL;
        assert_int_equal(cc_json_get_array(o, "mounts", &arr, &err), 0);
        assert_int_equal(cc_json_get_string(arr, "x", &s, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "cannot look up key 'x' in array");
}

static void test_strv(void **state)
{
        _cleanup_json_ struct json_object *o = parse_spec();
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_strv_ char **args = NULL;
        assert_int_equal(cc_json_get_strv(o, "/process/args", &args, &err), 0);
        assert_string_equal(args[0], "sh");
        assert_string_equal(args[1], "-c");
        assert_string_equal(args[2], "echo hi");
        assert_null(args[3]);
        char **env = NULL;
        assert_int_equal(cc_json_get_strv(o, "/process/env", &env, &err), -EINVAL);
        assert_null(env);
        assert_string_equal(cc_error_message(err),
                            "key '/process/env' must be an array of strings, element 1 is int");
        assert_int_equal(cc_json_get_strv(o, "ociVersion", &env, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "key 'ociVersion' must be an array of strings, got string");
        assert_int_equal(cc_json_get_strv(o, "absent", &env, &err), -ENOENT);
        _cleanup_json_ struct json_object *empty = json_object_new_array();
        _cleanup_strv_ char **none = NULL;
        assert_int_equal(cc_json_array_to_strv(empty, "x", &none, &err), 0);
        assert_null(none[0]);
}

static void parse_fails(const char *text, size_t len, int depth, const char *msg)
{
        struct json_object *o = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_json_parse("in.json", text, len, depth, &o, &err), -EINVAL);
        assert_null(o);
        assert_string_equal(cc_error_message(err), msg);
}

static void test_parse_errors(void **state)
{
        parse_fails("{\"a\": 1,}", 9, 0, "in.json: offset 8: unexpected character");
        parse_fails("{\"a\": 1} x", 10, 0, "in.json: offset 9: unexpected character");
        parse_fails("{\"a\": ", 6, 0, "in.json: offset 6: unexpected end of data");
        parse_fails("", 0, 0, "in.json: empty input");
        parse_fails("tru", 3, 0, "in.json: offset 3: unexpected end of data");
        parse_fails("[1]\0[2]", 7, 0, "in.json: offset 3: data after the JSON value");
        parse_fails("\"\xff\"", 3, 0, "in.json: offset 1: invalid utf-8 string");
        /* json-c counts levels of values: [[1]] is 3 deep, [[[]]] too. */
        parse_fails("[[[1]]]", 7, 3, "in.json: offset 3: nesting too deep");
        parse_fails("[[[[]]]]", 8, 3, "in.json: offset 3: nesting too deep");
        /* Within the depth limit, and a bare number ending the input. */
        struct json_object *o = NULL;
        assert_int_equal(cc_json_parse("in.json", "[[1]]", 5, 3, &o, NULL), 0);
        json_object_put(o);
        assert_int_equal(cc_json_parse("in.json", "[[[]]]", 6, 3, &o, NULL), 0);
        json_object_put(o);
        assert_int_equal(cc_json_parse("in.json", "12", 2, 0, &o, NULL), 0);
        assert_int_equal(json_object_get_int(o), 12);
        json_object_put(o);
        /* Not NUL-terminated input is read only up to len. */
        assert_int_equal(cc_json_parse("in.json", "{} garbage", 3, 0, &o, NULL), 0);
        json_object_put(o);
        /* The default depth limit is CC_JSON_MAX_DEPTH. */
        char deep[2 * CC_JSON_MAX_DEPTH + 4];
        size_t n = 0;
        for (int i = 0; i <= CC_JSON_MAX_DEPTH; i++)
                deep[n++] = '[';
        for (int i = 0; i <= CC_JSON_MAX_DEPTH; i++)
                deep[n++] = ']';
        parse_fails(deep, n, 0, "in.json: offset 64: nesting too deep");
        assert_int_equal(cc_json_parse("in.json", deep + 1, n - 2, 0, &o, NULL), 0);
        json_object_put(o);
}

static void test_parse_file(void **state)
{
        char path[] = "/tmp/test-json-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, spec, strlen(spec)), (ssize_t)strlen(spec));
        close(fd);
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_json_ struct json_object *o = NULL;
        assert_int_equal(cc_json_parse_file(path, 0, 0, &o, &err), 0);
        const char *s;
        assert_int_equal(cc_json_get_string(o, "/root/path", &s, &err), 0);
        assert_string_equal(s, "rootfs");
        struct json_object *o2 = NULL;
        char want[256];
        assert_int_equal(cc_json_parse_file(path, 100, 0, &o2, &err), -EFBIG);
        snprintf(want, sizeof(want), "%s: larger than 100 bytes", path);
        assert_string_equal(cc_error_message(err), want);
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "{\n  \"a\": tru\n}", 14), 14);
        close(fd);
        assert_int_equal(cc_json_parse_file(path, 0, 0, &o2, &err), -EINVAL);
        snprintf(want, sizeof(want), "%s: offset 12: boolean expected", path);
        assert_string_equal(cc_error_message(err), want);
        unlink(path);
        assert_int_equal(cc_json_parse_file(path, 0, 0, &o2, &err), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_getters),      cmocka_unit_test(test_absent),
                cmocka_unit_test(test_type_errors),  cmocka_unit_test(test_strv),
                cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
