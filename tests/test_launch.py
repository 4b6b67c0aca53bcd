"""The Triton launchers' plain-Python decisions, on the CPU: which configs fit the shared memory, the precision
switches, deterministic mode's config and its cuBLAS requirement, and the bucketed autotuning key. On a GPU these
decide what compiles and runs; here they are checked without one (the interpreter runs a single config, so they
never run in the kernel tests on a CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton.language as tl

import fekernels
from fekernels import _precision, op
from fekernels.triton_kernels import launch
from tests.conftest import random_adapter_tensors
from tests.kernel_cases import strict_fp32

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = ROOT / "benchmarks" / "results" / "offline-compile-sm90a.md"
H100 = 232448  # bytes of shared memory an H100 block may opt in to
GEMM_TILES = [launch.tile_config(tile) for tile in launch._GEMM_TILES]


def test_shared_memory_estimate_is_two_operand_tiles_per_stage_whatever_k():
    config = launch.tile_config((128, 128, 64, 8, 3))
    # (stages - 1) * (BLOCK_M + BLOCK_N) + BLOCK_M + BLOCK_N rows of BLOCK_K elements, plus 2 KB: no kernel loads
    # conv taps in its main loop any more, so K does not count
    for name in launch.KERNELS:
        for kernel_size in (3, 9):
            assert launch.shared_memory_estimate(name, config, kernel_size, 2) == (2 * 256 + 256) * 64 * 2 + 2048
    assert launch.shared_memory_estimate("grad_x", config, 9, 4) == (2 * 256 + 256) * 64 * 4 + 2048


def test_usable_configs_keeps_what_fits_in_order_and_falls_back_to_a_tile_that_fits_any_k():
    assert launch.usable_configs("forward_up", GEMM_TILES, 9, 2, limit=H100) == GEMM_TILES  # bf16: all fit
    kept = launch.usable_configs("grad_h", GEMM_TILES, 9, 4, limit=100_000)
    assert [launch.shared_memory_estimate("grad_h", c, 9, 4) <= 100_000 for c in kept] == [True] * len(kept)
    assert kept == [c for c in GEMM_TILES if c in kept]  # order kept
    assert GEMM_TILES[0] not in kept and GEMM_TILES[-1] in kept  # fp32 128x128x64 s3 (198 KB) is not kept
    (fallback,) = launch.usable_configs("forward_up", GEMM_TILES, 9, 4, limit=10_000)
    assert (fallback.kwargs["BLOCK_M"], fallback.num_stages) == (64, 1)


def test_usable_configs_prunes_exactly_the_tiles_the_committed_compile_found_unclean_under_that_triton():
    """Per Triton section of the committed offline sm_90a compile (JSON): a tile that compiled unclean (255
    registers, spills, C7515) in any bf16/fp16 case of a kernel is pruned when running under that Triton, and every
    other tile is kept. So a version's pruning can neither miss a dirty tile nor drop a clean one; Triton 3.6
    prunes 128x256x32 from forward_up and grad_x, Triton 3.8 nothing."""
    sections = json.loads(OFFLINE.with_suffix(".json").read_text())["sections"]
    assert {"3.6.0", "3.8.0"} <= set(sections)
    for version, section in sections.items():
        for name in launch.KERNELS:
            records = [r for r in section["records"] if r["kernel"] == name and r["dtype"] in ("bf16", "fp16")]
            dirty = {r["config"] for r in records if not (
                r["error"] is None and r["registers"] < 255 and not r["spill_stores"] and not r["spill_loads"]
                and not {"C7514", "C7515"} & set(r["notices"]))}
            kept = launch.usable_configs(name, GEMM_TILES, 3, 2, limit=H100, triton_version=version)
            expected = [c for c in GEMM_TILES if _describe(launch.config_tile(c)) not in dirty]
            assert kept == expected, (version, name, sorted(dirty))
    assert launch.unclean_tiles("forward_up", "3.6.0") == {(128, 256, 32, 8, 3)}
    assert launch.unclean_tiles("forward_up", "3.8.0") == frozenset()


@pytest.mark.parametrize("dtype, interpreter, tf32, ieee", [
    (torch.float32, False, False, True), (torch.float32, False, True, False), (torch.bfloat16, False, False, False),
    (torch.float16, False, True, False), (torch.bfloat16, True, True, True), (torch.float32, True, True, True)])
def test_kernel_flags(dtype, interpreter, tf32, ieee):
    flags = launch.kernel_flags(dtype, interpreter, tf32)
    assert flags == {"DTYPE": launch._TRITON_DTYPES[dtype], "UPCAST": interpreter, "IEEE": ieee}


def test_tf32_allowed_follows_pytorchs_setting():
    matmul = torch.backends.cuda.matmul
    with strict_fp32():
        assert not _precision.tf32_allowed()
        if hasattr(matmul, "fp32_precision"):
            matmul.fp32_precision = "tf32"
        else:
            matmul.allow_tf32 = True
        assert _precision.tf32_allowed()


def _offline_rows() -> list[dict]:
    """The committed offline compile's rows (every Triton section), parsed from its markdown table."""
    names = ["kernel", "config", "dtype", "K", "activation", "variant", "status", "shared", "estimate", "h100",
             "registers", "spills", "notices"]
    rows = []
    for section in re.split(r"^## ", OFFLINE.read_text(), flags=re.M)[1:]:
        triton_version = section.split(",")[0]
        for line in section.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) >= len(names) and cells[0] in launch.KERNELS:  # later reports add columns
                rows.append({"triton": triton_version, **dict(zip(names, cells[:len(names)], strict=True))})
    return rows


def _clean(row: dict) -> bool:
    return (row["registers"] != "-" and int(row["registers"]) < 255 and row["spills"] == "-"
            and "C7515" not in row["notices"])


def _describe(tile: tuple[int, ...]) -> str:
    return f"{tile[0]}x{tile[1]}x{tile[2]} w{tile[3]} s{tile[4]}"


def test_deterministic_tiles_are_the_largest_clean_ones_of_the_committed_offline_compile():
    """Per kernel and element size, over every Triton version, dtype (fp32 without TF32 is routed to the reference),
    K and activation compiled: among the tiles that are kept and clean (registers < 255, no spills, no C7515) in
    every case where some kept tile is, the largest (of two as large, the one needing fewer registers) is
    DETERMINISTIC_TILES' entry."""
    cases: dict[tuple, dict] = {}
    registers: dict[tuple, int] = {}  # (kernel, element size, tile) -> the most registers it took in any case
    for row in _offline_rows():
        if row["variant"] != "-" or "IEEE" in row["dtype"] or row["status"] != "ok":
            continue
        element_size = 4 if row["dtype"].startswith("fp32") else 2
        case = (row["triton"], row["dtype"], row["K"], row["activation"])
        kept = row["h100"] in ("kept", "fallback", "not pruned")
        cases.setdefault((row["kernel"], element_size), {}).setdefault(case, {})[row["config"]] = kept and _clean(row)
        if row["registers"] != "-":
            tile_key = (row["kernel"], element_size, row["config"])
            registers[tile_key] = max(registers.get(tile_key, 0), int(row["registers"]))
    assert cases, f"no rows read from {OFFLINE}"
    for (kernel, element_size), by_case in cases.items():
        tiles = {tile for verdicts in by_case.values() for tile in verdicts}
        good = [tile for tile in tiles if all(verdicts.get(tile, False) or not any(verdicts.values())
                                              for verdicts in by_case.values())]
        assert good, f"{kernel}, {element_size}-byte elements: no tile is clean wherever one is"
        size = {tile: [int(n) for n in re.findall(r"\d+", tile)] for tile in good}
        # Ties (128x128x64 and 128x256x32 hold as much) go to the tile that needs fewer registers at most: farther
        # from the cap; tiles tied on both (forward_down and grad_h: 239 and 254 registers under Triton 3.6) are
        # equally right
        rank = {tile: (size[tile][0] * size[tile][1] * size[tile][2], -registers[(kernel, element_size, tile)])
                for tile in good}
        best = max(good, key=rank.__getitem__)
        chosen = _describe(launch.DETERMINISTIC_TILES[(kernel, element_size)])
        assert chosen in good, f"{kernel} ({element_size}-byte): {chosen} is not clean where others are ({good})"
        assert rank[chosen] == rank[best], f"{kernel}: {best} is larger, or as large with fewer registers"


def test_deterministic_config_is_the_clean_tile_and_falls_back_when_it_does_not_fit():
    config = launch.deterministic_config("forward_down", 3, 2, limit=H100)
    assert (config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"], config.kwargs["BLOCK_K"], config.num_warps,
            config.num_stages) == launch.DETERMINISTIC_TILES[("forward_down", 2)]
    small = launch.deterministic_config("grad_h", 3, 4, limit=10_000)
    assert (small.kwargs["BLOCK_K"], small.num_stages) == (32, 1)


def _named(m: int, dilation: int = 1, prefix: int = 1, activation: int = 0, ieee: bool = False) -> dict:
    return {"X": torch.empty(0), "M": m, "N": 197, "C": 768, "R": 384, "T": 16, "P": prefix, "dilation": dilation,
            "K": 3, "ACTIVATION": activation, "DTYPE": tl.bfloat16, "IEEE": ieee, "HAS_BC": True}


def test_autotune_key_buckets_m_and_holds_every_switch_but_not_p_or_dilation():
    key = launch.autotune_key("forward_up", _named(8 * 16 * 197))  # 25,216 rows: bucket 32,768
    assert key == launch.autotune_key("forward_up", _named(9 * 16 * 197))  # 28,368: same bucket
    assert key == launch.autotune_key("forward_up", _named(8 * 16 * 197, dilation=4, prefix=0))
    assert key != launch.autotune_key("forward_up", _named(11 * 16 * 197))  # 34,672: next bucket
    assert key != launch.autotune_key("forward_up", _named(8 * 16 * 197, activation=1))
    assert key != launch.autotune_key("forward_up", _named(8 * 16 * 197, ieee=True))
    assert key != launch.autotune_key("grad_x", _named(8 * 16 * 197))
    assert ("M", 32768) in key and ("DTYPE", str(tl.bfloat16)) in key


class _FakeAutotuned:
    """Stands for a triton.autotune kernel: records which launches tuned and which ran a given config."""

    def __init__(self, configs):
        self.configs, self.arg_names, self.tunings, self.runs = configs, ["X", "M", "dilation"], [], []
        self.fn = self

    def __getitem__(self, grid):
        def run(*args, **kwargs):
            if "BLOCK_M" in kwargs:
                self.runs.append((args[1], kwargs["BLOCK_M"], kwargs["num_stages"]))
            else:
                self.tunings.append(args[1])
                self.best_config = self.configs[len(self.tunings) % len(self.configs)]
        return run


def test_a_new_batch_size_in_the_same_bucket_reuses_the_tuning_and_deterministic_mode_never_tunes(monkeypatch):
    fake = _FakeAutotuned(GEMM_TILES)
    monkeypatch.setitem(launch.KERNELS, "grad_h", fake)
    monkeypatch.setattr(launch, "_tuned", {})
    monkeypatch.setattr(launch, "_shared_memory_limit", lambda index: H100)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    x = torch.empty(0)

    def launch_rows(m, dilation=1):
        tiles = launch._launch("grad_h", 384, lambda block_m: -(-m // block_m), x, m, dilation, K=3,
                               DTYPE=tl.bfloat16, ACTIVATION=0, IEEE=False)
        ran.append(tiles)

    ran = []

    for m in (8 * 16 * 197, 9 * 16 * 197, 8 * 16 * 197, 11 * 16 * 197):
        launch_rows(m)
    launch_rows(9 * 16 * 197, dilation=2)
    assert fake.tunings == [8 * 16 * 197, 11 * 16 * 197]  # one tuning per bucket
    assert [run[0] for run in fake.runs] == [9 * 16 * 197, 8 * 16 * 197, 9 * 16 * 197]
    fake.runs.clear()
    torch.use_deterministic_algorithms(True)
    try:
        launch_rows(5 * 16 * 197)
    finally:
        torch.use_deterministic_algorithms(False)
    assert fake.tunings == [8 * 16 * 197, 11 * 16 * 197]
    tile = launch.DETERMINISTIC_TILES[("grad_h", 2)]
    assert fake.runs == [(5 * 16 * 197, tile[0], tile[4])]
    assert ran[-1] == -(-5 * 16 * 197 // tile[0])  # the row tiles of the config that ran (partials written)
    assert ran[0] == -(-8 * 16 * 197 // fake.configs[1].kwargs["BLOCK_M"])  # the tuned one's (best: configs[1])


def test_deterministic_mode_on_cuda_requires_cublas_workspace_config(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    _precision.require_deterministic_cublas(cuda)  # deterministic mode off: nothing to require
    torch.use_deterministic_algorithms(True)
    try:
        _precision.require_deterministic_cublas(torch.device("cpu"))
        with pytest.raises(RuntimeError, match=r"CUBLAS_WORKSPACE_CONFIG=:4096:8 or :16:8 .*\(it is unset\)"):
            _precision.require_deterministic_cublas(cuda)
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
        with pytest.raises(RuntimeError, match="it is ':0:0'"):
            _precision.require_deterministic_cublas(cuda)
        for value in (":4096:8", ":16:8"):
            monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", value)
            _precision.require_deterministic_cublas(cuda)
        monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
        torch.use_deterministic_algorithms(True, warn_only=True)
        with pytest.warns(UserWarning, match="CUBLAS_WORKSPACE_CONFIG"):
            _precision.require_deterministic_cublas(cuda)
    finally:
        torch.use_deterministic_algorithms(False)


def test_the_op_checks_cublas_before_running(monkeypatch):
    """The public op calls the check with x's device before any implementation runs."""
    seen = []
    monkeypatch.setattr(op, "require_deterministic_cublas", lambda device: seen.append(device))
    weights = random_adapter_tensors(16, 8, 3, torch.float32)
    fekernels.fe_adapter(torch.randn(4, 3, 16), **weights, num_frames=2, impl="torch")
    assert seen == [torch.device("cpu")]


def test_the_compiled_kernels_do_not_specialise_m_n_t_p_or_dilation_but_do_c_and_r():
    """Checked on the JIT kernels (in a subprocess with the interpreter off: under it nothing is compiled)."""
    code = ("import json; from fekernels.triton_kernels import launch; print(json.dumps({name: [p.name for p in "
            "kernel.fn.params if p.do_not_specialize] for name, kernel in launch.KERNELS.items()}))")
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    unspecialised = json.loads(run.stdout.splitlines()[-1])
    assert unspecialised["forward_down"] == unspecialised["grad_h"] == ["M", "N", "T", "P", "dilation"]
    assert unspecialised["forward_up"] == unspecialised["grad_x"] == ["M", "N", "T", "P"]
    assert {"C", "R"}.isdisjoint(launch.NOT_SPECIALISED)


def test_the_constant_marking_is_what_torch_compiler_sets():
    """fekernels._precision marks its settings readers as torch.compiler.assume_constant_result does, without
    importing torch._dynamo (and Triton) at import; if PyTorch changes how it marks them, this fails."""
    from fekernels import _precision

    def marked_by_torch():
        return True

    def marked_by_us():
        return True

    torch.compiler.assume_constant_result(marked_by_torch)
    _precision._constant_when_compiled(marked_by_us)
    assert vars(marked_by_torch) == vars(marked_by_us) == {"_dynamo_marked_constant": True}
    assert vars(_precision.tf32_allowed) == vars(marked_by_us)
