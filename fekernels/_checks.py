"""Input validation for the FE-Adapter op.

Every message names the argument, what was given and what was expected, so a user who passes the
wrong tensor finds out at the call, not from an obscure shape error deep inside a kernel.
TypeError is for values of the wrong kind (not a tensor, not an int, not a float dtype); ValueError is
for everything about shapes, ranges and mismatches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from fekernels._activations import check_activation


def check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_tensor(name: str, value: object, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, torch.Tensor):
        expected = "a torch.Tensor or None" if optional else "a torch.Tensor"
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")


def _check_shape(name: str, tensor: torch.Tensor | None, expected: tuple[int, ...], meaning: str) -> None:
    if tensor is not None and tuple(tensor.shape) != expected:
        raise ValueError(f"{name} must have shape {meaning} = {expected}, got {tuple(tensor.shape)}")


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_fe_adapter_inputs(
    x: torch.Tensor,
    w_down: torch.Tensor,
    b_down: torch.Tensor | None,
    w_conv: torch.Tensor,
    b_conv: torch.Tensor | None,
    w_up: torch.Tensor,
    b_up: torch.Tensor | None,
    *,
    num_frames: int,
    dilation: int,
    activation: str | None,
    num_prefix_tokens: int,
) -> None:
    """Validate the op's arguments against its contract (see ``fekernels.fe_adapter``)."""
    _check_tensor("x", x)
    for name, tensor in (("w_down", w_down), ("w_conv", w_conv), ("w_up", w_up)):
        _check_tensor(name, tensor)
    for name, tensor in (("b_down", b_down), ("b_conv", b_conv), ("b_up", b_up)):
        _check_tensor(name, tensor, optional=True)
    check_int("num_frames", num_frames, 1)
    check_int("dilation", dilation, 1)
    check_int("num_prefix_tokens", num_prefix_tokens, 0)
    check_activation(activation)

    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (B*T, N, C), got {x.ndim}-D with shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"x must have a floating-point dtype, got {x.dtype}")
    frames_total, num_tokens, dim = x.shape
    if frames_total % num_frames != 0:
        raise ValueError(
            f"x.shape[0] (B*T = {frames_total}) must be divisible by num_frames = {num_frames}: "
            "the frames of each clip are consecutive along dim 0"
        )
    if num_prefix_tokens > num_tokens:
        raise ValueError(f"num_prefix_tokens must be in 0..N = 0..{num_tokens}, got {num_prefix_tokens}")

    if w_down.ndim != 2 or w_down.shape[1] != dim:
        raise ValueError(f"w_down must have shape (R, C) with C = x.shape[2] = {dim}, got {tuple(w_down.shape)}")
    bottleneck = w_down.shape[0]
    if w_conv.ndim != 2 or w_conv.shape[0] != bottleneck:
        raise ValueError(
            f"w_conv must have shape (R, K) with R = w_down.shape[0] = {bottleneck}, got {tuple(w_conv.shape)}"
        )
    kernel_size = w_conv.shape[1]
    if kernel_size % 2 == 0:
        raise ValueError(f"w_conv must have an odd kernel size K (a centred 'same' conv), got K = {kernel_size}")
    _check_shape("w_up", w_up, (dim, bottleneck), "(C, R)")
    _check_shape("b_down", b_down, (bottleneck,), "(R,)")
    _check_shape("b_conv", b_conv, (bottleneck,), "(R,)")
    _check_shape("b_up", b_up, (dim,), "(C,)")

    named = (("w_down", w_down), ("b_down", b_down), ("w_conv", w_conv), ("b_conv", b_conv),
             ("w_up", w_up), ("b_up", b_up))
    for name, tensor in named:
        if tensor is None:
            continue
        if tensor.dtype != x.dtype:
            raise ValueError(f"{name} has dtype {tensor.dtype} but x has {x.dtype}: all tensors must share x's dtype")
        if tensor.device != x.device:
            raise ValueError(
                f"{name} is on {tensor.device} but x is on {x.device}: all tensors must be on x's device"
            )
