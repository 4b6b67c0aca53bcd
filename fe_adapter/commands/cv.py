"""``fe-adapter cv``: k-fold cross-validation (DFEW, MAFW), one training run per fold."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fe_adapter.commands._config import add_config_arguments, add_run_folder_arguments, read_checked, resume_line
from fe_adapter.commands._start_up import imports
from fe_adapter.training.config import ConfigError
from fe_adapter.training.folder import check_cv_folder
from fe_adapter.training.run import check_folds

HELP = "k-fold cross-validation (DFEW, MAFW)"
EXAMPLE = "fe-adapter cv --folds 1,2 --config configs/dfew.yaml data.root=/data/DFEW model.checkpoint=fer_vit.pth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--folds", nargs="+", metavar="K", help="folds to train, e.g. --folds 1 2 or --folds 1,2 "
                        "(default: all five)")
    add_run_folder_arguments(parser, "the folds")


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


def _read(args: argparse.Namespace) -> tuple[list[int], dict[str, Any], Path]:
    """The folds (checked), the config's values (keys checked) and run.out_dir."""
    folds, more_overrides = _folds(args.folds)
    values, run_config = read_checked(args.config, args.overrides + more_overrides)
    return check_folds(folds), values, Path(run_config.out_dir)


def run(args: argparse.Namespace) -> int:
    folds, values, root = _read(args)
    check_cv_folder(root, folds, args.resume, args.overwrite)

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.training.config import config_from_dict
        from fe_adapter.training.run import run_cross_validation

    run_cross_validation(config_from_dict(values), folds, resume=args.resume, overwrite=args.overwrite)
    return 0


def interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    root = _read(args)[2]
    return resume_line("cv", argv, root, any(root.glob("fold_*/last.pt")))
