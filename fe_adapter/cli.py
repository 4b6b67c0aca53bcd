"""The ``fe-adapter`` command: train, eval, cv and demo.

    fe-adapter train --config configs/dfew.yaml data.root=/data/DFEW optim.epochs=30
    fe-adapter eval --config runs/dfew/report/config.yaml --checkpoint runs/dfew/best.safetensors
    fe-adapter cv --config configs/dfew.yaml data.root=/data/DFEW
    fe-adapter predict clip.mp4 --checkpoint runs/dfew/best.safetensors --backbone-checkpoint fer_vit.safetensors
    fe-adapter demo

Overrides are ``section.key=value`` (values in YAML syntax). ``torchrun --nproc_per_node=N -m fe_adapter
train ...`` runs DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fe_adapter.training.config import ConfigError, load_config
from fe_adapter.training.run import run_cross_validation, run_evaluation, run_training


def _seconds(text: str) -> float:
    value = text.strip().lower().removesuffix("s")
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 2s or 0.5, got {text!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def run_prediction(args: argparse.Namespace) -> int:
    """Predict every video; a failing file gets a message and the others go on. Exit 1 if any failed."""
    from fe_adapter.predictor import PredictionError, Predictor
    from fe_adapter.timeline import write_prediction

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device, args.backbone_checkpoint, args.pretrained)
    failed = 0
    for video in args.videos:
        try:
            prediction = predictor.predict_video(video, args.window, args.stride)
        except PredictionError as error:
            print(f"{video}: error: {error}", file=sys.stderr)
            failed += 1
            continue
        paths = write_prediction(prediction, args.out)
        print(f"{video}: {prediction.top} overall ({prediction.overall[prediction.top]:.0%}), "
              f"{len(prediction.windows)} windows, {prediction.processing_fps:.1f} frames/s processed")
        for window in prediction.windows:
            print(f"  {window.start:6.2f}-{window.end:6.2f}s  {window.top:<16} "
                  f"{window.probabilities[window.top]:.0%}  faces {window.faces_found}/{window.frames}")
        print(f"  wrote {paths['json']}, {paths['csv']}, {paths['png']}")
    return 1 if failed else 0


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
    train.add_argument("--resume", action="store_true", help="continue after the last completed epoch saved in "
                       "run.out_dir/last.pt (if present); an interrupted epoch is trained again")
    evaluate = with_config("eval", "evaluate an adapter checkpoint on the test split")
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    evaluate.add_argument("--out", type=Path, help="write a report folder here")
    evaluate.add_argument("--split", choices=["train", "test"], default="test", help="which split to evaluate")
    cv = with_config("cv", "k-fold cross-validation (DFEW, MAFW)")
    cv.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    predict = commands.add_parser("predict", help="emotions over time in video files")
    predict.add_argument("videos", nargs="+", type=Path, help="video files (mp4, avi, webm, ...)")
    predict.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    predict.add_argument("--backbone-checkpoint", type=Path, help="the backbone's weights (.safetensors or .pth)")
    predict.add_argument("--pretrained", action="store_true", help="use timm's pretrained backbone weights")
    predict.add_argument("--window", type=_seconds, default=2.0, help="window length, e.g. 2s (default 2s)")
    predict.add_argument("--stride", type=_seconds, default=0.5, help="window step, e.g. 0.5s (default 0.5s)")
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="folder for JSON, CSV and PNG")
    predict.add_argument("--device", default="auto")
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
        if args.command == "predict":
            return run_prediction(args)
        config = load_config(args.config, args.overrides)
        if args.command == "train":
            run_training(config, resume=args.resume)
        elif args.command == "eval":
            run_evaluation(config, args.checkpoint, args.out, args.split)
        elif args.command == "cv":
            if config.data.dataset not in ("dfew", "mafw"):
                raise ConfigError(f"cv needs data.dataset dfew or mafw (5 folds), got {config.data.dataset!r}")
            run_cross_validation(config, args.folds)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"fe-adapter {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
