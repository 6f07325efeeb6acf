# lib/: libcc.a, what every component shares (errors, cleanup, logging, ttrpc, TOML, JSON,
# the generated protobuf code).
LIBCC_SRCS := $(wildcard lib/*.c lib/ttrpc/*.c lib/grpc/*.c)
LIBCC_OBJS := $(LIBCC_SRCS:%.c=$(BUILD)/%.o) $(PROTO_OBJS)
LIBCC := $(BUILD)/libcc.a
LIBS += $(LIBCC)

$(LIBCC): $(LIBCC_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^
