"""The formulas of the training recipe: class weights from class counts, the warm-up + cosine schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Per-class loss weights ``N / (C * n_c)`` for C classes of n_c clips (N in all): every class then
    carries the same total weight, as UAR counts every class equally. An empty class counts as one clip."""
    if not counts:
        raise ValueError("class_weights needs the clip count of at least one class, got none")
    tensor = torch.tensor(list(counts), dtype=torch.float32).clamp(min=1)
    return tensor.sum() / (len(tensor) * tensor)


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """The learning-rate multiplier of optimizer step ``step`` (0-based).

    Linear warm-up from ``1 / warmup_steps`` at step 0 to 1 at step ``warmup_steps - 1``, then a cosine from
    1 at step ``warmup_steps`` down to ``floor`` at step ``total_steps``, the schedule's value after the last
    of ``total_steps`` steps.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
