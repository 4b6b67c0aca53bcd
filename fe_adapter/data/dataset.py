"""``ClipDataset``: clips of T frames with labels from any source, sampled and transformed per clip."""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fe_adapter.data.readers import UnreadableClip, read_frames
from fe_adapter.data.sampling import SAMPLINGS, sample_indices
from fe_adapter.data.sources import ClipItem, ClipList, DatasetError
from fe_adapter.data.transforms import eval_transform, train_transform


@dataclass(frozen=True)
class ClipSample:
    """One clip: (T, 3, H, W) float, or (V, T, 3, H, W) with several views, or None if unreadable; ``draw``, the
    random draws of its augmentation when the loader draws and the training device applies them."""

    clip: torch.Tensor | None
    label: int
    id: str
    index: int = -1  # position in the dataset: unique even when a list names one file twice
    draw: Any = None


class LabelledItems(Dataset):
    """What clip and image datasets share: their listed items (those that exist, at least ``min_readable`` of the
    listed ones, else ``DatasetError``), class names, labels, class counts and subsets. ``what`` names an item in
    messages ("clip", "image")."""

    def __init__(self, listed: ClipList, min_readable: float, what: str) -> None:
        count = len(listed.items) + len(listed.missing)
        if count == 0:
            raise DatasetError(f"{listed.source or f'the {what} list'} lists no {what}s")
        if len(listed.items) < min_readable * count:
            examples = ", ".join(f"{item.path} ({item.origin})" for item in listed.missing[:3])
            raise DatasetError(f"only {len(listed.items)} of {count} listed {what}s exist (min_readable = "
                               f"{min_readable:.0%}); missing e.g. {examples}")
        self.items: list = list(listed.items)
        self.class_names: tuple[str, ...] = tuple(listed.class_names)
        self.source = listed.source
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int]) -> LabelledItems:
        """A copy of this dataset that holds only the items at ``indices`` (e.g. a validation split)."""
        part = copy.copy(self)
        part.items = [self.items[index] for index in indices]
        part._warned = set()
        return part

    @property
    def labels(self) -> list[int]:
        return [item.label for item in self.items]

    def class_counts(self) -> list[int]:
        """Items per class, index = label (for class-weighted losses and balanced sampling)."""
        counts = Counter(self.labels)
        return [counts.get(index, 0) for index in range(len(self.class_names))]


class ClipDataset(LabelledItems):
    """Clips sampled to ``num_frames`` frames, transformed identically across frames.

    Args:
        clips: a ``ClipList`` from ``fe_adapter.data.sources`` (dfew, ferv39k, mafw, list_file, folder_tree).
        num_frames: T, frames per clip.
        sampling: "segment", "uniform" or "consecutive" (see ``sample_indices``).
        stride: frame step for "consecutive" sampling.
        train: random sampling and augmentation (else deterministic sampling, centre crop).
        transform: maps a (T, 3, H, W) uint8 tensor to the model's input; default: the train or eval
            transform at 224 px with ImageNet statistics (see ``normalization_for`` for a backbone's own).
        temporal_views: evaluation views spread over the clip; with ``spatial_crops`` from the eval
            transform, a sample holds (temporal_views x spatial_crops, T, 3, H, W).
        min_readable: the fraction of listed clips that must exist, else DatasetError at construction.

    An unreadable clip (missing, empty, truncated or corrupt) yields a sample whose ``clip`` is None,
    with one warning naming the file; ``collate_clips`` drops it and lists it in the batch's ``skipped``.
    """

    def __init__(
        self,
        clips: ClipList,
        num_frames: int = 16,
        sampling: str = "segment",
        stride: int = 1,
        train: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        temporal_views: int = 1,
        min_readable: float = 0.9,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if num_frames < 1 or temporal_views < 1 or stride < 1:
            raise ValueError(f"num_frames, temporal_views and stride must be >= 1, got {num_frames}, "
                             f"{temporal_views}, {stride}")
        super().__init__(clips, min_readable, "clip")
        self.num_frames = num_frames
        self.sampling = sampling
        self.stride = stride
        self.train = train
        self.temporal_views = 1 if train else temporal_views
        self.transform = transform or (train_transform() if train else eval_transform())

    def read(self, item: ClipItem, indices_for: Callable[[int], Sequence[int]]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 frames of ``item``; raises UnreadableClip. Subclasses may override."""
        return read_frames(item.path, indices_for)

    def _indices_for(self, available: int) -> list[int]:
        views = [
            sample_indices(available, self.num_frames, self.sampling, self.train, self.stride, view,
                           self.temporal_views)
            for view in range(self.temporal_views)
        ]
        return [index for view in views for index in view]

    def __getitem__(self, index: int) -> ClipSample:
        item = self.items[index]
        try:
            frames = self.read(item, self._indices_for)
        except UnreadableClip as error:
            if str(item.path) not in self._warned:
                self._warned.add(str(item.path))
                warnings.warn(f"skipping unreadable clip: {error}", stacklevel=2)
            return ClipSample(None, item.label, str(item.path), index)
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (V*T, 3, H, W) uint8
        views = [self.transform(view) for view in clip.split(self.num_frames)]
        if len(views) == 1:
            return ClipSample(views[0], item.label, str(item.path), index)
        # (temporal views, [spatial crops,] T, 3, H, W) -> (views, T, 3, H, W)
        stacked = torch.stack(views)
        return ClipSample(stacked.reshape(-1, *stacked.shape[-4:]), item.label, str(item.path), index)
