"""timm's RandAugment and torchvision's colour jitter on batches of uint8 images, on any device.

timm's own code draws, per image, which operations apply and their arguments (``draw_rand_augment``: timm's
``RandAugment`` with each operation's PIL function swapped for one that writes the draw down; Python's and
numpy's global generators, as on PIL images); torchvision's ``ColorJitter.get_params`` draws the jitter
(``draw_colour_jitter``). ``apply_steps`` then applies the draws layer by layer to the whole batch: one call per
kind of operation on the images that drew it, with an argument per image, so that a batch costs a number of device
operations that does not grow with its size (``python -m benchmarks.augment_ops``). The operations are
torchvision's tensor ones made per-image: ``autocontrast``, ``equalize``, ``invert``, ``posterize``, ``solarize``
and the blends of ``adjust_saturation`` / ``contrast`` / ``brightness`` / ``sharpness`` for PIL's ``ImageOps`` and
``ImageEnhance``, and PIL's affine matrices (shear, translate, rotate about the centre, timm's mean pixel as fill)
sampled with ``grid_sample``. Results match the PIL operations to a few grey levels on average (rounding, PIL's
integer grey and bicubic kernel; ``tests/test_rand_augment.py``), not bit for bit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from fe_adapter.data.parameters import on_device

_DEFAULT_FILL = (128, 128, 128)  # timm's fill when its hparams give no img_mean


@dataclass(frozen=True)
class Step:
    """One drawn operation for one image: its ``kind`` (a key of ``OPERATIONS``) and its arguments (for ``affine``
    PIL's six matrix coefficients, then the fill's three channels)."""

    kind: str
    arguments: tuple[float, ...] = ()


def _pil_affine(images: torch.Tensor, matrices: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, matrix)`` with a matrix per image: output pixel (x, y) (pixel centres at
    +0.5) of image i shows the input at (a x + b y + c, d x + e y + f) for ``matrices[i]`` = (a, b, c, d, e, f),
    bicubic, and ``fill[i]`` (per channel) where that point lies outside the input; uint8 (n, 3, H, W)."""
    count, _, height, width = images.shape
    y = torch.arange(height, device=images.device, dtype=torch.float32).add_(0.5).view(1, -1, 1)
    x = torch.arange(width, device=images.device, dtype=torch.float32).add_(0.5).view(1, 1, -1)
    a, b, c, d, e, f = matrices.view(count, 6, 1, 1).unbind(1)
    source_x, source_y = a * x + b * y + c, d * x + e * y + f  # (n, H, W)
    grid = torch.stack([source_x.mul(2 / width).sub_(1), source_y.mul(2 / height).sub_(1)], dim=-1)
    pixels = F.grid_sample(images.float(), grid, mode="bicubic", padding_mode="border", align_corners=False)
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    pixels = torch.where(inside.unsqueeze(1), pixels, fill.view(count, 3, 1, 1))
    return pixels.round_().clamp_(0, 255).to(torch.uint8)


def _blend(images: torch.Tensor, other: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_blend`` with a ratio per image: ``r x + (1 - r) y``, clamped, truncated to uint8."""
    ratios = ratios.view(-1, 1, 1, 1)
    return images.float().mul_(ratios).add_(other * (1 - ratios)).clamp_(0, 255).to(torch.uint8)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """torchvision's grey level of uint8 images, floored: (n, 1, H, W) float32."""
    red, green, blue = images.unbind(1)
    return red.mul(0.2989).add_(green, alpha=0.587).add_(blue, alpha=0.114).floor_().unsqueeze(1)


def _brightness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, torch.zeros((), device=images.device), factors[:, 0])


def _saturation(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, _grey(images), factors[:, 0])


def _contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, _grey(images).mean(dim=(1, 2, 3), keepdim=True), factors[:, 0])


def _sharpness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_sharpness``: the interior blended with its 3 x 3 smoothed (and rounded) self."""
    if images.shape[-1] <= 2 or images.shape[-2] <= 2:
        return images
    a, b = 1 / 13, 5 / 13
    kernel = on_device([[a, a, a], [a, b, a], [a, a, a]], images.device).expand(3, 1, 3, 3)
    pixels = images.float()
    blurred = F.conv2d(pixels, kernel, groups=3).round_()
    interior = pixels[..., 1:-1, 1:-1]
    interior.add_(blurred.sub_(interior).mul_(1 - factors[:, :1].view(-1, 1, 1, 1)))
    return pixels.clamp_(0, 255).to(torch.uint8)


def _posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """The top ``bits`` bits of each pixel (all of them from 8 on)."""
    kept = bits[:, 0].clamp(0, 8).to(torch.int32)
    masks = (((1 << kept) - 1) << (8 - kept)).to(torch.uint8).view(-1, 1, 1, 1)
    return images & masks


def _solarize(images: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Pixels at or above the threshold inverted (none above 255, as PIL)."""
    return torch.where(images >= thresholds.view(-1, 1, 1, 1), 255 - images, images)


def _solarize_add(images: torch.Tensor, arguments: torch.Tensor) -> torch.Tensor:
    """timm's ``solarize_add``: ``add`` added to the pixels below ``thresh`` (clamped to 255)."""
    add, thresh = arguments[:, 0].view(-1, 1, 1, 1), arguments[:, 1].view(-1, 1, 1, 1)
    return torch.where(images < thresh, (images + add).clamp_(0, 255), images).to(torch.uint8)


def _affine(images: torch.Tensor, arguments: torch.Tensor) -> torch.Tensor:
    return _pil_affine(images, arguments[:, :6], arguments[:, 6:9])


#: kind -> the operation on (n, 3, H, W) uint8 images with an (n, k) float32 tensor of their arguments (on the
#: images' device).
OPERATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "autocontrast": lambda images, _: TF.autocontrast(images), "equalize": lambda images, _: TF.equalize(images),
    "invert": lambda images, _: TF.invert(images), "posterize": _posterize, "solarize": _solarize,
    "solarize_add": _solarize_add, "saturation": _saturation, "contrast": _contrast, "brightness": _brightness,
    "sharpness": _sharpness, "affine": _affine,
}


def apply_steps(images: torch.Tensor, steps: Sequence[Sequence[Step]], batched: bool = True) -> torch.Tensor:
    """``steps[i]`` applied in order to ``images[i]`` (uint8 (B, 3, H, W)), layer by layer: at each layer, one call of
    each kind of operation drawn there, on the images that drew it (``batched``), or image by image."""
    if len(steps) != len(images):
        raise ValueError(f"{len(steps)} lists of steps for a batch of {len(images)} images")
    if not batched:
        return torch.stack([apply_steps(image[None], [drawn])[0] for image, drawn in zip(images, steps, strict=True)])
    layers = max(map(len, steps), default=0)
    if layers:
        images = images.clone()  # the groups' results are written into it
    for layer in range(layers):
        kinds: dict[str, list[int]] = {}
        for index, drawn in enumerate(steps):
            if layer < len(drawn):
                kinds.setdefault(drawn[layer].kind, []).append(index)
        for kind, indices in kinds.items():
            arguments = on_device([steps[index][layer].arguments for index in indices], images.device)
            if len(indices) == len(images):
                images = OPERATIONS[kind](images, arguments)
                continue
            chosen = on_device(indices, images.device, torch.int64)
            images.index_copy_(0, chosen, OPERATIONS[kind](images[chosen], arguments))
    return images


def _matrix(function: Callable, arguments: tuple, height: int, width: int) -> tuple[float, ...]:
    """PIL's affine matrix for timm's geometric ``function`` on an image of ``height`` x ``width``."""
    from timm.data import auto_augment as aa

    (value,) = arguments
    if function is aa.rotate:  # PIL's rotate(degrees): counter-clockwise about the centre
        angle = -math.radians(value)
        a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
        centre_x, centre_y = width / 2, height / 2
        return (a, b, a * -centre_x + b * -centre_y + centre_x, d, e, d * -centre_x + e * -centre_y + centre_y)
    shifts = {aa.translate_x_rel: (value * width, 0), aa.translate_y_rel: (0, value * height),
              aa.translate_x_abs: (value, 0), aa.translate_y_abs: (0, value)}
    if function in shifts:
        return (1, 0, shifts[function][0], 0, 1, shifts[function][1])
    return (1, value, 0, 0, 1, 0) if function is aa.shear_x else (1, 0, 0, value, 1, 0)


def _kinds() -> dict[Callable, str]:
    """timm's PIL operation -> the kind of step it draws."""
    from timm.data import auto_augment as aa

    return {aa.auto_contrast: "autocontrast", aa.equalize: "equalize", aa.invert: "invert", aa.posterize: "posterize",
            aa.solarize: "solarize", aa.solarize_add: "solarize_add", aa.color: "saturation",
            aa.contrast: "contrast", aa.brightness: "brightness", aa.sharpness: "sharpness", aa.rotate: "affine",
            aa.shear_x: "affine", aa.shear_y: "affine", aa.translate_x_rel: "affine", aa.translate_y_rel: "affine",
            aa.translate_x_abs: "affine", aa.translate_y_abs: "affine"}


class _Drawing:
    """What timm's operations are given in place of an image while ``draw_rand_augment`` writes their draws down."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width, self.steps = height, width, []


class _Recorder:
    """Stands for one of timm's operations: writes down the step its arguments make (a class, not a closure, so
    that the policy can be sent to loader processes)."""

    def __init__(self, function: Callable, kind: str) -> None:
        self.function, self.kind = function, kind

    def __call__(self, drawing: _Drawing, *arguments: Any, fillcolor: Any = None, thresh: float = 128,
                 **_: Any) -> _Drawing:
        if self.kind == "affine":
            fill = fillcolor if fillcolor is not None else _DEFAULT_FILL
            fill = (fill,) * 3 if isinstance(fill, (int, float)) else tuple(fill)
            matrix = _matrix(self.function, arguments, drawing.height, drawing.width)
            drawing.steps.append(Step(self.kind, matrix + fill))
        elif self.kind == "solarize_add":
            drawing.steps.append(Step(self.kind, (arguments[0], thresh)))
        else:
            drawing.steps.append(Step(self.kind, tuple(arguments) or (0.0,)))
        return drawing


def drawing_policy(rand_augment: Any) -> Any:
    """A copy of timm's ``RandAugment`` whose operations write their draws down instead of applying them (for
    ``draw_rand_augment``); ``ValueError`` naming an operation that has no tensor version here."""
    kinds = _kinds()
    policy = copy.copy(rand_augment)
    policy.ops = []
    for op in rand_augment.ops:
        if op.aug_fn not in kinds:
            raise ValueError(f"RandAugment operation {op.name} has no tensor version")
        if isinstance(op.kwargs.get("resample"), (tuple, list)):  # timm would draw one per operation
            raise ValueError(f"RandAugment operation {op.name} draws its interpolation at random; the tensor "
                             "version resamples bicubic: give the policy one interpolation")
        op = copy.copy(op)
        op.aug_fn = _Recorder(op.aug_fn, kinds[op.aug_fn])
        policy.ops.append(op)
    return policy


def draw_rand_augment(policy: Any, height: int, width: int) -> list[Step]:
    """timm's draw of ``policy`` (from ``drawing_policy``) for one image of ``height`` x ``width``."""
    return policy(_Drawing(height, width)).steps


def draw_colour_jitter(jitter: Any) -> list[Step]:
    """torchvision's ``ColorJitter`` draw for one image: its factors, in its random order (hue is refused)."""
    order, brightness, contrast, saturation, hue = jitter.get_params(jitter.brightness, jitter.contrast,
                                                                     jitter.saturation, jitter.hue)
    if hue is not None:
        raise ValueError("colour jitter of the hue has no tensor version here: give brightness, contrast and "
                         "saturation only")
    factors = {0: ("brightness", brightness), 1: ("contrast", contrast), 2: ("saturation", saturation)}
    return [Step(factors[index][0], (float(factors[index][1]),)) for index in order.tolist()
            if index in factors and factors[index][1] is not None]
