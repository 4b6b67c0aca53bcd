"""``Trainer``: train FE-Adapter on a frozen ViT, evaluate UAR/WAR, checkpoint and resume."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import fekernels
from fe_adapter import data
from fe_adapter.checkpoint import save_adapters
from fe_adapter.metrics import Metrics
from fe_adapter.params import parameter_report
from fe_adapter.training.builders import build_datasets, build_model, dataset_classes
from fe_adapter.training.config import TrainConfig
from fe_adapter.training.distributed import Distributed
from fe_adapter.training.recipe import class_weights, cosine_with_warmup
from fe_adapter.training.state import load_training_state, restore_rng, save_training_state

log = logging.getLogger("fe_adapter.train")


@dataclass
class Evaluation:
    """Metrics of one evaluation pass, with the averaged logits, labels and ids behind them."""

    metrics: Metrics
    logits: torch.Tensor
    labels: torch.Tensor
    ids: list[str]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(name: str, dist: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", dist.local_rank)
    return torch.device(name)


@contextlib.contextmanager
def _deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic kernels (warnings where none exists) and no cuDNN autotuning while the block runs; the
    process-wide settings are put back afterwards, so a Trainer leaves no global switch behind."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]


def _with_run_settings(method: Callable) -> Callable:
    """Run a Trainer method under the run's determinism setting (``run.deterministic``)."""

    @functools.wraps(method)
    def wrapper(self: Trainer, *args, **kwargs):
        with _deterministic_algorithms(self.config.run.deterministic):
            return method(self, *args, **kwargs)

    return wrapper


class Trainer:
    """Everything one training run needs, built from a ``TrainConfig``.

    ``fit()`` trains for ``optim.epochs`` epochs, evaluating after each, keeping the best epoch by
    ``run.select_metric`` and the last one, and returns a summary. The resumable state is saved after each
    epoch; ``fit(resume=True)`` starts again after the last completed epoch (the work of an interrupted epoch
    is done again). Each epoch reseeds every random source with ``seed + epoch``, so the resumed run ends
    exactly as the uninterrupted run would have.
    """

    def __init__(self, config: TrainConfig, dist: Distributed | None = None) -> None:
        self.config = config
        self.dist = dist or Distributed()
        self.device = _device(config.run.device, self.dist)
        self.out_dir = Path(config.run.out_dir)
        seed_everything(config.run.seed)

        class_names = dataset_classes(config.data)
        model = build_model(config.model, len(class_names), config.data.num_frames, class_names,
                            config.data.img_size)
        self.model = model.to(self.device)
        normalization = data.normalization_for(model)
        if config.data.img_size:
            normalization = data.Normalization(config.data.img_size, normalization.mean, normalization.std)
        self.train_set, self.test_set = build_datasets(config.data, normalization)
        if self.train_set.class_names != self.test_set.class_names:
            raise ValueError(f"train and test splits name different classes: {self.train_set.class_names} vs "
                             f"{self.test_set.class_names}; set data.class_names")

        shard = (self.dist.rank, self.dist.world_size) if self.dist.enabled else None
        loader_options = dict(num_workers=config.data.num_workers, seed=config.run.seed, shard=shard)
        self.train_loader = data.make_loader(self.train_set, config.data.batch_size, train=True,
                                             balanced=config.data.balanced, **loader_options)
        self.test_loader = data.make_loader(self.test_set, config.data.eval_batch_size or config.data.batch_size,
                                            train=False, **loader_options)

        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = self._optimizer()
        # one step per group of `accumulation` consecutive batches, whatever the groups turn out to hold
        steps_per_epoch = math.ceil(len(self.train_loader) / config.optim.accumulation)
        self.total_steps = steps_per_epoch * config.optim.epochs
        warmup = round(config.optim.warmup_epochs * steps_per_epoch)
        floor = config.optim.min_lr / config.optim.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: cosine_with_warmup(step, warmup, self.total_steps, floor))
        self.class_weights = class_weights(self.train_set.class_counts()) if config.optim.class_weighted else None
        weight = None if self.class_weights is None else self.class_weights.to(self.device)
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.optim.label_smoothing)
        self.network = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type ==
                                                "cuda" else None) if self.dist.enabled else self.model)
        self.epoch, self.step = 0, 0
        self.best: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    # set-up -------------------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.config.optim.amp
        if amp == "auto":
            return torch.bfloat16 if self.device.type == "cuda" else None
        return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]

    def _optimizer(self) -> torch.optim.Optimizer:
        """AdamW on the trainable parameters; no weight decay on biases and other 1-D tensors."""
        decay, no_decay = [], []
        for param in self.model.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        groups = [{"params": decay, "weight_decay": self.config.optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.config.optim.lr)

    def describe(self) -> list[str]:
        """The first lines of the log: implementation, device, dtypes, parameters, data."""
        report = parameter_report(self.model)
        impl = self.config.model.impl
        probe = torch.empty(0, device=self.device, dtype=self.amp_dtype or torch.float32)
        resolved = fekernels.resolve_impl(impl, probe)
        return [
            f"adapter op implementation: {resolved} (impl={impl!r})",
            f"device: {self.device}, processes: {self.dist.world_size}, autocast: {self.amp_dtype}, "
            f"backbone dtype: {self.config.model.backbone_dtype}",
            f"parameters: {report.trainable:,} trainable of {report.total:,} ({report.trainable_share:.2%}); "
            f"adapters {report.parts['adapters'].total:,}, head {report.parts['head'].total:,}",
            f"data: {self.config.data.dataset}, {len(self.train_set)} train / {len(self.test_set)} test clips of "
            f"{self.config.data.num_frames} frames, classes {', '.join(self.train_set.class_names)}",
        ]

    # one epoch --------------------------------------------------------------------------------------
    def _seed_epoch(self, epoch: int) -> None:
        seed = self.config.run.seed + epoch
        seed_everything(seed)
        for loader in (self.train_loader, self.test_loader):
            loader.generator.manual_seed(seed)
            sampler = loader.sampler
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if getattr(sampler, "generator", None) is not None:
                sampler.generator.manual_seed(seed)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _weight_of(self, labels: torch.Tensor) -> float:
        """What a batch adds to its group's loss denominator: its clips, or their class weights' sum (the
        denominator of a class-weighted mean loss)."""
        if self.class_weights is None:
            return float(len(labels))
        return self.class_weights[labels].double().sum().item()

    @_with_run_settings
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split, one optimizer step per group of ``optim.accumulation`` batches.

        Groups are runs of consecutive batches (the last of an epoch may be shorter), the same on every rank.
        Each group's step follows the gradient of the mean loss over the clips the group really held on all
        ranks together, as one step on those clips in a single batch would: a batch whose clips were all
        unreadable adds nothing, and a group left without clips moves no weight but still advances the
        learning-rate schedule, so every epoch takes exactly ``total_steps / epochs`` steps.
        """
        self._seed_epoch(epoch)
        self.network.train()
        skips = data.SkipReport(self.config.data.min_readable)
        accumulation, batches_per_epoch = self.config.optim.accumulation, len(self.train_loader)
        loss_sum, weight_sum, clips_seen, start = 0.0, 0.0, 0, time.perf_counter()
        group_weight = 0.0
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.config.optim.epochs}", leave=False,
                   disable=not (self.config.run.progress and self.dist.is_main), dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(bar):
            skips.update(batch)
            group_start = index - index % accumulation
            group_batches = min(accumulation, batches_per_epoch - group_start)
            # the group's loss is divided by what a full group would hold; _optimizer_step corrects the rest
            nominal = group_batches * self.config.data.batch_size
            if not self.dist.any(len(batch) == 0, self.device):  # every rank skips together: no rank waits forever
                weight = self._weight_of(batch.labels)
                clips, labels = batch.clips.to(self.device, non_blocking=True), batch.labels.to(self.device)
                with self._autocast():
                    loss = self.criterion(self.network(clips).float(), labels)
                self.scaler.scale(loss / (nominal / weight)).backward()  # = sum of weighted clip losses / nominal
                group_weight += weight
                loss_sum += loss.item() * weight
                weight_sum += weight
                clips_seen += len(batch)
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                                clips_per_s=f"{clips_seen / (time.perf_counter() - start):.1f}")
            if index == group_start + group_batches - 1:
                self._optimizer_step(group_weight, nominal)
                group_weight = 0.0
        message = skips.finish()
        if message and self.dist.is_main:
            log.warning(message)
        elapsed = time.perf_counter() - start
        loss_sum, weight_sum = self.dist.sum([loss_sum, weight_sum], self.device)
        return {"loss": loss_sum / max(weight_sum, 1e-12), "lr": self.scheduler.get_last_lr()[0],
                "clips_per_s": clips_seen * self.dist.world_size / elapsed, "seconds": elapsed}

    def _optimizer_step(self, group_weight: float, nominal: int) -> None:
        """Step on the accumulated gradient, rescaled from ``nominal`` clips per rank to the group's real
        total (``group_weight`` summed over ranks), then advance the schedule (also when nothing was held)."""
        total = self.dist.sum([group_weight], self.device)[0]
        trainable = [p for p in self.model.parameters() if p.requires_grad and p.grad is not None]
        if total > 0 and trainable:
            # DDP averaged the ranks' gradients: the sum over all clips / (world_size * nominal)
            correction = self.dist.world_size * nominal / total
            if correction != 1.0:
                for param in trainable:
                    param.grad.mul_(correction)
            if self.config.optim.clip_grad:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, self.config.optim.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    @torch.no_grad()
    @_with_run_settings
    def evaluate(self, loader: DataLoader | None = None) -> Evaluation:
        """UAR/WAR over the whole test set (all ranks' shares gathered; views averaged per clip)."""
        loader = loader or self.test_loader
        self.model.eval()
        logits, labels, keys = [], [], []
        for batch in tqdm(loader, desc="eval", leave=False, dynamic_ncols=True,
                          disable=not (self.config.run.progress and self.dist.is_main)):
            if len(batch) == 0:
                continue
            clips = batch.clips.to(self.device, non_blocking=True)
            views = clips.shape[1] if clips.ndim == 6 else 1
            with self._autocast():
                out = self.model(clips.flatten(0, 1) if views > 1 else clips).float()
            logits.append(out.reshape(len(batch), views, -1).mean(1).cpu())
            labels.append(batch.labels)
            keys += zip(batch.indices, batch.ids, strict=True)
        local = (torch.cat(logits) if logits else torch.empty(0, self.model.num_classes),
                 torch.cat(labels) if labels else torch.empty(0, dtype=torch.long), keys)
        merged: dict[tuple[int, str], tuple[torch.Tensor, int]] = {}
        for part_logits, part_labels, part_keys in self.dist.gather(local):  # the sampler pads with repeats
            for row, label, key in zip(part_logits, part_labels.tolist(), part_keys, strict=True):
                merged.setdefault(key, (row, label))
        order = sorted(merged)
        all_logits = torch.stack([merged[k][0] for k in order]) if order else torch.empty(0)
        all_labels = torch.tensor([merged[k][1] for k in order], dtype=torch.long)
        predictions = all_logits.argmax(1) if order else torch.empty(0, dtype=torch.long)
        metrics = Metrics.from_predictions(predictions, all_labels, self.model.class_names)
        return Evaluation(metrics, all_logits, all_labels, [clip_id for _, clip_id in order])

    # the run ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What resuming needs: config, trainable weights, optimizer, schedule, scaler, progress, history."""
        return {
            "config": self.config.to_dict(),
            "model": {name: param.detach().cpu() for name, param in self.model.named_parameters()
                      if param.requires_grad},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the state") -> None:
        """Continue from ``state_dict()``'s output (the same config expected)."""
        trainable = {name for name, param in self.model.named_parameters() if param.requires_grad}
        missing = trainable - set(state["model"])
        if missing:
            raise ValueError(f"{source} does not match the model: missing {sorted(missing)[:3]}")
        self.model.load_state_dict(state["model"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.history = state["best"], state["history"]

    @_with_run_settings
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train and evaluate every epoch; return {"best": ..., "final": ..., "history": [...]}.

        With ``resume``, continue from ``run.out_dir/last.pt`` (written after each epoch) where it exists.
        """
        state_path = self.out_dir / "last.pt"
        if resume and state_path.is_file():
            state = load_training_state(state_path)
            self.load_state_dict(state, str(state_path))
            restore_rng(state["rng"])
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for line in self.describe():
                log.info(line)
        writer = self._tensorboard()
        select = self.config.run.select_metric
        final = None
        while self.epoch < self.config.optim.epochs:
            stats = self.train_epoch(self.epoch)
            evaluation = self.evaluate()
            final = evaluation.metrics
            self.epoch += 1
            record = {"epoch": self.epoch, "step": self.step, **stats, "uar": final.uar, "war": final.war}
            self.history.append(record)
            improved = not self.best or getattr(final, select) > self.best["metrics"][select]
            if improved:
                self.best = {"epoch": self.epoch, "metrics": final.to_dict()}
            if self.dist.is_main:
                log.info(f"epoch {self.epoch}: loss {stats['loss']:.4f}, {final.summary()}, "
                         f"{stats['clips_per_s']:.1f} clips/s")
                self._log(record, writer)
                if improved:
                    save_adapters(self.model, self.out_dir / "best.safetensors")
                save_adapters(self.model, self.out_dir / "last.safetensors")
                save_training_state(state_path, self.state_dict())
            self.dist.barrier()
        if writer is not None:
            writer.close()
        if final is None:  # resumed a finished run
            final = self.evaluate().metrics
        report = parameter_report(self.model)
        return {"best": self.best, "final": final.to_dict(), "history": self.history,
                "parameters": {"trainable": report.trainable, "total": report.total}}

    def _log(self, record: dict[str, Any], writer: Any) -> None:
        with (self.out_dir / "log.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if writer is not None:
            for key, value in record.items():
                if key not in ("epoch", "step"):
                    writer.add_scalar(key, value, record["epoch"])

    def _tensorboard(self) -> Any:
        if not (self.config.run.tensorboard and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))
