"""Image sources (folder per class, list file) and ``load_image``, on fixture files in each layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fe_adapter import data
from fe_adapter.data.registry import formats, register


def _write_jpeg(path: Path, value: int = 128, size: tuple[int, int] = (20, 16)) -> Path:
    """A small JPEG whose left half is ``value`` and right half is dark (width, height = ``size``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    pixels[:, size[0] // 2:] = 10
    Image.fromarray(pixels).save(path, quality=95)
    return path


def test_image_folder_reads_the_imagefolder_layout(tmp_path):
    for split, names in {"train": ("sad", "happy"), "val": ("happy",)}.items():
        for name in names:
            _write_jpeg(tmp_path / split / name / "b.jpg")
            _write_jpeg(tmp_path / split / name / "a.png")
    (tmp_path / "train" / "sad" / "notes.txt").write_text("not an image")
    train = data.image_folder(tmp_path, "train")
    assert train.class_names == ("happy", "sad")  # sorted folder names
    assert [(item.path.relative_to(tmp_path).as_posix(), item.label) for item in train.items] == [
        ("train/happy/a.png", 0), ("train/happy/b.jpg", 0), ("train/sad/a.png", 1), ("train/sad/b.jpg", 1)]
    val = data.image_folder(tmp_path, "val", class_names=train.class_names)  # a split without some class
    assert val.class_names == ("happy", "sad") and {item.label for item in val.items} == {0}


def test_image_folder_errors(tmp_path):
    _write_jpeg(tmp_path / "train" / "happy" / "a.jpg")
    with pytest.raises(data.DatasetError, match="split folder 'test' of the image folder not found"):
        data.image_folder(tmp_path, "test")
    with pytest.raises(data.DatasetError, match="unknown class 'happy'; known classes: sad"):
        data.image_folder(tmp_path, "train", class_names=("sad",))
    (tmp_path / "val" / "happy").mkdir(parents=True)
    with pytest.raises(data.DatasetError, match="no images"):
        data.image_folder(tmp_path, "val")


def test_image_list_reads_path_label_lines(tmp_path):
    _write_jpeg(tmp_path / "img" / "a.jpg")
    _write_jpeg(tmp_path / "img" / "b c.jpg")
    listing = tmp_path / "train.txt"
    listing.write_text("path,label\nimg/a.jpg,1\n\"img/b c.jpg\",0\n# a comment\n\nimg/gone.jpg,1\n")
    with pytest.warns(UserWarning, match=r"1 of 3 listed images are missing .*gone.jpg \(.*train.txt:6\)"):
        images = data.image_list(listing)
    assert images.class_names == ("class_0", "class_1")
    assert [(item.path.name, item.label, item.origin.rsplit(":", 1)[1]) for item in images.items] == [
        ("a.jpg", 1, "2"), ("b c.jpg", 0, "3")]
    assert [item.path.name for item in images.missing] == ["gone.jpg"]
    named = tmp_path / "named.txt"
    named.write_text("img/a.jpg happy\n")
    assert data.image_list(named, class_names=("sad", "happy")).items[0].label == 1


@pytest.mark.parametrize("line, message", [
    ("img/a.jpg 3 1", "named.txt:1: expected '<path> <label>' or 'path,label'"),  # no frame counts for images
    ("img/a.jpg", "named.txt:1: expected '<path> <label>'"),
    ("img/a.jpg angry", "named.txt:1: unknown class 'angry'"),
    ("img/a.jpg 5", "named.txt:1: label 5 out of range 0..1"),
])
def test_image_list_bad_lines_name_file_and_line(tmp_path, line, message):
    _write_jpeg(tmp_path / "img" / "a.jpg")
    (tmp_path / "named.txt").write_text(line + "\n")
    with pytest.raises(data.DatasetError, match=message):
        data.image_list(tmp_path / "named.txt", class_names=("sad", "happy"))


def test_load_image_converts_to_rgb_and_crops_the_box(tmp_path):
    path = _write_jpeg(tmp_path / "a.jpg", value=200, size=(20, 16))
    whole = data.load_image(data.ImageItem(path, 0))
    assert whole.mode == "RGB" and whole.size == (20, 16)
    face = data.load_image(data.ImageItem(path, 0, box=(2, 3, 8, 12)))
    assert face.size == (6, 9) and abs(int(np.asarray(face).mean()) - 200) <= 3  # the bright left half
    clipped = data.load_image(data.ImageItem(path, 0, box=(-5, -5, 4, 4)))  # a box over the edge is clipped
    assert clipped.size == (4, 4)
    grey = np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)
    in_memory = data.load_image(data.ImageItem(None, 0, "fer2013.csv:2", pixels=grey))
    assert in_memory.mode == "RGB" and np.array_equal(np.asarray(in_memory)[..., 1], grey)


def test_load_image_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(data.UnreadableImage, match=r"broken.jpg \(list.txt:4\): cannot read the image"):
        data.load_image(data.ImageItem(broken, 0, "list.txt:4"))
    with pytest.raises(data.UnreadableImage, match="gone.jpg: image file not found"):
        data.load_image(data.ImageItem(tmp_path / "gone.jpg", 0))
    path = _write_jpeg(tmp_path / "a.jpg")
    with pytest.raises(data.UnreadableImage, match=r"face box \(30, 0, 40, 5\) lies outside the 20x16 image"):
        data.load_image(data.ImageItem(path, 0, box=(30, 0, 40, 5)))
    assert issubclass(data.UnreadableImage, data.UnreadableClip)  # loaders skip it as they skip clips


# ----- the registry -----

def test_registry_lists_video_and_image_formats():
    assert formats("video") == ["dfew", "ferv39k", "mafw", "list", "folder", "synthetic"]
    assert {"image_folder", "image_list"} <= set(formats("image"))
    assert data.FORMATS["dfew"].class_names == data.DFEW_CLASSES
    assert data.FORMATS["dfew"].required() == ("root",)
    assert all(data.FORMATS[name].kind == kind for kind in ("video", "image") for name in formats(kind))


def test_open_dataset_opens_a_format_with_its_options(tmp_path):
    _write_jpeg(tmp_path / "test" / "happy" / "a.jpg")
    images = data.open_dataset("image_folder", root=tmp_path, split="test")
    assert isinstance(images, data.ImageList) and images.class_names == ("happy",)
    clips = data.open_dataset("synthetic", split="test", num_clips=7)
    assert isinstance(clips, data.ClipList) and len(clips.items) == 7


@pytest.mark.parametrize("name, options, message", [
    ("dfw", {}, r"unknown dataset format 'dfw'; known formats: video: dfew, .*; image: image_folder"),
    ("dfew", {"root": "/x", "fol": 2}, "dataset format 'dfew' takes no option 'fol'; its options: root, fold"),
    ("dfew", {"fold": 2}, "dataset format 'dfew' needs the option 'root'"),
    ("dfew", {"root": "/x", "split": "val"}, r"dataset format 'dfew': split must be one of \('train', 'test'\)"),
])
def test_open_dataset_refuses_unknown_names_and_options(name, options, message):
    with pytest.raises(data.DatasetError, match=message):
        data.open_dataset(name, **options)


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="'dfew' is registered already"):
        register(data.DatasetFormat("dfew", "image", data.image_folder, None, (), "a clash"))
