# Confidential Containers runtime in C: one non-recursive GNU make build.
#
# Each folder contributes a `module.mk` fragment that appends to the lists below; this file
# holds the toolchain flags, the generic rules and the stable targets:
#   make            build everything              make test    everything CI runs
#   make deps       install build/test packages   make fuzz    libFuzzer targets, FUZZ_SECONDS each
#   make bench      benchmarks with ratios        make demo    the main job (end to end)
#   make install    PREFIX=... DESTDIR=...        make format  clang-format every source file
# Variants build into their own trees so they never mix objects:
#   SANITIZE=1 -> build/san (ASan+UBSan), the fuzz build -> build/fuzz (clang, libFuzzer).

.DEFAULT_GOAL := all
SHELL := /bin/bash

PREFIX ?= /opt/confidential-containers
DESTDIR ?=
FUZZ_SECONDS ?= 60

ifeq ($(FUZZ),1)
BUILD ?= build/fuzz
CC := clang
else ifeq ($(SANITIZE),1)
BUILD ?= build/san
else
BUILD ?= build
endif

CC ?= cc
PKG_CONFIG ?= pkg-config

# Libraries every component may use; each is a Debian 12 -dev package installed by `make deps`.
PKGS := libprotobuf-c json-c libnghttp2
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter \
	-Wno-missing-field-initializers -Werror=implicit-function-declaration \
	-Werror=return-type -Werror=incompatible-pointer-types -Wstrict-prototypes
CPPFLAGS += -D_GNU_SOURCE -Ilib/include -I$(BUILD)/protos -I. -MMD -MP
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -fno-strict-aliasing -fstack-protector-strong -fPIE $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed
LDLIBS += -lpthread

# Modules may silence a GCC-only warning (e.g. -Wno-format-truncation); clang must not fail on it.
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null | head -n1)),)
CFLAGS += -Wno-unknown-warning-option
endif

ifeq ($(SANITIZE),1)
CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(FUZZ),1)
CFLAGS += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -DCC_FUZZING=1
LDFLAGS += -fsanitize=address,undefined
else
CPPFLAGS += -D_FORTIFY_SOURCE=2
endif

# Lists the module fragments append to.
BINS :=          # installed programs
LIBS :=          # static libraries, in link order (users before what they use)
UNIT_TESTS :=    # cmocka programs run by `make test`
FUZZ_TARGETS :=  # names x of test/fuzz/fuzz-x.c; corpus in test/fuzz/corpus/x/
INTEGRATION_TESTS := # scripts run by `make test` after the unit tests
GENERATED_HDRS := # headers made at build time; every object waits for them

include protos/module.mk
include lib/module.mk
# Order matters: each module prepends its library to LIBS, so a library's users come after it.
-include hypervisor/module.mk
-include guest-agent/network/module.mk
-include guest-agent/image/module.mk
-include guest-agent/attest/module.mk
-include guest-agent/module.mk
-include shim/network/module.mk
-include shim/module.mk
-include snapshotter/module.mk
-include kbs/module.mk
-include configs/module.mk
include test/module.mk
-include bench/module.mk

# Keep generated sources, headers and objects: they are inputs of later steps, not temporaries.
.SECONDARY:

# V=1 shows full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps test test-unit test-integration fuzz fuzz-build bench demo install format clean

all: $(BINS) $(UNIT_TESTS) $(FUZZ_REPLAYS)

$(BUILD)/%.o: %.c | $(GENERATED_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: $(BUILD)/%.c | $(GENERATED_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

deps:
	bash tools/install-deps.sh

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/)

demo: all
	@bash tools/demo.sh

clean:
	rm -rf build

# (build/guest holds the guest kernel's source tree, whose .d files are not ours.)
-include $(shell find $(BUILD) -path '$(BUILD)/guest' -prune -o -name '*.d' -print 2>/dev/null)
