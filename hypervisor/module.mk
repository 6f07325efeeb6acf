# hypervisor/: libhv.a (the VM interface hv.h, backends qemu/clh/libvirt/mock, TEE profiles)
# and cc-runtime (the host check command).
HV_SRCS := $(filter-out hypervisor/main.c,$(wildcard hypervisor/*.c hypervisor/*/*.c))
HV_OBJS := $(HV_SRCS:%.c=$(BUILD)/%.o)
LIBHV := $(BUILD)/libhv.a
LIBS := $(LIBHV) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs libvirt)
$(HV_OBJS): CFLAGS += $(shell $(PKG_CONFIG) --cflags libvirt)

$(LIBHV): $(HV_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# libhv-nolibvirt.a: libhv without the libvirt backend, for the static shim (libvirt.so cannot
# be linked statically). A build-time switch, not link order: hv.c is compiled a second time
# with -DHV_NO_LIBVIRT, whose backend table names a stand-in that refuses "libvirt" with an
# error, and no libvirt object is in the archive.
LIBHV_NOLIBVIRT := $(BUILD)/libhv-nolibvirt.a
HV_NOLIBVIRT_OBJS := $(BUILD)/hypervisor/hv-nolibvirt.o \
	$(filter-out $(BUILD)/hypervisor/hv.o $(BUILD)/hypervisor/libvirt/%,$(HV_OBJS))
$(BUILD)/hypervisor/hv-nolibvirt.o: hypervisor/hv.c | $(GENERATED_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) -DHV_NO_LIBVIRT $(CFLAGS) -c -o $@ $<
$(LIBHV_NOLIBVIRT): $(HV_NOLIBVIRT_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
# Its unit test links it instead of libhv.a (and no libvirt library).
$(BUILD)/test/unit/test-hv-nolibvirt: $(BUILD)/test/unit/test-hv-nolibvirt.o $(LIBHV_NOLIBVIRT) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $< $(LIBHV_NOLIBVIRT) $(LIBCC) \
		$(shell $(PKG_CONFIG) --libs json-c libprotobuf-c) $(CMOCKA_LIBS) -ldl -lpthread

BINS += $(BUILD)/cc-runtime
$(BUILD)/cc-runtime: $(BUILD)/hypervisor/main.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

INTEGRATION_TESTS += test/integration/hv-qemu.sh test/integration/hv-check.sh \
	test/integration/hv-libvirt.sh test/integration/hv-hotplug.sh
