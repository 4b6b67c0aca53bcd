"""timm's RandAugment on uint8 image tensors on any device: timm's policy, torchvision's tensor operations.

``tensor_rand_augment(policy)`` builds timm's ``RandAugment`` from the policy string (``rand-m9-mstd0.5``: which
operations, how many per image, their probability and magnitude, the magnitude's noise and the level-to-argument
functions) and swaps each operation's PIL function for a tensor one, so that timm's own code draws the
operations and their arguments (from Python's and numpy's global generators, as on PIL images) and the tensor
functions apply them to a (3, H, W) uint8 tensor: torchvision's ``autocontrast``, ``equalize``, ``invert``,
``posterize``, ``solarize`` and ``adjust_saturation`` / ``contrast`` / ``brightness`` / ``sharpness`` for PIL's
``ImageOps`` and ``ImageEnhance``, and PIL's own affine matrices (shear, translate, rotate about the centre, the
mean pixel as fill) sampled with ``grid_sample``. Results match the PIL operations to a few grey levels on average
(rounding, PIL's integer grey and bicubic kernel; ``tests/test_rand_augment.py``), not bit for bit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF


def _pil_affine(image: torch.Tensor, matrix: tuple[float, ...], fillcolor: Any = None, **_: Any) -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, matrix)``: output pixel (x, y) (pixel centres at +0.5) shows the input
    at (a x + b y + c, d x + e y + f), bicubic inside the image and ``fillcolor`` outside it."""
    a, b, c, d, e, f = matrix
    _, height, width = image.shape
    y, x = torch.meshgrid(torch.arange(height, device=image.device, dtype=torch.float32) + 0.5,
                          torch.arange(width, device=image.device, dtype=torch.float32) + 0.5, indexing="ij")
    source_x, source_y = a * x + b * y + c, d * x + e * y + f
    grid = torch.stack([2 * source_x / width - 1, 2 * source_y / height - 1], dim=-1)[None]
    pixels = F.grid_sample(image[None].float(), grid, mode="bicubic", padding_mode="border", align_corners=False)[0]
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    fill = torch.tensor(fillcolor if fillcolor is not None else (128, 128, 128), dtype=torch.float32,
                        device=image.device).view(3, 1, 1)
    return torch.where(inside, pixels, fill).round_().clamp_(0, 255).to(torch.uint8)


def _shear_x(image: torch.Tensor, factor: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, factor, 0, 0, 1, 0), **kwargs)


def _shear_y(image: torch.Tensor, factor: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, 0, 0, factor, 1, 0), **kwargs)


def _translate_x_rel(image: torch.Tensor, pct: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, 0, pct * image.shape[-1], 0, 1, 0), **kwargs)


def _translate_y_rel(image: torch.Tensor, pct: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, 0, 0, 0, 1, pct * image.shape[-2]), **kwargs)


def _translate_x_abs(image: torch.Tensor, pixels: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, 0, pixels, 0, 1, 0), **kwargs)


def _translate_y_abs(image: torch.Tensor, pixels: float, **kwargs: Any) -> torch.Tensor:
    return _pil_affine(image, (1, 0, 0, 0, 1, pixels), **kwargs)


def _rotate(image: torch.Tensor, degrees: float, **kwargs: Any) -> torch.Tensor:
    """PIL's ``rotate(degrees)``: counter-clockwise about the centre, the same size."""
    _, height, width = image.shape
    angle = -math.radians(degrees)
    a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    centre_x, centre_y = width / 2, height / 2
    c = a * -centre_x + b * -centre_y + centre_x
    f = d * -centre_x + e * -centre_y + centre_y
    return _pil_affine(image, (a, b, c, d, e, f), **kwargs)


def _solarize(image: torch.Tensor, thresh: float, **_: Any) -> torch.Tensor:
    return image if thresh > 255 else TF.solarize(image, thresh)  # PIL inverts pixels >= thresh: none above 255


def _solarize_add(image: torch.Tensor, add: int, thresh: int = 128, **_: Any) -> torch.Tensor:
    return torch.where(image < thresh, (image.to(torch.int16) + add).clamp_(max=255).to(torch.uint8), image)


def _posterize(image: torch.Tensor, bits_to_keep: int, **_: Any) -> torch.Tensor:
    return image if bits_to_keep >= 8 else TF.posterize(image, int(bits_to_keep))


def _plain(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A torchvision function of the image (and a factor), without timm's fill and resampling arguments."""
    return lambda image, *args, **_: function(image, *args)


def _tensor_functions() -> dict[Callable, Callable]:
    """timm's PIL operation -> its tensor counterpart."""
    from timm.data import auto_augment as aa

    return {aa.auto_contrast: _plain(TF.autocontrast), aa.equalize: _plain(TF.equalize),
            aa.invert: _plain(TF.invert), aa.rotate: _rotate, aa.posterize: _posterize, aa.solarize: _solarize,
            aa.solarize_add: _solarize_add, aa.color: _plain(TF.adjust_saturation),
            aa.contrast: _plain(TF.adjust_contrast), aa.brightness: _plain(TF.adjust_brightness),
            aa.sharpness: _plain(TF.adjust_sharpness), aa.shear_x: _shear_x, aa.shear_y: _shear_y,
            aa.translate_x_rel: _translate_x_rel, aa.translate_y_rel: _translate_y_rel,
            aa.translate_x_abs: _translate_x_abs, aa.translate_y_abs: _translate_y_abs}


def tensorize(rand_augment: Any) -> Any:
    """A copy of timm's ``RandAugment`` whose operations take (3, H, W) uint8 tensors; ``ValueError`` naming an
    operation that has no tensor version here."""
    functions = _tensor_functions()
    tensor_version = copy.copy(rand_augment)
    tensor_version.ops = []
    for op in rand_augment.ops:
        if op.aug_fn not in functions:
            raise ValueError(f"RandAugment operation {op.name} has no tensor version")
        op = copy.copy(op)
        op.aug_fn = functions[op.aug_fn]
        tensor_version.ops.append(op)
    return tensor_version
