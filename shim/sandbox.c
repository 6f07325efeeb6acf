/*
 * The pod's VM and the agent client.
 *
 * Boot: libhv starts the VMM with the agent channel the host supports (vsock when
 * /dev/vhost-vsock opens, else a virtio-serial port on a unix socket in the VM's run dir) and
 * tells the guest agent where to listen on the kernel command line. The shim then dials the
 * agent until grpc.Health/Check answers SERVING (bounded by [agent.kata] dial_timeout, and cut
 * short if the VMM dies), and creates the sandbox.
 *
 * Files reach the guest with CopyFile (1 MiB per request, well under ttrpc's 4 MiB frame),
 * which only writes below the agent's containers area.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "shim/shim.h"

#define AGENT_SERVICE "grpc.AgentService"
#define COPY_CHUNK    (1u << 20)

static int64_t now_ms(void)
{
        return shim_mono_ns() / 1000000;
}

int shim_agent_call(struct shim_sandbox *sb, const char *service, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                    ProtobufCMessage **ret, int64_t timeout_ns, struct cc_error **err)
{
        return shim_agent_rpc(sb->vm_dead ? NULL : sb->agent, service, method, req, resp_desc, ret,
                              timeout_ns, err);
}

static int wait_agent(struct shim_sandbox *sb, const char *addr, struct cc_error **err)
{
        struct shim_agent_wait w = {
                .addr = addr,
                .timeout_ms = (int64_t)sb->cfg.dial_timeout_s * 1000,
                .exit_fd = hv_vm_exit_fd(sb->vm),
                .console_path = hv_vm_console_log(sb->vm),
        };
        int r = shim_agent_wait(&w, &sb->agent, err);
        if (r == -ETIMEDOUT)
                return cc_error_wrap(err, -r, "[agent.kata] dial_timeout = %u in %s",
                                     sb->cfg.dial_timeout_s,
                                     sb->cfg.path ? sb->cfg.path : "the built-in configuration");
        return r;
}

/* <run_dir>/SHIM_DEBUG_CONSOLE_ADDR for `cc-runtime exec`, written whole (a rename). */
static int write_console_address(struct shim_sandbox *sb, const char *agent_addr,
                                 struct cc_error **err)
{
        _cleanup_free_ char *addr = NULL, *path = NULL, *tmp = NULL;
        int r = shim_debug_console_address(agent_addr, sb->run_dir, &addr);
        if (r < 0)
                return cc_error_set(err, -r, "debug console address from '%s'", agent_addr);
        if (asprintf(&path, "%s/%s", sb->run_dir, SHIM_DEBUG_CONSOLE_ADDR) < 0 ||
            asprintf(&tmp, "%s.tmp", path) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return cc_error_set(err, errno, "%s: %m", tmp);
        if ((r = cc_write_all(fd, addr, strlen(addr))) < 0)
                return cc_error_set(err, -r, "%s: write", tmp);
        if (rename(tmp, path) < 0)
                return cc_error_set(err, errno, "%s: %m", path);
        cc_log_info("sandbox %s: debug console at %s", sb->id, addr);
        return 0;
}

/* Memory and CPUs from the pod's resource annotations on top of the configured base. */
static void size_vm(struct json_object *spec, unsigned *vcpus, unsigned *mem_mib)
{
        const char *m = shim_spec_annotation(spec, ANNO_SANDBOX_MEMORY);
        const char *q = shim_spec_annotation(spec, ANNO_SANDBOX_QUOTA);
        const char *p = shim_spec_annotation(spec, ANNO_SANDBOX_PERIOD);
        if (m) {
                unsigned long long bytes = strtoull(m, NULL, 10);
                if (bytes > 0 && bytes < (1ull << 44))
                        *mem_mib += (unsigned)((bytes + (1u << 20) - 1) >> 20);
        }
        if (q && p) {
                long long quota = strtoll(q, NULL, 10), period = strtoll(p, NULL, 10);
                if (quota > 0 && period > 0 && quota / period < 256)
                        *vcpus += (unsigned)((quota + period - 1) / period);
        }
}

int shim_sandbox_start(struct shim_sandbox *sb, struct json_object *spec, struct cc_error **err)
{
        const struct shim_config *c = &sb->cfg;
        const char *cfgname = c->path ? c->path : "built-in configuration";
        int r;
        if (mkdir(shim_run_base(), 0700) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "mkdir %s: %m", shim_run_base());
        if (mkdir(sb->run_dir, 0700) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "mkdir %s: %m", sb->run_dir);

        enum hv_channel channel = c->channel;
        if (channel == HV_CHANNEL_AUTO) {
                int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
                channel = fd >= 0 ? HV_CHANNEL_VSOCK : HV_CHANNEL_SERIAL;
                cc_close(fd);
        }
        /* The pod owner's initdata: its digest into the launch, its disk for the guest. */
        _cleanup_(shim_initdata_done) struct shim_initdata idata = {0};
        if ((r = shim_initdata_prepare(c, sb->run_dir, &idata, err)) < 0)
                return r;
        /* The pod's scratch disk for trusted storage (storage.c). */
        _cleanup_free_ char *scratch = NULL;
        if ((r = shim_trusted_storage_prepare(c, sb->run_dir, &scratch, err)) < 0)
                return r;
        _cleanup_free_ char *params = NULL;
        if (asprintf(&params, "%s%sagent.server_addr=%s%s%s%s%s%s%s",
                     c->kernel_params ? c->kernel_params : "", c->kernel_params ? " " : "",
                     channel == HV_CHANNEL_VSOCK ? "vsock://-1:1024"
                                                 : "serial://" HV_AGENT_SERIAL_NAME,
                     c->debug ? " agent.log=debug" : "",
                     c->debug_console ? " agent.debug_console agent.debug_console_vport=1026" : "",
                     idata.kparam ? " " : "", idata.kparam ? idata.kparam : "",
                     scratch ? " agent.trusted_storage=" SHIM_TRUSTED_STORAGE_SERIAL : "",
                     scratch && c->trusted_storage_integrity ? ",integrity" : "") < 0)
                return -ENOMEM;
        struct hv_disk disks[2];
        size_t n_disks = 0;
        if (idata.disk_path)
                disks[n_disks++] = (struct hv_disk){.path = idata.disk_path, .readonly = true};
        if (scratch)
                disks[n_disks++] =
                        (struct hv_disk){.path = scratch, .serial = SHIM_TRUSTED_STORAGE_SERIAL};
        unsigned vcpus = c->vcpus, mem = c->memory_mib;
        size_vm(spec, &vcpus, &mem);
        struct hv_config hc = {
                .backend = c->backend,
                .name = sb->id,
                .run_dir = sb->run_dir,
                .vmm_path = c->vmm_path,
                .vcpus = vcpus,
                .memory_mib = mem,
                .kernel = c->kernel,
                .initrd = c->initrd,
                .kernel_params = params,
                .firmware = c->firmware,
                .accel = c->accel,
                .tee = {.kind = c->tee,
                        .mrconfigid = idata.mrconfigid,
                        .host_data = idata.host_data},
                .channel = channel,
                .debug_console = c->debug_console,
                .disks = n_disks ? disks : NULL,
                .n_disks = n_disks,
                .hotplug_slots = c->hotplug_slots,
        };
        /* Whether this host can run this VM at all comes first: no pod network is touched for
         * a VM that cannot start. The mock backend (tests) runs anywhere. */
        if ((r = hv_check(&hc, err)) < 0)
                return cc_error_wrap(err, -r,
                                     "%s: [hypervisor.%s] (backend %s, tee %s) cannot start",
                                     cfgname, strcmp(c->backend, "clh") == 0 ? "clh" : "qemu",
                                     c->backend, hv_tee_to_string(c->tee));
        /* The pod network: taps in the pod namespace, handed to the VMM (hv_vm_new dups the
         * fds). On any later failure the caller's shim_sandbox_free() removes it again. */
        _cleanup_free_ struct hv_net *nets = NULL;
        if ((r = shim_pod_net_setup(c, sb->id, sb->run_dir, spec, &hc, &sb->net, &nets, err)) < 0)
                return cc_error_wrap(err, -r, "%s", cfgname);
        if ((r = hv_vm_new(&hc, &sb->vm, err)) < 0)
                return cc_error_wrap(err, -r, "%s", cfgname);
        int64_t t0 = now_ms(), boot0 = shim_mono_ns();
        if ((r = hv_vm_start(sb->vm, 120000, err)) < 0) {
                /* libhv's host check names what is missing (kernel, firmware, TEE support). */
                return cc_error_wrap(err, -r,
                                     "%s: [hypervisor.%s] (backend %s, tee %s) cannot start",
                                     cfgname, strcmp(c->backend, "clh") == 0 ? "clh" : "qemu",
                                     c->backend, hv_tee_to_string(c->tee));
        }
        pid_t pids[4];
        sb->vmm_pid = hv_vm_pids(sb->vm, pids, 4) > 0 ? pids[0] : getpid();
        _cleanup_free_ char *addr = NULL;
        if ((r = hv_vm_agent_address(sb->vm, &addr, err)) < 0)
                return r;
        r = wait_agent(sb, addr, err);
        shim_external_ns_add(shim_mono_ns() - boot0);
        if (r < 0)
                return r;
        if (c->debug_console && (r = write_console_address(sb, addr, err)) < 0)
                return r;
        /* VMM start to Health.Check SERVING (bench/kernel-params.sh, bench/pod-start.sh). */
        char f[256] = "";
        shim_logfmt_add(f, sizeof(f), "sandbox", "%s", sb->id);
        shim_logfmt_add(f, sizeof(f), "vmm", "%s", c->backend);
        shim_logfmt_add(f, sizeof(f), "vmm_pid", "%d", (int)sb->vmm_pid);
        shim_logfmt_add(f, sizeof(f), "agent_ready_ms", "%lld", (long long)(now_ms() - t0));
        cc_log_full(CC_LOG_INFO, 0, f, "sandbox %s: VM %s pid %d, agent ready", sb->id, c->backend,
                    (int)sb->vmm_pid);
        /* Kata's order: the guest's interfaces, routes and neighbours before CreateSandbox. */
        if ((r = shim_pod_net_configure_guest(sb->net, sb->agent, err)) < 0)
                return cc_error_wrap(err, -r, "sandbox %s: pod network in the guest", sb->id);
        Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
        req.sandbox_id = sb->id;
        char **dns = NULL;
        size_t n_dns = 0;
        if ((r = shim_pod_dns(spec, &dns, &n_dns)) < 0)
                return r;
        req.dns = dns;
        req.n_dns = n_dns;
        const char *hostname = NULL;
        struct json_object *h = NULL;
        if (json_object_object_get_ex(spec, "hostname", &h) &&
            json_object_is_type(h, json_type_string))
                hostname = json_object_get_string(h);
        req.hostname = (char *)(hostname ? hostname : "");
        r = shim_agent_call(sb, AGENT_SERVICE, "CreateSandbox", &req.base, NULL, NULL,
                            30ll * 1000000000ll, err);
        shim_strv_free(dns, n_dns);
        return r;
}

static void remove_dir_files(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        rmdir(dir);
}

void shim_sandbox_stop(struct shim_sandbox *sb)
{
        /* DestroySandbox powers the guest off: the VM watcher sees an exit it need not warn of. */
        sb->stopping = true;
        /* The agent client stays allocated: other threads may be inside a call on it; they
         * fail with ECONNRESET once the VMM is gone, and shim_sandbox_free() frees it. */
        if (sb->agent && !sb->vm_dead) {
                Grpc__DestroySandboxRequest req = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(sb, AGENT_SERVICE, "DestroySandbox", &req.base, NULL, NULL,
                                    5ll * 1000000000ll, &e) < 0)
                        cc_log_debug("DestroySandbox: %s", cc_error_message(e));
        }
        if (sb->vm) {
                _cleanup_error_ struct cc_error *e = NULL;
                if (hv_vm_stop(sb->vm, 5000, &e) < 0)
                        cc_log_warn("stop VM: %s", cc_error_message(e));
        }
        sb->vm_dead = true;
        /* After the VM: no frame is mirrored to a tap whose reader is gone. */
        shim_pod_net_teardown(sb->net, sb->id, sb->run_dir);
}

void shim_sandbox_free(struct shim_sandbox *sb)
{
        if (!sb)
                return;
        shim_sandbox_stop(sb);
        cc_ttrpc_client_free(sb->agent);
        sb->agent = NULL;
        sb->vm = hv_vm_free(sb->vm);
        sb->net = shim_net_free(sb->net);
        if (sb->run_dir)
                remove_dir_files(sb->run_dir);
        shim_config_done(&sb->cfg);
        free(sb->disks);
        free(sb->id);
        free(sb->ns);
        free(sb->run_dir);
        free(sb);
}

int shim_agent_copy_file(struct shim_sandbox *sb, const char *host_path, const char *guest_path,
                         uint64_t *budget, struct cc_error **err)
{
        _cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cc_error_set(err, errno, "open %s: %m", host_path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cc_error_set(err, errno, "stat %s: %m", host_path);
        Grpc__CopyFileRequest req = GRPC__COPY_FILE_REQUEST__INIT;
        req.path = (char *)guest_path;
        req.uid = (int32_t)st.st_uid;
        req.gid = (int32_t)st.st_gid;
        req.dir_mode = 0755;
        if (S_ISDIR(st.st_mode)) {
                req.file_mode = S_IFDIR | (st.st_mode & 07777);
                return shim_agent_call(sb, AGENT_SERVICE, "CopyFile", &req.base, NULL, NULL,
                                       10ll * 1000000000ll, err);
        }
        if (!S_ISREG(st.st_mode))
                return cc_error_set(err, EINVAL, "%s is not a regular file", host_path);
        if ((uint64_t)st.st_size > *budget)
                return cc_error_set(err, EFBIG,
                                    "copying %s would pass the host rootfs limit "
                                    "([runtime] host_rootfs_max_mib)",
                                    host_path);
        *budget -= (uint64_t)st.st_size;
        req.file_mode = S_IFREG | (st.st_mode & 07777);
        req.file_size = st.st_size;
        _cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
        if (!buf)
                return -ENOMEM;
        off_t off = 0;
        do {
                ssize_t n = pread(fd, buf, COPY_CHUNK, off);
                if (n < 0)
                        return cc_error_set(err, errno, "read %s: %m", host_path);
                if (n == 0 && off < st.st_size)
                        return cc_error_set(err, EIO, "%s shrank while copying", host_path);
                req.offset = off;
                req.data.data = buf;
                req.data.len = (size_t)n;
                int r = shim_agent_call(sb, AGENT_SERVICE, "CopyFile", &req.base, NULL, NULL,
                                        30ll * 1000000000ll, err);
                if (r < 0)
                        return r;
                off += n;
        } while (off < st.st_size);
        return 0;
}

int shim_agent_copy_tree(struct shim_sandbox *sb, const char *host_dir, const char *guest_dir,
                         uint64_t *budget, struct cc_error **err)
{
        int r = shim_agent_copy_file(sb, host_dir, guest_dir, budget, err);
        if (r < 0)
                return r;
        DIR *d = opendir(host_dir);
        if (!d)
                return cc_error_set(err, errno, "opendir %s: %m", host_dir);
        struct dirent *de;
        r = 0;
        while (r >= 0 && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *hp = NULL, *gp = NULL;
                if (asprintf(&hp, "%s/%s", host_dir, de->d_name) < 0 ||
                    asprintf(&gp, "%s/%s", guest_dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (lstat(hp, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        r = shim_agent_copy_tree(sb, hp, gp, budget, err);
                } else if (S_ISREG(st.st_mode)) {
                        r = shim_agent_copy_file(sb, hp, gp, budget, err);
                } else if (S_ISLNK(st.st_mode)) {
                        /* The agent refuses to create symlinks (they could point anywhere in
                         * the guest); a link to a regular file inside the tree is copied as
                         * that file, anything else is skipped. */
                        struct stat target;
                        _cleanup_free_ char *real = realpath(hp, NULL);
                        _cleanup_free_ char *root = realpath(host_dir, NULL);
                        if (real && root && stat(real, &target) == 0 && S_ISREG(target.st_mode))
                                r = shim_agent_copy_file(sb, real, gp, budget, err);
                        else
                                cc_log_debug("rootfs copy: skipping symlink %s", hp);
                } else {
                        cc_log_debug("rootfs copy: skipping special file %s", hp);
                }
        }
        closedir(d);
        return r;
}

int shim_sandbox_cleanup_dead(const char *run_dir)
{
        /* The VMM's pidfile; the pid counts only if that process still names our run dir on
         * its command line (pids are reused). */
        _cleanup_free_ char *pidfile = NULL;
        if (asprintf(&pidfile, "%s/qemu.pid", run_dir) < 0)
                return -ENOMEM;
        _cleanup_fclose_ FILE *f = fopen(pidfile, "re");
        int pid = 0;
        if (f && fscanf(f, "%d", &pid) == 1 && pid > 1) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                char buf[8192];
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
                bool ours = false;
                for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
                        buf[n] = '\0';
                        ours = ours || strstr(buf + i, run_dir) != NULL;
                }
                if (ours) {
                        kill(pid, SIGKILL);
                        for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) {
                                /* A zombie (child of the dead shim, reparented) counts as gone
                                 * once its state says so. */
                                char st[64], line[256];
                                snprintf(st, sizeof(st), "/proc/%d/stat", pid);
                                _cleanup_fclose_ FILE *sf = fopen(st, "re");
                                if (sf && fgets(line, sizeof(line), sf) && strstr(line, ") Z "))
                                        break;
                                usleep(50 * 1000);
                        }
                }
        }
        /* The taps went with the VMM's fds and the shim's; the tc filters on the veth stay. */
        shim_pod_net_cleanup_dead(run_dir);
        remove_dir_files(run_dir);
        return 0;
}
