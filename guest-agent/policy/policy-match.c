/*
 * The policy over the whole request: CreateContainer, ExecProcess and CopyFile contents
 * against the policy's "containers" and "copy_file" sections (policy.h), and the built-in
 * TEE default. Every refusal is PermissionDenied and says which field broke which rule, so a
 * pod owner can fix the policy or the pod and an operator can tell a refusal from a failure.
 */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>

#include "cc/error.h"
#include "cc/macro.h"

#include "guest-agent/policy/policy-internal.h"
#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/spec.h"

/* runc's, containerd's and CRI-O's default capability set (the OCI runtime-spec example). */
const uint64_t agent_policy_oci_default_caps =
        1ULL << CAP_CHOWN | 1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_FSETID | 1ULL << CAP_FOWNER |
        1ULL << CAP_MKNOD | 1ULL << CAP_NET_RAW | 1ULL << CAP_SETGID | 1ULL << CAP_SETUID |
        1ULL << CAP_SETFCAP | 1ULL << CAP_SETPCAP | 1ULL << CAP_NET_BIND_SERVICE |
        1ULL << CAP_SYS_CHROOT | 1ULL << CAP_KILL | 1ULL << CAP_AUDIT_WRITE;

/* The paths every runtime masks and makes read-only unless a container is privileged: they
 * expose the guest's memory (/proc/kcore), keys, timers, firmware and kernel knobs
 * (/proc/sys: kernel.core_pattern runs a program as the guest's root). */
const char *const agent_policy_default_masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                                   "/sys/firmware", NULL};
const char *const agent_policy_default_readonly[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

/* The TEE default (README "Policy"): containers as a safe pod runs them, no exec, no clock,
 * no device but /dev/trusted_store (encrypted in the guest, and given to no container). */
static const char tee_default_text[] =
        "{\"version\": 2, \"default\": \"allow\", \"set_policy\": \"deny\","
        " \"rules\": ["
        "  {\"name\": \"tee-default-no-exec\", \"requests\": [\"ExecProcess\"],"
        "   \"action\": \"deny\"},"
        "  {\"name\": \"tee-default-guest-clock\", \"requests\": [\"SetGuestDateTime\"],"
        "   \"action\": \"deny\"}],"
        " \"containers\": [{\"name\": \"*\", \"devices\": [\"/dev/trusted_store\"]}]}";

int agent_policy_tee_default(struct agent_policy **ret, struct cc_error **err)
{
        int r = agent_policy_parse(tee_default_text, ret, err);
        if (r >= 0)
                (*ret)->builtin = true;
        return r;
}

bool agent_policy_is_builtin(const struct agent_policy *p)
{
        return p && p->builtin;
}

bool agent_policy_allows_set_policy(const struct agent_policy *p)
{
        return !p || p->set_policy;
}

static bool match(const char *pattern, const char *s)
{
        return fnmatch(pattern, s ? s : "", 0) == 0;
}

static bool strv_has(char **v, const char *s)
{
        for (; v && *v; v++)
                if (strcmp(*v, s) == 0)
                        return true;
        return false;
}

static bool strv_match_any(char **patterns, const char *s)
{
        for (; patterns && *patterns; patterns++)
                if (match(*patterns, s))
                        return true;
        return false;
}

_printf_(3, 4) static int deny(struct cc_error **err, const char *what, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED, "%s refused by agent policy: %s", what,
                          buf);
        return -EPERM;
}

static const struct policy_container *find_container(const struct agent_policy *p, const char *name)
{
        for (size_t i = 0; i < p->n_containers; i++)
                if (match(p->containers[i].name, name))
                        return &p->containers[i];
        return NULL;
}

static void cap_name(int cap, char *buf, size_t n)
{
        char *s = cap_to_name(cap);
        snprintf(buf, n, "%s", s ? s : "?");
        if (s)
                cap_free(s);
        for (char *c = buf; *c; c++)
                if (*c >= 'a' && *c <= 'z')
                        *c = (char)(*c - 'a' + 'A');
}

/* The process checks CreateContainer and ExecProcess share. */
static const char *ns_name(unsigned ns)
{
        return ns & AGENT_NS_PID     ? "pid"
               : ns & AGENT_NS_IPC   ? "ipc"
               : ns & AGENT_NS_UTS   ? "uts"
               : ns & AGENT_NS_MOUNT ? "mount"
                                     : "cgroup";
}

/* Every namespace of the entry's `namespaces` is the container's own or the pod's (never the
 * guest's: it would see other containers' /proc/<pid>); with `sandbox_namespaces`, exactly
 * those are the pod's. */
static int check_namespaces(const struct policy_container *c, const struct agent_spec *s,
                            const char *what, struct cc_error **err)
{
        unsigned missing = c->namespaces & ~s->namespaces;
        if (missing)
                return deny(err, what,
                            "it must have its own %s namespace or the pod's (without one it "
                            "shares the guest's, and sees other containers)",
                            ns_name(missing));
        if (!c->has_sandbox_ns)
                return 0;
        unsigned got = s->sandbox_namespaces & (AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS);
        unsigned diff = c->sandbox_namespaces ^ got;
        if (diff & c->sandbox_namespaces)
                return deny(err, what, "it must join the pod's %s namespace",
                            ns_name(diff & c->sandbox_namespaces));
        if (diff)
                return deny(err, what,
                            "it must not join the pod's %s namespace (the policy keeps it the "
                            "container's own)",
                            ns_name(diff));
        return 0;
}

static int check_process(const struct policy_container *c, const struct agent_process *proc,
                         const char *what, struct cc_error **err)
{
        for (char **e = proc->env; c->env && e && *e; e++)
                if (!strv_match_any(c->env, *e)) {
                        size_t klen = strcspn(*e, "=");
                        return deny(err, what, "environment variable %.*s is not allowed",
                                    (int)CC_MIN(klen, (size_t)128), *e);
                }
        if (c->has_uid && proc->uid != c->uid)
                return deny(err, what, "uid %u, the policy says %u", (unsigned)proc->uid, c->uid);
        if (c->has_gid && proc->gid != c->gid)
                return deny(err, what, "gid %u, the policy says %u", (unsigned)proc->gid, c->gid);
        if (c->privileged)
                return 0;
        /* No capabilities list means the process keeps every capability of the agent. */
        if (!proc->has_caps)
                return deny(err, what,
                            "the process names no capabilities, so it would keep all of them");
        uint64_t all = 0;
        for (int i = 0; i < _AGENT_CAP_SET_MAX; i++)
                all |= proc->caps[i];
        uint64_t extra = all & ~c->caps;
        if (extra) {
                char name[64];
                cap_name(__builtin_ctzll(extra), name, sizeof(name));
                return deny(err, what, "capability %s is not allowed%s", name,
                            c->caps == agent_policy_oci_default_caps ? " (beyond the OCI "
                                                                       "defaults)"
                                                                     : "");
        }
        return 0;
}

static int check_mounts(const struct policy_container *c, const struct agent_spec *s,
                        const char *what, struct cc_error **err)
{
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct agent_mount *m = &s->mounts[i];
                const char *type = m->bind ? "bind" : m->type;
                bool ro = (m->flags & MS_RDONLY) || m->readonly_bind;
                if (!c->privileged && !c->writable_sysfs && cc_streq(m->type, "sysfs") && !ro)
                        return deny(err, what, "sysfs at %s is writable", m->destination);
                if (!c->has_mounts)
                        continue;
                size_t k = 0;
                for (; k < c->n_mounts; k++) {
                        const struct policy_mount *pm = &c->mounts[k];
                        if (match(pm->destination, m->destination) &&
                            (!pm->type || match(pm->type, type)) &&
                            (!pm->source || match(pm->source, m->source)) && (!pm->readonly || ro))
                                break;
                }
                if (k == c->n_mounts)
                        return deny(err, what,
                                    "mount %s (type %s, source %s%s) is not in the "
                                    "policy",
                                    m->destination, type ? type : "?",
                                    m->source ? m->source : "none", ro ? ", ro" : "");
        }
        return 0;
}

int agent_policy_check_create(const struct agent_policy *p, const struct agent_policy_create *cr,
                              struct cc_error **err)
{
        if (!p || !p->has_containers || cr->spec->sandbox)
                return 0;
        char what[200];
        const char *name = cr->name ? cr->name : "";
        snprintf(what, sizeof(what), "CreateContainer %s (container '%s')", cr->container_id, name);
        const struct policy_container *c = find_container(p, name);
        if (!c)
                return deny(err, what, "no entry of \"containers\" matches the name '%s'", name);
        const struct agent_spec *s = cr->spec;
        const struct agent_process *proc = &s->process;
        if (c->image) {
                if (!cr->image && !cr->pulled_image)
                        return deny(err, what,
                                    "the image is not known (no image annotation, no "
                                    "guest pull)");
                if (cr->image && !match(c->image, cr->image))
                        return deny(err, what, "image '%s' does not match '%s'", cr->image,
                                    c->image);
                if (cr->pulled_image && !match(c->image, cr->pulled_image))
                        return deny(err, what, "the pulled image '%s' does not match '%s'",
                                    cr->pulled_image, c->image);
        }
        if (c->args) {
                size_t n = 0;
                bool ok = true;
                for (; proc->args && proc->args[n]; n++)
                        ok = ok && c->args[n] && match(c->args[n], proc->args[n]);
                if (!ok || c->args[n])
                        return deny(err, what, "process.args '%s ...' are not the policy's",
                                    proc->args && proc->args[0] ? proc->args[0] : "");
        }
        if (c->cwd && !match(c->cwd, proc->cwd ? proc->cwd : "/"))
                return deny(err, what, "cwd %s is not allowed", proc->cwd ? proc->cwd : "/");
        int r = check_namespaces(c, s, what, err);
        if (r < 0)
                return r;
        r = check_process(c, proc, what, err);
        if (r < 0)
                return r;
        if (!c->privileged) {
                for (char **m = c->masked_paths; m && *m; m++)
                        if (!strv_has(s->masked_paths, *m))
                                return deny(err, what, "masked path %s is missing", *m);
                for (char **m = c->readonly_paths; m && *m; m++)
                        if (!strv_has(s->readonly_paths, *m) && !strv_has(s->masked_paths, *m))
                                return deny(err, what, "read-only path %s is missing", *m);
        }
        /* Devices: only the container paths the policy names (privileged lifts it). */
        for (size_t i = 0; i < cr->n_devices && !c->privileged; i++)
                if (!strv_match_any(c->devices, cr->devices[i]))
                        return deny(err, what, "device %s is not allowed", cr->devices[i]);
        if ((r = check_mounts(c, s, what, err)) < 0)
                return r;
        for (size_t i = 0; i < cr->n_sysctls; i++)
                if (!strv_match_any(c->sysctls, cr->sysctls[i]))
                        return deny(err, what, "sysctl %s is not allowed", cr->sysctls[i]);
        if (c->seccomp && !s->seccomp)
                return deny(err, what, "a seccomp profile is required");
        if (c->readonly_rootfs && !s->root_readonly)
                return deny(err, what, "the rootfs must be read-only");
        return 0;
}

int agent_policy_check_exec(const struct agent_policy *p, const char *container_id,
                            const char *name, const struct agent_process *proc,
                            struct cc_error **err)
{
        if (!p || !p->has_containers)
                return 0;
        char what[200];
        snprintf(what, sizeof(what), "ExecProcess in %s (container '%s')", container_id,
                 name ? name : "");
        const struct policy_container *c = find_container(p, name ? name : "");
        if (!c)
                return deny(err, what, "no entry of \"containers\" matches the name '%s'",
                            name ? name : "");
        if (c->exec) {
                size_t k = 0;
                for (; k < c->n_exec; k++) {
                        char **want = c->exec[k];
                        size_t n = 0;
                        bool ok = true;
                        for (; proc->args && proc->args[n]; n++)
                                ok = ok && want[n] && match(want[n], proc->args[n]);
                        if (ok && !want[n])
                                break;
                }
                if (k == c->n_exec)
                        return deny(err, what, "command '%s ...' is not in the policy's exec list",
                                    proc->args && proc->args[0] ? proc->args[0] : "");
        }
        return check_process(c, proc, what, err);
}

bool agent_policy_allows_host_rootfs(const struct agent_policy *p)
{
        return p && !p->builtin && strv_match_any(p->copy_file, "c/rootfs/f");
}

int agent_policy_check_copy(const struct agent_policy *p, const char *rel, struct cc_error **err)
{
        if (!p || !p->copy_file || strv_match_any(p->copy_file, rel))
                return 0;
        return deny(err, "CopyFile", "'%s' matches no pattern of copy_file", rel);
}
