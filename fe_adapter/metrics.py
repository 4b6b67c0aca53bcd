"""Classification metrics of dynamic facial expression recognition: UAR, WAR, per-class recall, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    predictions, labels = predictions.reshape(-1).long().cpu(), labels.reshape(-1).long().cpu()
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions and labels differ in length: {predictions.numel()} vs {labels.numel()}")
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must be in 0..{num_classes - 1}, got values {values.min()}..{values.max()}")
    flat = labels * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class Metrics:
    """UAR (mean per-class recall over the classes present), WAR (accuracy), per-class recall and the confusion.

    A class without clips in the evaluated split has no recall: ``per_class_recall`` holds None for it (JSON
    null), UAR is the mean over the other classes, and ``uar_classes`` / ``absent_classes`` say which.
    """

    uar: float
    war: float
    per_class_recall: tuple[float | None, ...]
    confusion: tuple[tuple[int, ...], ...]
    class_names: tuple[str, ...]

    @classmethod
    def from_confusion(cls, confusion: torch.Tensor, class_names: Sequence[str]) -> Metrics:
        """Scores of a (num_classes, num_classes) confusion matrix; ValueError if it counts no clip at all."""
        confusion = confusion.long()
        if confusion.shape != (len(class_names), len(class_names)):
            raise ValueError(f"confusion must be {len(class_names)} x {len(class_names)} for the classes "
                             f"{', '.join(class_names)}, got shape {tuple(confusion.shape)}")
        support = confusion.sum(dim=1).double()
        correct = confusion.diagonal().double()
        present = support > 0
        if not present.any():
            raise ValueError("no clips to score: UAR and WAR are undefined without any clip")
        recall = [value if has_clips else None
                  for value, has_clips in zip((correct / support.clamp(min=1)).tolist(), present.tolist(), strict=True)]
        uar = (correct[present] / support[present]).mean().item()
        war = (correct.sum() / support.sum()).item()
        return cls(uar, war, tuple(recall), tuple(tuple(row) for row in confusion.tolist()), tuple(class_names))

    @classmethod
    def from_predictions(cls, predictions: torch.Tensor, labels: torch.Tensor,
                         class_names: Sequence[str]) -> Metrics:
        return cls.from_confusion(confusion_matrix(predictions, labels, len(class_names)), class_names)

    @property
    def absent_classes(self) -> tuple[str, ...]:
        """The classes without a clip in the evaluated split: left out of UAR."""
        return tuple(name for name, recall in zip(self.class_names, self.per_class_recall, strict=True)
                     if recall is None)

    @property
    def uar_classes(self) -> tuple[str, ...]:
        """The classes UAR averages: those with clips."""
        return tuple(name for name, recall in zip(self.class_names, self.per_class_recall, strict=True)
                     if recall is not None)

    def to_dict(self) -> dict:
        return {
            "uar": self.uar,
            "war": self.war,
            "uar_classes": list(self.uar_classes),
            "absent_classes": list(self.absent_classes),
            "per_class_recall": dict(zip(self.class_names, self.per_class_recall, strict=True)),
            "confusion": [list(row) for row in self.confusion],
            "class_names": list(self.class_names),
        }

    def summary(self) -> str:
        """``UAR .. WAR ..``, saying which classes UAR left out when a class had no clips."""
        return f"UAR {self.uar:.2%}{uar_note(self.to_dict())}  WAR {self.war:.2%}"


def uar_note(metrics: dict) -> str:
    """`` (over 5 of 7 classes; no clips of fear, disgust)`` for metrics (a ``to_dict()``, or any dict with its
    ``uar_classes`` and ``absent_classes``) where some classes had no clips; else an empty string (also for
    metrics written before these keys existed)."""
    absent = metrics.get("absent_classes") or []
    if not absent:
        return ""
    averaged = len(metrics["uar_classes"])
    return f" (over {averaged} of {averaged + len(absent)} classes; no clips of {', '.join(absent)})"
