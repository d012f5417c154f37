# ndtpipe: one binary, build/ndtpipe.
#
# Sources are found by folder (every *.c of a module folder is part of the
# binary), so adding a file never means editing this Makefile.  Three build
# flavours share the rules below:
#   build/        release (-O2), what `make` and the integration tests use
#   build/asan/   ASan + UBSan, what the unit tests run under
# BUILD=DIR puts all three under DIR (parallel work trees, CI variants).
#   build/fuzz/   clang libFuzzer targets (make fuzz)

BUILD       ?= build
CC          ?= cc
PKGS        := rdkafka libcurl yaml-0.1 libcjson avro-c libmicrohttpd sqlite3 zlib \
               libprotobuf-c snappy \
               libpcre2-8 liblz4 libzstd libcrypto xgboost openblas
MODULES     := common ingest harmonize testbed udr features models api cli
OPT         ?= -O2 -g
SAN         ?=
WARN        := -Wall -Wextra -Werror -Wno-missing-field-initializers
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(SAN) -I. -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS      := $(PKG_LIBS) -lm -lpthread

SRCS        := $(wildcard $(addsuffix /*.c,$(MODULES)))
LIB_SRCS    := $(filter-out cli/main.c,$(SRCS))
# Protocol buffers: every module's *.proto is compiled by protoc-c into
# $(BUILD)/gen/<module>/<name>.pb-c.[ch] (generated, never committed).
PROTOS      := $(wildcard $(addsuffix /*.proto,$(MODULES)))
PROTO_SRCS  := $(PROTOS:%.proto=$(BUILD)/gen/%.pb-c.c)
PROTO_HDRS  := $(PROTO_SRCS:.c=.h)
PROTO_OBJS  := $(PROTOS:%.proto=$(BUILD)/obj/gen/%.pb-c.o)
OBJS        := $(SRCS:%.c=$(BUILD)/obj/%.o) $(PROTO_OBJS)
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(PROTO_OBJS)
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRCS  := $(wildcard bench/*.c)
BENCH_BINS  := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
TOOL_SRCS   := $(wildcard tests/tools/*.c)
TOOL_BINS   := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps test unit integration asan fuzz bench bench-bins unit-bins run clean help
.DEFAULT_GOAL := all

all: $(BUILD)/ndtpipe $(TOOL_BINS)

help:
	@echo "make            build build/ndtpipe"
	@echo "make deps       apt-install the Debian packages ndtpipe needs (when missing)"
	@echo "make test       unit tests under ASan+UBSan, then integration tests with real peers"
	@echo "make run        run the whole pipeline on embedded defaults against the emulated testbed"
	@echo "make bench      benchmarks against peers; results go to docs/PERFORMANCE.md"
	@echo "make fuzz       build and briefly run every libFuzzer target (FUZZ_SECONDS=10)"

deps:
	@tools/deps.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: %.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=$(dir $<) --c_out=$(dir $@) $<

$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

# Sources may include generated headers: make them first.
$(SRCS:%.c=$(BUILD)/obj/%.o): | $(PROTO_HDRS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libndt.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ndtpipe: $(BUILD)/obj/cli/main.o $(BUILD)/libndt.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libndt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -o $@ $< $(BUILD)/libndt.a $(LDLIBS) -lcmocka

# Programs the integration tests use as peers or drivers (tests/tools/*.c);
# they may call into the library.
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libndt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libndt.a $(LDLIBS)

# Benchmark harnesses (bench/*.c): one link line for all of them, the
# binary's own, so a new library in PKGS reaches them too.
$(BUILD)/bench/%: bench/%.c $(BUILD)/libndt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libndt.a $(LDLIBS)

bench-bins: $(BENCH_BINS)

unit-bins: $(UNIT_BINS) $(BUILD)/ndtpipe

# The unit tests run under the sanitizers; the integration tests drive the
# release binary against real peers.
asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit-bins

test: deps all asan
	@BUILD=$(BUILD) tests/run.sh

unit: asan
	@BUILD=$(BUILD) tests/run.sh unit

integration: deps all
	@BUILD=$(BUILD) tests/run.sh integration

# The fuzz targets compile the generated protobuf code too: generate it first.
fuzz: $(PROTO_SRCS)
	@PKG_CFLAGS="$(PKG_CFLAGS)" PKG_LIBS="$(LDLIBS)" tests/fuzz/run.sh $(FUZZ_SRCS)

bench: deps all bench-bins
	@bench/run.sh

run: deps all
	$(BUILD)/ndtpipe run --demo

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)
