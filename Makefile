# resnet.c build.
#   make               the library (build/libresnet.a) and the program ./resnet
#   make test          build and run every test (tests/run.sh prints "N passed, N failed")
#   make SANITIZE=1    the same with AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make CUDA=1        with the CUDA backend (build-cuda/; nvcc, cuDNN 9 and cuBLAS under
#                      CUDA_HOME=/usr/local/cuda). It builds for every major GPU architecture
#                      the installed nvcc knows (-arch=all-major, plus PTX for newer GPUs), so
#                      no list of architectures goes stale; CUDA_ARCH=-arch=sm_90 builds one.
#   make MPI=1         data-parallel training across processes with Open MPI (mpicc;
#                      Debian: libopenmpi-dev): build-mpi/resnet, to start with mpirun. The
#                      default build has no MPI dependency and ./resnet stays MPI-free.
#   make clean
# Sources are found by wildcard: a new src/**/*.c joins the library, a new cli/*.c the program,
# a new tests/test_*.c becomes a test binary.

CC      ?= cc
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -Iinclude -Isrc
LDLIBS  += -lcjson -lstb -lz -lm -fopenmp

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
TEST_PROG := $(BUILD)/tests/save_weights

ifeq ($(SANITIZE),1)
PROGRAM := $(BUILD)/resnet
else
PROGRAM := resnet
endif

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

$(BUILD)/tests/testutil.o: tests/testutil.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(TEST_UTIL_OBJ) $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_UTIL_OBJ) $(BUILD)/libresnet.a $(LDLIBS) -lcmocka

tests: $(TEST_BIN) $(TEST_PROG) $(PROGRAM)

test: tests
	@RESNET=$(abspath $(PROGRAM)) BUILD=$(BUILD) tests/run.sh

clean:
	rm -rf build build-san build-cuda build*-mpi resnet $(FLAVOR)

.PHONY: all tests test clean FORCE
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_PROG:=.d) $(TEST_UTIL_OBJ:.o=.d)
