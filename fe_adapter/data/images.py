"""Sources of single face images (to train the image classifier FE-Adapter starts from): RAF-DB (basic),
FER2013, AffectNet, a folder per class (torchvision's ImageFolder layout) and a generic list file.

Each returns an ``ImageList``: the images (file or in-memory pixels, label, where it was listed, an optional
face box) and the class names in the order of the labels, as the video sources return a ``ClipList``.
Problems in the listing (missing root or file, unknown class, label out of range, malformed line) raise
``DatasetError`` naming the file and line; listed images that do not exist are left out, kept in
``ImageList.missing``, with one warning giving their count and the first few. ``load_image`` reads one.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fe_adapter.data.formats import IMAGE_SUFFIXES, UnreadableClip
from fe_adapter.data.sources import (
    DatasetError,
    _check_choice,
    _label_from_int,
    _label_from_name,
    _list_labels,
    _list_rows,
    _require,
    _with_existing,
)

#: Label orders: RAF-DB's list file numbers its labels 1..7 in this order, FER2013's ``emotion`` 0..6 and
#: AffectNet's ``expression`` 0..7 (docs/data.md gives the sources).
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
AFFECTNET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
#: AffectNet's codes 8..10: images that show no emotion category; left out and counted in ``ImageList.excluded``.
AFFECTNET_NON_EMOTIONS = ("none", "uncertain", "no-face")
FER2013_USAGES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FER2013_SIZE = 48

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


class UnreadableImage(UnreadableClip):
    """An image that cannot be decoded (missing, truncated, not an image) or whose face box lies outside it.
    A subclass of ``UnreadableClip``, so loaders that skip unreadable clips skip it too."""


@dataclass(frozen=True)
class ImageItem:
    """One face image: its file (or in-memory ``pixels``), its label and the ``file:line`` that listed it.

    ``box`` (x0, y0, x1, y1) in pixels is the face, cropped on load (AffectNet gives one per image);
    ``pixels`` is a uint8 H x W (grey) or H x W x 3 (RGB) array for datasets that ship pixels, not files
    (FER2013's 48 x 48 grey faces).
    """

    path: Path | None
    label: int
    origin: str = ""
    box: tuple[int, int, int, int] | None = None
    pixels: np.ndarray | None = field(default=None, compare=False)


@dataclass
class ImageList:
    """The images of a split and the class names, index = label; ``source`` says where they were listed, for
    messages. ``missing``: listed images whose file does not exist, left out of ``items``; ``excluded``: images
    the listing holds but the chosen classes leave out, counted by reason (AffectNet's non-emotion codes,
    contempt in its 7-class subset)."""

    items: list[ImageItem]
    class_names: tuple[str, ...]
    missing: list[ImageItem] = field(default_factory=list)
    source: str = ""
    excluded: dict[str, int] = field(default_factory=dict)


def load_image(item: ImageItem) -> Image.Image:
    """The RGB image of ``item``, cropped to its face box; raises ``UnreadableImage`` naming the file (and the
    line that listed it) for an image that cannot be read or a box outside it."""
    from PIL import Image, UnidentifiedImageError

    where = f"{item.path or 'in-memory image'} ({item.origin})" if item.origin else str(item.path)
    if item.pixels is not None:
        image = Image.fromarray(item.pixels).convert("RGB")
    else:
        if item.path is None:
            raise UnreadableImage(f"{where}: an ImageItem needs a path or pixels")
        try:
            with Image.open(item.path) as opened:
                image = opened.convert("RGB")  # decodes now, while the file is open
        except FileNotFoundError:
            raise UnreadableImage(f"{where}: image file not found") from None
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise UnreadableImage(f"{where}: cannot read the image ({error})") from None
    if item.box is None:
        return image
    x0, y0, x1, y1 = item.box
    left, top, right, bottom = max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height)
    if right <= left or bottom <= top:
        raise UnreadableImage(f"{where}: face box {item.box} lies outside the {image.width}x{image.height} image")
    return image.crop((left, top, right, bottom))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def image_folder(root: str | Path, split: str = "train", class_names: Sequence[str] | None = None) -> ImageList:
    """``root/<split>/<class name>/*.jpg`` (torchvision's ImageFolder layout, one folder per split); classes
    sorted by folder name unless ``class_names`` gives them (a split may lack some of them; a folder not
    among them is an error)."""
    root = _require(Path(root), "image folder root")
    split_root = _require(root / split, f"split folder {split!r} of the image folder")
    folders = sorted(p for p in split_root.iterdir() if p.is_dir())
    if class_names is None:
        class_names = [folder.name for folder in folders]
    items = []
    for folder in folders:
        label = _label_from_name(folder.name, class_names, str(folder))
        items += [ImageItem(image, label, str(image)) for image in sorted(folder.iterdir()) if _is_image(image)]
    if not items:
        raise DatasetError(f"{split_root}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    return ImageList(items, tuple(class_names), source=f"image folder {split_root}")


def image_list(
    list_file: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    label_base: int = 0,
) -> ImageList:
    """A list of images: lines ``<path> <label>`` or CSV ``path,label`` (as the video list files, without the
    frame count). Labels are class names (looked up in ``class_names``) or integers from ``label_base``;
    relative paths are resolved against ``root`` (default: the list file's folder)."""
    list_file = _require(Path(list_file), "image list file")
    root = Path(root) if root is not None else list_file.parent
    rows = _list_rows(list_file, frame_counts=False)
    class_names, labels = _list_labels(rows, class_names, label_base, list_file)
    items = [ImageItem(root / image, label, origin) for (image, _, origin), label in zip(rows, labels, strict=True)]
    return _with_existing(items, class_names, f"image list file {list_file}", ImageList, "images")


def rafdb(root: str | Path, split: str = "train", images: str = "aligned") -> ImageList:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` lines ``train_00001.jpg 5`` (labels 1..7 in
    ``RAFDB_CLASSES`` order; the name's ``train_``/``test_`` prefix is the split), images in
    ``Image/aligned/train_00001_aligned.jpg`` (``images="aligned"``, the 100 x 100 aligned faces) or
    ``Image/original/train_00001.jpg``."""
    root = _require(Path(root), "RAF-DB root")
    _check_choice("split", split, ("train", "test"))
    _check_choice("images", images, ("aligned", "original"))
    label_file = _require(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file")
    image_root = _require(root / "Image" / images, "RAF-DB image folder")
    items = []
    for line_number, line in enumerate(label_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        origin = f"{label_file}:{line_number}"
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(f"{origin}: expected '<train_NNNNN.jpg or test_NNNN.jpg> <label 1..7>', got {line!r}")
        name, label = fields
        prefix = name.split("_", 1)[0]
        if prefix not in ("train", "test"):
            raise DatasetError(f"{origin}: image name {name!r} does not start with train_ or test_ (its split)")
        label_index = _label_from_int(label, len(RAFDB_CLASSES), 1, origin)
        if prefix == split:
            file = f"{Path(name).stem}_aligned.jpg" if images == "aligned" else name
            items.append(ImageItem(image_root / file, label_index, origin))
    return _with_existing(items, RAFDB_CLASSES, f"RAF-DB label file {label_file} ({split} split, {images} images)",
                          ImageList, "images")


def _csv_rows(path: Path, columns: Sequence[str], standard_order: bool) -> Iterator[tuple[dict[str, str], str]]:
    """(row by column name, ``file:line``) of a CSV file with a header naming ``columns`` (among others). With
    ``standard_order``, a file whose first row is no header is read in the order of ``columns``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"{path}: empty file, expected a header with the columns {', '.join(columns)}")
        names = [name.strip() for name in header]
        first_data = None
        if columns[0] not in names:
            if not standard_order:
                raise DatasetError(f"{path}:1: expected a header with the columns {', '.join(columns)}, "
                                   f"got {','.join(header)!r}")
            names, first_data = list(columns), header
        absent = [name for name in columns if name not in names]
        if absent:
            raise DatasetError(f"{path}:1: the header has no column {absent[0]!r} (needed: {', '.join(columns)})")
        where = {name: names.index(name) for name in columns}
        rows = ([(1, first_data)] if first_data is not None else []) + list(enumerate(reader, start=2))
        for line_number, row in rows:
            origin = f"{path}:{line_number}"
            if not row or not "".join(row).strip():
                continue
            if len(row) < len(names):
                raise DatasetError(f"{origin}: {len(row)} fields, expected {len(names)} ({', '.join(names)})")
            yield {name: row[index].strip() for name, index in where.items()}, origin


def _fer_pixels(text: str, origin: str) -> np.ndarray:
    import numpy as np

    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise DatasetError(f"{origin}: pixels must be integers 0..255 separated by spaces") from None
    if values.size != FER2013_SIZE * FER2013_SIZE:
        raise DatasetError(f"{origin}: {values.size} pixels, expected {FER2013_SIZE}x{FER2013_SIZE} = "
                           f"{FER2013_SIZE * FER2013_SIZE}")
    if values.min() < 0 or values.max() > 255:
        raise DatasetError(f"{origin}: pixel values must lie in 0..255, got {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(FER2013_SIZE, FER2013_SIZE)


def fer2013(root: str | Path, split: str = "train") -> ImageList:
    """FER2013 (Kaggle's ``fer2013.csv``; ``root`` is the file or its folder): rows ``emotion,pixels,Usage``,
    emotion 0..6 in ``FER2013_CLASSES`` order, 48 x 48 grey pixels as space-separated text (kept in memory,
    ``ImageItem.pixels``). Splits by Usage: "train" Training, "val" PublicTest, "test" PrivateTest."""
    root = _require(Path(root), "FER2013 csv file or folder")
    csv_file = _require(root / "fer2013.csv", "FER2013 csv file") if root.is_dir() else root
    _check_choice("split", split, tuple(FER2013_USAGES))
    items = []
    for row, origin in _csv_rows(csv_file, ("emotion", "pixels", "Usage"), standard_order=False):
        if row["Usage"] not in FER2013_USAGES.values():
            raise DatasetError(f"{origin}: Usage {row['Usage']!r} is none of {', '.join(FER2013_USAGES.values())}")
        label = _label_from_int(row["emotion"], len(FER2013_CLASSES), 0, origin)
        if row["Usage"] == FER2013_USAGES[split]:
            items.append(ImageItem(None, label, origin, pixels=_fer_pixels(row["pixels"], origin)))
    if not items:
        raise DatasetError(f"{csv_file}: no rows with Usage {FER2013_USAGES[split]} (the {split} split)")
    return ImageList(items, FER2013_CLASSES, source=f"FER2013 {csv_file} ({split} split: {FER2013_USAGES[split]})")


_AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                      "expression", "valence", "arousal")


def _affectnet_images(root: Path, images: str | Path | None) -> Path:
    if images is not None:
        return _require(Path(images), "AffectNet image folder")
    candidates = [root / "Manually_Annotated" / "Manually_Annotated_Images", root / "Manually_Annotated_Images"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(f"AffectNet image folder not found: none of {', '.join(map(str, candidates))}; give it as "
                       "images=...")


def affectnet(root: str | Path, split: str = "train", classes: int = 7, images: str | Path | None = None,
              face_boxes: bool = True) -> ImageList:
    """AffectNet (manually annotated part): ``training.csv`` ("train") or ``validation.csv`` ("val", the split
    published results report; the test set is not released), at the root or in ``Manually_Annotated_file_lists/``;
    columns subDirectory_filePath, face_x, face_y, face_width, face_height, expression (by the header; a file
    without one is read in the official column order). Images under ``Manually_Annotated/Manually_Annotated_Images``
    or ``Manually_Annotated_Images`` (or ``images``), cropped to the face box on load.

    ``classes=7``: the expressions 0..6 (``AFFECTNET_CLASSES`` without contempt); ``classes=8``: with contempt.
    Codes 8..10 (None, Uncertain, No-face), contempt in the 7-class subset and rows without a face box are left
    out and counted in ``ImageList.excluded``. ``face_boxes=False``: the images are read whole, not cut to the
    list's box (for ``images`` aligned by ``fe-adapter crop-faces``, whose crops the boxes no longer fit).
    """
    root = _require(Path(root), "AffectNet root")
    _check_choice("split", split, ("train", "val"))
    _check_choice("classes", classes, (7, 8))
    if not isinstance(face_boxes, bool):
        raise DatasetError(f"face_boxes must be true or false, got {face_boxes!r}")
    name = "training.csv" if split == "train" else "validation.csv"
    lists = [root / name, root / "Manually_Annotated_file_lists" / name]
    csv_file = next((path for path in lists if path.is_file()), None)
    if csv_file is None:
        raise DatasetError(f"AffectNet list not found: none of {', '.join(map(str, lists))}")
    image_root = _affectnet_images(root, images)
    class_names = AFFECTNET_CLASSES[:classes]
    all_codes = AFFECTNET_CLASSES + AFFECTNET_NON_EMOTIONS
    items, excluded = [], Counter()
    for row, origin in _csv_rows(csv_file, _AFFECTNET_COLUMNS, standard_order=True):
        code = _label_from_int(row["expression"], len(all_codes), 0, origin)
        if code >= classes:
            excluded[all_codes[code]] += 1
            continue
        try:
            x, y, width, height = (int(float(row[key])) for key in ("face_x", "face_y", "face_width", "face_height"))
        except ValueError:
            raise DatasetError(f"{origin}: face_x, face_y, face_width, face_height must be numbers") from None
        if width <= 0 or height <= 0:
            excluded["no face box"] += 1
            continue
        box = (x, y, x + width, y + height) if face_boxes else None
        items.append(ImageItem(image_root / row["subDirectory_filePath"], code, origin, box=box))
    left_out = ", ".join(f"{count} {reason}" for reason, count in excluded.items())
    source = f"AffectNet {csv_file} ({split} split, {classes} classes{'; left out: ' + left_out if left_out else ''})"
    listed = _with_existing(items, class_names, source, ImageList, "images")
    listed.excluded = dict(excluded)
    return listed
