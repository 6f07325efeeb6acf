/*
 * The Cloud Hypervisor backend against a fake cloud-hypervisor: this test program re-executes
 * itself as the VMM ("<self> --api-socket path=<sock>") and serves CH's REST API on that unix
 * socket, checking every request against the documented endpoints, methods and VmConfig fields
 * (../shared/reference/hypervisor-agent.md 2.1, 2.2), and after vm.boot a hybrid-vsock socket
 * (2.4) whose "guest" answers "ping" with "pong:ping". Any violation is logged and makes the
 * fake exit with status 3 at vmm.shutdown, which the lifecycle test checks.
 *
 * The lifecycle calls the backend's ops directly: hv_vm_start() would first refuse this host
 * for lack of KVM (that check is tested on its own below).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/clh/clh.h"
#include "hypervisor/hv-internal.h"

/* ---- the fake cloud-hypervisor ---- */

static FILE *fake_log;
static int violations;

static void violation(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("VIOLATION ", fake_log);
        vfprintf(fake_log, fmt, ap);
        fputc('\n', fake_log);
        va_end(ap);
        violations++;
}

static bool in_list(const char *s, const char *const *list)
{
        for (; *list; list++)
                if (strcmp(s, *list) == 0)
                        return true;
        return false;
}

static const char *console_modes[] = {"Off", "Pty", "Tty", "File", "Socket", "Null", NULL};

static void check_console(json_object *vm, const char *key)
{
        json_object *c, *mode, *file;
        if (!json_object_object_get_ex(vm, key, &c))
                return;
        if (!json_object_object_get_ex(c, "mode", &mode) ||
            !in_list(json_object_get_string(mode), console_modes))
                violation("%s.mode missing or not one of Off/Pty/Tty/File/Socket/Null", key);
        else if (strcmp(json_object_get_string(mode), "File") == 0 &&
                 !json_object_object_get_ex(c, "file", &file))
                violation("%s.mode File without %s.file", key, key);
}

/* The VmConfig schema subset of reference 2.2. */
static void check_vmconfig(const char *body, char *vsock_path, size_t size)
{
        json_object *vm = json_tokener_parse(body);
        if (!vm || !json_object_is_type(vm, json_type_object)) {
                violation("vm.create body is not a JSON object");
                json_object_put(vm);
                return;
        }
        static const char *top[] = {"payload",  "cpus",    "memory", "platform", "vsock",
                                    "serial",   "console", "disks",  "net",      "rng",
                                    "balloon",  "fs",      "pmem",   "devices",  "iommu",
                                    "watchdog", "pvpanic", "tpm",    NULL};
        json_object_object_foreach(vm, key, val)
        {
                (void)val;
                if (!in_list(key, top))
                        violation("unknown VmConfig field '%s'", key);
        }
        json_object *payload, *cpus, *memory, *platform, *vsock, *v, *tdx;
        if (!json_object_object_get_ex(vm, "payload", &payload))
                violation("payload is required");
        else {
                static const char *pk[] = {"firmware", "kernel",    "cmdline", "initramfs",
                                           "igvm",     "host_data", NULL};
                json_object_object_foreach(payload, k, pv)
                {
                        if (!in_list(k, pk) || !json_object_is_type(pv, json_type_string))
                                violation("payload.%s unknown or not a string", k);
                }
        }
        if (!json_object_object_get_ex(vm, "cpus", &cpus) ||
            !json_object_object_get_ex(cpus, "boot_vcpus", &v) ||
            !json_object_is_type(v, json_type_int) ||
            !json_object_object_get_ex(cpus, "max_vcpus", &v) ||
            !json_object_is_type(v, json_type_int))
                violation("cpus.boot_vcpus and cpus.max_vcpus are required integers");
        if (!json_object_object_get_ex(vm, "memory", &memory) ||
            !json_object_object_get_ex(memory, "size", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
                violation("memory.size is a required positive integer (bytes)");
        if (json_object_object_get_ex(vm, "platform", &platform)) {
                static const char *pk[] = {"num_pci_segments", "iommu_segments", "tdx", "sev_snp",
                                           "system_uuid",      "oem_strings",    NULL};
                json_object_object_foreach(platform, k, pv)
                {
                        (void)pv;
                        if (!in_list(k, pk))
                                violation("platform.%s unknown", k);
                }
                if (json_object_object_get_ex(platform, "tdx", &tdx) &&
                    json_object_get_boolean(tdx) &&
                    !json_object_object_get_ex(payload, "firmware", &v))
                        violation("platform.tdx without payload.firmware");
        }
        if (!json_object_object_get_ex(vm, "vsock", &vsock) ||
            !json_object_object_get_ex(vsock, "cid", &v) || json_object_get_int64(v) < 3 ||
            !json_object_object_get_ex(vsock, "socket", &v) ||
            !json_object_is_type(v, json_type_string))
                violation("vsock.cid (>= 3) and vsock.socket are required");
        else
                snprintf(vsock_path, size, "%s", json_object_get_string(v));
        check_console(vm, "serial");
        check_console(vm, "console");
        json_object_put(vm);
}

static void reply(int fd, int status, const char *body)
{
        const char *reason = status == 200 ? "OK" : status == 204 ? "No Content" : "Error";
        char head[256];
        int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: fake-ch\r\n", status,
                         reason);
        if (body)
                n += snprintf(head + n, sizeof(head) - (size_t)n,
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                              strlen(body));
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
        if ((write(fd, head, (size_t)n) < 0 || (body && write(fd, body, strlen(body)) < 0)) &&
            errno != EPIPE && errno != ECONNRESET)
                violation("write reply");
}

/* Reads one request (headers + Content-Length body) from fd; fds passed beside it (SCM_RIGHTS)
 * go to fds[] (*n_fds of them, at most 4). */
static bool read_request(int fd, char *buf, size_t size, char **body, int *fds, size_t *n_fds)
{
        size_t len = 0;
        *n_fds = 0;
        for (;;) {
                struct iovec iov = {.iov_base = buf + len, .iov_len = size - 1 - len};
                union {
                        struct cmsghdr align;
                        char b[CMSG_SPACE(sizeof(int) * 4)];
                } ctl;
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = ctl.b,
                                    .msg_controllen = sizeof(ctl.b)};
                ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n <= 0)
                        return false;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                                for (size_t i = 0;
                                     i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) && *n_fds < 4;
                                     i++)
                                        memcpy(&fds[(*n_fds)++], CMSG_DATA(cm) + i * sizeof(int),
                                               sizeof(int));
                len += (size_t)n;
                buf[len] = 0;
                char *end = strstr(buf, "\r\n\r\n");
                if (!end)
                        continue;
                const char *cl = strcasestr(buf, "\r\nContent-Length:");
                size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
                if (len - (size_t)(end + 4 - buf) >= want) {
                        *body = end + 4;
                        return true;
                }
        }
}

/* A connected "guest agent" behind the hybrid vsock: handshake, then echo. */
static void serve_vsock_conn(int fd)
{
        char line[128];
        size_t len = 0;
        while (len < sizeof(line) - 1 && read(fd, line + len, 1) == 1 && line[len] != '\n')
                len++;
        line[len] = 0;
        if (strcmp(line, "CONNECT 1024") != 0) {
                close(fd); /* nothing listens on that guest port */
                return;
        }
        if (write(fd, "OK 1073741825\n", 14) != 14)
                return;
        char buf[256];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0) {
                buf[n] = 0;
                char *nl = strchr(buf, '\n');
                if (nl)
                        *nl = 0;
                char out[300];
                int m = snprintf(out, sizeof(out), "pong:%s\n", buf);
                if (write(fd, out, (size_t)m) < 0)
                        violation("vsock write");
        }
        close(fd);
}

/* vm.add-disk (2.1): a DiskConfig (2.2) after boot naming an existing path, a serial and an
 * id; answered with a PciDeviceInfo. `ids` is the fake's table (n entries, `stride` apart). */
static void fake_add_disk(int fd, const char *body, bool booted, char *ids, size_t stride, size_t n)
{
        static const char *fields[] = {"path",       "readonly",    "direct", "iommu",
                                       "num_queues", "queue_size",  "id",     "serial",
                                       "image_type", "pci_segment", NULL};
        json_object *o = json_tokener_parse(body), *path = NULL, *serial = NULL, *id = NULL;
        if (!booted)
                violation("vm.add-disk before boot (the test hot-plugs)");
        if (!o || !json_object_object_get_ex(o, "path", &path) ||
            !json_object_object_get_ex(o, "serial", &serial) ||
            !json_object_object_get_ex(o, "id", &id)) {
                violation("vm.add-disk body without path, serial and id: %s", body);
                reply(fd, 400, NULL);
                json_object_put(o);
                return;
        }
        json_object_object_foreach(o, key, val)
        {
                (void)val;
                if (!in_list(key, fields))
                        violation("unknown DiskConfig field '%s'", key);
        }
        json_object *ro = NULL, *direct = NULL;
        json_object_object_get_ex(o, "readonly", &ro);
        json_object_object_get_ex(o, "direct", &direct);
        size_t i = 0;
        while (i < n && ids[i * stride])
                i++;
        if (access(json_object_get_string(path), F_OK) != 0 || i == n) {
                reply(fd, 500, "{\"error\":\"cannot open disk\"}");
        } else {
                snprintf(ids + i * stride, 64, "%s", json_object_get_string(id));
                fprintf(fake_log, "ADD-DISK %s serial=%s path=%s ro=%d direct=%d\n",
                        json_object_get_string(id), json_object_get_string(serial),
                        json_object_get_string(path), ro && json_object_get_boolean(ro),
                        direct && json_object_get_boolean(direct));
                char info[128];
                snprintf(info, sizeof(info), "{\"id\":\"%s\",\"bdf\":\"0000:00:0%zu.0\"}",
                         json_object_get_string(id), 6 + i);
                reply(fd, 200, info);
        }
        json_object_put(o);
}

static int fake_clh(int argc, char **argv)
{
        const char *logp = getenv("HV_FAKE_CLH_LOG");
        fake_log = fopen(logp ? logp : "/dev/null", "ae");
        if (!fake_log)
                return 2;
        setvbuf(fake_log, NULL, _IOLBF, 0);
        if (argc != 3 || strncmp(argv[2], "path=", 5) != 0) {
                violation("usage: --api-socket path=<socket>");
                return 3;
        }
        const char *mode = getenv("HV_FAKE_CLH_MODE");
        /* A client that gave up (its deadline passed) has closed before the reply. */
        signal(SIGPIPE, SIG_IGN);
        int api = hv__unix_listen(argv[2] + 5, NULL);
        if (api < 0)
                return 2;
        int vs = -1;
        char vsock_path[256] = "";
        bool created = false, booted = false, running = false;
        /* Hot-plugged disks by id; `ejecting`: vm.remove-device accepted, the "guest" releases
         * it at the next vm.info unless HV_FAKE_CLH_MODE=never-eject. */
        struct {
                char id[64];
                bool ejecting;
        } disks[8] = {{{0}}};
        for (;;) {
                struct pollfd pfd[2] = {{.fd = api, .events = POLLIN},
                                        {.fd = vs, .events = POLLIN}};
                if (poll(pfd, vs >= 0 ? 2 : 1, -1) < 0)
                        continue;
                if (vs >= 0 && (pfd[1].revents & POLLIN)) {
                        int c = accept4(vs, NULL, NULL, SOCK_CLOEXEC);
                        if (c >= 0)
                                serve_vsock_conn(c);
                }
                if (!(pfd[0].revents & POLLIN))
                        continue;
                int fd = accept4(api, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                char buf[16384], method[8] = "", path[128] = "";
                char *body = NULL;
                int rfds[4];
                size_t n_rfds = 0;
                if (!read_request(fd, buf, sizeof(buf), &body, rfds, &n_rfds) ||
                    sscanf(buf, "%7s %127s HTTP/1.1\r\n", method, path) != 2) {
                        violation("malformed request");
                        close(fd);
                        continue;
                }
                fprintf(fake_log, "%s %s\n", method, path);
                if (!strcasestr(buf, "\r\nHost: "))
                        violation("%s %s without Host header", method, path);
                const char *ep = strncmp(path, "/api/v1/", 8) == 0 ? path + 8 : "";
                bool get = strcmp(method, "GET") == 0, put = strcmp(method, "PUT") == 0;
                int exit_after = -1;
                if (strcmp(ep, "vmm.ping") == 0 && get) {
                        reply(fd, 200, "{\"version\":\"fake-41.0\",\"pid\":1}");
                } else if (strcmp(ep, "vm.create") == 0 && put) {
                        if (mode && strcmp(mode, "die-on-create") == 0) {
                                fprintf(stderr, "fake-ch: Error booting VM: simulated failure\n");
                                return 1;
                        }
                        if (!strcasestr(buf, "\r\nContent-Type: application/json"))
                                violation("vm.create without Content-Type: application/json");
                        if (created)
                                violation("vm.create twice");
                        check_vmconfig(body, vsock_path, sizeof(vsock_path));
                        created = true;
                        reply(fd, 204, NULL);
                } else if (strcmp(ep, "vm.add-net") == 0 && put) {
                        /* Cold add (before boot): a NetConfig naming the MAC, the tap fd beside
                         * the request. The log line lets the test compare the fd's inode. */
                        json_object *nc = json_tokener_parse(body), *mac = NULL, *id = NULL;
                        if (!created || booted)
                                violation("vm.add-net outside created-not-booted");
                        if (!nc || !json_object_object_get_ex(nc, "mac", &mac) ||
                            !json_object_object_get_ex(nc, "id", &id))
                                violation("vm.add-net body without mac and id: %s", body);
                        if (json_object_object_get_ex(nc, "tap", NULL))
                                violation("vm.add-net names a tap device besides its fd");
                        struct stat st;
                        if (n_rfds != 1 || fstat(rfds[0], &st) < 0)
                                violation("vm.add-net with %zu fds (want 1)", n_rfds);
                        else
                                fprintf(fake_log, "ADD-NET %s %s ino=%lu\n",
                                        id ? json_object_get_string(id) : "?",
                                        mac ? json_object_get_string(mac) : "?",
                                        (unsigned long)st.st_ino);
                        json_object_put(nc);
                        reply(fd, 204, NULL);
                } else if (strcmp(ep, "vm.add-disk") == 0 && put) {
                        fake_add_disk(fd, body, booted, disks[0].id, sizeof(disks[0]),
                                      CC_ARRAY_SIZE(disks));
                } else if (strcmp(ep, "vm.remove-device") == 0 && put) {
                        json_object *o = json_tokener_parse(body), *id = NULL;
                        size_t i = 0;
                        if (!o || !json_object_object_get_ex(o, "id", &id))
                                violation("vm.remove-device body without id: %s", body);
                        while (id && i < CC_ARRAY_SIZE(disks) &&
                               strcmp(disks[i].id, json_object_get_string(id)) != 0)
                                i++;
                        if (id && i < CC_ARRAY_SIZE(disks) && !disks[i].ejecting) {
                                fprintf(fake_log, "REMOVE-DEVICE %s\n", disks[i].id);
                                disks[i].ejecting = true;
                                reply(fd, 204, NULL);
                        } else {
                                reply(fd, 500, "{\"error\":\"no such device\"}");
                        }
                        json_object_put(o);
                } else if (strcmp(ep, "vm.boot") == 0 && put) {
                        if (!created) {
                                violation("vm.boot before vm.create");
                                reply(fd, 404, "VM not created");
                        } else {
                                booted = running = true;
                                unlink(vsock_path);
                                vs = hv__unix_listen(vsock_path, NULL);
                                reply(fd, 204, NULL);
                        }
                } else if (strcmp(ep, "vm.info") == 0 && get) {
                        if (!created) {
                                reply(fd, 404, "VM not created");
                        } else {
                                char *info = NULL;
                                size_t info_len = 0;
                                FILE *f = open_memstream(&info, &info_len);
                                fprintf(f,
                                        "{\"config\":{},\"state\":\"%s\","
                                        "\"memory_actual_size\":0,\"device_tree\":{",
                                        running  ? "Running"
                                        : booted ? "Shutdown"
                                                 : "Created");
                                bool eject = !mode || strcmp(mode, "never-eject") != 0;
                                const char *sep = "";
                                for (size_t i = 0; i < CC_ARRAY_SIZE(disks); i++) {
                                        if (disks[i].ejecting && eject)
                                                disks[i].id[0] = 0, disks[i].ejecting = false;
                                        if (disks[i].id[0])
                                                fprintf(f, "%s\"%s\":{\"id\":\"%s\"}", sep,
                                                        disks[i].id, disks[i].id);
                                        if (disks[i].id[0])
                                                sep = ",";
                                }
                                fputs("}}", f);
                                fclose(f);
                                reply(fd, 200, info);
                                free(info);
                        }
                } else if ((strcmp(ep, "vm.shutdown") == 0 || strcmp(ep, "vm.power-button") == 0) &&
                           put) {
                        /* The fake guest ignores the power button, like a guest without
                         * ACPI handling; vm.shutdown stops it. */
                        if (strcmp(ep, "vm.shutdown") == 0)
                                running = false;
                        reply(fd, booted ? 204 : 404, NULL);
                } else if (strcmp(ep, "vmm.shutdown") == 0 && put) {
                        reply(fd, 204, NULL);
                        exit_after = violations ? 3 : 0;
                } else {
                        violation("%s %s is not a documented endpoint/method", method, path);
                        reply(fd, 404, NULL);
                }
                for (size_t i = 0; i < n_rfds; i++)
                        close(rfds[i]);
                close(fd);
                if (exit_after >= 0) {
                        unlink(argv[2] + 5);
                        if (vsock_path[0])
                                unlink(vsock_path);
                        return exit_after;
                }
        }
}

/* ---- tests ---- */

static char run_dir[] = "/tmp/hv-clh-XXXXXX";
static char log_path[300];

static struct hv_config clh_config(void)
{
        return (struct hv_config){
                .backend = "clh",
                .name = "clh-test",
                .run_dir = run_dir,
                .vmm_path = "/proc/self/exe",
                .vcpus = 1,
                .memory_mib = 512,
                .kernel = "/bin/sh",
                .kernel_params = "quiet",
        };
}

static char *slurp(const char *path)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return strdup("");
        char *s = NULL;
        size_t n = 0;
        if (getdelim(&s, &n, 0, f) < 0) {
                free(s);
                return strdup("");
        }
        return s;
}

static void assert_run_dir_empty(void)
{
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", run_dir);
        if (system(cmd) != 0) {
                snprintf(cmd, sizeof(cmd), "ls -la %s >&2", run_dir);
                if (system(cmd) != 0)
                        fail();
                fail_msg("run dir not empty");
        }
}

/* Each of seq[0..n) appears in log, in this order. */
static void assert_in_order(const char *log, const char *const *seq, size_t n)
{
        const char *at = log;
        for (size_t i = 0; i < n; i++) {
                const char *p = strstr(at, seq[i]);
                if (!p)
                        fail_msg("missing or out of order: %s in\n%s", seq[i], log);
                at = p + strlen(seq[i]);
        }
}

/* Start through the backend op (bypassing the KVM host check), as hv_vm_start does. */
static int start_vm(struct hv_vm *vm, struct cc_error **err)
{
        int r = vm->ops->start(vm, 10000, err);
        vm->started = r == 0;
        return r;
}

static void test_lifecycle(void **state)
{
        unlink(log_path);
        unsetenv("HV_FAKE_CLH_MODE");
        struct hv_config c = clh_config();
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (start_vm(vm, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        char want[300];
        snprintf(want, sizeof(want), "hvsock:%s/clh.vsock:1024", run_dir);
        assert_string_equal(addr, want);
        pid_t pid;
        assert_int_equal(hv_vm_pids(vm, &pid, 1), 1);

        /* The agent over hybrid vsock. */
        int fd = hv_agent_dial(addr, 2000, &err);
        if (fd < 0)
                fail_msg("dial: %s", cc_error_message(err));
        assert_int_equal(write(fd, "ping\n", 5), 5);
        char buf[64] = {0};
        assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
        assert_string_equal(buf, "pong:ping\n");
        close(fd);
        /* A port nobody listens on: the muxer closes without OK. */
        char other[300];
        snprintf(other, sizeof(other), "hvsock:%s/clh.vsock:2000", run_dir);
        assert_int_equal(hv_agent_dial(other, 2000, &err), -ECONNREFUSED);

        /* Power button ignored by the guest: after the grace, vmm.shutdown. */
        assert_int_equal(hv_vm_stop(vm, 300, &err), 0);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        _cleanup_free_ char *log = slurp(log_path);
        if (ex.code != 0)
                fail_msg("the fake saw violations (exit %d):\n%s", ex.code, log);
        assert_null(strstr(log, "VIOLATION"));
        /* Kata's order: ping until up, create, boot, info; stop: power button, shutdown. */
        const char *seq[] = {"GET /api/v1/vmm.ping\n",        "PUT /api/v1/vm.create\n",
                             "PUT /api/v1/vm.boot\n",         "GET /api/v1/vm.info\n",
                             "PUT /api/v1/vm.power-button\n", "PUT /api/v1/vmm.shutdown\n"};
        assert_in_order(log, seq, sizeof(seq) / sizeof(seq[0]));
        hv_vm_free(vm);
        assert_run_dir_empty();
}

/* Two pod NICs: each cold-added with vm.add-net between create and boot, its own fd passed. */
static void test_nets(void **state)
{
        unlink(log_path);
        unsetenv("HV_FAKE_CLH_MODE");
        int p1[2], p2[2];
        assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
        assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
        struct hv_net nets[] = {{.tap_fd = p1[0], .mac = "52:54:00:cc:00:01"},
                                {.tap_fd = p2[0], .mac = "52:54:00:cc:00:02"}};
        struct hv_config c = clh_config();
        c.nets = nets;
        c.n_nets = 2;
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (start_vm(vm, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        assert_int_equal(hv_vm_stop(vm, 300, &err), 0);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        _cleanup_free_ char *log = slurp(log_path);
        if (ex.code != 0)
                fail_msg("the fake saw violations (exit %d):\n%s", ex.code, log);
        struct stat s1, s2;
        assert_int_equal(fstat(p1[0], &s1), 0);
        assert_int_equal(fstat(p2[0], &s2), 0);
        char l1[128], l2[128];
        snprintf(l1, sizeof(l1), "ADD-NET net0 52:54:00:cc:00:01 ino=%lu\n",
                 (unsigned long)s1.st_ino);
        snprintf(l2, sizeof(l2), "ADD-NET net1 52:54:00:cc:00:02 ino=%lu\n",
                 (unsigned long)s2.st_ino);
        const char *seq[] = {"PUT /api/v1/vm.create\n",
                             "PUT /api/v1/vm.add-net\n",
                             l1,
                             "PUT /api/v1/vm.add-net\n",
                             l2,
                             "PUT /api/v1/vm.boot\n"};
        assert_in_order(log, seq, sizeof(seq) / sizeof(seq[0]));
        hv_vm_free(vm);
        for (int i = 0; i < 2; i++) {
                close(p1[i]);
                close(p2[i]);
        }
        assert_run_dir_empty();
}

/* Hot-plug after boot: vm.add-disk with the DiskConfig, vm.remove-device, and the wait for the
 * guest to release it (vm.info's device_tree); a guest that never does: -ETIMEDOUT, tracked. */
static void test_disk_hotplug(void **state)
{
        unlink(log_path);
        unsetenv("HV_FAKE_CLH_MODE");
        struct hv_config c = clh_config();
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (start_vm(vm, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        struct hv_disk d = {.path = "/bin/sh", .serial = "vol-1", .readonly = true};
        struct hv_disk d2 = {.path = "/dev/null", .serial = "vol-2"};
        if (hv_vm_disk_add(vm, &d, 5000, &err) < 0)
                fail_msg("add: %s", cc_error_message(err));
        assert_int_equal(hv_vm_disk_add(vm, &d, 5000, &err), -EEXIST);
        /* Neither a block device nor a file; then a path that does not exist. */
        assert_int_equal(hv_vm_disk_add(vm, &d2, 5000, &err), -EINVAL);
        d2.path = "/nonexistent/disk.img";
        assert_int_equal(hv_vm_disk_add(vm, &d2, 5000, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "/nonexistent/disk.img"));
        if (hv_vm_disk_remove(vm, "vol-1", 5000, &err) < 0)
                fail_msg("remove: %s", cc_error_message(err));
        assert_int_equal(hv_vm_disk_remove(vm, "vol-1", 5000, &err), -ENOENT);
        /* The guest never ejects. */
        setenv("HV_FAKE_CLH_MODE", "never-eject", 1);
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
        hv_vm_free(vm);
        vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (start_vm(vm, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        assert_int_equal(hv_vm_disk_add(vm, &d, 5000, &err), 0);
        assert_int_equal(hv_vm_disk_remove(vm, "vol-1", 300, &err), -ETIMEDOUT);
        assert_non_null(strstr(cc_error_message(err), "did not release"));
        assert_int_equal(hv_vm_disk_add(vm, &d, 5000, &err), -EEXIST);
        unsetenv("HV_FAKE_CLH_MODE");
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        _cleanup_free_ char *log = slurp(log_path);
        if (ex.code != 0)
                fail_msg("the fake saw violations (exit %d):\n%s", ex.code, log);
        const char *seq[] = {"PUT /api/v1/vm.boot\n",
                             "PUT /api/v1/vm.add-disk\n",
                             "ADD-DISK hpblk-vol-1 serial=vol-1 path=/bin/sh ro=1 direct=0\n",
                             "PUT /api/v1/vm.remove-device\n",
                             "REMOVE-DEVICE hpblk-vol-1\n",
                             "GET /api/v1/vm.info\n",
                             "PUT /api/v1/vmm.shutdown\n"};
        assert_in_order(log, seq, sizeof(seq) / sizeof(seq[0]));
        hv_vm_free(vm);
        assert_run_dir_empty();
}

static void test_kill9(void **state)
{
        unsetenv("HV_FAKE_CLH_MODE");
        struct hv_config c = clh_config();
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        assert_int_equal(start_vm(vm, &err), 0);
        pid_t pid;
        assert_int_equal(hv_vm_pids(vm, &pid, 1), 1);
        int efd = hv_vm_exit_fd(vm);
        assert_int_equal(kill(pid, SIGKILL), 0);
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        assert_int_equal(ex.signal, SIGKILL);
        hv_vm_free(vm);
        assert_run_dir_empty();
}

static void test_vmm_dies_during_start(void **state)
{
        setenv("HV_FAKE_CLH_MODE", "die-on-create", 1);
        struct hv_config c = clh_config();
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        assert_true(start_vm(vm, &err) < 0);
        unsetenv("HV_FAKE_CLH_MODE");
        hv_vm_free(vm);
        assert_run_dir_empty();
}

/* Only none and tdx render; TDX sets platform.tdx and the firmware (golden files too). */
static void test_vmconfig_refusals(void **state)
{
        struct hv_config c = clh_config();
        struct hv_clh_plan plan = {.cfg = &c, .console_log = "/c"};
        json_object *o = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        enum hv_tee no[] = {HV_TEE_SEV, HV_TEE_SEV_ES, HV_TEE_SEV_SNP};
        for (int i = 0; i < 3; i++) {
                c.tee.kind = no[i];
                assert_int_equal(hv_clh_vmconfig(&plan, &o, &err), -EOPNOTSUPP);
                assert_null(o);
        }
        c.tee.kind = HV_TEE_TDX;
        assert_int_equal(hv_clh_vmconfig(&plan, &o, &err), -EINVAL);
        c.tee.kind = HV_TEE_NONE;
        c.channel = HV_CHANNEL_SERIAL;
        assert_int_equal(hv_clh_vmconfig(&plan, &o, &err), -EOPNOTSUPP);
}

static void test_host_check(void **state)
{
        struct hv_config c = clh_config();
        c.vmm_path = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_true(hv_check(&c, &err) < 0);
        printf("# %s\n", cc_error_message(err));
        assert_non_null(strstr(cc_error_message(err), "cloud-hypervisor"));
}

static void test_parse_response(void **state)
{
        int status;
        size_t off, len;
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_int_equal(hv_clh_parse_response(ok, strlen(ok), &status, &off, &len), 0);
        assert_int_equal(status, 200);
        assert_int_equal(len, 2);
        assert_memory_equal(ok + off, "{}", 2);
        const char *nc = "HTTP/1.1 204 No Content\r\n\r\n";
        assert_int_equal(hv_clh_parse_response(nc, strlen(nc), &status, &off, &len), 0);
        assert_int_equal(status, 204);
        assert_int_equal(len, 0);
        assert_int_equal(hv_clh_parse_response(ok, 20, &status, &off, &len), -EAGAIN);
        assert_int_equal(hv_clh_parse_response(ok, strlen(ok) - 1, &status, &off, &len), -EAGAIN);
        const char *bad[] = {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(hv_clh_parse_response(bad[i], strlen(bad[i]), &status, &off, &len),
                                 -EBADMSG);
        const char *noclen = "HTTP/1.1 500 Internal\r\n\r\nboom";
        assert_int_equal(hv_clh_parse_response(noclen, strlen(noclen), &status, &off, &len),
                         -ENODATA);
}

int main(int argc, char **argv)
{
        if (argc > 1 && strcmp(argv[1], "--api-socket") == 0)
                return fake_clh(argc, argv);
        assert_non_null(mkdtemp(run_dir));
        snprintf(log_path, sizeof(log_path), "%s.log", run_dir);
        setenv("HV_FAKE_CLH_LOG", log_path, 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_response), cmocka_unit_test(test_vmconfig_refusals),
                cmocka_unit_test(test_host_check),     cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_nets),           cmocka_unit_test(test_disk_hotplug),
                cmocka_unit_test(test_kill9),          cmocka_unit_test(test_vmm_dies_during_start),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        unlink(log_path);
        rmdir(run_dir);
        return r;
}
