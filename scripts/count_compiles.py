"""Count, without a GPU, the Triton autotunings and compiles a ViT-B FE-Adapter training run triggers.

The launchers' own code runs (``launch.forward`` / ``launch.backward`` on meta tensors, which compute nothing) for
the 12 adapters of a ViT-B/16 training step (T = 16, N = 197 tokens with one cls token, C = 768, R = 384, K = 3,
dilations 1,1,2,2,4,4,1,1,2,2,4,4, no activation, bf16: configs/dfew.yaml), forward then backward, the first
adapter's input frozen; each kernel launch is recorded instead of run. Two models of what Triton then does:

- now: the launchers tune once per bucketed key (``launch.autotune_key``), compiling every config that fits for
  the launch's specialisation, and Triton specialises only the ints outside ``launch.NOT_SPECIALISED``;
- before (this repository until the bucketed key): Triton's autotuner keyed on the exact M, N, C, R, T, K and
  the kernel's own switches, and every int specialised (equal to 1, divisible by 16).

A compile is a distinct (kernel, specialisation, config); a tuning times every config that fits. When a key was
tuned already but the launch's specialisation is new, the chosen config compiles once more; which config that is
depends on timings, so where two keys' chosen configs may coincide the count is an upper bound ("at most").

    .venv/bin/python scripts/count_compiles.py --out benchmarks/results/compile-count-vit-b.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

#: A DFEW fold-1 run (configs/dfew.yaml, batch 8): 9,356 training clips (last batch 4), 2,341 test clips (last 5).
RUN = (("train", 8), ("train", 4), ("eval", 8), ("eval", 5))
BATCH_SIZES = (1, 2, 4, 8, 16)
DILATIONS = (1, 1, 2, 2, 4, 4, 1, 1, 2, 2, 4, 4)
FRAMES, TOKENS, DIM, BOTTLENECK, KERNEL_SIZE, PREFIX = 16, 197, 768, 384, 3, 1
#: The old autotuning key, before the bucketed key: the exact M, N, C, R, T, K (those the kernel takes) and the
#: kernel's output switches; no activation, no IEEE switch.
_OLD_KEY = ("M", "N", "C", "R", "T", "K", "NEED_DZ", "NEED_WEIGHT_GRADS")
#: The backward's untuned reduction (launch._reduce_partials): one compile per specialisation, no tuning.
REDUCE = "reduce_partials"
H100_SHARED_MEMORY = 232448


def _launch_module():
    os.environ["TRITON_INTERPRET"] = "0"  # the real configs, not the interpreter's single one
    from fekernels.triton_kernels import launch

    return launch


def record_step(launch, clips: int, train: bool) -> list[tuple[str, dict]]:
    """The kernel launches (name, named arguments) of one step of the adapted ViT-B at ``clips`` clips."""
    import torch

    launches: list[tuple[str, dict]] = []

    def record(name, columns, row_tiles, *args, **kwargs):
        launches.append((name, dict(zip(launch.KERNELS[name].arg_names, args, strict=False)) | kwargs))
        return row_tiles(launch._SMALLEST_BLOCK_M)

    def record_reduce(part, layout, grads, like, slots, bottleneck, kernel_size, dim, flags):
        launches.append((REDUCE, {"K": kernel_size, "WEIGHTS": grads["dw_conv"] is not None,
                                  "DOWN": grads["db_down"] is not None, "DTYPE": flags["DTYPE"]}))

    def meta(*shape):
        return torch.empty(shape, device="meta", dtype=torch.bfloat16)

    x = meta(clips * FRAMES, TOKENS, DIM)
    weights = (meta(BOTTLENECK, DIM), meta(BOTTLENECK), meta(BOTTLENECK, KERNEL_SIZE), meta(BOTTLENECK),
               meta(DIM, BOTTLENECK), meta(DIM))
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(launch, "_launch", record))
        stack.enter_context(_patched(launch, "_reduce_partials", record_reduce))
        stack.enter_context(_patched(launch, "_check_supported", lambda x: None))
        stack.enter_context(_patched(torch, "autocast", lambda *args, **kwargs: contextlib.nullcontext()))
        saved = [launch.forward(x, *weights, FRAMES, d, None, PREFIX) for d in DILATIONS]
        if train:
            w_down, _, w_conv, b_conv, w_up, _ = weights
            for index in reversed(range(len(DILATIONS))):
                launch.backward(x, x, saved[index][1], w_down, w_conv, b_conv, w_up, FRAMES, DILATIONS[index], None,
                                PREFIX, index > 0, True, True)  # the first adapter's input is frozen
    return launches


@contextlib.contextmanager
def _patched(owner, name, value):
    previous = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, previous)


def _specialisation(launch, name: str, named: dict, now: bool) -> tuple:
    """What Triton compiles a kernel separately for: constexprs, and each specialised int equal to 1 or divisible
    by 16 (pointers are taken as 16-byte aligned)."""
    parts = []
    for arg, value in named.items():
        if hasattr(value, "data_ptr"):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and arg in {"M", "N", "C", "R", "T", "P",
                                                                             "dilation", "PART_STRIDE"}:
            if now and arg in launch.NOT_SPECIALISED:
                continue
            value = "1" if value == 1 else "D" if value % 16 == 0 else ""
        parts.append((arg, str(value)))
    return (name, *parts)


class Counter:
    """Autotunings and compiles of a sequence of launches, under one model of Triton (now or before)."""

    def __init__(self, launch, now: bool):
        self.launch, self.now = launch, now
        self.tuned: dict[tuple, str] = {}
        self.compiled: set[tuple] = set()
        self.tunings = 0

    def _key(self, name: str, named: dict) -> tuple:
        if self.now:
            return self.launch.autotune_key(name, named)
        return (name, *(named[arg] for arg in _OLD_KEY if arg in named), str(named["DTYPE"]))

    def add(self, name: str, named: dict) -> None:
        specialisation = _specialisation(self.launch, name, named, self.now)
        if name == REDUCE:
            self.compiled.add((specialisation, "its fixed config"))
            return
        key = self._key(name, named)
        if key not in self.tuned:
            configs = self.launch.KERNELS[name].configs
            element_size = named["DTYPE"].primitive_bitwidth // 8
            configs = self.launch.usable_configs(name, configs, named.get("K", 1), element_size,
                                                 limit=H100_SHARED_MEMORY)
            self.tunings += len(configs) > 1
            self.compiled.update((specialisation, str(config)) for config in configs)
            self.tuned[key] = "chosen"  # which one depends on timings; it is among those just compiled
        else:
            self.compiled.add((specialisation, f"the config chosen for {key}"))

    @property
    def compiles(self) -> int:
        # A compile of "the chosen config" for a specialisation already compiled with every config is no new one.
        chosen = "the config chosen"
        full = {spec for spec, config in self.compiled if not config.startswith(chosen)}
        return sum(1 for spec, config in self.compiled if not config.startswith(chosen) or spec not in full)


def count(launch, steps) -> dict[str, tuple[int, int]]:
    """{"now"/"before": (tunings, compiles)} over the steps, in order, in one process."""
    result = {}
    for model, now in (("now", True), ("before", False)):
        counter = Counter(launch, now)
        for kind, clips in steps:
            for name, named in record_step(launch, clips, kind == "train"):
                counter.add(name, named)
        result[model] = (counter.tunings, counter.compiles)
    return result


def report(launch) -> str:
    import torch
    import triton

    lines = ["# Triton autotunings and compiles of a ViT-B FE-Adapter training run, counted offline", "",
             f"Made by `scripts/count_compiles.py` (torch {torch.__version__}, triton {triton.__version__}, H100 "
             "shared memory for the config pruning); nothing runs on a GPU. ViT-B/16, T=16, R=384, K=3, dilations "
             f"{','.join(map(str, DILATIONS))}, no activation, bf16; the first adapter's input frozen. 'before': the "
             "exact-M autotuning key and every int specialised; 'now': the bucketed key and M, N, T, P, dilation "
             "not specialised.", "",
             "| steps | tunings before | compiles before (at most) | tunings now | compiles now (at most) |",
             "|---|---|---|---|---|"]
    cases = [(f"one training step, B={b}", [("train", b)]) for b in BATCH_SIZES]
    cases += [("training steps at B=" + ", ".join(str(b) for b in BATCH_SIZES) + " in one process",
               [("train", b) for b in BATCH_SIZES]),
              ("a DFEW fold-1 run: train B=8 and its last batch of 4, evaluation B=8 and its last batch of 5",
               list(RUN))]
    for label, steps in cases:
        counts = count(launch, steps)
        lines.append(f"| {label} | {counts['before'][0]} | {counts['before'][1]} | {counts['now'][0]} | "
                     f"{counts['now'][1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    text = report(_launch_module())
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
