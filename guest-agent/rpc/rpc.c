/*
 * grpc.AgentService and grpc.Health: decode (done by the ttrpc server with the method's
 * descriptor), admit (policy + ids), call the runtime, fill the response.
 *
 * Every request comes from the untrusted host. Handlers never trust a field they have not
 * validated, never exit the agent, and turn every failure into a status.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/runtime/spec-oci.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "kata/types.pb-c.h"

#define HANDLER(name)                                                                             \
        static int name(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_, \
                        ProtobufCMessage *resp_, struct cc_error **err)

int agent_rpc_admit(struct agent *a, const char *request, const char *container_id,
                    struct cc_error **err)
{
        int r;
        if (container_id && (r = agent_validate_id(container_id, "container_id", err)) < 0)
                return r;
        pthread_rwlock_rdlock(&a->policy_lock);
        r = agent_policy_check(a->policy, request, container_id, err);
        pthread_rwlock_unlock(&a->policy_lock);
        if (r < 0)
                cc_log_warn("request denied by policy request=%s container=%s", request,
                            container_id ? container_id : "");
        return r;
}

/* ---- what the policy remembers of containers -------------------------------------------- */

static struct agent_ctr_info **ctr_find_locked(struct agent *a, const char *id)
{
        struct agent_ctr_info **p = &a->ctrs;
        while (*p && strcmp((*p)->id, id) != 0)
                p = &(*p)->next;
        return p;
}

/* Sets the container's name, or with `pulled` its pulled image, creating its record. */
static int ctr_set(struct agent *a, const char *id, bool pulled, const char *value)
{
        _cleanup_free_ char *v = strdup(value ? value : "");
        if (!v)
                return -ENOMEM;
        pthread_mutex_lock(&a->lock);
        struct agent_ctr_info **p = ctr_find_locked(a, id);
        if (!*p && (!(*p = calloc(1, sizeof(**p))) || !((*p)->id = strdup(id)))) {
                free(*p);
                *p = NULL;
                pthread_mutex_unlock(&a->lock);
                return -ENOMEM;
        }
        char **field = pulled ? &(*p)->pulled : &(*p)->name;
        free(*field);
        *field = TAKE_PTR(v);
        pthread_mutex_unlock(&a->lock);
        return 0;
}

/* A copy of the container's name or pulled image, or NULL. */
static char *ctr_get(struct agent *a, const char *id, bool pulled)
{
        pthread_mutex_lock(&a->lock);
        struct agent_ctr_info *c = *ctr_find_locked(a, id);
        const char *v = c ? (pulled ? c->pulled : c->name) : NULL;
        char *out = v ? strdup(v) : NULL;
        pthread_mutex_unlock(&a->lock);
        return out;
}

static void ctr_drop(struct agent *a, const char *id)
{
        pthread_mutex_lock(&a->lock);
        struct agent_ctr_info **p = ctr_find_locked(a, id), *c = *p;
        if (c) {
                *p = c->next;
                free(c->id);
                free(c->name);
                free(c->pulled);
                free(c);
        }
        pthread_mutex_unlock(&a->lock);
}

int agent_note_pulled(struct agent *a, const char *container_id, const char *image)
{
        return ctr_set(a, container_id, true, image);
}

/* Which namespaces the container shares with the pod (before the policy sees the spec, which
 * may require or forbid that). */
static int pod_namespaces(struct agent *a, const Grpc__CreateContainerRequest *req,
                          struct agent_spec *spec, struct cc_error **err)
{
        unsigned sandbox_ns = 0;
        _cleanup_free_ char *hostname = NULL;
        int r = agent_runtime_pod(a->rt, &sandbox_ns, &hostname);
        if (r < 0)
                return r;
        return agent_spec_pod_namespaces(spec, req->sandbox_pidns, sandbox_ns, hostname, err);
}

/* CreateContainer against the policy's "containers" section. */
static int admit_create(struct agent *a, const Grpc__CreateContainerRequest *req,
                        const struct agent_spec *spec, struct cc_error **err)
{
        const Grpc__Linux *l = req->oci ? req->oci->linux_ : NULL;
        size_t n_sysctls = l ? l->n_sysctl : 0;
        size_t n_devices = l ? l->n_devices : 0;
        const char **sysctls = calloc(n_sysctls + n_devices + 2, sizeof(char *));
        if (!sysctls)
                return -ENOMEM;
        for (size_t i = 0; i < n_sysctls; i++)
                sysctls[i] = l->sysctl[i]->key;
        /* linux.devices' paths after the sysctls, in the same allocation. */
        const char **devices = sysctls + n_sysctls + 1;
        for (size_t i = 0; i < n_devices; i++)
                devices[i] = l->devices[i] && l->devices[i]->path ? l->devices[i]->path : "";
        _cleanup_free_ char *pulled = ctr_get(a, req->container_id, true);
        const char *storage_image = agent_storages_image(req->storages, req->n_storages);
        if (cc_streq(storage_image, "pause"))
                storage_image = NULL;
        struct agent_policy_create c = {
                .container_id = req->container_id,
                .name = agent_spec_annotation(req->oci, "io.kubernetes.cri.container-name"),
                .image = agent_spec_annotation(req->oci, "io.kubernetes.cri.image-name"),
                .pulled_image = storage_image ? storage_image : pulled,
                .spec = spec,
                .sysctls = sysctls,
                .n_sysctls = n_sysctls,
                .devices = devices,
                .n_devices = n_devices,
        };
        pthread_rwlock_rdlock(&a->policy_lock);
        int r = agent_policy_check_create(a->policy, &c, err);
        pthread_rwlock_unlock(&a->policy_lock);
        free(sysctls);
        if (r < 0)
                cc_log_warn("CreateContainer %s refused by policy: %s", req->container_id,
                            err && *err ? cc_error_message(*err) : "");
        return r;
}

/* ---- Health ---------------------------------------------------------------------------- */

HANDLER(health_check)
{
        Grpc__HealthCheckResponse *resp = (Grpc__HealthCheckResponse *)resp_;
        resp->status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        return 0;
}

HANDLER(health_version)
{
        Grpc__VersionCheckResponse *resp = (Grpc__VersionCheckResponse *)resp_;
        resp->grpc_version = "ttrpc";
        resp->agent_version = AGENT_VERSION;
        return 0;
}

static const struct cc_ttrpc_method health_methods[] = {
        {"Check", &grpc__check_request__descriptor, &grpc__health_check_response__descriptor,
         health_check, CC_TTRPC_METHOD_INLINE},
        {"Version", &grpc__check_request__descriptor, &grpc__version_check_response__descriptor,
         health_version, CC_TTRPC_METHOD_INLINE},
};

static const struct cc_ttrpc_service health_service = {
        .name = "grpc.Health",
        .methods = health_methods,
        .n_methods = CC_ARRAY_SIZE(health_methods),
};

/* ---- containers ------------------------------------------------------------------------ */

HANDLER(create_container)
{
        struct agent *a = userdata;
        const Grpc__CreateContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "CreateContainer", req->container_id, err);
        if (r < 0)
                return r;
        if (req->stdin_port || req->stdout_port || req->stderr_port)
                return cc_error_set(err, EOPNOTSUPP, "vsock stdio ports are not supported");
        if (!cc_isempty(req->exec_id) && (r = agent_validate_id(req->exec_id, "exec_id", err)) < 0)
                return r;
        _cleanup_(agent_spec_freep) struct agent_spec *spec = NULL;
        if ((r = agent_spec_from_oci(req->oci, &spec, err)) < 0 ||
            (r = pod_namespaces(a, req, spec, err)) < 0 ||
            (r = admit_create(a, req, spec, err)) < 0)
                return r;
        /* Block disks by serial (storage/devices.c): the spec's host numbers become the
         * guest's, and /dev/trusted_store becomes the pod's trusted storage. */
        if (req->n_devices > 0 &&
            (r = agent_devices_add(a, (Grpc__CreateContainerRequest *)req, spec, err)) < 0)
                return r;
        /* Storages: the guest pull and the pod's volumes; refusing any other is safer than
         * ignoring a mount the container expects. */
        if (req->n_storages > 0 &&
            (r = agent_storages_add(a, req->container_id, req->storages, req->n_storages, err)) < 0)
                return r;
        if ((r = agent_container_create(a->rt, req->container_id, req->exec_id, TAKE_PTR(spec),
                                        err)) < 0) {
                if (req->n_storages > 0) {
                        agent_image_release(a, req->container_id);
                        agent_storages_release(a, req->container_id);
                }
                return r;
        }
        const char *name = agent_spec_annotation(req->oci, "io.kubernetes.cri.container-name");
        if (name && (r = ctr_set(a, req->container_id, false, name)) < 0)
                return r;
        return 0;
}

HANDLER(start_container)
{
        struct agent *a = userdata;
        const Grpc__StartContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "StartContainer", req->container_id, err);
        return r < 0 ? r : agent_container_start(a->rt, req->container_id, err);
}

HANDLER(remove_container)
{
        struct agent *a = userdata;
        const Grpc__RemoveContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "RemoveContainer", req->container_id, err);
        if (r < 0)
                return r;
        r = agent_container_remove(a->rt, req->container_id, req->timeout, err);
        /* The pulled rootfs goes with the container, also when it never ran. */
        if (r == 0 || r == -ENOENT) {
                agent_image_release(a, req->container_id);
                agent_storages_release(a, req->container_id);
                ctr_drop(a, req->container_id);
        }
        return r;
}

HANDLER(exec_process)
{
        struct agent *a = userdata;
        const Grpc__ExecProcessRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "ExecProcess", req->container_id, err);
        if (r < 0)
                return r;
        if (req->stdin_port || req->stdout_port || req->stderr_port)
                return cc_error_set(err, EOPNOTSUPP, "vsock stdio ports are not supported");
        struct agent_process proc;
        if ((r = agent_process_from_oci(req->process, &proc, err)) < 0) {
                agent_process_done(&proc);
                return r;
        }
        _cleanup_free_ char *name = ctr_get(a, req->container_id, false);
        pthread_rwlock_rdlock(&a->policy_lock);
        r = agent_policy_check_exec(a->policy, req->container_id, name, &proc, err);
        pthread_rwlock_unlock(&a->policy_lock);
        if (r < 0) {
                cc_log_warn("ExecProcess in %s refused by policy", req->container_id);
                agent_process_done(&proc);
                return r;
        }
        return agent_container_exec(a->rt, req->container_id, req->exec_id, &proc, err);
}

HANDLER(signal_process)
{
        struct agent *a = userdata;
        const Grpc__SignalProcessRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "SignalProcess", req->container_id, err);
        if (r < 0)
                return r;
        if (req->signal == 0 || req->signal >= (uint32_t)NSIG)
                return cc_error_set(err, EINVAL, "invalid signal %u", req->signal);
        return agent_process_signal(a->rt, req->container_id, req->exec_id, (int)req->signal, err);
}

HANDLER(wait_process)
{
        struct agent *a = userdata;
        const Grpc__WaitProcessRequest *req = (const void *)req_;
        Grpc__WaitProcessResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "WaitProcess", req->container_id, err);
        if (r < 0)
                return r;
        int status = 0;
        if ((r = agent_process_wait(a->rt, req->container_id, req->exec_id, &status, err)) < 0)
                return r;
        resp->status = status;
        return 0;
}

static void resources_init(struct agent_resources *r)
{
        *r = (struct agent_resources){0};
}

HANDLER(update_container)
{
        struct agent *a = userdata;
        const Grpc__UpdateContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "UpdateContainer", req->container_id, err);
        if (r < 0)
                return r;
        struct agent_resources res;
        resources_init(&res);
        agent_resources_from_oci(req->resources, &res);
        r = agent_container_update(a->rt, req->container_id, &res, err);
        free(res.cpuset_cpus);
        free(res.cpuset_mems);
        return r;
}

#define NEW(call, type, init_fn)                                    \
        ({                                                          \
                type *_m = cc_ttrpc_call_alloc(call, sizeof(type)); \
                if (_m)                                             \
                        init_fn(_m);                                \
                _m;                                                 \
        })

HANDLER(stats_container)
{
        struct agent *a = userdata;
        const Grpc__StatsContainerRequest *req = (const void *)req_;
        Grpc__StatsContainerResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "StatsContainer", req->container_id, err);
        if (r < 0)
                return r;
        struct agent_cgroup_stats st;
        if ((r = agent_container_stats(a->rt, req->container_id, &st, err)) < 0)
                return r;
        Grpc__CgroupStats *cs = NEW(call, Grpc__CgroupStats, grpc__cgroup_stats__init);
        Grpc__CpuStats *cpu = NEW(call, Grpc__CpuStats, grpc__cpu_stats__init);
        Grpc__CpuUsage *cu = NEW(call, Grpc__CpuUsage, grpc__cpu_usage__init);
        Grpc__ThrottlingData *td = NEW(call, Grpc__ThrottlingData, grpc__throttling_data__init);
        Grpc__MemoryStats *ms = NEW(call, Grpc__MemoryStats, grpc__memory_stats__init);
        Grpc__MemoryData *mu = NEW(call, Grpc__MemoryData, grpc__memory_data__init);
        Grpc__MemoryData *sw = NEW(call, Grpc__MemoryData, grpc__memory_data__init);
        Grpc__PidsStats *ps = NEW(call, Grpc__PidsStats, grpc__pids_stats__init);
        if (!cs || !cpu || !cu || !td || !ms || !mu || !sw || !ps)
                return -ENOMEM;
        cu->total_usage = st.cpu_usage_ns;
        cu->usage_in_kernelmode = st.cpu_system_ns;
        cu->usage_in_usermode = st.cpu_user_ns;
        td->periods = st.cpu_periods;
        td->throttled_periods = st.cpu_throttled_periods;
        td->throttled_time = st.cpu_throttled_ns;
        cpu->cpu_usage = cu;
        cpu->throttling_data = td;
        mu->usage = st.mem_usage;
        mu->max_usage = st.mem_max_usage;
        mu->limit = st.mem_limit;
        mu->failcnt = st.mem_failcnt;
        sw->usage = st.mem_swap_usage;
        ms->cache = st.mem_cache;
        ms->usage = mu;
        ms->swap_usage = sw;
        ms->use_hierarchy = true;
        /* The OOM-kill count travels in the generic stats map, as "oom_kill". */
        Grpc__MemoryStats__StatsEntry *e =
                NEW(call, Grpc__MemoryStats__StatsEntry, grpc__memory_stats__stats_entry__init);
        Grpc__MemoryStats__StatsEntry *e2 =
                NEW(call, Grpc__MemoryStats__StatsEntry, grpc__memory_stats__stats_entry__init);
        Grpc__MemoryStats__StatsEntry **ev = cc_ttrpc_call_alloc(call, 2 * sizeof(*ev));
        if (!e || !e2 || !ev)
                return -ENOMEM;
        e->key = "oom_kill";
        e->value = st.oom_kills;
        e2->key = "rss";
        e2->value = st.mem_rss;
        ev[0] = e;
        ev[1] = e2;
        ms->n_stats = 2;
        ms->stats = ev;
        ps->current = st.pids_current;
        ps->limit = st.pids_limit == UINT64_MAX ? 0 : st.pids_limit;
        cs->cpu_stats = cpu;
        cs->memory_stats = ms;
        cs->pids_stats = ps;
        resp->cgroup_stats = cs;
        return 0;
}

HANDLER(pause_container)
{
        struct agent *a = userdata;
        const Grpc__PauseContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "PauseContainer", req->container_id, err);
        return r < 0 ? r : agent_container_pause(a->rt, req->container_id, true, err);
}

HANDLER(resume_container)
{
        struct agent *a = userdata;
        const Grpc__ResumeContainerRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "ResumeContainer", req->container_id, err);
        return r < 0 ? r : agent_container_pause(a->rt, req->container_id, false, err);
}

/* ---- stdio ---------------------------------------------------------------------------- */

HANDLER(write_stdin)
{
        struct agent *a = userdata;
        const Grpc__WriteStreamRequest *req = (const void *)req_;
        Grpc__WriteStreamResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "WriteStdin", req->container_id, err);
        if (r < 0)
                return r;
        ssize_t n = agent_process_write(a->rt, req->container_id, req->exec_id, req->data.data,
                                        req->data.len, err);
        if (n < 0)
                return (int)n;
        resp->len = (uint32_t)n;
        return 0;
}

static int read_stream(struct agent *a, struct cc_ttrpc_call *call, const char *request,
                       const Grpc__ReadStreamRequest *req, Grpc__ReadStreamResponse *resp,
                       enum agent_stream which, struct cc_error **err)
{
        int r = agent_rpc_admit(a, request, req->container_id, err);
        if (r < 0)
                return r;
        size_t len = req->len ? CC_MIN(req->len, AGENT_MAX_READ) : 32768;
        uint8_t *buf = cc_ttrpc_call_alloc(call, len);
        if (!buf)
                return -ENOMEM;
        ssize_t n =
                agent_process_read(a->rt, req->container_id, req->exec_id, which, buf, len, err);
        /* End of stream is OutOfRange ("reading past end-of-file" in gRPC's terms), so that a
         * shim can tell it from a failure; Kata's shim ends the copy on any error. */
        if (n == -ENODATA)
                return cc_error_set_code(err, CC_GRPC_OUT_OF_RANGE, "end of stream");
        if (n < 0)
                return (int)n;
        resp->data.data = buf;
        resp->data.len = (size_t)n;
        return 0;
}

HANDLER(read_stdout)
{
        return read_stream(userdata, call, "ReadStdout", (const void *)req_, (void *)resp_,
                           AGENT_STDOUT, err);
}

HANDLER(read_stderr)
{
        return read_stream(userdata, call, "ReadStderr", (const void *)req_, (void *)resp_,
                           AGENT_STDERR, err);
}

HANDLER(close_stdin)
{
        struct agent *a = userdata;
        const Grpc__CloseStdinRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "CloseStdin", req->container_id, err);
        return r < 0 ? r : agent_process_close_stdin(a->rt, req->container_id, req->exec_id, err);
}

HANDLER(tty_win_resize)
{
        struct agent *a = userdata;
        const Grpc__TtyWinResizeRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "TtyWinResize", req->container_id, err);
        return r < 0 ? r
                     : agent_process_resize(a->rt, req->container_id, req->exec_id, req->row,
                                            req->column, err);
}

/* ---- sandbox and misc ------------------------------------------------------------------- */

static int write_resolv_conf(char **dns, size_t n, struct cc_error **err)
{
        _cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "we");
        if (!f)
                return cc_error_set(err, errno, "open /etc/resolv.conf: %m");
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s\n", dns[i]);
        return fflush(f) == 0 ? 0 : cc_error_set(err, errno, "write /etc/resolv.conf: %m");
}

HANDLER(create_sandbox)
{
        struct agent *a = userdata;
        const Grpc__CreateSandboxRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "CreateSandbox", NULL, err);
        if (r < 0)
                return r;
        if (!cc_isempty(req->sandbox_id) &&
            (r = agent_validate_id(req->sandbox_id, "sandbox_id", err)) < 0)
                return r;
        if (req->hostname && strlen(req->hostname) > 64)
                return cc_error_set(err, EINVAL, "hostname is too long");
        if (req->n_kernel_modules)
                /* Which modules exist is decided by the measured image, not by the host. */
                return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                         "loading host-chosen kernel modules is not allowed");
        if (req->n_storages)
                return cc_error_set(err, EOPNOTSUPP, "sandbox storages are not supported yet");
        if (req->n_dns > 16)
                return cc_error_set(err, EINVAL, "too many dns entries");
        for (size_t i = 0; i < req->n_dns; i++)
                if (strlen(req->dns[i]) > 256 || strpbrk(req->dns[i], "\n\r"))
                        return cc_error_set(err, EINVAL, "invalid dns entry");
        pthread_mutex_lock(&a->lock);
        bool exists = a->sandbox_created;
        a->sandbox_created = true;
        pthread_mutex_unlock(&a->lock);
        if (exists)
                return cc_error_set(err, EEXIST, "the sandbox already exists");
        /* The VM is the sandbox: its hostname and resolver are the guest's. On a development
         * host (not init) we leave the host's alone. */
        if (a->cfg.is_init) {
                if (!cc_isempty(req->hostname) &&
                    sethostname(req->hostname, strlen(req->hostname)) < 0)
                        return cc_error_set(err, errno, "sethostname: %m");
                if (req->n_dns && (r = write_resolv_conf(req->dns, req->n_dns, err)) < 0)
                        return r;
        }
        /* The pod's pid, ipc and uts namespaces, which its containers join. */
        if ((r = agent_runtime_pod_create(a->rt, req->hostname, err)) < 0) {
                pthread_mutex_lock(&a->lock);
                a->sandbox_created = false;
                pthread_mutex_unlock(&a->lock);
                return r;
        }
        pthread_mutex_lock(&a->lock);
        free(a->sandbox_id);
        a->sandbox_id = strdup(req->sandbox_id ? req->sandbox_id : "");
        pthread_mutex_unlock(&a->lock);
        cc_log_info("sandbox created id=%s", req->sandbox_id ? req->sandbox_id : "");
        a->puller->prestart(a);
        return 0;
}

HANDLER(destroy_sandbox)
{
        struct agent *a = userdata;
        int r = agent_rpc_admit(a, "DestroySandbox", NULL, err);
        if (r < 0)
                return r;
        /* Remove every container now, so that the reply means "nothing runs any more". */
        agent_runtime_remove_all(a->rt);
        agent_storages_release_all(a);
        /* Then the trusted storage that came with a container, so the host can unplug it. */
        agent_trusted_storage_close(a);
        pthread_mutex_lock(&a->lock);
        a->sandbox_created = false;
        pthread_mutex_unlock(&a->lock);
        uint64_t one = 1;
        if (a->destroy_efd >= 0)
                (void)!write(a->destroy_efd, &one, sizeof(one));
        cc_log_info("sandbox destroyed");
        return 0;
}

static long status_kib(const char *path, const char *key)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[256];
        size_t klen = strlen(key);
        long v = -ENOENT;
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, klen) == 0 && sscanf(line + klen, " %ld kB", &v) == 1)
                        break;
        return v;
}

long agent_self_rss_kib(void)
{
        return status_kib("/proc/self/status", "VmRSS:");
}

long agent_self_rss_exact_kib(void)
{
        return status_kib("/proc/self/smaps_rollup", "Rss:");
}

HANDLER(get_guest_details)
{
        struct agent *a = userdata;
        const Grpc__GuestDetailsRequest *req = (const void *)req_;
        Grpc__GuestDetailsResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "GetGuestDetails", NULL, err);
        if (r < 0)
                return r;
        if (req->mem_block_size) {
                _cleanup_fclose_ FILE *f =
                        fopen("/sys/devices/system/memory/block_size_bytes", "re");
                unsigned long long v = 0;
                if (f && fscanf(f, "%llx", &v) == 1)
                        resp->mem_block_size_bytes = v;
        }
        Grpc__AgentDetails *d = NEW(call, Grpc__AgentDetails, grpc__agent_details__init);
        char **features = cc_ttrpc_call_alloc(call, 3 * sizeof(char *));
        if (!d || !features)
                return -ENOMEM;
        d->version = AGENT_VERSION;
        d->init_daemon = a->cfg.is_init;
        d->supports_seccomp = true;
        /* Extra, non-Kata detail: the agent's own resident set, for the RSS benchmark. */
        /* VmRSS from /proc/self/status lags on kernels before 6.2 (per-thread counters synced
         * every 64 faults), so the page-table walk of smaps_rollup is reported too. */
        features[0] = cc_ttrpc_call_printf(call, "vmrss_kib=%ld", agent_self_rss_kib());
        features[1] = cc_ttrpc_call_printf(call, "smaps_rss_kib=%ld", agent_self_rss_exact_kib());
        pthread_rwlock_rdlock(&a->policy_lock);
        features[2] = !a->policy                           ? "no-policy"
                      : agent_policy_is_builtin(a->policy) ? "tee-default-policy"
                                                           : "policy";
        pthread_rwlock_unlock(&a->policy_lock);
        d->n_extra_features = 3;
        d->extra_features = features;
        resp->agent_details = d;
        resp->support_mem_hotplug_probe = false;
        return 0;
}

HANDLER(set_guest_date_time)
{
        struct agent *a = userdata;
        const Grpc__SetGuestDateTimeRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "SetGuestDateTime", NULL, err);
        if (r < 0)
                return r;
        if (!a->cfg.is_init)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "not the guest's init: refusing to set the clock");
        if (req->sec < 0 || req->usec < 0 || req->usec >= 1000000)
                return cc_error_set(err, EINVAL, "invalid time");
        struct timeval tv = {.tv_sec = req->sec, .tv_usec = req->usec};
        if (settimeofday(&tv, NULL) < 0)
                return cc_error_set(err, errno, "settimeofday: %m");
        return 0;
}

/* SetPolicy: only when the policy in force says "set_policy": "allow" (or there is none and
 * this is not a TEE guest). The text is the agent's JSON policy, not Kata's Rego. */
HANDLER(set_policy)
{
        struct agent *a = userdata;
        const Grpc__SetPolicyRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "SetPolicy", NULL, err);
        if (r < 0)
                return r;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        if ((r = agent_policy_parse(req->policy ? req->policy : "", &p, err)) < 0)
                return r;
        pthread_rwlock_wrlock(&a->policy_lock);
        if (!agent_policy_allows_set_policy(a->policy)) {
                pthread_rwlock_unlock(&a->policy_lock);
                return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                         "SetPolicy refused: the policy in force does not allow "
                                         "replacing it (\"set_policy\": \"allow\")");
        }
        struct agent_policy *old = a->policy;
        a->policy = TAKE_PTR(p);
        pthread_rwlock_unlock(&a->policy_lock);
        agent_policy_free(old);
        cc_log_info("policy replaced by SetPolicy (%u rules)", agent_policy_n_rules(a->policy));
        return 0;
}

HANDLER(get_oom_event)
{
        struct agent *a = userdata;
        Grpc__OOMEvent *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "GetOOMEvent", NULL, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *id = NULL;
        /* Leave a little of the caller's deadline for the answer to travel back. */
        int64_t left = cc_ttrpc_call_remaining_ns(call);
        if (left != INT64_MAX)
                left = left > 200000000LL ? left - 100000000LL : 1;
        if ((r = agent_runtime_wait_oom(a->rt, left, &id, err)) < 0)
                return r;
        resp->container_id = cc_ttrpc_call_strdup(call, id);
        return resp->container_id ? 0 : -ENOMEM;
}

#define M(name, req, resp, fn)                        \
        {                                             \
                name, &req##__descriptor, resp, fn, 0 \
        }

static const struct cc_ttrpc_method agent_methods[] = {
        M("CreateContainer", grpc__create_container_request, NULL, create_container),
        M("StartContainer", grpc__start_container_request, NULL, start_container),
        M("RemoveContainer", grpc__remove_container_request, NULL, remove_container),
        M("ExecProcess", grpc__exec_process_request, NULL, exec_process),
        M("SignalProcess", grpc__signal_process_request, NULL, signal_process),
        M("WaitProcess", grpc__wait_process_request, &grpc__wait_process_response__descriptor,
          wait_process),
        M("UpdateContainer", grpc__update_container_request, NULL, update_container),
        M("StatsContainer", grpc__stats_container_request,
          &grpc__stats_container_response__descriptor, stats_container),
        M("PauseContainer", grpc__pause_container_request, NULL, pause_container),
        M("ResumeContainer", grpc__resume_container_request, NULL, resume_container),
        M("WriteStdin", grpc__write_stream_request, &grpc__write_stream_response__descriptor,
          write_stdin),
        M("ReadStdout", grpc__read_stream_request, &grpc__read_stream_response__descriptor,
          read_stdout),
        M("ReadStderr", grpc__read_stream_request, &grpc__read_stream_response__descriptor,
          read_stderr),
        M("CloseStdin", grpc__close_stdin_request, NULL, close_stdin),
        M("TtyWinResize", grpc__tty_win_resize_request, NULL, tty_win_resize),
        M("CreateSandbox", grpc__create_sandbox_request, NULL, create_sandbox),
        M("DestroySandbox", grpc__destroy_sandbox_request, NULL, destroy_sandbox),
        M("GetGuestDetails", grpc__guest_details_request, &grpc__guest_details_response__descriptor,
          get_guest_details),
        M("SetGuestDateTime", grpc__set_guest_date_time_request, NULL, set_guest_date_time),
        M("CopyFile", grpc__copy_file_request, NULL, agent_rpc_copy_file),
        M("GetOOMEvent", grpc__get_oomevent_request, &grpc__oomevent__descriptor, get_oom_event),
        M("SetPolicy", grpc__set_policy_request, NULL, set_policy),
        /* Network (rpc-net.c). */
        M("UpdateInterface", grpc__update_interface_request, &types__interface__descriptor,
          agent_rpc_update_interface),
        M("UpdateRoutes", grpc__update_routes_request, &grpc__routes__descriptor,
          agent_rpc_update_routes),
        M("ListInterfaces", grpc__list_interfaces_request, &grpc__interfaces__descriptor,
          agent_rpc_list_interfaces),
        M("ListRoutes", grpc__list_routes_request, &grpc__routes__descriptor,
          agent_rpc_list_routes),
        M("AddARPNeighbors", grpc__add_arpneighbors_request, NULL, agent_rpc_add_arp_neighbors),
};

static const struct cc_ttrpc_service agent_service = {
        .name = "grpc.AgentService",
        .methods = agent_methods,
        .n_methods = CC_ARRAY_SIZE(agent_methods),
};

int agent_rpc_register(struct agent *a, struct cc_ttrpc_server *srv)
{
        int r;
        if ((r = cc_ttrpc_server_register(srv, &agent_service, a)) < 0 ||
            (r = cc_ttrpc_server_register(srv, &health_service, a)) < 0)
                return r;
        return agent_rpc_register_image(a, srv);
}

const struct cc_ttrpc_service *agent_rpc_service(void)
{
        return &agent_service;
}

const struct cc_ttrpc_service *agent_rpc_health_service(void)
{
        return &health_service;
}
