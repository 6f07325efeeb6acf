/*
 * grpc.Image (Kata CC-0.8.0 image.proto): PullImage inside the guest. This is where the
 * image-pull library (guest-agent/image/, libccimage.a, img_ prefix) plugs in: the handler
 * validates and admits the request, then will call it to pull, verify and unpack the image
 * into <containers_dir>/<container_id>/rootfs, the rootfs path CreateContainer then accepts.
 * Until that library lands the call answers Unimplemented.
 */
#include <string.h>

#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/validate.h"
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
        if (cc_isempty(req->image) || strlen(req->image) > 4096)
                return cc_error_set(err, EINVAL, "image reference is empty or too long");
        return cc_error_set(err, EOPNOTSUPP, "PullImage: image pulling is not built in yet");
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
