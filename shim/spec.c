/*
 * OCI runtime spec (config.json, JSON) -> the agent's grpc.Spec (kata/oci.proto), and the
 * classification of a task's rootfs mounts.
 *
 * The guest cannot see the host: everything in the spec that names host objects is dropped
 * here (hooks run host binaries; devices are host nodes, except the block devices hot-plugged
 * into the VM (devices.c); namespace paths are host paths; the
 * network namespace is the VM's; the cgroup path is the host's hierarchy). Host bind mounts
 * cannot be honoured either, except small files the pod needs (/etc/hosts, /etc/resolv.conf,
 * /etc/hostname, the termination log, secrets and config maps): those are listed for the
 * caller to copy into the guest with CopyFile, and the mount's source is rewritten to the copy.
 *
 * Every allocation below is plain malloc so that protobuf_c_message_free_unpacked(spec, NULL)
 * frees the whole tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"

#include "shim/shim.h"

#define MAX_LIST        4096
#define MAX_SMALL_FILE  (1u << 20)

static struct json_object *member(struct json_object *o, const char *key, enum json_type type)
{
        struct json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* A string member or protobuf-c's empty string (so that free_unpacked skips it). */
static int set_str(struct json_object *o, const char *key, char **dst)
{
        struct json_object *v = member(o, key, json_type_string);
        if (!v)
                return 0;
        char *s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        *dst = s;
        return 0;
}

static int64_t int_of(struct json_object *o, const char *key, int64_t dflt)
{
        struct json_object *v = member(o, key, json_type_int);
        return v ? json_object_get_int64(v) : dflt;
}

static uint64_t uint_of(struct json_object *o, const char *key)
{
        struct json_object *v = member(o, key, json_type_int);
        return v ? json_object_get_uint64(v) : 0;
}

/* A JSON array of strings -> (char **, n); absent = empty. */
static int strv_of(struct json_object *o, const char *key, const char *what, char ***ret,
                   size_t *ret_n, struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        struct json_object *a = NULL;
        if (!o || !json_object_object_get_ex(o, key, &a) || json_object_is_type(a, json_type_null))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return cc_error_set(err, EINVAL, "%s must be an array", what);
        size_t n = json_object_array_length(a);
        if (n > MAX_LIST)
                return cc_error_set(err, EINVAL, "%s has more than %d entries", what, MAX_LIST);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(a, i);
                if (!json_object_is_type(e, json_type_string) ||
                    !(v[i] = strdup(json_object_get_string(e)))) {
                        cc_strv_free(v);
                        return cc_error_set(err, EINVAL, "%s[%zu] must be a string", what, i);
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

#define NEW(type, init)                                                                            \
        ({                                                                                         \
                type *_m = malloc(sizeof(type));                                                   \
                if (_m)                                                                            \
                        init(_m);                                                                  \
                _m;                                                                                \
        })

static int caps_from(struct json_object *c, Grpc__LinuxCapabilities **ret, struct cc_error **err)
{
        Grpc__LinuxCapabilities *out = NEW(Grpc__LinuxCapabilities, grpc__linux_capabilities__init);
        if (!out)
                return -ENOMEM;
        *ret = out;
        int r;
        if ((r = strv_of(c, "bounding", "capabilities.bounding", &out->bounding, &out->n_bounding,
                         err)) < 0 ||
            (r = strv_of(c, "effective", "capabilities.effective", &out->effective,
                         &out->n_effective, err)) < 0 ||
            (r = strv_of(c, "inheritable", "capabilities.inheritable", &out->inheritable,
                         &out->n_inheritable, err)) < 0 ||
            (r = strv_of(c, "permitted", "capabilities.permitted", &out->permitted,
                         &out->n_permitted, err)) < 0 ||
            (r = strv_of(c, "ambient", "capabilities.ambient", &out->ambient, &out->n_ambient,
                         err)) < 0)
                return r;
        return 0;
}

static int process_fill(struct json_object *p, Grpc__Process *out, struct cc_error **err)
{
        int r;
        struct json_object *v;
        out->terminal = (v = member(p, "terminal", json_type_boolean)) && json_object_get_boolean(v);
        if ((v = member(p, "consoleSize", json_type_object))) {
                if (!(out->consolesize = NEW(Grpc__Box, grpc__box__init)))
                        return -ENOMEM;
                out->consolesize->height = (uint32_t)uint_of(v, "height");
                out->consolesize->width = (uint32_t)uint_of(v, "width");
        }
        if (!(out->user = NEW(Grpc__User, grpc__user__init)))
                return -ENOMEM;
        if ((v = member(p, "user", json_type_object))) {
                out->user->uid = (uint32_t)uint_of(v, "uid");
                out->user->gid = (uint32_t)uint_of(v, "gid");
                struct json_object *g = member(v, "additionalGids", json_type_array);
                size_t n = g ? json_object_array_length(g) : 0;
                if (n > 256)
                        return cc_error_set(err, EINVAL, "process.user.additionalGids is too long");
                if (n && !(out->user->additionalgids = calloc(n, sizeof(uint32_t))))
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        out->user->additionalgids[i] =
                                (uint32_t)json_object_get_uint64(json_object_array_get_idx(g, i));
                out->user->n_additionalgids = n;
                if ((r = set_str(v, "username", &out->user->username)) < 0)
                        return r;
        }
        if ((r = strv_of(p, "args", "process.args", &out->args, &out->n_args, err)) < 0 ||
            (r = strv_of(p, "env", "process.env", &out->env, &out->n_env, err)) < 0 ||
            (r = set_str(p, "cwd", &out->cwd)) < 0)
                return r;
        if (out->n_args == 0)
                return cc_error_set(err, EINVAL, "process.args is empty");
        if ((v = member(p, "capabilities", json_type_object)) &&
            (r = caps_from(v, &out->capabilities, err)) < 0)
                return r;
        struct json_object *rl = member(p, "rlimits", json_type_array);
        size_t n = rl ? json_object_array_length(rl) : 0;
        if (n > 64)
                return cc_error_set(err, EINVAL, "process.rlimits is too long");
        if (n && !(out->rlimits = calloc(n, sizeof(*out->rlimits))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(rl, i);
                Grpc__POSIXRlimit *l = NEW(Grpc__POSIXRlimit, grpc__posixrlimit__init);
                if (!l)
                        return -ENOMEM;
                out->rlimits[out->n_rlimits++] = l;
                if ((r = set_str(e, "type", &l->type)) < 0)
                        return r;
                l->hard = uint_of(e, "hard");
                l->soft = uint_of(e, "soft");
        }
        out->nonewprivileges =
                (v = member(p, "noNewPrivileges", json_type_boolean)) && json_object_get_boolean(v);
        out->oomscoreadj = int_of(p, "oomScoreAdj", 0);
        /* apparmorProfile and selinuxLabel name host policies: the guest has neither. */
        return 0;
}

int shim_process_from_oci(struct json_object *p, Grpc__Process **ret, struct cc_error **err)
{
        if (!p || !json_object_is_type(p, json_type_object))
                return cc_error_set(err, EINVAL, "the spec has no process object");
        Grpc__Process *out = NEW(Grpc__Process, grpc__process__init);
        if (!out)
                return -ENOMEM;
        int r = process_fill(p, out, err);
        if (r < 0) {
                protobuf_c_message_free_unpacked(&out->base, NULL);
                return r;
        }
        *ret = out;
        return 0;
}

int shim_resources_from_oci(struct json_object *res, Grpc__LinuxResources **ret,
                            struct cc_error **err)
{
        Grpc__LinuxResources *out = NEW(Grpc__LinuxResources, grpc__linux_resources__init);
        if (!out)
                return -ENOMEM;
        struct json_object *v;
        if ((v = member(res, "memory", json_type_object))) {
                out->memory = NEW(Grpc__LinuxMemory, grpc__linux_memory__init);
                if (!out->memory)
                        goto oom;
                out->memory->limit = int_of(v, "limit", 0);
                out->memory->reservation = int_of(v, "reservation", 0);
                out->memory->swap = int_of(v, "swap", 0);
        }
        if ((v = member(res, "cpu", json_type_object))) {
                out->cpu = NEW(Grpc__LinuxCPU, grpc__linux_cpu__init);
                if (!out->cpu)
                        goto oom;
                out->cpu->shares = uint_of(v, "shares");
                out->cpu->quota = int_of(v, "quota", 0);
                out->cpu->period = uint_of(v, "period");
                /* cpus/mems name host CPUs and nodes: not meaningful in the VM. */
        }
        if ((v = member(res, "pids", json_type_object))) {
                out->pids = NEW(Grpc__LinuxPids, grpc__linux_pids__init);
                if (!out->pids)
                        goto oom;
                out->pids->limit = int_of(v, "limit", 0);
        }
        *ret = out;
        return 0;
oom:
        protobuf_c_message_free_unpacked(&out->base, NULL);
        return cc_error_set(err, ENOMEM, "out of memory");
}

static int seccomp_from(struct json_object *s, Grpc__LinuxSeccomp **ret, struct cc_error **err)
{
        Grpc__LinuxSeccomp *out = NEW(Grpc__LinuxSeccomp, grpc__linux_seccomp__init);
        if (!out)
                return -ENOMEM;
        *ret = out;
        int r;
        if ((r = set_str(s, "defaultAction", &out->defaultaction)) < 0 ||
            (r = strv_of(s, "architectures", "seccomp.architectures", &out->architectures,
                         &out->n_architectures, err)) < 0 ||
            (r = strv_of(s, "flags", "seccomp.flags", &out->flags, &out->n_flags, err)) < 0)
                return r;
        struct json_object *sys = member(s, "syscalls", json_type_array);
        size_t n = sys ? json_object_array_length(sys) : 0;
        if (n > MAX_LIST)
                return cc_error_set(err, EINVAL, "seccomp.syscalls is too long");
        if (n && !(out->syscalls = calloc(n, sizeof(*out->syscalls))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(sys, i);
                Grpc__LinuxSyscall *sc = NEW(Grpc__LinuxSyscall, grpc__linux_syscall__init);
                if (!sc)
                        return -ENOMEM;
                out->syscalls[out->n_syscalls++] = sc;
                if ((r = strv_of(e, "names", "seccomp.syscalls[].names", &sc->names,
                                 &sc->n_names, err)) < 0 ||
                    (r = set_str(e, "action", &sc->action)) < 0)
                        return r;
                if (member(e, "errnoRet", json_type_int)) {
                        sc->errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
                        sc->errnoret = (uint32_t)uint_of(e, "errnoRet");
                }
                struct json_object *args = member(e, "args", json_type_array);
                size_t na = args ? json_object_array_length(args) : 0;
                if (na > 6)
                        return cc_error_set(err, EINVAL, "seccomp rule has more than 6 args");
                if (na && !(sc->args = calloc(na, sizeof(*sc->args))))
                        return -ENOMEM;
                for (size_t j = 0; j < na; j++) {
                        struct json_object *a = json_object_array_get_idx(args, j);
                        Grpc__LinuxSeccompArg *ga =
                                NEW(Grpc__LinuxSeccompArg, grpc__linux_seccomp_arg__init);
                        if (!ga)
                                return -ENOMEM;
                        sc->args[sc->n_args++] = ga;
                        ga->index = uint_of(a, "index");
                        ga->value = uint_of(a, "value");
                        ga->valuetwo = uint_of(a, "valueTwo");
                        if ((r = set_str(a, "op", &ga->op)) < 0)
                                return r;
                }
        }
        return 0;
}

static bool has_option(struct json_object *m, const char *opt)
{
        struct json_object *o = member(m, "options", json_type_array);
        for (size_t i = 0; o && i < json_object_array_length(o); i++)
                if (cc_streq(json_object_get_string(json_object_array_get_idx(o, i)), opt))
                        return true;
        return false;
}

/* Host files a pod needs inside its containers; small, copied rather than shared. */
static bool copyable_bind(const char *dst, const char *src)
{
        static const char *const dsts[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname",
                                           "/dev/termination-log"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(dsts); i++)
                if (cc_streq(dst, dsts[i]))
                        return true;
        return strstr(src, "/volumes/kubernetes.io~secret/") ||
               strstr(src, "/volumes/kubernetes.io~configmap/") ||
               strstr(src, "/volumes/kubernetes.io~projected/") ||
               strstr(src, "/volumes/kubernetes.io~downward-api/");
}

static const char *const guest_fs_types[] = {"proc",   "sysfs",  "tmpfs",  "devpts",
                                             "mqueue", "cgroup", "cgroup2"};

static int mounts_add(struct json_object *spec, const char *cid, Grpc__Spec *out,
                      struct shim_file_copy **files, size_t *n_files, FILE *dropped,
                      size_t *ret_n_dropped, struct cc_error **err)
{
        size_t n_dropped = 0;
        struct json_object *ms = member(spec, "mounts", json_type_array);
        size_t n = ms ? json_object_array_length(ms) : 0;
        if (n > 512)
                return cc_error_set(err, EINVAL, "the spec has more than 512 mounts");
        if (n && !(out->mounts = calloc(n, sizeof(*out->mounts))))
                return -ENOMEM;
        if (n && !(*files = calloc(n, sizeof(**files))))
                return -ENOMEM;
        int r;
        for (size_t i = 0; i < n; i++) {
                struct json_object *m = json_object_array_get_idx(ms, i);
                const char *dst = json_object_get_string(member(m, "destination", json_type_string));
                const char *src = json_object_get_string(member(m, "source", json_type_string));
                const char *type = json_object_get_string(member(m, "type", json_type_string));
                if (!dst)
                        return cc_error_set(err, EINVAL, "mounts[%zu] has no destination", i);
                bool bind = cc_streq(type, "bind") || has_option(m, "bind") ||
                            has_option(m, "rbind");
                char *guest_src = NULL;
                _cleanup_free_ char *volume_src = NULL;
                if (bind && (r = shim_emptydir_guest_path(src, &volume_src)) < 0)
                        return r;
                if (bind && volume_src) {
                        /* An emptyDir: the pod's volume in the guest (storage.c). */
                        guest_src = volume_src;
                } else if (bind) {
                        struct stat st;
                        if (!src || !copyable_bind(dst, src) || stat(src, &st) < 0 ||
                            (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) ||
                            (S_ISREG(st.st_mode) && st.st_size > MAX_SMALL_FILE)) {
                                if (dropped)
                                        fprintf(dropped, "%s%s -> %s", n_dropped++ ? ", " : "",
                                                src ? src : "?", dst);
                                continue;
                        }
                        if (asprintf(&guest_src, "%s/%s-files/%zu", SHIM_GUEST_CONTAINERS_DIR,
                                     cid, *n_files) < 0)
                                return -ENOMEM;
                        (*files)[*n_files].guest_path = guest_src;
                        if (!((*files)[*n_files].host_path = strdup(src)))
                                return -ENOMEM;
                        (*n_files)++;
                } else {
                        bool ok = false;
                        for (size_t k = 0; k < CC_ARRAY_SIZE(guest_fs_types); k++)
                                ok = ok || cc_streq(type, guest_fs_types[k]);
                        if (!ok) {
                                if (dropped)
                                        fprintf(dropped, "%s%s (type %s) -> %s",
                                                n_dropped++ ? ", " : "", src ? src : "?",
                                                type ? type : "?", dst);
                                continue;
                        }
                }
                Grpc__Mount *gm = NEW(Grpc__Mount, grpc__mount__init);
                if (!gm)
                        return -ENOMEM;
                out->mounts[out->n_mounts++] = gm;
                if (!(gm->destination = strdup(dst)))
                        return -ENOMEM;
                if (guest_src) {
                        if (!(gm->source = strdup(guest_src)) || !(gm->type = strdup("bind")))
                                return -ENOMEM;
                } else if ((r = set_str(m, "source", &gm->source)) < 0 ||
                           (r = set_str(m, "type", &gm->type)) < 0) {
                        return r;
                }
                if ((r = strv_of(m, "options", "mount options", &gm->options, &gm->n_options,
                                 err)) < 0)
                        return r;
        }
        *ret_n_dropped = n_dropped;
        return 0;
}

/* The spec's mounts; the host mounts the guest cannot see are dropped and named in one
 * warning, so that a pod author finds every one of them in one place. */
static int mounts_from(struct json_object *spec, const char *cid, Grpc__Spec *out,
                       struct shim_file_copy **files, size_t *n_files, struct cc_error **err)
{
        _cleanup_free_ char *list = NULL;
        size_t len = 0, n_dropped = 0;
        FILE *dropped = open_memstream(&list, &len);
        int r = mounts_add(spec, cid, out, files, n_files, dropped, &n_dropped, err);
        if (dropped)
                fclose(dropped);
        if (r == 0 && n_dropped)
                cc_log_warn("container %s: %zu host mount%s not visible in the guest (no host "
                            "directory is shared with the VM; emptyDirs are guest volumes), "
                            "dropped: %s",
                            cid, n_dropped, n_dropped == 1 ? " is" : "s are", list ? list : "?");
        return r;
}

/* linux.devices of type "b": the disks devices.c hot-plugs; the agent finds each by the
 * serial CreateContainer names and rewrites the entry to the guest's numbers. Every other
 * device is a host node (devices.c refuses those a guest does not have itself). */
static int block_devices_from(struct json_object *l, Grpc__Linux *gl)
{
        struct json_object *devs = member(l, "devices", json_type_array);
        size_t n = devs ? json_object_array_length(devs) : 0;
        if (n > MAX_LIST)
                n = MAX_LIST;
        for (size_t i = 0; i < n; i++) {
                struct json_object *d = json_object_array_get_idx(devs, i);
                const char *type = json_object_get_string(member(d, "type", json_type_string));
                if (!type || strcmp(type, "b") != 0)
                        continue;
                if (!gl->devices && !(gl->devices = calloc(n, sizeof(*gl->devices))))
                        return -ENOMEM;
                Grpc__LinuxDevice *gd = NEW(Grpc__LinuxDevice, grpc__linux_device__init);
                if (!gd)
                        return -ENOMEM;
                gl->devices[gl->n_devices++] = gd;
                int r;
                if ((r = set_str(d, "path", &gd->path)) < 0 ||
                    (r = set_str(d, "type", &gd->type)) < 0)
                        return r;
                gd->major = int_of(d, "major", 0);
                gd->minor = int_of(d, "minor", 0);
                gd->filemode = (uint32_t)uint_of(d, "fileMode");
                gd->uid = (uint32_t)uint_of(d, "uid");
                gd->gid = (uint32_t)uint_of(d, "gid");
        }
        return 0;
}

static int linux_from(struct json_object *l, Grpc__Spec *out, struct cc_error **err)
{
        Grpc__Linux *gl = NEW(Grpc__Linux, grpc__linux__init);
        if (!gl)
                return -ENOMEM;
        out->linux_ = gl;
        int r;
        struct json_object *v;
        struct json_object *ns = member(l, "namespaces", json_type_array);
        size_t n = ns ? json_object_array_length(ns) : 0;
        if (n > 16)
                return cc_error_set(err, EINVAL, "linux.namespaces is too long");
        if (n && !(gl->namespaces = calloc(n, sizeof(*gl->namespaces))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *type = json_object_get_string(
                        member(json_object_array_get_idx(ns, i), "type", json_type_string));
                /* The VM is the pod's network; a namespace path names a host namespace. */
                if (!type || cc_streq(type, "network"))
                        continue;
                Grpc__LinuxNamespace *gn = NEW(Grpc__LinuxNamespace, grpc__linux_namespace__init);
                if (!gn || !(gn->type = strdup(type))) {
                        free(gn);
                        return -ENOMEM;
                }
                gl->namespaces[gl->n_namespaces++] = gn;
                /* containerd's path (the sandbox task's /proc/<pid>/ns/<type>) means "the
                 * pod's": the guest agent joins its sandbox's namespace. Only that much
                 * crosses, never the host path. */
                const char *path = json_object_get_string(
                        member(json_object_array_get_idx(ns, i), "path", json_type_string));
                if (!cc_isempty(path) && !(gn->path = strdup("sandbox")))
                        return -ENOMEM;
        }
        if ((r = strv_of(l, "maskedPaths", "linux.maskedPaths", &gl->maskedpaths,
                         &gl->n_maskedpaths, err)) < 0 ||
            (r = strv_of(l, "readonlyPaths", "linux.readonlyPaths", &gl->readonlypaths,
                         &gl->n_readonlypaths, err)) < 0)
                return r;
        if ((v = member(l, "resources", json_type_object)) &&
            (r = shim_resources_from_oci(v, &gl->resources, err)) < 0)
                return r;
        if ((v = member(l, "seccomp", json_type_object)) && (r = seccomp_from(v, &gl->seccomp, err)) < 0)
                return r;
        if ((v = member(l, "sysctl", json_type_object))) {
                size_t ns_ = (size_t)json_object_object_length(v);
                if (ns_ > 256)
                        return cc_error_set(err, EINVAL, "linux.sysctl is too long");
                if (ns_ && !(gl->sysctl = calloc(ns_, sizeof(*gl->sysctl))))
                        return -ENOMEM;
                json_object_object_foreach(v, key, val)
                {
                        if (!json_object_is_type(val, json_type_string))
                                continue;
                        Grpc__Linux__SysctlEntry *e =
                                NEW(Grpc__Linux__SysctlEntry, grpc__linux__sysctl_entry__init);
                        if (!e)
                                return -ENOMEM;
                        gl->sysctl[gl->n_sysctl++] = e;
                        if (!(e->key = strdup(key)) ||
                            !(e->value = strdup(json_object_get_string(val))))
                                return -ENOMEM;
                }
        }
        if ((r = block_devices_from(l, gl)) < 0)
                return r;
        /* Other devices (host nodes), cgroupsPath (host hierarchy), namespace paths, intelRdt,
         * mountLabel and rootfsPropagation are host matters: dropped. */
        return 0;
}

static int spec_fill(struct json_object *spec, const char *cid, const char *guest_root,
                     Grpc__Spec *out, struct shim_file_copy **files, size_t *n_files,
                     struct cc_error **err)
{
        int r;
        struct json_object *v;
        if ((r = set_str(spec, "ociVersion", &out->version)) < 0 ||
            (r = set_str(spec, "hostname", &out->hostname)) < 0)
                return r;
        if (!(out->process = NEW(Grpc__Process, grpc__process__init)))
                return -ENOMEM;
        if (!(v = member(spec, "process", json_type_object)))
                return cc_error_set(err, EINVAL, "config.json has no process");
        if ((r = process_fill(v, out->process, err)) < 0)
                return r;
        if (!(out->root = NEW(Grpc__Root, grpc__root__init)))
                return -ENOMEM;
        if (guest_root && !(out->root->path = strdup(guest_root)))
                return -ENOMEM;
        out->root->readonly = (v = member(member(spec, "root", json_type_object), "readonly",
                                          json_type_boolean)) &&
                              json_object_get_boolean(v);
        if ((r = mounts_from(spec, cid, out, files, n_files, err)) < 0)
                return r;
        if ((v = member(spec, "annotations", json_type_object))) {
                size_t n = (size_t)json_object_object_length(v);
                if (n > 1024)
                        return cc_error_set(err, EINVAL, "too many annotations");
                if (n && !(out->annotations = calloc(n, sizeof(*out->annotations))))
                        return -ENOMEM;
                json_object_object_foreach(v, key, val)
                {
                        if (!json_object_is_type(val, json_type_string))
                                continue;
                        Grpc__Spec__AnnotationsEntry *e =
                                NEW(Grpc__Spec__AnnotationsEntry, grpc__spec__annotations_entry__init);
                        if (!e)
                                return -ENOMEM;
                        out->annotations[out->n_annotations++] = e;
                        if (!(e->key = strdup(key)) ||
                            !(e->value = strdup(json_object_get_string(val))))
                                return -ENOMEM;
                }
        }
        if ((v = member(spec, "linux", json_type_object)) && (r = linux_from(v, out, err)) < 0)
                return r;
        /* hooks: host binaries, never run for a VM-isolated container. */
        return 0;
}

void shim_file_copies_free(struct shim_file_copy *f, size_t n)
{
        for (size_t i = 0; f && i < n; i++) {
                free(f[i].host_path);
                free(f[i].guest_path);
        }
        free(f);
}

int shim_spec_from_oci(struct json_object *spec, const char *cid, const char *guest_root,
                       Grpc__Spec **ret, struct shim_file_copy **ret_files, size_t *ret_n_files,
                       struct cc_error **err)
{
        if (!json_object_is_type(spec, json_type_object))
                return cc_error_set(err, EINVAL, "config.json is not an object");
        Grpc__Spec *out = NEW(Grpc__Spec, grpc__spec__init);
        if (!out)
                return -ENOMEM;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        int r = spec_fill(spec, cid, guest_root, out, &files, &n_files, err);
        if (r < 0) {
                protobuf_c_message_free_unpacked(&out->base, NULL);
                shim_file_copies_free(files, n_files);
                return r == -ENOMEM ? cc_error_set(err, ENOMEM, "out of memory") : r;
        }
        *ret = out;
        *ret_files = files;
        *ret_n_files = n_files;
        return 0;
}

/* ---- rootfs ------------------------------------------------------------------------------ */

static int b64_decode(const char *in, unsigned char **ret, size_t *ret_len)
{
        size_t len = strlen(in);
        if (len == 0 || len % 4 != 0 || len > (1u << 20))
                return -EINVAL;
        unsigned char *out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
        if (n < 0) {
                free(out);
                return -EINVAL;
        }
        /* EVP_DecodeBlock counts the '=' padding as zero bytes. */
        size_t pad = (in[len - 1] == '=') + (in[len - 2] == '=');
        *ret_len = (size_t)n - pad;
        out[*ret_len] = '\0';
        *ret = out;
        return 0;
}

/*
 * Guest-pull forms (reference snapshotter.md 4.1, 4.2):
 *  - nydus / Kata: one mount of type fuse.nydus-overlayfs (or any "fuse.*nydus-overlayfs*")
 *    carrying `io.katacontainers.volume=<base64 JSON>` with volume_type "image_guest_pull";
 *  - any mount with that option (our snapshotter emits the same volume option).
 */
/* The digest containerd resolved the image to: the CRI snapshot label the snapshotter copies
 * into image_pull.metadata. NULL when absent or not a sha256 digest. */
static const char *manifest_digest(struct json_object *vol)
{
        struct json_object *pull = member(vol, "image_pull", json_type_object);
        const char *d = json_object_get_string(member(member(pull, "metadata", json_type_object),
                                                      "containerd.io/snapshot/cri.manifest-digest",
                                                      json_type_string));
        if (!d || strlen(d) != 71 || strncmp(d, "sha256:", 7) != 0 ||
            strspn(d + 7, "0123456789abcdef") != 64)
                return NULL;
        return d;
}

/*
 * The reference the guest pulls: `src` pinned to the digest containerd resolved, so that the
 * guest runs the image CRI reports even if the registry moves the tag in between (the image
 * library fetches manifests/<digest> and checks the bytes against it; a registry that answers
 * other bytes fails the pull naming both digests). A reference that names a digest already is
 * pinned as it is: containerd's label holds the platform manifest's digest, and the reference
 * may name the image index that leads to it.
 */
static int pin_digest(const char *src, const char *digest, char **ret)
{
        if (!digest || strchr(src, '@'))
                *ret = strdup(src);
        else if (asprintf(ret, "%s@%s", src, digest) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

int shim_rootfs_classify(const struct shim_mount *m, size_t n, enum shim_rootfs_kind *ret,
                         char **ret_image, struct cc_error **err)
{
        static const char volopt[] = "io.katacontainers.volume=";
        *ret_image = NULL;
        if (n == 0) {
                *ret = SHIM_ROOTFS_NONE;
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < m[i].n_options; k++) {
                        const char *o = m[i].options[k];
                        if (strncmp(o, volopt, sizeof(volopt) - 1) != 0)
                                continue;
                        _cleanup_free_ unsigned char *raw = NULL;
                        size_t rawlen = 0;
                        if (b64_decode(o + sizeof(volopt) - 1, &raw, &rawlen) < 0)
                                return cc_error_set(err, EINVAL,
                                                    "rootfs mount: %s is not valid base64",
                                                    "io.katacontainers.volume");
                        _cleanup_json_ struct json_object *vol = NULL;
                        int r = cc_json_parse("io.katacontainers.volume", (const char *)raw,
                                              rawlen, 16, &vol, err);
                        if (r < 0)
                                return r;
                        const char *vt = NULL;
                        if (cc_json_get_string(vol, "volume_type", &vt, err) < 0 || cc_isempty(vt))
                                return cc_error_set(err, EINVAL,
                                                    "rootfs volume has no volume_type");
                        if (strcmp(vt, "image_guest_pull") != 0)
                                return cc_error_set(err, EOPNOTSUPP,
                                                    "rootfs volume type '%s' is not supported "
                                                    "(image_guest_pull)",
                                                    vt);
                        const char *src = NULL;
                        if (cc_json_get_string(vol, "source", &src, NULL) == 0 &&
                            !cc_isempty(src) && strcmp(src, "dummy-image-reference") != 0 &&
                            (r = pin_digest(src, manifest_digest(vol), ret_image)) < 0)
                                return r;
                        *ret = SHIM_ROOTFS_GUEST_PULL;
                        return 0;
                }
        }
        *ret = SHIM_ROOTFS_HOST;
        return 0;
}
