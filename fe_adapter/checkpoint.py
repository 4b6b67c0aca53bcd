"""Adapter-only checkpoints: the trainable tensors in safetensors, the model config as metadata.

A ViT-B checkpoint holds ~7 M adapter parameters plus the head (tens of MB) instead of the whole
backbone, and records what it needs to be loaded safely: backbone name, adapter settings, classes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from fe_adapter._io import atomic_write
from fe_adapter._json import to_json
from fe_adapter.adapter import FEAdapter
from fe_adapter.checkpoint_file import (  # noqa: F401 - re-exported: where they were
    CONFIG_KEY,
    FORMAT,
    CheckpointError,
    file_kind,
    read_adapter_config,
    unreadable,
)
from fe_adapter.config import AdapterConfig
from fe_adapter.vit import classifier_heads


def model_config(model: nn.Module) -> dict[str, Any]:
    """What a checkpoint records about ``model``: backbone name and weights, input size and statistics, adapter
    settings, head and classes.

    ``backbone`` is the timm name, with the weights tag only when timm's weights were loaded (a local file's
    weights are named by ``backbone_weights``: file name and SHA-256). ``input`` holds the size, mean and std
    the model's inputs are normalised with.
    """
    from fe_adapter.data.transforms import normalization_for

    backbone = getattr(model, "backbone", model)
    adapter_config = getattr(backbone, "fe_adapter_config", None)
    if not isinstance(adapter_config, AdapterConfig):
        raise ValueError("model has no FE-Adapters: build it with fe_adapter.create_model or fe_adapter.adapt")
    pretrained_cfg = getattr(backbone, "pretrained_cfg", None) or {}
    name, tag = pretrained_cfg.get("architecture"), pretrained_cfg.get("tag")
    weights = getattr(model, "backbone_weights", None)
    normalization = normalization_for(model)
    config: dict[str, Any] = {
        "backbone": f"{name}.{tag}" if name and tag and (weights is None or "timm" in weights) else name,
        "input": {"size": normalization.size, "mean": list(normalization.mean), "std": list(normalization.std)},
        "adapter": adapter_config.to_dict(),
    }
    if weights:
        config["backbone_weights"] = dict(weights)
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
    metadata = {"format": FORMAT, CONFIG_KEY: to_json(model_config(model), indent=None, sort_keys=True)}
    return atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def _config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _config_differences(old, new, f"{prefix}{key}.")
        elif key != "num_frames" and old != new:
            differences.append(f"{prefix}{key}: checkpoint has {old!r}, model has {new!r}")
    return differences


def _comparable(config: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """The part of a model config that must agree with a checkpoint's: the backbone's architecture (its weights
    are compared by ``_check_backbone_weights``), and ``input`` only if the checkpoint records it (older
    checkpoints do not)."""
    comparable = {key: value for key, value in config.items() if key != "backbone_weights"}
    if comparable.get("backbone"):
        comparable["backbone"] = comparable["backbone"].split(".")[0]
    if "input" not in saved:
        comparable.pop("input", None)
    return comparable


def _check_backbone_weights(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Warn when the model's backbone weights are known to differ from those the adapters were trained on."""
    trained, loaded = saved.get("backbone_weights"), current.get("backbone_weights")
    if not trained or not loaded or trained == loaded:
        return
    if trained.get("sha256") and trained.get("sha256") == loaded.get("sha256"):
        return  # the same file under another name
    warnings.warn(f"{path}: the adapters were trained on the backbone weights {_describe_weights(trained)}, the "
                  f"model holds {_describe_weights(loaded)}; predictions are only meaningful on the same weights",
                  stacklevel=3)


def _describe_weights(weights: dict[str, str]) -> str:
    if "file" in weights:
        return f"from the file {weights['file']} (sha256 {weights.get('sha256', '?')[:12]})"
    return f"of timm {weights.get('timm')}"


def load_adapters(model: nn.Module, path: str | Path) -> nn.Module:
    """Load an adapter checkpoint into a model built with the same backbone and adapter settings.

    Every tensor in the file must exist in the model with the same shape, and every adapter and classifier
    head tensor of the model must be in the file (a file without the head would leave a random head): a
    mismatch raises a CheckpointError listing what differs instead of loading part of the weights; so does a
    model whose input size or normalisation (mean, std) differs from the checkpoint's. The clip length
    (``num_frames``) may differ: the temporal convolution works for any T.
    Backbone weights known to differ from those the adapters were trained on (another file hash) give a
    warning. Raises FileNotFoundError for a missing file and CheckpointError for an unreadable one.
    """
    path = Path(path)
    saved_config = read_adapter_config(path)
    current = json.loads(to_json(model_config(model), indent=None))  # as it would read back (tuples become lists)
    differences = _config_differences(_comparable(saved_config, saved_config), _comparable(current, saved_config))
    if differences:
        raise CheckpointError(f"{path} was saved from a different model:\n  " + "\n  ".join(differences))
    _check_backbone_weights(saved_config, current, path)

    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise unreadable(path, error, "an adapter checkpoint (.safetensors)") from None
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
    head_ids = {id(param) for head in classifier_heads(model) for param in head.parameters()}
    head_names = [name for name, param in params.items() if id(param) in head_ids]
    problems += [f"missing head tensor {name}" for name in head_names if name not in tensors]
    if problems:
        raise CheckpointError(f"{path} does not match the model:\n  " + "\n  ".join(problems))

    model.load_state_dict(tensors, strict=False)
    return model


def load_model(path: str | Path, backbone_checkpoint: str | Path | None = None, pretrained: bool = False,
               impl: str = "auto", num_frames: int | None = None) -> nn.Module:
    """The trained ``VideoClassifier`` of an adapter checkpoint: rebuilt from its config, with the backbone's weights
    from ``backbone_checkpoint`` (a local .safetensors/.pth file) or timm (``pretrained=True``), then its adapters
    and head. The input normalisation is the recorded one; ``num_frames`` replaces the trained clip length.

    Raises FileNotFoundError for a missing file, CheckpointError for an unreadable or mismatched one, ValueError
    when no backbone weights are given or timm's are given for adapters trained on a file's.
    """
    from fe_adapter.model import model_from_config

    config = read_adapter_config(path)
    trained_on = config.get("backbone_weights") or {}
    if backbone_checkpoint is None and not pretrained:
        named = f", the file {trained_on['file']}" if "file" in trained_on else ""
        raise ValueError(f"{path} holds adapters and head only: give the backbone weights "
                         f"(backbone_checkpoint=FILE, --backbone-checkpoint{named}) or pretrained=True for "
                         "timm's weights")
    if backbone_checkpoint is None and "file" in trained_on:
        raise ValueError(f"{path} was trained on the backbone weights in the file {trained_on['file']}, not on "
                         "timm's: give that file as backbone_checkpoint (--backbone-checkpoint)")
    model = model_from_config(config, backbone_checkpoint, pretrained, impl, num_frames)
    return load_adapters(model, path)
