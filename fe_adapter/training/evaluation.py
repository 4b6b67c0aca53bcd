"""Evaluating a video classifier: the device and autocast a run asks for, and one pass over a split that
averages each clip's views, gathers every rank's share and scores UAR/WAR.

Training evaluates with it after every epoch; ``fe-adapter eval`` uses it alone, with no training split.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fe_adapter import data
from fe_adapter.metrics import Metrics
from fe_adapter.training.distributed import Distributed

log = logging.getLogger("fe_adapter.train")


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic kernels (warnings where none exists) and no cuDNN autotuning while the block runs; the
    process-wide settings are put back afterwards, so a Trainer leaves no global switch behind."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]


@dataclass
class Evaluation:
    """Metrics of one evaluation pass, with the averaged logits, labels and ids behind them."""

    metrics: Metrics
    logits: torch.Tensor
    labels: torch.Tensor
    ids: list[str]


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``optim.amp`` on ``device`` (auto: bf16 on CUDA, none elsewhere)."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None = None,
             dist: Distributed | None = None, progress: bool = True, min_readable: float = 0.9,
             split: str = "test") -> Evaluation:
    """UAR/WAR of ``model`` over every clip of ``loader``'s dataset (all ranks' shares gathered; a clip's views
    averaged). Unreadable clips are left out of the scores, with a warning naming them; below
    ``min_readable`` readable clips it raises ``DatasetError``."""
    dist = dist or Distributed()
    model.eval()
    logits, labels, keys, skipped = [], [], [], []
    for batch in tqdm(loader, desc=f"eval {split}", leave=False, dynamic_ncols=True,
                      disable=not (progress and dist.is_main)):
        skipped += batch.skipped
        if len(batch) == 0:
            continue
        clips = batch.clips.to(device, non_blocking=True)
        views = clips.shape[1] if clips.ndim == 6 else 1
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(clips.flatten(0, 1) if views > 1 else clips).float()
        logits.append(out.reshape(len(batch), views, -1).mean(1).cpu())
        labels.append(batch.labels)
        keys += zip(batch.indices, batch.ids, strict=True)
    local = (torch.cat(logits) if logits else torch.empty(0, model.num_classes),
             torch.cat(labels) if labels else torch.empty(0, dtype=torch.long), keys, skipped)
    merged: dict[tuple[int, str], tuple[torch.Tensor, int]] = {}
    all_skipped: set[str] = set()
    for part_logits, part_labels, part_keys, part_skipped in dist.gather(local):  # the sampler pads with repeats
        all_skipped.update(part_skipped)
        for row, label, key in zip(part_logits, part_labels.tolist(), part_keys, strict=True):
            merged.setdefault(key, (row, label))
    report = data.SkipReport(min_readable, f"in the {split} split")
    report.loaded, report.skipped = len(merged), sorted(all_skipped)
    message = report.finish()
    if message and dist.is_main:
        log.warning(f"{message}; the scores leave them out")
    order = sorted(merged)
    all_logits = torch.stack([merged[k][0] for k in order]) if order else torch.empty(0, model.num_classes)
    all_labels = torch.tensor([merged[k][1] for k in order], dtype=torch.long)
    predictions = all_logits.argmax(1) if order else torch.empty(0, dtype=torch.long)
    metrics = Metrics.from_predictions(predictions, all_labels, model.class_names)
    return Evaluation(metrics, all_logits, all_labels, [clip_id for _, clip_id in order])
