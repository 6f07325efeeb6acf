/*
 * cc-runtime: host commands around libhv.
 *
 *   cc-runtime check [--config FILE]... [--kernel PATH] [--initrd PATH] [--libvirt-uri URI]
 *
 * prints what this host offers (KVM, vhost-vsock, TEEs, VMM versions), then for each configured
 * runtime handler whether this host can run it and, if not, exactly why (the same check the
 * shim runs before starting a VM). A handler is a Kata-style configuration file
 * (configuration-<vmm>[-<tee>].toml: [hypervisor.qemu], [hypervisor.clh] or
 * [hypervisor.libvirt] with path, kernel, initrd, firmware, default_vcpus, default_memory); the
 * TEE comes from the file name suffix (-tdx, -sev, -sev-es, -snp/-sev-snp; otherwise none).
 * Under each handler a second line lists the pod annotations its configuration honours
 * (enable_annotations, the valid_*_paths lists and valid_config_paths: shim/annotations.h).
 * Without --config it reads every *.toml of $CC_CONFIG_DIR (default
 * /opt/confidential-containers/share/defaults/kata-containers), and when there are none it
 * checks a built-in handler list with the default install paths.
 *
 * Exit status: 0 when every handler can run here, 1 when one cannot, 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libvirt/libvirt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/fileio.h"
#include "cc/toml.h"

#include "hypervisor/hv-internal.h"
#include "hypervisor/qemu/qemu.h"
#include "shim/annotations.h"
#include "shim/shim.h"

#define DEFAULT_CONFIG_DIR "/opt/confidential-containers/share/defaults/kata-containers"
#define SHARE              "/opt/confidential-containers/share"

struct handler {
        char *name;
        char *backend;
        enum hv_tee tee;
        char *vmm_path;
        char *kernel;
        char *initrd;
        char *firmware;
        char *error;        /* the config itself is broken */
        char *annotations;  /* which pod annotations it honours */
        bool debug_console; /* [agent.kata] debug_console_enabled */
};

static const char *yes_no(bool b)
{
        return b ? "yes" : "no";
}

static enum hv_tee tee_from_name(const char *name)
{
        static const struct {
                const char *suffix;
                enum hv_tee tee;
        } map[] = {{"-sev-snp", HV_TEE_SEV_SNP},
                   {"-snp", HV_TEE_SEV_SNP},
                   {"-sev-es", HV_TEE_SEV_ES},
                   {"-sev", HV_TEE_SEV},
                   {"-tdx", HV_TEE_TDX}};
        size_t n = strlen(name);
        for (size_t i = 0; i < CC_ARRAY_SIZE(map); i++) {
                size_t m = strlen(map[i].suffix);
                if (n >= m && strcmp(name + n - m, map[i].suffix) == 0)
                        return map[i].tee;
        }
        return HV_TEE_NONE;
}

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

/* Reads one configuration file into a handler; a broken file becomes a handler with `error`. */
static void load_config(const char *path, struct handler *h)
{
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        _cleanup_free_ char *name = strdup(base);
        char *dot = name ? strstr(name, ".toml") : NULL;
        if (dot)
                *dot = 0;
        const char *n = name && strncmp(name, "configuration-", 14) == 0 ? name + 14 : name;
        if (asprintf(&h->name, "kata-%s", n ? n : "?") < 0)
                h->name = NULL;
        h->tee = tee_from_name(n ? n : "");
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        if (cc_toml_parse_file(path, &doc, &err) < 0) {
                h->error = strdup(cc_error_message(err));
                return;
        }
        static const char *const backends[] = {"qemu", "clh", "libvirt"};
        const struct cc_toml_table *hv = NULL;
        for (size_t i = 0; i < CC_ARRAY_SIZE(backends) && !hv; i++) {
                char key[64];
                snprintf(key, sizeof(key), "hypervisor.%s", backends[i]);
                if (cc_toml_get_table(doc, key, &hv, NULL) == 0)
                        h->backend = strdup(backends[i]);
        }
        if (!hv) {
                h->error = strdup("no [hypervisor.qemu], [hypervisor.clh] or "
                                  "[hypervisor.libvirt] table");
                return;
        }
        const char *s;
        if (cc_toml_get_string(hv, "path", &s, NULL) == 0)
                h->vmm_path = strdup(s);
        if (cc_toml_get_string(hv, "kernel", &s, NULL) == 0)
                h->kernel = strdup(s);
        if (cc_toml_get_string(hv, "initrd", &s, NULL) == 0 && *s)
                h->initrd = strdup(s);
        if (cc_toml_get_string(hv, "firmware", &s, NULL) == 0 && *s)
                h->firmware = strdup(s);
        const struct cc_toml_table *agent = NULL, *ak = NULL;
        if (cc_toml_get_table(doc, "agent", &agent, NULL) == 0 &&
            cc_toml_get_table(agent, "kata", &ak, NULL) == 0)
                (void)cc_toml_get_bool(ak, "debug_console_enabled", &h->debug_console, NULL);
        const struct cc_toml_table *rt = NULL;
        (void)cc_toml_get_table(doc, "runtime", &rt, NULL);
        struct shim_anno_policy p = {0};
        if (shim_anno_policy_load(hv, rt, &p, &err) < 0)
                h->error = strdup(cc_error_message(err));
        else
                h->annotations = shim_anno_policy_describe(&p);
        shim_anno_policy_done(&p);
}

static void builtin_handlers(struct handler *hs, size_t *n)
{
        static const struct {
                const char *name, *backend, *fw;
                enum hv_tee tee;
        } list[] = {
                {"kata-qemu", "qemu", NULL, HV_TEE_NONE},
                {"kata-qemu-tdx", "qemu", SHARE "/ovmf/OVMF.inteltdx.fd", HV_TEE_TDX},
                {"kata-qemu-sev", "qemu", SHARE "/ovmf/AMDSEV.fd", HV_TEE_SEV},
                {"kata-qemu-snp", "qemu", SHARE "/ovmf/AMDSEV.fd", HV_TEE_SEV_SNP},
                {"kata-clh", "clh", NULL, HV_TEE_NONE},
                {"kata-clh-tdx", "clh", SHARE "/td-shim/td-shim.bin", HV_TEE_TDX},
                {"kata-libvirt", "libvirt", NULL, HV_TEE_NONE},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(list); i++) {
                struct handler *h = &hs[(*n)++];
                *h = (struct handler){.name = strdup(list[i].name),
                                      .backend = strdup(list[i].backend),
                                      .tee = list[i].tee,
                                      .kernel = strdup(SHARE "/kata-containers/vmlinuz"),
                                      .initrd = strdup(SHARE "/kata-containers/initrd.img"),
                                      .firmware = dup_or_null(list[i].fw)};
        }
}

static void print_host(const char *libvirt_uri)
{
        struct hv_host h;
        hv__host_probe(NULL, &h);
        printf("host:\n");
        printf("  kvm:          %s%s\n", yes_no(h.kvm),
               !h.kvm && h.kvm_dev ? " (/dev/kvm exists, but no kvm_intel/kvm_amd module: not "
                                     "hardware KVM)"
                                   : "");
        printf("  vhost-vsock:  %s\n", yes_no(h.vhost_vsock));
        printf("  tdx:          %s\n", yes_no(h.tdx));
        printf("  sev:          %s (sev-es %s, sev-snp %s)\n", yes_no(h.sev), yes_no(h.sev_es),
               yes_no(h.sev_snp));
        unsigned qv = hv_qemu_binary_version("qemu-system-x86_64");
        if (qv)
                printf("  qemu:         %u.%u.%u\n", qv / 10000, qv / 100 % 100, qv % 100);
        else
                printf("  qemu:         not found\n");
        unsigned long lv = 0;
        virGetVersion(&lv, NULL, NULL);
        printf("  libvirt:      %lu.%lu.%lu (client library; daemon at %s checked per handler)\n",
               lv / 1000000, lv / 1000 % 1000, lv % 1000, libvirt_uri);
}

/*
 * Which kernel the handler's VMs boot: the version string from the bzImage's header, and the
 * source package from the guest image's manifest.txt beside it when there is one. Information
 * only: whether the handler can run is hv_check()'s answer above.
 */
static void print_kernel(const char *path)
{
        if (!path)
                return;
        char ver[256];
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv__kernel_version(path, ver, sizeof(ver), &err) < 0) {
                printf("    kernel: %s\n", cc_error_message(err));
                return;
        }
        printf("    kernel: %s: %s\n", path, ver);
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return;
        char *slash = strrchr(copy, '/');
        _cleanup_free_ char *manifest =
                slash ? (*slash = '\0', hv__path(*copy ? copy : "/", "manifest.txt"))
                      : strdup("manifest.txt");
        _cleanup_fclose_ FILE *f = manifest ? fopen(manifest, "re") : NULL;
        char line[512];
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "kernel-package ", 15) == 0 ||
                    (strncmp(line, "sha256 ", 7) == 0 && strstr(line, " vmlinuz")))
                        printf("    kernel: %s (%s)\n", line, manifest);
        }
}

static void usage(FILE *f)
{
        fputs("usage: cc-runtime check [--config FILE]... [--kernel PATH] [--initrd PATH] "
              "[--libvirt-uri URI]\n"
              "       cc-runtime exec [--namespace NS] SANDBOX_ID   (the agent's debug console)\n",
              f);
}

static int cmd_check(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"kernel", required_argument, NULL, 'k'},
                {"initrd", required_argument, NULL, 'i'},
                {"libvirt-uri", required_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *configs[64];
        size_t n_configs = 0;
        const char *kernel = NULL, *initrd = NULL, *uri = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "c:k:i:u:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (n_configs < CC_ARRAY_SIZE(configs))
                                configs[n_configs++] = optarg;
                        break;
                case 'k':
                        kernel = optarg;
                        break;
                case 'i':
                        initrd = optarg;
                        break;
                case 'u':
                        uri = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        struct handler hs[64] = {0};
        size_t n = 0;
        _cleanup_free_ char *dirpaths = NULL;
        if (n_configs == 0) {
                const char *dir =
                        getenv("CC_CONFIG_DIR") ? getenv("CC_CONFIG_DIR") : DEFAULT_CONFIG_DIR;
                struct dirent **ents = NULL;
                int m = scandir(dir, &ents, NULL, alphasort);
                for (int i = 0; i < m; i++) {
                        size_t l = strlen(ents[i]->d_name);
                        if (l > 5 && strcmp(ents[i]->d_name + l - 5, ".toml") == 0 && n < 64) {
                                _cleanup_free_ char *p = hv__path(dir, ents[i]->d_name);
                                if (p)
                                        load_config(p, &hs[n++]);
                        }
                        free(ents[i]);
                }
                free(ents);
                if (n == 0)
                        builtin_handlers(hs, &n);
        } else {
                for (size_t i = 0; i < n_configs; i++)
                        load_config(configs[i], &hs[n++]);
        }
        print_host(uri ? uri : "qemu:///system");
        printf("handlers:\n");
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
                struct handler *h = &hs[i];
                printf("  %-20s %-8s %-8s ", h->name ? h->name : "?", h->backend ? h->backend : "?",
                       hv_tee_to_string(h->tee));
                if (h->error) {
                        printf("no: configuration: %s\n", h->error);
                        bad++;
                        continue;
                }
                struct hv_config cfg = {
                        .backend = h->backend,
                        .name = "check",
                        .run_dir = "/run",
                        .vmm_path = h->vmm_path,
                        .libvirt_uri = uri,
                        .kernel = kernel ? kernel : h->kernel,
                        .initrd = initrd ? initrd : h->initrd,
                        .firmware = h->firmware,
                        .tee = {.kind = h->tee},
                };
                _cleanup_error_ struct cc_error *err = NULL;
                if (hv_check(&cfg, &err) == 0) {
                        printf("yes\n");
                } else {
                        const char *m = cc_error_message(err);
                        const char *prefix = "host cannot run this VM: ";
                        if (strncmp(m, prefix, strlen(prefix)) == 0)
                                m += strlen(prefix);
                        printf("no: %s\n", m);
                        bad++;
                }
                /* Only for a handler the shim could use (qemu, clh): the built-in list has
                 * no files, so nothing is enabled there either. */
                printf("      annotations: %s\n", h->annotations ? h->annotations : "none");
                /* A shell in the guest: said for every handler, loudly for a TEE one. */
                printf("      debug console: %s\n",
                       !h->debug_console ? "off (cc-runtime exec is refused)"
                       : h->tee != HV_TEE_NONE
                               ? "ENABLED in a TEE handler: the guest has a root shell; "
                                 "agent.debug_console is on the measured kernel command line"
                               : "enabled (cc-runtime exec SANDBOX_ID; development only)");
                print_kernel(cfg.kernel);
        }
        for (size_t i = 0; i < n; i++) {
                free(hs[i].name);
                free(hs[i].backend);
                free(hs[i].vmm_path);
                free(hs[i].kernel);
                free(hs[i].initrd);
                free(hs[i].firmware);
                free(hs[i].error);
                free(hs[i].annotations);
        }
        return bad ? 1 : 0;
}

/* What the agent writes when a session's shell has exited, and what it takes out of our
 * stream as the window size (guest-agent/agent.h: AGENT_DEBUG_CONSOLE_END, _WINSIZE). */
#define CONSOLE_END     "\r\n[cc-agent: debug console session ended]\r\n"
#define CONSOLE_WINSIZE "\033_cc-winsize=%u;%u\033\\"

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
        if (tio_saved)
                tcsetattr(0, TCSADRAIN, &saved_tio);
}

/* Sends the local terminal's size (if stdin or stdout is one) for the guest's pty: 1 sent,
 * 0 no terminal, -errno. */
static int send_winsize(int fd)
{
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) < 0 && ioctl(1, TIOCGWINSZ, &ws) < 0)
                return 0;
        if (!ws.ws_row || !ws.ws_col)
                return 0;
        char seq[48];
        int n = snprintf(seq, sizeof(seq), CONSOLE_WINSIZE, ws.ws_row, ws.ws_col);
        int r = cc_write_all(fd, seq, (size_t)n);
        return r < 0 ? r : 1;
}

/*
 * The console's address the shim wrote in the sandbox's run directory ($CC_SHIM_RUN_DIR,
 * default /run/kata-cc-shim, then sha256(NS/SANDBOX)), dialled: the agent's vsock (or hybrid
 * vsock) port 1026 as kata-runtime exec dials it, or the console's virtio-serial socket.
 */
static int open_console(const char *ns, const char *id, char **addr_ret)
{
        _cleanup_free_ char *dir = NULL, *path = NULL, *addr = NULL;
        if (shim_vm_run_dir(ns, id, &dir) < 0 ||
            asprintf(&path, "%s/%s", dir, SHIM_DEBUG_CONSOLE_ADDR) < 0)
                return -ENOMEM;
        if (access(dir, F_OK) < 0) {
                fprintf(stderr,
                        "cc-runtime exec: no sandbox %s in namespace %s on this node (%s)\n", id,
                        ns, dir);
                return -ENOENT;
        }
        size_t len;
        if (cc_read_file(path, 4096, &addr, &len, NULL) < 0) {
                fprintf(stderr,
                        "cc-runtime exec: sandbox %s has no debug console: its handler's "
                        "configuration does not set debug_console_enabled = true in "
                        "[agent.kata] (off by default; a TEE handler gets one only from its own "
                        "configuration, and it is then on the measured kernel command line)\n",
                        id);
                return -ENOENT;
        }
        addr[strcspn(addr, "\r\n")] = '\0';
        _cleanup_error_ struct cc_error *err = NULL;
        int fd = hv_agent_dial(addr, 5000, &err);
        if (fd < 0) {
                fprintf(stderr,
                        "cc-runtime exec: cannot reach the debug console of sandbox %s: %s\n", id,
                        cc_error_message(err));
                return fd;
        }
        *addr_ret = TAKE_PTR(addr);
        return fd;
}

/* Whether the last bytes seen (kept in tail) are the agent's end line. */
static bool end_seen(char *tail, size_t *tail_len, const char *buf, size_t n)
{
        size_t end_len = strlen(CONSOLE_END);
        for (size_t i = 0; i < n; i++) {
                if (*tail_len == end_len) {
                        memmove(tail, tail + 1, end_len - 1);
                        (*tail_len)--;
                }
                tail[(*tail_len)++] = buf[i];
        }
        return *tail_len == end_len && memcmp(tail, CONSOLE_END, end_len) == 0;
}

/* Relays the terminal and the console until the session ends (0) or the console closes (-EPIPE);
 * a resize of the terminal (SIGWINCH, on sigfd) is sent on. */
static int relay(int fd, int sigfd)
{
        char buf[4096], tail[sizeof(CONSOLE_END)];
        size_t tail_len = 0;
        bool in_open = true;
        for (;;) {
                struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
                                      {.fd = in_open ? 0 : -1, .events = POLLIN},
                                      {.fd = sigfd, .events = POLLIN}};
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents) {
                        ssize_t n = read(fd, buf, sizeof(buf));
                        if (n <= 0)
                                return -EPIPE;
                        if (cc_write_all(1, buf, (size_t)n) < 0)
                                return -EIO;
                        if (end_seen(tail, &tail_len, buf, (size_t)n))
                                return 0;
                }
                /* A resize before what was typed after it. */
                if (sigfd >= 0 && p[2].revents) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) > 0 && send_winsize(fd) < 0)
                                return -EPIPE;
                }
                if (in_open && p[1].revents) {
                        ssize_t n = read(0, buf, sizeof(buf));
                        if (n <= 0)
                                in_open = false; /* keep showing the session until it ends */
                        else if (cc_write_all(fd, buf, (size_t)n) < 0)
                                return -EPIPE;
                }
        }
}

/*
 * cc-runtime exec [--namespace NS] SANDBOX: a terminal on the guest agent's debug console, as
 * `kata-runtime exec` does: the local terminal in raw mode while connected, its size sent at
 * the start and at every resize, the session's end (the shell exited: the agent's end line)
 * returns 0, the console closing under it (the VM went away) 1. Only a sandbox whose handler's
 * configuration sets debug_console_enabled has a console; everything else is refused with the
 * reason.
 */
static int cmd_exec(int argc, char **argv)
{
        static const struct option opts[] = {
                {"namespace", required_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *ns = "k8s.io";
        int c;
        while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        ns = optarg;
                        break;
                case 'h':
                        puts("usage: cc-runtime exec [--namespace NS] SANDBOX_ID");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind + 1 != argc) {
                fputs("usage: cc-runtime exec [--namespace NS] SANDBOX_ID\n", stderr);
                return 2;
        }
        const char *id = argv[optind];
        _cleanup_free_ char *addr = NULL;
        _cleanup_close_ int fd = open_console(ns, id, &addr);
        if (fd < 0)
                return 1;
        /* SIGWINCH through a signalfd: blocked first, so none is lost between the first size
         * sent and the poll. */
        sigset_t winch;
        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        sigprocmask(SIG_BLOCK, &winch, NULL);
        _cleanup_close_ int sigfd = signalfd(-1, &winch, SFD_CLOEXEC);
        if (isatty(0) && tcgetattr(0, &saved_tio) == 0) {
                struct termios raw = saved_tio;
                cfmakeraw(&raw);
                tio_saved = tcsetattr(0, TCSADRAIN, &raw) == 0;
                atexit(restore_tty);
        }
        fprintf(stderr,
                "cc-runtime exec: debug console of sandbox %s (the shell's exit ends the "
                "session)\r\n",
                id);
        /* The size first. A virtio-serial port's session starts with the host's first byte:
         * without a terminal (no size) a carriage return starts it. */
        int sent = send_winsize(fd);
        if (sent < 0 ||
            (sent == 0 && strncmp(addr, "unix:", 5) == 0 && cc_write_all(fd, "\r", 1) < 0)) {
                fputs("\r\ncc-runtime exec: the console closed\r\n", stderr);
                return 1;
        }
        int r = relay(fd, sigfd);
        if (r < 0)
                fprintf(stderr,
                        "\r\ncc-runtime exec: the console closed under the session (%s)\r\n",
                        strerror(-r));
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "exec") == 0)
                return cmd_exec(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "check") == 0)
                return cmd_check(argc - 1, argv + 1);
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                usage(stdout);
                return 0;
        }
        usage(stderr);
        return 2;
}
