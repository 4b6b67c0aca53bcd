"""``ImageDataset``: single face images with labels, transformed one by one, batched as the clips are.

Its samples are ``ClipSample``s holding one (3, H, W) image, so the loader, the collate function, the skip
report and the evaluation of video training serve image training unchanged. Transforms are timm's
(``timm.data.create_transform``): the recipe image-classification work uses, not a copy of it; for training,
``fe_adapter.data.image_augment`` splits it between the loader (decoding) and the training device (the rest).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
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


class ImageDataset(LabelledItems):
    """The images of an ``ImageList`` (``fe_adapter.data.images``, ``fe_adapter.data.registry``), each
    transformed on its own.

    An unreadable image yields a sample whose ``clip`` is None, with one warning naming the file;
    ``collate_clips`` drops it and lists it in the batch's ``skipped``. Fewer than ``min_readable`` of the listed
    images existing is a ``DatasetError`` at construction. ``cache`` keeps each transformed image in memory after
    its first use: only for a deterministic ``transform`` (no augmentation) and a set that fits in memory (the
    demo's faces); with loader processes each keeps its own cache. ``draw(height, width)`` makes each sample's
    augmentation draws (``ImageBatchAugment.draw``) in the loader, for the training device to apply: the loader
    processes then do the host work of drawing, and the training process only launches the batch's operations.
    """

    def __init__(self, images: ImageList, transform: Callable, train: bool = False,
                 min_readable: float = 0.9, cache: bool = False,
                 draw: Callable[[int, int], Any] | None = None) -> None:
        super().__init__(images, min_readable, "image")
        self.transform = transform
        self.train = train
        self.draw = draw
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
            return self._sample(self._cache[index], item.label, name, index)
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
        return self._sample(tensor, item.label, name, index)

    def _sample(self, tensor: torch.Tensor, label: int, name: str, index: int) -> ClipSample:
        draw = self.draw(*tensor.shape[-2:]) if self.draw is not None else None
        return ClipSample(tensor, label, name, index, draw)


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
