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
from .image_config import (
    ImageTrainConfig as ImageTrainConfig,
    image_config_from_dict as image_config_from_dict,
    load_image_config as load_image_config,
)
from .image_task import (
    ImageTask as ImageTask,
)
from .run import (
    pretrain_image as pretrain_image,
)
from .task import (
    Task as Task,
    VideoTask as VideoTask,
)
