"""What a kind of training brings to the one ``Trainer``: the model, the data, the loss of a batch, the checkpoint.

The Trainer owns everything the kinds share (config handling, devices, DDP, accumulation, schedule, resume,
evaluation, logging, reports, run folders); a ``Task`` supplies the rest. ``VideoTask`` trains FE-Adapters on a
frozen ViT (``fe-adapter train``); ``fe_adapter.training.image_task.ImageTask`` trains the image classifier they
start from (``fe-adapter pretrain-image``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from fe_adapter import data
from fe_adapter.checkpoint import save_adapters
from fe_adapter.training.recipe import class_weights


class Task:
    """The parts of a training run that depend on what is trained. ``unit`` names a sample in the log ("clips")."""

    unit = "samples"
    #: Augmentation of training batches on the training device (``BatchAugment``), set by ``build_datasets``
    #: when the training samples come unaugmented; None when the loader augments or nothing does.
    augment: Any = None

    def build_model(self, config: Any) -> nn.Module:
        raise NotImplementedError

    def build_datasets(self, config: Any, model: nn.Module, seed: int) -> tuple[Any, Any, Any]:
        """(train, val or None, test) datasets yielding ``ClipSample``s."""
        raise NotImplementedError

    def check_classes(self, config: Any, train_set: Any) -> None:
        from fe_adapter.training.builders import check_training_classes

        check_training_classes(train_set, config.data.empty_classes)

    def make_loader(self, config: Any, dataset: Any, batch_size: int, train: bool, seed: int,
                    shard: tuple[int, int] | None) -> DataLoader:
        return data.make_loader(dataset, batch_size, train=train, balanced=config.data.balanced and train,
                                num_workers=config.data.num_workers, seed=seed, shard=shard)

    def optimizer(self, config: Any, model: nn.Module) -> torch.optim.Optimizer:
        """AdamW on the trainable parameters; no weight decay on biases and other 1-D tensors."""
        decay, no_decay = [], []
        for param in model.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=config.optim.lr)

    def setup_loss(self, config: Any, train_set: Any, device: torch.device) -> None:
        """Prepare ``loss``: class weights (``optim.class_weighted``) and the criterion."""
        self.class_weights = class_weights(train_set.class_counts()) if config.optim.class_weighted else None
        weight = None if self.class_weights is None else self.class_weights.to(device)
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.optim.label_smoothing)

    def weight_of(self, labels: torch.Tensor) -> float:
        """What a batch adds to its group's loss denominator: its samples, or their class weights' sum (the
        denominator of a class-weighted mean loss)."""
        if self.class_weights is None:
            return float(len(labels))
        return self.class_weights[labels].double().sum().item()

    def loss(self, network: nn.Module, batch: data.ClipBatch, device: torch.device,
             autocast: Any) -> tuple[torch.Tensor, float]:
        """The (weighted) mean loss of a batch and its weight (see ``weight_of``)."""
        weight = self.weight_of(batch.labels)
        inputs, labels = self.inputs(batch, device), batch.labels.to(device)
        with autocast():
            loss = self.criterion(network(inputs).float(), labels)
        return loss, weight

    def inputs(self, batch: data.ClipBatch, device: torch.device) -> torch.Tensor:
        """The batch's clips (or images) on ``device``, augmented there by ``augment`` if set (with the draws the
        loader made, if it made them)."""
        clips = batch.clips.to(device, non_blocking=True)
        if self.augment is None:
            return clips
        return self.augment(clips) if batch.draws is None else self.augment.apply(clips, batch.draws)

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after each optimizer step (e.g. to update an average of the weights)."""

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The model evaluated and saved (e.g. an average of the weights)."""
        return model

    def save(self, model: nn.Module, path: Any) -> None:
        raise NotImplementedError

    def describe(self, trainer: Any) -> list[str]:
        """The task's first lines of the log (the trainer adds devices, batches, steps and selection)."""
        return []

    def state_dict(self) -> dict[str, Any] | None:
        """Task state a resumed run needs besides the trainable weights (None: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        pass


class VideoTask(Task):
    """FE-Adapters and a head on a frozen ViT, on clips (``fe-adapter train``); checkpoints hold adapters and head."""

    unit = "clips"

    def build_model(self, config: Any) -> nn.Module:
        from fe_adapter.training.builders import build_model, dataset_classes

        class_names = dataset_classes(config.data)
        return build_model(config.model, len(class_names), config.data.num_frames, class_names, config.data.img_size)

    def build_datasets(self, config: Any, model: nn.Module, seed: int) -> tuple[Any, Any, Any]:
        from fe_adapter.training.builders import build_datasets, training_augment

        normalization = data.normalization_for(model)
        if config.data.img_size:
            normalization = data.Normalization(config.data.img_size, normalization.mean, normalization.std)
        self.augment = training_augment(config.data, normalization)  # on the batch, on the training device
        return build_datasets(config.data, normalization, seed, batch_augment=self.augment is not None)

    def save(self, model: nn.Module, path: Any) -> None:
        save_adapters(model, path)

    def describe(self, trainer: Any) -> list[str]:
        import fekernels

        impl = trainer.config.model.impl
        probe = torch.empty(0, device=trainer.device, dtype=trainer.amp_dtype or torch.float32)
        return [f"adapter op implementation: {fekernels.resolve_impl(impl, probe)} (impl={impl!r})"]
