/*
 * cc-agent-ctl's network requests: update-interface, update-routes, list-interfaces,
 * list-routes, add-arp, with their arguments after "--" and one line of output per interface
 * or route.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/ctl/ctl.h"
#include "kata/types.pb-c.h"

/* Splits "a,b,c" into at most n fields in place (missing ones are ""); returns the count. */
static size_t split_fields(char *s, char **f, size_t n)
{
        size_t i = 0;
        for (; i < n; i++) {
                f[i] = s ? s : (char *)"";
                char *comma = s ? strchr(s, ',') : NULL;
                if (comma)
                        *comma = 0;
                s = comma ? comma + 1 : NULL;
        }
        return i;
}

/* "ADDR/LEN" (or "ADDR") into an IPAddress; the family follows from the address. */
static Types__IPAddress *ipaddress_new(char *s)
{
        Types__IPAddress *ip = ctl_calloc(1, sizeof(*ip));
        types__ipaddress__init(ip);
        char *slash = strchr(s, '/');
        if (slash)
                *slash = 0;
        ip->address = s;
        ip->mask = slash ? slash + 1 : (char *)"";
        ip->family = strchr(s, ':') ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
        return ip;
}

static const char *or_dash(const char *s)
{
        return s && *s ? s : "-";
}

/* One line per interface: NAME HWADDR mtu=N ADDR/MASK... */
static void print_interface(const Types__Interface *itf)
{
        printf("%s %s mtu=%" PRIu64, or_dash(itf->name), or_dash(itf->hwaddr), itf->mtu);
        for (size_t i = 0; i < itf->n_ipaddresses; i++)
                printf(" %s/%s", itf->ipaddresses[i]->address, itf->ipaddresses[i]->mask);
        printf("\n");
}

/* One line per route: DEST via GW dev DEV scope N ("-" for an empty field). */
static void print_routes(const Grpc__Routes *rs)
{
        for (size_t i = 0; i < rs->n_routes; i++)
                printf("%s via %s dev %s scope %u\n", or_dash(rs->routes[i]->dest),
                       or_dash(rs->routes[i]->gateway), or_dash(rs->routes[i]->device),
                       rs->routes[i]->scope);
}

static int cmd_update_interface(struct opts *o)
{
        /* update-interface -- MAC NAME MTU [ADDR/LEN...] (MTU 0 keeps the NIC's). */
        if (o->n_args < 3 || o->n_args - 3 > MAX_LIST) {
                fprintf(stderr, "usage: update-interface -- MAC NAME MTU [ADDR/LEN...]\n");
                return 2;
        }
        Types__Interface itf = TYPES__INTERFACE__INIT;
        Types__IPAddress *ips[MAX_LIST];
        itf.hwaddr = o->args[0];
        itf.name = o->args[1];
        itf.device = o->args[1];
        itf.mtu = strtoull(o->args[2], NULL, 10);
        itf.n_ipaddresses = o->n_args - 3;
        for (size_t i = 0; i < itf.n_ipaddresses; i++)
                ips[i] = ipaddress_new(o->args[3 + i]);
        itf.ipaddresses = ips;
        Grpc__UpdateInterfaceRequest req = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
        req.interface = &itf;
        Types__Interface *resp = NULL;
        ctl_call(AGENT, "UpdateInterface", &req.base, &types__interface__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        print_interface(resp);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        for (size_t i = 0; i < itf.n_ipaddresses; i++)
                free(ips[i]);
        return 0;
}

static int cmd_update_routes(struct opts *o)
{
        /* update-routes -- DEST,GATEWAY,DEVICE[,SCOPE]... ("default" or "" for 0/0). */
        if (o->n_args > MAX_LIST) {
                fprintf(stderr, "usage: update-routes -- DEST,GW,DEV[,SCOPE]...\n");
                return 2;
        }
        Types__Route routes[MAX_LIST], *rp[MAX_LIST];
        for (size_t i = 0; i < o->n_args; i++) {
                char *f[4];
                split_fields(o->args[i], f, 4);
                types__route__init(&routes[i]);
                routes[i].dest = f[0];
                routes[i].gateway = f[1];
                routes[i].device = f[2];
                routes[i].scope = (uint32_t)strtoul(f[3], NULL, 10);
                routes[i].family = strchr(f[0], ':') || strchr(f[1], ':') ? TYPES__IPFAMILY__v6
                                                                          : TYPES__IPFAMILY__v4;
                rp[i] = &routes[i];
        }
        Grpc__Routes rs = GRPC__ROUTES__INIT;
        rs.n_routes = o->n_args;
        rs.routes = rp;
        Grpc__UpdateRoutesRequest req = GRPC__UPDATE_ROUTES_REQUEST__INIT;
        req.routes = &rs;
        Grpc__Routes *resp = NULL;
        ctl_call(AGENT, "UpdateRoutes", &req.base, &grpc__routes__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        print_routes(resp);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
}

static int cmd_list_interfaces(struct opts *o)
{
        Grpc__ListInterfacesRequest req = GRPC__LIST_INTERFACES_REQUEST__INIT;
        Grpc__Interfaces *resp = NULL;
        ctl_call(AGENT, "ListInterfaces", &req.base, &grpc__interfaces__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        for (size_t i = 0; i < resp->n_interfaces; i++)
                print_interface(resp->interfaces[i]);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
}

static int cmd_list_routes(struct opts *o)
{
        Grpc__ListRoutesRequest req = GRPC__LIST_ROUTES_REQUEST__INIT;
        Grpc__Routes *resp = NULL;
        ctl_call(AGENT, "ListRoutes", &req.base, &grpc__routes__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        print_routes(resp);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
}

static int cmd_add_arp(struct opts *o)
{
        /* add-arp -- IP,LLADDR,DEVICE... (permanent entries). */
        if (o->n_args == 0 || o->n_args > MAX_LIST) {
                fprintf(stderr, "usage: add-arp -- IP,LLADDR,DEVICE...\n");
                return 2;
        }
        Types__ARPNeighbor ne[MAX_LIST], *np[MAX_LIST];
        for (size_t i = 0; i < o->n_args; i++) {
                char *f[3];
                split_fields(o->args[i], f, 3);
                types__arpneighbor__init(&ne[i]);
                ne[i].toipaddress = ipaddress_new(f[0]);
                ne[i].lladdr = f[1];
                ne[i].device = f[2];
                np[i] = &ne[i];
        }
        Grpc__ARPNeighbors ns = GRPC__ARPNEIGHBORS__INIT;
        ns.n_arpneighbors = o->n_args;
        ns.arpneighbors = np;
        Grpc__AddARPNeighborsRequest req = GRPC__ADD_ARPNEIGHBORS_REQUEST__INIT;
        req.neighbors = &ns;
        ctl_call(AGENT, "AddARPNeighbors", &req.base, NULL, NULL, 0, true);
        for (size_t i = 0; i < o->n_args; i++)
                free(ne[i].toipaddress);
        return 0;
}

const struct ctl_command ctl_net_commands[] = {
        {"update-interface", false, cmd_update_interface},
        {"update-routes", false, cmd_update_routes},
        {"list-interfaces", false, cmd_list_interfaces},
        {"list-routes", false, cmd_list_routes},
        {"add-arp", false, cmd_add_arp},
        {NULL},
};
