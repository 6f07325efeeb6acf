/*
 * grpc.Spec (Kata's protobuf form of the OCI runtime spec, from CreateContainer) -> agent_spec.
 * Every list is bounded and every name is resolved here, so a malformed spec is refused with
 * a clear InvalidArgument before any process exists.
 */
#include "guest-agent/runtime/spec-oci.h"

#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/validate.h"

static char **strv_dup(char *const *v, size_t n, size_t max, const char *what,
                       struct cc_error **err, int *r)
{
        if (n > max) {
                *r = cc_error_set(err, EINVAL, "%s has more than %zu entries", what, max);
                return NULL;
        }
        char **out = calloc(n + 1, sizeof(char *));
        if (!out) {
                *r = -ENOMEM;
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                if (!v[i] || strlen(v[i]) > 131072 || !(out[i] = strdup(v[i]))) {
                        cc_strv_free(out);
                        *r = v[i] ? cc_error_set(err, EINVAL, "%s[%zu] is too long", what, i)
                                  : cc_error_set(err, EINVAL, "%s[%zu] is missing", what, i);
                        return NULL;
                }
        }
        *r = 0;
        return out;
}

static int caps_from(char *const *names, size_t n, uint64_t *ret, struct cc_error **err)
{
        *ret = 0;
        if (n > 128)
                return cc_error_set(err, EINVAL, "too many capabilities");
        for (size_t i = 0; i < n; i++) {
                int cap;
                if (agent_cap_from_name(names[i], &cap) < 0) {
                        /* A capability this kernel does not know cannot be granted anyway. */
                        cc_log_debug("ignoring unknown capability %s", names[i]);
                        continue;
                }
                *ret |= 1ULL << cap;
        }
        return 0;
}

int agent_process_from_oci(const Grpc__Process *p, struct agent_process *out, struct cc_error **err)
{
        int r;
        *out = (struct agent_process){0};
        if (!p)
                return cc_error_set(err, EINVAL, "spec has no process");
        out->terminal = p->terminal;
        if (p->consolesize) {
                out->rows = (unsigned short)CC_MIN(p->consolesize->height, 0xffffu);
                out->cols = (unsigned short)CC_MIN(p->consolesize->width, 0xffffu);
        }
        if (p->user) {
                out->uid = p->user->uid;
                out->gid = p->user->gid;
                if (p->user->n_additionalgids > AGENT_MAX_GIDS)
                        return cc_error_set(err, EINVAL, "too many additional gids");
                out->additional_gids = calloc(p->user->n_additionalgids + 1, sizeof(gid_t));
                if (!out->additional_gids)
                        return -ENOMEM;
                for (size_t i = 0; i < p->user->n_additionalgids; i++)
                        out->additional_gids[i] = p->user->additionalgids[i];
                out->n_additional_gids = p->user->n_additionalgids;
        }
        if (p->n_args == 0)
                return cc_error_set(err, EINVAL, "process.args is empty");
        if (!(out->args = strv_dup(p->args, p->n_args, AGENT_MAX_ARGS, "process.args", err, &r)))
                return r;
        if (p->n_env &&
            !(out->env = strv_dup(p->env, p->n_env, AGENT_MAX_ARGS, "process.env", err, &r)))
                return r;
        for (size_t i = 0; i < p->n_env; i++)
                if (!strchr(out->env[i], '='))
                        return cc_error_set(err, EINVAL, "process.env[%zu] has no '='", i);
        if (!cc_isempty(p->cwd)) {
                if ((r = agent_validate_abs_path(p->cwd, "process.cwd", err)) < 0)
                        return r;
                if (!(out->cwd = strdup(p->cwd)))
                        return -ENOMEM;
        }
        if (p->capabilities) {
                const Grpc__LinuxCapabilities *c = p->capabilities;
                out->has_caps = true;
                if ((r = caps_from(c->bounding, c->n_bounding, &out->caps[AGENT_CAP_BOUNDING],
                                   err)) < 0 ||
                    (r = caps_from(c->effective, c->n_effective, &out->caps[AGENT_CAP_EFFECTIVE],
                                   err)) < 0 ||
                    (r = caps_from(c->inheritable, c->n_inheritable,
                                   &out->caps[AGENT_CAP_INHERITABLE], err)) < 0 ||
                    (r = caps_from(c->permitted, c->n_permitted, &out->caps[AGENT_CAP_PERMITTED],
                                   err)) < 0 ||
                    (r = caps_from(c->ambient, c->n_ambient, &out->caps[AGENT_CAP_AMBIENT], err)) <
                            0)
                        return r;
        }
        if (p->n_rlimits > AGENT_MAX_RLIMITS)
                return cc_error_set(err, EINVAL, "too many rlimits");
        if (p->n_rlimits) {
                out->rlimits = calloc(p->n_rlimits, sizeof(*out->rlimits));
                if (!out->rlimits)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_rlimits; i++) {
                const Grpc__POSIXRlimit *l = p->rlimits[i];
                int res;
                if (agent_rlimit_from_name(l->type, &res) < 0)
                        return cc_error_set(err, EINVAL, "unknown rlimit '%.64s'", l->type);
                if (l->soft > l->hard)
                        return cc_error_set(err, EINVAL, "rlimit %s: soft above hard", l->type);
                out->rlimits[out->n_rlimits++] =
                        (struct agent_rlimit){.resource = res, .soft = l->soft, .hard = l->hard};
        }
        out->no_new_privileges = p->nonewprivileges;
        if (p->oomscoreadj) {
                if (p->oomscoreadj < -1000 || p->oomscoreadj > 1000)
                        return cc_error_set(err, EINVAL, "oom_score_adj out of range");
                out->has_oom_score_adj = true;
                out->oom_score_adj = (int)p->oomscoreadj;
        }
        return 0;
}

void agent_resources_from_oci(const Grpc__LinuxResources *r, struct agent_resources *out)
{
        if (!r)
                return;
        if (r->memory) {
                out->memory_limit = r->memory->limit;
                out->memory_reservation = r->memory->reservation;
                out->memory_swap = r->memory->swap;
        }
        if (r->cpu) {
                out->cpu_shares = r->cpu->shares;
                out->cpu_quota = r->cpu->quota;
                out->cpu_period = r->cpu->period;
                free(out->cpuset_cpus);
                free(out->cpuset_mems);
                out->cpuset_cpus = cc_isempty(r->cpu->cpus) ? NULL : strndup(r->cpu->cpus, 256);
                out->cpuset_mems = cc_isempty(r->cpu->mems) ? NULL : strndup(r->cpu->mems, 256);
        }
        if (r->pids)
                out->pids_limit = r->pids->limit;
}

static int seccomp_from(const Grpc__LinuxSeccomp *s, struct agent_seccomp **ret,
                        struct cc_error **err)
{
        int r;
        if (cc_isempty(s->defaultaction) && s->n_syscalls == 0) {
                *ret = NULL;
                return 0;
        }
        if (s->n_syscalls > AGENT_MAX_SECCOMP_RULES)
                return cc_error_set(err, EINVAL, "seccomp: too many syscall rules");
        struct agent_seccomp *out = calloc(1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        if (agent_seccomp_action_from_name(s->defaultaction, 0, &out->default_action) < 0) {
                agent_seccomp_free(out);
                return cc_error_set(err, EINVAL, "seccomp: unknown default action '%.64s'",
                                    s->defaultaction);
        }
        if (s->n_architectures &&
            !(out->architectures = strv_dup(s->architectures, s->n_architectures, 32,
                                            "seccomp.architectures", err, &r))) {
                agent_seccomp_free(out);
                return r;
        }
        out->rules = calloc(s->n_syscalls + 1, sizeof(*out->rules));
        if (!out->rules) {
                agent_seccomp_free(out);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_syscalls; i++) {
                const Grpc__LinuxSyscall *sc = s->syscalls[i];
                struct agent_seccomp_rule *rule = &out->rules[out->n_rules++];
                unsigned eno = sc->errno_ret_case == GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET
                                       ? sc->errnoret
                                       : 0;
                r = 0;
                if (!(rule->names =
                              strv_dup(sc->names, sc->n_names, 1024, "seccomp.names", err, &r)))
                        goto fail;
                if (agent_seccomp_action_from_name(sc->action, eno, &rule->action) < 0) {
                        r = cc_error_set(err, EINVAL, "seccomp: unknown action '%.64s'",
                                         sc->action);
                        goto fail;
                }
                if (sc->n_args > 6) {
                        r = cc_error_set(err, EINVAL, "seccomp: more than 6 arguments");
                        goto fail;
                }
                for (size_t k = 0; k < sc->n_args; k++) {
                        const Grpc__LinuxSeccompArg *a = sc->args[k];
                        int op;
                        if (a->index > 5 || agent_seccomp_op_from_name(a->op, &op) < 0) {
                                r = cc_error_set(err, EINVAL, "seccomp: invalid argument rule");
                                goto fail;
                        }
                        rule->args[rule->n_args++] =
                                (struct agent_seccomp_arg){.index = (unsigned)a->index,
                                                           .value = a->value,
                                                           .value_two = a->valuetwo,
                                                           .op = op};
                }
        }
        *ret = out;
        return 0;
fail:
        agent_seccomp_free(out);
        return r;
}

const char *agent_spec_annotation(const Grpc__Spec *s, const char *key)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_annotations; i++)
                if (cc_streq(s->annotations[i]->key, key))
                        return s->annotations[i]->value;
        return NULL;
}

bool agent_spec_is_sandbox(const Grpc__Spec *s)
{
        return cc_streq(agent_spec_annotation(s, "io.kubernetes.cri.container-type"), "sandbox") ||
               cc_streq(agent_spec_annotation(s, "io.katacontainers.pkg.oci.container_type"),
                        "pod_sandbox");
}

int agent_spec_from_oci(const Grpc__Spec *in, struct agent_spec **ret, struct cc_error **err)
{
        int r;
        if (!in)
                return cc_error_set(err, EINVAL, "request has no OCI spec");
        _cleanup_(agent_spec_freep) struct agent_spec *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->sandbox = agent_spec_is_sandbox(in);
        if (in->hooks && (in->hooks->n_prestart || in->hooks->n_poststart ||
                          in->hooks->n_poststop || in->hooks->n_createruntime ||
                          in->hooks->n_createcontainer || in->hooks->n_startcontainer))
                /* A hook runs a guest binary of the host's choosing outside any container. */
                return cc_error_set(err, EPERM, "OCI hooks are not allowed in the guest");
        if (!s->sandbox) {
                if (!in->root || cc_isempty(in->root->path))
                        return cc_error_set(err, EINVAL, "spec has no root path");
                if ((r = agent_validate_abs_path(in->root->path, "root.path", err)) < 0)
                        return r;
                if (!(s->root_path = strdup(in->root->path)))
                        return -ENOMEM;
                s->root_readonly = in->root->readonly;
                if ((r = agent_process_from_oci(in->process, &s->process, err)) < 0)
                        return r;
        }
        if (!cc_isempty(in->hostname)) {
                if (strlen(in->hostname) > 64)
                        return cc_error_set(err, EINVAL, "hostname is too long");
                if (!(s->hostname = strdup(in->hostname)))
                        return -ENOMEM;
        }
        if (in->n_mounts > AGENT_MAX_MOUNTS)
                return cc_error_set(err, EINVAL, "more than %d mounts", AGENT_MAX_MOUNTS);
        s->mounts = calloc(in->n_mounts + 1, sizeof(*s->mounts));
        if (!s->mounts)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_mounts; i++) {
                const Grpc__Mount *m = in->mounts[i];
                struct agent_mount *am = &s->mounts[s->n_mounts++];
                if ((r = agent_validate_abs_path(m->destination, "mount destination", err)) < 0)
                        return r;
                if (m->n_options > 64)
                        return cc_error_set(err, EINVAL, "too many mount options");
                am->destination = strdup(m->destination);
                am->source = strdup(m->source ? m->source : "");
                am->type = strdup(cc_isempty(m->type) ? "bind" : m->type);
                if (!am->destination || !am->source || !am->type)
                        return -ENOMEM;
                if ((r = agent_mount_parse_options(am, m->options, m->n_options, err)) < 0)
                        return r;
                if (strcmp(am->type, "bind") == 0)
                        am->bind = true;
        }
        const Grpc__Linux *l = in->linux_;
        s->namespaces = AGENT_NS_MOUNT;
        if (l) {
                for (size_t i = 0; i < l->n_namespaces && i < 16; i++) {
                        const char *t = l->namespaces[i]->type;
                        unsigned ns = cc_streq(t, "pid")   ? AGENT_NS_PID
                                      : cc_streq(t, "uts") ? AGENT_NS_UTS
                                      : cc_streq(t, "ipc") ? AGENT_NS_IPC
                                                           : 0;
                        s->namespaces |= ns;
                        if (!cc_isempty(l->namespaces[i]->path))
                                s->ns_paths |= ns;
                        if (ns)
                                continue;
                        if (cc_streq(t, "cgroup"))
                                s->namespaces |= AGENT_NS_CGROUP;
                        else if (cc_streq(t, "network"))
                                s->namespaces |= AGENT_NS_NET; /* ignored: VM network */
                        /* "mount" is always new; "user" is not supported and ignored. */
                }
                agent_resources_from_oci(l->resources, &s->resources);
                if (l->n_maskedpaths &&
                    !(s->masked_paths = strv_dup(l->maskedpaths, l->n_maskedpaths, 256,
                                                 "maskedPaths", err, &r)))
                        return r;
                if (l->n_readonlypaths &&
                    !(s->readonly_paths = strv_dup(l->readonlypaths, l->n_readonlypaths, 256,
                                                   "readonlyPaths", err, &r)))
                        return r;
                if (l->seccomp && !s->sandbox &&
                    (r = seccomp_from(l->seccomp, &s->seccomp, err)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}
