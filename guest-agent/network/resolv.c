/*
 * CreateSandbox.dns into the guest's resolv.conf. The lines come from the host, so each is
 * validated (one directive, no newline) before anything is written, and the file is replaced
 * atomically so a resolver never reads half of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/network/agent-net.h"

static int write_all(int fd, const char *s, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, s, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                s += w;
                n -= (size_t)w;
        }
        return 0;
}

int agent_net_write_resolv_conf(const char *path, char *const *dns, size_t n_dns,
                                struct cc_error **err)
{
        if (n_dns > AGENT_NET_MAX_DNS)
                return cc_error_set(err, EINVAL, "%zu DNS lines (at most %d)", n_dns,
                                    AGENT_NET_MAX_DNS);
        for (size_t i = 0; i < n_dns; i++) {
                int r = agent_net_validate_dns(dns[i], err);
                if (r < 0)
                        return cc_error_wrap(err, EINVAL, "dns[%zu]", i);
        }
        if (n_dns == 0)
                return 0;
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.cc-XXXXXX", path) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "creating %s: %s", tmp, strerror(errno));
        int r = 0;
        for (size_t i = 0; i < n_dns && r == 0; i++) {
                r = write_all(fd, dns[i], strlen(dns[i]));
                if (r == 0)
                        r = write_all(fd, "\n", 1);
        }
        if (r == 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return cc_error_set(err, -r, "writing %s: %s", path, strerror(-r));
        }
        return 0;
}
