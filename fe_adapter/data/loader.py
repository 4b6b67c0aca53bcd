"""Batches of clips: the collate function, the DataLoader factory and the per-epoch skip report."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, WeightedRandomSampler

from fe_adapter.data.dataset import ClipDataset, ClipSample
from fe_adapter.data.sources import DatasetError


@dataclass
class ClipBatch:
    """A batch: ``clips`` (B, T, 3, H, W) or (B, V, T, 3, H, W), ``labels`` (B,), ``ids``; unpacks as
    ``clips, labels, ids``. ``skipped`` lists the ids of unreadable clips dropped from this batch; ``draws``, the
    samples' augmentation draws when the loader made them (else None)."""

    clips: torch.Tensor
    labels: torch.Tensor
    ids: list[str]
    skipped: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # dataset positions of the loaded clips
    draws: list[Any] | None = None

    def __iter__(self) -> Iterator:
        return iter((self.clips, self.labels, self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def pin_memory(self) -> ClipBatch:
        return ClipBatch(self.clips.pin_memory(), self.labels.pin_memory(), self.ids, self.skipped, self.indices,
                         self.draws)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ClipBatch:
        return ClipBatch(self.clips.to(device, non_blocking=non_blocking),
                         self.labels.to(device, non_blocking=non_blocking), self.ids, self.skipped, self.indices,
                         self.draws)


def collate_clips(samples: Sequence[ClipSample]) -> ClipBatch:
    """Stack loaded clips; unreadable ones (``clip`` None) are dropped and listed in ``skipped``."""
    loaded = [sample for sample in samples if sample.clip is not None]
    skipped = [sample.id for sample in samples if sample.clip is None]
    if not loaded:
        return ClipBatch(torch.empty(0), torch.empty(0, dtype=torch.long), [], skipped)
    clips = _stack([sample.clip for sample in loaded])
    labels = torch.tensor([sample.label for sample in loaded], dtype=torch.long)
    draws = [sample.draw for sample in loaded]
    if all(draw is None for draw in draws):
        draws = None
    elif any(draw is None for draw in draws):
        raise ValueError("some samples of the batch carry augmentation draws and some do not: "
                         f"{', '.join(sample.id for sample in loaded if sample.draw is None)[:200]}")
    return ClipBatch(clips, labels, [sample.id for sample in loaded], skipped, [sample.index for sample in loaded],
                     draws)


def _stack(clips: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``, except for clips whose pixels lie channel-last in memory (decoded frames, (H, W, 3), viewed
    as (3, H, W)): these are stacked as they lie, a plain copy each instead of a transposition (most of the
    collate's time), and the batch is a channel-last view of the stack; the training device, where such uint8
    batches are augmented, converts the layout with the pixels."""
    if clips[0].is_contiguous() or not all(clip.movedim(-3, -1).is_contiguous() for clip in clips):
        return torch.stack(clips)
    return torch.stack([clip.movedim(-3, -1) for clip in clips]).movedim(-1, -3)


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else every core)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_num_workers() -> int:
    """Loader processes when none are asked for: one per usable CPU less one (left to the training loop),
    at most 8; 0 (loading in the main process) on a single CPU."""
    return min(8, max(0, _usable_cpus() - 1))


def make_loader(
    dataset: ClipDataset,
    batch_size: int,
    train: bool | None = None,
    balanced: bool = False,
    num_workers: int | None = None,
    pin_memory: bool | None = None,
    seed: int = 0,
    shard: tuple[int, int] | None = None,
) -> DataLoader:
    """A DataLoader of ``ClipBatch`` es.

    Args:
        dataset: the clips.
        batch_size: clips per batch.
        train: shuffle and drop the last partial batch (default: ``dataset.train``).
        balanced: draw clips with probability inversely proportional to their class's size (with
            replacement), so every class is seen equally often (DFEW's classes differ 18:1).
        num_workers: loader processes (default: ``default_num_workers()``, one per usable CPU less one,
            at most 8).
        pin_memory: page-locked batches for fast copies to the GPU (default: when CUDA is available).
        seed: seeds shuffling and sampling, so a run is repeatable. Re-seed ``loader.generator`` (and
            call ``set_epoch`` on a sharded sampler) at each epoch for epochs that do not depend on the
            previous ones, as the trainer does for exact resume.
        shard: (rank, world size) to read one process's share under DistributedDataParallel.
    """
    train = dataset.train if train is None else train
    if num_workers is None:
        num_workers = default_num_workers()
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if shard is not None:
        if balanced:
            raise ValueError("balanced sampling is not supported with several processes; use a class-weighted loss")
        rank, world_size = shard
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=train, seed=seed,
                                     drop_last=train)
    elif balanced:
        counts = dataset.class_counts()
        weights = torch.tensor([1.0 / counts[label] for label in dataset.labels], dtype=torch.float64)
        sampler = WeightedRandomSampler(weights, num_samples=len(dataset), replacement=True, generator=generator)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate_clips,
        generator=generator,
    )


class SkipReport:
    """Counts the clips skipped during an epoch (or an evaluation) and fails when too few were readable.

    Call ``update(batch)`` for each batch and ``finish()`` at the end: it returns a summary line naming a
    few of the skipped clips (or None when nothing was skipped) and raises ``DatasetError`` when the readable
    fraction fell below ``min_readable``.
    """

    def __init__(self, min_readable: float = 0.9, what: str = "this epoch") -> None:
        self.min_readable = min_readable
        self.what = what
        self.loaded = 0
        self.skipped: list[str] = []

    def update(self, batch: ClipBatch) -> None:
        self.loaded += len(batch.ids)
        self.skipped += batch.skipped

    def finish(self) -> str | None:
        loaded, skipped = self.loaded, self.skipped
        total = loaded + len(skipped)
        self.loaded, self.skipped = 0, []
        if total and loaded < self.min_readable * total:
            raise DatasetError(f"only {loaded} of {total} clips were readable {self.what} (min_readable = "
                               f"{self.min_readable:.0%}), e.g. not {', '.join(skipped[:3])}")
        if not skipped:
            return None
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        return f"skipped {len(skipped)} unreadable clips of {total} {self.what}: {', '.join(skipped[:3])}{more}"
