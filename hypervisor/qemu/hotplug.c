/*
 * Disk hot-plug over QMP into the PCIe root ports the command line pre-allocated.
 *
 * Add: blockdev-add (a raw node over host_device for a block device, over file for a regular
 * file), then device_add virtio-blk-pci into a free root port. Remove: device_del, then wait
 * for DEVICE_DELETED (QEMU emits it once the guest has acknowledged the unplug; a guest that
 * never does keeps the device), then blockdev-del, after which QEMU no longer holds the file
 * open. The slot table is the truth about what is attached; it is kept in step with QEMU even
 * when a step fails half-way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/qemu/qemu.h"

/* The grace for the clean-up command after a failed device_add. */
#define CLEANUP_TIMEOUT_MS 2000

static char *prefixed(const char *prefix, const char *serial)
{
        char *s = NULL;
        return asprintf(&s, "%s%s", prefix, serial) < 0 ? NULL : s;
}

static void add_string(json_object *o, const char *key, const char *value)
{
        json_object_object_add(o, key, json_object_new_string(value));
}

json_object *hv_qemu_name_args(const char *key, const char *prefix, const char *serial)
{
        _cleanup_free_ char *name = prefixed(prefix, serial);
        json_object *o = name ? json_object_new_object() : NULL;
        if (o)
                add_string(o, key, name);
        return o;
}

/*
 * A raw format node over the protocol node, both read-only when asked. A block device is
 * opened with O_DIRECT (cache.direct): the host's page cache would only duplicate the guest's.
 * A regular file keeps the page cache, because the file may live on tmpfs, which refuses
 * O_DIRECT.
 */
json_object *hv_qemu_blockdev_add_args(const struct hv_disk *disk, bool host_device)
{
        _cleanup_free_ char *node = prefixed(HV_QEMU_NODE_PREFIX, disk->serial);
        json_object *file = json_object_new_object();
        json_object *cache = json_object_new_object();
        json_object *o = json_object_new_object();
        if (!node || !file || !cache || !o) {
                json_object_put(file);
                json_object_put(cache);
                json_object_put(o);
                return NULL;
        }
        add_string(file, "driver", host_device ? "host_device" : "file");
        add_string(file, "filename", disk->path);
        json_object_object_add(cache, "direct", json_object_new_boolean(host_device));
        json_object_object_add(file, "cache", cache);
        json_object_object_add(file, "read-only", json_object_new_boolean(disk->readonly));
        add_string(o, "driver", "raw");
        add_string(o, "node-name", node);
        json_object_object_add(o, "read-only", json_object_new_boolean(disk->readonly));
        json_object_object_add(o, "file", file);
        return o;
}

json_object *hv_qemu_device_add_args(const char *serial, unsigned slot)
{
        _cleanup_free_ char *node = prefixed(HV_QEMU_NODE_PREFIX, serial);
        _cleanup_free_ char *id = prefixed(HV_QEMU_DEV_PREFIX, serial);
        char bus[16];
        snprintf(bus, sizeof(bus), HV_QEMU_ROOT_PORT "%u", slot);
        json_object *o = node && id ? json_object_new_object() : NULL;
        if (!o)
                return NULL;
        add_string(o, "driver", "virtio-blk-pci");
        add_string(o, "id", id);
        add_string(o, "drive", node);
        add_string(o, "serial", serial);
        add_string(o, "bus", bus);
        return o;
}

/* DEVICE_DELETED {"device": id, "path": ...} for one of our disks marks its slot. QEMU also
 * sends one for the virtio backend child, without "device": ignored. */
static void on_event(void *data, const struct hv_qmp_msg *m)
{
        struct hv_qemu_hotplug *h = data;
        json_object *dev;
        if (strcmp(m->event, "DEVICE_DELETED") != 0 || !m->value ||
            !json_object_object_get_ex(m->value, "device", &dev) ||
            !json_object_is_type(dev, json_type_string))
                return;
        const char *id = json_object_get_string(dev);
        if (strncmp(id, HV_QEMU_DEV_PREFIX, strlen(HV_QEMU_DEV_PREFIX)) != 0)
                return;
        id += strlen(HV_QEMU_DEV_PREFIX);
        for (unsigned i = 0; i < h->n_slots; i++)
                if (h->slots[i].used && strcmp(h->slots[i].serial, id) == 0)
                        h->slots[i].deleted = true;
}

int hv_qemu_hotplug_init(struct hv_qemu_hotplug *h, struct hv_qmp *q, unsigned n_slots,
                         struct cc_error **err)
{
        hv_qemu_hotplug_done(h);
        if (n_slots) {
                h->slots = calloc(n_slots, sizeof(*h->slots));
                if (!h->slots)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        h->n_slots = n_slots;
        h->qmp = q;
        q->on_event = on_event;
        q->event_data = h;
        return 0;
}

void hv_qemu_hotplug_done(struct hv_qemu_hotplug *h)
{
        if (h->qmp) {
                h->qmp->on_event = NULL;
                h->qmp->event_data = NULL;
        }
        free(h->slots);
        *h = (struct hv_qemu_hotplug){0};
}

static struct hv_qemu_slot *find_slot(struct hv_qemu_hotplug *h, const char *serial)
{
        for (unsigned i = 0; i < h->n_slots; i++)
                if (h->slots[i].used && strcmp(h->slots[i].serial, serial) == 0)
                        return &h->slots[i];
        return NULL;
}

/* Runs `cmd` with `args` (consumed; NULL = out of memory). */
static int run(struct hv_qemu_hotplug *h, const char *cmd, json_object *args, int timeout_ms,
               struct cc_error **err)
{
        if (!args)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = hv_qmp_execute(h->qmp, cmd, args, timeout_ms, NULL, err);
        json_object_put(args);
        return r;
}

int hv_qemu_disk_add(struct hv_qemu_hotplug *h, const struct hv_disk *disk, int timeout_ms,
                     struct cc_error **err)
{
        int64_t deadline = hv__deadline(timeout_ms);
        int kind = hv__disk_kind(disk->path, err);
        if (kind < 0)
                return kind;
        if (find_slot(h, disk->serial))
                return cc_error_set(err, EEXIST, "a disk with serial '%s' is attached already",
                                    disk->serial);
        unsigned slot = 0;
        while (slot < h->n_slots && h->slots[slot].used)
                slot++;
        if (slot == h->n_slots)
                return cc_error_set(err, ENOSPC,
                                    h->n_slots ? "no free hot-plug slot for disk '%s' (all %u "
                                                 "root ports are in use)"
                                               : "no hot-plug slot for disk '%s': the VM was "
                                                 "started with hotplug_slots = %u",
                                    disk->serial, h->n_slots);
        int r = run(h, "blockdev-add", hv_qemu_blockdev_add_args(disk, kind == 1),
                    hv__remaining(deadline), err);
        if (r < 0)
                return cc_error_wrap(err, -r, "disk '%s' (%s)", disk->serial, disk->path);
        r = run(h, "device_add", hv_qemu_device_add_args(disk->serial, slot),
                hv__remaining(deadline), err);
        if (r < 0) {
                /* Take the node away again so that nothing stays attached. When that fails too
                 * (the device may have arrived after all), the slot stays taken, so that
                 * hv_vm_disk_remove() can still detach it. */
                _cleanup_error_ struct cc_error *del_err = NULL;
                if (run(h, "blockdev-del",
                        hv_qemu_name_args("node-name", HV_QEMU_NODE_PREFIX, disk->serial),
                        CLEANUP_TIMEOUT_MS, &del_err) < 0) {
                        h->slots[slot] = (struct hv_qemu_slot){.used = true};
                        snprintf(h->slots[slot].serial, sizeof(h->slots[slot].serial), "%s",
                                 disk->serial);
                        return cc_error_wrap(err, -r,
                                             "disk '%s' (%s), and it may stay attached (%s)",
                                             disk->serial, disk->path, cc_error_message(del_err));
                }
                return cc_error_wrap(err, -r, "disk '%s' (%s)", disk->serial, disk->path);
        }
        h->slots[slot] = (struct hv_qemu_slot){.used = true};
        snprintf(h->slots[slot].serial, sizeof(h->slots[slot].serial), "%s", disk->serial);
        cc_log_debug("hv: disk '%s' (%s) in root port " HV_QEMU_ROOT_PORT "%u", disk->serial,
                     disk->path, slot);
        return 0;
}

static bool slot_deleted(void *data)
{
        return ((struct hv_qemu_slot *)data)->deleted;
}

int hv_qemu_disk_remove(struct hv_qemu_hotplug *h, const char *serial, int timeout_ms,
                        struct cc_error **err)
{
        int64_t deadline = hv__deadline(timeout_ms);
        struct hv_qemu_slot *s = find_slot(h, serial);
        if (!s)
                return cc_error_set(err, ENOENT, "no disk with serial '%s' was hot-plugged",
                                    serial);
        int r;
        if (!s->deleted) {
                /* A second request while the guest has not answered the first is refused by
                 * QEMU ("already in the process of unplug"): keep waiting then. */
                _cleanup_error_ struct cc_error *del_err = NULL;
                r = run(h, "device_del", hv_qemu_name_args("id", HV_QEMU_DEV_PREFIX, serial),
                        hv__remaining(deadline), &del_err);
                if (r < 0 && !strstr(cc_error_message(del_err), "in the process of unplug"))
                        return cc_error_set(err, -r, "disk '%s': %s", serial,
                                            cc_error_message(del_err));
                r = hv_qmp_wait(h->qmp, slot_deleted, s, hv__remaining(deadline), err);
                if (r == -ETIMEDOUT)
                        return cc_error_set(err, ETIMEDOUT,
                                            "disk '%s': the guest did not release the device "
                                            "within %d ms (no DEVICE_DELETED); it stays attached "
                                            "and a later remove can retry",
                                            serial, timeout_ms);
                if (r < 0)
                        return cc_error_wrap(err, -r, "disk '%s': waiting for DEVICE_DELETED",
                                             serial);
        }
        r = run(h, "blockdev-del", hv_qemu_name_args("node-name", HV_QEMU_NODE_PREFIX, serial),
                hv__remaining(deadline), err);
        if (r < 0)
                return cc_error_wrap(err, -r,
                                     "disk '%s': the device is gone but its block node "
                                     "is not",
                                     serial);
        *s = (struct hv_qemu_slot){0};
        cc_log_debug("hv: disk '%s' removed", serial);
        return 0;
}
