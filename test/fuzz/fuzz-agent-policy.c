/*
 * Fuzz target: the agent policy parser (a JSON file from the image, or SetPolicy's text) and the
 * request-vs-policy matcher. The input is the policy text, then (after a NUL byte) bytes that
 * shape a CreateContainer and ExecProcess: namespaces, capabilities, masked/read-only paths,
 * sysfs, container name, argv, env, sysctls, devices, CopyFile path. The same request is also
 * put to the built-in TEE default.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "cc/cleanup.h"

#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t take(const uint8_t **p, const uint8_t *end)
{
        return *p < end ? *(*p)++ : 0;
}

static void match_all(const struct agent_policy *p, const uint8_t *q, const uint8_t *end)
{
        static char *names[] = {"app", "sidecar", "", "debug-1", "x*y"};
        static char *argvs[][4] = {{"/bin/sh", "-c", "echo app-ok $MODE", NULL},
                                   {"/bin/sleep", "30", NULL},
                                   {"/bin/cat", "/etc/passwd", NULL},
                                   {"[", "*", "?", NULL}};
        static char *envs[][3] = {{"PATH=/bin", "MODE=prod", NULL},
                                  {"PATH=/bin", "LD_PRELOAD=/x", NULL},
                                  {"=", "*=?", NULL}};
        static char *masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware",
                                 NULL};
        static char *readonly[] = {"/proc/bus",           "/proc/fs", "/proc/irq", "/proc/sys",
                                   "/proc/sysrq-trigger", NULL};
        static const char *sysctls[] = {"kernel.core_pattern", "net.ipv4.ping_group_range"};
        static const char *images[] = {"registry.example/app@sha256:11", "busybox:1.36", NULL};
        static const char *copies[] = {"c1-files/0", "c1/rootfs/bin/sh", "", "a-files/../x"};

        struct agent_mount mounts[2] = {
                {.destination = "/proc", .source = "proc", .type = "proc"},
                {.destination = "/sys", .source = "sysfs", .type = "sysfs"},
        };
        struct agent_spec s = {.mounts = mounts, .n_mounts = 2};
        uint8_t f = take(&q, end);
        uint8_t ns = take(&q, end);
        s.namespaces = ns & 0x3f;
        /* The pod's share of them (the top bits, so that older corpus files keep their bytes). */
        s.sandbox_namespaces = s.namespaces & ((ns & 0x40 ? AGENT_NS_IPC | AGENT_NS_UTS : 0) |
                                               (ns & 0x80 ? AGENT_NS_PID : 0));
        s.masked_paths = f & 1 ? masked : NULL;
        s.readonly_paths = f & 2 ? readonly : NULL;
        mounts[1].flags = f & 4 ? MS_RDONLY : 0;
        s.sandbox = (f & 0x80) != 0;
        s.root_readonly = (f & 0x40) != 0;
        s.process.has_caps = (f & 8) != 0;
        for (int i = 0; i < _AGENT_CAP_SET_MAX; i++)
                for (int k = 0; k < 8; k++)
                        s.process.caps[i] |= (uint64_t)take(&q, end) << (8 * k);
        uint8_t sel = take(&q, end);
        s.process.args = argvs[sel % 4];
        s.process.env = envs[(sel >> 2) % 3];
        s.process.uid = take(&q, end);
        static const char *const devices[] = {"/dev/trusted_store"};
        struct agent_policy_create c = {
                .container_id = "c1",
                .name = names[(sel >> 4) % 5],
                .image = images[take(&q, end) % 3],
                .pulled_image = images[take(&q, end) % 3],
                .spec = &s,
                .sysctls = sysctls,
                .n_sysctls = take(&q, end) % 3,
                .devices = devices,
                .n_devices = f & 16 ? 1 : 0,
        };
        struct cc_error *err = NULL;
        (void)agent_policy_check_create(p, &c, &err);
        cc_error_free(TAKE_PTR(err));
        (void)agent_policy_check_exec(p, "c1", c.name, &s.process, &err);
        cc_error_free(TAKE_PTR(err));
        (void)agent_policy_check_copy(p, copies[take(&q, end) % 4], &err);
        cc_error_free(TAKE_PTR(err));
        static const char *const reqs[] = {"ExecProcess", "ReadStdout", "CopyFile",
                                           "CreateContainer", "SetGuestDateTime"};
        for (size_t i = 0; i < 5; i++) {
                (void)agent_policy_check(p, reqs[i], i % 2 ? "secret-1" : NULL, &err);
                cc_error_free(TAKE_PTR(err));
        }
        (void)agent_policy_allows_set_policy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nul = memchr(data, 0, size);
        size_t tlen = nul ? (size_t)(nul - data) : size;
        char *text = malloc(tlen + 1);
        if (!text)
                return 0;
        memcpy(text, data, tlen);
        text[tlen] = '\0';
        const uint8_t *q = nul ? nul + 1 : data + size, *end = data + size;
        struct agent_policy *p = NULL;
        struct cc_error *err = NULL;
        if (agent_policy_parse(text, &p, &err) == 0) {
                match_all(p, q, end);
                agent_policy_free(p);
        }
        cc_error_free(err);
        static struct agent_policy *tee;
        if (!tee && agent_policy_tee_default(&tee, NULL) < 0)
                abort();
        match_all(tee, q, end);
        free(text);
        return 0;
}
