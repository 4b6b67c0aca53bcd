"""ST-Adapter's formulation of the op: what users write today, kept as a benchmark baseline.

The bottleneck tokens are viewed as a (B, R, T, H, W) video and mixed over time by a depthwise Conv3d
with kernel (K, 1, 1), with the two permute copies that layout needs. It computes the same function as
the reference (tests/test_reference.py checks it in float64) by a different route.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fekernels._activations import apply_activation


def fe_adapter_st_layout(
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
    """The FE-Adapter op in ST-Adapter's layout (Linear, permute, depthwise Conv3d, permute back, Linear)."""
    frames_total, num_tokens, _ = x.shape
    bottleneck, kernel_size = w_conv.shape
    spatial = num_tokens - num_prefix_tokens
    patches = x[:, num_prefix_tokens:]
    z = F.linear(patches, w_down, b_down)
    video = z.reshape(frames_total // num_frames, num_frames, spatial, 1, bottleneck).permute(0, 4, 1, 2, 3)
    h = F.conv3d(video.contiguous(), w_conv.reshape(bottleneck, 1, kernel_size, 1, 1), b_conv,
                 padding=(dilation * (kernel_size // 2), 0, 0), dilation=(dilation, 1, 1), groups=bottleneck)
    h = h.permute(0, 2, 3, 4, 1).reshape(frames_total, spatial, bottleneck)
    out = patches + F.linear(apply_activation(h, activation), w_up, b_up)
    return torch.cat([x[:, :num_prefix_tokens], out], dim=1)
