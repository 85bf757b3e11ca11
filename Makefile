# embedfast: `make run` and `make test` set everything up on a fresh machine.
#   make run            venv + torch + package, then `embedfast demo` on the embedded corpus
#   make test           same set-up, then the test suite (all but the tests marked slow)
#   make test-slow      the tests marked slow (longer recipes, Triton-interpreter gradcheck/planted structure)
#   make build          (re)build the C++ extension in place after editing csrc/
#   make bench          side-by-side benchmark tables (see benchmarks/README.md)
#   make fuzz           every fuzz target for FUZZ_SECONDS each, FUZZ_JOBS at a time (FUZZ_ASAN=1: against the
#                       sanitizer build); summary in fuzz/last-run.txt, inputs that fail in fuzz/crashes/
#   make asan           the C++ extension built with ASan+UBSan in build/asan/, the op tests run under it
#   make cuda-build     the extension with the CUDA kernels (csrc/cuda/, sm_90) compiled in build/cuda/ against a CUDA
#                       torch in its own venv (CUDA_VENV), zero warnings; no GPU needed (see the section below)
# Variables: PYTHON (interpreter for the venv), VENV (its folder), TORCH (pip spec used only when the venv has
# no importable torch; the default takes the CPU wheel lying on these machines), PYTEST_ARGS.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
MAX_JOBS ?= 2
FUZZ_SECONDS ?= 720
FUZZ_JOBS ?= 2
FUZZ_ASAN ?= 0
FUZZ_TARGETS ?=
ASAN_TESTS ?= $(wildcard tests/test_vectors_*.py) tests/test_word2vec_ops.py tests/test_word2vec_trainer.py tests/test_word2vec_models.py tests/test_word2vec_subword.py tests/test_fusion_ops.py tests/test_fusion_module.py tests/faults

BIN := $(VENV)/bin
PY := $(BIN)/python
DEPS := $(VENV)/.embedfast-deps
SOURCES := $(wildcard csrc/*.cpp csrc/cpu/*.cpp csrc/cuda/*.cu csrc/include/embedfast/*.h csrc/include/embedfast/*.cuh) setup.py build_config.py

.PHONY: run test test-slow build bench clean venv fuzz asan asan-build asan-avx512 cuda-build

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (reused when already importable), then build tools and the test/bench extras (Cython: eflomal is
# published only as source, and it is built here without build isolation, like the package itself).
$(DEPS): $(PY) pyproject.toml
	@$(PY) -c "import torch" 2>/dev/null && echo "using $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install --quiet setuptools wheel ninja pybind11 numpy Cython
	EMBEDFAST_NO_EXT=1 $(PY) -m pip install --quiet --no-build-isolation -e ".[test,bench]"
	touch $@

venv: $(DEPS)

.build-stamp: $(DEPS) $(SOURCES)
	MAX_JOBS=$(MAX_JOBS) $(PY) setup.py --quiet build_ext --inplace
	touch $@

build: .build-stamp

run: build
	$(BIN)/embedfast demo

test: build
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

# the tests marked slow (longer recipes, gradcheck and planted structure through Triton's CPU interpreter)
test-slow: build
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS) tests

bench: build
	$(PY) benchmarks/run.py

# ---- fuzzing (fuzz/run.py; targets in fuzz/targets.py) ------------------------------------------------------
fuzz: build $(if $(filter-out 0,$(FUZZ_ASAN)),asan-build)
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(if $(filter-out 0,$(FUZZ_ASAN)),--asan) $(FUZZ_TARGETS)

# ---- sanitizers ---------------------------------------------------------------------------------------------
# The extension is built with -fsanitize=address,undefined into build/asan/lib (setup.py, EMBEDFAST_SANITIZE=1),
# then copied with the package's Python files and the tests into build/asan/tree, where the tests run: the
# in-place embedfast/_C*.so is never touched. python itself is not instrumented, so gcc's ASan and UBSan
# runtimes are preloaded; python's own allocations are not leaks to report (detect_leaks=0).
ASAN_DIR := build/asan
ASAN_TREE := $(ASAN_DIR)/tree
# abort_on_error: a report ends the process with SIGABRT, which every test of a child process counts as a crash
SANITIZER_ENV = LD_PRELOAD="$$(realpath $$(gcc -print-file-name=libasan.so)) $$(realpath $$(gcc -print-file-name=libubsan.so))" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1

$(ASAN_DIR)/.stamp: $(DEPS) $(SOURCES)
	EMBEDFAST_SANITIZE=1 MAX_JOBS=$(MAX_JOBS) $(PY) setup.py --quiet build_ext
	touch $@

asan-build: $(ASAN_DIR)/.stamp
	rm -rf $(ASAN_TREE) && mkdir -p $(ASAN_TREE)
	mkdir -p $(ASAN_TREE)/fuzz && cp fuzz/*.py $(ASAN_TREE)/fuzz/
	cp -r embedfast tests pyproject.toml $(ASAN_TREE)/
	find $(ASAN_TREE) -name __pycache__ -prune -exec rm -rf {} + ; rm -f $(ASAN_TREE)/embedfast/_C*.so
	cp $(ASAN_DIR)/lib/embedfast/_C*.so $(ASAN_TREE)/embedfast/

# Any sanitizer report fails the target: the process aborts (a test fails, or pytest itself dies), and the log is
# searched for reports as well. --capture=sys leaves file descriptor 2 alone, so that a report of the pytest
# process reaches the log instead of pytest's capture file.
ASAN_REPORT_RE := ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer
asan: asan-build
	cd $(ASAN_TREE) && $(SANITIZER_ENV) EMBEDFAST_FUZZ_RUNS=100 $(abspath $(PY)) -m pytest -q -p no:cacheprovider --capture=sys \
	  $(PYTEST_ARGS) $(ASAN_TESTS) 2>&1 | tee $(abspath $(ASAN_DIR))/test.log; rc=$${PIPESTATUS[0]}; \
	if grep -qE "$(ASAN_REPORT_RE)" $(abspath $(ASAN_DIR))/test.log; then grep -nE "$(ASAN_REPORT_RE)" $(abspath $(ASAN_DIR))/test.log | head -20; \
	  echo "make asan: sanitizer reports (log: $(ASAN_DIR)/test.log; tests exit $$rc)"; exit 1; fi; \
	test $$rc -eq 0 && echo "make asan: no sanitizer report, tests passed (log: $(ASAN_DIR)/test.log)"

# AVX-512 paths (csrc/include/embedfast/vecops.h) compile under the sanitizers even on a machine without AVX-512.
asan-avx512: $(DEPS)
	$(PY) fuzz/compile_check.py -march=x86-64-v4

# ---- CUDA kernels (csrc/cuda/) --------------------------------------------------------------------------------
# Compiled with nvcc for CUDA_ARCH against a CUDA build of torch in CUDA_VENV (never the project's .venv: its torch is
# the CPU wheel), into build/cuda/lib, with ptxas' register / spill report; any compiler warning fails the target.
# The CUDA venv is made on first use from PyPI (the CUDA wheel of CUDA_TORCH, several GB; pip --isolated so that the
# CPU wheel lying on disk is not picked). CUDA_HOME: the toolkit (nvcc, libcudart). Nothing here runs a kernel: on a
# GPU machine benchmarks/gpu/check.sh builds, tests and times them.
CUDA_VENV ?= build/cuda-venv
CUDA_TORCH ?= torch==2.13.0
CUDA_ARCH ?= 9.0
CUDA_HOME ?= /usr/local/cuda
CUDA_DIR := build/cuda
# headers of the CUDA math libraries torch includes (cusparse.h, cublas_v2.h): the venv's nvidia wheels hold them
# when the toolkit at CUDA_HOME is a minimal one
CUDA_VENV_INCLUDE = $(subst $(eval) ,:,$(wildcard $(CUDA_VENV)/lib/python*/site-packages/nvidia/cu*/include))
CUDA_WARN_RE := (: warning|warning \#[0-9]|ptxas warning|nvcc warning)

$(CUDA_VENV)/bin/python:
	$(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip --isolated install --quiet "$(CUDA_TORCH)" numpy setuptools wheel ninja pybind11 \
	  --index-url https://pypi.org/simple

cuda-build: $(CUDA_VENV)/bin/python
	mkdir -p $(CUDA_DIR)
	set -o pipefail; CPATH=$(CUDA_VENV_INCLUDE)$${CPATH:+:$$CPATH} CUDA_HOME=$(CUDA_HOME) EMBEDFAST_CUDA=1 EMBEDFAST_PTXAS_VERBOSE=1 TORCH_CUDA_ARCH_LIST=$(CUDA_ARCH) \
	  MAX_JOBS=$(MAX_JOBS) $(CUDA_VENV)/bin/python setup.py build_ext --build-lib $(CUDA_DIR)/lib \
	  --build-temp $(CUDA_DIR)/tmp 2>&1 | tee $(CUDA_DIR)/build.log
	$(CUDA_VENV)/bin/python benchmarks/gpu/ptxas_report.py $(CUDA_DIR)/build.log > $(CUDA_DIR)/ptxas.txt
	cat $(CUDA_DIR)/ptxas.txt
	@if grep -nE "$(CUDA_WARN_RE)" $(CUDA_DIR)/build.log; then \
	  echo "make cuda-build: compiler warnings (log: $(CUDA_DIR)/build.log)"; exit 1; fi
	@echo "make cuda-build: built $$(ls $(CUDA_DIR)/lib/embedfast/_C*.so) with no warning (log: $(CUDA_DIR)/build.log)"

clean:
	rm -rf build .build-stamp embedfast/_C*.so *.egg-info
