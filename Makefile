# LightOS top-level Makefile.
#   make demo   build, then run the main job on the default device
#   make check  install what the tests need, build, run every test, then
#               build and run the suite again under ASan + UBSan
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DLIGHTOS_WERROR=ON

.PHONY: all demo check deps build test asan bench fuzz-smoke hip-check install clean

all: build

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/lightos info
	./$(BUILD)/seed_example

deps:
	./scripts/install-deps.sh

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_FLAGS) -DLIGHTOS_SANITIZE=ON -DLIGHTOS_BUILD_BENCH=OFF \
	  -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  ctest --output-on-failure -j$(JOBS)

check: deps test asan fuzz-smoke hip-check

# Every portable and built-in kernel through hipcc for two AMD targets.
hip-check: build
	./scripts/hip-compile-check.sh $(BUILD)

bench: build
	./$(BUILD)/bench/bench_kernels

# Short libFuzzer runs over the parser and program-build path (clang only).
fuzz-smoke:
	./scripts/fuzz.sh 20

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
