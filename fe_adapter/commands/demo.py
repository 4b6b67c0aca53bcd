"""``fe-adapter demo``: the method in miniature on synthetic faces, FE-Adapter against the frame-averaging
baseline (docs/demo.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fe_adapter.commands._options import seed
from fe_adapter.commands._start_up import imports
from fe_adapter.training.folder import check_demo_folder

HELP = "the synthetic demo: adapters vs the frame-averaging baseline"
EXAMPLE = "fe-adapter demo --seed 1 --out runs/demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="report folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seeds the synthetic data and both trainings (default 0)")


def run(args: argparse.Namespace) -> int:
    check_demo_folder(args.out)

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
