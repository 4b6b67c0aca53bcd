"""What the config-driven commands (train, eval, cv) share: their arguments, reading the config with the checks
that need no model, and the line Ctrl-C prints."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from fe_adapter.training.config import RunConfig, check_keys, config_section, read_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config (default: the built-in defaults)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides (values in YAML, e.g. optim.lr=0.001)")


def add_run_folder_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--resume", action="store_true", help=f"continue {what} in run.out_dir after the last "
                        "completed epoch (saved in last.pt; an interrupted epoch is trained again)")
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} in run.out_dir (a new run "
                        "refuses a folder that holds files)")


def read_checked(config: Path | None, overrides: list[str], root: type | None = None,
                 ) -> tuple[dict[str, Any], RunConfig]:
    """The config's values, its keys checked, and its run section checked: what the folder checks need, found
    without torch. The other values are checked by ``config_from_dict`` when the command runs. ``root``: the kind
    of config (default: video training's ``TrainConfig``)."""
    values = read_config(config, overrides)
    check_keys(values, root)
    return values, config_section(values, "run", root)


def resume_line(command: str, argv: list[str], out_dir: Path, resumable: bool) -> str:
    """The line for Ctrl-C of a training run into ``out_dir``: what was kept and the command that continues."""
    if not resumable:
        return f"interrupted before an epoch was completed in {out_dir}: nothing to resume; start again with " \
            "--overwrite"
    rest = [arg for arg in argv[argv.index(command) + 1:] if arg not in ("--resume", "--overwrite")]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = f"torchrun --nproc_per_node={world} -m fe_adapter" if world > 1 else "fe-adapter"
    return (f"interrupted; the completed epochs are saved in {out_dir}: continue with "
            f"{launcher} {command} --resume {shlex.join(rest)}".rstrip())
