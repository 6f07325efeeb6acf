# guest-agent/attest/: libccattest, the guest's key broker client for Trustee's KBS protocol
# 0.4.0 (attesters, TEE key, JWE, initdata), used by the pull helper and cc-kbc (a small CLI for
# tests and debugging). OpenSSL for the cryptography, libcurl for HTTP(S), zlib for initdata's
# gzip; json-c and libcc's TOML reader.
KBC_SRCS := $(filter-out guest-agent/attest/cc-kbc.c,$(wildcard guest-agent/attest/*.c))
KBC_OBJS := $(KBC_SRCS:%.c=$(BUILD)/%.o)
KBC_PKGS := libcurl libcrypto zlib
LIBKBC := $(BUILD)/libccattest.a
LIBS := $(LIBKBC) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs $(KBC_PKGS))
$(KBC_OBJS) $(BUILD)/guest-agent/attest/cc-kbc.o: CFLAGS += $(shell $(PKG_CONFIG) --cflags $(KBC_PKGS))

$(LIBKBC): $(KBC_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

BINS += $(BUILD)/cc-kbc
$(BUILD)/cc-kbc: $(BUILD)/guest-agent/attest/cc-kbc.o $(LIBKBC) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
INTEGRATION_TESTS += test/integration/kbc-kbs.sh test/integration/kbc-hostile.sh
INTEGRATION_TESTS += test/integration/e2e-attest.sh
