# guest-agent/image/: libccimage (registry client, streaming layer unpack, ocicrypt, key
# brokers) used by the agent's PullImage, and the host command cc-image-pull built from it.
IMG_SRCS := $(filter-out guest-agent/image/cc-image-pull.c,$(wildcard guest-agent/image/*.c))
IMG_OBJS := $(IMG_SRCS:%.c=$(BUILD)/%.o)
IMG_PKGS := libcurl libarchive libcrypto libisal libzstd
LIBIMG := $(BUILD)/libccimage.a
LIBS := $(LIBIMG) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs $(IMG_PKGS))

$(IMG_OBJS) $(BUILD)/guest-agent/image/cc-image-pull.o: CFLAGS += $(shell $(PKG_CONFIG) --cflags $(IMG_PKGS))

$(LIBIMG): $(IMG_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

BINS += $(BUILD)/cc-image-pull

# Links only what it uses, so it builds even while other components are half-done.
$(BUILD)/cc-image-pull: $(BUILD)/guest-agent/image/cc-image-pull.o $(LIBIMG) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

INTEGRATION_TESTS += test/integration/img-pull.sh test/integration/img-hostile.sh \
	test/integration/img-encrypted.sh test/integration/img-faults.sh
INTEGRATION_TESTS += test/integration/agent-pull.sh
