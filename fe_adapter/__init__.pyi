# The public names of fe_adapter, for type checkers and for the lazy loader of __init__.py (which reads this
# file: every name here is imported from its module on first use). A new public name goes here, nowhere else;
# "X as X" marks it public for type checkers (PEP 484).
from . import (
    data as data,
    faces as faces,
    predict as predict,
    training as training,
)
from .adapter import (
    FEAdapter as FEAdapter,
)
from .checkpoint import (
    CheckpointError as CheckpointError,
    load_adapters as load_adapters,
    load_model as load_model,
    read_adapter_config as read_adapter_config,
    save_adapters as save_adapters,
)
from .config import (
    PLACEMENTS as PLACEMENTS,
    AdapterConfig as AdapterConfig,
)
from .export import (
    ExportError as ExportError,
    export_model as export_model,
)
from .model import (
    VideoClassifier as VideoClassifier,
    create_model as create_model,
)
from .params import (
    ParameterReport as ParameterReport,
    parameter_report as parameter_report,
)
from .image_model import (
    load_image_model as load_image_model,
    save_image_model as save_image_model,
)
from .predict import (
    PredictionError as PredictionError,
    Predictor as Predictor,
    VideoPrediction as VideoPrediction,
)
from .training.run import (
    pretrain_image as pretrain_image,
)
from .vit import (
    AdaptedBlock as AdaptedBlock,
    adapt as adapt,
    adapters as adapters,
    classifier_heads as classifier_heads,
    set_num_frames as set_num_frames,
)

__version__: str
