"""Per-item augmentation parameters (crop boxes, flips, factors) to the training device, without waiting."""

from __future__ import annotations

from typing import Any

import torch


def on_device(values: Any, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-image parameters (nested lists of numbers) as a tensor on ``device``: on a GPU through page-locked memory
    and a copy that does not wait, since a copy from ordinary memory first waits for every kernel queued before it
    (and a batch's augmentation makes dozens of such copies)."""
    values = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)
