/*
 * CreateContainer's storages (Kata's agent API: grpc.Storage).
 *
 *  - "image_guest_pull": the image's rootfs (rpc-image.c, agent_image_storages).
 *  - "local": an emptyDir of the default medium, a directory of the guest shared by the pod's
 *    containers. Options: "mode=0NNN" (default 0777, as the kubelet makes emptyDirs).
 *  - "ephemeral": an emptyDir with medium Memory, a guest tmpfs shared by the pod's containers.
 *    Options: "size=N[kmg]" and "mode=0NNN"; it is always nodev,nosuid.
 *
 * A volume lives at AGENT_SANDBOX_DIR/{local,ephemeral}/<name>: the host names the volume,
 * never the guest path, so any other mount point is refused. The first container that names a
 * volume makes it, later ones share it, and it goes with the last of them (refcounted by
 * container id). Where the pod has trusted storage, a "local" volume is on it: at boot
 * AGENT_SANDBOX_DIR is on the store itself; with a store that came later, at a sidecar's
 * /dev/trusted_store (trusted-storage.c), a volume made from then on is a directory of
 * AGENT_TRUSTED_LATE_DIR/volumes bind-mounted at its path, so its bytes never sit in RAM.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/image-pull.h"
#include "kata/agent.pb-c.h"

#define MAX_VOLUMES 64

struct agent_volume {
        char *path;
        bool tmpfs;
        char *backing; /* on the late trusted store, bind-mounted at path; or NULL */
        unsigned refs;
        char **users; /* container ids, refs of them */
        struct agent_volume *next;
};

static void volume_free(struct agent_volume *v)
{
        if (!v)
                return;
        for (unsigned i = 0; i < v->refs; i++)
                free(v->users[i]);
        free(v->users);
        free(v->backing);
        free(v->path);
        free(v);
}

/* A volume's name: one path component of [A-Za-z0-9._-], as Kubernetes volume names are. */
static bool valid_name(const char *s, size_t n)
{
        if (n == 0 || n > 253 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!s[i] ||
                    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                            s[i]))
                        return false;
        return true;
}

int agent_storage_volume_check(const Grpc__Storage *st, bool *ret_tmpfs, mode_t *ret_mode,
                               char **ret_size, struct cc_error **err)
{
        const char *drv = st->driver ? st->driver : "";
        bool tmpfs = cc_streq(drv, "ephemeral");
        const char *kind = tmpfs ? AGENT_SANDBOX_DIR "/ephemeral/" : AGENT_SANDBOX_DIR "/local/";
        const char *mp = st->mount_point ? st->mount_point : "";
        size_t kl = strlen(kind);
        if (strncmp(mp, kind, kl) != 0 || !valid_name(mp + kl, strlen(mp + kl)))
                return cc_error_set(err, EPERM,
                                    "%s storage mount point '%.256s' refused: it must be %s<name> "
                                    "(a volume name of [A-Za-z0-9._-])",
                                    drv, mp, kind);
        mode_t mode = 0777;
        _cleanup_free_ char *size = NULL;
        for (size_t i = 0; i < st->n_options; i++) {
                const char *o = st->options[i] ? st->options[i] : "";
                char *end = NULL;
                if (strncmp(o, "mode=", 5) == 0) {
                        errno = 0;
                        unsigned long m = strtoul(o + 5, &end, 8);
                        if (errno || end == o + 5 || *end || m > 07777)
                                return cc_error_set(err, EINVAL,
                                                    "%s storage %s: bad option '%.64s'", drv, mp,
                                                    o);
                        mode = (mode_t)m;
                } else if (tmpfs && strncmp(o, "size=", 5) == 0) {
                        errno = 0;
                        unsigned long long sz = strtoull(o + 5, &end, 10);
                        if (errno || end == o + 5 || sz == 0 ||
                            (*end && (strchr("kmgKMG", *end) == NULL || end[1])))
                                return cc_error_set(err, EINVAL,
                                                    "%s storage %s: bad option '%.64s'", drv, mp,
                                                    o);
                        free(size);
                        if (!(size = strdup(o)))
                                return -ENOMEM;
                } else if (!cc_streq(o, "rw") && !cc_streq(o, "nodev") && !cc_streq(o, "nosuid") &&
                           !cc_streq(o, "noexec")) {
                        return cc_error_set(
                                err, EINVAL,
                                "%s storage %s: option '%.64s' is not supported "
                                "(mode=, size= for ephemeral, rw, nodev, nosuid, noexec)",
                                drv, mp, o);
                }
        }
        *ret_tmpfs = tmpfs;
        *ret_mode = mode;
        *ret_size = TAKE_PTR(size);
        return 0;
}

/* Removes `path`'s last component below its parent (no symlink followed on the way). */
static void remove_tree(const char *path)
{
        _cleanup_free_ char *parent = strdup(path);
        if (!parent)
                return;
        char *slash = strrchr(parent, '/');
        *slash = '\0';
        _cleanup_close_ int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int r = pfd < 0 ? -errno : cc_rm_rf_at(pfd, slash + 1);
        if (r < 0)
                cc_log_warn("remove %s: %s", path, strerror(-r));
}

/* A default-medium volume on the trusted store that came with a sidecar: its directory there,
 * bind-mounted at `path` (*ret_backing); nothing when the pod has no such store. */
static int volume_on_late_store(const char *path, mode_t mode, char **ret_backing,
                                struct cc_error **err)
{
        *ret_backing = NULL;
        if (access(AGENT_TRUSTED_LATE_DIR "/containers", F_OK) < 0)
                return 0;
        _cleanup_free_ char *backing = NULL;
        if (asprintf(&backing, "%s/volumes/%s", AGENT_TRUSTED_LATE_DIR, strrchr(path, '/') + 1) < 0)
                return -ENOMEM;
        int r = cc_mkdir_p(AGENT_TRUSTED_LATE_DIR "/volumes", 0700);
        if (r < 0)
                return cc_error_set(err, -r, "make %s/volumes: %s", AGENT_TRUSTED_LATE_DIR,
                                    strerror(-r));
        if (mkdir(backing, 0700) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "make %s: %m", backing);
        if (chmod(backing, mode) < 0 || mount(backing, path, NULL, MS_BIND, NULL) < 0) {
                r = cc_error_set(err, errno, "bind %s (trusted storage) at %s: %m", backing, path);
                remove_tree(backing);
                return r;
        }
        *ret_backing = TAKE_PTR(backing);
        return 0;
}

static int volume_make(const char *path, bool tmpfs, mode_t mode, const char *size,
                       char **ret_backing, struct cc_error **err)
{
        *ret_backing = NULL;
        _cleanup_free_ char *parent = strdup(path);
        if (!parent)
                return -ENOMEM;
        *strrchr(parent, '/') = '\0';
        int r = cc_mkdir_p(parent, 0755);
        if (r < 0)
                return cc_error_set(err, -r, "make %s: %s", parent, strerror(-r));
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "make %s: %m", path);
        if (tmpfs) {
                char data[96];
                snprintf(data, sizeof(data), "mode=%04o%s%s", (unsigned)mode, size ? "," : "",
                         size ? size : "");
                if (mount("tmpfs", path, "tmpfs", MS_NODEV | MS_NOSUID, data) < 0)
                        return cc_error_set(err, errno, "mount a tmpfs on %s: %m", path);
        } else if (chmod(path, mode) < 0) {
                return cc_error_set(err, errno, "chmod %s: %m", path);
        } else {
                return volume_on_late_store(path, mode, ret_backing, err);
        }
        return 0;
}

static void volume_unmake(const struct agent_volume *v)
{
        if ((v->tmpfs || v->backing) && umount2(v->path, MNT_DETACH) < 0)
                cc_log_warn("umount %s: %m", v->path);
        if (v->backing)
                remove_tree(v->backing);
        remove_tree(v->path);
}

static int volume_use(struct agent *a, const char *cid, const Grpc__Storage *st,
                      struct cc_error **err)
{
        bool tmpfs;
        mode_t mode;
        _cleanup_free_ char *size = NULL;
        int r = agent_storage_volume_check(st, &tmpfs, &mode, &size, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&a->lock);
        struct agent_volume *v = a->volumes;
        size_t n = 0;
        for (; v && strcmp(v->path, st->mount_point) != 0; v = v->next)
                n++;
        if (!v && n >= MAX_VOLUMES) {
                r = cc_error_set(err, ENOSPC, "the pod has %d volumes already", MAX_VOLUMES);
        } else if (!v) {
                /* Made under the lock: a second container naming it waits for it. */
                char *backing = NULL;
                if ((r = volume_make(st->mount_point, tmpfs, mode, size, &backing, err)) == 0) {
                        if (!(v = calloc(1, sizeof(*v))) || !(v->path = strdup(st->mount_point))) {
                                struct agent_volume tmp = {.path = st->mount_point,
                                                           .backing = backing};
                                volume_unmake(&tmp);
                                free(backing);
                                free(v);
                                v = NULL;
                                r = -ENOMEM;
                        } else {
                                v->tmpfs = tmpfs;
                                v->backing = backing;
                                v->next = a->volumes;
                                a->volumes = v;
                        }
                }
        } else if (v->tmpfs != tmpfs) {
                r = cc_error_set(err, EINVAL, "volume %s is in use with another driver", v->path);
        }
        if (r == 0) {
                char **u = realloc(v->users, (v->refs + 1) * sizeof(*u));
                if (!u || !(u[v->refs] = strdup(cid))) {
                        if (u)
                                v->users = u;
                        r = -ENOMEM;
                } else {
                        v->users = u;
                        v->refs++;
                }
        }
        pthread_mutex_unlock(&a->lock);
        return r;
}

void agent_storages_release(struct agent *a, const char *container_id)
{
        pthread_mutex_lock(&a->lock);
        for (struct agent_volume **p = &a->volumes; *p;) {
                struct agent_volume *v = *p;
                for (unsigned i = 0; i < v->refs; i++)
                        if (strcmp(v->users[i], container_id) == 0) {
                                free(v->users[i]);
                                v->users[i] = v->users[--v->refs];
                                break;
                        }
                if (v->refs == 0) {
                        volume_unmake(v);
                        *p = v->next;
                        volume_free(v);
                } else {
                        p = &v->next;
                }
        }
        pthread_mutex_unlock(&a->lock);
}

void agent_storages_release_all(struct agent *a)
{
        pthread_mutex_lock(&a->lock);
        while (a->volumes) {
                struct agent_volume *v = a->volumes;
                a->volumes = v->next;
                volume_unmake(v);
                volume_free(v);
        }
        pthread_mutex_unlock(&a->lock);
}

int agent_storages_add(struct agent *a, const char *container_id, Grpc__Storage **storages,
                       size_t n, struct cc_error **err)
{
        if (n > MAX_VOLUMES)
                return cc_error_set(err, EINVAL, "CreateContainer has more than %d storages",
                                    MAX_VOLUMES);
        Grpc__Storage *pull = NULL;
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                Grpc__Storage *st = storages[i];
                const char *d = st && st->driver ? st->driver : "";
                if (cc_streq(d, "image_guest_pull") && !pull)
                        pull = st;
                else if (cc_streq(d, "local") || cc_streq(d, "ephemeral"))
                        r = volume_use(a, container_id, st, err);
                else
                        r = cc_error_set(
                                err, EOPNOTSUPP,
                                "storage driver '%.64s' is not supported (image_guest_pull "
                                "once, local, ephemeral are)",
                                d);
        }
        if (r == 0 && pull)
                r = agent_image_storages(a, container_id, &pull, 1, err);
        if (r < 0)
                agent_storages_release(a, container_id);
        return r;
}

const char *agent_storages_image(Grpc__Storage *const *storages, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (storages[i] && cc_streq(storages[i]->driver, "image_guest_pull"))
                        return storages[i]->source;
        return NULL;
}
