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
    """UAR (mean per-class recall over classes present), WAR (accuracy), per-class recall and the confusion."""

    uar: float
    war: float
    per_class_recall: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    class_names: tuple[str, ...]

    @classmethod
    def from_confusion(cls, confusion: torch.Tensor, class_names: Sequence[str]) -> Metrics:
        confusion = confusion.long()
        support = confusion.sum(dim=1).double()
        correct = confusion.diagonal().double()
        present = support > 0
        recall = torch.where(present, correct / support.clamp(min=1), torch.full_like(support, float("nan")))
        uar = recall[present].mean().item() if present.any() else float("nan")
        war = (correct.sum() / support.sum()).item() if present.any() else float("nan")
        return cls(uar, war, tuple(recall.tolist()), tuple(tuple(row) for row in confusion.tolist()),
                   tuple(class_names))

    @classmethod
    def from_predictions(cls, predictions: torch.Tensor, labels: torch.Tensor,
                         class_names: Sequence[str]) -> Metrics:
        return cls.from_confusion(confusion_matrix(predictions, labels, len(class_names)), class_names)

    def to_dict(self) -> dict:
        return {
            "uar": self.uar,
            "war": self.war,
            "per_class_recall": dict(zip(self.class_names, self.per_class_recall, strict=True)),
            "confusion": [list(row) for row in self.confusion],
            "class_names": list(self.class_names),
        }

    def summary(self) -> str:
        return f"UAR {self.uar:.2%}  WAR {self.war:.2%}"
