"""Prediction on ordinary video files: faces found and tracked, sliding windows, JSON/CSV/PNG outputs.

- ``predictor``: ``Predictor`` (stream the video, follow and align the faces (``fe_adapter.faces``), classify per
  window).
- ``windows``: where the sliding windows lie and which frames each samples.
- ``results``: ``VideoPrediction``, ``WindowPrediction`` and ``TrackPrediction``, and their JSON layout.
- ``timeline``: writing a prediction as JSON, CSV and a PNG timeline.
- ``examples``: example media made from a public photo (docs and tests).

The names (listed in ``__init__.pyi``) are imported on first use, like ``fe_adapter``'s: the command line
checks inputs and outputs without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
