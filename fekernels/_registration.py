"""One torch.library registration for every compiled implementation of the op (the C++ kernel, the Triton kernels).

Each implementation defines the same pair of ops, ``activation`` passed by name (None for the identity):

    forward(x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation, num_prefix_tokens)
        -> (out, z)
    backward(grad_out, x, z, w_down, w_conv, b_conv, w_up, num_frames, dilation, activation, num_prefix_tokens,
             need_x, need_down, need_weights) -> [dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up]

and ``register`` gives both their fake (meta) implementations, for torch.compile, and the forward its autograd
formula, which runs the same implementation's backward op. The forward saves ``x`` and ``z``; the backward
recomputes h = conv(z) and a = act(h).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from fekernels._activations import check_activation


def _forward_fake(x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation,
                  num_prefix_tokens) -> tuple[Tensor, Tensor]:
    """(out, z): contiguous, like the kernels' own outputs."""
    check_activation(activation)
    frames_total, num_tokens, _ = x.shape
    return x.new_empty(x.shape), x.new_empty(frames_total, num_tokens, w_conv.shape[0])


def _backward_fake(grad_out, x, z, w_down, w_conv, b_conv, w_up, num_frames, dilation, activation,
                   num_prefix_tokens, need_x, need_down, need_weights) -> list[Tensor]:
    """[dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up]; a fresh empty tensor where not needed (outputs
    must not alias each other)."""
    check_activation(activation)
    dim, bottleneck = w_up.shape

    def like(shape, wanted):
        return x.new_empty(shape if wanted else (0,))

    return [like(x.shape, need_x), like((bottleneck, dim), need_down), like((bottleneck,), need_down),
            like(w_conv.shape, need_weights), like((bottleneck,), need_weights),
            like((dim, bottleneck), need_weights), like((dim,), need_weights)]


def _setup_context(ctx, inputs, output) -> None:
    x, w_down, _, w_conv, b_conv, w_up, _, *options = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)  # else autograd zero-fills a gradient for z: a kernel launch for nothing
    ctx.save_for_backward(x, output[1], w_down, w_conv, b_conv, w_up)
    ctx.options = options  # num_frames, dilation, activation, num_prefix_tokens


def _backward(backward_op, ctx, grad_out, grad_z):
    if grad_out is None:  # out did not reach the loss (grads are not materialised)
        return (None,) * 11
    x, z, w_down, w_conv, b_conv, w_up = ctx.saved_tensors
    need = ctx.needs_input_grad
    grads = backward_op(grad_out, x, z, w_down, w_conv, b_conv, w_up, *ctx.options,
                        need[0], need[1] or need[2], any(need[3:7]))
    return (*[grad if wanted else None for grad, wanted in zip(grads, need[:7], strict=True)],
            None, None, None, None)


def _op(qualname: str):
    namespace, name = qualname.split("::")
    return getattr(getattr(torch.ops, namespace), name)


def register(forward: str, backward: str) -> None:
    """Register the fakes of the ops named ``forward`` and ``backward`` ("namespace::name") and the autograd
    formula of ``forward``."""
    torch.library.register_fake(forward)(_forward_fake)
    torch.library.register_fake(backward)(_backward_fake)
    torch.library.register_autograd(forward, functools.partial(_backward, _op(backward)),
                                    setup_context=_setup_context)


def run_forward(forward_op, x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor,
                b_conv: Tensor | None, w_up: Tensor, b_up: Tensor | None, *, num_frames: int, dilation: int,
                activation: str | None, num_prefix_tokens: int) -> Tensor:
    """The op's output through a registered forward op (its second output, z, is for the backward)."""
    out, _ = forward_op(x, w_down, b_down, w_conv, b_conv, w_up, b_up, num_frames, dilation, activation,
                        num_prefix_tokens)
    return out
