# shim/network/: libshimnet.a, the pod network of the shim (Kata's tcfilter model): reads the
# pod namespace's interfaces, addresses, routes and neighbours over netlink (libmnl), creates a
# tap per interface and mirrors veth <-> tap with tc ingress u32 + mirred redirect filters.
SHIMNET_SRCS := $(wildcard shim/network/*.c)
SHIMNET_OBJS := $(SHIMNET_SRCS:%.c=$(BUILD)/%.o)
LIBSHIMNET := $(BUILD)/libshimnet.a
LIBS := $(LIBSHIMNET) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs libmnl)
$(SHIMNET_OBJS): CFLAGS += $(shell $(PKG_CONFIG) --cflags libmnl)

$(LIBSHIMNET): $(SHIMNET_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

INTEGRATION_TESTS += test/integration/net-tcfilter.sh
