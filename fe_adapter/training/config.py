"""The training configuration: four sections (data, model, optim, run) read from YAML with overrides.

Every key and value is checked when the config is built: an unknown key names its section and lists the
keys allowed there; a bad value names the key, what was given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DATASETS = ("synthetic", "dfew", "ferv39k", "mafw", "list", "folder")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None
    fold: int = 1
    train_list: str | None = None
    test_list: str | None = None
    class_names: list[str] | None = None
    num_frames: int = 16
    img_size: int | None = None
    sampling: str = "segment"
    batch_size: int = 8
    eval_batch_size: int | None = None
    num_workers: int | None = None
    balanced: bool = False
    temporal_views: int = 1
    spatial_crops: int = 1
    synthetic_train_clips: int = 600
    synthetic_test_clips: int = 120
    synthetic_seed: int = 0
    min_readable: float = 0.9


@dataclass
class ModelConfig:
    backbone: str = "vit_base_patch16_224"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    checkpoint: str | None = None
    bottleneck: int = 384
    kernel_size: int = 3
    dilation: int | list[int] = 1
    placement: str = "attn"
    activation: str | None = None
    impl: str = "auto"
    dropout: float = 0.5
    backbone_dtype: str = "fp32"


@dataclass
class OptimConfig:
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    min_lr: float = 1e-6
    clip_grad: float | None = 1.0
    label_smoothing: float = 0.1
    class_weighted: bool = False
    accumulation: int = 1
    amp: str = "auto"


@dataclass
class RunConfig:
    out_dir: str = "runs/default"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    select_metric: str = "uar"
    progress: bool = True
    tensorboard: bool = True


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choices() -> dict[str, tuple]:
    from fe_adapter.config import PLACEMENTS
    from fe_adapter.data.sampling import SAMPLINGS
    from fekernels import ACTIVATIONS, IMPLS

    return {
        "data.dataset": DATASETS, "data.sampling": SAMPLINGS, "data.spatial_crops": (1, 3),
        "model.placement": PLACEMENTS, "model.activation": ACTIVATIONS, "model.impl": IMPLS,
        "model.backbone_dtype": ("fp32", "bf16"), "optim.amp": ("auto", "none", "bf16", "fp16"),
        "run.select_metric": ("uar", "war"), "data.fold": (1, 2, 3, 4, 5),
    }


_POSITIVE = {"data.num_frames", "data.batch_size", "data.temporal_views", "model.bottleneck", "model.kernel_size",
             "optim.epochs", "optim.accumulation", "data.synthetic_train_clips", "data.synthetic_test_clips"}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field's type; accept ints for floats and numeric strings from the command line."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, type(int | None)) \
        else (annotation,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{key} must not be null")
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if origin is str and isinstance(value, str):
            return value
        if origin is list and isinstance(value, list):
            return value
        if origin is dict and isinstance(value, dict):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"{key} must be {names}, got {value!r}")


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"section {name!r} must be a mapping of keys to values, got {values!r}")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key {name}.{unknown[0]}; allowed keys in {name}: {', '.join(allowed)}")
    choices = _choices()
    checked = {}
    for key, value in values.items():
        full = f"{name}.{key}"
        value = _coerce(full, value, hints[key])
        if full in choices and value not in choices[full]:
            raise ConfigError(f"{full} must be one of {choices[full]}, got {value!r}")
        if full in _POSITIVE and value < 1:
            raise ConfigError(f"{full} must be >= 1, got {value!r}")
        if full == "optim.lr" and value <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {value!r}")
        if full == "data.class_names" and value is not None and not all(isinstance(n, str) for n in value):
            raise ConfigError(f"data.class_names must be a list of strings, got {value!r}")
        if full == "model.dilation" and isinstance(value, list) and not all(
                isinstance(d, int) and not isinstance(d, bool) for d in value):
            raise ConfigError(f"model.dilation must be an int or a list of ints, got {value!r}")
        checked[key] = value
    return cls(**checked)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig from nested dicts (missing keys take their defaults)."""
    sections = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r}; allowed sections: {', '.join(sections)}")
    hints = typing.get_type_hints(TrainConfig)
    config = TrainConfig(**{name: _build_section(name, hints[name], values.get(name) or {}) for name in sections})
    if config.model.backbone_dtype == "bf16" and config.optim.amp not in ("bf16", "auto"):
        raise ConfigError("model.backbone_dtype bf16 needs optim.amp bf16 (or auto on a GPU)")
    if config.data.dataset in ("dfew", "ferv39k", "mafw", "folder") and not config.data.root:
        raise ConfigError(f"data.root is required for data.dataset = {config.data.dataset!r}")
    if config.data.dataset == "list" and not (config.data.train_list and config.data.test_list):
        raise ConfigError("data.train_list and data.test_list are required for data.dataset = 'list'")
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` (value parsed as YAML) -> (["section", "key"], value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2:
        raise ConfigError(f"override key {key!r} must be section.key, e.g. optim.lr")
    return parts, yaml.safe_load(raw) if raw.strip() else None


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply ``section.key=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping of sections, got {type(values).__name__}")
    for override in overrides:
        (section, key), value = parse_override(override)
        if values.get(section) is None:  # absent, or a section whose keys are all commented out
            values[section] = {}
        if not isinstance(values[section], dict):
            raise ConfigError(f"section {section!r} must be a mapping")
        values[section][key] = value
    return config_from_dict(values)
