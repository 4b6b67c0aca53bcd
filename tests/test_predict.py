"""Prediction on real video files: a real face photo moving in an mp4, faces found, windows, outputs, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from fe_adapter import cli
from fe_adapter.faces import Face, FaceTracker, align_face, make_detector
from fe_adapter.faces.face import centre_face
from fe_adapter.predict.examples import face_video
from fe_adapter.predict.face_pass import face_tracker
from fe_adapter.predict.predictor import PredictionError, Predictor, window_starts
from tests.media import write_video
from tests.tiny_model import TINY_CLASSES

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker

CLASSES = TINY_CLASSES


@pytest.fixture(scope="module")
def checkpoint(tiny_model_files) -> tuple[Path, Path]:
    return tiny_model_files


def test_window_starts():
    assert window_starts(4.0, 2.0, 0.5) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert window_starts(1.0, 2.0, 0.5) == [0.0]  # shorter than a window: one window
    assert window_starts(5.0, 2.0, 2.0) == [0.0, 2.0, 3.0]  # a last window flush with the end
    with pytest.raises(ValueError, match="must be > 0"):
        window_starts(4.0, 0.0, 0.5)


@pytest.mark.parametrize(
    "frame_count, fps, num_frames, window, stride, expected",
    [
        # 10-frame windows every 5 frames; segments of 2.5 frames, middles at 1.25, 3.75, 6.25, 8.75
        (30, 10.0, 4, 1.0, 0.5, [(0.0, 1.0, (1, 3, 6, 8)), (0.5, 1.5, (6, 8, 11, 13)), (1.0, 2.0, (11, 13, 16, 18)),
                                 (1.5, 2.5, (16, 18, 21, 23)), (2.0, 3.0, (21, 23, 26, 28))]),
        # 15-frame windows; the last one (2.5 s) flush with the end; middles 1.875, 5.625, 9.375, 13.125
        (40, 10.0, 4, 1.5, 1.0, [(0.0, 1.5, (1, 5, 9, 13)), (1.0, 2.5, (11, 15, 19, 23)),
                                 (2.0, 3.5, (21, 25, 29, 33)), (2.5, 4.0, (26, 30, 34, 38))]),
        # middles on frame boundaries (1, 3, 5, 7 of 8 frames): the frame nearer the window's middle
        (16, 10.0, 4, 0.8, 0.8, [(0.0, 0.8, (1, 3, 4, 6)), (0.8, 1.6, (9, 11, 12, 14))]),
        # NTSC rate: windows of round(29.97) = 30 frames; 3.003 s long, but a window flush with the end (2.003 s)
        # would sample the frames of the one at 2 s again, so there is none
        (90, 29.97, 8, 1.0, 1.0, [(0.0, 1.0, (1, 5, 9, 13, 16, 20, 24, 28)),
                                  (1.0, 2.0, (31, 35, 39, 43, 46, 50, 54, 58)),
                                  (2.0, 3.0, (61, 65, 69, 73, 76, 80, 84, 88))]),
        (6, 10.0, 4, 2.0, 0.5, [(0.0, 0.6, (0, 2, 3, 5))]),  # shorter than a window: one window, the whole video
        (3, 10.0, 6, 2.0, 0.5, [(0.0, 0.3, (0, 0, 1, 1, 2, 2))]),  # fewer frames than T: repeated in order
    ],
    ids=["overlapping", "flush-end", "boundaries", "ntsc", "short", "repeat"],
)
def test_windows_sample_these_frames(frame_count, fps, num_frames, window, stride, expected):
    """Literal frame indices, computed by hand: the middle frame of each of T equal segments of the window."""
    from fe_adapter.predict.windows import plan_windows

    plans = plan_windows(frame_count, fps, num_frames, window, stride)
    assert [plan.indices for plan in plans] == [indices for _, _, indices in expected]
    assert [(plan.start, plan.end) for plan in plans] == [pytest.approx((start, end)) for start, end, _ in expected]


def _window_frame_ids(predictor: Predictor, video: Path, **options) -> tuple[list[list[int]], list[float]]:
    """The numbered frames (``tests.media.identified_frames``) each window's clip showed the model, read back
    from the model's input, and the windows' start times."""
    from fe_adapter.data.transforms import normalization_for
    from tests.media import frame_id

    norm = normalization_for(predictor.model)
    mean, std = torch.tensor(norm.mean)[:, None, None], torch.tensor(norm.std)[:, None, None]
    shown: list[list[int]] = []

    def record(module, inputs):
        for clip in inputs[0]:
            pixels = ((clip.cpu() * std + mean) * 255).permute(0, 2, 3, 1).numpy()
            shown.append([frame_id(frame) for frame in pixels])

    hook = predictor.model.register_forward_pre_hook(record)
    try:
        result = predictor.predict_video(video, **options)
    finally:
        hook.remove()
    return shown, [w.start for w in result.windows]


def test_each_window_shows_the_model_the_frames_it_should(tmp_path, checkpoint):
    """Read back which numbered frames reached the model, in order: sequential decoding, and seeking between
    windows 10 s apart (keyframes every 10 frames)."""
    from tests.media import identified_frames

    adapters, backbone = checkpoint
    model = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone).model
    predictor = Predictor(model, "cpu", _FaceInTheMiddle(), detect_every=1)
    video = write_video(tmp_path / "numbered.mp4", identified_frames(40))
    shown, starts = _window_frame_ids(predictor, video, window=1.5, stride=1.0, batch_size=3)
    assert starts == [0.0, 1.0, 2.0, 2.5]
    assert shown == [[1, 5, 9, 13], [11, 15, 19, 23], [21, 25, 29, 33], [26, 30, 34, 38]]

    video = write_video(tmp_path / "long.mp4", identified_frames(300), gop=10)
    shown, starts = _window_frame_ids(predictor, video, window=1.0, stride=10.0)
    assert starts == [0.0, 10.0, 20.0, 29.0]
    assert shown == [[1, 3, 6, 8], [101, 103, 106, 108], [201, 203, 206, 208], [291, 293, 296, 298]]


def test_face_is_found_in_every_frame_of_a_real_face_video(tmp_path):
    from fe_adapter.data.readers import VideoReader

    with VideoReader(face_video(tmp_path / "face.mp4")) as reader:
        fps = reader.fps
        frames = [frame.to_ndarray(format="rgb24") for _, frame in reader.frames(range(reader.frame_count))]
    tracker = FaceTracker()
    tracked = [tracker.update(frame, index) for index, frame in enumerate(frames)]
    assert fps == 10 and len(frames) == 40
    assert all(len(faces) == 1 and faces[0].detected and faces[0].track_id == 0 for faces in tracked)
    xs = [faces[0].face.centre[0] for faces in tracked]
    assert xs[-1] - xs[0] > 60  # the box follows the face to the right


def test_predict_video_writes_windows_classes_and_timeline(tmp_path, checkpoint, capsys):
    adapters, backbone = checkpoint
    video = face_video(tmp_path / "face.mp4")
    code = cli.main(["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
                     "--window", "2s", "--stride", "0.5s", "--out", str(tmp_path / "out")])
    assert code == 0
    result = json.loads((tmp_path / "out" / "face.json").read_text())
    assert [w["start_s"] for w in result["windows"]] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(set(w["probabilities"]) == set(CLASSES) for w in result["windows"])
    assert all(abs(sum(w["probabilities"].values()) - 1) < 1e-5 for w in result["windows"])
    assert all(w["faces_found"] == w["frames"] == 4 for w in result["windows"])
    assert result["top"] in CLASSES and result["processing_fps"] > 0
    assert (tmp_path / "out" / "face.png").stat().st_size > 10_000 and (tmp_path / "out" / "face.csv").is_file()
    printed = capsys.readouterr().out
    assert "overall" in printed and "frames/s processed" in printed


def test_bad_videos_get_a_message_and_the_others_still_run(tmp_path, checkpoint, capsys):
    adapters, backbone = checkpoint
    good = face_video(tmp_path / "good.mp4", frames=20)
    no_face = write_video(tmp_path / "wall.mp4", np.full((20, 120, 160, 3), 90, dtype=np.uint8))
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(good.read_bytes()[:300])
    code = cli.main(["predict", str(no_face), str(corrupt), str(tmp_path / "missing.mp4"), str(good),
                     "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
                     "--out", str(tmp_path / "out")])
    assert code == 1
    errors = capsys.readouterr().err
    assert "wall.mp4: no face found in any of the" in errors
    assert "broken.mp4: cannot decode" in errors or "broken.mp4: no decodable frames" in errors
    assert "missing.mp4: video file not found" in errors
    assert (tmp_path / "out" / "good.json").is_file()


def test_checkpoint_errors_are_clear(tmp_path, checkpoint):
    adapters, backbone = checkpoint
    with pytest.raises(ValueError, match="holds adapters and head only"):
        Predictor.from_checkpoint(adapters)
    other = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                              embed_dim=64, num_heads=2)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="do not fit vit_tiny_patch16_224"):
        Predictor.from_checkpoint(adapters, backbone_checkpoint=tmp_path / "other.safetensors")
    predictor = Predictor.from_checkpoint(adapters, backbone_checkpoint=backbone)
    with pytest.raises(PredictionError, match="video file not found"):
        predictor.predict_video(tmp_path / "x.mp4")


def test_output_names_are_distinct_paths_relative_to_the_common_folder(tmp_path):
    from fe_adapter.predict.timeline import output_names

    assert output_names([tmp_path / "day1" / "clip.mp4", tmp_path / "day2" / "clip.mp4"]) == ["day1/clip",
                                                                                             "day2/clip"]
    assert output_names([tmp_path / "a" / "interview.mp4"]) == ["interview"]
    assert output_names([tmp_path / "interview.mp4", tmp_path / "more" / "a.mp4"]) == ["interview", "more/a"]
    assert output_names([tmp_path / "clip.mp4", tmp_path / "clip.avi", tmp_path / "b.mp4"]) == [
        "clip.mp4", "clip.avi", "b"]
    with pytest.raises(ValueError, match="listed more than once"):
        output_names([tmp_path / "clip.mp4", tmp_path / "x" / ".." / "clip.mp4"])


def test_same_file_names_get_their_own_outputs_and_nothing_is_overwritten_silently(tmp_path, checkpoint, capsys):
    adapters, backbone = checkpoint
    first = face_video(tmp_path / "day1" / "clip.mp4", frames=20)
    second = face_video(tmp_path / "day2" / "clip.mp4", frames=30)
    out = tmp_path / "out"
    arguments = ["predict", str(first), str(second), "--checkpoint", str(adapters), "--backbone-checkpoint",
                 str(backbone), "--window", "1s", "--stride", "1s", "--out", str(out)]
    assert cli.main(arguments) == 0
    results = [json.loads((out / day / "clip.json").read_text()) for day in ("day1", "day2")]
    assert [result["path"] for result in results] == [str(first), str(second)]
    assert [result["duration_s"] for result in results] == [2.0, 3.0]
    assert all((out / day / f"clip.{suffix}").is_file() for day in ("day1", "day2") for suffix in ("csv", "png"))

    before = {path: path.read_bytes() for path in out.rglob("*.*")}
    capsys.readouterr()
    assert cli.main(arguments) == 2  # a second run into the same folder: refused before any work
    error = capsys.readouterr().err
    assert "outputs already exist" in error and "--overwrite" in error and "day1/clip.json" in error
    assert {path: path.read_bytes() for path in out.rglob("*.*")} == before

    (out / "day1" / "clip.json").write_text("stale")
    assert cli.main([*arguments, "--overwrite"]) == 0
    assert json.loads((out / "day1" / "clip.json").read_text())["path"] == str(first)


def _decode_all(video: Path) -> list[np.ndarray]:
    """Every frame of a (short) video, decoded independently of the library's reader."""
    import av

    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_window_probabilities_equal_softmax_of_the_model_on_the_same_crops(tmp_path, checkpoint):
    from fe_adapter.data.transforms import eval_transform, normalization_for
    from fe_adapter.predict.windows import plan_windows

    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone)
    video = face_video(tmp_path / "face.mp4", frames=30)
    result = predictor.predict_video(video, window=1.0, stride=0.5, batch_size=3)  # batches split the windows

    frames = _decode_all(video)
    plans = plan_windows(len(frames), 10.0, 4, 1.0, 0.5)
    needed = sorted({index for plan in plans for index in plan.indices})
    tracker = face_tracker(make_detector("mtcnn"), 10.0)  # as the predictor follows faces: scans every 2 s at 10 fps
    assert result.detect_every == 20
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # and on one thread (fe_adapter.predict.face_pass)
    try:
        tracked = {index: tracker.update(frames[index], index)[0] for index in needed}
    finally:
        torch.set_num_threads(threads)
    assert 0 < sum(face.detected for face in tracked.values()) < len(needed)  # some followed in between
    transform = eval_transform(normalization_for(predictor.model))
    assert len(result.windows) == len(plans) == 5
    rows = []
    for plan, window in zip(plans, result.windows, strict=True):
        crops = np.stack([align_face(frames[index], tracked[index].face, 32) for index in plan.indices])
        clip = transform(torch.from_numpy(crops).permute(0, 3, 1, 2))[None]
        with torch.no_grad():
            expected = predictor.model(clip).softmax(-1)[0]
        rows.append(expected)
        assert (window.start, window.end) == (plan.start, plan.end)
        torch.testing.assert_close(torch.tensor([window.probabilities[name] for name in CLASSES]), expected,
                                   rtol=0, atol=1e-5)
    assert max(float((a - b).abs().max()) for a, b in zip(rows, rows[1:], strict=False)) > 1e-3  # windows differ
    torch.testing.assert_close(torch.tensor([result.overall[name] for name in CLASSES]), torch.stack(rows).mean(0),
                               rtol=0, atol=1e-5)


def test_frames_without_a_face_reuse_the_last_box_and_are_counted(tmp_path, checkpoint):
    adapters, backbone = checkpoint
    hidden = set(range(12, 18))
    video = face_video(tmp_path / "face.mp4", frames=30, hidden=hidden)
    tracker = FaceTracker(max_missed=6)
    faces = [tracker.update(frame, index)[0] for index, frame in enumerate(_decode_all(video))]
    assert [face.detected for face in faces] == [index not in hidden for index in range(30)]
    assert all(faces[index].face.box == faces[11].face.box for index in hidden)  # the last box, unchanged
    assert [face.track_id for face in faces] == [0] * 30  # six missed detections in a row: bridged

    from fe_adapter.predict.windows import plan_windows

    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone, detect_every=1)
    result = predictor.predict_video(video, window=1.0, stride=0.5)
    plans = plan_windows(30, 10.0, 4, 1.0, 0.5)
    assert [w.faces_found for w in result.windows] == [sum(i not in hidden for i in p.indices) for p in plans]
    assert [w.frames for w in result.windows] == [4] * len(plans)
    assert min(w.faces_found for w in result.windows) < 4


def test_windows_without_a_face_are_marked_and_left_out_of_the_overall(tmp_path, checkpoint, capsys):
    """The face leaves the frame for frames 12-27 of 40: the windows (frames 1, 3, 6, 8; 6, 8, 11, 13; ...) find
    it in 4, 3, 1, 0, 1, 3 and 4 of their 4 frames; below half, a window is no-face."""
    adapters, backbone = checkpoint
    video = face_video(tmp_path / "leaves.mp4", frames=40, hidden=range(12, 28))
    out = tmp_path / "out"
    code = cli.main(["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
                     "--window", "1s", "--stride", "0.5s", "--out", str(out), "--detect-every", "1"])
    assert code == 0
    result = json.loads((out / "leaves.json").read_text())
    windows = result["windows"]
    assert result["schema_version"] == 3 and result["min_face_fraction"] == 0.5
    assert [w["faces_found"] for w in windows] == [4, 3, 1, 0, 1, 3, 4]
    assert [w["no_face"] for w in windows] == [False, False, True, True, True, False, False]
    assert [w["top"] is None for w in windows] == [w["no_face"] for w in windows]
    assert result["no_face_windows"] == 3
    probabilities = np.array([[w["probabilities"][name] for name in CLASSES] for w in windows])
    overall = np.array([result["overall"][name] for name in CLASSES])
    np.testing.assert_allclose(overall, probabilities[[0, 1, 5, 6]].mean(0), rtol=0, atol=1e-7)
    assert np.abs(overall - probabilities.mean(0)).max() > 1e-4  # the no-face windows would have moved it
    with (out / "leaves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["no_face"] for row in rows] == ["false", "false", "true", "true", "true", "false", "false"]
    assert [row["top"] for row in rows][2:5] == ["", "", ""]
    printed = capsys.readouterr().out
    assert "from the 4 of 7 windows with a face detected in at least 50% of their frames; 3 without a face left " \
           "out" in printed
    assert printed.count("no face") == 3

    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone, detect_every=1)
    quarter = predictor.predict_video(video, window=1.0, stride=0.5, min_face_fraction=0.25)
    assert [w.no_face for w in quarter.windows] == [False, False, False, True, False, False, False]  # 1 of 4: enough
    with pytest.raises(ValueError, match="min_face_fraction must be a number in 0..1"):
        predictor.predict_video(video, min_face_fraction=1.5)
    assert cli.main(["predict", str(video), "--checkpoint", str(adapters), "--min-face-fraction", "-0.1"]) == 2
    assert "--min-face-fraction: expected a fraction in 0..1" in capsys.readouterr().err


def test_a_video_where_no_window_has_a_face_has_no_overall(tmp_path, checkpoint, capsys):
    adapters, backbone = checkpoint
    video = face_video(tmp_path / "gone.mp4", frames=20, hidden=set(range(20)) - {3, 16})  # a face in 2 frames
    good = face_video(tmp_path / "good.mp4", frames=20)
    out = tmp_path / "out"
    code = cli.main(["predict", str(video), str(good), "--checkpoint", str(adapters), "--backbone-checkpoint",
                     str(backbone), "--window", "1s", "--stride", "0.5s", "--out", str(out), "--detect-every", "1"])
    assert code == 3
    result = json.loads((out / "gone.json").read_text())
    assert [w["faces_found"] for w in result["windows"]] == [1, 0, 1]
    assert result["overall"] is None and result["top"] is None and result["no_face_windows"] == 3
    assert json.loads((out / "good.json").read_text())["no_face_windows"] == 0
    printed = capsys.readouterr().out
    assert f"{video}: no overall result: none of its 3 windows had a face detected in at least 50% of their " \
           "frames" in printed
    assert f"{good}: " in printed and (out / "gone.png").is_file()


def test_the_timeline_leaves_gaps_at_windows_without_a_face():
    from fe_adapter.predict.results import VideoPrediction, WindowPrediction
    from fe_adapter.predict.timeline import timeline_figure

    pattern = [True, False, True, True, False, True]  # windows [0, 2), [1, 3), ... [5, 7) s: centres 1 .. 6
    windows = [WindowPrediction(float(index), index + 2.0, {"happy": 0.25 + 0.1 * index, "sad": 0.75 - 0.1 * index},
                                faces_found=1 if no_face else 4, frames=4, no_face=no_face)
               for index, no_face in enumerate(pattern)]
    figure = timeline_figure(VideoPrediction("clip.mp4", 7.0, 10.0, windows, 1.0))
    curves = figure.axes[0]
    happy = curves.lines[0].get_ydata()
    assert np.isnan(happy).tolist() == pattern
    assert happy[[1, 4]].tolist() == pytest.approx([0.35, 0.65])
    spans = sorted((patch.get_x(), patch.get_x() + patch.get_width()) for patch in curves.patches)
    assert spans == [(0.0, 1.5), (2.5, 4.5), (5.5, 7.0)]  # half-way between the centres around each gap
    assert "happy overall (4 of 6 windows without a face left out)" in curves.get_title()


def test_thumbnail_strip_centres_each_thumbnail_in_its_slot():
    from fe_adapter.predict.timeline import thumbnail_strip

    rng = np.random.default_rng(0)
    big, small = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), rng.integers(0, 255, (20, 10, 3), dtype=np.uint8)
    strip, centres = thumbnail_strip([big, small, big])
    gap = 2  # a twentieth of 40 px
    assert strip.shape == (40, 3 * 40 + 2 * gap, 3)
    assert (strip[:, :40] == big).all() and (strip[:, 2 * (40 + gap):] == big).all()
    assert (strip[10:30, 42 + 15:42 + 25] == small).all()  # centred in the middle slot
    assert (strip[:10, 42:82] == 255).all() and (strip[:, 40:42] == 255).all()  # white around it and between
    assert centres == [19.5, 61.5, 103.5]


def test_thumbnail_strip_takes_grey_and_rgba_and_names_what_it_cannot_draw():
    from fe_adapter.predict.timeline import thumbnail_strip

    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[0, 0, 3] = 0  # one transparent pixel: white
    strip, _ = thumbnail_strip([grey, rgba])
    assert (strip[:, :4] == grey[..., None]).all()
    assert strip[0, 5].tolist() == [255, 255, 255] and strip[1, 5].tolist() == [200, 0, 0]
    with pytest.raises(ValueError, match=r"thumbnail 1: expected a uint8 image .* got float64 \(4, 4, 3\)"):
        thumbnail_strip([grey, np.zeros((4, 4, 3))])


def test_the_timeline_shows_the_chosen_thumbnails_in_order_with_their_times():
    from fe_adapter.predict.results import VideoPrediction, WindowPrediction
    from fe_adapter.predict.timeline import timeline_figure

    windows = [WindowPrediction(float(index), index + 2.0, {"happy": 0.5, "sad": 0.5}, faces_found=4, frames=4,
                                no_face=index == 2) for index in range(4)]
    colours = {index: np.full((8, 8, 3), 60 * index + 10, dtype=np.uint8) for index in range(4)}
    figure = timeline_figure(VideoPrediction("clip.mp4", 5.0, 10.0, windows, 1.0, thumbnails=colours),
                             max_thumbnails=2)  # every second window's: 0 and 2
    strip = figure.axes[1]
    pixels = strip.images[0].get_array()
    assert pixels[4, 4, 0] == 10 and pixels[4, -4, 0] == 130
    assert [text.get_text() for text in strip.texts] == ["1.0s", "3.0s no face"]


class _FaceInTheMiddle:
    """A detector that always finds the face in the middle of the frame: no detection cost."""

    name = "middle"

    def detect(self, frame: np.ndarray) -> list:
        return [centre_face(frame, margin=1.25)]


def test_memory_is_bounded_by_the_window_not_the_video_length(tmp_path, checkpoint):
    """Streaming: the face crops held at once do not grow with the video, and no window is lost."""
    from tests.media import numbered_frames

    adapters, backbone = checkpoint
    model = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone).model
    predictor = Predictor(model, "cpu", _FaceInTheMiddle(), detect_every=1)
    held = []
    for frames in (100, 600):  # 10 s and 60 s at 10 frames/s
        video = write_video(tmp_path / f"{frames}.mp4", np.concatenate([numbered_frames(25)] * (frames // 25)))
        result = predictor.predict_video(video, window=1.0, stride=0.5, batch_size=2)
        assert len(result.windows) == (frames / 10 - 1.0) / 0.5 + 1
        assert len(result.thumbnails) == 10 and all(w.faces_found == 4 for w in result.windows)
        held.append(result.peak_frames_held)
    # one window (10 frames) plus the windows a batch waits for (2 x 0.5 s): at most 20 frames, 4 of 10 sampled
    assert held[0] == held[1] <= 20


def test_a_video_shorter_than_its_stream_says_keeps_the_complete_windows(tmp_path, checkpoint, monkeypatch):
    from fe_adapter.data.readers import VideoReader

    class Overcounting(VideoReader):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.frame_count += 20  # the header promises 2 s more than the file holds

    monkeypatch.setattr("fe_adapter.predict.face_pass.VideoReader", Overcounting)
    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone)
    with pytest.warns(UserWarning, match=r"ends at frame 30, its stream says 50 frames .* 5 of 9 windows"):
        result = predictor.predict_video(face_video(tmp_path / "face.mp4", frames=30), window=1.0, stride=0.5)
    assert [w.start for w in result.windows] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_progress_bar_on_request(tmp_path, checkpoint, capsys):
    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone)
    video = face_video(tmp_path / "face.mp4", frames=20)
    predictor.predict_video(video, window=1.0, stride=1.0, progress=False)
    assert "frame/s" not in capsys.readouterr().err
    predictor.predict_video(video, window=1.0, stride=1.0, progress=True)
    bar = capsys.readouterr().err
    assert "face.mp4" in bar and "/20 " in bar and "frame/s" in bar


def test_a_crop_across_the_frame_edge_repeats_the_edge_pixels():
    frame = np.zeros((40, 60, 3), dtype=np.uint8)
    frame[:, :, 0] = np.arange(60, dtype=np.uint8)[None, :] * 4  # red grows to the right
    frame[:, :, 1] = np.arange(40, dtype=np.uint8)[:, None] * 6  # green grows downwards
    box = (-4.5, -4.5, 11.5, 11.5)  # side 16 centred on (3.5, 3.5): crop pixel (i, j) is frame pixel (i - 6, j - 6)
    crop = align_face(frame, Face(box, 1.0), size=20, margin=1.25)  # 20x20: 6 px outside
    assert crop.shape == (20, 20, 3)
    assert (crop[:6, :, 1] == 0).all() and (crop[:, :6, 0] == 0).all()  # rows/columns above/left: the edge
    assert crop[10, 10, 0] == frame[0, 10 - 6, 0] and crop[10, 10, 1] == frame[10 - 6, 0, 1]


_PLOT = '''
import sys
from pathlib import Path
import numpy as np
from fe_adapter.predict.results import VideoPrediction, WindowPrediction
from fe_adapter.predict.timeline import plot_timeline
windows = [WindowPrediction(float(i), i + 2.0, {"happy": 0.3, "sad": 0.7}, 4, 4, False) for i in range(5)]
plot_timeline(VideoPrediction("clip.mp4", 6.0, 10.0, windows, 1.0, thumbnails={0: np.zeros((8, 8, 3), np.uint8)}),
              Path("timeline.png"))
print(Path("timeline.png").read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", "matplotlib.pyplot" in sys.modules)
'''


def test_the_timeline_png_is_drawn_without_pyplot(tmp_path):
    """predict's PNG comes from a plain Figure on the Agg canvas: pyplot (half a second of start-up) is never
    imported, in a fresh interpreter."""
    from tests.cli_probes import run_python

    finished = run_python(_PLOT, tmp_path)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split() == ["True", "False"]
