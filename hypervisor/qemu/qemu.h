#pragma once
/* QEMU backend internals: the pure argv builder and the QMP client. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/hv-internal.h"

/* Everything the argv depends on, decided before rendering (so rendering does no I/O). */
struct hv_qemu_plan {
        const struct hv_config *cfg; /* vcpus/memory defaults already applied */
        const char *console_log;
        enum hv_accel accel;     /* HV_ACCEL_KVM or HV_ACCEL_TCG */
        enum hv_channel channel; /* HV_CHANNEL_VSOCK or HV_CHANNEL_SERIAL */
        uint32_t cid;            /* vsock guest CID */
        unsigned cbitpos;        /* AMD C-bit position */
        int qmp_fd;              /* child fd number of the listening QMP socket */
        int vhost_fd;            /* child fd number of /dev/vhost-vsock, or -1 */
        int tap_fd_base;         /* child fd number of the first tap fd */
};

/* Files the QEMU backend keeps in the run directory. */
#define HV_QEMU_QMP_SOCK   "qmp.sock"
#define HV_QEMU_AGENT_SOCK "agent.sock"
#define HV_QEMU_PIDFILE    "qemu.pid"
#define HV_QEMU_LOG        "qemu.log"

/* The kernel parameters the library puts before the configured ones. */
#define HV_QEMU_BASE_PARAMS "console=ttyS0 " HV_GUEST_BASE_PARAMS

/* Renders the QEMU command line for plan into *ret (argv[0] is the VMM binary). */
int hv_qemu_argv(const struct hv_qemu_plan *plan, struct hv_argv *ret, struct cc_error **err);

/* QMP (QEMU Machine Protocol) over a connected unix socket, one command at a time. */
enum hv_qmp_kind {
        HV_QMP_GREETING,
        HV_QMP_RETURN,
        HV_QMP_ERROR,
        HV_QMP_EVENT,
};

struct hv_qmp_msg {
        enum hv_qmp_kind kind;
        json_object *root;     /* owned */
        json_object *value;    /* RETURN: the "return" member; EVENT: "data" (may be NULL) */
        const char *id;        /* RETURN/ERROR: the echoed "id", or NULL */
        const char *event;     /* EVENT: its name */
        const char *err_class; /* ERROR */
        const char *err_desc;  /* ERROR */
        unsigned version;      /* GREETING: major*10000+minor*100+micro */
};

/* Parses one QMP line (untrusted input: any bytes). -EBADMSG when it is not a QMP message. */
int hv_qmp_parse(const char *line, size_t len, struct hv_qmp_msg *ret);
void hv_qmp_msg_done(struct hv_qmp_msg *m);

#define HV_QMP_MAX_LINE (1u << 20)

struct hv_qmp {
        int fd;       /* connected socket, -1 when closed */
        int watch_fd; /* e.g. the VMM's pidfd: readable = give up with -ECHILD; -1 = none */
        char *buf;
        size_t len;
        size_t cap;
        unsigned version;
        unsigned next_id;
        bool shutdown_seen; /* a SHUTDOWN event arrived */
        char shutdown_reason[64];
        /* Called for every event read, whichever call reads it (events arrive between and
         * before replies: DEVICE_DELETED may come while another command runs). */
        void (*on_event)(void *data, const struct hv_qmp_msg *m);
        void *event_data;
};
#define HV_QMP_INIT                      \
        {                                \
                .fd = -1, .watch_fd = -1 \
        }

/* Reads the greeting and negotiates capabilities (qmp_capabilities). Takes ownership of fd. */
int hv_qmp_handshake(struct hv_qmp *q, int fd, int timeout_ms, struct cc_error **err);
/*
 * Runs `cmd` with `args` (borrowed, may be NULL) and waits for its reply, skipping (and
 * recording) events. *ret (may be NULL) receives a new reference to the "return" value.
 */
int hv_qmp_execute(struct hv_qmp *q, const char *cmd, json_object *args, int timeout_ms,
                   json_object **ret, struct cc_error **err);
/*
 * Reads (and hands to on_event) what QEMU sends until done(data) is true: 0; -ETIMEDOUT when
 * timeout_ms passes first (nothing in *err: the caller says what it waited for).
 */
int hv_qmp_wait(struct hv_qmp *q, bool (*done)(void *data), void *data, int timeout_ms,
                struct cc_error **err);
void hv_qmp_close(struct hv_qmp *q);

/* The version of a QEMU binary from `<path> --version` (cached per path); 0 when unknown. */
unsigned hv_qemu_binary_version(const char *path);

/*
 * Disk hot-plug (hypervisor/qemu/hotplug.c). The command line pre-allocates hotplug_slots
 * PCIe root ports "hp<N>"; a disk goes into a free one as virtio-blk-pci "hpblk-<serial>" on
 * the block node "hpd-<serial>" (QEMU ids start with a letter; a serial is checked to be
 * [A-Za-z0-9._-], so the prefixed names are valid ids).
 */
#define HV_QEMU_ROOT_PORT "hp"

struct hv_qemu_slot {
        bool used;
        bool deleted; /* DEVICE_DELETED arrived: only the block node remains */
        char serial[21];
};

struct hv_qemu_hotplug {
        struct hv_qmp *qmp;
        struct hv_qemu_slot *slots;
        unsigned n_slots;
};

/* Pure builders of the QMP arguments (unit-tested). `host_device`: a block device, else a
 * regular file. NULL when out of memory. */
json_object *hv_qemu_blockdev_add_args(const struct hv_disk *disk, bool host_device);
json_object *hv_qemu_device_add_args(const char *serial, unsigned slot);
/* {"<key>": "<prefix><serial>"}: device_del's {"id"} and blockdev-del's {"node-name"}. */
json_object *hv_qemu_name_args(const char *key, const char *prefix, const char *serial);
#define HV_QEMU_NODE_PREFIX "hpd-"
#define HV_QEMU_DEV_PREFIX  "hpblk-"

/* Attaches the slot table to a connected QMP client (its on_event). */
int hv_qemu_hotplug_init(struct hv_qemu_hotplug *h, struct hv_qmp *q, unsigned n_slots,
                         struct cc_error **err);
/* Forgets every slot (the VMM is gone and released them). */
void hv_qemu_hotplug_done(struct hv_qemu_hotplug *h);
int hv_qemu_disk_add(struct hv_qemu_hotplug *h, const struct hv_disk *disk, int timeout_ms,
                     struct cc_error **err);
int hv_qemu_disk_remove(struct hv_qemu_hotplug *h, const char *serial, int timeout_ms,
                        struct cc_error **err);
