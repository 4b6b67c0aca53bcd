"""``ImageDataset``: single face images with labels, transformed one by one, batched as the clips are.

Its samples are ``ClipSample``s holding one (3, H, W) image, so the loader, the collate function, the skip
report and the evaluation of video training serve image training unchanged. Transforms are timm's
(``timm.data.create_transform``): the recipe image-classification work uses, not a copy of it; for training,
``image_train_transforms`` splits it between the loader (decode, uint8 out) and the training device (crop, flip,
RandAugment on tensors, normalisation, random erasing).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch.utils.data import Sampler

from fe_adapter.data.dataset import ClipSample, LabelledItems
from fe_adapter.data.images import ImageItem, ImageList, UnreadableImage, load_image
from fe_adapter.data.sources import DatasetError
from fe_adapter.data.transforms import Normalization


def image_transform(normalization: Normalization, train: bool, augment: bool = True,
                    scale: Sequence[float] = (0.6, 1.0), hflip: float = 0.5, color_jitter: float = 0.4,
                    auto_augment: str | None = "rand-m9-mstd0.5", re_prob: float = 0.25,
                    crop_pct: float = 1.0) -> Callable:
    """timm's transform of a PIL image to a normalised (3, size, size) tensor: for training (``train`` and
    ``augment``) a random resized crop of ``scale`` of the image, horizontal flip, colour jitter, RandAugment
    (``auto_augment``, timm's policy string) and random erasing; otherwise a resize to ``size / crop_pct`` and
    the centre crop (faces are tight crops, hence ``crop_pct`` 1)."""
    from timm.data import create_transform

    size = (3, normalization.size, normalization.size)
    if train and augment:
        return create_transform(size, is_training=True, scale=tuple(scale), hflip=hflip,
                                color_jitter=color_jitter or None, auto_augment=auto_augment, interpolation="bicubic",
                                mean=normalization.mean, std=normalization.std, re_prob=re_prob, re_mode="pixel")
    return create_transform(size, is_training=False, interpolation="bicubic", mean=normalization.mean,
                            std=normalization.std, crop_pct=crop_pct)


def image_train_transforms(normalization: Normalization, scale: Sequence[float] = (0.6, 1.0), hflip: float = 0.5,
                           color_jitter: float = 0.4, auto_augment: str | None = "rand-m9-mstd0.5",
                           re_prob: float = 0.25, load_size: int | None = None) -> tuple[Callable, ImageBatchAugment]:
    """``image_transform``'s training augmentation (timm's ``create_transform``, the same arguments) split between
    the loader and the training device, as timm's GPU prefetcher splits it, and further.

    The loader only decodes each image and brings it to a ``load_size`` square (default: the input size; the
    shorter side resized and the centre crop, as evaluation does; nothing for an image already of that size),
    uint8. On the device, per image: timm's random resized crop (timm's draw; torchvision's v2 bicubic resize on
    the uint8 tensor) and flip, then a draw of timm's RandAugment on tensors (``fe_adapter.data.rand_augment``) or
    of torchvision's colour jitter; then on the batch the normalisation and timm's random erasing
    (``ImageBatchAugment``). So the loader's core pays no more per image than evaluation does
    (``python -m benchmarks.loading``). A dataset whose images share one size (FER2013's 48 px, RAF-DB's aligned
    100 px) given that size as ``load_size`` is cropped from its own pixels, exactly timm's recipe; with the
    default it is resized to the input size first, and the crop comes from that square. Other ``auto_augment``
    policies (AutoAugment, AugMix) run on the PIL image in the loader with the crop and flip before them, as in
    ``image_transform``."""
    from timm.data import create_transform
    from timm.data.auto_augment import RandAugment
    from timm.data.transforms import MaybePILToTensor
    from torchvision import transforms

    from fe_adapter.data.batch_augment import prepare_transform
    from fe_adapter.data.rand_augment import tensorize

    if load_size is not None and load_size < 1:
        raise ValueError(f"load_size must be a positive number of pixels, got {load_size}")
    size = (3, normalization.size, normalization.size)
    primary, secondary, final = create_transform(
        size, is_training=True, scale=tuple(scale), hflip=hflip, color_jitter=color_jitter or None,
        auto_augment=auto_augment, interpolation="bicubic", mean=normalization.mean, std=normalization.std,
        re_prob=re_prob, re_mode="pixel", use_prefetcher=True, separate=True)
    steps = list(secondary.transforms)
    if all(isinstance(step, (RandAugment, transforms.ColorJitter)) for step in steps):
        square = prepare_transform(replace(normalization, size=load_size or normalization.size))
        on_device = [*map(_tensor_crop, primary.transforms),
                     *(tensorize(step) if isinstance(step, RandAugment) else step for step in steps)]
        return (transforms.Compose([MaybePILToTensor(), square]),
                ImageBatchAugment(normalization, re_prob, transforms.Compose(on_device)))
    per_image = transforms.Compose([*primary.transforms, *steps, *final.transforms])
    return per_image, ImageBatchAugment(normalization, re_prob)


class _TensorResizedCrop:
    """timm's ``RandomResizedCropAndInterpolation`` drawing its box as timm does, the crop and resize done by
    torchvision's v2 ``resized_crop`` on the uint8 tensor (several times faster there than the v1 function timm
    calls)."""

    def __init__(self, crop: Any) -> None:
        self.crop = crop

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        import random

        from torchvision.transforms.v2 import functional as TF

        top, left, height, width = self.crop.get_params(image, self.crop.scale, self.crop.ratio)
        interpolation = self.crop.interpolation
        if isinstance(interpolation, (tuple, list)):
            interpolation = random.choice(interpolation)
        return TF.resized_crop(image, top, left, height, width, list(self.crop.size), interpolation, antialias=True)


def _tensor_crop(step: Callable) -> Callable:
    from timm.data.transforms import RandomResizedCropAndInterpolation

    return _TensorResizedCrop(step) if isinstance(step, RandomResizedCropAndInterpolation) else step


class ImageBatchAugment:
    """The last steps of timm's training transform on a batch of uint8 (B, 3, H, W) images, on their device:
    ``per_image`` (the random resized crop to the input size, the flip, RandAugment or colour jitter on tensors,
    drawn per image), the conversion to float and the normalisation, then timm's ``RandomErasing`` (``re_prob``,
    random normal pixels; a draw per image), the last two as timm's ``PrefetchLoader`` applies them on the GPU.
    Without ``per_image`` the images must come at the input size."""

    def __init__(self, normalization: Normalization, re_prob: float = 0.25,
                 per_image: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.normalization, self.re_prob, self.per_image = normalization, re_prob, per_image
        self._erasing: dict[str, Callable] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ImageBatchAugment takes uint8 (B, 3, H, W) images, got {images.dtype} "
                             f"{tuple(images.shape)}")
        if self.per_image is not None:
            images = torch.stack([self.per_image(image) for image in images])
        size = self.normalization.size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"ImageBatchAugment makes {size} x {size} images, got {tuple(images.shape[-2:])} "
                             + ("from its per-image steps" if self.per_image is not None else "with nothing to crop"))
        mean = torch.tensor([255 * value for value in self.normalization.mean], device=images.device)
        std = torch.tensor([255 * value for value in self.normalization.std], device=images.device)
        pixels = images.float().sub_(mean.view(1, 3, 1, 1)).div_(std.view(1, 3, 1, 1))
        if self.re_prob <= 0:
            return pixels
        device = str(images.device)
        if device not in self._erasing:
            from timm.data.random_erasing import RandomErasing

            self._erasing[device] = RandomErasing(self.re_prob, mode="pixel", device=device)
        return self._erasing[device](pixels)


class ImageDataset(LabelledItems):
    """The images of an ``ImageList`` (``fe_adapter.data.images``, ``fe_adapter.data.registry``), each
    transformed on its own.

    An unreadable image yields a sample whose ``clip`` is None, with one warning naming the file;
    ``collate_clips`` drops it and lists it in the batch's ``skipped``. Fewer than ``min_readable`` of the listed
    images existing is a ``DatasetError`` at construction. ``cache`` keeps each transformed image in memory after
    its first use: only for a deterministic ``transform`` (no augmentation) and a set that fits in memory (the
    demo's faces); with loader processes each keeps its own cache.
    """

    def __init__(self, images: ImageList, transform: Callable, train: bool = False,
                 min_readable: float = 0.9, cache: bool = False) -> None:
        super().__init__(images, min_readable, "image")
        self.transform = transform
        self.train = train
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def subset(self, indices: Sequence[int]) -> ImageDataset:
        part = super().subset(indices)
        part._cache = None if self._cache is None else {}
        return part

    @staticmethod
    def image_id(item: ImageItem) -> str:
        return str(item.path) if item.path is not None else item.origin

    def __getitem__(self, index: int) -> ClipSample:
        item = self.items[index]
        name = self.image_id(item)
        if self._cache is not None and index in self._cache:
            return ClipSample(self._cache[index], item.label, name, index)
        try:
            image = load_image(item)
        except UnreadableImage as error:  # missing, truncated, not an image, a face box outside it
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(f"skipping unreadable image: {error}", stacklevel=2)
            return ClipSample(None, item.label, name, index)
        tensor = self.transform(image)
        if self._cache is not None:
            self._cache[index] = tensor
        return ClipSample(tensor, item.label, name, index)


class GroupSampler(Sampler[int]):
    """The images in shuffled groups of ``group_size`` consecutive ones (e.g. one subject's faces in each
    expression): with a batch size that is a multiple of ``group_size``, every batch holds whole groups, so the
    images of a batch differ in what the classifier has to find and not in who is shown. ``generator`` is
    re-seeded per epoch by the trainer."""

    def __init__(self, count: int, group_size: int, generator: torch.Generator) -> None:
        if count % group_size:
            raise DatasetError(f"data.group_size = {group_size}: the training split holds {count} images, not whole "
                               "groups")
        self.count, self.group_size, self.generator = count, group_size, generator

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        groups = torch.randperm(self.count // self.group_size, generator=self.generator)
        order = (groups[:, None] * self.group_size + torch.arange(self.group_size)).flatten()
        return iter(order.tolist())
