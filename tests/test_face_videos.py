"""The test videos made from the astronaut photo: their true face boxes are where the face is drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from benchmarks.face_videos import PHOTO_FACE, SCENARIOS, box_iou, render_frame, true_faces, write_face_video

WIDTH, HEIGHT, FPS = 320, 180, 10


def _photo_face(size: tuple[int, int], mirrored: bool = False) -> np.ndarray:
    face = Image.fromarray(skimage_data.astronaut()).crop(tuple(round(v) for v in PHOTO_FACE)).resize(size)
    face = np.asarray(face, dtype=np.float64)
    return face[:, ::-1] if mirrored else face


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("scenario, seconds", [("moving", 1.3), ("zooming", 2.0), ("zooming", 0.0),
                                               ("crossing", 1.0), ("tour", 20.0)])
def test_true_box_holds_the_photo_face(scenario, seconds):
    """The frame's pixels inside each true box are the photo's face (correlation > 0.9); a box shifted by a
    third of its width is not (< 0.6): the boxes are where the faces are drawn, not merely near."""
    index = round(seconds * FPS)
    frame = render_frame(scenario, index, FPS, WIDTH, HEIGHT)
    faces = true_faces(scenario, index, FPS, WIDTH, HEIGHT)
    assert faces and all(face.visible == 1.0 for face in faces)
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        expected = _photo_face((x1 - x0, y1 - y0), mirrored=face.identity == 1)
        assert _correlation(frame[y0:y1, x0:x1].astype(np.float64), expected) > 0.9
        shift = (x1 - x0) // 3
        assert _correlation(frame[y0:y1, x0 + shift:x1 + shift].astype(np.float64), expected) < 0.6


def test_leaving_face_goes_out_and_comes_back():
    visible = [max((face.visible for face in true_faces("leaving", index, FPS, WIDTH, HEIGHT)), default=0.0)
               for index in range(10 * FPS)]
    assert visible[0] == 1.0 and visible[-1] == 1.0
    assert 0 in visible and any(0 < share < 1 for share in visible)  # wholly out, and partly out


def test_crossing_faces_overlap_midway():
    """The faces cross at 0 s: the one behind (the photo) shows only where the mirror image's box leaves it."""
    start = true_faces("crossing", 0, FPS, WIDTH, HEIGHT)
    apart = true_faces("crossing", 2 * FPS, FPS, WIDTH, HEIGHT)
    assert box_iou(start[0].box, start[1].box) > 0.3 and box_iou(apart[0].box, apart[1].box) == 0.0
    assert [face.identity for face in start] == [0, 1]
    (x0, y0, x1, y1), front = start[0].box, start[1].box
    uncovered = 1 - (min(x1, front[2]) - max(x0, front[0])) * (min(y1, front[3]) - max(y0, front[1])) / (
        (x1 - x0) * (y1 - y0))
    assert start[0].visible == pytest.approx(uncovered, abs=1e-3) and start[0].visible < 0.7
    assert start[1].visible == 1.0 and all(face.visible == 1.0 for face in apart)


def test_written_video_matches_its_frames(tmp_path):
    import av

    video = write_face_video(tmp_path / "moving.mp4", "moving", seconds=1.0, fps=FPS, width=WIDTH, height=HEIGHT)
    assert video.frame_count == FPS and not list(tmp_path.glob(".*partial*"))
    with av.open(str(video.path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == FPS and frames[0].shape == (HEIGHT, WIDTH, 3)
    difference = np.abs(frames[5].astype(int) - render_frame("moving", 5, FPS, WIDTH, HEIGHT)).mean()
    assert difference < 6  # h264 at crf 23


def test_unknown_scenario():
    with pytest.raises(ValueError, match="scenario must be one of"):
        true_faces("dancing", 0, FPS, WIDTH, HEIGHT)
    assert "tour" in SCENARIOS
