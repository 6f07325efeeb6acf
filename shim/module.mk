# shim/: containerd-shim-kata-cc-v2 (the shim v2 containerd runs for io.containerd.kata-cc.v2)
# as libshim.a plus a thin main.c. Uses libhv (the pod's VM), libcc (ttrpc, TOML, JSON) and
# OpenSSL's libcrypto (SHA-256 of the socket name, base64 of guest-pull volumes).
SHIM_SRCS := $(filter-out shim/main.c,$(wildcard shim/*.c))
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/%.o)
LIBSHIM := $(BUILD)/libshim.a
LIBS := $(LIBSHIM) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs libcrypto)
$(SHIM_OBJS) $(BUILD)/shim/main.o: CFLAGS += $(shell $(PKG_CONFIG) --cflags libcrypto)

$(LIBSHIM): $(SHIM_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

BINS += $(BUILD)/containerd-shim-kata-cc-v2
$(BUILD)/containerd-shim-kata-cc-v2: $(BUILD)/shim/main.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
INTEGRATION_TESTS += test/integration/shim-ctr.sh
