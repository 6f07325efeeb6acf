/*
 * The pod's volumes in the guest: emptyDirs become guest storage, never a host directory.
 *
 * An emptyDir is recognised as Kata recognises it: the kubelet's host path
 * .../volumes/kubernetes.io~empty-dir/<name> as a bind mount's source. One on a tmpfs is
 * `medium: Memory` (the kubelet mounts a tmpfs there) and becomes an "ephemeral" Storage, a
 * guest tmpfs; any other is the default medium and becomes a "local" Storage, a guest
 * directory (on the pod's trusted storage where it has some). Either way the container's mount
 * source becomes the volume's guest path, /run/kata-containers/sandbox/{ephemeral,local}/<name>,
 * so that the pod's containers naming the same volume share it; the agent makes the volume at
 * the first container's CreateContainer and removes it with the last one.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "kata/agent.pb-c.h"
#include "shim/shim.h"

#define EMPTY_DIR "/volumes/kubernetes.io~empty-dir/"

static bool valid_name(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int shim_emptydir_guest_path(const char *host_src, char **ret)
{
        *ret = NULL;
        const char *p = host_src ? strstr(host_src, EMPTY_DIR) : NULL;
        if (!p)
                return 0;
        _cleanup_free_ char *name = strdup(p + strlen(EMPTY_DIR));
        if (!name)
                return -ENOMEM;
        size_t n = strlen(name);
        while (n > 0 && name[n - 1] == '/')
                name[--n] = '\0';
        /* A path below the volume (a subPath the kubelet did not resolve) is not the volume. */
        if (!valid_name(name))
                return 0;
        struct statfs sf;
        bool memory = statfs(host_src, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
        if (asprintf(ret, "%s/%s/%s", SHIM_GUEST_SANDBOX_DIR, memory ? "ephemeral" : "local",
                     name) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 1;
}

void shim_storages_free(Grpc__Storage **st, size_t n)
{
        for (size_t i = 0; st && i < n; i++)
                protobuf_c_message_free_unpacked(&st[i]->base, NULL);
        free(st);
}

static Grpc__Storage *volume_storage(const char *guest_path, bool memory)
{
        Grpc__Storage *st = malloc(sizeof(*st));
        if (!st)
                return NULL;
        grpc__storage__init(st);
        /* protobuf-c's empty strings, so that free_unpacked skips the unset ones. */
        st->driver = strdup(memory ? "ephemeral" : "local");
        st->source = strdup(memory ? "tmpfs" : "local");
        st->fstype = strdup(memory ? "tmpfs" : "local");
        st->mount_point = strdup(guest_path);
        st->options = calloc(1, sizeof(char *));
        if (st->options && (st->options[0] = strdup("mode=0777")))
                st->n_options = 1;
        if (!st->driver || !st->source || !st->fstype || !st->mount_point || !st->n_options) {
                protobuf_c_message_free_unpacked(&st->base, NULL);
                return NULL;
        }
        return st;
}

int shim_storages_for(const Grpc__Spec *spec, Grpc__Storage ***ret, size_t *ret_n)
{
        static const char local[] = SHIM_GUEST_SANDBOX_DIR "/local/";
        static const char eph[] = SHIM_GUEST_SANDBOX_DIR "/ephemeral/";
        *ret = NULL;
        *ret_n = 0;
        if (!spec->n_mounts)
                return 0;
        Grpc__Storage **st = calloc(spec->n_mounts, sizeof(*st));
        if (!st)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const char *src = spec->mounts[i]->source;
                if (!src || strcmp(spec->mounts[i]->type ? spec->mounts[i]->type : "", "bind") != 0)
                        continue;
                bool memory = src && strncmp(src, eph, sizeof(eph) - 1) == 0;
                if (!memory && strncmp(src, local, sizeof(local) - 1) != 0)
                        continue;
                bool seen = false;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = strcmp(st[k]->mount_point, src) == 0;
                if (seen)
                        continue;
                if (!(st[n] = volume_storage(src, memory))) {
                        shim_storages_free(st, n);
                        return -ENOMEM;
                }
                n++;
        }
        if (!n) {
                free(st);
                return 0;
        }
        *ret = st;
        *ret_n = n;
        return 0;
}

/*
 * Trusted storage's scratch disk: a sparse file, so that a pod costs host disk only for what
 * its guest writes (ciphertext). The guest formats it at every boot; the file goes with the
 * run dir (also after a kill -9 of the shim: shim_sandbox_cleanup_dead).
 */
int shim_trusted_storage_prepare(const struct shim_config *c, const char *run_dir, char **ret,
                                 struct cc_error **err)
{
        *ret = NULL;
        if (!c->trusted_storage_mib)
                return 0;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/trusted-storage.img", run_dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd =
                open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return cc_error_set(err, errno, "trusted storage: create %s: %m", path);
        if (ftruncate(fd, (off_t)c->trusted_storage_mib << 20) < 0) {
                int e = errno;
                unlink(path);
                return cc_error_set(err, e, "trusted storage: size %s to %u MiB: %s", path,
                                    c->trusted_storage_mib, strerror(e));
        }
        *ret = TAKE_PTR(path);
        return 0;
}
