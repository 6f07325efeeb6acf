/*
 * grpc.Image for an agent built without the image-pull library (cc-agent-static): PullImage
 * answers Unimplemented and there is no pulled rootfs to release. Linked ahead of libagent.a,
 * so rpc-image.o (and libccimage with libcurl, libarchive, OpenSSL, ...) stays out. This is
 * the agent for guests whose images are pulled by a separate helper, and the build that the
 * RSS and boot benchmarks measure as "agent core".
 */
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "kata/agent.pb-c.h"
#include "kata/image.pb-c.h"

static int pull_image(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_,
                      ProtobufCMessage *resp_, struct cc_error **err)
{
        struct agent *a = userdata;
        const Grpc__PullImageRequest *req = (const void *)req_;
        int r = agent_rpc_admit(a, "PullImage",
                                cc_isempty(req->container_id) ? NULL : req->container_id, err);
        if (r < 0)
                return r;
        return cc_error_set(err, EOPNOTSUPP, "PullImage: this agent is built without image pull");
}

int agent_image_pull(struct agent *a, const char *image, const char *container_id,
                     const char *creds, struct cc_error **err)
{
        return cc_error_set(err, EOPNOTSUPP, "pulling %s: this agent is built without image pull",
                            image);
}

int agent_image_storages(struct agent *a, const char *container_id, struct Grpc__Storage **storages,
                         size_t n, struct cc_error **err)
{
        /* The sandbox's "pause" needs no image; anything else would need the pull library. */
        if (n == 1 && storages[0] && cc_streq(storages[0]->driver, "image_guest_pull") &&
            cc_streq(storages[0]->source, "pause"))
                return 0;
        return cc_error_set(err, EOPNOTSUPP, "storages need the image-pull library, which this "
                                             "agent is built without");
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

void agent_image_release(struct agent *a, const char *container_id)
{
}
