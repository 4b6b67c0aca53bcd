"""``ImageTask``: the shared Trainer training the image emotion classifier that FE-Adapter starts from.

The recipe is timm's pieces rather than copies of them: ``create_transform`` (random resized crop, flip, colour
jitter, RandAugment, random erasing), ``Mixup`` (mixup / cutmix with label smoothing in the soft targets),
``create_optimizer_v2(layer_decay=...)`` (AdamW with layer-wise lr decay) and ``ModelEmaV3``. The schedule
(warm-up + cosine), accumulation, bf16 autocast, DDP, evaluation, resume and reports are the Trainer's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from fe_adapter import data
from fe_adapter.training.config import ConfigError
from fe_adapter.training.image_config import ImageTrainConfig
from fe_adapter.training.task import Task

log = logging.getLogger("fe_adapter.train")


def open_split(config: ImageTrainConfig, split: str, class_names: tuple[str, ...] | None = None) -> Any:
    """The ``ImageList`` of one split of the configured image dataset (``fe_adapter.data.registry``)."""
    from fe_adapter.data.registry import FORMATS, open_dataset

    entry = FORMATS[config.data.dataset]
    accepted = entry.options()
    if entry.splits and split not in entry.splits:
        raise ConfigError(f"data.dataset {config.data.dataset!r} has the splits {', '.join(entry.splits)}, not "
                          f"{split!r}: set data.train_split, data.val_split and data.test_split to those")
    options = dict(config.data.options)
    if config.data.root is not None:
        options["root"] = config.data.root
    names = class_names or config.data.class_names
    if names is not None and "class_names" in accepted:
        options["class_names"] = tuple(names)
    if "split" in accepted:
        options["split"] = split
    elif "list_file" in accepted:  # one list file per split: the split keys name them
        options["list_file"] = split
    return open_dataset(config.data.dataset, **options)


class ImageTask(Task):
    """A timm ViT trained as an image classifier on single faces (``fe-adapter pretrain-image``); checkpoints are
    whole image models with their class names and input statistics (``fe_adapter.image_model``)."""

    unit = "images"

    def __init__(self) -> None:
        self.mixup: Any = None
        self.ema: Any = None

    # model -----------------------------------------------------------------------------------------
    def build_model(self, config: ImageTrainConfig) -> nn.Module:
        from fe_adapter.backbone_weights import load_backbone_weights
        from fe_adapter.image_model import build_image_model
        from fe_adapter.training.builders import check_backbone

        model_config = config.model
        kwargs = dict(model_config.backbone_kwargs)
        if config.data.img_size is not None:
            kwargs.setdefault("img_size", config.data.img_size)
        check_backbone(model_config.backbone, 1, kwargs)  # a ViT adapt() accepts, arguments it takes
        self.class_names = self._class_names(config)
        model = build_image_model(model_config.backbone, self.class_names, kwargs, pretrained=model_config.pretrained,
                                  mean=model_config.mean, std=model_config.std, drop_path_rate=model_config.drop_path,
                                  drop_rate=model_config.dropout)
        if model_config.checkpoint:
            head = model.head
            model.reset_classifier(0)  # strict loading of every other tensor; the file's head (ImageNet's) is dropped
            self.weights = load_backbone_weights(model, model_config.checkpoint)
            model.reset_classifier(len(self.class_names))
            model.head = head  # the new head, initialised as timm initialises it
            log.info(f"starting weights: {Path(model_config.checkpoint).name} (sha256 {self.weights['sha256'][:12]})")
        elif model_config.pretrained:
            log.info(f"starting weights: timm's {model.pretrained_cfg.get('architecture')}."
                     f"{model.pretrained_cfg.get('tag')}")
        else:
            log.warning("notice: no starting weights (model.checkpoint, model.pretrained): the image model trains "
                        "from scratch, which needs far more images than fine-tuning ImageNet weights")
        return model

    @staticmethod
    def _class_names(config: ImageTrainConfig) -> tuple[str, ...]:
        from fe_adapter.data.registry import FORMATS

        if config.data.class_names:
            return tuple(config.data.class_names)
        if FORMATS[config.data.dataset].class_names:  # a dataset's official order: known before a file is read
            return tuple(FORMATS[config.data.dataset].class_names)
        return tuple(open_split(config, config.data.train_split).class_names)

    # data ------------------------------------------------------------------------------------------
    def build_datasets(self, config: ImageTrainConfig, model: nn.Module, seed: int) -> tuple[Any, Any, Any]:
        from fe_adapter.data.image_augment import image_train_transforms
        from fe_adapter.data.image_dataset import ImageDataset, image_transform
        from fe_adapter.training.builders import validation_indices

        settings = config.data
        normalization = data.normalization_for(model)
        eval_transform = image_transform(normalization, train=False, crop_pct=settings.crop_pct)
        train_transform, self.augment = eval_transform, None
        if settings.augment:  # the loader decodes; crop, flip, RandAugment, normalisation, erasing on the device
            train_transform, self.augment = image_train_transforms(
                normalization, scale=settings.scale, hflip=settings.hflip, color_jitter=settings.color_jitter,
                auto_augment=settings.auto_augment, re_prob=settings.re_prob, load_size=settings.load_size)

        def dataset(split: str, train: bool) -> ImageDataset:
            images = open_split(config, split, self.class_names)
            draw = self.augment.draw if train and self.augment is not None else None  # drawn by the loader
            return ImageDataset(images, train_transform if train else eval_transform, train, settings.min_readable,
                                cache=settings.cache, draw=draw)

        train_set, test_set = dataset(settings.train_split, True), dataset(settings.test_split, False)
        val_set = dataset(settings.val_split, False) if settings.val_split else None
        if settings.val_fraction:
            held_out = validation_indices(train_set.labels, settings.val_fraction, seed)
            if not held_out:
                raise ConfigError(f"data.val_fraction = {settings.val_fraction:g} holds out no image of the "
                                  f"{len(train_set)} training images (no class has two): use data.val_fraction=0")
            kept = sorted(set(range(len(train_set))) - set(held_out))
            val_set = train_set.subset(held_out)
            val_set.transform, val_set.train, val_set.draw = eval_transform, False, None
            train_set = train_set.subset(kept)
        for part in (val_set, test_set):
            if part is not None and part.class_names != train_set.class_names:
                raise ValueError(f"{part.source} names the classes {', '.join(part.class_names)}, the training split "
                                 f"{', '.join(train_set.class_names)}; set data.class_names")
        return train_set, val_set, test_set

    def make_loader(self, config: ImageTrainConfig, dataset: Any, batch_size: int, train: bool, seed: int,
                    shard: tuple[int, int] | None) -> DataLoader:
        group_size = config.data.group_size
        if not (train and group_size > 1):
            return super().make_loader(config, dataset, batch_size, train, seed, shard)
        from fe_adapter.data.image_dataset import GroupSampler

        if shard is not None:
            raise ConfigError("data.group_size > 1 is not supported with several processes (torchrun)")
        num_workers = data.default_num_workers() if config.data.num_workers is None else config.data.num_workers
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=GroupSampler(len(dataset), group_size, generator),
                          drop_last=True, num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                          collate_fn=data.collate_clips, generator=generator)

    # optimisation ----------------------------------------------------------------------------------
    def optimizer(self, config: ImageTrainConfig, model: nn.Module) -> torch.optim.Optimizer:
        """AdamW from timm's factory: no weight decay on biases, norms, position embeddings and tokens, and with
        ``optim.layer_decay`` a learning rate scaled by ``layer_decay ** (depth - layer)`` per block."""
        from timm.optim import create_optimizer_v2

        optim = config.optim
        optimizer = create_optimizer_v2(model, opt="adamw", lr=optim.lr, weight_decay=optim.weight_decay,
                                        layer_decay=optim.layer_decay)
        for group in optimizer.param_groups:  # timm's schedulers apply lr_scale; the Trainer's LambdaLR scales lr
            group["lr"] = optim.lr * group.get("lr_scale", 1.0)
        if optim.ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(model, decay=optim.ema_decay)
        return optimizer

    def setup_loss(self, config: ImageTrainConfig, train_set: Any, device: torch.device) -> None:
        super().setup_loss(config, train_set, device)
        settings = config.data
        if settings.augment and (settings.mixup > 0 or settings.cutmix > 0) and settings.mixup_prob > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=settings.mixup, cutmix_alpha=settings.cutmix, prob=settings.mixup_prob,
                               label_smoothing=config.optim.label_smoothing, num_classes=len(train_set.class_names))
        self.device = device

    def loss(self, network: nn.Module, batch: data.ClipBatch, device: torch.device,
             autocast: Any) -> tuple[torch.Tensor, float]:
        """Cross-entropy on the batch; with mixup/cutmix on the mixed images against their soft targets (label
        smoothing included), weighted per class when ``optim.class_weighted`` (a soft target's weight is its
        mix of its classes' weights)."""
        if self.mixup is None or len(batch) % 2:  # mixing pairs images: a batch an unreadable image made odd is not
            return super().loss(network, batch, device, autocast)
        images, targets = self.mixup(self.inputs(batch, device), batch.labels.to(device))
        with autocast():
            log_probabilities = network(images).float().log_softmax(-1)
        if self.class_weights is None:
            return -(targets * log_probabilities).sum(-1).mean(), float(len(batch))
        weights = targets @ self.class_weights.to(device)
        per_image = -(targets * self.class_weights.to(device) * log_probabilities).sum(-1)
        total = weights.double().sum()
        return per_image.sum() / total.float(), total.item()

    def after_step(self, model: nn.Module, step: int) -> None:
        if self.ema is not None:
            self.ema.update(model, step=step)

    def eval_model(self, model: nn.Module) -> nn.Module:
        return model if self.ema is None else self.ema.module

    # checkpoints -----------------------------------------------------------------------------------
    def save(self, model: nn.Module, path: Any) -> None:
        from fe_adapter.image_model import save_image_model

        save_image_model(model, path)

    def state_dict(self) -> dict[str, Any] | None:
        if self.ema is None:
            return None
        return {"ema": {name: tensor.detach().cpu() for name, tensor in self.ema.module.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.ema is not None and state and "ema" in state:
            self.ema.module.load_state_dict(state["ema"])

    def describe(self, trainer: Any) -> list[str]:
        config = trainer.config
        recipe = []
        if self.mixup is not None:
            recipe.append(f"mixup {config.data.mixup:g} / cutmix {config.data.cutmix:g} on "
                          f"{config.data.mixup_prob:.0%} of batches")
        recipe.append(f"label smoothing {config.optim.label_smoothing:g}")
        if config.optim.layer_decay:
            recipe.append(f"layer decay {config.optim.layer_decay:g}")
        if self.ema is not None:
            recipe.append(f"EMA {config.optim.ema_decay:g} (evaluated and saved)")
        if config.optim.class_weighted:
            recipe.append("class-weighted loss")
        if config.data.balanced:
            recipe.append("class-balanced sampling")
        augment = (f"augmentation: random resized crop {config.data.scale}, flip {config.data.hflip:g}, colour "
                   f"jitter {config.data.color_jitter:g}, {config.data.auto_augment or 'no RandAugment'}, random "
                   f"erasing {config.data.re_prob:g}") if config.data.augment else "augmentation: none"
        return [f"image classifier: {config.model.backbone}, {len(self.class_names)} classes, "
                f"{trainer.model.patch_embed.img_size[-1]} px", augment, "recipe: " + ", ".join(recipe)]
