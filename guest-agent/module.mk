# guest-agent/: cc-agent (the in-guest agent: ttrpc services, container runtime, PID 1 duties)
# as libagent.a plus a thin main.c, and the guest image (kernel + initramfs).
# guest-agent/image/ (image pull, libccimage.a) has its own module.mk.
# The agent's parts, one folder each (README.md): rpc/ (the ttrpc services), runtime/ (containers,
# spawn, reaper, stdio, mounts, cgroups), init/ (PID 1, config, transport, selfcheck, initdata),
# policy/, storage/ (the pod's volumes, trusted storage), pull/ (the in-process pull). The helper
# programs' own sources (storage/cc-agent-storage.c, pull/cc-agent-pull.c, pull/confine.c) are not
# part of the library.
AGENT_DIRS := rpc runtime init policy storage pull
AGENT_SRCS := $(filter-out guest-agent/main.c guest-agent/storage/cc-agent-storage.c \
	guest-agent/pull/cc-agent-pull.c guest-agent/pull/confine.c, \
	$(wildcard guest-agent/*.c $(AGENT_DIRS:%=guest-agent/%/*.c)))
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o)
LIBAGENT := $(BUILD)/libagent.a
LIBS := $(LIBAGENT) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs libseccomp libcap libcrypto)
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
$(BUILD)/cc-agent-ctl: $(patsubst %.c,$(BUILD)/%.o,$(wildcard guest-agent/ctl/*.c)) $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
INTEGRATION_TESTS += test/integration/agent-host.sh
INTEGRATION_TESTS += test/integration/agent-net-rpc.sh
INTEGRATION_TESTS += test/integration/agent-hostile.sh

# cc-agent-static: the agent linked -static-pie, with image pull in a helper process:
# guest-agent/variants/image-pull-exec.c (agent_puller_helper) replaces image-pull.c's puller and starts cc-agent-pull
# per pull, so libccimage (libcurl and its chain, OpenSSL, ISA-L, zstd, libarchive) is never
# mapped by PID 1; variants/pull-libs.c mounts the guest image's squashfs of the helper's
# libraries before the first one starts. No loader or shared libraries for the agent itself, and few mapped pages.
# (The pull library cannot be linked statically on Debian 12: libcurl's and libisal's
# dependencies have no static archives.)
AGENT_STATIC_LIBS := -l:libprotobuf-c.a -l:libjson-c.a -l:libseccomp.a -l:libcap.a -l:libcrypto.a \
	-l:libz.a
# Its main.o is compiled with the helper's puller (struct agent_puller in agent.h): a build-time
# switch, so that no link order decides which pull code is in the binary.
$(BUILD)/guest-agent/main-static.o: guest-agent/main.c | $(GENERATED_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) -DAGENT_PULLER=agent_puller_helper $(CFLAGS) -c -o $@ $<
$(BUILD)/cc-agent-static: $(BUILD)/guest-agent/main-static.o \
		$(BUILD)/guest-agent/variants/image-pull-exec.o \
		$(BUILD)/guest-agent/variants/pull-libs.o $(LIBAGENT) $(LIBAGENTNET) $(LIBKBC) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -static-pie -Wl,-z,relro,-z,now $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBAGENT) \
		$(LIBAGENTNET) $(LIBKBC) $(LIBCC) $(AGENT_STATIC_LIBS) $(LDLIBS)

# cc-agent-storage: the trusted storage helper (guest-agent/storage/), dynamically linked with
# libcryptsetup (Debian 12 has no static archive of it).
BINS += $(BUILD)/cc-agent-storage
$(BUILD)/cc-agent-storage: $(BUILD)/guest-agent/storage/cc-agent-storage.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs libcryptsetup)

# cc-agent-pull: the pull helper (guest-agent/pull/), dynamically linked with libccimage.
BINS += $(BUILD)/cc-agent-pull
$(BUILD)/cc-agent-pull: $(BUILD)/guest-agent/pull/cc-agent-pull.o \
		$(BUILD)/guest-agent/pull/confine.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

# The guest kernel. GUEST_KERNEL=project (the default): the project's own, built from Debian's
# linux-source-6.1 with guest-kernel/config-fragment (tools/build-guest-kernel.sh; cached in
# build/guest/kernel-project by source version and fragment, so a rebuild of the image costs
# nothing; the first build takes 6-12 minutes on two shared cores). GUEST_KERNEL=debian:
# Debian's kernel package, fetched with apt-get download and never installed on the host, for
# comparison and for hosts where building is not wanted; GUEST_KERNEL_PKG=linux-image-amd64
# selects the standard kernel (TDX and SEV guest drivers as modules) instead of the cloud one.
GUEST_KERNEL ?= project
GUEST_KERNEL_PKG ?= linux-image-cloud-amd64
GUEST_DIR := build/guest
GUEST_KERNEL_DIR := $(if $(filter project,$(GUEST_KERNEL)),$(GUEST_DIR)/kernel-project,$(GUEST_DIR)/kernel-$(GUEST_KERNEL_PKG))
.PHONY: guest-kernel guest-kernel-debian guest-kernel-dir
# guest-kernel-dir: the selected kernel, built or fetched, and its directory as the last line
# of stdout (for tests and benchmarks).
guest-kernel-dir: $(if $(filter project,$(GUEST_KERNEL)),guest-kernel,guest-kernel-debian)
	@echo $(GUEST_KERNEL_DIR)
guest-kernel:
	bash tools/build-guest-kernel.sh --out $(GUEST_DIR)/kernel-project
guest-kernel-debian:
	bash tools/fetch-guest-kernel.sh $(GUEST_DIR)/kernel-$(GUEST_KERNEL_PKG) $(GUEST_KERNEL_PKG)

# The guest image: the kernel above + an initramfs with the agent as /init. By default the
# agent is cc-agent-static and the pull helper /usr/libexec/cc-agent/cc-agent-pull goes in with
# the shared libraries it needs; GUEST_AGENT_LINK=dynamic puts in cc-agent instead, which pulls
# in its own process (and maps those libraries all the time). Always built from the plain
# (non-sanitizer) build.
GUEST_AGENT_LINK ?= static
GUEST_AGENT := build/$(if $(filter dynamic,$(GUEST_AGENT_LINK)),cc-agent,cc-agent-static)
GUEST_PULL_HELPER := $(if $(filter dynamic,$(GUEST_AGENT_LINK)),,build/cc-agent-pull)
GUEST_POLICY ?=
# GUEST_TEE_DEFAULTS=1: the image marker that gives the agent its TEE defaults (tee.c).
GUEST_TEE_DEFAULTS ?=
GUEST_DEBUG_SHELL ?=
.PHONY: guest-image
guest-image: $(if $(filter project,$(GUEST_KERNEL)),guest-kernel,guest-kernel-debian)
	$(MAKE) --no-print-directory BUILD=build SANITIZE= FUZZ= $(GUEST_AGENT) $(GUEST_PULL_HELPER) \
		build/cc-agent-storage
	bash guest-agent/build-guest-image.sh --agent $(GUEST_AGENT) \
		$(if $(GUEST_PULL_HELPER),--pull-helper $(GUEST_PULL_HELPER)) \
		--storage-helper build/cc-agent-storage \
		--kernel-dir $(GUEST_KERNEL_DIR) --out $(GUEST_DIR) \
		$(if $(GUEST_POLICY),--policy $(GUEST_POLICY)) \
		$(if $(GUEST_TEE_DEFAULTS),--tee-defaults) \
		$(if $(GUEST_DEBUG_SHELL),--debug-shell)
INTEGRATION_TESTS += test/integration/agent-vm.sh
INTEGRATION_TESTS += test/integration/agent-serial.sh
INTEGRATION_TESTS += test/integration/agent-vm-pull.sh
INTEGRATION_TESTS += test/integration/agent-vm-trusted.sh
INTEGRATION_TESTS += test/integration/agent-hostile-vm.sh
# Sanitizer and fuzz builds cannot link -static-pie.
ifeq ($(SANITIZE)$(FUZZ),)
all: $(BUILD)/cc-agent-static
endif
# The kernel's config check (cached build); the byte-identical rebuild is a second full kernel
# build, too slow for every `make test`: its own target.
INTEGRATION_TESTS += test/integration/guest-kernel.sh
.PHONY: guest-kernel-repro
guest-kernel-repro:
	bash test/integration/guest-kernel-repro.sh
