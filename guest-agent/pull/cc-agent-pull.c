/*
 * cc-agent-pull: one image pull for cc-agent-static, which starts it per pull (or ahead, at
 * CreateSandbox, for the pod's first pull) and talks to it over fd 3 (protocol in
 * guest-agent/variants/image-pull-exec.c). It pulls the image into the VM's layer store and
 * mounts the container's rootfs, exactly as cc-agent does in-process (image-pull.c), then
 * exits; the mount stays, since the helper shares the agent's mount namespace.
 *
 *   cc-agent-pull --containers-dir DIR [--image-insecure LIST] [--log-level L] [--wait S]
 *
 * With --wait S > 0 it is a spare: it sets up the pull library, then waits at most S seconds
 * for its request and exits quietly without one. An end of the channel before a request (the
 * agent went away, or dropped the spare) is a quiet exit too.
 *
 * Only the agent runs it: the settings come from the agent's own configuration and the
 * request from calls the agent has already admitted (policy, identifier checks); the checks
 * here only keep a broken request from reaching the file system.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/fileio.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/image-pull.h"
#include "guest-agent/pull/confine.h"
#include "guest-agent/image/image.h"

#define CHAN      3
#define IMAGE_MAX 4096
#define ID_MAX    256

/* One field: "<n>\n" then n bytes (n <= max), as a NUL-terminated string in *ret.
 * -ENODATA when the channel ends before the field starts. */
static int read_field(size_t max, char **ret)
{
        char hdr[16];
        size_t len = 0;
        int r;
        for (;;) {
                if (len == sizeof(hdr) - 1)
                        return -EPROTO;
                if ((r = cc_read_full(CHAN, hdr + len, 1)) < 0)
                        return r == -EPIPE && len == 0 ? -ENODATA : r;
                if (hdr[len] == '\n')
                        break;
                len++;
        }
        hdr[len] = '\0';
        char *end = NULL;
        unsigned long n = strtoul(hdr, &end, 10);
        if (end == hdr || *end || n > max)
                return -EPROTO;
        _cleanup_free_ char *s = calloc(1, n + 1);
        if (!s)
                return -ENOMEM;
        if ((r = cc_read_full(CHAN, s, n)) < 0)
                return r;
        if (strlen(s) != n)
                return -EPROTO; /* a NUL inside */
        *ret = TAKE_PTR(s);
        return 0;
}

/* One line "<errno> <message>\n"; a message's own newlines become spaces. */
static void answer(int errnum, const char *msg)
{
        _cleanup_free_ char *line = NULL;
        int n = asprintf(&line, "%d %s\n", errnum, msg);
        if (n < 0)
                return;
        for (int i = 0; i < n - 1; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        (void)cc_write_all(CHAN, line, (size_t)n);
}

static _noreturn_ void usage_error(const char *what)
{
        fprintf(stderr, "cc-agent-pull: %s\nusage: cc-agent-pull --containers-dir DIR "
                        "[--image-insecure LIST] [--log-level L] [--wait SECONDS]\n",
                what);
        answer(EINVAL, what);
        exit(2);
}

/* A container id the agent validated: never empty, ".", ".." or with a '/'. */
static bool plausible_id(const char *id)
{
        return id[0] && strcmp(id, ".") != 0 && strcmp(id, "..") != 0 && !strchr(id, '/');
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"containers-dir", required_argument, NULL, 'c'},
                {"image-insecure", required_argument, NULL, 'i'},
                {"log-level", required_argument, NULL, 'l'},
                {"wait", required_argument, NULL, 'w'},
                {},
        };
        struct agent_pull_req req = {0};
        unsigned wait_s = 0;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                enum cc_log_level level;
                switch (c) {
                case 'c': req.containers_dir = optarg; break;
                case 'i': req.image_insecure = optarg; break;
                case 'l':
                        if (cc_log_level_from_string(optarg, &level) == 0)
                                cc_log_set_level(level);
                        break;
                case 'w': wait_s = (unsigned)strtoul(optarg, NULL, 10); break;
                default: usage_error("unknown option");
                }
        }
        if (optind != argc)
                usage_error("unexpected arguments");
        if (!req.containers_dir || req.containers_dir[0] != '/')
                usage_error("--containers-dir must be an absolute path");
        cc_log_set_fields("component=cc-agent-pull");
        _cleanup_error_ struct cc_error *cerr = NULL;
        if (pull_confine(&cerr) < 0) {
                /* Fail closed: no pull without the confinement. */
                cc_log_error("image pull helper: %s", cc_error_message(cerr));
                answer(EPERM, "image pull helper: cannot confine itself");
                return 2;
        }

        struct timespec t0 = {0}, t1 = {0};
        if (wait_s) {
                /* What every pull sets up first, done while nobody waits for it. */
                clock_gettime(CLOCK_MONOTONIC, &t0);
                img_prepare();
                agent_image_pull_prepare(&req);
                struct pollfd p = {.fd = CHAN, .events = POLLIN};
                int n = poll(&p, 1, (int)(wait_s > 3600 ? 3600 : wait_s) * 1000);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                if (n == 0) {
                        cc_log_debug("spare helper: no pull within %u s", wait_s);
                        agent_image_pull_unprepare();
                        return 0;
                }
        }
        _cleanup_free_ char *image = NULL, *id = NULL, *creds = NULL;
        int r = read_field(IMAGE_MAX, &image);
        if (r == -ENODATA)
                return 0;
        if (r == 0)
                r = read_field(ID_MAX, &id);
        if (r == 0)
                r = read_field(AGENT_PULL_CREDS_MAX, &creds);
        if (r < 0 || !image[0] || !plausible_id(id)) {
                fprintf(stderr, "cc-agent-pull: no valid request on fd %d: %s\n", CHAN,
                        r < 0 ? strerror(-r) : "empty image or bad container id");
                answer(r < 0 ? -r : EINVAL, "image pull helper: no valid request on its channel");
                return 2;
        }
        req.image = image;
        req.container_id = id;
        req.creds = creds[0] ? creds : NULL;
        if (wait_s)
                /* When the request came against the spare's setup and early attestation (their
                 * own lines): what of them the pull still waits for (bench/pod-kbs.sh). */
                cc_log_info("spare helper: pulling %s for %s, the request %.0f ms after its "
                            "setup began",
                            req.image, req.container_id,
                            (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        else
                cc_log_debug("pulling %s for %s", req.image, req.container_id);

        _cleanup_error_ struct cc_error *err = NULL;
        r = agent_image_pull_here(&req, &err);
        explicit_bzero(creds, strlen(creds));
        if (r < 0) {
                answer(-r, err ? cc_error_message(err) : strerror(-r));
                return 1;
        }
        answer(0, "ok");
        return 0;
}
