# guest-agent/network/: libagentnet.a, the agent's network requests (UpdateInterface,
# UpdateRoutes, AddARPNeighbors, ListInterfaces, ListRoutes, resolv.conf) applied with rtnetlink
# in the current namespace. Netlink through libcc's cc_nl_ (lib/netlink.c), no library: the
# agent is linked -static-pie for the guest image and Debian ships no static libmnl.
AGENTNET_SRCS := $(wildcard guest-agent/network/*.c)
AGENTNET_OBJS := $(AGENTNET_SRCS:%.c=$(BUILD)/%.o)
LIBAGENTNET := $(BUILD)/libagentnet.a
LIBS := $(LIBAGENTNET) $(LIBS)

$(LIBAGENTNET): $(AGENTNET_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

INTEGRATION_TESTS += test/integration/net-agent.sh
