/*
 * agent_spec helpers: freeing, and the name -> number tables every converter needs.
 */
#include "guest-agent/runtime/spec.h"

#include <ctype.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "cc/cleanup.h"
#include "cc/macro.h"

const char *const agent_default_env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};

void agent_process_done(struct agent_process *p)
{
        free(p->additional_gids);
        cc_strv_free(p->args);
        cc_strv_free(p->env);
        free(p->cwd);
        free(p->rlimits);
        *p = (struct agent_process){0};
}

void agent_seccomp_free(struct agent_seccomp *s)
{
        if (!s)
                return;
        cc_strv_free(s->architectures);
        for (size_t i = 0; i < s->n_rules; i++)
                cc_strv_free(s->rules[i].names);
        free(s->rules);
        free(s);
}

void agent_spec_free(struct agent_spec *s)
{
        if (!s)
                return;
        free(s->root_path);
        free(s->hostname);
        for (size_t i = 0; i < s->n_mounts; i++) {
                free(s->mounts[i].destination);
                free(s->mounts[i].source);
                free(s->mounts[i].type);
                free(s->mounts[i].data);
        }
        free(s->mounts);
        agent_process_done(&s->process);
        cc_strv_free(s->masked_paths);
        cc_strv_free(s->readonly_paths);
        free(s->resources.cpuset_cpus);
        free(s->resources.cpuset_mems);
        agent_seccomp_free(s->seccomp);
        for (size_t i = 0; i < s->n_devices; i++) {
                free(s->devices[i].path);
                free(s->devices[i].source);
        }
        free(s->devices);
        free(s);
}

int agent_cap_from_name(const char *name, int *ret)
{
        if (cc_isempty(name) || strlen(name) > 64)
                return -EINVAL;
        /* libcap knows every capability of the kernel it was built for; accept the OCI spelling
         * "CAP_X" and the bare "x" libcap itself prints. */
        char buf[72];
        const char *n = name;
        if (strncasecmp(name, "CAP_", 4) != 0) {
                snprintf(buf, sizeof(buf), "cap_%s", name);
                n = buf;
        }
        cap_value_t v;
        if (cap_from_name(n, &v) < 0 || v < 0 || v > 63)
                return -EINVAL;
        *ret = v;
        return 0;
}

static const struct {
        const char *name;
        int resource;
} rlimit_names[] = {
        {"RLIMIT_AS", RLIMIT_AS},
        {"RLIMIT_CORE", RLIMIT_CORE},
        {"RLIMIT_CPU", RLIMIT_CPU},
        {"RLIMIT_DATA", RLIMIT_DATA},
        {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
        {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_NOFILE", RLIMIT_NOFILE},
        {"RLIMIT_NPROC", RLIMIT_NPROC},
        {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
        {"RLIMIT_RTTIME", RLIMIT_RTTIME},
        {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_STACK", RLIMIT_STACK},
};

int agent_rlimit_from_name(const char *name, int *ret)
{
        for (size_t i = 0; name && i < CC_ARRAY_SIZE(rlimit_names); i++)
                if (strcmp(rlimit_names[i].name, name) == 0) {
                        *ret = rlimit_names[i].resource;
                        return 0;
                }
        return -EINVAL;
}

int agent_seccomp_action_from_name(const char *name, unsigned errno_ret, uint32_t *ret)
{
        if (!name)
                return -EINVAL;
        if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
                *ret = SCMP_ACT_ALLOW;
        else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
                *ret = SCMP_ACT_ERRNO(errno_ret ? (errno_ret & 0xffff) : EPERM);
        else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
                *ret = SCMP_ACT_KILL_THREAD;
        else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
                *ret = SCMP_ACT_TRAP;
        else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
                *ret = SCMP_ACT_TRACE(errno_ret ? (errno_ret & 0xffff) : EPERM);
        else if (strcmp(name, "SCMP_ACT_LOG") == 0)
                *ret = SCMP_ACT_LOG;
        else
                return -EINVAL;
        return 0;
}

int agent_seccomp_op_from_name(const char *name, int *ret)
{
        static const struct {
                const char *name;
                int op;
        } ops[] = {
                {"SCMP_CMP_NE", SCMP_CMP_NE},
                {"SCMP_CMP_LT", SCMP_CMP_LT},
                {"SCMP_CMP_LE", SCMP_CMP_LE},
                {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                {"SCMP_CMP_GE", SCMP_CMP_GE},
                {"SCMP_CMP_GT", SCMP_CMP_GT},
                {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
        };
        for (size_t i = 0; name && i < CC_ARRAY_SIZE(ops); i++)
                if (strcmp(ops[i].name, name) == 0) {
                        *ret = ops[i].op;
                        return 0;
                }
        return -EINVAL;
}

static const struct {
        const char *name;
        bool clear;
        unsigned long flag;
} mount_flags[] = {
        {"ro", false, MS_RDONLY},
        {"rw", true, MS_RDONLY},
        {"nosuid", false, MS_NOSUID},
        {"suid", true, MS_NOSUID},
        {"nodev", false, MS_NODEV},
        {"dev", true, MS_NODEV},
        {"noexec", false, MS_NOEXEC},
        {"exec", true, MS_NOEXEC},
        {"sync", false, MS_SYNCHRONOUS},
        {"async", true, MS_SYNCHRONOUS},
        {"dirsync", false, MS_DIRSYNC},
        {"remount", false, MS_REMOUNT},
        {"mand", false, MS_MANDLOCK},
        {"nomand", true, MS_MANDLOCK},
        {"atime", true, MS_NOATIME},
        {"noatime", false, MS_NOATIME},
        {"diratime", true, MS_NODIRATIME},
        {"nodiratime", false, MS_NODIRATIME},
        {"relatime", false, MS_RELATIME},
        {"norelatime", true, MS_RELATIME},
        {"strictatime", false, MS_STRICTATIME},
        {"nostrictatime", true, MS_STRICTATIME},
};

static const struct {
        const char *name;
        unsigned long flag;
} propagation_flags[] = {
        {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
        {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
        {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
        {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

int agent_mount_parse_options(struct agent_mount *m, char *const *options, size_t n,
                              struct cc_error **err)
{
        size_t cap = 1, used = 0;
        _cleanup_free_ char *data = NULL;
        for (size_t i = 0; i < n; i++) {
                const char *o = options[i];
                bool known = false;
                if (cc_isempty(o))
                        continue;
                if (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0) {
                        m->bind = true;
                        m->flags |= MS_BIND | (o[0] == 'r' ? MS_REC : 0);
                        continue;
                }
                for (size_t j = 0; j < CC_ARRAY_SIZE(mount_flags); j++)
                        if (strcmp(o, mount_flags[j].name) == 0) {
                                if (mount_flags[j].clear)
                                        m->flags &= ~mount_flags[j].flag;
                                else
                                        m->flags |= mount_flags[j].flag;
                                known = true;
                        }
                for (size_t j = 0; !known && j < CC_ARRAY_SIZE(propagation_flags); j++)
                        if (strcmp(o, propagation_flags[j].name) == 0) {
                                m->propagation = propagation_flags[j].flag;
                                known = true;
                        }
                if (known)
                        continue;
                /* Anything else is file-system data ("mode=755", "size=64k", "newinstance"). */
                size_t len = strlen(o);
                if (len > 4096 || strchr(o, ','))
                        return cc_error_set(err, EINVAL, "mount option '%.64s' is invalid", o);
                char *nd = realloc(data, cap + used + len + 1);
                if (!nd)
                        return -ENOMEM;
                data = nd;
                if (used)
                        data[used++] = ',';
                memcpy(data + used, o, len);
                used += len;
                data[used] = '\0';
                cap = 2;
        }
        if (m->bind && (m->flags & MS_RDONLY))
                m->readonly_bind = true;
        free(m->data);
        m->data = TAKE_PTR(data);
        return 0;
}

int agent_spec_pod_namespaces(struct agent_spec *s, bool sandbox_pidns, unsigned sandbox_ns,
                              const char *sandbox_hostname, struct cc_error **err)
{
        unsigned join = s->ns_paths & (AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS);
        if (sandbox_pidns)
                join |= AGENT_NS_PID;
        if (s->sandbox) /* the sandbox (pause) container: the pod's, all it lists */
                join = s->namespaces & sandbox_ns;
        else if (sandbox_ns) {
                join |= s->namespaces & sandbox_ns & AGENT_NS_IPC;
                if ((s->namespaces & sandbox_ns & AGENT_NS_UTS) &&
                    (cc_isempty(s->hostname) || cc_streq(s->hostname, sandbox_hostname)))
                        join |= AGENT_NS_UTS;
        }
        s->sandbox_namespaces = 0;
        if (!join)
                return 0;
        unsigned lacking = join & ~sandbox_ns;
        if (lacking)
                return cc_error_set(err, EINVAL,
                                    "the container joins the pod's %s namespace, but %s",
                                    lacking & AGENT_NS_PID   ? "pid"
                                    : lacking & AGENT_NS_IPC ? "ipc"
                                                             : "uts",
                                    sandbox_ns ? "the pod has none of its own"
                                               : "the pod has no namespaces (no CreateSandbox)");
        s->namespaces |= join;
        s->sandbox_namespaces = join;
        return 0;
}
