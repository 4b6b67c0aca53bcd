#!/usr/bin/env bash
# GPU check for a machine with torch, triton and timm preinstalled and no network (run from the repo root):
# the CUDA tests (compiled Triton kernels, ViT-B shapes, torch.compile with inductor, opcheck), then the
# benchmarks, with logs, the benchmark report and a summary written to the output folder, in under 8 minutes.
# Usage: scripts/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUT_DIR}
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$python" - > "$out/environment.txt" 2>&1 <<'PY'
import platform, torch, triton, timm
print("device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device")
print("python:", platform.python_version(), "torch:", torch.__version__, "triton:", triton.__version__,
      "timm:", timm.__version__, "cuda:", torch.version.cuda)
PY
cat "$out/environment.txt"

start=$(date +%s)
# The kernel-facing tests (the data tests need PyAV, which the GPU image lacks).
timeout 200 "$python" -m pytest -q -p no:cacheprovider --junitxml="$out/tests.xml" tests/test_triton_kernels.py \
  tests/test_reference.py tests/test_checks.py tests/test_cost.py tests/test_adapter_module.py tests/test_vit.py \
  2>&1 | tee "$out/tests.log"
tests_status=${PIPESTATUS[0]}
tests_seconds=$(( $(date +%s) - start ))

start=$(date +%s)
timeout 260 "$python" -m pytest benchmarks -q -p no:cacheprovider --benchmark-json="$out/benchmarks.json" \
  --benchmark-columns=median,iqr,rounds 2>&1 | tail -n 60 > "$out/benchmarks.log"
bench_status=${PIPESTATUS[0]}
bench_seconds=$(( $(date +%s) - start ))
if [ -s "$out/benchmarks.json" ]; then
  "$python" -m benchmarks.report "$out/benchmarks.json" --out "$out/results" \
    --command "make gpu-check OUT=$out" > /dev/null 2>> "$out/benchmarks.log"
fi

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  sed 's/^/    /' "$out/environment.txt"
  echo
  echo "tests: pytest exit status $tests_status, ${tests_seconds}s; benchmarks: exit status $bench_status, ${bench_seconds}s"
  echo
  echo '```'
  grep -E "passed|failed|error" "$out/tests.log" | tail -n 3
  grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -n 40
  grep -E "passed|failed|error" "$out/benchmarks.log" | tail -n 3
  echo '```'
  ls "$out"/results/*.md 2>/dev/null | head -n 1 | xargs -r cat
} > "$out/summary.md"
cat "$out/summary.md"
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
