# embedfast: `make run` and `make test` set everything up on a fresh machine.
#   make run            venv + torch + package, then `embedfast demo` on the embedded corpus
#   make test           same set-up, then the whole test suite
#   make build          (re)build the C++ extension in place after editing csrc/
#   make bench          side-by-side benchmark tables (see benchmarks/README.md)
# Variables: PYTHON (interpreter for the venv), VENV (its folder), TORCH (pip spec used only when the venv has
# no importable torch; the default takes the CPU wheel lying on these machines), PYTEST_ARGS.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
MAX_JOBS ?= 2

BIN := $(VENV)/bin
PY := $(BIN)/python
DEPS := $(VENV)/.embedfast-deps
SOURCES := $(wildcard csrc/*.cpp csrc/cpu/*.cpp csrc/cuda/*.cu csrc/include/embedfast/*.h) setup.py

.PHONY: run test build bench clean venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (reused when already importable), then build tools and the test/bench extras.
$(DEPS): $(PY) pyproject.toml
	@$(PY) -c "import torch" 2>/dev/null && echo "using $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install --quiet setuptools wheel ninja pybind11 numpy
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
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: build
	$(PY) benchmarks/run.py

clean:
	rm -rf build .build-stamp embedfast/_C*.so *.egg-info
