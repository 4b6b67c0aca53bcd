"""Shared fixtures: seeded randomness and random (never identity, never zero) adapter weights."""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    # Run the Triton kernels through the CPU interpreter; must happen before any kernel is defined.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def random_adapter_tensors(
    dim: int,
    bottleneck: int,
    kernel_size: int,
    dtype: torch.dtype = torch.float64,
    biases: bool = True,
) -> dict[str, torch.Tensor | None]:
    """Fresh random weights for the op, scaled so activations stay O(1)."""

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, dtype=torch.float64) * scale).to(dtype)

    return {
        "w_down": rand(bottleneck, dim, scale=dim**-0.5),
        "b_down": rand(bottleneck, scale=0.1) if biases else None,
        "w_conv": rand(bottleneck, kernel_size, scale=kernel_size**-0.5),
        "b_conv": rand(bottleneck, scale=0.1) if biases else None,
        "w_up": rand(dim, bottleneck, scale=bottleneck**-0.5),
        "b_up": rand(dim, scale=0.1) if biases else None,
    }


def train_steps(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor, steps: int,
                lr: float = 1e-2) -> list[float]:
    """Run ``steps`` AdamW steps on the trainable parameters; return the loss of each step."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
