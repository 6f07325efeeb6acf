# snapshotter/: cc-snapshotter (containerd proxy snapshotter, local overlay + guest pull) and
# its host mount helper nydus-overlayfs. The logic is libsnap.a; main.c is the daemon.
SNAP_SRCS := $(filter-out snapshotter/main.c,$(wildcard snapshotter/*.c))
SNAP_OBJS := $(SNAP_SRCS:%.c=$(BUILD)/%.o)
LIBSNAP := $(BUILD)/libsnap.a
LIBS := $(LIBSNAP) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs sqlite3)

$(LIBSNAP): $(SNAP_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

BINS += $(BUILD)/cc-snapshotter $(BUILD)/nydus-overlayfs

$(BUILD)/cc-snapshotter: $(BUILD)/snapshotter/main.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $< $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

$(BUILD)/nydus-overlayfs: $(BUILD)/snapshotter/helper/nydus-overlayfs.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $<

INTEGRATION_TESTS += test/integration/snap-local.sh test/integration/snap-guest-pull.sh \
	test/integration/snap-crash.sh
