#pragma once
/*
 * containerd-shim-kata-cc-v2: the shim v2 containerd starts for io.containerd.kata-cc.v2.
 *
 *   main.c      flags, `start`, `delete`, `-v`, `-info`, and the serve daemon's main loop
 *   address.c   socket naming (containerd's SocketAddress), path cleaning, run-dir naming
 *   config.c    Kata-style TOML configuration -> struct shim_config
 *   annotations.c  which pod annotations a configuration honours; the pod's configuration
 *               (config_path, hypervisor overrides) resolved under those rules
 *   spec.c      OCI config.json -> the agent's grpc.Spec; rootfs mount classification
 *   events.c    the events publisher (ttrpc Forward to $TTRPC_ADDRESS, queued, retried)
 *   agent.c     the agent client's unary call, the time spent in it, logfmt timing fields
 *   sandbox.c   the pod's VM (libhv), CopyFile
 *   devices.c   a container's block devices hot-plugged into the VM (host char devices refused)
 *   net.c       the pod network (libshimnet): taps + tc in the pod netns, the agent's view
 *   task.c      the containerd.task.v2.Task and containerd.task.v2.Image services (the ttrpc
 *               edge); container.c (Create), monitor.c (exit/VM/OOM threads), proc.c (each
 *               process's state machine): task-internal.h, proc-internal.h
 *   metrics.c   the agent's cgroup stats -> io.containerd.cgroups.v2.Metrics
 *   io.c        containerd's stdio FIFOs <-> the agent's ReadStdout/WriteStdin
 *
 * One daemon serves one pod (one VM); every task of the pod has its own connection.
 */

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cc/error.h"
#include "cc/ttrpc.h"

#include "hypervisor/hv.h"
#include "kata/oci.pb-c.h"
#include "shim/annotations.h"
#include "shim/network/shim-net.h"

#define SHIM_NAME       "containerd-shim-kata-cc-v2"
#define SHIM_VERSION    "0.1.0"
#define SHIM_SOCKET_DIR "/run/containerd/s"
#define SHIM_RUN_DIR    "/run/kata-cc-shim" /* VM run dirs; env CC_SHIM_RUN_DIR overrides */
#define SHIM_DEFAULT_CONFIG \
        "/opt/confidential-containers/share/defaults/kata-containers/configuration.toml"
/* Where the agent accepts container roots and CopyFile destinations (agent.h). */
#define SHIM_GUEST_CONTAINERS_DIR "/run/kata-containers/shared/containers"
/* Where the agent makes the pod's volumes: local/<name>, ephemeral/<name> (agent.h). */
#define SHIM_GUEST_SANDBOX_DIR    "/run/kata-containers/sandbox"

#define ANNO_CONTAINER_TYPE "io.kubernetes.cri.container-type"
#define ANNO_SANDBOX_ID     "io.kubernetes.cri.sandbox-id"
#define ANNO_IMAGE_NAME     "io.kubernetes.cri.image-name"
#define ANNO_CONFIG_PATH    SHIM_ANNO_CONFIG_PATH
#define ANNO_SANDBOX_MEMORY "io.kubernetes.cri.sandbox-memory"
#define ANNO_SANDBOX_QUOTA  "io.kubernetes.cri.sandbox-cpu-quota"
#define ANNO_SANDBOX_PERIOD "io.kubernetes.cri.sandbox-cpu-period"

/* ---- address.c ---------------------------------------------------------------------- */

/* Go's path.Clean: collapses "//", removes "." and resolves ".." lexically. */
char *shim_path_clean(const char *p);
/* "unix:///run/containerd/s/<sha256 hex of clean(address/namespace/id)>". */
int shim_socket_address(const char *address, const char *ns, const char *id, char **ret);
/* The directory holding the pod's VM files: <run base>/<first 24 hex of sha256(ns/sbid)>. */
int shim_vm_run_dir(const char *ns, const char *sandbox_id, char **ret);
const char *shim_run_base(void);
/* <run dir>/SHIM_DEBUG_CONSOLE_ADDR: where `cc-runtime exec` reaches the pod's debug console,
 * in libhv's address syntax (hv_agent_dial()); there only when the handler enables the console
 * (Kata's shim answers /agent-url for kata-runtime exec instead). */
#define SHIM_DEBUG_CONSOLE_ADDR "debug-console"
/* The console's address from the agent's: the same vsock (or CH's hybrid vsock) with the
 * console's port, or the console's own virtio-serial socket in run_dir. */
int shim_debug_console_address(const char *agent_addr, const char *run_dir, char **ret);

/* The role of a task, from its spec's annotations (kata's rules). */
enum shim_role {
        SHIM_ROLE_SINGLE,    /* no CRI annotations: a pod of its own, the container in it */
        SHIM_ROLE_SANDBOX,   /* the pod's sandbox (pause) container: the VM itself */
        SHIM_ROLE_CONTAINER, /* an app container of the pod whose sandbox id is given */
};
/* Role and the pod's sandbox id (borrowed from spec, or `id` itself). */
enum shim_role shim_spec_role(struct json_object *spec, const char *id, const char **sandbox_id);
const char *shim_spec_annotation(struct json_object *spec, const char *key);

/* ---- config.c ----------------------------------------------------------------------- */

struct shim_config {
        char *path;    /* the file read, or NULL for the built-in defaults */
        char *section; /* its hypervisor table: "hypervisor.qemu" or "hypervisor.clh" */
        char *backend;
        char *vmm_path, *kernel, *initrd, *firmware, *machine_type, *kernel_params;
        enum hv_tee tee;
        enum hv_accel accel;
        enum hv_channel channel;
        unsigned vcpus, memory_mib;
        bool debug;
        unsigned dial_timeout_s;        /* [agent.kata] dial_timeout */
        bool debug_console;             /* [agent.kata] debug_console_enabled (Kata's) */
        bool allow_host_rootfs;         /* [runtime] allow_host_rootfs (ours) */
        uint64_t host_rootfs_max_bytes; /* [runtime] host_rootfs_max_mib (ours) */
        unsigned create_container_timeout_s;
        /* [runtime] trusted_storage_mib (ours): every pod gets a scratch disk of this size, a
         * sparse file in its run directory, that the guest encrypts with a key of its own and
         * keeps its image layers, writable layers and emptyDirs on (0: none, guest RAM);
         * trusted_storage_integrity adds dm-integrity (hmac(sha256)). */
        unsigned trusted_storage_mib;
        bool trusted_storage_integrity;
        /* [hypervisor.qemu] pcie_root_port (Kata's key): free PCIe root ports QEMU gets at boot
         * for the block devices hot-plugged later (devices.c); libhv's hotplug_slots. */
        unsigned hotplug_slots;
        /* [runtime] network_model (ours) or Kata's internetworking_model: tcfilter (default),
         * none, user (QEMU only, refused for TEE profiles). */
        enum shim_net_model network_model;
        /* Which pod annotations this configuration honours (annotations.h). */
        struct shim_anno_policy anno;
        /* initdata (shim/initdata.c): [hypervisor.*] initdata, a default TOML file (ours), and
         * initdata_required (ours); the pod's io.katacontainers.config.hypervisor.cc_init_data
         * annotation (base64 of gzip of the TOML) where enable_annotations allows it. */
        char *initdata_file;
        bool initdata_required;
        char *initdata_annotation;
};
/* Enough for the release notes' pod (its trusted store) and two block volumes; each slot
 * costs the boot little (bench/README.md, "hot-plug slots"). */
#define SHIM_HOTPLUG_SLOTS_DEFAULT   3
#define SHIM_HOTPLUG_SLOTS_MAX       16
#define SHIM_INITDATA_ANNOTATION_MAX (360 * 1024) /* base64 of the 256 KiB gzip bound */

void shim_config_init(struct shim_config *c);
void shim_config_done(struct shim_config *c);
/*
 * Reads a Kata configuration file. Unknown keys are warned about (file:line); wrong types
 * and bad values are errors naming file, line, key and reason.
 */
int shim_config_load(const char *path, struct shim_config *c, struct cc_error **err);
/*
 * shim_config_load() for a file a pod annotation named (SHIM_CONFIG_POD_NAMED): the file is
 * the pod author's choice, so no message (error or warning) quotes anything read from it: a
 * file that cannot be opened or is not a bounded regular file is named with the reason (no
 * content is involved), any other error says only that it is not a valid configuration.
 */
#define SHIM_CONFIG_POD_NAMED 0x1u
int shim_config_load_flags(const char *path, unsigned flags, struct shim_config *c,
                           struct cc_error **err);
/* Checks the files and the host for this configuration (kernel, initrd, firmware, TEE). */
int shim_config_check(const struct shim_config *c, struct cc_error **err);

/* ---- annotations.c ------------------------------------------------------------------ */

/*
 * The pod's configuration, from the sandbox's spec: loads handler_path (the runtime entry's
 * ConfigPath, $KATA_CONF_FILE or the default), then, when the pod names another file with
 * io.katacontainers.config_path, loads that one instead if the handler's [runtime]
 * valid_config_paths allows the path and its TEE is the handler's own or stronger (never
 * weaker, never another kind); then applies the hypervisor annotations the configuration in use
 * enables (shim_annotations_apply) and checks its files (shim_config_check). Every refusal
 * names the annotation and the key that would allow it; nothing here touches the host beyond
 * reading the configuration files.
 */
int shim_config_resolve(const char *handler_path, struct json_object *spec, struct shim_config *c,
                        struct cc_error **err);
/*
 * Applies the spec's io.katacontainers.config.hypervisor.* annotations to c under c->anno:
 * default_vcpus (1 .. default_maxvcpus or the host's CPUs), default_memory (64 MiB ..
 * default_maxmemory or the host's memory), kernel_params (appended; printable ASCII, at most
 * 1024 bytes), path, kernel, initrd, firmware (each within its valid_*_paths). Each honoured
 * one is logged. A name not enabled, not implemented, or any other io.katacontainers.*
 * annotation (config_path excepted) is refused, and so is a bad value: -EINVAL (containerd 1.6
 * names no PermissionDenied: it would reach the pod author as "unknown").
 */
int shim_annotations_apply(struct shim_config *c, struct json_object *spec, struct cc_error **err);

/* ---- spec.c ------------------------------------------------------------------------- */

/* Translates an OCI process object (config.json's "process", or an exec's spec). */
int shim_process_from_oci(struct json_object *p, Grpc__Process **ret, struct cc_error **err);
/*
 * Translates config.json into the agent's spec: host-only parts (hooks, devices, namespace
 * paths, the network namespace, host bind mounts other than the small files collected in
 * *ret_files) are dropped; root.path becomes `guest_root`.
 */
struct shim_file_copy {
        char *host_path;  /* file to copy */
        char *guest_path; /* where the agent stores it; the mount's new source */
};
int shim_spec_from_oci(struct json_object *spec, const char *cid, const char *guest_root,
                       Grpc__Spec **ret, struct shim_file_copy **ret_files, size_t *ret_n_files,
                       struct cc_error **err);
void shim_file_copies_free(struct shim_file_copy *f, size_t n);

/* ---- storage.c ---------------------------------------------------------------------- */

/*
 * An emptyDir bind source (the kubelet's .../volumes/kubernetes.io~empty-dir/<name>): 1 and
 * *ret = the volume's guest path (ephemeral/<name> when the host directory is a tmpfs, i.e.
 * medium Memory; local/<name> otherwise); 0 when host_src is not an emptyDir.
 */
int shim_emptydir_guest_path(const char *host_src, char **ret);
/* The Storages (Kata's "local"/"ephemeral") for the volumes a translated spec's bind mounts
 * name, once each; *ret is NULL when there are none. */
/* The serial the guest finds the trusted storage disk by (agent.trusted_storage=). */
#define SHIM_TRUSTED_STORAGE_SERIAL "cc-trusted-store"
/* With [runtime] trusted_storage_mib: creates <run_dir>/trusted-storage.img, a sparse file of
 * that size (removed with the run dir), *ret = its path; else *ret = NULL. */
struct shim_config;
int shim_trusted_storage_prepare(const struct shim_config *c, const char *run_dir, char **ret,
                                 struct cc_error **err);
struct Grpc__Storage;
int shim_storages_for(const Grpc__Spec *spec, struct Grpc__Storage ***ret, size_t *ret_n);
void shim_storages_free(struct Grpc__Storage **st, size_t n);
/* LinuxResources JSON -> grpc.LinuxResources (memory, cpu, pids). */
int shim_resources_from_oci(struct json_object *r, Grpc__LinuxResources **ret,
                            struct cc_error **err);

/* How a task's rootfs reaches the guest. */
enum shim_rootfs_kind {
        SHIM_ROOTFS_NONE,       /* no mounts (CC fork: the guest supplies it by image name) */
        SHIM_ROOTFS_GUEST_PULL, /* a guest-pull mount: the agent pulls `image` */
        SHIM_ROOTFS_HOST,       /* ordinary host mounts: shared only when the config allows */
};
struct shim_mount {
        const char *type, *source;
        char *const *options;
        size_t n_options;
};
/* Classifies the rootfs mounts; for guest pull *ret_image is the image named by the volume
 * (caller frees; may be NULL when the volume names none). */
int shim_rootfs_classify(const struct shim_mount *m, size_t n, enum shim_rootfs_kind *ret,
                         char **ret_image, struct cc_error **err);

/* ---- devices.c ---------------------------------------------------------------------- */

/* The container path that makes a block device the pod's encrypted trusted storage (the
 * release notes' pod): the guest formats it, the container does not get it. */
#define SHIM_TRUSTED_STORE_PATH "/dev/trusted_store"
#define SHIM_DISK_SERIAL_MAX    20 /* virtio-blk's serial */

/* A block device of a container's spec (linux.devices type "b"), found on the host. */
struct shim_blockdev {
        char *host_path;      /* <dev_root>/<DEVNAME> */
        char *container_path; /* the spec's path */
        unsigned major, minor;
        bool readonly; /* the device cgroup rules deny 'w' (CRI's permissions "r") */
};
/* The host node of block device major:minor: <sys_root>/dev/block/M:m/uevent's DEVNAME under
 * dev_root, checked to be that device. */
int shim_blockdev_host_path(const char *sys_root, const char *dev_root, unsigned major,
                            unsigned minor, char **ret, struct cc_error **err);
/*
 * The block devices of a spec's linux.devices (*ret NULL when none); refuses (InvalidArgument)
 * host character devices other than those every guest has (null, zero, full, random, urandom,
 * tty, console, ptmx), naming them and containerd's privileged_without_host_devices.
 */
int shim_blockdevs_from_spec(struct json_object *spec, const char *cid, const char *sys_root,
                             const char *dev_root, struct shim_blockdev **ret, size_t *ret_n,
                             struct cc_error **err);
void shim_blockdevs_free(struct shim_blockdev *d, size_t n);

/* ---- events.c ----------------------------------------------------------------------- */

struct shim_events;
int shim_events_new(const char *ttrpc_address, const char *ns, struct shim_events **ret);
/* Queues an event (the message is encoded now); order of calls = order of delivery. */
void shim_events_publish(struct shim_events *e, const char *topic, const ProtobufCMessage *msg);
/* Waits up to timeout_ms for the queue to drain, then stops the thread. NULL-safe. */
void shim_events_free(struct shim_events *e, int timeout_ms);

/* ---- sandbox.c ---------------------------------------------------------------------- */

struct shim_pod_disk {
        char serial[SHIM_DISK_SERIAL_MAX + 1];
        unsigned major, minor;
        bool readonly;
        /* The trusted store: the pod's layers live on it, so it stays until the VM stops,
         * whichever container named it. */
        bool pod_lifetime;
        unsigned refs; /* containers naming it */
};

struct shim_sandbox {
        char *id;
        char *ns;
        char *run_dir;
        struct shim_config cfg;
        struct hv_vm *vm;
        pid_t vmm_pid;
        struct cc_ttrpc_client *agent;
        bool vm_dead;  /* set once the VMM exited */
        bool stopping; /* shim_sandbox_stop() began: the VMM's exit is expected */
        /* The pod network (network_model tcfilter): taps and filters in the pod namespace,
         * recorded in <run_dir>/network so that `delete` can remove them after a crash. */
        struct shim_net *net;
        /* Host block devices hot-plugged for the pod's containers (devices.c), under the
         * shim's vm_lock; serials cc-blk-<disk_seq>. */
        struct shim_pod_disk *disks;
        size_t n_disks;
        unsigned disk_seq;
};

/*
 * Boots the VM and waits for the agent (Health.Check SERVING), then CreateSandbox. With
 * network_model tcfilter the VM joins the pod network namespace of the spec first (a tap per
 * interface, mirrored with tc), and the agent gets the interfaces, routes and neighbours
 * (UpdateInterface, UpdateRoutes, AddARPNeighbors) before CreateSandbox, which carries the pod's
 * resolv.conf lines. On failure everything created is removed again by shim_sandbox_free().
 */
int shim_sandbox_start(struct shim_sandbox *sb, struct json_object *spec, struct cc_error **err);
/* DestroySandbox (best effort), stop the VM, remove the pod network's taps and filters. */
void shim_sandbox_stop(struct shim_sandbox *sb);
void shim_sandbox_free(struct shim_sandbox *sb);
/* A unary agent call; -ECONNRESET etc. when the VM is gone. timeout_ns 0 = none. */
int shim_agent_call(struct shim_sandbox *sb, const char *service, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                    ProtobufCMessage **ret, int64_t timeout_ns, struct cc_error **err);
/* Copies one host file (size-bounded) into the guest with CopyFile. */
int shim_agent_copy_file(struct shim_sandbox *sb, const char *host_path, const char *guest_path,
                         uint64_t *budget, struct cc_error **err);
/* Copies a host directory tree into the guest (regular files, dirs, symlinks as files are
 * refused by the agent so they are skipped with a warning). */
int shim_agent_copy_tree(struct shim_sandbox *sb, const char *host_dir, const char *guest_dir,
                         uint64_t *budget, struct cc_error **err);
/* The pod's initdata, ready for the launch (shim/initdata.c). */
struct shim_initdata {
        char *kparam;     /* agent.initdata_digest=<alg>:<hex>, or NULL: no initdata */
        char *mrconfigid; /* TDX: base64 of 48 bytes */
        char *host_data;  /* SEV-SNP: base64 of 32 bytes */
        char *disk_path;  /* <run_dir>/initdata.img, read-only to the guest */
};
/* Validates the pod's initdata (annotation, else the configuration's default file), writes
 * its disk into run_dir and fills out; nothing to do (out stays empty) without initdata,
 * unless the configuration requires it. */
int shim_initdata_prepare(const struct shim_config *c, const char *run_dir,
                          struct shim_initdata *out, struct cc_error **err);
void shim_initdata_done(struct shim_initdata *d);

/* Waiting for a booting guest's agent (shim/agent-wait.c). */
struct shim_agent_wait {
        const char *addr;         /* libhv's agent address: unix:, vsock:, hvsock: */
        int64_t timeout_ms;       /* the whole wait, every dial and Check included */
        int exit_fd;              /* readable once the VMM exited; -1: not watched */
        const char *console_path; /* the guest console log, watched for fatal lines; NULL: none */
};
/*
 * Dials the agent and calls grpc.Health/Check until it answers SERVING (*ret: the connected
 * client) or timeout_ms passed; ends at once with the console's reason if the guest panics,
 * fails to unpack its initramfs, the agent logs a fatal error, or the VMM exits.
 */
int shim_agent_wait(const struct shim_agent_wait *w, struct cc_ttrpc_client **ret,
                    struct cc_error **err);
/* The first console line holding a fatal boot message in text[0..len) (its length in
 * *line_len), or NULL. Pure. */
const char *shim_console_fatal(const char *text, size_t len, size_t *line_len);
/* The last size-1 bytes of a console log with control characters blanked ("" if none). */
void shim_console_tail(const char *path, char *buf, size_t size);
/* Kills what a dead shim left of a pod's VM (by the pidfile in its run dir), removes the tc
 * filters (and taps, qdiscs) it had put in the pod network namespace; removes the dir. */
int shim_sandbox_cleanup_dead(const char *run_dir);

/* ---- agent.c ------------------------------------------------------------------------ */

/* A unary call on the agent client (NULL: the VM is not running, Unavailable); the time it
 * takes counts as external (shim_external_ns_take); errors name the method. */
int shim_agent_rpc(struct cc_ttrpc_client *agent, const char *service, const char *method,
                   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                   ProtobufCMessage **ret, int64_t timeout_ns, struct cc_error **err);
/* Nanoseconds this thread spent waiting for the agent or the VMM since the last call (the
 * part of a Create that is not the shim's own work); resets the counter. */
int64_t shim_external_ns_take(void);
/* Counts a wait for the VMM (the boot) as external time of this thread. */
void shim_external_ns_add(int64_t ns);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t shim_mono_ns(void);
/* Appends "key=value" (space-separated) to the logfmt fields in buf, the value formatted and
 * quoted as logfmt needs; for cc_log_full()'s fields. Truncates at size. */
void shim_logfmt_add(char *buf, size_t size, const char *key, const char *fmt, ...) _printf_(4, 5);

/* ---- net.c -------------------------------------------------------------------------- */

/*
 * The pod network for the VM about to boot (network_model, see net.c) of sandbox_id: sets up
 * *ret_net (taps and tc filters in the spec's network namespace, recorded in
 * <run_dir>/network), fills hc->nets (*ret_nets: malloc'ed, free it once the VM is created) or
 * hc->user_net. Host networking (no network namespace in the spec) is refused for TEE profiles
 * (-EPERM). On failure *ret_net may hold what was made: shim_pod_net_teardown() removes it.
 */
int shim_pod_net_setup(const struct shim_config *c, const char *sandbox_id, const char *run_dir,
                       struct json_object *spec, struct hv_config *hc, struct shim_net **ret_net,
                       struct hv_net **ret_nets, struct cc_error **err);
/* UpdateInterface per interface, UpdateRoutes, AddARPNeighbors (after Health.Check). */
int shim_pod_net_configure_guest(const struct shim_net *net, struct cc_ttrpc_client *agent,
                                 struct cc_error **err);
/* Removes net's taps, filters and qdiscs (the state file in run_dir too once done). */
void shim_pod_net_teardown(struct shim_net *net, const char *sandbox_id, const char *run_dir);
/* `delete` after a crash: removes what <run_dir>/network records; messages on stderr. */
void shim_pod_net_cleanup_dead(const char *run_dir);
/* The nameserver/search/domain/options lines of the resolv.conf the spec mounts on
 * /etc/resolv.conf (CreateSandboxRequest.dns); none when there is no such mount. */
int shim_pod_dns(struct json_object *spec, char ***ret, size_t *ret_n);
void shim_strv_free(char **v, size_t n);

/* ---- io.c --------------------------------------------------------------------------- */

struct shim_io;
/* Opens nothing yet: relays start in shim_io_start(). Paths may be empty. */
int shim_io_new(struct shim_sandbox *sb, const char *cid, const char *exec_id, bool terminal,
                const char *in, const char *out, const char *errp, struct shim_io **ret,
                struct cc_error **err);
int shim_io_start(struct shim_io *io, struct cc_error **err);
/* Waits until stdout and stderr reached EOF (all output delivered). */
void shim_io_drain(struct shim_io *io);
/* Stops the stdin relay and sends CloseStdin. */
void shim_io_close_stdin(struct shim_io *io);
/* Stops every relay (VM gone, delete) and frees. */
void shim_io_free(struct shim_io *io);

/* ---- metrics.c ---------------------------------------------------------------------- */

#define SHIM_METRICS_TYPE_URL "io.containerd.cgroups.v2.Metrics"
struct Grpc__CgroupStats;
/* The agent's cgroup stats (NULL: none) as containerd's cgroups v2 Metrics, packed into buf;
 * buf NULL: only the length. */
size_t shim_metrics_pack(const struct Grpc__CgroupStats *cg, uint8_t *buf);

/* ---- task.c ------------------------------------------------------------------------- */

struct shim;
struct shim_options {
        const char *ns, *address, *ttrpc_address, *id, *bundle, *publish_binary;
        bool debug;
};
int shim_new(const struct shim_options *o, struct shim **ret);
/* Registers the Task and Image services on srv. */
int shim_register(struct shim *s, struct cc_ttrpc_server *srv);
/* An fd that turns readable when the daemon should exit (Shutdown with no tasks left). */
int shim_exit_fd(struct shim *s);
/* The pod's sandbox (VM and agent client), NULL before the sandbox's Create; for tests. */
struct shim_sandbox *shim_get_sandbox(struct shim *s);
/* SIGTERM: stop every VM and process, publish what is due. */
void shim_teardown(struct shim *s);
void shim_free(struct shim *s);

/* The wall clock events and Delete report times in (events.c). */
void shim_now(struct timespec *ts);
