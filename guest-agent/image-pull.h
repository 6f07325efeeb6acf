#pragma once
/*
 * The image pull as the agent runs it, apart from the RPCs that ask for it (rpc-image.c): in
 * cc-agent it runs in the agent (image-pull.c, with libccimage); cc-agent-static has no pull
 * library and runs it in a helper process, cc-agent-pull, one per pull
 * (variants/image-pull-exec.c, pull/cc-agent-pull.c), so that the libraries of a pull
 * (libcurl and its chain, OpenSSL, ISA-L, zstd, libarchive) are mapped only while one runs.
 */

#include "cc/error.h"

/* Where the helper is in the guest image; $CC_AGENT_PULL_HELPER overrides it (host tests). */
#define AGENT_PULL_HELPER_DEFAULT "/usr/libexec/cc-agent/cc-agent-pull"
/* Largest "user:password" of PullImageRequest.source_creds passed on. */
#define AGENT_PULL_CREDS_MAX      4096
/* How long a helper started ahead at CreateSandbox waits for the pod's first pull
 * ($CC_AGENT_PULL_SPARE_SECONDS overrides it; 0: none is started). */
#define AGENT_PULL_SPARE_SECONDS  60

/* Trusted storage that arrived with a container (/dev/trusted_store at CreateContainer,
 * storage/trusted-storage.c) is mounted here: image/ holds the layer store and
 * containers/<id>/{upper,work} the writable layers of every pull from then on (the pull sees
 * containers/ only while it is mounted). Already-pulled layers stay where they are. */
#define AGENT_TRUSTED_LATE_DIR "/run/cc-trusted-storage"

struct agent_pull_req {
        const char *containers_dir; /* the agent's, absolute */
        const char *image_insecure; /* agent.image_insecure= of the kernel command line, or NULL */
        const char *image;          /* the image reference, 1..4096 bytes */
        const char *container_id;   /* an identifier, already validated */
        const char *creds;          /* "user:password", or NULL */
};

/* Pulls req->image and mounts it at <containers_dir>/<container_id>/rootfs (image-pull.c). */
int agent_image_pull_here(const struct agent_pull_req *req, struct cc_error **err);
/* In a spare helper: the pull's setup (settings, key brokers, the KBS's attestation and the
 * registry credentials the initdata names) in a thread, while it waits; the next
 * agent_image_pull_here() takes the result. */
void agent_image_pull_prepare(const struct agent_pull_req *req);
/* The spare ends without a pull: waits for that setup and drops it (no exit under a thread
 * still using the TLS library). */
void agent_image_pull_unprepare(void);

/* <containers_dir>/<id>[/<leaf>], or NULL when out of memory (image-rootfs.c). */
char *agent_container_path(const char *containers_dir, const char *id, const char *leaf);
/* Unmounts and removes what a pull made for container `id`; a container directory without a
 * pulled rootfs (no "upper") is left as it is. */
void agent_image_remove_rootfs(const char *containers_dir, const char *id);

/* cc-agent-static as PID 1: mounts the helper's shared libraries (the guest image's
 * squashfs, variants/pull-libs.c) before the first helper starts; 0 when there is nothing to
 * mount or it is mounted. */
int agent_pull_libs_mount(struct cc_error **err);
