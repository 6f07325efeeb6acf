/*
 * Table-driven tests of Prepare's decision (snapshotter/decide.c): every mode against layer
 * unpacks with and without the CRI labels, views, guest chains, unpack keys and the pod's
 * cc.mode label. The rows say what containerd sees: a guest placeholder (AlreadyExists), a
 * refusal (FailedPrecondition), or a snapshot of a flavor.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdio.h>

#include "cc/macro.h"

#include "snapshotter/snap.h"

#define POLICY SNAP_MODE_POLICY
#define GUEST  SNAP_MODE_GUEST
#define LOCAL  SNAP_MODE_LOCAL

#define UNPACK "k8s.io/42/extract-123456789-abcd sha256:0123"
#define CTR    "k8s.io/43/7c1f6c8f2d"

struct row {
        const char *what;
        struct snap_prepare_facts f;
        enum snap_prepare_action action;
        enum snap_flavor flavor;
};

static const struct row rows[] = {
        /* Layer unpacks with the remote-snapshot target label. */
        {"guest mode, CRI labels: placeholder",
         {.mode = GUEST, .key = UNPACK, .target = true, .cri = true},
         SNAP_PREPARE_GUEST_LAYER,
         SNAP_GUEST_LAYER},
        {"guest mode, no CRI labels: refused",
         {.mode = GUEST, .key = UNPACK, .target = true},
         SNAP_PREPARE_NEED_CRI,
         SNAP_LOCAL},
        {"policy mode, guest image: placeholder",
         {.mode = POLICY, .key = UNPACK, .target = true, .cri = true, .guest_image = true},
         SNAP_PREPARE_GUEST_LAYER,
         SNAP_GUEST_LAYER},
        {"policy mode, local image: local layer",
         {.mode = POLICY, .key = UNPACK, .target = true, .cri = true, .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"policy mode, local image on guest layers: hazard",
         {.mode = POLICY,
          .key = UNPACK,
          .target = true,
          .cri = true,
          .guest_chain = true,
          .chain_len = 2},
         SNAP_PREPARE_HAZARD,
         SNAP_LOCAL},
        {"policy mode, no CRI labels (ctr): local",
         {.mode = POLICY, .key = UNPACK, .target = true, .guest_image = true},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"local mode, CRI labels: local",
         {.mode = LOCAL, .key = UNPACK, .target = true, .cri = true, .guest_image = true},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"local mode on guest layers: hazard",
         {.mode = LOCAL, .key = UNPACK, .target = true, .cri = true, .guest_chain = true},
         SNAP_PREPARE_HAZARD,
         SNAP_LOCAL},
        {"a view with a target label is never a placeholder",
         {.mode = GUEST, .key = "v", .view = true, .target = true, .cri = true},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        /* Unpacks without the label (image.Unpack): the key says it. */
        {"image.Unpack on guest layers: hazard",
         {.mode = POLICY, .key = UNPACK, .guest_chain = true, .chain_len = 1},
         SNAP_PREPARE_HAZARD,
         SNAP_LOCAL},
        {"image.Unpack key without a namespace prefix",
         {.mode = LOCAL, .key = "extract-1 sha256:ab", .guest_chain = true},
         SNAP_PREPARE_HAZARD,
         SNAP_LOCAL},
        {"not an unpack key (no sha256 after the space): guest rootfs",
         {.mode = POLICY, .key = "x/extract-1 md5:ab", .guest_chain = true, .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        {"not an unpack key (extract- inside a name): guest rootfs",
         {.mode = POLICY, .key = "myextract-1 sha256:ab", .guest_chain = true},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        /* Containers' rootfs snapshots. */
        {"container on a guest chain: guest rootfs",
         {.mode = POLICY, .key = CTR, .guest_chain = true, .chain_len = 3},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        {"container on a local chain: local",
         {.mode = POLICY, .key = CTR, .chain_len = 3},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"view on a guest chain: guest rootfs",
         {.mode = POLICY, .key = CTR, .view = true, .guest_chain = true, .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        {"guest mode, container on any chain: guest rootfs",
         {.mode = GUEST, .key = CTR, .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        {"guest mode, no parent: local",
         {.mode = GUEST, .key = CTR},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"pod annotated guest (containerd 1.6 sandbox): guest rootfs",
         {.mode = POLICY, .key = CTR, .pod_mode = "guest", .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_GUEST_ROOTFS},
        {"pod annotated local on a guest chain: hazard",
         {.mode = POLICY, .key = CTR, .pod_mode = "local", .guest_chain = true, .chain_len = 1},
         SNAP_PREPARE_HAZARD,
         SNAP_LOCAL},
        {"pod annotated local on a local chain: local",
         {.mode = POLICY, .key = CTR, .pod_mode = "local", .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"pod mode other than guest/local: ignored",
         {.mode = POLICY, .key = CTR, .pod_mode = "GUEST", .chain_len = 1},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
        {"local mode ignores the pod's mode and guest chains",
         {.mode = LOCAL, .key = CTR, .pod_mode = "guest", .guest_chain = true},
         SNAP_PREPARE_CREATE,
         SNAP_LOCAL},
};

static void test_rows(void **state)
{
        for (size_t i = 0; i < CC_ARRAY_SIZE(rows); i++) {
                struct snap_prepare_decision d = snap_prepare_decide(&rows[i].f);
                if (d.action != rows[i].action || d.flavor != rows[i].flavor)
                        fail_msg("%s: got action %d flavor %d, want %d %d", rows[i].what,
                                 (int)d.action, (int)d.flavor, (int)rows[i].action,
                                 (int)rows[i].flavor);
        }
}

static void test_unpack_key(void **state)
{
        assert_true(snap_is_unpack_key("extract-1 sha256:x"));
        assert_true(snap_is_unpack_key("default/12/extract-99-abc sha256:0123"));
        assert_false(snap_is_unpack_key("default/12/extract-99-abc"));
        assert_false(snap_is_unpack_key("default/12/xextract-99 sha256:0"));
        assert_false(snap_is_unpack_key(""));
        assert_false(snap_is_unpack_key(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows),
                cmocka_unit_test(test_unpack_key),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
