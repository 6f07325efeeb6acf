/*
 * cc-snapshotter: the daemon. Reads its configuration, opens (and repairs) its state, and only
 * then creates its socket, so containerd never reaches a half-ready snapshotter; serves until
 * SIGTERM/SIGINT. Request errors never end the process.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/grpc.h"
#include "cc/log.h"

#include "snapshotter/snap.h"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: cc-snapshotter [OPTIONS]\n"
                "containerd proxy snapshotter for Confidential Containers (guest pull).\n\n"
                "  --config FILE      TOML configuration (see configs/snapshotter/config.toml)\n"
                "  --root DIR         state directory (overrides the configuration)\n"
                "  --address PATH     unix socket to serve on (overrides the configuration)\n"
                "  --log-level LEVEL  trace|debug|info|warn|error (overrides the configuration)\n"
                "  --check            check the state database's integrity and exit\n"
                "  --help             this text\n");
}

static int replace(char **dst, const char *v)
{
        char *n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

/* Binds the socket 0600, after removing a stale one (a live one is an error). */
static int listen_unix(const char *path, struct cc_error **err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return cc_error_set(err, ENAMETOOLONG, "socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return cc_error_set(err, ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                int r = cc_mkdir_p(dir, 0711);
                if (r < 0)
                        return cc_error_set(err, -r, "create %s", dir);
        }
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return cc_error_set(err, EEXIST, "%s exists and is not a socket", path);
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return cc_error_set(err, EADDRINUSE,
                                            "another snapshotter serves %s already", path);
                if (unlink(path) < 0)
                        return cc_error_set(err, errno, "remove stale socket %s", path);
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cc_error_set(err, errno, "socket");
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return cc_error_set(err, errno, "bind %s", path);
        if (listen(fd, 128) < 0)
                return cc_error_set(err, errno, "listen %s", path);
        return TAKE_FD(fd);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"root", required_argument, NULL, 'r'},
                {"address", required_argument, NULL, 'a'},
                {"log-level", required_argument, NULL, 'l'},
                {"check", no_argument, NULL, 'C'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *config = NULL, *root = NULL, *address = NULL, *level = NULL;
        bool check = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:r:a:l:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'r':
                        root = optarg;
                        break;
                case 'a':
                        address = optarg;
                        break;
                case 'l':
                        level = optarg;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }

        struct snap_config cfg;
        snap_config_init(&cfg);
        _cleanup_error_ struct cc_error *err = NULL;
        if (config && snap_config_load(&cfg, config, &err) < 0) {
                cc_log_error("configuration: %s", cc_error_message(err));
                snap_config_clear(&cfg);
                return 1;
        }
        if ((root && replace(&cfg.root, root) < 0) ||
            (address && replace(&cfg.address, address) < 0) ||
            (level && replace(&cfg.log_level, level) < 0)) {
                snap_config_clear(&cfg);
                return 1;
        }
        enum cc_log_level lv;
        if (cc_log_level_from_string(cfg.log_level, &lv) < 0) {
                cc_log_error("unknown log level %s", cfg.log_level);
                snap_config_clear(&cfg);
                return 2;
        }
        cc_log_set_level(lv);
        if (cfg.root[0] != '/' || cfg.address[0] != '/') {
                cc_log_error("--root and --address must be absolute paths");
                snap_config_clear(&cfg);
                return 2;
        }

        /* Handled by sigwait below; blocked before any thread starts so all inherit it. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (check) {
                /* Read-only check, safe next to a running daemon: no sweep, no socket. */
                _cleanup_free_ char *db = NULL;
                struct snap_store *st = NULL;
                int r = asprintf(&db, "%s/metadata.db", cfg.root) < 0 ? -ENOMEM : 0;
                if (r == 0)
                        r = snap_store_open(db, &st, &err);
                if (r == 0)
                        r = snap_store_check(st, &err);
                if (r < 0)
                        fprintf(stderr, "%s\n", err ? cc_error_message(err) : strerror(-r));
                else
                        printf("ok\n");
                snap_store_close(st);
                snap_config_clear(&cfg);
                return r < 0 ? 1 : 0;
        }

        struct snap *s = NULL;
        if (snap_open(&cfg, &s, &err) < 0) {
                cc_log_error("open state in %s: %s", cfg.root, cc_error_message(err));
                snap_config_clear(&cfg);
                return 1;
        }

        struct cc_grpc_server *srv = NULL;
        int fd = listen_unix(cfg.address, &err);
        int r = fd < 0 ? fd : cc_grpc_server_new(NULL, &srv);
        if (r == 0)
                r = cc_grpc_server_register(srv, &snap_grpc_service, s);
        if (r == 0) {
                r = cc_grpc_server_listen(srv, fd);
                fd = -1;
        }
        if (r < 0) {
                cc_log_error("serve %s: %s", cfg.address,
                             err ? cc_error_message(err) : strerror(-r));
                cc_close(fd);
                cc_grpc_server_free(srv);
                snap_close(s);
                snap_config_clear(&cfg);
                return 1;
        }
        cc_log_info("serving on %s (root %s, default mode %s)", cfg.address, cfg.root,
                    snap_mode_to_string(cfg.default_mode));

        int sig = 0;
        sigwait(&set, &sig);
        cc_log_info("signal %d: shutting down", sig);
        cc_grpc_server_free(srv);
        unlink(cfg.address);
        snap_close(s);
        snap_config_clear(&cfg);
        return 0;
}
