"""The activations the op supports, by name, shared by every implementation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS: tuple[str | None, ...] = (None, "gelu", "silu", "relu")
#: The integer the Triton kernels use for an activation (a constexpr; the C++ kernel takes the name).
ACTIVATION_CODES: dict[str | None, int] = {name: code for code, name in enumerate(ACTIVATIONS)}


def check_activation(activation: object) -> None:
    """Raise a ValueError naming the argument and the known names unless ``activation`` is one of them."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def activation_code(activation: str | None) -> int:
    """The kernels' integer for a validated activation name (a ValueError for any other value)."""
    check_activation(activation)
    return ACTIVATION_CODES[activation]


def apply_activation(h: torch.Tensor, activation: str | None) -> torch.Tensor:
    """Apply a named activation; ``None`` is the identity (ST-Adapter's choice)."""
    check_activation(activation)
    if activation == "gelu":
        return F.gelu(h)  # exact (erf) form
    if activation == "silu":
        return F.silu(h)
    if activation == "relu":
        return F.relu(h)
    return h
