"""The first GPU check, sized to finish within 4 minutes on a cold H200, compile included (`make gpu-quick OUT=dir`).

No test suite and no inductor max-autotune (those are `make gpu-check`, the second stage). On ViT-B/16 shapes
(T=16, N=197, C=768, R=384, K=3, d=1, one cls token, bf16) at B=1 and B=8:

1. correctness at B=8: the Triton op's output and every gradient against the float64 reference;
2. every kept config of each Triton kernel timed in the op (the other kernels forced to one kept config);
3. forward and forward+backward of triton, the reference and default torch.compile of the reference, with ratios;
4. the Triton op eager against the same calls replayed from a CUDA graph (the host's launch overhead);
5. a torch.profiler table of the backward's kernel launches and the gaps between them.

It writes OUT/gpu-quick.json (device, versions, rows of group / impl / median_s) and prints the headline first.
Before anything runs it prints how many Triton compiles the plan triggers and the cold time that implies from the
committed offline compile (benchmarks/results/offline-compile-sm90a.json, CPU seconds per compile); `--dry-run`
(make gpu-quick DRY_RUN=1) prints only that, on any machine, and fails when it does not fit the budget.
"""

from __future__ import annotations

import os

# Deterministic cuBLAS, which the op requires in deterministic mode (fekernels/_precision.py): before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = ROOT / "benchmarks" / "results" / "offline-compile-sm90a.json"
BUDGET_SECONDS = 240
#: What the plan costs besides our Triton compiles, in seconds. Assumed, not measured (nothing here has run on a
#: GPU yet; the first run's JSON records the real total): CUDA and library start-up, the imports, default
#: torch.compile of the reference (a forward graph and a forward+backward graph at each of B=1 and B=8), and the
#: timing itself (~60 do_bench calls of 0.1-0.3 s).
OTHER_SECONDS = {"start-up and imports": 20, "inductor: 4 graphs": 80, "timing and profiling": 30}
H100_SHARED_MEMORY = 232448
SHAPE = dict(frames=16, tokens=197, dim=768, bottleneck=384, kernel_size=3, dilation=1)
CLIPS = (1, 8)


def _launch_module():
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("gpu_quick: unset TRITON_INTERPRET (the plan is for compiled kernels)")
    from fekernels.triton_kernels import launch

    return launch


def kept_configs(launch, name: str, device=None) -> list:
    """The configs kernel ``name`` keeps at the ViT-B shape in bf16 (on ``device``; by default on an H100)."""
    configs = launch.KERNELS[name].configs
    limit = None if device is not None else H100_SHARED_MEMORY
    return launch.usable_configs(name, configs, SHAPE["kernel_size"], 2, device, limit)


#: The backward's one untuned kernel (launch._REDUCE_CONFIG): one compile, not in the offline records (it has no
#: main loop to judge), so counted at the slowest recorded compile.
REDUCE = ("reduce_partials", "fixed")
#: The kernels timed in the op's forward; the others are timed in its backward.
FORWARD_KERNELS = ("forward_down", "forward_up")


def planned_compiles(launch) -> list[tuple[str, str]]:
    """(kernel, config) of every Triton compile the run triggers: each kept config of each autotuned kernel at
    bf16, K=3 on an H100, and the partials' reduction. The correctness run and the op rows autotune over the same
    configs, the config timing forces them (the other kernels on their last kept config), every backward wants
    every gradient (one grad_h variant), and M is not specialised, so B=1 and B=8 share the compiles."""
    return [*((name, _describe(config)) for name in launch.KERNELS for config in kept_configs(launch, name)),
            REDUCE]


def _describe(config) -> str:
    """A config as compile_offline.py names it: "128x128x64 w8 s3"."""
    sizes = "x".join(str(config.kwargs[key]) for key in ("BLOCK_M", "BLOCK_N", "BLOCK_K"))
    return f"{sizes} w{config.num_warps} s{config.num_stages}"


def compile_seconds(plan: list[tuple[str, str]], offline: dict) -> tuple[list[float], str]:
    """CPU seconds of each planned compile in the offline compile's records (bf16, K=3, no activation, every switch
    on; the newest Triton section that has them), and which section that was. A compile missing from the records
    counts as the slowest one recorded."""
    for version in sorted(offline.get("sections", {}), key=lambda v: tuple(map(int, v.split(".")[:3])),
                          reverse=True):
        records = {(r["kernel"], r["config"]): r["compile_cpu_seconds"]
                   for r in offline["sections"][version]["records"]
                   if r["dtype"] == "bf16" and r["K"] == SHAPE["kernel_size"] and r["activation"] is None
                   and not r["variant"] and r.get("compile_cpu_seconds") is not None}
        if records:
            slowest = max(records.values())
            return [records.get(item, slowest) for item in plan], version
    raise SystemExit(f"gpu_quick: no compile times in {OFFLINE} (run scripts/compile_offline.py)")


def print_plan(launch, offline_path: Path = OFFLINE) -> bool:
    """Print the compiles and the estimated cold time; True when it fits BUDGET_SECONDS."""
    plan = planned_compiles(launch)
    seconds, version = compile_seconds(plan, json.loads(offline_path.read_text()))
    total = sum(seconds) + sum(OTHER_SECONDS.values())
    print(f"gpu-quick plan: {len(plan)} Triton compiles "
          + ", ".join(f"{name} {sum(k == name for k, _ in plan)}" for name in (*launch.KERNELS, REDUCE[0])))
    print(f"  compile: {sum(seconds):.0f} s (CPU seconds per compile from {offline_path.name}, Triton {version}, "
          "measured on a CPU machine, one compile after another)")
    for item, value in OTHER_SECONDS.items():
        print(f"  {item}: {value} s (assumed)")
    fits = total < BUDGET_SECONDS
    print(f"estimated cold time: {total:.0f} s of a {BUDGET_SECONDS} s budget: {'fits' if fits else 'DOES NOT FIT'}")
    return fits


# ---------------------------------------------------------------------------------------------------- on a GPU


def _inputs(clips: int, with_grad: bool, dtype=None):
    import torch

    from benchmarks.cases import OpShape, input_sets

    shape = OpShape("vit_b16", clips, SHAPE["frames"], SHAPE["tokens"], SHAPE["dim"], SHAPE["bottleneck"],
                    SHAPE["kernel_size"], SHAPE["dilation"], dtype or torch.bfloat16)
    options = dict(num_frames=SHAPE["frames"], dilation=SHAPE["dilation"], activation=None, num_prefix_tokens=1)
    return shape, input_sets(shape, torch.device("cuda"), with_grad), options


def _bench(call) -> float:
    from triton.testing import do_bench

    return do_bench(call, warmup=10, rep=100, return_mode="median") / 1e3


def _op(impl: str):
    import fekernels

    if impl == "compiled":
        from benchmarks.cases import compiled_reference

        return compiled_reference()
    return lambda *args, **kwargs: fekernels.fe_adapter(*args, **kwargs, impl=impl)


def correctness() -> dict:
    from benchmarks.cases import check_op

    _, inputs, options = _inputs(8, True)
    start = time.perf_counter()
    check_op(_op("triton"), inputs[0], options, True)
    return {"group": "correctness B=8 bf16 vs float64", "impl": "triton", "passed": True,
            "seconds": time.perf_counter() - start}


def config_rows(launch) -> list[dict]:
    """Each kept config of each kernel, timed inside the op's forward (FORWARD_KERNELS) or backward (the others),
    the other kernels forced to their last kept config (compiled already)."""
    import torch

    from benchmarks.cases import call_op

    rows = []
    device = torch.device("cuda")
    fixed = {name: kept_configs(launch, name, device)[-1] for name in launch.KERNELS}
    for clips in CLIPS:
        for name in launch.KERNELS:
            configs = kept_configs(launch, name, device)
            forward = name in FORWARD_KERNELS
            _, inputs, options = _inputs(clips, not forward)
            item = inputs[0]
            for config in configs:
                with launch.forced_configs({**fixed, name: config}):
                    if forward:
                        seconds = _bench(functools.partial(call_op, _op("triton"), item, options, False))
                    else:
                        x, weights, grad = item
                        out = _op("triton")(x, *weights, **options)
                        wanted = [t for t in (x, *weights) if t.requires_grad]
                        seconds = _bench(functools.partial(torch.autograd.grad, out, wanted, grad, retain_graph=True))
                rows.append({"group": f"config B={clips}", "impl": f"{name} {_describe(config)}",
                             "median_s": seconds, "timed": "forward" if forward else "backward"})
    return rows


def op_rows() -> list[dict]:
    import itertools

    from benchmarks.cases import call_op

    rows = []
    for clips, with_backward in itertools.product(CLIPS, (False, True)):
        _, inputs, options = _inputs(clips, with_backward)
        group = f"{'forward+backward' if with_backward else 'forward'} B={clips}"
        times = {}
        for impl in ("triton", "torch", "compiled"):
            op = _op(impl)
            rotation = itertools.cycle(inputs)
            times[impl] = _bench(lambda op=op, rotation=rotation, options=options, backward=with_backward:
                                 call_op(op, next(rotation), options, backward))
            rows.append({"group": group, "impl": impl, "median_s": times[impl]})
        for row in rows[-3:]:
            row["vs_torch"] = times["torch"] / row["median_s"]
    return rows


def _op_module(weights, options):
    """The Triton op as a module whose parameters are copies of ``weights`` (what make_graphed_callables takes)."""
    import torch

    class OpModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.nn.ParameterList([torch.nn.Parameter(w.detach().clone()) for w in weights])

        def forward(self, x):
            return _op("triton")(x, *self.weights, **options)

    return OpModule()


def graph_rows() -> list[dict]:
    """The Triton op's forward and forward+backward eager against a CUDA graph of the same (make_graphed_callables):
    the difference is the host's launch overhead."""
    import torch

    rows = []
    for clips in CLIPS:
        _, inputs, options = _inputs(clips, True)
        x, weights, grad = inputs[0]

        module = _op_module(weights, options)
        sample = (x.detach().clone().requires_grad_(),)
        graphed = torch.cuda.make_graphed_callables(_op_module(weights, options), sample)
        for name, call in (("eager", module), ("cuda graph", graphed)):
            rows.append({"group": f"host overhead B={clips}", "impl": f"triton {name} forward+backward",
                         "median_s": _bench(lambda call=call, x=x, grad=grad: call(x).backward(grad))})
    return rows


def backward_profile() -> list[dict]:
    """The backward's GPU kernels at B=8 in launch order: duration and the gap since the previous one ended."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    _, inputs, options = _inputs(8, True)
    x, weights, grad = inputs[0]
    out = _op("triton")(x, *weights, **options)
    torch.autograd.grad(out, (x, *weights), grad, retain_graph=True)  # warm
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        torch.autograd.grad(out, (x, *weights), grad, retain_graph=True)
        torch.cuda.synchronize()
    kernels = sorted((e for e in profiler.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    rows, previous_end = [], None
    for event in kernels:
        start, end = event.time_range.start, event.time_range.end
        rows.append({"group": "backward launches B=8", "impl": event.name, "median_s": (end - start) / 1e6,
                     "gap_before_s": None if previous_end is None else (start - previous_end) / 1e6})
        previous_end = end
    return rows


def run(out: Path, launch) -> dict:
    import platform

    import torch
    import triton

    started = time.perf_counter()
    result = {"device": torch.cuda.get_device_name(), "python": platform.python_version(), "torch": torch.__version__,
              "triton": triton.__version__, "cuda": torch.version.cuda, "command": " ".join(sys.argv), "rows": []}
    result["rows"].append(correctness())
    result["rows"] += op_rows()
    result["rows"] += config_rows(launch)
    result["rows"] += graph_rows()
    result["rows"] += backward_profile()
    result["seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-quick.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return result


def print_result(result: dict) -> None:
    """The headline (correctness, the op rows with ratios) first, then every other row."""
    rows = result["rows"]
    print(f"# gpu-quick: {result['device']}, torch {result['torch']}, triton {result['triton']}, "
          f"{result['seconds']:.0f} s")
    print(f"correctness B=8 bf16 vs float64: {'passed' if rows[0]['passed'] else 'FAILED'}")
    for row in rows[1:]:
        if "vs_torch" in row:
            print(f"{row['group']:<24} {row['impl']:<10} {row['median_s'] * 1e3:8.3f} ms  "
                  f"{row['vs_torch']:5.2f}x the reference")
    for row in rows[1:]:
        if "vs_torch" not in row:
            gap = row.get("gap_before_s")
            print(f"{row['group']:<24} {row['impl'][:60]:<60} {row['median_s'] * 1e3:8.3f} ms"
                  + ("" if gap is None else f"  gap {gap * 1e6:6.1f} us"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu-quick.json")
    parser.add_argument("--dry-run", action="store_true", help="print the compile plan and estimate only")
    args = parser.parse_args(argv)
    if not args.dry_run and args.out is None:
        parser.error("--out DIR is required (or --dry-run)")
    launch = _launch_module()
    fits = print_plan(launch)
    if args.dry_run:
        return 0 if fits else 1
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_quick: no CUDA device (use --dry-run for the plan alone)")
    print_result(run(args.out, launch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
