"""The device a command runs on, from its name: one resolver for predict's and eval's ``--device``, train's and
cv's ``run.device`` (and any later command), so that every command accepts the same names and refuses a device
this machine lacks with the same one line instead of a driver traceback.

The names are checked without torch (``check_device_name``: the command line refuses a typo at once); whether the
machine has the device needs torch (``resolve_device``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N (a GPU index) or mps.
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?|mps")
DEVICE_NAMES = "auto, cpu, cuda, cuda:N (a GPU index) or mps"


class DeviceError(ValueError):
    """A device name that is not one, or a device this machine does not have."""


def _given(setting: str, name: str) -> str:
    """How the message quotes the setting: ``--device cuda`` for a flag, ``run.device = 'cuda'`` for a key."""
    return f"{setting} {name}" if setting.startswith("-") else f"{setting} = {name!r}"


def _use(setting: str, names: str) -> str:
    return f"use {setting} {names}" if setting.startswith("-") else f"use {setting}={names}"


def check_device_name(name: str, setting: str = "--device") -> str:
    """``name`` if it names a device (not whether this machine has it); else a DeviceError naming ``setting``."""
    if not DEVICE_NAME.fullmatch(name):
        raise DeviceError(f"{setting} must be {DEVICE_NAMES}, got {name!r}")
    return name


def resolve_device(name: str, setting: str = "--device", local_rank: int = 0) -> torch.device:
    """The torch device ``name`` stands for on this machine ("auto": CUDA when available, else the CPU; "cuda"
    under DDP: this process's GPU, ``local_rank``). A device this machine lacks is a DeviceError naming
    ``setting`` (e.g. ``--device`` or ``run.device``) and what to use instead."""
    import torch

    check_device_name(name, setting)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
            raise DeviceError(f"{_given(setting, name)}, but CUDA is not available on this machine (torch "
                              f"{torch.__version__} built with {build}); {_use(setting, 'cpu or auto')}")
        if name == "cuda":
            return torch.device("cuda", local_rank)
        count = torch.cuda.device_count()
        if int(name.split(":")[1]) >= count:
            raise DeviceError(f"{_given(setting, name)}, but this machine has {count} CUDA device(s): "
                              f"cuda:0..cuda:{count - 1}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{_given(setting, name)}, but MPS is not available on this machine; "
                          f"{_use(setting, 'cpu')}")
    return torch.device(name)
