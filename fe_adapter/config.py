"""``AdapterConfig``: the adapter settings an adapted model carries and its checkpoints record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Where adapters sit; "none" inserts none (the frame-averaging baseline: frozen backbone, trained head).
PLACEMENTS: tuple[str, ...] = ("attn", "mlp", "both", "none")


@dataclass(frozen=True)
class AdapterConfig:
    """How a ViT was adapted: enough to rebuild the same adapters.

    ``dilation`` holds one value per block (``adapt`` expands a single int). ``placement`` is where
    each block's adapter sits on the residual stream: before the attention branch ("attn", the
    paper's placement), before the MLP branch ("mlp"), both, or nowhere ("none", the baseline).
    """

    num_frames: int
    bottleneck: int
    kernel_size: int
    dilation: tuple[int, ...]
    placement: str
    activation: str | None
    num_prefix_tokens: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dilation"] = list(self.dilation)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterConfig:
        return cls(**{**data, "dilation": tuple(data["dilation"])})
