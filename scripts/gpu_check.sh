#!/usr/bin/env bash
# GPU check for a machine with torch, triton, timm (and pytest-xdist) preinstalled and no network, run from the
# repo root: the headline benchmark table first (every implementation on the kernel issue's rows, with ratios
# and the roofline fraction), then the CUDA kernel tests in parallel, then a summary; meant to finish within
# 5 minutes. Everything lands in OUT_DIR. The full benchmark grid is `make gpu-bench`.
# Usage: scripts/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUT_DIR}
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Deterministic cuBLAS, which deterministic mode requires (fekernels/_precision.py); set before any CUDA use.
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}

"$python" - > "$out/environment.txt" 2>&1 <<'PY'
import platform, torch, triton, timm
print("device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device")
print("python:", platform.python_version(), "torch:", torch.__version__, "triton:", triton.__version__,
      "timm:", timm.__version__, "cuda:", torch.version.cuda)
PY
cat "$out/environment.txt"

start=$(date +%s)
timeout -s INT -k 10 170 "$python" -m benchmarks.headline --out "$out" 2>&1 | tee "$out/headline.log"
headline_status=${PIPESTATUS[0]}
headline_seconds=$(( $(date +%s) - start ))

# The kernel-facing tests (the data tests need PyAV, which the GPU image lacks); Triton compile time
# dominates, so they run in parallel where pytest-xdist is installed. SIGINT at the time limit lets pytest
# still write its report of what ran.
parallel=()
"$python" -c "import xdist" 2>/dev/null && parallel=(-n 8)
start=$(date +%s)
timeout -s INT -k 10 110 "$python" -m pytest -q -p no:cacheprovider ${parallel[@]+"${parallel[@]}"} --junitxml="$out/tests.xml" \
  tests/test_triton_kernels.py tests/test_impl_contract.py tests/test_reference.py tests/test_checks.py \
  tests/test_cost.py tests/test_adapter_module.py tests/test_vit.py 2>&1 | tee "$out/tests.log"
tests_status=${PIPESTATUS[0]}
tests_seconds=$(( $(date +%s) - start ))

{
  cat "$out/headline.md" 2>/dev/null || echo "(no headline table: see headline.log)"
  echo
  echo "## GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  sed 's/^/    /' "$out/environment.txt"
  echo
  echo "headline: exit status $headline_status, ${headline_seconds}s; tests: exit status $tests_status, ${tests_seconds}s"
  echo
  echo '```'
  grep -E "passed|failed|error" "$out/tests.log" | tail -n 3
  grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -n 40
  echo '```'
} > "$out/summary.md"
cat "$out/summary.md"
[ "$headline_status" -eq 0 ] && [ "$tests_status" -eq 0 ]
