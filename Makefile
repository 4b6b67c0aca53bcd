# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NATIVE := fekernels/_native/libfekernels_native.so

.PHONY: demo test lint sanitize bench bench-predict native gpu-check gpu-quick gpu-bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,export]'
	touch $@

# The native CPU kernel (CMake; needs cmake and a C++20 compiler with OpenMP).
$(NATIVE): $(INSTALLED) CMakeLists.txt fekernels/csrc/fe_adapter_cpu.cpp
	cmake -S . -B build -DPython3_EXECUTABLE=$(abspath $(PY)) -DCMAKE_BUILD_TYPE=Release
	cmake --build build -j 2

native: $(NATIVE)

# The native kernel's tests under AddressSanitizer (tests/test_address_sanitizer.py runs them with this library,
# part of make test): an out-of-bounds write fails them even where it would not crash.
ASAN_NATIVE := build-asan/libfekernels_native.so
$(ASAN_NATIVE): $(INSTALLED) CMakeLists.txt fekernels/csrc/fe_adapter_cpu.cpp
	cmake -S . -B build-asan -DPython3_EXECUTABLE=$(abspath $(PY)) -DCMAKE_BUILD_TYPE=Release -DFEKERNELS_SANITIZE=ON
	cmake --build build-asan -j 2

sanitize: $(ASAN_NATIVE)
	$(PY) -m pytest -q -p no:cacheprovider tests/test_address_sanitizer.py

# Idle OpenMP threads spin ~300,000 times before they sleep: with another job on the CPU, two spinning processes
# slowed each other down 60-fold here (docs/demo.md). With 1000 spins each gets its fair share.
demo test: export GOMP_SPINCOUNT ?= 1000

demo: $(INSTALLED) $(NATIVE)
	$(PY) -m fe_adapter demo

# Two pytest workers, handed tests one by one: most tests are one Python thread (subprocesses, decoding, small
# tensors), so two keep both cores busy; a file with module fixtures is one xdist_group (built once, on one worker).
# The native and AddressSanitizer libraries are one long compile each: they are built side by side.
test: $(INSTALLED) lint
	$(MAKE) --no-print-directory --jobs=2 --output-sync=target $(NATIVE) $(ASAN_NATIVE)
	$(PY) -m pytest tests -n 2 --dist loadgroup

lint: $(INSTALLED)
	$(PY) -m ruff check fekernels fe_adapter tests benchmarks scripts

# Op and training-step benchmarks on this machine; the report lands in benchmarks/results/.
bench: $(INSTALLED) $(NATIVE)
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-json=.benchmarks-run.json
	$(PY) -m benchmarks.report .benchmarks-run.json

# Peak memory and speed of `fe-adapter predict` on generated 1- and 10-minute 720p videos (docs/performance.md).
bench-predict: $(INSTALLED)
	$(PY) -m benchmarks.predict_memory

# On a GPU machine with torch/triton/timm preinstalled (no venv, no network): the headline table, then the
# CUDA kernel tests, logs into OUT (about 5 minutes). gpu-bench: the full benchmark grid and its report.
gpu-check:
	@test -n "$(OUT)" || (echo "usage: make gpu-check OUT=dir" && exit 2)
	PYTHON=$(PYTHON) scripts/gpu_check.sh $(OUT)

# The first GPU check, within 4 minutes cold (scripts/gpu_quick.py); DRY_RUN=1 prints its compile plan and estimated
# cold time on any machine (with this checkout's venv when there is one).
gpu-quick:
	@test -n "$(OUT)$(DRY_RUN)" || (echo "usage: make gpu-quick OUT=dir, or make gpu-quick DRY_RUN=1" && exit 2)
	PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/gpu_quick.py $(if $(DRY_RUN),--dry-run,--out $(OUT))

gpu-bench:
	@test -n "$(OUT)" || (echo "usage: make gpu-bench OUT=dir" && exit 2)
	mkdir -p $(OUT)
	$(PYTHON) -m pytest benchmarks -q -p no:cacheprovider --benchmark-json=$(OUT)/benchmarks.json
	$(PYTHON) -m benchmarks.report $(OUT)/benchmarks.json --out $(OUT)/results --command "make gpu-bench OUT=$(OUT)"

clean:
	rm -rf $(VENV) build build-asan fekernels/_native *.egg-info .pytest_cache .ruff_cache
