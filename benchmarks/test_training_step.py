"""End to end: one training step (forward, backward, AdamW) of an adapted ViT; clips/s and peak memory."""

from __future__ import annotations

import pytest
import torch

import fekernels
from benchmarks.cases import CUDA, training_step
from benchmarks.timing import run_pedantic

BACKBONE, CLIPS, FRAMES = ("vit_base_patch16_224", 8, 16) if CUDA else ("vit_tiny_patch16_224", 1, 8)
IMPLS = ["torch", "triton"] if CUDA else ["torch", *(["native"] if "native" in fekernels.IMPLS else [])]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("impl", IMPLS)
def test_training_step(benchmark, device, impl: str, compiled: bool):
    step, inputs = training_step(BACKBONE, {}, CLIPS, FRAMES, impl, compiled, device)
    if CUDA:
        step(inputs[0])
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    benchmark.group = f"train-step-{BACKBONE}-B{CLIPS}-T{FRAMES}"
    benchmark.extra_info.update(impl=impl + ("+compile" if compiled else ""), clips=CLIPS, passes="train_step")
    run_pedantic(benchmark, step, inputs, device, rounds=10 if CUDA else 3, warmup=2 if CUDA else 1)
    if CUDA:
        benchmark.extra_info["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
