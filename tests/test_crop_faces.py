"""``fe-adapter crop-faces``: raw videos of real faces to aligned face frames and list files that train, resumably,
with bad videos reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.face_videos import render_frame
from fe_adapter import cli
from fe_adapter.faces.crop_videos import sampled_indices
from tests.media import write_video
from tests.training_cases import TINY_BACKBONE, run_module

WIDTH, HEIGHT, FPS = 160, 120, 10
_GREY = np.array([0.299, 0.587, 0.114])


def _face_video(path: Path, scenario: str, frames: int, first: int = 0, grey: bool = False) -> Path:
    """A small mp4 of the astronaut photo (``benchmarks.face_videos``), in grey if asked."""
    pixels = np.stack([render_frame(scenario, first + index, FPS, WIDTH, HEIGHT) for index in range(frames)])
    if grey:
        pixels = np.repeat((pixels @ _GREY)[..., None], 3, axis=-1).astype(np.uint8)
    return write_video(path, pixels, fps=FPS)


def _crop(capsys, *arguments: str) -> tuple[int, str, str]:
    status = cli.main(["crop-faces", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _list(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def test_sampled_indices():
    assert sampled_indices(10, 10.0, 5.0) == [0, 2, 4, 6, 8]
    assert sampled_indices(10, 10.0, 20.0) == list(range(10))  # fewer frames than asked: all of them
    assert sampled_indices(25, 25.0, 10.0) == [0, 2, 5, 8, 10, 12, 15, 18, 20, 22]  # nearest to every 0.1 s
    assert sampled_indices(7, 29.97, 29.97 / 3) == [0, 3, 6]
    with pytest.raises(ValueError, match="fps must be > 0"):
        sampled_indices(10, 10.0, 0.0)


def test_output_trains(tmp_path, capsys):
    """Two classes of real-face videos (in colour, in grey), cropped, listed, and trained on with ``fe-adapter
    train`` as a list dataset: it runs, the loss falls, and the held-out videos are classified."""
    raw = tmp_path / "raw"
    for grey, label in ((False, "colour"), (True, "grey")):
        for number, scenario in enumerate(("moving", "zooming", "rotating")):
            _face_video(raw / label / f"{scenario}.mp4", scenario, 20, first=7 * number, grey=grey)
    out = tmp_path / "faces"
    status, printed, errors = _crop(capsys, str(raw), str(out), "--fps", "5", "--min-frames", "4", "--size", "64",
                                    "--test-fraction", "0.34")
    assert status == 0, errors
    assert "6 of 6 videos cropped (0 by an earlier run): 6 clips" in printed
    train, test = _list(out / "train.csv"), _list(out / "test.csv")
    assert sorted(row[2] for row in train) == ["colour", "colour", "grey", "grey"]
    assert sorted(row[2] for row in test) == ["colour", "grey"]
    assert sorted(map(tuple, train + test)) == sorted(map(tuple, _list(out / "manifest.csv")))
    assert (out / "classes.txt").read_text() == "colour\ngrey\n"
    for path, frames, _ in train + test:  # DFEW-style folders: 00001.jpg ..., 10 frames kept at 5 of 10 fps
        assert int(frames) == 10 and sorted(p.name for p in (out / path).iterdir()) == [
            f"{k:05d}.jpg" for k in range(1, 11)]

    run = tmp_path / "run"
    settings = {"data.dataset": "list", "data.train_list": str(out / "train.csv"),
                "data.test_list": str(out / "test.csv"), "data.class_names": ["colour", "grey"], "data.num_frames": 4,
                "data.img_size": 32, "data.batch_size": 2, "data.num_workers": 0,
                "model.backbone": "vit_tiny_patch16_224", "model.backbone_kwargs": TINY_BACKBONE,
                "model.bottleneck": 16, "model.dropout": 0.0, "model.random_backbone": True, "optim.epochs": 20,
                "optim.lr": 0.01, "optim.warmup_epochs": 0.5, "optim.label_smoothing": 0.0, "run.out_dir": str(run),
                "run.progress": False, "run.tensorboard": False, "run.deterministic": True}
    finished = run_module("fe_adapter", ["train", *(f"{key}={json.dumps(value)}" for key, value in settings.items())])
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "4 train / 2 test clips of 4 frames, classes colour, grey" in finished.stderr + finished.stdout
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < 0.3 * losses[0], losses
    assert metrics["last"]["metrics"]["uar"] == 1.0, metrics["last"]


def _aligned_face_in_crop(crop: Path) -> bool:
    """The crop shows one face, centred (MTCNN finds it within a tenth of the crop from the middle)."""
    from PIL import Image

    from fe_adapter.faces import make_detector

    pixels = np.asarray(Image.open(crop))
    faces = make_detector("mtcnn").detect(pixels)
    if len(faces) != 1:
        return False
    centre = np.array(faces[0].centre)
    return bool(np.abs(centre - pixels.shape[0] / 2).max() < 0.1 * pixels.shape[0])


def test_every_person_gets_a_folder_and_a_second_run_resumes(tmp_path, capsys):
    raw = tmp_path / "raw" / "happy"
    _face_video(raw / "crossing.mp4", "crossing", 16, first=10)
    _face_video(raw / "moving.mp4", "moving", 16)
    out = tmp_path / "faces"
    arguments = (str(raw.parent), str(out), "--fps", "5", "--min-frames", "3", "--size", "96")
    status, printed, errors = _crop(capsys, *arguments)
    assert status == 0, errors
    assert "2 of 2 videos cropped (0 by an earlier run): 3 clips" in printed
    assert _list(out / "manifest.csv")[0] == ["clips/crossing/track0", "8", "happy"]
    clips = out / "clips"  # names relative to the videos' common folder, raw/happy
    assert sorted(p.name for p in (clips / "crossing").iterdir()) == ["crop.json", "track0", "track1"]
    assert _aligned_face_in_crop(clips / "crossing" / "track1" / "00002.jpg")
    assert _aligned_face_in_crop(clips / "moving" / "track0" / "00003.jpg")
    manifest = (out / "manifest.csv").read_text()
    record = json.loads((clips / "moving" / "crop.json").read_text())
    assert record["tracks"] == [{"folder": "track0", "frames": 8, "start_s": 0.0, "end_s": 1.4}]
    written = {path: path.stat().st_mtime_ns for path in clips.rglob("*.jpg")}

    status, printed, errors = _crop(capsys, *arguments)  # nothing to do: both skipped, no crop rewritten
    assert status == 0 and "2 of 2 videos cropped (2 by an earlier run): 3 clips" in printed, errors
    assert {path: path.stat().st_mtime_ns for path in clips.rglob("*.jpg")} == written
    assert (out / "manifest.csv").read_text() == manifest

    # a run killed while cropping "moving": no record, a stray half-written frame; it is redone from scratch
    (clips / "moving" / "crop.json").unlink()
    (clips / "moving" / "track0" / "00012.jpg").write_bytes(b"half a JPEG")
    status, printed, errors = _crop(capsys, *arguments)
    assert status == 0 and "2 of 2 videos cropped (1 by an earlier run): 3 clips" in printed, errors
    assert sorted(p.name for p in (clips / "moving" / "track0").iterdir()) == [f"{k:05d}.jpg" for k in range(1, 9)]
    assert json.loads((clips / "moving" / "crop.json").read_text()) == record
    assert (out / "manifest.csv").read_text() == manifest

    # other settings: the videos are cropped again with them
    status, printed, errors = _crop(capsys, *arguments[:-1], "112")
    assert status == 0 and "(0 by an earlier run)" in printed, errors
    assert json.loads((clips / "moving" / "crop.json").read_text())["settings"]["size"] == 112


def test_bad_videos_are_reported_and_skipped(tmp_path, capsys):
    raw = tmp_path / "raw"
    good = _face_video(raw / "good.mp4", "moving", 12)
    (raw / "garbage.mp4").write_bytes(b"not a video at all")
    (raw / "cut.mp4").write_bytes(good.read_bytes()[:1500])  # a truncated copy
    out = tmp_path / "faces"
    status, printed, errors = _crop(capsys, str(raw), str(out), "--fps", "5", "--min-frames", "3", "--label", "calm")
    assert status == 1
    lines = errors.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("fe-adapter crop-faces: error: ") for line in lines), errors
    assert any(str(raw / "garbage.mp4") in line for line in lines) and any(str(raw / "cut.mp4") in line
                                                                            for line in lines)
    assert "1 of 3 videos cropped" in printed
    assert _list(out / "manifest.csv") == [["clips/good/track0", "6", "calm"]]
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["good"]  # nothing left of the bad ones

    status, printed, errors = _crop(capsys, str(raw / "garbage.mp4"), str(out))
    assert status == 2 and "0 of 1 videos cropped" in printed


def test_a_video_without_faces_is_named(tmp_path, capsys):
    raw = tmp_path / "raw"
    write_video(raw / "empty.mp4", np.stack([render_frame("leaving", 25, FPS, WIDTH, HEIGHT)] * 8), fps=FPS)
    _face_video(raw / "face.mp4", "moving", 8)
    status, printed, errors = _crop(capsys, str(raw), str(tmp_path / "faces"), "--min-frames", "3")
    assert status == 3
    assert errors.strip() == "fe-adapter crop-faces: error: empty: no face seen in 3 or more kept frames: no clip"
    assert "2 of 2 videos cropped (0 by an earlier run): 1 clips" in printed


def test_lists_split_by_video(tmp_path):
    """Every person of a video is on the same side; per class the test share of the videos that gave clips, at
    least one video left for training; the same split on every run."""
    from fe_adapter.faces.crop_videos import write_lists

    two_people = [{"folder": "track0", "frames": 9}, {"folder": "track3", "frames": 12}]
    records = [{"name": f"{label}/v{k}", "label": label, "tracks": two_people} for label in ("a", "b")
               for k in range(5)]
    records += [{"name": "c/only", "label": "c", "tracks": two_people}, {"name": "a/none", "label": "a", "tracks": []}]
    paths = write_lists(tmp_path, records, 0.4)
    train, test = _list(paths["train.csv"]), _list(paths["test.csv"])
    videos = {side: {row[0].rsplit("/", 1)[0] for row in rows} for side, rows in (("train", train), ("test", test))}
    assert not videos["train"] & videos["test"]
    assert sorted(path for row in train + test for path in [row[0]]) == sorted(row[0] for row in _list(
        paths["manifest.csv"]))
    assert len(train + test) == 22 and ["clips/c/only/track3", "12", "c"] in train  # a lone video trains
    assert sorted(row[2] for row in test) == ["a"] * 4 + ["b"] * 4  # 2 of 5 videos, both people of each
    assert (tmp_path / "classes.txt").read_text() == "a\nb\nc\n"
    assert write_lists(tmp_path, records[::-1], 0.4) and _list(paths["test.csv"]) != [] and sorted(
        map(tuple, _list(paths["test.csv"]))) == sorted(map(tuple, test))
