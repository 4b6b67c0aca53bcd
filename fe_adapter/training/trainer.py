"""``Trainer``: train FE-Adapter on a frozen ViT (or, with an ``ImageTask``, the image classifier it starts from),
evaluate UAR/WAR, checkpoint and resume."""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from fe_adapter import data
from fe_adapter._json import to_json
from fe_adapter.device import resolve_device
from fe_adapter.metrics import Metrics
from fe_adapter.params import parameter_report
from fe_adapter.training.config import ConfigError, TrainConfig
from fe_adapter.training.distributed import Distributed
from fe_adapter.training.evaluation import (
    Evaluation,
    autocast_dtype,
    deterministic_algorithms,
    evaluate,
)
from fe_adapter.training.recipe import cosine_with_warmup
from fe_adapter.training.resume import check_resume
from fe_adapter.training.state import load_training_state, restore_rng, save_training_state
from fe_adapter.training.task import Task, VideoTask

log = logging.getLogger("fe_adapter.train")

__all__ = ["Evaluation", "Trainer", "seed_everything"]


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed Python's, NumPy's and torch's global generators: with ``seed`` itself on rank 0 (a single process), and
    on another rank with a seed drawn from (seed, rank), so that the draws made from them (augmentation on the
    training device, mixup, dropout) differ between ranks as they do between the clips of one batch."""
    if rank:
        seed = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _with_run_settings(method: Callable) -> Callable:
    """Run a Trainer method under the run's determinism setting (``run.deterministic``)."""

    @functools.wraps(method)
    def wrapper(self: Trainer, *args, **kwargs):
        with deterministic_algorithms(self.config.run.deterministic):
            return method(self, *args, **kwargs)

    return wrapper


class Trainer:
    """Everything one training run needs, built from a ``TrainConfig`` (or the config of another ``task``).

    ``fit()`` trains for ``optim.epochs`` epochs, evaluating after each, keeping the best epoch by
    ``run.select_metric`` (on the validation split when ``data.val_fraction`` carves one, else on the test
    split) and the last one, and returns a summary. The resumable state is saved after each epoch;
    ``fit(resume=True)`` starts again after the last completed epoch (the work of an interrupted epoch is done
    again). Each epoch reseeds every random source with ``seed + epoch``, so the resumed run ends exactly as the
    uninterrupted run would have.

    ``task`` says what is trained (``fe_adapter.training.task``): FE-Adapters on clips by default
    (``VideoTask``), or the image classifier (``ImageTask``, with an ``ImageTrainConfig``).
    """

    def __init__(self, config: TrainConfig, dist: Distributed | None = None, task: Task | None = None) -> None:
        self.config = config
        self.task = task or VideoTask()
        self.dist = dist or Distributed()
        self.device = resolve_device(config.run.device, "run.device", self.dist.local_rank)
        self.out_dir = Path(config.run.out_dir)
        seed_everything(config.run.seed)

        self.model = self.task.build_model(config).to(self.device)
        self.train_set, self.val_set, self.test_set = self.task.build_datasets(config, self.model, config.run.seed)
        if self.train_set.class_names != self.test_set.class_names:
            raise ValueError(f"train and test splits name different classes: {self.train_set.class_names} vs "
                             f"{self.test_set.class_names}; set data.class_names")
        self.task.check_classes(config, self.train_set)

        shard = (self.dist.rank, self.dist.world_size) if self.dist.enabled else None
        eval_batch_size = config.data.eval_batch_size or config.data.batch_size
        seed = config.run.seed
        self.train_loader = self.task.make_loader(config, self.train_set, config.data.batch_size, True, seed, shard)
        self.val_loader = None if self.val_set is None else self.task.make_loader(
            config, self.val_set, eval_batch_size, False, seed, shard)
        self.test_loader = self.task.make_loader(config, self.test_set, eval_batch_size, False, seed, shard)
        self._check_steps()

        self.amp_dtype = autocast_dtype(config.optim.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = self.task.optimizer(config, self.model)
        # one step per group of `accumulation` consecutive batches, whatever the groups turn out to hold
        self.steps_per_epoch = math.ceil(len(self.train_loader) / config.optim.accumulation)
        self.total_steps = self.steps_per_epoch * config.optim.epochs
        self.warmup_steps = round(config.optim.warmup_epochs * self.steps_per_epoch)
        if self.warmup_steps >= self.total_steps > 1:  # the schedule would be a ramp that ends with the run
            log.warning(f"optim.warmup_epochs = {config.optim.warmup_epochs:g} spans the whole run "
                        f"({config.optim.epochs} epoch(s), {self.total_steps} steps): the learning rate rises for "
                        f"every step and never reaches optim.lr = {config.optim.lr:g} nor decays; lower "
                        "optim.warmup_epochs")
        floor = config.optim.min_lr / config.optim.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: cosine_with_warmup(step, self.warmup_steps, self.total_steps, floor))
        self.task.setup_loss(config, self.train_set, self.device)
        self.network = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type ==
                                                "cuda" else None) if self.dist.enabled else self.model)
        self.epoch, self.step = 0, 0
        self.best: dict[str, Any] = {}
        self.best_evaluation: Evaluation | None = None  # the test split at the best epoch, for predictions.csv
        self.last_evaluation: Evaluation | None = None
        self.last_val_evaluation: Evaluation | None = None
        self.history: list[dict[str, Any]] = []

    # set-up -------------------------------------------------------------------------------------
    def _check_steps(self) -> None:
        """Refuse a run whose epochs would take no optimizer step (every batch short, hence dropped)."""
        if len(self.train_loader) > 0:
            return
        clips, processes, unit = len(self.train_set), self.dist.world_size, self.task.unit
        share = clips // processes
        each = f"the {share} training {unit} each of the {processes} processes gets" if processes > 1 else \
            f"the {clips} training {unit}"
        carved = f" (data.val_fraction held out {len(self.val_set)})" if self.val_set is not None else ""
        raise ConfigError(f"data.batch_size = {self.config.data.batch_size} is more than {each}{carved}: an epoch "
                          "drops its last incomplete batch, so it would take no optimizer step; set data.batch_size "
                          f"to at most {max(1, share)}")

    @property
    def selection_split(self) -> str:
        """Where the best epoch is chosen: "val" with a validation split, else "test"."""
        return "test" if self.val_set is None else "val"

    @property
    def criterion(self) -> nn.Module:
        """The loss of a batch (the task's)."""
        return self.task.criterion

    @property
    def class_weights(self) -> torch.Tensor | None:
        """The per-class loss weights (``optim.class_weighted``), or None."""
        return self.task.class_weights

    def describe(self) -> list[str]:
        """The first lines of the log: implementation, device, dtypes, parameters, data, batches and steps."""
        report = parameter_report(self.model)
        config, unit = self.config, self.task.unit
        batch, processes, accumulation = config.data.batch_size, self.dist.world_size, config.optim.accumulation
        val = f" / {len(self.val_set)} val" if self.val_set is not None else ""
        selection = (f"best epoch chosen by {config.run.select_metric.upper()} on the val split (data.val_fraction "
                     f"= {config.data.val_fraction:g} of the training split)" if self.val_set is not None else
                     f"best epoch chosen by {config.run.select_metric.upper()} on the test split (an optimistic "
                     "estimate; data.val_fraction selects on a validation split instead)")
        dtype = getattr(config.model, "backbone_dtype", None)
        frames = f" of {config.data.num_frames} frames" if hasattr(config.data, "num_frames") else ""
        return [
            *self.task.describe(self),
            f"device: {self.device}, processes: {processes}, autocast: {self.amp_dtype}"
            + (f", backbone dtype: {dtype}" if dtype else ""),
            f"parameters: {report.trainable:,} trainable of {report.total:,} ({report.trainable_share:.2%}); "
            f"adapters {report.parts['adapters'].total:,}, head {report.parts['head'].total:,}",
            f"data: {config.data.dataset}, {len(self.train_set)} train{val} / {len(self.test_set)} test {unit}"
            f"{frames}, classes {', '.join(self.train_set.class_names)}",
            f"batches: {batch} {unit} per process x {processes} process(es) x {accumulation} accumulation = "
            f"{batch * processes * accumulation} {unit} per optimizer step; {self.steps_per_epoch} steps per epoch "
            f"({len(self.train_loader)} batches), {self.total_steps} in all, {self.warmup_steps} of warm-up",
            selection,
        ]

    # one epoch --------------------------------------------------------------------------------------
    def _seed_epoch(self, epoch: int) -> None:
        seed = self.config.run.seed + epoch
        seed_everything(seed, self.dist.rank)  # the loaders' and samplers' seeds stay the same on every rank
        for loader in (self.train_loader, self.val_loader, self.test_loader):
            if loader is None:
                continue
            loader.generator.manual_seed(seed)
            sampler = loader.sampler
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if getattr(sampler, "generator", None) is not None:
                sampler.generator.manual_seed(seed)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

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
                loss, weight = self.task.loss(self.network, batch, self.device, self._autocast)
                self.scaler.scale(loss / (nominal / weight)).backward()  # = sum of weighted clip losses / nominal
                group_weight += weight
                loss_sum += loss.item() * weight
                weight_sum += weight
                clips_seen += len(batch)
                bar.set_postfix({"loss": f"{loss.item():.3f}", "lr": f"{self.scheduler.get_last_lr()[0]:.2e}",
                                 f"{self.task.unit}_per_s": f"{clips_seen / (time.perf_counter() - start):.1f}"})
            if index == group_start + group_batches - 1:
                self._optimizer_step(group_weight, nominal)
                group_weight = 0.0
        message = skips.finish()
        if message and self.dist.is_main:
            log.warning(message)
        elapsed = time.perf_counter() - start
        loss_sum, weight_sum = self.dist.sum([loss_sum, weight_sum], self.device)
        return {"loss": loss_sum / max(weight_sum, 1e-12), "lr": self.scheduler.get_last_lr()[0],
                f"{self.task.unit}_per_s": clips_seen * self.dist.world_size / elapsed, "seconds": elapsed}

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
        self.task.after_step(self.model, self.step)

    @_with_run_settings
    def evaluate(self, loader: DataLoader | None = None, split: str = "test") -> Evaluation:
        """UAR/WAR over a whole split (default: the test split; all ranks' shares gathered; views averaged)."""
        return evaluate(self.task.eval_model(self.model), loader or self.test_loader, self.device, self.amp_dtype,
                        self.dist,
                        self.config.run.progress, self.config.data.min_readable, split)

    # the run ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What resuming needs: config, trainable weights, optimizer, schedule, scaler, progress, history, and
        the best epoch's test predictions (its predictions.csv)."""
        best = self.best_evaluation
        task_state = self.task.state_dict()
        return {
            **({"task": task_state} if task_state is not None else {}),
            "config": self.config.to_dict(),
            "model": {name: param.detach().cpu() for name, param in self.model.named_parameters()
                      if param.requires_grad},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "best_predictions": None if best is None else {"ids": best.ids, "labels": best.labels,
                                                           "logits": best.logits},
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the state") -> None:
        """Continue from ``state_dict()``'s output (the same config expected)."""
        params = {name: param for name, param in self.model.named_parameters() if param.requires_grad}
        missing = sorted(set(params) - set(state["model"]))
        if missing:
            raise ValueError(f"{source} does not match the model: missing {missing[:3]}")
        reshaped = [f"{name} {tuple(tensor.shape)} (the model's: {tuple(params[name].shape)})"
                    for name, tensor in state["model"].items() if name in params and tensor.shape != params[name].shape]
        if reshaped:
            raise ValueError(f"{source} does not match the model: {'; '.join(reshaped[:3])}")
        self.model.load_state_dict(state["model"], strict=False)
        self.task.load_state_dict(state.get("task"))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        # rescored from the stored confusion: a state saved by an older version held NaN for absent classes
        self.best = {key: Metrics.from_confusion(torch.tensor(value["confusion"]), value["class_names"]).to_dict()
                     if key in ("metrics", "val_metrics") else value for key, value in state["best"].items()}
        self.history = state["history"]
        predictions = state.get("best_predictions")
        if predictions:
            metrics = Metrics.from_predictions(predictions["logits"].argmax(1), predictions["labels"],
                                               self.model.class_names)
            self.best_evaluation = Evaluation(metrics, predictions["logits"], predictions["labels"], predictions["ids"])

    def _resume(self, state_path: Path) -> list[str]:
        """Load ``last.pt`` after checking its config against this run's; return the lines to log."""
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: {state_path} not found; nothing to resume")
        state = load_training_state(state_path)
        notices = check_resume(state["config"], self.config, state["epoch"], str(state_path))
        self.load_state_dict(state, str(state_path))
        restore_rng(state["rng"])
        stored_epochs = state["config"]["optim"]["epochs"]
        if self.config.optim.epochs > stored_epochs:
            old_total = self.steps_per_epoch * stored_epochs
            floor = self.config.optim.min_lr / self.config.optim.lr
            old_lr = self.config.optim.lr * cosine_with_warmup(self.step, self.warmup_steps, old_total, floor)
            notices.append(f"learning rate at step {self.step}: {old_lr:.3g} on the {stored_epochs}-epoch schedule, "
                           f"{self.scheduler.get_last_lr()[0]:.3g} on the {self.config.optim.epochs}-epoch one")
        return [f"resumed from epoch {self.epoch} (step {self.step}) of {state_path}", *notices]

    def _improved(self, selected: Evaluation) -> bool:
        select = self.config.run.select_metric
        if not self.best:
            return True
        best = self.best["val_metrics" if self.val_set is not None else "metrics"]
        return getattr(selected.metrics, select) > best[select]

    @_with_run_settings
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train and evaluate every epoch; return the summary that becomes metrics.json: "selection" (which
        split and metric chose the best epoch), "best" and "last" (epoch and test metrics, with "val_metrics"
        when there is a val split), "history" (one record per epoch) and "parameters".

        With ``resume``, continue from ``run.out_dir/last.pt`` (written after each epoch); its config must
        match this one (see ``fe_adapter.training.resume``).
        """
        state_path = self.out_dir / "last.pt"
        notices = self._resume(state_path) if resume else []
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for line in self.describe() + notices:
                log.info(line)
        writer = self._tensorboard()
        while self.epoch < self.config.optim.epochs:
            stats = self.train_epoch(self.epoch)
            val = self.last_val_evaluation = self.evaluate(self.val_loader, "val") if self.val_set else None
            test = self.last_evaluation = self.evaluate()
            self.epoch += 1
            record = {"epoch": self.epoch, "step": self.step, **stats, "uar": test.metrics.uar,
                      "war": test.metrics.war}
            if val is not None:
                record.update(val_uar=val.metrics.uar, val_war=val.metrics.war)
            self.history.append(record)
            improved = self._improved(val or test)
            if improved:
                self.best = {"epoch": self.epoch, "metrics": test.metrics.to_dict()}
                if val is not None:
                    self.best["val_metrics"] = val.metrics.to_dict()
                self.best_evaluation = test
            if self.dist.is_main:
                scores = f"val {val.metrics.summary()}, test {test.metrics.summary()}" if val else \
                    test.metrics.summary()
                speed = stats[f"{self.task.unit}_per_s"]
                log.info(f"epoch {self.epoch}: loss {stats['loss']:.4f}, {scores}, {speed:.1f} {self.task.unit}/s")
                self._log(record, writer)
                if improved:
                    self.task.save(self.task.eval_model(self.model), self.out_dir / "best.safetensors")
                self.task.save(self.task.eval_model(self.model), self.out_dir / "last.safetensors")
                save_training_state(state_path, self.state_dict())
            self.dist.barrier()
        if writer is not None:
            writer.close()
        if self.last_evaluation is None:  # resumed a finished run
            self.last_evaluation = self.evaluate()
            if self.val_loader is not None:
                self.last_val_evaluation = self.evaluate(self.val_loader, "val")
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """The run's results so far (see ``fit``)."""
        report = parameter_report(self.model)
        last = {"epoch": self.epoch, "metrics": self.last_evaluation.metrics.to_dict()}
        if self.last_val_evaluation is not None:
            last["val_metrics"] = self.last_val_evaluation.metrics.to_dict()
        split, metric = self.selection_split, self.config.run.select_metric
        note = ("the best epoch was chosen on the test split itself, so best.metrics is an optimistic estimate; "
                "last.metrics is unselected" if split == "test" else
                "the best epoch was chosen on the val split, carved from the training split; best.metrics are "
                "its test scores")
        return {"selection": {"split": split, "metric": metric, "note": note}, "best": self.best, "last": last,
                "history": self.history, "parameters": {"trainable": report.trainable, "total": report.total}}

    def _log(self, record: dict[str, Any], writer: Any) -> None:
        with (self.out_dir / "log.jsonl").open("a") as handle:
            handle.write(to_json(record, indent=None) + "\n")
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
