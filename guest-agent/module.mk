# guest-agent/: cc-agent (the in-guest agent: ttrpc services, container runtime, PID 1 duties)
# as libagent.a plus a thin main.c, and the guest image (kernel + initramfs).
# guest-agent/image/ (image pull, libccimage.a) has its own module.mk.
AGENT_SRCS := $(filter-out guest-agent/main.c,$(wildcard guest-agent/*.c))
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o)
LIBAGENT := $(BUILD)/libagent.a
LIBS := $(LIBAGENT) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs libseccomp libcap)
# Paths are length-checked where truncation matters; GCC cannot see that through snprintf.
$(AGENT_OBJS): CFLAGS += -Wno-format-truncation

$(LIBAGENT): $(AGENT_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

BINS += $(BUILD)/cc-agent
$(BUILD)/cc-agent: $(BUILD)/guest-agent/main.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

# cc-agent-ctl: the test and debugging client (a C client of the agent API, as a shim uses it).
BINS += $(BUILD)/cc-agent-ctl
$(BUILD)/cc-agent-ctl: $(BUILD)/guest-agent/ctl/agent-ctl.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
INTEGRATION_TESTS += test/integration/agent-host.sh
