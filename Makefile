# resnet.c build.
#   make               the library (build/libresnet.a) and the program ./resnet
#   make test          build and run every test (tests/run.sh prints "N passed, N failed")
#   make SANITIZE=1    the same with AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make CUDA=1        with the CUDA backend (build-cuda/; nvcc, cuDNN 9 and cuBLAS under
#                      CUDA_HOME=/usr/local/cuda). It builds for every major GPU architecture
#                      the installed nvcc knows (-arch=all-major, plus PTX for newer GPUs), so
#                      no list of architectures goes stale; CUDA_ARCH=-arch=sm_90 builds one.
#   make shared        the shared library build/libresnet.so.VERSION (soname libresnet.so.MAJOR,
#                      exporting only the functions of include/resnet.h; objects in build/pic/)
#   make install PREFIX=/usr/local [DESTDIR=]   the program, libresnet.a, libresnet.so.*, the
#                      header and resnet.pc (pkg-config); make uninstall PREFIX=... removes them
#   make fuzz          libFuzzer harnesses (tests/fuzz/fuzz_*.c) built with clang and
#                      -fsanitize=fuzzer,address,undefined into build-fuzz/; make fuzz-run runs
#                      each for FUZZ_SECONDS (default 30) from its seeds (tests/fuzz/corpus/NAME)
#                      and fails on a crash, a leak or a sanitizer report
#   make MPI=1         data-parallel training across processes with Open MPI (mpicc;
#                      Debian: libopenmpi-dev): build-mpi/resnet, to start with mpirun. The
#                      default build has no MPI dependency and ./resnet stays MPI-free.
#   make clean
# Sources are found by wildcard: a new src/**/*.c joins the library, a new cli/*.c the program,
# a new tests/test_*.c becomes a test binary.

CC      ?= cc
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -Iinclude -Isrc
LDLIBS  += -lcjson -ljansson -lstb -lturbojpeg -larchive -lz -lm -fopenmp -pthread

BUILD := build
ifeq ($(SANITIZE),1)
BUILD   := build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(CUDA),1)
BUILD     := build-cuda
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -arch=all-major
NVCCFLAGS ?= -O3 -g
NVCCFLAGS += -std=c++17 $(CUDA_ARCH) -Iinclude -Isrc -Xcompiler -Wall,-Wno-unused-parameter
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas \
             -lcudart_static -lstdc++ -ldl -lrt -lpthread
CUDA_SRC  := $(sort $(wildcard src/cuda/*.cu))
NO_CUDA   := src/cuda/none.c
endif

ifeq ($(MPI),1)
BUILD   := $(BUILD)-mpi
CC      := mpicc
CFLAGS  += -DRN_MPI
endif

LIB_SRC  := $(sort $(filter-out $(NO_CUDA),$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL_OBJ := $(BUILD)/tests/testutil.o
# Programs the shell tests call (tests/run.sh runs only the test_* binaries).
TEST_PROG := $(BUILD)/tests/save_weights $(BUILD)/tests/stream_dump $(BUILD)/tests/model_logits

ifeq ($(SANITIZE),1)
PROGRAM := $(BUILD)/resnet
else
PROGRAM := resnet
endif

# The version is the header's (RN_VERSION_STRING); MAJOR names the shared library's soname.
VERSION := $(shell sed -n 's/^\#define RN_VERSION_STRING "\(.*\)"/\1/p' include/resnet.h)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libresnet.so.$(MAJOR)
SHLIB   := $(BUILD)/libresnet.so.$(VERSION)
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(CUDA_SRC:%.cu=$(BUILD)/pic/%.o)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig
ifeq ($(MPI),1)
PROGRAM := $(BUILD)/resnet
endif

all: $(PROGRAM)

$(BUILD)/libresnet.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ./resnet is relinked whenever the build it comes from (build/ or build-cuda/) changes.
FLAVOR := .resnet-build
$(FLAVOR): FORCE
	@echo $(BUILD) | cmp -s - $@ || echo $(BUILD) > $@

$(PROGRAM): $(CLI_OBJ) $(BUILD)/libresnet.a $(FLAVOR)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(FLAVOR),$^) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.cu $(wildcard src/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

# The shared library: position-independent copies of the library's objects, linked with a
# version script that keeps every symbol local except the functions include/resnet.h declares
# (tools/public_api.sh lists them), so internal rn_ functions stay private.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -MMD -MP -c -o $@ $<

$(BUILD)/pic/%.o: %.cu $(wildcard src/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Xcompiler -fPIC -c -o $@ $<

$(BUILD)/libresnet.map: include/resnet.h tools/public_api.sh
	@mkdir -p $(dir $@)
	{ echo '{'; echo '  global:'; tools/public_api.sh $< | sed 's/.*/    &;/'; \
	  echo '  local: *;'; echo '};'; } >$@

$(SHLIB): $(PIC_OBJ) $(BUILD)/libresnet.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script,$(BUILD)/libresnet.map \
	    -Wl,--no-undefined -o $@ $(PIC_OBJ) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libresnet.so

shared: $(SHLIB)

install: $(PROGRAM) $(BUILD)/libresnet.a $(SHLIB)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(PROGRAM) $(DESTDIR)$(BINDIR)/resnet
	install -m 644 $(BUILD)/libresnet.a $(DESTDIR)$(LIBDIR)/libresnet.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION)
	ln -sf libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libresnet.so
	install -m 644 include/resnet.h $(DESTDIR)$(INCLUDEDIR)/resnet.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' resnet.pc.in >$(DESTDIR)$(PCDIR)/resnet.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/resnet $(DESTDIR)$(LIBDIR)/libresnet.a \
	    $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libresnet.so $(DESTDIR)$(INCLUDEDIR)/resnet.h \
	    $(DESTDIR)$(PCDIR)/resnet.pc

$(BUILD)/tests/testutil.o: tests/testutil.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(TEST_UTIL_OBJ) $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_UTIL_OBJ) $(BUILD)/libresnet.a $(LDLIBS) -lcmocka

# The install test (tests/install_test.sh) needs the shared library; sanitizer builds skip it.
ifneq ($(SANITIZE),1)
TEST_PROG += $(SHLIB)
endif

tests: $(TEST_BIN) $(TEST_PROG) $(PROGRAM)

test: tests
	@RESNET=$(abspath $(PROGRAM)) BUILD=$(BUILD) tests/run.sh

# ---- fuzzing (clang's libFuzzer) -------------------------------------------------------------
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_FLAGS   := -O1 -g -std=c11 -D_GNU_SOURCE -fopenmp -Iinclude -Isrc -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
# What the harnesses reach: file I/O, the readers and config.json (not the kernels, whose
# sanitized builds take long and which no reader calls).
FUZZ_LIB_SRC := $(wildcard src/core/*.c src/data/*.c src/io/*.c) src/train/config.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_SECONDS ?= 30
FUZZ_SKIP    ?=

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libresnet.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_BUILD)/libresnet.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libresnet.a $(LDLIBS)

fuzz: $(FUZZ_BIN)

# Each harness (but those named in FUZZ_SKIP) for FUZZ_SECONDS on one core, starting from its
# seeds and from the inputs that once crashed it (tests/fuzz/repro/NAME); new inputs go to
# build-fuzz/corpus/NAME, the committed ones stay as they are. A crash leaves its input in
# build-fuzz/crash-*.
fuzz-run: fuzz
	@for f in $(filter-out $(FUZZ_SKIP:%=$(FUZZ_BUILD)/%),$(FUZZ_BIN)); do \
	    n=$$(basename $$f); mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	    echo "fuzzing $$n for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=65536 -timeout=20 \
	        -artifact_prefix=$(FUZZ_BUILD)/ -print_final_stats=1 \
	        $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	        $$([ -d tests/fuzz/repro/$$n ] && echo tests/fuzz/repro/$$n) \
	        >$(FUZZ_BUILD)/$$n.log 2>&1 || \
	        { tail -40 $(FUZZ_BUILD)/$$n.log; echo "$$n: FAILED"; exit 1; }; \
	    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" $(FUZZ_BUILD)/$$n.log | tail -2; \
	done

clean:
	rm -rf build build-san build-cuda build-fuzz build*-mpi resnet $(FLAVOR)

.PHONY: all tests test clean shared install uninstall fuzz fuzz-run FORCE
-include $(FUZZ_LIB_OBJ:.o=.d)
-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_PROG:=.d) \
    $(TEST_UTIL_OBJ:.o=.d)
