/* The "mock" backend (see mock.h): in-memory state, an eventfd as exit fd, a call log. */
#include "hypervisor/mock/mock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"

struct mock_disk {
        char serial[21];
        char *path;
        bool readonly;
};

struct mock_vm {
        struct hv_vm vm;
        int exit_fd; /* eventfd, -1 when not started */
        bool running;
        struct hv_exit exit;
        struct mock_disk disks[HV_MAX_HOTPLUG_SLOTS]; /* path NULL: free */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *calls;
static char fail_op[32];
static int fail_errno;

static struct mock_vm *to_mock(struct hv_vm *vm)
{
        return cc_container_of(vm, struct mock_vm, vm);
}

/* Records the call; returns -errno when a failure was armed for this op. */
static int record(const char *op, const char *name)
{
        pthread_mutex_lock(&lock);
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s:%s", calls ? calls : "", calls ? " " : "", op, name) >= 0) {
                free(calls);
                calls = joined;
        }
        int r = 0;
        if (fail_errno && strcmp(fail_op, op) == 0) {
                r = -fail_errno;
                fail_errno = 0;
                fail_op[0] = 0;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

void hv_mock_fail_next(const char *op, int errnum)
{
        pthread_mutex_lock(&lock);
        snprintf(fail_op, sizeof(fail_op), "%s", op);
        fail_errno = errnum < 0 ? -errnum : errnum;
        pthread_mutex_unlock(&lock);
}

char *hv_mock_calls(void)
{
        pthread_mutex_lock(&lock);
        char *c = strdup(calls ? calls : "");
        pthread_mutex_unlock(&lock);
        return c;
}

void hv_mock_reset(void)
{
        pthread_mutex_lock(&lock);
        free(calls);
        calls = NULL;
        fail_errno = 0;
        fail_op[0] = 0;
        pthread_mutex_unlock(&lock);
}

int hv_mock_exit(struct hv_vm *vm, int code, int signal)
{
        if (!vm || vm->ops != &hv_mock_ops)
                return -EINVAL;
        struct mock_vm *m = to_mock(vm);
        if (!m->running)
                return -ESRCH;
        m->running = false;
        m->exit = (struct hv_exit){.code = signal ? -1 : code, .signal = signal};
        /* The VMM's exit releases every disk. */
        for (size_t i = 0; i < CC_ARRAY_SIZE(m->disks); i++) {
                free(m->disks[i].path);
                m->disks[i] = (struct mock_disk){0};
        }
        uint64_t one = 1;
        if (write(m->exit_fd, &one, sizeof(one)) != sizeof(one))
                return -errno;
        return 0;
}

static int mock_alloc(struct hv_vm **ret, struct cc_error **err)
{
        struct mock_vm *m = calloc(1, sizeof(*m));
        if (!m)
                return cc_error_set(err, ENOMEM, "out of memory");
        m->exit_fd = -1;
        *ret = &m->vm;
        return 0;
}

static int mock_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err)
{
        struct mock_vm *m = to_mock(vm);
        int r = record("start", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "mock: start failed (armed)");
        m->exit_fd = cc_close(m->exit_fd);
        m->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->exit_fd < 0)
                return cc_error_set(err, errno, "eventfd: %m");
        m->running = true;
        m->exit = (struct hv_exit){.code = -1};
        return 0;
}

static int mock_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err)
{
        struct mock_vm *m = to_mock(vm);
        int r = record("stop", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "mock: stop failed (armed)");
        if (m->running)
                hv_mock_exit(vm, 0, 0);
        return 0;
}

static int mock_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err)
{
        struct mock_vm *m = to_mock(vm);
        int r = record("wait", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "mock: wait failed (armed)");
        struct pollfd pfd = {.fd = m->exit_fd, .events = POLLIN};
        if (m->running && poll(&pfd, 1, timeout_ms) <= 0)
                return cc_error_set(err, ETIMEDOUT, "VM %s still running", vm->cfg.name);
        *ret = m->exit;
        return 0;
}

static int mock_exit_fd(struct hv_vm *vm)
{
        struct mock_vm *m = to_mock(vm);
        return m->exit_fd >= 0 ? m->exit_fd : -ESRCH;
}

static int mock_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err)
{
        int r = record("agent_address", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "mock: agent_address failed (armed)");
        if (asprintf(ret, "unix:%s/agent.sock", vm->cfg.run_dir) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static struct mock_disk *find_disk(struct mock_vm *m, const char *serial)
{
        for (size_t i = 0; i < CC_ARRAY_SIZE(m->disks); i++)
                if (m->disks[i].path && strcmp(m->disks[i].serial, serial) == 0)
                        return &m->disks[i];
        return NULL;
}

static int mock_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                         struct cc_error **err)
{
        struct mock_vm *m = to_mock(vm);
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "%s:%s", vm->cfg.name, disk->serial) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = record("disk_add", what);
        if (r < 0)
                return cc_error_set(err, -r, "mock: disk_add failed (armed)");
        if (!m->running)
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        if (find_disk(m, disk->serial))
                return cc_error_set(err, EEXIST, "a disk with serial '%s' is attached already",
                                    disk->serial);
        struct mock_disk *free_slot = NULL;
        for (size_t i = 0; i < vm->cfg.hotplug_slots && !free_slot; i++)
                if (!m->disks[i].path)
                        free_slot = &m->disks[i];
        if (!free_slot)
                return cc_error_set(err, ENOSPC, "no free hot-plug slot for disk '%s' (%u slots)",
                                    disk->serial, vm->cfg.hotplug_slots);
        free_slot->path = strdup(disk->path);
        if (!free_slot->path)
                return cc_error_set(err, ENOMEM, "out of memory");
        snprintf(free_slot->serial, sizeof(free_slot->serial), "%s", disk->serial);
        free_slot->readonly = disk->readonly;
        return 0;
}

static int mock_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms,
                            struct cc_error **err)
{
        struct mock_vm *m = to_mock(vm);
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "%s:%s", vm->cfg.name, serial) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = record("disk_remove", what);
        if (r < 0)
                return cc_error_set(err, -r, "mock: disk_remove failed (armed)");
        if (!m->running)
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        struct mock_disk *d = find_disk(m, serial);
        if (!d)
                return cc_error_set(err, ENOENT, "no disk with serial '%s' was hot-plugged",
                                    serial);
        free(d->path);
        *d = (struct mock_disk){0};
        return 0;
}

char *hv_mock_disks(struct hv_vm *vm)
{
        if (!vm || vm->ops != &hv_mock_ops)
                return NULL;
        struct mock_vm *m = to_mock(vm);
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        if (!f)
                return NULL;
        bool first = true;
        for (size_t i = 0; i < CC_ARRAY_SIZE(m->disks); i++) {
                if (!m->disks[i].path)
                        continue;
                fprintf(f, "%s%s=%s%s", first ? "" : " ", m->disks[i].serial, m->disks[i].path,
                        m->disks[i].readonly ? ",ro" : "");
                first = false;
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

static int mock_pids(struct hv_vm *vm, pid_t *ret, size_t max)
{
        return 0;
}

static void mock_free(struct hv_vm *vm)
{
        struct mock_vm *m = to_mock(vm);
        cc_close(m->exit_fd);
        for (size_t i = 0; i < CC_ARRAY_SIZE(m->disks); i++)
                free(m->disks[i].path);
        free(m);
}

const struct hv_ops hv_mock_ops = {
        .name = "mock",
        .caps = HV_CAP_TEE_SEV | HV_CAP_TEE_SNP | HV_CAP_TEE_TDX,
        .alloc = mock_alloc,
        .start = mock_start,
        .stop = mock_stop,
        .wait = mock_wait,
        .exit_fd = mock_exit_fd,
        .agent_address = mock_agent_address,
        .pids = mock_pids,
        .disk_add = mock_disk_add,
        .disk_remove = mock_disk_remove,
        .free = mock_free,
};
