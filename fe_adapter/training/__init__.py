"""Training and evaluation of FE-Adapter models: config, trainer, checkpoints, reports, distributed runs."""

from fe_adapter.training.config import ConfigError, TrainConfig, config_from_dict, load_config
from fe_adapter.training.trainer import Evaluation, Trainer

__all__ = ["ConfigError", "Evaluation", "TrainConfig", "Trainer", "config_from_dict", "load_config"]
