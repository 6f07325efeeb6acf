# kbs/: cc-kbs, a development key broker speaking Trustee's KBS protocol 0.4.0 (README.md).
# libcckbs holds everything but main(), so unit tests and fuzz targets link the real code.
KBS_SRCS := $(filter-out kbs/main.c kbs/cc-image-encrypt.c,$(wildcard kbs/*.c))
KBS_OBJS := $(KBS_SRCS:%.c=$(BUILD)/%.o)
KBS_PKGS := libmicrohttpd sqlite3 libcrypto libcurl
LIBKBS := $(BUILD)/libcckbs.a
LIBS := $(LIBKBS) $(LIBS)
EXTRA_LIBS += $(shell $(PKG_CONFIG) --libs $(KBS_PKGS))

$(KBS_OBJS) $(BUILD)/kbs/main.o $(BUILD)/kbs/cc-image-encrypt.o: CFLAGS += $(shell $(PKG_CONFIG) --cflags $(KBS_PKGS) $(IMG_PKGS))

$(LIBKBS): $(KBS_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

BINS += $(BUILD)/cc-kbs

$(BUILD)/cc-kbs: $(BUILD)/kbs/main.o $(LIBKBS) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(shell $(PKG_CONFIG) --libs $(KBS_PKGS)) \
		$(LDLIBS)

BINS += $(BUILD)/cc-image-encrypt

# It reads and writes registries through the image library's client (guest-agent/image/).
$(BUILD)/cc-image-encrypt: $(BUILD)/kbs/cc-image-encrypt.o $(LIBKBS) $(LIBIMG) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)

INTEGRATION_TESTS += test/integration/kbs-rcar.sh test/integration/kbs-image-encrypt.sh
