"""What prediction returns: probabilities per window and for the whole video, and their JSON form.

The JSON layout (``VideoPrediction.to_dict``, written by ``write_prediction``) is documented field by field
in docs/predict.md; ``SCHEMA_VERSION`` changes whenever a field changes meaning or goes away.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

#: Version of the JSON layout of ``VideoPrediction.to_dict``. 2: windows without a face (``no_face``, ``top`` null,
#: left out of ``overall``, which is null when no window has a face), ``min_face_fraction``, ``no_face_windows``.
#: 3: faces tracked with ids: ``detector``, ``detect_every``, ``track_id`` and ``box`` per window, ``tracks`` (one
#: timeline per person, with --all-faces).
SCHEMA_VERSION = 3

#: Default ``min_face_fraction``: a window whose face was detected in fewer than half of its sampled frames is a
#: no-face window.
MIN_FACE_FRACTION = 0.5


class PredictionError(Exception):
    """A video that cannot be predicted (unreadable, no face), with a message naming the file."""


def check_min_face_fraction(value: float) -> float:
    """``value`` if it is a fraction in [0, 1], else ValueError naming ``min_face_fraction``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"min_face_fraction must be a number in 0..1 (the share of a window's frames in which a "
                         f"face must be detected), got {value!r}")
    return float(value)


@dataclass
class WindowPrediction:
    """Class probabilities of one window [start, end) seconds; ``faces_found`` of its ``frames`` sampled frames
    had a detected face (the others reuse the last box).

    A ``no_face`` window had a face in too few of its frames (below ``min_face_fraction``): the model saw the
    background or a stale box, so its probabilities say nothing about an expression. Its ``top`` is None and
    the video's ``overall`` leaves it out; ``probabilities`` keep what the model gave, for inspection.
    """

    start: float
    end: float
    probabilities: dict[str, float]
    faces_found: int
    frames: int
    no_face: bool = False
    track_id: int | None = None  # the person (``FaceTracker`` id) most of its frames show; None: not tracked
    box: tuple[float, float, float, float] | None = None  # the face box (x0, y0, x1, y1 pixels) at its middle frame

    @property
    def top(self) -> str | None:
        """The most probable class; None for a no-face window."""
        if self.no_face:
            return None
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        return {"start_s": self.start, "end_s": self.end, "track_id": self.track_id,
                "box": None if self.box is None else [round(value, 1) for value in self.box], "top": self.top,
                "no_face": self.no_face, "faces_found": self.faces_found, "frames": self.frames,
                "probabilities": self.probabilities}


class _Summary:
    """What a list of ``windows`` adds up to: the windows with a face and their mean probabilities."""

    windows: list[WindowPrediction]

    @property
    def face_windows(self) -> list[WindowPrediction]:
        """The windows with a face: those ``overall`` averages."""
        return [w for w in self.windows if not w.no_face]

    @property
    def no_face_windows(self) -> int:
        """How many windows had too few detected faces (left out of ``overall``)."""
        return len(self.windows) - len(self.face_windows)

    @property
    def overall(self) -> dict[str, float] | None:
        """Mean of the probabilities of the windows with a face; None when no window has one."""
        counted = self.face_windows
        if not counted:
            return None
        return {name: float(np.mean([w.probabilities[name] for w in counted])) for name in counted[0].probabilities}

    @property
    def top(self) -> str | None:
        """The class with the highest ``overall`` probability; None when no window has a face."""
        overall = self.overall
        return None if overall is None else max(overall, key=overall.get)


@dataclass
class TrackPrediction(_Summary):
    """The timeline of one person (``FaceTracker`` track ``track_id``): the windows in which the person was in at
    least one sampled frame, and in how many sampled frames the face was seen."""

    track_id: int
    windows: list[WindowPrediction]
    frames_seen: int

    def to_dict(self) -> dict:
        return {"track_id": self.track_id, "frames_seen": self.frames_seen, "top": self.top, "overall": self.overall,
                "no_face_windows": self.no_face_windows, "windows": [w.to_dict() for w in self.windows]}


@dataclass
class VideoPrediction(_Summary):
    """Per-window and whole-video probabilities of one video, with what it took to compute them.

    ``thumbnails`` maps a few window indices (at most ``Predictor``'s ``thumbnails``, evenly spread) to the
    face crop of the window's middle frame. ``peak_frames_held`` is the largest number of face crops held at
    once while streaming (it depends on window, stride and batch size, not on the video's length);
    ``frames_decoded`` how many frames the reader decoded (fewer than ``frame_count`` where it could seek).
    ``min_face_fraction`` is the share of a window's frames that needed a detected face (below it: no-face).
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
    min_face_fraction: float = MIN_FACE_FRACTION
    detector: str = "mtcnn"  # or "lbp"; "none": the frames are face crops already
    detect_every: int = 1
    track_id: int | None = None  # the main face's track (None with detector "none")
    tracks: list[TrackPrediction] = field(default_factory=list)  # every person's timeline (all_faces only)

    @property
    def classes(self) -> list[str]:
        return list(self.windows[0].probabilities)

    def to_dict(self) -> dict:
        """The JSON layout (docs/predict.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "path": self.path, "duration_s": self.duration, "video_fps": self.fps, "frame_count": self.frame_count,
            "window_s": self.window, "stride_s": self.stride, "frames_per_window": self.frames_per_window,
            "min_face_fraction": self.min_face_fraction, "processing_fps": self.processing_fps,
            "detector": self.detector, "detect_every": self.detect_every,
            "classes": self.classes, "track_id": self.track_id, "top": self.top, "overall": self.overall,
            "no_face_windows": self.no_face_windows,
            "windows": [w.to_dict() for w in self.windows],
            "tracks": [track.to_dict() for track in self.tracks],
        }


def prediction_summary(prediction: VideoPrediction, label: str) -> str:
    """What ``fe-adapter predict`` prints for one video (``label``): the overall result (or why there is none),
    how many windows were left out for want of a face, then one line per window."""
    count, left_out = len(prediction.windows), prediction.no_face_windows
    threshold = f"a face detected in at least {prediction.min_face_fraction:.0%} of their frames"
    speed = f"{prediction.processing_fps:.1f} frames/s processed"
    if prediction.top is None:
        lines = [f"{label}: no overall result: none of its {count} windows had {threshold}; {speed}"]
    elif left_out:
        lines = [f"{label}: {prediction.top} overall ({prediction.overall[prediction.top]:.0%}) from the "
                 f"{count - left_out} of {count} windows with {threshold}; {left_out} without a face left out; {speed}"]
    else:
        lines = [f"{label}: {prediction.top} overall ({prediction.overall[prediction.top]:.0%}), {count} windows, "
                 f"{speed}"]
    for track in prediction.tracks:
        result = "no overall result" if track.top is None else f"{track.top} ({track.overall[track.top]:.0%})"
        lines.append(f"  person {track.track_id}: {result} in {len(track.windows)} windows, seen in "
                     f"{track.frames_seen} frames")
    for window in prediction.windows:
        found = f"faces {window.faces_found}/{window.frames}"
        if window.top is None:
            lines.append(f"  {window.start:6.2f}-{window.end:6.2f}s  {'no face':<16}       {found}")
        else:
            lines.append(f"  {window.start:6.2f}-{window.end:6.2f}s  {window.top:<16} "
                         f"{window.probabilities[window.top]:>4.0%}  {found}")
    return "\n".join(lines)
