"""Clip transforms: the same random crop, flip and colour jitter for every frame of a clip.

Transforms take a (T, 3, H, W) uint8 tensor (an image is a clip of one frame). ``ClipAugment`` draws one set of
random parameters per clip (crop box, flip, brightness, contrast, saturation) and applies them to the whole
clip at once: the crop and the resize on the uint8 frames, then the colour jitter, the conversion to float and
the normalisation folded into one scale and offset per channel plus a grey-level blend, in place on contiguous
channels, and one clamp, so that a training clip costs no more than an evaluation clip did with torchvision's
``ToDtype`` + ``Normalize``
(``python -m benchmarks.loading``).
"""

from __future__ import annotations

import math
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


#: The luma weights torchvision's ``rgb_to_grayscale`` (and so its saturation and contrast jitter) uses.
_GREY = (0.2989, 0.587, 0.114)


def _normalize(clip: torch.Tensor, normalization: Normalization, saturation: float = 1.0, gain: float = 1.0,
               offset: float = 0.0) -> torch.Tensor:
    """A (..., 3, H, W) uint8 clip as float32 pixels ``y = gain * (saturation * x + (1 - saturation) * grey(x)) +
    offset`` (x in 0..1), normalised, ``(y - mean) / std``; ``y`` is clamped to 0..1 unless the colour is left as it
    is (the defaults: the plain normalisation, as ``ToDtype`` + ``Normalize``).

    The pixels are converted channel-first, (3, ..., H, W), in one pass, so that every later step works in place on
    whole contiguous channels with scalar factors (several times faster than broadcasting per-channel tensors or a
    3 x 3 matrix product); the result is a (..., 3, H, W) view of that tensor, which batching (``torch.stack``)
    copies.
    """
    if clip.dtype != torch.uint8:
        raise TypeError(f"clip transforms take uint8 pixels (0..255), got {clip.dtype}")
    pixels = clip.movedim(-3, 0).to(torch.float32, memory_format=torch.contiguous_format)
    mean, std = normalization.mean, normalization.std
    plain = (saturation, gain, offset) == (1.0, 1.0, 0.0)
    grey = None
    if saturation != 1.0:
        grey = torch.mul(pixels[0], _GREY[0]).add_(pixels[1], alpha=_GREY[1]).add_(pixels[2], alpha=_GREY[2])
    for channel in range(3):
        scale = gain / (255 * std[channel])
        values = pixels[channel].mul_(scale * saturation)
        if grey is not None:
            values.add_(grey, alpha=scale * (1 - saturation))
        values.add_((offset - mean[channel]) / std[channel])
        if not plain:  # pixels clamped to 0..1, as torchvision's colour jitter clamps them
            values.clamp_(-mean[channel] / std[channel], (1 - mean[channel]) / std[channel])
    return pixels.movedim(0, -3)


@dataclass(frozen=True)
class AugmentParameters:
    """The random draws for one clip: the crop box (top, left, height, width) in the input frames, whether to flip
    it, and the brightness, contrast and saturation factors (1 leaves the clip as it is)."""

    crop: tuple[int, int, int, int]
    flip: bool
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


class ClipAugment:
    """Random resized crop, horizontal flip and colour jitter with one set of parameters per clip, then the
    normalisation: (T, 3, H, W) uint8 in, (T, 3, size, size) float32 out (any leading shape works: a single
    image is (3, H, W)).

    The colour jitter follows torchvision's ``ColorJitter`` (factors drawn uniformly from [1 - jitter, 1 + jitter])
    in a fixed order: saturation (blend with the grey image), contrast (blend with the clip's mean grey level,
    taken from every 4th row and column; torchvision takes each frame's), brightness (scale). Without clamping in
    between these are linear in the pixels, so together with the normalisation they are one scale and offset per
    channel plus a blend with the grey image; the result is clamped once to the normalised 0..1 range.
    Randomness comes from torch's global generator, which DataLoader seeds per worker, as torchvision's transforms
    do.
    """

    def __init__(self, normalization: Normalization = Normalization(), scale: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: float = 0.5, jitter: float = 0.3) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0 <= jitter < 1 or not 0 <= flip <= 1:
            raise ValueError(f"jitter must lie in [0, 1) and flip in [0, 1], got {jitter} and {flip}")
        self.normalization, self.scale, self.ratio = normalization, scale, ratio
        self.flip, self.jitter = flip, jitter

    def sample(self, height: int, width: int) -> AugmentParameters:
        """One draw of the parameters for frames of ``height`` x ``width`` (the crop as RandomResizedCrop's)."""
        from torchvision.transforms import RandomResizedCrop

        crop = RandomResizedCrop.get_params(torch.empty(0, height, width), list(self.scale), list(self.ratio))
        flip = self.flip > 0 and torch.rand(()).item() < self.flip
        factors = (1 + self.jitter * (2 * torch.rand(3) - 1)).tolist() if self.jitter > 0 else [1.0, 1.0, 1.0]
        return AugmentParameters(tuple(crop), bool(flip), *factors)

    def apply(self, clip: torch.Tensor, parameters: AugmentParameters) -> torch.Tensor:
        """``clip`` cropped, resized, flipped, colour-jittered and normalised with ``parameters``."""
        size = self.normalization.size
        top, left, height, width = parameters.crop
        out = TF.resized_crop(clip, top, left, height, width, [size, size], antialias=True)
        if parameters.flip:
            out = out.flip(-1)
        if (parameters.brightness, parameters.contrast, parameters.saturation) == (1.0, 1.0, 1.0):
            return _normalize(out, self.normalization)
        # saturation s: x -> s x + (1 - s) grey(x); contrast c: x -> c x + (1 - c) mean grey; brightness b: x -> b x
        s, c, b = parameters.saturation, parameters.contrast, parameters.brightness
        sample = out[..., ::4, ::4].reshape(-1, 3, math.ceil(size / 4) ** 2).float()  # the mean grey, from 1/16
        channel_means = sample.mean(dim=(0, 2)).double() / 255  # of the pixels, after the saturation blend:
        grey = torch.tensor(_GREY, dtype=torch.float64)
        saturated = s * channel_means + (1 - s) * (grey @ channel_means)
        return _normalize(out, self.normalization, saturation=s, gain=b * c,
                          offset=b * (1 - c) * (grey @ saturated).item())

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return self.apply(clip, self.sample(*clip.shape[-2:]))


def train_transform(
    normalization: Normalization = Normalization(),
    scale: tuple[float, float] = (0.7, 1.0),
    flip: float = 0.5,
    jitter: float = 0.3,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random resized crop, horizontal flip and colour jitter (brightness, contrast, saturation), drawn once per
    clip and applied to all its frames at once (``ClipAugment``)."""
    return ClipAugment(normalization, scale=scale, flip=flip, jitter=jitter)


def eval_transform(normalization: Normalization = Normalization(), crop_fraction: float = 1.0,
                   spatial_crops: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resize the shorter side to ``size / crop_fraction`` and take the centre crop.

    Face crops (DFEW, FERV39K) are already tight, hence ``crop_fraction=1.0`` by default. With
    ``spatial_crops=3`` the result is (3, T, 3, size, size): crops at the start, centre and end of the
    longer side (top/centre/bottom for portrait frames).
    """
    if spatial_crops not in (1, 3):
        raise ValueError(f"spatial_crops must be 1 or 3, got {spatial_crops}")
    return _EvalTransform(normalization, crop_fraction, spatial_crops)


class _EvalTransform:
    """``eval_transform``'s transform (an object, not a closure, so that datasets holding it can be sent to
    loader processes started by spawn or forkserver)."""

    def __init__(self, normalization: Normalization, crop_fraction: float, spatial_crops: int) -> None:
        self.normalization, self.spatial_crops = normalization, spatial_crops
        self.resize = v2.Resize(round(normalization.size / crop_fraction), antialias=True)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        size = self.normalization.size
        clip = self.resize(clip)
        if self.spatial_crops == 1:
            return _normalize(TF.center_crop(clip, [size, size]), self.normalization)
        height, width = clip.shape[-2:]
        top, left = (height - size) // 2, (width - size) // 2
        if width >= height:
            corners: Sequence[tuple[int, int]] = [(top, 0), (top, left), (top, width - size)]
        else:
            corners = [(0, left), (top, left), (height - size, left)]
        return torch.stack([_normalize(TF.crop(clip, y, x, size, size), self.normalization) for y, x in corners])
