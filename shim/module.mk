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

# The shim is linked -static-pie by default (SHIM_LINK=static): one daemon runs per pod, and a
# static binary maps far fewer pages than glibc + libcrypto + json-c + protobuf-c + libvirt's
# chain of shared libraries (bench/shim-rss.sh). That build links libhv-nolibvirt.a (no libvirt
# backend, hypervisor/module.mk); SHIM_LINK=dynamic links everything, libvirt included. Both
# link the pod network (libshimnet, raw netlink through libcc: no library of its own).
# Sanitizer and fuzz builds are always dynamic.
SHIM_LINK ?= static
ifneq ($(SANITIZE)$(FUZZ),)
SHIM_LINK := dynamic
endif
# libccattest: only its initdata and encoding objects are pulled in (shim/initdata.c), which
# need zlib and libcrypto's one-shot SHA functions, not libcurl.
SHIM_STATIC_LIBS := -l:libprotobuf-c.a -l:libjson-c.a -l:libcrypto.a -l:libz.a
BINS += $(BUILD)/containerd-shim-kata-cc-v2
ifeq ($(SHIM_LINK),static)
$(BUILD)/containerd-shim-kata-cc-v2: $(BUILD)/shim/main.o \
		$(LIBSHIM) $(LIBSHIMNET) $(LIBHV_NOLIBVIRT) $(LIBKBC) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)set -o pipefail; $(CC) -static-pie -Wl,-z,relro,-z,now $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBSHIM) \
		$(LIBSHIMNET) $(LIBHV_NOLIBVIRT) $(LIBKBC) $(LIBCC) $(SHIM_STATIC_LIBS) $(LDLIBS) 2>&1 | \
		{ grep -v -e "statically linked applications requires at runtime" -e "in function" || true; }
else
$(BUILD)/containerd-shim-kata-cc-v2: $(BUILD)/shim/main.o $(LIBSHIM) $(LIBSHIMNET) $(LIBHV) $(LIBKBC) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBSHIM) $(LIBSHIMNET) $(LIBHV) $(LIBKBC) $(LIBCC) \
		$(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
endif
INTEGRATION_TESTS += test/integration/shim-ctr.sh test/integration/net-pod.sh

# cc-runtime check describes each configuration's annotation policy (shim/annotations.c).
$(BUILD)/cc-runtime: $(LIBSHIM)
