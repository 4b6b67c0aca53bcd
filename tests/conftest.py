"""Shared fixtures: seeded randomness and random (never identity, never zero) adapter weights."""

from __future__ import annotations

import pytest
import torch


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
