"""The runs behind the CLI, callable from Python: train (also one DDP process), evaluate, cross-validate.

``fe_adapter.cli`` parses arguments and calls these; the demo calls them too, so every path trains with
the same code.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from fe_adapter.training.config import ConfigError, TrainConfig

log = logging.getLogger("fe_adapter")


def setup_logging(out_dir: Path | None, main_process: bool) -> None:
    """Log to stderr (rank 0 at INFO, other ranks warnings only) and, on rank 0, to out_dir/train.log."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_dir is not None and main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out_dir / "train.log"))
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(message)s",
                        handlers=handlers, force=True)


@contextlib.contextmanager
def _logging_for_run(out_dir: Path | None, main_process: bool) -> Iterator[None]:
    """``setup_logging`` while a run lasts: then its train.log is closed and the logging set-up that was
    there before (a caller's handlers and level) comes back, so runs in one process do not log into each
    other's folders."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    for handler in saved_handlers:
        root.removeHandler(handler)  # set aside, not closed: they come back afterwards
    setup_logging(out_dir, main_process)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def run_training(config: TrainConfig, resume: bool = False) -> dict:
    """Train (under torchrun: one process of a DDP job), write the report on rank 0, return the summary."""
    from fe_adapter.training.distributed import init_distributed, shutdown_distributed
    from fe_adapter.training.report import write_report
    from fe_adapter.training.trainer import Trainer

    dist = init_distributed(config.run.device)
    try:
        with _logging_for_run(Path(config.run.out_dir), dist.is_main):
            trainer = Trainer(config, dist)
            summary = trainer.fit(resume=resume)
            if dist.is_main:
                folder = write_report(Path(config.run.out_dir) / "report", summary, config.to_dict())
                best = summary["best"]
                log.info(f"best epoch {best['epoch']}: UAR {best['metrics']['uar']:.2%}, "
                         f"WAR {best['metrics']['war']:.2%}; report in {folder}")
        return summary
    finally:
        shutdown_distributed()


def run_evaluation(config: TrainConfig, checkpoint: Path, out: Path | None, split: str = "test") -> dict:
    """Evaluate an adapter checkpoint on a split of the configured data; the model settings come from the file."""
    with _logging_for_run(None, True):
        return _evaluate(config, checkpoint, out, split)


def _evaluate(config: TrainConfig, checkpoint: Path, out: Path | None, split: str) -> dict:
    from fe_adapter import data
    from fe_adapter.checkpoint import load_adapters, read_adapter_config
    from fe_adapter.training.builders import build_dataset
    from fe_adapter.training.report import write_report
    from fe_adapter.training.trainer import Trainer

    saved = read_adapter_config(checkpoint)
    adapter = saved["adapter"]
    model = config.model
    if not (model.checkpoint or model.pretrained):
        raise ConfigError(f"{checkpoint} holds adapters and head only: set model.checkpoint (the backbone's "
                          "weights) or model.pretrained=true")
    if config.data.num_frames != adapter["num_frames"]:
        log.info(f"evaluating with data.num_frames = {config.data.num_frames} (trained with {adapter['num_frames']})")
    model.backbone, model.backbone_kwargs = saved["backbone"], saved.get("backbone_kwargs", {})
    model.bottleneck, model.kernel_size = adapter["bottleneck"], adapter["kernel_size"]
    model.dilation, model.placement, model.activation = adapter["dilation"], adapter["placement"], adapter["activation"]
    config.optim.epochs = 1
    trainer = Trainer(config)
    load_adapters(trainer.model, checkpoint)
    loader = trainer.test_loader
    if split != "test":
        dataset = build_dataset(config.data, data.normalization_for(trainer.model), split, train=False)
        loader = data.make_loader(dataset, config.data.eval_batch_size or config.data.batch_size, train=False,
                                  num_workers=config.data.num_workers)
    evaluation = trainer.evaluate(loader)
    summary = {"checkpoint": str(checkpoint), "split": split, "final": evaluation.metrics.to_dict()}
    log.info(f"{checkpoint}: {evaluation.metrics.summary()} on {len(evaluation.ids)} {split} clips")
    if out is not None:
        write_report(out, summary, config.to_dict())
        log.info(f"report in {out}")
    return summary


def run_cross_validation(config: TrainConfig, folds: list[int]) -> dict:
    """Train one run per fold (DFEW, MAFW protocol) and report per-fold and mean UAR/WAR."""
    root = Path(config.run.out_dir)
    results = {}
    for fold in folds:
        fold_config = copy.deepcopy(config)
        fold_config.data.fold = fold
        fold_config.run.out_dir = str(root / f"fold_{fold}")
        best = run_training(fold_config)["best"]["metrics"]
        results[fold] = {"uar": best["uar"], "war": best["war"]}
    summary = {
        "folds": results,
        "mean": {key: statistics.fmean(r[key] for r in results.values()) for key in ("uar", "war")},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "cv.json").write_text(json.dumps(summary, indent=2))
    for fold, result in results.items():
        print(f"fold {fold}: UAR {result['uar']:.2%}  WAR {result['war']:.2%}")
    print(f"mean  : UAR {summary['mean']['uar']:.2%}  WAR {summary['mean']['war']:.2%}")
    return summary
