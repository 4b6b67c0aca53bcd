"""Prediction on ordinary video files: faces found and tracked, sliding windows, JSON/CSV/PNG outputs.

- ``predictor``: ``Predictor`` (stream a video's face crops through the model, window by window).
- ``face_pass``: ``find_faces`` (a video's sampled frames read, their faces followed and aligned:
  ``fe_adapter.faces``); ``face_items``: ``FaceSettings`` and the items it yields.
- ``face_worker``: ``FaceWorker``, the same in a second process, ahead of the model.
- ``windows``: where the sliding windows lie and which frames each samples.
- ``results``: ``VideoPrediction``, ``WindowPrediction`` and ``TrackPrediction``, and their JSON layout.
- ``timeline``: writing a prediction as JSON, CSV and a PNG timeline.
- ``examples``: example media made from a public photo (docs and tests).

The names (listed in ``__init__.pyi``) are imported on first use, like ``fe_adapter``'s: the command line
checks inputs and outputs without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
