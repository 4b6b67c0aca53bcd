"""Clip transforms: the same random crop, flip and colour jitter for every frame of a clip.

Transforms take a (T, 3, H, W) uint8 tensor; torchvision's v2 transforms draw their random parameters
once per call, so every frame of the clip gets the same crop, flip and jitter. The conversion to float
and the normalisation happen once per clip, vectorised over frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Input size and pixel statistics a backbone expects."""

    size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


def normalization_for(model: nn.Module) -> Normalization:
    """The input size, mean and std of a timm backbone (from its ``pretrained_cfg``), or of a VideoClassifier's."""
    from timm.data import resolve_data_config

    backbone = getattr(model, "backbone", model)
    config = resolve_data_config({}, model=backbone)
    size = int(config["input_size"][-1])
    patch_embed = getattr(backbone, "patch_embed", None)
    if getattr(patch_embed, "img_size", None):  # the size it was built for (img_size=...), not its config's
        size = int(patch_embed.img_size[-1])
    return Normalization(size=size, mean=tuple(config["mean"]), std=tuple(config["std"]))


def _finish(normalization: Normalization) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(normalization.mean, normalization.std)]


def train_transform(
    normalization: Normalization = Normalization(),
    scale: tuple[float, float] = (0.7, 1.0),
    flip: float = 0.5,
    jitter: float = 0.3,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random resized crop, horizontal flip and colour jitter (brightness, contrast, saturation), per clip."""
    steps: list[v2.Transform] = [v2.RandomResizedCrop(normalization.size, scale=scale, antialias=True)]
    if flip > 0:
        steps.append(v2.RandomHorizontalFlip(flip))
    if jitter > 0:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    return v2.Compose(steps + _finish(normalization))


def eval_transform(normalization: Normalization = Normalization(), crop_fraction: float = 1.0,
                   spatial_crops: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resize the shorter side to ``size / crop_fraction`` and take the centre crop.

    Face crops (DFEW, FERV39K) are already tight, hence ``crop_fraction=1.0`` by default. With
    ``spatial_crops=3`` the result is (3, T, 3, size, size): crops at the start, centre and end of the
    longer side (top/centre/bottom for portrait frames).
    """
    if spatial_crops not in (1, 3):
        raise ValueError(f"spatial_crops must be 1 or 3, got {spatial_crops}")
    resize = v2.Resize(round(normalization.size / crop_fraction), antialias=True)
    finish = v2.Compose(_finish(normalization))
    size = normalization.size

    def transform(clip: torch.Tensor) -> torch.Tensor:
        clip = resize(clip)
        if spatial_crops == 1:
            return finish(TF.center_crop(clip, [size, size]))
        height, width = clip.shape[-2:]
        top, left = (height - size) // 2, (width - size) // 2
        if width >= height:
            corners: Sequence[tuple[int, int]] = [(top, 0), (top, left), (top, width - size)]
        else:
            corners = [(0, left), (top, left), (height - size, left)]
        return torch.stack([finish(TF.crop(clip, y, x, size, size)) for y, x in corners])

    return transform
