"""Faces in frames: detection with landmarks, alignment, and tracking of every person across a video.

One package for every command that needs faces (predict, crop-faces, pretrain-image on raw images), so training
and prediction see the same crops.

- ``face``: ``Face`` (box, score, five landmarks) and box helpers.
- ``detectors``: ``make_detector`` ("mtcnn": facenet-pytorch's MTCNN, the default; "lbp": scikit-image's cascade).
- ``align``: ``align_face``, the five landmarks onto a fixed template (a square box crop without landmarks).
- ``tracking``: ``FaceTracker``, faces followed across frames with an id per person.
- ``crop_videos``, ``crop_images``: ``fe-adapter crop-faces`` on raw videos (every person) and raw photos (the
  main face of each).

The names (listed in ``__init__.pyi``) are imported on first use: the command line checks its inputs without
loading torch or scikit-image.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
