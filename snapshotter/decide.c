/*
 * What Prepare does, decided from facts alone (no I/O, no state): whether a layer unpack is
 * recorded as a guest placeholder, refused, or becomes an ordinary snapshot, and of which
 * flavor. snap_prepare (snapshotter.c) gathers the facts inside its transaction and carries
 * the decision out. Unit-tested (test-snap-decide.c) and fuzzed (fuzz-snap-decide.c).
 */
#include <string.h>

#include "snapshotter/snap.h"

/*
 * True for the key of a layer unpack: containerd names them "extract-<unique> <chainID>"
 * (snapshots.UnpackKeyFormat), which the metadata layer prefixes with "<namespace>/<seq>/".
 * image.Unpack (ctr pull, CRI's fallback) prepares them without the snapshot.ref label, so
 * the key is how we know a layer is about to be written into the mount we return.
 */
bool snap_is_unpack_key(const char *key)
{
        const char *p = key ? strstr(key, "extract-") : NULL;
        if (!p || (p != key && p[-1] != '/'))
                return false;
        const char *sp = strchr(p, ' ');
        return sp && strncmp(sp + 1, "sha256:", 7) == 0;
}

static struct snap_prepare_decision decided(enum snap_prepare_action action,
                                            enum snap_flavor flavor)
{
        return (struct snap_prepare_decision){.action = action, .flavor = flavor};
}

struct snap_prepare_decision snap_prepare_decide(const struct snap_prepare_facts *f)
{
        if (f->target && !f->view) {
                /* A layer unpack (remote-snapshot protocol). Guest-pull it? */
                bool guest = false;
                if (f->mode == SNAP_MODE_GUEST) {
                        if (!f->cri)
                                return decided(SNAP_PREPARE_NEED_CRI, SNAP_LOCAL);
                        guest = true;
                } else if (f->mode == SNAP_MODE_POLICY && f->cri) {
                        guest = f->guest_image;
                }
                if (guest)
                        return decided(SNAP_PREPARE_GUEST_LAYER, SNAP_GUEST_LAYER);
                if (f->guest_chain)
                        return decided(SNAP_PREPARE_HAZARD, SNAP_LOCAL);
        }
        /* A layer unpack without the remote-snapshot label (image.Unpack) writes real data
         * on top of the chain: on guest placeholders that is the hazard again. */
        if (!f->target && !f->view && f->guest_chain && snap_is_unpack_key(f->key))
                return decided(SNAP_PREPARE_HAZARD, SNAP_LOCAL);
        enum snap_flavor flavor = SNAP_LOCAL;
        if (f->mode != SNAP_MODE_LOCAL && !f->target) {
                bool pod_local = f->pod_mode && strcmp(f->pod_mode, "local") == 0;
                bool pod_guest = f->pod_mode && strcmp(f->pod_mode, "guest") == 0;
                if (pod_local && f->guest_chain)
                        return decided(SNAP_PREPARE_HAZARD, SNAP_LOCAL);
                if (f->guest_chain || pod_guest || (f->mode == SNAP_MODE_GUEST && f->chain_len > 0))
                        flavor = SNAP_GUEST_ROOTFS;
        }
        return decided(SNAP_PREPARE_CREATE, flavor);
}
