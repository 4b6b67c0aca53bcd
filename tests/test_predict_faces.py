"""Prediction with faces tracked: every person's timeline (--all-faces), the main face by default, clips that are
face crops already (--faces none), and the JSON/CSV fields that say which face a window is."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from fe_adapter import cli
from fe_adapter.predict.predictor import PredictionError, Predictor
from tests.face_scenes import blank, place_face
from tests.media import write_video

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker


@pytest.fixture(scope="module")
def checkpoint(tiny_model_files):
    return tiny_model_files


def _two_people(frames: int = 20) -> np.ndarray:
    """The photo's face on the left all along (the main face) and its mirror image on the right from frame 8."""
    video = []
    for index in range(frames):
        frame = blank()
        place_face(frame, (80, 110 + index), 0.5)
        if index >= 8:
            place_face(frame, (240, 120), 0.4, mirror=True)
        video.append(frame)
    return np.stack(video)


def _run(tmp_path, checkpoint, video, *options) -> tuple[int, dict, list[dict]]:
    adapters, backbone = checkpoint
    out = tmp_path / "out"
    code = cli.main(["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
                     "--window", "1s", "--stride", "0.5s", "--out", str(out), "--overwrite", *options])
    name = video.stem
    with (out / f"{name}.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return code, json.loads((out / f"{name}.json").read_text()), rows


def test_every_person_gets_a_timeline_and_the_main_face_is_the_default(tmp_path, checkpoint):
    video = write_video(tmp_path / "two.mp4", _two_people())
    code, result, rows = _run(tmp_path, checkpoint, video, "--all-faces")
    assert code == 0 and result["schema_version"] == 3
    assert result["detector"] == "mtcnn" and result["detect_every"] == 4  # --all-faces: a scan every 0.4 s at 10 fps
    tracks = {track["track_id"]: track for track in result["tracks"]}
    assert len(tracks) == 2 and result["track_id"] in tracks
    main, other = tracks[result["track_id"]], next(t for i, t in tracks.items() if i != result["track_id"])
    assert main["frames_seen"] > other["frames_seen"] > 0
    assert all(w["box"][2] < 160 for w in main["windows"]) and all(w["box"][0] > 160 for w in other["windows"])
    assert [w["start_s"] for w in main["windows"]] == [0.0, 0.5, 1.0]
    assert [w["start_s"] for w in other["windows"]] == [0.5, 1.0]  # seen from frame 8 on: not in frames 1-8
    assert result["windows"] == main["windows"]
    assert all(w["track_id"] == track_id for track_id, t in tracks.items() for w in t["windows"])
    assert sorted((row["track_id"], row["start_s"]) for row in rows) == sorted(
        (str(track_id), f"{w['start_s']:.3f}") for track_id, t in tracks.items() for w in t["windows"])
    assert all(float(row["box_x1"]) > float(row["box_x0"]) for row in rows)

    # the default (the main face only) scans every 2 s, not every 0.4 s as --all-faces does: scanning as often,
    # it gives the main face's timeline of --all-faces
    code, default, rows = _run(tmp_path, checkpoint, video, "--detect-every", "4")
    assert code == 0 and default["tracks"] == [] and default["track_id"] == result["track_id"]
    assert [w["track_id"] for w in default["windows"]] == [result["track_id"]] * 3
    assert [w["faces_found"] for w in default["windows"]] == [4, 4, 4]
    assert [w["box"] for w in default["windows"]] == [w["box"] for w in main["windows"]]
    assert [row["track_id"] for row in rows] == [str(result["track_id"])] * 3


def test_face_crops_need_no_detection(tmp_path, checkpoint, capsys):
    """A clip that is a face crop already (here: no face a detector would find): --faces none takes each frame's
    centre square as the face; without it the video has no face."""
    frames = np.random.default_rng(0).integers(60, 200, (20, 48, 64, 3), dtype=np.uint8)
    video = write_video(tmp_path / "crop.mp4", frames)
    code, result, rows = _run(tmp_path, checkpoint, video, "--faces", "none")
    assert code == 0 and result["detector"] == "none" and result["detect_every"] is None
    assert result["track_id"] is None and result["tracks"] == []
    # the face box: the centre square less the margin (1.25): 38.4 px of the 48 px square
    assert all(w["faces_found"] == w["frames"] and w["box"] == [12.3, 4.3, 50.7, 42.7] for w in result["windows"])
    assert all(row["track_id"] == "" for row in rows)
    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone, detector="lbp")
    with pytest.raises(PredictionError, match="no face found"):
        predictor.predict_video(video, window=1.0, stride=0.5)


def test_face_crops_show_the_model_the_centre_square(tmp_path, checkpoint):
    """With detector None each frame's centre square, resized, is what the model sees."""
    from fe_adapter.data.transforms import normalization_for

    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone, detector=None)
    frames = np.zeros((10, 40, 80, 3), dtype=np.uint8)
    frames[:, :, 20:60] = 200  # the centre square bright, the sides dark
    video = write_video(tmp_path / "square.mp4", frames)
    norm = normalization_for(predictor.model)
    shown = []
    hook = predictor.model.register_forward_pre_hook(lambda module, inputs: shown.append(inputs[0]))
    try:
        predictor.predict_video(video, window=1.0, stride=1.0)
    finally:
        hook.remove()
    pixels = shown[0] * torch.tensor(norm.std)[:, None, None] + torch.tensor(norm.mean)[:, None, None]
    assert float(pixels.min()) > 0.7  # no dark side in any crop


def test_a_face_that_comes_back_as_a_new_track_is_the_main_face_again(tmp_path, checkpoint):
    """The face leaves for frames 12-27 of 40 and comes back further right, bigger: a new track, while the old one
    still holds its last box (3 missed detections); the main face is the one seen, not the old track's box."""
    from fe_adapter.predict.examples import face_video

    adapters, backbone = checkpoint
    predictor = Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone)
    video = face_video(tmp_path / "leaves.mp4", frames=40, hidden=range(12, 28))
    result = predictor.predict_video(video, window=1.0, stride=0.5)
    # windows sample frames (1, 3, 6, 8), (6, 8, 11, 13), ... (31, 33, 36, 38); while no face is seen the detector
    # scans every 0.4 s (4 frames), so it finds the face again at 28, the first sampled frame it is back in: each
    # window counts the frames the face is in
    assert [w.faces_found for w in result.windows] == [4, 3, 1, 0, 1, 3, 4]
    assert [w.track_id for w in result.windows] == [0, 0, 0, 0, 1, 1, 1]
