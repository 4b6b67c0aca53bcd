"""The runs behind the CLI, callable from Python: train (also one DDP process), evaluate, cross-validate.

The commands (``fe_adapter.commands``) parse arguments and call these; the demo calls them too, so every path
trains with the same code.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import statistics
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fe_adapter.training.config import ConfigError, ModelConfig, TrainConfig
from fe_adapter.training.folder import check_cv_folder, check_report_folder, check_run_folder, clear_outputs

log = logging.getLogger("fe_adapter")

#: What cross-validation writes into run.out_dir besides one run folder per fold.
CV_OUTPUTS = ("cv.json", "cv.log")


def setup_logging(out_dir: Path | None, main_process: bool, filename: str = "train.log", mode: str = "a") -> None:
    """Log to stderr (rank 0 at INFO, other ranks warnings only) and, on rank 0, to out_dir/``filename``
    (appended to, or replaced with ``mode`` "w")."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_dir is not None and main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out_dir / filename, mode=mode))
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(message)s",
                        handlers=handlers, force=True)


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
    """``warnings.showwarning`` while a run lasts: warnings (an unreadable clip, clips missing from a split)
    go to the run's log, train.log included; loader processes started by fork inherit it."""
    logging.getLogger("py.warnings").warning(f"warning: {message}")


@contextlib.contextmanager
def _logging_for_run(out_dir: Path | None, main_process: bool, filename: str = "train.log",
                     mode: str = "a") -> Iterator[None]:
    """``setup_logging`` while a run lasts, with warnings logged too: then its log file is closed and the
    logging set-up that was there before (a caller's handlers and level, ``warnings.showwarning``) comes back,
    so runs in one process do not log into each other's folders."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_showwarning = root.handlers[:], root.level, warnings.showwarning
    for handler in saved_handlers:
        root.removeHandler(handler)  # set aside, not closed: they come back afterwards
    setup_logging(out_dir, main_process, filename, mode)
    warnings.showwarning = _log_warning
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def _scores(result: dict[str, Any]) -> str:
    from fe_adapter.metrics import uar_note

    metrics = result["metrics"]
    return f"UAR {metrics['uar']:.2%}{uar_note(metrics)}, WAR {metrics['war']:.2%}"


def run_training(config: TrainConfig, resume: bool = False, overwrite: bool = False, task: Any = None) -> dict:
    """Train (under torchrun: one process of a DDP job), write the report on rank 0, return the summary.

    ``run.out_dir`` must be empty or absent, unless ``resume`` (continue the run whose ``last.pt`` it holds)
    or ``overwrite`` (remove the previous run's files first; other files stay). ``task``: what is trained
    (``fe_adapter.training.task``; default FE-Adapters on clips).
    """
    from fe_adapter.training.distributed import init_distributed, shutdown_distributed
    from fe_adapter.training.report import write_report
    from fe_adapter.training.trainer import Trainer

    out_dir = Path(config.run.out_dir)
    dist = init_distributed(config.run.device)
    try:
        check_run_folder(out_dir, resume, overwrite)
        dist.barrier()  # every rank has looked at the folder before rank 0 writes into it
        removed = clear_outputs(out_dir) if overwrite and dist.is_main else []
        with _logging_for_run(out_dir, dist.is_main, mode="a" if resume else "w"):
            if removed:
                log.info(f"--overwrite: removed the previous run's {', '.join(removed)} from {out_dir}")
            trainer = Trainer(config, dist, task)
            summary = trainer.fit(resume=resume)
            if dist.is_main:
                predictions = {"predictions.csv": trainer.best_evaluation,
                               "predictions_last.csv": trainer.last_evaluation}
                folder = write_report(out_dir / "report", summary, config.to_dict(),
                                      {name: found for name, found in predictions.items() if found is not None})
                best, last, selection = summary["best"], summary["last"], summary["selection"]
                log.info(f"best epoch {best['epoch']} (by {selection['metric'].upper()} on the {selection['split']} "
                         f"split): test {_scores(best)}; last epoch {last['epoch']}: test {_scores(last)}; "
                         f"report in {folder}")
        return summary
    finally:
        shutdown_distributed()


def pretrain_image(config: Any, resume: bool = False, overwrite: bool = False) -> dict:
    """Train an image emotion classifier (``fe-adapter pretrain-image``) with the Trainer of video training; return
    the summary (as ``metrics.json``). ``config``: an ``ImageTrainConfig``, a dict of its sections or a YAML file.

    ``run.out_dir`` receives ``best.safetensors`` and ``last.safetensors`` (image models: the weights under timm's
    names with class names, input size, mean and std as metadata; ``fe-adapter train model.checkpoint=FILE``
    loads them), ``last.pt``, the logs and ``report/``, as a video run. The folder rules are those of
    ``run_training``. docs/pretrain.md describes the recipe.
    """
    from fe_adapter.training.image_config import ImageTrainConfig, image_config_from_dict, load_image_config
    from fe_adapter.training.image_task import ImageTask

    if isinstance(config, (str, Path)):
        config = load_image_config(config)
    elif isinstance(config, dict):
        config = image_config_from_dict(config)
    elif not isinstance(config, ImageTrainConfig):
        raise TypeError(f"config must be an ImageTrainConfig, a dict of its sections or a YAML file, got "
                        f"{type(config).__name__}")
    return run_training(config, resume, overwrite, ImageTask())


def run_evaluation(config: TrainConfig, checkpoint: Path, out: Path | None, split: str = "test",
                   overwrite: bool = False) -> dict:
    """Evaluate an adapter checkpoint on one split ("train", "val" or "test") of the configured data; the model
    settings and class names come from the file, and no other split is read. A report goes to ``out`` (which
    must be empty or absent unless ``overwrite``)."""
    if out is not None:
        check_report_folder(Path(out), overwrite)
    with _logging_for_run(None, True):
        return _evaluate(config, Path(checkpoint), out, split, overwrite)


def _evaluate(config: TrainConfig, checkpoint: Path, out: Path | None, split: str, overwrite: bool) -> dict:
    from fe_adapter import data
    from fe_adapter.checkpoint import load_model, read_adapter_config
    from fe_adapter.device import resolve_device
    from fe_adapter.training.builders import build_dataset, cast_frozen_weights
    from fe_adapter.training.evaluation import autocast_dtype, deterministic_algorithms, evaluate
    from fe_adapter.training.folder import REPORT_OUTPUTS
    from fe_adapter.training.report import write_report

    saved = read_adapter_config(checkpoint)
    model = config.model
    if not (model.checkpoint or model.pretrained):
        random = (" (a model trained with model.random_backbone=true cannot be evaluated: its random backbone was "
                  "not saved)" if model.random_backbone else "")
        raise ConfigError(f"{checkpoint} holds adapters and head only: set model.checkpoint (the backbone's "
                          f"weights) or model.pretrained=true{random}")
    if config.data.num_frames != saved["adapter"]["num_frames"]:
        log.warning(f"evaluating with data.num_frames = {config.data.num_frames}, but {checkpoint} was trained with "
                    f"{saved['adapter']['num_frames']}: the scores differ from the training run's")
    class_names = tuple(saved["class_names"])
    device = resolve_device(config.run.device, "run.device")
    network = load_model(checkpoint, model.checkpoint, model.pretrained, model.impl, config.data.num_frames)
    cast_frozen_weights(network, model.backbone_dtype)
    network.to(device)
    _record_checkpoint_model(model, saved)
    normalization = data.normalization_for(network)
    if config.data.img_size:
        normalization = data.Normalization(config.data.img_size, normalization.mean, normalization.std)
    dataset = build_dataset(config.data, normalization, split, train=False, seed=config.run.seed,
                            class_names=class_names)
    if tuple(dataset.class_names) != class_names:
        raise ValueError(f"{checkpoint} was trained on the classes {', '.join(class_names)}, the {split} split "
                         f"names {', '.join(dataset.class_names)}")
    loader = data.make_loader(dataset, config.data.eval_batch_size or config.data.batch_size, train=False,
                              num_workers=config.data.num_workers, seed=config.run.seed)
    with deterministic_algorithms(config.run.deterministic):
        evaluation = evaluate(network, loader, device, autocast_dtype(config.optim.amp, device),
                              progress=config.run.progress, min_readable=config.data.min_readable, split=split)
    summary = {"checkpoint": str(checkpoint), "split": split, "clips": len(evaluation.ids),
               "metrics": evaluation.metrics.to_dict()}
    log.info(f"{checkpoint}: {evaluation.metrics.summary()} on {len(evaluation.ids)} {split} clips")
    if out is not None:
        if overwrite:
            clear_outputs(Path(out), REPORT_OUTPUTS)
        write_report(out, summary, config.to_dict(), {"predictions.csv": evaluation})
        log.info(f"report in {out}")
    return summary


def _record_checkpoint_model(model: ModelConfig, saved: dict) -> None:
    """Put the checkpoint's model settings into ``model``, so that an evaluation's config.yaml names the model
    evaluated rather than the config file's."""
    adapter, normalization = saved["adapter"], saved.get("input", {})
    model.backbone, model.backbone_kwargs = saved["backbone"], saved.get("backbone_kwargs", {})
    model.mean, model.std = normalization.get("mean"), normalization.get("std")
    model.bottleneck, model.kernel_size = adapter["bottleneck"], adapter["kernel_size"]
    model.dilation, model.placement, model.activation = adapter["dilation"], adapter["placement"], adapter["activation"]


def check_folds(folds: list[int]) -> list[int]:
    """The folds to train, checked before any trains: each one of 1..5, none twice."""
    from fe_adapter.data.sources import FOLDS

    if not folds:
        raise ConfigError("--folds: give at least one fold, e.g. --folds 1,2,3,4,5")
    unknown = [fold for fold in folds if fold not in FOLDS]
    if unknown:
        raise ConfigError(f"--folds: fold {unknown[0]} does not exist; folds are {', '.join(map(str, FOLDS))}")
    repeated = sorted({fold for fold in folds if folds.count(fold) > 1})
    if repeated:
        raise ConfigError(f"--folds: fold {repeated[0]} is given twice")
    return list(folds)


def run_cross_validation(config: TrainConfig, folds: list[int], resume: bool = False,
                         overwrite: bool = False) -> dict:
    """Train one run per fold (DFEW, MAFW protocol) into ``run.out_dir/fold_K`` and report per-fold and mean
    UAR/WAR of the best and of the last epoch in ``run.out_dir/cv.json``.

    Everything that can be checked is checked before the first fold trains: the folds, every fold's split
    files and the folder. ``resume`` continues each fold that has a ``last.pt`` and starts the others afresh;
    ``overwrite`` replaces a previous cross-validation's files.
    """
    from fe_adapter._json import write_json
    from fe_adapter.data.registry import FORMATS, formats
    from fe_adapter.metrics import uar_note
    from fe_adapter.training.builders import check_training_classes, clip_list

    with_folds = [name for name in formats("video") if "fold" in FORMATS[name].options()]
    if config.data.dataset not in with_folds:
        raise ConfigError(f"cv needs data.dataset {' or '.join(with_folds)} (5 folds), got {config.data.dataset!r}")
    folds = check_folds(folds)
    root = Path(config.run.out_dir)
    fold_configs = {}
    for fold in folds:
        fold_config = copy.deepcopy(config)
        fold_config.data.fold = fold
        fold_config.run.out_dir = str(root / f"fold_{fold}")
        for split in ("train", "test"):  # a missing or malformed split file stops cv before any training
            clips = clip_list(fold_config.data, split)
            if split == "train" and config.data.empty_classes == "error":
                check_training_classes(clips)  # so does a fold without training clips of some class
        fold_configs[fold] = fold_config
    check_cv_folder(root, folds, resume, overwrite)
    main = int(os.environ.get("RANK", "0")) == 0
    if overwrite and main:
        clear_outputs(root, CV_OUTPUTS)
    results: dict[int, dict[str, Any]] = {}
    with _logging_for_run(root, main, "cv.log", mode="a" if resume else "w"):
        for number, fold in enumerate(folds, start=1):
            fold_dir = Path(fold_configs[fold].run.out_dir)
            fold_resume = resume and (fold_dir / "last.pt").is_file()
            log.info(f"fold {fold} ({number}/{len(folds)}): {'resuming' if fold_resume else 'training'} in {fold_dir}")
            summary = run_training(fold_configs[fold], resume=fold_resume, overwrite=overwrite or resume and
                                   not fold_resume)
            results[fold] = {which: {"epoch": summary[which]["epoch"],
                                     **{key: summary[which]["metrics"][key] for key in
                                        ("uar", "war", "uar_classes", "absent_classes")}}
                             for which in ("best", "last")}
            selection = summary["selection"]
        mean = {which: {key: statistics.fmean(result[which][key] for result in results.values())
                        for key in ("uar", "war")} for which in ("best", "last")}
        summary = {"selection": selection, "folds": results, "mean": mean}
        if main:
            root.mkdir(parents=True, exist_ok=True)
            write_json(root / "cv.json", summary)
            for fold, result in results.items():
                print(f"fold {fold}: best epoch {result['best']['epoch']:>3}: UAR {result['best']['uar']:.2%}  "
                      f"WAR {result['best']['war']:.2%} | last epoch {result['last']['epoch']:>3}: UAR "
                      f"{result['last']['uar']:.2%}  WAR {result['last']['war']:.2%}{uar_note(result['last'])}")
            print(f"mean  : best: UAR {mean['best']['uar']:.2%}  WAR {mean['best']['war']:.2%} | last: UAR "
                  f"{mean['last']['uar']:.2%}  WAR {mean['last']['war']:.2%}")
            print(f"best epochs chosen by {selection['metric'].upper()} on the {selection['split']} split"
                  + (" (an optimistic estimate: the test split chose them)" if selection["split"] == "test" else ""))
    return summary
