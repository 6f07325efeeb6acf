# test/: unit tests (cmocka), fuzz targets (libFuzzer, corpus replayed by `make test`),
# integration tests against real peers.
#
# A unit test is test/unit/test-<name>.c, one cmocka program; it links every static library
# (only the objects it uses are pulled in) and every pkg-config library (--as-needed).
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
UNIT_SRCS := $(wildcard test/unit/test-*.c)
UNIT_TESTS += $(UNIT_SRCS:%.c=$(BUILD)/%)

# test/lib/: helpers shared by unit tests, fuzz targets and benchmarks (never shipped).
TESTLIB_SRCS := $(wildcard test/lib/*.c)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/%.o)
LIBCCTEST := $(BUILD)/libcctest.a
$(LIBCCTEST): $(TESTLIB_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^
$(TESTLIB_OBJS): CPPFLAGS += -Itest/lib

# Tests write tar streams (gzip-filtered too) with libarchive's writer: the shared libarchive,
# named before EXTRA_LIBS, answers every archive_* symbol, so the agent's static tar-reader-only
# libarchive (guest-agent/image/module.mk) is not used by these programs.
TEST_LINK = $(LIBCCTEST) $(LIBS) $(shell $(PKG_CONFIG) --libs libarchive) $(PKG_LIBS) \
	$(EXTRA_LIBS) $(LDLIBS)
$(BUILD)/test/%.o: CPPFLAGS += -Itest/lib

$(BUILD)/test/unit/test-%: $(BUILD)/test/unit/test-%.o $(LIBCCTEST) $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $< $(TEST_LINK) $(CMOCKA_LIBS)

# Fuzz targets: test/fuzz/fuzz-<x>.c defines LLVMFuzzerTestOneInput. Built two ways:
# - a replay program (any compiler) that feeds every file of test/fuzz/corpus/<x>/ to the
#   target; `make test` runs it, under SANITIZE=1 with ASan+UBSan;
# - with `make fuzz`, clang -fsanitize=fuzzer in build/fuzz, run for FUZZ_SECONDS each.
FUZZ_TARGETS += $(patsubst test/fuzz/fuzz-%.c,%,$(wildcard test/fuzz/fuzz-*.c))
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(BUILD)/test/fuzz/replay-%)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/test/fuzz/fuzz-%)

$(BUILD)/test/fuzz/replay-%: $(BUILD)/test/fuzz/fuzz-%.o $(BUILD)/test/fuzz/replay-main.o $(LIBCCTEST) $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(filter %.o,$^) $(TEST_LINK)

$(BUILD)/test/fuzz/fuzz-%: $(BUILD)/test/fuzz/fuzz-%.o $(LIBCCTEST) $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(TEST_LINK)

fuzz-build: $(FUZZ_BINS)

fuzz:
	$(MAKE) FUZZ=1 fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash test/fuzz/run-fuzzers.sh build/fuzz/test/fuzz $(FUZZ_TARGETS)

test: all
	bash test/run-tests.sh --build $(BUILD) --unit "$(UNIT_TESTS)" --fuzz "$(FUZZ_TARGETS)" \
		--integration "$(INTEGRATION_TESTS)"

test-unit: all
	bash test/run-tests.sh --build $(BUILD) --unit "$(UNIT_TESTS)" --fuzz "$(FUZZ_TARGETS)"

test-integration: all
	bash test/run-tests.sh --build $(BUILD) --integration "$(INTEGRATION_TESTS)"

# test/tools/: small programs the integration tests and benchmarks drive.
TEST_TOOLS := $(patsubst test/tools/%.c,$(BUILD)/test/tools/%,$(wildcard test/tools/*.c))
$(BUILD)/test/tools/%: $(BUILD)/test/tools/%.o $(LIBCCTEST) $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $< $(TEST_LINK)
all: $(TEST_TOOLS)
INTEGRATION_TESTS += test/integration/ttrpc-interop.sh
# Pod annotations through containerd's CRI under the node's rules (shim/annotations.c).
INTEGRATION_TESTS += test/integration/e2e-annotations.sh
# Block devices and the release notes' trusted store through containerd's CRI (shim/devices.c).
INTEGRATION_TESTS += test/integration/e2e-storage.sh
