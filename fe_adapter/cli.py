"""The ``fe-adapter`` command: train, eval, cv and demo.

    fe-adapter train --config configs/dfew.yaml data.root=/data/DFEW optim.epochs=30
    fe-adapter eval --config runs/dfew/report/config.yaml --checkpoint runs/dfew/best.safetensors
    fe-adapter cv --config configs/dfew.yaml data.root=/data/DFEW
    fe-adapter demo

Overrides are ``section.key=value`` (values in YAML syntax). ``torchrun --nproc_per_node=N -m fe_adapter
train ...`` runs DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import sys
from pathlib import Path

from fe_adapter.training.config import ConfigError, TrainConfig, load_config

log = logging.getLogger("fe_adapter")


def _setup_logging(out_dir: Path | None, main_process: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_dir is not None and main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out_dir / "train.log"))
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(message)s",
                        handlers=handlers, force=True)


def run_training(config: TrainConfig, resume: bool = False) -> dict:
    """Train (under torchrun: one process of a DDP job), write the report on rank 0, return the summary."""
    from fe_adapter.training.distributed import init_distributed, shutdown_distributed
    from fe_adapter.training.report import write_report
    from fe_adapter.training.trainer import Trainer

    dist = init_distributed(config.run.device)
    _setup_logging(Path(config.run.out_dir), dist.is_main)
    try:
        trainer = Trainer(config, dist)
        summary = trainer.fit(resume=resume)
        if dist.is_main:
            folder = write_report(Path(config.run.out_dir) / "report", summary, config.to_dict())
            best = summary["best"]
            log.info(f"best epoch {best['epoch']}: UAR {best['metrics']['uar']:.2%}, WAR {best['metrics']['war']:.2%}"
                     f"; report in {folder}")
        return summary
    finally:
        shutdown_distributed()


def run_evaluation(config: TrainConfig, checkpoint: Path, out: Path | None) -> dict:
    """Evaluate an adapter checkpoint on the configured test split; the model settings come from the file."""
    from fe_adapter.checkpoint import load_adapters, read_adapter_config
    from fe_adapter.training.report import write_report
    from fe_adapter.training.trainer import Trainer

    saved = read_adapter_config(checkpoint)
    adapter = saved["adapter"]
    model = config.model
    model.backbone, model.backbone_kwargs = saved["backbone"], saved.get("backbone_kwargs", {})
    model.bottleneck, model.kernel_size = adapter["bottleneck"], adapter["kernel_size"]
    model.dilation, model.placement, model.activation = adapter["dilation"], adapter["placement"], adapter["activation"]
    config.optim.epochs = 1
    _setup_logging(None, True)
    trainer = Trainer(config)
    load_adapters(trainer.model, checkpoint)
    evaluation = trainer.evaluate()
    summary = {"checkpoint": str(checkpoint), "final": evaluation.metrics.to_dict()}
    log.info(f"{checkpoint}: {evaluation.metrics.summary()} on {len(evaluation.ids)} clips")
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fe-adapter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", type=Path, help="YAML config (default: the built-in defaults)")
        command.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
        return command

    train = with_config("train", "train adapters (and head) on a frozen ViT")
    train.add_argument("--resume", action="store_true", help="continue from run.out_dir/last.pt if present")
    evaluate = with_config("eval", "evaluate an adapter checkpoint on the test split")
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    evaluate.add_argument("--out", type=Path, help="write a report folder here")
    cv = with_config("cv", "k-fold cross-validation (DFEW, MAFW)")
    cv.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    demo = commands.add_parser("demo", help="the synthetic demo: adapters vs the frame-averaging baseline")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="report folder")
    demo.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from fe_adapter.demo import run_demo

            run_demo(args.out, quick=args.quick)
            return 0
        config = load_config(args.config, args.overrides)
        if args.command == "train":
            run_training(config, resume=args.resume)
        elif args.command == "eval":
            run_evaluation(config, args.checkpoint, args.out)
        elif args.command == "cv":
            if config.data.dataset not in ("dfew", "mafw"):
                raise ConfigError(f"cv needs data.dataset dfew or mafw (5 folds), got {config.data.dataset!r}")
            run_cross_validation(config, args.folds)
    except (ConfigError, FileNotFoundError) as error:
        print(f"fe-adapter {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
