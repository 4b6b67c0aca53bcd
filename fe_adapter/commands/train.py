"""``fe-adapter train``: train adapters and head on a frozen ViT (also one process of ``torchrun``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fe_adapter.commands._config import add_config_arguments, add_run_folder_arguments, read_checked, resume_line
from fe_adapter.commands._start_up import imports
from fe_adapter.training.folder import check_run_folder

HELP = "train adapters (and head) on a frozen ViT"
EXAMPLE = "fe-adapter train --config configs/dfew.yaml data.root=/data/DFEW model.checkpoint=fer_vit.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_run_folder_arguments(parser, "the run")


def run(args: argparse.Namespace) -> int:
    values, run_config = read_checked(args.config, args.overrides)
    check_run_folder(Path(run_config.out_dir), args.resume, args.overwrite)

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.training.config import config_from_dict
        from fe_adapter.training.run import run_training

    run_training(config_from_dict(values), resume=args.resume, overwrite=args.overwrite)
    return 0


def interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    out_dir = Path(read_checked(args.config, args.overrides)[1].out_dir)
    return resume_line("train", argv, out_dir, (out_dir / "last.pt").is_file())
