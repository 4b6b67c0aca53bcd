#!/usr/bin/env bash
# GPU check for a machine with torch, triton and timm preinstalled and no network (run from the repo root):
# the CUDA tests (compiled Triton kernels, ViT-B shapes, torch.compile with inductor, opcheck), with logs
# and a summary written to the output folder. Usage: scripts/gpu_check.sh OUT_DIR
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
timeout 420 "$python" -m pytest tests -q -p no:cacheprovider --junitxml="$out/tests.xml" 2>&1 | tee "$out/tests.log"
status=${PIPESTATUS[0]}
elapsed=$(( $(date +%s) - start ))

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  sed 's/^/    /' "$out/environment.txt"
  echo
  echo "pytest exit status: $status, ${elapsed}s"
  echo
  echo '```'
  grep -E "passed|failed|error" "$out/tests.log" | tail -n 5
  grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -n 40
  echo '```'
} > "$out/summary.md"
cat "$out/summary.md"
exit "$status"
