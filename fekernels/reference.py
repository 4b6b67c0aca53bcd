"""The FE-Adapter op in plain PyTorch: the ground truth every faster implementation is tested against.

Written with ``F.linear`` and a grouped ``F.conv1d`` so that it runs on any device and in any float
dtype, and so that autograd derives its backward. It assumes validated inputs (see ``_checks``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fekernels._activations import apply_activation


def fe_adapter_reference(
    x: torch.Tensor,
    w_down: torch.Tensor,
    b_down: torch.Tensor | None,
    w_conv: torch.Tensor,
    b_conv: torch.Tensor | None,
    w_up: torch.Tensor,
    b_up: torch.Tensor | None,
    *,
    num_frames: int,
    dilation: int = 1,
    activation: str | None = None,
    num_prefix_tokens: int = 0,
) -> torch.Tensor:
    """Bottleneck adapter with a depthwise temporal convolution, added to the residual stream.

    ``x`` is (B*T, N, C) with the T frames of a clip consecutive along dim 0. The first
    ``num_prefix_tokens`` tokens pass through unchanged; every other token gets
    ``act(conv_t(x @ w_down.T + b_down)) @ w_up.T + b_up`` added.
    """
    frames_total, num_tokens, _ = x.shape
    num_clips = frames_total // num_frames
    bottleneck, kernel_size = w_conv.shape
    spatial = num_tokens - num_prefix_tokens

    prefix, patches = x[:, :num_prefix_tokens], x[:, num_prefix_tokens:]
    z = F.linear(patches, w_down, b_down)  # (B*T, M, R)

    # Bring time to the last axis so each (clip, token, channel) is one length-T sequence.
    z = z.reshape(num_clips, num_frames, spatial, bottleneck).permute(0, 2, 3, 1)
    z = z.reshape(num_clips * spatial, bottleneck, num_frames)
    h = F.conv1d(
        z,
        w_conv.unsqueeze(1),
        b_conv,
        padding=dilation * (kernel_size // 2),
        dilation=dilation,
        groups=bottleneck,
    )
    h = h.reshape(num_clips, spatial, bottleneck, num_frames).permute(0, 3, 1, 2)
    h = h.reshape(frames_total, spatial, bottleneck)

    out = patches + F.linear(apply_activation(h, activation), w_up, b_up)
    return torch.cat([prefix, out], dim=1)
