/*
 * cc-agent: the in-guest agent. As PID 1 it sets up the guest; in every case it serves the
 * agent API until DestroySandbox (init powers the VM off) or SIGTERM/SIGINT (host tests).
 */
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"

static void on_conn_closed(void *userdata, int reason)
{
        agent_transport_conn_closed(userdata, reason);
}

static char *read_cmdline(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/cmdline", "re");
        char *buf = calloc(1, 4096);
        if (f && buf && !fgets(buf, 4096, f))
                buf[0] = '\0';
        return buf;
}

static _noreturn_ void fatal(struct agent *a, const char *what, struct cc_error *e)
{
        /* level=fatal: the shim, watching the console while it waits for the agent, ends
         * the pod's start at once with this line (shim/agent-wait.c). */
        cc_log(CC_LOG_FATAL, "%s: %s", what, cc_error_message(e));
        if (a->cfg.is_init)
                agent_init_poweroff();
        exit(EXIT_FAILURE);
}

/* The image puller of this binary (struct agent_puller): guest-agent/module.mk sets it for
 * cc-agent-static; cc-agent pulls in its own process. */
#ifndef AGENT_PULLER
#define AGENT_PULLER agent_puller_in_process
#endif

/* The pod's initdata, before the policy: its policy.json replaces the image's, but in a TEE
 * guest only when the initdata was checked against what the launch bound (the TEE's field or
 * the measured command line). Otherwise a host could attach a disk of its own with a
 * permissive policy and no digest anywhere to compare it with. */
static void load_initdata(struct agent *a)
{
        _cleanup_error_ struct cc_error *err = NULL;
        bool found = false, bound = false;
        if (agent_initdata_load("/dev", a->cfg.initdata_digest, AGENT_INITDATA_DIR, &found, &bound,
                                &err) < 0)
                fatal(a, "initdata", err);
        bool has_policy = found && access(AGENT_INITDATA_DIR "/policy.json", F_OK) == 0;
        if (has_policy && a->tee && !bound) {
                cc_log_warn("initdata policy.json ignored: this TEE guest has no launch digest to "
                            "check the initdata against");
        } else if (has_policy) {
                free(a->cfg.policy_path);
                a->cfg.policy_path = strdup(AGENT_INITDATA_DIR "/policy.json");
                if (!a->cfg.policy_path) {
                        cc_error_set(&err, ENOMEM, "initdata policy");
                        fatal(a, "initdata", err);
                }
        }
}

/* The policy file, the TEE default without one, or (not a TEE) none: every request allowed. */
static void load_policy(struct agent *a)
{
        _cleanup_error_ struct cc_error *err = NULL;
        int r = agent_policy_load(a->cfg.policy_path, &a->policy, &err);
        if (r == -ENOENT && a->tee) {
                cc_error_free(TAKE_PTR(err));
                if ((r = agent_policy_tee_default(&a->policy, &err)) < 0)
                        fatal(a, "policy", err);
                cc_log_info("no policy file at %s: the TEE defaults apply (no exec, no clock "
                            "changes, containers as a safe pod runs them)",
                            a->cfg.policy_path);
        } else if (r == -ENOENT) {
                cc_log_info("no policy file at %s and not a TEE guest: every request is allowed",
                            a->cfg.policy_path);
        } else if (r < 0) {
                /* A policy that cannot be read must not turn into "allow everything". */
                fatal(a, "policy", err);
        } else {
                cc_log_info("policy loaded from %s (%u rules)", a->cfg.policy_path,
                            agent_policy_n_rules(a->policy));
        }
        /* Parsing peaks at the JSON tree, which is freed: give those pages back. */
        malloc_trim(0);
}

/* Before the host can reach the agent: a damaged image fails the pod's start here (the shim
 * reads the fatal line on the console), not at its first image pull. */
static void check_image(struct agent *a)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned files = 0;
        uint64_t bytes = 0;
        int r = agent_selfcheck(AGENT_IMAGE_DIGESTS, NULL, &files, &bytes, &err);
        if (r == -ENOENT && !access("/init", F_OK) && access(AGENT_IMAGE_DIGESTS, F_OK) < 0) {
                cc_log_warn("no %s: the guest image's files are not checked", AGENT_IMAGE_DIGESTS);
        } else if (r < 0) {
                fatal(a, "guest image", err);
        } else {
                clock_gettime(CLOCK_MONOTONIC, &t1);
                cc_log_info("guest image checked files=%u bytes=%llu ms=%lld", files,
                            (unsigned long long)bytes,
                            (long long)(t1.tv_sec - t0.tv_sec) * 1000 +
                                    (t1.tv_nsec - t0.tv_nsec) / 1000000);
        }
}

/* The runtime and the ttrpc server with the agent's services. */
static void start_services(struct agent *a)
{
        _cleanup_error_ struct cc_error *err = NULL;
        if (agent_cgroup_init("/sys/fs/cgroup", AGENT_CGROUP_NONE) < 0)
                cc_log_warn("no usable cgroup v2 hierarchy: containers run without limits");
        struct agent_runtime_config rc = {.containers_dir = a->cfg.containers_dir,
                                          .volumes_dir = AGENT_SANDBOX_DIR,
                                          .cgroup_root = a->cfg.cgroup_root};
        int r = agent_runtime_new(&rc, &a->rt);
        if (r < 0) {
                cc_error_set(&err, -r, "runtime: %s", strerror(-r));
                fatal(a, "runtime", err);
        }
        struct cc_ttrpc_server_options so = {.on_conn_closed = on_conn_closed,
                                             .userdata = a,
                                             .max_workers = 64,
                                             .reject_nul_strings = true};
        if ((r = cc_ttrpc_server_new(&so, &a->srv)) < 0 ||
            (r = agent_rpc_register(a, a->srv)) < 0) {
                cc_error_set(&err, -r, "ttrpc server: %s", strerror(-r));
                fatal(a, "server", err);
        }
        a->destroy_efd = eventfd(0, EFD_CLOEXEC);
        if (a->destroy_efd < 0) {
                cc_error_set(&err, errno, "eventfd: %m");
                fatal(a, "startup", err);
        }
}

/* uptime_ms: the guest clock since the kernel started (bench/agent-boot.sh); kernel: the
 * release the VM booted (6.1.<n>-cc for the project's kernel, Debian's otherwise), which the
 * image manifest ties to the kernel's SHA-256. */
static void log_ready(const struct agent *a)
{
        struct timespec up;
        clock_gettime(CLOCK_BOOTTIME, &up);
        struct utsname uts;
        if (uname(&uts) < 0)
                snprintf(uts.release, sizeof(uts.release), "unknown");
        cc_log_info("agent ready version=%s server_addr=%s init=%d kernel=%s vmrss_kib=%ld "
                    "rss_kib=%ld uptime_ms=%lld",
                    AGENT_VERSION, a->cfg.server_addr, a->cfg.is_init, uts.release,
                    agent_self_rss_kib(), agent_self_rss_exact_kib(),
                    (long long)up.tv_sec * 1000 + up.tv_nsec / 1000000);
}

/* Until DestroySandbox (init powers the VM off) or, not as init, SIGTERM/SIGINT. */
static void serve(struct agent *a, const sigset_t *mask)
{
        int sfd = signalfd(-1, mask, SFD_CLOEXEC);
        for (;;) {
                struct pollfd p[2] = {{.fd = a->destroy_efd, .events = POLLIN},
                                      {.fd = sfd, .events = POLLIN}};
                if (poll(p, sfd >= 0 ? 2 : 1, -1) < 0)
                        continue;
                if (p[0].revents & POLLIN) {
                        uint64_t v;
                        (void)!read(a->destroy_efd, &v, sizeof(v));
                        if (a->cfg.is_init) {
                                /* Give the DestroySandbox reply time to leave before the VM
                                 * goes away. */
                                usleep(200 * 1000);
                                agent_init_poweroff();
                        }
                }
                if (sfd >= 0 && (p[1].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        (void)!read(sfd, &si, sizeof(si));
                        if (a->cfg.is_init)
                                continue; /* init ignores stray signals */
                        cc_log_info("signal %u: shutting down", si.ssi_signo);
                        break;
                }
        }
        cc_close(sfd);
}

static void agent_done(struct agent *a)
{
        /* Containers first: that ends the handlers blocked on them (WaitProcess, ReadStdout,
         * GetOOMEvent), which the server's shutdown waits for. */
        agent_runtime_shutdown(a->rt);
        cc_ttrpc_server_shutdown(a->srv);
        agent_runtime_free(a->rt);
        cc_ttrpc_server_free(a->srv);
        agent_policy_free(a->policy);
        while (a->ctrs) {
                struct agent_ctr_info *c = a->ctrs;
                a->ctrs = c->next;
                free(c->id);
                free(c->name);
                free(c->pulled);
                free(c);
        }
        free(a->trusted_disk);
        agent_config_done(&a->cfg);
}

int main(int argc, char **argv)
{
        struct agent a = {.lock = PTHREAD_MUTEX_INITIALIZER,
                          .policy_lock = PTHREAD_RWLOCK_INITIALIZER,
                          .destroy_efd = -1,
                          .puller = &AGENT_PULLER};
        /* Handler threads come and go; one malloc arena keeps the idle footprint small. */
        mallopt(M_ARENA_MAX, 1);
        _cleanup_error_ struct cc_error *err = NULL;
        a.cfg.is_init = getpid() == 1;
        if (a.cfg.is_init)
                agent_init_setup();
        _cleanup_free_ char *cmdline = a.cfg.is_init ? read_cmdline() : NULL;
        int r = agent_config_parse(&a.cfg, cmdline, argc, argv, &err);
        if (r < 0)
                fatal(&a, "configuration", err);
        enum cc_log_level level;
        if (cc_log_level_from_string(a.cfg.log_level, &level) == 0)
                cc_log_set_level(level);
        if (a.cfg.log_port && (r = agent_logport_start(a.cfg.log_port)) < 0)
                cc_log_errno(CC_LOG_WARN, -r, "log port %s", a.cfg.log_port);

        /* SIGTERM/SIGINT end a host-side agent cleanly; blocked before any thread starts so
         * only the signalfd sees them (children get a clean mask in runtime/spawn.c). */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (a.cfg.is_init && a.cfg.debug_console &&
            (r = agent_debug_console_start(a.cfg.debug_console_vport)) < 0)
                cc_log_errno(CC_LOG_WARN, -r, "debug console");

        char tee_why[160];
        a.tee = agent_tee_detect(&a.cfg, tee_why, sizeof(tee_why));
        cc_log_info("%s guest: %s", a.tee ? "TEE" : "not a TEE", tee_why);
        if (a.cfg.is_init)
                load_initdata(&a);
        load_policy(&a);
        start_services(&a);
        /* Trusted storage, before the agent answers: the runtime runs (its reaper reaps the
         * helper), nothing uses the directories it covers yet. */
        if (a.cfg.is_init && a.cfg.trusted_storage && agent_trusted_storage_boot(&a, &err) < 0)
                fatal(&a, "trusted storage", err);
        if (a.cfg.is_init)
                check_image(&a);
        if ((r = agent_transport_start(&a, &err)) < 0)
                fatal(&a, "transport", err);
        log_ready(&a);
        serve(&a, &mask);
        agent_done(&a);
        return 0;
}
