"""Many boxes resized at once: PIL's resampling weights as matrices, one batched product per axis.

torchvision's ``resized_crop`` resizes one image a call; a batch whose items each have their own crop
box would need a call each, a handful of kernel launches per item on a GPU. Here every item's box becomes two
weight matrices (rows, columns) computed as PIL's ``precompute_coeffs`` computes its bicubic weights (the filter
widened by the scale when shrinking, i.e. antialiased; taps outside the box left out, as cropping first does), and
the whole batch is resampled with two batched matrix products: a fixed number of launches whatever the batch
size. The result is torchvision's uint8 bicubic ``resized_crop`` with ``antialias=True`` to a grey level
(``tests/test_batch_augment.py``).
"""

from __future__ import annotations

import math

import torch


def _bicubic(distances: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """PIL's bicubic filter (``a`` = -0.5) at ``distances`` (in taps); zero from 2 on."""
    t = distances.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def _weights(starts: torch.Tensor, lengths: torch.Tensor, pixels: int, size: int) -> torch.Tensor:
    """(n, size, pixels) weights resampling the span [start, start + length) of an axis of ``pixels`` to ``size``
    for each of n (start, length) (float32, on their device), each row normalised to sum to 1."""
    device = starts.device
    scales = (lengths / size).view(-1, 1, 1)
    centres = starts.view(-1, 1, 1) + (torch.arange(size, device=device).view(1, -1, 1) + 0.5) * scales
    taps = torch.arange(pixels, device=device).view(1, 1, -1)
    weights = _bicubic((taps + 0.5 - centres) / scales.clamp(min=1))
    inside = (taps >= starts.view(-1, 1, 1)) & (taps < (starts + lengths).view(-1, 1, 1))
    weights = weights * inside
    return weights / weights.sum(dim=-1, keepdim=True)


def resize_boxes(images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (n, ..., H, W) items' boxes (top, left, height, width; float32, one per item, shared by the item's
    channels and frames) resized to ``size`` x ``size`` (bicubic, antialiased when shrinking) and mirrored where
    ``flips`` (bool), both on the items' device: rows, then columns, each one batched matrix product with per-item
    weights (float32). Its memory grows with the items' pixels: the batch as float32, an (n, planes H, size)
    intermediate and (n, size, H) and (n, size, W) weights."""
    count, *planes, height, width = images.shape
    rows = _weights(boxes[:, 0], boxes[:, 2], height, size)
    columns = _weights(boxes[:, 1], boxes[:, 3], width, size)
    columns = torch.where(flips.view(-1, 1, 1), columns.flip(1), columns)
    planes_count = math.prod(planes)
    pixels = images.to(torch.float32, memory_format=torch.contiguous_format).view(count, planes_count * height, width)
    pixels = pixels @ columns.transpose(1, 2)  # (n, planes H, size)
    pixels = rows.unsqueeze(1) @ pixels.view(count, planes_count, height, size)  # (n, planes, size, size)
    return pixels.round_().clamp_(0, 255).to(torch.uint8).view(count, *planes, size, size)
