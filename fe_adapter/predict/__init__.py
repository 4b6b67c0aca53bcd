"""Prediction on ordinary video files: faces found and tracked, sliding windows, JSON/CSV/PNG outputs.

- ``predictor``: ``Predictor`` (decode, sample, crop, classify per window) and its results.
- ``faces``: face detection, smooth tracking and cropping.
- ``timeline``: writing a prediction as JSON, CSV and a PNG timeline.
- ``examples``: example media made from a public photo (docs and tests).
"""

from fe_adapter.predict.predictor import PredictionError, Predictor, VideoPrediction, WindowPrediction
from fe_adapter.predict.timeline import write_prediction

__all__ = ["PredictionError", "Predictor", "VideoPrediction", "WindowPrediction", "write_prediction"]
