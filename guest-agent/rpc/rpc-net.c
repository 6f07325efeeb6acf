/*
 * The network requests of grpc.AgentService: UpdateInterface, UpdateRoutes, ListInterfaces,
 * ListRoutes and AddARPNeighbors, admitted like every other request (policy, then the
 * validation of guest-agent/network/) and applied with libagentnet in the agent's network
 * namespace (in the guest, the VM's only one, which every container shares).
 *
 * libagentnet returns its replies as heap messages; the ttrpc server wants the response in
 * memory that lives as long as the call. The reply is therefore packed and unpacked again into
 * the call's own memory (cc_ttrpc_call_alloc), then copied into the response. The messages are
 * small (bounded by AGENT_NET_MAX_*), so the extra pass costs nothing that matters.
 */
#include <errno.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

static void *call_alloc(void *data, size_t size)
{
        return cc_ttrpc_call_alloc(data, size);
}

static void call_free(void *data, void *ptr)
{
        /* Freed with the call. */
}

/* Moves `reply` (a heap message of resp's type, freed here) into resp, in the call's memory. */
static int reply_to_resp(struct cc_ttrpc_call *call, ProtobufCMessage *reply,
                         ProtobufCMessage *resp, struct cc_error **err)
{
        size_t len = protobuf_c_message_get_packed_size(reply);
        uint8_t *buf = cc_ttrpc_call_alloc(call, len ? len : 1);
        if (!buf) {
                protobuf_c_message_free_unpacked(reply, NULL);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        protobuf_c_message_pack(reply, buf);
        protobuf_c_message_free_unpacked(reply, NULL);
        ProtobufCAllocator alloc = {.alloc = call_alloc, .free = call_free, .allocator_data = call};
        ProtobufCMessage *copy = protobuf_c_message_unpack(resp->descriptor, &alloc, len, buf);
        if (!copy)
                return cc_error_set(err, ENOMEM, "out of memory copying the reply");
        memcpy(resp, copy, resp->descriptor->sizeof_message);
        return 0;
}

int agent_rpc_update_interface(struct cc_ttrpc_call *call, void *userdata,
                               const ProtobufCMessage *req_, ProtobufCMessage *resp_,
                               struct cc_error **err)
{
        const Grpc__UpdateInterfaceRequest *req = (const void *)req_;
        int r = agent_rpc_admit(userdata, "UpdateInterface", NULL, err);
        if (r < 0)
                return r;
        if (!req->interface)
                return cc_error_set(err, EINVAL, "UpdateInterface without an interface");
        Types__Interface *reply = NULL;
        if ((r = agent_net_update_interface(req->interface, &reply, err)) < 0)
                return r;
        cc_log_info("interface updated name=%s hwaddr=%s addresses=%zu", reply->name, reply->hwaddr,
                    reply->n_ipaddresses);
        return reply_to_resp(call, &reply->base, resp_, err);
}

int agent_rpc_update_routes(struct cc_ttrpc_call *call, void *userdata,
                            const ProtobufCMessage *req_, ProtobufCMessage *resp_,
                            struct cc_error **err)
{
        const Grpc__UpdateRoutesRequest *req = (const void *)req_;
        int r = agent_rpc_admit(userdata, "UpdateRoutes", NULL, err);
        if (r < 0)
                return r;
        /* No routes message: nothing to replace; answer with the current table. */
        Grpc__Routes none = GRPC__ROUTES__INIT;
        Grpc__Routes *reply = NULL;
        if ((r = agent_net_update_routes(req->routes ? req->routes : &none, &reply, err)) < 0)
                return r;
        cc_log_info("routes updated requested=%zu now=%zu", req->routes ? req->routes->n_routes : 0,
                    reply->n_routes);
        return reply_to_resp(call, &reply->base, resp_, err);
}

int agent_rpc_list_interfaces(struct cc_ttrpc_call *call, void *userdata,
                              const ProtobufCMessage *req_, ProtobufCMessage *resp_,
                              struct cc_error **err)
{
        int r = agent_rpc_admit(userdata, "ListInterfaces", NULL, err);
        if (r < 0)
                return r;
        Grpc__Interfaces *reply = NULL;
        if ((r = agent_net_list_interfaces(&reply, err)) < 0)
                return r;
        return reply_to_resp(call, &reply->base, resp_, err);
}

int agent_rpc_list_routes(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_,
                          ProtobufCMessage *resp_, struct cc_error **err)
{
        int r = agent_rpc_admit(userdata, "ListRoutes", NULL, err);
        if (r < 0)
                return r;
        Grpc__Routes *reply = NULL;
        if ((r = agent_net_list_routes(&reply, err)) < 0)
                return r;
        return reply_to_resp(call, &reply->base, resp_, err);
}

int agent_rpc_add_arp_neighbors(struct cc_ttrpc_call *call, void *userdata,
                                const ProtobufCMessage *req_, ProtobufCMessage *resp_,
                                struct cc_error **err)
{
        const Grpc__AddARPNeighborsRequest *req = (const void *)req_;
        int r = agent_rpc_admit(userdata, "AddARPNeighbors", NULL, err);
        if (r < 0)
                return r;
        if (!req->neighbors || req->neighbors->n_arpneighbors == 0)
                return 0;
        if ((r = agent_net_add_neighbors(req->neighbors, err)) < 0)
                return r;
        cc_log_info("ARP neighbours added count=%zu", req->neighbors->n_arpneighbors);
        return 0;
}
