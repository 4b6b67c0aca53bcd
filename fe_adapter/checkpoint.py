"""Adapter-only checkpoints: the trainable tensors in safetensors, the model config as metadata.

A ViT-B checkpoint holds ~7 M adapter parameters plus the head (tens of MB) instead of the whole
backbone, and records what it needs to be loaded safely: backbone name, adapter settings, classes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from fe_adapter._io import atomic_write
from fe_adapter.adapter import FEAdapter
from fe_adapter.config import AdapterConfig

FORMAT = "fe-adapter/1"
_CONFIG_KEY = "fe_adapter_config"


def model_config(model: nn.Module) -> dict[str, Any]:
    """What a checkpoint records about ``model``: backbone name, adapter settings, head and classes."""
    backbone = getattr(model, "backbone", model)
    adapter_config = getattr(backbone, "fe_adapter_config", None)
    if not isinstance(adapter_config, AdapterConfig):
        raise ValueError("model has no FE-Adapters: build it with fe_adapter.create_model or fe_adapter.adapt")
    pretrained_cfg = getattr(backbone, "pretrained_cfg", None) or {}
    name, tag = pretrained_cfg.get("architecture"), pretrained_cfg.get("tag")
    config: dict[str, Any] = {
        "backbone": f"{name}.{tag}" if name and tag else name,  # the tag names the pretrained weights
        "adapter": adapter_config.to_dict(),
    }
    if hasattr(model, "class_names"):
        config["class_names"] = list(model.class_names)
    if getattr(model, "backbone_kwargs", None):
        config["backbone_kwargs"] = dict(model.backbone_kwargs)
    return config


def save_adapters(model: nn.Module, path: str | Path) -> Path:
    """Save the trainable tensors of ``model`` (adapters and head) with its config as metadata.

    The file is replaced atomically: an interrupted save leaves the previous checkpoint loadable.
    """
    tensors = {
        name: param.detach().cpu().contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }
    if not tensors:
        raise ValueError("model has no trainable parameters to save")
    metadata = {"format": FORMAT, _CONFIG_KEY: json.dumps(model_config(model), sort_keys=True)}
    return atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def read_adapter_config(path: str | Path) -> dict[str, Any]:
    """The model config stored in an adapter checkpoint (see ``model_config``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"adapter checkpoint not found: {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != FORMAT or _CONFIG_KEY not in metadata:
        raise ValueError(f"{path} is not an fe-adapter checkpoint (metadata format {metadata.get('format')!r})")
    return json.loads(metadata[_CONFIG_KEY])


def _config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _config_differences(old, new, f"{prefix}{key}.")
        elif key != "num_frames" and old != new:
            differences.append(f"{prefix}{key}: checkpoint has {old!r}, model has {new!r}")
    return differences


def load_adapters(model: nn.Module, path: str | Path) -> nn.Module:
    """Load an adapter checkpoint into a model built with the same backbone and adapter settings.

    Every tensor in the file must exist in the model with the same shape, and every adapter tensor
    of the model must be in the file: a mismatch raises a ValueError listing what differs instead of
    loading part of the weights. The clip length (``num_frames``) may differ: the temporal convolution
    works for any T.
    """
    saved_config = read_adapter_config(path)
    current = json.loads(json.dumps(model_config(model)))  # as it would read back (tuples become lists)
    differences = _config_differences(saved_config, current)
    if differences:
        raise ValueError(f"{path} was saved from a different model:\n  " + "\n  ".join(differences))

    with safe_open(str(path), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    params = dict(model.named_parameters())
    problems = [f"unexpected tensor {name}" for name in tensors if name not in params]
    problems += [
        f"{name}: checkpoint shape {tuple(tensor.shape)}, model shape {tuple(params[name].shape)}"
        for name, tensor in tensors.items()
        if name in params and tensor.shape != params[name].shape
    ]
    adapter_names = [
        f"{prefix}.{name}"
        for prefix, module in model.named_modules()
        if isinstance(module, FEAdapter)
        for name, _ in module.named_parameters()
    ]
    problems += [f"missing adapter tensor {name}" for name in adapter_names if name not in tensors]
    if problems:
        raise ValueError(f"{path} does not match the model:\n  " + "\n  ".join(problems))

    model.load_state_dict(tensors, strict=False)
    return model
