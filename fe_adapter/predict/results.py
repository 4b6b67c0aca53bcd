"""What prediction returns: probabilities per window and for the whole video, and their JSON form.

The JSON layout (``VideoPrediction.to_dict``, written by ``write_prediction``) is documented field by field
in docs/predict.md; ``SCHEMA_VERSION`` changes whenever a field changes meaning or goes away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Version of the JSON layout of ``VideoPrediction.to_dict``.
SCHEMA_VERSION = 1


class PredictionError(Exception):
    """A video that cannot be predicted (unreadable, no face), with a message naming the file."""


@dataclass
class WindowPrediction:
    """Class probabilities of one window [start, end) seconds; ``faces_found`` of its ``frames`` sampled frames
    had a detected face (the others reuse the last box)."""

    start: float
    end: float
    probabilities: dict[str, float]
    faces_found: int
    frames: int

    @property
    def top(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)


@dataclass
class VideoPrediction:
    """Per-window and whole-video probabilities of one video, with what it took to compute them.

    ``thumbnails`` maps a few window indices (at most ``Predictor``'s ``thumbnails``, evenly spread) to the
    face crop of the window's middle frame. ``peak_frames_held`` is the largest number of face crops held at
    once while streaming (it depends on window, stride and batch size, not on the video's length);
    ``frames_decoded`` how many frames the reader decoded (fewer than ``frame_count`` where it could seek).
    """

    path: str
    duration: float
    fps: float
    windows: list[WindowPrediction]
    processing_fps: float
    frame_count: int = 0
    window: float = 0.0
    stride: float = 0.0
    frames_per_window: int = 0
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    peak_frames_held: int = 0
    frames_decoded: int = 0

    @property
    def overall(self) -> dict[str, float]:
        """Mean of the window probabilities."""
        names = list(self.windows[0].probabilities)
        return {name: float(np.mean([w.probabilities[name] for w in self.windows])) for name in names}

    @property
    def top(self) -> str:
        overall = self.overall
        return max(overall, key=overall.get)

    def to_dict(self) -> dict:
        """The JSON layout (docs/predict.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "path": self.path, "duration_s": self.duration, "video_fps": self.fps, "frame_count": self.frame_count,
            "window_s": self.window, "stride_s": self.stride, "frames_per_window": self.frames_per_window,
            "processing_fps": self.processing_fps, "classes": list(self.windows[0].probabilities),
            "top": self.top, "overall": self.overall,
            "windows": [{"start_s": w.start, "end_s": w.end, "top": w.top, "faces_found": w.faces_found,
                         "frames": w.frames, "probabilities": w.probabilities} for w in self.windows],
        }
