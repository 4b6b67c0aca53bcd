"""``fe-adapter crop-faces`` on raw photos: the main face of each image aligned onto predict's template, images
without a face or unreadable reported and skipped, a second run resuming, and the output training
``fe-adapter pretrain-image``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fe_adapter import cli
from tests.test_pretrain_image import tiny_image_config
from tests.training_cases import as_overrides

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker

SIZE = 112
_GREY = np.array([0.299, 0.587, 0.114])


def _photo(path: Path, scale: float, angle: float, shift: tuple[float, float], grey: bool = False,
           canvas: tuple[int, int] = (360, 480)) -> Path:
    """scikit-image's astronaut (a real photograph) scaled, rotated by ``angle`` degrees and moved into a larger
    grey canvas (height, width), saved as an image file."""
    from skimage import data
    from skimage.transform import SimilarityTransform, warp

    astronaut = data.astronaut()
    placed = SimilarityTransform(scale=scale, rotation=np.deg2rad(angle), translation=shift)
    pixels = warp(astronaut, placed.inverse, output_shape=canvas, cval=0.5, preserve_range=True).astype(np.uint8)
    if grey:
        pixels = np.repeat((pixels @ _GREY)[..., None], 3, axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _no_detector(*args, **kwargs):
    raise AssertionError("a resumed run made a detector: it redid work")


def _crop(capsys, *arguments: str) -> tuple[int, str, str]:
    status = cli.main(["crop-faces", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def detector():
    from fe_adapter.faces import make_detector

    return make_detector("mtcnn")


def _similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` (N, 2) points moved by the least-squares similarity (rotation, uniform scale, shift) onto
    ``target``: in complex numbers w = a z + b, a = sum(conj(z - mean z) (w - mean w)) / sum |z - mean z|^2."""
    z, w = source @ (1, 1j), target @ (1, 1j)
    a = (np.conj(z - z.mean()) * (w - w.mean())).sum() / (np.abs(z - z.mean()) ** 2).sum()
    fitted = a * z + w.mean() - a * z.mean()
    return np.stack([fitted.real, fitted.imag], axis=1)


def test_aligned_photos_put_the_landmarks_on_the_template(tmp_path, capsys, detector, monkeypatch):
    """Photos of one face in two poses (turned by 25 and -10 degrees, a quarter and a sixth of the canvas wide):
    MTCNN, run again on each written crop, finds the five landmarks where the least-squares similarity from the
    photo's own landmarks to ``face_template`` puts them (a similarity composed with the pose is one, so the
    expected points are the same for every pose), within 3% of the crop; a photo of noise and a file that is no
    image are named and skipped, never cropped."""
    from skimage import data

    from fe_adapter.faces import face_template

    raw = tmp_path / "raw"
    _photo(raw / "happy" / "turned.png", 0.45, 25, (200, 20))
    _photo(raw / "happy" / "small.jpg", 0.3, -10, (60, 150))
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(noise).save(raw / "happy" / "noise.png")
    (raw / "happy" / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "faces"
    status, printed, errors = _crop(capsys, str(raw), str(out), "--size", str(SIZE))
    assert status == 1, errors  # an unreadable file
    assert "2 of 4 images cropped (0 by an earlier run)" in printed and "1 without a face, 1 unreadable" in printed
    lines = errors.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("fe-adapter crop-faces: error: ") for line in lines[:2]), errors
    assert "happy/broken.jpg: cannot read the image" in lines[0] and lines[1].endswith("happy/noise.png: no face "
                                                                                        "found: skipped")
    # two faces of one class are too few to hold one out at the default --test-fraction 0.2
    assert lines[2].startswith("fe-adapter crop-faces: warning: class 'happy' has too few images"), errors
    skipped = _rows(out / "skipped.csv")
    assert [row[0] for row in skipped] == ["happy/broken.jpg", "happy/noise.png"]
    assert skipped[0][1].startswith("unreadable: ") and skipped[1][1] == "no face"
    assert sorted(p.name for p in (out / "happy").iterdir()) == ["small.jpg", "turned.png"]
    assert _rows(out / "manifest.csv") == [["happy/small.jpg", "happy"], ["happy/turned.png", "happy"]]

    template = face_template(SIZE)
    expected = _similarity_fit(detector.detect(data.astronaut())[0].landmarks, template)
    assert np.abs(expected - template).max() < 0.05 * SIZE  # the astronaut's face is near the template's shape
    for name in ("turned.png", "small.jpg"):
        crop = np.asarray(Image.open(out / "happy" / name))
        assert crop.shape == (SIZE, SIZE, 3)
        faces = detector.detect(crop)
        assert len(faces) == 1, name
        error = np.abs(faces[0].landmarks - expected).max()
        assert error < 0.03 * SIZE, (name, error, faces[0].landmarks.round(1).tolist(), expected.round(1).tolist())

    # the broken file removed, a second run: the faceless photo is reported again from skipped.csv, not re-detected
    import fe_adapter.faces as faces_package

    (raw / "happy" / "broken.jpg").unlink()
    monkeypatch.setattr(faces_package, "make_detector", _no_detector)
    status, printed, errors = _crop(capsys, str(raw), str(out), "--size", str(SIZE))
    assert status == 3 and "2 of 3 images cropped (2 by an earlier run)" in printed, errors
    lines = errors.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("happy/noise.png: no face found: skipped"), errors
    assert lines[1].startswith("fe-adapter crop-faces: warning: class 'happy' has too few images"), errors
    assert _rows(out / "skipped.csv") == [["happy/noise.png", "no face"]]


def test_the_largest_face_is_the_main_one():
    from fe_adapter.faces import Face
    from fe_adapter.faces.crop_images import main_face

    small, large, sure = Face((0, 0, 10, 10), 0.99), Face((50, 50, 90, 80), 0.95), Face((0, 0, 40, 40), 0.999)
    assert main_face([small, large]) is large and main_face([large, small]) is large
    assert main_face([large, sure]) is sure  # same side: the surer
    assert main_face([]) is None


def test_a_second_run_resumes_and_the_output_pretrains(tmp_path, capsys, monkeypatch):
    """Two classes of photos (in colour, in grey) in an image-folder tree: cropped, listed, a second run redoes
    nothing (no crop rewritten, no detector made), and the tree trains ``fe-adapter pretrain-image`` both as an
    image_folder and through the image_list files."""
    raw = tmp_path / "raw"
    poses = [(0.3, -15, (100, 40)), (0.4, 10, (150, 10)), (0.35, 0, (30, 120)), (0.3, 20, (240, 60))]
    for grey, label in ((False, "colour"), (True, "grey")):
        for number, pose in enumerate(poses):
            _photo(raw / "train" / label / f"{number}.jpg", *pose, grey=grey, canvas=(300, 400))
        _photo(raw / "test" / label / "held.jpg", 0.33, 5, (80, 60), grey=grey, canvas=(300, 400))
    out = tmp_path / "faces"
    arguments = (str(raw), str(out), "--size", "48", "--test-fraction", "0.4")
    status, printed, errors = _crop(capsys, *arguments)
    assert status == 0, errors
    assert "10 of 10 images cropped (0 by an earlier run)" in printed
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        p.relative_to(raw).as_posix() for p in raw.rglob("*.jpg"))
    assert (out / "classes.txt").read_text() == "colour\ngrey\n"
    train, test = _rows(out / "train.csv"), _rows(out / "test.csv")
    assert sorted(row[1] for row in test) == ["colour"] * 2 + ["grey"] * 2 and len(train) == 6
    written = {path: path.stat().st_mtime_ns for path in out.rglob("*.jpg")}
    lists = {name: (out / name).read_text() for name in ("manifest.csv", "train.csv", "test.csv")}

    import fe_adapter.faces as faces_package

    monkeypatch.setattr(faces_package, "make_detector", _no_detector)
    status, printed, errors = _crop(capsys, *arguments)
    assert status == 0 and "10 of 10 images cropped (10 by an earlier run)" in printed, errors
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.jpg")} == written
    assert {name: (out / name).read_text() for name in lists} == lists
    monkeypatch.undo()

    image_folder = tiny_image_config(tmp_path / "run_folder", optim={"epochs": 1, "ema": False})
    image_folder["data"] = {"dataset": "image_folder", "root": str(out), "img_size": 32, "batch_size": 4,
                            "num_workers": 0}
    image_list = tiny_image_config(tmp_path / "run_list", optim={"epochs": 1, "ema": False})
    image_list["data"] = {"dataset": "image_list", "train_split": str(out / "train.csv"),
                          "test_split": str(out / "test.csv"), "class_names": ["colour", "grey"], "img_size": 32,
                          "batch_size": 4, "num_workers": 0}
    for config, counts in ((image_folder, (8, 2)), (image_list, (6, 4))):
        assert cli.main(["pretrain-image", *as_overrides(config)]) == 0, capsys.readouterr().err[-2000:]
        run = Path(config["run"]["out_dir"])
        metrics = json.loads((run / "report" / "metrics.json").read_text())
        assert metrics["last"]["metrics"]["class_names"] == ["colour", "grey"]
        assert sum(map(sum, metrics["last"]["metrics"]["confusion"])) == counts[1], metrics["last"]
        assert (run / "last.safetensors").is_file()

    # a replaced photo is cropped again, the rest stays; a class of one image cannot hold one out for test
    replaced = _photo(raw / "train" / "colour" / "0.jpg", 0.45, -5, (60, 90), canvas=(300, 400))
    os.utime(replaced, ns=(replaced.stat().st_atime_ns, written[out / "train/colour/0.jpg"] + 10**9))
    _photo(raw / "train" / "lone" / "0.jpg", 0.3, 0, (100, 50), canvas=(300, 400))
    status, printed, errors = _crop(capsys, *arguments)
    assert status == 0 and "11 of 11 images cropped (9 by an earlier run)" in printed, errors
    changed = {path for path in out.rglob("*.jpg") if path.stat().st_mtime_ns != written.get(path)}
    assert changed == {out / "train/colour/0.jpg", out / "train/lone/0.jpg"}
    assert "crop-faces: warning: class 'lone' has too few images to hold one out" in errors
    assert "lone" not in (out / "test.csv").read_text() and "train/lone/0.jpg,lone" in (out / "train.csv").read_text()


def test_videos_with_images_and_missing_images_are_refused(tmp_path, capsys):
    from tests.media import write_video

    _photo(tmp_path / "raw" / "a.jpg", 0.3, 0, (10, 10))
    video = write_video(tmp_path / "clip.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=10)
    status, printed, errors = _crop(capsys, str(tmp_path / "raw"), str(video), str(tmp_path / "out"))
    assert status == 2 and "give videos or images, not both in one run" in errors
    assert not (tmp_path / "out").exists()
    status, printed, errors = _crop(capsys, str(tmp_path / "raw" / "missing.jpg"), str(tmp_path / "out"))
    assert status == 2 and errors.strip() == (f"fe-adapter crop-faces: error: {tmp_path / 'raw' / 'missing.jpg'}: "
                                              "image file not found")
