#pragma once
/*
 * cc-agent-ctl internals: the parsed options, the one ttrpc call helper, the grpc.Spec builder
 * and the commands, one table per concern (sandbox.c: the agent and the sandbox; process.c:
 * containers and their processes; net.c: the network requests). agent-ctl.c parses the
 * command line and dispatches.
 */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kata/agent.pb-c.h"

#define AGENT    "grpc.AgentService"
#define MAX_LIST 64

struct opts {
        const char *addr, *id, *exec_id, *rootfs, *cwd, *hostname, *user, *data, *src, *dst;
        const char *guest_pull; /* --guest-pull IMAGE: an image_guest_pull Storage */
        const char *envs[MAX_LIST], *caps[MAX_LIST], *rlimits[MAX_LIST], *seccomp_errno[MAX_LIST],
                *mounts[MAX_LIST], *annotations[MAX_LIST], *sysctls[MAX_LIST];
        size_t n_env, n_caps, n_rlimits, n_seccomp, n_mounts, n_annotations, n_sysctls;
        /* --device SERIAL:PATH[:integrity]: a block Device, and the linux.devices entry and
         * resources rule a shim passes with it (host numbers 8:16, 8:32, ...: the agent must
         * rewrite them). */
        const char *devices[MAX_LIST];
        size_t n_devices;
        bool tty, readonly, no_pidns, sandbox, caps_set, no_new_privs;
        /* Hostile-host tests: no masked/read-only paths, sysfs read-write, no ipc/uts ns. */
        bool no_masked, rw_sys, no_ipcns;
        int64_t memory, pids;
        unsigned signal, timeout, rows, cols, wait_s, mode;
        char **args;
        size_t n_args;
};

struct cc_ttrpc_client;
/* The connection to the agent (agent-ctl.c). */
extern struct cc_ttrpc_client *ctl_client;

/*
 * Calls service/method with req; the reply (rd not NULL) goes to *resp. With `fatal` an error
 * prints "error: <method>: <grpc code name>: <message>" and exits 1; otherwise -errno.
 */
int ctl_call(const char *service, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp, int64_t timeout_ns,
             bool fatal);

/* Allocation for a one-shot test client: out of memory prints "error: out of memory" and exits
 * 1, as any other failed request does (docs/error-style.md). */
void *ctl_calloc(size_t n, size_t size);
char *ctl_strdup(const char *s);

/* The grpc.Process and grpc.Spec a shim would send, from the options (spec.c). */
Grpc__Process *ctl_process_new(const struct opts *o);
Grpc__Spec *ctl_spec_new(const struct opts *o);
/* The Devices of --device (NULL when none). */
Grpc__Device **ctl_devices_new(const struct opts *o);

/* A command: its name, whether it needs --id, and what it does (the exit status). */
struct ctl_command {
        const char *name;
        bool needs_id;
        int (*run)(struct opts *o);
};

/* NULL-terminated tables, by concern. */
extern const struct ctl_command ctl_sandbox_commands[];
extern const struct ctl_command ctl_process_commands[];
extern const struct ctl_command ctl_net_commands[];
