"""The rules of a run folder (``run.out_dir``, an eval ``--out``): a new run needs an empty or absent folder
(the log of a start that stopped on an error, e.g. a wrong setting, does not count), ``overwrite`` replaces the
previous run's files, ``resume`` needs the previous run's ``last.pt``.

A run into a folder that already holds one would mix the two: checkpoints replaced, ``log.jsonl`` appended to
(epochs 1, 2, 3, 1, 2, ...), a report of one run next to the curves of the other.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fe_adapter.training.config import ConfigError

#: What a training run writes into its folder (``atomic_write`` leaves ``.<name>.*.tmp`` only when killed).
RUN_OUTPUTS = ("train.log", "log.jsonl", "best.safetensors", "last.safetensors", "last.pt", "report", "tensorboard")
#: What an evaluation or training report folder holds.
REPORT_OUTPUTS = ("metrics.json", "config.yaml", "confusion.png", "curves.png", "predictions.csv",
                  "predictions_last.csv")


#: The log files a run opens first: alone (no epoch done, nothing else written), they are the log of a start
#: that stopped on an error, and a new run may replace them.
START_LOGS = ("train.log", "cv.log")


def _listing(folder: Path) -> str:
    names = sorted(entry.name for entry in folder.iterdir())
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def is_empty(folder: Path) -> bool:
    """Whether ``folder`` is absent or holds nothing but start logs (in it or in sub-folders of the same kind)."""
    if not folder.exists():
        return True
    return all(entry.name in START_LOGS if entry.is_file() else entry.is_dir() and is_empty(entry)
               for entry in folder.iterdir())


def check_run_folder(out_dir: Path, resume: bool, overwrite: bool, what: str = "run.out_dir") -> None:
    """Raise (one line) unless the run may start in ``out_dir``: ConfigError for a folder that holds files and
    neither flag, or both flags; FileNotFoundError for ``resume`` without a ``last.pt``."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in run.out_dir and --overwrite replaces it: pass one of them")
    if resume:
        state = out_dir / "last.pt"
        if not state.is_file():
            why = ("the folder does not exist" if not out_dir.is_dir() else
                   "no epoch of the run in it was completed" if not is_empty(out_dir) else "the folder is empty")
            raise FileNotFoundError(f"--resume: nothing to resume in {what} {out_dir}: {state.name} (written after "
                                    f"each completed epoch) is missing, {why}; check {what}, or start the run "
                                    "again without --resume (with --overwrite if the folder holds files)")
        return
    if not overwrite and not is_empty(out_dir):
        raise ConfigError(f"{what} {out_dir} already holds files ({_listing(out_dir)}): pass --resume to continue "
                          f"the run in it, --overwrite to replace it, or choose another {what}")


def check_report_folder(out: Path, overwrite: bool) -> None:
    """Refuse (ConfigError) an evaluation report folder that holds files, unless ``overwrite``."""
    if not overwrite and not is_empty(out):
        raise ConfigError(f"--out {out} already holds files ({_listing(out)}): pass --overwrite to replace the "
                          "report, or choose another --out")


def clear_outputs(folder: Path, names: tuple[str, ...] = RUN_OUTPUTS) -> list[str]:
    """Remove the files and folders ``names`` (and interrupted atomic writes) from ``folder``; other files stay.
    Returns what was removed."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        interrupted_write = entry.name.startswith(".") and entry.name.endswith(".tmp")
        if entry.name not in names and not interrupted_write:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed
