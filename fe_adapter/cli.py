"""The ``fe-adapter`` command: train, eval, cv and demo.

    fe-adapter train --config configs/dfew.yaml data.root=/data/DFEW optim.epochs=30
    fe-adapter eval --config runs/dfew/report/config.yaml --checkpoint runs/dfew/best.safetensors
    fe-adapter cv --config configs/dfew.yaml data.root=/data/DFEW
    fe-adapter predict clip.mp4 --checkpoint runs/dfew/best.safetensors --backbone-checkpoint fer_vit.safetensors
    fe-adapter demo --seed 1

Overrides are ``section.key=value`` (values in YAML syntax). ``torchrun --nproc_per_node=N -m fe_adapter
train ...`` runs DistributedDataParallel.

Exit status: 0 done; 1 some videos could not be predicted (predict; the others were); 2 a bad argument,
setting, file or folder (one line on stderr names it: e.g. a corrupt checkpoint), or predict outputs that exist
without --overwrite; 3 (predict) every video was predicted, but in some no window had a face in enough frames,
so they have no overall result; 130 interrupted (Ctrl-C; the line says how to resume).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path

from fe_adapter.checkpoint import CheckpointError
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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # refused below
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in 0..1 like 0.5, got {text!r}")
    return value


def run_prediction(args: argparse.Namespace) -> int:
    """Predict every video; a failing file gets a message and the others go on. Exit 1 if any failed, else 3 if
    some video had no window with a face (no overall result), else 0.

    Output names are checked before any work: an existing output is an error unless ``--overwrite``.
    """
    from fe_adapter.predict.predictor import PredictionError, Predictor
    from fe_adapter.predict.results import MIN_FACE_FRACTION, prediction_summary
    from fe_adapter.predict.timeline import existing_outputs, output_names, write_prediction

    names = output_names(args.videos)
    existing = [] if args.overwrite else existing_outputs(args.out, names)
    if existing:
        shown = ", ".join(map(str, existing[:3])) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise FileExistsError(f"outputs already exist: {shown}; pass --overwrite to replace them or choose "
                              "another --out")
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device, args.backbone_checkpoint, args.pretrained)
    fraction = MIN_FACE_FRACTION if args.min_face_fraction is None else args.min_face_fraction
    failed = faceless = 0
    for video, name in zip(args.videos, names, strict=True):
        try:
            prediction = predictor.predict_video(video, args.window, args.stride, min_face_fraction=fraction)
        except PredictionError as error:
            print(f"{video}: error: {error}", file=sys.stderr)
            failed += 1
            continue
        paths = write_prediction(prediction, args.out, name, overwrite=args.overwrite)
        faceless += prediction.top is None
        print(prediction_summary(prediction, video))
        print(f"  wrote {paths['json']}, {paths['csv']}, {paths['png']}")
    return 1 if failed else 3 if faceless else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fe-adapter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", type=Path, help="YAML config (default: the built-in defaults)")
        command.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
        return command

    def with_run_folder(command: argparse.ArgumentParser, what: str) -> None:
        command.add_argument("--resume", action="store_true", help=f"continue {what} in run.out_dir after the last "
                             "completed epoch (saved in last.pt; an interrupted epoch is trained again)")
        command.add_argument("--overwrite", action="store_true", help=f"replace {what} in run.out_dir (a new run "
                             "refuses a folder that holds files)")

    train = with_config("train", "train adapters (and head) on a frozen ViT")
    with_run_folder(train, "the run")
    evaluate = with_config("eval", "evaluate an adapter checkpoint on the test split")
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    evaluate.add_argument("--out", type=Path, help="write a report folder here")
    evaluate.add_argument("--overwrite", action="store_true", help="replace the report in --out")
    evaluate.add_argument("--split", choices=["train", "val", "test"], default="test",
                          help="which split to evaluate (val: the part of the training split data.val_fraction "
                          "holds out; train: the rest)")
    cv = with_config("cv", "k-fold cross-validation (DFEW, MAFW)")
    cv.add_argument("--folds", nargs="+", metavar="K", help="folds to train, e.g. --folds 1 2 or --folds 1,2 "
                    "(default: all five)")
    with_run_folder(cv, "the folds")
    predict = commands.add_parser("predict", help="emotions over time in video files")
    predict.add_argument("videos", nargs="+", type=Path, help="video files (mp4, avi, webm, ...)")
    predict.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    predict.add_argument("--backbone-checkpoint", type=Path, help="the backbone's weights (.safetensors or .pth)")
    predict.add_argument("--pretrained", action="store_true", help="use timm's pretrained backbone weights")
    predict.add_argument("--window", type=_seconds, default=2.0, help="window length, e.g. 2s (default 2s)")
    predict.add_argument("--stride", type=_seconds, default=0.5, help="window step, e.g. 0.5s (default 0.5s)")
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="folder for JSON, CSV and PNG")
    predict.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    predict.add_argument("--min-face-fraction", type=_fraction, metavar="F",
                         help="a window whose face is detected in fewer than this share of its frames is marked "
                         "no-face and left out of the overall result (default 0.5)")
    predict.add_argument("--device", default="auto")
    demo = commands.add_parser("demo", help="the synthetic demo: adapters vs the frame-averaging baseline")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="report folder")
    demo.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests)")
    demo.add_argument("--seed", type=int, default=0, help="seeds the synthetic data and both trainings (default 0)")
    return parser


def _folds(values: list[str] | None) -> tuple[list[int], list[str]]:
    """``--folds`` values as fold numbers ("1 2" or "1,2"), and the ``section.key=value`` overrides that
    argparse gave it because they came after it."""
    if values is None:
        return [1, 2, 3, 4, 5], []
    folds, overrides = [], []
    for value in values:
        if "=" in value:
            overrides.append(value)
            continue
        for part in filter(None, value.split(",")):
            if not part.strip().isdigit():
                raise ConfigError(f"--folds takes fold numbers 1..5, e.g. --folds 1 2 or --folds 1,2; got {value!r}")
            folds.append(int(part))
    return folds, overrides


def _interrupted(args: argparse.Namespace, argv: list[str], out_dir: Path | None) -> str:
    """The line for Ctrl-C: what was kept and the command that continues."""
    if args.command not in ("train", "cv") or out_dir is None:
        return "interrupted"
    resumable = (out_dir / "last.pt").is_file() if args.command == "train" else any(out_dir.glob("fold_*/last.pt"))
    if not resumable:
        return f"interrupted before an epoch was completed in {out_dir}: nothing to resume; start again with " \
            "--overwrite"
    rest = [arg for arg in argv[argv.index(args.command) + 1:] if arg not in ("--resume", "--overwrite")]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = f"torchrun --nproc_per_node={world} -m fe_adapter" if world > 1 else "fe-adapter"
    return (f"interrupted; the completed epochs are saved in {out_dir}: continue with "
            f"{launcher} {args.command} --resume {shlex.join(rest)}".rstrip())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    out_dir = None
    try:
        if args.command == "demo":
            from fe_adapter.demo import run_demo

            run_demo(args.out, quick=args.quick, seed=args.seed)
            return 0
        if args.command == "predict":
            return run_prediction(args)
        folds, more_overrides = _folds(args.folds) if args.command == "cv" else ([], [])
        config = load_config(args.config, args.overrides + more_overrides)
        out_dir = Path(config.run.out_dir)
        if args.command == "train":
            run_training(config, resume=args.resume, overwrite=args.overwrite)
        elif args.command == "eval":
            run_evaluation(config, args.checkpoint, args.out, args.split, overwrite=args.overwrite)
        elif args.command == "cv":
            run_cross_validation(config, folds, resume=args.resume, overwrite=args.overwrite)
    except (ConfigError, CheckpointError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"fe-adapter {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"fe-adapter {args.command}: {_interrupted(args, argv, out_dir)}", file=sys.stderr)
        return 130
    return 0
