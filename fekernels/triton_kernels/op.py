"""The fused kernels as ``torch.library`` custom ops with a registered autograd formula.

Registering (instead of calling launches from an ``autograd.Function``) lets ``torch.compile`` treat
the op as one opaque node, with no graph break, and lets ``torch.library.opcheck`` test it. The forward
saves ``x`` (already alive in a ViT) and ``z`` ((B*T, N, R) in x's dtype); the backward recomputes
h = conv(z) and a = act(h) instead of saving them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fekernels._fake import backward_outputs, forward_outputs
from fekernels.triton_kernels import launch

_NO_ACTIVATION = "none"  # custom-op schemas carry a str, not None


@torch.library.custom_op("fekernels::fe_adapter_triton", mutates_args=())
def fe_adapter_triton_op(
    x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor, b_conv: Tensor | None,
    w_up: Tensor, b_up: Tensor | None, num_frames: int, dilation: int, activation: str, num_prefix_tokens: int,
) -> tuple[Tensor, Tensor]:
    """Fused forward; returns (out, z)."""
    return launch.forward(
        x, w_down, b_down, w_conv, b_conv, w_up, b_up,
        num_frames, dilation, None if activation == _NO_ACTIVATION else activation, num_prefix_tokens,
    )


@fe_adapter_triton_op.register_fake
def _(x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation, num_prefix_tokens):
    return forward_outputs(x, w_conv)


@torch.library.custom_op("fekernels::fe_adapter_triton_backward", mutates_args=())
def fe_adapter_triton_backward_op(
    grad_out: Tensor, x: Tensor, z: Tensor, w_down: Tensor, w_conv: Tensor, b_conv: Tensor | None, w_up: Tensor,
    num_frames: int, dilation: int, activation: str, num_prefix_tokens: int,
    need_x: bool, need_down: bool, need_weights: bool,
) -> list[Tensor]:
    """Fused backward; returns [dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up], empty where not needed."""
    grads = launch.backward(
        grad_out, x, z, w_down, w_conv, b_conv, w_up,
        num_frames, dilation, None if activation == _NO_ACTIVATION else activation, num_prefix_tokens,
        need_x, need_down, need_weights,
    )
    return [x.new_empty(0) if grad is None else grad for grad in grads]


@fe_adapter_triton_backward_op.register_fake
def _(grad_out, x, z, w_down, w_conv, b_conv, w_up, num_frames, dilation, activation, num_prefix_tokens,
      need_x, need_down, need_weights):
    return backward_outputs(x, w_conv, w_up, need_x, need_down, need_weights)


def _setup_context(ctx, inputs, output) -> None:
    x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation, num_prefix_tokens = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(x, output[1], w_down, w_conv, b_conv, w_up)
    ctx.options = (num_frames, dilation, activation, num_prefix_tokens)


def _backward(ctx, grad_out, grad_z):
    x, z, w_down, w_conv, b_conv, w_up = ctx.saved_tensors
    need = ctx.needs_input_grad
    need_x, need_down, need_weights = need[0], need[1] or need[2], any(need[3:7])
    grads = fe_adapter_triton_backward_op(
        grad_out, x, z, w_down, w_conv, b_conv, w_up, *ctx.options, need_x, need_down, need_weights,
    )
    grads = [grad if wanted else None for grad, wanted in zip(grads, need[:7], strict=True)]
    return (*grads, None, None, None, None)


fe_adapter_triton_op.register_autograd(_backward, setup_context=_setup_context)


def fe_adapter_triton(
    x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor, b_conv: Tensor | None,
    w_up: Tensor, b_up: Tensor | None, *,
    num_frames: int, dilation: int = 1, activation: str | None = None, num_prefix_tokens: int = 0,
) -> Tensor:
    """The op through the fused Triton kernels (same contract as the reference)."""
    out, _ = fe_adapter_triton_op(
        x, w_down, b_down, w_conv, b_conv, w_up, b_up,
        num_frames, dilation, _NO_ACTIVATION if activation is None else activation, num_prefix_tokens,
    )
    return out
