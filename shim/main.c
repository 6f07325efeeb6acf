/*
 * containerd-shim-kata-cc-v2: the binary containerd runs for io.containerd.kata-cc.v2
 * (reference shim-v2-ttrpc.md section 1).
 *
 *   <shim> -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start
 *   <shim> -namespace NS -address ADDR -publish-binary BIN -id ID -bundle DIR delete
 *   <shim> -namespace NS -address ADDR -publish-binary BIN -id ID [-debug]   (the daemon:
 *          the listening socket is fd 3, or -socket PATH)
 *   <shim> -v | -version | -info
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"
#include "cc/ttrpc.h"

#include "containerd/task/v2/shim.pb-c.h"
#include "shim/shim.h"

struct flags {
        const char *ns, *address, *publish_binary, *id, *bundle, *socket;
        bool debug, version, info;
        const char *action;
};

/* Go's flag package: -name value, --name value, -name=value; booleans take no value. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
        static const char *const str_flags[] = {"namespace", "address", "publish-binary", "id",
                                                "bundle", "socket"};
        const char **str_dst[] = {&f->ns, &f->address, &f->publish_binary, &f->id, &f->bundle,
                                  &f->socket};
        int i = 1;
        for (; i < argc; i++) {
                const char *a = argv[i];
                if (a[0] != '-' || a[1] == '\0')
                        break;
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                const char *name = a + (a[1] == '-' ? 2 : 1);
                const char *eq = strchr(name, '=');
                size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
                bool done = false;
                for (size_t k = 0; k < CC_ARRAY_SIZE(str_flags) && !done; k++) {
                        if (strlen(str_flags[k]) != nlen || strncmp(name, str_flags[k], nlen))
                                continue;
                        if (eq)
                                *str_dst[k] = eq + 1;
                        else if (i + 1 < argc)
                                *str_dst[k] = argv[++i];
                        else {
                                fprintf(stderr, "flag needs an argument: -%s\n", str_flags[k]);
                                return -EINVAL;
                        }
                        done = true;
                }
                static const char *const bool_flags[] = {"debug", "v", "version", "info"};
                bool *bool_dst[] = {&f->debug, &f->version, &f->version, &f->info};
                for (size_t k = 0; k < CC_ARRAY_SIZE(bool_flags) && !done; k++) {
                        if (strlen(bool_flags[k]) != nlen || strncmp(name, bool_flags[k], nlen))
                                continue;
                        *bool_dst[k] = !eq || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0;
                        done = true;
                }
                if (!done) {
                        fprintf(stderr, "flag provided but not defined: %s\n", a);
                        return -EINVAL;
                }
        }
        f->action = i < argc ? argv[i] : NULL;
        return 0;
}

/* Reads and discards stdin (the runtime options or BootstrapParams; we take the options from
 * Create instead), waiting at most a second for a writer that never closes. */
static void drain_stdin(void)
{
        char buf[4096];
        for (;;) {
                struct pollfd p = {.fd = 0, .events = POLLIN};
                if (poll(&p, 1, 1000) <= 0)
                        return;
                ssize_t n = read(0, buf, sizeof(buf));
                if (n <= 0 && !(n < 0 && errno == EINTR))
                        return;
        }
}

static int write_file_atomic(const char *name, const char *content)
{
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        size_t len = strlen(content);
        if (write(fd, content, len) != (ssize_t)len)
                return -EIO;
        if (rename(tmp, name) < 0)
                return -errno;
        return 0;
}

static int read_spec(const char *dir, struct json_object **ret)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/config.json", dir) < 0)
                return -ENOMEM;
        _cleanup_error_ struct cc_error *e = NULL;
        int r = cc_json_parse_file(p, 0, 0, ret, &e);
        if (r < 0)
                fprintf(stderr, "%s\n", cc_error_message(e));
        return r;
}

/* A listening socket at path; -EADDRINUSE when a live daemon already answers there. */
static int listen_at(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        for (int attempt = 0; attempt < 2; attempt++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
                                int e = errno;
                                close(fd);
                                unlink(path);
                                return -e;
                        }
                        return fd;
                }
                int e = errno;
                close(fd);
                if (e != EADDRINUSE)
                        return -e;
                int c = cc_unix_connect(path);
                if (c >= 0) {
                        close(c);
                        return -EADDRINUSE;
                }
                unlink(path); /* stale: nobody answers */
        }
        return -EADDRINUSE;
}

static int cmd_start(const struct flags *f)
{
        drain_stdin();
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
                return -errno;
        _cleanup_json_ struct json_object *spec = NULL;
        int r = read_spec(cwd, &spec);
        if (r < 0)
                return r;
        const char *sbid = NULL;
        enum shim_role role = shim_spec_role(spec, f->id, &sbid);
        _cleanup_free_ char *addr = NULL;
        if ((r = shim_socket_address(f->address, f->ns, sbid, &addr)) < 0)
                return r;
        if (role == SHIM_ROLE_CONTAINER) {
                /* The pod's daemon already runs: this task gets the sandbox's address. */
                if ((r = write_file_atomic("address", addr)) < 0)
                        return r;
                printf("%s", addr);
                return 0;
        }
        (void)mkdir("/run/containerd", 0711);
        if (mkdir(SHIM_SOCKET_DIR, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "mkdir %s: %m\n", SHIM_SOCKET_DIR);
                return -errno;
        }
        const char *path = addr + strlen("unix://");
        int lfd = listen_at(path);
        if (lfd == -EADDRINUSE) {
                if ((r = write_file_atomic("address", addr)) < 0)
                        return r;
                printf("%s", addr);
                return 0;
        }
        if (lfd < 0) {
                fprintf(stderr, "listen on %s: %s\n", path, strerror(-lfd));
                return lfd;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(lfd);
                unlink(path);
                return -e;
        }
        if (pid == 0) {
                /* The daemon: its own session (containerd's signals to the start process's
                 * group do not reach it), stdio on /dev/null so containerd's CombinedOutput
                 * sees EOF, the listening socket as fd 3. */
                setsid();
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                }
                if (lfd != 3) {
                        dup2(lfd, 3); /* dup2 clears FD_CLOEXEC on the copy */
                } else {
                        int fl = fcntl(3, F_GETFD);
                        fcntl(3, F_SETFD, fl & ~FD_CLOEXEC);
                }
                /* Nothing else of containerd's (or ctr's) leaks into the daemon. */
                close_range(4, ~0u, 0);
                char *args[16];
                int n = 0;
                args[n++] = (char *)SHIM_NAME;
                args[n++] = "-namespace";
                args[n++] = (char *)f->ns;
                args[n++] = "-address";
                args[n++] = (char *)f->address;
                if (f->publish_binary) {
                        args[n++] = "-publish-binary";
                        args[n++] = (char *)f->publish_binary;
                }
                args[n++] = "-id";
                args[n++] = (char *)f->id;
                if (f->debug)
                        args[n++] = "-debug";
                args[n] = NULL;
                execv("/proc/self/exe", args);
                _exit(127);
        }
        close(lfd);
        char pidbuf[32];
        snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
        if ((r = write_file_atomic("shim.pid", pidbuf)) < 0 ||
            (r = write_file_atomic("address", addr)) < 0) {
                kill(pid, SIGKILL);
                unlink(path);
                return r;
        }
        printf("%s", addr);
        return 0;
}

static bool pid_is_shim(int pid)
{
        char p[64], buf[256] = "";
        snprintf(p, sizeof(p), "/proc/%d/cmdline", pid);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, "containerd-shim") != NULL;
}

static int cmd_delete(const struct flags *f)
{
        /* Cleans what a dead shim left of this task. stdout carries only the answer. */
        char cwd[PATH_MAX];
        const char *bundle = f->bundle;
        if (!bundle)
                bundle = getcwd(cwd, sizeof(cwd));
        _cleanup_json_ struct json_object *spec = NULL;
        if (bundle)
                (void)read_spec(bundle, &spec);
        const char *sbid = NULL;
        enum shim_role role = shim_spec_role(spec, f->id, &sbid);
        if (bundle) {
                /* A rootfs the daemon had mounted to copy it into the guest, if it died then. */
                char rootfs[PATH_MAX];
                snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
                if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                        fprintf(stderr, "umount %s: %m\n", rootfs);
        }
        if (role != SHIM_ROLE_CONTAINER && bundle) {
                char p[PATH_MAX];
                /* The daemon, if it still lives but lost containerd (hung). */
                snprintf(p, sizeof(p), "%s/shim.pid", bundle);
                _cleanup_fclose_ FILE *pf = fopen(p, "re");
                int pid = 0;
                if (pf && fscanf(pf, "%d", &pid) == 1 && pid > 1 && pid != getpid() &&
                    pid_is_shim(pid))
                        kill(pid, SIGKILL);
                _cleanup_free_ char *run_dir = NULL;
                if (shim_vm_run_dir(f->ns, f->id, &run_dir) == 0)
                        shim_sandbox_cleanup_dead(run_dir);
                _cleanup_free_ char *addr = NULL;
                if (shim_socket_address(f->address, f->ns, f->id, &addr) == 0)
                        unlink(addr + strlen("unix://"));
                snprintf(p, sizeof(p), "%s/shim.pid", bundle);
                unlink(p);
        }
        struct timespec now;
        shim_now(&now);
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = now.tv_sec;
        ts.nanos = (int32_t)now.tv_nsec;
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        resp.exit_status = 128 + SIGKILL;
        resp.exited_at = &ts;
        uint8_t buf[64];
        size_t n = containerd__task__v2__delete_response__pack(&resp, buf);
        return fwrite(buf, 1, n, stdout) == n ? 0 : -EIO;
}

/* -info: containerd.types.RuntimeInfo{name = 1, version = 2 RuntimeVersion{version = 1}}. */
static int cmd_info(void)
{
        drain_stdin();
        uint8_t buf[128];
        size_t n = 0, vlen = strlen(SHIM_VERSION), nlen = strlen(SHIM_NAME);
        buf[n++] = 0x0a;
        buf[n++] = (uint8_t)nlen;
        memcpy(buf + n, SHIM_NAME, nlen);
        n += nlen;
        buf[n++] = 0x12;
        buf[n++] = (uint8_t)(vlen + 2);
        buf[n++] = 0x0a;
        buf[n++] = (uint8_t)vlen;
        memcpy(buf + n, SHIM_VERSION, vlen);
        n += vlen;
        return fwrite(buf, 1, n, stdout) == n ? 0 : -EIO;
}

static int serve(const struct flags *f)
{
        /* One malloc arena: the daemon's threads mostly wait, and per-thread arenas would each
         * keep their own partly used pages. */
        mallopt(M_ARENA_MAX, 1);
        /* Log: containerd holds the read side of <bundle>/log; stderr goes there. */
        int logfd = open("log", O_WRONLY | O_CLOEXEC);
        if (logfd >= 0) {
                dup2(logfd, 2);
                close(logfd);
        }
        cc_log_set_fd(2);
        cc_log_set_level(f->debug ? CC_LOG_DEBUG : CC_LOG_INFO);
        char fields[256];
        snprintf(fields, sizeof(fields), "runtime=io.containerd.kata-cc.v2 id=%s namespace=%s",
                 f->id, f->ns);
        cc_log_set_fields(fields);

        int lfd = 3;
        if (f->socket) {
                lfd = cc_unix_listen(f->socket, 128);
                if (lfd < 0)
                        return cc_log_errno(CC_LOG_ERROR, -lfd, "listen %s", f->socket);
        } else {
                int acc = 0;
                socklen_t l = sizeof(acc);
                if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 || !acc)
                        return cc_log_errno(CC_LOG_ERROR, EBADF,
                                            "fd 3 is not a listening socket (run `start`)");
                fcntl(3, F_SETFD, FD_CLOEXEC);
        }
        struct sockaddr_un sa = {0};
        socklen_t salen = sizeof(sa);
        getsockname(lfd, (struct sockaddr *)&sa, &salen);

        /* SIGTERM/SIGINT arrive on a signalfd; blocked before any thread starts. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        int sfd = signalfd(-1, &set, SFD_CLOEXEC);

        struct shim_options o = {.ns = f->ns,
                                 .address = f->address,
                                 .ttrpc_address = getenv("TTRPC_ADDRESS"),
                                 .id = f->id,
                                 .publish_binary = f->publish_binary,
                                 .debug = f->debug};
        if (cc_isempty(o.ttrpc_address))
                cc_log_warn("TTRPC_ADDRESS is not set: events cannot be published");
        struct shim *s = NULL;
        int r = shim_new(&o, &s);
        if (r < 0)
                return cc_log_errno(CC_LOG_ERROR, -r, "init");
        struct cc_ttrpc_server_options so = {.require_same_user = true};
        struct cc_ttrpc_server *srv = NULL;
        if ((r = cc_ttrpc_server_new(&so, &srv)) < 0 || (r = shim_register(s, srv)) < 0 ||
            (r = cc_ttrpc_server_listen(srv, lfd)) < 0) {
                cc_log_errno(CC_LOG_ERROR, -r, "ttrpc server");
                cc_ttrpc_server_free(srv);
                shim_free(s);
                return r;
        }
        cc_log_info("serving on %s", sa.sun_path);
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = shim_exit_fd(s), .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) > 0)
                                cc_log_info("signal %u: shutting down", si.ssi_signo);
                        shim_teardown(s);
                        break;
                }
                if (p[1].revents) {
                        cc_log_info("shutdown: no task left");
                        break;
                }
        }
        if (sa.sun_path[0])
                unlink(sa.sun_path);
        cc_ttrpc_server_shutdown(srv);
        cc_ttrpc_server_free(srv);
        shim_free(s);
        cc_close(sfd);
        return 0;
}

int main(int argc, char **argv)
{
        struct flags f = {0};
        if (parse_flags(argc, argv, &f) < 0)
                return 2;
        if (f.version) {
                printf("%s:\n  Version:  %s\n  Runtime:  io.containerd.kata-cc.v2\n", SHIM_NAME,
                       SHIM_VERSION);
                return 0;
        }
        if (f.info)
                return cmd_info() < 0 ? 1 : 0;
        if (cc_isempty(f.ns)) {
                fprintf(stderr, "shim namespace cannot be empty\n");
                return 1;
        }
        if (cc_isempty(f.id)) {
                fprintf(stderr, "shim id cannot be empty\n");
                return 1;
        }
        if (cc_isempty(f.address))
                f.address = "/run/containerd/containerd.sock";
        int r;
        if (!f.action)
                r = serve(&f);
        else if (strcmp(f.action, "start") == 0)
                r = cmd_start(&f);
        else if (strcmp(f.action, "delete") == 0)
                r = cmd_delete(&f);
        else {
                fprintf(stderr, "unknown action '%s' (start, delete)\n", f.action);
                return 2;
        }
        fflush(stdout);
        if (r < 0 && f.action)
                fprintf(stderr, "%s: %s\n", f.action, strerror(-r));
        return r < 0 ? 1 : 0;
}
