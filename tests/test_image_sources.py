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
    ("dfw", {}, r"unknown dataset format 'dfw'; known formats: video: dfew, .*; image: .*image_folder"),
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


# ----- RAF-DB, FER2013, AffectNet in their official layouts -----

# Literal copies of the official label orders (docs/data.md gives the sources), so that an edit of the tuples in
# fe_adapter/data/images.py cannot pass unnoticed.
OFFICIAL_RAFDB = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")  # the file's 1..7
OFFICIAL_FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # emotion 0..6
OFFICIAL_AFFECTNET = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")  # 0..7


def test_image_class_orders_are_the_official_ones():
    from fe_adapter.data import images

    assert images.RAFDB_CLASSES == OFFICIAL_RAFDB
    assert images.FER2013_CLASSES == OFFICIAL_FER2013
    assert images.AFFECTNET_CLASSES == OFFICIAL_AFFECTNET


def _rafdb_root(tmp_path: Path, lines: str = "train_00001.jpg 5\ntrain_00002.jpg 1\ntest_0001.jpg 7\n"
                "train_00003.jpg 4\n") -> Path:
    root = tmp_path / "basic"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text(lines)
    for name in ("train_00001", "train_00002", "train_00003", "test_0001"):
        _write_jpeg(root / "Image" / "aligned" / f"{name}_aligned.jpg")
        _write_jpeg(root / "Image" / "original" / f"{name}.jpg", size=(40, 30))
    return root


def test_rafdb_reads_the_basic_layout(tmp_path):
    root = _rafdb_root(tmp_path)
    train = data.open_dataset("rafdb", root=root, split="train")
    assert train.class_names == OFFICIAL_RAFDB
    assert [(item.path.name, train.class_names[item.label]) for item in train.items] == [
        ("train_00001_aligned.jpg", "sadness"), ("train_00002_aligned.jpg", "surprise"),
        ("train_00003_aligned.jpg", "happiness")]
    assert train.items[2].origin.endswith("list_patition_label.txt:4")
    test = data.open_dataset("rafdb", root=root, split="test", images="original")
    assert [(item.path.name, item.label) for item in test.items] == [("test_0001.jpg", 6)]
    assert data.load_image(test.items[0]).size == (40, 30)


def test_rafdb_missing_images_are_left_out_with_a_warning(tmp_path):
    root = _rafdb_root(tmp_path)
    (root / "Image" / "aligned" / "train_00002_aligned.jpg").unlink()
    with pytest.warns(UserWarning, match=r"1 of 3 listed images are missing .*train_00002_aligned.jpg "
                                         r"\(.*list_patition_label.txt:2\)"):
        train = data.open_dataset("rafdb", root=root)
    assert len(train.items) == 2 and [item.path.name for item in train.missing] == ["train_00002_aligned.jpg"]


@pytest.mark.parametrize("lines, message", [
    ("train_00001.jpg 8\n", "list_patition_label.txt:1: label 8 out of range 1..7"),
    ("train_00001.jpg 5\nval_0001.jpg 3\n", "list_patition_label.txt:2: image name 'val_0001.jpg' does not start "
                                           "with train_ or test_"),
    ("train_00001.jpg\n", "list_patition_label.txt:1: expected '<train_NNNNN.jpg or test_NNNN.jpg> <label 1..7>'"),
    ("train_00001.jpg five\n", "list_patition_label.txt:1: label 'five' is not an integer"),
])
def test_rafdb_bad_lines_name_file_and_line(tmp_path, lines, message):
    with pytest.raises(data.DatasetError, match=message):
        data.open_dataset("rafdb", root=_rafdb_root(tmp_path, lines))


def test_rafdb_missing_label_file(tmp_path):
    (tmp_path / "basic" / "Image" / "aligned").mkdir(parents=True)
    with pytest.raises(data.DatasetError, match="RAF-DB label file not found: .*list_patition_label.txt"):
        data.open_dataset("rafdb", root=tmp_path / "basic")


def _fer_pixels(seed: int) -> str:
    return " ".join(str(value) for value in np.random.default_rng(seed).integers(0, 256, 48 * 48))


def _fer_csv(tmp_path: Path, rows: list[str] | None = None) -> Path:
    if rows is None:
        rows = [f"0,{_fer_pixels(0)},Training", f"6,{_fer_pixels(1)},PublicTest", f"3,{_fer_pixels(2)},Training",
                f"1,{_fer_pixels(3)},PrivateTest"]
    path = tmp_path / "fer2013" / "fer2013.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


def test_fer2013_reads_the_kaggle_csv(tmp_path):
    path = _fer_csv(tmp_path)
    train = data.open_dataset("fer2013", root=path.parent, split="train")
    assert train.class_names == OFFICIAL_FER2013
    assert [(train.class_names[item.label], item.origin.rsplit(":", 1)[1]) for item in train.items] == [
        ("angry", "2"), ("happy", "4")]
    expected = np.array(_fer_pixels(2).split(), dtype=np.uint8).reshape(48, 48)  # row-major 48 x 48
    assert train.items[1].path is None and np.array_equal(train.items[1].pixels, expected)
    image = data.load_image(train.items[1])
    assert image.size == (48, 48) and np.array_equal(np.asarray(image)[..., 0], expected)
    assert [OFFICIAL_FER2013[item.label] for item in data.open_dataset("fer2013", root=path, split="val").items] == [
        "neutral"]  # PublicTest
    assert [OFFICIAL_FER2013[item.label] for item in data.open_dataset("fer2013", root=path, split="test").items] == [
        "disgust"]  # PrivateTest


@pytest.mark.parametrize("row, message", [
    (f"7,{_fer_pixels(0)},Training", "fer2013.csv:3: label 7 out of range 0..6"),
    ("2,1 2 3,Training", "fer2013.csv:3: 3 pixels, expected 48x48 = 2304"),
    (f"2,{_fer_pixels(0)[:-3]} 256,Training", r"fer2013.csv:3: pixel values must lie in 0..255"),
    (f"2,{_fer_pixels(0)},Test", "fer2013.csv:3: Usage 'Test' is none of Training, PublicTest, PrivateTest"),
    ("2", "fer2013.csv:3: 1 fields, expected 3"),
])
def test_fer2013_bad_rows_name_file_and_line(tmp_path, row, message):
    path = _fer_csv(tmp_path, [f"0,{_fer_pixels(0)},Training", row])
    with pytest.raises(data.DatasetError, match=message):
        data.open_dataset("fer2013", root=path)


def test_fer2013_needs_its_columns(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(data.DatasetError, match=r"fer2013.csv:1: the header has no column 'pixels' \(needed: emotion"):
        data.open_dataset("fer2013", root=path)
    path.write_text(f"0,{_fer_pixels(0)},Training\n")
    with pytest.raises(data.DatasetError, match="fer2013.csv:1: expected a header with the columns emotion, pixels"):
        data.open_dataset("fer2013", root=path)


_AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,"
                     "arousal")


def _affectnet_root(tmp_path: Path, rows: list[str] | None = None, header: bool = True) -> Path:
    root = tmp_path / "AffectNet"
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    landmarks = ";".join(["10.5"] * 136)  # 68 points, ';'-separated as in the official lists
    if rows is None:
        rows = [f"1/a.jpg,4,6,10,8,{landmarks},1,0.8,0.3", f"1/b.jpg,0,0,20,16,{landmarks},7,-0.2,0.1",
                f"2/c.jpg,2,2,8,8,{landmarks},8,0.0,0.0", f"2/d.jpg,0,0,5,5,{landmarks},0,0.0,0.0",
                f"2/e.jpg,0,0,5,5,{landmarks},10,-2,-2", f"2/f.jpg,-1,-1,-1,-1,{landmarks},3,0.5,0.5"]
    text = "\n".join(rows) + "\n"
    (lists / "training.csv").write_text((_AFFECTNET_HEADER + "\n" if header else "") + text)
    (lists / "validation.csv").write_text(text)  # no header: read in the official column order
    for name in "abcdef":
        _write_jpeg(root / "Manually_Annotated" / "Manually_Annotated_Images" / ("1" if name < "c" else "2")
                    / f"{name}.jpg", value=220, size=(20, 16))
    return root


def test_affectnet_reads_the_lists_with_face_boxes(tmp_path):
    root = _affectnet_root(tmp_path)
    seven = data.open_dataset("affectnet", root=root, split="train")
    assert seven.class_names == OFFICIAL_AFFECTNET[:7]
    assert [(item.path.name, seven.class_names[item.label], item.box) for item in seven.items] == [
        ("a.jpg", "happy", (4, 6, 14, 14)), ("d.jpg", "neutral", (0, 0, 5, 5))]
    assert seven.excluded == {"contempt": 1, "none": 1, "no-face": 1, "no face box": 1}
    assert "left out: " in seven.source
    assert data.load_image(seven.items[0]).size == (10, 8)  # cropped to the face box
    eight = data.open_dataset("affectnet", root=root, split="train", classes=8)
    assert eight.class_names == OFFICIAL_AFFECTNET
    assert [OFFICIAL_AFFECTNET[item.label] for item in eight.items] == ["happy", "contempt", "neutral"]
    assert eight.excluded == {"none": 1, "no-face": 1, "no face box": 1}
    val = data.open_dataset("affectnet", root=root, split="val")
    assert [item.origin.rsplit(":", 1)[1] for item in val.items] == ["1", "4"]  # no header line
    whole = data.open_dataset("affectnet", root=root, split="train", face_boxes=False)  # images aligned already
    assert [(item.path.name, item.box) for item in whole.items] == [("a.jpg", None), ("d.jpg", None)]
    assert data.load_image(whole.items[0]).size == (20, 16) and whole.excluded == seven.excluded


@pytest.mark.parametrize("row, message", [
    ("1/a.jpg,4,6,10,8,1;2,11,0,0", "training.csv:2: label 11 out of range 0..10"),
    ("1/a.jpg,4,six,10,8,1;2,1,0,0", "training.csv:2: face_x, face_y, face_width, face_height must be numbers"),
    ("1/a.jpg,4,6", "training.csv:2: 3 fields, expected 9"),
])
def test_affectnet_bad_rows_name_file_and_line(tmp_path, row, message):
    with pytest.raises(data.DatasetError, match=message):
        data.open_dataset("affectnet", root=_affectnet_root(tmp_path, [row]))


def test_affectnet_options_are_checked(tmp_path):
    root = _affectnet_root(tmp_path)
    with pytest.raises(data.DatasetError, match=r"classes must be one of \(7, 8\), got 6"):
        data.open_dataset("affectnet", root=root, classes=6)
    with pytest.raises(data.DatasetError, match=r"dataset format 'affectnet': split must be one of \('train', 'val'\)"):
        data.open_dataset("affectnet", root=root, split="test")


@pytest.mark.parametrize("name, make_root, split", [
    ("rafdb", _rafdb_root, "test"),
    ("fer2013", lambda folder: _fer_csv(folder).parent, "test"),
    ("affectnet", _affectnet_root, "val"),
])
def test_dataset_configs_hold_options_of_their_format(tmp_path, name, make_root, split):
    """configs/<name>.yaml is a pretrain-image configuration (every key checked) whose data section opens the
    format's fixture, with the root given as a user gives it (data.root=...), the way training opens its splits."""
    from fe_adapter.training.image_config import load_image_config
    from fe_adapter.training.image_task import open_split

    path = Path(__file__).parent.parent / "configs" / f"{name}.yaml"
    config = load_image_config(path, [f"data.root={make_root(tmp_path)}"])
    assert config.data.dataset == name and split in (config.data.train_split, config.data.test_split)
    listed = open_split(config, split)
    assert listed.items
    assert listed.class_names == (data.FORMATS[name].class_names or data.AFFECTNET_CLASSES[:7])
