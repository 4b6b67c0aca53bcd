"""Faces: detection with landmarks on a real photo moved into frames, alignment onto the template, tracking of
several people across frames (ids kept, gaps bridged), detection on a stride against detection on every frame."""

from __future__ import annotations

import numpy as np
import pytest

from fe_adapter.faces import Face, FaceTracker, align_face, face_template, make_detector
from fe_adapter.faces.align import alignment_matrix
from fe_adapter.faces.face import box_iou
from fe_adapter.predict.face_pass import detect_every_for
from tests.face_scenes import PHOTO_LANDMARKS, blank, landmark_error, place_face

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker


@pytest.fixture(scope="module")
def mtcnn():
    return make_detector("mtcnn")


def test_unknown_detector_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown face detector 'yolo': known ones are mtcnn, lbp"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="detect_width must be an integer >= 16"):
        make_detector("lbp", detect_width=0)
    with pytest.raises(ValueError, match=r"frame must be an RGB uint8 array of shape \(H, W, 3\), got ndarray "
                       r"float64 \(8, 8\)"):
        make_detector("lbp").detect(np.zeros((8, 8)))


def test_mtcnn_finds_the_photo_s_face_and_its_landmarks(mtcnn):
    from skimage import data

    faces = mtcnn.detect(data.astronaut())
    assert len(faces) == 1 and faces[0].score > 0.999
    assert landmark_error(faces[0].landmarks, PHOTO_LANDMARKS) < 0.05
    _assert_face_box(faces[0], PHOTO_LANDMARKS)


@pytest.mark.parametrize("centre, scale, angle, mirror", [
    ((90, 80), 0.4, 0.0, False), ((200, 130), 0.3, 20.0, False), ((160, 120), 0.7, -25.0, True),
    ((250, 170), 0.5, 10.0, True)])
def test_mtcnn_follows_the_face_scaled_rotated_moved_and_mirrored(mtcnn, centre, scale, angle, mirror):
    """Landmarks within 15% of the inter-ocular distance of where the drawing put them (the field's normalised
    mean error; MTCNN's is ~5-10% on such faces), the box around them, nothing else found."""
    frame = blank()
    expected = place_face(frame, centre, scale, angle, mirror)
    faces = mtcnn.detect(frame)
    assert len(faces) == 1
    assert landmark_error(faces[0].landmarks, expected) < 0.15
    _assert_face_box(faces[0], expected)


def test_detect_width_gives_boxes_in_the_frame_s_pixels(mtcnn):
    """A 640x480 frame detected at 320 px wide: box and landmarks come back in the full frame's pixels."""
    frame = blank(640, 480)
    expected = place_face(frame, (400, 260), 0.8)
    small = make_detector("mtcnn", detect_width=320).detect(frame)
    full = mtcnn.detect(frame)
    assert len(small) == len(full) == 1
    assert landmark_error(small[0].landmarks, expected) < 0.1
    assert box_iou(small[0].box, full[0].box) > 0.8


def test_lbp_finds_the_face_without_landmarks():
    frame = blank()
    expected = place_face(frame, (150, 120), 0.8)
    faces = make_detector("lbp").detect(frame)
    assert len(faces) == 1 and faces[0].landmarks is None and 0 < faces[0].score <= 1
    _assert_face_box(faces[0], expected)


def test_no_face_in_frames_without_one(mtcnn):
    from skimage import data

    rng = np.random.default_rng(0)
    for frame in (blank(), data.coffee(), data.rocket(), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)):
        assert mtcnn.detect(frame) == []


def _assert_face_box(face: Face, landmarks: np.ndarray) -> None:
    """The box holds the landmarks and is a face's size: 2-3.5 inter-ocular distances (2.7 on the photo)."""
    x0, y0, x1, y1 = face.box
    assert (x0 < landmarks[:, 0]).all() and (landmarks[:, 0] < x1).all()
    assert (y0 < landmarks[:, 1]).all() and (landmarks[:, 1] < y1).all()
    assert 2.0 < face.side / np.linalg.norm(landmarks[0] - landmarks[1]) < 3.5


def _dot_centres(crop: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The centroid of each colour's dot, each pixel weighted by how near its colour is (bilinear edges count)."""
    distance = np.linalg.norm(crop[:, :, None, :].astype(float) - colours[None, None], axis=-1)
    weights = np.clip(1 - distance / 150, 0, None)
    rows, columns = np.mgrid[:crop.shape[0], :crop.shape[1]]
    return np.array([((columns * weight).sum() / weight.sum(), (rows * weight).sum() / weight.sum())
                     for weight in np.moveaxis(weights, -1, 0)])


@pytest.mark.parametrize("angle, scale, size, margin", [(0.0, 1.0, 224, 1.25), (30.0, 2.5, 224, 1.25),
                                                        (-50.0, 0.6, 112, 1.0), (170.0, 4.0, 64, 1.6)])
def test_alignment_puts_the_landmarks_on_the_template(angle, scale, size, margin):
    """Five coloured dots at a face's landmarks (the template turned, scaled and moved): after alignment each dot
    is where the template says, to a pixel."""
    from skimage.draw import disk
    from skimage.transform import SimilarityTransform

    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]])
    place = SimilarityTransform(scale=scale * 112 / size, rotation=np.radians(angle), translation=(300, 220))
    landmarks = place(face_template(size, margin) - size / 2)
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    for (x, y), colour in zip(landmarks, colours, strict=True):
        frame[disk((y, x), 5 * scale, shape=frame.shape[:2])] = colour
    drawn = _dot_centres(frame, colours)  # the dots as drawn (pixelated): where they should land, through place
    crop = align_face(frame, Face((0.0, 0.0, 1.0, 1.0), 1.0, landmarks), size, margin)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    expected = place.inverse(drawn) + size / 2
    assert np.abs(expected - face_template(size, margin)).max() < 0.5 * max(1.0, size / 112 / scale)
    assert np.abs(_dot_centres(crop, colours) - expected).max() < 0.25


def test_similarity_fit_is_scikit_image_s_estimate():
    """``similarity_fit`` against scikit-image's ``SimilarityTransform`` estimate (Umeyama) on noisy landmarks of
    turned, scaled, moved and mirrored faces (a mirror image is fitted by a rotation, never a reflection); None when
    the target points coincide."""
    from skimage.transform import SimilarityTransform

    from fe_adapter.faces.align import similarity_fit

    rng = np.random.default_rng(0)
    template = face_template(224)
    for angle, scale, mirror in [(0.0, 1.0, False), (35.0, 0.4, False), (-120.0, 3.0, True), (180.0, 1.7, False)]:
        placed = SimilarityTransform(scale=scale, rotation=np.radians(angle), translation=rng.uniform(-50, 400, 2))
        target = placed(template * ([-1, 1] if mirror else [1, 1])) + rng.normal(0, 3, (5, 2))
        if hasattr(SimilarityTransform, "from_estimate"):
            expected = SimilarityTransform.from_estimate(template, target).params
        else:
            expected = SimilarityTransform()
            assert expected.estimate(template, target)
            expected = expected.params
        np.testing.assert_allclose(similarity_fit(template, target), expected, rtol=0, atol=1e-9)
    assert similarity_fit(template, np.ones((5, 2))) is None


_FACES_ALONE = """
import json, sys
import numpy as np
from fe_adapter.faces import FaceTracker, align_face, make_detector
tracker = FaceTracker(make_detector("mtcnn"), detect_every=3)
for index, frame in enumerate(np.load("frames.npy")):
    (face,) = tracker.update(frame, index)
    assert face.seen and face.face.landmarks is not None
    align_face(frame, face.face, 64)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"scipy", "torchvision", "facenet_pytorch"})
                 + sorted(name for name in sys.modules if name.startswith("skimage.transform"))))
"""


def test_finding_following_and_aligning_faces_loads_no_scipy_torchvision_or_skimage_transform(tmp_path):
    """Their imports cost predict seconds of start-up (torchvision's pulls in torch._dynamo; scikit-image's
    transform, scipy's spatial and linalg): MTCNN, the tracker (a scan, then faces re-measured) and the alignment
    need none of them. The frames are drawn here (``place_face`` warps with scikit-image)."""
    from tests.cli_probes import run_python

    frames = []
    for index in range(4):
        frames.append(blank())
        place_face(frames[-1], (100 + 5 * index, 120), 0.45)
    np.save(tmp_path / "frames.npy", np.stack(frames))
    finished = run_python(_FACES_ALONE, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.strip() == "[]"


def test_alignment_of_a_turned_photo_uprights_the_face(mtcnn):
    """The photo's face turned 25 degrees and aligned: detected again in the crop, its landmarks are where the
    similarity transform sent them (within 3 px of 224), its eyes level and on the template's eyes; the other
    points are as near as the least-squares fit of this face to the average template allows."""
    frame = blank(640, 480)
    place_face(frame, (320, 240), 1.2, angle=25.0)
    face = mtcnn.detect(frame)[0]
    crop = align_face(frame, face, 224)
    again = mtcnn.detect(crop)
    assert len(again) == 1
    matrix = alignment_matrix(face, 224)
    sent = (np.linalg.inv(matrix) @ np.c_[face.landmarks, np.ones(5)].T).T[:, :2]
    assert np.abs(again[0].landmarks - sent).max() < 3.0
    assert abs(again[0].landmarks[0, 1] - again[0].landmarks[1, 1]) < 2.0
    assert np.abs(again[0].landmarks[:2] - face_template(224)[:2]).max() < 4.0
    assert np.abs(again[0].landmarks - face_template(224)).max() < 10.0


def test_a_face_without_landmarks_gets_the_square_around_its_box():
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[40:60, 90:110] = 255  # a white square centred in the box (pixel centres 90..109: centre 99.5)
    crop = align_face(frame, Face((79.5, 29.5, 119.5, 69.5), 1.0), size=50, margin=1.25)  # 50 px: the 40 px box
    assert set(np.unique(crop)) == {0, 255}  # crop pixels fall on frame pixel centres: nothing blurred
    white = np.nonzero(crop[:, :, 0] > 127)
    assert (white[0].min(), white[0].max(), white[1].min(), white[1].max()) == (15, 34, 15, 34)


def _crossing(count: int, hide: set[int] = frozenset()):
    """Two faces crossing paths: the photo's going right along the top, its mirror image going left below it,
    their heads overlapping as they pass. Faces of the frames in ``hide`` are left out."""
    for index in range(count):
        frame, step = blank(), index / (count - 1)
        paths = []
        if index not in hide:
            paths.append(place_face(frame, (270 - 220 * step, 140), 0.45, mirror=True).mean(0))
            paths.append(place_face(frame, (50 + 220 * step, 100), 0.45).mean(0))
        yield index, frame, paths


def _owner(face, paths) -> int:
    return int(np.argmin([np.hypot(*(np.asarray(face.centre) - centre)) for centre in paths]))


def test_two_faces_crossing_paths_keep_their_ids(mtcnn):
    """Where the heads overlap one hides the other's face for a frame or two (a bridged gap); each id stays on
    its own path throughout."""
    tracker = FaceTracker(mtcnn)
    owners: dict[int, set[int]] = {}
    hidden = 0
    for index, frame, paths in _crossing(16):
        faces = tracker.update(frame, index)
        assert len(faces) == 2, f"frame {index}"
        hidden += sum(not face.seen for face in faces)
        for face in faces:
            if face.seen:
                owners.setdefault(face.track_id, set()).add(_owner(face.face, paths))
    assert owners == {0: {0}, 1: {1}} or owners == {0: {1}, 1: {0}}
    assert hidden <= 3 and len(tracker.stats()) == 2


def test_a_short_gap_is_bridged_and_a_long_one_ends_the_track(mtcnn):
    tracker = FaceTracker(mtcnn, max_missed=2)
    frames = list(_crossing(12, hide={4, 5, 8, 9, 10}))
    ids = []
    for index, frame, _ in frames:
        faces = tracker.update(frame, index)
        ids.append(sorted(face.track_id for face in faces if face.detected))
        if index in (4, 5):
            assert [face.seen for face in faces] == [False, False]  # the last boxes, flagged
    assert ids[:4] == [[0, 1]] * 4 and ids[6:8] == [[0, 1]] * 2  # the same two people after two missed detections
    assert ids[11] == [2, 3]  # three missed: new tracks
    assert [stats.frames_seen for stats in tracker.stats()] == [6, 6, 1, 1]
    assert tracker.main_track() in (0, 1)


def test_the_main_face_is_the_one_seen_longest(mtcnn):
    tracker = FaceTracker(mtcnn, max_missed=0)
    for index in range(6):
        frame = blank()
        place_face(frame, (100, 120), 0.45)
        if index >= 3:
            place_face(frame, (230, 120), 0.6)  # larger, but seen in fewer frames
        tracker.update(frame, index)
    assert [stats.frames_seen for stats in tracker.stats()] == [6, 3]
    assert tracker.main_track() == 0


class _Counting:
    """``detector`` with its calls counted; a ``Refiner`` only when ``refines``."""

    name = "counting"

    def __init__(self, detector, refines: bool) -> None:
        self.detector, self.detections, self.refinements = detector, 0, 0
        if refines:
            self.refine = self._refine

    def detect(self, frame):
        self.detections += 1
        return self.detector.detect(frame)

    def _refine(self, frame, faces):
        self.refinements += 1
        return self.detector.refine(frame, faces)


@pytest.mark.parametrize(("refines", "detect_every"), [(False, 5), (False, 10), (True, 10), (True, 50)])
def test_detecting_every_few_frames_keeps_the_boxes_of_detecting_every_frame(mtcnn, refines, detect_every):
    """A face moving, growing and turning over 30 frames: the boxes followed between detections overlap those of
    detection on every frame by IoU >= 0.7 in at least 95% of the frames, followed by templates (as LBP faces are)
    at 5 frames and at predict's default for them at 25 fps (10), and re-measured by MTCNN's last stage at 10 and at
    its default (50: one scan in 30 frames); the detector scanned 30 / detect_every frames, not 30."""
    counting = _Counting(mtcnn, refines)
    assert detect_every_for(25.0, counting) == (50 if refines else 10)
    every, strided = FaceTracker(mtcnn), FaceTracker(counting, detect_every=detect_every)
    assert strided.refines == refines
    overlaps = []
    for index in range(30):
        step = index / 29
        frame = blank()
        place_face(frame, (70 + 180 * step, 110 + 20 * np.sin(6 * step)), 0.4 + 0.2 * step, 15 * np.sin(4 * step))
        reference, followed = every.update(frame, index), strided.update(frame, index)
        assert len(reference) == len(followed) == 1
        assert followed[0].detected == (index % detect_every == 0) and followed[0].seen
        overlaps.append(box_iou(reference[0].face.box, followed[0].face.box))
        if refines and not followed[0].detected:  # re-measured: landmarks where the detector puts them
            assert landmark_error(followed[0].face.landmarks, reference[0].face.landmarks) < 0.1
    assert counting.detections == -(-30 // detect_every)
    assert counting.refinements == (30 - counting.detections if refines else 0)
    assert np.mean(np.array(overlaps) >= 0.7) >= 0.95, np.round(overlaps, 2)


def test_refine_re_measures_boxes_as_the_last_stage_does_on_the_whole_frame(mtcnn):
    """``Mtcnn.refine`` sums only the part of the frame under the boxes: its boxes, probabilities and landmarks are
    the last stage's on the whole frame's table, for a face inside, a face over the left edge, a box over the right
    and bottom edges, and NaN for a box wholly outside."""
    from fe_adapter.faces.mtcnn import _square, summed_area_table

    frame = blank(400, 300)
    place_face(frame, (200, 140), 0.5)
    place_face(frame, (20, 250), 0.4)
    boxes = np.array([[172.5, 104.2, 226.0, 168.7], [-12.3, 215.0, 40.0, 280.0], [300.0, 250.0, 420.0, 360.0],
                      [500.0, 10.0, 560.0, 70.0]])
    found, scores, landmarks = mtcnn._mtcnn.refine(frame, boxes)
    inside, whole, points = mtcnn._mtcnn._last_stage(summed_area_table(frame), _square(boxes))
    assert inside.tolist() == [True, True, True, False]
    np.testing.assert_allclose(found[:3], whole[:, :4], rtol=0, atol=1e-9)
    np.testing.assert_allclose(scores[:3], whole[:, 4], rtol=0, atol=1e-9)
    np.testing.assert_allclose(landmarks[:3], points, rtol=0, atol=1e-9)
    assert np.isnan(found[3]).all() and np.isnan(scores[3]) and np.isnan(landmarks[3]).all()
    assert scores[0] > 0.9 and scores[1] > 0.9 and scores[2] < 0.5  # the two faces, and no face


def test_a_face_that_jumps_beyond_the_last_stage_s_reach_is_found_by_its_template(mtcnn):
    """A still face jumps 22 px (0.45 of its side) right between two frames: re-measured from where it was, MTCNN's
    last stage finds no face, so its template finds where it went and the last stage re-measures it there: seen, the
    detector's box, without a scan."""
    tracker = FaceTracker(mtcnn, detect_every=50)
    for index in range(8):
        frame = blank()
        place_face(frame, (100 + (22 if index >= 4 else 0), 120), 0.45)
        (face,) = tracker.update(frame, index)
        assert face.seen and face.detected == (index == 0), index
        assert box_iou(face.face.box, mtcnn.detect(frame)[0].box) > 0.8, index


def test_a_face_lost_between_scans_is_scanned_for_in_that_frame(mtcnn):
    """A still face jumps 60 px (1.3 of its side: beyond both the last stage's and the template's reach) between two
    frames: the frame it is lost in is scanned at once, so it is seen there (as a new person: so far from the last
    place), not a scan interval later."""
    tracker = FaceTracker(mtcnn, detect_every=50)
    for index in range(6):
        frame = blank()
        place_face(frame, (100 + (60 if index >= 3 else 0), 120), 0.45)
        seen = [face for face in tracker.update(frame, index) if face.seen]
        assert len(seen) == 1 and seen[0].detected == (index in (0, 3)), index
        assert box_iou(seen[0].face.box, mtcnn.detect(frame)[0].box) > 0.8, index


def test_velocity_and_growth_are_measured_over_several_frames():
    """Places measured a frame apart (a video's windows sample nearby frames) differ by a detector's jitter: a face
    moving 5 px a frame at a constant size, measured with 3 px and 3% of jitter, is predicted 5 frames on within
    8 px and 8% of its path, as a baseline of at least ``_BASELINE`` (6) frames gives; extrapolating the last
    frame's jitter would put it 16% off."""
    from fe_adapter.faces.face import square_face
    from fe_adapter.faces.tracking import _Track

    jitter = {0: (0, 0, 1.0), 6: (2, -1, 1.02), 7: (-1, 2, 0.99), 12: (-3, 1, 0.98), 13: (2, -2, 1.03)}
    track = _Track(0, square_face(100 + jitter[0][0], 80, 100), 0)
    for index, (dx, dy, scale) in list(jitter.items())[1:]:
        track.locate(square_face(100 + 5 * index + dx, 80 + dy, 100 * scale), index, measured=True)
    expected = track.predicted(18)
    assert abs(expected.centre[0] - 190) < 8 and abs(expected.centre[1] - 80) < 8, expected.centre
    assert abs(expected.side / 100 - 1) < 0.08, expected.side


def test_a_face_coming_into_view_is_searched_for_more_often(mtcnn):
    """No face for 10 frames, then one: with scans every 40 frames while a face is seen, the search every 4 frames
    while none is finds it within 4 frames of its coming, and once it is seen the scans wait for 40 frames."""
    counting = _Counting(mtcnn, refines=True)
    tracker = FaceTracker(counting, detect_every=40, search_every=4)
    scans = []
    for index in range(30):
        frame = blank()
        if index >= 10:
            place_face(frame, (100 + 3 * index, 120), 0.45)
        before = counting.detections
        faces = tracker.update(frame, index)
        if counting.detections > before:
            scans.append(index)
        if index >= 12:
            assert len(faces) == 1 and faces[0].seen, index
    assert scans == [0, 4, 8, 12], scans
    with pytest.raises(ValueError, match="search_every must be an integer >= 1"):
        FaceTracker(mtcnn, search_every=0)


def test_frames_must_come_in_order(mtcnn):
    tracker = FaceTracker(mtcnn)
    tracker.update(blank(), 3)
    with pytest.raises(ValueError, match="frame index 3 after 3"):
        tracker.update(blank(), 3)
    with pytest.raises(ValueError, match="detect_every must be an integer >= 1"):
        FaceTracker(mtcnn, detect_every=0)


def test_template_correlation_is_scikit_image_s():
    """The tracker's own normalised cross-correlation (no scipy import) against skimage.feature.match_template, and
    zero (not NaN) on a flat region."""
    from skimage.feature import match_template

    from fe_adapter.faces.tracking import normalised_correlation

    rng = np.random.default_rng(1)
    region = rng.random((64, 64)).astype(np.float32)
    template = region[10:42, 20:52] + 0.1 * rng.random((32, 32)).astype(np.float32)
    found = normalised_correlation(region, template)
    np.testing.assert_allclose(found, match_template(region, template), rtol=0, atol=1e-5)
    assert np.unravel_index(found.argmax(), found.shape) == (10, 20)
    assert (normalised_correlation(np.ones((64, 64)), template) == 0).all()


@pytest.mark.parametrize("box", [(300.0, 200.0, 420.0, 330.0), (-60.0, 150.0, 70.0, 280.0),
                                 (560.0, -90.0, 700.0, 40.0), (700.0, 500.0, 800.0, 600.0)])
@pytest.mark.parametrize("landmarks", [False, True])
def test_crops_beyond_the_frame_repeat_its_edge(box, landmarks):
    """Inside, across an edge, across a corner and wholly outside the frame: the crop is the one taken, the same
    way, from the frame padded by 300 px of repeated edge pixels (numpy's own edge padding, the oracle)."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    pad = 300
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    x0, y0, x1, y1 = box
    points = (np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * [x1 - x0, y1 - y0]
              + [x0, y0]) if landmarks else None
    face = Face(box, 1.0, points)
    moved = Face((x0 + pad, y0 + pad, x1 + pad, y1 + pad), 1.0, None if points is None else points + pad)
    np.testing.assert_array_equal(align_face(frame, face, 64), align_face(padded, moved, 64))
