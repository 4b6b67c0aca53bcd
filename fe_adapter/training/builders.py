"""Build the model and the datasets a TrainConfig describes."""

from __future__ import annotations

import difflib
import inspect
import logging
from typing import Any

import numpy as np
import timm
import torch

from fe_adapter import data
from fe_adapter.data import registry
from fe_adapter.data.batch_augment import BatchAugment, prepare_transform
from fe_adapter.model import VideoClassifier, create_model
from fe_adapter.training.config import ConfigError, DataConfig, ModelConfig
from fe_adapter.vit import adapt

log = logging.getLogger("fe_adapter.train")

#: ``timm.create_model`` arguments every model takes besides its class's own.
_TIMM_ARGUMENTS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict", "cache_dir")


def _init_arguments(cls: type) -> set[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up to the base classes."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def check_backbone(name: str, num_frames: int, backbone_kwargs: dict[str, Any]) -> None:
    """Fail with one line naming the setting when timm does not know the backbone ``name``, when it is not a ViT
    FE-Adapter can adapt, or when ``model.backbone_kwargs`` holds an argument the model does not take.

    The model is built on the meta device (no memory, no weights: a fraction of a second for ViT-B).
    """
    if not timm.is_model(name):
        close = difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models('vit_*')"
        raise ConfigError(f"model.backbone: timm has no model {name!r}{hint}")
    with torch.device("meta"):
        probe = timm.create_model(name, pretrained=False, num_classes=0)
        try:
            adapt(probe, num_frames, bottleneck=1)  # adapt() knows which models it supports
        except TypeError as error:
            raise ConfigError(f"model.backbone = {name!r}: {error}") from None
        accepted = sorted(_init_arguments(type(probe))) + list(_TIMM_ARGUMENTS)
        unknown = [key for key in backbone_kwargs if key not in accepted]
        if unknown:
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(accepted)}"
            raise ConfigError(f"model.backbone_kwargs: {type(probe).__name__} ({name}) takes no argument "
                              f"{unknown[0]!r}; {hint}")
        try:
            timm.create_model(name, pretrained=False, num_classes=0, **backbone_kwargs)
        except TypeError as error:
            raise ConfigError(f"model.backbone_kwargs {backbone_kwargs}: {error}") from None


def build_model(model_config: ModelConfig, num_classes: int, num_frames: int, class_names: tuple[str, ...],
                img_size: int | None = None) -> VideoClassifier:
    """The adapted video classifier; frozen weights are cast to bf16 when ``backbone_dtype`` says so.

    A backbone with neither weights (``model.checkpoint``, ``model.pretrained``) nor ``model.random_backbone``
    is refused: adapters on a frozen random backbone learn next to nothing, and eval cannot rebuild it.
    """
    backbone_kwargs = dict(model_config.backbone_kwargs)
    if img_size is not None:
        backbone_kwargs.setdefault("img_size", img_size)
    check_backbone(model_config.backbone, num_frames, backbone_kwargs)
    if not (model_config.checkpoint or model_config.pretrained):
        if not model_config.random_backbone:
            raise ConfigError("no backbone weights: set model.checkpoint (your image model's weights, .safetensors "
                              "or .pth) or model.pretrained=true (timm's weights); model.random_backbone=true "
                              "trains on a randomly initialised frozen backbone (a test, not a model)")
        log.warning("model.random_backbone=true: the frozen backbone is randomly initialised")
    model = create_model(
        model_config.backbone, num_classes=num_classes, num_frames=num_frames,
        pretrained=model_config.pretrained, checkpoint=model_config.checkpoint, class_names=class_names,
        dropout=model_config.dropout, backbone_kwargs=backbone_kwargs, mean=model_config.mean, std=model_config.std,
        bottleneck=model_config.bottleneck, kernel_size=model_config.kernel_size, dilation=model_config.dilation,
        placement=model_config.placement, activation=model_config.activation, impl=model_config.impl,
        random_backbone=model_config.random_backbone,
    )
    cast_frozen_weights(model, model_config.backbone_dtype)
    return model


def cast_frozen_weights(model: torch.nn.Module, backbone_dtype: str) -> None:
    """Store the frozen weights in bf16 when ``model.backbone_dtype`` is "bf16" (half the memory, trained or not)."""
    if backbone_dtype == "bf16":
        for param in model.parameters():
            if not param.requires_grad:
                param.data = param.data.to(torch.bfloat16)


def clip_list(config: DataConfig, split: str, class_names: tuple[str, ...] | None = None) -> data.ClipList:
    """The clips one split ("train" or "test") of the configured format lists (``fe_adapter.data.registry``); no
    clip is read. The format gets the ``data.*`` keys named as its options (root, fold, frames, train_list...).
    A format without a fixed class order (list, folder) takes ``class_names`` (default: ``data.class_names``,
    else, for a test split, the training split's classes)."""
    dataset_format = registry.FORMATS[config.dataset]
    accepted = dataset_format.options()
    options = {name: getattr(config, name) for name in accepted
               if name not in ("split", "class_names") and getattr(config, name, None) is not None}
    if "class_names" in accepted:
        class_names = class_names or config.class_names
        if split != "train" and class_names is None:
            class_names = dataset_classes(config)
        options["class_names"] = class_names
    return registry.open_dataset(config.dataset, split=split, **options)


def validation_indices(labels: list[int], fraction: float, seed: int) -> list[int]:
    """The positions of the clips held out for validation: in each class of n clips, ``round(fraction * n)``
    of them (at least 1 and at most n - 1 when n >= 2, none from a class of one clip), drawn with ``seed``,
    so every run with the same training split, fraction and seed holds out the same clips."""
    generator = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    held_out = []
    for label in sorted(by_class):
        positions = by_class[label]
        if len(positions) < 2:
            continue
        count = min(len(positions) - 1, max(1, round(fraction * len(positions))))
        held_out += generator.permutation(positions)[:count].tolist()
    return sorted(held_out)


def build_dataset(config: DataConfig, normalization: data.Normalization, split: str, train: bool,
                  seed: int = 0, class_names: tuple[str, ...] | None = None,
                  batch_augment: bool = False) -> data.ClipDataset:
    """One split at the model's input size and statistics, with training-time sampling and augmentation
    (``train``) or evaluation-time sampling, views and crops. With ``batch_augment`` a training split's clips come
    as uint8 frames at the input size, for ``training_augment`` to augment on the batch (on the training device).

    ``split`` is "train", "val" or "test". With ``data.val_fraction`` > 0, "val" is the part of the training
    split file ``validation_indices`` holds out (with ``seed``, the run's) and "train" the rest; "test" is
    the test split file. ``class_names`` names the classes of a list or folder dataset (as a checkpoint
    records them), so that evaluating the test split reads no training split.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if split == "val" and not config.val_fraction:
        raise ConfigError("the val split is carved from the training split: set data.val_fraction (e.g. 0.1)")
    options: dict = dict(num_frames=config.num_frames, sampling=config.sampling)
    if not train:
        options["temporal_views"] = config.temporal_views
    source = "test" if split == "test" else "train"
    if config.dataset == "synthetic":  # rendered on the fly, not read from files
        count = config.synthetic_train_clips if source == "train" else config.synthetic_test_clips
        dataset = data.SyntheticClips(count, source, config.synthetic_seed, config.img_size or normalization.size,
                                      train=train, normalization=normalization, **options)
    else:
        if train:
            transform = prepare_transform(normalization) if batch_augment else data.train_transform(normalization)
        else:
            transform = data.eval_transform(normalization, spatial_crops=config.spatial_crops)
        dataset = data.ClipDataset(clip_list(config, source, class_names), train=train, transform=transform,
                                   min_readable=config.min_readable, **options)
    if source == "test" or not config.val_fraction:
        return dataset
    held_out = validation_indices(dataset.labels, config.val_fraction, seed)
    if not held_out:
        raise ConfigError(f"data.val_fraction = {config.val_fraction:g} holds out no clip of the {len(dataset)} "
                          "training clips (no class has two): use data.val_fraction=0")
    if split == "val":
        return dataset.subset(held_out)
    kept = sorted(set(range(len(dataset))) - set(held_out))
    return dataset.subset(kept)


def build_datasets(config: DataConfig, normalization: data.Normalization, seed: int = 0, batch_augment: bool = False,
                   ) -> tuple[data.ClipDataset, data.ClipDataset | None, data.ClipDataset]:
    """(train, val, test): the training clips augmented (with ``batch_augment``: left for ``training_augment``
    on the batch), the validation clips (None without ``data.val_fraction``) and the test split for evaluation."""
    val = build_dataset(config, normalization, "val", False, seed) if config.val_fraction else None
    return (build_dataset(config, normalization, "train", True, seed, batch_augment=batch_augment), val,
            build_dataset(config, normalization, "test", False, seed))


def training_augment(config: DataConfig, normalization: data.Normalization) -> BatchAugment | None:
    """The augmentation of training batches ``build_datasets(batch_augment=True)`` leaves to the training
    device: ``train_transform``'s random resized crop, flip and colour jitter, drawn per clip (None for the
    synthetic clips, which are not augmented)."""
    if config.dataset == "synthetic":
        return None
    return BatchAugment(normalization)


def check_training_classes(clips: data.ClipList | data.ClipDataset, empty_classes: str = "error") -> None:
    """Refuse (``DatasetError``) training clips (a split's ``ClipList`` or dataset) without clips of some class,
    naming it: the model could never learn to predict it, whatever class weights or balanced sampling do.
    ``empty_classes="warn"`` (the setting ``data.empty_classes``) logs a warning instead."""
    counts = [0] * len(clips.class_names)
    for item in clips.items:
        counts[item.label] += 1
    empty = [name for name, count in zip(clips.class_names, counts, strict=True) if count == 0]
    if not empty:
        return
    them = "them" if len(empty) > 1 else "it"
    message = (f"{clips.source or 'the training split'}: the training split ({len(clips.items)} clips) has no clips "
               f"of the class{'es' if len(empty) > 1 else ''} {', '.join(empty)} (of {len(counts)}: "
               f"{', '.join(clips.class_names)}); the model cannot learn {them}")
    if empty_classes == "warn":
        log.warning(f"warning: {message}; training anyway (data.empty_classes=warn)")
        return
    raise data.DatasetError(f"{message}: add clips of {them}, leave {them} out of data.class_names, or set "
                            "data.empty_classes=warn to train anyway")


def dataset_classes(config: DataConfig) -> tuple[str, ...]:
    """The class names of the configured dataset, known before any file is read where possible."""
    fixed = registry.FORMATS[config.dataset].class_names
    if fixed is not None:
        return tuple(fixed)
    if config.class_names:
        return tuple(config.class_names)
    return clip_list(config, "train").class_names
