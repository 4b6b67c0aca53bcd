"""Face crops for the model: the five landmarks mapped onto a fixed template by a similarity transform (rotation,
uniform scale, shift), or a square crop around the box when there are no landmarks. Predict, crop-faces and
pretrain-image all crop through ``align_face``, so training and prediction see the same crops.

Coordinates: pixel (row i, column j) has its centre at (x=j, y=i), as in scikit-image.
"""

from __future__ import annotations

import numpy as np

from fe_adapter.faces.detectors import check_frame
from fe_adapter.faces.face import Face

#: The five-point template of ArcFace/InsightFace (eyes, nose, mouth corners in ``LANDMARK_NAMES`` order) in a
#: 112x112 crop: the placement the face-recognition field aligns to.
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]])

#: Default ``margin``: the ArcFace crop is tight (mouth corners at 82% of its height); a quarter more keeps the
#: chin, brows and forehead in view, where expressions show.
MARGIN = 1.25


def face_template(size: int = 224, margin: float = MARGIN) -> np.ndarray:
    """Where ``align_face`` puts the five landmarks in its (size, size) crop: the ArcFace template, shrunk by
    ``margin`` about the crop's centre."""
    unit = ARCFACE_TEMPLATE_112 / 112.0
    return ((unit - 0.5) / margin + 0.5) * size - 0.5


def align_face(frame: np.ndarray, face: Face, size: int = 224, margin: float = MARGIN) -> np.ndarray:
    """A (size, size, 3) uint8 crop of ``face``: its landmarks moved onto ``face_template(size, margin)`` by the
    least-squares similarity transform; without landmarks, the square of side ``face.side * margin`` centred on
    the box. Pixels beyond the frame's edge repeat the edge (as a frame-border face is usually cut there)."""
    check_frame(frame)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    return warp_crop(frame, alignment_matrix(face, size, margin), size)


def alignment_matrix(face: Face, size: int, margin: float = MARGIN) -> np.ndarray:
    """The 3x3 matrix taking crop coordinates to frame coordinates for ``align_face``."""
    if face.landmarks is not None:
        landmarks = np.asarray(face.landmarks, dtype=np.float64)
        if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
            raise ValueError(f"face.landmarks must be a finite (5, 2) array, got shape {landmarks.shape}")
        matrix = similarity_fit(face_template(size, margin), landmarks)
        if matrix is not None:
            return matrix
    cx, cy = face.centre
    side = face.side * margin
    scale = side / size
    return np.array([[scale, 0.0, cx - side / 2 + scale / 2], [0.0, scale, cy - side / 2 + scale / 2],
                     [0.0, 0.0, 1.0]])


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The 3x3 matrix of the similarity (rotation, uniform scale, shift; no reflection) that takes the (N, 2)
    ``source`` points closest to ``target`` in least squares, or None when the target points coincide.

    In complex numbers the similarity is w = a z + b, and the least-squares a is sum(conj(z - mean z) (w - mean w))
    / sum |z - mean z|^2 (Umeyama's estimate, as scikit-image's ``SimilarityTransform`` gives it: tests/test_faces.py
    checks them against each other); written out here because importing ``skimage.transform`` (with the parts of
    scipy it loads) costs predict about half a second of start-up."""
    z, w = source @ np.array([1, 1j]), target @ np.array([1, 1j])
    z_centred, w_centred = z - z.mean(), w - w.mean()
    a = (np.conj(z_centred) * w_centred).sum() / (np.abs(z_centred) ** 2).sum()
    if not np.isfinite(a) or abs(a) < 1e-9:
        return None
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag], [0.0, 0.0, 1.0]])


def _edge_span(image: np.ndarray, start: int, stop: int, axis: int) -> np.ndarray:
    """Indices ``start .. stop - 1`` of ``image`` along ``axis`` (0 or 1), those beyond its edge repeating the edge
    pixel: a view when all lie inside (the usual case), else a gather along that axis only (whole rows or columns,
    not pixel by pixel as one 2-D fancy index costs: ~10 ms for a 900 px footprint of a 720p frame)."""
    size = image.shape[axis]
    if 0 <= start and stop <= size:
        return image[start:stop] if axis == 0 else image[:, start:stop]
    return np.take(image, np.clip(np.arange(start, stop), 0, size - 1), axis=axis)


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The (size, size) crop whose pixel (x, y) is sampled (bilinear) at ``matrix @ (x, y, 1)`` in ``frame``.

    Only the part of the frame under the crop is copied (rows and columns clamped to the frame: edge padding), so
    a frame-sized float copy is never made; a crop much smaller than its footprint is first reduced by a box
    filter (no aliasing).
    """
    from PIL import Image

    corners = matrix @ np.array([[-0.5, -0.5, size - 0.5, size - 0.5], [-0.5, size - 0.5, -0.5, size - 0.5],
                                 [1, 1, 1, 1]])
    left, top = int(np.floor(corners[0].min())) - 2, int(np.floor(corners[1].min())) - 2
    right, bottom = int(np.ceil(corners[0].max())) + 3, int(np.ceil(corners[1].max())) + 3
    height, width = frame.shape[:2]
    patch = Image.fromarray(np.ascontiguousarray(_edge_span(_edge_span(frame, top, bottom, 0), left, right, 1)))
    to_patch = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top], [0.0, 0.0, 1.0]]) @ matrix
    factor = int(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))) / 1.5)
    if factor >= 2:  # pixel i of the reduced patch is the mean of pixels factor*i .. factor*i + factor - 1
        patch = patch.reduce(factor)
        offset = (factor - 1) / (2 * factor)
        to_patch = np.array([[1 / factor, 0.0, -offset], [0.0, 1 / factor, -offset], [0.0, 0.0, 1.0]]) @ to_patch
    # Pillow samples pixel centres at +0.5: shift into its coordinates and back
    shift, unshift = np.eye(3), np.eye(3)
    shift[:2, 2], unshift[:2, 2] = 0.5, -0.5
    pillow = shift @ to_patch @ unshift
    crop = patch.transform((size, size), Image.AFFINE, data=tuple(pillow[:2].ravel()), resample=Image.BILINEAR)
    return np.asarray(crop)
