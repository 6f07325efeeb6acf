/*
 * CopyFile: the host's way to put files in the guest. A shim legitimately copies
 *  - the pod's small files (hosts, hostname, resolv.conf, the termination log, secrets,
 *    config maps, projected and downward-API volumes) into a shared-files area,
 *    <containers_dir>/<container id>-<anything>[/...] (ours: <id>-files/<n>; Kata's:
 *    <id>-<hash>-<name>), the only places a bind mount's source may come from;
 *  - on non-TEE development pods, a rootfs that lives on the host, file by file, into
 *    <containers_dir>/<id>/rootfs before CreateContainer.
 * Nothing else: not a rootfs the guest pulled (its overlay, its writable upper and work
 * directories are the guest's; writing there would let the host change what a container runs
 * after the guest verified it), not the image store, not the guest's files. Every path is
 * resolved below the containers area with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): no symlink is followed and no mount crossed, so a
 * pulled rootfs (an overlay mount) cannot be reached even through a path the lexical checks
 * would let by.
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/runtime.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"

#define MAX_COPY_FILE_SIZE (1ull << 30)
#define COPY_RESOLVE \
        (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

int agent_copy_target_check(int basefd, const char *rel, bool allow_rootfs, struct cc_error **err)
{
        char c1[AGENT_ID_MAX + 2], c2[16];
        size_t n1 = strcspn(rel, "/");
        if (n1 == 0)
                return cc_error_set(err, EPERM,
                                    "CopyFile path must name a file below the "
                                    "containers area");
        if (n1 > AGENT_ID_MAX)
                return cc_error_set(err, EINVAL, "CopyFile: '%.*s...' is not a container area", 16,
                                    rel);
        memcpy(c1, rel, n1);
        c1[n1] = '\0';
        int r = agent_validate_id(c1, "CopyFile area", err);
        if (r < 0)
                return r;
        const char *rest = rel + n1;
        while (*rest == '/')
                rest++;
        size_t n2 = strcspn(rest, "/");
        snprintf(c2, sizeof(c2), "%.*s", (int)CC_MIN(n2, sizeof(c2) - 1), rest);
        if (n2 < sizeof(c2) && (strcmp(c2, "upper") == 0 || strcmp(c2, "work") == 0))
                return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                         "CopyFile into '%s/%s' refused: that is the writable "
                                         "layer of a container's image, which only the guest "
                                         "writes",
                                         c1, c2);
        if (n2 < sizeof(c2) && strcmp(c2, "rootfs") == 0) {
                if (!allow_rootfs)
                        return cc_error_set_code(
                                err, CC_GRPC_PERMISSION_DENIED,
                                "CopyFile into the rootfs of %s refused: this guest does not "
                                "take a rootfs from the host (images are pulled in the guest)",
                                c1);
                /* A pulled image has an upper directory next to its rootfs (image-pull.c). */
                char probe[AGENT_ID_MAX + 16];
                snprintf(probe, sizeof(probe), "%s/upper", c1);
                int fd = agent__openat2(basefd, probe, O_PATH | O_CLOEXEC,
                                        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
                if (fd >= 0 || fd != -ENOENT) {
                        if (fd >= 0)
                                close(fd);
                        return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                                 "CopyFile into the rootfs of %s refused: its "
                                                 "image was pulled in the guest",
                                                 c1);
                }
                /* A rootfs that is a mount (the overlay of a pulled image, or anything else)
                 * is not a host-provided copy either; RESOLVE_NO_XDEV refuses to cross it
                 * later, this says why. */
                snprintf(probe, sizeof(probe), "%s/rootfs", c1);
                struct stat base_st, st;
                fd = agent__openat2(basefd, probe, O_PATH | O_CLOEXEC,
                                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
                if (fd >= 0) {
                        bool mounted = fstat(basefd, &base_st) < 0 || fstat(fd, &st) < 0 ||
                                       st.st_dev != base_st.st_dev;
                        close(fd);
                        if (mounted)
                                return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                                         "CopyFile into the rootfs of %s "
                                                         "refused: it is a mount",
                                                         c1);
                }
                return 0;
        }
        /* The shared-files areas: <id>-<anything>. */
        if (!strchr(c1 + 1, '-'))
                return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                         "CopyFile into '%s' refused: only a container's "
                                         "shared-files area (<id>-*) or a host-provided rootfs "
                                         "(<id>/rootfs) takes copies",
                                         rel);
        return 0;
}

/* Creates the missing directories of `rel` below dirfd (all but the last component). */
static int mkparents_beneath(int dirfd, const char *rel, mode_t mode)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", rel);
        for (char *p = buf; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (*buf) {
                        int fd = agent__openat2(dirfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC,
                                                COPY_RESOLVE);
                        if (fd == -ENOENT) {
                                char *slash = strrchr(buf, '/');
                                _cleanup_close_ int pfd =
                                        slash ? (*slash = '\0',
                                                 agent__openat2(dirfd, buf,
                                                                O_PATH | O_DIRECTORY | O_CLOEXEC,
                                                                RESOLVE_BENEATH |
                                                                        RESOLVE_NO_SYMLINKS))
                                              : dup(dirfd);
                                if (slash)
                                        *slash = '/';
                                if (pfd < 0)
                                        return pfd;
                                if (mkdirat(pfd, slash ? slash + 1 : buf, mode) < 0 &&
                                    errno != EEXIST)
                                        return -errno;
                        } else if (fd < 0) {
                                return fd;
                        } else {
                                close(fd);
                        }
                }
                *p = '/';
        }
        return 0;
}

int agent_rpc_copy_file(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_,
                        ProtobufCMessage *resp_, struct cc_error **err)
{
        struct agent *a = userdata;
        const Grpc__CopyFileRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "CopyFile", NULL, err);
        if (r < 0)
                return r;
        /* Only into the containers area, and there only into the shared-files areas (and a
         * host-provided rootfs, see agent_copy_target_check()); never onto the agent's or the
         * guest's own files. */
        if ((r = agent_validate_abs_path(req->path, "path", err)) < 0)
                return r;
        const char *base = a->cfg.containers_dir;
        if (!agent_path_is_under(req->path, base) || strlen(req->path) <= strlen(base) + 1)
                return cc_error_set(err, EPERM, "CopyFile path '%s' is outside %s", req->path,
                                    base);
        if (req->file_size < 0 || (uint64_t)req->file_size > MAX_COPY_FILE_SIZE ||
            req->offset < 0 || (uint64_t)req->offset + req->data.len > (uint64_t)req->file_size)
                return cc_error_set(err, EINVAL, "CopyFile size or offset out of range");
        const char *rel = req->path + strlen(base);
        while (*rel == '/')
                rel++;
        _cleanup_close_ int basefd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (basefd < 0)
                return cc_error_set(err, errno, "open %s: %m", base);
        pthread_rwlock_rdlock(&a->policy_lock);
        bool allow_rootfs = agent_allows_host_rootfs(a);
        r = agent_policy_check_copy(a->policy, rel, err);
        pthread_rwlock_unlock(&a->policy_lock);
        if (r < 0 || (r = agent_copy_target_check(basefd, rel, allow_rootfs, err)) < 0)
                return r;
        mode_t dir_mode = req->dir_mode ? (req->dir_mode & 0777) : 0755;
        if ((r = mkparents_beneath(basefd, rel, dir_mode)) < 0)
                return cc_error_set(err, -r, "create parents of '%s': %s", req->path, strerror(-r));
        if (S_ISLNK(req->file_mode))
                return cc_error_set(err, EPERM, "CopyFile of symlinks is not allowed");
        if (S_ISDIR(req->file_mode)) {
                /* mkparents_beneath() creates every component before the last '/'. */
                _cleanup_free_ char *dir = NULL;
                if (asprintf(&dir, "%s/", rel) < 0)
                        return -ENOMEM;
                r = mkparents_beneath(basefd, dir, req->file_mode & 07777);
                return r < 0 ? cc_error_set(err, -r, "mkdir '%s': %s", req->path, strerror(-r)) : 0;
        }
        struct open_how how = {.flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
                                        (req->offset == 0 ? O_TRUNC : 0),
                               .mode = req->file_mode & 0777,
                               .resolve = COPY_RESOLVE};
        int fd = (int)syscall(SYS_openat2, basefd, rel, &how, sizeof(how));
        if (fd < 0)
                return cc_error_set(err, errno, "open '%s': %m", req->path);
        _cleanup_close_ int file = fd;
        size_t done = 0;
        while (done < req->data.len) {
                ssize_t n = pwrite(file, req->data.data + done, req->data.len - done,
                                   req->offset + (off_t)done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return cc_error_set(err, errno, "write '%s': %m", req->path);
                done += (size_t)n;
        }
        if (fchmod(file, req->file_mode & 07777) < 0)
                return cc_error_set(err, errno, "chmod '%s': %m", req->path);
        if ((req->uid >= 0 || req->gid >= 0) && fchown(file, (uid_t)req->uid, (gid_t)req->gid) < 0)
                return cc_error_set(err, errno, "chown '%s': %m", req->path);
        return 0;
}
