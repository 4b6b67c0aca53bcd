"""Raw face photos to training images: the main face of each image aligned as predict aligns video frames.

Each image's faces are found by the detector predict and crop-faces use (``make_detector``), the main face (the
largest, as a video's main face is the one seen most and then the larger) is aligned on its five landmarks by
``align_face`` with the same template and margin, and the crop is written to ``<out>/<the image's path relative
to the inputs' root>`` (same name and format), so an image-folder tree (``root/train/<class>/x.jpg``) keeps its
layout and stays an ``image_folder`` source. Beside the crops:

- ``manifest.csv``: ``path,label`` for every image cropped (now or earlier), paths relative to ``out``, label the
  name of the folder the source image is in (or the one label given): an ``image_list`` source;
- ``train.csv`` and ``test.csv``: the same images split per class by a hash of their names (``held_out``, as
  crop-faces splits videos), ``test_fraction`` of each class to test, at least one image left for training;
- ``classes.txt``: the labels, sorted, one a line;
- ``skipped.csv``: ``image,reason`` for every image without a face or that could not be read;
- ``crop.json``: the settings; a run with other settings crops every image again.

Resuming: each crop is written in one step (``atomic_write``), so an image whose crop exists (with the same
settings, and no older than the image: a replaced photo is cropped again) is done and skipped; an image an
earlier run found no face in (``skipped.csv``, same settings) is skipped again and reported again; unreadable
images are tried again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fe_adapter._io import atomic_write
from fe_adapter._json import to_json
from fe_adapter.data.formats import IMAGE_SUFFIXES
from fe_adapter.faces.align import MARGIN

#: Files in the output folder.
MANIFEST, TRAIN_LIST, TEST_LIST = "manifest.csv", "train.csv", "test.csv"
CLASSES, SKIPPED, RECORD = "classes.txt", "skipped.csv", "crop.json"
RECORD_VERSION = 1
NO_FACE = "no face"


@dataclass(frozen=True)
class ImageCropSettings:
    """``size``: side of the aligned crops, pixels. ``margin``: ``align_face``'s margin. ``detector``:
    ``make_detector``'s name. ``quality``: JPEG quality."""

    size: int = 224
    margin: float = MARGIN
    detector: str = "mtcnn"
    quality: int = 95


@dataclass
class ImageCropReport:
    """What a run did: images cropped now, skipped (cropped by an earlier run), without a face (their names), not
    readable (one line each), the list files written, and the classes too small to hold an image out for test."""

    cropped: int = 0
    skipped: int = 0
    faceless: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lists: dict[str, Path] = field(default_factory=dict)
    untested: list[str] = field(default_factory=list)


def is_image(path: Path) -> bool:
    """Whether ``path``'s suffix is an image's (``IMAGE_SUFFIXES``, any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def images_in(folder: Path) -> list[Path]:
    """The image files in ``folder`` and its sub-folders, sorted by path; hidden files and folders skipped."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [Path(root) / name for name in files if not name.startswith(".") and is_image(Path(name))]
    return sorted(found)


def image_root(inputs: Sequence[str | Path]) -> Path:
    """The folder the output paths are relative to: the common folder of the inputs (a folder counts as itself, a
    file as its folder), so ``raw/`` with ``raw/train/happy/a.jpg`` gives ``train/happy/a.jpg``."""
    roots = [os.path.abspath(path) if Path(path).is_dir() else os.path.dirname(os.path.abspath(path))
             for path in inputs]
    return Path(os.path.commonpath(roots))


def main_face(faces):
    """The face to crop in a still image: the largest (the detector's surest on a tie), or None."""
    return max(faces, key=lambda face: (face.side, face.score), default=None)


def crop_images(images: Sequence[Path], root: str | Path, out: str | Path,
                settings: ImageCropSettings = ImageCropSettings(), label: str | None = None,
                test_fraction: float = 0.2, progress: bool | None = None) -> ImageCropReport:
    """Align the main face of every image (paths under ``root``) into ``out`` (see the module docstring).

    ``label``: every image's class (default: the name of its folder). ``progress``: a tqdm bar on stderr (default:
    when stderr is a terminal).
    """
    from tqdm import tqdm

    from fe_adapter.faces import make_detector

    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    root, out = Path(os.path.abspath(root)), Path(out)
    show = sys.stderr.isatty() if progress is None else progress
    same_settings = _recorded_settings(out) == asdict(settings)
    known_faceless = _earlier_faceless(out) if same_settings else set()
    atomic_write(out / RECORD, lambda temporary: Path(temporary).write_text(
        to_json({"version": RECORD_VERSION, "settings": asdict(settings)}) + "\n"))
    detector = None  # made for the first image that needs it: a run that skips everything loads no model
    report, rows, skipped_rows = ImageCropReport(), [], []
    for image in tqdm(images, unit="image", desc="crop-faces", disable=not show, file=sys.stderr,
                      dynamic_ncols=True):
        source = Path(os.path.abspath(image))  # normalised as ``image_root`` does (".." resolved)
        name = source.relative_to(root).as_posix()
        target = out / name
        if same_settings and _cropped_since_changed(target, source):
            report.skipped += 1
        elif same_settings and name in known_faceless:
            report.faceless.append(name)
            skipped_rows.append((name, NO_FACE))
            continue
        else:
            detector = detector or make_detector(settings.detector)
            try:
                found = _crop_one(Path(image), target, settings, detector)
            except (OSError, ValueError) as error:  # not an image, truncated, or a write that failed
                report.failed.append(f"{image}: cannot read the image ({error})")
                skipped_rows.append((name, f"unreadable: {error}"))
                continue
            if not found:
                report.faceless.append(name)
                skipped_rows.append((name, NO_FACE))
                continue
            report.cropped += 1
        rows.append((name, label or source.parent.name))
    report.lists, report.untested = _write_lists(out, rows, skipped_rows, test_fraction)
    return report


def _cropped_since_changed(target: Path, source: Path) -> bool:
    """Whether ``target`` (a crop) exists and was written after ``source`` (its image) last changed."""
    try:
        return target.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except OSError:
        return False


def aligned_main_face(image, detector, size: int, margin: float = MARGIN):
    """The main face (``main_face``) of a photo (a PIL image; a phone photo's EXIF rotation applied first) aligned
    by ``align_face`` at ``size`` pixels: a (size, size, 3) uint8 array, or None without a face. What crop-faces
    writes for an image, and what ``predict-image --faces detect`` classifies."""
    import numpy as np
    from PIL import ImageOps

    from fe_adapter.faces import align_face

    pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    face = main_face(detector.detect(pixels))
    return None if face is None else align_face(pixels, face, size, margin)


def _crop_one(image: Path, target: Path, settings: ImageCropSettings, detector) -> bool:
    """Write the aligned crop of ``image``'s main face to ``target``; False (nothing written) without a face."""
    from PIL import Image

    with Image.open(image) as opened:
        aligned = aligned_main_face(opened, detector, settings.size, settings.margin)
    if aligned is None:
        return False
    crop = Image.fromarray(aligned)
    image_format = Image.registered_extensions()[target.suffix.lower()]
    atomic_write(target, lambda temporary: crop.save(temporary, format=image_format, quality=settings.quality))
    return True


def _recorded_settings(out: Path) -> dict | None:
    try:
        record = json.loads((out / RECORD).read_text())
        return record["settings"] if record.get("version") == RECORD_VERSION else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _earlier_faceless(out: Path) -> set[str]:
    try:
        with (out / SKIPPED).open(newline="") as handle:
            return {row["image"] for row in csv.DictReader(handle) if row.get("reason") == NO_FACE}
    except (OSError, KeyError, csv.Error):
        return set()


def _csv_text(header: Sequence[str], rows: Sequence[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_lists(out: Path, rows: list[tuple[str, str]], skipped: list[tuple[str, str]],
                 test_fraction: float) -> tuple[dict[str, Path], list[str]]:
    """Write the list files; returns their paths and the classes without a test image (too few images)."""
    from fe_adapter.faces.crop_videos import held_out

    by_label: dict[str, list[str]] = {}
    for name, label in rows:
        by_label.setdefault(label, []).append(name)
    test = held_out(by_label, test_fraction)
    classes = "".join(f"{label}\n" for label in sorted(by_label))
    texts = {MANIFEST: _csv_text(("path", "label"), rows),
             TRAIN_LIST: _csv_text(("path", "label"), [row for row in rows if row[0] not in test]),
             TEST_LIST: _csv_text(("path", "label"), [row for row in rows if row[0] in test]),
             SKIPPED: _csv_text(("image", "reason"), skipped), CLASSES: classes}
    paths = {name: atomic_write(out / name, lambda temporary, text=text: Path(temporary).write_text(text))
             for name, text in texts.items()}
    untested = sorted(label for label, names in by_label.items() if test_fraction and test.isdisjoint(names))
    return paths, untested
