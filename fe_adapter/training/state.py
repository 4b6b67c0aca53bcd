"""The full training state (trainable weights, optimizer, scheduler, scaler, RNG, progress) for resume."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fe_adapter._io import atomic_write

if TYPE_CHECKING:
    from fe_adapter.training.trainer import Trainer

STATE_FORMAT = "fe-adapter-train/1"


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().cpu() for name, param in model.named_parameters() if param.requires_grad}


def save_training_state(path: str | Path, trainer: Trainer) -> Path:
    """Write the state atomically: a kill at any moment leaves the previous file loadable."""
    state: dict[str, Any] = {
        "format": STATE_FORMAT,
        "config": trainer.config.to_dict(),
        "model": _trainable_state(trainer.model),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "epoch": trainer.epoch,
        "step": trainer.step,
        "best": trainer.best,
        "history": trainer.history,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }
    return atomic_write(path, lambda temporary: torch.save(state, temporary))


def load_training_state(path: str | Path, trainer: Trainer) -> None:
    """Restore a trainer from ``save_training_state``'s file (same config expected)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not an fe-adapter training state")
    missing = set(_trainable_state(trainer.model)) - set(state["model"])
    if missing:
        raise ValueError(f"{path} does not match the model: missing {sorted(missing)[:3]}")
    trainer.model.load_state_dict(state["model"], strict=False)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.epoch, trainer.step = state["epoch"], state["step"]
    trainer.best, trainer.history = state["best"], state["history"]
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
