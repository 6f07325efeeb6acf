#pragma once
/*
 * The agent: configuration, the ttrpc services (grpc.AgentService, grpc.Health, grpc.Image)
 * over the container runtime, the transports, and PID 1 duties.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"
#include "cc/log.h"
#include "cc/ttrpc.h"

#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/runtime.h"

#define AGENT_VERSION                "0.1.0"
#define AGENT_DEFAULT_SERVER_ADDR    "vsock://-1:1024"
#define AGENT_DEFAULT_CONTAINERS_DIR "/run/kata-containers/shared/containers"
#define AGENT_DEFAULT_POLICY         "/etc/cc-agent/policy.json"
#define AGENT_SERIAL_PORT_NAME       "agent.channel.0"
/* The debug console's virtio-serial port (debug-console.c), and what the agent writes there
 * when a session's shell has exited (the guest cannot hang the port up). */
#define AGENT_DEBUG_CONSOLE_PORT     "agent.debug_console"
#define AGENT_DEBUG_CONSOLE_END      "\r\n[cc-agent: debug console session ended]\r\n"
/* What the host sends in its stream to set the console's window size: this, then
 * "<rows>;<cols>" and ESC '\' (an APC string; cc-runtime exec sends it, debug-console.c). */
#define AGENT_DEBUG_CONSOLE_WINSIZE  "\033_cc-winsize="
/* Largest ReadStdout/ReadStderr answer, well below ttrpc's 4 MiB frame. */
#define AGENT_MAX_READ               (1u << 20)

struct agent_config {
        char *server_addr;    /* vsock://CID:PORT | unix://PATH | serial://NAME-or-PATH */
        char *policy_path;    /* JSON policy; absent file = allow all */
        char *containers_dir; /* see agent_runtime_config */
        char *cgroup_root;
        char *log_level;
        char *log_port; /* virtio-serial port name that also receives the logs, or NULL */
        /* agent.image_insecure=HOST:PORT[,...] (kernel command line only): registries PullImage
         * reaches over plain HTTP, added to the image settings file's (rpc-image.c). NULL. */
        char *image_insecure;
        /* agent.initdata_digest=<alg>:<hex> (kernel command line only): the digest of the pod's
         * initdata the shim bound to the launch; the initdata disk must match it. */
        char *initdata_digest;
        /* agent.trusted_storage=<serial>[,integrity] (kernel command line only): the scratch
         * disk to encrypt and hold the pod's layers and volumes (trusted-storage.c). NULL. */
        char *trusted_storage;
        bool is_init; /* PID 1 in the guest */
        /* agent.tee_defaults=1 / --tee-defaults: behave as in a TEE even where none is
         * detected (tests without hardware). Can only turn the TEE defaults on. */
        bool tee_defaults;
        /* agent.debug_console (kernel command line only): serve the debug console. */
        bool debug_console;
        /* agent.debug_console_vport=N (kernel command line only): its vsock port; 0 none. */
        unsigned debug_console_vport;
};

/* What the policy needs to remember of a container between requests (rpc.c). */
struct agent_ctr_info {
        char *id;
        char *name;   /* io.kubernetes.cri.container-name at CreateContainer */
        char *pulled; /* the image reference the guest pulled for it */
        struct agent_ctr_info *next;
};

struct agent_volume;

struct agent {
        struct agent_config cfg;
        struct agent_runtime *rt;
        /* The policy in force: the image's file, the TEE default, or NULL (allow all). Read
         * under policy_lock; SetPolicy (when the policy allows it) replaces it. */
        struct agent_policy *policy;
        pthread_rwlock_t policy_lock;
        struct agent_ctr_info *ctrs;  /* under lock */
        struct agent_volume *volumes; /* the pod's emptyDirs (storage.c), under lock */
        struct cc_ttrpc_server *srv;
        pthread_mutex_t lock;
        bool sandbox_created;
        char *sandbox_id;
        /* The guest runs in a TEE (see tee.c): without a policy, the TEE defaults apply. */
        bool tee;
        /* Written by DestroySandbox; main() powers off (init) once the reply went out. */
        int destroy_efd;
        const struct agent_puller *puller; /* set by main(), never NULL */
        /* The disk given at CreateContainer as AGENT_TRUSTED_STORE_PATH (its /sys/block name),
         * set while it is made and while it is mounted; NULL: none. Under lock. */
        char *trusted_disk;
};

/* Fills defaults, then applies the kernel command line (agent.server_addr=, agent.log=,
 * agent.policy=, agent.containers_dir=) when `cmdline` is not NULL, then argv. */
int agent_config_parse(struct agent_config *cfg, const char *cmdline, int argc, char **argv,
                       struct cc_error **err);
void agent_config_done(struct agent_config *cfg);

/* The pod's initdata (initdata.c): finds its disk among dev_dir's vd* and sd* devices, checks its
 * digest against the TEE's launch field and cmdline_digest, and writes initdata.toml, aa.toml,
 * cdh.toml and policy.json into out_dir. *found says whether there was one, *bound whether its
 * digest was checked against something the launch bound (the TEE's field or cmdline_digest). */
#define AGENT_INITDATA_DIR "/run/confidential-containers/initdata"
int agent_initdata_load(const char *dev_dir, const char *cmdline_digest, const char *out_dir,
                        bool *found, bool *bound, struct cc_error **err);

/* The guest image's own digest list (guest-agent/build-guest-image.sh writes it). */
#define AGENT_IMAGE_DIGESTS "/etc/cc-agent/image.sha256"
/*
 * Checks every file named in list_path (sha256sum format, absolute paths, looked up under
 * root, "" or NULL for /) against its recorded SHA-256: -EBADMSG naming the file and both
 * digests on a mismatch, the file's errno when it is missing. Counts what it read.
 */
int agent_selfcheck(const char *list_path, const char *root, unsigned *ret_files,
                    uint64_t *ret_bytes, struct cc_error **err);

/* Trusted ephemeral storage (trusted-storage.c): mounted here, the parent of the image store,
 * the containers area and the pod's volumes. */
#define AGENT_TRUSTED_STORAGE_DIR "/run/kata-containers"
/* Finds the disk named by `spec` (<serial>[,integrity]) by its serial, encrypts it (LUKS2,
 * a key made in the guest and never stored), makes ext4 and mounts it on mountpoint. */
int agent_trusted_storage_setup(const char *spec, const char *mountpoint, struct cc_error **err);
/* At boot, once the runtime runs (its reaper reaps the helper) and before the agent answers:
 * agent_trusted_storage_setup() of cfg.trusted_storage on AGENT_TRUSTED_STORAGE_DIR, then the
 * containers area made again on it. */
int agent_trusted_storage_boot(struct agent *a, struct cc_error **err);
/* Its parts, for the unit test: the option's syntax, the lookup of a disk by serial. */
int agent_trusted_storage_parse(const char *spec, char *serial, size_t len, bool *integrity,
                                struct cc_error **err);
int agent_block_by_serial(const char *sys_block, const char *serial, char *name, size_t len);
/* Whether s is a disk serial as the shim names them: 1-20 of [A-Za-z0-9._-]. */
bool agent_serial_valid(const char *s);
/*
 * The trusted storage that arrives with a container (CreateContainer's Device at
 * AGENT_TRUSTED_STORE_PATH, devices.c): the disk /dev/<name> becomes LUKS2 + ext4 as at boot,
 * mounted on AGENT_TRUSTED_LATE_DIR (image-pull.h), where the pulls from then on keep their
 * layers and writable layers. Refused when the pod already has trusted storage (this way or
 * agent.trusted_storage=).
 */
int agent_trusted_storage_attach(struct agent *a, const char *name, bool integrity,
                                 struct cc_error **err);
/* DestroySandbox: unmounts it and removes the mapping, so that the host can unplug the disk;
 * nothing when there is none. */
void agent_trusted_storage_close(struct agent *a);

/* CreateContainer's Devices (devices.c): the container path that makes a disk the pod's trusted
 * storage instead of a device of the container (the release notes' pod), and how long the agent
 * waits for a hot-plugged disk to appear. */
#define AGENT_TRUSTED_STORE_PATH "/dev/trusted_store"
#define AGENT_DEVICE_WAIT_MS     10000
struct Grpc__Device;
struct Grpc__Linux;
struct Grpc__CreateContainerRequest;
/* Checks the Devices against the spec, with no effect: type "blk", a serial as id, an absolute
 * container_path naming a block entry of linux.devices, options empty ("integrity" on the
 * trusted store), no id or path twice, one trusted store at most. */
int agent_devices_check(struct Grpc__Device *const *devs, size_t n, const struct Grpc__Linux *l,
                        struct cc_error **err);
/* Rewrites the linux.devices entry at path, and the resources.devices rules naming its (host)
 * number, to major:minor; returns how many entries changed (0: no entry at path). */
unsigned agent_devices_rewrite(struct Grpc__Linux *l, const char *path, int64_t major,
                               int64_t minor);
/* A disk found by its serial (agent_block_wait). */
struct agent_block {
        char name[64]; /* in /sys/block and /dev */
        unsigned major, minor;
        bool readonly;
        bool held; /* <name>/holders is not empty: a mapping of the guest's is on it */
};
int agent_block_wait(const char *sys_block, const char *serial, unsigned wait_ms,
                     struct agent_block *ret, struct cc_error **err);
/* All of it for one CreateContainer: check, wait for each disk, rewrite the spec, add the
 * container's devices to `spec`, make the trusted store (last). */
int agent_devices_add(struct agent *a, struct Grpc__CreateContainerRequest *req,
                      struct agent_spec *spec, struct cc_error **err);

/* Registers grpc.AgentService, grpc.Health and grpc.Image on srv. */
int agent_rpc_register(struct agent *a, struct cc_ttrpc_server *srv);
/* The grpc.AgentService / grpc.Health method tables (for the fuzz targets). */
const struct cc_ttrpc_service *agent_rpc_service(void);
const struct cc_ttrpc_service *agent_rpc_health_service(void);
/* The image service (rpc-image.c); the PullImage handler is where libccimage plugs in. */
int agent_rpc_register_image(struct agent *a, struct cc_ttrpc_server *srv);
/*
 * How this agent pulls images, chosen at build time (guest-agent/module.mk compiles main.c
 * once per binary with AGENT_PULLER naming the table): cc-agent pulls in its own process
 * (agent_puller_in_process, image-pull.c); cc-agent-static starts a helper process per pull
 * (agent_puller_helper, variants/image-pull-exec.c), so that it never maps the pull's
 * libraries. Each binary links exactly the one its main.o names.
 */
struct agent_puller {
        const char *name;
        /* Pulls `image` in the guest and mounts it as <containers_dir>/<container_id>/rootfs. */
        int (*pull)(struct agent *a, const char *image, const char *container_id, const char *creds,
                    struct cc_error **err);
        /* Called by CreateSandbox: starts a helper ahead for the pod's first pull, or nothing
         * where the agent pulls itself. */
        void (*prestart)(struct agent *a);
};
extern const struct agent_puller agent_puller_in_process;
extern const struct agent_puller agent_puller_helper;
/* CreateContainer's storages: one "image_guest_pull" Storage (Kata >= 3.3) pulls the image. */
struct Grpc__Storage;
int agent_image_storages(struct agent *a, const char *container_id, struct Grpc__Storage **storages,
                         size_t n, struct cc_error **err);
/* Where the pod's volumes live (storage.c): local/<name> and ephemeral/<name>. */
#define AGENT_SANDBOX_DIR "/run/kata-containers/sandbox"
/*
 * CreateContainer's storages (storage.c): at most one image_guest_pull (agent_image_storages),
 * "local" (a guest directory) and "ephemeral" (a guest tmpfs) volumes shared by the pod's
 * containers; anything else is refused. On an error nothing of this container's is kept.
 */
int agent_storages_add(struct agent *a, const char *container_id, struct Grpc__Storage **storages,
                       size_t n, struct cc_error **err);
/* Drops the container's uses of volumes; a volume goes with its last user. */
void agent_storages_release(struct agent *a, const char *container_id);
/* Every volume, whoever uses it (DestroySandbox: before the trusted storage is closed). */
void agent_storages_release_all(struct agent *a);
/* The image reference of the image_guest_pull storage among them, or NULL. */
const char *agent_storages_image(struct Grpc__Storage *const *storages, size_t n);
/* Checks a local/ephemeral storage: its mount point and options (exposed for the unit test). */
int agent_storage_volume_check(const struct Grpc__Storage *st, bool *ret_tmpfs, mode_t *ret_mode,
                               char **ret_size, struct cc_error **err);
/* Unmounts and removes the rootfs PullImage made for a container (no-op when there is none). */
void agent_image_release(struct agent *a, const char *container_id);
/* The network handlers of grpc.AgentService (rpc-net.c, on guest-agent/network/). */
int agent_rpc_update_interface(struct cc_ttrpc_call *call, void *userdata,
                               const ProtobufCMessage *req, ProtobufCMessage *resp,
                               struct cc_error **err);
int agent_rpc_update_routes(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct cc_error **err);
int agent_rpc_list_interfaces(struct cc_ttrpc_call *call, void *userdata,
                              const ProtobufCMessage *req, ProtobufCMessage *resp,
                              struct cc_error **err);
int agent_rpc_list_routes(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req,
                          ProtobufCMessage *resp, struct cc_error **err);
int agent_rpc_add_arp_neighbors(struct cc_ttrpc_call *call, void *userdata,
                                const ProtobufCMessage *req, ProtobufCMessage *resp,
                                struct cc_error **err);
/* Whether CopyFile may fill <id>/rootfs with a host-provided rootfs: outside TEE guests, and
 * in one only when its policy says so (agent_policy_allows_host_rootfs()). Under policy_lock. */
static inline bool agent_allows_host_rootfs(const struct agent *a)
{
        return !a->tee || agent_policy_allows_host_rootfs(a->policy);
}
/* CopyFile (rpc-copy.c): only into the shim's shared-files areas, see there. */
int agent_rpc_copy_file(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, struct cc_error **err);
/*
 * Where CopyFile may write, given the path relative to the containers area: 0, or
 * -EPERM/-EINVAL with a message. `basefd` is the containers area (the state of a rootfs is
 * looked up there); `allow_rootfs` says whether a host-provided rootfs may be copied at all.
 */
int agent_copy_target_check(int basefd, const char *rel, bool allow_rootfs, struct cc_error **err);
/* Remembers the image the guest pulled for a container (for the policy's "image"). */
int agent_note_pulled(struct agent *a, const char *container_id, const char *image);
/* Policy check + id validation shared by every handler. `container_id` may be NULL. */
int agent_rpc_admit(struct agent *a, const char *request, const char *container_id,
                    struct cc_error **err);

/* Starts serving on cfg->server_addr (listener thread, or the serial-port thread). */
int agent_transport_start(struct agent *a, struct cc_error **err);
/* Finds a virtio-serial port by name ("agent.channel.0") or takes a path; -ENOENT. */
int agent_find_serial_port(const char *name, char *out, size_t n);
/* Serves the debug console (a root shell) on AGENT_DEBUG_CONSOLE_PORT and, when vport is not 0,
 * on that vsock port (Kata's agent.debug_console_vport). */
int agent_debug_console_start(unsigned vport);
/* A session for every connection accepted on listen_fd (a thread; the vsock listener's). */
int agent_debug_console_serve(int listen_fd);
/* One session (a shell on a new pty) relayed over fd until the shell exits or the host leaves;
 * serial: fd is the virtio-serial port. */
void agent_debug_console_session(int fd, bool serial);
/* Takes AGENT_DEBUG_CONSOLE_WINSIZE sequences out of the host's bytes in[0..n): the rest goes
 * to out (room for n + sizeof(held) bytes; returns how many), the last size in *ws with
 * *resized set. A sequence may span calls: its start is held until it completes or is not
 * one; _flush hands what is held over (a lone ESC key after a pause). */
struct winsize;
struct agent_console_filter {
        char held[32];
        size_t n_held;
};
size_t agent_console_filter(struct agent_console_filter *f, const char *in, size_t n, char *out,
                            struct winsize *ws, bool *resized);
size_t agent_console_filter_flush(struct agent_console_filter *f, char *out);
/* Sends the logs to the console and to the named virtio-serial port as well. */
int agent_logport_start(const char *name);
/* on_conn_closed callback for the ttrpc server. */
void agent_transport_conn_closed(void *userdata, int reason);

/*
 * Whether the guest is a TEE guest (tee.c), judged from the guest itself: the SEV-SNP or TDX
 * guest device, TDX's CPUID leaf, the guest image's marker file, or cfg->tee_defaults. Writes
 * what decided to `why`.
 */
bool agent_tee_detect(const struct agent_config *cfg, char *why, size_t n);

/* PID 1: mounts the API file systems and loads the image's kernel modules. */
int agent_init_setup(void);
/* Loads the modules named in LIST (files under /lib/modules/<release>/, one per line, in
 * dependency order); returns how many are loaded (already loaded counts), or -errno. */
int agent_load_modules(const char *list);
/* PID 1: syncs and powers the VM off; never returns. */
_noreturn_ void agent_init_poweroff(void);

/* VmRSS of this process in KiB (from /proc/self/status), or -errno. */
long agent_self_rss_kib(void);
/* Resident set from /proc/self/smaps_rollup (exact: walks the page tables), or -errno. */
long agent_self_rss_exact_kib(void);
