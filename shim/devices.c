/*
 * A container's devices in the pod's VM.
 *
 * Only block devices cross: an OCI linux.devices entry of type "b" (a CRI container's devices,
 * a pod's volumeDevices such as a PVC of volumeMode Block; containerd's CRI lists them with the
 * host's major:minor) is found on the host by that number (/sys/dev/block/M:m/uevent's DEVNAME,
 * checked against the node's st_rdev), hot-plugged into the VM as virtio-blk with a serial of
 * its own, and named to the agent as a Kata "blk" Device whose id is that serial; the agent
 * finds the disk by it and rewrites the spec's entry to the guest's numbers. The device is
 * read-only in the VM when the spec's device cgroup rules leave it without 'w' (CRI's
 * permissions "r"). The container path /dev/trusted_store makes the disk the pod's encrypted
 * trusted storage (the agent formats it; the container does not get it).
 *
 * Host character devices never reach the guest: a VM has its own, and a host node's numbers
 * mean something else there. The ones every guest has anyway (null, zero, full, random,
 * urandom, tty, console, ptmx) are left to the guest; any other fails Create with one message
 * naming them, which is what a privileged container's "all host devices" meets: Kata asks for
 * containerd's privileged_without_host_devices = true, and so does the message.
 *
 * A host disk that two containers of the pod name is attached once and counted; it leaves the
 * VM with the last container that named it (the trusted store excepted: the pod's layers are on
 * it, so it stays until the VM stops), and every disk leaves with the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "shim/task-internal.h"

#define DISK_ADD_TIMEOUT_MS    30000
/* A native PCIe hot-unplug waits for the guest's attention-button delay (5 s) first. */
#define DISK_REMOVE_TIMEOUT_MS 30000

static struct json_object *member(struct json_object *o, const char *key, enum json_type type)
{
        struct json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* An integer member, or -1. */
static int64_t int_or(struct json_object *o, const char *key)
{
        struct json_object *v = member(o, key, json_type_int);
        return v ? json_object_get_int64(v) : -1;
}

void shim_blockdevs_free(struct shim_blockdev *d, size_t n)
{
        for (size_t i = 0; d && i < n; i++) {
                free(d[i].host_path);
                free(d[i].container_path);
        }
        free(d);
}

int shim_blockdev_host_path(const char *sys_root, const char *dev_root, unsigned ma, unsigned mi,
                            char **ret, struct cc_error **err)
{
        *ret = NULL;
        _cleanup_free_ char *uevent = NULL, *text = NULL, *path = NULL;
        if (asprintf(&uevent, "%s/dev/block/%u:%u/uevent", sys_root, ma, mi) < 0)
                return -ENOMEM;
        size_t len = 0;
        int r = cc_read_file(uevent, 64 * 1024, &text, &len, NULL);
        if (r < 0)
                return cc_error_set(err, -r, "block device %u:%u is not on this host (%s: %s)", ma,
                                    mi, uevent, strerror(-r));
        const char *name = NULL;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && !name;
             line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, "DEVNAME=", 8) == 0)
                        name = line + 8;
        if (cc_isempty(name) || strstr(name, "..") || name[0] == '/')
                return cc_error_set(err, ENODEV, "block device %u:%u: %s names no device node", ma,
                                    mi, uevent);
        if (asprintf(&path, "%s/%s", dev_root, name) < 0)
                return -ENOMEM;
        struct stat st;
        if (stat(path, &st) < 0)
                return cc_error_set(err, errno, "block device %u:%u: %s: %m", ma, mi, path);
        if (!S_ISBLK(st.st_mode) || major(st.st_rdev) != ma || minor(st.st_rdev) != mi)
                return cc_error_set(err, ENODEV,
                                    "block device %u:%u: %s is not that device (%u:%u)", ma, mi,
                                    path, major(st.st_rdev), minor(st.st_rdev));
        *ret = TAKE_PTR(path);
        return 0;
}

/* Whether the device cgroup rules let the container write to block device M:m: the last rule
 * that matches it and names 'w' decides (OCI's order); no such rule: writable. */
static bool rules_allow_write(struct json_object *rules, unsigned major, unsigned minor)
{
        bool w = true;
        size_t n = rules ? json_object_array_length(rules) : 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *rule = json_object_array_get_idx(rules, i), *v;
                const char *type = (v = member(rule, "type", json_type_string))
                                           ? json_object_get_string(v)
                                           : "a";
                const char *access = (v = member(rule, "access", json_type_string))
                                             ? json_object_get_string(v)
                                             : "rwm";
                struct json_object *ma = member(rule, "major", json_type_int);
                struct json_object *mi = member(rule, "minor", json_type_int);
                bool match = (strcmp(type, "a") == 0 || strcmp(type, "b") == 0) &&
                             (!ma || json_object_get_int64(ma) == (int64_t)major) &&
                             (!mi || json_object_get_int64(mi) == (int64_t)minor);
                if (match && strchr(access, 'w'))
                        w = (v = member(rule, "allow", json_type_boolean)) &&
                            json_object_get_boolean(v);
        }
        return w;
}

/* The character devices every guest has itself, with the same numbers (devices.txt). */
static bool guest_has_char(int64_t major, int64_t minor)
{
        static const int std[][2] = {{1, 3}, {1, 5}, {1, 7}, {1, 8},
                                     {1, 9}, {5, 0}, {5, 1}, {5, 2}};
        for (size_t i = 0; i < CC_ARRAY_SIZE(std); i++)
                if (major == std[i][0] && minor == std[i][1])
                        return true;
        return false;
}

/* One refusal naming the host character devices (at most four, then a count). */
static int refuse_char(const char *cid, struct json_object *devs, size_t n_refused,
                       struct cc_error **err)
{
        char names[512] = "";
        size_t named = 0, len = 0;
        for (size_t i = 0; i < json_object_array_length(devs) && named < 4; i++) {
                struct json_object *d = json_object_array_get_idx(devs, i), *v;
                const char *type =
                        (v = member(d, "type", json_type_string)) ? json_object_get_string(v) : "";
                const char *path =
                        (v = member(d, "path", json_type_string)) ? json_object_get_string(v) : "?";
                int64_t ma = int_or(d, "major"), mi = int_or(d, "minor");
                if (strcmp(type, "b") == 0 || strcmp(type, "p") == 0 || guest_has_char(ma, mi))
                        continue;
                int k = snprintf(names + len, sizeof(names) - len, "%s%.100s (%s %lld:%lld)",
                                 named ? ", " : "", path, type, (long long)ma, (long long)mi);
                if (k > 0 && (size_t)k < sizeof(names) - len)
                        len += (size_t)k;
                named++;
        }
        return cc_error_set_code(
                err, CC_GRPC_INVALID_ARGUMENT,
                "container %s: %zu host character device%s (%s%s) cannot be passed into the "
                "pod's VM: only block devices are; for a privileged container set "
                "privileged_without_host_devices = true in containerd's runtime entry for this "
                "handler, as Kata requires",
                cid, n_refused, n_refused == 1 ? "" : "s", names, n_refused > named ? ", ..." : "");
}

/* One "b" entry: its host node and whether the container may write to it. */
static int blockdev_of(struct json_object *d, struct json_object *rules, const char *cid,
                       const char *sys_root, const char *dev_root, struct shim_blockdev *out,
                       struct cc_error **err)
{
        struct json_object *p = member(d, "path", json_type_string);
        struct json_object *ma = member(d, "major", json_type_int);
        struct json_object *mi = member(d, "minor", json_type_int);
        if (!p || !ma || !mi || json_object_get_int64(ma) < 0 || json_object_get_int64(ma) > 4095 ||
            json_object_get_int64(mi) < 0 || json_object_get_int64(mi) > 1048575)
                return cc_error_set(err, EINVAL,
                                    "container %s: linux.devices: a block device needs a path "
                                    "and a valid major and minor",
                                    cid);
        out->major = (unsigned)json_object_get_int64(ma);
        out->minor = (unsigned)json_object_get_int64(mi);
        const char *path = json_object_get_string(p);
        if (path[0] != '/' || strlen(path) > 4096)
                return cc_error_set(err, EINVAL,
                                    "container %s: linux.devices: '%.100s' is not an absolute path",
                                    cid, path);
        if (!(out->container_path = strdup(path)))
                return -ENOMEM;
        out->readonly = !rules_allow_write(rules, out->major, out->minor);
        if (out->readonly && strcmp(path, SHIM_TRUSTED_STORE_PATH) == 0)
                return cc_error_set(err, EINVAL,
                                    "container %s: %s must be writable (the guest formats it)", cid,
                                    SHIM_TRUSTED_STORE_PATH);
        int r = shim_blockdev_host_path(sys_root, dev_root, out->major, out->minor, &out->host_path,
                                        err);
        if (r < 0)
                return cc_error_wrap(err, -r, "container %s: device %s", cid, path);
        return 0;
}

int shim_blockdevs_from_spec(struct json_object *spec, const char *cid, const char *sys_root,
                             const char *dev_root, struct shim_blockdev **ret, size_t *ret_n,
                             struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        struct json_object *linux_ = member(spec, "linux", json_type_object);
        struct json_object *devs = member(linux_, "devices", json_type_array);
        struct json_object *rules =
                member(member(linux_, "resources", json_type_object), "devices", json_type_array);
        size_t n = devs ? json_object_array_length(devs) : 0, n_blk = 0, n_refused = 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *d = json_object_array_get_idx(devs, i), *v;
                const char *type =
                        (v = member(d, "type", json_type_string)) ? json_object_get_string(v) : "";
                if (strcmp(type, "b") == 0)
                        n_blk++;
                else if (strcmp(type, "p") != 0 &&
                         !guest_has_char(int_or(d, "major"), int_or(d, "minor")))
                        n_refused++;
        }
        /* Refused before anything is attached: a privileged container's host disks never
         * reach the VM because its character devices came with them. */
        if (n_refused)
                return refuse_char(cid, devs, n_refused, err);
        if (n_blk > SHIM_HOTPLUG_SLOTS_MAX)
                return cc_error_set(err, E2BIG, "container %s: %zu block devices (at most %d)", cid,
                                    n_blk, SHIM_HOTPLUG_SLOTS_MAX);
        if (!n_blk)
                return 0;
        struct shim_blockdev *out = calloc(n_blk, sizeof(*out));
        if (!out)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *d = json_object_array_get_idx(devs, i);
                struct json_object *t = member(d, "type", json_type_string);
                if (!t || strcmp(json_object_get_string(t), "b") != 0)
                        continue;
                int r = blockdev_of(d, rules, cid, sys_root, dev_root, &out[k++], err);
                if (r < 0) {
                        shim_blockdevs_free(out, k);
                        return r;
                }
        }
        *ret = out;
        *ret_n = k;
        return 0;
}

/* ---- the pod's disks ------------------------------------------------------------------- */

void shim__devices_free(Grpc__Device **d, size_t n)
{
        for (size_t i = 0; d && i < n; i++)
                if (d[i])
                        protobuf_c_message_free_unpacked(&d[i]->base, NULL);
        free(d);
}

static Grpc__Device *device_msg(const char *serial, const char *container_path)
{
        Grpc__Device *d = malloc(sizeof(*d));
        if (!d)
                return NULL;
        grpc__device__init(d);
        /* protobuf-c's empty strings for the unset ones, so that free_unpacked skips them. */
        d->id = strdup(serial);
        d->type = strdup("blk");
        d->container_path = strdup(container_path);
        if (!d->id || !d->type || !d->container_path) {
                protobuf_c_message_free_unpacked(&d->base, NULL);
                return NULL;
        }
        return d;
}

static struct shim_pod_disk *disk_find(struct shim_sandbox *sb, unsigned major, unsigned minor)
{
        for (size_t i = 0; i < sb->n_disks; i++)
                if (sb->disks[i].major == major && sb->disks[i].minor == minor)
                        return &sb->disks[i];
        return NULL;
}

/* The pod's disk for host device bd (vm_lock held): the one attached already (counted once
 * more), or a new one hot-plugged with the next serial. */
static int disk_get(struct shim *s, const char *cid, const struct shim_blockdev *bd,
                    char serial[SHIM_DISK_SERIAL_MAX + 1], struct cc_error **err)
{
        struct shim_sandbox *sb = s->sb;
        struct shim_pod_disk *pd = disk_find(sb, bd->major, bd->minor);
        if (pd && pd->readonly != bd->readonly)
                return cc_error_set(err, EBUSY,
                                    "container %s: device %s (%s) is attached to the pod %s "
                                    "already; it cannot be %s for this container",
                                    cid, bd->container_path, bd->host_path,
                                    pd->readonly ? "read-only" : "read-write",
                                    bd->readonly ? "read-only" : "read-write");
        if (pd) {
                pd->refs++;
                memcpy(serial, pd->serial, sizeof(pd->serial));
                return 0;
        }
        struct shim_pod_disk *nd = realloc(sb->disks, (sb->n_disks + 1) * sizeof(*nd));
        if (!nd)
                return -ENOMEM;
        sb->disks = nd;
        pd = &sb->disks[sb->n_disks];
        *pd = (struct shim_pod_disk){
                .major = bd->major,
                .minor = bd->minor,
                .readonly = bd->readonly,
                .pod_lifetime = strcmp(bd->container_path, SHIM_TRUSTED_STORE_PATH) == 0,
                .refs = 1};
        snprintf(pd->serial, sizeof(pd->serial), "cc-blk-%u", ++sb->disk_seq);
        struct hv_disk hd = {.path = bd->host_path, .readonly = bd->readonly, .serial = pd->serial};
        int r = hv_vm_disk_add(sb->vm, &hd, DISK_ADD_TIMEOUT_MS, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "container %s: hot-plug %s for %s", cid,
                                     bd->host_path, bd->container_path);
        sb->n_disks++;
        memcpy(serial, pd->serial, sizeof(pd->serial));
        cc_log_info("container %s: %s (%u:%u) attached as %s%s for %s", cid, bd->host_path,
                    bd->major, bd->minor, pd->serial, bd->readonly ? " read-only" : "",
                    bd->container_path);
        return 0;
}

/* Drops one reference to the pod disk `serial` (vm_lock held); the last one unplugs it. The
 * trusted store stays (pod_lifetime) unless the Create that attached it failed. */
static void disk_put(struct shim *s, const char *cid, const char *serial, bool create_failed)
{
        struct shim_sandbox *sb = s->sb;
        size_t i = 0;
        while (i < sb->n_disks && strcmp(sb->disks[i].serial, serial) != 0)
                i++;
        if (i == sb->n_disks || --sb->disks[i].refs > 0 ||
            (sb->disks[i].pod_lifetime && !create_failed))
                return;
        /* A VM that is gone released its disks with the VMM. */
        _cleanup_error_ struct cc_error *e = NULL;
        if (!sb->vm_dead && hv_vm_disk_remove(sb->vm, serial, DISK_REMOVE_TIMEOUT_MS, &e) < 0)
                cc_log_warn("container %s: detach disk %s: %s", cid, serial, cc_error_message(e));
        else
                cc_log_info("container %s: disk %s detached", cid, serial);
        sb->disks[i] = sb->disks[--sb->n_disks];
}

void shim__devices_detach(struct shim *s, struct task *t, bool create_failed)
{
        if (!t->n_disks)
                return;
        pthread_mutex_lock(&s->vm_lock);
        for (size_t i = 0; s->sb && i < t->n_disks; i++)
                disk_put(s, t->id, t->disks[i], create_failed);
        pthread_mutex_unlock(&s->vm_lock);
        for (size_t i = 0; i < t->n_disks; i++)
                free(t->disks[i]);
        free(t->disks);
        t->disks = NULL;
        t->n_disks = 0;
}

int shim__devices_attach(struct shim *s, struct task *t, struct json_object *spec,
                         Grpc__Device ***ret, size_t *ret_n, struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        struct shim_blockdev *bds = NULL;
        size_t n = 0;
        int r = shim_blockdevs_from_spec(spec, t->id, "/sys", "/dev", &bds, &n, err);
        if (r < 0 || !n)
                return r;
        Grpc__Device **devs = calloc(n, sizeof(*devs));
        if (!(t->disks = calloc(n, sizeof(*t->disks))) || !devs) {
                free(devs);
                shim_blockdevs_free(bds, n);
                return -ENOMEM;
        }
        size_t k = 0;
        for (; r >= 0 && k < n; k++) {
                char serial[SHIM_DISK_SERIAL_MAX + 1];
                pthread_mutex_lock(&s->vm_lock);
                r = disk_get(s, t->id, &bds[k], serial, err);
                /* The reference belongs to t from here on, or goes back at once. */
                if (r >= 0 && !(t->disks[t->n_disks] = strdup(serial))) {
                        disk_put(s, t->id, serial, true);
                        r = -ENOMEM;
                }
                pthread_mutex_unlock(&s->vm_lock);
                if (r < 0)
                        break;
                t->n_disks++;
                if (!(devs[k] = device_msg(serial, bds[k].container_path)))
                        r = -ENOMEM;
        }
        shim_blockdevs_free(bds, n);
        if (r < 0) {
                /* What this Create attached leaves again. */
                shim__devices_free(devs, n);
                shim__devices_detach(s, t, true);
                return r;
        }
        *ret = devs;
        *ret_n = n;
        return 0;
}
