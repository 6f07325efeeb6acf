/*
 * The container table and its operations: create, start, exec (admission; spawn.c forks),
 * signals, waits, pause, update, stats and removal, each checked against the container's
 * state (runtime-internal.h).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/runtime/runtime-internal.h"
#include "guest-agent/runtime/runtime.h"
#include "guest-agent/validate.h"

struct proc *agent__proc_new(const char *exec_id)
{
        struct proc *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->refs = 1;
        p->exec_id = strdup(exec_id);
        p->stdin_fd = p->stdout_fd = p->stderr_fd = -1;
        pthread_mutex_init(&p->stdin_lock, NULL);
        if (!p->exec_id) {
                free(p);
                return NULL;
        }
        return p;
}

/* Called with rt->lock held (refs are protected by it). */
void agent__proc_unref_locked(struct proc *p)
{
        if (!p || --p->refs > 0)
                return;
        cc_close(p->stdin_fd);
        cc_close(p->stdout_fd);
        cc_close(p->stderr_fd);
        pthread_mutex_destroy(&p->stdin_lock);
        free(p->exec_id);
        free(p);
}

void agent__proc_unref(struct agent_runtime *rt, struct proc *p)
{
        pthread_mutex_lock(&rt->lock);
        agent__proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
}

struct container *agent__find_container(struct agent_runtime *rt, const char *id)
{
        for (size_t i = 0; i < rt->n_containers; i++)
                if (strcmp(rt->containers[i]->id, id) == 0)
                        return rt->containers[i];
        return NULL;
}

/* The process named exec_id; `spawning` also finds an exec still being spawned (pid 0), which
 * is otherwise not there yet. */
static struct proc *find_proc_in(struct container *c, const char *exec_id, bool spawning)
{
        if (cc_isempty(exec_id) || (c->init && strcmp(c->init->exec_id, exec_id) == 0))
                return c->init;
        for (size_t i = 0; i < c->n_execs; i++)
                if (strcmp(c->execs[i]->exec_id, exec_id) == 0 &&
                    (spawning || c->execs[i]->pid > 0))
                        return c->execs[i];
        return NULL;
}

static const char *const state_names[_CONTAINER_STATE_MAX] = {
        [CONTAINER_CREATING] = "creating", [CONTAINER_CREATED] = "created",
        [CONTAINER_RUNNING] = "running",   [CONTAINER_PAUSED] = "paused",
        [CONTAINER_STOPPED] = "stopped",   [CONTAINER_REMOVING] = "removing",
};

const char *agent__container_state_name(enum container_state s)
{
        return s < _CONTAINER_STATE_MAX ? state_names[s] : "invalid";
}

/* The transitions of runtime-internal.h's diagram: allowed[from] is a mask of the `to`s. */
#define TO(s) (1u << (s))
static const unsigned allowed[_CONTAINER_STATE_MAX] = {
        [CONTAINER_CREATING] = TO(CONTAINER_CREATED) | TO(CONTAINER_RUNNING),
        [CONTAINER_CREATED] =
                TO(CONTAINER_RUNNING) | TO(CONTAINER_STOPPED) | TO(CONTAINER_REMOVING),
        [CONTAINER_RUNNING] = TO(CONTAINER_PAUSED) | TO(CONTAINER_STOPPED) | TO(CONTAINER_REMOVING),
        [CONTAINER_PAUSED] = TO(CONTAINER_RUNNING) | TO(CONTAINER_STOPPED) | TO(CONTAINER_REMOVING),
        [CONTAINER_STOPPED] = TO(CONTAINER_REMOVING),
        [CONTAINER_REMOVING] = 0,
};

int agent__container_set_state(struct container *c, enum container_state to, struct cc_error **err)
{
        if (c->state >= _CONTAINER_STATE_MAX || to >= _CONTAINER_STATE_MAX ||
            !(allowed[c->state] & TO(to)))
                return cc_error_set(
                        err, EINVAL, "container '%s' is %s, not a state it can leave for %s", c->id,
                        agent__container_state_name(c->state), agent__container_state_name(to));
        c->state = to;
        return 0;
}

/* Looks up a process and takes a reference (so its fds stay open while the lock is dropped
 * for a blocking read or write). */
int agent__get_proc(struct agent_runtime *rt, const char *id, const char *exec_id,
                    struct proc **ret, struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        if (!cc_isempty(exec_id) && (r = agent_validate_id(exec_id, "exec id", err)) < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c = agent__find_container(rt, id);
        struct proc *p = c ? find_proc_in(c, exec_id, false) : NULL;
        if (p)
                p->refs++;
        pthread_mutex_unlock(&rt->lock);
        if (!c)
                return cc_error_set(err, ENOENT, "container '%s' not found", id);
        if (!p)
                return cc_error_set(err, ENOENT, "process '%s' of container '%s' not found",
                                    exec_id, id);
        *ret = p;
        return 0;
}

/* A pod volume, <volumes_dir>/<kind>/<name> exactly (storage.c made it): opened beneath
 * volumes_dir without following any symlink, so that a container cannot plant one there to
 * lead another container's mount elsewhere. */
static int open_volume(struct agent_runtime *rt, const char *path, const char *what,
                       struct cc_error **err)
{
        const char *rel = path + strlen(rt->volumes_dir);
        while (*rel == '/')
                rel++;
        const char *slash = strchr(rel, '/');
        if (!slash || slash == rel || !slash[1] || strchr(slash + 1, '/'))
                return cc_error_set(err, EPERM, "%s '%s' is not a volume (%s/<kind>/<name>)", what,
                                    path, rt->volumes_dir);
        _cleanup_close_ int dfd = open(rt->volumes_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return cc_error_set(err, errno, "%s '%s': the pod has no volumes (%s: %m)", what,
                                    path, rt->volumes_dir);
        int fd = agent__openat2(dfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC,
                                RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (fd == -ELOOP || fd == -EXDEV)
                return cc_error_set(err, EPERM, "%s '%s' leaves the volumes area", what, path);
        if (fd == -ENOENT)
                return cc_error_set(err, ENOENT,
                                    "%s '%s': no such volume (no local or ephemeral Storage made "
                                    "it)",
                                    what, path);
        if (fd < 0)
                return cc_error_set(err, -fd, "%s '%s': %s", what, path, strerror(-fd));
        return fd;
}

/* openat2() of rel below dirfd, part of `path` in container id's area; ELOOP (a symlink) and
 * EXDEV (an escape) are refusals, not failures. */
static int open_beneath(int dirfd, const char *rel, int flags, unsigned long long resolve,
                        const char *what, const char *path, const char *id, struct cc_error **err)
{
        int fd = agent__openat2(dirfd, rel, flags, resolve);
        if (fd == -ELOOP || fd == -EXDEV)
                return cc_error_set(err, EPERM, "%s '%s' leaves the area of container '%s'", what,
                                    path, id);
        if (fd < 0)
                return cc_error_set(err, -fd, "%s '%s': %s", what, path, strerror(-fd));
        return fd;
}

/* Validates that a host-supplied guest path lies in this container's area (see
 * agent_runtime_config) and opens it beneath containers_dir, so that a symlink planted in
 * the area cannot lead out of it either. */
static int open_in_area(struct agent_runtime *rt, const char *id, const char *path,
                        const char *what, struct cc_error **err)
{
        int r = agent_validate_abs_path(path, what, err);
        if (r < 0)
                return r;
        if (rt->volumes_dir && agent_path_is_under(path, rt->volumes_dir))
                return open_volume(rt, path, what, err);
        if (!agent_path_is_under(path, rt->containers_dir))
                return cc_error_set(err, EPERM, "%s '%s' is outside the containers area %s", what,
                                    path, rt->containers_dir);
        const char *rel = path + strlen(rt->containers_dir);
        while (*rel == '/')
                rel++;
        size_t idlen = strlen(id), flen = strcspn(rel, "/");
        /* First component must be "<id>" or "<id>-<anything>". */
        if (flen > NAME_MAX || strncmp(rel, id, idlen) != 0 ||
            (rel[idlen] != '/' && rel[idlen] != '\0' && rel[idlen] != '-'))
                return cc_error_set(err, EPERM, "%s '%s' is not in the area of container '%s'",
                                    what, path, id);
        /* The area itself must not be a symlink (to another container's area), and nothing
         * below it may resolve outside it. */
        char first[NAME_MAX + 1];
        memcpy(first, rel, flen);
        first[flen] = '\0';
        _cleanup_close_ int areafd =
                open_beneath(rt->containers_dirfd, first, O_PATH | O_DIRECTORY | O_CLOEXEC,
                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, what, path, id, err);
        if (areafd < 0)
                return areafd;
        const char *rest = rel + flen;
        while (*rest == '/')
                rest++;
        return open_beneath(areafd, *rest ? rest : ".", O_PATH | O_CLOEXEC,
                            RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, what, path, id, err);
}

static void container_free(struct container *c)
{
        if (!c)
                return;
        free(c->id);
        agent_spec_free(c->spec);
        agent__seccomp_release(c->seccomp);
        free(c->execs);
        cc_close(c->start_fd);
        cc_close(c->status_fd);
        free(c);
}

/* Validates the parts of a spec that the host controls and that the runtime must not trust. */
static int validate_spec(const struct agent_spec *s, struct cc_error **err)
{
        int r;
        if (s->namespaces & AGENT_NS_NET)
                cc_log_debug("ignoring the network namespace: containers share the VM's");
        if (!s->sandbox && (!s->process.args || !s->process.args[0]))
                return cc_error_set(err, EINVAL, "process.args is empty");
        if (s->process.cwd && (r = agent_validate_abs_path(s->process.cwd, "cwd", err)) < 0)
                return r;
        if (s->n_mounts > AGENT_MAX_MOUNTS)
                return cc_error_set(err, EINVAL, "too many mounts");
        for (size_t i = 0; i < s->n_mounts; i++)
                if ((r = agent_validate_abs_path(s->mounts[i].destination, "mount destination",
                                                 err)) < 0)
                        return r;
        for (char **p = s->masked_paths; p && *p; p++)
                if ((r = agent_validate_abs_path(*p, "masked path", err)) < 0)
                        return r;
        for (char **p = s->readonly_paths; p && *p; p++)
                if ((r = agent_validate_abs_path(*p, "readonly path", err)) < 0)
                        return r;
        if (s->hostname && strlen(s->hostname) > 64)
                return cc_error_set(err, EINVAL, "hostname is too long");
        return 0;
}

/* Open fds of a spec's bind-mount sources (-1 where a mount is no bind). */
struct bind_fds {
        size_t n;
        int fd[];
};

static void bind_fds_free(struct bind_fds *b)
{
        for (size_t i = 0; b && i < b->n; i++)
                cc_close(b->fd[i]);
        free(b);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bind_fds *, bind_fds_free)

/* Opens the rootfs and the bind sources in the container's area (open_in_area). */
static int open_sources(struct agent_runtime *rt, const char *id, const struct agent_spec *spec,
                        int *ret_rootfd, struct bind_fds **ret_binds, struct cc_error **err)
{
        _cleanup_(bind_fds_freep) struct bind_fds *b =
                malloc(sizeof(*b) + (spec->n_mounts + 1) * sizeof(int));
        if (!b)
                return -ENOMEM;
        b->n = spec->n_mounts;
        for (size_t i = 0; i < b->n; i++)
                b->fd[i] = -1;
        _cleanup_close_ int rootfd = open_in_area(rt, id, spec->root_path, "root path", err);
        if (rootfd < 0)
                return rootfd;
        for (size_t i = 0; i < spec->n_mounts; i++) {
                if (!spec->mounts[i].bind)
                        continue;
                b->fd[i] = open_in_area(rt, id, spec->mounts[i].source, "bind mount source", err);
                if (b->fd[i] < 0)
                        return b->fd[i];
        }
        *ret_rootfd = TAKE_FD(rootfd);
        *ret_binds = TAKE_PTR(b);
        return 0;
}

/* The container's cgroup with the spec's limits, and its OOM watch. */
static int setup_cgroup(struct agent_runtime *rt, struct container *c,
                        const struct agent_spec *spec, struct cc_error **err)
{
        if (agent_cgroup_mode() == AGENT_CGROUP_NONE)
                return 0;
        int r = agent_cgroup_create(rt->cgroup_root, c->id, &c->cg, err);
        if (r < 0 || (r = agent_cgroup_apply(c->cg, &spec->resources, err)) < 0)
                return r;
        (void)agent_cgroup_oom_kills(c->cg, &c->oom_seen);
        const char *evdir = agent_cgroup_events_path(c->cg);
        char evpath[PATH_MAX];
        if (evdir && rt->inotify_fd >= 0 &&
            snprintf(evpath, sizeof(evpath), "%s/memory.events", evdir) < (int)sizeof(evpath))
                c->oom_wd = inotify_add_watch(rt->inotify_fd, evpath, IN_MODIFY);
        return 0;
}

/* Everything a CREATING container needs, up to its init waiting for StartContainer (or the
 * sandbox's pause process running). The init joins the pod's namespaces the spec says
 * (sandbox_namespaces, pod.c) and creates the others it lists. */
static int setup_container(struct agent_runtime *rt, struct container *c,
                           const struct agent_spec *spec, struct cc_error **err)
{
        _cleanup_close_ int rootfd = -1;
        _cleanup_(bind_fds_freep) struct bind_fds *binds = NULL;
        int r;
        if (!spec->sandbox) {
                if ((r = open_sources(rt, c->id, spec, &rootfd, &binds, err)) < 0)
                        return r;
                if (spec->seccomp &&
                    (r = agent__seccomp_build(spec->seccomp, &c->seccomp, err)) < 0)
                        return r;
        }
        if ((r = setup_cgroup(rt, c, spec, err)) < 0)
                return r;
        struct spawn_request req = {
                .what = "create",
                .proc = &spec->process,
                .cg = c->cg,
                .seccomp = c->seccomp,
                .spec = spec,
                .pause = spec->sandbox,
                .rootfd = rootfd,
                .bind_fds = binds ? binds->fd : NULL,
                .join = spec->sandbox_namespaces,
                .unshare = agent__unshare_flags(spec->namespaces & ~spec->sandbox_namespaces),
        };
        if (req.join && (r = agent__pod_hold(rt, req.join, &req.ns_pid, err)) < 0)
                return r;
        r = agent__spawn(rt, &req, c->init, &c->start_fd, &c->status_fd, err);
        if (req.join)
                agent__pod_release(rt);
        return r;
}

static void container_unlink_locked(struct agent_runtime *rt, struct container *c)
{
        for (size_t i = 0; i < rt->n_containers; i++)
                if (rt->containers[i] == c) {
                        rt->containers[i] = rt->containers[--rt->n_containers];
                        break;
                }
        if (c->oom_wd >= 0)
                inotify_rm_watch(rt->inotify_fd, c->oom_wd);
}

/* A new container in the table, CREATING: the id is taken, operations do not see it yet. */
static int container_reserve(struct agent_runtime *rt, const char *id, const char *exec_id,
                             struct container **ret, struct cc_error **err)
{
        struct container *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->start_fd = c->status_fd = c->oom_wd = -1;
        c->state = CONTAINER_CREATING;
        c->id = strdup(id);
        c->init = agent__proc_new(exec_id);
        int r = !c->id || !c->init ? -ENOMEM : 0;
        pthread_mutex_lock(&rt->lock);
        struct container **nc = NULL;
        if (r >= 0 && agent__find_container(rt, id))
                r = cc_error_set(err, EEXIST, "container '%s' already exists", id);
        else if (r >= 0 && rt->n_containers >= AGENT_MAX_CONTAINERS)
                r = cc_error_set(err, ENOSPC, "too many containers");
        else if (r >= 0 &&
                 !(nc = realloc(rt->containers, (rt->n_containers + 1) * sizeof(*rt->containers))))
                r = -ENOMEM;
        if (r >= 0) {
                rt->containers = nc;
                rt->containers[rt->n_containers++] = c;
        } else {
                agent__proc_unref_locked(c->init);
        }
        pthread_mutex_unlock(&rt->lock);
        if (r < 0) {
                container_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int agent_container_create(struct agent_runtime *rt, const char *id, const char *exec_id,
                           struct agent_spec *spec_in, struct cc_error **err)
{
        _cleanup_(agent_spec_freep) struct agent_spec *spec = spec_in;
        int r;
        if ((r = agent_validate_id(id, "container id", err)) < 0)
                return r;
        if (cc_isempty(exec_id))
                exec_id = id;
        else if ((r = agent_validate_id(exec_id, "exec id", err)) < 0)
                return r;
        if ((r = validate_spec(spec, err)) < 0)
                return r;
        struct container *c;
        if ((r = container_reserve(rt, id, exec_id, &c, err)) < 0)
                return r;
        r = setup_container(rt, c, spec, err);
        pthread_mutex_lock(&rt->lock);
        if (r < 0) {
                container_unlink_locked(rt, c);
                agent__proc_unref_locked(c->init);
        } else {
                bool sandbox = spec->sandbox;
                c->spec = TAKE_PTR(spec);
                r = agent__container_set_state(c, sandbox ? CONTAINER_RUNNING : CONTAINER_CREATED,
                                               err);
        }
        pthread_mutex_unlock(&rt->lock);
        if (r < 0) {
                agent_cgroup_destroy(c->cg);
                c->cg = NULL;
                container_free(c);
                return r;
        }
        cc_log_info("container created id=%s", id);
        return 0;
}

/* Looks up a container for an operation; one being created or removed is not there. */
static int get_container_locked(struct agent_runtime *rt, const char *id, struct container **ret,
                                struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        struct container *c = agent__find_container(rt, id);
        if (!c || c->state == CONTAINER_CREATING || c->state == CONTAINER_REMOVING)
                return cc_error_set(err, ENOENT, "container '%s' not found", id);
        *ret = c;
        return 0;
}

/* get_container_locked() with the lock taken: held on success, released on failure. */
static int lock_container(struct agent_runtime *rt, const char *id, struct container **ret,
                          struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        int r = get_container_locked(rt, id, ret, err);
        if (r < 0)
                pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_container_start(struct agent_runtime *rt, const char *id, struct cc_error **err)
{
        struct container *c;
        int r = lock_container(rt, id, &c, err);
        if (r < 0)
                return r;
        if (c->state != CONTAINER_CREATED || c->start_fd < 0) {
                pthread_mutex_unlock(&rt->lock);
                if (c->spec->sandbox)
                        return 0; /* the pause process runs from creation */
                return cc_error_set(err, EINVAL, "container '%s' is not in the created state", id);
        }
        int start_fd = TAKE_FD(c->start_fd), status_fd = TAKE_FD(c->status_fd);
        (void)agent__container_set_state(c, CONTAINER_RUNNING, NULL);
        pthread_mutex_unlock(&rt->lock);
        char go = 1;
        if (write(start_fd, &go, 1) != 1)
                r = cc_error_set(err, errno, "start: %m");
        else if ((r = agent__read_status(status_fd, "start", err)) == 1)
                r = 0;
        close(start_fd);
        close(status_fd);
        if (r >= 0)
                cc_log_info("container started id=%s", id);
        return r;
}

/* Admits an exec: the container runs, the id is new; p goes into c->execs (pid 0 until
 * spawned, so the reaper finds it once its pid is registered) and c->spawning counts it. */
static int exec_admit(struct agent_runtime *rt, const char *id, struct proc *p,
                      struct spawn_request *req, struct cc_error **err)
{
        struct container *c;
        int r = get_container_locked(rt, id, &c, err);
        if (r < 0)
                return r;
        if (c->state != CONTAINER_RUNNING || !c->init || c->init->exited || c->spec->sandbox)
                return cc_error_set(err, EINVAL, "container '%s' is not running", id);
        if (find_proc_in(c, p->exec_id, true) || c->n_execs >= AGENT_MAX_EXECS)
                return cc_error_set(err, EEXIST, "exec '%s' already exists in container '%s'",
                                    p->exec_id, id);
        struct proc **ne = realloc(c->execs, (c->n_execs + 1) * sizeof(*c->execs));
        if (!ne)
                return -ENOMEM;
        c->execs = ne;
        c->execs[c->n_execs++] = p;
        c->spawning++;
        req->cg = c->cg;
        req->seccomp = c->seccomp;
        req->ns_pid = c->init->pid;
        req->join = c->spec->namespaces | AGENT_NS_MOUNT;
        return 0;
}

static int validate_exec(const char *id, const char *exec_id, const struct agent_process *proc,
                         struct cc_error **err)
{
        int r;
        if ((r = agent_validate_id(id, "container id", err)) < 0 ||
            (r = agent_validate_id(exec_id, "exec id", err)) < 0)
                return r;
        if (!proc->args || !proc->args[0])
                return cc_error_set(err, EINVAL, "process.args is empty");
        if (proc->cwd)
                return agent_validate_abs_path(proc->cwd, "cwd", err);
        return 0;
}

int agent_container_exec(struct agent_runtime *rt, const char *id, const char *exec_id,
                         struct agent_process *proc_in, struct cc_error **err)
{
        _cleanup_(agent_process_done) struct agent_process proc = *proc_in;
        *proc_in = (struct agent_process){0};
        int r = validate_exec(id, exec_id, &proc, err);
        if (r < 0)
                return r;
        struct proc *p = agent__proc_new(exec_id);
        if (!p)
                return -ENOMEM;
        struct spawn_request req = {.what = "exec", .proc = &proc, .rootfd = -1};
        pthread_mutex_lock(&rt->lock);
        struct container *c = agent__find_container(rt, id);
        bool admitted = (r = exec_admit(rt, id, p, &req, err)) >= 0;
        pthread_mutex_unlock(&rt->lock);
        if (admitted)
                r = agent__spawn(rt, &req, p, NULL, NULL, err);
        pthread_mutex_lock(&rt->lock);
        if (admitted) {
                /* Removal waits until spawning drops back, so c, cg and spec stayed valid. */
                c->spawning--;
                pthread_cond_broadcast(&rt->cond);
                for (size_t i = 0; r < 0 && i < c->n_execs; i++)
                        if (c->execs[i] == p) {
                                c->execs[i] = c->execs[--c->n_execs];
                                break;
                        }
        }
        pid_t pid = p->pid;
        if (r < 0)
                agent__proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
        if (r >= 0)
                cc_log_info("exec started id=%s exec_id=%s pid=%d", id, exec_id, (int)pid);
        return r;
}

/* ---- process operations ----------------------------------------------------------------- */

int agent_process_signal(struct agent_runtime *rt, const char *id, const char *exec_id, int sig,
                         struct cc_error **err)
{
        if (sig <= 0 || sig >= NSIG)
                return cc_error_set(err, EINVAL, "invalid signal %d", sig);
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c = agent__find_container(rt, id);
        bool all = cc_isempty(exec_id) && c && c->cg;
        bool running = p->pid > 0 && !p->exited;
        if (running && kill(p->pid, sig) < 0 && errno != ESRCH)
                r = cc_error_set(err, errno, "kill %d: %m", (int)p->pid);
        if (r >= 0 && all) {
                /* Every other process in the container's cgroup, as Kata does for an empty
                 * exec id; a frozen container is thawed by SIGKILL delivery rules only, so we
                 * leave pause state to the caller. */
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/cgroup.procs", c->cg->v2);
                FILE *f = fopen(path, "re");
                long pid;
                while (f && fscanf(f, "%ld", &pid) == 1)
                        if (pid > 0 && pid != p->pid)
                                (void)kill((pid_t)pid, sig);
                if (f)
                        fclose(f);
        }
        agent__proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_process_wait(struct agent_runtime *rt, const char *id, const char *exec_id, int *status,
                       struct cc_error **err)
{
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        while (!p->exited && !rt->shutdown && p->pid > 0)
                pthread_cond_wait(&rt->cond, &rt->lock);
        if (p->exited)
                *status = p->status;
        else
                r = cc_error_set(err, ESHUTDOWN, "agent is shutting down");
        agent__proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

/* ---- container operations --------------------------------------------------------------- */

static bool wait_exit_locked(struct agent_runtime *rt, struct proc *p, int timeout_ms)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        while (!p->exited && p->pid > 0)
                if (pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) != 0)
                        break;
        return p->exited || p->pid <= 0;
}

int agent_container_remove(struct agent_runtime *rt, const char *id, unsigned timeout_s,
                           struct cc_error **err)
{
        struct container *c;
        int r = lock_container(rt, id, &c, err);
        if (r < 0)
                return r;
        (void)agent__container_set_state(c, CONTAINER_REMOVING, NULL);
        while (c->spawning)
                pthread_cond_wait(&rt->cond, &rt->lock);
        /* A container that never started: closing the start pipe makes its init exit. */
        c->start_fd = cc_close(c->start_fd);
        c->status_fd = cc_close(c->status_fd);
        if (c->init->pid > 0 && !c->init->exited && timeout_s > 0) {
                if (c->cg)
                        (void)agent_cgroup_freeze(c->cg, false, NULL);
                kill(c->init->pid, SIGTERM);
                wait_exit_locked(rt, c->init, (int)CC_MIN(timeout_s, 3600u) * 1000);
        }
        pthread_mutex_unlock(&rt->lock);
        /* Kill everything left (the cgroup holds every process of the container). */
        if (c->cg)
                (void)agent_cgroup_kill(c->cg);
        pthread_mutex_lock(&rt->lock);
        if (c->init->pid > 0 && !c->init->exited)
                kill(c->init->pid, SIGKILL);
        for (size_t i = 0; i < c->n_execs; i++)
                if (c->execs[i]->pid > 0 && !c->execs[i]->exited)
                        kill(c->execs[i]->pid, SIGKILL);
        wait_exit_locked(rt, c->init, 10000);
        for (size_t i = 0; i < c->n_execs; i++)
                wait_exit_locked(rt, c->execs[i], 2000);
        container_unlink_locked(rt, c);
        agent__check_oom_locked(rt, c);
        agent__proc_unref_locked(c->init);
        for (size_t i = 0; i < c->n_execs; i++)
                agent__proc_unref_locked(c->execs[i]);
        pthread_mutex_unlock(&rt->lock);
        if (c->cg && (r = agent_cgroup_destroy(c->cg)) < 0)
                cc_error_set(err, -r, "remove cgroup of '%s': %s", id, strerror(-r));
        c->cg = NULL;
        container_free(c);
        cc_log_info("container removed id=%s", id);
        return r < 0 ? r : 0;
}

static int with_cgroup(struct agent_runtime *rt, const char *id, struct container **ret,
                       struct cc_error **err)
{
        int r = get_container_locked(rt, id, ret, err);
        if (r < 0)
                return r;
        if (!(*ret)->cg)
                return cc_error_set(err, EOPNOTSUPP, "container '%s' has no cgroup", id);
        return 0;
}

int agent_container_pause(struct agent_runtime *rt, const char *id, bool pause,
                          struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0 && pause && c->state != CONTAINER_RUNNING)
                r = cc_error_set(err, EINVAL, "container '%s' is not running", id);
        else if (r >= 0 && !pause && c->state != CONTAINER_PAUSED)
                r = cc_error_set(err, EINVAL, "container '%s' is not paused", id);
        if (r >= 0 && (r = agent_cgroup_freeze(c->cg, pause, err)) >= 0)
                c->state = pause ? CONTAINER_PAUSED : CONTAINER_RUNNING;
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_container_update(struct agent_runtime *rt, const char *id,
                           const struct agent_resources *res, struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0)
                r = agent_cgroup_apply(c->cg, res, err);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_container_stats(struct agent_runtime *rt, const char *id, struct agent_cgroup_stats *st,
                          struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0) {
                r = agent_cgroup_stats(c->cg, st);
                agent__check_oom_locked(rt, c);
        }
        pthread_mutex_unlock(&rt->lock);
        return r;
}

void agent_runtime_remove_all(struct agent_runtime *rt)
{
        for (;;) {
                pthread_mutex_lock(&rt->lock);
                char *id = NULL;
                for (size_t i = 0; i < rt->n_containers && !id; i++)
                        if (rt->containers[i]->state != CONTAINER_CREATING &&
                            rt->containers[i]->state != CONTAINER_REMOVING)
                                id = strdup(rt->containers[i]->id);
                pthread_mutex_unlock(&rt->lock);
                if (!id)
                        break;
                (void)agent_container_remove(rt, id, 0, NULL);
                free(id);
        }
        agent__pod_destroy(rt);
}

void agent_runtime_shutdown(struct agent_runtime *rt)
{
        agent_runtime_remove_all(rt);
        pthread_mutex_lock(&rt->lock);
        rt->shutdown = true;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
}
