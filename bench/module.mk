# bench/: benchmarks, each compared side by side in one run with the peer its issue names.
# `make bench` runs them all and prints ratios; results and commands go in bench/README.md.
BENCH_TOOLS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $< $(LIBS) $(PKG_LIBS) $(EXTRA_LIBS) $(LDLIBS)
all: $(BENCH_TOOLS)

# Each bench/<name>.sh prints its own table; BENCHES picks a subset (e.g. BENCHES=ttrpc).
BENCHES ?= $(patsubst bench/%.sh,%,$(wildcard bench/*.sh))
bench: all
	@for b in $(BENCHES); do echo "== bench $$b"; BUILD=$(BUILD) bash bench/$$b.sh || exit 1; done

# bench/agent-policy.sh boots the policy benchmark as /init of a TCG guest: linked like
# cc-agent-static (guest-agent/module.mk), so the engine's pages are counted as in the agent.
$(BUILD)/bench/agent-policy-static: $(BUILD)/bench/agent-policy.o $(LIBAGENT) $(LIBCC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -static-pie $(CFLAGS) -o $@ $< $(LIBAGENT) $(LIBCC) $(AGENT_STATIC_LIBS) $(LDLIBS)
ifeq ($(SANITIZE)$(FUZZ),)
all: $(BUILD)/bench/agent-policy-static
endif
