"""The headline table: every implementation on the kernel issue's rows, with ratios and the roofline fraction.

    python -m benchmarks.headline [--out DIR]      # on a GPU: ViT-B/16 shapes, T=16, bf16
    python -m benchmarks.headline --quick          # tiny shapes on any device (what the tests run)

Rows: the op forward and forward+backward for ViT-B/16 at B=8 and B=1 with R=384 and R=64 (K=3, d=1, one
prefix token; ViT-L/14 and the rest of the grid are in ``pytest benchmarks/``), then one training step
(forward, backward, AdamW) of ``create_model("vit_base_patch16_224", num_frames=16)`` on 4 clips under bf16
autocast, eager and compiled, with ``impl="torch"`` and ``impl="triton"``. Each implementation is checked
against the float64 reference on the row's inputs before it is timed. On a GPU times are medians of
``triton.testing.do_bench`` (CUDA events, the L2 cache flushed before every call, inputs rotated); on a CPU,
of ``time.perf_counter`` around synchronised calls. The roofline is the op's floor (``fekernels.cost``) at
the copy bandwidth and matmul rate measured in the same run. Writes ``headline.json`` and ``headline.md`` to
DIR and prints the table.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

import fekernels
from benchmarks.cases import OpShape, call_op, check_op, compiled_reference, input_sets, training_step
from benchmarks.timing import device_name, measure_ceilings, synchronize
from fe_adapter._json import write_json
from fekernels.baselines import fe_adapter_st_layout

_VIT_B, _VIT_TINY = (197, 768), (17, 64)


def op_rows(quick: bool) -> list[tuple[OpShape, bool]]:
    """(shape, with_backward) for each op row of the table."""
    if quick:
        shapes = [OpShape("tiny", clips, 2, *_VIT_TINY, 16, 3, 1, torch.float32) for clips in (2, 1)]
    else:
        shapes = [OpShape("vit_b16", clips, 16, *_VIT_B, bottleneck, 3, 1, torch.bfloat16)
                  for clips in (8, 1) for bottleneck in (384, 64)]
    return [(shape, with_backward) for shape in shapes for with_backward in (False, True)]


def op_implementations(device: torch.device, quick: bool) -> dict[str, Callable]:
    """The timed implementations: the reference, ST-Adapter's layout, torch.compile of the reference
    (default and max-autotune) and the Triton kernels (on a GPU; on a CPU the native kernel when built)."""

    backend = "aot_eager" if quick else "inductor"  # --quick checks the plumbing, not inductor's speed

    def impl(name: str) -> Callable:
        return lambda *args, **kwargs: fekernels.fe_adapter(*args, **kwargs, impl=name)

    impls = {"torch": fekernels.fe_adapter_reference, "eager_st": fe_adapter_st_layout,
             "compiled": compiled_reference(None, backend)}
    if device.type == "cuda":
        impls["compiled_max_autotune"] = compiled_reference("max-autotune-no-cudagraphs", backend)
        impls["triton"] = impl("triton")
    elif "native" in fekernels.IMPLS:
        impls["native"] = impl("native")
    return impls


def _max_autotune_row(shape: OpShape, with_backward: bool) -> bool:
    """max-autotune compiles for about a minute per graph: only on the issue's B=8, R=384 forward row."""
    return shape.clips == 8 and shape.bottleneck == 384 and shape.model == "vit_b16" and not with_backward


def time_call(call: Callable[[object], object], inputs: list, device: torch.device) -> float:
    """Median seconds of ``call(input)``, rotating through ``inputs``."""
    rotation = itertools.cycle(inputs)
    if device.type == "cuda":
        from triton.testing import do_bench

        return do_bench(lambda: call(next(rotation)), warmup=25, rep=200, return_mode="median") / 1e3
    for _ in range(2):
        call(next(rotation))
    times = []
    for _ in range(10):
        start = time.perf_counter()
        call(next(rotation))
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_ops(device: torch.device, quick: bool, ceilings: dict) -> Iterator[dict]:
    """The op rows, one at a time: each implementation checked against the reference, then timed."""
    impls = op_implementations(device, quick)
    for shape, with_backward in op_rows(quick):
        sets = input_sets(shape, device, with_backward)
        cost = shape.cost(with_backward)
        row = {"shape": shape.id, "pass": "forward+backward" if with_backward else "forward",
               "roofline_s": cost.roofline_seconds(ceilings["bandwidth_bytes_per_s"], ceilings["matmul_flops_per_s"]),
               "seconds": {}}
        for name, op in impls.items():
            if name == "compiled_max_autotune" and not _max_autotune_row(shape, with_backward):
                continue
            check_op(op, sets[0], shape.options, with_backward)
            call = functools.partial(call_op, op, options=shape.options, with_backward=with_backward)
            row["seconds"][name] = time_call(call, sets, device)
        times = ", ".join(f"{name} {seconds * 1e3:.3f} ms" for name, seconds in row["seconds"].items())
        print(f"  {row['shape']} {row['pass']}: {times}", flush=True)
        yield row


def measure_training(device: torch.device, quick: bool) -> Iterator[dict]:
    """One AdamW step of an adapted ViT per implementation, eager and compiled: seconds and peak memory."""
    if quick:
        setting = dict(backbone="vit_tiny_patch16_224", backbone_kwargs=dict(img_size=32, depth=2), clips=2, frames=2)
    else:
        setting = dict(backbone="vit_base_patch16_224", backbone_kwargs={}, clips=4, frames=16)
    fused = "triton" if device.type == "cuda" else "native"
    impls = ["torch", *([fused] if fused in fekernels.IMPLS else [])]
    for compiled, impl in itertools.product((False, True), impls):
        row = _training_row(device, quick, impl, compiled, **setting)
        print(f"  training step {impl}{' compiled' if compiled else ''}: {row['seconds'] * 1e3:.1f} ms", flush=True)
        yield row


def _training_row(device: torch.device, quick: bool, impl: str, compiled: bool, backbone: str,
                  backbone_kwargs: dict, clips: int, frames: int) -> dict:
    step, inputs = training_step(backbone, backbone_kwargs, clips, frames, impl, compiled, device,
                                 backend="aot_eager" if quick else "inductor")
    loss = step(inputs[0])
    if not torch.isfinite(loss):
        raise AssertionError(f"training step with impl={impl} (compiled={compiled}): loss {loss.item()}")
    peak = None
    if device.type == "cuda":  # measured on plain steps: do_bench adds its own cache-flush buffer
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        for item in inputs:
            step(item)
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    seconds = time_call(step, inputs, device)
    return {"impl": impl, "compiled": compiled, "seconds": seconds, "clips_per_s": clips / seconds,
            "peak_memory_bytes": peak, "backbone": backbone, "clips": clips, "frames": frames}


def markdown(result: dict) -> str:
    """The table: times per implementation, then the fused kernel's ratios against the issue's targets."""
    fused = "triton" if result["device_type"] == "cuda" else "native"
    names = ["torch", "eager_st", "compiled", "compiled_max_autotune", fused]
    present = [n for n in names if any(n in row["seconds"] for row in result["ops"])]
    ceilings = result["ceilings"]
    lines = [f"# Headline benchmarks on {result['device']}", "",
             f"torch {result['torch']}, triton {result['triton']}, timm {result['timm']}. "
             f"Command: `{result['command']}`. Measured ceilings: copy {ceilings['bandwidth_bytes_per_s'] / 1e9:.0f} "
             f"GB/s, {ceilings['matmul_dtype']} matmul {ceilings['matmul_flops_per_s'] / 1e12:.3g} TFLOP/s. "
             "Times in ms (median).", "",
             "| shape | pass | " + " | ".join(present) + f" | {fused} vs torch | {fused} vs best compiled | "
             f"{fused} of roofline |", "|---|---|" + "---|" * (len(present) + 3)]
    for row in result["ops"]:
        seconds = row["seconds"]
        cells = [f"{seconds[n] * 1e3:.3f}" if n in seconds else "" for n in present]
        best_compiled = min((v for k, v in seconds.items() if k.startswith("compiled")), default=None)
        ratios = ["", "", ""]
        if fused in seconds:
            mine = seconds[fused]
            ratios = [f"{seconds['torch'] / mine:.2f}x", f"{best_compiled / mine:.2f}x" if best_compiled else "",
                      f"{row['roofline_s'] / mine:.0%}"]
        lines.append(f"| {row['shape']} | {row['pass']} | " + " | ".join(cells + ratios) + " |")
    lines += ["", "| training step | impl | ms | clips/s | vs impl=torch | peak memory GB |",
              "|---|---|---|---|---|---|"]
    baseline = {r["compiled"]: r["seconds"] for r in result["training"] if r["impl"] == "torch"}
    for row in result["training"]:
        peak = "" if row["peak_memory_bytes"] is None else f"{row['peak_memory_bytes'] / 1e9:.2f}"
        lines.append(f"| {row['backbone']}, {row['clips']} clips x {row['frames']} frames, "
                     f"{'compiled' if row['compiled'] else 'eager'} | {row['impl']} | {row['seconds'] * 1e3:.1f} | "
                     f"{row['clips_per_s']:.1f} | {baseline[row['compiled']] / row['seconds']:.2f}x | {peak} |")
    return "\n".join(lines) + "\n"


def run(out: Path, quick: bool, command: str) -> dict:
    import timm
    import triton

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ceilings = measure_ceilings(device)
    result = {"device": device_name(device), "device_type": device.type, "torch": torch.__version__,
              "triton": triton.__version__, "timm": timm.__version__, "command": command, "ceilings": ceilings,
              "ops": [], "training": []}
    out.mkdir(parents=True, exist_ok=True)
    for row in measure_ops(device, quick, ceilings):
        result["ops"].append(row)
        _write(out, result)  # what was measured survives a time limit
    for row in measure_training(device, quick):
        result["training"].append(row)
        _write(out, result)
    print(_write(out, result), flush=True)
    return result


def _write(out: Path, result: dict) -> str:
    write_json(out / "headline.json", result)
    table = markdown(result)
    (out / "headline.md").write_text(table)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("headline"), help="folder for headline.json and .md")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, any device (a check of the script)")
    args = parser.parse_args(argv)
    run(args.out, args.quick, "python -m benchmarks.headline" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
