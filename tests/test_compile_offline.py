"""scripts/compile_offline.py: a kernel compiles for sm_90a without a GPU, and the report flags what disagrees."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tool(monkeypatch):
    """The script as a module (it imports fekernels only when asked to, so loading it here is safe)."""
    spec = importlib.util.spec_from_file_location("compile_offline", ROOT / "scripts" / "compile_offline.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_one_kernel_compiles_for_sm90a_with_its_ptxas_report(tool, tmp_path):
    if problem := tool.toolchain_problem():
        pytest.skip(f"cannot compile for sm_90a here: {problem}")
    # In a subprocess: this one may run the kernels under the interpreter (TRITON_INTERPRET=1, tests/conftest.py).
    code = ("import dataclasses, json, sys; sys.path.insert(0, 'scripts'); import compile_offline as tool; "
            "print(json.dumps(dataclasses.asdict(tool.compile_job(tool.Job('grad_z', 0, 'bf16', 3)))))")
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["error"] is None
    assert result["config"].endswith(" s1")  # the elementwise kernel has no pipeline stages
    assert result["registers"] > 0
    assert result["spill_stores"] == result["spill_loads"] == 0
    assert result["shared"] >= 0 and result["estimate"] is None and result["kept"] is None


def test_the_report_flags_estimates_and_pruning_that_disagree_with_the_compile(tool):
    limit = tool.H100_SHARED_MEMORY

    def result(config, shared, estimate, kept, **measured):
        return tool.Result(tool.Job("forward_up", config, "fp32 (TF32)", 9, "gelu"), "64x64x32 w4 s2",
                           shared=shared, estimate=estimate, kept=kept, **measured)

    rows = [result(0, 1000, 3000, True, registers=255, spill_stores=8, spill_loads=4),
            result(1, limit + 1, limit + 4000, True),  # kept, but the launch would fail
            result(2, 2000, 1000, True),  # the estimate is not a bound
            result(3, limit, limit + 1, False),  # pruned, though it fits
            result(tool.FALLBACK, 500, 600, True)]
    verdicts = [tool._h100_verdict(row) for row in rows]
    assert verdicts == ["kept", "kept, **does not fit**", "kept", "pruned, **but fits**", "fallback"]
    assert "**< measured**" in tool._row(rows[2]) and "measured" not in tool._row(rows[0])
    assert "| 255 | 8/4 |" in tool._row(rows[0])
    summary = "\n".join(tool._summary([*rows, dataclasses.replace(rows[0], error="PTXASError: boom")]))
    assert "6 compiles: 5 ok, 1 failed" in summary
    assert "below the measured allocation in 1 of them" in summary
    assert "1 pruned, of which 1 would fit; 1 kept although" in summary


def test_a_run_replaces_its_own_triton_versions_section_and_keeps_the_others(tool):
    other = "## Triton 3.6.0, ptxas 12.8\n\nkept rows\n"
    report = tool.TITLE + "## Triton 3.8.0, ptxas 12.9, old\n\nold rows\n\n" + other
    merged = tool.merge(report, "## Triton 3.8.0, ptxas 12.9, new\n\nnew rows\n")
    assert merged == tool.TITLE + "## Triton 3.8.0, ptxas 12.9, new\n\nnew rows\n\n" + other
    added = tool.merge(merged, "## Triton 3.7.0, ptxas 12.9\n\nmore rows\n")
    assert added == merged + "\n## Triton 3.7.0, ptxas 12.9\n\nmore rows\n"
    assert tool.merge(tool.TITLE, "## Triton 3.8.0, x\n") == tool.TITLE + "## Triton 3.8.0, x\n"


def test_it_refuses_to_write_into_a_file_that_is_not_its_report(tool, tmp_path, capsys, monkeypatch):
    notes = tmp_path / "notes.md"
    notes.write_text("# My notes\n")
    monkeypatch.setattr(tool, "default_jobs", lambda full: pytest.fail("compiled before checking --out"))
    with pytest.raises(SystemExit):
        tool.main(["--out", str(notes)])
    assert "is not a report of this tool" in capsys.readouterr().err
    assert notes.read_text() == "# My notes\n"
