# The public names of fe_adapter.training, for type checkers and for the lazy loader of __init__.py.
from .config import (
    ConfigError as ConfigError,
    TrainConfig as TrainConfig,
    config_from_dict as config_from_dict,
    load_config as load_config,
)
from .trainer import (
    Evaluation as Evaluation,
    Trainer as Trainer,
)
