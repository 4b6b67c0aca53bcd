"""Loading an image model's weights from a local file into a timm backbone: strictly, with provenance.

timm, asked for a model without its classifier (``num_classes=0``), loads weights non-strictly: tensors whose
names do not match (every key prefixed ``model.``, a shallower model) are silently left at their random
initialisation, and training then adapts a random backbone. Here every backbone tensor must come from the
file: wrapper prefixes (``module.``, ``_orig_mod.``, ``model.``, ``backbone.``) are stripped when that makes
the names match exactly, the image model's classification head is dropped (the video classifier has its
own), and anything else that does not match is a ``CheckpointError`` listing a few of the names.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from fe_adapter._io import require_file
from fe_adapter.checkpoint import FORMAT, CheckpointError, file_kind, unreadable

log = logging.getLogger("fe_adapter")

WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")
_NESTED_STATE_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")  # where trainers put the weights
_EXPECTED = "backbone weights"
_SHOWN = 4


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (weights files are hundreds of MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: safetensors, or a torch.save'd state dict (also nested under "state_dict"
    or "model", as trainers save it). Raises FileNotFoundError or CheckpointError naming the file."""
    path = require_file(path, "backbone weights file")
    kind = file_kind(path)
    if kind == "safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                if (handle.metadata() or {}).get("format") == FORMAT:
                    raise CheckpointError(f"{path} is an fe-adapter checkpoint (adapters and head), not backbone "
                                          "weights: give it as the adapter checkpoint (--checkpoint)")
            state: Any = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise unreadable(path, error, _EXPECTED) from None
    elif kind == "torch":
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError... for a bad file
            raise unreadable(path, error, _EXPECTED) from None
    else:
        raise unreadable(path, ValueError("neither a safetensors nor a torch.save file"), _EXPECTED)
    if isinstance(state, dict):
        nested = next((key for key in _NESTED_STATE_KEYS if isinstance(state.get(key), dict)), None)
        state = state[nested] if nested else state
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors (name -> tensor); save the image model's "
                              "weights with safetensors or torch.save(model.state_dict(), path)")
    return dict(state)


def _strip(state: dict[str, torch.Tensor], prefixes: tuple[str, ...],
           heads: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    """The state with each prefix removed in turn, or None if a tensor other than a classifier's lacks one."""
    for prefix in prefixes:
        if any(not key.startswith(prefix) and key.split(".")[0] not in heads for key in state):
            return None
        state = {key.removeprefix(prefix): value for key, value in state.items()}
    return state


def _head_names(backbone: nn.Module) -> tuple[str, ...]:
    classifier = (getattr(backbone, "pretrained_cfg", None) or {}).get("classifier") or "head"
    return (classifier,) if isinstance(classifier, str) else tuple(classifier)


def _without_head(state: dict[str, torch.Tensor], heads: tuple[str, ...],
                  expected: set[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state without the image model's classifier tensors (those the headless backbone does not have)."""
    dropped = [key for key in state if key not in expected and key.split(".")[0] in heads]
    return {key: value for key, value in state.items() if key not in dropped}, dropped


def _filter_fn(backbone: nn.Module) -> Callable | None:
    """timm's conversion for the architecture's checkpoints (e.g. position embeddings resampled to img_size)."""
    return getattr(sys.modules.get(type(backbone).__module__), "checkpoint_filter_fn", None)


def _sample(names: set[str]) -> str:
    shown = sorted(names)[:_SHOWN]
    return ", ".join(shown) + (", ..." if len(names) > _SHOWN else "")


def _matching_state(backbone: nn.Module, raw: dict[str, torch.Tensor], path: Path,
                    architecture: str) -> dict[str, torch.Tensor]:
    """The file's tensors named as the backbone names them, or CheckpointError listing what does not match."""
    expected = set(backbone.state_dict())
    heads = _head_names(backbone)
    convert = _filter_fn(backbone)

    def converted(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        try:
            return convert(state, backbone) if convert is not None else state
        except Exception as error:  # a conversion that does not apply to these tensors: compare them as they are
            log.debug(f"{path}: timm's checkpoint conversion failed ({error}); comparing the names as stored")
            return state

    candidates = [()] + [prefixes for depth in (1, 2, 3)
                         for prefixes in itertools.permutations(WRAPPER_PREFIXES, depth)]
    for prefixes in candidates:
        stripped = _strip(raw, prefixes, heads)
        if stripped is None or prefixes and set(_without_head(stripped, heads, expected)[0]) != expected:
            continue  # compare before timm's conversion: it only renames keys of foreign formats (CLIP, DINOv2)
        state, dropped = _without_head(converted(stripped), heads, expected)
        if set(state) != expected:
            continue
        if prefixes:
            log.info(f"{path.name}: stripped the prefix {''.join(prefixes)!r} from the weight names")
        if dropped:
            log.info(f"{path.name}: the image model's classification head ({', '.join(dropped)}) is not used; "
                     "the video classifier has its own")
        return state

    state, _ = _without_head(converted(raw), heads, expected)
    missing, unexpected = expected - set(state), set(state) - expected
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the backbone's {len(expected)} tensors are not in the file "
                     f"(e.g. {_sample(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors in the file are not in the backbone (e.g. {_sample(unexpected)})")
    raise CheckpointError(f"{path}: backbone weights do not fit {architecture}: {'; '.join(parts)}. Check the "
                          "backbone name and backbone_kwargs (depth, embed_dim, ...)")


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> dict[str, str]:
    """Load every tensor of a headless timm ``backbone`` from ``path``; return where they came from
    (``{"file": name, "sha256": hash of the file}``, recorded in adapter checkpoints).

    Raises FileNotFoundError, or CheckpointError for an unreadable file, missing or unexpected tensors, or
    tensors of another shape.
    """
    path = Path(path)
    architecture = (getattr(backbone, "pretrained_cfg", None) or {}).get("architecture") or type(backbone).__name__
    state = _matching_state(backbone, read_weight_file(path), path, architecture)
    model_state = backbone.state_dict()
    wrong = [f"{key}: file {tuple(value.shape)}, model {tuple(model_state[key].shape)}"
             for key, value in state.items() if value.shape != model_state[key].shape]
    if wrong:
        raise CheckpointError(f"{path}: backbone weights do not fit {architecture}: {len(wrong)} tensors differ in "
                              f"shape (e.g. {'; '.join(wrong[:3])}). Check backbone_kwargs (img_size, embed_dim, "
                              "...)")
    backbone.load_state_dict(state, strict=True)
    return {"file": path.name, "sha256": file_sha256(path)}
