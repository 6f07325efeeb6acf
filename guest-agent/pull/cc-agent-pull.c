/*
 * cc-agent-pull: one image pull for cc-agent-static, which starts it per PullImage (or
 * image_guest_pull storage) and talks to it over fd 3 (protocol in
 * guest-agent/variants/image-pull-exec.c). It pulls the image into the VM's layer store and
 * mounts the container's rootfs, exactly as cc-agent does in-process (image-pull.c), then
 * exits; the mount stays, since the helper shares the agent's mount namespace.
 *
 *   cc-agent-pull --containers-dir DIR [--image-insecure LIST] [--log-level L] -- IMAGE ID
 *
 * Only the agent runs it: the arguments come from the agent's own configuration and from
 * requests the agent has already admitted (policy, identifier checks).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/fileio.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/image-pull.h"

#define CHAN 3

/* "<n>\n" then n bytes: the source credentials ("" when n = 0). */
static int read_creds(char **ret)
{
        char hdr[16];
        size_t len = 0;
        int r;
        for (;;) {
                if (len == sizeof(hdr) - 1)
                        return -EPROTO;
                if ((r = cc_read_full(CHAN, hdr + len, 1)) < 0)
                        return r;
                if (hdr[len] == '\n')
                        break;
                len++;
        }
        hdr[len] = '\0';
        char *end = NULL;
        unsigned long n = strtoul(hdr, &end, 10);
        if (end == hdr || *end || n > AGENT_PULL_CREDS_MAX)
                return -EPROTO;
        _cleanup_free_ char *c = calloc(1, n + 1);
        if (!c)
                return -ENOMEM;
        if ((r = cc_read_full(CHAN, c, n)) < 0)
                return r;
        *ret = TAKE_PTR(c);
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
                        "[--image-insecure LIST] [--log-level L] -- IMAGE CONTAINER_ID\n",
                what);
        answer(EINVAL, what);
        exit(2);
}

int main(int argc, char **argv)
{
        /* The request first (see image-pull-exec.c: until then the helper must not exit). */
        _cleanup_free_ char *creds = NULL;
        int r = read_creds(&creds);
        if (r < 0) {
                fprintf(stderr, "cc-agent-pull: reading the request on fd %d: %s\n", CHAN,
                        strerror(-r));
                answer(-r, "image pull helper: no valid request on its channel");
                return 2;
        }

        static const struct option opts[] = {
                {"containers-dir", required_argument, NULL, 'c'},
                {"image-insecure", required_argument, NULL, 'i'},
                {"log-level", required_argument, NULL, 'l'},
                {},
        };
        struct agent_pull_req req = {0};
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
                default: usage_error("unknown option");
                }
        }
        if (argc - optind != 2)
                usage_error("expected IMAGE and CONTAINER_ID");
        if (!req.containers_dir || req.containers_dir[0] != '/')
                usage_error("--containers-dir must be an absolute path");
        req.image = argv[optind];
        req.container_id = argv[optind + 1];
        req.creds = creds[0] ? creds : NULL;
        cc_log_set_fields("component=cc-agent-pull");
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
