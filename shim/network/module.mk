# shim/network/: libshimnet.a, the pod network of the shim (Kata's tcfilter model): reads the
# pod namespace's interfaces, addresses, routes and neighbours over rtnetlink (libcc's cc_nl_,
# lib/netlink.c: no netlink library, so the static shim can link it), creates a tap per
# interface and mirrors veth <-> tap with tc ingress u32 + mirred redirect filters.
SHIMNET_SRCS := $(wildcard shim/network/*.c)
SHIMNET_OBJS := $(SHIMNET_SRCS:%.c=$(BUILD)/%.o)
LIBSHIMNET := $(BUILD)/libshimnet.a
LIBS := $(LIBSHIMNET) $(LIBS)

$(LIBSHIMNET): $(SHIMNET_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

INTEGRATION_TESTS += test/integration/net-tcfilter.sh test/integration/net-libvirt.sh
