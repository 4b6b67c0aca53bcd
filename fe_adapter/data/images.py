"""Sources of single face images (to train the image classifier FE-Adapter starts from): a folder per class
(torchvision's ImageFolder layout) and a generic list file.

Each returns an ``ImageList``: the images (file or in-memory pixels, label, where it was listed, an optional
face box) and the class names in the order of the labels, as the video sources return a ``ClipList``.
Problems in the listing (missing root or file, unknown class, label out of range, malformed line) raise
``DatasetError`` naming the file and line; listed images that do not exist are left out, kept in
``ImageList.missing``, with one warning giving their count and the first few. ``load_image`` reads one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fe_adapter.data.formats import IMAGE_SUFFIXES, UnreadableClip
from fe_adapter.data.sources import (
    DatasetError,
    _label_from_name,
    _list_labels,
    _list_rows,
    _require,
    _with_existing,
)

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
    messages. ``missing``: listed images whose file does not exist, left out of ``items``."""

    items: list[ImageItem]
    class_names: tuple[str, ...]
    missing: list[ImageItem] = field(default_factory=list)
    source: str = ""


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
