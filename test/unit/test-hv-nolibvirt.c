/*
 * The static shim's libhv (libhv-nolibvirt.a, hypervisor/module.mk links this test with it
 * instead of libhv.a): backend "libvirt" is refused by name with the way out, the other
 * backends are there, and no libvirt symbol is linked in.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv.h"

static struct hv_config config(const char *backend)
{
        return (struct hv_config){
                .backend = backend,
                .name = "pod-1",
                .run_dir = "/run/test/pod-1",
                .kernel = "/vmlinuz",
        };
}

static void test_libvirt_refused(void **state)
{
        struct hv_config c = config("libvirt");
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EOPNOTSUPP);
        assert_null(vm);
        assert_string_equal(cc_error_message(err),
                            "the libvirt backend is not built into this (static) shim; rebuild "
                            "with `make SHIM_LINK=dynamic` or use backend \"qemu\"");
}

static void test_others_present(void **state)
{
        const char *names[] = {"mock", "qemu", "clh"};
        for (size_t i = 0; i < 3; i++) {
                struct hv_config c = config(names[i]);
                _cleanup_error_ struct cc_error *err = NULL;
                struct hv_vm *vm = NULL;
                if (hv_vm_new(&c, &vm, &err) < 0)
                        fail_msg("%s: %s", names[i], cc_error_message(err));
                assert_string_equal(hv_vm_backend(vm), names[i]);
                hv_vm_free(vm);
        }
}

static void test_no_libvirt_linked(void **state)
{
        assert_null(dlsym(RTLD_DEFAULT, "virConnectOpen"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_libvirt_refused),
                cmocka_unit_test(test_others_present),
                cmocka_unit_test(test_no_libvirt_linked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
