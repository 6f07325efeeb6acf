/*
 * Benchmark: the agent's policy evaluation with a 50-rule policy (25 request rules and 25
 * container entries, each with env patterns, mounts and exec lists), and what the engine adds to
 * the resident set. The decisions measured are the slow paths: a CreateContainer and an
 * ExecProcess of the last container entry (every name tried first), a CopyFile, and a request
 * that falls through every rule to the default.
 *
 *   agent-policy [ITERATIONS]
 *
 * Prints one line per decision (ns/op) and the resident set before and after the policy is
 * parsed and used. bench/agent-policy.sh also boots it as /init of a QEMU TCG guest (built
 * static), which is where the target applies: under 1 ms per request, under 100 KiB.
 * As /init it powers the VM off when done.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/error.h"

#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/spec.h"

static long rss_kib(void)
{
        FILE *f = fopen("/proc/self/smaps_rollup", "re");
        char line[256];
        long v = -1;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "Rss: %ld kB", &v) == 1)
                        break;
        if (f)
                fclose(f);
        return v;
}

static double now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* 25 request rules (none matches the requests measured) and 25 container entries. */
static char *policy_text(void)
{
        size_t cap = 1 << 20, n = 0;
        char *t = malloc(cap);
        if (!t)
                abort();
        n += (size_t)snprintf(t + n, cap - n,
                              "{\"version\": 2, \"default\": \"allow\", \"rules\": [");
        for (int i = 0; i < 25; i++)
                n += (size_t)snprintf(t + n, cap - n,
                                      "%s{\"name\": \"r%d\", \"requests\": [\"Req%d\", "
                                      "\"Other%d*\"], \"containers\": [\"id-%d-*\"], "
                                      "\"action\": \"deny\"}",
                                      i ? "," : "", i, i, i, i);
        n += (size_t)snprintf(t + n, cap - n, "], \"containers\": [");
        for (int i = 0; i < 25; i++)
                n += (size_t)snprintf(
                        t + n, cap - n,
                        "%s{\"name\": \"c%d\", \"image\": \"registry.example/c%d@sha256:%064d\","
                        " \"args\": [\"/bin/sh\", \"-c\", \"echo c%d *\"],"
                        " \"env\": [\"PATH=*\", \"HOSTNAME=*\", \"HOME=*\", \"TERM=*\","
                        " \"KUBERNETES_*=*\", \"*_SERVICE_HOST=*\", \"*_PORT_*=*\", \"MODE=prod\"],"
                        " \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\"},"
                        " {\"destination\": \"/dev\", \"type\": \"tmpfs\"},"
                        " {\"destination\": \"/dev/pts\", \"type\": \"devpts\"},"
                        " {\"destination\": \"/sys\", \"type\": \"sysfs\", \"readonly\": true},"
                        " {\"destination\": \"/etc/hosts\", \"type\": \"bind\","
                        " \"source\": \"/run/kata-containers/shared/containers/*-files/*\"}],"
                        " \"exec\": [[\"/bin/cat\", \"/tmp/ready\"], [\"/bin/true\"]]}",
                        i ? "," : "", i, i, i, i);
        n += (size_t)snprintf(t + n, cap - n, "], \"copy_file\": [\"*-files\", \"*-files/*\"]}");
        return t;
}

static char *masked[] = {"/proc/acpi",       "/proc/kcore",   "/proc/keys",
                         "/proc/timer_list", "/sys/firmware", NULL};
static char *readonly[] = {"/proc/bus",           "/proc/fs", "/proc/irq", "/proc/sys",
                           "/proc/sysrq-trigger", NULL};
static char *args[] = {"/bin/sh", "-c", "echo c24 ok", NULL};
static char *env[] = {"PATH=/usr/bin:/bin", "HOSTNAME=pod",
                      "HOME=/root",         "KUBERNETES_SERVICE_HOST=10.0.0.1",
                      "MODE=prod",          NULL};
static char *exec_args[] = {"/bin/true", NULL};

int main(int argc, char **argv)
{
        bool init = getpid() == 1;
        if (init) {
                /* A bare initramfs: no /dev/console node, so stdout goes nowhere until the
                 * console is opened from devtmpfs. */
                mkdir("/proc", 0555);
                mount("proc", "/proc", "proc", 0, NULL);
                mkdir("/dev", 0755);
                mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
                if (!freopen("/dev/console", "w", stdout) || !freopen("/dev/console", "w", stderr))
                        return 1;
        }
        long iters = argc > 1 ? atol(argv[1]) : (init ? 2000 : 100000);
        long rss0 = rss_kib();
        size_t heap0 = mallinfo2().uordblks;
        char *text = policy_text();
        struct cc_error *err = NULL;
        struct agent_policy *p = NULL;
        double t0 = now_ns();
        if (agent_policy_parse(text, &p, &err) < 0) {
                fprintf(stderr, "parse: %s\n", cc_error_message(err));
                return 1;
        }
        double parse_us = (now_ns() - t0) / 1e3;
        size_t text_len = strlen(text);
        free(text);
        /* What the parsed policy keeps on the heap (the JSON tree and text are freed). */
        size_t heap_kept = mallinfo2().uordblks - heap0;
        /* As the agent does after loading its policy: the parser's freed peak goes back. */
        malloc_trim(0);
        long rss_parsed = rss_kib();

        struct agent_mount mounts[5] = {
                {.destination = "/proc", .source = "proc", .type = "proc"},
                {.destination = "/dev", .source = "tmpfs", .type = "tmpfs"},
                {.destination = "/dev/pts", .source = "devpts", .type = "devpts"},
                {.destination = "/sys", .source = "sysfs", .type = "sysfs", .flags = MS_RDONLY},
                {.destination = "/etc/hosts",
                 .source = "/run/kata-containers/shared/containers/c24-files/0",
                 .type = "bind",
                 .bind = true},
        };
        struct agent_spec s = {.mounts = mounts,
                               .n_mounts = 5,
                               .namespaces =
                                       AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS,
                               .masked_paths = masked,
                               .readonly_paths = readonly};
        s.process.args = args;
        s.process.env = env;
        s.process.has_caps = true;
        for (int i = 0; i < _AGENT_CAP_SET_MAX; i++)
                s.process.caps[i] = 1ULL << CAP_CHOWN | 1ULL << CAP_KILL;
        char image[128];
        snprintf(image, sizeof(image), "registry.example/c24@sha256:%064d", 24);
        struct agent_policy_create c = {.container_id = "c24",
                                        .name = "c24",
                                        .image = image,
                                        .pulled_image = image,
                                        .spec = &s};
        struct agent_process ep = s.process;
        ep.args = exec_args;

        static const char *const names[] = {"CreateContainer (rules + 25th container entry)",
                                            "ExecProcess (rules + 25th entry's exec list)",
                                            "CopyFile (rules + copy_file)",
                                            "StartContainer (25 rules, then default)"};
        for (int k = 0; k < 4; k++) {
                int bad = 0;
                double t = now_ns();
                for (long i = 0; i < iters; i++) {
                        int r = agent_policy_check(p,
                                                   k == 0   ? "CreateContainer"
                                                   : k == 1 ? "ExecProcess"
                                                   : k == 2 ? "CopyFile"
                                                            : "StartContainer",
                                                   "c24", &err);
                        if (k == 0 && r == 0)
                                r = agent_policy_check_create(p, &c, &err);
                        else if (k == 1 && r == 0)
                                r = agent_policy_check_exec(p, "c24", "c24", &ep, &err);
                        else if (k == 2 && r == 0)
                                r = agent_policy_check_copy(p, "c24-files/0", &err);
                        bad += r != 0;
                }
                double ns = (now_ns() - t) / (double)iters;
                printf("policy-bench: %-48s %10.0f ns/op%s\n", names[k], ns,
                       bad ? "  (UNEXPECTED DENIALS)" : "");
        }
        long rss1 = rss_kib();
        printf("policy-bench: 50-rule policy: %zu bytes of JSON, parsed in %.0f us\n", text_len,
               parse_us);
        printf("policy-bench: the parsed policy holds %zu KiB of heap; resident set %ld KiB "
               "before, %ld KiB once parsed (+%ld KiB), %ld KiB after the runs (+%ld KiB)\n",
               heap_kept / 1024, rss0, rss_parsed, rss_parsed - rss0, rss1, rss1 - rss0);
        agent_policy_free(p);
        cc_error_free(err);
        fflush(stdout);
        if (init)
                reboot(RB_POWER_OFF);
        return 0;
}
