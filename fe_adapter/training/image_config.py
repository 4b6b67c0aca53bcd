"""The configuration of ``fe-adapter pretrain-image``: the image classifier's data, model, recipe and run sections.

The same machinery as video training's (``fe_adapter.training.config``: YAML plus ``section.key=value``
overrides, every key and value checked, one line naming a bad one) with the keys of an image recipe. The run
section is video training's ``RunConfig``: the same out_dir, seed, device, selection and logging rules.
Defaults are the recipe image-FER work uses on RAF-DB, FER2013 and AffectNet (MAE-SFER, HSEmotion): RandAugment,
random erasing 0.25, mixup 0.8 / cutmix 1.0 with label smoothing 0.1, layer-wise lr decay 0.65, weight decay 0.05,
drop path 0.1, warm-up + cosine, model EMA.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fe_adapter.data.registry import formats
from fe_adapter.training.config import (
    ConfigError,
    RunConfig,
    check_keys,
    check_min_lr,
    config_section,
    read_config,
)


@dataclass
class ImageDataConfig:
    dataset: str = "image_folder"  # an image format of fe_adapter.data.registry (image_folder, image_list, ...)
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the format's own options (see docs/data.md)
    # the splits: a split name, or for a format that reads one list file per split (image_list) the list file
    train_split: str = "train"
    val_split: str | None = None  # a split that chooses the best epoch (else data.val_fraction, else test_split)
    test_split: str = "test"
    class_names: list[str] | None = None
    img_size: int | None = None  # default: the backbone's
    batch_size: int = 64
    eval_batch_size: int | None = None
    num_workers: int | None = None
    balanced: bool = False  # class-balanced sampling: raises UAR, usually lowers WAR (docs/pretrain.md)
    group_size: int = 1  # batches hold whole runs of this many consecutive images (e.g. one subject's faces)
    augment: bool = True  # random resized crop, flip, colour jitter, RandAugment, random erasing
    cache: bool = False  # keep transformed images in memory (only without augmentation: small in-memory sets)
    scale: list[float] = field(default_factory=lambda: [0.6, 1.0])  # of the random resized crop
    # the square the loader hands training images at, cropped on the device (default img_size); a set of one image
    # size (FER2013 48, RAF-DB aligned 100) keeps its own pixels with that size
    load_size: int | None = None
    hflip: float = 0.5
    color_jitter: float = 0.4
    auto_augment: str | None = "rand-m9-mstd0.5"  # timm's RandAugment policy string, or null
    re_prob: float = 0.25  # random erasing
    crop_pct: float = 1.0  # evaluation: resize to img_size / crop_pct, centre crop (faces are tight crops)
    mixup: float = 0.8  # mixup alpha (0: off)
    cutmix: float = 1.0  # cutmix alpha (0: off)
    mixup_prob: float = 1.0  # the share of batches mixed
    min_readable: float = 0.9
    val_fraction: float = 0.0
    empty_classes: str = "error"


@dataclass
class ImageModelConfig:
    backbone: str = "vit_base_patch16_224"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # ImageNet (or other) weights, a local .safetensors/.pth, loaded strictly
    pretrained: bool = False  # timm's weights from the hub
    mean: list[float] | None = None
    std: list[float] | None = None
    drop_path: float = 0.1
    dropout: float = 0.0  # before the head
    impl: str = "auto"  # fekernels' implementation, used only when the image model is checked with adapters


@dataclass
class ImageOptimConfig:
    epochs: int = 30
    lr: float = 5e-4
    weight_decay: float = 0.05
    layer_decay: float | None = 0.65  # layer-wise lr decay (timm's optimizer factory); null: off
    warmup_epochs: float = 2.0
    min_lr: float = 1e-6
    clip_grad: float | None = None
    label_smoothing: float = 0.1
    class_weighted: bool = False  # loss weights N / (C n_c): raises UAR, usually lowers WAR (docs/pretrain.md)
    accumulation: int = 1
    amp: str = "auto"  # bf16 autocast on a GPU
    ema: bool = False  # evaluate and save an exponential moving average of the weights (timm's ModelEmaV3)
    ema_decay: float = 0.9998


@dataclass
class ImageTrainConfig:
    """The four sections of an image pretraining config."""

    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    optim: ImageOptimConfig = field(default_factory=ImageOptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    #: Value rules of the image keys, added to (or replacing) video training's (``fe_adapter.training.config``).
    CHOICES: ClassVar[dict] = {
        "data.dataset": tuple(formats("image")), "data.empty_classes": ("error", "warn"),
        "model.impl": lambda: importlib.import_module("fekernels").IMPLS,
        "optim.amp": ("auto", "none", "bf16", "fp16"), "run.select_metric": ("uar", "war"),
    }
    RANGES: ClassVar[dict] = {
        "data.hflip": (0, 1, True, True), "data.color_jitter": (0, None, True, False),
        "data.re_prob": (0, 1, True, True), "data.crop_pct": (0, 1, False, True), "data.mixup": (0, None, True, False),
        "data.cutmix": (0, None, True, False), "data.mixup_prob": (0, 1, True, True),
        "model.drop_path": (0, 1, True, False), "optim.layer_decay": (0, 1, False, True),
        "optim.ema_decay": (0, 1, False, False),
    }
    POSITIVE: ClassVar[set] = {"data.group_size", "data.img_size"}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _sections() -> dict[str, Any]:
    return {name: hint for name, hint in typing.get_type_hints(ImageTrainConfig).items()
            if typing.get_origin(hint) is not ClassVar}


def image_config_from_dict(values: dict[str, Any]) -> ImageTrainConfig:
    """A validated ImageTrainConfig from nested dicts (missing keys take their defaults)."""
    check_keys(values, ImageTrainConfig)
    sections = {name: config_section(values, name, ImageTrainConfig) for name in _sections()}
    config = ImageTrainConfig(**sections)
    data, optim, model = config.data, config.optim, config.model
    scale = data.scale
    if len(scale) != 2 or not all(isinstance(v, (int, float)) for v in scale) or not 0 < scale[0] <= scale[1] <= 1:
        raise ConfigError(f"data.scale must be [low, high] with 0 < low <= high <= 1, got {scale!r}")
    if data.load_size is not None and (not isinstance(data.load_size, int) or data.load_size < 1):
        raise ConfigError(f"data.load_size must be a positive number of pixels (or null: the input size), got "
                          f"{data.load_size!r}")
    check_min_lr(optim)
    if model.checkpoint and model.pretrained:
        raise ConfigError("model.checkpoint (a local weights file) and model.pretrained=true (timm's hub) both give "
                          "the starting weights: set one")
    if data.group_size > 1 and data.balanced:
        raise ConfigError("data.group_size keeps groups of images together and data.balanced draws images one by "
                          "one: set one of them")
    if data.group_size > 1 and data.batch_size % data.group_size:
        raise ConfigError(f"data.batch_size ({data.batch_size}) must be a multiple of data.group_size "
                          f"({data.group_size}) for every batch to hold whole groups")
    if data.cache and data.augment:
        raise ConfigError("data.cache keeps each image as first transformed: with data.augment every epoch needs new "
                          "random crops, flips and colours; set data.augment=false to cache")
    if data.val_split is not None and data.val_fraction:
        raise ConfigError("data.val_split names a validation split and data.val_fraction carves one from the "
                          "training split: set one of them")
    mixing = data.augment and (data.mixup > 0 or data.cutmix > 0) and data.mixup_prob > 0
    if mixing and data.batch_size % 2:
        raise ConfigError(f"mixup/cutmix pairs each image with another of its batch: data.batch_size must be even, got "
                          f"{data.batch_size} (or set data.mixup=0 and data.cutmix=0)")
    for name in ("mean", "std"):
        values_ = getattr(model, name)
        if values_ is not None and len(values_) != 3:
            raise ConfigError(f"model.{name} must be 3 per-channel values on a 0..1 pixel scale, got {values_!r}")
    return config


def load_image_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ImageTrainConfig:
    """Read a YAML image pretraining config (or start from the defaults) and apply ``section.key=value``
    overrides."""
    return image_config_from_dict(read_config(path, overrides))
