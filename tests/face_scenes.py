"""Frames with real faces for the face tests: scikit-image's astronaut photo (a public NASA portrait shipped in the
package), its head placed scaled, rotated, mirrored and moved into plain frames, with the landmarks it should have.
"""

from __future__ import annotations

import numpy as np

#: The five landmarks of the astronaut photo (512x512), in ``fe_adapter.faces.LANDMARK_NAMES`` order, (x, y)
#: pixels: read by eye on an 8x enlargement (pupil centres, nose tip, mouth corners).
PHOTO_LANDMARKS = np.array([[205.0, 102.0], [247.0, 104.0], [224.0, 130.0], [203.0, 140.0], [245.0, 142.0]])

_HEAD = (slice(40, 200), slice(160, 290))  # rows, columns of the photo: the head, no shoulders
_MIRRORED_ORDER = [1, 0, 2, 4, 3]  # a mirror image's left eye is the photo's right eye


def head() -> np.ndarray:
    from skimage import data

    return data.astronaut()[_HEAD]


def place_face(frame: np.ndarray, centre: tuple[float, float], scale: float = 0.5, angle: float = 0.0,
               mirror: bool = False) -> np.ndarray:
    """Draw the astronaut's head into ``frame`` (in place) so that its landmarks' mean lands on ``centre``,
    scaled by ``scale`` and turned by ``angle`` degrees (counter-clockwise on screen); return where its five
    landmarks are. The drawing uses scikit-image's ``warp`` (not the code under test)."""
    from skimage.transform import SimilarityTransform, warp

    source = head()
    landmarks = PHOTO_LANDMARKS - (_HEAD[1].start, _HEAD[0].start)
    if mirror:
        source = source[:, ::-1]
        landmarks = landmarks[_MIRRORED_ORDER] * (-1, 1) + (source.shape[1] - 1, 0)
    turn = SimilarityTransform(scale=scale, rotation=-np.radians(angle))  # y points down: minus is anticlockwise
    shift = np.asarray(centre) - turn(landmarks.mean(0, keepdims=True))[0]
    to_frame = SimilarityTransform(scale=scale, rotation=-np.radians(angle), translation=shift)
    shape = frame.shape[:2]
    pixels = warp(source, to_frame.inverse, output_shape=shape, order=1, preserve_range=True)
    inside = warp(np.ones(source.shape[:2]), to_frame.inverse, output_shape=shape, order=0, cval=0.0) > 0.5
    frame[inside] = np.round(pixels[inside]).astype(np.uint8)
    return to_frame(landmarks)


def blank(width: int = 320, height: int = 240, level: int = 110) -> np.ndarray:
    return np.full((height, width, 3), level, dtype=np.uint8)


def landmark_error(found: np.ndarray, expected: np.ndarray) -> float:
    """Mean landmark distance in inter-ocular distances (the field's normalised mean error)."""
    return float(np.linalg.norm(found - expected, axis=1).mean() / np.linalg.norm(expected[0] - expected[1]))
