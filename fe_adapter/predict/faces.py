"""Face finding for prediction on ordinary videos: detect, track smoothly, crop.

The detector is scikit-image's LBP frontal-face cascade (``fe_adapter.faces``), which ships inside the package
(no download). Detections are made on a downscaled grey frame; the box is smoothed over
time; a frame where no face is found keeps the last box and is flagged. Tracking is incremental
(``FaceTrack.update``), so a video is followed frame by frame without holding its frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A square face box in pixels: centre (x, y) and side length."""

    x: float
    y: float
    size: float

    def overlap(self, other: Box) -> float:
        """Intersection over union."""
        half_a, half_b = self.size / 2, other.size / 2
        width = max(0.0, min(self.x + half_a, other.x + half_b) - max(self.x - half_a, other.x - half_b))
        height = max(0.0, min(self.y + half_a, other.y + half_b) - max(self.y - half_a, other.y - half_b))
        intersection = width * height
        return intersection / (self.size**2 + other.size**2 - intersection)

    def blend(self, other: Box, weight: float) -> Box:
        """``weight`` of ``other`` and the rest of this box."""
        keep = 1.0 - weight
        return Box(keep * self.x + weight * other.x, keep * self.y + weight * other.y,
                   keep * self.size + weight * other.size)


@dataclass(frozen=True)
class TrackedFace:
    """The box used for one frame and whether a face was detected in that frame."""

    box: Box
    detected: bool


class FaceTracker:
    """Find the face in each frame of a clip.

    Args:
        detect_width: frames are downscaled to this width for detection (speed).
        smoothing: weight of a new detection against the running box (1 = no smoothing).
        min_face: smallest face side, as a fraction of the frame's shorter side.
    """

    def __init__(self, detect_width: int = 320, smoothing: float = 0.6, min_face: float = 0.12) -> None:
        from fe_adapter.faces import make_detector

        self._detector = make_detector("lbp", detect_width=detect_width, min_face=min_face)
        self.detect_width = detect_width
        self.smoothing = smoothing
        self.min_face = min_face

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Face boxes in one (H, W, 3) uint8 frame, best first (``fe_adapter.faces``' LBP detector)."""
        return [Box(*face.centre, face.side) for face in self._detector.detect(frame)]

    def start(self) -> FaceTrack:
        """A new track: feed it the frames of one video in order (``FaceTrack.update``)."""
        return FaceTrack(self)

    def track(self, frames: Sequence[np.ndarray]) -> list[TrackedFace | None]:
        """One box per frame (None only before the first face is ever found: see ``fill_leading``)."""
        track = self.start()
        return fill_leading([track.update(frame) for frame in frames])


class FaceTrack:
    """The face box of one video, followed frame by frame: each frame is seen once and not kept."""

    def __init__(self, tracker: FaceTracker) -> None:
        self.tracker = tracker
        self.box: Box | None = None

    def update(self, frame: np.ndarray) -> TrackedFace | None:
        """The box for this frame: the detection that continues the track, blended into the running box; the
        last box (flagged not detected) if no face is found; None before any face was found."""
        boxes = self.tracker.detect(frame)
        if self.box is not None:  # prefer the detection that continues the track
            current = self.box
            boxes.sort(key=lambda box: box.overlap(current), reverse=True)
        if not boxes:
            return None if self.box is None else TrackedFace(self.box, False)
        self.box = boxes[0] if self.box is None else self.box.blend(boxes[0], self.tracker.smoothing)
        return TrackedFace(self.box, True)


def fill_leading(tracked: list[TrackedFace | None]) -> list[TrackedFace | None]:
    """Frames before the first detection take the first detected box (flagged as not detected)."""
    first = next((face for face in tracked if face is not None), None)
    if first is None:
        return tracked
    return [TrackedFace(first.box, False) if face is None else face for face in tracked]


def centre_box(frame: np.ndarray, margin: float = 1.25) -> Box:
    """The box whose ``crop_face`` (with the same ``margin``) is the frame's centre square."""
    height, width = frame.shape[:2]
    return Box(width / 2, height / 2, min(height, width) / margin)


def crop_face(frame: np.ndarray, box: Box, size: int, margin: float = 1.25) -> np.ndarray:
    """A (size, size, 3) uint8 crop around ``box`` enlarged by ``margin``, padded with edge pixels.

    Only the crop is copied (rows and columns clamped to the frame, which is what edge padding gives): padding
    the whole frame would allocate a frame-sized array of a new size for every box near an edge.
    """
    from PIL import Image

    side = box.size * margin
    left, top = round(box.x - side / 2), round(box.y - side / 2)
    height, width = frame.shape[:2]
    rows = np.clip(np.arange(top, top + round(side)), 0, height - 1)
    columns = np.clip(np.arange(left, left + round(side)), 0, width - 1)
    crop = Image.fromarray(np.ascontiguousarray(frame[rows[:, None], columns[None, :]]))
    return np.asarray(crop.resize((size, size), Image.BILINEAR))
