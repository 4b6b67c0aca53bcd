"""Output shapes of the compiled ops (Triton and native), for their fake implementations under torch.compile."""

from __future__ import annotations

from torch import Tensor


def forward_outputs(x: Tensor, w_conv: Tensor) -> tuple[Tensor, Tensor]:
    """(out, z): contiguous, like the kernels' own outputs."""
    frames_total, num_tokens, _ = x.shape
    return x.new_empty(x.shape), x.new_empty(frames_total, num_tokens, w_conv.shape[0])


def backward_outputs(x: Tensor, w_conv: Tensor, w_up: Tensor, need_x: bool, need_down: bool,
                     need_weights: bool) -> list[Tensor]:
    """[dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up]; a fresh empty tensor where not needed
    (outputs must not alias each other)."""
    dim, bottleneck = w_up.shape

    def like(shape, wanted):
        return x.new_empty(shape if wanted else (0,))

    return [like(x.shape, need_x), like((bottleneck, dim), need_down), like((bottleneck,), need_down),
            like(w_conv.shape, need_weights), like((bottleneck,), need_weights),
            like((dim, bottleneck), need_weights), like((dim,), need_weights)]
