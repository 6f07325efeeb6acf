/*
 * grpc.Image (Kata CC-0.8.0 image.proto) and CreateContainer's image_guest_pull storage: the
 * requests are admitted here (policy, ids), the pull itself is a->puller
 * (image-pull.c in cc-agent, a cc-agent-pull helper process in cc-agent-static), and the rootfs
 * it made is released with the container (agent_image_release).
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/image-pull.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"
#include "kata/image.pb-c.h"

/* The pull (a->puller), and a full store named for what it is: without trusted storage the layers
 * are in guest RAM (a tmpfs), so an image larger than the VM's memory cannot fit there. */
static int pull(struct agent *a, const char *image, const char *container_id, const char *creds,
                struct cc_error **err)
{
        int r = a->puller->pull(a, image, container_id, creds, err);
        struct statfs sf;
        if (r == -ENOSPC && statfs(a->cfg.containers_dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC)
                return cc_error_wrap(err, ENOSPC,
                                     "the image does not fit in the guest's memory (its layers "
                                     "are kept on a %llu MiB tmpfs): give the pod trusted "
                                     "storage ([runtime] trusted_storage_mib) for images larger "
                                     "than the VM's memory",
                                     (unsigned long long)sf.f_blocks * sf.f_bsize >> 20);
        return r;
}

/*
 * Kata >= 3.3's guest pull: CreateContainer carries one Storage with driver
 * "image_guest_pull", source = the image reference ("pause" for the sandbox, whose process is
 * the agent's own), and a driver option "image_guest_pull=<json metadata>" (unused here). The
 * rootfs is made where every rootfs of ours lives; a mount point elsewhere is refused, since the
 * host does not choose guest paths.
 */
int agent_image_storages(struct agent *a, const char *container_id, Grpc__Storage **storages,
                         size_t n, struct cc_error **err)
{
        if (n != 1 || !storages[0] || !cc_streq(storages[0]->driver, "image_guest_pull"))
                return cc_error_set(err, EOPNOTSUPP,
                                    "storage driver '%s' is not supported (only one "
                                    "image_guest_pull storage is)",
                                    n && storages[0] ? storages[0]->driver : "");
        const Grpc__Storage *st = storages[0];
        if (cc_isempty(st->source) || strlen(st->source) > 4096)
                return cc_error_set(err, EINVAL, "image_guest_pull storage has no image reference");
        _cleanup_free_ char *rootfs =
                agent_container_path(a->cfg.containers_dir, container_id, "rootfs");
        if (!rootfs)
                return -ENOMEM;
        if (!cc_isempty(st->mount_point) && strcmp(st->mount_point, rootfs) != 0)
                return cc_error_set(err, EPERM,
                                    "image_guest_pull mount point %s refused: the rootfs of %s "
                                    "is made at %s",
                                    st->mount_point, container_id, rootfs);
        if (strcmp(st->source, "pause") == 0)
                return 0;
        return pull(a, st->source, container_id, NULL, err);
}

static int pull_image(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_,
                      ProtobufCMessage *resp_, struct cc_error **err)
{
        struct agent *a = userdata;
        const Grpc__PullImageRequest *req = (const void *)req_;
        Grpc__PullImageResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "PullImage",
                                cc_isempty(req->container_id) ? NULL : req->container_id, err);
        if (r < 0)
                return r;
        if (cc_isempty(req->image) || strlen(req->image) > 4096)
                return cc_error_set(err, EINVAL, "image reference is empty or too long");
        /* The rootfs goes under the container's directory: without an id there is nowhere. */
        if (cc_isempty(req->container_id))
                return cc_error_set(err, EINVAL, "PullImage needs a container_id");
        if ((r = agent_validate_id(req->container_id, "container id", err)) < 0)
                return r;
        if ((r = pull(a, req->image, req->container_id, req->source_creds, err)) < 0)
                return r;
        /* The policy's "image" is checked against what was pulled, at CreateContainer. */
        if ((r = agent_note_pulled(a, req->container_id, req->image)) < 0)
                return r;
        resp->image_ref = cc_ttrpc_call_strdup(call, req->image);
        return resp->image_ref ? 0 : -ENOMEM;
}

void agent_image_release(struct agent *a, const char *container_id)
{
        agent_image_remove_rootfs(a->cfg.containers_dir, container_id);
}

static const struct cc_ttrpc_method image_methods[] = {
        {"PullImage", &grpc__pull_image_request__descriptor, &grpc__pull_image_response__descriptor,
         pull_image, 0},
};

static const struct cc_ttrpc_service image_service = {
        .name = "grpc.Image",
        .methods = image_methods,
        .n_methods = CC_ARRAY_SIZE(image_methods),
};

int agent_rpc_register_image(struct agent *a, struct cc_ttrpc_server *srv)
{
        return cc_ttrpc_server_register(srv, &image_service, a);
}
