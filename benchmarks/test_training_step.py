"""End to end: one training step (forward, backward, AdamW) of an adapted ViT; clips/s and peak memory."""

from __future__ import annotations

import pytest
import torch

import fe_adapter
from benchmarks.cases import CUDA
from benchmarks.timing import run_pedantic

BACKBONE, CLIPS, FRAMES = ("vit_base_patch16_224", 8, 16) if CUDA else ("vit_tiny_patch16_224", 1, 8)
IMPLS = ["torch", "triton"] if CUDA else ["torch"]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("impl", IMPLS)
def test_training_step(benchmark, device, impl: str, compiled: bool):
    torch.manual_seed(0)
    model = fe_adapter.create_model(BACKBONE, num_classes=7, num_frames=FRAMES, impl=impl).to(device)
    network = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    inputs = [(torch.randn(CLIPS, FRAMES, 3, 224, 224, device=device), torch.randint(0, 7, (CLIPS,), device=device))
              for _ in range(2)]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=CUDA)

    def step(item):
        clips, labels = item
        with autocast:
            loss = torch.nn.functional.cross_entropy(network(clips).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if CUDA:
        step(inputs[0])
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    benchmark.group = f"train-step-{BACKBONE}-B{CLIPS}-T{FRAMES}"
    benchmark.extra_info.update(impl=impl + ("+compile" if compiled else ""), clips=CLIPS, passes="train_step")
    run_pedantic(benchmark, step, inputs, device, rounds=10 if CUDA else 3, warmup=2 if CUDA else 1)
    if CUDA:
        benchmark.extra_info["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
