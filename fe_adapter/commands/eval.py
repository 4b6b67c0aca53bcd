"""``fe-adapter eval``: evaluate an adapter checkpoint on one split of the configured data."""

from __future__ import annotations

import argparse
from pathlib import Path

from fe_adapter._io import require_file
from fe_adapter.commands._config import add_config_arguments, read_checked
from fe_adapter.commands._start_up import imports
from fe_adapter.training.folder import check_report_folder

HELP = "evaluate an adapter checkpoint on the test split"
EXAMPLE = ("fe-adapter eval --config runs/dfew/report/config.yaml --checkpoint runs/dfew/best.safetensors "
           "--out eval/")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, required=True, help="adapter checkpoint (.safetensors)")
    parser.add_argument("--out", type=Path, help="write a report folder here")
    parser.add_argument("--overwrite", action="store_true", help="replace the report in --out")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test",
                        help="which split to evaluate (val: the part of the training split data.val_fraction "
                        "holds out; train: the rest)")


def run(args: argparse.Namespace) -> int:
    values, _ = read_checked(args.config, args.overrides)
    require_file(args.checkpoint, "adapter checkpoint")
    if args.out is not None:
        check_report_folder(args.out, args.overwrite)

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.training.config import config_from_dict
        from fe_adapter.training.run import run_evaluation

    run_evaluation(config_from_dict(values), args.checkpoint, args.out, args.split, overwrite=args.overwrite)
    return 0
