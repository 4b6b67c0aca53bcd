"""What a checkpoint file holds, read without torch: its kind from its first bytes, and an adapter checkpoint's
model config from its safetensors header. ``fe-adapter predict`` reads the config before it imports the model's
libraries (``fe_adapter.predict.face_worker``); ``fe_adapter.checkpoint`` saves and loads the tensors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from fe_adapter._io import require_file

FORMAT = "fe-adapter/1"
CONFIG_KEY = "fe_adapter_config"
_TRAINING_STATE_FORMAT = b"fe-adapter-train/1"  # fe_adapter.training.state.STATE_FORMAT, as pickled


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used, with a message naming the file and what is wrong.

    Raised for a file that is unreadable, truncated or corrupt, of another kind (a PyTorch training state
    ``last.pt`` where a ``.safetensors`` adapter checkpoint is expected, an adapter checkpoint given as
    backbone weights), or saved from a different model. A missing file is a ``FileNotFoundError``.
    """


def _is_training_state(path: Path) -> bool:
    """Whether a torch.save zip archive is an fe-adapter training state (its pickle names the format)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
            return bool(pickles) and _TRAINING_STATE_FORMAT in archive.read(pickles[0])
    except (OSError, zipfile.BadZipFile):
        return False


#: The first bytes of torch.save's legacy (non-zip) format: its magic number, pickled with protocol 2.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def file_kind(path: Path) -> str:
    """What a checkpoint file holds, from its first bytes: "empty", "safetensors", "training-state" (our
    ``last.pt``), "torch" (another torch.save file) or "unknown"."""
    with path.open("rb") as handle:
        head = handle.read(len(_LEGACY_TORCH_MAGIC))
    if not head:
        return "empty"
    if head[8:9] == b"{":  # 8-byte little-endian header length, then the JSON header
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "training-state" if _is_training_state(path) else "torch"
    if head == _LEGACY_TORCH_MAGIC:
        return "torch"
    return "unknown"


def unreadable(path: Path, error: BaseException, expected: str) -> CheckpointError:
    """A one-line CheckpointError for a file that could not be read as ``expected`` (e.g. "an adapter
    checkpoint (.safetensors)"), saying what the file looks like instead."""
    kind = file_kind(path) if path.is_file() else "unknown"
    if kind == "empty":
        return CheckpointError(f"{path}: the file is empty, not {expected}")
    if kind == "training-state":
        return CheckpointError(f"{path} is an fe-adapter training state (last.pt, read by train --resume), not "
                               f"{expected}; a run folder holds best.safetensors and last.safetensors for that")
    if kind == "torch" and "safetensors" in expected:
        return CheckpointError(f"{path} is a PyTorch file (torch.save), not {expected}")
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    reason = reason.removeprefix("Error while deserializing header: ")
    return CheckpointError(f"{path}: cannot read {expected} ({reason}): the file is corrupt, truncated or of "
                           "another kind")


def read_adapter_config(path: str | Path) -> dict[str, Any]:
    """The model config stored in an adapter checkpoint (see ``model_config``).

    Raises FileNotFoundError for a missing file and CheckpointError for one that is not a readable adapter
    checkpoint.
    """
    path = require_file(path, "adapter checkpoint")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise unreadable(path, error, "an adapter checkpoint (.safetensors)") from None
    if metadata.get("format") != FORMAT or CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path} is not an fe-adapter checkpoint (metadata format {metadata.get('format')!r})")
    try:
        return json.loads(metadata[CONFIG_KEY])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: the stored model config is not valid JSON ({error})") from None
