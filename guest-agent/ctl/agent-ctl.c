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
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/ttrpc.h"

#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "kata/image.pb-c.h"
#include "kata/types.pb-c.h"

#define AGENT    "grpc.AgentService"
#define MAX_LIST 64

struct opts {
        const char *addr, *id, *exec_id, *rootfs, *cwd, *hostname, *user, *data, *src, *dst;
        const char *guest_pull; /* --guest-pull IMAGE: an image_guest_pull Storage */
        const char *envs[MAX_LIST], *caps[MAX_LIST], *rlimits[MAX_LIST], *seccomp_errno[MAX_LIST],
                *mounts[MAX_LIST], *annotations[MAX_LIST], *sysctls[MAX_LIST];
        size_t n_env, n_caps, n_rlimits, n_seccomp, n_mounts, n_annotations, n_sysctls;
        bool tty, readonly, no_pidns, sandbox, caps_set, no_new_privs;
        /* Hostile-host tests: no masked/read-only paths, sysfs read-write, no ipc/uts ns. */
        bool no_masked, rw_sys, no_ipcns;
        int64_t memory, pids;
        unsigned signal, timeout, rows, cols, wait_s, mode;
        char **args;
        size_t n_args;
};

static struct cc_ttrpc_client *client;

static _noreturn_ void die_err(const char *what, struct cc_error *e)
{
        fprintf(stderr, "error: %s: %s: %s\n", what, cc_grpc_code_name(cc_error_grpc_code(e)),
                cc_error_message(e));
        exit(1);
}

static int call(const char *service, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp, int64_t timeout_ns,
                bool fatal)
{
        struct cc_error *e = NULL;
        struct cc_ttrpc_call_opts o = {.timeout_ns = timeout_ns};
        int r = cc_ttrpc_client_call(client, service, method, req, rd, resp, &o, &e);
        if (r < 0 && fatal)
                die_err(method, e);
        cc_error_free(e);
        return r;
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

/* ---- spec ------------------------------------------------------------------------------- */

static Grpc__Mount *mount_new(const char *dst, const char *src, const char *type, const char *opts)
{
        Grpc__Mount *m = calloc(1, sizeof(*m));
        grpc__mount__init(m);
        m->destination = strdup(dst);
        m->source = strdup(src);
        m->type = strdup(type);
        char *o = strdup(opts), *save = NULL;
        m->options = calloc(16, sizeof(char *));
        for (char *t = strtok_r(o, ",", &save); t && m->n_options < 16;
             t = strtok_r(NULL, ",", &save))
                m->options[m->n_options++] = strdup(t);
        free(o);
        return m;
}

static char **strv(const char *const *v, size_t n)
{
        char **out = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                out[i] = strdup(v[i]);
        return out;
}

static Grpc__Process *process_new(const struct opts *o)
{
        Grpc__Process *p = calloc(1, sizeof(*p));
        grpc__process__init(p);
        p->terminal = o->tty;
        if (o->rows) {
                p->consolesize = calloc(1, sizeof(*p->consolesize));
                grpc__box__init(p->consolesize);
                p->consolesize->height = o->rows;
                p->consolesize->width = o->cols;
        }
        p->user = calloc(1, sizeof(*p->user));
        grpc__user__init(p->user);
        if (o->user) {
                unsigned uid = 0, gid = 0;
                char extra[256] = "";
                sscanf(o->user, "%u:%u:%255s", &uid, &gid, extra);
                p->user->uid = uid;
                p->user->gid = gid;
                p->user->additionalgids = calloc(16, sizeof(uint32_t));
                char *save = NULL;
                for (char *t = strtok_r(extra, ",", &save); t && p->user->n_additionalgids < 16;
                     t = strtok_r(NULL, ",", &save))
                        p->user->additionalgids[p->user->n_additionalgids++] =
                                (uint32_t)strtoul(t, NULL, 10);
        }
        p->n_args = o->n_args;
        p->args = o->args;
        const char *path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        const char *envs[MAX_LIST + 1];
        size_t ne = 0;
        envs[ne++] = path;
        for (size_t i = 0; i < o->n_env; i++)
                envs[ne++] = o->envs[i];
        p->env = strv(envs, ne);
        p->n_env = ne;
        p->cwd = strdup(o->cwd ? o->cwd : "/");
        if (o->caps_set) {
                Grpc__LinuxCapabilities *c = calloc(1, sizeof(*c));
                grpc__linux_capabilities__init(c);
                c->bounding = strv(o->caps, o->n_caps);
                c->n_bounding = o->n_caps;
                c->effective = strv(o->caps, o->n_caps);
                c->n_effective = o->n_caps;
                c->permitted = strv(o->caps, o->n_caps);
                c->n_permitted = o->n_caps;
                p->capabilities = c;
        }
        p->rlimits = calloc(o->n_rlimits + 1, sizeof(*p->rlimits));
        for (size_t i = 0; i < o->n_rlimits; i++) {
                char type[64];
                unsigned long long soft = 0, hard = 0;
                if (sscanf(o->rlimits[i], "%63[^:]:%llu:%llu", type, &soft, &hard) != 3) {
                        fprintf(stderr, "bad --rlimit %s (TYPE:SOFT:HARD)\n", o->rlimits[i]);
                        exit(2);
                }
                Grpc__POSIXRlimit *l = calloc(1, sizeof(*l));
                grpc__posixrlimit__init(l);
                l->type = strdup(type);
                l->soft = soft;
                l->hard = hard;
                p->rlimits[p->n_rlimits++] = l;
        }
        p->nonewprivileges = o->no_new_privs;
        return p;
}

static Grpc__Spec *spec_new(const struct opts *o)
{
        Grpc__Spec *s = calloc(1, sizeof(*s));
        grpc__spec__init(s);
        s->version = strdup("1.1.0");
        s->process = process_new(o);
        s->root = calloc(1, sizeof(*s->root));
        grpc__root__init(s->root);
        s->root->path = strdup(o->rootfs ? o->rootfs : "");
        s->root->readonly = o->readonly;
        s->hostname = strdup(o->hostname ? o->hostname : "");
        s->mounts = calloc(16 + MAX_LIST, sizeof(*s->mounts));
        s->mounts[s->n_mounts++] = mount_new("/proc", "proc", "proc", "nosuid,noexec,nodev");
        s->mounts[s->n_mounts++] =
                mount_new("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k");
        s->mounts[s->n_mounts++] = mount_new("/dev/pts", "devpts", "devpts",
                                             "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620");
        s->mounts[s->n_mounts++] =
                mount_new("/dev/shm", "shm", "tmpfs", "nosuid,noexec,nodev,mode=1777,size=65536k");
        s->mounts[s->n_mounts++] =
                mount_new("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev");
        s->mounts[s->n_mounts++] =
                mount_new("/sys", "sysfs", "sysfs",
                          o->rw_sys ? "nosuid,noexec,nodev" : "nosuid,noexec,nodev,ro");
        for (size_t i = 0; i < o->n_mounts; i++) {
                char dst[256], src[512], type[32], mo[256] = "";
                if (sscanf(o->mounts[i], "%255[^:]:%511[^:]:%31[^:]:%255s", dst, src, type, mo) <
                    3) {
                        fprintf(stderr, "bad --mount %s (DST:SRC:TYPE[:OPTS])\n", o->mounts[i]);
                        exit(2);
                }
                s->mounts[s->n_mounts++] = mount_new(dst, src, type, mo);
        }
        s->n_annotations = o->n_annotations + (o->sandbox ? 1 : 0);
        s->annotations = calloc(s->n_annotations + 1, sizeof(*s->annotations));
        for (size_t i = 0; i < s->n_annotations; i++) {
                Grpc__Spec__AnnotationsEntry *e = calloc(1, sizeof(*e));
                grpc__spec__annotations_entry__init(e);
                if (i < o->n_annotations) {
                        char *kv = strdup(o->annotations[i]), *eq = strchr(kv, '=');
                        if (eq)
                                *eq++ = '\0';
                        e->key = kv;
                        e->value = strdup(eq ? eq : "");
                } else {
                        e->key = strdup("io.kubernetes.cri.container-type");
                        e->value = strdup("sandbox");
                }
                s->annotations[i] = e;
        }
        Grpc__Linux *l = calloc(1, sizeof(*l));
        grpc__linux__init(l);
        static const char *const ns[] = {"mount", "uts", "ipc", "pid"};
        l->namespaces = calloc(4, sizeof(*l->namespaces));
        for (size_t i = 0; i < 4; i++) {
                if ((o->no_pidns && strcmp(ns[i], "pid") == 0) ||
                    (o->no_ipcns && strcmp(ns[i], "ipc") == 0))
                        continue;
                Grpc__LinuxNamespace *n = calloc(1, sizeof(*n));
                grpc__linux_namespace__init(n);
                n->type = strdup(ns[i]);
                l->namespaces[l->n_namespaces++] = n;
        }
        static const char *const masked[] = {"/proc/acpi", "/proc/kcore", "/proc/keys",
                                             "/proc/timer_list", "/sys/firmware"};
        static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                         "/proc/sysrq-trigger"};
        if (!o->no_masked) {
                l->maskedpaths = strv(masked, 5);
                l->n_maskedpaths = 5;
                l->readonlypaths = strv(ro, 5);
                l->n_readonlypaths = 5;
        }
        if (o->n_sysctls) {
                l->sysctl = calloc(o->n_sysctls, sizeof(*l->sysctl));
                for (size_t i = 0; i < o->n_sysctls; i++) {
                        Grpc__Linux__SysctlEntry *e = calloc(1, sizeof(*e));
                        grpc__linux__sysctl_entry__init(e);
                        char *kv = strdup(o->sysctls[i]), *eq = strchr(kv, '=');
                        if (eq)
                                *eq++ = '\0';
                        e->key = kv;
                        e->value = strdup(eq ? eq : "");
                        l->sysctl[l->n_sysctl++] = e;
                }
        }
        if (o->memory || o->pids) {
                l->resources = calloc(1, sizeof(*l->resources));
                grpc__linux_resources__init(l->resources);
                if (o->memory) {
                        l->resources->memory = calloc(1, sizeof(Grpc__LinuxMemory));
                        grpc__linux_memory__init(l->resources->memory);
                        l->resources->memory->limit = o->memory;
                        l->resources->memory->swap = o->memory;
                }
                if (o->pids) {
                        l->resources->pids = calloc(1, sizeof(Grpc__LinuxPids));
                        grpc__linux_pids__init(l->resources->pids);
                        l->resources->pids->limit = o->pids;
                }
        }
        if (o->n_seccomp) {
                Grpc__LinuxSeccomp *sc = calloc(1, sizeof(*sc));
                grpc__linux_seccomp__init(sc);
                sc->defaultaction = strdup("SCMP_ACT_ALLOW");
                sc->syscalls = calloc(1, sizeof(*sc->syscalls));
                Grpc__LinuxSyscall *rule = calloc(1, sizeof(*rule));
                grpc__linux_syscall__init(rule);
                rule->names = strv(o->seccomp_errno, o->n_seccomp);
                rule->n_names = o->n_seccomp;
                rule->action = strdup("SCMP_ACT_ERRNO");
                rule->errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
                rule->errnoret = 1; /* EPERM */
                sc->syscalls[0] = rule;
                sc->n_syscalls = 1;
                l->seccomp = sc;
        }
        s->linux_ = l;
        return s;
}

/* ---- commands -------------------------------------------------------------------------- */

static void do_create(const struct opts *o)
{
        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)o->id;
        req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
        req.oci = spec_new(o);
        Grpc__Storage st = GRPC__STORAGE__INIT;
        Grpc__Storage *sts[] = {&st};
        if (o->guest_pull) {
                st.driver = "image_guest_pull";
                st.source = (char *)o->guest_pull;
                st.fstype = "overlay";
                req.n_storages = 1;
                req.storages = sts;
        }
        call(AGENT, "CreateContainer", &req.base, NULL, NULL, 0, true);
}

static void do_simple_id(const char *method, const ProtobufCMessageDescriptor *d, const char *id)
{
        /* Start/Pause/Resume/Stats requests are all { string container_id = 1; }. */
        ProtobufCMessage *m = calloc(1, d->sizeof_message);
        d->message_init(m);
        *(char **)((char *)m + d->fields[0].offset) = (char *)id;
        call(AGENT, method, m, NULL, NULL, 0, true);
        free(m);
}

struct copier {
        const char *method, *id, *exec_id;
        FILE *out;
};

static void *copy_stream(void *arg)
{
        struct copier *c = arg;
        for (;;) {
                Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
                req.container_id = (char *)c->id;
                req.exec_id = (char *)(c->exec_id ? c->exec_id : "");
                req.len = 65536;
                Grpc__ReadStreamResponse *resp = NULL;
                struct cc_error *e = NULL;
                if (cc_ttrpc_client_call(client, AGENT, c->method, &req.base,
                                         &grpc__read_stream_response__descriptor,
                                         (ProtobufCMessage **)&resp, NULL, &e) < 0) {
                        /* The agent ends a stream with an error; report only refusals. */
                        int code = cc_error_grpc_code(e);
                        if (code == CC_GRPC_PERMISSION_DENIED || code == CC_GRPC_NOT_FOUND ||
                            code == CC_GRPC_INVALID_ARGUMENT)
                                fprintf(stderr, "error: %s: %s: %s\n", c->method,
                                        cc_grpc_code_name(code), cc_error_message(e));
                        cc_error_free(e);
                        break;
                }
                fwrite(resp->data.data, 1, resp->data.len, c->out);
                fflush(c->out);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        return NULL;
}

static int do_wait(const char *id, const char *exec_id)
{
        Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        Grpc__WaitProcessResponse *resp = NULL;
        call(AGENT, "WaitProcess", &req.base, &grpc__wait_process_response__descriptor,
             (ProtobufCMessage **)&resp, 0, true);
        int st = resp->status;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return st;
}

static void do_write(const char *id, const char *exec_id, const char *data, size_t len)
{
        Grpc__WriteStreamRequest req = GRPC__WRITE_STREAM_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        req.data.data = (uint8_t *)data;
        req.data.len = len;
        call(AGENT, "WriteStdin", &req.base, &grpc__write_stream_response__descriptor, NULL, 0,
             true);
}

static void do_close_stdin(const char *id, const char *exec_id)
{
        Grpc__CloseStdinRequest req = GRPC__CLOSE_STDIN_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        call(AGENT, "CloseStdin", &req.base, NULL, NULL, 0, true);
}

static void do_remove(const char *id, unsigned timeout)
{
        Grpc__RemoveContainerRequest req = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)id;
        req.timeout = timeout;
        call(AGENT, "RemoveContainer", &req.base, NULL, NULL, 0, true);
}

/* Copies stdout and stderr until EOF while the process runs, then waits; returns status. */
static int attach_and_wait(const struct opts *o, const char *exec_id)
{
        struct copier out = {"ReadStdout", o->id, exec_id, stdout};
        struct copier errc = {"ReadStderr", o->id, exec_id, stderr};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, copy_stream, &out);
        if (!o->tty)
                pthread_create(&t2, NULL, copy_stream, &errc);
        if (o->data) {
                do_write(o->id, exec_id, o->data, strlen(o->data));
                do_close_stdin(o->id, exec_id);
        }
        int st = do_wait(o->id, exec_id);
        pthread_join(t1, NULL);
        if (!o->tty)
                pthread_join(t2, NULL);
        return st;
}

/* ---- network requests ------------------------------------------------------------------ */

/* Splits "a,b,c" into at most n fields in place (missing ones are ""); returns the count. */
static size_t split_fields(char *s, char **f, size_t n)
{
        size_t i = 0;
        for (; i < n; i++) {
                f[i] = s ? s : (char *)"";
                char *comma = s ? strchr(s, ',') : NULL;
                if (comma)
                        *comma = 0;
                s = comma ? comma + 1 : NULL;
        }
        return i;
}

/* "ADDR/LEN" (or "ADDR") into an IPAddress; the family follows from the address. */
static Types__IPAddress *ipaddress_new(char *s)
{
        Types__IPAddress *ip = calloc(1, sizeof(*ip));
        if (!ip)
                abort();
        types__ipaddress__init(ip);
        char *slash = strchr(s, '/');
        if (slash)
                *slash = 0;
        ip->address = s;
        ip->mask = slash ? slash + 1 : (char *)"";
        ip->family = strchr(s, ':') ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
        return ip;
}

static const char *or_dash(const char *s)
{
        return s && *s ? s : "-";
}

/* One line per interface: NAME HWADDR mtu=N ADDR/MASK... */
static void print_interface(const Types__Interface *itf)
{
        printf("%s %s mtu=%" PRIu64, or_dash(itf->name), or_dash(itf->hwaddr), itf->mtu);
        for (size_t i = 0; i < itf->n_ipaddresses; i++)
                printf(" %s/%s", itf->ipaddresses[i]->address, itf->ipaddresses[i]->mask);
        printf("\n");
}

/* One line per route: DEST via GW dev DEV scope N ("-" for an empty field). */
static void print_routes(const Grpc__Routes *rs)
{
        for (size_t i = 0; i < rs->n_routes; i++)
                printf("%s via %s dev %s scope %u\n", or_dash(rs->routes[i]->dest),
                       or_dash(rs->routes[i]->gateway), or_dash(rs->routes[i]->device),
                       rs->routes[i]->scope);
}

static int run_net(const char *cmd, struct opts *o)
{
        if (strcmp(cmd, "update-interface") == 0) {
                /* update-interface -- MAC NAME MTU [ADDR/LEN...] (MTU 0 keeps the NIC's). */
                if (o->n_args < 3 || o->n_args - 3 > MAX_LIST) {
                        fprintf(stderr, "usage: update-interface -- MAC NAME MTU [ADDR/LEN...]\n");
                        return 2;
                }
                Types__Interface itf = TYPES__INTERFACE__INIT;
                Types__IPAddress *ips[MAX_LIST];
                itf.hwaddr = o->args[0];
                itf.name = o->args[1];
                itf.device = o->args[1];
                itf.mtu = strtoull(o->args[2], NULL, 10);
                itf.n_ipaddresses = o->n_args - 3;
                for (size_t i = 0; i < itf.n_ipaddresses; i++)
                        ips[i] = ipaddress_new(o->args[3 + i]);
                itf.ipaddresses = ips;
                Grpc__UpdateInterfaceRequest req = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
                req.interface = &itf;
                Types__Interface *resp = NULL;
                call(AGENT, "UpdateInterface", &req.base, &types__interface__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                print_interface(resp);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                for (size_t i = 0; i < itf.n_ipaddresses; i++)
                        free(ips[i]);
                return 0;
        }
        if (strcmp(cmd, "update-routes") == 0) {
                /* update-routes -- DEST,GATEWAY,DEVICE[,SCOPE]... ("default" or "" for 0/0). */
                if (o->n_args > MAX_LIST) {
                        fprintf(stderr, "usage: update-routes -- DEST,GW,DEV[,SCOPE]...\n");
                        return 2;
                }
                Types__Route routes[MAX_LIST], *rp[MAX_LIST];
                for (size_t i = 0; i < o->n_args; i++) {
                        char *f[4];
                        split_fields(o->args[i], f, 4);
                        types__route__init(&routes[i]);
                        routes[i].dest = f[0];
                        routes[i].gateway = f[1];
                        routes[i].device = f[2];
                        routes[i].scope = (uint32_t)strtoul(f[3], NULL, 10);
                        routes[i].family = strchr(f[0], ':') || strchr(f[1], ':')
                                                   ? TYPES__IPFAMILY__v6
                                                   : TYPES__IPFAMILY__v4;
                        rp[i] = &routes[i];
                }
                Grpc__Routes rs = GRPC__ROUTES__INIT;
                rs.n_routes = o->n_args;
                rs.routes = rp;
                Grpc__UpdateRoutesRequest req = GRPC__UPDATE_ROUTES_REQUEST__INIT;
                req.routes = &rs;
                Grpc__Routes *resp = NULL;
                call(AGENT, "UpdateRoutes", &req.base, &grpc__routes__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                print_routes(resp);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                return 0;
        }
        if (strcmp(cmd, "list-interfaces") == 0) {
                Grpc__ListInterfacesRequest req = GRPC__LIST_INTERFACES_REQUEST__INIT;
                Grpc__Interfaces *resp = NULL;
                call(AGENT, "ListInterfaces", &req.base, &grpc__interfaces__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                for (size_t i = 0; i < resp->n_interfaces; i++)
                        print_interface(resp->interfaces[i]);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                return 0;
        }
        if (strcmp(cmd, "list-routes") == 0) {
                Grpc__ListRoutesRequest req = GRPC__LIST_ROUTES_REQUEST__INIT;
                Grpc__Routes *resp = NULL;
                call(AGENT, "ListRoutes", &req.base, &grpc__routes__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                print_routes(resp);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                return 0;
        }
        if (strcmp(cmd, "add-arp") == 0) {
                /* add-arp -- IP,LLADDR,DEVICE... (permanent entries). */
                if (o->n_args == 0 || o->n_args > MAX_LIST) {
                        fprintf(stderr, "usage: add-arp -- IP,LLADDR,DEVICE...\n");
                        return 2;
                }
                Types__ARPNeighbor ne[MAX_LIST], *np[MAX_LIST];
                for (size_t i = 0; i < o->n_args; i++) {
                        char *f[3];
                        split_fields(o->args[i], f, 3);
                        types__arpneighbor__init(&ne[i]);
                        ne[i].toipaddress = ipaddress_new(f[0]);
                        ne[i].lladdr = f[1];
                        ne[i].device = f[2];
                        np[i] = &ne[i];
                }
                Grpc__ARPNeighbors ns = GRPC__ARPNEIGHBORS__INIT;
                ns.n_arpneighbors = o->n_args;
                ns.arpneighbors = np;
                Grpc__AddARPNeighborsRequest req = GRPC__ADD_ARPNEIGHBORS_REQUEST__INIT;
                req.neighbors = &ns;
                call(AGENT, "AddARPNeighbors", &req.base, NULL, NULL, 0, true);
                for (size_t i = 0; i < o->n_args; i++)
                        free(ne[i].toipaddress);
                return 0;
        }
        return -1;
}

static int run(const char *cmd, struct opts *o)
{
        int nr = run_net(cmd, o);
        if (nr >= 0)
                return nr;
        if (strcmp(cmd, "check") == 0) {
                Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
                Grpc__HealthCheckResponse *resp = NULL;
                time_t end = time(NULL) + o->wait_s;
                for (;;) {
                        int r = call("grpc.Health", "Check", &req.base,
                                     &grpc__health_check_response__descriptor,
                                     (ProtobufCMessage **)&resp, 2000000000LL, time(NULL) >= end);
                        if (r >= 0)
                                break;
                        if (cc_ttrpc_client_broken(client)) {
                                fprintf(stderr, "error: connection broken\n");
                                return 1;
                        }
                }
                printf("%s\n", resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                       ? "SERVING"
                                       : "NOT_SERVING");
                return resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
        }
        if (strcmp(cmd, "version") == 0) {
                Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
                Grpc__VersionCheckResponse *resp = NULL;
                call("grpc.Health", "Version", &req.base, &grpc__version_check_response__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                printf("agent_version=%s grpc_version=%s\n", resp->agent_version,
                       resp->grpc_version);
                return 0;
        }
        if (strcmp(cmd, "details") == 0) {
                Grpc__GuestDetailsRequest req = GRPC__GUEST_DETAILS_REQUEST__INIT;
                req.mem_block_size = true;
                Grpc__GuestDetailsResponse *resp = NULL;
                call(AGENT, "GetGuestDetails", &req.base, &grpc__guest_details_response__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                Grpc__AgentDetails *d = resp->agent_details;
                printf("version=%s init_daemon=%d supports_seccomp=%d mem_block_size=%" PRIu64,
                       d ? d->version : "", d ? d->init_daemon : 0, d ? d->supports_seccomp : 0,
                       resp->mem_block_size_bytes);
                for (size_t i = 0; d && i < d->n_extra_features; i++)
                        printf(" %s", d->extra_features[i]);
                printf("\n");
                return 0;
        }
        if (strcmp(cmd, "create-sandbox") == 0) {
                Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
                req.hostname = (char *)(o->hostname ? o->hostname : "");
                req.sandbox_id = (char *)(o->id ? o->id : "");
                call(AGENT, "CreateSandbox", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "pull-image") == 0) {
                /* pull-image --id C [--user USER:PASS] -- IMAGE: grpc.Image/PullImage. */
                if (!o->id || o->n_args != 1) {
                        fprintf(stderr, "usage: pull-image --id CONTAINER -- IMAGE\n");
                        return 2;
                }
                Grpc__PullImageRequest req = GRPC__PULL_IMAGE_REQUEST__INIT;
                req.image = o->args[0];
                req.container_id = (char *)o->id;
                req.source_creds = (char *)(o->user ? o->user : "");
                Grpc__PullImageResponse *resp = NULL;
                call("grpc.Image", "PullImage", &req.base, &grpc__pull_image_response__descriptor,
                     (ProtobufCMessage **)&resp, 0, true);
                printf("%s\n", resp->image_ref);
                return 0;
        }
        if (strcmp(cmd, "destroy-sandbox") == 0) {
                Grpc__DestroySandboxRequest req = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
                call(AGENT, "DestroySandbox", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "oom-event") == 0) {
                Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
                Grpc__OOMEvent *resp = NULL;
                call(AGENT, "GetOOMEvent", &req.base, &grpc__oomevent__descriptor,
                     (ProtobufCMessage **)&resp,
                     (int64_t)(o->timeout ? o->timeout : 10) * 1000000000LL, true);
                printf("%s\n", resp->container_id);
                return 0;
        }
        if (strcmp(cmd, "set-time") == 0) {
                Grpc__SetGuestDateTimeRequest req = GRPC__SET_GUEST_DATE_TIME_REQUEST__INIT;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                req.sec = ts.tv_sec;
                call(AGENT, "SetGuestDateTime", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "set-policy") == 0) {
                /* --src FILE: the agent's JSON policy. */
                Grpc__SetPolicyRequest req = GRPC__SET_POLICY_REQUEST__INIT;
                _cleanup_fclose_ FILE *f = o->src ? fopen(o->src, "re") : NULL;
                static char text[1 << 20];
                size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
                if (!f) {
                        perror(o->src ? o->src : "--src");
                        return 1;
                }
                text[n] = '\0';
                req.policy = text;
                call(AGENT, "SetPolicy", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "copy-file") == 0) {
                /* Sends --src in 1 MiB chunks (CopyFile carries an offset), or creates a
                 * directory when --mode has the directory type bits. */
                Grpc__CopyFileRequest req = GRPC__COPY_FILE_REQUEST__INIT;
                req.path = (char *)o->dst;
                req.file_mode = o->mode ? o->mode : (S_IFREG | 0644);
                req.dir_mode = 0755;
                req.uid = -1;
                req.gid = -1;
                if (S_ISDIR(req.file_mode)) {
                        call(AGENT, "CopyFile", &req.base, NULL, NULL, 0, true);
                        return 0;
                }
                _cleanup_fclose_ FILE *f = o->src ? fopen(o->src, "re") : NULL;
                struct stat st;
                if (!f || fstat(fileno(f), &st) < 0) {
                        perror(o->src ? o->src : "--src");
                        return 1;
                }
                static uint8_t buf[1 << 20];
                req.file_size = st.st_size;
                do {
                        size_t n = fread(buf, 1, sizeof(buf), f);
                        req.data.data = buf;
                        req.data.len = n;
                        call(AGENT, "CopyFile", &req.base, NULL, NULL, 0, true);
                        req.offset += (int64_t)n;
                } while (req.offset < st.st_size && !feof(f));
                return 0;
        }
        if (!o->id) {
                fprintf(stderr, "%s needs --id\n", cmd);
                return 2;
        }
        if (strcmp(cmd, "create") == 0) {
                do_create(o);
                return 0;
        }
        if (strcmp(cmd, "start") == 0) {
                do_simple_id("StartContainer", &grpc__start_container_request__descriptor, o->id);
                return 0;
        }
        if (strcmp(cmd, "pause") == 0) {
                do_simple_id("PauseContainer", &grpc__pause_container_request__descriptor, o->id);
                return 0;
        }
        if (strcmp(cmd, "resume") == 0) {
                do_simple_id("ResumeContainer", &grpc__resume_container_request__descriptor, o->id);
                return 0;
        }
        if (strcmp(cmd, "run") == 0) {
                do_create(o);
                do_simple_id("StartContainer", &grpc__start_container_request__descriptor, o->id);
                int st = attach_and_wait(o, NULL);
                do_remove(o->id, 0);
                return st;
        }
        if (strcmp(cmd, "exec") == 0) {
                if (!o->exec_id) {
                        fprintf(stderr, "exec needs --exec-id\n");
                        return 2;
                }
                Grpc__ExecProcessRequest req = GRPC__EXEC_PROCESS_REQUEST__INIT;
                req.container_id = (char *)o->id;
                req.exec_id = (char *)o->exec_id;
                req.process = process_new(o);
                call(AGENT, "ExecProcess", &req.base, NULL, NULL, 0, true);
                return attach_and_wait(o, o->exec_id);
        }
        if (strcmp(cmd, "wait") == 0) {
                int st = do_wait(o->id, o->exec_id);
                printf("%d\n", st);
                return 0;
        }
        if (strcmp(cmd, "signal") == 0) {
                Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
                req.container_id = (char *)o->id;
                req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
                req.signal = o->signal;
                call(AGENT, "SignalProcess", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "read-stdout") == 0 || strcmp(cmd, "read-stderr") == 0) {
                struct copier c = {strcmp(cmd, "read-stdout") == 0 ? "ReadStdout" : "ReadStderr",
                                   o->id, o->exec_id, stdout};
                copy_stream(&c);
                return 0;
        }
        if (strcmp(cmd, "write-stdin") == 0) {
                do_write(o->id, o->exec_id, o->data ? o->data : "", o->data ? strlen(o->data) : 0);
                return 0;
        }
        if (strcmp(cmd, "close-stdin") == 0) {
                do_close_stdin(o->id, o->exec_id);
                return 0;
        }
        if (strcmp(cmd, "resize") == 0) {
                Grpc__TtyWinResizeRequest req = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
                req.container_id = (char *)o->id;
                req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
                req.row = o->rows;
                req.column = o->cols;
                call(AGENT, "TtyWinResize", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "update") == 0) {
                Grpc__UpdateContainerRequest req = GRPC__UPDATE_CONTAINER_REQUEST__INIT;
                Grpc__LinuxResources res = GRPC__LINUX_RESOURCES__INIT;
                Grpc__LinuxMemory mem = GRPC__LINUX_MEMORY__INIT;
                Grpc__LinuxPids pids = GRPC__LINUX_PIDS__INIT;
                req.container_id = (char *)o->id;
                req.resources = &res;
                if (o->memory) {
                        mem.limit = o->memory;
                        res.memory = &mem;
                }
                if (o->pids) {
                        pids.limit = o->pids;
                        res.pids = &pids;
                }
                call(AGENT, "UpdateContainer", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        if (strcmp(cmd, "stats") == 0) {
                Grpc__StatsContainerRequest req = GRPC__STATS_CONTAINER_REQUEST__INIT;
                req.container_id = (char *)o->id;
                Grpc__StatsContainerResponse *resp = NULL;
                call(AGENT, "StatsContainer", &req.base,
                     &grpc__stats_container_response__descriptor, (ProtobufCMessage **)&resp, 0,
                     true);
                Grpc__CgroupStats *cs = resp->cgroup_stats;
                if (cs && cs->cpu_stats && cs->cpu_stats->cpu_usage)
                        printf("cpu_usage_ns=%" PRIu64 "\n", cs->cpu_stats->cpu_usage->total_usage);
                if (cs && cs->memory_stats && cs->memory_stats->usage)
                        printf("memory_usage=%" PRIu64 "\nmemory_limit=%" PRIu64 "\n",
                               cs->memory_stats->usage->usage, cs->memory_stats->usage->limit);
                for (size_t i = 0; cs && cs->memory_stats && i < cs->memory_stats->n_stats; i++)
                        printf("memory_%s=%" PRIu64 "\n", cs->memory_stats->stats[i]->key,
                               cs->memory_stats->stats[i]->value);
                if (cs && cs->pids_stats)
                        printf("pids_current=%" PRIu64 "\npids_limit=%" PRIu64 "\n",
                               cs->pids_stats->current, cs->pids_stats->limit);
                return 0;
        }
        if (strcmp(cmd, "remove") == 0) {
                do_remove(o->id, o->timeout);
                return 0;
        }
        fprintf(stderr, "unknown command %s\n", cmd);
        return 2;
}

#define PUSH(arr, n) (n < MAX_LIST ? (void)(arr[n++] = optarg) : (void)0)

static int parse_opt(int c, struct opts *op)
{
        switch (c) {
        case 'A':
                op->addr = optarg;
                break;
        case 'i':
                op->id = optarg;
                break;
        case 'x':
                op->exec_id = optarg;
                break;
        case 'r':
                op->rootfs = optarg;
                break;
        case 'w':
                op->cwd = optarg;
                break;
        case 'H':
                op->hostname = optarg;
                break;
        case 'u':
                op->user = optarg;
                break;
        case 'e':
                PUSH(op->envs, op->n_env);
                break;
        case 'c':
                op->caps_set = true;
                PUSH(op->caps, op->n_caps);
                break;
        case 'C':
                op->caps_set = true;
                break;
        case 'l':
                PUSH(op->rlimits, op->n_rlimits);
                break;
        case 'S':
                PUSH(op->seccomp_errno, op->n_seccomp);
                break;
        case 'm':
                PUSH(op->mounts, op->n_mounts);
                break;
        case 'N':
                PUSH(op->annotations, op->n_annotations);
                break;
        case 't':
                op->tty = true;
                break;
        case 'R':
                op->readonly = true;
                break;
        case 'P':
                op->no_pidns = true;
                break;
        case 'n':
                op->no_new_privs = true;
                break;
        case 'B':
                op->sandbox = true;
                break;
        case 'M':
                op->memory = strtoll(optarg, NULL, 10);
                break;
        case 'p':
                op->pids = strtoll(optarg, NULL, 10);
                break;
        case 's':
                op->signal = (unsigned)strtoul(optarg, NULL, 10);
                break;
        case 'T':
                op->timeout = (unsigned)strtoul(optarg, NULL, 10);
                break;
        case 'y':
                op->rows = (unsigned)strtoul(optarg, NULL, 10);
                break;
        case 'z':
                op->cols = (unsigned)strtoul(optarg, NULL, 10);
                break;
        case 'W':
                op->wait_s = (unsigned)strtoul(optarg, NULL, 10);
                break;
        case 'D':
                op->data = optarg;
                break;
        case 'F':
                op->src = optarg;
                break;
        case 'O':
                op->dst = optarg;
                break;
        case 'o':
                op->mode = (unsigned)strtoul(optarg, NULL, 8);
                break;
        case 'G':
                op->guest_pull = optarg;
                break;
        case 'K':
                op->no_masked = true;
                break;
        case 'Y':
                op->rw_sys = true;
                break;
        case 'I':
                op->no_ipcns = true;
                break;
        case 'Z':
                PUSH(op->sysctls, op->n_sysctls);
                break;
        default:
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct opts o = {.addr = getenv("CC_AGENT_ADDR")};
        static const struct option lo[] = {
                {"addr", required_argument, NULL, 'A'},
                {"id", required_argument, NULL, 'i'},
                {"exec-id", required_argument, NULL, 'x'},
                {"rootfs", required_argument, NULL, 'r'},
                {"cwd", required_argument, NULL, 'w'},
                {"hostname", required_argument, NULL, 'H'},
                {"user", required_argument, NULL, 'u'},
                {"env", required_argument, NULL, 'e'},
                {"cap", required_argument, NULL, 'c'},
                {"no-caps", no_argument, NULL, 'C'},
                {"rlimit", required_argument, NULL, 'l'},
                {"seccomp-errno", required_argument, NULL, 'S'},
                {"mount", required_argument, NULL, 'm'},
                {"annotation", required_argument, NULL, 'N'},
                {"tty", no_argument, NULL, 't'},
                {"readonly", no_argument, NULL, 'R'},
                {"no-pidns", no_argument, NULL, 'P'},
                {"no-new-privs", no_argument, NULL, 'n'},
                {"sandbox", no_argument, NULL, 'B'},
                {"memory", required_argument, NULL, 'M'},
                {"pids", required_argument, NULL, 'p'},
                {"signal", required_argument, NULL, 's'},
                {"timeout", required_argument, NULL, 'T'},
                {"rows", required_argument, NULL, 'y'},
                {"cols", required_argument, NULL, 'z'},
                {"wait", required_argument, NULL, 'W'},
                {"stdin", required_argument, NULL, 'D'},
                {"src", required_argument, NULL, 'F'},
                {"dst", required_argument, NULL, 'O'},
                {"mode", required_argument, NULL, 'o'},
                {"guest-pull", required_argument, NULL, 'G'},
                {"no-masked", no_argument, NULL, 'K'},
                {"rw-sys", no_argument, NULL, 'Y'},
                {"no-ipcns", no_argument, NULL, 'I'},
                {"sysctl", required_argument, NULL, 'Z'},
                {0},
        };
        if (argc < 2) {
                fprintf(stderr, "usage: cc-agent-ctl [--addr unix://SOCK] COMMAND [OPTIONS] [-- "
                                "ARGS...]\n");
                return 2;
        }
        int c;
        while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1)
                if (parse_opt(c, &o) < 0)
                        return 2;
        if (optind >= argc) {
                fprintf(stderr, "missing command\n");
                return 2;
        }
        const char *cmd = argv[optind++];
        /* Options may also follow the command, up to "--" or the first argument. */
        while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1)
                if (parse_opt(c, &o) < 0)
                        return 2;
        o.args = argv + optind;
        o.n_args = (size_t)(argc - optind);
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
        if (cc_ttrpc_client_new(fd, &client) < 0) {
                fprintf(stderr, "error: ttrpc client\n");
                return 1;
        }
        int r = run(cmd, &o);
        cc_ttrpc_client_free(client);
        return r;
}
