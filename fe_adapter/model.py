"""``VideoClassifier`` and ``create_model``: an adapted image ViT that classifies clips."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from fe_adapter.backbone_weights import load_backbone_weights
from fe_adapter.config import AdapterConfig
from fe_adapter.image_model import recorded_statistics
from fe_adapter.vit import adapt, set_num_frames
from fekernels._checks import check_int

_IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


class VideoClassifier(nn.Module):
    """Classify (B, T, 3, H, W) clips with an adapted ViT: per-frame features, mean over time, linear head.

    Args:
        backbone: an adapted timm ViT built with ``num_classes=0`` (it returns pooled features).
        num_classes: number of output classes.
        class_names: one name per class, in label order (written into checkpoints and reports).
        dropout: dropout before the head (ST-Adapter uses 0.5).
        backbone_kwargs: the ``timm.create_model`` arguments the backbone was built with (recorded in
            checkpoints so that the same architecture can be rebuilt).
        backbone_weights: where the backbone's weights came from (``{"file": name, "sha256": hash}`` for a
            local file, ``{"timm": name}`` for timm's weights), recorded in checkpoints; None if unknown.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        dropout: float = 0.5,
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_weights: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(getattr(backbone, "fe_adapter_config", None), AdapterConfig):
            raise ValueError("backbone must be adapted first: call fe_adapter.adapt(backbone, ...)")
        check_int("num_classes", num_classes, 1)
        if class_names is None:
            class_names = [f"class_{index}" for index in range(num_classes)]
        if len(class_names) != num_classes:
            raise ValueError(f"class_names must have num_classes = {num_classes} names, got {len(class_names)}")
        self.backbone = backbone
        self.class_names = list(class_names)
        self.backbone_kwargs = dict(backbone_kwargs or {})
        self.backbone_weights = dict(backbone_weights) if backbone_weights else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.num_features, num_classes)

    @property
    def adapter_config(self) -> AdapterConfig:
        return self.backbone.fe_adapter_config

    @property
    def num_frames(self) -> int:
        return self.adapter_config.num_frames

    @num_frames.setter
    def num_frames(self, value: int) -> None:
        set_num_frames(self, value)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def get_classifier(self) -> nn.Module:
        """The classification head (timm's convention, used by ``parameter_report``)."""
        return self.head

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip features (B, D): the adapted ViT's pooled per-frame features averaged over time."""
        if clips.ndim != 5:
            raise ValueError(f"clips must be 5-D (B, T, 3, H, W), got shape {tuple(clips.shape)}")
        num_clips, num_frames = clips.shape[:2]
        if num_frames != self.num_frames:
            raise ValueError(
                f"clips have T = {num_frames} frames but the model expects num_frames = {self.num_frames}; "
                "set model.num_frames to change it"
            )
        features = self.backbone(clips.flatten(0, 1))
        return features.reshape(num_clips, num_frames, -1).mean(dim=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) for (B, T, 3, H, W) clips."""
        return self.head(self.dropout(self.forward_features(clips)))


def create_model(
    backbone: str = "vit_base_patch16_224",
    num_classes: int = 7,
    num_frames: int = 16,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    dropout: float = 0.5,
    backbone_kwargs: dict[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    random_backbone: bool = False,
    **adapter_kwargs: Any,
) -> VideoClassifier:
    """Build a video emotion classifier from a timm image ViT with FE-Adapters.

    Args:
        backbone: a timm ViT name (vit_*, deit_*, vit_*_reg*, vit_*_clip_*), optionally with a weights tag.
        num_classes: output classes (7 for DFEW and FERV39K, 11 for MAFW).
        num_frames: T, frames per clip.
        pretrained: load timm's pretrained weights (needs access to the model hub).
        checkpoint: local backbone weights (.safetensors, or a state dict saved with torch.save) loaded with no
            network access; excludes ``pretrained``. Loading is strict: every backbone tensor must be in the
            file (wrapper prefixes such as ``model.`` are stripped, the image model's head is dropped), else
            a ``CheckpointError``. The file's name and SHA-256 are recorded in adapter checkpoints.
        class_names: names of the classes in label order.
        dropout: dropout before the linear head.
        backbone_kwargs: extra arguments for ``timm.create_model`` (e.g. ``img_size=112``).
        mean, std: per-channel pixel statistics the image model was trained with (on a 0..1 scale), when they
            differ from the timm defaults of ``backbone``'s weights tag; recorded in adapter checkpoints. When
            neither is given and ``checkpoint`` is an image model of ``fe-adapter pretrain-image``, the statistics
            it records are used.
        random_backbone: build the backbone with random weights on purpose (tests; or weights you load
            yourself), without the warning that a model with neither ``checkpoint`` nor ``pretrained`` gets:
            adapters on a frozen random backbone learn next to nothing.
        **adapter_kwargs: passed to ``adapt`` (bottleneck, kernel_size, dilation, placement,
            activation, freeze, impl).
    """
    architecture = dict(backbone_kwargs or {})
    if checkpoint is not None and pretrained:
        raise ValueError("pass either pretrained=True or checkpoint=PATH, not both")
    if random_backbone and (checkpoint is not None or pretrained):
        raise ValueError("random_backbone=True asks for random backbone weights: pass it without checkpoint= and "
                         "pretrained=True")
    if not (random_backbone or checkpoint is not None or pretrained):
        warnings.warn(f"create_model: the backbone {backbone} is randomly initialised (neither checkpoint= nor "
                      "pretrained=True given): adapters on a frozen random backbone learn next to nothing; pass your "
                      "image model's weights, or random_backbone=True if a random backbone is what you want",
                      UserWarning, stacklevel=2)
    model = timm.create_model(backbone, pretrained=pretrained, num_classes=0, **architecture)
    weights = None
    if checkpoint is not None and mean is None and std is None:
        recorded = recorded_statistics(checkpoint)
        if recorded is not None:
            mean, std = recorded
            logging.getLogger("fe_adapter").info(f"{Path(checkpoint).name}: the image model's input statistics: "
                                                 f"mean {mean}, std {std}")
    if checkpoint is not None:
        weights = load_backbone_weights(model, checkpoint)
    elif pretrained:
        config = model.pretrained_cfg
        weights = {"timm": ".".join(filter(None, (config.get("architecture"), config.get("tag"))))}
    if mean is not None or std is not None:
        set_normalization(model, mean, std)
    adapt(model, num_frames, **adapter_kwargs)
    return VideoClassifier(model, num_classes, class_names=class_names, dropout=dropout, backbone_kwargs=architecture,
                           backbone_weights=weights)


def model_from_config(config: dict[str, Any], checkpoint: str | Path | None = None, pretrained: bool = False,
                      impl: str = "auto", num_frames: int | None = None) -> VideoClassifier:
    """The model an adapter checkpoint's config (``fe_adapter.checkpoint.model_config``) describes, with the backbone
    weights from ``checkpoint`` (a local file) or timm (``pretrained``) and new adapters and head (load them with
    ``load_adapters``). The input statistics are the recorded ones; ``num_frames`` replaces the clip length it was
    trained with (the weights do not depend on it)."""
    adapter, normalization = config["adapter"], config.get("input", {})
    return create_model(
        config["backbone"], num_classes=len(config["class_names"]), num_frames=num_frames or adapter["num_frames"],
        pretrained=pretrained and checkpoint is None, checkpoint=checkpoint, class_names=config["class_names"],
        backbone_kwargs=config.get("backbone_kwargs"), mean=normalization.get("mean"), std=normalization.get("std"),
        bottleneck=adapter["bottleneck"], kernel_size=adapter["kernel_size"], dilation=adapter["dilation"],
        placement=adapter["placement"], activation=adapter["activation"], impl=impl,
    )


def set_normalization(backbone: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
    """Make ``mean``/``std`` (3 values each on a 0..1 pixel scale; None keeps the current one) the statistics a
    timm backbone's inputs are normalised with (its ``pretrained_cfg``, which ``normalization_for`` reads)."""
    config = dict(getattr(backbone, "pretrained_cfg", None) or {})
    for name, values, low in (("mean", mean, 0.0), ("std", std, 1e-6)):
        if values is None:
            continue
        values = tuple(float(value) for value in values)
        if len(values) != 3 or not all(low <= value <= 1 for value in values):
            raise ValueError(f"{name} must be 3 per-channel values in [{low:g}, 1] (pixels scaled to 0..1, "
                             f"e.g. ImageNet's {name} {_IMAGENET[name]}), got {values}")
        config[name] = values
    backbone.pretrained_cfg = backbone.default_cfg = config
