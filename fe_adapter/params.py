"""``parameter_report``: how many parameters train, and where they live."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from fe_adapter.adapter import FEAdapter
from fe_adapter.vit import classifier_heads

PARTS: tuple[str, ...] = ("adapters", "head", "backbone")


@dataclass(frozen=True)
class PartCount:
    """Trainable and total parameter counts of one part of a model."""

    trainable: int
    total: int


@dataclass(frozen=True)
class ParameterReport:
    """Parameter counts per part ("adapters", "head", "backbone") and overall."""

    parts: dict[str, PartCount] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(part.total for part in self.parts.values())

    @property
    def trainable(self) -> int:
        return sum(part.trainable for part in self.parts.values())

    @property
    def trainable_share(self) -> float:
        """Trainable parameters as a fraction of all parameters (0 for an empty model)."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        rows = [f"{'part':<10} {'trainable':>14} {'total':>14}"]
        for name, part in self.parts.items():
            rows.append(f"{name:<10} {part.trainable:>14,} {part.total:>14,}")
        rows.append(f"{'all':<10} {self.trainable:>14,} {self.total:>14,}")
        rows.append(f"trainable share: {self.trainable_share:.2%}")
        return "\n".join(rows)


def parameter_report(model: nn.Module) -> ParameterReport:
    """Count trainable and total parameters of ``model`` per part: adapters, classifier head, backbone.

    Shared parameters are counted once. Anything that is neither inside an ``FEAdapter`` nor a
    classifier head counts as backbone.
    """
    part_of: dict[int, str] = {}
    for module in model.modules():
        if isinstance(module, FEAdapter):
            part_of.update((id(p), "adapters") for p in module.parameters())
    for head in classifier_heads(model):
        part_of.update((id(p), "head") for p in head.parameters() if id(p) not in part_of)

    counts = {name: [0, 0] for name in PARTS}
    for param in model.parameters():  # de-duplicated by nn.Module
        part = part_of.get(id(param), "backbone")
        counts[part][1] += param.numel()
        if param.requires_grad:
            counts[part][0] += param.numel()
    return ParameterReport({name: PartCount(*count) for name, count in counts.items()})
