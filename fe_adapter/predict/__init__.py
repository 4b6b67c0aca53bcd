"""Prediction on ordinary video files: faces found and tracked, sliding windows, JSON/CSV/PNG outputs.

- ``predictor``: ``Predictor`` (stream the video, follow and crop the face, classify per window).
- ``windows``: where the sliding windows lie and which frames each samples.
- ``results``: ``VideoPrediction`` and ``WindowPrediction``, and their JSON layout.
- ``faces``: face detection, smooth tracking and cropping.
- ``timeline``: writing a prediction as JSON, CSV and a PNG timeline.
- ``examples``: example media made from a public photo (docs and tests).
"""

from fe_adapter.predict.predictor import Predictor
from fe_adapter.predict.results import (
    MIN_FACE_FRACTION,
    SCHEMA_VERSION,
    PredictionError,
    VideoPrediction,
    WindowPrediction,
)
from fe_adapter.predict.timeline import write_prediction

__all__ = ["MIN_FACE_FRACTION", "SCHEMA_VERSION", "PredictionError", "Predictor", "VideoPrediction",
           "WindowPrediction", "write_prediction"]
