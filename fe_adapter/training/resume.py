"""What may change on ``--resume``: the config stored in ``last.pt`` against the one given.

A resumed run must compute what the stored run would have, so most keys must be equal. Three kinds of
change are allowed:

* keys that change how a run is watched or how fast it loads, not what it computes (``FREE``);
* paths (``PATHS``): a dataset, weights file or run folder moved elsewhere. The run trusts that they hold the
  same files, and says so in the log;
* ``optim.epochs`` may grow (never shrink): the warm-up + cosine schedule is then the one of a run planned with
  the new number of epochs, from the resumed step on (the learning rate steps up onto that curve; the warm-up,
  counted in epochs, is unchanged).
"""

from __future__ import annotations

from typing import Any

from fe_adapter.training.config import ConfigError, TrainConfig

FREE = ("run.progress", "run.tensorboard", "run.deterministic", "data.num_workers", "data.eval_batch_size")
PATHS = ("data.root", "data.train_list", "data.test_list", "model.checkpoint", "run.out_dir")


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in config.items() for key, value in values.items()}


def check_resume(stored: dict[str, Any], given: TrainConfig, completed_epochs: int, source: str) -> list[str]:
    """Refuse (ConfigError, one line listing every difference) a config that differs from ``stored`` in a
    key that changes what the run computes; return a notice for each allowed change."""
    defaults, old, new = _flat(type(given)().to_dict()), _flat(stored), _flat(given.to_dict())
    refused, notices = [], []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, defaults.get(key)), new.get(key, defaults.get(key))
        if before == after or key in FREE:
            continue
        if key in PATHS:
            notices.append(f"{key} changed from {before!r} to {after!r}: resuming on the understanding that it "
                           "holds the same files")
        elif key == "optim.epochs" and after > before:
            notices.append(f"optim.epochs raised from {before} to {after}: the schedule is now the one of a "
                           f"{after}-epoch run")
        elif key == "optim.epochs" and after < completed_epochs:
            refused.append(f"optim.epochs: {after} is fewer than the {completed_epochs} epochs already trained")
        else:
            refused.append(f"{key}: stored {before!r}, given {after!r}")
    if refused:
        raise ConfigError(f"--resume: {source} was trained with another config ({'; '.join(refused)}); only "
                          f"{', '.join(FREE)}, paths and a larger optim.epochs may change. Resume with the stored "
                          "values, or start a new run (another run.out_dir, or --overwrite)")
    return notices
