/*
 * CreateContainer's Devices: block disks the shim hot-plugged into the VM just before, given
 * to the container at a path of its spec (issue 15).
 *
 * The contract with the shim (shim/ implements the host side): each Device is type "blk", its
 * id the disk's virtio serial (1-20 of [A-Za-z0-9._-]), vm_path empty (the guest finds the disk
 * by its serial in /sys/block/<dev>/serial, never by /dev/vdX order or a PCI path the host
 * names), container_path the path of one linux.devices entry of the spec, options empty. That
 * entry and the linux.resources.devices rules carry the HOST's major/minor, which mean nothing
 * in the guest: they are rewritten to the guest disk's numbers, and the container gets the
 * guest's node bind-mounted at the path (runtime/mount.c). The container path
 * AGENT_TRUSTED_STORE_PATH is not given to the container: that disk becomes the pod's trusted
 * storage (trusted-storage.c). Everything is checked before anything is done, so a refused
 * request leaves nothing behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/runtime/spec.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"

/* A Device of a bounded request: more than this many disks in one container is refused. */
#define MAX_DEVICES 64

static const Grpc__LinuxDevice *spec_entry(const Grpc__Linux *l, const char *path)
{
        for (size_t i = 0; l && i < l->n_devices; i++)
                if (l->devices[i] && cc_streq(l->devices[i]->path, path))
                        return l->devices[i];
        return NULL;
}

static int check_one(Grpc__Device *const *devs, size_t i, const Grpc__Linux *l,
                     struct cc_error **err)
{
        const Grpc__Device *d = devs[i];
        if (!d)
                return cc_error_set(err, EINVAL, "device %zu is missing", i);
        const char *id = d->id ? d->id : "";
        if (!cc_streq(d->type, "blk"))
                return cc_error_set(err, EINVAL,
                                    "device '%.32s': type '%.32s' is not supported (only "
                                    "\"blk\")",
                                    id, d->type ? d->type : "");
        if (!agent_serial_valid(id))
                return cc_error_set(err, EINVAL,
                                    "device id '%.32s' is not a disk serial (1-20 of "
                                    "[A-Za-z0-9._-])",
                                    id);
        int r = agent_validate_abs_path(d->container_path, "device container_path", err);
        if (r < 0)
                return r;
        bool store = cc_streq(d->container_path, AGENT_TRUSTED_STORE_PATH);
        for (size_t k = 0; k < d->n_options; k++)
                if (!store || !cc_streq(d->options[k], "integrity"))
                        return cc_error_set(err, EINVAL,
                                            "device %s: option '%.32s' is not supported (only "
                                            "\"integrity\" on %s)",
                                            id, d->options[k] ? d->options[k] : "",
                                            AGENT_TRUSTED_STORE_PATH);
        for (size_t k = 0; k < i; k++) {
                if (cc_streq(devs[k]->id, id))
                        return cc_error_set(err, EINVAL, "device %s is given twice", id);
                if (cc_streq(devs[k]->container_path, d->container_path))
                        return cc_error_set(err, EINVAL,
                                            store ? "a second %s" : "two devices at %s",
                                            d->container_path);
        }
        const Grpc__LinuxDevice *e = spec_entry(l, d->container_path);
        if (!e)
                return cc_error_set(err, EINVAL,
                                    "device %s: the spec has no linux.devices entry at %s", id,
                                    d->container_path);
        if (!cc_streq(e->type, "b"))
                return cc_error_set(err, EINVAL,
                                    "device %s: the spec's entry at %s is not a block device "
                                    "(type '%.8s')",
                                    id, d->container_path, e->type ? e->type : "");
        return 0;
}

int agent_devices_check(Grpc__Device *const *devs, size_t n, const Grpc__Linux *l,
                        struct cc_error **err)
{
        if (n > MAX_DEVICES)
                return cc_error_set(err, EINVAL, "more than %d devices", MAX_DEVICES);
        for (size_t i = 0; i < n; i++) {
                int r = check_one(devs, i, l, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

unsigned agent_devices_rewrite(Grpc__Linux *l, const char *path, int64_t major, int64_t minor)
{
        Grpc__LinuxDevice *e = (Grpc__LinuxDevice *)spec_entry(l, path);
        if (!e)
                return 0;
        int64_t host_major = e->major, host_minor = e->minor;
        e->major = major;
        e->minor = minor;
        unsigned n = 1;
        Grpc__LinuxResources *res = l->resources;
        for (size_t i = 0; res && i < res->n_devices; i++) {
                Grpc__LinuxDeviceCgroup *c = res->devices[i];
                /* The rule naming this very device (a rule of all block devices, major or
                 * minor -1, names no host number and stays). */
                if (c && cc_streq(c->type, "b") && c->major == host_major &&
                    c->minor == host_minor) {
                        c->major = major;
                        c->minor = minor;
                        n++;
                }
        }
        return n;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The disk's name in sys_block and its numbers (<sys_block>/<name>/dev, "MAJ:MIN"), waiting up
 * to wait_ms for it to appear (the shim hot-plugs it just before CreateContainer). */
int agent_block_wait(const char *sys_block, const char *serial, unsigned wait_ms,
                     struct agent_block *ret, struct cc_error **err)
{
        int64_t t0 = now_ms();
        int r;
        while ((r = agent_block_by_serial(sys_block, serial, ret->name, sizeof(ret->name))) ==
                       -ENOENT &&
               now_ms() - t0 < wait_ms)
                poll(NULL, 0, 50);
        if (r < 0)
                return cc_error_set(err, -r,
                                    "no disk with serial '%s' in %s after %u ms (was it "
                                    "attached?)",
                                    serial, sys_block, wait_ms);
        char path[512], buf[32] = "";
        snprintf(path, sizeof(path), "%s/%s/dev", sys_block, ret->name);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned ma, mi;
        if (!f || !fgets(buf, sizeof(buf), f) || sscanf(buf, "%u:%u", &ma, &mi) != 2)
                return cc_error_set(err, EIO, "disk %s (serial %s): no device number in %s",
                                    ret->name, serial, path);
        ret->major = ma;
        ret->minor = mi;
        snprintf(path, sizeof(path), "%s/%s/ro", sys_block, ret->name);
        _cleanup_fclose_ FILE *ro = fopen(path, "re");
        ret->readonly = ro && fgetc(ro) == '1';
        snprintf(path, sizeof(path), "%s/%s/holders", sys_block, ret->name);
        _cleanup_closedir_ DIR *h = opendir(path);
        ret->held = false;
        for (struct dirent *de; h && !ret->held && (de = readdir(h));)
                ret->held = de->d_name[0] != '.';
        return 0;
}

/* The guest's node of the disk must be the one sysfs names (devtmpfs makes it). */
static int guest_node(const struct agent_block *b, char *node, size_t len, struct cc_error **err)
{
        snprintf(node, len, "/dev/%s", b->name);
        struct stat st;
        if (stat(node, &st) < 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != b->major ||
            minor(st.st_rdev) != b->minor)
                return cc_error_set(err, ENODEV, "%s is not the block device %u:%u", node, b->major,
                                    b->minor);
        return 0;
}

static int spec_add_device(struct agent_spec *spec, const char *path, const char *node)
{
        struct agent_device *n = realloc(spec->devices, (spec->n_devices + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        spec->devices = n;
        struct agent_device *d = &n[spec->n_devices];
        *d = (struct agent_device){.path = strdup(path), .source = strdup(node)};
        if (!d->path || !d->source) {
                free(d->path);
                free(d->source);
                return -ENOMEM;
        }
        spec->n_devices++;
        return 0;
}

int agent_devices_add(struct agent *a, Grpc__CreateContainerRequest *req, struct agent_spec *spec,
                      struct cc_error **err)
{
        Grpc__Linux *l = req->oci ? req->oci->linux_ : NULL;
        int r = agent_devices_check(req->devices, req->n_devices, l, err);
        if (r < 0)
                return r;
        /* Every disk first: a missing one refuses the request before anything is changed. */
        _cleanup_free_ struct agent_block *b = calloc(req->n_devices, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_devices; i++)
                if ((r = agent_block_wait("/sys/block", req->devices[i]->id, AGENT_DEVICE_WAIT_MS,
                                          &b[i], err)) < 0)
                        return cc_error_wrap(err, -r, "device %s for %s", req->devices[i]->id,
                                             req->devices[i]->container_path);
                /* A disk under a mapping of the guest's (the pod's trusted storage, whose
                 * serial the host knows) is never a container's: its raw blocks would let one
                 * container write under every other's layers. The trusted store's own path may
                 * name it again (a restarted sidecar; trusted-storage.c decides). */
                else if (b[i].held &&
                         !cc_streq(req->devices[i]->container_path, AGENT_TRUSTED_STORE_PATH))
                        return cc_error_set(err, EBUSY,
                                            "device %s for %s: disk %s is in use by the guest "
                                            "(a mapping is on it)",
                                            req->devices[i]->id, req->devices[i]->container_path,
                                            b[i].name);
        const Grpc__Device *store = NULL;
        const struct agent_block *store_disk = NULL;
        for (size_t i = 0; i < req->n_devices; i++) {
                const Grpc__Device *d = req->devices[i];
                char node[300];
                if ((r = guest_node(&b[i], node, sizeof(node), err)) < 0)
                        return r;
                agent_devices_rewrite(l, d->container_path, b[i].major, b[i].minor);
                if (cc_streq(d->container_path, AGENT_TRUSTED_STORE_PATH)) {
                        store = d;
                        store_disk = &b[i];
                        continue;
                }
                if ((r = spec_add_device(spec, d->container_path, node)) < 0)
                        return r;
                cc_log_info("container %s: disk %s (serial %s, %u:%u%s) at %s", req->container_id,
                            node, d->id, b[i].major, b[i].minor, b[i].readonly ? ", read-only" : "",
                            d->container_path);
        }
        /* Last: the only step with an effect outside this request. */
        if (store)
                return agent_trusted_storage_attach(a, store_disk->name, store->n_options > 0, err);
        return 0;
}
