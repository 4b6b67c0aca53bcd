"""fe_adapter.faces.mtcnn against facenet-pytorch's own MTCNN (the same weights): the same faces, boxes, scores and
landmarks; and its pieces against torch (area resizing) and torchvision (non-maximum suppression)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fe_adapter.faces.mtcnn import Mtcnn, area_resized, nms, summed_area_table
from tests.face_scenes import blank, place_face


def _scenes() -> list[np.ndarray]:
    from skimage import data

    frames = [np.ascontiguousarray(data.astronaut()[::2, ::2])]
    for centre, scale, angle, mirror in [((90, 80), 0.4, 0.0, False), ((200, 130), 0.3, 20.0, False),
                                         ((250, 170), 0.5, 10.0, True)]:
        frame = blank()
        place_face(frame, centre, scale, angle, mirror)
        frames.append(frame)
    two = blank(640, 360)  # two faces, one partly beyond the frame's edge
    place_face(two, (160, 180), 0.6)
    place_face(two, (600, 120), 0.5, 15.0)
    frames.append(two)
    frames.append(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))  # noise: no face
    return frames


@pytest.mark.parametrize("min_size", [20, 36])
def test_detect_agrees_with_facenet_pytorch(min_size):
    facenet = pytest.importorskip("facenet_pytorch")
    reference = facenet.MTCNN(keep_all=True, device="cpu", min_face_size=min_size)
    ours = Mtcnn()
    found = 0
    for frame in _scenes():
        with torch.inference_mode():
            boxes, scores, points = reference.detect(frame.copy(), landmarks=True)
        mine, my_scores, my_points = ours.detect(frame, min_size)
        if boxes is None:
            assert len(mine) == 0
            continue
        found += len(boxes)
        order, my_order = np.argsort(-scores.astype(float)), np.argsort(-my_scores)
        assert len(mine) == len(boxes)
        np.testing.assert_allclose(mine[my_order], boxes[order].astype(float), atol=0.01)
        np.testing.assert_allclose(my_scores[my_order], scores[order].astype(float), atol=1e-4)
        np.testing.assert_allclose(my_points[my_order], points[order].astype(float), atol=0.01)
    assert found >= 5


def _sums(frame: np.ndarray) -> np.ndarray:
    """The summed-area table by Python integers' arithmetic in numpy's object arrays: no overflow, no torch."""
    table = np.zeros((frame.shape[0] + 1, frame.shape[1] + 1, 3), dtype=object)
    table[1:, 1:] = frame.astype(object).cumsum(axis=0).cumsum(axis=1)
    return table


def test_summed_area_table_of_a_frame_and_of_a_view_into_one():
    frame = np.random.default_rng(3).integers(0, 256, (41, 67, 3), dtype=np.uint8)
    for pixels in (frame, frame[5:33, 9:50], frame[:1, :1]):
        np.testing.assert_array_equal(summed_area_table(pixels), _sums(pixels))
    frozen = frame.copy()
    frozen.flags.writeable = False  # as Pillow's and PyAV's arrays come: read without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(summed_area_table(frozen), _sums(frame))


def test_summed_area_table_does_not_overflow_past_8_megapixels():
    frame = np.full((2900, 3000, 3), 255, dtype=np.uint8)  # 255 * 8.7 M > 2**31
    table = summed_area_table(frame)
    assert table[-1, -1].tolist() == [255 * 2900 * 3000] * 3
    assert table[1450, 3000].tolist() == [255 * 1450 * 3000] * 3


def test_area_resizing_is_torch_s_area_interpolation():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    table = summed_area_table(frame)
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].double()
    for rows, columns in [(10, 17), (37, 53), (60, 90), (5, 3)]:
        expected = torch.nn.functional.interpolate(image, size=(rows, columns), mode="area")[0].permute(1, 2, 0)
        np.testing.assert_allclose(area_resized(table, 0, 0, 37, 53, rows, columns), expected.numpy(), atol=1e-9)
    regions = np.array([[2, 3, 20, 11], [0, 0, 37, 53], [30, 40, 7, 13]])  # top, left, height, width
    crops = area_resized(table, *regions.T, 24, 24)
    for crop, (top, left, height, width) in zip(crops, regions, strict=True):
        expected = torch.nn.functional.interpolate(image[:, :, top:top + height, left:left + width], size=(24, 24),
                                                   mode="area")[0].permute(1, 2, 0)
        np.testing.assert_allclose(crop, expected.numpy(), atol=1e-9)


def test_nms_keeps_what_torchvision_keeps():
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(2)
    corners = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (200, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    for threshold in (0.3, 0.5, 0.7):
        expected = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, threshold), expected)


def test_nms_by_the_smaller_box_drops_a_box_inside_another():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 40, 40], [200, 200, 230, 230]], dtype=np.float32)
    scores = np.array([0.9, 0.95, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.7, minimum=True).tolist() == [1, 2]  # the big one holds the small one whole
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]  # by union: they overlap by 9%
