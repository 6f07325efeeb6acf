/*
 * cc-agent-ctl: a small client of the agent API (grpc.AgentService / grpc.Health over ttrpc),
 * for tests and debugging, in the spirit of Kata's agent-ctl. It builds the grpc.Spec the way
 * a shim does, from options:
 *
 *   cc-agent-ctl --addr unix://SOCK COMMAND [OPTIONS] [-- ARGS...]
 *   commands: check [--wait SEC] | version | details | create-sandbox | destroy-sandbox |
 *             create | start | exec | run | wait | signal | read-stdout | read-stderr |
 *             write-stdin | close-stdin | resize | pause | resume | stats | update | remove |
 *             oom-event | copy-file | pull-image | update-interface | update-routes |
 *             list-interfaces | list-routes | add-arp
 *
 * `run` = create + start + copy stdout/stderr + wait + remove; exits with the container's
 * status. Errors print "error: <grpc code name>: <message>" and exit 1 (or 2 for usage).
 *
 * This file: the command line (one table of options) and the dispatch; the commands are in
 * sandbox.c, process.c and net.c, the grpc.Spec builder in spec.c (ctl.h).
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc/error.h"
#include "cc/macro.h"
#include "cc/ttrpc.h"

#include "guest-agent/ctl/ctl.h"

struct cc_ttrpc_client *ctl_client;

static _noreturn_ void die_err(const char *what, struct cc_error *e)
{
        fprintf(stderr, "error: %s: %s: %s\n", what, cc_grpc_code_name(cc_error_grpc_code(e)),
                cc_error_message(e));
        exit(1);
}

int ctl_call(const char *service, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp, int64_t timeout_ns,
             bool fatal)
{
        struct cc_error *e = NULL;
        struct cc_ttrpc_call_opts o = {.timeout_ns = timeout_ns};
        int r = cc_ttrpc_client_call(ctl_client, service, method, req, rd, resp, &o, &e);
        if (r < 0 && fatal)
                die_err(method, e);
        cc_error_free(e);
        return r;
}

static _noreturn_ void out_of_memory(void)
{
        fprintf(stderr, "error: out of memory\n");
        exit(1);
}

void *ctl_calloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                out_of_memory();
        return p;
}

char *ctl_strdup(const char *s)
{
        char *p = strdup(s);
        if (!p)
                out_of_memory();
        return p;
}

static int connect_addr(const char *addr)
{
        const char *path = addr;
        if (strncmp(addr, "unix://", 7) == 0)
                path = addr + 7;
        else if (strncmp(addr, "unix:", 5) == 0)
                path = addr + 5;
        return cc_unix_connect(path);
}

/* ---- options ----------------------------------------------------------------------------- */

/* What an option does to struct opts: set a string, set a flag, parse a number, or append to
 * a list (at most MAX_LIST; more are ignored). */
enum opt_kind { OPT_STR, OPT_FLAG, OPT_UINT, OPT_OCTAL, OPT_INT64, OPT_LIST };

struct opt_def {
        const char *name;
        enum opt_kind kind;
        size_t off;   /* of the field in struct opts */
        size_t n_off; /* OPT_LIST: of its count */
};

#define F(field) offsetof(struct opts, field)
#define STR(name, field)                   \
        {                                  \
                name, OPT_STR, F(field), 0 \
        }
#define FLAG(name, field)                   \
        {                                   \
                name, OPT_FLAG, F(field), 0 \
        }
#define UINT(name, field)                   \
        {                                   \
                name, OPT_UINT, F(field), 0 \
        }
#define LIST(name, field, n)                   \
        {                                      \
                name, OPT_LIST, F(field), F(n) \
        }

static const struct opt_def opt_defs[] = {
        STR("addr", addr),
        STR("id", id),
        STR("exec-id", exec_id),
        STR("rootfs", rootfs),
        STR("cwd", cwd),
        STR("hostname", hostname),
        STR("user", user),
        LIST("env", envs, n_env),
        LIST("cap", caps, n_caps), /* also sets caps_set (see parse_args) */
        FLAG("no-caps", caps_set),
        LIST("rlimit", rlimits, n_rlimits),
        LIST("seccomp-errno", seccomp_errno, n_seccomp),
        LIST("mount", mounts, n_mounts),
        LIST("annotation", annotations, n_annotations),
        FLAG("tty", tty),
        FLAG("readonly", readonly),
        FLAG("no-pidns", no_pidns),
        FLAG("no-new-privs", no_new_privs),
        FLAG("sandbox", sandbox),
        {"memory", OPT_INT64, F(memory), 0},
        {"pids", OPT_INT64, F(pids), 0},
        UINT("signal", signal),
        UINT("timeout", timeout),
        UINT("rows", rows),
        UINT("cols", cols),
        UINT("wait", wait_s),
        STR("stdin", data),
        STR("src", src),
        STR("dst", dst),
        {"mode", OPT_OCTAL, F(mode), 0},
        STR("guest-pull", guest_pull),
        FLAG("no-masked", no_masked),
        FLAG("rw-sys", rw_sys),
        FLAG("no-ipcns", no_ipcns),
        LIST("sysctl", sysctls, n_sysctls),
        LIST("device", devices, n_devices),
};

/* getopt_long's value for opt_defs[i] is OPT_VAL0 + i: never a character such as '?'. */
#define OPT_VAL0 256

static void apply_opt(struct opts *o, const struct opt_def *d, const char *arg)
{
        char *field = (char *)o + d->off;
        switch (d->kind) {
        case OPT_STR:
                *(const char **)field = arg;
                break;
        case OPT_FLAG:
                *(bool *)field = true;
                break;
        case OPT_UINT:
                *(unsigned *)field = (unsigned)strtoul(arg, NULL, 10);
                break;
        case OPT_OCTAL:
                *(unsigned *)field = (unsigned)strtoul(arg, NULL, 8);
                break;
        case OPT_INT64:
                *(int64_t *)field = strtoll(arg, NULL, 10);
                break;
        case OPT_LIST: {
                size_t *n = (size_t *)((char *)o + d->n_off);
                if (*n < MAX_LIST)
                        ((const char **)field)[(*n)++] = arg;
                break;
        }
        }
}

/* Options before and after the command, up to "--" or the first argument: 0, or 2 (usage). */
static int parse_args(int argc, char **argv, struct opts *o, const char **ret_cmd)
{
        struct option lo[CC_ARRAY_SIZE(opt_defs) + 1];
        for (size_t i = 0; i < CC_ARRAY_SIZE(opt_defs); i++)
                lo[i] = (struct option){opt_defs[i].name,
                                        opt_defs[i].kind == OPT_FLAG ? no_argument
                                                                     : required_argument,
                                        NULL, OPT_VAL0 + (int)i};
        lo[CC_ARRAY_SIZE(opt_defs)] = (struct option){0};
        int c;
        for (int pass = 0; pass < 2; pass++) {
                while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
                        if (c < OPT_VAL0 || (size_t)(c - OPT_VAL0) >= CC_ARRAY_SIZE(opt_defs))
                                return 2; /* getopt named it */
                        apply_opt(o, &opt_defs[c - OPT_VAL0], optarg);
                }
                if (pass == 0) {
                        if (optind >= argc) {
                                fprintf(stderr, "missing command\n");
                                return 2;
                        }
                        *ret_cmd = argv[optind++];
                }
        }
        o->caps_set |= o->n_caps > 0;
        o->args = argv + optind;
        o->n_args = (size_t)(argc - optind);
        return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static const struct ctl_command *const command_tables[] = {
        ctl_net_commands,
        ctl_sandbox_commands,
        ctl_process_commands,
};

static int run(const char *cmd, struct opts *o)
{
        const struct ctl_command *found = NULL;
        for (size_t t = 0; t < CC_ARRAY_SIZE(command_tables) && !found; t++)
                for (const struct ctl_command *c = command_tables[t]; c->name && !found; c++)
                        if (strcmp(c->name, cmd) == 0)
                                found = c;
        if ((!found || found->needs_id) && !o->id) {
                fprintf(stderr, "%s needs --id\n", cmd);
                return 2;
        }
        if (!found) {
                fprintf(stderr, "unknown command %s\n", cmd);
                return 2;
        }
        return found->run(o);
}

int main(int argc, char **argv)
{
        struct opts o = {.addr = getenv("CC_AGENT_ADDR")};
        if (argc < 2) {
                fprintf(stderr, "usage: cc-agent-ctl [--addr unix://SOCK] COMMAND [OPTIONS] [-- "
                                "ARGS...]\n");
                return 2;
        }
        const char *cmd = NULL;
        int r = parse_args(argc, argv, &o, &cmd);
        if (r)
                return r;
        if (!o.addr) {
                fprintf(stderr, "no --addr (or CC_AGENT_ADDR)\n");
                return 2;
        }
        /* With --wait, also wait for the socket to accept (it may exist before listen()). */
        int fd = connect_addr(o.addr);
        for (time_t end = time(NULL) + o.wait_s; fd < 0 && time(NULL) < end;) {
                nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
                fd = connect_addr(o.addr);
        }
        if (fd < 0) {
                fprintf(stderr, "error: connect %s: %s\n", o.addr, strerror(-fd));
                return 1;
        }
        if (cc_ttrpc_client_new(fd, &ctl_client) < 0) {
                fprintf(stderr, "error: ttrpc client\n");
                return 1;
        }
        r = run(cmd, &o);
        cc_ttrpc_client_free(ctl_client);
        return r;
}
