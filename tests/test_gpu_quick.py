"""scripts/gpu_quick.py without a GPU: the dry run's compile plan and cold-time estimate (make gpu-quick DRY_RUN=1)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tool(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_quick", ROOT / "scripts" / "gpu_quick.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_dry_run_prints_its_compiles_and_a_cold_time_within_the_budget():
    """In a fresh process with the interpreter off (the plan is of compiled kernels: every config each kernel keeps
    on an H100 at the ViT-B shape), timed by the CPU seconds of the committed offline compile."""
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    run = subprocess.run(["make", "-s", "gpu-quick", "DRY_RUN=1", f"PYTHON={sys.executable}"], cwd=ROOT, env=env,
                         capture_output=True, text=True)  # PYTHON: where there is no .venv (a GPU machine)
    assert run.returncode == 0, run.stdout + run.stderr
    plan = re.search(r"gpu-quick plan: (\d+) Triton compiles forward_down (\d+), forward_up (\d+), grad_h (\d+), "
                     r"grad_x (\d+), reduce_partials (\d+)", run.stdout)
    assert plan, run.stdout
    total, *per_kernel, reduce = map(int, plan.groups())
    assert total == sum(per_kernel) + reduce and all(count >= 3 for count in per_kernel) and reduce == 1
    seconds = float(re.search(r"estimated cold time: (\d+) s of a 240 s budget: fits", run.stdout).group(1))
    assert 0 < seconds < 240
    assert "offline-compile-sm90a.json" in run.stdout and "(assumed)" in run.stdout


def test_compile_seconds_come_from_the_newest_section_with_the_slowest_for_a_missing_config(tool):
    def record(kernel, config, seconds, **overrides):
        return {"kernel": kernel, "config": config, "dtype": "bf16", "K": 3, "activation": None, "variant": [],
                "compile_cpu_seconds": seconds, **overrides}

    offline = {"sections": {
        "3.6.0": {"records": [record("forward_up", "a", 100.0)]},
        "3.10.0": {"records": [record("forward_up", "a", 2.0), record("grad_h", "b", 5.0),
                               record("grad_h", "b", 50.0, K=9), record("grad_h", "c", 70.0, dtype="fp32")]},
    }}
    seconds, version = tool.compile_seconds([("forward_up", "a"), ("grad_h", "b"), ("grad_x", "z")], offline)
    assert version == "3.10.0" and seconds == [2.0, 5.0, 5.0]
    with pytest.raises(SystemExit, match="no compile times"):
        tool.compile_seconds([("forward_up", "a")], {"sections": {}})


def test_without_out_or_dry_run_it_is_a_usage_error(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main([])
    assert exit_info.value.code == 2 and "--out DIR is required" in capsys.readouterr().err
