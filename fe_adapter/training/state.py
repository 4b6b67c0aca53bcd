"""The resume file ``last.pt``: a trainer's state plus every random generator's, written atomically.

What the state holds is the trainer's business (``Trainer.state_dict``); this module only writes, checks
and reads the file and captures and restores the random generators.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fe_adapter._io import atomic_write
from fe_adapter.checkpoint import CheckpointError, file_kind

STATE_FORMAT = "fe-adapter-train/1"


def capture_rng() -> dict[str, Any]:
    """The states of torch's (CPU and CUDA), numpy's and Python's global random generators."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(rng: dict[str, Any]) -> None:
    """Put back the generators ``capture_rng`` saw."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` and the random generators' states atomically: a kill at any moment leaves the
    previous file loadable."""
    contents = {"format": STATE_FORMAT, **state, "rng": capture_rng()}
    return atomic_write(path, lambda temporary: torch.save(contents, temporary))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """The state ``save_training_state`` wrote, with its ``rng`` entry for ``restore_rng``.

    A file that is damaged (truncated, overwritten) or of another kind raises a CheckpointError (a ValueError)
    naming it.
    """
    if Path(path).is_file() and file_kind(Path(path)) == "safetensors":
        raise CheckpointError(f"{path} is a .safetensors file (adapters or weights), not an fe-adapter training "
                              "state")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError... for a damaged file
        raise CheckpointError(f"{path} cannot be read as an fe-adapter training state ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'no details'}); it is damaged: "
                              "start the run again with --overwrite") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or "config" not in state:
        raise CheckpointError(f"{path} is not an fe-adapter training state")
    return state
