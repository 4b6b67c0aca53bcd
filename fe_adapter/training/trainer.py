"""``Trainer``: train FE-Adapter on a frozen ViT, evaluate UAR/WAR, checkpoint and resume."""

from __future__ import annotations

import json
import logging
import math
import random
import time
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
from fe_adapter.training.state import load_training_state, save_training_state

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


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """LR multiplier: linear warm-up from 1/warmup_steps to 1, then cosine decay to ``floor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """Everything one training run needs, built from a ``TrainConfig``.

    ``fit()`` trains for ``optim.epochs`` epochs, evaluating after each, keeping the best epoch by
    ``run.select_metric`` and the last one, and returns a summary. Each epoch reseeds every random source
    with ``seed + epoch``, so a run resumed from its last checkpoint (``fit(resume=True)``) continues
    exactly as the uninterrupted run would have.
    """

    def __init__(self, config: TrainConfig, dist: Distributed | None = None) -> None:
        self.config = config
        self.dist = dist or Distributed()
        self.device = _device(config.run.device, self.dist)
        self.out_dir = Path(config.run.out_dir)
        if config.run.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
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
        steps_per_epoch = math.ceil(len(self.train_loader) / config.optim.accumulation)
        self.total_steps = steps_per_epoch * config.optim.epochs
        warmup = round(config.optim.warmup_epochs * steps_per_epoch)
        floor = config.optim.min_lr / config.optim.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: cosine_with_warmup(step, warmup, self.total_steps, floor))
        self.criterion = nn.CrossEntropyLoss(weight=self._class_weights(), label_smoothing=config.optim.label_smoothing)
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

    def _class_weights(self) -> torch.Tensor | None:
        if not self.config.optim.class_weighted:
            return None
        counts = torch.tensor(self.train_set.class_counts(), dtype=torch.float32).clamp(min=1)
        weights = counts.sum() / (len(counts) * counts)
        return weights.to(self.device)

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

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._seed_epoch(epoch)
        self.network.train()
        skips = data.SkipReport(self.config.data.min_readable)
        accumulation, batches_per_epoch = self.config.optim.accumulation, len(self.train_loader)
        total_loss, batches, clips_seen, start = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.config.optim.epochs}", leave=False,
                   disable=not (self.config.run.progress and self.dist.is_main), dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(bar):
            skips.update(batch)
            if self.dist.any(len(batch) == 0, self.device):  # every rank skips together: no rank waits forever
                continue
            clips, labels = batch.clips.to(self.device, non_blocking=True), batch.labels.to(self.device)
            # the last group of an epoch may be short: average over the batches it really has
            group = min(accumulation, batches_per_epoch - index // accumulation * accumulation)
            with self._autocast():
                loss = self.criterion(self.network(clips).float(), labels)
            self.scaler.scale(loss / group).backward()
            if (index + 1) % accumulation == 0 or index + 1 == batches_per_epoch:
                self._optimizer_step()
            total_loss += loss.item()
            batches += 1
            clips_seen += len(batch)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                            clips_per_s=f"{clips_seen / (time.perf_counter() - start):.1f}")
        message = skips.finish()
        if message and self.dist.is_main:
            log.warning(message)
        elapsed = time.perf_counter() - start
        return {"loss": total_loss / max(1, batches), "lr": self.scheduler.get_last_lr()[0],
                "clips_per_s": clips_seen * self.dist.world_size / elapsed, "seconds": elapsed}

    def _optimizer_step(self) -> None:
        if self.config.optim.clip_grad:
            self.scaler.unscale_(self.optimizer)
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(trainable, self.config.optim.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    @torch.no_grad()
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
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train and evaluate every epoch; return {"best": ..., "final": ..., "history": [...]}."""
        state_path = self.out_dir / "last.pt"
        if resume and state_path.is_file():
            load_training_state(state_path, self)
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
                save_training_state(state_path, self)
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
