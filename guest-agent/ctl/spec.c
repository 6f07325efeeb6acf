/*
 * The grpc.Process and grpc.Spec cc-agent-ctl sends, built from the options the way a shim
 * builds them from config.json: the default mounts, namespaces, masked and read-only paths,
 * and what the options add (env, caps, rlimits, mounts, annotations, sysctls, resources, a
 * seccomp errno rule). Out of memory ends the client (ctl_calloc, ctl_strdup).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/ctl/ctl.h"

static Grpc__Mount *mount_new(const char *dst, const char *src, const char *type, const char *opts)
{
        Grpc__Mount *m = ctl_calloc(1, sizeof(*m));
        grpc__mount__init(m);
        m->destination = ctl_strdup(dst);
        m->source = ctl_strdup(src);
        m->type = ctl_strdup(type);
        char *o = ctl_strdup(opts), *save = NULL;
        m->options = ctl_calloc(16, sizeof(char *));
        for (char *t = strtok_r(o, ",", &save); t && m->n_options < 16;
             t = strtok_r(NULL, ",", &save))
                m->options[m->n_options++] = ctl_strdup(t);
        free(o);
        return m;
}

static char **strv(const char *const *v, size_t n)
{
        char **out = ctl_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                out[i] = ctl_strdup(v[i]);
        return out;
}

Grpc__Process *ctl_process_new(const struct opts *o)
{
        Grpc__Process *p = ctl_calloc(1, sizeof(*p));
        grpc__process__init(p);
        p->terminal = o->tty;
        if (o->rows) {
                p->consolesize = ctl_calloc(1, sizeof(*p->consolesize));
                grpc__box__init(p->consolesize);
                p->consolesize->height = o->rows;
                p->consolesize->width = o->cols;
        }
        p->user = ctl_calloc(1, sizeof(*p->user));
        grpc__user__init(p->user);
        if (o->user) {
                unsigned uid = 0, gid = 0;
                char extra[256] = "";
                sscanf(o->user, "%u:%u:%255s", &uid, &gid, extra);
                p->user->uid = uid;
                p->user->gid = gid;
                p->user->additionalgids = ctl_calloc(16, sizeof(uint32_t));
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
        p->cwd = ctl_strdup(o->cwd ? o->cwd : "/");
        if (o->caps_set) {
                Grpc__LinuxCapabilities *c = ctl_calloc(1, sizeof(*c));
                grpc__linux_capabilities__init(c);
                c->bounding = strv(o->caps, o->n_caps);
                c->n_bounding = o->n_caps;
                c->effective = strv(o->caps, o->n_caps);
                c->n_effective = o->n_caps;
                c->permitted = strv(o->caps, o->n_caps);
                c->n_permitted = o->n_caps;
                p->capabilities = c;
        }
        p->rlimits = ctl_calloc(o->n_rlimits + 1, sizeof(*p->rlimits));
        for (size_t i = 0; i < o->n_rlimits; i++) {
                char type[64];
                unsigned long long soft = 0, hard = 0;
                if (sscanf(o->rlimits[i], "%63[^:]:%llu:%llu", type, &soft, &hard) != 3) {
                        fprintf(stderr, "bad --rlimit %s (TYPE:SOFT:HARD)\n", o->rlimits[i]);
                        exit(2);
                }
                Grpc__POSIXRlimit *l = ctl_calloc(1, sizeof(*l));
                grpc__posixrlimit__init(l);
                l->type = ctl_strdup(type);
                l->soft = soft;
                l->hard = hard;
                p->rlimits[p->n_rlimits++] = l;
        }
        p->nonewprivileges = o->no_new_privs;
        return p;
}

/* --device SERIAL:PATH[:integrity] split; exits 2 on a malformed one. */
static void device_arg(const char *arg, char *serial, char *path, bool *integrity)
{
        char opt[32] = "";
        if (sscanf(arg, "%63[^:]:%255[^:]:%31s", serial, path, opt) < 2 ||
            (opt[0] && strcmp(opt, "integrity") != 0)) {
                fprintf(stderr, "bad --device %s (SERIAL:PATH[:integrity])\n", arg);
                exit(2);
        }
        *integrity = opt[0] != '\0';
}

/* The linux.devices entries and resources rules of --device, with made-up host numbers. */
static void spec_devices(Grpc__Linux *l, const struct opts *o)
{
        Grpc__LinuxResources *res = l->resources;
        l->devices = ctl_calloc(o->n_devices + 1, sizeof(*l->devices));
        res->devices = ctl_calloc(o->n_devices + 1, sizeof(*res->devices));
        for (size_t i = 0; i < o->n_devices; i++) {
                char serial[64], path[256];
                bool integrity;
                device_arg(o->devices[i], serial, path, &integrity);
                Grpc__LinuxDevice *d = ctl_calloc(1, sizeof(*d));
                grpc__linux_device__init(d);
                d->path = ctl_strdup(path);
                d->type = ctl_strdup("b");
                d->major = 8;
                d->minor = 16 * (int64_t)(i + 1);
                d->filemode = 0660;
                l->devices[l->n_devices++] = d;
                Grpc__LinuxDeviceCgroup *c = ctl_calloc(1, sizeof(*c));
                grpc__linux_device_cgroup__init(c);
                c->allow = true;
                c->type = ctl_strdup("b");
                c->major = d->major;
                c->minor = d->minor;
                c->access = ctl_strdup("rwm");
                res->devices[res->n_devices++] = c;
        }
}

Grpc__Device **ctl_devices_new(const struct opts *o)
{
        if (!o->n_devices)
                return NULL;
        Grpc__Device **v = ctl_calloc(o->n_devices + 1, sizeof(*v));
        for (size_t i = 0; i < o->n_devices; i++) {
                char serial[64], path[256];
                bool integrity;
                device_arg(o->devices[i], serial, path, &integrity);
                Grpc__Device *d = v[i] = ctl_calloc(1, sizeof(*d));
                grpc__device__init(d);
                d->type = ctl_strdup("blk");
                d->id = ctl_strdup(serial);
                d->container_path = ctl_strdup(path);
                if (integrity) {
                        d->options = ctl_calloc(1, sizeof(char *));
                        d->options[d->n_options++] = ctl_strdup("integrity");
                }
        }
        return v;
}

Grpc__Spec *ctl_spec_new(const struct opts *o)
{
        Grpc__Spec *s = ctl_calloc(1, sizeof(*s));
        grpc__spec__init(s);
        s->version = ctl_strdup("1.1.0");
        s->process = ctl_process_new(o);
        s->root = ctl_calloc(1, sizeof(*s->root));
        grpc__root__init(s->root);
        s->root->path = ctl_strdup(o->rootfs ? o->rootfs : "");
        s->root->readonly = o->readonly;
        s->hostname = ctl_strdup(o->hostname ? o->hostname : "");
        s->mounts = ctl_calloc(16 + MAX_LIST, sizeof(*s->mounts));
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
        s->annotations = ctl_calloc(s->n_annotations + 1, sizeof(*s->annotations));
        for (size_t i = 0; i < s->n_annotations; i++) {
                Grpc__Spec__AnnotationsEntry *e = ctl_calloc(1, sizeof(*e));
                grpc__spec__annotations_entry__init(e);
                if (i < o->n_annotations) {
                        char *kv = ctl_strdup(o->annotations[i]), *eq = strchr(kv, '=');
                        if (eq)
                                *eq++ = '\0';
                        e->key = kv;
                        e->value = ctl_strdup(eq ? eq : "");
                } else {
                        e->key = ctl_strdup("io.kubernetes.cri.container-type");
                        e->value = ctl_strdup("sandbox");
                }
                s->annotations[i] = e;
        }
        Grpc__Linux *l = ctl_calloc(1, sizeof(*l));
        grpc__linux__init(l);
        static const char *const ns[] = {"mount", "uts", "ipc", "pid"};
        l->namespaces = ctl_calloc(4, sizeof(*l->namespaces));
        for (size_t i = 0; i < 4; i++) {
                if ((o->no_pidns && strcmp(ns[i], "pid") == 0) ||
                    (o->no_ipcns && strcmp(ns[i], "ipc") == 0))
                        continue;
                Grpc__LinuxNamespace *n = ctl_calloc(1, sizeof(*n));
                grpc__linux_namespace__init(n);
                n->type = ctl_strdup(ns[i]);
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
                l->sysctl = ctl_calloc(o->n_sysctls, sizeof(*l->sysctl));
                for (size_t i = 0; i < o->n_sysctls; i++) {
                        Grpc__Linux__SysctlEntry *e = ctl_calloc(1, sizeof(*e));
                        grpc__linux__sysctl_entry__init(e);
                        char *kv = ctl_strdup(o->sysctls[i]), *eq = strchr(kv, '=');
                        if (eq)
                                *eq++ = '\0';
                        e->key = kv;
                        e->value = ctl_strdup(eq ? eq : "");
                        l->sysctl[l->n_sysctl++] = e;
                }
        }
        if (o->memory || o->pids || o->n_devices) {
                l->resources = ctl_calloc(1, sizeof(*l->resources));
                grpc__linux_resources__init(l->resources);
                spec_devices(l, o);
                if (o->memory) {
                        l->resources->memory = ctl_calloc(1, sizeof(Grpc__LinuxMemory));
                        grpc__linux_memory__init(l->resources->memory);
                        l->resources->memory->limit = o->memory;
                        l->resources->memory->swap = o->memory;
                }
                if (o->pids) {
                        l->resources->pids = ctl_calloc(1, sizeof(Grpc__LinuxPids));
                        grpc__linux_pids__init(l->resources->pids);
                        l->resources->pids->limit = o->pids;
                }
        }
        if (o->n_seccomp) {
                Grpc__LinuxSeccomp *sc = ctl_calloc(1, sizeof(*sc));
                grpc__linux_seccomp__init(sc);
                sc->defaultaction = ctl_strdup("SCMP_ACT_ALLOW");
                sc->syscalls = ctl_calloc(1, sizeof(*sc->syscalls));
                Grpc__LinuxSyscall *rule = ctl_calloc(1, sizeof(*rule));
                grpc__linux_syscall__init(rule);
                rule->names = strv(o->seccomp_errno, o->n_seccomp);
                rule->n_names = o->n_seccomp;
                rule->action = ctl_strdup("SCMP_ACT_ERRNO");
                rule->errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
                rule->errnoret = 1; /* EPERM */
                sc->syscalls[0] = rule;
                sc->n_syscalls = 1;
                l->seccomp = sc;
        }
        s->linux_ = l;
        return s;
}
