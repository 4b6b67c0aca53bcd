# The public names of fe_adapter.predict, for type checkers and for the lazy loader of __init__.py.
from .engines import (
    Engine as Engine,
    ExportedEngine as ExportedEngine,
    TorchEngine as TorchEngine,
)
from .face_items import (
    FaceSettings as FaceSettings,
)
from .face_pass import (
    find_faces as find_faces,
)
from .face_worker import (
    FaceWorker as FaceWorker,
)
from .predictor import (
    Predictor as Predictor,
)
from .results import (
    MIN_FACE_FRACTION as MIN_FACE_FRACTION,
    SCHEMA_VERSION as SCHEMA_VERSION,
    PredictionError as PredictionError,
    TrackPrediction as TrackPrediction,
    VideoPrediction as VideoPrediction,
    WindowPrediction as WindowPrediction,
)
from .timeline import (
    write_prediction as write_prediction,
)
