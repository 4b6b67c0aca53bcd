"""fe-adapter: adapt image ViTs (facial expression classifiers) to video with FE-Adapters.

Quickstart::

    import fe_adapter
    model = fe_adapter.create_model("vit_base_patch16_224", num_classes=7, num_frames=16)
    logits = model(clips)  # clips: (B, T, 3, H, W)
    print(fe_adapter.parameter_report(model))
"""

from fe_adapter.adapter import FEAdapter
from fe_adapter.checkpoint import CheckpointError, load_adapters, read_adapter_config, save_adapters
from fe_adapter.config import PLACEMENTS, AdapterConfig
from fe_adapter.model import VideoClassifier, create_model
from fe_adapter.params import ParameterReport, parameter_report
from fe_adapter.predict import PredictionError, Predictor, VideoPrediction
from fe_adapter.vit import AdaptedBlock, adapt, adapters, classifier_heads, set_num_frames

__version__ = "0.1.0"

__all__ = [
    "PLACEMENTS",
    "AdaptedBlock",
    "AdapterConfig",
    "CheckpointError",
    "FEAdapter",
    "ParameterReport",
    "PredictionError",
    "Predictor",
    "VideoClassifier",
    "VideoPrediction",
    "adapt",
    "adapters",
    "classifier_heads",
    "create_model",
    "load_adapters",
    "parameter_report",
    "read_adapter_config",
    "save_adapters",
    "set_num_frames",
]
