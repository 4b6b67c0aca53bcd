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
            "print(json.dumps(dataclasses.asdict(tool.compile_job(tool.Job('grad_x', tool.FALLBACK, 'bf16', 3)))))")
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["error"] is None
    assert result["config"] == "64x64x32 w4 s1"  # the fallback tile
    assert result["registers"] > 0
    assert result["spill_stores"] == result["spill_loads"] == 0
    assert 0 <= result["shared"] <= result["estimate"] and result["kept"] is True


def test_the_report_flags_estimates_and_pruning_that_disagree_with_the_compile(tool):
    limit = tool.H100_SHARED_MEMORY

    def result(config, shared, estimate, kept, **measured):
        return tool.Result(tool.Job("forward_up", config, "fp32 (TF32)", 9, "gelu"), "64x64x32 w4 s2",
                           shared=shared, estimate=estimate, kept=kept, **measured)

    rows = [result(0, 1000, 3000, True, registers=255, spill_stores=8, spill_loads=4),
            result(1, limit + 1, limit + 4000, True),  # kept, but the launch would fail
            result(2, 2000, 1000, True),  # the estimate is not a bound
            result(3, limit, limit + 1, False),  # pruned, though it fits
            result(tool.FALLBACK, 500, 600, True),
            result(4, 1000, 3000, False, pruned_unclean=True)]  # fits, but this Triton compiles it unclean
    verdicts = [tool._h100_verdict(row) for row in rows]
    assert verdicts == ["kept", "kept, **does not fit**", "kept", "pruned, **but fits**", "fallback",
                        "pruned: unclean under this Triton"]
    assert "**< measured**" in tool._row(rows[2]) and "measured" not in tool._row(rows[0])
    assert "| 255 | 8/4 |" in tool._row(rows[0])
    summary = "\n".join(tool._summary([*rows, dataclasses.replace(rows[0], error="PTXASError: boom")]))
    assert "7 compiles: 6 ok, 1 failed" in summary
    assert "below the measured allocation in 1 of them" in summary
    assert "2 pruned, 1 of them as unclean under this Triton" in summary
    assert "1 pruned although they would fit; 1 kept although" in summary


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


DATA = ROOT / "tests" / "data"
#: Captured from real runs (Triton 3.8.0's bundled ptxas 12.9 and nvdisasm, this repository's forward_up_kernel,
#: bf16, K = 3, no activation, compiled for sm_90a by compile_offline.compile_job's arguments): ptxas -v's log
#: of the 64x64x32 w4 s2 config and of the 128x256x32 w8 s3 one, and `nvdisasm -c` of the first's cubin.
SMALL_LOG = DATA / "ptxas-forward_up-64x64x32-bf16-K3.log"
SPILLING_LOG = DATA / "ptxas-forward_up-128x256x32-bf16-K3.log"
SMALL_SASS = DATA / "nvdisasm-forward_up-64x64x32-bf16-K3.sass"


def test_ptxas_logs_parse_into_registers_spills_and_notices(tool):
    small = tool.Result(tool.Job("forward_up", 5, "bf16", 3), "64x64x32 w4 s2")
    tool._parse_ptxas(SMALL_LOG.read_text(), small)
    assert (small.registers, small.spill_stores, small.spill_loads) == (121, 0, 0)
    assert list(small.notices) == ["C7515"] and small.notices["C7515"].startswith("Potential Performance Loss")
    spilling = tool.Result(tool.Job("forward_up", 1, "bf16", 3), "128x256x32 w8 s3")
    tool._parse_ptxas(SPILLING_LOG.read_text(), spilling)
    assert (spilling.registers, spilling.spill_stores, spilling.spill_loads) == (255, 148, 148)


def test_the_main_loop_of_real_nvdisasm_output(tool):
    """The loop with the wgmma instructions: from label .L_x_1 to its backward branch; 2 wgmma per iteration (a
    64x64 tile over BLOCK_K = 32, 16 deep each), and the instruction count from the listing's own addresses."""
    sass = SMALL_SASS.read_text()
    lines = sass.splitlines()
    start = lines.index(".L_x_1:") + 1
    branch = next(index for index, line in enumerate(lines) if "BRA `(.L_x_1)" in line)

    def address(line):
        return int(line.split("/*")[1].split("*/")[0], 16)

    instructions, wgmma = tool.parse_main_loop(sass)
    assert wgmma == 2 == sum("HGMMA" in line for line in lines[start:branch])
    assert instructions == (address(lines[branch]) - address(lines[start])) // 16 + 1 == 364
    assert tool.parse_main_loop("no listing") == (None, None)


def test_json_records_carry_every_field_and_a_run_replaces_its_own_version(tool, monkeypatch):
    monkeypatch.setattr(tool, "_versions", lambda: {"triton": "3.8.0", "ptxas": "12.9 (V12.9.86)"})
    result = tool.Result(tool.Job("grad_h", 0, "bf16", 9, "gelu", ("NEED_WEIGHT_GRADS",)), "128x128x64 w8 s3",
                         shared=1000, estimate=2000, kept=True, registers=255, spill_stores=8, spill_loads=4,
                         notices={"C7515": "wgmma serialized"}, main_loop_instructions=706, main_loop_wgmma=4,
                         seconds=1.5, cpu_seconds=1.25)
    other = {"sections": {"3.6.0": {"records": []}}}
    merged = tool.merge_json(other, [result], "cmd")
    assert set(merged["sections"]) == {"3.6.0", "3.8.0"}
    (row,) = merged["sections"]["3.8.0"]["records"]
    assert row == {"kernel": "grad_h", "config": "128x128x64 w8 s3", "dtype": "bf16", "K": 9, "activation": "gelu",
                   "variant": ["NEED_WEIGHT_GRADS=False"], "error": None, "shared": 1000, "estimate": 2000,
                   "kept": True, "h100": "kept", "registers": 255, "spill_stores": 8, "spill_loads": 4,
                   "C7515": True, "notices": ["C7515"], "main_loop_instructions": 706, "main_loop_wgmma": 4,
                   "compile_seconds": 1.5, "compile_cpu_seconds": 1.25}
    again = tool.merge_json(merged, [], "cmd")
    assert again["sections"]["3.8.0"]["records"] == [] and "3.6.0" in again["sections"]
    assert tool._row(result).endswith("| C7515 | 706 | 4 | 1.5 | 1.25 |")
    assert merged["sections"]["3.8.0"]["cpus"] >= 1 and len(merged["sections"]["3.8.0"]["load_average_at_end"]) == 3


COMMITTED = ROOT / "benchmarks" / "results" / "offline-compile-sm90a.json"


def _clean(record: dict) -> bool:
    return (record["error"] is None and record["registers"] < 255 and not record["spill_stores"]
            and not record["spill_loads"] and not record["C7515"] and not any(
                code in ("C7514", "C7515") for code in record["notices"]))


def _size(config: str) -> tuple[int, int]:
    rows, columns = config.split()[0].split("x")[:2]
    return int(rows), int(columns)


def test_the_committed_compile_has_clean_main_loops_on_big_tiles(tool):
    """Issue 21's bar, on the committed offline sm_90a compile (every Triton section): for bf16 and fp16, K 3 to 9,
    with and without an activation, every config an H100 keeps compiles with fewer than 255 registers, no spills
    and no serialised wgmma; and each GEMM kernel keeps a clean tile of at least 128 x 128 at K = 3 and one of at
    least 128 rows at K = 9 in every case (pruning the big tiles away would not pass)."""
    sections = json.loads(COMMITTED.read_text())["sections"]
    assert sections
    for version, section in sections.items():
        records = [r for r in section["records"] if r["dtype"] in ("bf16", "fp16") and not r["variant"]]
        dirty = [(r["kernel"], r["config"], r["dtype"], r["K"], r["activation"]) for r in records
                 if r["kept"] and not _clean(r)]
        assert not dirty, f"Triton {version}: kept but not clean: {dirty}"
        for kernel in tool.GEMM_KERNELS:
            acts = (None, "gelu") if kernel in tool.ACTIVATION_KERNELS else (None,)
            sizes = tool.KERNEL_SIZES if kernel in tool.CONV_KERNELS else tool.KERNEL_SIZES[:1]
            for dtype in ("bf16", "fp16"):
                for k in sizes:
                    for act in acts:
                        case = [r for r in records if (r["kernel"], r["dtype"], r["K"], r["activation"])
                                == (kernel, dtype, k, act)]
                        assert case, f"Triton {version}: no {kernel} {dtype} K={k} {act} compile"
                        big = [_size(r["config"]) for r in case if r["kept"] and _clean(r)]
                        if k == 3:
                            assert any(m >= 128 and n >= 128 for m, n in big), (version, kernel, dtype, act)
                        assert any(m >= 128 for m, _ in big), (version, kernel, dtype, k, act)
