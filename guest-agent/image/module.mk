# guest-agent/image/: libccimage (registry client, streaming layer unpack, ocicrypt, key
# brokers) used by the agent's PullImage, and the host command cc-image-pull built from it.
IMG_SRCS := $(filter-out guest-agent/image/cc-image-pull.c,$(wildcard guest-agent/image/*.c))
IMG_OBJS := $(IMG_SRCS:%.c=$(BUILD)/%.o)
IMG_PKGS := libcurl libarchive libcrypto libisal libzstd zlib
LIBIMG := $(BUILD)/libccimage.a
LIBS := $(LIBIMG) $(LIBS)
# libarchive is linked from its static archive: only its tar reader is used (we inflate and
# decrypt ourselves), and the shared library drags libxml2 and ICU (for the xar format) into the
# guest image, 31 MB of ICU data alone. Static, the linker takes only the tar reader's objects,
# which need none of the libraries of `pkg-config --static --libs libarchive` (no compression
# filter, no ACL or xattr code, no xar), so none is named: a fresh machine needs no -dev package
# beyond libarchive-dev. bench/agent-results.md has the numbers.
# Signature verification (sig*.c, openpgp.c): libyaml for registries.d and libbz2 for BZip2
# OpenPGP messages come from their static archives too, so that only the objects used (the
# YAML loader, the bzip2 decoder) reach the pull helper rather than two more shared libraries in
# the guest image; zlib is already there for libcurl.
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs $(filter-out libarchive,$(IMG_PKGS))) -l:libarchive.a \
	-l:libyaml.a -l:libbz2.a

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
	test/integration/img-encrypted.sh test/integration/img-faults.sh \
	test/integration/img-signatures.sh test/integration/img-regauth.sh
INTEGRATION_TESTS += test/integration/agent-pull.sh
INTEGRATION_TESTS += test/integration/e2e-img-signatures.sh
