"""``Face``: one face found in one frame (its box, the detector's confidence, five landmarks), in frame pixels."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: The order of ``Face.landmarks`` rows (as the person appears in the image: "left eye" is on the image's left).
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")


@dataclass(frozen=True, eq=False)
class Face:
    """A face in one frame: ``box`` (x0, y0, x1, y1) in pixels, the detector's ``score`` (higher is surer; MTCNN's
    probability, or the LBP cascade's share of votes), and ``landmarks``, a (5, 2) float array of (x, y) image
    coordinates in ``LANDMARK_NAMES`` order, or None when the detector gives none (LBP)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def side(self) -> float:
        """The longer side of the box."""
        return max(self.width, self.height)

    def iou(self, other: Face) -> float:
        """Intersection over union of the two boxes."""
        return box_iou(self.box, other.box)

    def moved(self, dx: float, dy: float, scale: float = 1.0) -> Face:
        """This face shifted by (dx, dy) pixels and scaled by ``scale`` about its centre (landmarks too)."""
        cx, cy = self.centre
        x0, y0, x1, y1 = self.box
        box = (cx + dx + (x0 - cx) * scale, cy + dy + (y0 - cy) * scale,
               cx + dx + (x1 - cx) * scale, cy + dy + (y1 - cy) * scale)
        landmarks = None if self.landmarks is None else \
            (self.landmarks - (cx, cy)) * scale + (cx + dx, cy + dy)
        return replace(self, box=box, landmarks=landmarks)

    def rescaled(self, factor: float) -> Face:
        """Box and landmarks multiplied by ``factor`` (from a downscaled frame's pixels to the frame's)."""
        landmarks = None if self.landmarks is None else self.landmarks * factor
        return replace(self, box=tuple(float(v) * factor for v in self.box), landmarks=landmarks)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (0 when both are empty)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def square_face(x: float, y: float, side: float, score: float = 1.0) -> Face:
    """A face with a square box of ``side`` centred on (x, y) and no landmarks."""
    half = side / 2
    return Face((x - half, y - half, x + half, y + half), score)


def centre_face(frame: np.ndarray, margin: float) -> Face:
    """The face whose crop (``align_face`` with this ``margin``) is the frame's centre square: for clips that are
    face crops already, and for frames before any face was found."""
    height, width = frame.shape[:2]
    return square_face((width - 1) / 2, (height - 1) / 2, min(height, width) / margin, score=0.0)
