"""Parsers for the split files of DFEW, FERV39K, MAFW, generic lists and folder-per-class trees.

Each returns a ``ClipList``: the clips (path, label, where it was listed) and the class names in the
order of the labels. Problems in the split files (missing file or fold, unknown class, label out of
range, malformed line) raise ``DatasetError`` naming the file and line, when the list is built. Listed
clips that do not exist are left out, kept in ``ClipList.missing``, with one warning giving their count
and the first few.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fe_adapter.data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES

#: Official label orders (DFEW's split files number them 1..7 in this order; MAFW's paper order).
DFEW_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
FERV39K_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
MAFW_CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt",
                "anxiety", "helplessness", "disappointment")
#: The synthetic clips' classes (``fe_adapter.data.synthetic``), here so that they are known without torch.
SYNTHETIC_CLASSES = ("neutral", "happy", "sad", "surprise", "happy_onset", "happy_offset")
#: The synthetic single faces' classes (``SyntheticFaces``, the image format "synthetic_faces").
FRAME_CLASSES = ("neutral", "happy", "sad", "surprise")
SPLITS = ("train", "test")
FOLDS = (1, 2, 3, 4, 5)


class DatasetError(ValueError):
    """A dataset that cannot be built: a missing root, split file or fold, or a bad line in a split file."""


@dataclass(frozen=True)
class ClipItem:
    """One clip: its video file or frame folder, its label, and the ``file:line`` that listed it."""

    path: Path
    label: int
    origin: str = ""


@dataclass
class ClipList:
    """The clips of a split and the class names, index = label; ``source`` says where they were listed (the
    split file and which split), for messages.

    ``missing``: the clips the split file lists but that do not exist on disk (left out of ``items``; the
    source warns once with their count and the first few). ``ClipDataset`` refuses a list where fewer than
    its ``min_readable`` fraction of the listed clips exist.
    """

    items: list[ClipItem]
    class_names: tuple[str, ...]
    missing: list[ClipItem] = field(default_factory=list)
    source: str = ""


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path


def _check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    if value not in choices:
        raise DatasetError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def _label_from_name(name: str, class_names: Sequence[str], origin: str) -> int:
    lookup = {class_name.lower(): index for index, class_name in enumerate(class_names)}
    if name.lower() not in lookup:
        raise DatasetError(f"{origin}: unknown class {name!r}; known classes: {', '.join(class_names)}")
    return lookup[name.lower()]


def _label_from_int(text: str, num_classes: int, base: int, origin: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DatasetError(f"{origin}: label {text!r} is not an integer") from None
    if not base <= value < base + num_classes:
        raise DatasetError(f"{origin}: label {value} out of range {base}..{base + num_classes - 1}")
    return value - base


def _name_and_class_lines(split_file: Path, class_names: Sequence[str], form: str) -> Iterator[tuple[str, int, str]]:
    """(clip name, label, origin) for each ``<name> <ClassName>`` line of a split file."""
    for line_number, line in enumerate(split_file.read_text().splitlines(), start=1):
        origin = f"{split_file}:{line_number}"
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(f"{origin}: expected '{form}', got {line!r}")
        yield fields[0], _label_from_name(fields[1], class_names, origin), origin


_SHOWN_MISSING = 3


def _with_existing(items: list, class_names: Sequence[str], source: str, make: type = ClipList,
                   noun: str = "clips") -> Any:
    """The listed items (clips, or images for ``make=ImageList``) that exist, the missing ones set aside with one
    warning."""
    present = [item for item in items if item.path.exists()]
    missing = [item for item in items if not item.path.exists()]
    if missing:
        shown = ", ".join(f"{item.path} ({item.origin})" for item in missing[:_SHOWN_MISSING])
        more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
        warnings.warn(f"{source}: {len(missing)} of {len(items)} listed {noun} are missing and left out "
                      f"({make.__name__}.missing): {shown}{more}", stacklevel=3)
    return make(present, tuple(class_names), missing, source)


def dfew(root: str | Path, fold: int = 1, split: str = "train", frames: str = "clip_224x224") -> ClipList:
    """DFEW: ``EmoLabel_DataSplit/{split}(single-labeled)/set_{fold}.csv`` with frames in ``Clip/{frames}/<id>``.

    ``frames`` is "clip_224x224" (all frames) or "clip_224x224_16f" (16 per clip). Labels 1..7 in the
    split files become 0..6 in ``DFEW_CLASSES`` order. Ids are matched as written or zero-padded to 5 digits.
    """
    root = _require(Path(root), "DFEW root")
    _check_choice("fold", fold, FOLDS)
    _check_choice("split", split, SPLITS)
    split_file = _require(root / "EmoLabel_DataSplit" / f"{split}(single-labeled)" / f"set_{fold}.csv",
                          "DFEW split file")
    frame_root = _require(root / "Clip" / frames, "DFEW frame folder")
    items = []
    with split_file.open(newline="", encoding="utf-8-sig") as handle:  # tolerate a byte-order mark
        for line_number, row in enumerate(csv.reader(handle), start=1):
            origin = f"{split_file}:{line_number}"
            if line_number == 1 and row and row[0].strip() == "video_name":
                continue
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise DatasetError(f"{origin}: expected 'video_name,label', got {','.join(row)!r}")
            name, label = row[0].strip(), _label_from_int(row[1].strip(), len(DFEW_CLASSES), 1, origin)
            path = frame_root / name
            if not path.exists() and name.isdigit():
                path = frame_root / name.zfill(5)
            items.append(ClipItem(path, label, origin))
    return _with_existing(items, DFEW_CLASSES, f"DFEW split file {split_file} ({split} split of fold {fold})")


def ferv39k(root: str | Path, split: str = "train") -> ClipList:
    """FERV39K: ``4_setups/All_scenes/{split}_All.csv`` lines ``Scene/Emotion/NNNN ClassName``, frames in
    ``2_ClipsforFaceCrop/Scene/Emotion/NNNN``."""
    root = _require(Path(root), "FERV39K root")
    _check_choice("split", split, SPLITS)
    split_file = _require(root / "4_setups" / "All_scenes" / f"{split}_All.csv", "FERV39K split file")
    frame_root = _require(root / "2_ClipsforFaceCrop", "FERV39K frame folder")
    lines = _name_and_class_lines(split_file, FERV39K_CLASSES, "Scene/Emotion/NNNN ClassName")
    items = [ClipItem(frame_root / name, label, origin) for name, label, origin in lines]
    return _with_existing(items, FERV39K_CLASSES, f"FERV39K split file {split_file} ({split} split)")


def mafw(root: str | Path, fold: int = 1, split: str = "train", media: str = "clips") -> ClipList:
    """MAFW (single-label): ``split/single/no_caption/set_{fold}/{split}.txt`` lines ``03747.mp4 anger``.

    ``media`` "clips" reads ``data/clips/03747.mp4``; "frames" reads the frame folder ``data/frames/03747``.
    """
    root = _require(Path(root), "MAFW root")
    _check_choice("fold", fold, FOLDS)
    _check_choice("split", split, SPLITS)
    _check_choice("media", media, ("clips", "frames"))
    split_file = _require(root / "split" / "single" / "no_caption" / f"set_{fold}" / f"{split}.txt",
                          "MAFW split file")
    media_root = _require(root / "data" / media, "MAFW media folder")
    lines = _name_and_class_lines(split_file, MAFW_CLASSES, "<clip>.mp4 <class>")
    items = [ClipItem(media_root / (name if media == "clips" else Path(name).stem), label, origin)
             for name, label, origin in lines]
    return _with_existing(items, MAFW_CLASSES, f"MAFW split file {split_file} ({split} split of fold {fold})")


def _check_list_fields(fields: list[str], line: str, origin: str, comma: bool) -> None:
    """A list line has a path and a label, with a frame count (an integer) between them or not. Anything else
    is an error: read as it stands, ``my clip.mp4 neutral`` would be the path ``my`` with the frame count
    ``clip.mp4``, a clip that does not exist."""
    if len(fields) == 2 or (len(fields) == 3 and fields[1].isdigit()):
        return
    if len(fields) < 2:
        raise DatasetError(f"{origin}: expected '<path> <label>', '<path> <num_frames> <label>' or 'path,label', "
                           f"got {line!r}")
    if comma:
        raise DatasetError(f"{origin}: {len(fields)} comma-separated fields in {line!r}, expected 'path,label' (or "
                           "'path,num_frames,label'); quote a path that holds commas: \"my, clip.mp4\",label")
    where = f"{fields[1]!r} is not a frame count" if len(fields) == 3 else f"{len(fields)} fields"
    raise DatasetError(f"{origin}: {line!r} is not '<path> <label>' or '<path> <num_frames> <label>' ({where}); a "
                       f"path with spaces? write the line in the CSV form 'path,label': "
                       f"{' '.join(fields[:-1])},{fields[-1]}")


def _list_rows(path: Path, frame_counts: bool = True) -> list[tuple[str, str, str]]:
    """(entry, label text, ``file:line``) for each line of a list file (blank lines, ``#`` comments and a
    ``path,label`` header skipped). ``frame_counts``: a ``<path> <num_frames> <label>`` line is allowed (videos)."""
    rows = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        origin = f"{path}:{line_number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        comma = "," in line
        fields = [f.strip() for f in next(csv.reader([line]))] if comma else line.split()
        if not rows and fields[-1].lower() == "label":  # a header line before the first row
            continue
        if not frame_counts and len(fields) == 3 and fields[1].isdigit():
            raise DatasetError(f"{origin}: expected '<path> <label>' or 'path,label', got {line!r}")
        _check_list_fields(fields, line, origin, comma)
        rows.append((fields[0], fields[-1], origin))
    return rows


def _list_labels(rows: list[tuple[str, str, str]], class_names: Sequence[str] | None, label_base: int,
                path: Path) -> tuple[tuple[str, ...], list[int]]:
    """The class names and the label of each row of ``_list_rows``: class names looked up in ``class_names``,
    integers counted from ``label_base`` (classes ``class_0``... up to the largest when no names are given)."""
    named = any(not label.lstrip("-").isdigit() for _, label, _ in rows)
    if named and class_names is None:
        raise DatasetError(f"{path}: labels are class names, so class_names must be given")
    if class_names is None:
        largest = max((int(label) for _, label, _ in rows), default=label_base)
        class_names = [f"class_{index}" for index in range(largest - label_base + 1)]
    labels = [_label_from_int(label, len(class_names), label_base, origin) if label.lstrip("-").isdigit()
              else _label_from_name(label, class_names, origin) for _, label, origin in rows]
    return tuple(class_names), labels


def list_file(
    path: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    label_base: int = 0,
) -> ClipList:
    """A generic list: lines ``<path> <label>`` or ``<path> <num_frames> <label>``, or CSV ``path,label``.

    Labels are class names (looked up in ``class_names``) or integers starting at ``label_base``. With
    integer labels and no ``class_names``, classes are named ``class_0``...  up to the largest label.
    Relative paths are resolved against ``root`` (default: the list file's folder). A CSV header line
    (``path,label``) is skipped.
    """
    path = _require(Path(path), "list file")
    root = Path(root) if root is not None else path.parent
    rows = _list_rows(path)
    class_names, labels = _list_labels(rows, class_names, label_base, path)
    items = [ClipItem(root / clip, label, origin) for (clip, _, origin), label in zip(rows, labels, strict=True)]
    return _with_existing(items, class_names, f"list file {path}")


def folder_tree(root: str | Path, class_names: Sequence[str] | None = None) -> ClipList:
    """``root/<class name>/<video file or frame folder>``; classes sorted by name unless given."""
    root = _require(Path(root), "dataset root")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if class_names is None:
        class_names = [folder.name for folder in folders]
    items = []
    for folder in folders:  # a split may lack some classes; an unknown folder is an error
        label = _label_from_name(folder.name, class_names, str(folder))
        for clip in sorted(folder.iterdir()):
            if clip.is_dir() or clip.suffix.lower() in VIDEO_SUFFIXES:
                items.append(ClipItem(clip, label, str(clip)))
    if not items:
        raise DatasetError(f"{root}: no clips (video files {VIDEO_SUFFIXES} or frame folders of "
                           f"{IMAGE_SUFFIXES} images) in its class folders")
    return ClipList(items, tuple(class_names), source=f"folder {root}")
