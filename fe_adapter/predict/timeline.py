"""Writing a video's predictions: JSON, CSV (one row per window) and a PNG timeline with face thumbnails.

Output names come from the input paths relative to their common folder, so two inputs with the same file
name in different folders never share outputs, and nothing is written over an existing file unless asked.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fe_adapter._io import atomic_write
from fe_adapter._json import to_json
from fe_adapter.predict.results import VideoPrediction

OUTPUT_SUFFIXES = (".json", ".csv", ".png")


def output_names(videos: Sequence[str | Path]) -> list[str]:
    """A distinct output name per video: its path relative to the videos' common folder, without suffix.

    ``day1/clip.mp4`` and ``day2/clip.mp4`` become ``day1/clip`` and ``day2/clip``; a single video, or videos
    in one folder, keep their plain stem. Two files that differ only in suffix (``clip.mp4``, ``clip.avi``)
    keep it (``clip.mp4``, ``clip.avi``). The same file listed twice is an error.
    """
    absolute = [os.path.normpath(Path(video).absolute()) for video in videos]
    if len(set(absolute)) != len(absolute):
        repeated = sorted({path for path in absolute if absolute.count(path) > 1})
        raise ValueError(f"video listed more than once: {', '.join(repeated)}")
    if not absolute:
        return []
    common = os.path.commonpath([os.path.dirname(path) for path in absolute])
    relative = [Path(os.path.relpath(path, common)) for path in absolute]
    stems = [str(path.with_suffix("")) for path in relative]
    return [str(path) if stems.count(stem) > 1 else stem for path, stem in zip(relative, stems, strict=True)]


def output_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The JSON, CSV and PNG paths ``write_prediction`` writes for output ``name`` in ``out_dir``."""
    base = Path(out_dir) / name
    return {suffix[1:]: base.parent / (base.name + suffix) for suffix in OUTPUT_SUFFIXES}


def existing_outputs(out_dir: str | Path, names: Sequence[str]) -> list[Path]:
    """The output files of ``names`` that already exist in ``out_dir``."""
    return [path for name in names for path in output_paths(out_dir, name).values() if path.exists()]


def write_prediction(prediction: VideoPrediction, out_dir: str | Path, name: str | None = None,
                     overwrite: bool = False) -> dict[str, Path]:
    """Write ``<name>.json``, ``.csv`` and ``.png`` into ``out_dir`` (``name`` defaults to the video's stem and
    may hold subfolders); return their paths.

    Raises FileExistsError, before writing anything, if one of them exists and ``overwrite`` is False. Each
    file is written atomically: an interrupted run leaves no half-written file.
    """
    paths = output_paths(out_dir, name or Path(prediction.path).stem)
    if not overwrite:
        existing = [str(path) for path in paths.values() if path.exists()]
        if existing:
            raise FileExistsError(f"would overwrite {', '.join(existing)}: pass overwrite=True (--overwrite) "
                                  "to replace")
    atomic_write(paths["json"], lambda temporary: Path(temporary).write_text(to_json(prediction.to_dict()) + "\n"))
    atomic_write(paths["csv"], lambda temporary: _write_csv(prediction, Path(temporary)))
    atomic_write(paths["png"], lambda temporary: plot_timeline(prediction, Path(temporary)))
    return paths


def _write_csv(prediction: VideoPrediction, path: Path) -> None:
    """One row per window of the main face, or with every person's timeline (all faces) one row per person and
    window, by person then time."""
    names = prediction.classes
    windows = [w for track in prediction.tracks for w in track.windows] if prediction.tracks else prediction.windows
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["track_id", "start_s", "end_s", "top", "no_face", "faces_found", "frames", "box_x0",
                         "box_y0", "box_x1", "box_y1", *names])
        for w in windows:
            box = [""] * 4 if w.box is None else [f"{value:.1f}" for value in w.box]
            writer.writerow(["" if w.track_id is None else w.track_id, f"{w.start:.3f}", f"{w.end:.3f}", w.top or "",
                             str(w.no_face).lower(), w.faces_found, w.frames, *box,
                             *(f"{w.probabilities[n]:.5f}" for n in names)])


def plot_timeline(prediction: VideoPrediction, path: Path, max_thumbnails: int = 10) -> None:
    """Save ``timeline_figure`` as a PNG."""
    timeline_figure(prediction, max_thumbnails).savefig(path, dpi=110, format="png")


def _no_face_spans(prediction: VideoPrediction, centres: list[float]) -> list[tuple[float, float]]:
    """The time spans of runs of no-face windows on the timeline's axis (window centres): from half-way after the
    last window with a face to half-way before the next one (or the video's start or end)."""
    spans, windows = [], prediction.windows
    index = 0
    while index < len(windows):
        if not windows[index].no_face:
            index += 1
            continue
        first = index
        while index < len(windows) and windows[index].no_face:
            index += 1
        left = 0.0 if first == 0 else (centres[first - 1] + centres[first]) / 2
        right = prediction.duration if index == len(windows) else (centres[index - 1] + centres[index]) / 2
        spans.append((left, right))
    return spans


def _rgb(image: np.ndarray, index: int) -> np.ndarray:
    """A thumbnail as (H, W, 3) uint8: grey (H, W) or (H, W, 1) repeated, RGBA laid over white; ValueError for
    another dtype or shape, naming the thumbnail."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"thumbnail {index}: expected a uint8 image (H, W), (H, W, 3) or (H, W, 4), got "
                         f"{image.dtype} {image.shape}")
    if image.ndim == 2 or image.shape[2] == 1:
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float64) / 255
        return np.rint(image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return image


def thumbnail_strip(thumbnails: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """The uint8 thumbnails (RGB, grey or RGBA) side by side on white, a twentieth of the widest apart, each centred
    in a slot of the largest one's size; and the x of each slot's centre. One image on one axes: an axes per
    thumbnail cost the command about half a second (matplotlib builds ticks and spines for each)."""
    thumbnails = [_rgb(image, index) for index, image in enumerate(thumbnails)]
    height = max(image.shape[0] for image in thumbnails)
    width = max(image.shape[1] for image in thumbnails)
    gap = max(1, width // 20)
    strip = np.full((height, len(thumbnails) * (width + gap) - gap, 3), 255, dtype=np.uint8)
    centres = []
    for slot, image in enumerate(thumbnails):
        left = slot * (width + gap) + (width - image.shape[1]) // 2
        top = (height - image.shape[0]) // 2
        strip[top:top + image.shape[0], left:left + image.shape[1]] = image
        centres.append(slot * (width + gap) + (width - 1) / 2)
    return strip, centres


def timeline_figure(prediction: VideoPrediction, max_thumbnails: int = 10) -> Any:
    """Probability of each class over time (window centres), with face crops along the bottom. No-face windows
    are gaps in the curves, shaded grey. A plain ``Figure`` on the Agg canvas: no pyplot (its import and backend
    set-up cost the command about half a second of start-up), nothing global to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    centres = [(w.start + w.end) / 2 for w in prediction.windows]
    figure = Figure(figsize=(10, 5))
    FigureCanvasAgg(figure)
    curves = figure.add_axes((0.07, 0.36, 0.75, 0.56))
    for name in prediction.classes:
        curves.plot(centres, [math.nan if w.no_face else w.probabilities[name] for w in prediction.windows],
                    marker=".", label=name)
    for number, (left, right) in enumerate(_no_face_spans(prediction, centres)):
        curves.axvspan(left, right, color="0.85", zorder=0, label=None if number else
                       f"no face\n(< {prediction.min_face_fraction:.0%} of frames)")
    curves.set_xlim(0, max(prediction.duration, 1e-3))
    curves.set_ylim(0, 1)
    curves.set_ylabel("probability")
    name = Path(prediction.path).name
    if prediction.top is None:
        title = f"{name}: no window with a face, no overall"
    else:
        left_out = f" ({prediction.no_face_windows} of {len(prediction.windows)} windows without a face left out)" \
            if prediction.no_face_windows else ""
        title = f"{name}: {prediction.top} overall{left_out}"
    curves.set_title(title)
    curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    chosen = sorted(prediction.thumbnails)
    step = max(1, -(-len(chosen) // max_thumbnails))
    chosen = chosen[::step]
    if chosen:
        strip = figure.add_axes((0.07, 0.04, 0.75, 0.24), anchor="W")
        pixels, centres_x = thumbnail_strip([prediction.thumbnails[index] for index in chosen])
        strip.imshow(pixels)
        strip.set_axis_off()
        for x, index in zip(centres_x, chosen, strict=True):
            strip.text(x, -0.5, f"{centres[index]:.1f}s" + (" no face" if prediction.windows[index].no_face else ""),
                       fontsize=7, ha="center", va="bottom")
    return figure
