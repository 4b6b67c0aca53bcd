"""The fused kernels as ``torch.library`` custom ops, registered with fake outputs and the autograd formula
(``fekernels._registration``, shared with the native kernel).

Registering (instead of calling launches from an ``autograd.Function``) lets ``torch.compile`` treat
the op as one opaque node, with no graph break, and lets ``torch.library.opcheck`` test it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fekernels import _registration
from fekernels._activations import check_activation
from fekernels.triton_kernels import launch


@torch.library.custom_op("fekernels::fe_adapter_triton", mutates_args=())
def fe_adapter_triton_op(
    x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor, b_conv: Tensor | None,
    w_up: Tensor, b_up: Tensor | None, num_frames: int, dilation: int, activation: str | None,
    num_prefix_tokens: int,
) -> tuple[Tensor, Tensor]:
    """Fused forward; returns (out, z)."""
    check_activation(activation)
    return launch.forward(x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation,
                          num_prefix_tokens)


@torch.library.custom_op("fekernels::fe_adapter_triton_backward", mutates_args=())
def fe_adapter_triton_backward_op(
    grad_out: Tensor, x: Tensor, z: Tensor, w_down: Tensor, w_conv: Tensor, b_conv: Tensor | None, w_up: Tensor,
    num_frames: int, dilation: int, activation: str | None, num_prefix_tokens: int,
    need_x: bool, need_down: bool, need_weights: bool,
) -> list[Tensor]:
    """Fused backward; returns [dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up], empty where not needed."""
    check_activation(activation)
    grads = launch.backward(grad_out, x, z, w_down, w_conv, b_conv, w_up, num_frames, dilation, activation,
                            num_prefix_tokens, need_x, need_down, need_weights)
    return [x.new_empty(0) if grad is None else grad for grad in grads]


_registration.register("fekernels::fe_adapter_triton", "fekernels::fe_adapter_triton_backward")


def fe_adapter_triton(
    x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor, b_conv: Tensor | None,
    w_up: Tensor, b_up: Tensor | None, *,
    num_frames: int, dilation: int = 1, activation: str | None = None, num_prefix_tokens: int = 0,
) -> Tensor:
    """The op through the fused Triton kernels (same contract as the reference)."""
    return _registration.run_forward(fe_adapter_triton_op, x, w_down, b_down, w_conv, b_conv, w_up, b_up,
                                     num_frames=num_frames, dilation=dilation, activation=activation,
                                     num_prefix_tokens=num_prefix_tokens)
