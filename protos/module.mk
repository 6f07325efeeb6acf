# protos/: the .proto files the project speaks, written from ../shared/reference. C code is
# generated into $(BUILD)/protos by protoc-c at build time and never committed.
PROTO_SRCS := $(shell find protos -name '*.proto' | sort)
PROTO_GEN_C := $(PROTO_SRCS:protos/%.proto=$(BUILD)/protos/%.pb-c.c)
PROTO_GEN_H := $(PROTO_GEN_C:.c=.h)
PROTO_OBJS := $(PROTO_GEN_C:.c=.o)
GENERATED_HDRS += $(PROTO_GEN_H)

# protoc-c writes the .c and .h of one .proto in one run; the grouped target says so.
$(BUILD)/protos/%.pb-c.c $(BUILD)/protos/%.pb-c.h &: protos/%.proto
	@mkdir -p $(BUILD)/protos
	protoc-c -Iprotos --c_out=$(BUILD)/protos $<

# Generated code is compiled without -Werror extras it was not written for.
$(PROTO_OBJS): CFLAGS += -Wno-unused-parameter -Wno-shadow -Wno-strict-prototypes
