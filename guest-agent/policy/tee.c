/*
 * Is this guest a TEE guest? The answer decides the agent's defaults when the image carries no
 * policy (README "Policy"): a TEE guest refuses what would let the host (outside the trust
 * boundary) reach a container's data; other guests keep the permissive default of a plain VM.
 *
 * The answer must come from the guest, never from the host alone: a host that could say "no
 * TEE here" would turn the protections off. So every source below can only say yes:
 *  - the guest devices of the TEE drivers, /dev/sev-guest (SEV-SNP) and /dev/tdx_guest (TDX):
 *    they exist only inside a confidential VM;
 *  - CPUID leaf 0x21 reading "IntelTDX    " (answered by the TDX module, not the VMM);
 *  - the guest image's marker file /etc/cc-agent/tee-defaults (`make guest-image
 *    GUEST_TEE_DEFAULTS=1`): part of the measured initrd, so a verifier sees it; this is also
 *    how tests get the TEE defaults without hardware;
 *  - agent.tee_defaults=1 on the kernel command line, --tee-defaults: can add them, never
 *    remove them.
 * A plain SEV (not SNP) guest has no guest device and its CPUID is the host's to forge, so it
 * counts as a TEE only through the image marker.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guest-agent/agent.h"

#define TEE_MARKER "/etc/cc-agent/tee-defaults"

static bool cpuid_tdx(void)
{
#if defined(__x86_64__) || defined(__i386__)
        unsigned a, b, c, d;
        if (__get_cpuid_max(0, NULL) < 0x21)
                return false;
        __cpuid_count(0x21, 0, a, b, c, d);
        char sig[13];
        memcpy(sig, &b, 4);
        memcpy(sig + 4, &d, 4);
        memcpy(sig + 8, &c, 4);
        sig[12] = '\0';
        (void)a;
        return strcmp(sig, "IntelTDX    ") == 0;
#else
        return false;
#endif
}

bool agent_tee_detect(const struct agent_config *cfg, char *why, size_t n)
{
        static const char *const devs[] = {"/dev/sev-guest", "/dev/tdx_guest", "/dev/tdx-guest"};
        for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
                if (access(devs[i], F_OK) == 0) {
                        snprintf(why, n, "%s exists", devs[i]);
                        return true;
                }
        if (cpuid_tdx()) {
                snprintf(why, n, "CPUID leaf 0x21 says IntelTDX");
                return true;
        }
        if (cfg->is_init && access(TEE_MARKER, F_OK) == 0) {
                snprintf(why, n, "the guest image has %s", TEE_MARKER);
                return true;
        }
        if (cfg->tee_defaults) {
                snprintf(why, n, "asked for (agent.tee_defaults=1 / --tee-defaults)");
                return true;
        }
        snprintf(why, n, "no TEE guest device, no TDX CPUID leaf, no %s", TEE_MARKER);
        return false;
}
