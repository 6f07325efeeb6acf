/*
 * Fuzz target for Prepare's decision (snapshotter/decide.c): the key and the pod's cc.mode
 * label come from containerd's requests (the key from image names and CRI, the label from pod
 * annotations); the other facts from the first byte. Checks the rules the decision must keep
 * whatever the input: no guest placeholder for a view, without a target or in local mode; no
 * guest rootfs in local mode or for a layer unpack; a hazard only on a guest chain; a
 * placeholder has the guest-layer flavor; and the answer does not change when asked again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshotter/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1 || size > 4096)
                return 0;
        uint8_t b = data[0];
        /* The rest: key, then after the first NUL the pod's mode (absent without a NUL). */
        char *rest = malloc(size);
        if (!rest)
                return 0;
        memcpy(rest, data + 1, size - 1);
        rest[size - 1] = '\0';
        size_t klen = strlen(rest);
        struct snap_prepare_facts f = {
                .mode = (enum snap_mode)(b % 3),
                .key = rest,
                .view = b & 0x04,
                .target = b & 0x08,
                .cri = b & 0x10,
                .guest_image = b & 0x20,
                .guest_chain = b & 0x40,
                .chain_len = (b & 0x80) ? 1 + (b & 0x03) : 0,
                .pod_mode = klen + 1 < size - 1 ? rest + klen + 1 : NULL,
        };
        struct snap_prepare_decision d = snap_prepare_decide(&f);
        struct snap_prepare_decision again = snap_prepare_decide(&f);
        if (d.action != again.action || d.flavor != again.flavor)
                abort();
        switch (d.action) {
        case SNAP_PREPARE_GUEST_LAYER:
                if (f.view || !f.target || f.mode == SNAP_MODE_LOCAL || !f.cri ||
                    d.flavor != SNAP_GUEST_LAYER)
                        abort();
                break;
        case SNAP_PREPARE_NEED_CRI:
                if (f.mode != SNAP_MODE_GUEST || f.cri || !f.target || f.view)
                        abort();
                break;
        case SNAP_PREPARE_HAZARD:
                if (!f.guest_chain)
                        abort();
                break;
        case SNAP_PREPARE_CREATE:
                if (d.flavor == SNAP_GUEST_LAYER)
                        abort();
                if (d.flavor == SNAP_GUEST_ROOTFS &&
                    (f.mode == SNAP_MODE_LOCAL || f.target ||
                     (!f.view && f.guest_chain && snap_is_unpack_key(f.key))))
                        abort();
                break;
        default:
                abort();
        }
        free(rest);
        return 0;
}
