"""``FEAdapter``: the trainable module around the ``fekernels.fe_adapter`` op."""

from __future__ import annotations

import math

import torch
from torch import nn

import fekernels
from fekernels._checks import check_choice, check_int


class FEAdapter(nn.Module):
    """Bottleneck adapter with a depthwise temporal convolution, serial on a ViT's residual stream.

    ``out = x + act(conv_t(x Wd^T + bd)) Wu^T + bu`` for every token after the first
    ``num_prefix_tokens``, where ``conv_t`` mixes each bottleneck channel over the T frames of a clip.
    Initialised as in ST-Adapter: the conv weight and bias and both linear biases are zero, so a new
    adapter is exactly the identity and inserting it does not disturb the pretrained backbone.

    Args:
        dim: C, the token width of the backbone.
        bottleneck: R, the adapter width.
        num_frames: T, the frames per clip in the (B*T, N, C) inputs.
        kernel_size: K, the odd temporal kernel size.
        dilation: temporal dilation of the kernel.
        activation: None, "gelu", "silu" or "relu", applied after the convolution.
        num_prefix_tokens: leading tokens (cls, registers) that pass through unchanged.
        impl: op implementation, see ``fekernels.IMPLS``.
    """

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        num_frames: int,
        kernel_size: int = 3,
        dilation: int = 1,
        activation: str | None = None,
        num_prefix_tokens: int = 0,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("bottleneck", bottleneck), ("num_frames", num_frames),
                            ("kernel_size", kernel_size), ("dilation", dilation)):
            check_int(name, value, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred 'same' conv), got {kernel_size}")
        check_int("num_prefix_tokens", num_prefix_tokens, 0)
        check_choice("activation", activation, fekernels.ACTIVATIONS)
        check_choice("impl", impl, fekernels.IMPLS)

        self.dim = dim
        self.bottleneck = bottleneck
        self.num_frames = num_frames
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.activation = activation
        self.num_prefix_tokens = num_prefix_tokens
        self.impl = impl

        self.down_weight = nn.Parameter(torch.empty(bottleneck, dim))
        self.down_bias = nn.Parameter(torch.empty(bottleneck))
        self.conv_weight = nn.Parameter(torch.empty(bottleneck, kernel_size))
        self.conv_bias = nn.Parameter(torch.empty(bottleneck))
        self.up_weight = nn.Parameter(torch.empty(dim, bottleneck))
        self.up_bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ST-Adapter initialisation: projections as nn.Linear, everything else zero (identity)."""
        nn.init.kaiming_uniform_(self.down_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.up_weight, a=math.sqrt(5))
        for tensor in (self.down_bias, self.conv_weight, self.conv_bias, self.up_bias):
            nn.init.zeros_(tensor)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Adapt (B*T, N, C) tokens; ``num_frames`` overrides the T given at construction."""
        return fekernels.fe_adapter(
            x,
            self.down_weight, self.down_bias,
            self.conv_weight, self.conv_bias,
            self.up_weight, self.up_bias,
            num_frames=self.num_frames if num_frames is None else num_frames,
            dilation=self.dilation,
            activation=self.activation,
            num_prefix_tokens=self.num_prefix_tokens,
            impl=self.impl,
        )

    @staticmethod
    def num_parameters_for(dim: int, bottleneck: int, kernel_size: int) -> int:
        """Parameters of one adapter: 2*C*R (projections) + R*K (conv) + 2*R + C (biases)."""
        return 2 * dim * bottleneck + bottleneck * kernel_size + 2 * bottleneck + dim

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, bottleneck={self.bottleneck}, num_frames={self.num_frames}, "
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, activation={self.activation}, "
            f"num_prefix_tokens={self.num_prefix_tokens}, impl={self.impl!r}"
        )
