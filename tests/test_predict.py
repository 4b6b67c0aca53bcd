"""Prediction on real video files: a real face photo moving in an mp4, faces found, windows, outputs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
from safetensors.torch import save_file

from fe_adapter import cli
from fe_adapter.predict.examples import face_video
from fe_adapter.predict.faces import FaceTracker
from fe_adapter.predict.predictor import PredictionError, Predictor, window_starts
from tests.media import write_video
from tests.tiny_model import TINY_CLASSES

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


def test_face_is_found_in_every_frame_of_a_real_face_video(tmp_path):
    from fe_adapter.data.readers import decode_video

    frames, fps = decode_video(face_video(tmp_path / "face.mp4"))
    tracked = FaceTracker().track(frames)
    assert fps == 10 and len(frames) == 40
    assert all(face is not None and face.detected for face in tracked)
    xs = [face.box.x for face in tracked]
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
