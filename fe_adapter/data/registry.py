"""The one registry of dataset formats, video and image: a new format is one entry here.

Each ``DatasetFormat`` names the function that lists a split (``open``, returning a ``ClipList`` or an
``ImageList``), its fixed class order if it has one, its splits and a one-line description. The options a
format takes are the keyword arguments of its ``open``; the training configuration passes the ``data.*`` keys
of the same names (``root``, ``fold``, ``frames``, ``train_list``...), so a format whose options are existing
keys needs no other change. ``open_dataset`` checks the name and the options before anything is read.

``formats(kind)`` is not re-exported by ``fe_adapter.data``, where ``formats`` is the module of file suffixes.

Kept free of torch and numpy: the configuration checks its ``data.dataset`` against ``formats("video")``
before anything heavy is loaded.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fe_adapter.data import images, sources
from fe_adapter.data.images import ImageList
from fe_adapter.data.sources import ClipList, DatasetError

Kind = Literal["video", "image"]
KINDS: tuple[Kind, ...] = ("video", "image")


@dataclass(frozen=True)
class DatasetFormat:
    """A dataset format: ``open(**options)`` lists one split of it.

    ``class_names``: the fixed label order (None when the data names its classes: lists, folders);
    ``splits``: the values ``open``'s ``split`` option takes (empty when it has none); ``doc``: one line.
    """

    name: str
    kind: Kind
    open: Callable[..., ClipList | ImageList]
    class_names: tuple[str, ...] | None
    splits: tuple[str, ...]
    doc: str

    def options(self) -> dict[str, object]:
        """The options ``open`` takes and their defaults (``inspect.Parameter.empty`` for a required one)."""
        parameters = inspect.signature(self.open).parameters.values()
        return {p.name: p.default for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def required(self) -> tuple[str, ...]:
        """The options without a default, which every ``open_dataset`` call must give."""
        return tuple(name for name, default in self.options().items() if default is inspect.Parameter.empty)


FORMATS: dict[str, DatasetFormat] = {}


def register(dataset_format: DatasetFormat) -> DatasetFormat:
    """Add a format to ``FORMATS``; a name already taken (by a video or an image format) is refused."""
    if dataset_format.name in FORMATS:
        raise ValueError(f"a dataset format named {dataset_format.name!r} is registered already")
    if dataset_format.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {dataset_format.kind!r}")
    FORMATS[dataset_format.name] = dataset_format
    return dataset_format


def formats(kind: Kind | None = None) -> list[str]:
    """The names of the registered formats of ``kind`` ("video" or "image"; all with None), in registration
    order."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [name for name, entry in FORMATS.items() if kind is None or entry.kind == kind]


def _known() -> str:
    return "; ".join(f"{kind}: {', '.join(formats(kind))}" for kind in KINDS if formats(kind))


def open_dataset(name: str, **options: object) -> ClipList | ImageList:
    """One split of the dataset format ``name``, listed by its ``open`` with ``options`` (e.g.
    ``open_dataset("dfew", root="/data/DFEW", fold=1, split="test")``).

    ``DatasetError`` (one line) for an unknown format (listing the known ones), an option the format does not
    take, a missing required option or a split it does not have; the format's own errors (a missing file, a
    bad line) name the file and line.
    """
    if name not in FORMATS:
        raise DatasetError(f"unknown dataset format {name!r}; known formats: {_known()}")
    dataset_format = FORMATS[name]
    accepted = dataset_format.options()
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise DatasetError(f"dataset format {name!r} takes no option {unknown[0]!r}; its options: "
                           f"{', '.join(accepted)}")
    missing = [key for key in dataset_format.required() if key not in options]
    if missing:
        raise DatasetError(f"dataset format {name!r} needs the option {missing[0]!r} ({dataset_format.doc})")
    split = options.get("split")
    if dataset_format.splits and "split" in options and split not in dataset_format.splits:
        raise DatasetError(f"dataset format {name!r}: split must be one of {dataset_format.splits}, got {split!r}")
    return dataset_format.open(**options)


# ----- video formats -----

def _video_list(train_list: str | Path, test_list: str | Path, split: str = "train", root: str | Path | None = None,
                class_names: Sequence[str] | None = None) -> ClipList:
    listed = sources.list_file(train_list if split == "train" else test_list, root, class_names)
    listed.source = f"{listed.source} (data.{split}_list)"
    return listed


def _video_folder(root: str | Path, split: str = "train", class_names: Sequence[str] | None = None) -> ClipList:
    return sources.folder_tree(Path(root) / split, class_names)


def _synthetic_clips(split: str = "train", num_clips: int = 600) -> ClipList:
    from fe_adapter.data.synthetic import synthetic_clip_list  # loads torch

    return synthetic_clip_list(num_clips, split)


register(DatasetFormat("dfew", "video", sources.dfew, sources.DFEW_CLASSES, sources.SPLITS,
                       "DFEW: EmoLabel_DataSplit/{split}(single-labeled)/set_{fold}.csv, frames in Clip/{frames}/"))
register(DatasetFormat("ferv39k", "video", sources.ferv39k, sources.FERV39K_CLASSES, sources.SPLITS,
                       "FERV39K: 4_setups/All_scenes/{split}_All.csv, frames in 2_ClipsforFaceCrop/"))
register(DatasetFormat("mafw", "video", sources.mafw, sources.MAFW_CLASSES, sources.SPLITS,
                       "MAFW single-label: split/single/no_caption/set_{fold}/{split}.txt, data/clips/ or frames/"))
register(DatasetFormat("list", "video", _video_list, None, sources.SPLITS,
                       "list files train_list and test_list of '<path> <label>' lines, paths relative to root"))
register(DatasetFormat("folder", "video", _video_folder, None, sources.SPLITS,
                       "root/{split}/<class>/<video file or frame folder>"))
register(DatasetFormat("synthetic", "video", _synthetic_clips, sources.SYNTHETIC_CLASSES, ("train", "val", "test"),
                       "procedurally drawn face clips rendered on the fly (no files; data.synthetic_* keys)"))

# ----- image formats -----

register(DatasetFormat("rafdb", "image", images.rafdb, images.RAFDB_CLASSES, ("train", "test"),
                       "RAF-DB basic: EmoLabel/list_patition_label.txt, Image/aligned/ or Image/original/"))
register(DatasetFormat("fer2013", "image", images.fer2013, images.FER2013_CLASSES, tuple(images.FER2013_USAGES),
                       "FER2013: fer2013.csv (emotion, pixels, Usage: Training/PublicTest/PrivateTest)"))
register(DatasetFormat("affectnet", "image", images.affectnet, None, ("train", "val"),
                       "AffectNet: training.csv/validation.csv with face boxes; classes=7 or 8"))
register(DatasetFormat("image_folder", "image", images.image_folder, None, (),
                       "root/{split}/<class>/*.jpg (torchvision's ImageFolder layout)"))
register(DatasetFormat("image_list", "image", images.image_list, None, (),
                       "a list file of '<path> <label>' or 'path,label' lines, paths relative to root"))


def _synthetic_faces(split: str = "train", count: int = 2400, size: int = 112, seed: int = 0,
                     class_names: Sequence[str] | None = None) -> ImageList:
    from fe_adapter.data.synthetic import synthetic_faces  # loads torch

    return synthetic_faces(split, count, size, seed, class_names)


register(DatasetFormat("synthetic_faces", "image", _synthetic_faces, sources.FRAME_CLASSES, ("train", "val", "test"),
                       "procedurally drawn single faces, each identity in 4 expressions (no files; the demo's images)"))
