"""Face detectors: MTCNN with five landmarks (facenet-pytorch, the default) and scikit-image's LBP cascade (the
fallback). Both ship their weights inside their wheels: nothing is downloaded at run time.

Frames are downscaled (in uint8, by Pillow) to ``detect_width`` before detection, which is where the time goes:
detection cost grows with the pixels and with the range of face sizes searched (``min_face``). Faces come back in
the full frame's pixels, best first.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from fe_adapter.faces.face import Face, box_iou

#: The detectors ``make_detector`` knows, with the width each downscales frames to by default: MTCNN stays accurate
#: on faces of 40 px and more at 640 px wide; the LBP cascade is ~4x slower per pixel and was 320 px wide before.
DETECTORS = {"mtcnn": 640, "lbp": 320}

#: MTCNN's last-stage probability below which a face is dropped: its own thresholds (0.6, 0.7, 0.7) keep faint
#: patterns (patterned cloth, posters) that a video's tracks should not follow.
MTCNN_MIN_SCORE = 0.9

_LUMA = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 (H, W, 3) frame, best first, in the frame's pixels."""

    name: str

    def detect(self, frame: np.ndarray) -> list[Face]: ...


@runtime_checkable
class Refiner(Protocol):
    """A detector that can re-measure faces from boxes near them, far cheaper than a scan of the frame:
    ``FaceTracker`` follows faces between detections with it."""

    def refine(self, frame: np.ndarray, faces: list[Face]) -> list[Face | None]: ...


def make_detector(name: str = "mtcnn", *, detect_width: int | None = None, min_face: float = 0.1) -> Detector:
    """The detector called ``name`` (``DETECTORS``: "mtcnn", "lbp").

    Args:
        detect_width: frames wider than this are downscaled to it before detection (never upscaled); None: the
            detector's default (``DETECTORS``).
        min_face: the smallest face side searched for, as a fraction of the frame's shorter side.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}: known ones are {', '.join(DETECTORS)}")
    width = DETECTORS[name] if detect_width is None else detect_width
    if isinstance(width, bool) or not isinstance(width, int) or width < 16:
        raise ValueError(f"detect_width must be an integer >= 16 pixels (or None), got {detect_width!r}")
    if not 0.0 < min_face <= 1.0:
        raise ValueError(f"min_face must be a fraction of the frame's shorter side in (0, 1], got {min_face!r}")
    return MtcnnDetector(width, min_face) if name == "mtcnn" else LbpDetector(width, min_face)


def check_frame(frame: np.ndarray) -> None:
    """ValueError unless ``frame`` is an RGB uint8 (H, W, 3) array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"frame must be an RGB uint8 array of shape (H, W, 3), got {type(frame).__name__} "
                         f"{getattr(frame, 'dtype', '')} {shape}")


def downscaled(frame: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """``frame`` downscaled (Pillow, box filter, uint8: no full-size float copy) to at most ``width`` pixels wide,
    and the factor from its pixels back to the frame's."""
    from PIL import Image

    height, frame_width = frame.shape[:2]
    if frame_width <= width:
        return frame, 1.0
    image = Image.fromarray(frame)
    if frame_width % width == 0 and height % (frame_width // width) == 0:  # 1280 -> 640: the same box, 3x faster
        return np.asarray(image.reduce(frame_width // width)), frame_width / width
    size = (width, max(1, round(height * width / frame_width)))
    return np.asarray(image.resize(size, Image.BOX)), frame_width / width


class MtcnnDetector:
    """MTCNN (Zhang et al. 2016) with facenet-pytorch's weights: boxes, probabilities and five landmarks, on the
    CPU (``fe_adapter.faces.mtcnn``: facenet-pytorch's pipeline with every box of a stage resized at once)."""

    name = "mtcnn"

    def __init__(self, detect_width: int, min_face: float) -> None:
        from fe_adapter.faces.mtcnn import Mtcnn

        try:
            self._mtcnn = Mtcnn()
        except (ImportError, FileNotFoundError) as error:  # facenet-pytorch, whose wheel holds the weights, is absent
            raise ImportError(f"the mtcnn face detector needs facenet-pytorch ({error}): pip install "
                              "'facenet-pytorch==2.5.3' --no-deps, or use the lbp detector") from error
        self.detect_width, self.min_face = detect_width, min_face

    def detect(self, frame: np.ndarray) -> list[Face]:
        check_frame(frame)
        small, factor = downscaled(frame, self.detect_width)
        boxes, scores, points = self._mtcnn.detect(small, max(12, round(self.min_face * min(small.shape[:2]))))
        faces = [Face(tuple(float(v) for v in box), float(score), np.asarray(landmarks, dtype=np.float64))
                 for box, score, landmarks in zip(boxes, scores, points, strict=True) if score >= MTCNN_MIN_SCORE]
        return sorted((face.rescaled(factor) for face in faces), key=lambda face: face.score, reverse=True)

    def refine(self, frame: np.ndarray, faces: list[Face]) -> list[Face | None]:
        """Each face re-measured where its box now is (MTCNN's last stage on the box, in the full frame): its new box,
        probability and landmarks, or None where the network is not sure of a face (below ``MTCNN_MIN_SCORE``)."""
        check_frame(frame)
        if not faces:
            return []
        boxes, scores, points = self._mtcnn.refine(frame, np.array([face.box for face in faces]))
        return [Face(tuple(float(v) for v in box), float(score), landmarks) if score >= MTCNN_MIN_SCORE else None
                for box, score, landmarks in zip(boxes, scores, points, strict=True)]


class LbpDetector:
    """scikit-image's LBP frontal-face cascade: boxes without landmarks. Overlapping raw detections are merged;
    a face's score is the share of the raw detections that overlap it."""

    name = "lbp"

    def __init__(self, detect_width: int, min_face: float) -> None:
        from skimage import data as skimage_data
        from skimage.feature import Cascade

        self.detect_width, self.min_face = detect_width, min_face
        self._cascade = Cascade(skimage_data.lbp_frontal_face_cascade_filename())

    def detect(self, frame: np.ndarray) -> list[Face]:
        check_frame(frame)
        small, factor = downscaled(frame, self.detect_width)
        grey = small @ _LUMA / 255.0
        shorter = min(grey.shape)
        smallest = max(16, int(self.min_face * shorter))
        found = self._cascade.detect_multi_scale(img=grey, scale_factor=1.2, step_ratio=1,
                                                 min_size=(smallest, smallest), max_size=(shorter, shorter))
        boxes = [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]
        votes = [sum(box_iou(box, other) > 0.3 for other in boxes) for box in boxes]
        ranked = sorted(zip(votes, boxes, strict=True), key=lambda pair: (pair[0], pair[1][2] - pair[1][0]),
                        reverse=True)
        kept: list[Face] = []
        for count, box in ranked:  # the best-voted box of each group of overlapping ones
            if all(box_iou(box, face.box) <= 0.3 for face in kept):
                kept.append(Face(tuple(float(v) for v in box), count / len(boxes)))
        return [face.rescaled(factor) for face in kept]
