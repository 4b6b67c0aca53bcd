"""The rules of a run folder (``run.out_dir``, an eval ``--out``): a new run needs an empty or absent folder
(the log of a start that stopped on an error, e.g. a wrong setting, does not count), ``overwrite`` replaces the
previous run's files, ``resume`` needs the previous run's ``last.pt``; cross-validation's folder of folds; the
demo's folder, which it replaces only when it holds nothing but an earlier demo's output.

These checks load no model (nor torch): the command line makes them before anything else.

A run into a folder that already holds one would mix the two: checkpoints replaced, ``log.jsonl`` appended to
(epochs 1, 2, 3, 1, 2, ...), a report of one run next to the curves of the other.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fe_adapter._io import check_writable, is_interrupted_write
from fe_adapter.training.config import ConfigError

#: What a training run writes into its folder (``atomic_write`` leaves ``.<stem>.*.tmp<suffix>`` only when killed).
RUN_OUTPUTS = ("train.log", "log.jsonl", "best.safetensors", "last.safetensors", "last.pt", "report", "tensorboard")
#: What an evaluation or training report folder holds.
REPORT_OUTPUTS = ("metrics.json", "config.yaml", "confusion.png", "curves.png", "predictions.csv",
                  "predictions_last.csv")


#: The demo's two models, by name, and the folder of each in the demo's --out.
DEMO_MODELS = {"FE-Adapter": "fe_adapter", "frame-averaging baseline": "baseline"}
#: The demo's image model's run folder (``fe-adapter pretrain-image``) in its --out.
DEMO_IMAGE_MODEL = "image_model"
#: What the demo writes into its --out, the only entries it replaces there.
DEMO_OUTPUTS = {DEMO_IMAGE_MODEL, "demo.json", "summary.md", "curves.png", "train.log",
                *DEMO_MODELS.values(), *(f"confusion_{folder}.png" for folder in DEMO_MODELS.values())}


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
    neither flag, or both flags; FileNotFoundError for ``resume`` without a ``last.pt``; OutputNotWritable for a
    folder where files cannot be created."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in run.out_dir and --overwrite replaces it: pass one of them")
    check_writable(out_dir, f"{what} {out_dir}")
    if resume:
        state = out_dir / "last.pt"
        if not state.is_file():
            why = ("the folder does not exist" if not out_dir.is_dir() else
                   "no epoch of the run in it was completed" if not is_empty(out_dir) else "the folder is empty")
            raise FileNotFoundError(f"--resume: nothing to resume in {what} {out_dir}: {state.name} (written after "
                                    f"each completed epoch) is missing, {why}; check {what}, or start the run "
                                    "again without --resume (with --overwrite if the folder holds files)")
    elif not overwrite and not is_empty(out_dir):
        raise ConfigError(f"{what} {out_dir} already holds files ({_listing(out_dir)}): pass --resume to continue "
                          f"the run in it, --overwrite to replace it, or choose another {what}")


def check_cv_folder(root: Path, folds: list[int], resume: bool, overwrite: bool) -> None:
    """Raise (one line) unless cross-validation may start in ``root``: as ``check_run_folder``, except that
    ``resume`` needs a ``last.pt`` in at least one fold's folder (the others start afresh)."""
    if not resume:
        check_run_folder(root, False, overwrite)
        return
    if overwrite:
        raise ConfigError("--resume continues the runs in run.out_dir and --overwrite replaces them: pass one")
    check_writable(root, f"run.out_dir {root}")
    if not any((root / f"fold_{fold}" / "last.pt").is_file() for fold in folds):
        raise FileNotFoundError(f"--resume: nothing to resume in run.out_dir {root}: no fold folder of "
                                f"{', '.join(map(str, folds))} holds a last.pt; check run.out_dir, or start "
                                "without --resume")


def check_demo_folder(out: Path) -> None:
    """Raise ValueError unless the demo may write into ``out``: absent, or a folder holding only an earlier demo's
    output, and writable. The demo never deletes files it did not write, and never trains into an old run's folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    check_writable(out, f"--out {out}")
    if out.is_dir():
        foreign = sorted(entry.name for entry in out.iterdir() if entry.name not in DEMO_OUTPUTS)
        if foreign:
            raise ValueError(f"--out {out} holds {foreign[0]!r}, which the demo does not write; choose a new or "
                             "empty folder (the demo replaces only its own earlier output)")


def check_report_folder(out: Path, overwrite: bool) -> None:
    """Refuse (ConfigError) an evaluation report folder that holds files, unless ``overwrite``, and one that
    cannot be written (OutputNotWritable)."""
    check_writable(out, f"--out {out}")
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
        interrupted_write = is_interrupted_write(entry.name)
        if entry.name not in names and not interrupted_write:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed
