"""The image emotion classifier FE-Adapter starts from: build it, save it, read it back.

A saved image model is one ``.safetensors`` file: the timm model's own tensors under their timm names (so that
``fe-adapter train model.checkpoint=FILE`` loads it as backbone weights, strictly, dropping its head), and as
metadata what is needed to use it alone: backbone name and arguments, class names, input size, mean and std.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from fe_adapter._io import atomic_write, require_file
from fe_adapter._json import to_json
from fe_adapter.checkpoint import CheckpointError, unreadable

IMAGE_FORMAT = "fe-adapter-image/1"
_CONFIG_KEY = "fe_adapter_image"


def image_model_config(model: nn.Module) -> dict[str, Any]:
    """What an image model file records: backbone, its arguments, classes and input statistics."""
    from fe_adapter.data.transforms import normalization_for

    normalization = normalization_for(model)
    return {"backbone": model.pretrained_cfg.get("architecture"), "backbone_kwargs": dict(model.backbone_kwargs),
            "class_names": list(model.class_names),
            "input": {"size": normalization.size, "mean": list(normalization.mean), "std": list(normalization.std)}}


def save_image_model(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` (built by ``build_image_model``) to ``path`` atomically, with its config as metadata."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {"format": IMAGE_FORMAT, _CONFIG_KEY: to_json(image_model_config(model), indent=None, sort_keys=True)}
    return atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def read_image_model_config(path: str | Path) -> dict[str, Any] | None:
    """The config recorded in an image model file (``save_image_model``), or None for a weights file without it.
    Raises FileNotFoundError, or CheckpointError for a file that is no safetensors file."""
    path = require_file(path, "image model")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise unreadable(path, error, "an image model (.safetensors)") from None
    if metadata.get("format") != IMAGE_FORMAT:
        return None
    try:
        return json.loads(metadata[_CONFIG_KEY])
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the stored image model config cannot be read ({error})") from None


def recorded_statistics(path: str | Path) -> tuple[list[float], list[float]] | None:
    """(mean, std) an image model file records, or None for any other file (plain weights, a torch.save file, a
    missing one: its loader says what is wrong)."""
    from fe_adapter.checkpoint import file_kind

    path = Path(path)
    if not path.is_file() or file_kind(path) != "safetensors":
        return None
    try:
        config = read_image_model_config(path)
    except CheckpointError:
        return None
    return None if config is None else (config["input"]["mean"], config["input"]["std"])


def build_image_model(backbone: str, class_names: Sequence[str], backbone_kwargs: dict[str, Any] | None = None,
                      pretrained: bool = False, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, **create_kwargs: Any) -> nn.Module:
    """A timm ViT with a head of ``len(class_names)`` classes; it carries ``class_names`` and ``backbone_kwargs``
    (recorded when saved). ``mean``/``std`` replace the input statistics of ``backbone``'s weights tag."""
    from fe_adapter.model import set_normalization

    kwargs = dict(backbone_kwargs or {})
    model = timm.create_model(backbone, pretrained=pretrained, num_classes=len(class_names), **kwargs,
                              **create_kwargs)
    if mean is not None or std is not None:
        set_normalization(model, mean, std)
    model.class_names = list(class_names)
    model.backbone_kwargs = kwargs
    return model


def load_image_model(path: str | Path) -> nn.Module:
    """The image classifier saved in ``path`` by ``fe-adapter pretrain-image``, in eval mode. Raises
    FileNotFoundError, or CheckpointError for a file without the recorded config (plain weights) or whose tensors
    do not fit it."""
    config = read_image_model_config(path)
    if config is None:
        raise CheckpointError(f"{path} is no image model written by fe-adapter pretrain-image (it records no class "
                              "names or input statistics)")
    normalization = config["input"]
    model = build_image_model(config["backbone"], config["class_names"], config.get("backbone_kwargs"),
                              mean=normalization["mean"], std=normalization["std"])
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the tensors do not fit {config['backbone']} "
                              f"({str(error).splitlines()[0]})") from None
    return model.eval()


@torch.no_grad()
def classify_images(model: nn.Module, images: Sequence[Any], batch_size: int = 32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Class probabilities (N, classes) of PIL images, each resized and centre-cropped to the model's input."""
    from fe_adapter.data.image_dataset import image_transform
    from fe_adapter.data.transforms import normalization_for

    transform = image_transform(normalization_for(model), train=False)
    model = model.to(device)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([transform(image) for image in images[start:start + batch_size]]).to(device)
        rows.append(model(batch).float().softmax(1).cpu())
    return torch.cat(rows) if rows else torch.empty(0, len(model.class_names))
