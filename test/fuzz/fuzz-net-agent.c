/*
 * Fuzz target: validation of the network requests the host sends the agent (guest-agent/network
 * validate.c). The first byte chooses the message (UpdateInterfaceRequest, UpdateRoutesRequest,
 * AddARPNeighborsRequest, or resolv.conf lines); the rest is its protobuf encoding, or text for
 * the DNS lines. Validation must never crash, whatever the host sends; nothing is applied.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/error.h"

#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        struct cc_error *err = NULL;
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        switch (data[0] % 4) {
        case 0: {
                Grpc__UpdateInterfaceRequest *m =
                        grpc__update_interface_request__unpack(NULL, n, p);
                if (m) {
                        (void)agent_net_validate_interface(m->interface, &err);
                        grpc__update_interface_request__free_unpacked(m, NULL);
                }
                break;
        }
        case 1: {
                Grpc__UpdateRoutesRequest *m = grpc__update_routes_request__unpack(NULL, n, p);
                if (m) {
                        for (size_t i = 0; m->routes && i < m->routes->n_routes; i++)
                                (void)agent_net_validate_route(m->routes->routes[i], &err);
                        grpc__update_routes_request__free_unpacked(m, NULL);
                }
                break;
        }
        case 2: {
                Grpc__AddARPNeighborsRequest *m =
                        grpc__add_arpneighbors_request__unpack(NULL, n, p);
                if (m) {
                        for (size_t i = 0; m->neighbors && i < m->neighbors->n_arpneighbors; i++)
                                (void)agent_net_validate_neighbor(m->neighbors->arpneighbors[i],
                                                                  &err);
                        grpc__add_arpneighbors_request__free_unpacked(m, NULL);
                }
                break;
        }
        default: {
                /* NUL-separated DNS lines, checked one by one. */
                char *text = malloc(n + 1);
                if (!text)
                        return 0;
                memcpy(text, p, n);
                text[n] = 0;
                for (char *line = text; line < text + n; line += strlen(line) + 1)
                        (void)agent_net_validate_dns(line, &err);
                free(text);
                break;
        }
        }
        cc_error_free(err);
        return 0;
}
