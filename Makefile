# bulwark: one non-recursive GNU Makefile.
# Targets: all test unit integration asan fuzz bench run deps format lint clean conformance clients
# deps-graph func-length structure (no call circle, no long function: in make test).

CC       ?= cc
SHELL    := /bin/bash
PKGS     := libevent hiredis libxxhash cmocka
DEB_PKGS := libevent-dev libhiredis-dev libxxhash-dev libcmocka-dev \
            redis-server redis-tools pkg-config valgrind python3 \
            prometheus prometheus-redis-exporter gnuplot-nox python3-redis

# Build variant: "release" (default) or "asan" (ASan + UBSan).
VARIANT  ?= release
ifeq ($(VARIANT),asan)
BUILD    := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPTFLAGS := -O1 -g
BIN      := bulwark-asan
else
BUILD    := build/release
SANFLAGS :=
OPTFLAGS := -O2 -g
BIN      := bulwark
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs libevent hiredis libxxhash 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPTFLAGS) -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wformat=2 -Wundef -Wvla \
           -Wimplicit-fallthrough \
           -I. $(SANFLAGS) -MMD -MP
LDFLAGS := $(SANFLAGS)

# The daemon's modules, in dependency order (main last).
DAEMON_SRCS := proxy/util.c proxy/log.c config/config.c config/syntax.c \
               proxy/resp.c proxy/reply.c proxy/command.c proxy/cmdstats.c proxy/stats.c \
               proxy/jitter.c proxy/tracking.c proxy/inflight.c proxy/encode.c \
               bloom/bloom.c proxy/hireply.c proxy/watch.c proxy/netio.c proxy/upstream.c proxy/cluster.c \
               proxy/router.c proxy/slots.c \
               proxy/session.c proxy/batch.c proxy/hotcache.c proxy/hotkey.c proxy/keyspace.c \
               proxy/pinned.c proxy/ctrack.c proxy/writes.c proxy/forward.c proxy/cfwd.c proxy/gate.c \
               proxy/local.c proxy/local_client.c proxy/pinstage.c proxy/stages.c proxy/client.c \
               proxy/listener.c proxy/metrics.c \
               proxy/main.c

# One cmocka binary per module, linked only with that module's objects (and
# util), so the link line enforces the dependency rules of STYLE.md.
UNIT_TESTS := resp reply config command bloom jitter batch slots encode hotcache cmdstats hireply loadgen \
              tracking cluster stages
UNIT_reply   := proxy/reply.c proxy/util.c
UNIT_resp    := proxy/resp.c proxy/util.c
UNIT_config  := config/config.c config/syntax.c
UNIT_command := proxy/command.c proxy/util.c
UNIT_cmdstats := proxy/cmdstats.c proxy/command.c proxy/util.c
UNIT_bloom   := bloom/bloom.c
UNIT_jitter  := proxy/jitter.c proxy/util.c config/config.c config/syntax.c
UNIT_hotcache := proxy/hotcache.c proxy/util.c
# cluster: pure (hash slots, slot map, one-node CLUSTER answers).
UNIT_cluster := proxy/cluster.c proxy/reply.c proxy/util.c
# tracking: pure; the client layer is two callbacks inside the test.
UNIT_tracking := proxy/tracking.c proxy/util.c
UNIT_hireply := proxy/hireply.c proxy/util.c
UNIT_LIBS_hireply = $(shell pkg-config --libs hiredis)
# slots: the reply FIFO alone, no socket; encode: the reply encoders.
UNIT_slots   := proxy/slots.c proxy/stats.c proxy/cmdstats.c proxy/command.c proxy/util.c
UNIT_LIBS_slots = $(shell pkg-config --libs libevent)
UNIT_encode  := proxy/encode.c proxy/util.c
UNIT_LIBS_encode = $(shell pkg-config --libs libevent)
# batch: real reply slots of sessions without a socket; upstream.c is a fake.
UNIT_batch   := proxy/batch.c proxy/slots.c proxy/stats.c proxy/cmdstats.c proxy/command.c \
                proxy/reply.c proxy/util.c
UNIT_LIBS_batch = $(shell pkg-config --libs libevent)
# stages: the stage table with real sessions, reply slots, command table and parser;
# every feature module it calls (gate, hotkey, batch, local, forward, pinstage,
# writes, ctrack, cfwd, router, pinned, tracking) is a fake inside the test.
UNIT_stages  := proxy/stages.c proxy/session.c proxy/slots.c proxy/encode.c proxy/command.c \
                proxy/resp.c proxy/cmdstats.c proxy/stats.c proxy/cluster.c proxy/reply.c \
                proxy/util.c
UNIT_LIBS_stages = $(shell pkg-config --libs libevent)
# loadgen: its histogram, report and options; no libevent, no hiredis.
UNIT_loadgen := bench/lg_stats.c bench/lg_opts.c

# Integration tests: cmocka + sync hiredis against a real redis-server and the
# built daemon, both on free loopback ports (tests/integration/harness.c).
INTEG_TESTS := $(patsubst tests/integration/%.c,%,$(filter-out tests/integration/harness.c,$(wildcard tests/integration/test_*.c)))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

.PHONY: all test unit integration valgrind asan fuzz fuzz-bypass bench run deps deps-check format lint \
        clean conformance clients deps-graph func-length structure cluster

all: deps-check $(BIN)

# ---- dependencies --------------------------------------------------------
# Quick no-op when everything is present; installs (as root) otherwise.
deps-check:
	@pkg-config --exists $(PKGS) && command -v redis-server >/dev/null && \
	  command -v redis-benchmark >/dev/null && command -v valgrind >/dev/null && \
	  command -v python3 >/dev/null && command -v promtool >/dev/null && \
	  command -v prometheus-redis-exporter >/dev/null && command -v gnuplot >/dev/null && \
	  command -v npm >/dev/null && /usr/bin/python3 -c 'import redis' 2>/dev/null || \
	  $(MAKE) --no-print-directory deps

# Services the packages would start (redis-server, prometheus, the exporter on
# 6379, 9090, 9121) are not started: a policy-rc.d that denies them is put in
# place for the install when none exists (containers without systemd have one
# or get this one; systemd's deb-systemd-invoke honours it too). The tests
# start their own servers on free ports.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  pol=/usr/sbin/policy-rc.d; ours=""; \
	  if [ ! -e $$pol ]; then \
	    printf '#!/bin/sh\n# make deps: start no service while installing\nexit 101\n' | \
	      $$SUDO tee $$pol >/dev/null && $$SUDO chmod 755 $$pol && ours=1; fi; \
	  rc=0; $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || rc=$$?; \
	  [ -z "$$ours" ] || $$SUDO rm -f $$pol; \
	  exit $$rc; \
	fi

# ---- compile -------------------------------------------------------------
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BIN): $(call obj,$(DAEMON_SRCS))
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# ---- unit tests ----------------------------------------------------------
define unit_rule
$(BUILD)/tests/unit/test_$(1): $(call obj,tests/unit/test_$(1).c $(UNIT_$(1)))
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $$(UNIT_LIBS_$(1)) $$(shell pkg-config --libs libxxhash) -lm -pthread
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

UNIT_BINS  = $(foreach t,$(UNIT_TESTS),$(if $(wildcard tests/unit/test_$(t).c),$(BUILD)/tests/unit/test_$(t)))

unit: deps-check $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; ./$$t; done

# ---- integration tests ---------------------------------------------------
define integ_rule
$(BUILD)/tests/integration/$(1): $(call obj,tests/integration/$(1).c tests/integration/harness.c proxy/reply.c proxy/util.c)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $$(PKG_LIBS) -lm -pthread
endef
$(foreach t,$(INTEG_TESTS),$(eval $(call integ_rule,$(t))))

INTEG_BINS = $(foreach t,$(INTEG_TESTS),$(BUILD)/tests/integration/$(t))

integration: deps-check $(BIN) $(INTEG_BINS)
	@set -e; for t in $(INTEG_BINS); do echo "== $$t"; \
	  BULWARK_BIN=$(CURDIR)/$(BIN) ./$$t; done

# Valgrind run of the release daemon: no leaks, no memory errors, exit 0 on
# SIGTERM after traffic (the ASan variant skips it: the two do not mix).
valgrind: deps-check $(BIN)
ifeq ($(VARIANT),asan)
	@echo "valgrind: skipped in the asan variant"
else
	@bash tests/valgrind.sh ./$(BIN)
endif

test: structure unit integration valgrind clients cluster

# The layering rules: no call circle between files, no function over FUNC_MAX lines.
structure: deps-graph func-length

# bulwark in front of a real Redis Cluster (3 masters + 3 replicas on free ports):
# routing, split commands, MOVED/ASK, transactions, redis-py RedisCluster, ioredis Cluster.
cluster: deps-check $(BIN)
	@bash tests/cluster/run.sh ./$(BIN)

# Real client libraries (node-redis, ioredis from npm; redis-py from Debian) through bulwark.
clients: deps-check $(BIN)
	@bash tests/clients/run.sh $(CURDIR)/$(BIN)

asan:
	$(MAKE) --no-print-directory VARIANT=asan test

# Redis's own test suite (Debian's redis source package, fetched into
# build/redis-src when missing) against Redis directly and through bulwark,
# counts compared. Not part of make test: it needs deb-src and takes minutes.
# make conformance UNITS="unit/scripting unit/functions" (the default)
conformance: all
	@bash tests/conformance.sh $(CURDIR)/$(BIN)

# ---- run -----------------------------------------------------------------
# Runs bulwark with config/bulwark.conf in the foreground. When nothing
# answers at the configured upstream, a private redis-server (no persistence,
# data in a temp dir) is started on a free loopback port first; Ctrl-C stops both.
RUN_CONF ?= config/bulwark.conf
RUN_ARGS ?=
run: all
	@set -e; up=$$(./$(BIN) $(RUN_CONF) $(RUN_ARGS) --config-get upstream); \
	host=$${up%:*}; port=$${up##*:}; host=$${host#[}; host=$${host%]}; \
	if redis-cli -h "$$host" -p "$$port" ping >/dev/null 2>&1; then \
	  echo "bulwark: upstream $$up answers; starting bulwark in front of it"; \
	  exec ./$(BIN) $(RUN_CONF) $(RUN_ARGS); \
	fi; \
	dir=$$(mktemp -d /tmp/bulwark-run.XXXXXX); \
	for p in $$(shuf -i 20000-32767 -n 50); do \
	  (exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { rport=$$p; break; }; done; \
	echo "bulwark: nothing answers at $$up; starting a private redis-server on 127.0.0.1:$$rport (data in $$dir)"; \
	redis-server --port $$rport --bind 127.0.0.1 --save '' --appendonly no --dir $$dir \
	  --daemonize no --logfile $$dir/redis.log & rpid=$$!; \
	trap 'kill $$rpid 2>/dev/null || true; wait $$rpid 2>/dev/null || true; rm -rf $$dir' EXIT INT TERM; \
	for i in $$(seq 100); do redis-cli -p $$rport ping >/dev/null 2>&1 && break; sleep 0.05; done; \
	rc=0; ./$(BIN) $(RUN_CONF) $(RUN_ARGS) --upstream 127.0.0.1:$$rport || rc=$$?; exit $$rc

# ---- bench, fuzz, style --------------------------------------------------
# bench/loadgen: the cache-workload load generator (libevent + hiredis async).
bench/loadgen: $(call obj,bench/loadgen.c bench/lg_stats.c bench/lg_opts.c)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(shell pkg-config --libs libevent hiredis) -lm

# make bench: bench/run.sh (the matrix), bench/cpu.sh (Redis CPU per GET),
# bench/leases.py (hot-key refills per expiry), each saving its data in
# bench/results/, then bench/charts.sh draws bench/*.png from that data
# (bash bench/charts.sh alone redraws them). BENCH_CPU_N: cpu.sh's GETs per run.
BENCH_CPU_N ?= 400000
bench: all bench/loadgen
	@bash bench/run.sh
	@set -o pipefail; mkdir -p bench/results; \
	{ echo "<!-- bench/cpu.sh $(BENCH_CPU_N), $$(date -u '+%Y-%m-%d %H:%M UTC'), load $$(cut -d' ' -f1-3 /proc/loadavg) at the start -->"; \
	  bash bench/cpu.sh $(BENCH_CPU_N); \
	  echo "<!-- load $$(cut -d' ' -f1-3 /proc/loadavg) at the end -->"; } | tee bench/results/cpu.md.new && \
	mv bench/results/cpu.md.new bench/results/cpu.md
	@python3 bench/leases.py
	@bash bench/charts.sh

# libFuzzer (clang): three targets, run one after the other, each for
# FUZZ_SECONDS (60 by default, so make fuzz takes three times that):
# fuzz_resp (request parser), fuzz_reply (upstream reply scanner and tree
# parser), fuzz_config (config parser). Corpora grow in build/fuzz/corpus*;
# an input that fails is saved in build/fuzz/. make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
FUZZ_CC  := clang -std=c11 -D_GNU_SOURCE -g -O1 -I. \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_RUN  = -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/
fuzz:
	@mkdir -p build/fuzz/corpus build/fuzz/corpus_reply build/fuzz/corpus_config
	$(FUZZ_CC) tests/fuzz/fuzz_resp.c proxy/resp.c proxy/util.c -o build/fuzz/fuzz_resp
	$(FUZZ_CC) tests/fuzz/fuzz_reply.c proxy/reply.c proxy/util.c -o build/fuzz/fuzz_reply
	$(FUZZ_CC) tests/fuzz/fuzz_config.c config/config.c config/syntax.c proxy/util.c \
	  -o build/fuzz/fuzz_config
	./build/fuzz/fuzz_resp $(FUZZ_RUN) build/fuzz/corpus
	./build/fuzz/fuzz_reply $(FUZZ_RUN) -dict=tests/fuzz/fuzz_reply.dict build/fuzz/corpus_reply
	./build/fuzz/fuzz_config $(FUZZ_RUN) -dict=tests/fuzz/fuzz_config.dict build/fuzz/corpus_config

# resp-fuzz --bypass against bulwark (hot keys on and off) and a reference
# redis-server, all on free ports: writes made directly on the upstream must
# read back at once through bulwark. make fuzz-bypass FUZZ_SEQUENCES=200
FUZZ_SEQUENCES ?= 1000
fuzz-bypass: all
	@bash tests/fuzz-bypass.sh -n $(FUZZ_SEQUENCES) -b ./$(BIN)

# The daemon's file-level call graph from its objects (nm) and every circle in
# it (STYLE.md: no file calls a file above its layer). Exit 1 on a circle
# (make test runs it). DEPS_ARGS="-v --dot x.dot"
DEPS_ARGS ?=
deps-graph: all
	@bash tests/deps-graph-selftest.sh
	@bash tests/deps-graph.sh $(DEPS_ARGS) -b $(BUILD) --expect proxy/client:proxy/stages \
	  --expect proxy/stages:proxy/gate --expect proxy/batch:proxy/slots $(DAEMON_SRCS)

# Functions longer than FUNC_MAX lines in the daemon's sources (STYLE.md: near
# or under 60). Exit 1 if any (make test runs it).
FUNC_MAX ?= 80
func-length:
	@bash tests/func-length-selftest.sh
	@bash tests/func-length.sh $(FUNC_MAX) $(wildcard proxy/*.c bloom/*.c config/*.c)

format:
	clang-format -i $(wildcard proxy/*.[ch] bloom/*.[ch] config/*.[ch] tests/*/*.[ch] bench/*.[ch])

# Exit 1 when clang-format (.clang-format, clang-format 14) would change any
# file make format formats; each such file is named with the number of its
# lines that would change. Not in make test yet: 33 files written for 80
# columns and struct comments aligned by hand still differ (see the commit
# that added .clang-format). FORMAT_SHOW=N also shows N violations per file.
CLANG_FORMAT ?= clang-format
FORMAT_SHOW  ?= 0
FORMAT_SRCS   = $(wildcard proxy/*.[ch] bloom/*.[ch] config/*.[ch] tests/*/*.[ch] bench/*.[ch])
.PHONY: format-check
format-check:
	@bad=0; lines=0; for f in $(FORMAT_SRCS); do \
	  $(CLANG_FORMAT) --dry-run --Werror --ferror-limit=1 "$$f" 2>/dev/null && continue; \
	  n=$$($(CLANG_FORMAT) "$$f" | diff "$$f" - | grep -c '^<'); \
	  echo "$$f: $$n lines would change"; bad=$$((bad + 1)); lines=$$((lines + n)); \
	  [ "$(FORMAT_SHOW)" = 0 ] || $(CLANG_FORMAT) --dry-run --ferror-limit=$(FORMAT_SHOW) "$$f"; \
	done; \
	if [ $$bad -gt 0 ]; then \
	  echo "format-check: $$bad of $(words $(FORMAT_SRCS)) files, $$lines lines would change (make format)"; \
	  exit 1; fi; \
	echo "format-check: $(words $(FORMAT_SRCS)) files as clang-format leaves them"

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance -I. \
	    --include=/usr/include/$(shell $(CC) -print-multiarch)/sys/queue.h proxy bloom config bench

clean:
	rm -rf build bulwark bulwark-asan bench/loadgen

-include $(shell find build -name '*.d' -type f -not -path 'build/redis-src/*' 2>/dev/null)
