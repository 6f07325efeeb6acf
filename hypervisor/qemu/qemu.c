/*
 * The QEMU backend: decides accelerator and agent channel, renders the argv, starts QEMU as a
 * child with its QMP socket already listening, handshakes QMP, and reaps QEMU by pidfd.
 */
#include "hypervisor/qemu/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

struct qemu_vm {
        struct hv_vm vm;
        struct hv_proc proc;
        struct hv_qmp qmp;
        struct hv_qemu_hotplug hotplug;
        enum hv_channel channel;
        uint32_t cid;
        int vhost_fd;
        char *qmp_path;
        char *agent_path;
        char *dbg_path; /* the debug console's socket (whether or not it is enabled) */
        char *pid_path;
        char *log_path;
};

static struct qemu_vm *to_qemu(struct hv_vm *vm)
{
        return cc_container_of(vm, struct qemu_vm, vm);
}

static pthread_mutex_t version_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        char path[256];
        unsigned version;
} version_cache[4];

/*
 * `qemu-system-x86_64 --version` prints "QEMU emulator version 7.2.22 (Debian ...)". The
 * answer is cached per path so a start does not pay for a second QEMU process.
 */
unsigned hv_qemu_binary_version(const char *path)
{
        pthread_mutex_lock(&version_lock);
        for (size_t i = 0; i < CC_ARRAY_SIZE(version_cache); i++)
                if (version_cache[i].version && strcmp(version_cache[i].path, path) == 0) {
                        unsigned v = version_cache[i].version;
                        pthread_mutex_unlock(&version_lock);
                        return v;
                }
        pthread_mutex_unlock(&version_lock);
        char *argv[] = {(char *)path, (char *)"--version", NULL};
        _cleanup_free_ char *line = hv__run_first_line(argv);
        const char *v = line ? strstr(line, "version ") : NULL;
        unsigned version = v ? hv__version_parse(v + strlen("version ")) : 0;
        if (version && strlen(path) < sizeof(version_cache[0].path)) {
                pthread_mutex_lock(&version_lock);
                static size_t next;
                size_t slot = next++ % CC_ARRAY_SIZE(version_cache);
                snprintf(version_cache[slot].path, sizeof(version_cache[slot].path), "%s", path);
                version_cache[slot].version = version;
                pthread_mutex_unlock(&version_lock);
        }
        return version;
}

static void qemu_check(const struct hv_config *cfg, const struct hv_host *host,
                       struct hv_reasons *r)
{
        const char *path = cfg->vmm_path ? cfg->vmm_path : "qemu-system-x86_64";
        /* Without a TEE any QEMU from the last years renders our argv: only look the binary
         * up, which is cheap, instead of running `--version` on every start. */
        if (cfg->tee.kind == HV_TEE_NONE) {
                if (!hv__find_program(path))
                        hv__reason_add(r, ENOENT, "QEMU binary %s not found", path);
                return;
        }
        unsigned version = hv_qemu_binary_version(path);
        if (!version) {
                hv__reason_add(r, ENOENT, "QEMU binary %s does not run (%s --version failed)", path,
                               path);
                return;
        }
        const struct hv_tee_profile *p = hv__tee_profile(cfg->tee.kind);
        if (p && p->qemu_object && version < p->qemu_since)
                hv__reason_add(r, EOPNOTSUPP,
                               "QEMU %u.%u.%u (%s) has no usable %s object: %s needs QEMU >= "
                               "%u.%u.%u",
                               version / 10000, version / 100 % 100, version % 100, path,
                               p->qemu_object, p->name, p->qemu_since / 10000,
                               p->qemu_since / 100 % 100, p->qemu_since % 100);
}

static int qemu_alloc(struct hv_vm **ret, struct cc_error **err)
{
        struct qemu_vm *q = calloc(1, sizeof(*q));
        if (!q)
                return cc_error_set(err, ENOMEM, "out of memory");
        q->proc = (struct hv_proc)HV_PROC_INIT;
        q->qmp = (struct hv_qmp)HV_QMP_INIT;
        q->vhost_fd = -1;
        *ret = &q->vm;
        return 0;
}

/* Removes the sockets and the pidfile; QEMU leaves them behind when it is killed. */
static void remove_run_files(struct qemu_vm *q)
{
        hv__unlink(q->qmp_path);
        hv__unlink(q->agent_path);
        hv__unlink(q->pid_path);
        hv__unlink(q->dbg_path);
}

/*
 * Reserves a vsock CID: the open /dev/vhost-vsock fd holds the CID set with
 * VHOST_VSOCK_SET_GUEST_CID until QEMU (which gets the fd) exits. Starting from a random CID
 * and walking up avoids collisions with other VMs on the host (reference 1.7).
 */
static int reserve_cid(struct qemu_vm *q, struct cc_error **err)
{
        _cleanup_close_ int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "open /dev/vhost-vsock: %m");
        uint32_t cid = q->vm.cfg.vsock_cid;
        unsigned tries = cid ? 1 : 64;
        if (!cid) {
                uint32_t rnd = 0;
                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                        rnd = (uint32_t)getpid();
                cid = 3 + rnd % 0x7ffffff0u;
        }
        for (unsigned i = 0; i < tries; i++, cid++) {
                uint64_t c = cid;
                if (ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &c) == 0) {
                        q->cid = cid;
                        q->vhost_fd = TAKE_FD(fd);
                        return 0;
                }
                if (errno != EADDRINUSE)
                        return cc_error_set(err, errno, "vsock CID %u: %m", cid);
        }
        return cc_error_set(err, EADDRINUSE, "no free vsock CID found");
}

/* Fails the start: kills QEMU, reaps it, removes its files, says why (QEMU's last words). */
static int start_failed(struct qemu_vm *q, int r, struct cc_error **err)
{
        /* A dropped QMP connection usually means QEMU is exiting: give it a moment to finish
         * so that its exit status and last message can be reported. */
        bool lost = r == -ECONNRESET || r == -ECHILD || r == -EPIPE;
        bool died = q->proc.pid > 0 && hv__proc_wait(&q->proc, lost ? 2000 : 0) == 0;
        hv__proc_kill(&q->proc);
        hv_qemu_hotplug_done(&q->hotplug);
        hv_qmp_close(&q->qmp);
        remove_run_files(q);
        q->vhost_fd = cc_close(q->vhost_fd);
        if (died) {
                _cleanup_free_ char *last = hv__file_last_line(q->log_path);
                if (q->proc.exit.signal)
                        cc_error_set(err, ECHILD, "QEMU was killed by signal %d during start%s%s",
                                     q->proc.exit.signal, last && *last ? ": " : "",
                                     last ? last : "");
                else
                        cc_error_set(err, ECHILD, "QEMU exited with status %d during start%s%s",
                                     q->proc.exit.code, last && *last ? ": " : "",
                                     last ? last : "");
                return -ECHILD;
        }
        return r;
}

static int qemu_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        const struct hv_config *cfg = &vm->cfg;
        int64_t deadline = hv__deadline(timeout_ms);
        cc_log_debug("hv: %s: starting QEMU", cfg->name);
        struct hv_host host;
        hv__host_probe(NULL, &host);
        int accel = hv__accel_resolve(cfg, &host, err);
        if (accel < 0)
                return accel;
        q->channel = cfg->channel;
        if (q->channel == HV_CHANNEL_AUTO)
                q->channel = host.vhost_vsock ? HV_CHANNEL_VSOCK : HV_CHANNEL_SERIAL;

        free(q->qmp_path);
        free(q->agent_path);
        free(q->dbg_path);
        free(q->pid_path);
        free(q->log_path);
        q->qmp_path = hv__path(cfg->run_dir, HV_QEMU_QMP_SOCK);
        q->agent_path = hv__path(cfg->run_dir, HV_QEMU_AGENT_SOCK);
        q->dbg_path = hv__path(cfg->run_dir, HV_DEBUG_CONSOLE_SOCK);
        q->pid_path = hv__path(cfg->run_dir, HV_QEMU_PIDFILE);
        q->log_path = hv__path(cfg->run_dir, HV_QEMU_LOG);
        if (!q->qmp_path || !q->agent_path || !q->dbg_path || !q->pid_path || !q->log_path)
                return cc_error_set(err, ENOMEM, "out of memory");
        /* A fresh log per start, so an error quotes this run's message. */
        hv__unlink(q->log_path);

        int r;
        if (q->channel == HV_CHANNEL_VSOCK) {
                r = reserve_cid(q, err);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int listen_fd = hv__unix_listen(q->qmp_path, err);
        if (listen_fd < 0)
                return start_failed(q, listen_fd, err);
        /* The fds QEMU inherits, in order: 3 = QMP, then vhost-vsock, then taps. */
        int fds[3 + 16];
        size_t n_fds = 0;
        if (cfg->n_nets > 16)
                return start_failed(q, cc_error_set(err, E2BIG, "at most 16 NICs"), err);
        fds[n_fds++] = listen_fd;
        int vhost_child = -1;
        if (q->vhost_fd >= 0) {
                vhost_child = 3 + (int)n_fds;
                fds[n_fds++] = q->vhost_fd;
        }
        int tap_base = 3 + (int)n_fds;
        for (size_t i = 0; i < cfg->n_nets; i++)
                fds[n_fds++] = cfg->nets[i].tap_fd;

        struct hv_qemu_plan plan = {
                .cfg = cfg,
                .console_log = vm->console_log,
                .accel = (enum hv_accel)accel,
                .channel = q->channel,
                .cid = q->cid,
                .cbitpos = hv__tee_cbitpos(&cfg->tee, &host),
                .qmp_fd = 3,
                .vhost_fd = vhost_child,
                .tap_fd_base = tap_base,
        };
        struct hv_argv argv = {0};
        r = hv_qemu_argv(&plan, &argv, err);
        if (r < 0) {
                hv__argv_done(&argv);
                return start_failed(q, r, err);
        }
        /* Connect before QEMU runs: the connection waits in the backlog until QEMU accepts. */
        int qmp_fd = hv__unix_connect(q->qmp_path, err);
        if (qmp_fd < 0) {
                hv__argv_done(&argv);
                return start_failed(q, qmp_fd, err);
        }
        r = hv__proc_spawn(&q->proc, argv.v, fds, n_fds, q->log_path, err);
        hv__argv_done(&argv);
        listen_fd = cc_close(listen_fd);
        /* QEMU owns the CID now through its copy of the fd. */
        q->vhost_fd = cc_close(q->vhost_fd);
        if (r < 0) {
                close(qmp_fd);
                return start_failed(q, r, err);
        }
        q->qmp.watch_fd = q->proc.pidfd;
        r = hv_qmp_handshake(&q->qmp, qmp_fd, hv__remaining(deadline), err);
        if (r < 0)
                return start_failed(q, r, err);
        cc_log_debug("hv: %s: QMP ready, QEMU %u.%u.%u", cfg->name, q->qmp.version / 10000,
                     q->qmp.version / 100 % 100, q->qmp.version % 100);
        r = hv_qemu_hotplug_init(&q->hotplug, &q->qmp, cfg->hotplug_slots, err);
        if (r < 0)
                return start_failed(q, r, err);
        /* The monitor answers only after machine init: every device (and the agent socket)
         * exists now. query-status confirms the guest runs. */
        json_object *status = NULL;
        r = hv_qmp_execute(&q->qmp, "query-status", NULL, hv__remaining(deadline), &status, err);
        if (r < 0)
                return start_failed(q, r, err);
        json_object *st = NULL;
        const char *s = json_object_object_get_ex(status, "status", &st) &&
                                        json_object_is_type(st, json_type_string)
                                ? json_object_get_string(st)
                                : "";
        bool running = strcmp(s, "running") == 0;
        _cleanup_free_ char *state = strdup(s);
        json_object_put(status);
        if (!running)
                return start_failed(q,
                                    cc_error_set(err, EIO, "QEMU status is '%s', not running",
                                                 state ? state : "?"),
                                    err);
        cc_log_debug("hv: %s: running", cfg->name);
        return 0;
}

static int qemu_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        int r = hv__proc_wait(&q->proc, timeout_ms);
        if (r == -ETIMEDOUT)
                return cc_error_set(err, ETIMEDOUT, "VM %s still running", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "VM %s: wait: %s", vm->cfg.name, strerror(-r));
        hv_qemu_hotplug_done(&q->hotplug);
        hv_qmp_close(&q->qmp);
        remove_run_files(q);
        *ret = q->proc.exit;
        return 0;
}

/*
 * Graceful first: system_powerdown presses the ACPI power button and the guest may shut down
 * within grace_ms. Then "quit", which QEMU obeys at once, and SIGKILL if even that fails.
 */
static int qemu_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        if (hv__proc_running(&q->proc) && q->qmp.fd >= 0 && grace_ms > 0) {
                if (hv_qmp_execute(&q->qmp, "system_powerdown", NULL, 1000, NULL, NULL) == 0)
                        hv__proc_wait(&q->proc, grace_ms);
        }
        if (hv__proc_running(&q->proc) && q->qmp.fd >= 0 && hv__proc_wait(&q->proc, 0) < 0) {
                hv_qmp_execute(&q->qmp, "quit", NULL, 1000, NULL, NULL);
                hv__proc_wait(&q->proc, 2000);
        }
        hv__proc_kill(&q->proc);
        hv_qemu_hotplug_done(&q->hotplug);
        hv_qmp_close(&q->qmp);
        remove_run_files(q);
        return 0;
}

static int qemu_exit_fd(struct hv_vm *vm)
{
        struct qemu_vm *q = to_qemu(vm);
        return q->proc.pidfd >= 0 ? q->proc.pidfd : -ESRCH;
}

static int qemu_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        int r;
        if (!vm->started)
                return cc_error_set(err, ESRCH, "VM %s not started", vm->cfg.name);
        if (q->channel == HV_CHANNEL_VSOCK)
                r = asprintf(ret, "vsock:%u:%d", q->cid, HV_AGENT_VSOCK_PORT);
        else
                r = asprintf(ret, "unix:%s", q->agent_path);
        return r < 0 ? cc_error_set(err, ENOMEM, "out of memory") : 0;
}

static int qemu_pids(struct hv_vm *vm, pid_t *ret, size_t max)
{
        struct qemu_vm *q = to_qemu(vm);
        if (!hv__proc_running(&q->proc) || max == 0)
                return 0;
        ret[0] = q->proc.pid;
        return 1;
}

/* Hot-plug (hotplug.c): only while QEMU runs; its exit released every disk. */
static int qemu_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                         struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        if (!hv__proc_running(&q->proc) || q->qmp.fd < 0)
                return cc_error_set(err, ESRCH, "VM %s: QEMU is not running", vm->cfg.name);
        return hv_qemu_disk_add(&q->hotplug, disk, timeout_ms, err);
}

static int qemu_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms,
                            struct cc_error **err)
{
        struct qemu_vm *q = to_qemu(vm);
        if (!hv__proc_running(&q->proc) || q->qmp.fd < 0)
                return cc_error_set(err, ESRCH, "VM %s: QEMU is not running", vm->cfg.name);
        return hv_qemu_disk_remove(&q->hotplug, serial, timeout_ms, err);
}

static void qemu_free(struct hv_vm *vm)
{
        struct qemu_vm *q = to_qemu(vm);
        hv__proc_done(&q->proc);
        hv_qemu_hotplug_done(&q->hotplug);
        hv_qmp_close(&q->qmp);
        remove_run_files(q);
        hv__unlink(q->log_path);
        cc_close(q->vhost_fd);
        free(q->qmp_path);
        free(q->agent_path);
        free(q->pid_path);
        free(q->log_path);
        free(q);
}

const struct hv_ops hv_qemu_ops = {
        .name = "qemu",
        .caps = HV_CAP_TEE_SEV | HV_CAP_TEE_SNP | HV_CAP_TEE_TDX,
        .check = qemu_check,
        .alloc = qemu_alloc,
        .start = qemu_start,
        .stop = qemu_stop,
        .wait = qemu_wait,
        .exit_fd = qemu_exit_fd,
        .agent_address = qemu_agent_address,
        .pids = qemu_pids,
        .disk_add = qemu_disk_add,
        .disk_remove = qemu_disk_remove,
        .free = qemu_free,
};
