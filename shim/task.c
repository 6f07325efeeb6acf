/*
 * The containerd.task.v2.Task service (and the CC fork's containerd.task.v2.Image) of one pod.
 *
 * State: a list of tasks, each with its init process and its execs, under one mutex that is
 * never held across an agent call or a VM operation (those can take seconds; a State or a
 * Wait on another connection must not wait behind them). Creates are serialised by their own
 * mutex: the sandbox's Create boots the VM, and nothing else may create a second one meanwhile.
 *
 * Exits: each guest process has a monitor thread blocked in the agent's WaitProcess; when it
 * returns, the monitor waits until the process's output is drained to containerd, then records
 * the exit, wakes every Wait and publishes /tasks/exit. A VM watcher thread turns the VMM's
 * death into exit 255 for every process of the pod that has not exited (the sandbox's own
 * process, which is the agent's and has no monitor, exits only this way).
 *
 * Events are published by the step that makes them true, under the mutex, into the publisher's
 * FIFO queue: create (Create), start (Start), exit (monitor or watcher, only for a started
 * process), delete (Delete, only once exited or never started), exec-added before
 * exec-started before the exec's exit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/image.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "kata/agent.pb-c.h"
#include "kata/image.pb-c.h"
#include "runtimeoptions/v1/config.pb-c.h"
#include "shim/shim.h"

#define AGENT_SERVICE "grpc.AgentService"
#define SEC           1000000000ll

enum pstate { P_CREATED, P_RUNNING, P_PAUSED, P_STOPPED };

struct task;

struct proc {
        struct proc *next;
        struct task *task;
        char *exec_id; /* NULL: the task's init process */
        enum pstate state;
        bool exited;
        uint32_t exit_status;
        struct timespec exited_at;
        bool terminal;
        char *stdin_path, *stdout_path, *stderr_path;
        Grpc__Process *gproc; /* an exec's process, until it starts */
        struct shim_io *io;
        pthread_t monitor;
        bool monitor_started;
        unsigned waiters; /* Wait calls holding a pointer to this proc */
};

struct task {
        struct task *next;
        char *id, *bundle;
        enum shim_role role;
        bool in_guest; /* a guest container exists (not for the sandbox role) */
        struct proc init;
        struct proc *execs;
        uint32_t kill_status; /* sandbox role: 128+signal of the Kill that stopped the VM */
};

struct shim {
        char *ns, *address, *id, *bundle;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_mutex_t create_lock;
        pthread_mutex_t vm_lock; /* one libhv call at a time */
        struct task *tasks;
        struct shim_sandbox *sb;
        struct shim_events *ev;
        int exit_efd;
        pthread_t watcher;
        bool watcher_started;
        int watcher_stop_efd;
        bool stop_requested; /* the sandbox's Kill: the watcher stops the VM */
        pthread_t oom;
        bool oom_started;
};

void shim_now(struct timespec *ts)
{
        clock_gettime(CLOCK_REALTIME, ts);
}

static uint32_t vmm_pid(struct shim *s)
{
        return s->sb ? (uint32_t)s->sb->vmm_pid : (uint32_t)getpid();
}

/* ---- lookup and helpers (lock held) ------------------------------------------------------ */

static struct task *task_find(struct shim *s, const char *id)
{
        for (struct task *t = s->tasks; t; t = t->next)
                if (strcmp(t->id, id) == 0)
                        return t;
        return NULL;
}

static int proc_find(struct shim *s, const char *id, const char *exec_id, struct task **rt,
                     struct proc **rp, struct cc_error **err)
{
        struct task *t = task_find(s, id);
        if (!t)
                return cc_error_set(err, ENOENT, "task %s: not found", id);
        if (rt)
                *rt = t;
        if (cc_isempty(exec_id)) {
                *rp = &t->init;
                return 0;
        }
        for (struct proc *p = t->execs; p; p = p->next)
                if (strcmp(p->exec_id, exec_id) == 0) {
                        *rp = p;
                        return 0;
                }
        return cc_error_set(err, ENOENT, "exec %s of task %s: not found", exec_id, id);
}

static Google__Protobuf__Timestamp *ts_new(struct cc_ttrpc_call *call, const struct timespec *t)
{
        Google__Protobuf__Timestamp *ts = cc_ttrpc_call_alloc(call, sizeof(*ts));
        if (!ts)
                return NULL;
        google__protobuf__timestamp__init(ts);
        ts->seconds = t->tv_sec;
        ts->nanos = (int32_t)t->tv_nsec;
        return ts;
}

/* Records an exit and publishes it (lock held); a second report of the same exit is ignored. */
static void proc_exited(struct shim *s, struct proc *p, uint32_t status)
{
        if (p->exited)
                return;
        p->exited = true;
        p->exit_status = status;
        shim_now(&p->exited_at);
        bool was_started = p->state != P_CREATED;
        p->state = P_STOPPED;
        pthread_cond_broadcast(&s->cond);
        if (!was_started)
                return; /* the ordering rules: no exit without a start */
        Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = p->exited_at.tv_sec;
        ts.nanos = (int32_t)p->exited_at.tv_nsec;
        ev.container_id = p->task->id;
        ev.id = p->exec_id ? p->exec_id : p->task->id;
        ev.pid = vmm_pid(s);
        ev.exit_status = status;
        ev.exited_at = &ts;
        shim_events_publish(s->ev, "/tasks/exit", &ev.base);
}

/* ---- process monitor and VM watcher -------------------------------------------------------- */

static void sandbox_stop(struct shim *s);

struct monitor_arg {
        struct shim *s;
        struct proc *p;
};

static void *monitor_main(void *arg)
{
        struct monitor_arg *ma = arg;
        struct shim *s = ma->s;
        struct proc *p = ma->p;
        free(ma);
        Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
        req.container_id = p->task->id;
        req.exec_id = p->exec_id ? p->exec_id : "";
        Grpc__WaitProcessResponse *resp = NULL;
        _cleanup_error_ struct cc_error *e = NULL;
        uint32_t status = 255;
        if (shim_agent_call(s->sb, AGENT_SERVICE, "WaitProcess", &req.base,
                            &grpc__wait_process_response__descriptor, (ProtobufCMessage **)&resp, 0,
                            &e) == 0) {
                status = (uint32_t)resp->status;
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        } else {
                cc_log_warn("task %s%s%s: WaitProcess: %s; reporting exit 255", p->task->id,
                            p->exec_id ? " exec " : "", p->exec_id ? p->exec_id : "",
                            cc_error_message(e));
                /* The agent channel broke while the VMM still runs: nothing of the pod can be
                 * controlled any more, so the pod fails as a whole (every task exits 255)
                 * rather than leaving containers that no Kill or Wait can reach. */
                if (s->sb && !s->sb->vm_dead && cc_ttrpc_client_broken(s->sb->agent)) {
                        cc_log_error("sandbox %s: the agent connection is lost; stopping the pod",
                                     s->sb->id);
                        sandbox_stop(s);
                }
        }
        /* Every byte the process wrote reaches containerd before its exit is reported. */
        shim_io_drain(p->io);
        pthread_mutex_lock(&s->lock);
        proc_exited(s, p, status);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

static int monitor_start(struct shim *s, struct proc *p, struct cc_error **err)
{
        struct monitor_arg *ma = malloc(sizeof(*ma));
        if (!ma)
                return -ENOMEM;
        *ma = (struct monitor_arg){s, p};
        if (pthread_create(&p->monitor, NULL, monitor_main, ma) != 0) {
                free(ma);
                return cc_error_set(err, EAGAIN, "cannot start the process monitor");
        }
        p->monitor_started = true;
        return 0;
}

/* The VMM died or was stopped: every process of the pod that has not exited exits now. */
static void vm_gone(struct shim *s)
{
        pthread_mutex_lock(&s->lock);
        if (s->sb)
                s->sb->vm_dead = true;
        for (struct task *t = s->tasks; t; t = t->next) {
                for (struct proc *p = t->execs; p; p = p->next)
                        proc_exited(s, p, 255);
                proc_exited(s, &t->init, t->kill_status ? t->kill_status : 255);
        }
        pthread_mutex_unlock(&s->lock);
}

static void *watcher_main(void *arg)
{
        struct shim *s = arg;
        int fd = hv_vm_exit_fd(s->sb->vm);
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = s->watcher_stop_efd, .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0 && errno == EINTR)
                        continue;
                break;
        }
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop_requested;
        pthread_mutex_unlock(&s->lock);
        if (stop) {
                sandbox_stop(s);
        } else if (p[0].revents && !p[1].revents) {
                if (!s->sb->vm_dead && !s->sb->stopping)
                        cc_log_warn("sandbox %s: the VM exited", s->sb->id);
                vm_gone(s);
        }
        return NULL;
}

/*
 * The sandbox's Kill: the watcher stops the VM and Kill answers at once, as a signal to a pause
 * process would; the exit follows. Stopping it inside Kill let containerd's exit handler
 * (Delete, Shutdown, then closing the connection) overtake Kill's answer: StopPodSandbox then
 * failed with "ttrpc: closed", as if the shim had died. False without a watcher.
 */
static bool stop_in_watcher(struct shim *s)
{
        if (!s->watcher_started)
                return false;
        pthread_mutex_lock(&s->lock);
        s->stop_requested = true;
        pthread_mutex_unlock(&s->lock);
        uint64_t one = 1;
        return write(s->watcher_stop_efd, &one, sizeof(one)) == sizeof(one);
}

static void watcher_stop(struct shim *s)
{
        if (!s->watcher_started)
                return;
        uint64_t one = 1;
        if (write(s->watcher_stop_efd, &one, sizeof(one)) < 0)
                cc_log_debug("watcher stop: %m");
        pthread_join(s->watcher, NULL);
        s->watcher_started = false;
}

/* /tasks/oom: the agent answers GetOOMEvent when the guest kernel OOM-kills in a container's
 * cgroup; the call blocks until then, and fails once the VM is gone, which ends the thread. */
static void *oom_main(void *arg)
{
        struct shim *s = arg;
        for (;;) {
                Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
                Grpc__OOMEvent *ev = NULL;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(s->sb, AGENT_SERVICE, "GetOOMEvent", &req.base,
                                    &grpc__oomevent__descriptor, (ProtobufCMessage **)&ev, 0,
                                    &e) < 0) {
                        cc_log_debug("GetOOMEvent: %s", cc_error_message(e));
                        break;
                }
                pthread_mutex_lock(&s->lock);
                if (task_find(s, ev->container_id)) {
                        Containerd__Events__TaskOOM oe = CONTAINERD__EVENTS__TASK_OOM__INIT;
                        oe.container_id = ev->container_id;
                        shim_events_publish(s->ev, "/tasks/oom", &oe.base);
                }
                pthread_mutex_unlock(&s->lock);
                cc_log_info("container %s: out of memory in the guest", ev->container_id);
                protobuf_c_message_free_unpacked(&ev->base, NULL);
        }
        return NULL;
}

/* Called once the VM is stopped: the OOM thread's call has failed or will fail now. */
static void oom_join(struct shim *s)
{
        if (!s->oom_started)
                return;
        pthread_join(s->oom, NULL);
        s->oom_started = false;
}

/* Stops the VM (vm_lock serialises libhv) and marks every process exited. */
static void sandbox_stop(struct shim *s)
{
        if (!s->sb)
                return;
        pthread_mutex_lock(&s->vm_lock);
        shim_sandbox_stop(s->sb);
        pthread_mutex_unlock(&s->vm_lock);
        vm_gone(s);
}

/* ---- configuration --------------------------------------------------------------------------- */

static bool type_url_is(const char *url, const char *name)
{
        const char *slash = url ? strrchr(url, '/') : NULL;
        const char *tail = slash ? slash + 1 : url;
        return cc_streq(tail, name);
}

/* The handler's configuration: runtime options ConfigPath, KATA_CONF_FILE, default (Kata's
 * precedence); the pod's io.katacontainers.config_path may then select another file within the
 * limits that configuration sets (shim_config_resolve). */
static int resolve_config(const Containerd__Task__V2__CreateTaskRequest *req,
                          struct json_object *spec, struct shim_config *cfg, struct cc_error **err)
{
        _cleanup_free_ char *from_opts = NULL;
        if (req->options &&
            (type_url_is(req->options->type_url, "runtimeoptions.v1.Options") ||
             type_url_is(req->options->type_url, "cri.runtimeoptions.v1.Options"))) {
                Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(
                        NULL, req->options->value.len, req->options->value.data);
                if (!o)
                        return cc_error_set(err, EINVAL, "cannot decode the runtime options (%s)",
                                            req->options->type_url);
                if (!cc_isempty(o->config_path))
                        from_opts = strdup(o->config_path);
                runtimeoptions__v1__options__free_unpacked(o, NULL);
        }
        const char *path = from_opts;
        if (cc_isempty(path))
                path = getenv("KATA_CONF_FILE");
        if (cc_isempty(path))
                path = SHIM_DEFAULT_CONFIG;
        int r = shim_config_resolve(path, spec, cfg, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "configuration");
        return 0;
}

/* ---- guest containers --------------------------------------------------------------------------
 */

static bool dir_has_entries(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return false;
        struct dirent *de;
        bool any = false;
        while (!any && (de = readdir(d)))
                any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
        closedir(d);
        return any;
}

/* Mounts the rootfs mounts on <bundle>/rootfs (containerd's contract), for copying only. */
static int mount_rootfs(const Containerd__Task__V2__CreateTaskRequest *req, const char *target,
                        struct cc_error **err)
{
        for (size_t i = 0; i < req->n_rootfs; i++) {
                const Containerd__Types__Mount *m = req->rootfs[i];
                unsigned long flags = 0;
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                for (size_t k = 0; k < m->n_options; k++) {
                        const char *o = m->options[k];
                        if (strcmp(o, "ro") == 0) {
                                flags |= MS_RDONLY;
                                continue;
                        }
                        if (strcmp(o, "rbind") == 0 || strcmp(o, "bind") == 0) {
                                flags |= MS_BIND | (o[0] == 'r' ? MS_REC : 0);
                                continue;
                        }
                        size_t ol = strlen(o);
                        char *nd = realloc(data, len + ol + 2);
                        if (!nd)
                                return -ENOMEM;
                        data = nd;
                        if (len)
                                data[len++] = ',';
                        memcpy(data + len, o, ol + 1);
                        len += ol;
                }
                if (mount(m->source, target, m->type, flags, data) < 0)
                        return cc_error_set(err, errno, "mount %s (%s) on %s: %m", m->source,
                                            m->type, target);
        }
        return 0;
}

static int copy_small_files(struct shim *s, struct shim_file_copy *files, size_t n,
                            struct cc_error **err)
{
        uint64_t budget = 16u << 20;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (stat(files[i].host_path, &st) < 0)
                        return cc_error_set(err, errno, "stat %s: %m", files[i].host_path);
                int r = S_ISDIR(st.st_mode)
                                ? shim_agent_copy_tree(s->sb, files[i].host_path,
                                                       files[i].guest_path, &budget, err)
                                : shim_agent_copy_file(s->sb, files[i].host_path,
                                                       files[i].guest_path, &budget, err);
                if (r < 0)
                        return cc_error_wrap(err, -r, "copy %s into the guest", files[i].host_path);
        }
        return 0;
}

static int guest_pull(struct shim *s, const char *cid, const char *image, struct cc_error **err)
{
        Grpc__PullImageRequest req = GRPC__PULL_IMAGE_REQUEST__INIT;
        req.image = (char *)image;
        req.container_id = (char *)cid;
        Grpc__PullImageResponse *resp = NULL;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = shim_agent_call(s->sb, "grpc.Image", "PullImage", &req.base,
                                &grpc__pull_image_response__descriptor, (ProtobufCMessage **)&resp,
                                (int64_t)s->sb->cfg.create_container_timeout_s * SEC, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "pull image %s in the guest", image);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        /* For bench/pod-start.sh's breakdown: the pull's share of the container's create. */
        cc_log_info("container %s: guest pull of %s took %.1f ms", cid, image,
                    (double)((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec)) / 1e6);
        return 0;
}

static int create_guest_container(struct shim *s,
                                  const Containerd__Task__V2__CreateTaskRequest *req,
                                  struct json_object *spec, struct cc_error **err)
{
        const char *cid = req->id;
        const struct shim_config *cfg = &s->sb->cfg;
        const char *cfgname = cfg->path ? cfg->path : "the built-in configuration";
        int r;
        _cleanup_free_ struct shim_mount *ms = calloc(req->n_rootfs + 1, sizeof(*ms));
        if (!ms)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_rootfs; i++)
                ms[i] = (struct shim_mount){req->rootfs[i]->type, req->rootfs[i]->source,
                                            req->rootfs[i]->options, req->rootfs[i]->n_options};
        enum shim_rootfs_kind kind;
        _cleanup_free_ char *image = NULL;
        if ((r = shim_rootfs_classify(ms, req->n_rootfs, &kind, &image, err)) < 0)
                return r;
        const char *image_anno = shim_spec_annotation(spec, ANNO_IMAGE_NAME);
        /* No mounts: ctr --rootfs (a host directory in root.path), or the CC fork, where the
         * guest supplies the image named by the CRI annotation. */
        _cleanup_free_ char *host_dir = NULL;
        if (kind == SHIM_ROOTFS_NONE) {
                const char *rp = NULL;
                cc_json_get_string(spec, "/root/path", &rp, NULL);
                if (rp && rp[0] != '/' && asprintf(&host_dir, "%s/%s", req->bundle, rp) < 0)
                        return -ENOMEM;
                if (rp && rp[0] == '/' && !(host_dir = strdup(rp)))
                        return -ENOMEM;
                if (host_dir && dir_has_entries(host_dir))
                        kind = SHIM_ROOTFS_HOST;
                else if (!cc_isempty(image_anno))
                        kind = SHIM_ROOTFS_GUEST_PULL;
                else
                        return cc_error_set(err, EINVAL,
                                            "container %s has no rootfs: no mounts, an empty "
                                            "root.path and no %s annotation",
                                            cid, ANNO_IMAGE_NAME);
        }
        _cleanup_free_ char *guest_root = NULL;
        if (asprintf(&guest_root, "%s/%s/rootfs", SHIM_GUEST_CONTAINERS_DIR, cid) < 0)
                return -ENOMEM;
        if (kind == SHIM_ROOTFS_GUEST_PULL) {
                /* The volume's reference when it is pinned to the digest containerd resolved
                 * (shim_rootfs_classify), else the CRI annotation's name. */
                const char *name = image && strchr(image, '@') ? image
                                   : !cc_isempty(image_anno)   ? image_anno
                                                               : image;
                if (cc_isempty(name))
                        return cc_error_set(err, EINVAL,
                                            "container %s: the guest-pull rootfs names no image "
                                            "and the spec has no %s annotation",
                                            cid, ANNO_IMAGE_NAME);
                if ((r = guest_pull(s, cid, name, err)) < 0)
                        return r;
        } else {
                if (cfg->tee != HV_TEE_NONE)
                        return cc_error_set_code(
                                err, CC_GRPC_FAILED_PRECONDITION,
                                "container %s: its rootfs is on the host (%s), which a "
                                "confidential (%s) pod must not use: configure containerd to use "
                                "the guest-pull snapshotter (cc-snapshotter, or nydus in proxy "
                                "mode) so that the image is pulled inside the guest",
                                cid, req->n_rootfs ? req->rootfs[0]->type : "a host directory",
                                hv_tee_to_string(cfg->tee));
                if (!cfg->allow_host_rootfs)
                        return cc_error_set_code(
                                err, CC_GRPC_FAILED_PRECONDITION,
                                "container %s: its rootfs is on the host (%s) and %s does not "
                                "allow sharing it ([runtime] allow_host_rootfs = false): use the "
                                "guest-pull snapshotter, or allow it for non-TEE development",
                                cid, req->n_rootfs ? req->rootfs[0]->type : "a host directory",
                                cfgname);
                /* The rootfs travels over the agent channel with CopyFile, file by file: no
                 * virtio-fs or 9p share exists in a CoCo guest, and this keeps development
                 * pods on the same single channel (bounded by host_rootfs_max_mib). */
                _cleanup_free_ char *mnt = NULL;
                bool mounted = false;
                if (req->n_rootfs) {
                        if (asprintf(&mnt, "%s/rootfs", req->bundle) < 0)
                                return -ENOMEM;
                        (void)mkdir(mnt, 0711);
                        if ((r = mount_rootfs(req, mnt, err)) < 0)
                                return r;
                        mounted = true;
                }
                uint64_t budget = cfg->host_rootfs_max_bytes;
                r = shim_agent_copy_tree(s->sb, mounted ? mnt : host_dir, guest_root, &budget, err);
                if (mounted && umount2(mnt, MNT_DETACH) < 0)
                        cc_log_warn("umount %s: %m", mnt);
                if (r < 0)
                        return cc_error_wrap(err, -r, "copy the rootfs of %s into the guest", cid);
        }
        Grpc__Spec *gspec = NULL;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        if ((r = shim_spec_from_oci(spec, cid, guest_root, &gspec, &files, &n_files, err)) < 0)
                return cc_error_wrap(err, -r, "config.json of %s", cid);
        r = copy_small_files(s, files, n_files, err);
        shim_file_copies_free(files, n_files);
        /* The pod's volumes (emptyDirs) the mounts name, made in the guest (storage.c). */
        Grpc__Storage **storages = NULL;
        size_t n_storages = 0;
        if (r >= 0)
                r = shim_storages_for(gspec, &storages, &n_storages);
        if (r >= 0) {
                Grpc__CreateContainerRequest creq = GRPC__CREATE_CONTAINER_REQUEST__INIT;
                creq.container_id = (char *)cid;
                creq.exec_id = (char *)cid;
                creq.oci = gspec;
                creq.storages = storages;
                creq.n_storages = n_storages;
                r = shim_agent_call(s->sb, AGENT_SERVICE, "CreateContainer", &creq.base, NULL,
                                    NULL, (int64_t)cfg->create_container_timeout_s * SEC, err);
        }
        shim_storages_free(storages, n_storages);
        protobuf_c_message_free_unpacked(&gspec->base, NULL);
        return r;
}

/* ---- Task handlers ------------------------------------------------------------------------- */

#define HANDLER(name)                                                                             \
        static int name(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_, \
                        ProtobufCMessage *resp_, struct cc_error **err)

static void task_free(struct task *t)
{
        if (!t)
                return;
        struct proc *p = t->execs;
        while (p) {
                struct proc *next = p->next;
                if (p->monitor_started)
                        pthread_join(p->monitor, NULL);
                shim_io_free(p->io);
                if (p->gproc)
                        protobuf_c_message_free_unpacked(&p->gproc->base, NULL);
                free(p->exec_id);
                free(p->stdin_path);
                free(p->stdout_path);
                free(p->stderr_path);
                free(p);
                p = next;
        }
        if (t->init.monitor_started)
                pthread_join(t->init.monitor, NULL);
        shim_io_free(t->init.io);
        free(t->init.stdin_path);
        free(t->init.stdout_path);
        free(t->init.stderr_path);
        free(t->id);
        free(t->bundle);
        free(t);
}

static int do_create(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                     uint32_t *ret_pid, struct cc_error **err)
{
        if (cc_isempty(req->id) || cc_isempty(req->bundle))
                return cc_error_set(err, EINVAL, "id and bundle are required");
        if (!cc_isempty(req->checkpoint))
                return cc_error_set(err, EOPNOTSUPP,
                                    "restoring from a checkpoint is not supported");
        pthread_mutex_lock(&s->lock);
        bool exists = task_find(s, req->id) != NULL;
        pthread_mutex_unlock(&s->lock);
        if (exists)
                return cc_error_set(err, EEXIST, "task %s already exists", req->id);
        _cleanup_free_ char *cfgpath = NULL;
        if (asprintf(&cfgpath, "%s/config.json", req->bundle) < 0)
                return -ENOMEM;
        _cleanup_json_ struct json_object *spec = NULL;
        int r = cc_json_parse_file(cfgpath, 0, 0, &spec, err);
        if (r < 0)
                return r;
        const char *sbid = NULL;
        enum shim_role role = shim_spec_role(spec, req->id, &sbid);
        bool new_vm = role != SHIM_ROLE_CONTAINER;
        if (new_vm && s->sb)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "task %s: this shim already runs sandbox %s; it cannot "
                                         "create another sandbox",
                                         req->id, s->sb->id);
        if (!new_vm && (!s->sb || strcmp(s->sb->id, sbid) != 0))
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "container %s: its sandbox %s does not run in this shim",
                                         req->id, sbid);
        if (!new_vm && s->sb->vm_dead)
                return cc_error_set_code(err, CC_GRPC_UNAVAILABLE, "sandbox %s: the VM is gone",
                                         sbid);
        if (new_vm) {
                struct shim_sandbox *sb = calloc(1, sizeof(*sb));
                if (!sb)
                        return -ENOMEM;
                shim_config_init(&sb->cfg);
                sb->id = strdup(req->id);
                sb->ns = strdup(s->ns);
                if (!sb->id || !sb->ns || (r = shim_vm_run_dir(s->ns, req->id, &sb->run_dir)) < 0) {
                        shim_sandbox_free(sb);
                        return -ENOMEM;
                }
                if ((r = resolve_config(req, spec, &sb->cfg, err)) < 0 ||
                    (r = shim_sandbox_start(sb, spec, err)) < 0) {
                        shim_sandbox_free(sb); /* stops what started, removes the run dir */
                        return r;
                }
                s->sb = sb;
                if (pthread_create(&s->watcher, NULL, watcher_main, s) == 0)
                        s->watcher_started = true;
                if (pthread_create(&s->oom, NULL, oom_main, s) == 0)
                        s->oom_started = true;
        }
        if (role != SHIM_ROLE_SANDBOX && (r = create_guest_container(s, req, spec, err)) < 0) {
                if (new_vm) {
                        sandbox_stop(s);
                        watcher_stop(s);
                        oom_join(s);
                        shim_sandbox_free(s->sb);
                        s->sb = NULL;
                }
                return r;
        }
        struct task *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->id = strdup(req->id);
        t->bundle = strdup(req->bundle);
        t->role = role;
        t->in_guest = role != SHIM_ROLE_SANDBOX;
        t->init.task = t;
        t->init.terminal = req->terminal;
        t->init.stdin_path = strdup(req->stdin ? req->stdin : "");
        t->init.stdout_path = strdup(req->stdout ? req->stdout : "");
        t->init.stderr_path = strdup(req->stderr ? req->stderr : "");
        if (!t->id || !t->bundle || !t->init.stdin_path || !t->init.stdout_path ||
            !t->init.stderr_path) {
                task_free(t);
                return -ENOMEM;
        }
        if (t->in_guest && (r = shim_io_new(s->sb, t->id, NULL, req->terminal, req->stdin,
                                            req->stdout, req->stderr, &t->init.io, err)) < 0) {
                task_free(t);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        t->next = s->tasks;
        s->tasks = t;
        Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
        Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
        io.stdin = t->init.stdin_path;
        io.stdout = t->init.stdout_path;
        io.stderr = t->init.stderr_path;
        io.terminal = req->terminal;
        ev.container_id = t->id;
        ev.bundle = t->bundle;
        ev.n_rootfs = req->n_rootfs;
        ev.rootfs = req->rootfs;
        ev.io = &io;
        ev.pid = vmm_pid(s);
        shim_events_publish(s->ev, "/tasks/create", &ev.base);
        pthread_mutex_unlock(&s->lock);
        *ret_pid = vmm_pid(s);
        cc_log_info("task %s created (%s)", req->id,
                    role == SHIM_ROLE_SANDBOX  ? "sandbox"
                    : role == SHIM_ROLE_SINGLE ? "single"
                                               : "container");
        return 0;
}

HANDLER(task_create)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__CreateTaskRequest *req = (const void *)req_;
        Containerd__Task__V2__CreateTaskResponse *resp = (void *)resp_;
        pthread_mutex_lock(&s->create_lock);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        (void)shim_external_ns_take();
        int r = do_create(s, req, &resp->pid, err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        int64_t total = (b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec);
        int64_t own = total - shim_external_ns_take();
        pthread_mutex_unlock(&s->create_lock);
        if (r < 0)
                cc_log_error("create %s: %s", req->id, cc_error_message(err ? *err : NULL));
        else
                /* "own" excludes the VM boot and the agent's calls (issue 5: at most 10 ms). */
                cc_log_info("create %s took %.1f ms, %.2f ms of it in the shim itself", req->id,
                            (double)total / 1e6, (double)own / 1e6);
        return r;
}

/*
 * An exec the agent did not start (its policy refused it, the binary is missing) never runs.
 * containerd waits for it before Start (CRI's exec does), so its Wait calls end now, with 255,
 * as the runc shim's do; no exit event, since no start was published. Delete then removes it.
 */
static void exec_start_failed(struct shim *s, struct proc *p)
{
        pthread_mutex_lock(&s->lock);
        proc_exited(s, p, 255);
        pthread_mutex_unlock(&s->lock);
}

HANDLER(task_start)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StartRequest *req = (const void *)req_;
        Containerd__Task__V2__StartResponse *resp = (void *)resp_;
        struct task *t = NULL;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, &t, &p, err);
        if (r == 0 && (p->state != P_CREATED || p->exited))
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "task %s: process already started", req->id);
        if (r == 0 && p->exec_id && (t->init.exited || t->init.state == P_CREATED))
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION, "task %s is not running",
                                      req->id);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        if (t->role == SHIM_ROLE_SANDBOX && !p->exec_id) {
                /* The pause process is the agent's own: nothing to start in the guest. */
        } else if (!p->exec_id) {
                Grpc__StartContainerRequest sreq = GRPC__START_CONTAINER_REQUEST__INIT;
                sreq.container_id = t->id;
                if ((r = shim_agent_call(s->sb, AGENT_SERVICE, "StartContainer", &sreq.base, NULL,
                                         NULL, 30 * SEC, err)) < 0)
                        return r;
        } else {
                Grpc__ExecProcessRequest ereq = GRPC__EXEC_PROCESS_REQUEST__INIT;
                ereq.container_id = t->id;
                ereq.exec_id = p->exec_id;
                ereq.process = p->gproc;
                if ((r = shim_agent_call(s->sb, AGENT_SERVICE, "ExecProcess", &ereq.base, NULL,
                                         NULL, 30 * SEC, err)) < 0) {
                        exec_start_failed(s, p);
                        return r;
                }
        }
        if (p->io && (r = shim_io_start(p->io, err)) < 0) {
                if (p->exec_id)
                        exec_start_failed(s, p);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        p->state = P_RUNNING;
        if (p->exec_id) {
                Containerd__Events__TaskExecStarted ev =
                        CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
                ev.container_id = t->id;
                ev.exec_id = p->exec_id;
                ev.pid = vmm_pid(s);
                shim_events_publish(s->ev, "/tasks/exec-started", &ev.base);
        } else {
                Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
                ev.container_id = t->id;
                ev.pid = vmm_pid(s);
                shim_events_publish(s->ev, "/tasks/start", &ev.base);
        }
        /* The VM may have died between the agent call and now. */
        if (s->sb->vm_dead)
                proc_exited(s, p, 255);
        pthread_mutex_unlock(&s->lock);
        if (p->io && (r = monitor_start(s, p, err)) < 0)
                return r;
        resp->pid = vmm_pid(s);
        return 0;
}

HANDLER(task_state)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StateRequest *req = (const void *)req_;
        Containerd__Task__V2__StateResponse *resp = (void *)resp_;
        struct task *t = NULL;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, &t, &p, err);
        if (r == 0) {
                static const Containerd__V1__Types__Status st[] = {
                        [P_CREATED] = CONTAINERD__V1__TYPES__STATUS__CREATED,
                        [P_RUNNING] = CONTAINERD__V1__TYPES__STATUS__RUNNING,
                        [P_PAUSED] = CONTAINERD__V1__TYPES__STATUS__PAUSED,
                        [P_STOPPED] = CONTAINERD__V1__TYPES__STATUS__STOPPED};
                resp->id = cc_ttrpc_call_strdup(call, t->id);
                resp->bundle = cc_ttrpc_call_strdup(call, t->bundle);
                resp->pid = vmm_pid(s);
                resp->status = st[p->state];
                resp->stdin = cc_ttrpc_call_strdup(call, p->stdin_path);
                resp->stdout = cc_ttrpc_call_strdup(call, p->stdout_path);
                resp->stderr = cc_ttrpc_call_strdup(call, p->stderr_path);
                resp->terminal = p->terminal;
                resp->exit_status = p->exit_status;
                struct timespec zero = {0};
                resp->exited_at = ts_new(call, p->exited ? &p->exited_at : &zero);
                resp->exec_id = cc_ttrpc_call_strdup(call, p->exec_id ? p->exec_id : "");
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

HANDLER(task_delete)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__DeleteRequest *req = (const void *)req_;
        Containerd__Task__V2__DeleteResponse *resp = (void *)resp_;
        struct task *t = NULL;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, &t, &p, err);
        if (r == 0 && p->state != P_CREATED && !p->exited)
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "task %s%s%s is still running; kill it first", req->id,
                                      p->exec_id ? " exec " : "", p->exec_id ? p->exec_id : "");
        if (r == 0 && !p->exec_id && t->role == SHIM_ROLE_SANDBOX) {
                for (struct task *o = s->tasks; o; o = o->next)
                        if (o != t)
                                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                                      "sandbox %s still has container %s", t->id,
                                                      o->id);
        }
        if (r < 0) {
                pthread_mutex_unlock(&s->lock);
                return r;
        }
        if (p->exec_id) {
                /* Unlink the exec now; its threads end with the process. */
                struct proc **pp = &t->execs;
                while (*pp != p)
                        pp = &(*pp)->next;
                *pp = p->next;
        }
        pthread_mutex_unlock(&s->lock);

        if (p->exec_id) {
                if (p->monitor_started)
                        pthread_join(p->monitor, NULL);
                shim_io_free(p->io);
                p->io = NULL;
        } else {
                if (t->in_guest && s->sb && !s->sb->vm_dead) {
                        Grpc__RemoveContainerRequest rreq = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
                        rreq.container_id = t->id;
                        rreq.timeout = 10;
                        _cleanup_error_ struct cc_error *e = NULL;
                        if (shim_agent_call(s->sb, AGENT_SERVICE, "RemoveContainer", &rreq.base,
                                            NULL, NULL, 15 * SEC, &e) < 0)
                                cc_log_warn("remove container %s: %s", t->id, cc_error_message(e));
                }
                if (t->role != SHIM_ROLE_CONTAINER) {
                        /* The pod ends with its sandbox task: stop the VM first so every
                         * blocked agent call (monitors, relays) returns. */
                        sandbox_stop(s);
                        watcher_stop(s);
                        oom_join(s);
                }
                for (struct proc *e = t->execs; e; e = e->next) {
                        if (e->monitor_started)
                                pthread_join(e->monitor, NULL);
                        e->monitor_started = false;
                }
                if (p->monitor_started)
                        pthread_join(p->monitor, NULL);
                p->monitor_started = false;
        }

        pthread_mutex_lock(&s->lock);
        Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = p->exited_at.tv_sec;
        ts.nanos = (int32_t)p->exited_at.tv_nsec;
        ev.container_id = t->id;
        ev.pid = vmm_pid(s);
        ev.exit_status = p->exit_status;
        ev.exited_at = &ts;
        ev.id = p->exec_id ? p->exec_id : "";
        shim_events_publish(s->ev, "/tasks/delete", &ev.base);
        resp->pid = vmm_pid(s);
        resp->exit_status = p->exit_status;
        resp->exited_at = ts_new(call, &p->exited_at);
        if (!p->exec_id) {
                struct task **tp = &s->tasks;
                while (*tp != t)
                        tp = &(*tp)->next;
                *tp = t->next;
        }
        /* Wait calls that saw the exit still read this proc (and the execs); let them go. */
        for (;;) {
                unsigned w = p->waiters;
                for (struct proc *e = p->exec_id ? NULL : t->execs; e; e = e->next)
                        w += e->waiters;
                if (!w)
                        break;
                pthread_cond_wait(&s->cond, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);

        if (p->exec_id) {
                if (p->gproc)
                        protobuf_c_message_free_unpacked(&p->gproc->base, NULL);
                free(p->exec_id);
                free(p->stdin_path);
                free(p->stdout_path);
                free(p->stderr_path);
                free(p);
        } else {
                task_free(t);
                if (s->sb && s->sb->vm_dead && !s->tasks) {
                        shim_sandbox_free(s->sb);
                        s->sb = NULL;
                }
        }
        return 0;
}

HANDLER(task_pids)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__PidsRequest *req = (const void *)req_;
        Containerd__Task__V2__PidsResponse *resp = (void *)resp_;
        pthread_mutex_lock(&s->lock);
        struct task *t = task_find(s, req->id);
        int r = t ? 0 : cc_error_set(err, ENOENT, "task %s: not found", req->id);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        /* The container's processes live in the guest; the host process that runs them is the
         * VMM (kata reports the same). */
        resp->processes = cc_ttrpc_call_alloc(call, sizeof(*resp->processes));
        Containerd__V1__Types__ProcessInfo *pi = cc_ttrpc_call_alloc(call, sizeof(*pi));
        if (!resp->processes || !pi)
                return -ENOMEM;
        containerd__v1__types__process_info__init(pi);
        pi->pid = vmm_pid(s);
        resp->processes[0] = pi;
        resp->n_processes = 1;
        return 0;
}

static int simple_container_call(struct shim *s, const char *id, const char *method,
                                 enum pstate want, enum pstate next, const char *topic,
                                 struct cc_error **err)
{
        struct task *t = NULL;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, id, NULL, &t, &p, err);
        if (r == 0 && p->state != want)
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION, "task %s is not %s", id,
                                      want == P_RUNNING ? "running" : "paused");
        if (r == 0 && !t->in_guest)
                r = cc_error_set_code(err, CC_GRPC_UNIMPLEMENTED,
                                      "%s of the pod sandbox is not supported", method);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        Grpc__PauseContainerRequest req = GRPC__PAUSE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)id;
        /* PauseContainerRequest and ResumeContainerRequest are both { container_id = 1 }. */
        ProtobufCMessage *m = &req.base;
        Grpc__ResumeContainerRequest rreq = GRPC__RESUME_CONTAINER_REQUEST__INIT;
        if (strcmp(method, "ResumeContainer") == 0) {
                rreq.container_id = (char *)id;
                m = &rreq.base;
        }
        if ((r = shim_agent_call(s->sb, AGENT_SERVICE, method, m, NULL, NULL, 30 * SEC, err)) < 0)
                return r;
        pthread_mutex_lock(&s->lock);
        if (!p->exited)
                p->state = next;
        Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
        ev.container_id = (char *)id;
        Containerd__Events__TaskResumed rev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
        rev.container_id = (char *)id;
        shim_events_publish(s->ev, topic, next == P_PAUSED ? &ev.base : &rev.base);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

HANDLER(task_pause)
{
        const Containerd__Task__V2__PauseRequest *req = (const void *)req_;
        return simple_container_call(userdata, req->id, "PauseContainer", P_RUNNING, P_PAUSED,
                                     "/tasks/paused", err);
}

HANDLER(task_resume)
{
        const Containerd__Task__V2__ResumeRequest *req = (const void *)req_;
        return simple_container_call(userdata, req->id, "ResumeContainer", P_PAUSED, P_RUNNING,
                                     "/tasks/resumed", err);
}

HANDLER(task_checkpoint)
{
        return cc_error_set_code(err, CC_GRPC_UNIMPLEMENTED,
                                 "checkpoint is not supported: the container runs inside a "
                                 "(confidential) VM whose memory the host cannot read");
}

HANDLER(task_kill)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__KillRequest *req = (const void *)req_;
        struct task *t = NULL;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, &t, &p, err);
        if (r == 0 && p->exited)
                r = cc_error_set(err, ENOENT, "task %s: process already finished", req->id);
        /*
         * An exec whose Start failed (or never came) has no process in the guest. As the runc
         * shim, that is FailedPrecondition: containerd's WithProcessKill (CRI's exec cleanup)
         * then deletes it at once, where NotFound from the agent would make it wait for an
         * exit that never comes (a minute per refused exec).
         */
        if (r == 0 && p->exec_id && p->state == P_CREATED)
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "exec %s of task %s: process not created", p->exec_id,
                                      req->id);
        bool sandbox = r == 0 && !p->exec_id && t->role == SHIM_ROLE_SANDBOX;
        if (sandbox)
                t->kill_status = 128 + (req->signal & 0x7f);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        if (sandbox) {
                /* The pause process is the VM: killing it stops the pod. */
                if (!stop_in_watcher(s))
                        sandbox_stop(s);
                return 0;
        }
        if (p->state == P_CREATED && !p->exec_id) {
                /* Never started: nothing runs in the guest yet; record the kill as the exit. */
                pthread_mutex_lock(&s->lock);
                proc_exited(s, p, 128 + (req->signal & 0x7f));
                pthread_mutex_unlock(&s->lock);
                return 0;
        }
        Grpc__SignalProcessRequest sreq = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
        sreq.container_id = t->id;
        /* An empty exec id addresses the container's init (and, for `all`, every process). */
        sreq.exec_id = p->exec_id ? p->exec_id : "";
        sreq.signal = req->signal;
        return shim_agent_call(s->sb, AGENT_SERVICE, "SignalProcess", &sreq.base, NULL, NULL,
                               10 * SEC, err);
}

HANDLER(task_exec)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ExecProcessRequest *req = (const void *)req_;
        if (cc_isempty(req->exec_id))
                return cc_error_set(err, EINVAL, "exec id is required");
        if (!req->spec || !type_url_is(req->spec->type_url, "Process"))
                return cc_error_set(err, EINVAL, "exec spec must be an OCI Process (got %s)",
                                    req->spec ? req->spec->type_url : "nothing");
        _cleanup_json_ struct json_object *pj = NULL;
        int r = cc_json_parse("exec spec", (const char *)req->spec->value.data,
                              req->spec->value.len, 0, &pj, err);
        if (r < 0)
                return r;
        Grpc__Process *gp = NULL;
        if ((r = shim_process_from_oci(pj, &gp, err)) < 0)
                return r;
        struct proc *p = calloc(1, sizeof(*p));
        if (!p || !(p->exec_id = strdup(req->exec_id)) ||
            !(p->stdin_path = strdup(req->stdin ? req->stdin : "")) ||
            !(p->stdout_path = strdup(req->stdout ? req->stdout : "")) ||
            !(p->stderr_path = strdup(req->stderr ? req->stderr : ""))) {
                if (p) {
                        free(p->exec_id);
                        free(p->stdin_path);
                        free(p->stdout_path);
                }
                free(p);
                protobuf_c_message_free_unpacked(&gp->base, NULL);
                return -ENOMEM;
        }
        p->gproc = gp;
        p->terminal = req->terminal;
        gp->terminal = req->terminal;
        if (s->sb && (r = shim_io_new(s->sb, req->id, req->exec_id, req->terminal, req->stdin,
                                      req->stdout, req->stderr, &p->io, err)) < 0) {
                protobuf_c_message_free_unpacked(&gp->base, NULL);
                free(p->exec_id);
                free(p->stdin_path);
                free(p->stdout_path);
                free(p->stderr_path);
                free(p);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        struct task *t = task_find(s, req->id);
        struct proc *dup = NULL;
        if (!t)
                r = cc_error_set(err, ENOENT, "task %s: not found", req->id);
        else if (!t->in_guest)
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "exec into the pod sandbox is not supported");
        else if (t->init.exited || t->init.state == P_CREATED)
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION, "task %s is not running",
                                      req->id);
        else if (proc_find(s, req->id, req->exec_id, NULL, &dup, NULL) == 0)
                r = cc_error_set(err, EEXIST, "exec %s already exists", req->exec_id);
        if (r == 0) {
                p->task = t;
                p->next = t->execs;
                t->execs = p;
                Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
                ev.container_id = t->id;
                ev.exec_id = p->exec_id;
                shim_events_publish(s->ev, "/tasks/exec-added", &ev.base);
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0) {
                shim_io_free(p->io);
                protobuf_c_message_free_unpacked(&gp->base, NULL);
                free(p->exec_id);
                free(p->stdin_path);
                free(p->stdout_path);
                free(p->stderr_path);
                free(p);
        }
        return r;
}

HANDLER(task_resize_pty)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ResizePtyRequest *req = (const void *)req_;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, NULL, &p, err);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        Grpc__TtyWinResizeRequest treq = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
        treq.container_id = (char *)req->id;
        treq.exec_id = (char *)(req->exec_id ? req->exec_id : "");
        treq.row = req->height;
        treq.column = req->width;
        return shim_agent_call(s->sb, AGENT_SERVICE, "TtyWinResize", &treq.base, NULL, NULL,
                               10 * SEC, err);
}

HANDLER(task_close_io)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__CloseIORequest *req = (const void *)req_;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, NULL, &p, err);
        struct shim_io *io = r == 0 ? p->io : NULL;
        pthread_mutex_unlock(&s->lock);
        if (r == 0 && req->stdin && io)
                shim_io_close_stdin(io);
        return r;
}

HANDLER(task_update)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)req_;
        pthread_mutex_lock(&s->lock);
        struct task *t = task_find(s, req->id);
        bool in_guest = t && t->in_guest;
        pthread_mutex_unlock(&s->lock);
        if (!t)
                return cc_error_set(err, ENOENT, "task %s: not found", req->id);
        if (!in_guest || !req->resources)
                return 0; /* the sandbox's resources are the VM's, fixed at boot */
        _cleanup_json_ struct json_object *rj = NULL;
        int r = cc_json_parse("resources", (const char *)req->resources->value.data,
                              req->resources->value.len, 0, &rj, err);
        if (r < 0)
                return r;
        Grpc__UpdateContainerRequest ureq = GRPC__UPDATE_CONTAINER_REQUEST__INIT;
        ureq.container_id = (char *)req->id;
        if ((r = shim_resources_from_oci(rj, &ureq.resources, err)) < 0)
                return r;
        r = shim_agent_call(s->sb, AGENT_SERVICE, "UpdateContainer", &ureq.base, NULL, NULL,
                            10 * SEC, err);
        protobuf_c_message_free_unpacked(&ureq.resources->base, NULL);
        return r;
}

HANDLER(task_wait)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__WaitRequest *req = (const void *)req_;
        Containerd__Task__V2__WaitResponse *resp = (void *)resp_;
        struct proc *p = NULL;
        pthread_mutex_lock(&s->lock);
        int r = proc_find(s, req->id, req->exec_id, NULL, &p, err);
        /* The proc stays allocated while we wait: Delete refuses a process that has not
         * exited, and Wait returns as soon as it has. */
        if (r == 0)
                p->waiters++;
        while (r == 0 && !p->exited)
                pthread_cond_wait(&s->cond, &s->lock);
        if (r == 0) {
                resp->exit_status = p->exit_status;
                resp->exited_at = ts_new(call, &p->exited_at);
                p->waiters--;
                pthread_cond_broadcast(&s->cond);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* ---- Stats: the agent's cgroup stats as io.containerd.cgroups.v2.Metrics --------------------- */

struct pbuf {
        uint8_t *b;
        size_t n, cap;
};

static void pb_varint(struct pbuf *p, uint64_t v)
{
        do {
                if (p->n < p->cap)
                        p->b[p->n] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                p->n++;
                v >>= 7;
        } while (v);
}

static void pb_u64(struct pbuf *p, unsigned field, uint64_t v)
{
        if (!v)
                return;
        pb_varint(p, (uint64_t)field << 3);
        pb_varint(p, v);
}

static void pb_msg(struct pbuf *p, unsigned field, const struct pbuf *sub)
{
        pb_varint(p, (uint64_t)field << 3 | 2);
        pb_varint(p, sub->n);
        for (size_t i = 0; i < sub->n; i++, p->n++)
                if (p->n < p->cap)
                        p->b[p->n] = sub->b[i];
}

/* Field numbers of containerd/cgroups cgroup2/stats/metrics.proto (Metrics: pids 1, cpu 2,
 * memory 4; PidsStat current 1 limit 2; CPUStat usage_usec 1 user_usec 2 system_usec 3
 * nr_periods 4 nr_throttled 5 throttled_usec 6; MemoryStat usage 32 usage_limit 33
 * swap_usage 34 swap_limit 35 max_usage 36). */
static size_t encode_metrics(const Grpc__CgroupStats *cg, uint8_t *out, size_t cap)
{
        uint8_t pb_[64], cb_[96], mb_[96];
        struct pbuf pids = {pb_, 0, sizeof(pb_)}, cpu = {cb_, 0, sizeof(cb_)},
                    mem = {mb_, 0, sizeof(mb_)}, all = {out, 0, cap};
        if (cg && cg->pids_stats) {
                pb_u64(&pids, 1, cg->pids_stats->current);
                pb_u64(&pids, 2, cg->pids_stats->limit);
        }
        if (cg && cg->cpu_stats && cg->cpu_stats->cpu_usage) {
                const Grpc__CpuUsage *u = cg->cpu_stats->cpu_usage;
                pb_u64(&cpu, 1, u->total_usage / 1000);
                pb_u64(&cpu, 2, u->usage_in_usermode / 1000);
                pb_u64(&cpu, 3, u->usage_in_kernelmode / 1000);
        }
        if (cg && cg->cpu_stats && cg->cpu_stats->throttling_data) {
                const Grpc__ThrottlingData *d = cg->cpu_stats->throttling_data;
                pb_u64(&cpu, 4, d->periods);
                pb_u64(&cpu, 5, d->throttled_periods);
                pb_u64(&cpu, 6, d->throttled_time / 1000);
        }
        if (cg && cg->memory_stats) {
                const Grpc__MemoryStats *m = cg->memory_stats;
                if (m->usage) {
                        pb_u64(&mem, 32, m->usage->usage);
                        pb_u64(&mem, 33, m->usage->limit);
                        pb_u64(&mem, 36, m->usage->max_usage);
                }
                if (m->swap_usage) {
                        pb_u64(&mem, 34, m->swap_usage->usage);
                        pb_u64(&mem, 35, m->swap_usage->limit);
                }
        }
        pb_msg(&all, 1, &pids);
        pb_msg(&all, 2, &cpu);
        pb_msg(&all, 4, &mem);
        return all.n;
}

HANDLER(task_stats)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StatsRequest *req = (const void *)req_;
        Containerd__Task__V2__StatsResponse *resp = (void *)resp_;
        pthread_mutex_lock(&s->lock);
        struct task *t = task_find(s, req->id);
        bool in_guest = t && t->in_guest;
        pthread_mutex_unlock(&s->lock);
        if (!t)
                return cc_error_set(err, ENOENT, "task %s: not found", req->id);
        Grpc__StatsContainerResponse *sr = NULL;
        if (in_guest) {
                Grpc__StatsContainerRequest sreq = GRPC__STATS_CONTAINER_REQUEST__INIT;
                sreq.container_id = (char *)req->id;
                int r = shim_agent_call(s->sb, AGENT_SERVICE, "StatsContainer", &sreq.base,
                                        &grpc__stats_container_response__descriptor,
                                        (ProtobufCMessage **)&sr, 10 * SEC, err);
                if (r < 0)
                        return r;
        }
        uint8_t *buf = cc_ttrpc_call_alloc(call, 512);
        Google__Protobuf__Any *any = cc_ttrpc_call_alloc(call, sizeof(*any));
        if (!buf || !any) {
                if (sr)
                        protobuf_c_message_free_unpacked(&sr->base, NULL);
                return -ENOMEM;
        }
        google__protobuf__any__init(any);
        any->type_url = "io.containerd.cgroups.v2.Metrics";
        any->value.data = buf;
        any->value.len = encode_metrics(sr ? sr->cgroup_stats : NULL, buf, 512);
        if (sr)
                protobuf_c_message_free_unpacked(&sr->base, NULL);
        resp->stats = any;
        return 0;
}

HANDLER(task_connect)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ConnectRequest *req = (const void *)req_;
        Containerd__Task__V2__ConnectResponse *resp = (void *)resp_;
        pthread_mutex_lock(&s->lock);
        struct task *t = task_find(s, req->id);
        pthread_mutex_unlock(&s->lock);
        if (!t)
                return cc_error_set(err, ENOENT, "task %s: not found", req->id);
        resp->shim_pid = (uint32_t)getpid();
        resp->task_pid = vmm_pid(s);
        resp->version = SHIM_VERSION;
        return 0;
}

HANDLER(task_shutdown)
{
        struct shim *s = userdata;
        pthread_mutex_lock(&s->lock);
        bool busy = s->tasks != NULL;
        pthread_mutex_unlock(&s->lock);
        if (busy)
                return 0; /* other tasks of the pod still live here */
        uint64_t one = 1;
        if (write(s->exit_efd, &one, sizeof(one)) < 0)
                cc_log_debug("shutdown: %m");
        return 0;
}

/* containerd.task.v2.Image/PullImage (the CC fork): forwarded to the agent unchanged; the
 * image name is the join key with the later container's io.kubernetes.cri.image-name. */
HANDLER(image_pull)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__PullImageRequest *req = (const void *)req_;
        Containerd__Task__V2__PullImageResponse *resp = (void *)resp_;
        if (cc_isempty(req->image))
                return cc_error_set(err, EINVAL, "image is required");
        if (!s->sb)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "no sandbox runs in this shim yet");
        Grpc__PullImageRequest preq = GRPC__PULL_IMAGE_REQUEST__INIT;
        preq.image = req->image;
        Grpc__PullImageResponse *pr = NULL;
        int r = shim_agent_call(s->sb, "grpc.Image", "PullImage", &preq.base,
                                &grpc__pull_image_response__descriptor, (ProtobufCMessage **)&pr,
                                (int64_t)s->sb->cfg.create_container_timeout_s * SEC, err);
        if (r < 0)
                return r;
        resp->image_ref =
                cc_ttrpc_call_strdup(call, cc_isempty(pr->image_ref) ? req->image : pr->image_ref);
        protobuf_c_message_free_unpacked(&pr->base, NULL);
        return resp->image_ref ? 0 : -ENOMEM;
}

#define T(name) containerd__task__v2__##name##__descriptor
#define M(rpc, req, resp, fn, fl)          \
        {                                  \
                rpc, &T(req), resp, fn, fl \
        }

static const struct cc_ttrpc_method task_methods[] = {
        M("State", state_request, &T(state_response), task_state, CC_TTRPC_METHOD_INLINE),
        M("Create", create_task_request, &T(create_task_response), task_create, 0),
        M("Start", start_request, &T(start_response), task_start, 0),
        M("Delete", delete_request, &T(delete_response), task_delete, 0),
        M("Pids", pids_request, &T(pids_response), task_pids, CC_TTRPC_METHOD_INLINE),
        M("Pause", pause_request, NULL, task_pause, 0),
        M("Resume", resume_request, NULL, task_resume, 0),
        M("Checkpoint", checkpoint_task_request, NULL, task_checkpoint, CC_TTRPC_METHOD_INLINE),
        M("Kill", kill_request, NULL, task_kill, 0),
        M("Exec", exec_process_request, NULL, task_exec, 0),
        M("ResizePty", resize_pty_request, NULL, task_resize_pty, 0),
        M("CloseIO", close_iorequest, NULL, task_close_io, 0),
        M("Update", update_task_request, NULL, task_update, 0),
        M("Wait", wait_request, &T(wait_response), task_wait, 0),
        M("Stats", stats_request, &T(stats_response), task_stats, 0),
        M("Connect", connect_request, &T(connect_response), task_connect, CC_TTRPC_METHOD_INLINE),
        M("Shutdown", shutdown_request, NULL, task_shutdown, CC_TTRPC_METHOD_INLINE),
};

static const struct cc_ttrpc_service task_service = {
        .name = "containerd.task.v2.Task",
        .methods = task_methods,
        .n_methods = CC_ARRAY_SIZE(task_methods),
};

static const struct cc_ttrpc_method image_methods[] = {
        M("PullImage", pull_image_request, &T(pull_image_response), image_pull, 0),
};

static const struct cc_ttrpc_service image_service = {
        .name = "containerd.task.v2.Image",
        .methods = image_methods,
        .n_methods = CC_ARRAY_SIZE(image_methods),
};

/* ---- lifecycle ------------------------------------------------------------------------------ */

int shim_new(const struct shim_options *o, struct shim **ret)
{
        struct shim *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        pthread_mutex_init(&s->create_lock, NULL);
        pthread_mutex_init(&s->vm_lock, NULL);
        s->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->watcher_stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->ns = strdup(o->ns);
        s->id = strdup(o->id);
        int r = -ENOMEM;
        if (s->exit_efd < 0 || s->watcher_stop_efd < 0 || !s->ns || !s->id ||
            (r = shim_events_new(o->ttrpc_address, o->ns, &s->ev)) < 0) {
                shim_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int shim_register(struct shim *s, struct cc_ttrpc_server *srv)
{
        int r = cc_ttrpc_server_register(srv, &task_service, s);
        return r < 0 ? r : cc_ttrpc_server_register(srv, &image_service, s);
}

struct shim_sandbox *shim_get_sandbox(struct shim *s)
{
        return s->sb;
}

int shim_exit_fd(struct shim *s)
{
        return s->exit_efd;
}

void shim_teardown(struct shim *s)
{
        /* SIGTERM: the pod ends now. Exits are published for what was running. */
        sandbox_stop(s);
        watcher_stop(s);
        oom_join(s);
}

void shim_free(struct shim *s)
{
        if (!s)
                return;
        sandbox_stop(s);
        watcher_stop(s);
        oom_join(s);
        while (s->tasks) {
                struct task *t = s->tasks;
                s->tasks = t->next;
                task_free(t);
        }
        shim_sandbox_free(s->sb);
        shim_events_free(s->ev, 3000);
        cc_close(s->exit_efd);
        cc_close(s->watcher_stop_efd);
        free(s->ns);
        free(s->id);
        free(s);
}
