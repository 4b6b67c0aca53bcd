"""pretrain-image's training augmentation: timm's recipe, the loader decoding, the rest on the batch on the device.

``image_train_transforms`` splits timm's ``create_transform`` as timm's GPU prefetcher does, and further: the
loader only decodes each image (and brings it to one square size, so that a batch stacks) and makes its random
draws, and ``ImageBatchAugment`` applies the random resized crop, the flip, RandAugment (or the colour jitter),
the normalisation and random erasing to each batch where the model runs. Every draw is timm's (or
torchvision's), image by image in timm's order from the same global generators, so a seeded image is what timm's
whole transform gives it to a few grey levels (``tests/test_batch_augment.py``; the erasing's box is drawn with
each image's other draws, where timm's GPU prefetcher draws the boxes after the whole batch: the same
distribution). The operations run on the whole batch at once with an argument per image
(``fe_adapter.data.rand_augment``), so that the number of device operations, each at most one kernel launch on a
GPU, does not grow with the batch (``python -m benchmarks.augment_ops``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from fe_adapter.data.parameters import on_device
from fe_adapter.data.rand_augment import Step, apply_steps, draw_colour_jitter, draw_rand_augment
from fe_adapter.data.resample import resize_boxes
from fe_adapter.data.transforms import Normalization


def image_train_transforms(normalization: Normalization, scale: Sequence[float] = (0.6, 1.0), hflip: float = 0.5,
                           color_jitter: float = 0.4, auto_augment: str | None = "rand-m9-mstd0.5",
                           re_prob: float = 0.25, load_size: int | None = None) -> tuple[Callable, ImageBatchAugment]:
    """``image_transform``'s training augmentation (timm's ``create_transform``, the same arguments) as (the
    loader's transform of a PIL image, the ``ImageBatchAugment`` of the batch on the device).

    The loader hands each image out as a uint8 ``load_size`` square (default: the input size; the shorter side
    resized and the centre crop, as evaluation does; nothing for an image already of that size). A dataset whose
    images share one size (FER2013's 48 px, RAF-DB's aligned 100 px) given that size as ``load_size`` is cropped
    from its own pixels, exactly timm's recipe; with the default it is resized to the input size first, and the
    crop comes from that square. Other ``auto_augment`` policies (AutoAugment, AugMix) run on the PIL image in the
    loader with the crop and flip before them, as in ``image_transform`` (and so does a colour jitter of the hue);
    the batch is then only normalised and erased."""
    from timm.data import create_transform
    from timm.data.auto_augment import RandAugment
    from timm.data.transforms import MaybePILToTensor, RandomResizedCropAndInterpolation
    from torchvision import transforms

    from fe_adapter.data.batch_augment import prepare_transform
    from fe_adapter.data.rand_augment import drawing_policy

    if load_size is not None and load_size < 1:
        raise ValueError(f"load_size must be a positive number of pixels, got {load_size}")
    size = (3, normalization.size, normalization.size)
    primary, secondary, final = create_transform(
        size, is_training=True, scale=tuple(scale), hflip=hflip, color_jitter=color_jitter or None,
        auto_augment=auto_augment, interpolation="bicubic", mean=normalization.mean, std=normalization.std,
        re_prob=re_prob, re_mode="pixel", use_prefetcher=True, separate=True)
    crop, *flips = primary.transforms
    colours = list(secondary.transforms)
    on_device = (isinstance(crop, RandomResizedCropAndInterpolation)
                 and all(isinstance(flip, transforms.RandomHorizontalFlip) for flip in flips)
                 and all(isinstance(step, RandAugment) or (isinstance(step, transforms.ColorJitter)
                                                           and step.hue is None) for step in colours))
    if not on_device:
        if load_size is not None:
            raise ValueError(f"load_size ({load_size}) squares the images for the crop on the training device, but "
                             f"auto_augment={auto_augment!r} runs on the PIL image in the loader, cropped from the "
                             "decoded image: leave load_size unset")
        return transforms.Compose([*primary.transforms, *colours, *final.transforms]), ImageBatchAugment(
            normalization, re_prob)
    square = prepare_transform(replace(normalization, size=load_size or normalization.size))
    return transforms.Compose([MaybePILToTensor(), square]), ImageBatchAugment(
        normalization, re_prob, crop=crop, hflip=flips[0].p if flips else 0.0,
        colours=[drawing_policy(step) if isinstance(step, RandAugment) else step for step in colours])


@dataclass(frozen=True)
class ImageDraw:
    """The random draws for one image: the crop box (top, left, height, width) or None, the flip, the colour
    steps, the boxes random erasing fills with noise."""

    box: tuple[int, int, int, int] | None
    flip: bool
    steps: list[Step]
    erased: tuple[tuple[int, int, int, int], ...] = ()


class _ErasedBoxes:
    """Stands for an image while timm's ``RandomErasing`` draws: writes down the boxes it fills."""

    def __init__(self) -> None:
        self.boxes: list[tuple[int, int, int, int]] = []

    def __setitem__(self, index: tuple[slice, slice, slice], _: Any) -> None:
        _, rows, columns = index
        self.boxes.append((rows.start, columns.start, rows.stop - rows.start, columns.stop - columns.start))


class ImageBatchAugment:
    """The steps of timm's training transform after decoding, on a batch of uint8 (B, 3, H, W) images, on their
    device: the random resized crop to the input size (``crop``: timm's ``RandomResizedCropAndInterpolation``, its
    box drawn by it; bicubic), the horizontal flip (``hflip``: its probability), the ``colours`` (timm's
    RandAugment from ``rand_augment.drawing_policy``, or torchvision's ``ColorJitter``) drawn per image, the
    conversion to float and the normalisation, then random erasing (``re_prob``; timm's ``RandomErasing`` draws the
    box, filled with random normal pixels), the last two as timm's ``PrefetchLoader`` applies them on the GPU.
    Without ``crop`` the images must come at the input size.

    On a GPU (``batched``, by default on any device but the CPU) each step is one call for the whole batch (the crop
    and flip two matrix products with weights per image; each colour operation one call on the images that drew
    it; the erasing one random normal tensor for the batch, kept inside the boxes), so that the number of kernel
    launches does not grow with the batch; on the CPU the steps run image by image (the crop torchvision's uint8
    ``resized_crop``, the noise drawn for the boxes only), several times faster there. Both resample with PIL's
    bicubic kernel, antialiased when shrinking, and agree to a grey level there; operations that threshold
    (equalize, solarize) can turn that level into more in a few pixels, as rounding does between PIL and tensors."""

    def __init__(self, normalization: Normalization, re_prob: float = 0.25, crop: Any = None, hflip: float = 0.0,
                 colours: Sequence[Any] = (), batched: bool | None = None) -> None:
        if crop is not None and isinstance(crop.interpolation, (tuple, list)):
            raise ValueError("ImageBatchAugment crops with one interpolation, not a random choice")
        self.normalization, self.re_prob, self.crop, self.hflip = normalization, re_prob, crop, hflip
        self.colours, self.batched = list(colours), batched
        self._erasing = None
        if re_prob > 0:  # draws the boxes; "const" makes no noise of its own (the noise is drawn where it is used)
            from timm.data.random_erasing import RandomErasing

            self._erasing = RandomErasing(re_prob, mode="const", device="cpu")

    def draw(self, height: int, width: int) -> ImageDraw:
        """One image's draws in timm's order (crop, flip, colours, erasing), from Python's, numpy's and torch's global
        generators as timm's transforms draw on a PIL image (the erasing's noise excepted: ``apply`` draws it)."""
        box = None
        if self.crop is not None:
            box = tuple(self.crop.get_params(torch.empty(0, height, width), self.crop.scale, self.crop.ratio))
        flip = self.hflip > 0 and bool(torch.rand(1) < self.hflip)
        size = self.normalization.size
        steps = []
        for colour in self.colours:
            steps += draw_rand_augment(colour, size, size) if hasattr(colour, "ops") else draw_colour_jitter(colour)
        erased = _ErasedBoxes()
        if self._erasing is not None:
            self._erasing._erase(erased, 3, size, size, torch.float32)
        return ImageDraw(box, flip, steps, tuple(erased.boxes))

    def apply(self, images: torch.Tensor, draws: Sequence[ImageDraw]) -> torch.Tensor:
        """``images`` cropped, flipped, coloured, normalised and erased with ``draws`` (one per image)."""
        _check(images)
        if len(draws) != len(images):
            raise ValueError(f"{len(draws)} draws for a batch of {len(images)} images")
        if self.crop is not None:
            images = self._crop(images, draws)
        size = self.normalization.size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"ImageBatchAugment without a crop takes {size} x {size} images, got "
                             f"{tuple(images.shape[-2:])}")
        images = apply_steps(images, [draw.steps for draw in draws], batched=self._batched(images))
        mean = on_device([255 * value for value in self.normalization.mean], images.device)
        std = on_device([255 * value for value in self.normalization.std], images.device)
        pixels = images.float().sub_(mean.view(1, 3, 1, 1)).div_(std.view(1, 3, 1, 1))
        return self._erase(pixels, draws)

    def _erase(self, pixels: torch.Tensor, draws: Sequence[ImageDraw]) -> torch.Tensor:
        """The drawn boxes filled with random normal pixels (torch's generator on the images' device): box by box
        on the CPU, as timm's ``RandomErasing``; else one noise tensor for the batch, kept inside the boxes."""
        boxes = [(index, box) for index, draw in enumerate(draws) for box in draw.erased]
        if not boxes:
            return pixels
        if not self._batched(pixels):
            for index, (top, left, height, width) in boxes:
                pixels[index, :, top:top + height, left:left + width] = torch.randn(3, height, width,
                                                                                  device=pixels.device)
            return pixels
        count, _, height, width = pixels.shape
        rows = torch.arange(height, device=pixels.device).view(1, 1, -1, 1)
        columns = torch.arange(width, device=pixels.device).view(1, 1, 1, -1)
        inside = torch.zeros(count, 1, height, width, dtype=torch.bool, device=pixels.device)
        for slot in range(max(len(draw.erased) for draw in draws)):  # timm's default: one box an image
            spans = [_span(draw.erased[slot]) if slot < len(draw.erased) else (0, 0, 0, 0) for draw in draws]
            top, bottom, left, right = on_device(spans, pixels.device, torch.int64).view(count, 4, 1, 1, 1).unbind(1)
            inside |= (rows >= top) & (rows < bottom) & (columns >= left) & (columns < right)
        return torch.where(inside, torch.randn_like(pixels), pixels)

    def _crop(self, images: torch.Tensor, draws: Sequence[ImageDraw]) -> torch.Tensor:
        """Each image's box resized to the input size (bicubic, antialiased when shrinking: torchvision's
        ``resized_crop`` on uint8, PIL's kernel) and flipped where drawn: image by image on the CPU, where the
        uint8 kernel is fastest, else as two matrix products for the whole batch (``resample.resize_boxes``)."""
        size = self.normalization.size
        if not self._batched(images):
            from torchvision.transforms.v2 import functional as TF

            crops = [TF.resized_crop(image, *draw.box, [size, size], self.crop.interpolation, antialias=True)
                     for image, draw in zip(images, draws, strict=True)]
            return torch.stack([crop.flip(-1) if draw.flip else crop for crop, draw in zip(crops, draws,
                                                                                           strict=True)])
        boxes = on_device([draw.box for draw in draws], images.device)
        flips = on_device([draw.flip for draw in draws], images.device, torch.bool)
        return resize_boxes(images, boxes, flips, size)

    def _batched(self, images: torch.Tensor) -> bool:
        return images.device.type != "cpu" if self.batched is None else self.batched

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        _check(images)
        return self.apply(images, [self.draw(*images.shape[-2:]) for _ in range(len(images))])


def _check(images: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"ImageBatchAugment takes uint8 (B, 3, H, W) images, got {images.dtype} "
                         f"{tuple(images.shape)}")


def _span(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) -> (top, bottom, left, right)."""
    top, left, height, width = box
    return top, top + height, left, left + width
