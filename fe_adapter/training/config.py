"""The training configuration: four sections (data, model, optim, run) read from YAML with overrides.

Every key and value is checked when the config is built: an unknown key names its section and lists the
keys allowed there; a bad value names the key, what was given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from fe_adapter.config import PLACEMENTS
from fe_adapter.data.registry import FORMATS, formats
from fe_adapter.device import DEVICE_NAME, DEVICE_NAMES

#: The video dataset formats ``data.dataset`` takes (``fe_adapter.data.registry``).
DATASETS = tuple(formats("video"))
#: DFEW's frame folders: every frame of a clip, or the official 16 per clip.
DFEW_FRAMES = ("clip_224x224", "clip_224x224_16f")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None
    fold: int = 1
    frames: str = "clip_224x224"
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
    val_fraction: float = 0.0
    empty_classes: str = "error"  # a class without training clips: "error" (stop before training) or "warn"


@dataclass
class ModelConfig:
    backbone: str = "vit_base_patch16_224"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    checkpoint: str | None = None
    random_backbone: bool = False
    mean: list[float] | None = None  # the image model's input statistics, when not its timm tag's defaults
    std: list[float] | None = None
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


def _imported(module: str, name: str) -> Callable[[], tuple]:
    """The choices ``module.name``, imported when a key that needs them is checked (these modules load torch)."""
    return lambda: getattr(importlib.import_module(module), name)


#: The values a key may take. Lists kept in modules that load torch are imported only when their key is checked,
#: so that a config's keys and its run section are checked without torch (``check_keys``, ``config_section``).
_CHOICES: dict[str, tuple | Callable[[], tuple]] = {
    "data.dataset": DATASETS, "data.sampling": _imported("fe_adapter.data.sampling", "SAMPLINGS"),
    "data.spatial_crops": (1, 3), "model.placement": PLACEMENTS,
    "model.activation": _imported("fekernels", "ACTIVATIONS"), "model.impl": _imported("fekernels", "IMPLS"),
    "model.backbone_dtype": ("fp32", "bf16"), "optim.amp": ("auto", "none", "bf16", "fp16"),
    "run.select_metric": ("uar", "war"), "data.fold": (1, 2, 3, 4, 5), "data.frames": DFEW_FRAMES,
    "data.empty_classes": ("error", "warn"),
}


#: Keys whose values lie in an interval: (low, high, low included, high included); None is unbounded.
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "optim.warmup_epochs": (0, None, True, False), "optim.weight_decay": (0, None, True, False),
    "optim.min_lr": (0, None, True, False), "optim.clip_grad": (0, None, False, False),
    "optim.label_smoothing": (0, 1, True, False), "model.dropout": (0, 1, True, False),
    "data.min_readable": (0, 1, False, True), "data.val_fraction": (0, 1, True, False),
}


def _check_range(key: str, value: float, ranges: dict[str, tuple] = _RANGES) -> None:
    low, high, low_closed, high_closed = ranges[key]
    too_low = low is not None and (value < low if low_closed else value <= low)
    too_high = high is not None and (value > high if high_closed else value >= high)
    if not (too_low or too_high):
        return
    if high is None:
        allowed = f"{'>=' if low_closed else '>'} {low}"
    else:
        allowed = f"in {'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
    raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def _check_backbone_kwargs(kwargs: dict[str, Any]) -> None:
    """Catch YAML's flow-mapping pitfall: ``{depth:2}`` (no space after the colon) reads as the key
    ``'depth:2'`` with no value, which timm drops without a word."""
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise ConfigError(f"model.backbone_kwargs keys must be names, got {key!r}")
        if value is None:
            hint = (f"; in YAML write {{{key.split(':', 1)[0]}: {key.split(':', 1)[1]}}} with a space after the colon"
                    if ":" in key else "; give it a value or leave the key out")
            raise ConfigError(f"model.backbone_kwargs.{key} has no value (null){hint}")


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


def _rules(root: type) -> tuple[dict, dict, set]:
    """The value rules of a config kind: the video ones, with what ``root`` (e.g. the image pretraining config)
    adds or replaces in its class variables CHOICES, RANGES and POSITIVE."""
    return ({**_CHOICES, **getattr(root, "CHOICES", {})}, {**_RANGES, **getattr(root, "RANGES", {})},
            _POSITIVE | getattr(root, "POSITIVE", set()))


def _build_section(name: str, cls: type, values: dict[str, Any], root: type | None = None) -> Any:
    _check_section_keys(name, cls, values)
    all_choices, ranges, positive = _rules(root or TrainConfig)
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        full = f"{name}.{key}"
        value = _coerce(full, value, hints[key])
        choices = all_choices.get(full)
        choices = choices() if callable(choices) else choices
        if choices is not None and value not in choices:
            raise ConfigError(f"{full} must be one of {choices}, got {value!r}")
        if full in positive and value is not None and value < 1:
            raise ConfigError(f"{full} must be >= 1, got {value!r}")
        if full == "optim.lr" and value <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {value!r}")
        if full in ranges and value is not None:
            _check_range(full, value, ranges)
        if full == "run.device" and not DEVICE_NAME.fullmatch(value):
            raise ConfigError(f"run.device must be {DEVICE_NAMES}, got {value!r}")
        if full == "model.backbone_kwargs":
            _check_backbone_kwargs(value)
        if full == "data.class_names" and value is not None and not all(isinstance(n, str) for n in value):
            raise ConfigError(f"data.class_names must be a list of strings, got {value!r}")
        if full == "model.dilation" and isinstance(value, list) and not all(
                isinstance(d, int) and not isinstance(d, bool) for d in value):
            raise ConfigError(f"model.dilation must be an int or a list of ints, got {value!r}")
        checked[key] = value
    return cls(**checked)


def _check_section_keys(name: str, cls: type, values: Any) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"section {name!r} must be a mapping of keys to values, got {values!r}")
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key {name}.{unknown[0]}; allowed keys in {name}: {', '.join(allowed)}")


def check_keys(values: dict[str, Any], root: type | None = None) -> None:
    """Raise ConfigError for an unknown section or key (naming it and what is allowed), before any value is
    checked: a typo is refused without loading torch. ``root``: the kind of config (default ``TrainConfig``)."""
    sections = {name: hint for name, hint in typing.get_type_hints(root or TrainConfig).items()
                if typing.get_origin(hint) is not ClassVar}
    unknown = sorted(set(values) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r}; allowed sections: {', '.join(sections)}")
    for name, cls in sections.items():
        _check_section_keys(name, cls, values.get(name) or {})


def config_section(values: dict[str, Any], name: str, root: type | None = None) -> Any:
    """One section of the config ``values`` describe (e.g. "run"), its values checked; it loads torch only for
    keys whose choices need it (data.sampling, model.activation, model.impl). ``root``: the kind of config
    (default ``TrainConfig``)."""
    root = root or TrainConfig
    return _build_section(name, typing.get_type_hints(root)[name], values.get(name) or {}, root)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig from nested dicts (missing keys take their defaults)."""
    check_keys(values)
    config = TrainConfig(**{name: config_section(values, name) for name in typing.get_type_hints(TrainConfig)})
    if config.model.backbone_dtype == "bf16" and config.optim.amp not in ("bf16", "auto"):
        raise ConfigError("model.backbone_dtype bf16 needs optim.amp bf16 (or auto on a GPU)")
    dataset_format = FORMATS[config.data.dataset]
    missing = [f"data.{name}" for name in dataset_format.required() if not getattr(config.data, name, None)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} required for "
                          f"data.dataset = {config.data.dataset!r}")
    if config.data.frames != DataConfig.frames and "frames" not in dataset_format.options():
        raise ConfigError(f"data.frames picks DFEW's frame folder; it has no meaning for data.dataset = "
                          f"{config.data.dataset!r}")
    check_min_lr(config.optim)
    if config.model.random_backbone and (config.model.checkpoint or config.model.pretrained):
        raise ConfigError("model.random_backbone=true asks for a randomly initialised backbone; leave "
                          "model.checkpoint and model.pretrained unset with it")
    return config


def check_min_lr(optim: Any) -> None:
    """Refuse an ``optim`` section whose ``min_lr``, the floor of the cosine schedule, exceeds its ``lr``."""
    if optim.min_lr > optim.lr:
        raise ConfigError(f"optim.min_lr ({optim.min_lr:g}) must not exceed optim.lr ({optim.lr:g}): it is the floor "
                          "the cosine schedule decays to")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` (value parsed as YAML) -> (["section", "key"], value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2:
        raise ConfigError(f"override key {key!r} must be section.key, e.g. optim.lr")
    try:
        return parts, yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({problem}); values are YAML, e.g. "
                          "optim.lr=0.001, model.dilation=[1, 2], 'model.backbone_kwargs={depth: 2}'") from None


def read_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The sections of a YAML config file (or none: the defaults) with ``section.key=value`` overrides applied,
    not yet checked; ConfigError for a missing file, invalid YAML or a malformed override."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path}: not valid YAML{where} ({problem})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping of sections, got {type(values).__name__}")
    for override in overrides:
        (section, key), value = parse_override(override)
        if values.get(section) is None:  # absent, or a section whose keys are all commented out
            values[section] = {}
        if not isinstance(values[section], dict):
            raise ConfigError(f"section {section!r} must be a mapping")
        values[section][key] = value
    return values


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply ``section.key=value`` overrides."""
    return config_from_dict(read_config(path, overrides))
