/*
 * Process attributes applied in a container process just before execve(): rlimits, user and
 * groups, capabilities (libcap), no_new_privs and the seccomp filter (libseccomp).
 */
#include <fcntl.h>
#include <grp.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/macro.h"

#include "guest-agent/runtime/runtime.h"

/* Writes "message: strerror(errnum)" into e; returns -errnum (-EINVAL when errnum is 0). */
int agent__child_fail(struct agent_child_error *e, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        if (errnum && n >= 0 && (size_t)n < sizeof(e->msg))
                snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", strerror(errnum));
        return -(errnum ? errnum : EINVAL);
}

int agent__seccomp_build(const struct agent_seccomp *s, void **ret_ctx, struct cc_error **err)
{
        scmp_filter_ctx ctx = seccomp_init(s->default_action);
        if (!ctx)
                return cc_error_set(err, EINVAL, "seccomp: invalid default action");
        int r;
        for (char **a = s->architectures; a && *a; a++) {
                const char *name = *a;
                if (strncmp(name, "SCMP_ARCH_", 10) == 0)
                        name += 10;
                char lower[32];
                size_t i = 0;
                for (; name[i] && i < sizeof(lower) - 1; i++)
                        lower[i] =
                                (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
                lower[i] = '\0';
                uint32_t arch = seccomp_arch_resolve_name(lower);
                if (!arch) {
                        seccomp_release(ctx);
                        return cc_error_set(err, EINVAL, "seccomp: unknown architecture '%s'", *a);
                }
                r = seccomp_arch_add(ctx, arch);
                if (r < 0 && r != -EEXIST) {
                        seccomp_release(ctx);
                        return cc_error_set(err, -r, "seccomp: add architecture '%s'", *a);
                }
        }
        /* The filter must not stop at the no_new_privs bit: we set it ourselves when the spec
         * asks, and otherwise load the filter while still holding CAP_SYS_ADMIN. */
        (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        for (size_t i = 0; i < s->n_rules; i++) {
                const struct agent_seccomp_rule *rule = &s->rules[i];
                struct scmp_arg_cmp cmp[6];
                for (unsigned k = 0; k < rule->n_args; k++)
                        cmp[k] = (struct scmp_arg_cmp){.arg = rule->args[k].index,
                                                       .op = rule->args[k].op,
                                                       .datum_a = rule->args[k].value,
                                                       .datum_b = rule->args[k].value_two};
                if (rule->action == s->default_action)
                        continue; /* libseccomp refuses rules equal to the default */
                for (char **n = rule->names; n && *n; n++) {
                        int nr = seccomp_syscall_resolve_name(*n);
                        if (nr == __NR_SCMP_ERROR)
                                continue; /* profiles list syscalls of other architectures */
                        r = seccomp_rule_add_array(ctx, rule->action, nr, rule->n_args, cmp);
                        if (r < 0) {
                                seccomp_release(ctx);
                                return cc_error_set(err, -r, "seccomp: rule for '%s': %s", *n,
                                                    strerror(-r));
                        }
                }
        }
        *ret_ctx = ctx;
        return 0;
}

void agent__seccomp_release(void *ctx)
{
        if (ctx)
                seccomp_release(ctx);
}

static int last_cap(void)
{
        int last = (int)cap_max_bits() - 1;
        return last < 0 || last > 63 ? CAP_LAST_CAP : last;
}

static int drop_bounding(const struct agent_process *p, struct agent_child_error *e)
{
        for (int c = 0; c <= last_cap(); c++)
                if (!(p->caps[AGENT_CAP_BOUNDING] & (1ULL << c)) && cap_drop_bound(c) < 0 &&
                    errno != EINVAL)
                        return agent__child_fail(e, errno,
                                                 "drop capability %d from the bounding set", c);
        return 0;
}

static int set_caps(const struct agent_process *p, struct agent_child_error *e)
{
        int last = last_cap();
        cap_t caps = cap_init();
        if (!caps)
                return agent__child_fail(e, ENOMEM, "cap_init");
        static const struct {
                enum agent_cap_set set;
                cap_flag_t flag;
        } map[] = {{AGENT_CAP_EFFECTIVE, CAP_EFFECTIVE},
                   {AGENT_CAP_PERMITTED, CAP_PERMITTED},
                   {AGENT_CAP_INHERITABLE, CAP_INHERITABLE}};
        for (size_t i = 0; i < CC_ARRAY_SIZE(map); i++)
                for (int c = 0; c <= last; c++)
                        if (p->caps[map[i].set] & (1ULL << c)) {
                                cap_value_t v = c;
                                cap_set_flag(caps, map[i].flag, 1, &v, CAP_SET);
                        }
        int r = cap_set_proc(caps);
        int saved = errno;
        cap_free(caps);
        if (r < 0)
                return agent__child_fail(e, saved, "set capabilities");
        (void)cap_reset_ambient();
        for (int c = 0; c <= last; c++)
                if ((p->caps[AGENT_CAP_AMBIENT] & (1ULL << c)) && cap_set_ambient(c, CAP_SET) < 0)
                        return agent__child_fail(e, errno, "raise ambient capability %d", c);
        return 0;
}

int agent__process_setup(const struct agent_process *p, void *seccomp_ctx,
                         struct agent_child_error *e)
{
        for (size_t i = 0; i < p->n_rlimits; i++) {
                struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
                if (setrlimit(p->rlimits[i].resource, &rl) < 0)
                        return agent__child_fail(e, errno, "setrlimit %d", p->rlimits[i].resource);
        }
        if (p->has_oom_score_adj) {
                int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                char v[16];
                int n = snprintf(v, sizeof(v), "%d", p->oom_score_adj);
                if (fd < 0 || write(fd, v, (size_t)n) != n) {
                        int k = errno;
                        if (fd >= 0)
                                close(fd);
                        return agent__child_fail(e, k, "set oom_score_adj");
                }
                close(fd);
        }
        /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it now, before the
         * capabilities go. With it, load last so the filter sees only the exec. */
        if (seccomp_ctx && !p->no_new_privileges && seccomp_load(seccomp_ctx) < 0)
                return agent__child_fail(e, errno, "load seccomp filter");
        int r;
        /* The bounding set first: dropping from it needs CAP_SETPCAP, gone after setuid(). */
        if (p->has_caps && (r = drop_bounding(p, e)) < 0)
                return r;
        /* Keep the permitted set across setuid(); set_caps() then trims it as the spec says. */
        if (p->has_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return agent__child_fail(e, errno, "PR_SET_KEEPCAPS");
        if (setgroups(p->n_additional_gids, p->additional_gids) < 0)
                return agent__child_fail(e, errno, "setgroups");
        if (setresgid(p->gid, p->gid, p->gid) < 0)
                return agent__child_fail(e, errno, "setgid %u", p->gid);
        if (setresuid(p->uid, p->uid, p->uid) < 0)
                return agent__child_fail(e, errno, "setuid %u", p->uid);
        if (p->has_caps && (r = set_caps(p, e)) < 0)
                return r;
        if (chdir(p->cwd ? p->cwd : "/") < 0)
                return agent__child_fail(e, errno, "chdir %s", p->cwd ? p->cwd : "/");
        if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return agent__child_fail(e, errno, "PR_SET_NO_NEW_PRIVS");
        if (seccomp_ctx && p->no_new_privileges && seccomp_load(seccomp_ctx) < 0)
                return agent__child_fail(e, errno, "load seccomp filter");
        return 0;
}
