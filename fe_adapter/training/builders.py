"""Build the model and the datasets a TrainConfig describes."""

from __future__ import annotations

from pathlib import Path

import torch

from fe_adapter import data
from fe_adapter.model import VideoClassifier, create_model
from fe_adapter.training.config import DataConfig, ModelConfig


def build_model(model_config: ModelConfig, num_classes: int, num_frames: int, class_names: tuple[str, ...],
                img_size: int | None = None) -> VideoClassifier:
    """The adapted video classifier; frozen weights are cast to bf16 when ``backbone_dtype`` says so."""
    backbone_kwargs = dict(model_config.backbone_kwargs)
    if img_size is not None:
        backbone_kwargs.setdefault("img_size", img_size)
    model = create_model(
        model_config.backbone, num_classes=num_classes, num_frames=num_frames,
        pretrained=model_config.pretrained, checkpoint=model_config.checkpoint, class_names=class_names,
        dropout=model_config.dropout, backbone_kwargs=backbone_kwargs,
        bottleneck=model_config.bottleneck, kernel_size=model_config.kernel_size, dilation=model_config.dilation,
        placement=model_config.placement, activation=model_config.activation, impl=model_config.impl,
    )
    if model_config.backbone_dtype == "bf16":
        for param in model.parameters():
            if not param.requires_grad:
                param.data = param.data.to(torch.bfloat16)
    return model


def _clip_list(config: DataConfig, split: str) -> data.ClipList:
    """One split's clips. A list or folder test split takes the training split's classes unless given."""
    if config.dataset == "dfew":
        return data.dfew(config.root, config.fold, split)
    if config.dataset == "ferv39k":
        return data.ferv39k(config.root, split)
    if config.dataset == "mafw":
        return data.mafw(config.root, config.fold, split)
    if config.dataset not in ("list", "folder"):
        raise ValueError(f"no clip lists for data.dataset = {config.dataset!r}")
    class_names = config.class_names
    if split != "train" and class_names is None:
        class_names = dataset_classes(config)
    if config.dataset == "list":
        return data.list_file(config.train_list if split == "train" else config.test_list, config.root, class_names)
    return data.folder_tree(Path(config.root) / split, class_names)


def build_dataset(config: DataConfig, normalization: data.Normalization, split: str,
                  train: bool) -> data.ClipDataset:
    """One split ("train" or "test") at the model's input size and statistics, with training-time sampling
    and augmentation (``train``) or evaluation-time sampling, views and crops."""
    options: dict = dict(num_frames=config.num_frames, sampling=config.sampling)
    if not train:
        options["temporal_views"] = config.temporal_views
    if config.dataset == "synthetic":
        count = config.synthetic_train_clips if split == "train" else config.synthetic_test_clips
        return data.SyntheticClips(count, split, config.synthetic_seed, config.img_size or normalization.size,
                                   train=train, normalization=normalization, **options)
    clip_list = _clip_list(config, split)
    transform = (data.train_transform(normalization) if train
                 else data.eval_transform(normalization, spatial_crops=config.spatial_crops))
    return data.ClipDataset(clip_list, train=train, transform=transform, min_readable=config.min_readable, **options)


def build_datasets(config: DataConfig, normalization: data.Normalization) -> tuple[data.ClipDataset,
                                                                                    data.ClipDataset]:
    """(train, test) datasets: the training split augmented, the test split for evaluation."""
    return build_dataset(config, normalization, "train", True), build_dataset(config, normalization, "test", False)


def dataset_classes(config: DataConfig) -> tuple[str, ...]:
    """The class names of the configured dataset, known before any file is read where possible."""
    fixed = {"synthetic": data.SYNTHETIC_CLASSES, "dfew": data.DFEW_CLASSES, "ferv39k": data.FERV39K_CLASSES,
             "mafw": data.MAFW_CLASSES}
    if config.dataset in fixed:
        return tuple(fixed[config.dataset])
    if config.class_names:
        return tuple(config.class_names)
    return _clip_list(config, "train").class_names
