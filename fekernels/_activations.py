"""The activations the op supports, by name, shared by every implementation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS: tuple[str | None, ...] = (None, "gelu", "silu", "relu")
#: The integer each compiled kernel (Triton, C++) uses for an activation.
ACTIVATION_CODES: dict[str | None, int] = {name: code for code, name in enumerate(ACTIVATIONS)}


def apply_activation(h: torch.Tensor, activation: str | None) -> torch.Tensor:
    """Apply a named activation; ``None`` is the identity (ST-Adapter's choice)."""
    if activation is None:
        return h
    if activation == "gelu":
        return F.gelu(h)  # exact (erf) form
    if activation == "silu":
        return F.silu(h)
    if activation == "relu":
        return F.relu(h)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
